"""The notebook is in sync with its builder and runs top to bottom (quick parameters)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "ecg_classification.ipynb"


def _builder():
    builder = ROOT / "tools" / "build_notebook.py"
    spec = importlib.util.spec_from_file_location("build_notebook", builder)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_notebook_matches_its_builder():
    committed = nbformat.read(NOTEBOOK, as_version=4)
    sources = [(c.cell_type, c.source) for c in committed.cells]
    expected = [("markdown" if k == "md" else "code", s) for k, s in _builder().CELLS]
    assert sources == expected, "run `python tools/build_notebook.py` and re-execute it"


def test_committed_notebook_carries_outputs():
    committed = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code)
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


@pytest.mark.slow
def test_notebook_runs_top_to_bottom_quick(tmp_path, mitdb_dir):
    nb_copy = tmp_path / "nb.ipynb"
    shutil.copyfile(NOTEBOOK, nb_copy)
    env = {
        **os.environ,
        "ECG_QUICK": "1",
        "ECG_OUT": str(tmp_path / "out"),
        "ECG_MITDB_DIR": str(mitdb_dir),
        "MPLBACKEND": "Agg",
    }
    subprocess.run(
        [sys.executable, str(ROOT / "tools/run_notebook.py"), str(nb_copy)],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=1800,
    )
    executed = nbformat.read(nb_copy, as_version=4)
    assert all(c.get("execution_count") for c in executed.cells if c.cell_type == "code")
    assert (tmp_path / "out" / "report.md").exists()
    assert (tmp_path / "out" / "results" / "study.json").exists()
