"""Do classes survive a change of sampling rate? Writes ``results/resampling.json``.

Each record is resampled from 360 Hz to 128, 250 and 500 Hz (``scipy.signal.resample_poly``)
and classified at the annotated R peaks mapped to the new rate, and at detected peaks
matched to the 360 Hz ones; the figure is the share of beats whose class is unchanged.

Usage: ``python bench/resampling.py [--mitdb-dir DIR] [--weights W] [--records 100 208 ...]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecg_utils import DEFAULT_WEIGHTS, classify_record  # noqa: E402
from ecg_utils._io import write_text_atomic  # noqa: E402
from ecg_utils.beats import annotated_beats, pick_lead  # noqa: E402
from ecg_utils.detect import match_pairs  # noqa: E402
from ecg_utils.predict import resolve_weights  # noqa: E402
from ecg_utils.records import read_annotations, read_signal  # noqa: E402

RATES = (128, 250, 500)
RECORDS = ("100", "106", "119", "203", "208", "232")


def agreement(base: np.ndarray, other: np.ndarray) -> float:
    return float(np.mean(base == other)) if len(base) else float("nan")


def record_agreement(path: Path, loaded) -> dict:
    """Class agreement with 360 Hz at each rate, at annotated and at detected peaks."""
    sig, fs, names = read_signal(path)
    x = sig[:, pick_lead(names)[0]]
    peaks, _ = annotated_beats(*read_annotations(path))
    base_ann = classify_record(x, fs, r_peaks=peaks, weights=loaded)["label"].to_numpy()
    base_det = classify_record(x, fs, weights=loaded)
    out = {}
    for rate in RATES:
        ratio = Fraction(rate, int(fs))
        y = resample_poly(x, ratio.numerator, ratio.denominator)
        mapped = np.rint(peaks * rate / fs).astype(np.int64)
        ann = classify_record(y, rate, r_peaks=mapped, weights=loaded)["label"].to_numpy()
        det = classify_record(y, rate, weights=loaded)
        i, j = match_pairs(
            base_det["sample"].to_numpy() * rate / fs, det["sample"].to_numpy(), rate
        )
        out[str(rate)] = {
            "annotated": agreement(base_ann, ann),
            "detected": agreement(base_det["label"].to_numpy()[i], det["label"].to_numpy()[j]),
            "beats": int(len(peaks)),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = os.environ.get("ECG_MITDB_DIR") or ROOT.parent / "shared/data/mitdb"
    parser.add_argument("--mitdb-dir", type=Path, default=Path(default_dir))
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--records", nargs="+", default=list(RECORDS))
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "resampling.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    loaded = resolve_weights(args.weights)
    per_record = {}
    for rec in args.records:
        per_record[rec] = record_agreement(args.mitdb_dir / rec, loaded)
        print(
            rec,
            {r: f"{v['annotated']:.4f} / {v['detected']:.4f}" for r, v in per_record[rec].items()},
        )
    result = {
        "weights": args.weights.name,
        "rates": list(RATES),
        "per_record": per_record,
        "goal": 0.99,
    }
    write_text_atomic(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
