"""Turning cell executions into run records. Imports without IPython or MLflow."""
