# The two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv with python3 -m venv when it is missing and install what they need.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mlops-magics-installed
PYTEST_ARGS ?=

.PHONY: help venv system-deps test demo bench lab ui clean

help:
	@echo "make demo   set up .venv and run the training notebook as tracked MLflow runs"
	@echo "make test   set up .venv and run the test suite"
	@echo "make bench  measure load time, per-cell and whole-notebook overhead, delivery memory, fingerprint speed against the anchors"
	@echo "make lab    JupyterLab on notebooks/ (same MLflow store)"
	@echo "make ui     the MLflow UI on the local store (sqlite:///mlflow.db)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

# System packages some tests need (a real PostgreSQL server for team mode; Debian's Chromium
# for the widgets in JupyterLab, driven by Playwright, which never downloads a browser of its
# own): installed when missing and we are root; otherwise the tests say what to install.
system-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's postgresql for the team-mode tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "note: team-mode tests need PostgreSQL: sudo apt-get install postgresql"; fi; \
	fi
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: browser tests need Chromium: sudo apt-get install chromium"; fi; \
	fi

test: $(STAMP) system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/mlops-magics demo

bench: $(STAMP)
	$(PY) bench/tracking.py
	$(PY) bench/fingerprint.py
	$(PY) bench/drift.py
	$(PY) bench/sweep.py
	$(PY) bench/real_notebooks.py
	$(PY) bench/delivery.py

lab: $(STAMP)
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/mlflow.db MLOPS_MAGICS_HOME=$(CURDIR)/.mlops_magics \
	  $(VENV)/bin/jupyter lab --notebook-dir=notebooks $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

ui: $(STAMP)
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/mlflow.db $(VENV)/bin/mlops-magics ui

clean:
	rm -rf $(VENV) demo-output mlflow.db mlruns mlartifacts .mlops_magics .pytest_cache
