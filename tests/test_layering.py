"""The architecture of ARCHITECTURE.md, checked: what each layer may import, and that the
library layers import without IPython, ipywidgets, Altair or mlflow (each in a fresh process)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlops_magics"

# Shared facts at the top level: they import only each other.
SHARED = {"errors", "naming", "locations", "secrets", "processes", "sqlite_files", "_current", "display", "api"}
LIBRARY = ("fingerprints", "journal", "store_read", "monitoring", "models", "tracking", "runner", "schedules")
PRESENTATION = ("widgets", "magics", "cli", "jupyter", "demo")

# Each layer and what it may import besides the shared facts (ARCHITECTURE.md, "What may import what").
ALLOWED: dict[str, set[str]] = {
    "fingerprints": set(),
    "journal": set(),
    "store_read": {"journal"},
    "monitoring": {"fingerprints", "store_read"},
    "models": {"fingerprints", "journal", "store_read", "monitoring"},
    "tracking": {"fingerprints", "journal", "monitoring", "models", "store_read"},
    "runner": {"journal", "tracking", "store_read", "monitoring"},
    "schedules": {"journal", "runner", "store_read"},
    "widgets": {"monitoring", "store_read", "models"},
    "magics": {*LIBRARY, "widgets"},
    "jupyter": {*LIBRARY},
    "demo": {*LIBRARY, "widgets"},
    "cli": {*LIBRARY, "demo"},
}
FORBIDDEN_IN_LIBRARY = ("IPython", "ipywidgets", "altair", "mlflow")
# Entry points of child processes, never imported by the library: they load heavy stacks on purpose.
CHILD_PROCESS_MODULES = {
    "mlops_magics.runner.fanout.worker_preload",  # the sweep workers' fork server preloads papermill's stack
}


def _layer(module: str) -> str:
    parts = module.split(".")
    return "(package)" if len(parts) == 1 else parts[1]


def _imports(path: Path, module: str) -> set[str]:
    """Every mlops_magics module ``path`` imports, at the top or inside functions
    (``if TYPE_CHECKING:`` blocks excluded: they never run)."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                found |= {f"{target}.{a.name}" for a in node.names} if not node.module else {target}
            elif node.module and node.module.startswith("mlops_magics"):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mlops_magics")}
    return found


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        yield path, ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_layer_imports_only_what_the_architecture_allows():
    layers = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert layers - set(ALLOWED) == set(), f"a new folder needs its row in ALLOWED and ARCHITECTURE.md: {layers - set(ALLOWED)}"
    wrong = []
    for path, module in _modules():
        own = _layer(module)
        if own == "(package)":
            continue
        may = ALLOWED.get(own, set()) | SHARED | {own} if own not in SHARED else SHARED
        for target in _imports(path, module):
            other = _layer(target)
            if other not in may and other != "(package)" and other not in ("__version__",):
                wrong.append(f"{module} imports {target} ({own} -> {other})")
    assert wrong == []


def test_architecture_md_names_every_layer():
    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text()
    for layer in (*LIBRARY, *PRESENTATION):
        assert f"`{layer}" in text, f"ARCHITECTURE.md does not describe {layer}"


@pytest.mark.parametrize("layer", ["(package)", *LIBRARY])
def test_a_library_layer_imports_without_ipython_widgets_altair_or_mlflow(layer):
    code = (
        "import importlib, pkgutil, sys\n"
        "import mlops_magics\n"
        f"name = {layer!r}\n"
        "if name != '(package)':\n"
        "    pkg = importlib.import_module('mlops_magics.' + name)\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        f"        if m.name not in {sorted(CHILD_PROCESS_MODULES)!r}:\n"
        "            importlib.import_module(m.name)\n"
        f"print(sorted(f for f in {FORBIDDEN_IN_LIBRARY!r} if f in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"importing {layer} brought in {out.stdout.strip()}"
