"""``python -m mlops_magics.models.load_check MODEL_URI``: load a model from MLflow in this fresh
process and predict on its own input example; print one JSON line ``{"ok": ..., "detail": ...}``.

``promote`` runs it as a subprocess: a model that only works in the kernel that trained it
(state lost in pickling, a class or module that exists only there) fails here, as it would
in serving. The tracking URI comes from ``$MLFLOW_TRACKING_URI``.
"""

from __future__ import annotations

import json
import sys


def check(model_uri: str) -> dict:
    import warnings

    warnings.filterwarnings("ignore")
    import mlflow.artifacts
    import mlflow.pyfunc
    from mlflow.models import Model

    try:
        local = mlflow.artifacts.download_artifacts(model_uri)
        example = Model.load(local).load_input_example(local)
        model = mlflow.pyfunc.load_model(local)
    except Exception as exc:
        return {"ok": False, "detail": f"does not load in a fresh process: {_line(exc)}"}
    if example is None:
        return {"ok": True, "detail": "loads in a fresh process (no input example to predict on)"}
    try:
        predicted = model.predict(example)
        rows = len(predicted)
    except Exception as exc:
        return {"ok": False, "detail": f"loads but fails to predict on its input example: {_line(exc)}"}
    return {"ok": True, "detail": f"loads in a fresh process and predicts {rows} rows of its input example"}


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


if __name__ == "__main__":
    print(json.dumps(check(sys.argv[1])))
