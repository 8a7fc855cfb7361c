"""Active review: the least sure beats, one per family first; the analyst's filled rows
adapt the model, blank rows are skipped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cli_helpers import run_main

import ecg_utils
from ecg_utils._io import EcgError
from ecg_utils.review import REVIEW_COLUMNS, least_sure


def test_one_beat_per_family_first_then_the_least_sure():
    proba = np.array(
        [
            [0.90, 0.10, 0, 0, 0],  # family 0, sure
            [0.55, 0.45, 0, 0, 0],  # family 0, least sure of all
            [0.60, 0.40, 0, 0, 0],  # family 0
            [0.99, 0.01, 0, 0, 0],  # family 1, its only beat: sure, still picked second
            [0.70, 0.30, 0, 0, 0],  # family 2
        ]
    )
    families = np.array([0, 0, 0, 1, 2])
    assert least_sure(proba, families, 3).tolist() == [1, 4, 3]
    assert least_sure(proba, families, 5).tolist() == [1, 4, 3, 2, 0]
    assert least_sure(proba, families, 2, exclude=[1]).tolist() == [2, 4]
    with pytest.raises(EcgError, match="at least 1"):
        least_sure(proba, families, 0)


def test_review_then_adapt_from_the_filled_rows(capsys, tmp_path, synthetic_record):
    rec = synthetic_record(seconds=60)
    weights = ecg_utils.NETWORK_PRODUCT_WEIGHTS
    hea = rec.path.with_suffix(".hea")
    out = tmp_path / "review.csv"
    rc, stdout, err = run_main(
        capsys, "review", hea, "--weights", weights, "--ann", "atr", "--budget", "6", "--out", out
    )
    assert rc == 0, err
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == REVIEW_COLUMNS and len(table) == 6
    assert (table["class"] == "").all() and (table["record"].astype(str) == "syn").all()
    adapt = ("adapt", hea, "--weights", weights, "--labels", out)
    rc, _, err = run_main(capsys, *adapt, "--out", tmp_path / "blank.pth")
    assert rc == 2 and "blank in every row" in err and not (tmp_path / "blank.pth").exists()
    table.loc[:2, "class"] = ["N", "V", "S"]  # three reviewed, three left blank
    table.to_csv(out, index=False)
    rc, stdout, err = run_main(capsys, *adapt, "--out", tmp_path / "patient.pth")
    assert rc == 0, err
    assert "from 3 labelled beats" in stdout
    table["record"] = "999"
    table.to_csv(out, index=False)
    rc, _, err = run_main(capsys, *adapt, "--out", tmp_path / "other.pth")
    assert rc == 2 and "999" in err and not (tmp_path / "other.pth").exists()


def test_a_budget_below_one_is_refused(capsys, tmp_path, synthetic_record):
    rec = synthetic_record(seconds=20)
    rc, _, err = run_main(
        capsys, "review", rec.path.with_suffix(".hea"), "--budget", "0", "--out", tmp_path / "r.csv"
    )
    assert rc == 2 and "positive integer" in err and not (tmp_path / "r.csv").exists()
