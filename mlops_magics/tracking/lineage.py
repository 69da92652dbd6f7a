"""Where a run came from: the notebook, its git state, the Python environment.

Each function is cheap enough to call once per cell in a background thread; the
environment, which cannot change under a running interpreter's imports, is read
once per process.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

NOTEBOOK_ENV = "MLOPS_MAGICS_NOTEBOOK"


@dataclass(frozen=True)
class GitState:
    commit: str
    dirty: bool  # a tracked file changed, or the notebook itself is not in git
    branch: str | None
    notebook: str | None = None  # "untracked", "modified" or "clean" when asked about a file


@dataclass(frozen=True)
class Environment:
    python: str
    requirements: str  # "name==version" lines, sorted
    sha256: str


def notebook_path(user_ns: dict | None = None) -> str | None:
    """The notebook being run, when anything tells: our env var, JupyterLab's session, VS Code."""
    for candidate in (
        os.environ.get(NOTEBOOK_ENV),
        os.environ.get("JPY_SESSION_NAME"),
        (user_ns or {}).get("__session__"),
        (user_ns or {}).get("__vsc_ipynb_file__"),
    ):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return None


def file_sha256(path: str | os.PathLike) -> str | None:
    """sha256 of a file's bytes, or None when it cannot be read."""
    try:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def _git_executable() -> str | None:
    return shutil.which("git")


def _git(args: list[str], cwd: Path) -> str | None:
    # By absolute path: given a bare "git", subprocess looks it up with os.get_exec_path,
    # which enters warnings.catch_warnings; from this background thread that would make
    # the user's already-shown warnings show again.
    git = _git_executable()
    if git is None:
        return None
    try:
        out = subprocess.run(
            [git, *args], cwd=cwd, capture_output=True, text=True, timeout=5,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(where: str | os.PathLike | None = None) -> GitState | None:
    """Commit, dirty flag and branch of the repository holding ``where`` (default: cwd), and,
    when ``where`` is a file (the notebook), whether git has it: untracked, modified or clean.

    Other untracked files do not make a run dirty; a notebook git has never seen (or ignores)
    does: its code is in no commit. One ``git status`` answers commit, branch and changes of
    tracked files (porcelain v2 with ``--branch``); a second, limited to the file, its state.
    """
    path = Path(where or os.getcwd())
    cwd = path if path.is_dir() else path.parent
    if not cwd.exists():
        return None
    out = _git(["status", "--porcelain=v2", "--branch", "--untracked-files=no"], cwd)
    if out is None:
        return None
    header = dict(line[2:].split(" ", 1) for line in out.splitlines() if line.startswith("# ") and " " in line[2:])
    commit, branch = header.get("branch.oid", ""), header.get("branch.head")
    if not commit or commit == "(initial)":
        return None  # a repository without a commit yet
    dirty = any(line and not line.startswith("#") for line in out.splitlines())
    from .. import naming

    notebook = _file_state(path) if path.is_file() else None
    return GitState(commit=commit, dirty=dirty or notebook in (naming.GIT_NOTEBOOK_UNTRACKED, naming.GIT_NOTEBOOK_MODIFIED),
                    branch=branch if branch and branch != "(detached)" else None, notebook=notebook)


def _file_state(path: Path) -> str | None:
    """``untracked`` (ignored counts: git has no copy either), ``modified`` or ``clean``."""
    from .. import naming

    out = _git(["--literal-pathspecs", "status", "--porcelain=v2", "--untracked-files=all", "--ignored=matching",
                "--", path.name], path.parent)
    if out is None:
        return None
    kinds = {line[:1] for line in out.splitlines() if line}
    if kinds & {"?", "!"}:
        return naming.GIT_NOTEBOOK_UNTRACKED
    if kinds & {"1", "2", "u"}:
        return naming.GIT_NOTEBOOK_MODIFIED
    return naming.GIT_NOTEBOOK_CLEAN


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    """Python version and installed distributions (``pip freeze`` style), read once."""
    requirements = "\n".join(sorted(_installed().values())) + "\n"
    python = sys.version.split()[0]
    digest = hashlib.sha256(f"python=={python}\n{requirements}".encode()).hexdigest()
    return Environment(python=python, requirements=requirements, sha256=digest)


def _installed() -> dict[str, str]:
    """``{name: "name==version"}`` for the distributions importable from ``sys.path`` (first wins).

    A wheel's ``name-version.dist-info`` folder names both; parsing every METADATA file
    instead, as ``importlib.metadata`` does, takes a tenth of a second per job kernel.
    Other layouts (``.egg-info``, odd names) are read the slow way.
    """
    from importlib import metadata

    pins: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for folder in names:
            stem, dot, suffix = folder.rpartition(".")
            if suffix not in ("dist-info", "egg-info"):
                continue
            name, dash, version = stem.partition("-")
            if suffix == "egg-info" or not dash or "-" in version:
                try:
                    dist = metadata.PathDistribution(Path(entry or ".", folder))
                    name, version = dist.metadata.get("Name") or "", dist.version or ""
                except Exception:
                    continue
            key = re.sub(r"[-_.]+", "-", name).lower()
            if key and version and key not in pins:
                pins[key] = f"{key}=={version}"
    return pins


def source_tags(notebook: str) -> dict[str, str]:
    """The notebook a run came from, as MLflow's UI shows a run's source."""
    from .. import naming

    return {naming.NOTEBOOK: notebook, naming.MLFLOW_SOURCE_NAME: notebook, naming.MLFLOW_SOURCE_TYPE: "NOTEBOOK"}


def code_tags(notebook: str | None) -> dict[str, str]:
    """The state of the code now: the notebook's content hash, and the git state of its
    repository (of the working folder when there is no notebook file)."""
    from .. import naming

    tags: dict[str, str] = {}
    digest = file_sha256(notebook) if notebook else None
    if digest:
        tags[naming.NOTEBOOK_SHA256] = digest
    git = git_state(notebook if notebook and os.path.exists(notebook) else None)
    if git is not None:
        tags[naming.GIT_COMMIT] = git.commit
        tags[naming.GIT_DIRTY] = str(git.dirty).lower()
        if git.branch:
            tags[naming.GIT_BRANCH] = git.branch
        if git.notebook:
            tags[naming.GIT_NOTEBOOK] = git.notebook
    return tags


def environment_tags() -> tuple[dict[str, str], str]:
    """The Python environment's tags, and the requirements text to attach."""
    from .. import naming

    env = environment()
    return {naming.ENV_SHA256: env.sha256, naming.ENV_PYTHON: env.python}, env.requirements


def lineage_tags(notebook: str | None) -> tuple[dict[str, str], str]:
    """Code and environment tags for a run made now (its source tags go with its start),
    and the requirements text to attach."""
    env, requirements = environment_tags()
    return {**code_tags(notebook), **env}, requirements
