"""How a notebook job ends: which kind of failure, its exit code, the banner in the output.

papermill marks a failing cell with a banner but records a timeout as if it
succeeded and writes no banner for a dead kernel; here all three are told apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import naming
from ..errors import first_line

# Exit codes of `mlops-magics run`, one per kind of failure (documented in --help).
EXIT_CODES = {None: 0, naming.FAILURE_ERROR: 1, naming.FAILURE_TIMEOUT: 124, naming.FAILURE_KERNEL_DIED: 138}
BANNER_TAG = "mlops-failure-banner"


@dataclass
class Failure:
    kind: str  # error | timeout | kernel_died
    message: str  # "Name: message"
    cell_index: int | None


def classify(exc: BaseException, current_cell: int | None) -> Failure:
    """Turn what papermill / nbclient raised into a Failure."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return Failure(naming.FAILURE_ERROR, f"{exc.ename}: {exc.evalue}", exc.cell_index)
    if isinstance(exc, CellTimeoutError):
        return Failure(naming.FAILURE_TIMEOUT, f"CellTimeoutError: {first_line(exc)}", current_cell)
    if isinstance(exc, DeadKernelError):
        return Failure(naming.FAILURE_KERNEL_DIED, f"DeadKernelError: {first_line(exc)}", current_cell)
    return Failure(naming.FAILURE_ERROR, f"{type(exc).__name__}: {first_line(exc)}", current_cell)


def add_banner(path: str, failure: Failure) -> None:
    """Put a visible banner at the top of the saved output notebook (papermill's own for errors)."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return
    if failure.kind == naming.FAILURE_ERROR and any(
            "papermill-error-cell-tag" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        return  # papermill already marked it
    where = f" at cell {failure.cell_index}" if failure.cell_index is not None else ""
    what = {naming.FAILURE_TIMEOUT: "timed out", naming.FAILURE_KERNEL_DIED: "lost its kernel"}.get(
        failure.kind, "failed")
    text = (f'<span style="color:red;font-family:monospace">This job {what}{where}: '
            f"{_escape(failure.message)}</span>")
    banner = nbformat.v4.new_markdown_cell(text, metadata={"tags": [BANNER_TAG]})
    nb.cells.insert(0, banner)
    nbformat.write(nb, path)


def _escape(text: str) -> str:
    import html

    return html.escape(text)
