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
        "ECG_TRAIN_ALL": "",
        "ECG_REUSE_RESULTS": "",
        "ECG_OUT": str(tmp_path / "out"),
        "ECG_MITDB_DIR": str(mitdb_dir),
        "MPLBACKEND": "Agg",
    }
    # No hard time limit of its own: the smoke run takes about a minute on an idle 2-core
    # machine, several on a busy one; only a hung kernel would need one, and pytest's
    # --timeout (pytest-timeout) can set it where wanted. tools/run_notebook.py has no
    # per-cell limit either.
    subprocess.run(
        [sys.executable, str(ROOT / "tools/run_notebook.py"), str(nb_copy)],
        cwd=ROOT,
        env=env,
        check=True,
    )
    executed = nbformat.read(nb_copy, as_version=4)
    assert all(c.get("execution_count") for c in executed.cells if c.cell_type == "code")
    outputs = {tag: c.outputs for c in executed.cells for tag in c.metadata.get("tags", [])}
    assert "one batch: (128, 1, 187)" in "".join(_text(outputs["dataset"]))
    assert "parameters" in "".join(_text(outputs["model"]))
    assert "best epoch" in "".join(_text(outputs["training"]))
    for tag in ("class-counts", "dataset", "learning-curve", "confusion-matrix"):
        assert any("image/png" in o.get("data", {}) for o in outputs[tag]), tag
    assert "inside a checkout of the project" in "".join(_text(executed.cells[2].outputs))
    study = "".join(_text(outputs["study"]))
    assert "This run trains 2 model(s)" in study and '["seed_ip", "seed_kaggle"]' in study
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


def _cell(tag_or_start: str) -> str:
    """The source of the builder's first code cell that starts with ``tag_or_start``."""
    return next(c[1] for c in _builder().CELLS if c[0] == "code" and c[1].startswith(tag_or_start))


def test_parameters_default_to_one_model_and_the_committed_results(monkeypatch):
    for name in ("ECG_QUICK", "ECG_REUSE_RESULTS", "ECG_TRAIN_ALL", "ECG_OUT", "ECG_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    namespace = {"os": os, "Path": Path}
    exec(_cell("# Parameters"), namespace)
    assert (namespace["QUICK"], namespace["REUSE"], namespace["TRAIN_ALL"]) == (False, True, False)
    assert namespace["OUT"] == Path(".") and namespace["DEVICE"] == "auto"
    monkeypatch.setenv("ECG_QUICK", "1")
    monkeypatch.setenv("ECG_REUSE_RESULTS", "")  # make notebook passes empty variables
    exec(_cell("# Parameters"), namespace)
    assert namespace["QUICK"] and namespace["REUSE"] and namespace["OUT"] == Path("study-quick")


def test_setup_uses_the_checkout_it_runs_in(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(_cell("import importlib.metadata"), {})
    out = capsys.readouterr().out
    assert f"inside a checkout of the project: {ROOT}" in out
    assert "nothing to install" in out and Path.cwd() == ROOT


def test_setup_outside_a_checkout_says_the_clone_failed(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("ECG_REPO_URL", str(tmp_path / "no-such-repository"))
    with pytest.raises(SystemExit, match="ECG_REPO_URL"):
        exec(_cell("import importlib.metadata"), {})
    out = capsys.readouterr().out
    assert "not inside a checkout of the project: cloning" in out
    assert f"CLONE FAILED: {tmp_path / 'no-such-repository'} could not be cloned" in out
