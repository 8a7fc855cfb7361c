"""Write ``ecg_classification.ipynb`` from the cells below (the notebook's source of truth).

Run ``python tools/run_notebook.py ecg_classification.ipynb`` afterwards to execute it in
place, so the committed copy carries the outputs of a full run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """# ECG heartbeat classification on MIT-BIH

This notebook runs the whole study of **ecg-classification** from raw data to report:
beats from the MIT-BIH Arrhythmia Database segmented as in the Kaggle heartbeat set
(Kachuee et al. 2018), a 1D CNN trained with PyTorch, honest evaluation on two protocols
(Kaggle's random beat split and de Chazal's inter-patient split) and prediction on a new
recording. Every step calls the `ecg_utils` package; the command line
(`python -m ecg_utils …`) does the same steps.

Classes (AAMI): **N** normal, **S** supraventricular ectopic, **V** ventricular ectopic,
**F** fusion, **Q** paced/unclassifiable.""",
    ),
    (
        "md",
        """## Setup

In Colab, the first cell installs the requirements (Colab's own PyTorch is kept) and
clones the project when `ecg_utils` is not importable: set `ECG_REPO_URL` to the
project's git URL. Locally, install with `make install` and start Jupyter from the
project folder.""",
    ),
    (
        "code",
        """import os
import subprocess
import sys
from pathlib import Path

IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    try:
        import ecg_utils  # noqa: F401
    except ImportError:
        repo = os.environ.get("ECG_REPO_URL")
        if not repo:
            raise RuntimeError("set ECG_REPO_URL to this project's git URL, then rerun")
        subprocess.run(["git", "clone", "--depth", "1", repo, "ecg-classification"], check=True)
        os.chdir("ecg-classification")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r",
                        "requirements.txt", "-e", "."], check=True)
        sys.path.insert(0, os.getcwd())""",
    ),
    (
        "code",
        """# Parameters: ECG_QUICK=1 makes a smoke run (1 epoch per model, small training sets);
# ECG_REUSE_RESULTS=1 reads the results already in OUT/results instead of running the study.
QUICK = os.environ.get("ECG_QUICK") == "1"
REUSE = os.environ.get("ECG_REUSE_RESULTS") == "1"
OUT = Path(os.environ.get("ECG_OUT", "."))
MITDB_DIR = os.environ.get("ECG_MITDB_DIR")  # a local copy of mitdb, else it is downloaded
SEED_WEIGHTS = Path(os.environ.get("ECG_SEED_WEIGHTS", "../shared/seed/ecg_cnn.pth"))

import json

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, Markdown, display

import ecg_utils
from ecg_utils import sources

print("quick run" if QUICK else "full run", "| outputs in", OUT.resolve())""",
    ),
    (
        "md",
        """## 1. Data

Two sources: the Kaggle CSVs (`mitbih_train.csv` / `mitbih_test.csv`, through the Kaggle
API when credentials exist) or the raw PhysioNet records, read from a local folder or
downloaded with SHA-256 checks. The study itself needs the records: the inter-patient
protocol needs to know which patient each beat comes from, and the Kaggle CSVs do not say.""",
    ),
    (
        "code",
        """kaggle_dir = None
try:
    kaggle_dir = sources.resolve_kaggle_dir()
    print("Kaggle CSVs in", kaggle_dir)
except ecg_utils.EcgError as err:
    print("Kaggle CSVs not used:", err)

mitdb = sources.resolve_mitdb_dir(MITDB_DIR)
print("MIT-BIH records in", mitdb)""",
    ),
    (
        "md",
        """## 2. Beats

Each annotated beat becomes every third 360 Hz sample (120 Hz) from its R peak, over
1.2 × its next RR interval, min-max scaled to [0, 1] and zero-padded to 187 samples. This
is what the published Kaggle rows are (traced back to records 122 and 103), although the
paper describes 125 Hz and 10 s normalisation windows. Labels follow the AAMI mapping of
the annotation symbols; each record's last beat has no next RR and is dropped, as in Kaggle.""",
    ),
    (
        "code",
        """beats = ecg_utils.build_beats(mitdb, sources.default_cache_dir())
from ecg_utils.study import KAGGLE_REFERENCE_COUNTS

print(f"{'class':6}{'ours':>8}{'Kaggle':>8}")
for name, n in beats.counts().items():
    print(f"{name:6}{n:>8}{KAGGLE_REFERENCE_COUNTS[name]:>8}")
print(f"{'all':6}{len(beats):>8}{sum(KAGGLE_REFERENCE_COUNTS.values()):>8}")
print("lead notes:", beats.meta["lead_notes"])""",
    ),
    (
        "code",
        """fig, axes = plt.subplots(1, 5, figsize=(15, 2.6), sharey=True)
t = np.arange(ecg_utils.BEAT_LENGTH) / ecg_utils.FS_BEAT
rng = np.random.default_rng(0)
for k, ax in enumerate(axes):
    idx = rng.choice(np.flatnonzero(beats.y == k), 5, replace=False)
    ax.plot(t, beats.x[idx].T, lw=0.8)
    ax.set_title(ecg_utils.CLASS_NAMES[k])
    ax.set_xlabel("time (s)")
axes[0].set_ylabel("normalised amplitude")
plt.tight_layout()""",
    ),
    (
        "md",
        """## 3. The whole study

`run_study` trains every model of the study on both protocols, evaluates it on the test
side, and writes `results/*.json`, figures and the shipped weights. Work already done
with the same configuration is skipped, so rerunning this cell after a full run only
reads the results. With `ECG_REUSE_RESULTS=1` the cell reads the results already in
`OUT/results` (the committed ones in a fresh clone) and trains nothing.""",
    ),
    (
        "code",
        """from ecg_utils.study import StudyOptions, run_study

opts = StudyOptions(
    mitdb_dir=mitdb,
    out_dir=OUT,
    cache_dir=sources.default_cache_dir(),
    quick=QUICK,
    seed_weights=SEED_WEIGHTS if SEED_WEIGHTS.exists() else None,
    progress=False,
)
study_file = OUT / "results" / "study.json"
if REUSE and study_file.exists():
    summary = json.loads(study_file.read_text())
    print("reusing the results in", study_file.parent)
else:
    summary = run_study(opts)
    print(json.dumps(summary["experiments"]), f"{summary['seconds']:.0f} s")""",
    ),
    (
        "md",
        """## 4. Fidelity check

The seed's published weights were trained on Kaggle's CSV; on our rebuilt beats they
should do about as well as on Kaggle's own test rows.""",
    ),
    (
        "code",
        """fidelity_file = OUT / "results" / "fidelity.json"
if fidelity_file.exists():
    fid = json.loads(fidelity_file.read_text())
    for key, m in fid.items():
        if isinstance(m, dict) and "accuracy" in m:
            print(f"{key:24} accuracy {100 * m['accuracy']:.2f} %  macro-F1 {m['macro_f1']:.3f}")
else:
    print("seed weights not available: fidelity check skipped")""",
    ),
    (
        "md",
        """## 5. Your own recording

`classify_record` takes a signal at any sampling rate (1-D in mV, or samples × leads),
finds the R peaks (a Pan-Tompkins-style detector chosen by measurement on all 48
records), cuts the beats exactly as in training and classifies them with
`ecg_utils.DEFAULT_WEIGHTS`, the product model for new patients (trained on all 48
records). Here: record 100 resampled to 250 Hz, as if it came from another device; the
command line does the same with
`python -m ecg_utils predict RECORD.hea --out beats.csv --plot strip.png`.
`sensitivity="high"` (`--sensitivity high`) flags more S and V beats at a lower +P.""",
    ),
    (
        "code",
        """from scipy.signal import resample_poly

from ecg_utils.predict import plot_strip, summarize
from ecg_utils.records import read_signal

signal, fs, leads = read_signal(Path(mitdb) / "100")
x250 = resample_poly(signal[:, 0], 25, 36)  # 360 Hz -> 250 Hz
table = ecg_utils.classify_record(x250, 250.0)
print(summarize(table, 250.0))
flagged = ecg_utils.classify_record(x250, 250.0, sensitivity="high")
print("with sensitivity='high':", summarize(flagged, 250.0))
display(table.head())
strip = plot_strip(x250, 250.0, table, OUT / "figures" / "strip_100.png", seconds=10)
display(Image(filename=str(strip)))""",
    ),
    (
        "md",
        """### Adapting to one patient

An analyst who labels the first 5 minutes of a recording can adapt the model to that
patient (`ecg_utils.adapt`, or `python -m ecg_utils adapt RECORD --ann atr --minutes 5
--out patient.pth`): the model keeps its weights and adds the patient's labelled beats as
neighbours that vote. Record 232 of DS2 (mostly atrial premature beats, which the
benchmark model, trained on DS1, takes for normal ones) from its first 5 minutes, scored
on the other 25:""",
    ),
    (
        "code",
        """from ecg_utils.detected_eval import reference_beats

path = Path(mitdb) / "232"
signal, fs, _ = read_signal(path)
peaks, labels = reference_beats(path)
first = peaks < 5 * 60 * fs
labelled = list(zip(peaks[first], labels[first]))
patient = ecg_utils.adapt(
    ecg_utils.BENCHMARK_WEIGHTS, signal[:, 0], fs, labelled, r_peaks=peaks, record="232"
)
print(patient.meta["patient"]["labels_per_class"])
scored = ~first
for name, weights in (("benchmark", ecg_utils.BENCHMARK_WEIGHTS), ("adapted", patient)):
    pred = ecg_utils.classify_record(signal[:, 0], fs, r_peaks=peaks, weights=weights)
    pred = pred["label"].to_numpy()[scored]
    s_beats = labels[scored] == 1
    print(f"{name:9}: {(pred[s_beats] == 1).sum()} of {s_beats.sum()} S beats found, "
          f"{(pred != labels[scored]).sum()} errors in {scored.sum()} beats")""",
    ),
    (
        "md",
        """## 6. Results on both protocols

The report below is generated from the results files (`python -m ecg_utils report`).""",
    ),
    (
        "code",
        """from ecg_utils.report import load_results, render_report

results = load_results(OUT / "results")
for name, r in sorted(results.items()):
    if r.get("protocol") and r.get("test") and not (r.get("repeat_of") or r.get("member_of")):
        m = r["test"]
        se = {c: 100 * m["classes"][c]["sensitivity"] for c in ("S", "V")}
        print(f"{r['protocol']:14} {r['title']:40} acc {100 * m['accuracy']:6.2f} %  "
              f"macro-F1 {m['macro_f1']:.3f}  S Se {se['S']:5.1f} %  V Se {se['V']:5.1f} %")""",
    ),
    (
        "md",
        """### New patients

Two models: the benchmark (DS1 only, judged on DS2) and the product (all 48 records,
judged by record-fold cross-validation), each with a balanced and a high-sensitivity
operating point, the ablation of what was tried and where the models fail.""",
    ),
    (
        "code",
        """from ecg_utils.report_new_patients import section_new_patients

new_patients = section_new_patients(results)
display(Markdown(new_patients or "(no new-patient models in these results)"))
for fig_path in sorted((OUT / "figures").glob("operating_*.png")):
    display(Image(filename=str(fig_path)))""",
    ),
    (
        "md",
        """The model for unseen patients is chosen without DS2: each candidate is
cross-validated over folds of whole DS1 records, and the best pooled out-of-fold score
wins. DS2 is only used for the test figures above.""",
    ),
    (
        "code",
        """from ecg_utils.report import section_model_choice

choice = section_model_choice(results)
display(Markdown(choice or "(no cross-validated candidates in these results)"))""",
    ),
    (
        "md",
        """One run per recipe cannot say whether a difference between two models is real, so
some recipes are trained again with other seeds (full runs only; a smoke run skips
them):""",
    ),
    (
        "code",
        """from ecg_utils.report import section_seed_spread

spread = section_seed_spread(results)
display(Markdown(spread or "(no seed repeats in these results: a smoke run skips them)"))""",
    ),
    (
        "code",
        """for name, r in sorted(results.items()):
    fig_path = OUT / "figures" / f"confusion_{name}.png"
    if "test" in r and fig_path.exists():
        display(Markdown(f"**{r['title']}** ({r['protocol']})"))
        display(Image(filename=str(fig_path)))""",
    ),
    (
        "md",
        """## 7. What the models look at

Grad-CAM of the predicted class for typical and misclassified test beats of each class
(`python -m ecg_utils explain`); the study draws it for every shipped candidate.""",
    ),
    (
        "code",
        """shipped = json.loads((OUT / "results" / "shipped.json").read_text())
for target, name in shipped.items():
    fig_path = OUT / "figures" / f"explain_{name}.png"
    if fig_path.exists():
        display(Markdown(f"**{name}** → `{target}`"))
        display(Image(filename=str(fig_path)))""",
    ),
    (
        "md",
        """## 8. Report""",
    ),
    (
        "code",
        """from ecg_utils.report import write_report

report_path = write_report(OUT / "results", OUT / "report.md")
display(Markdown(report_path.read_text()))""",
    ),
]


def build(path: Path) -> None:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source in CELLS:
        nb.cells.append(new_markdown_cell(source) if kind == "md" else new_code_cell(source))
    nbformat.write(nb, path)


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("ecg_classification.ipynb"))
