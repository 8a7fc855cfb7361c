"""Tests for ecg_utils.training: configuration checks, exact resume and reproducibility."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ecg_utils import EcgError
from ecg_utils.beats import BEAT_LENGTH, Beats
from ecg_utils.checkpoint import load_model
from ecg_utils.inference import predict_beat_set
from ecg_utils.models import build_model
from ecg_utils.training import (
    TrainConfig,
    choose_class_offsets,
    cross_validate,
    model_arguments,
    recompute_batchnorm,
    save_trained,
    teacher_path,
    train,
    train_cross_validated,
    validation_scores,
)

TINY = TrainConfig(epochs=3, batch_size=64, lr=3e-3, seed=5, threads=1)
"""A configuration that trains in well under a second on :func:`tiny_beats`."""


def tiny_beats(n: int = 600, seed: int = 0) -> Beats:
    """Learnable fake beats: the label sets the level of the beat."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 5, n)
    x = 0.2 * y[:, None] + 0.1 * rng.random((n, BEAT_LENGTH))
    rr = 0.8 + 0.1 * rng.random((n, 4))
    return Beats(
        x.clip(0, 1).astype(np.float32),
        y.astype(np.int64),
        np.full(n, "syn", dtype="<U8"),
        np.arange(n) * 300,
        rr.astype(np.float32),
    )


@pytest.fixture(scope="module")
def data():
    beats = tiny_beats()
    return beats.subset(np.arange(500)), beats.subset(np.arange(500, 600))


@pytest.fixture(scope="module")
def reference(data):
    """An uninterrupted run of TINY."""
    return train(TINY, *data, progress=False)


def weights_hash(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def without_time(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


# ---------------------------------------------------------------------------
# TrainConfig
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epochz": 3}, "unknown training option"),
        ({"epochs": -1}, "epochs must be >= 1"),
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"batch_size": 0}, "batch size must be >= 1"),
        ({"protocol": "bogus"}, "unknown protocol 'bogus'"),
        ({"lr": 0}, "learning rate must be > 0"),
        ({"lr": float("inf")}, "learning rate must be finite"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"schedule": "linear"}, "unknown schedule"),
        ({"loss": "focal"}, "unknown loss"),
        ({"sampler": "smote"}, "unknown sampler"),
        ({"architecture": "transformer"}, "unknown architecture"),
        ({"feature_set": "hrv"}, "unknown feature set"),
        ({"feature_set": "rr"}, "takes no per-beat features"),
        ({"epochs": "3"}, "epochs must be int"),
        ({"epochs": 2.5}, "epochs must be int"),
        ({"augment": "yes"}, "augment must be bool"),
        ({"batch_size": True}, "batch_size must be int"),
        ({"model_args": {"num_classes": 3}}, "may not set num_classes"),
        ({"architecture": "resnet1d", "model_args": {"depth": 3}}, "do not fit resnet1d"),
        ({"cv_folds": 1}, "cv_folds must be 0 or >= 2"),
        ({"ema": 1.0}, r"ema must be in \[0, 1\)"),
        ({"ema": "0.9"}, "ema must be int or float"),
        ({"ema": 0.9, "ema_bn": "median"}, "unknown ema_bn 'median'"),
        ({"ema_bn": "recompute"}, r"needs a weight average \(ema > 0\)"),
        ({"cv_folds": 3}, "cv_folds needs a protocol of whole records"),
        ({"protocol": "all-records"}, "all-records protocol has no validation records"),
        ({"architecture": "ensemble"}, "unknown architecture 'ensemble'"),
        ({"fold_seed": "1"}, "fold_seed must be int or null"),
        ({"architecture": "ecg1dcnn", "feature_set": "rr+morph+wide"}, "takes no per-beat"),
        ({"architecture": "resnet1d", "model_args": {"wide": 156}}, "may not set wide"),
    ],
)
def test_bad_configuration_is_an_ecg_error(values, message):
    with pytest.raises(EcgError, match=message):
        TrainConfig.from_dict(values)


def test_configuration_round_trips_through_json():
    cfg = TrainConfig(architecture="resnet1d", model_args={"width": 8}, feature_set="rr")
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.replace(epochs=2).epochs == 2
    with pytest.raises(EcgError, match="unknown training option"):
        cfg.replace(epoch=2)


def test_configuration_must_be_a_mapping():
    with pytest.raises(EcgError, match="must be a mapping"):
        TrainConfig.from_dict([("epochs", 3)])


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def test_training_learns_and_keeps_the_best_epoch(reference):
    assert len(reference.history) == 3
    scores = [row["val_macro_f1"] for row in reference.history]
    assert reference.best_epoch == 1 + int(np.argmax(scores))
    assert max(scores) > 0.4  # the level is easy to learn (chance: about 0.2)
    assert not reference.model.training


def test_same_configuration_twice_gives_identical_weights(data, reference):
    again = train(TINY, *data, progress=False)
    assert weights_hash(again.model) == weights_hash(reference.model)
    assert without_time(again.history) == without_time(reference.history)


def test_another_seed_gives_other_weights(data, reference):
    other = train(TINY.replace(seed=6, epochs=1), *data, progress=False)
    assert weights_hash(other.model) != weights_hash(reference.model)


def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path, data, reference):
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        train(TINY, *data, checkpoint=ckpt, progress=False, stop_after=1)
    assert ckpt.exists()
    resumed = train(TINY, *data, checkpoint=ckpt, resume=True, progress=False)
    ref = reference.model.state_dict()
    for k, v in resumed.model.state_dict().items():
        assert torch.equal(v, ref[k]), k
    assert without_time(resumed.history) == without_time(reference.history)
    assert resumed.best_epoch == reference.best_epoch


@pytest.mark.parametrize(
    "cfg",
    [
        TINY.replace(schedule="onecycle", loss="weighted_ce", sampler="balanced", augment=True),
        TINY.replace(
            architecture="resnet1d", model_args={"width": 4}, feature_set="rr", schedule="cosine"
        ),
        TINY.replace(ema=0.9),
        TINY.replace(ema=0.9, ema_bn="recompute", architecture="resnet1d", feature_set="rr"),
    ],
    ids=["onecycle-augment", "resnet-rr-cosine", "weight-average", "average-recomputed-bn"],
)
def test_resume_is_exact_with_schedules_samplers_and_augmentation(tmp_path, data, cfg):
    cfg = cfg.replace(epochs=2)
    whole = train(cfg, *data, progress=False)
    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        train(cfg, *data, checkpoint=ckpt, progress=False, stop_after=1)
    resumed = train(cfg, *data, checkpoint=ckpt, resume=True, progress=False)
    assert weights_hash(resumed.model) == weights_hash(whole.model)


def test_resume_refuses_another_configuration_or_data(tmp_path, data):
    ckpt = tmp_path / "run.ckpt"
    cfg = TINY.replace(epochs=2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, *data, checkpoint=ckpt, progress=False, stop_after=1)
    with pytest.raises(EcgError, match="different configuration"):
        train(cfg.replace(lr=1e-2), *data, checkpoint=ckpt, resume=True, progress=False)
    other = tiny_beats(seed=1)
    with pytest.raises(EcgError, match="different training data"):
        train(
            cfg, other.subset(np.arange(500)), data[1], checkpoint=ckpt, resume=True, progress=False
        )


def test_damaged_checkpoint_is_a_clear_error(tmp_path, data):
    ckpt = tmp_path / "run.ckpt"
    ckpt.write_bytes(b"junk" * 10)
    with pytest.raises(EcgError, match="cannot resume from this checkpoint") as err:
        train(TINY, *data, checkpoint=ckpt, resume=True, progress=False)
    assert str(err.value).startswith(str(ckpt))


def test_weight_average_is_what_gets_validated_and_kept(data, reference):
    averaged = train(TINY.replace(ema=0.9), *data, progress=False)
    assert weights_hash(averaged.model) != weights_hash(reference.model)
    assert averaged.history != reference.history  # validation judged the average
    # the kept model scores what the history says of its epoch
    proba = predict_beat_set(averaged.model, data[1], None)
    row = averaged.history[averaged.best_epoch - 1]
    assert validation_scores(proba, data[1].y, TINY)["val_loss"] == pytest.approx(row["val_loss"])


def test_recomputed_batchnorm_holds_the_statistics_of_the_beats_given(data):
    model = train(TINY.replace(epochs=1), *data, progress=False).model
    before = weights_hash(model)
    x = torch.from_numpy(data[0].x).unsqueeze(1)
    none = torch.zeros((len(x), 0))
    fresh = recompute_batchnorm(model, x, none, batch_size=len(x))  # one batch: exact stats
    with torch.no_grad():
        first = model.conv1(x)  # what bn1 sees
    torch.testing.assert_close(fresh.bn1.running_mean, first.mean(dim=(0, 2)))
    torch.testing.assert_close(fresh.bn1.running_var, first.var(dim=(0, 2)), rtol=1e-4, atol=1e-6)
    assert not torch.allclose(fresh.bn1.running_mean, model.bn1.running_mean)
    assert weights_hash(model) == before  # the model given is left alone
    assert not fresh.training and fresh.bn1.momentum == model.bn1.momentum
    for name, value in fresh.state_dict().items():  # only BatchNorm statistics differ
        if not name.startswith(("bn1.running", "bn2.running", "bn1.num", "bn2.num")):
            torch.testing.assert_close(value, model.state_dict()[name])
    again = recompute_batchnorm(model, x, none, batch_size=len(x))
    assert weights_hash(again) == weights_hash(fresh)  # dropout stays off: no randomness


def test_weight_average_with_recomputed_batchnorm_keeps_the_averaged_weights(data):
    cfg = TINY.replace(ema=0.9)
    averaged = train(cfg, data[0], None, keep_epoch=cfg.epochs, progress=False).model
    recomputed = train(
        cfg.replace(ema_bn="recompute"), data[0], None, keep_epoch=cfg.epochs, progress=False
    ).model
    torch.testing.assert_close(averaged.conv1.weight, recomputed.conv1.weight)
    torch.testing.assert_close(averaged.fc2.bias, recomputed.fc2.bias)
    assert not torch.allclose(averaged.bn1.running_mean, recomputed.bn1.running_mean)


def test_empty_training_set_is_an_error(data):
    with pytest.raises(EcgError, match="must not be empty"):
        train(TINY, data[0].subset(np.arange(0)), data[1], progress=False)


def test_saved_model_records_how_it_was_made(tmp_path, reference):
    path = tmp_path / "m.pth"
    save_trained(reference, path, {"data_fingerprint": "abc"})
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["train_config"] == TINY.to_dict() and meta["train_config"]["seed"] == 5
    assert meta["data_fingerprint"] == "abc"
    env = meta["environment"]
    assert {"python", "platform", "packages", "git_commit", "git_dirty"} <= set(env)
    assert env["packages"]["torch"] == torch.__version__
    loaded = load_model(path)
    assert weights_hash(loaded.model) == weights_hash(reference.model)


# ---------------------------------------------------------------------------
# Fixed epoch, class offsets and cross-validation
# ---------------------------------------------------------------------------


def test_keep_epoch_trains_without_validation_and_matches_that_epoch(data):
    train_beats, _ = data
    cfg = TINY.replace(patience=1)  # patience must not cut a fixed-length run short
    seen = []
    kept = train(
        cfg,
        train_beats,
        None,
        progress=False,
        keep_epoch=2,
        on_epoch=lambda e, m: seen.append((e, weights_hash(m))),
    )
    assert [e for e, _ in seen] == [1, 2] and kept.best_epoch == 2
    assert weights_hash(kept.model) == seen[-1][1]
    assert all("val_loss" not in row for row in kept.history)


@pytest.mark.parametrize(
    ("val", "keep", "message"),
    [(None, None, "unless keep_epoch"), ("v", 9, "keep_epoch must be in")],
)
def test_keep_epoch_misuse_is_an_error(data, val, keep, message):
    train_beats, val_beats = data
    with pytest.raises(EcgError, match=message):
        train(TINY, train_beats, val_beats if val else None, progress=False, keep_epoch=keep)


def test_class_offsets_raise_a_class_the_model_under_calls():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [300, 60, 60])
    proba = np.full((len(y), 5), 0.01)
    proba[np.arange(len(y)), y] = 0.5
    proba[y == 1, 0] = 0.6  # S beats look slightly more like N
    proba += 0.01 * rng.random(proba.shape)
    cfg = TINY.replace(protocol="inter-patient", select_classes="NSV")
    offsets, score = choose_class_offsets(proba, y, cfg)
    assert offsets[0] == 0 and offsets[1] > 0
    assert score > 0.9


def records_beats(n_records: int = 6, per_record: int = 120) -> Beats:
    """tiny_beats spread over records, so that they can be cross-validated."""
    b = tiny_beats(n_records * per_record, seed=3)
    b.record = np.repeat([f"r{i}" for i in range(n_records)], per_record).astype("<U8")
    return b


CV = TINY.replace(protocol="inter-patient", cv_folds=3, calibrate=True, select_classes="NSVFQ")


def test_cross_validation_judges_every_record_once_and_picks_the_best_epoch():
    beats = records_beats()
    cv = cross_validate(CV, beats, progress=False, workers=1)
    held = [r for fold in cv["folds"] for r in fold]
    assert sorted(held) == sorted(set(beats.record.tolist()))
    assert len(held) == len(set(held)) and len(cv["folds"]) == 3
    scores = [row["val_selection_f1"] for row in cv["history"]]
    assert len(scores) == CV.epochs and cv["epoch"] == 1 + int(np.argmax(scores))
    assert cv["score"] >= max(scores) - 1e-12  # offsets never make the pooled score worse
    assert len(cv["class_bias"]) == 5


def test_cross_validated_model_is_trained_on_everything_up_to_the_chosen_epoch(tmp_path):
    beats = records_beats()
    result = train_cross_validated(CV, beats, progress=False, workers=1)
    again = train_cross_validated(CV, beats, progress=False, workers=2)  # folds in parallel
    assert weights_hash(result.model) == weights_hash(again.model)
    assert without_time(result.history) == without_time(again.history)
    assert result.cv["out_of_fold"] == again.cv["out_of_fold"]
    assert result.best_epoch == result.cv["epoch"]
    assert result.class_bias == result.cv["class_bias"]
    save_trained(result, tmp_path / "cv.pth")
    meta = json.loads((tmp_path / "cv.json").read_text())
    assert meta["cross_validation"]["folds"] == result.cv["folds"]
    assert meta["class_bias"] == result.class_bias


def test_cross_validation_keeps_its_fold_models_and_both_operating_points():
    beats = records_beats()
    cv = cross_validate(CV, beats, progress=False, workers=1)
    assert len(cv["fold_states"]) == len(cv["folds"])
    assert cv["proba"].shape == (len(beats), 5)
    points = cv["operating_points"]
    assert points["balanced"] == cv["class_bias"] and len(points["high"]) == 5
    # each fold model predicts its own held-out records as the pooled probabilities say
    for records, state in zip(cv["folds"], cv["fold_states"], strict=True):
        held = np.flatnonzero(np.isin(beats.record, records))
        model = build_model(CV.architecture, **model_arguments(CV))
        model.load_state_dict(state)
        got = predict_beat_set(model.eval(), beats.subset(held), CV.feature_set)
        np.testing.assert_allclose(got, cv["proba"][held], atol=1e-6)


def test_seeds_that_share_a_fold_seed_share_their_folds():
    beats = records_beats(n_records=9, per_record=60)
    folds = [
        cross_validate(CV.replace(epochs=1, seed=s, fold_seed=0), beats, False, 1)["folds"]
        for s in (1, 2)
    ]
    assert folds[0] == folds[1]
    other = cross_validate(CV.replace(epochs=1, seed=0), beats, False, 1)["folds"]
    assert other == folds[0]  # fold_seed None means the seed itself (0 here)


def test_wide_window_models_train_and_save_their_branch(tmp_path):
    from ecg_utils.beats import WIDE_LENGTH

    beats = records_beats()
    rng = np.random.default_rng(0)
    beats.wide = (beats.y[:, None] * 0.3 + 0.1 * rng.random((len(beats), WIDE_LENGTH))).astype(
        np.float32
    )
    cfg = TINY.replace(
        architecture="resnet1d", model_args={"width": 4}, feature_set="rr+morph+wide"
    )
    result = train(cfg, beats.subset(np.arange(600)), beats.subset(np.arange(600, 720)), False)
    save_trained(result, tmp_path / "w.pth")
    meta = json.loads((tmp_path / "w.json").read_text())
    assert meta["model_args"]["wide"] == WIDE_LENGTH
    assert meta["model_args"]["n_features"] == 10 + WIDE_LENGTH


def test_distillation_term_vanishes_when_student_matches_teacher():
    from ecg_utils.training import distillation_loss

    logits = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    assert float(distillation_loss(logits, logits, 2.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss(logits, logits.flip(1), 2.0)) > 0


@pytest.mark.parametrize(
    "values, message",
    [
        ({"teacher": "t.pth", "augment": True}, "turn augment off"),
        ({"distill_weight": 1.5}, "distill_weight"),
        ({"distill_temperature": 0}, "distill_temperature"),
    ],
)
def test_bad_distillation_settings_are_errors(values, message):
    with pytest.raises(EcgError, match=message):
        TINY.replace(**values)


def test_distilled_student_learns_from_its_teacher(tmp_path, data, reference):
    """A student trained only on the teacher's soft targets (weight 1) ends up agreeing
    with the teacher; the teacher's path may be relative to the working directory."""
    save_trained(reference, tmp_path / "teacher.pth")
    cfg = TINY.replace(teacher=str(tmp_path / "teacher.pth"), distill_weight=1.0, epochs=6)
    student = train(cfg, *data, progress=False)
    val = data[1]
    agree = (
        predict_beat_set(student.model, val, None).argmax(1)
        == predict_beat_set(reference.model, val, None).argmax(1)
    ).mean()
    assert agree > 0.9
    assert weights_hash(student.model) != weights_hash(reference.model)


def test_missing_teacher_is_a_clear_error(data):
    with pytest.raises(EcgError, match="nowhere.pth"):
        train(TINY.replace(teacher="nowhere.pth"), *data, progress=False)


def test_a_teacher_is_read_from_the_study_output_else_the_project(tmp_path, monkeypatch):
    rel = "ecg_utils/weights/kaggle_best.pth"
    monkeypatch.chdir(tmp_path)
    project = Path(__file__).resolve().parents[1]
    assert teacher_path(rel, tmp_path / "out") == project / rel  # nothing shipped there yet
    shipped = tmp_path / "out" / rel
    shipped.parent.mkdir(parents=True)
    shipped.write_bytes(b"weights")
    assert teacher_path(rel, tmp_path / "out") == shipped
    assert teacher_path(str(tmp_path / "abs.pth")) == tmp_path / "abs.pth"
