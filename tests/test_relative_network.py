"""The network on patient-relative features and the stacked fusions
(ecg_utils.relative_network, ecg_utils.relative_fusion)."""

from __future__ import annotations

import numpy as np
import torch

from ecg_utils.checkpoint import load_model, save_model
from ecg_utils.predict import RELATIVE_SET
from ecg_utils.relative import RELATIVE_LEADS, column_names
from ecg_utils.relative_network import fit_relative_cnn, wave_layout
from ecg_utils.relative_study import fit_candidate, predict_candidate

NAMES = list(column_names(RELATIVE_LEADS))


def _toy(n: int = 600, seed: int = 0):
    """Relative features where class 1 beats are premature and class 2 beats are wide."""
    rng = np.random.default_rng(seed)
    y = rng.choice(3, n, p=[0.7, 0.15, 0.15])
    x = rng.normal(0, 0.3, (n, len(NAMES))).astype(np.float32)
    x[:, NAMES.index("pre_over_local")] = np.where(y == 1, 0.7, 1.0) + rng.normal(0, 0.05, n)
    rel = [i for i, name in enumerate(NAMES) if name.startswith("l0_rel_")]
    x[np.ix_(y == 2, rel)] += np.sin(np.linspace(0, np.pi, len(rel)))
    return x, y


def test_the_waveform_columns_are_channels_in_time_order():
    waves, other = wave_layout(NAMES)
    assert len(waves) == 4 and {len(w) for w in waves} == {22}  # own and relative, two leads
    assert all(np.all(np.diff(w) == 1) for w in waves)
    assert NAMES.index("pre_over_long") in other and NAMES.index("l1_corr") in other
    assert sorted(sum(waves, []) + other) == list(range(len(NAMES)))


def test_the_relative_cnn_learns_rhythm_and_shape_and_is_seeded():
    x, y = _toy()
    params = {"epochs": 15, "batch_size": 64}
    model, _ = fit_relative_cnn(x, y, NAMES, params)
    test_x, test_y = _toy(seed=1)
    with torch.no_grad():
        pred = model(None, torch.as_tensor(test_x)).argmax(1).numpy()
    for k in (1, 2):
        assert (pred[test_y == k] == k).mean() > 0.8
    again, _ = fit_relative_cnn(x, y, NAMES, params)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_a_cnn_candidate_saves_loads_and_reads_one_lead(tmp_path):
    x, y = _toy()
    spec = {"kind": "cnn", "params": {"epochs": 2}}
    model, arch, args = fit_candidate(spec, x, y)
    path = tmp_path / "cnn.pth"
    save_model(model, path, {"architecture": arch, "model_args": args, "feature_set": RELATIVE_SET})
    loaded = load_model(path).model
    np.testing.assert_allclose(predict_candidate(loaded, x), predict_candidate(model, x), atol=1e-6)
    one = x.copy()
    one[:, len(column_names(1)) :] = np.nan
    assert np.isfinite(predict_candidate(loaded, one)).all()
