"""Fan-out of sweep points onto Dask worker processes (local cluster or a given scheduler)."""
