# Two entry points: `make study` (install + the whole study) and `make test` (install + tests).
# VENV may point elsewhere (CI uses a fresh one). torch is pinned here to the CPU build.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
ECG_MITDB_DIR ?=
STUDY_ARGS ?=
SEED_WEIGHTS ?= ../shared/seed/ecg_cnn.pth
QUICK ?=
REUSE ?=
DEVICE ?= auto

.PHONY: install study test lint notebook

$(VENV)/.installed: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -r requirements.txt -e ".[test,notebook]"
	touch $@

install: $(VENV)/.installed

# `make study` says what it will train and how long that takes here, then runs it;
# QUICK=1: a smoke run (1 epoch per model) into study-quick/; REUSE=1: keep the
# committed results whose configuration and data match; DEVICE=cuda|mps|cpu|auto.
study: install
	$(PY) -m ecg_utils run $(if $(ECG_MITDB_DIR),--mitdb-dir $(ECG_MITDB_DIR),) \
		$(if $(wildcard $(SEED_WEIGHTS)),--seed-weights $(SEED_WEIGHTS),) \
		$(if $(QUICK),--quick --out study-quick,) $(if $(REUSE),--reuse-results,) \
		--device $(DEVICE) $(STUDY_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The records are found (ECG_MITDB_DIR, ../shared/data/mitdb, the download cache) or
# downloaded with checksums; without them make test stops with one line saying why.
test: install lint
	@records="$$($(PY) -m ecg_utils records --download --quiet)" && \
		echo "MIT-BIH records: $$records" && \
		ECG_MITDB_DIR="$$records" $(PY) -m pytest -q

# `make notebook` installs, rebuilds ecg_classification.ipynb from tools/build_notebook.py
# and runs it in place: one ECG1DCNN trained, the committed study results reused (about
# 10 min on 2 CPU cores). QUICK=1: a smoke run (a two-model study into study-quick/, the
# executed copy there too); TRAIN_ALL=1: run the whole study (REUSE=0: retrain all of it).
TRAIN_ALL ?=
NOTEBOOK_OUT = $(if $(QUICK),study-quick/ecg_classification.ipynb,ecg_classification.ipynb)
notebook: install
	$(PY) tools/build_notebook.py
	@mkdir -p $(dir $(NOTEBOOK_OUT))
	ECG_QUICK=$(QUICK) ECG_TRAIN_ALL=$(TRAIN_ALL) ECG_REUSE_RESULTS=$(REUSE) ECG_DEVICE=$(DEVICE) \
		ECG_MITDB_DIR=$(ECG_MITDB_DIR) MPLBACKEND=Agg \
		$(PY) tools/run_notebook.py ecg_classification.ipynb $(NOTEBOOK_OUT)
