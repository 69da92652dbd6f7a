"""Where the server extension reads and writes, fixed once when the server starts.

The journal folder and tracking URI are what the CLI would use where the server was
started (``locations``); the processes the extension starts (the scheduler, job workers)
get them in their environment, so a notebook's folder never changes where records go.
Notebook paths in requests are relative to the server's ``root_dir``, as the contents API
gives them, and must stay inside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .. import locations
from ..errors import MlopsError


class NotFound(MlopsError):
    """A notebook or schedule or job that is not there (HTTP 404)."""


class BadRequest(MlopsError):
    """A request the API cannot take as it is (HTTP 400)."""


@dataclass(frozen=True)
class Places:
    root: Path  # the server's root_dir, resolved
    home: Path  # the journal folder
    uri: str  # the tracking URI, credentials included when the environment has them

    @classmethod
    def from_server(cls, root_dir: str) -> Places:
        return cls(root=Path(root_dir).expanduser().resolve(), home=locations.home().resolve(),
                   uri=locations.tracking_uri())

    @property
    def journal(self) -> Path:
        return self.home / locations.journal_path().name

    def child_env(self) -> dict[str, str]:
        """The environment of a process the extension starts: same journal, same store."""
        return {**os.environ, locations.HOME_ENV: str(self.home), locations.TRACKING_URI_ENV: self.uri}

    def notebook(self, path: str | None, *, must_exist: bool = True) -> Path:
        """The notebook at ``path`` (relative to root_dir) as an absolute path inside root_dir."""
        if not path or not isinstance(path, str):
            raise BadRequest("give the notebook's path, relative to the Jupyter root folder")
        full = (self.root / path.lstrip("/")).resolve()
        if full != self.root and self.root not in full.parents:
            raise BadRequest(f"{path!r} is outside the Jupyter root folder {self.root}")
        if must_exist and not full.is_file():
            raise NotFound(f"no notebook at {path}")
        return full

    def relative(self, path: str | os.PathLike | None) -> str | None:
        """``path`` relative to root_dir, as the contents API names it (absolute when outside)."""
        if not path:
            return None
        full = Path(path)
        try:
            return full.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(full)
