"""``mlops-magics demo`` / ``make demo``: the training notebook as tracked MLflow runs.

Executes ``notebooks/train.ipynb`` in a real kernel with papermill, once per value of
``C``, then reads back from MLflow what those executions recorded and prints it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from .errors import MlopsError

DEFAULT_PARAMETERS: tuple[dict[str, object], ...] = ({"C": 0.1}, {"C": 1.0}, {"C": 10.0})
_DIGEST_CHARS = 8


class DemoError(MlopsError):
    """The demo could not run (notebook missing, a cell failed, nothing recorded)."""


def demo_notebook() -> Path:
    """``notebooks/train.ipynb`` of the source tree (or of the working directory)."""
    for root in (Path(__file__).resolve().parents[1], Path.cwd()):
        path = root / "notebooks" / "train.ipynb"
        if path.is_file():
            return path
    raise DemoError("notebooks/train.ipynb not found: the demo runs from a clone of the "
                    "mlops-magics repository (make demo)")


def run_demo(output_dir: str | os.PathLike = "demo-output", *,
             parameters: Sequence[Mapping[str, object]] = DEFAULT_PARAMETERS,
             echo: Callable[[str], object] = print, progress: bool = True) -> list:
    """Execute the training notebook once per entry of ``parameters`` and print its runs.

    Parameters
    ----------
    output_dir
        Folder for the executed copies (``train-C0.1.ipynb``, ...), created if missing.
    parameters
        One mapping of papermill parameters per execution.
    echo
        Where the report goes, one line per call.
    progress
        Show papermill's progress bar over the cells.

    Returns
    -------
    list of mlflow.entities.Run
        The tracked cell runs recorded, in execution order.

    The kernel runs in the working directory and records into the same store as
    ``%%track`` would there: ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``.
    """
    from . import locations

    notebook = demo_notebook()
    out_dir = Path(output_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    uri, experiment = locations.tracking_uri(), locations.experiment_name()
    echo(f"Running {_rel(notebook)} {len(parameters)} times; runs go to experiment "
         f"{experiment!r} at {locations.display_uri(uri)}")
    recorded: list[tuple[str, list]] = []
    for i, params in enumerate(parameters, 1):
        label = " ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
        output = out_dir / f"train-{_slug(params)}.ipynb"
        echo(f"[{i}/{len(parameters)}] {label} -> {_rel(output)}")
        since = _now_ms()
        _execute(notebook, output, params, uri=uri, progress=progress, desc=label)
        recorded.append((label, _recorded_runs(uri, experiment, notebook, since)))
    runs = [r for _, group in recorded for r in group]
    if not runs:
        raise DemoError(f"the notebook ran but no tracked runs reached {locations.display_uri(uri)}; "
                        f"see the last cell of the notebooks in {_rel(out_dir)}")
    echo("")
    echo(repr(_table(recorded)))
    echo("data: name and fingerprint (-> written by the cell, else read); equal digests, identical content")
    echo("")
    echo(f"{len(runs)} tracked runs recorded. Look further:")
    for what, why in ((_ui_command(notebook), "the MLflow UI on this store, at http://127.0.0.1:5000"),
                      ("mlops-magics runs", "the latest tracked runs, from the command line"),
                      (f"{_rel(out_dir)}/", "the executed notebooks, with each run's summary under its cell")):
        echo(f"  {what:<22} {why}")
    return runs


def _ui_command(notebook: Path) -> str:
    """``make ui`` where the Makefile's store is this one, else the command that resolves it."""
    from . import locations

    default = not os.environ.get(locations.TRACKING_URI_ENV, "").strip()
    return "make ui" if default and Path.cwd().resolve() == notebook.parents[1] else "mlops-magics ui"


def _execute(notebook: Path, output: Path, params: Mapping[str, object], *, uri: str,
             progress: bool, desc: str) -> None:
    import papermill as pm

    env = {"MLOPS_MAGICS_NOTEBOOK": str(notebook), "MLFLOW_TRACKING_URI": uri}
    try:
        with _environment(env):  # the kernel inherits this process's environment
            pm.execute_notebook(
                str(notebook), str(output), parameters=dict(params), kernel_name="python3",
                cwd=str(Path.cwd()), progress_bar={"desc": desc} if progress else False,
                # the kernel's start-up chatter would break the progress bar; errors still show
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
    except pm.PapermillExecutionError as exc:
        raise DemoError(f"{_rel(notebook)} failed in cell {exc.exec_count} with {exc.ename}: {exc.evalue} "
                        f"(executed copy: {_rel(output)})") from None


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _recorded_runs(uri: str, experiment: str, notebook: Path, since_ms: int) -> list:
    """Tracked cell runs of ``notebook`` started since ``since_ms``, oldest first."""
    from mlflow import MlflowClient

    from . import naming

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    found = client.search_runs(
        [exp.experiment_id],
        f"tags.`{naming.KIND}` = '{naming.KIND_CELL}' and attributes.start_time >= {since_ms}",
        order_by=["attributes.start_time ASC"], max_results=1000)
    return [r for r in found if r.data.tags.get(naming.NOTEBOOK) == str(notebook)]


def _table(recorded: list[tuple[str, list]]):
    from .display import Table

    rows = []
    for label, group in recorded:
        for run in group:
            rows.append([label, run.info.run_name or "", run.info.status, run.info.run_id[:_DIGEST_CHARS],
                         _params(run), _metrics(run), _datasets(run)])
    return Table(["execution", "cell run", "status", "run id", "params", "metrics", "data (digest)"],
                 rows, caption="Tracked runs recorded by the demo")


def _params(run) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(run.data.params.items()))


def _metrics(run) -> str:
    shown = {k: v for k, v in run.data.metrics.items() if not k.startswith("system.")}
    return " ".join(f"{k}={v:.4f}" if isinstance(v, float) and not v.is_integer() else f"{k}={v:g}"
                    for k, v in sorted(shown.items()))


def _datasets(run) -> str:
    from . import naming

    items = []
    for di in run.inputs.dataset_inputs if run.inputs else []:
        context = {t.key: t.value for t in di.tags}.get(naming.DATASET_CONTEXT_TAG)
        arrow = "->" if context == naming.CONTEXT_OUTPUT else ""
        digest = di.dataset.digest.split(":", 1)[-1]  # without the algorithm prefix
        items.append(f"{arrow}{di.dataset.name} {digest[:_DIGEST_CHARS]}")
    return ", ".join(items)


def _slug(params: Mapping[str, object]) -> str:
    text = "-".join(f"{k}{v}" for k, v in params.items()) or "defaults"
    return "".join(c if c.isalnum() or c in ".-_" else "_" for c in text)


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _now_ms() -> int:
    import time

    return int(time.time() * 1000) - 1  # cell runs start after this, on the same clock
