"""How a notebook job ends: which kind of failure, its exit code, the banner in the output.

papermill marks a failing cell with a banner but records a timeout as if it
succeeded and writes no banner for a dead kernel; here all three are told apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import naming
from ..errors import first_line

# Exit codes of `mlops-magics run`, one per kind of failure (documented in --help).
EXIT_CODES = {None: 0, naming.FAILURE_ERROR: 1, naming.FAILURE_TIMEOUT: 124, naming.FAILURE_KERNEL_DIED: 138,
              naming.FAILURE_INTERRUPTED: 130}
BANNER_TAG = "mlops-failure-banner"
INJECTED_TAG = "injected-parameters"  # papermill's tag on the cell it adds
_PAPERMILL_MARKER_TAG = "papermill-error-cell-tag"  # papermill drops these from the input


class JobInterrupted(KeyboardInterrupt):
    """A job (or sweep) stopped by SIGINT or SIGTERM, after its run was ended ``interrupted``.

    A ``KeyboardInterrupt``, so whoever stops on one still stops; ``result`` says how the
    job's run was recorded (None for a sweep, or when no run was started).
    """

    def __init__(self, message: str = "interrupted", result=None) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class Failure:
    kind: str  # error | timeout | kernel_died
    message: str  # "Name: message"
    cell_index: int | None


def classify(exc: BaseException, current_cell: int | None, replies: dict[int, dict] | None = None) -> Failure:
    """Turn what papermill / nbclient raised into a Failure.

    ``replies``: the kernel's error replies by cell index. A failing magic prints its
    ``UsageError`` instead of raising it as an error output, and papermill then reports
    only ``CellExecutionError``; the kernel's reply still names the real error.
    """
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, KeyboardInterrupt):
        what = str(exc) or "interrupted"
        return Failure(naming.FAILURE_INTERRUPTED, f"{type(exc).__name__}: {what}", current_cell)
    if isinstance(exc, PapermillExecutionError):
        reply = (replies or {}).get(exc.cell_index) or {}
        if reply.get("ename") and (exc.ename == "CellExecutionError" or not exc.evalue):
            return Failure(naming.FAILURE_ERROR, f"{reply['ename']}: {reply.get('evalue', '')}", exc.cell_index)
        return Failure(naming.FAILURE_ERROR, f"{exc.ename}: {exc.evalue}", exc.cell_index)
    if isinstance(exc, CellTimeoutError):
        return Failure(naming.FAILURE_TIMEOUT, f"CellTimeoutError: {first_line(exc)}", current_cell)
    if isinstance(exc, DeadKernelError):
        return Failure(naming.FAILURE_KERNEL_DIED, f"DeadKernelError: {first_line(exc)}", current_cell)
    return Failure(naming.FAILURE_ERROR, f"{type(exc).__name__}: {first_line(exc)}", current_cell)


def read_output(path: str):
    """The executed notebook at ``path``, or None when there is none to read (not written, not JSON)."""
    import nbformat

    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return None


def add_banner(path: str, failure: Failure) -> None:
    """Put a visible banner at the top of the saved output notebook (papermill's own for errors)."""
    import nbformat

    nb = read_output(path)
    if nb is None:
        return
    if failure.kind == naming.FAILURE_ERROR and any(
            "papermill-error-cell-tag" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        return  # papermill already marked it
    where = f" at cell {failure.cell_index}" if failure.cell_index is not None else ""
    what = {naming.FAILURE_TIMEOUT: "timed out", naming.FAILURE_KERNEL_DIED: "lost its kernel",
            naming.FAILURE_INTERRUPTED: "was interrupted"}.get(failure.kind, "failed")
    text = (f'<span style="color:red;font-family:monospace">This job {what}{where}: '
            f"{_escape(failure.message)}</span>")
    banner = nbformat.v4.new_markdown_cell(text, metadata={"tags": [BANNER_TAG]})
    nb.cells.insert(0, banner)
    nbformat.write(nb, path)


def input_indices(input_cells, executed_cells) -> list[int | None]:
    """For each cell of the executed notebook, its index in the input notebook (None: added).

    papermill drops its old error markers from the input and adds (or replaces) the
    injected parameters cell; a user counts cells in the notebook as written.
    """
    kept = [i for i, c in enumerate(input_cells) if _PAPERMILL_MARKER_TAG not in _tags(c)]
    out: list[int | None] = []
    j = 0
    for cell in executed_cells:
        replaces = j < len(kept) and INJECTED_TAG in _tags(input_cells[kept[j]])
        if INJECTED_TAG in _tags(cell) and not replaces or j >= len(kept):
            out.append(None)
            continue
        out.append(kept[j])
        j += 1
    return out


def _tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", []) or []


def _escape(text: str) -> str:
    import html

    return html.escape(text)
