# The two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv with python3 -m venv when it is missing and install what they need.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mlops-magics-installed
LABEXT := mlops_magics/labextension/package.json
LABEXT_LINK := $(VENV)/share/jupyter/labextensions/mlops-magics-labextension
PYTEST_ARGS ?=

.PHONY: help venv system-deps labext test demo bench lab ui clean

help:
	@echo "make demo   set up .venv and run the whole loop: tracked training, a sweep, schedules, drift, retrain, promotion"
	@echo "make test   set up .venv and run the test suite"
	@echo "make bench  measure load time, per-cell and whole-notebook overhead, delivery memory, fingerprint speed against the anchors"
	@echo "make lab    JupyterLab on notebooks/ (same MLflow store)"
	@echo "make ui     the MLflow UI on the local store (sqlite:///mlflow.db)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	SKIP_JUPYTER_BUILDER=1 $(PY) -m pip install --quiet -e '.[test]'  # labext builds the lab extension
	@touch $(STAMP)

venv: $(STAMP)

# The JupyterLab extension (labextension/): npm installs the lockfile's exact versions, JupyterLab's
# own builder writes mlops_magics/labextension/, and .venv links to it so `make lab` and the browser
# tests load what this tree builds. Rebuilt only when its sources change.
labextension/node_modules/.package-lock.json: labextension/package-lock.json
	cd labextension && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(LABEXT): labextension/node_modules/.package-lock.json labextension/package.json labextension/tsconfig.json \
           $(wildcard labextension/src/*.ts labextension/style/*) | $(STAMP)
	cd labextension && rm -f tsconfig.tsbuildinfo && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npm run build
	@touch $@

labext: $(LABEXT)
	@mkdir -p $(dir $(LABEXT_LINK))
	@[ -L $(LABEXT_LINK) ] || { rm -rf $(LABEXT_LINK); ln -s $(CURDIR)/mlops_magics/labextension $(LABEXT_LINK); }
	@# the server extension's config, as a wheel installs it (an editable install may not copy shared-data)
	@mkdir -p $(VENV)/etc/jupyter/jupyter_server_config.d
	@cp jupyter-config/jupyter_server_config.d/mlops_magics.json $(VENV)/etc/jupyter/jupyter_server_config.d/

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

test: $(STAMP) labext system-deps
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
	$(PY) bench/history.py
	$(PY) bench/validate.py
	$(PY) bench/cli_errors.py

lab: $(STAMP) labext
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/mlflow.db MLOPS_MAGICS_HOME=$(CURDIR)/.mlops_magics \
	  $(VENV)/bin/jupyter lab --notebook-dir=notebooks $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

ui: $(STAMP)
	MLFLOW_TRACKING_URI=sqlite:///$(CURDIR)/mlflow.db $(VENV)/bin/mlops-magics ui

clean:
	rm -rf $(VENV) demo-output mlflow.db mlruns mlartifacts .mlops_magics .pytest_cache \
	  labextension/node_modules labextension/lib labextension/tsconfig.tsbuildinfo mlops_magics/labextension
