"""Tests for the ecg_utils.report package: a report from results files, or one clear error."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import tmp_files

from ecg_utils import EcgError
from ecg_utils.report import (
    experiments,
    load_results,
    render_report,
    section_feature_screen,
    section_seed_spread,
    study_training_time,
    write_report,
)
from ecg_utils.report.kaggle import kaggle_target_rows, section_strong_model
from ecg_utils.report.model_choice import _choice_versus_test
from ecg_utils.report.reproducibility import commit_text, training_time_text
from ecg_utils.report.speed import section_inference_speed
from ecg_utils.report.targets import _s_target_note

ROOT = Path(__file__).resolve().parents[1]
FIGURE = re.compile(r"!\[[^\]]*\]\((figures/[^)\s]+)\)")


@pytest.fixture
def results(tmp_path, quick_study):
    """A copy of the quick study's results that a test may damage."""
    folder = tmp_path / "results"
    shutil.copytree(quick_study / "results", folder)
    return folder


def test_report_from_a_study(results, tmp_path):
    path = write_report(results, tmp_path / "report.md")
    text = path.read_text()
    for heading in (
        "## Data",
        "## Kaggle protocol",
        "## Inter-patient protocol",
        "## Failure analysis",
        "## Choosing the model for unseen patients",
        "## Reproducibility",
        "## References",
    ):
        assert heading in text
    assert "split seed 2018" in text and "git commit" in text
    assert "cross-validation + " in text  # the unseen-patient model's time counts its folds
    assert "more beats than ours" in text  # 13 short records: far fewer than Kaggle's


def test_partial_results_give_a_partial_report(results, tmp_path):
    for p in results.glob("seed_*.json"):
        p.unlink()
    text = write_report(results, tmp_path / "report.md").read_text()
    assert "## Data" in text and "## Kaggle protocol" not in text


def test_kaggle_difference_wording():
    ds = {
        "n_beats": 109_494,
        "counts": {"N": 90_631, "S": 2_781, "V": 7_236, "F": 803, "Q": 8_043},
        "kaggle_reference_counts": {"N": 90589, "S": 2779, "V": 7236, "F": 803, "Q": 8039},
        "records": ["100"] * 48,
    }
    assert "Kaggle's set has 48 fewer beats than ours" in render_report({"dataset": ds})
    ds["n_beats"], ds["counts"] = 109_446, dict(ds["kaggle_reference_counts"])
    assert "the counts agree class by class" in render_report({"dataset": ds})


def test_empty_results_folder_is_an_error_and_writes_nothing(tmp_path):
    (tmp_path / "results").mkdir()
    with pytest.raises(EcgError, match=r"no results files \(\*\.json\)") as err:
        write_report(tmp_path / "results", tmp_path / "report.md")
    assert str(err.value).startswith(str(tmp_path / "results"))
    assert not (tmp_path / "report.md").exists()


def test_missing_results_folder_is_an_error(tmp_path):
    with pytest.raises(EcgError, match="results folder not found"):
        load_results(tmp_path / "nope")


@pytest.mark.parametrize(
    ("text", "message"), [("{oops", "not a valid results file"), ("[]", "expected a JSON object")]
)
def test_unreadable_results_file_is_named(results, tmp_path, text, message):
    (results / "seed_ip.json").write_text(text)
    with pytest.raises(EcgError, match=message) as err:
        write_report(results, tmp_path / "report.md")
    assert str(err.value).startswith(str(results / "seed_ip.json"))


def test_results_from_another_version_keep_the_old_report(results, tmp_path):
    report = tmp_path / "report.md"
    report.write_text("old report")
    data = json.loads((results / "dataset.json").read_text())
    del data["kaggle_reference_counts"]
    (results / "dataset.json").write_text(json.dumps(data))
    with pytest.raises(EcgError, match="incomplete or from another version"):
        write_report(results, report)
    assert report.read_text() == "old report"
    assert tmp_files(tmp_path) == []


def _candidate(name, pooled, f1):
    classes = {k: {"sensitivity": f1, "ppv": f1, "f1": f1, "support": 10} for k in "NSVFQ"}
    return {
        "name": name,
        "title": name.upper(),
        "protocol": "inter-patient",
        "test": {"classes": classes},
        "cross_validation": {"score": pooled},
    }


@pytest.mark.parametrize(
    ("test_f1", "verdict"),
    [
        (
            [0.6, 0.7, 0.8],
            "+1.00. The best candidate on DS2, C, scores 0.800 there; the shipped "
            "one 0.800: the pooled score ranks them much as DS2 does.",
        ),
        (
            [0.8, 0.7, 0.6],
            "-1.00. The best candidate on DS2, A, scores 0.800 there; the shipped "
            "one 0.600: the 22 training patients cannot tell these candidates apart.",
        ),
    ],
)
def test_model_choice_is_compared_with_the_test_side_after_the_fact(test_f1, verdict):
    rows = [_candidate(n, s, f) for n, s, f in zip("abc", (0.1, 0.2, 0.3), test_f1, strict=True)]
    assert _choice_versus_test(rows, "c").endswith(verdict)


def _run(name, s_se, pooled=0.5, seed=0, repeat_of=None):
    run = _candidate(name, pooled, 0.9)
    run["test"]["classes"]["S"]["sensitivity"] = s_se
    run["test"].update(accuracy=0.9, macro_f1=0.5)
    run.update(config={"seed": seed}, repeat_of=repeat_of)
    return run


@pytest.mark.parametrize(
    ("other_seed", "verdict"),
    [
        (
            0.45,
            "moves one recipe's pooled score by up to 0.050: which of the leading "
            "candidates wins is down to the seed.",
        ),
        (
            0.49,
            "moves one recipe's pooled score by up to 0.010: the lead is larger than the "
            "seed alone moves the score.",
        ),
    ],
)
def test_seed_repeats_get_their_own_table_and_stay_out_of_the_others(other_seed, verdict):
    results = {
        "a": _run("a", 0.5, pooled=0.5),
        "b": _run("b", 0.6, pooled=0.52),
        "a_seed1": _run("a_seed1", 0.4, pooled=other_seed, seed=1, repeat_of="a"),
    }
    assert [r["name"] for r in experiments(results, "inter-patient")] == ["a", "b"]
    assert [r["name"] for r in experiments(results, "inter-patient", repeats=True)] == ["a_seed1"]
    text = section_seed_spread(results)
    assert "| A | 0 | 0.500 | 90.00 | 0.500 | 50.0 / 90.0 | 90.0 / 90.0 |" in text
    assert f"| A | 1 | {other_seed:.3f} | 90.00 | 0.500 | 40.0 / 90.0 | 90.0 / 90.0 |" in text
    low = f"{other_seed:.3f}–0.500"
    assert f"| A, seeds | 2 | {low} | 40.0–50.0 | 90.0–90.0 |" in text
    assert "| candidates for unseen patients, seed 0 | 2 | 0.500–0.520 | 50.0–60.0 |" in text
    assert "leads the runner-up by 0.020" in text and text.rstrip().endswith(verdict)
    del results["a_seed1"]
    assert section_seed_spread(results) == ""


def test_s_goal_is_spelled_out_for_the_record_that_holds_most_s_beats():
    counts = {"201": {"S": 100}, "232": {"S": 700}, "100": {"S": 200}, "209": {"S": 900}}
    ds = {"record_counts": counts, "ds2": ["201", "232", "100"]}  # 209 is not in DS2
    # 80 % of 1,000 is 800; the 300 outside 232 leave 500 to find in it
    assert _s_target_note({"dataset": ds}).strip() == (
        "Record 232 holds 700 of DS2's 1,000 S beats (70 %), so S Se ≥ 80 % needs at least "
        "500 of them (71 %) even with every other S beat found."
    )
    assert _s_target_note({"dataset": {"ds2": ["232"]}}) == ""  # results of an older run


def _screened(f1):
    return {
        "nsv_f1": f1,
        "S": {"sensitivity": 0.5, "ppv": 0.4},
        "V": {"sensitivity": 0.8, "ppv": 0.7},
    }


@pytest.mark.parametrize(
    ("lead2", "verdict"),
    [(0.705, "none of them earns a place in the network yet"), (0.72, "worth building")],
)
def test_feature_screen_says_what_each_extra_input_adds(lead2, verdict):
    screen = {
        "model": "trees",
        "folds": [["101"], ["106"], ["108"], ["109"]],
        "p_wave_seconds": [0.3, 0.05],
        "sets": {
            "rr": _screened(0.6),
            "rhythm": _screened(0.7),
            "rhythm + lead 2": _screened(lead2),
            "rhythm + P wave, lead 1": _screened(0.69),
        },
    }
    text = section_feature_screen({"feature_screen": screen})
    assert "| rhythm + lead 2 | " in text and "| 50.0 / 40.0 | 80.0 / 70.0 |" in text
    assert f"P wave, lead 1 -0.010; {verdict}" in text
    assert "over 4 folds of whole records" in text
    assert section_feature_screen({}) == ""


def test_training_time_of_a_full_run_counts_repeats_and_cross_validation():
    plain = _run("a", 0.5)
    plain.update(train_seconds=600.0, cross_validation={"score": 0.5, "seconds": 1200.0})
    repeat = _run("a_seed1", 0.4, seed=1, repeat_of="a")
    repeat.update(train_seconds=1800.0, cross_validation=None)
    kaggle = dict(repeat, name="k", protocol="kaggle", repeat_of=None, train_seconds=3600.0)
    results = {"a": plain, "a_seed1": repeat, "k": kaggle}
    assert study_training_time(results) == (3, 7200.0)
    assert training_time_text(results, "`make study` from scratch") == (
        "`make study` from scratch trains 3 models; their recorded training times add up to "
        "2.0 h on this 2-core machine (evaluation and figures come on top)."
    )
    assert training_time_text({}) == ""


def _metrics(acc, f1, s_se=0.8, v_se=0.95):
    classes = {c: {"sensitivity": 0.9, "ppv": 0.9} for c in "NSVFQ"}
    classes["S"] = {"sensitivity": s_se, "ppv": 0.9}
    classes["V"] = {"sensitivity": v_se, "ppv": 0.9}
    return {"accuracy": acc, "macro_f1": f1, "classes": classes}


def _kaggle_run(name, title, acc, f1, architecture="resnet1d", **extra):
    cfg = {
        "architecture": architecture,
        "model_args": {"width": 32, "blocks": 2, "se": True},
        "epochs": 20,
        "batch_size": 128,
        "lr": 0.002,
        "ema": 0.999,
        "threads": 2,
        "distill_weight": 0.5,
        "distill_temperature": 2.0,
    }
    return {
        "name": name,
        "title": title,
        "config": cfg,
        "test": _metrics(acc, f1, **extra),
        "n_parameters": 411_421,
        "best_epoch": 18,
        "train_seconds": 1500.0,
        "device": {"type": "cpu", "threads": 2},
    }


def test_strong_model_section_sets_intra_patient_strength_against_new_patients():
    results = {
        "strong_kaggle": _kaggle_run("strong_kaggle", "SE-ResNet1D", 0.9931, 0.951),
        "strong_ip": _kaggle_run("strong_ip", "SE-ResNet1D", 0.90, 0.5, s_se=0.1, v_se=0.85),
        "distill_kaggle": _kaggle_run("distill_kaggle", "ECG1DCNN distilled", 0.989, 0.940),
        "ema_kaggle": _kaggle_run("ema_kaggle", "ECG1DCNN", 0.9885, 0.934),
        "shipped": {"ecg_cnn.pth": "ema_kaggle"},
    }
    text = section_strong_model(results)
    assert "411,421 parameters" in text and "ECGTransForm" in text
    assert "find 10.0 % of DS2's S beats" in text and "not generalisation" in text
    assert "`ema_kaggle` kept a better validation score" in text
    rows = {goal: (measured, ok) for goal, measured, ok in kaggle_target_rows(results)}
    assert [ok for _, ok in rows.values()] == [True, True, False]
    assert section_strong_model({}) == "" and kaggle_target_rows({}) == []


# ------------------------------------------------------------- issue 21, item 9


def test_report_links_only_figures_that_exist(results, tmp_path, quick_study):
    shutil.copytree(quick_study / "figures", tmp_path / "figures")
    first = write_report(results, tmp_path / "report.md").read_text()
    linked = FIGURE.findall(first)
    assert linked and all((tmp_path / f).is_file() for f in linked)
    (tmp_path / linked[0]).unlink()  # a figure the study did not draw
    text = write_report(results, tmp_path / "report.md").read_text()
    assert linked[0] not in FIGURE.findall(text)
    assert f"*Not generated: `{linked[0]}`" in text
    assert all((tmp_path / f).is_file() for f in FIGURE.findall(text))


def test_committed_report_links_only_committed_figures():
    text = render_report(load_results(ROOT / "results"), ROOT / "figures")
    missing = [f for f in FIGURE.findall(text) if not (ROOT / f).is_file()]
    assert FIGURE.findall(text) and missing == []


def _bench_model(weights: str, methods: tuple[str, ...]) -> dict:
    table = [
        {"method": m, "batch": 256, "beats_per_s": 1000 * (i + 1), "efficiency": 0.5,
         "speedup_vs_seed_loop": 1.0 + i}
        for i, m in enumerate(methods)
    ]  # fmt: skip
    return {"weights": weights, "architecture": "ecg1dcnn", "flops_per_beat": 2_743_360,
            "n_beats": 16_384, "table": table}  # fmt: skip


def test_inference_tables_say_which_weights_and_which_methods():
    results = {
        "fidelity": {"weights": "../shared/seed/ecg_cnn.pth"},
        "shipped": {"ecg_cnn.pth": "distill_kaggle", "ecg_utils/weights/interpatient.pth": "x"},
        "bench_inference": {
            "sgemm_flops": 2.3e11,
            "load_average_before": [1.0],
            "load_average_after": [1.0],
            "models": [
                _bench_model("/m/shared/seed/ecg_cnn.pth", ("seed-loop", "predict_proba", "x")),
                _bench_model("/m/main/ecg_cnn.pth", ("seed-loop", "predict_proba")),
                _bench_model("/m/main/ecg_utils/weights/interpatient.pth", ("seed-loop",)),
                _bench_model("/elsewhere/ecg_cnn_v2.pth", ("seed-loop",)),
            ],
        },
    }
    titles = [line for line in section_inference_speed(results).splitlines() if "MFLOP" in line]
    assert len(set(titles)) == 4, titles
    assert titles[0].startswith("The seed's published `ecg_cnn.pth`, every method (")
    assert titles[1].startswith("The repository's shipped `ecg_cnn.pth`, the main methods (")
    assert "shipped `ecg_utils/weights/interpatient.pth`" in titles[2]
    assert titles[3].startswith("`/elsewhere/ecg_cnn_v2.pth`, the main methods")


def test_commit_is_named_without_a_misleading_uncommitted_changes_phrase():
    commit = "65049ddd6ca41fcc764e31837b9c7e10529e4c5d"
    clean = commit_text({"git_commit": commit, "git_dirty": False})
    assert clean == f"`{commit}`"
    dirty = commit_text({"git_commit": commit, "git_dirty": True})  # which files: unknown
    assert dirty.startswith(f"`{commit}` (") and "uncommitted changes" not in dirty
    assert "does not record which" in dirty
    outputs = ["report.md", "README.md", "results/study.json", "figures/x.png", "ecg_cnn.pth"]
    assert commit_text({"git_commit": commit, "git_dirty": True, "git_changed": outputs}) == (
        f"`{commit}`"
    )
    code = commit_text({"git_commit": commit, "git_dirty": True, "git_changed": [*outputs, "a.py"]})
    assert code == f"`{commit}` with uncommitted changes to `a.py`"
    assert commit_text({}) == "`unknown`"
    env = {"python": "3.11", "platform": "Linux", "packages": {}, "git_commit": commit}
    study = {"quick": False, "seconds": 8.0, "environment": {**env, "git_dirty": True}}
    text = render_report({"study": study})
    assert f"that call at git commit `{commit}` (" in text and "uncommitted" not in text


def test_a_second_write_report_leaves_unchanged_files_untouched(results, tmp_path):
    report, readme = tmp_path / "report.md", tmp_path / "README.md"
    readme.write_text("# x\n<!-- results:start -->\nOLD BLOCK\n<!-- results:end -->\ntail\n")
    write_report(results, report, readme)
    assert "OLD BLOCK" not in readme.read_text() and report.is_file()
    past = 1_000_000_000_000_000_000  # ns: any rewrite would move the mtime off it
    for path in (report, readme):
        os.utime(path, ns=(past, past))
    write_report(results, report, readme)
    assert report.stat().st_mtime_ns == past and readme.stat().st_mtime_ns == past
    report.write_text("stale")
    write_report(results, report, readme)
    assert report.read_text() != "stale" and readme.stat().st_mtime_ns == past
    assert tmp_files(tmp_path) == []


def test_targets_judge_the_relative_models_predict_runs():
    """The Targets rows name the relative weights and follow their figures: the DS2 S
    goal flips to met when the default path's S meets it; the fine-tuning rows follow."""
    import copy

    from ecg_utils.report.relative import relative_target_rows
    from ecg_utils.report.relative_patient import patient_target_rows

    results = load_results(ROOT / "results")
    rows = relative_target_rows(results)
    s_row = next(r for r in rows if "relative_ds1.pth" in r[0] and ": S Se" in r[0])
    assert "as `predict` runs it" in s_row[0]
    better = copy.deepcopy(results)
    s = better["relative"]["default_path"]["benchmark_ds2"]["classes"]["S"]
    s.update(sensitivity=0.95, ppv=0.95)
    flipped = next(r for r in relative_target_rows(better) if r[0] == s_row[0])
    assert flipped[2] and flipped[1] == "95.0 / 95.0 %"
    s.update(sensitivity=0.95, ppv=0.5)
    assert not next(r for r in relative_target_rows(better) if r[0] == s_row[0])[2]
    patient = patient_target_rows(results)
    assert any("fine-tuned" in goal for goal, _, _ in patient)
    slow = copy.deepcopy(results)
    slow["relative_patient"]["ds2"]["seconds_per_record"] = 4.0
    assert next(r for r in patient_target_rows(slow) if "≤ 5 s" in r[0])[2]
    assert relative_target_rows({}) == [] and patient_target_rows({}) == []
