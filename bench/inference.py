"""Inference throughput of the beat classifiers on this machine's CPU.

Compares, on real MIT-BIH beats (all 48 records, segmented at 120 Hz):

* ``seed-loop``: the seed notebook's loop, ``DataLoader(TensorDataset, batch_size=64)``
  and ``model(x)`` per batch under ``torch.no_grad``;
* ``predict_proba``: :func:`ecg_utils.inference.predict_proba` at several batch sizes
  (``inference_mode``, BatchNorm folded into the convolutions, one Python thread with
  single-threaded operators per core);
* ``torch-omp``: the same folded model in one Python thread with multi-threaded
  (OpenMP) operators, and ``unfused``: the same without the BatchNorm folding;
* ``onnxruntime``: the exported ONNX graph in ONNX Runtime (all graph optimisations,
  intra-op threads = torch's), and ``onnxruntime-2x1``: one single-threaded session
  per core;
* ``torchscript`` (frozen + ``optimize_for_inference``) and ``torch.compile`` (inductor)
  at one batch size, as candidates.

Efficiency is ``beats/s x FLOPs per beat / sgemm FLOP/s``: the fraction of a large
float32 matrix product's throughput (``torch.mm`` of 2048 x 2048, MKL) that the network
achieves. FLOPs count the convolutions and linear layers (2 per multiply-add, from
``torch.utils.flop_counter``). On AMD CPUs MKL's sgemm does not reach the AVX-512 peak
that oneDNN and ONNX Runtime's MLAS kernels use, so efficiencies above 1 can occur.

Other processes share the CPU, so every method is timed ``--repeats`` times in
interleaved rounds and the best round counts (contention only ever slows a round
down); medians and the load average are recorded too. Writes
``results/bench_inference.json``.

Usage::

    python bench/inference.py [--mitdb-dir DIR] [--beats 16384] [--repeats 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecg_utils._io import write_text_atomic  # noqa: E402
from ecg_utils.beats import beat_features, build_beats  # noqa: E402
from ecg_utils.checkpoint import load_model  # noqa: E402
from ecg_utils.inference import DEFAULT_BATCH_SIZE, predict_proba  # noqa: E402

SEED_WEIGHTS = ROOT.parent / "shared/seed/ecg_cnn.pth"
SHIPPED_WEIGHTS = (ROOT / "ecg_cnn.pth", ROOT / "ecg_utils/weights/interpatient.pth")
BATCHES = (64, 256, 512, 2048, 8192)
ORT_BATCHES = (64, 256, 1024, 8192)
PARALLEL_BATCHES = (64, 256)
"""Batch sizes for the one-thread-per-core runners."""
CANDIDATE_BATCH = 256
"""Batch size for the TorchScript and torch.compile candidates."""


# --------------------------------------------------------------------------- references


def sgemm_rate(n: int = 2048, repeats: int = 10) -> float:
    """Best float32 ``torch.mm`` throughput of ``n x n`` matrices, in FLOP/s."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)
    best = min(_timed(lambda: torch.mm(a, b, out=out)) for _ in range(repeats))
    return 2 * n**3 / best


def flops_per_beat(model: torch.nn.Module, n_features: int) -> int:
    """Convolution and linear-layer FLOPs (2 per multiply-add) of one beat."""
    from torch.utils.flop_counter import FlopCounterMode

    args = [torch.rand(1, 1, 187)] + ([torch.rand(1, n_features)] if n_features else [])
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(*args)
    return int(counter.get_total_flops())


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# --------------------------------------------------------------------------- methods


def seed_loop(model, x: np.ndarray, feats: np.ndarray | None) -> np.ndarray:
    """The seed notebook's evaluation loop: a DataLoader of 64 beats, ``no_grad``."""
    from torch.utils.data import DataLoader, TensorDataset

    tensors = [torch.from_numpy(x).unsqueeze(1)]
    if feats is not None:
        tensors.append(torch.from_numpy(feats))
    out = []
    with torch.no_grad():
        for batch in DataLoader(TensorDataset(*tensors), batch_size=64):
            out.append(torch.softmax(model(*batch), dim=1))
    return torch.cat(out).numpy()


def unfused(model, x, feats, batch_size: int) -> np.ndarray:
    """Plain batched eager inference (``inference_mode``), no BatchNorm folding."""
    xt = torch.from_numpy(x).unsqueeze(1)
    ft = None if feats is None else torch.from_numpy(feats)
    out = []
    with torch.inference_mode():
        for i in range(0, len(xt), batch_size):
            args = [xt[i : i + batch_size]] + ([] if ft is None else [ft[i : i + batch_size]])
            out.append(torch.softmax(model(*args), dim=1))
    return torch.cat(out).numpy()


def torchscript(model, x, feats):
    """A frozen, ``optimize_for_inference`` TorchScript module."""
    args = [torch.from_numpy(x[:CANDIDATE_BATCH]).unsqueeze(1)]
    if feats is not None:
        args.append(torch.from_numpy(feats[:CANDIDATE_BATCH]))
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, tuple(args))
        return torch.jit.optimize_for_inference(torch.jit.freeze(traced))


def compiled(model, x, feats):
    """``torch.compile`` (inductor, static shapes), compiled by one warm-up call."""
    cmodel = torch.compile(model, dynamic=False)
    unfused(cmodel, x[:CANDIDATE_BATCH], _head(feats, CANDIDATE_BATCH), CANDIDATE_BATCH)
    return cmodel


def _head(feats, n):
    return None if feats is None else feats[:n]


def onnx_methods(weights: Path, tmp: Path, threads: int) -> dict[str, Callable]:
    """ONNX Runtime runners per batch size, or none when the packages are missing."""
    try:
        from ecg_utils.export import export_onnx, onnx_predict_proba, onnx_session
    except ImportError:
        return {}
    try:
        path = export_onnx(weights, tmp / f"{weights.stem}.onnx")
    except ImportError:
        return {}
    session = onnx_session(path, threads)
    methods = {
        f"onnxruntime|{bs}": (lambda x, f, bs=bs: onnx_predict_proba(session, x, f, batch_size=bs))
        for bs in ORT_BATCHES
    }
    if threads > 1:  # one single-threaded session per core, each on its share of the beats
        singles = [onnx_session(path, 1) for _ in range(threads)]
        for bs in PARALLEL_BATCHES:
            methods[f"onnxruntime-{threads}x1|{bs}"] = lambda x, f, bs=bs: in_parallel(
                [lambda x, f, s=s: onnx_predict_proba(s, x, f, batch_size=bs) for s in singles],
                x,
                f,
            )
    return methods


def in_parallel(workers: list[Callable], x, feats) -> np.ndarray:
    """Split the beats evenly over ``workers`` run in Python threads; concatenate."""
    from concurrent.futures import ThreadPoolExecutor

    bounds = np.linspace(0, len(x), len(workers) + 1).astype(int)
    parts = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    with ThreadPoolExecutor(len(workers)) as pool:
        futures = [
            pool.submit(w, x[p], None if feats is None else feats[p])
            for w, p in zip(workers, parts, strict=True)
        ]
        return np.concatenate([f.result() for f in futures])


def torch_omp(model, batch_size: int) -> Callable:
    """Folded eager inference in this thread, operators on all cores (OpenMP)."""
    from ecg_utils.inference import fuse_for_inference

    fused = fuse_for_inference(model.eval())
    return lambda x, feats: unfused(fused, x, feats, batch_size)


def build_methods(loaded, weights: Path, tmp: Path, full: bool) -> dict[str, Callable]:
    """``"name|batch"`` -> function of (beats, features) returning probabilities.

    ``full=False`` keeps the seed loop, predict_proba at its default batch size and at
    2048, and the fastest ONNX Runtime settings (for the shipped models).
    """
    model = loaded.model
    methods: dict[str, Callable] = {"seed-loop|64": lambda x, f: seed_loop(model, x, f)}
    for bs in BATCHES if full else (DEFAULT_BATCH_SIZE, 2048):
        methods[f"predict_proba|{bs}"] = lambda x, f, bs=bs: predict_proba(model, x, f, bs)
    if full:
        methods[f"unfused|{CANDIDATE_BATCH}"] = lambda x, f: unfused(model, x, f, CANDIDATE_BATCH)
        for bs in (CANDIDATE_BATCH, 1024):
            methods[f"torch-omp|{bs}"] = torch_omp(model, bs)
    ort = onnx_methods(weights, tmp, torch.get_num_threads())
    keep = ort if full else {k: v for k, v in ort.items() if k.endswith("|256")}
    methods.update(keep)
    return methods


def add_candidates(methods, model, x, feats, use_compile: bool) -> dict[str, float]:
    """Add TorchScript and torch.compile runners; return their build times in seconds."""
    build = {}
    start = time.perf_counter()
    script = torchscript(model, x, feats)
    build["torchscript"] = time.perf_counter() - start
    methods[f"torchscript|{CANDIDATE_BATCH}"] = lambda x, f: unfused(script, x, f, CANDIDATE_BATCH)
    if use_compile:
        start = time.perf_counter()
        try:
            cmodel = compiled(model, x, feats)
        except Exception as exc:  # inductor needs a C++ compiler; report, don't fail
            print(f"  torch.compile unavailable: {type(exc).__name__}: {exc}", file=sys.stderr)
        else:
            build["torch.compile"] = time.perf_counter() - start
            methods[f"torch.compile|{CANDIDATE_BATCH}"] = lambda x, f: unfused(
                cmodel, x, f, CANDIDATE_BATCH
            )
    return build


# --------------------------------------------------------------------------- timing


def time_methods(methods, x, feats, repeats: int) -> tuple[dict, list[float]]:
    """Interleaved rounds: every method once per round; also one sgemm per round."""
    reference = predict_proba(methods["__model__"], x, feats) if "__model__" in methods else None
    runners = {k: v for k, v in methods.items() if k != "__model__"}
    times = {k: [] for k in runners}
    errors = {}
    for name, fn in runners.items():  # warm-up and correctness
        out = fn(x, feats)
        if reference is not None:
            errors[name] = float(np.abs(out - reference).max())
    sgemm = []
    for _ in range(repeats):
        sgemm.append(sgemm_rate(repeats=2))
        for name, fn in runners.items():
            times[name].append(_timed(lambda fn=fn: fn(x, feats)))
    rows = {
        name: {
            "best_s": min(t),
            "median_s": statistics.median(t),
            "max_abs_diff_vs_predict_proba": errors.get(name),
        }
        for name, t in times.items()
    }
    return rows, sgemm


def bench_model(weights: Path, beats, args, tmp: Path) -> dict:
    loaded = load_model(weights)
    fs = loaded.meta.get("feature_set")
    n = len(beats.x) if args.beats <= 0 else min(args.beats, len(beats.x))
    x = np.ascontiguousarray(beats.x[:n])
    feats = beat_features(beats.subset(np.arange(n)), fs) if fs else None
    n_features = 0 if feats is None else feats.shape[1]
    flops = flops_per_beat(loaded.model, n_features)
    full = weights == args.full_model
    methods = build_methods(loaded, weights, tmp, full)
    build = add_candidates(methods, loaded.model, x, feats, args.compile) if full else {}
    methods["__model__"] = loaded.model
    print(f"{weights}: {loaded.meta['architecture']}, {flops / 1e6:.2f} MFLOP/beat, {n} beats")
    rows, sgemm = time_methods(methods, x, feats, args.repeats)
    return {
        "weights": str(weights),
        "architecture": loaded.meta["architecture"],
        "feature_set": fs,
        "flops_per_beat": flops,
        "n_beats": n,
        "build_seconds": build,
        "sgemm_per_round": sgemm,
        "rows": rows,
    }


def summarise(result: dict, sgemm: float) -> list[dict]:
    """Table rows: method, batch, beats/s, efficiency, speed-up vs the seed loop."""
    n, flops = result["n_beats"], result["flops_per_beat"]
    seed = n / result["rows"]["seed-loop|64"]["best_s"]
    table = []
    for key, row in result["rows"].items():
        method, batch = key.split("|")
        rate = n / row["best_s"]
        table.append(
            {
                "method": method,
                "batch": int(batch),
                "beats_per_s": round(rate),
                "beats_per_s_median": round(n / row["median_s"]),
                "efficiency": round(rate * flops / sgemm, 3),
                "speedup_vs_seed_loop": round(rate / seed, 2),
                "max_abs_diff": row["max_abs_diff_vs_predict_proba"],
            }
        )
    return table


def print_table(name: str, table: list[dict]) -> None:
    print(f"\n{name}")
    head = f"{'method':<15}{'batch':>6}{'beats/s':>10}{'median':>9}"
    head += f"{'efficiency':>12}{'speed-up':>10}"
    print(head)
    print("-" * len(head))
    for r in sorted(table, key=lambda r: -r["beats_per_s"]):
        print(
            f"{r['method']:<15}{r['batch']:>6}{r['beats_per_s']:>10}{r['beats_per_s_median']:>9}"
            f"{r['efficiency']:>12.3f}{r['speedup_vs_seed_loop']:>9.2f}x"
        )


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_mitdb = os.environ.get("ECG_MITDB_DIR") or ROOT.parent / "shared/data/mitdb"
    p.add_argument("--mitdb-dir", type=Path, default=Path(default_mitdb))
    p.add_argument("--cache-dir", type=Path, default=ROOT / "cache")
    p.add_argument("--weights", type=Path, nargs="*", help="default: seed + shipped weights")
    p.add_argument("--beats", type=int, default=16384, help="beats per timed pass (0: all)")
    p.add_argument("--repeats", type=int, default=8, help="interleaved timing rounds")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--out", type=Path, default=ROOT / "results/bench_inference.json")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    weights = args.weights or [SEED_WEIGHTS, *(w for w in SHIPPED_WEIGHTS if w.exists())]
    args.full_model = Path(weights[0])  # every method for the first; the main ones after
    beats = build_beats(args.mitdb_dir, args.cache_dir, progress=False)
    load_before = load_average()
    print(f"{len(beats)} beats, {args.threads} threads, load average {load_before}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in weights:
            results.append(bench_model(Path(w), beats, args, Path(tmp)))
    sgemm = max(max(r["sgemm_per_round"]) for r in results)
    sgemm = max(sgemm, sgemm_rate())
    print(f"\nsgemm (torch.mm 2048x2048 float32, best): {sgemm / 1e9:.1f} GFLOP/s")
    for r in results:
        r["table"] = summarise(r, sgemm)
        print_table(f"{r['weights']} ({r['architecture']})", r["table"])
    report = {
        "cpu_threads": args.threads,
        "torch_version": torch.__version__,
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "sgemm_flops": sgemm,
        "method": "best of interleaved rounds; efficiency = beats/s * FLOPs/beat / sgemm",
        "models": results,
    }
    print(f"load average before {load_before}, after {report['load_average_after']}")
    write_text_atomic(args.out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
