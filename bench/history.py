"""History reads: ``mlflow.search_runs`` next to mlops-magics' cached read of the same experiment.

Run: .venv/bin/python bench/history.py [--runs 10000] [--repeat 3]

Builds a SQLite store with ``runs`` runs in experiment ``bench`` (and 500 in another), each
with 6 params, 5 metrics (two ``system.*``), 7 tags and a dataset input, inserted in bulk into
the tables of MLflow's own SQLAlchemy store models. Each timing is in a fresh process (best of ``repeat``):

- anchor: ``mlflow.search_runs(experiment_names=["bench"])`` (the call; ``import mlflow`` apart);
- ours cold: ``Store(uri).history_frame("bench")`` with no cache (first read: everything);
- ours warm: the same with the cache of the previous read (only what changed is read);
- ours warm after 20 new runs and a metric logged to an old running run (incremental).

Also ``runs_frame`` (the same columns and values as ``search_runs``) cold and warm. Each of
ours also checks that mlflow never entered the process. Ratios are the anchor's time over ours.
Never asserted in tests: machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from _timing import fresh_python

ANCHOR = """
import json, sys, time
t0 = time.perf_counter()
import mlflow
t1 = time.perf_counter()
mlflow.set_tracking_uri(sys.argv[1])
frame = mlflow.search_runs(experiment_names=["bench"])
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "call": t2 - t1, "rows": len(frame)}))
"""

OURS = """
import json, sys, time
t0 = time.perf_counter()
import pandas
from mlops_magics.store_read import Store
t1 = time.perf_counter()
frame = getattr(Store(sys.argv[1]), sys.argv[2])("bench")
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "call": t2 - t1, "rows": len(frame), "mlflow": "mlflow" in sys.modules}))
"""


def make_store(path: Path, runs: int) -> str:
    """A SQLite store with ``runs`` runs in ``bench``, written in bulk through MLflow's store models."""
    import logging

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{path}"
    store = SqlAlchemyStore(uri, str(path.parent / "artifacts"))
    bench = store.create_experiment("bench")
    other = store.create_experiment("other")
    add_runs(store, bench, runs, start_ms=1_700_000_000_000, running_every=1000)
    add_runs(store, other, 500, start_ms=1_700_000_000_000)
    store.engine.dispose()
    return uri


def add_runs(store, experiment_id: str, count: int, start_ms: int, running_every: int = 0) -> list[str]:
    """``count`` runs inserted in one transaction into the tables of MLflow's own store models."""
    from mlflow.store.tracking.dbmodels import models as m

    exp = int(experiment_id)
    rows: dict = {t: [] for t in (m.SqlDataset, m.SqlRun, m.SqlParam, m.SqlMetric, m.SqlLatestMetric, m.SqlTag,
                                  m.SqlInput, m.SqlInputTag)}
    datasets = [uuid.uuid4().hex for _ in range(20)]
    rows[m.SqlDataset] = [dict(dataset_uuid=d, experiment_id=exp, name="X_train", digest=d[:8],
                               dataset_source_type="code", dataset_source="{}") for d in datasets]
    ids = []
    for i in range(count):
        run_id, t = uuid.uuid4().hex, start_ms + i * 60_000
        running = bool(running_every) and i % running_every == 0
        ids.append(run_id)
        rows[m.SqlRun].append(dict(run_uuid=run_id, name=f"cell {i}", source_type="LOCAL", source_name="nb.ipynb",
                                   entry_point_name="", user_id="bench", status="RUNNING" if running else "FINISHED",
                                   start_time=t, end_time=None if running else t + 5_000, source_version="",
                                   lifecycle_stage="active", artifact_uri=f"/tmp/artifacts/{run_id}",
                                   experiment_id=exp, deleted_time=None))
        params = {"alpha": str(i % 7), "n_estimators": str(100 + i % 5), "model": "forest", "seed": "0",
                  "max_depth": str(i % 9), "cv": "5"}
        rows[m.SqlParam] += [dict(key=k, value=v, run_uuid=run_id) for k, v in params.items()]
        metrics = {"f1": (i % 100) / 100, "accuracy": 0.5 + (i % 50) / 100, "loss": 1.0 / (1 + i),
                   "system.cell.wall_s": 1.5, "system.cell.cpu_s": 1.2}
        for k, v in metrics.items():
            point = dict(key=k, value=v, timestamp=t, step=0, is_nan=False, run_uuid=run_id)
            rows[m.SqlMetric].append(point)
            rows[m.SqlLatestMetric].append(point)
        tags = {"mlops.kind": "cell", "mlflow.runName": f"cell {i}", "mlflow.user": "bench",
                "mlflow.source.name": "nb.ipynb", "mlflow.source.type": "LOCAL", "mlops.cell": str(i % 30),
                "mlops.notebook": "nb.ipynb"}
        rows[m.SqlTag] += [dict(key=k, value=v, run_uuid=run_id) for k, v in tags.items()]
        input_id = uuid.uuid4().hex
        rows[m.SqlInput].append(dict(input_uuid=input_id, source_type="DATASET", source_id=datasets[i % 20],
                                     destination_type="RUN", destination_id=run_id, step=0))
        rows[m.SqlInputTag].append(dict(input_uuid=input_id, name="mlflow.data.context", value="input"))
    with store.ManagedSessionMaker() as session:
        for model, values in rows.items():
            if values:
                session.execute(model.__table__.insert(), values)
    return ids


def timed(script: str, *args: str, repeat: int, env: dict | None = None, before=None) -> dict:
    best = None
    for _ in range(repeat):
        if before:
            before()
        got = json.loads(fresh_python(script, *args, env=env))
        if best is None or got["call"] < best["call"]:
            best = got
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import os

    work = Path(tempfile.mkdtemp(prefix="mlops-bench-history-"))
    env = {**os.environ, "MLOPS_MAGICS_HOME": str(work / "home")}
    cache = work / "home" / "runs-cache"
    try:
        started = time.perf_counter()
        uri = make_store(work / "mlflow.db", args.runs)
        print(f"store: {args.runs:,} runs in 'bench' (+500 elsewhere), made in {time.perf_counter() - started:.1f} s")
        anchor = timed(ANCHOR, uri, repeat=args.repeat)
        print(f"anchor  mlflow.search_runs            {anchor['call']:7.3f} s  ({anchor['rows']:,} rows; "
              f"import mlflow {anchor['import']:.2f} s more)")
        wipe = lambda: shutil.rmtree(cache, ignore_errors=True)  # noqa: E731
        for method in ("history_frame", "runs_frame"):
            cold = timed(OURS, uri, method, repeat=args.repeat, env=env, before=wipe)
            warm = timed(OURS, uri, method, repeat=args.repeat, env=env)
            for label, got in (("cold", cold), ("warm", warm)):
                print(f"ours    {method:13s} {label}       {got['call']:7.3f} s  ({got['rows']:,} rows)  "
                      f"x{anchor['call'] / got['call']:.1f} faster  mlflow imported: {got['mlflow']}")
        _incremental(uri, env, anchor, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _incremental(uri: str, env: dict, anchor: dict, repeat: int) -> None:
    """20 new runs and a metric on a running run, then a warm read (history_frame)."""
    import sqlite3

    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(uri, "/tmp/artifacts")
    bench = store.get_experiment_by_name("bench").experiment_id
    add_runs(store, bench, 20, start_ms=int(time.time() * 1000))
    store.engine.dispose()
    with sqlite3.connect(uri[len("sqlite:///"):]) as db:
        (run_id,) = db.execute("SELECT run_uuid FROM runs WHERE status = 'RUNNING' LIMIT 1").fetchone()
        db.execute("UPDATE latest_metrics SET value = 0.99, timestamp = ? WHERE run_uuid = ? AND key = 'f1'",
                   (int(time.time() * 1000), run_id))
    got = timed(OURS, uri, "history_frame", repeat=1, env=env)
    print(f"ours    history_frame after 20 new runs {got['call']:7.3f} s  ({got['rows']:,} rows)  "
          f"x{anchor['call'] / got['call']:.1f} faster  mlflow imported: {got['mlflow']}")


if __name__ == "__main__":
    main()
