"""Write ``ecg_classification.ipynb`` from the cells below (the notebook's source of truth).

Run ``python tools/run_notebook.py ecg_classification.ipynb`` afterwards to execute it in
place, so the committed copy carries the outputs of a full run. The project's git URL
(for the Colab badge and the Colab setup cell) is read from ``pyproject.toml``'s
``[project.urls] Repository``, written there once.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_NAME = "ecg_classification.ipynb"


def repository_url() -> str:
    """The project's git URL from ``pyproject.toml`` (``[project.urls] Repository``)."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return meta["project"]["urls"]["Repository"]


def colab_url() -> str:
    """Colab's address of the notebook on the default branch of the GitHub repository."""
    owner_repo = repository_url().removeprefix("https://github.com/").removesuffix(".git")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/main/{NOTEBOOK_NAME}"


REPO_URL = repository_url()
BADGE = (
    f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url()})"
)

CELLS: list[tuple] = [
    (
        "md",
        f"""# ECG heartbeat classification on MIT-BIH

{BADGE}

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
        """## Setup and parameters

The first cell finds the project. Inside a checkout (a `pyproject.toml` of the project
in the current folder, the notebook's folder in Jupyter) it uses that folder, and
installs it (`pip install -e`) only when it is not installed yet; elsewhere (Colab) it
clones the repository named in `pyproject.toml` and installs it, keeping Colab's
PyTorch (*Runtime → Change runtime type → GPU* for a faster study). Locally,
`make notebook` installs everything and runs the notebook.

The second cell holds the parameters. By default the notebook trains **one ECG1DCNN**
(section 5, a few minutes on a CPU) and **reuses the committed results** of the whole
study (32 models, about 3.5 hours on 2 CPU cores) for the rest: change `TRAIN_ALL` (and
`REUSE`) there and rerun to train more.""",
    ),
    (
        "code",
        f"""import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

REPO_URL = os.environ.get("ECG_REPO_URL", "{REPO_URL}")


def project_folder(folder: Path) -> bool:
    \"\"\"Whether ``folder`` is a checkout of this project.\"\"\"
    return (folder / "pyproject.toml").is_file() and (folder / "ecg_utils").is_dir()


checkout = next((f for f in (Path.cwd(), Path.cwd() / "ecg-classification")
                 if project_folder(f)), None)
if checkout is None:
    print(f"not inside a checkout of the project: cloning {{REPO_URL}}")
    cloned = subprocess.run(["git", "clone", "-q", "--depth", "1", REPO_URL,
                             "ecg-classification"], capture_output=True, text=True)
    if cloned.returncode != 0:
        print(f"CLONE FAILED: {{REPO_URL}} could not be cloned:", cloned.stderr.strip(),
              sep="\\n")
        raise SystemExit("upload the project folder and open the notebook from it, or set "
                         "os.environ['ECG_REPO_URL'] to the project's git URL; then rerun")
    checkout = Path("ecg-classification").resolve()
    print("cloned into", checkout)
else:
    print("inside a checkout of the project:", checkout.resolve())
os.chdir(checkout)
try:
    importlib.metadata.version("ecg-classification")
    print("ecg-classification is installed: nothing to install")
except importlib.metadata.PackageNotFoundError:
    print("installing", checkout.resolve(), "(pip install -e) with requirements.txt")
    # requirements.txt asks for torch>=2.1 only, so Colab's CUDA build stays
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", "requirements.txt",
                    "-e", "."], check=True)
sys.path.insert(0, os.getcwd())""",
    ),
    (
        "code",
        """# Parameters: change a value, then rerun the notebook (Run all).
QUICK = False      # True: a smoke run (small training sets, 1 epoch, a two-model study)
REUSE = True       # True: reuse the committed results of the study (results/, figures/)
TRAIN_ALL = False  # True: run the study (32 models, about 3.5 h on 2 CPU cores; with
                   # REUSE the committed results of the same configuration are kept)
DEVICE = "auto"    # "auto" (a CUDA GPU, else Apple MPS, else the CPU), "cuda", "mps", "cpu"
OUT = None         # output folder; None: the project folder (study-quick/ for a smoke run)
MITDB_DIR = None   # a local copy of mitdb; None: found (ECG_MITDB_DIR, ...) or downloaded
SEED_WEIGHTS = "../shared/seed/ecg_cnn.pth"  # the seed's weights, if any (fidelity check)

# make notebook, tools/run_notebook.py and the tests may set them in the environment
QUICK = (os.environ.get("ECG_QUICK") or str(int(QUICK))) == "1"
REUSE = (os.environ.get("ECG_REUSE_RESULTS") or str(int(REUSE))) == "1"
TRAIN_ALL = (os.environ.get("ECG_TRAIN_ALL") or str(int(TRAIN_ALL))) == "1"
DEVICE = os.environ.get("ECG_DEVICE") or DEVICE
OUT = Path(os.environ.get("ECG_OUT") or OUT or ("study-quick" if QUICK else "."))
MITDB_DIR = os.environ.get("ECG_MITDB_DIR") or MITDB_DIR
SEED_WEIGHTS = Path(os.environ.get("ECG_SEED_WEIGHTS") or SEED_WEIGHTS)""",
    ),
    (
        "code",
        """os.environ.setdefault("TQDM_MININTERVAL", "5")  # progress bars update every 5 s at most
%matplotlib inline
import json
import warnings

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from IPython.display import Image, Markdown, display
from tqdm import TqdmWarning

import ecg_utils
from ecg_utils import sources

warnings.filterwarnings("ignore", category=TqdmWarning)  # text bars without ipywidgets
device = ecg_utils.resolve_device(DEVICE)
if QUICK:
    study = "smoke run: a two-model study"
elif TRAIN_ALL or not REUSE:
    study = "the study is run" + (" (committed results kept)" if REUSE else "")
else:
    study = "one ECG1DCNN trained, the committed study results read"
print(study, "| outputs in", OUT.resolve(), "| device", device)""",
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
        """counts = beats.counts()
ax = sns.barplot(x=list(counts), y=list(counts.values()), color="tab:blue")
ax.set_yscale("log")
ax.bar_label(ax.containers[0])
ax.set(xlabel="AAMI class", ylabel="beats (log scale)", title="Beats per class, 48 records")
plt.show()""",
        ["class-counts"],
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
        """## 3. A PyTorch dataset

`ecg_utils.BeatDataset` is a `torch.utils.data.Dataset` over the beats: item *i* is the
beat `(1, 187)` at 120 Hz, its per-beat features (none for ECG1DCNN), its class and,
for distillation, a teacher's soft targets. A `DataLoader` stacks items into batches.
The Kaggle protocol splits the beats at random, 80/20 per class as Kaggle's CSVs do,
and holds a tenth of the training side out for validation.""",
    ),
    (
        "code",
        """from torch.utils.data import DataLoader

split = ecg_utils.make_split(beats, "kaggle")
train_beats, val_beats, test_beats = (beats.subset(getattr(split, side))
                                      for side in ("train", "val", "test"))
if QUICK:  # a smoke run trains on every 20th beat
    train_beats = train_beats.subset(np.arange(0, len(train_beats), 20))
    val_beats = val_beats.subset(np.arange(0, len(val_beats), 5))
print(f"train {len(train_beats)}, validation {len(val_beats)}, test {len(test_beats)} beats")

dataset = ecg_utils.BeatDataset(train_beats)
loader = DataLoader(dataset, batch_size=128, shuffle=True,
                    generator=torch.Generator().manual_seed(0))
x, features, label, soft = next(iter(loader))
print("one batch:", tuple(x.shape), x.dtype, "| labels", tuple(label.shape), label.dtype)
print("classes in this batch:", np.bincount(label.numpy(), minlength=5))
plt.figure(figsize=(8, 2.4))
plt.plot(np.arange(x.shape[-1]) / ecg_utils.FS_BEAT, x[:4, 0].T.numpy())
plt.xlabel("time (s)")
plt.title("four beats of the batch: " + ", ".join(ecg_utils.CLASS_NAMES[i] for i in label[:4]))
plt.show()""",
        ["dataset"],
    ),
    (
        "md",
        """## 4. The model

The seed's network, `ECG1DCNN`: two convolutions with batch normalisation and max
pooling, then two fully connected layers; it takes `(batch, 1, 187)` beats and gives
five logits.""",
    ),
    (
        "code",
        """model = ecg_utils.build_model("ecg1dcnn")
print(model)
print(f"{ecg_utils.count_parameters(model):,} parameters;",
      "logits", tuple(model(x[:2]).shape), "for a batch of 2")""",
        ["model"],
    ),
    (
        "md",
        """## 5. Training one model

`ecg_utils.train` runs the training loop: Adam with a one-cycle learning rate, batches
from the `DataLoader` above, one validation pass per epoch, and the epoch with the best
validation macro-F1 kept. Five epochs here (one in a smoke run), on `device`: the one
model the notebook trains by default. The study below trains this recipe for 30 epochs
with a weight average.""",
    ),
    (
        "code",
        """cfg = ecg_utils.TrainConfig(architecture="ecg1dcnn", epochs=1 if QUICK else 5,
                            batch_size=128, lr=2e-3, schedule="onecycle")
result = ecg_utils.train(cfg, train_beats, val_beats, progress=True, device=DEVICE)
print(f"best epoch {result.best_epoch} of {cfg.epochs}, {result.seconds:.0f} s on {device}")""",
        ["training"],
    ),
    (
        "code",
        """from ecg_utils.evaluation import plot_learning_curves

(OUT / "figures").mkdir(parents=True, exist_ok=True)
curve = plot_learning_curves(result.history, OUT / "figures" / "notebook_curves.png",
                             "ECG1DCNN trained in this notebook")
display(Image(filename=str(curve)))""",
        ["learning-curve"],
    ),
    (
        "code",
        """from ecg_utils.evaluation import classification_metrics, plot_confusion_matrices
from ecg_utils.inference import predict_beat_set

pred = predict_beat_set(result.model, test_beats, None).argmax(1)
metrics = classification_metrics(test_beats.y, pred)
print(f"Kaggle test side: accuracy {100 * metrics['accuracy']:.2f} %, "
      f"macro-F1 {metrics['macro_f1']:.3f}")
matrix = plot_confusion_matrices(metrics["confusion"], OUT / "figures" / "notebook_confusion.png",
                                 "ECG1DCNN trained in this notebook, Kaggle test side")
display(Image(filename=str(matrix)))""",
        ["confusion-matrix"],
    ),
    (
        "md",
        """## 6. The whole study

`run_study` trains every model of the study on both protocols, evaluates it on the test
side, and writes `results/*.json`, figures and the shipped weights. By default
(`REUSE = True`, `TRAIN_ALL = False`) nothing is trained here: the cell says what the
whole study would train and how long that should take on this device (from the recorded
training times, scaled by a short speed probe), and the sections below read the
committed results. `TRAIN_ALL = True` runs the study; with `REUSE = True` it keeps the
committed results whose configuration and data match, with `REUSE = False` it trains
all 32 models again. A smoke run (`QUICK = True`) runs a two-model study (one ECG1DCNN
per protocol, one epoch each) into its own folder.""",
    ),
    (
        "code",
        """from dataclasses import replace

from ecg_utils.plan import describe_plan, plan_study
from ecg_utils.study import StudyOptions, run_study

opts = StudyOptions(
    mitdb_dir=mitdb,
    out_dir=OUT,
    cache_dir=sources.default_cache_dir(),
    quick=QUICK,
    seed_weights=SEED_WEIGHTS if SEED_WEIGHTS.exists() else None,
    progress=False,
    device=DEVICE,
    reuse_results=REUSE,
    experiments=["seed_kaggle", "seed_ip"] if QUICK else None,  # a smoke run: two models
)
study_file = OUT / "results" / "study.json"
if QUICK or TRAIN_ALL or not REUSE:
    print(describe_plan(plan_study(opts)))
    summary = run_study(opts)
    print(json.dumps(summary["experiments"]), f"{summary['seconds']:.0f} s")
elif study_file.exists():
    print("REUSE: nothing is trained; reading the committed results in",
          study_file.parent.resolve())
    print("With TRAIN_ALL = True and REUSE = False (every model trained again):")
    print(describe_plan(plan_study(replace(opts, reuse_results=False))))
    summary = json.loads(study_file.read_text())
else:
    raise SystemExit(f"REUSE: no results in {study_file.parent.resolve()}; "
                     "set TRAIN_ALL = True (or QUICK = True) in the parameters")""",
        ["study"],
    ),
    (
        "md",
        """## 7. Fidelity check

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
        """## 8. Your own recording

`classify_record` takes a signal at any sampling rate and in any units (1-D, or samples ×
leads: the first column is classified, the next one is read as the second lead), finds
the R peaks (a Pan-Tompkins-style detector chosen by measurement on all 48 records) and
classifies each beat with `ecg_utils.DEFAULT_WEIGHTS`, the product model for new
patients: boosted trees that judge each beat against the patient's own rhythm and usual
beat (`ecg_utils.relative`), trained on all 48 records, with the unsupervised adaptation
its metadata names. Here: record 100 resampled to 250 Hz, as if it came from another
device; the command line does the same with
`python -m ecg_utils predict RECORD.hea --out beats.csv --plot strip.png`.
`sensitivity="high"` (`--sensitivity high`) flags more S and V beats at a lower +P (the
most found with +P ≥ 30 % on records the model never saw).""",
    ),
    (
        "code",
        """from scipy.signal import resample_poly

from ecg_utils.predict import plot_strip, summarize
from ecg_utils.records import read_signal

signal, fs, leads = read_signal(Path(mitdb) / "100")
x250 = resample_poly(signal, 25, 36, axis=0)  # both leads, 360 Hz -> 250 Hz
table = ecg_utils.classify_record(x250, 250.0)
print(summarize(table, 250.0))
flagged = ecg_utils.classify_record(x250, 250.0, sensitivity="high")
print("with sensitivity='high':", summarize(flagged, 250.0))
display(table.head())
strip = plot_strip(x250[:, 0], 250.0, table, OUT / "figures" / "strip_100.png", seconds=10)
display(Image(filename=str(strip)))""",
    ),
    (
        "md",
        """### Noise

Ambulatory recordings have stretches that cannot be read. `classify_with_quality` returns
the table and the lead's signal quality (`ecg_utils.quality`): beats in noisy 10-s windows
are marked `noisy` in the `quality` column and labelled Q, never V or S
(`keep_noisy=True`, `--keep-noisy`, keeps the classifier's label). Here the same record
with the project's electrode-motion, muscle and baseline noise at 0 dB added in the
noise-test layout (`ecg_utils.noise`: from minute 5, 2 minutes noisy, 2 clean, ...); the
strip shades the noisy windows.""",
    ),
    (
        "code",
        """from ecg_utils.beats import annotated_beats
from ecg_utils.noise import noise_stress
from ecg_utils.records import read_annotations

ref, _ = annotated_beats(*read_annotations(Path(mitdb) / "100"))
noisy = noise_stress(signal, fs, ref, "ambulatory", 0.0, seed=0)
table_n, quality = ecg_utils.classify_with_quality(noisy.signal, fs)
print(summarize(table_n, fs))
print(f"noisy share {100 * quality.noisy_share:.0f} % "
      f"(noise added to {100 * (noisy.noisy_s @ [-1, 1]).sum() * fs / len(signal):.0f} %)")
kept = ecg_utils.classify_record(noisy.signal, fs, keep_noisy=True)
print("with keep_noisy=True:", summarize(kept, fs))
strip = plot_strip(noisy.signal[:, 0], fs, table_n, OUT / "figures" / "strip_100_noise.png",
                   seconds=20, start=410, noisy_s=quality.intervals())
display(Image(filename=str(strip)))""",
    ),
    (
        "md",
        """### Adapting to one patient

An analyst who labels the first 5 minutes of a recording can adapt the model to that
patient (`ecg_utils.adapt`, or `python -m ecg_utils adapt RECORD --ann atr --minutes 5
--out patient.pth`): the shipped model is fine-tuned on the patient's labelled beats mixed
with a replay of its own training beats (`ecg_utils.finetune`). Record 232 of DS2 (mostly
atrial premature beats in a right-bundle-branch-block patient) adapted from its first 5
minutes, scored on the other 25, with the benchmark model (trained on DS1):""",
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
    ecg_utils.BENCHMARK_WEIGHTS, signal, fs, labelled, r_peaks=peaks, record="232"
)
print(patient.meta["patient"]["labels_per_class"])
scored = ~first
for name, weights in (("benchmark", ecg_utils.BENCHMARK_WEIGHTS), ("adapted", patient)):
    pred = ecg_utils.classify_record(signal, fs, r_peaks=peaks, weights=weights)
    pred = pred["label"].to_numpy()[scored]
    s_beats = labels[scored] == 1
    print(f"{name:9}: {(pred[s_beats] == 1).sum()} of {s_beats.sum()} S beats found, "
          f"{(pred != labels[scored]).sum()} errors in {scored.sum()} beats")
    m = classification_metrics(labels[scored], pred)
    fig = plot_confusion_matrices(
        m["confusion"], OUT / "figures" / f"notebook_232_{name}.png", f"record 232, {name}"
    )
    display(Image(filename=str(fig)))""",
    ),
    (
        "md",
        """## 9. Results on both protocols

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

The models `predict` runs judge each beat against the patient's own rhythm and usual beat
(`ecg_utils.relative`): boosted trees chosen on DS1 record folds and svdb-dev, the
benchmark (`BENCHMARK_WEIGHTS`, DS1 only, judged once on DS2) and the product
(`DEFAULT_WEIGHTS`, all 48 records). Below: the candidates, both shipped models beside
published results, the networks and stacked fusions judged by the same rule, the S and V
sensitivity against +P, and adaptation to a patient's labelled beats (few-labels curves
included).""",
    ),
    (
        "code",
        """from ecg_utils.report import (
    section_relative,
    section_relative_fusion,
    section_relative_patient,
)

for section in (section_relative, section_relative_fusion, section_relative_patient):
    text = section(results)
    if text:  # the figure is shown below, from the run's own folder
        lines = [line for line in text.splitlines() if not line.startswith("![")]
        display(Markdown("\\n".join(lines)))
curve = OUT / "figures" / "relative_operating.png"
if curve.exists():
    display(Image(filename=str(curve)))""",
    ),
    (
        "md",
        """The earlier network models (`NETWORK_BENCHMARK_WEIGHTS`, `NETWORK_PRODUCT_WEIGHTS`):
the benchmark (DS1 only, judged on DS2) and the product (all 48 records, judged by
record-fold cross-validation), each with a balanced and a high-sensitivity operating
point, the ablation of what was tried and where the models fail.""",
    ),
    (
        "code",
        """from ecg_utils.report import section_new_patients

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
        """## 10. What the models look at

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
        """## 11. Report""",
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
    for kind, source, *tags in CELLS:
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        if tags:
            cell.metadata["tags"] = tags[0]
        nb.cells.append(cell)
    from ecg_utils._io import atomic_path

    with atomic_path(path) as tmp:
        nbformat.write(nb, tmp)


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / NOTEBOOK_NAME)
