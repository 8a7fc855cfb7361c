# Two entry points: `make study` (install + the whole study) and `make test` (install + tests).
# VENV may point elsewhere (CI uses a fresh one). torch is pinned here to the CPU build.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
ECG_MITDB_DIR ?=
STUDY_ARGS ?=
SEED_WEIGHTS ?= ../shared/seed/ecg_cnn.pth

.PHONY: install study test lint notebook

$(VENV)/.installed: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -r requirements.txt -e ".[test,notebook]"
	touch $@

install: $(VENV)/.installed

study: install
	$(PY) -m ecg_utils run $(if $(ECG_MITDB_DIR),--mitdb-dir $(ECG_MITDB_DIR),) \
		$(if $(wildcard $(SEED_WEIGHTS)),--seed-weights $(SEED_WEIGHTS),) $(STUDY_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: install lint
	$(PY) -m pytest -q

notebook: install
	$(PY) tools/build_notebook.py
	$(PY) tools/run_notebook.py ecg_classification.ipynb
