"""The jupyter_client provisioner of kernels forked by a ``forks.KernelForks`` server."""

from __future__ import annotations

import logging
import os
import subprocess
from typing import Any

from jupyter_client.provisioning import LocalProvisioner

from .forks import ForkedProcess, kernel_argv

log = logging.getLogger("mlops_magics")


class ForkedProvisioner(LocalProvisioner):
    """``LocalProvisioner`` whose kernel process is forked by a ``KernelForks`` server."""

    server: str = ""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any):
        argv = kernel_argv(cmd)
        if argv is None or not self.server:
            return await super().launch_kernel(cmd, **kwargs)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        try:
            self.process = ForkedProcess(self.server, argv, dict(kwargs.get("env") or os.environ), cwd)
        except (OSError, ValueError) as exc:
            log.debug("kernel fork server unavailable (%s): starting the kernel the usual way", exc)
            return await super().launch_kernel(cmd, **kwargs)
        # The child makes its own process group first thing; until then a group signal
        # finds no group and LocalProvisioner signals the process itself.
        self.pid = self.pgid = self.process.pid
        self.cwd = cwd
        return self.connection_info

    async def kill(self, restart: bool = False) -> None:
        await super().kill(restart)
        # The server reports the end within milliseconds; waiting for it here spares the
        # kernel manager its 0.1 s polling loop, once per job.
        if isinstance(self.process, ForkedProcess):
            try:
                self.process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
