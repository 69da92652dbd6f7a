"""How ``mlops-magics ui`` opens an experiment in the MLflow UI: its model-training view, the
runs table with the columns a tracked notebook fills in.

MLflow 3's UI opens an experiment in its GenAI view unless the experiment is tagged
``mlflow.experimentKind=custom_model_development`` (or the ``workflowType=machine_learning``
query parameter says so, for UIs with the workspace switch). Its runs table can be given a
saved layout: an experiment tag ``mlflow.sharedViewState.<key>`` holding the table state as
JSON, opened with ``?viewStateShareKey=<key>``. This module writes both: tracked cells and
jobs as flat rows (session runs, which only group cells, filtered out), newest first, with
the metrics and params those runs logged as columns.
"""

from __future__ import annotations

import json

from .. import naming

MAX_METRIC_COLUMNS = 8
MAX_PARAM_COLUMNS = 8
_RECENT_RUNS = 50


def prepare(client, experiment: str) -> str | None:
    """Tag ``experiment`` for the model-training view and save the runs-table layout; returns
    its id, or None when the store has no such experiment yet."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    if naming.MLFLOW_EXPERIMENT_KIND not in exp.tags:  # a kind the user chose stays
        client.set_experiment_tag(exp.experiment_id, naming.MLFLOW_EXPERIMENT_KIND,
                                  naming.EXPERIMENT_KIND_MODEL_TRAINING)
    client.set_experiment_tag(exp.experiment_id, naming.MLFLOW_SHARED_VIEW + naming.UI_VIEW_KEY,
                              json.dumps(view_state(_recent(client, exp.experiment_id))))
    return exp.experiment_id


def view_state(runs: list) -> dict:
    """The runs table's state: filter, order and columns (``metrics.`f1```, ``params.`C```)."""
    metrics: dict[str, None] = {}
    params: dict[str, None] = {}
    for r in runs:
        metrics.update(dict.fromkeys(k for k in sorted(r.data.metrics) if not k.startswith(naming.SYSTEM_PREFIX)))
        params.update(dict.fromkeys(sorted(r.data.params)))
    first = [k for k in ("f1", naming.metric_baseline("f1"), "r2", naming.metric_baseline("r2")) if k in metrics]
    ordered = first + [k for k in metrics if k not in first]
    columns = ["attributes.`Duration`", "attributes.`Models`", "attributes.`Dataset`",
               _column("tags", naming.KIND)]
    columns += [_column("metrics", k) for k in ordered[:MAX_METRIC_COLUMNS]]
    columns += [_column("params", k) for k in list(params)[:MAX_PARAM_COLUMNS]]
    return {"searchFilter": f"tags.`{naming.KIND}` != '{naming.KIND_SESSION}'",
            "orderByKey": "attributes.start_time", "orderByAsc": False,
            "selectedColumns": columns, "runsExpanded": {}, "viewMaximized": False}


def url(base: str, experiment_id: str | None) -> str:
    """The runs page of the experiment in the model-training view, with the saved layout."""
    base = base.rstrip("/")
    if experiment_id is None:
        return f"{base}/#/experiments?workflowType=machine_learning"
    return (f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
            f"&viewStateShareKey={naming.UI_VIEW_KEY}")


def _column(kind: str, key: str) -> str:
    return f"{kind}.`{key}`"  # the UI's canonical column key


def _recent(client, experiment_id: str) -> list:
    found = []
    for kind in (naming.KIND_CELL, naming.KIND_JOB):  # MLflow's filter has no IN for tags
        found += client.search_runs([experiment_id], f"tags.`{naming.KIND}` = '{kind}'",
                                    max_results=_RECENT_RUNS, order_by=["attributes.start_time DESC"])
    found.sort(key=lambda r: r.info.start_time or 0, reverse=True)
    return found[:_RECENT_RUNS]
