"""The local journal: every record lands here durably first, then a flusher delivers it to MLflow.

Imports without mlflow; only the writer imports it, in the flusher's thread.
"""
