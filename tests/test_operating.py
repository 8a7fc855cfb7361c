"""Tests for ecg_utils.operating: the high-sensitivity offsets and applying a point."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecg_utils import EcgError
from ecg_utils.checkpoint import LoadedModel
from ecg_utils.models import ResNet1D
from ecg_utils.operating import (
    HIGH_SENSITIVITY_PPV,
    OFFSET_GRID,
    high_sensitivity_offsets,
    se_ppv,
    sensitivity_curve,
    with_operating_point,
)


def _scores(seed: int = 0, n: int = 4000):
    """Probabilities where S and V beats get a weaker own-class score than N beats do."""
    rng = np.random.default_rng(seed)
    y = rng.choice(5, size=n, p=[0.85, 0.06, 0.06, 0.02, 0.01])
    logits = rng.normal(0, 1, (n, 5))
    logits[np.arange(n), y] += 3.0
    logits[:, 0] += 2.5  # the model leans to N, as one trained on other patients does
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return proba, y


def test_high_offsets_find_more_s_and_v_while_keeping_the_ppv_floors():
    proba, y = _scores()
    offsets = high_sensitivity_offsets(proba, y)
    pred = (np.log(proba) + offsets).argmax(1)
    plain = proba.argmax(1)
    for cls, k in (("S", 1), ("V", 2)):
        se, ppv = se_ppv(pred, y, k)
        assert ppv >= HIGH_SENSITIVITY_PPV[cls]
        assert se >= se_ppv(plain, y, k)[0]
    assert offsets[0] == offsets[3] == offsets[4] == 0.0
    assert offsets[1] in OFFSET_GRID and offsets[2] in OFFSET_GRID


def test_high_offsets_keep_the_other_classes_base():
    proba, y = _scores(1)
    base = [0.0, 0.5, 0.25, 1.0, -0.5]
    offsets = high_sensitivity_offsets(proba, y, base)
    assert offsets[0] == 0.0 and offsets[3] == 1.0 and offsets[4] == -0.5


def test_sensitivity_rises_along_the_curve():
    proba, y = _scores(2)
    rows = sensitivity_curve(proba, y, "S")
    assert [r["offset"] for r in rows] == OFFSET_GRID.tolist()
    se = [r["sensitivity"] for r in rows]
    assert se == sorted(se) and se[-1] > se[0]


def _loaded(points):
    torch.manual_seed(0)
    model = ResNet1D(width=4).eval()
    return LoadedModel(model, {"operating_points": points})


def test_an_operating_point_adds_the_difference_to_a_copy():
    loaded = _loaded({"balanced": [0.0, 0.5, 0.0, 0.0, 0.0], "high": [0.0, 2.0, 1.0, 0, 0]})
    x = torch.rand(3, 1, 187)
    high = with_operating_point(loaded, "high")
    with torch.no_grad():
        diff = high.model(x) - loaded.model(x)
    np.testing.assert_allclose(diff.numpy(), np.tile([0.0, 1.5, 1.0, 0, 0], (3, 1)), atol=1e-6)
    assert high.meta["operating_point"] == "high" and "operating_point" not in loaded.meta
    assert with_operating_point(loaded, "balanced").model is not loaded.model


def test_weights_without_operating_points_serve_balanced_and_refuse_high():
    loaded = _loaded(None)
    assert with_operating_point(loaded, "balanced") is loaded
    with pytest.raises(EcgError, match="no 'high' operating point"):
        with_operating_point(loaded, "high")
    with pytest.raises(EcgError, match="unknown operating point"):
        with_operating_point(loaded, "sensitive")


def test_an_unreachable_floor_keeps_the_balanced_offset():
    proba, y = _scores(3)
    proba = np.full_like(proba, 0.2)  # no information at all: no offset reaches +P 90 %
    base = [0.0, 0.5, 0.25, 0.0, 0.0]
    assert high_sensitivity_offsets(proba, y, base) == base


def test_high_offsets_never_go_below_the_balanced_ones():
    proba, y = _scores(4)
    base = [0.0, 3.0, 3.0, 0.0, 0.0]  # already past the floors
    offsets = high_sensitivity_offsets(proba, y, base)
    assert offsets[1] >= 3.0 and offsets[2] >= 3.0
