"""The job's MLflow run, recorded from the host that runs the notebook.

The host knows what the kernel cannot see: the notebook file and its hash, the
git state of its repository, the final parameters, papermill's version, how the
run ended. The kernel adds its own environment and the tracked cells' records.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from pathlib import Path
from typing import Any

from .. import naming
from .. import secrets
from ..secrets import MASK, is_secret
from ..journal import records
from ..tracking.lineage import code_tags, source_tags
from ..tracking.values import param_string

log = logging.getLogger("mlops_magics")
CELL_TAG_AFTER_S = 0.5


class JobRecorder:
    """Writes one job run's records through a journal-backed delivery."""

    def __init__(self, delivery, *, experiment: str, notebook: Path, parameters: dict[str, Any],
                 name: str | None = None, parent_key: str | None = None, tags: dict[str, str] | None = None,
                 mask=secrets.mask_text):
        """``mask``: text -> text with the job's secret values masked (``JobSecrets.text``)."""
        self.delivery, self.key = delivery, records.new_key()
        self.experiment, self.notebook, self.parameters = experiment, notebook, parameters
        self.mask = mask
        self.name = mask(name or _default_name(notebook, parameters))
        self.parent_key, self.extra_tags = parent_key, dict(tags or {})
        self._cell_timer: threading.Timer | None = None

    def start(self) -> None:
        import papermill

        notebook = str(self.notebook)
        tags = {naming.KIND: naming.KIND_JOB, **source_tags(notebook), **code_tags(notebook),
                naming.PAPERMILL_VERSION: papermill.__version__, **self.extra_tags}
        params = {naming.sanitize_key(k): (MASK if is_secret(k) else self.mask(param_string(v)))
                  for k, v in self.parameters.items()}
        self.delivery.submit([
            records.start(self.key, experiment=self.experiment, name=self.name, start_ms=records.now_ms(),
                          tags=tags, parent_key=self.parent_key),
            records.log(self.key, params=params),
        ])

    def on_cell(self, index: int, total: int, cell) -> None:
        """Keep the run's tags saying which cell the job is on.

        Told only once the cell has run for ``CELL_TAG_AFTER_S``: the tag is for someone
        watching a long job in MLflow, and a record per quick cell would only keep the
        delivery busy with tags that are stale before MLflow has them.
        """
        first = self.mask((cell.source.strip().splitlines() or [""])[0][:80])
        ops = [records.log(self.key, tags={naming.JOB_CELL: f"{index + 1}/{total} {first}"})]
        self._cancel_cell_tag()
        self._cell_timer = threading.Timer(CELL_TAG_AFTER_S, self.delivery.submit, args=(ops,))
        self._cell_timer.daemon = True
        self._cell_timer.start()

    def _cancel_cell_tag(self) -> None:
        timer, self._cell_timer = self._cell_timer, None
        if timer is not None:
            timer.cancel()

    def end(self, *, failure, output_path: str | None, attempt: int) -> None:
        self._cancel_cell_tag()
        tags = {naming.JOB_ATTEMPT: str(attempt)}
        if output_path:
            tags[naming.JOB_OUTPUT] = output_path
        if failure is not None:
            tags.update({naming.FAILURE: failure.kind, naming.ERROR: naming.clip(self.mask(failure.message), 5000)})
            if failure.cell_index is not None:
                tags[naming.JOB_FAILED_CELL] = str(failure.cell_index)
        ops = [records.log(self.key, tags=tags)]
        ops += _notebook_artifacts(self.key, output_path)
        ops.append(records.end(self.key, status="FINISHED" if failure is None else "FAILED",
                               end_ms=records.now_ms()))
        self.delivery.submit(ops)


def _default_name(notebook: Path, parameters: dict[str, Any]) -> str:
    shown = " ".join(f"{k}={param_string(v)}" for k, v in list(parameters.items())[:4]
                     if not is_secret(k) and len(param_string(v)) <= 20)
    return f"{notebook.stem} {shown}".strip()[:250]


def _notebook_artifacts(key: str, output_path: str | None) -> list[records.Op]:
    """The executed notebook and its HTML rendering, as run artifacts.

    The notebook was masked cell by cell (``JobSecrets.notebook``): masking its JSON text
    here would break the JSON escapes.
    """
    if not output_path or not os.path.exists(output_path):
        return []
    text = Path(output_path).read_text(encoding="utf-8")
    ops = [records.artifact(key, naming.ARTIFACT_JOB_NOTEBOOK, text)]
    try:
        import nbformat

        with _EXPORTER_LOCK:
            body, _ = _html_exporter().from_notebook_node(nbformat.reads(text, as_version=4))
        ops.append(records.artifact(key, naming.ARTIFACT_JOB_HTML, body))
    except Exception:  # an HTML rendering is a convenience, never a reason to lose the run
        log.debug("no HTML rendering of %s", output_path, exc_info=True)
    return ops


_EXPORTER_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _html_exporter():
    """One exporter per process: making one loads its templates (a quarter second of CPU)."""
    from nbconvert import HTMLExporter

    return HTMLExporter()
