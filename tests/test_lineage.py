"""Where a run came from: the git state of the notebook's repository, the installed packages,
and the parameters a notebook declares, read without nbformat when it is version 4."""

from __future__ import annotations

import json
import subprocess
from importlib import metadata

import nbformat
import pytest

from mlops_magics.runner.parameters import ParameterError, read_notebook_parameters
from mlops_magics.tracking.lineage import environment, git_state


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args], cwd=cwd, check=True,
                   capture_output=True)


def test_git_state_of_the_notebooks_repository(tmp_path):
    assert git_state(tmp_path) is None  # not a repository
    git(tmp_path, "init", "-q", "-b", "main")
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text("{}")
    assert git_state(notebook) is None  # a repository without a commit yet
    git(tmp_path, "add", "nb.ipynb")
    git(tmp_path, "commit", "-q", "-m", "first")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    state = git_state(notebook)
    assert (state.commit, state.dirty, state.branch) == (head, False, "main")
    (tmp_path / "untracked.txt").write_text("not ours")
    assert git_state(notebook).dirty is False  # untracked files do not make it dirty
    notebook.write_text('{"changed": 1}')
    assert git_state(notebook).dirty is True
    git(tmp_path, "checkout", "-q", "--detach")
    assert git_state(notebook).branch is None


def test_environment_lists_what_importlib_metadata_finds():
    found = {f"{d.metadata['Name'].lower().replace('_', '-').replace('.', '-')}=={d.version}"
             for d in metadata.distributions()}
    env = environment()
    assert set(env.requirements.split()) == found
    assert len(env.sha256) == 64 and env.python.count(".") == 2


def test_parameters_of_version_4_and_older_notebooks(tmp_path):
    v4 = tmp_path / "v4.ipynb"
    v4.write_text(json.dumps({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3"}},
        "cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "outputs": [],
                   "execution_count": None, "source": ["n = 3  # how many\n", "rate = 0.5"]}]}))
    nb, declared = read_notebook_parameters(v4)
    assert {p.name: (p.default, p.type_name, p.help) for p in declared.values()} == {
        "n": (3, "int", "how many"), "rate": (0.5, "float", "")}
    assert nb.metadata["kernelspec"]["name"] == "python3"

    cell = nbformat.v4.new_code_cell("alpha = 1.5", metadata={"tags": ["parameters"]})
    old = tmp_path / "v3.ipynb"
    old.write_text(nbformat.writes(nbformat.v4.new_notebook(cells=[cell]), version=3))
    assert json.loads(old.read_text())["nbformat"] == 3
    _, declared = read_notebook_parameters(old)  # converted by nbformat
    assert declared["alpha"].default == 1.5

    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"nbformat": 4, "cells": [')
    with pytest.raises(ParameterError, match="broken.ipynb is not a readable notebook"):
        read_notebook_parameters(broken)
    with pytest.raises(ParameterError, match="no notebook at"):
        read_notebook_parameters(tmp_path / "missing.ipynb")
