"""Secrets given to a job (``-p token s3cr3t``) reach its kernel and nothing else.

papermill writes the parameters it injects into the output notebook (the injected
cell and ``metadata.papermill.parameters``), which is then copied under the journal
home, rendered as HTML and logged as artifacts. Here papermill is given the masked
values, so every copy it writes shows ``***``; the real ones are assigned in the kernel
right after the injected cell, by a silent request kept out of the kernel's history.
The executed notebook is then masked once more for what the cells printed.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .. import secrets
from ..secrets import MASK, is_secret
from .failures import INJECTED_TAG, read_output

log = logging.getLogger("mlops_magics")
_MIN_FREE_TEXT = 3  # shorter values are masked where they are assigned, not in free text
_ASSIGN_TIMEOUT = 60.0


def _hidden(name: str, value: Any) -> Any:
    """What papermill may write for parameter ``name``: ``***`` for a secret name, values
    with a secret shape (a password in a URL) masked by ``secrets.mask_text``."""
    if is_secret(name):
        return MASK
    if isinstance(value, str):
        return secrets.mask_text(value)
    return value if secrets.mask_text(repr(value)) == repr(value) else MASK


class JobSecrets:
    """The secret values of one job's parameters, and how to keep them out of its files."""

    def __init__(self, overrides: dict[str, Any], final: dict[str, Any]) -> None:
        self.shown = {k: _hidden(k, v) for k, v in overrides.items()}
        self.real = {k: v for k, v in overrides.items() if self.shown[k] != v}
        found = {str(v) for k, v in final.items() if is_secret(k) and v is not None}
        found |= {str(v) for v in self.real.values()}
        self.values = sorted((v for v in found if len(v) >= _MIN_FREE_TEXT), key=len, reverse=True)

    def text(self, text: str) -> str:
        """``text`` with the known secret values and anything of a secret shape masked."""
        text = secrets.mask_text(text)  # first: a URL keeps all but its password
        for value in self.values:
            text = text.replace(value, MASK)
        return text

    def mapping(self, mapping: dict[str, str]) -> dict[str, str]:
        return {k: (MASK if is_secret(k) else self.text(v)) for k, v in mapping.items()}

    # -- in the kernel -------------------------------------------------------------------
    def hook(self, km, kernel_name: str, language: str | None):
        """An nbclient ``on_cell_executed`` hook that assigns the real values after the
        injected cell ran (with the masked ones), or None when nothing is hidden."""
        if not self.real:
            return None
        from papermill.translators import translate_parameters

        code = translate_parameters(kernel_name, language, self.real, "Parameters")

        async def on_cell_executed(cell, cell_index, execute_reply):
            if INJECTED_TAG in cell.get("metadata", {}).get("tags", []):
                await _assign_silently(km, code)

        return on_cell_executed

    # -- the written notebook --------------------------------------------------------------
    def notebook(self, path: str) -> None:
        """Mask the executed notebook at ``path`` in place: sources, outputs, papermill's metadata."""
        import nbformat

        nb = read_output(path)
        if nb is None:
            return
        for cell in nb.cells:
            source = secrets.mask_source(cell.source) if cell.cell_type == "code" else cell.source
            cell.source = self.text(source)
            for output in cell.get("outputs", []):
                self._output(output)
        meta = nb.metadata.get("papermill", {})
        for key in ("parameters", "default_parameters"):
            if isinstance(meta.get(key), dict):
                meta[key] = {k: (MASK if is_secret(k) else _masked_value(self, v)) for k, v in meta[key].items()}
        write_private(path, nbformat.writes(nb))

    def _output(self, output) -> None:
        if "text" in output:
            output["text"] = self.text(_joined(output["text"]))
        if "evalue" in output:
            output["evalue"] = self.text(output["evalue"])
        if "traceback" in output:
            output["traceback"] = [self.text(line) for line in output["traceback"]]
        for mime, value in output.get("data", {}).items():
            if mime.startswith("text/") or mime.endswith("json") or mime.endswith("javascript"):
                if isinstance(value, (str, list)):
                    output["data"][mime] = self.text(_joined(value))


def _masked_value(job: JobSecrets, value: Any) -> Any:
    return job.text(value) if isinstance(value, str) else value


def _joined(value) -> str:
    return "".join(value) if isinstance(value, list) else value


async def _assign_silently(km, code: str) -> None:
    """Run ``code`` in the kernel silently: no output, no history, no execution count."""
    import asyncio

    from jupyter_client.asynchronous import AsyncKernelClient

    # A client of its own: one sharing the job client's Session would read the same iopub
    # messages and poison its replay check ("Duplicate Signature"); the shell is enough.
    kc = AsyncKernelClient(context=km.context)
    kc.load_connection_info(km.get_connection_info())
    kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
    try:
        msg_id = kc.execute(code, silent=True, store_history=False)
        while True:
            reply = await asyncio.wait_for(kc.get_shell_msg(), _ASSIGN_TIMEOUT)
            if reply.get("parent_header", {}).get("msg_id") == msg_id:
                break
        if reply["content"].get("status") != "ok":
            raise RuntimeError(f"could not set the job's secret parameters: {reply['content'].get('ename')}")
    finally:
        kc.stop_channels()


def write_private(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600), whatever was there."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def private_file(path: str | os.PathLike) -> None:
    """Create ``path`` (empty) or restrict it to 0600 before anyone writes into it."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)


def private_folder(path) -> None:
    """Make folder ``path`` (and restrict it to 0700, even when it existed)."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
