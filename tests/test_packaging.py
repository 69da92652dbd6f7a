"""The package as users get it: the wheel, its auto-load startup file, a cheap import, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STARTUP = ROOT / "jupyter-config" / "ipython" / "startup" / "50-mlops_magics.py"
BIN = Path(sys.executable).parent


def run(argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300, **kwargs)


LABEXT = "share/jupyter/labextensions/mlops-magics-labextension"
SERVER_CONFIG = "etc/jupyter/jupyter_server_config.d/mlops_magics.json"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel as `python -m build` makes it; the lab extension is built by npm first if missing."""
    out = tmp_path_factory.mktemp("wheel")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # jupyter, for the npm build
    # no isolation: the installed hatchling builds it, offline
    built = run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check",
                 "--outdir", out, ROOT], env=env)
    assert built.returncode == 0, built.stderr[-3000:]
    [found] = out.glob("mlops_magics-*.whl")
    return found


def _install(wheel: Path, venv: Path) -> Path:
    """A fresh venv with the wheel pip-installed; its pip."""
    made = run([sys.executable, "-m", "venv", venv])
    assert made.returncode == 0, made.stderr
    pip = venv / "bin" / "pip"
    # --no-deps --no-index: this checks the wheel's own files and needs no network
    installed = run([pip, "install", "--no-deps", "--no-index", "--disable-pip-version-check", wheel])
    assert installed.returncode == 0, installed.stderr
    return pip


def _uninstall(pip: Path) -> None:
    removed = run([pip, "uninstall", "-y", "--disable-pip-version-check", "mlops-magics"])
    assert removed.returncode == 0, removed.stderr


@pytest.mark.slow
def test_wheel_installs_and_removes_the_ipython_startup_file(wheel, tmp_path):
    venv = tmp_path / "venv"
    pip = _install(wheel, venv)

    startup = venv / "etc" / "ipython" / "startup" / "50-mlops_magics.py"
    assert startup.read_text() == STARTUP.read_text()
    assert (venv / "bin" / "mlops-magics").exists()

    _uninstall(pip)
    assert not startup.exists()
    assert not (venv / "bin" / "mlops-magics").exists()


@pytest.mark.slow
def test_wheel_carries_the_prebuilt_lab_extension_and_the_server_config(wheel):
    import zipfile

    data = f"mlops_magics-{wheel.name.split('-')[1]}.data/data/"
    names = set(zipfile.ZipFile(wheel).namelist())
    lab = {n[len(data) + len(LABEXT) + 1:] for n in names if n.startswith(data + LABEXT + "/")}
    assert "package.json" in lab and "static/style.js" in lab
    assert any(n.startswith("static/remoteEntry.") and n.endswith(".js") for n in lab)
    meta = json.loads(zipfile.ZipFile(wheel).read(f"{data}{LABEXT}/package.json"))
    assert meta["name"] == "mlops-magics-labextension"
    assert meta["jupyterlab"]["_build"]["load"].startswith("static/remoteEntry.")  # built, not the source manifest
    assert data + SERVER_CONFIG in names
    assert not any("node_modules" in n or (n.endswith(".ts") and not n.endswith(".d.ts")) for n in names)
    assert not any(n.startswith("mlops_magics/labextension/") for n in names)  # once, under share/ only


@pytest.mark.slow
def test_wheel_installs_and_removes_the_lab_extension_and_the_server_config(wheel, tmp_path):
    venv = tmp_path / "venv"
    pip = _install(wheel, venv)

    lab = venv / LABEXT
    config = venv / SERVER_CONFIG
    assert json.loads((lab / "package.json").read_text())["name"] == "mlops-magics-labextension"
    assert list((lab / "static").glob("remoteEntry.*.js"))
    assert json.loads(config.read_text())["ServerApp"]["jpserver_extensions"] == {"mlops_magics": True}

    _uninstall(pip)
    assert not (lab / "package.json").exists() and not list(lab.glob("static/*"))
    assert not config.exists()


LOAD_AND_LIST_IMPORTS = textwrap.dedent("""
    import sys
    import mlops_magics
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "mlops_magics")
    assert "track" in shell.magics_manager.magics["cell"], "no %%track after %load_ext"
    heavy = ("mlflow", "pandas", "pyarrow", "sklearn", "ipywidgets", "altair", "papermill")
    print(" ".join(sorted(m for m in heavy if m in sys.modules)))
""")


def test_loading_the_extension_imports_nothing_heavy(tmp_path):
    done = run([sys.executable, "-c", LOAD_AND_LIST_IMPORTS], cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""  # none of mlflow, pandas, widgets ... was imported


HELP_IMPORTS = textwrap.dedent("""
    import sys
    from mlops_magics.cli import main
    try:
        main(sys.argv[1:])
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code
    print("heavy:", " ".join(m for m in ("mlflow", "pandas", "papermill") if m in sys.modules))
""")


@pytest.mark.parametrize("argv", [["--help"], ["runs", "--help"], ["demo", "--help"], ["ui", "--help"]],
                         ids=" ".join)
def test_cli_help(argv, tmp_path):
    done = run([BIN / "mlops-magics", *argv], cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: mlops-magics")
    if argv == ["--help"]:
        for command in ("runs", "demo", "ui"):
            assert f"  {command} " in done.stdout
    light = run([sys.executable, "-c", HELP_IMPORTS, *argv], cwd=tmp_path)
    assert light.returncode == 0, light.stderr
    assert light.stdout.split("heavy:")[-1].strip() == ""  # help never pays for mlflow


def test_cli_version(tmp_path):
    import mlops_magics

    done = run([BIN / "mlops-magics", "--version"], cwd=tmp_path)

    assert done.returncode == 0
    assert mlops_magics.__version__ in done.stdout
    assert os.path.basename(done.stdout.split()[0]) == "mlops-magics,"
