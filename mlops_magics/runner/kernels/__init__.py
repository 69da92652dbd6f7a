"""Jupyter kernels for jobs: a fork server that imports the heavy modules once, and its provisioner."""
