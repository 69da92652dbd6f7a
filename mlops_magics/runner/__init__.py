"""Notebook jobs: papermill runs a notebook as one MLflow run (``mlops.kind=job``)."""
