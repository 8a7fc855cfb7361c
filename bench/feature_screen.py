"""Would more inputs help unseen patients? A fast screen on DS1 record folds.

Gradient-boosted trees (scikit-learn's ``HistGradientBoostingClassifier``) stand in for
the network, so that each input set costs seconds instead of minutes. Every set is
judged out-of-fold on DS1 only, over the same kind of folds of whole records that choose
the shipped model (4 folds, seed 0); DS2 plays no part. Besides the model's feature sets
(``rr``, ``rr+morph``, ``rhythm``), two inputs the issue asks about are screened:

- the second lead (V1 in most records): how each beat there differs from the record's
  median beat (the same four template features as on the first lead);
- the P wave: the stretch 0.30-0.05 s before each R peak, referenced to its last sample,
  compared with the record's median stretch (correlation, and RMS difference over the
  median stretch's standard deviation), on each lead.

Writes ``results/feature_screen.json``; the report shows it.

Usage: ``python bench/feature_screen.py [--mitdb-dir DIR] [--cache-dir DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import f1_score, precision_recall_fscore_support

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecg_utils._io import write_text_atomic  # noqa: E402
from ecg_utils.beats import (  # noqa: E402
    FS_BEAT,
    Beats,
    beat_features,
    build_beats,
    pick_lead,
    segment_beats,
    template_features,
)
from ecg_utils.records import read_signal  # noqa: E402
from ecg_utils.splits import inter_patient_sides, record_folds  # noqa: E402

N_FOLDS, FOLD_SEED = 4, 0
P_WAVE_S = (0.30, 0.05)
"""Start and end of the stretch before the R peak, in seconds."""
SETS = {
    "rr": ("rr", ()),
    "rr+morph": ("rr+morph", ()),
    "rhythm": ("rhythm", ()),
    "rhythm + lead 2": ("rhythm", ("lead2",)),
    "rhythm + P wave, lead 1": ("rhythm", ("p1",)),
    "rhythm + P wave, both leads": ("rhythm", ("p1", "p2")),
    "rhythm + lead 2 + P wave, both leads": ("rhythm", ("lead2", "p1", "p2")),
}
"""Input sets screened: a feature set of the model, plus extra inputs."""


def p_wave_stretch(x: np.ndarray, fs: float, peaks: np.ndarray) -> np.ndarray:
    """The stretch before each R peak, ``(n_beats, k)`` at 120 Hz, minus its last sample."""
    start, end = P_WAVE_S
    at = np.arange(-round(start * FS_BEAT), -round(end * FS_BEAT) + 1) * fs / FS_BEAT
    idx = np.clip(peaks[:, None] + np.rint(at).astype(np.int64)[None, :], 0, len(x) - 1)
    stretch = x[idx]
    return stretch - stretch[:, -1:]


def against_median(stretch: np.ndarray) -> np.ndarray:
    """Correlation with the record's median stretch, and RMS difference over its spread."""
    median = np.median(stretch, axis=0)
    a = stretch - stretch.mean(axis=1, keepdims=True)
    b = median - median.mean()
    corr = (a @ b) / (np.sqrt((a**2).sum(axis=1) * (b**2).sum()) + 1e-9)
    rms = np.sqrt(((stretch - median) ** 2).mean(axis=1)) / (median.std() + 1e-6)
    return np.stack([corr, rms], axis=1)


def extra_inputs(beats: Beats, mitdb_dir: Path) -> dict[str, np.ndarray]:
    """Second-lead template features and P-wave features of each beat, by record."""
    out = {
        "lead2": np.zeros((len(beats), 4)),
        "p1": np.zeros((len(beats), 2)),
        "p2": np.zeros((len(beats), 2)),
    }
    for rec in np.unique(beats.record):
        idx = np.flatnonzero(beats.record == rec)
        sig, fs, names = read_signal(mitdb_dir / rec)
        first = pick_lead(names)[0]
        second = 1 - first  # MIT-BIH records have two leads
        leads = [np.nan_to_num(sig[:, i]) for i in (first, second)]
        peaks = beats.r_peak[idx]
        x2, kept = segment_beats(leads[1], fs, peaks)
        if len(kept) != len(peaks):
            raise SystemExit(f"{rec}: beats outside the second lead")
        out["lead2"][idx] = template_features(x2)
        out["p1"][idx] = against_median(p_wave_stretch(leads[0], fs, peaks))
        out["p2"][idx] = against_median(p_wave_stretch(leads[1], fs, peaks))
    return out


def out_of_fold(features: np.ndarray, y: np.ndarray, folds: list[np.ndarray]) -> np.ndarray:
    """Predicted classes of every beat by trees trained on the other folds."""
    pred = np.zeros(len(y), np.int64)
    for held in folds:
        train = np.setdiff1d(np.arange(len(y)), held)
        counts = np.bincount(y[train], minlength=5).astype(float)
        weight = 1 / np.sqrt(np.maximum(counts, 1))  # as the model's weighted loss
        trees = HistGradientBoostingClassifier(max_iter=200, random_state=0)
        trees.fit(features[train], y[train], sample_weight=weight[y[train]])
        pred[held] = trees.predict(features[held])
    return pred


def scores(y: np.ndarray, pred: np.ndarray) -> dict:
    ppv, se, _, _ = precision_recall_fscore_support(y, pred, labels=[0, 1, 2], zero_division=0)
    return {
        "nsv_f1": float(f1_score(y, pred, labels=[0, 1, 2], average="macro", zero_division=0)),
        "S": {"sensitivity": float(se[1]), "ppv": float(ppv[1])},
        "V": {"sensitivity": float(se[2]), "ppv": float(ppv[2])},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = os.environ.get("ECG_MITDB_DIR") or ROOT.parent / "shared/data/mitdb"
    parser.add_argument("--mitdb-dir", type=Path, default=Path(default_dir))
    parser.add_argument("--cache-dir", type=Path, default=os.environ.get("ECG_CACHE_DIR"))
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "feature_screen.json")
    args = parser.parse_args()
    beats = build_beats(args.mitdb_dir, args.cache_dir, progress=False)
    ds1 = beats.subset(inter_patient_sides(beats.record)[0])
    folds = record_folds(ds1.y, ds1.record, np.arange(len(ds1)), N_FOLDS, FOLD_SEED)
    extra = extra_inputs(ds1, args.mitdb_dir)
    rows = {}
    for name, (feature_set, extras) in SETS.items():
        features = np.concatenate(
            [beat_features(ds1, feature_set)] + [extra[e] for e in extras], axis=1
        )
        rows[name] = scores(ds1.y, out_of_fold(features, ds1.y, folds))
        r = rows[name]
        print(
            f"{name:40} N/S/V F1 {r['nsv_f1']:.3f}  "
            f"S {100 * r['S']['sensitivity']:.1f} / {100 * r['S']['ppv']:.1f}  "
            f"V {100 * r['V']['sensitivity']:.1f} / {100 * r['V']['ppv']:.1f}"
        )
    result = {
        "model": "HistGradientBoostingClassifier(max_iter=200), class weights 1/sqrt(count)",
        "folds": [sorted(set(ds1.record[f].tolist())) for f in folds],
        "p_wave_seconds": list(P_WAVE_S),
        "sets": rows,
    }
    write_text_atomic(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
