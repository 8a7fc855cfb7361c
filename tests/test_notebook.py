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
    expected = [("markdown" if c[0] == "md" else "code", c[1]) for c in _builder().CELLS]
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
    outputs = {tag: c.outputs for c in executed.cells for tag in c.metadata.get("tags", [])}
    assert "one batch: (128, 1, 187)" in "".join(_text(outputs["dataset"]))
    assert "parameters" in "".join(_text(outputs["model"]))
    assert "best epoch" in "".join(_text(outputs["training"]))
    for tag in ("class-counts", "dataset", "learning-curve", "confusion-matrix"):
        assert any("image/png" in o.get("data", {}) for o in outputs[tag]), tag
    assert "This run trains" in "".join(_text(outputs["study"]))
    assert (tmp_path / "out" / "report.md").exists()
    assert (tmp_path / "out" / "results" / "study.json").exists()


def _text(outputs) -> list[str]:
    """The text a cell printed (streams and plain-text results)."""
    return [o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs]


def test_colab_badge_and_setup_follow_the_repository_url():
    builder = _builder()
    url = builder.repository_url()
    committed = nbformat.read(NOTEBOOK, as_version=4)
    assert builder.colab_url() in committed.cells[0].source
    assert f'"ECG_REPO_URL", "{url}"' in committed.cells[2].source
    assert builder.colab_url() in (ROOT / "README.md").read_text()
