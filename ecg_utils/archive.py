"""Classify a whole archive of recordings in parallel, with a Holter summary per recording.

``python -m ecg_utils predict DIR_OR_GLOB... --out OUT`` finds every recording (WFDB
records by their ``.hea``; ``.npy`` and ``.csv`` files of samples with ``--fs``) and runs
:func:`process_recording` on each, over a pool of processes or a Dask cluster. The same
function runs in both, so both write the same bytes. Under ``OUT`` (a folder, or any
``fsspec`` URL such as ``s3://bucket/path``):

* ``beats/recording=NAME/part-0.parquet``: the beat table (:data:`BEAT_SCHEMA`), one
  partition per recording (read the whole archive with ``pyarrow.dataset`` or
  ``pandas.read_parquet(OUT + "/beats")``);
* ``csv/NAME.csv``: the same table as CSV, with ``csv=True`` (``--csv``);
* ``holter/NAME.json``: the Holter summary (:func:`ecg_utils.holter.holter_summary`) and
  the noisy intervals;
* ``manifests/NAME.json``: written last, it records the SHA-256 of the input files and of
  the weights and the options; a recording whose manifest matches is skipped (resume);
* ``summary.csv`` (one row per recording) and ``failures.csv`` (recording, file, reason).

Every file is written to a temporary name and renamed (object stores write whole objects),
so an interrupted run leaves no half-written file.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import math
import os
import posixpath
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._io import EcgError, atomic_path, sha256_file

MANIFEST_VERSION = 2
"""Bumped when the outputs of a recording change meaning: older manifests never match."""
RECORDING_SUFFIXES = (".hea", ".edf", ".npy", ".csv")
"""Files taken as recordings when a folder is given (a WFDB record by its header)."""
_NAME = re.compile(r"[-\w.]+")
_GLOB_CHARS = re.compile(r"[*?\[]")


def is_pattern(text: str) -> bool:
    """Whether a path argument is a glob pattern (``*``, ``?`` or ``[``) naming no file."""
    return _GLOB_CHARS.search(text) is not None and not Path(text).exists()


@dataclass(frozen=True)
class Recording:
    """One recording of the archive.

    Attributes
    ----------
    name : str
        Unique name in the archive (the file stem, or its path below the folder given,
        with ``_`` for ``/``); names the outputs.
    path : str
        The file given: a WFDB ``.hea``, or a ``.npy``/``.csv`` of samples.
    """

    name: str
    path: str

    def input_files(self, ann: str | None = None) -> list[Path]:
        """The files whose bytes decide the result (header and signal files, annotations)."""
        path = Path(self.path)
        if path.suffix.lower() != ".hea":
            return [path]
        files = [path]
        try:
            from .records import read_header

            files += sorted({path.parent / s.file_name for s in read_header(path).signals})
        except EcgError:
            pass  # reading will fail and report it
        if ann:
            files.append(path.with_suffix(f".{ann}"))
        return files


@dataclass(frozen=True)
class ArchiveOptions:
    """What every recording is classified with (the ``predict`` options).

    Attributes
    ----------
    weights : str
        Absolute path of the weights (``.pth``; the ``.json`` beside it is read too).
    weights_sha256 : str
        Checksum of the weights and their metadata (:func:`weights_checksum`).
    fs : float or None
        Sampling rate in Hz of ``.npy``/``.csv`` recordings.
    lead : str or None
        Lead name of WFDB records (None: MLII, else the first).
    ann : str or None
        Annotation extension whose R peaks replace detection (WFDB records only).
    sensitivity : {"balanced", "high"}
    adaptation : bool
    keep_noisy : bool
        Keep the classifier's labels for beats in noisy windows (``--keep-noisy``).
    csv : bool
        Also write ``csv/NAME.csv``.
    threads : int
        Torch CPU threads per worker.
    """

    weights: str
    weights_sha256: str
    fs: float | None = None
    lead: str | None = None
    ann: str | None = None
    sensitivity: str = "balanced"
    adaptation: bool = True
    keep_noisy: bool = False
    csv: bool = False
    threads: int = 1

    def fingerprint(self) -> dict:
        """The options that change the outputs (threads and the weights' path do not)."""
        d = asdict(self)
        d.pop("threads")
        d.pop("weights")
        return d


@dataclass
class ArchiveResult:
    """What :func:`run_archive` did.

    Attributes
    ----------
    results : list of dict
        One per recording (sorted by name): ``name``, ``path``, ``status`` ("done",
        "skipped" or "failed"), ``n_beats``, ``seconds``, ``error``, ``pid``,
        ``peak_rss_mb`` (the worker process's peak resident memory so far).
    wall_s : float
        Seconds from the first task to the last result.
    """

    results: list[dict] = field(default_factory=list)
    wall_s: float = 0.0

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.results)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.results if r["status"] == "failed"]

    @property
    def n_beats(self) -> int:
        return sum(r.get("n_beats") or 0 for r in self.results if r["status"] != "failed")

    def line(self) -> str:
        """One line: recordings done, skipped and failed, beats and time."""
        return (
            f"{len(self.results)} recordings: {self.count('done')} classified, "
            f"{self.count('skipped')} skipped (up to date), {self.count('failed')} failed; "
            f"{self.n_beats} beats in {self.wall_s:.1f} s"
        )


# --------------------------------------------------------------------------- discovery


def find_recordings(paths, exclude: str | os.PathLike | None = None) -> list[Recording]:
    """The recordings named by files, folders (searched recursively) and glob patterns.

    Parameters
    ----------
    paths : list of str or Path
        Files (``.hea``, ``.dat`` or no suffix for a WFDB record; ``.npy``, ``.csv``),
        folders, or patterns (``"holter/**/*.hea"``).
    exclude : path, optional
        A folder whose files are never taken (the output folder).

    Returns
    -------
    list of Recording
        Sorted by name.

    Raises
    ------
    EcgError
        When a path matches nothing, a folder holds no recording, or two recordings
        would get the same name.
    """
    skip = Path(exclude).resolve() if exclude is not None and "://" not in str(exclude) else None
    found: dict[str, Recording] = {}

    def add(name: str, path: Path) -> None:
        if skip is not None and path.resolve().is_relative_to(skip):
            return
        if not _NAME.fullmatch(name):
            raise EcgError(f"recording name {name!r} has characters outside [-A-Za-z0-9_.]", path)
        other = found.get(name)
        if other is not None and Path(other.path).resolve() != path.resolve():
            raise EcgError(f"two recordings named {name}: {other.path} and {path}", path)
        found[name] = Recording(name, str(path))

    for given in paths:
        text = str(given)
        p = Path(text)
        if p.is_dir():
            before = len(found)
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if any(part.startswith(".") for part in rel.parts) or not f.is_file():
                    continue
                if f.suffix.lower() in RECORDING_SUFFIXES:
                    add("_".join(rel.with_suffix("").parts), f)
            if len(found) == before:
                raise EcgError("folder holds no recording (.hea, .edf, .npy or .csv)", p)
        elif is_pattern(text):
            matches = sorted(glob.glob(text, recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file()]
            if not files:
                raise EcgError("pattern matches no file", text)
            before = len(found)
            for f in files:
                if f.suffix.lower() in (".dat",) and f.with_suffix(".hea").exists():
                    f = f.with_suffix(".hea")
                if f.suffix.lower() in RECORDING_SUFFIXES:
                    add(f.stem, f)
            if len(found) == before:
                raise EcgError("pattern matches no recording (.hea, .edf, .npy or .csv)", text)
        else:
            if p.suffix.lower() in ("", ".dat") and p.with_suffix(".hea").exists():
                p = p.with_suffix(".hea")
            add(p.stem, p)  # a missing file fails when read, as a failure of that recording
    return [found[k] for k in sorted(found)]


# --------------------------------------------------------------------------- checksums


def weights_checksum(weights: str | os.PathLike) -> str:
    """SHA-256 over the weights file and, when present, its metadata ``.json``."""
    path = Path(weights)
    parts = [sha256_file(path)]
    meta = path.with_suffix(".json")
    if meta.is_file():
        parts.append(sha256_file(meta))
    return hashlib.sha256(" ".join(parts).encode()).hexdigest()


def input_checksum(recording: Recording, ann: str | None) -> dict[str, str | None]:
    """File name -> SHA-256 of each input file (None for a missing file)."""
    out = {}
    for f in recording.input_files(ann):
        out[f.name] = sha256_file(f) if f.is_file() else None
    return out


# --------------------------------------------------------------------------- output store


class Store:
    """Files under the output root: a local folder or an ``fsspec`` URL.

    Local files are written through :func:`ecg_utils._io.atomic_path` (temporary name,
    then rename); other file systems get each file in one ``pipe`` (an object store
    writes an object whole or not at all).
    """

    def __init__(self, root: str | os.PathLike):
        import fsspec

        self.url = str(root)
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.local = "file" in _protocols(self.fs)

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def write(self, rel: str, data: bytes) -> None:
        target = self.path(rel)
        if self.local:
            with atomic_path(target) as tmp:
                Path(tmp).write_bytes(data)
        else:
            self.fs.makedirs(posixpath.dirname(target), exist_ok=True)
            self.fs.pipe_file(target, data)

    def read(self, rel: str) -> bytes | None:
        try:
            return self.fs.cat_file(self.path(rel))
        except (FileNotFoundError, OSError):
            return None

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.path(rel))

    def remove(self, rel: str) -> None:
        if self.fs.exists(self.path(rel)):
            self.fs.rm(self.path(rel))


def _protocols(fs) -> tuple[str, ...]:
    p = fs.protocol
    return (p,) if isinstance(p, str) else tuple(p)


def output_files(name: str, csv: bool) -> list[str]:
    """Paths, relative to the output root, of one recording's outputs (manifest last)."""
    files = [f"beats/recording={name}/part-0.parquet", f"holter/{name}.json"]
    if csv:
        files.append(f"csv/{name}.csv")
    return [*files, f"manifests/{name}.json"]


# --------------------------------------------------------------------------- tables


def beat_schema():
    """The Parquet schema of a beat table: fixed, so every writer gives the same bytes."""
    import pyarrow as pa

    from .beats import CLASS_NAMES

    return pa.schema(
        [
            ("sample", pa.int64()),
            ("time_s", pa.float64()),
            ("label", pa.int64()),
            ("class", pa.string()),
            *[(f"prob_{c}", pa.float32()) for c in CLASS_NAMES],
            ("quality", pa.string()),
        ]
    )


def parquet_bytes(table: pd.DataFrame) -> bytes:
    """A beat table as Parquet bytes: fixed schema, no pandas metadata, zstd, one row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = beat_schema()
    arrays = [
        pa.array(table[f.name].to_numpy().astype(f.type.to_pandas_dtype()), type=f.type)
        if f.name != "class"
        else pa.array(table["class"].astype(str).tolist(), type=pa.string())
        for f in schema
    ]
    arrow = pa.Table.from_arrays(arrays, schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(
        arrow,
        sink,
        compression="zstd",
        row_group_size=max(len(arrow), 1),
        use_dictionary=["class"],
        write_statistics=True,
    )
    return sink.getvalue().to_pybytes()


def csv_bytes(table: pd.DataFrame) -> bytes:
    """A beat table as the CSV ``predict --out`` writes (five decimals)."""
    return table.to_csv(index=False, float_format="%.5f", lineterminator="\n").encode()


def _json_bytes(obj) -> bytes:
    return (json.dumps(_finite(obj), indent=1, sort_keys=True) + "\n").encode()


def _finite(obj):
    """NaN and infinities as None (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return _finite(float(obj))
    return obj


# --------------------------------------------------------------------------- one recording


def process_recording(recording: Recording, options: ArchiveOptions, out: str) -> dict:
    """Classify one recording and write its outputs; the task of every scheduler.

    Skips the recording when its manifest under ``out`` matches the input checksums, the
    weights and the options. Never raises for a bad recording: the result says why it
    failed and any output it had (from an earlier run) is removed.

    Parameters
    ----------
    recording : Recording
    options : ArchiveOptions
    out : str
        Output root: a folder or an ``fsspec`` URL, the same for every worker.

    Returns
    -------
    dict
        ``name``, ``path``, ``status`` ("done", "skipped", "failed"), ``n_beats``,
        ``seconds``, ``error`` (one line, naming the file, or None), ``summary`` (the
        Holter summary, or None), ``pid`` and ``peak_rss_mb`` of this worker.
    """
    t0 = time.perf_counter()
    store = Store(out)
    result = {"name": recording.name, "path": recording.path, "status": "failed"}
    result.update(n_beats=None, error=None, summary=None)
    try:
        checksums = input_checksum(recording, options.ann)
        manifest = {
            "version": MANIFEST_VERSION,
            "recording": recording.name,
            "inputs": checksums,
            "options": options.fingerprint(),
        }
        old = store.read(f"manifests/{recording.name}.json")
        files = output_files(recording.name, options.csv)
        current = old is not None and _same_manifest(json.loads(old), manifest)
        if current and all(store.exists(f) for f in files):
            holter = json.loads(store.read(f"holter/{recording.name}.json"))
            result.update(status="skipped", n_beats=holter["summary"]["beats_detected"])
            result["summary"] = holter["summary"]
            return _finish(result, t0)
        table, summary, noisy = _classify(recording, options)
        outputs = {files[0]: parquet_bytes(table)}
        outputs[files[1]] = _json_bytes(
            {"recording": recording.name, "summary": summary, "noisy_intervals_s": noisy}
        )
        if options.csv:
            outputs[files[2]] = csv_bytes(table)
        store.remove(files[-1])  # outputs change: the old manifest no longer holds
        for rel, data in outputs.items():
            store.write(rel, data)
        manifest["outputs"] = {rel: hashlib.sha256(d).hexdigest() for rel, d in outputs.items()}
        store.write(files[-1], _json_bytes(manifest))
        result.update(status="done", n_beats=len(table), summary=summary)
    except EcgError as exc:
        named = str(exc) if exc.path else f"{recording.path}: {exc}"
        result["error"] = " ".join(named.split())
    except Exception as exc:  # a reader's own error on a malformed file: fail this one only
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        result["error"] = f"{recording.path}: {type(exc).__name__}: {first}"
    if result["status"] == "failed":
        for rel in reversed(output_files(recording.name, True)):  # manifest first
            with contextlib.suppress(OSError):
                store.remove(rel)
    return _finish(result, t0)


def _same_manifest(old: dict, new: dict) -> bool:
    keys = ("version", "recording", "inputs", "options")
    return all(old.get(k) == new[k] for k in keys) and None not in new["inputs"].values()


def _finish(result: dict, t0: float) -> dict:
    import resource

    result["seconds"] = time.perf_counter() - t0
    result["pid"] = os.getpid()
    per_mb = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes there, KiB on Linux
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / per_mb
    return result


def _classify(recording: Recording, options: ArchiveOptions):
    """Read, classify and summarise one recording: (table, summary, noisy intervals)."""
    import torch

    from .holter import table_summary
    from .predict import (
        classify_with_quality,
        heart_rate_warning,
        read_input,
        resolve_weights,
        wants_two_leads,
        with_other_lead,
    )

    torch.set_num_threads(options.threads)
    path = Path(recording.path)
    loaded = resolve_weights(options.weights)
    kind, x, fs, extra = read_input(path, options.fs, options.lead, wants_two_leads(loaded))
    if kind == "beats":
        raise EcgError("a CSV of single beats (Kaggle format) is not a recording", path)
    peaks = None
    if options.ann:
        from .beats import annotated_beats
        from .records import read_annotations

        if kind != "record":
            raise EcgError("--ann needs a WFDB record", path)
        peaks, _ = annotated_beats(*read_annotations(extra["record_path"], options.ann))
    table, quality = classify_with_quality(
        with_other_lead(x, extra),
        fs,
        r_peaks=peaks,
        weights=loaded,
        sensitivity=options.sensitivity,
        adaptation=options.adaptation,
        device="cpu",  # one process (or Dask worker) per recording, each on its own core
        keep_noisy=options.keep_noisy,
    )
    noisy = quality.intervals()
    duration = len(x) / fs
    del x
    summary = table_summary(table, duration, noisy)
    summary = {"recording": recording.name, **summary, "beats_detected": len(table)}
    summary["lead_note"] = extra.get("lead_note")
    summary["units"] = extra.get("units", "mV")
    summary["start_time"] = extra.get("start_time")
    summary["warning"] = heart_rate_warning(table, fs)
    return table, summary, noisy.tolist()


# --------------------------------------------------------------------------- the whole run


def run_archive(
    recordings: list[Recording],
    out: str | os.PathLike,
    options: ArchiveOptions,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = False,
) -> ArchiveResult:
    """Run :func:`process_recording` on every recording, then write the archive tables.

    Parameters
    ----------
    recordings : list of Recording
        From :func:`find_recordings`.
    out : str or path
        Output root: a folder or an ``fsspec`` URL reachable from every worker.
    options : ArchiveOptions
    workers : int, optional
        Processes (default: the CPU count). 1 runs in this process. With
        ``scheduler="local"``, the LocalCluster's worker processes.
    scheduler : str, optional
        None for a process pool, ``"local"`` for a Dask ``LocalCluster`` on 127.0.0.1,
        or a Dask scheduler address (``"tcp://HOST:8786"``).
    progress : bool
        Show a progress bar over recordings, with the beats classified so far.

    Returns
    -------
    ArchiveResult
        ``summary.csv`` and ``failures.csv`` are written under ``out`` too.
    """
    _check_dependencies()
    out = str(out)
    if "://" not in out:
        out = str(Path(out).resolve())
    workers = workers or os.cpu_count() or 1
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(recordings), unit="rec", desc="recordings")
    results: list[dict] = []

    def collect(res: dict) -> None:
        results.append(res)
        if bar is not None:
            bar.update(1)
            beats = sum(r.get("n_beats") or 0 for r in results if r["status"] != "failed")
            bar.set_postfix(beats=beats, failed=sum(r["status"] == "failed" for r in results))

    t0 = time.perf_counter()
    try:
        if scheduler:
            _run_dask(recordings, out, options, workers, scheduler, collect)
        elif workers == 1 or len(recordings) <= 1:
            for rec in recordings:
                collect(process_recording(rec, options, out))
        else:
            _run_pool(recordings, out, options, workers, collect)
    finally:
        if bar is not None:
            bar.close()
    result = ArchiveResult(sorted(results, key=lambda r: r["name"]), time.perf_counter() - t0)
    write_archive_tables(result, out, options.weights)
    return result


def _check_dependencies() -> None:
    import importlib.util

    missing = [m for m in ("pyarrow", "fsspec") if importlib.util.find_spec(m) is None]
    if missing:
        raise EcgError(
            f"predict over folders needs {' and '.join(missing)}: "
            "pip install 'ecg-classification[archive]'"
        )


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _run_pool(recordings, out, options, workers, collect) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")  # fork and OpenMP threads do not mix
    n = min(workers, len(recordings))
    with ProcessPoolExecutor(
        n, mp_context=ctx, initializer=_init_worker, initargs=(options.threads,)
    ) as pool:
        futures = {pool.submit(process_recording, rec, options, out): rec for rec in recordings}
        try:
            for fut in as_completed(futures):
                collect(_task_result(fut, futures[fut]))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _run_dask(recordings, out, options, workers, scheduler, collect) -> None:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise EcgError(
            "--scheduler needs Dask: pip install 'ecg-classification[cluster]'"
        ) from None
    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise EcgError(f"cannot reach the Dask scheduler: {exc}", scheduler) from None
    try:
        futures = {
            client.submit(
                process_recording, rec, options, out, key=f"ecg-{rec.name}", pure=False
            ): rec
            for rec in recordings
        }
        for fut in as_completed(list(futures)):
            collect(_task_result(fut, futures[fut]))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _task_result(future, recording: Recording) -> dict:
    """A task's result, or a failure when its worker died (killed, out of memory)."""
    try:
        return future.result()
    except Exception as exc:  # the worker, not the recording, failed: report and go on
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        error = f"{recording.path}: worker failed: {type(exc).__name__}: {first}"
        return {
            "name": recording.name,
            "path": recording.path,
            "status": "failed",
            "n_beats": None,
            "error": error.rstrip(": "),
            "summary": None,
            "seconds": None,
            "pid": None,
            "peak_rss_mb": None,
        }


def write_archive_tables(result: ArchiveResult, out: str, weights: str | None = None) -> None:
    """Write ``summary.csv`` (done and skipped recordings) and ``failures.csv`` under ``out``.

    ``summary.csv`` has one row per recording: ``recording``, ``start_time`` (ISO 8601
    from a WFDB or EDF header, empty when it has none), the Holter figures
    (:data:`ecg_utils.holter.SUMMARY_FIELDS`), ``beats_detected``, ``lead_note``,
    ``units`` (``adu`` for an uncalibrated record), ``warning`` (an implausible median
    heart rate: a wrong ``--fs``) and ``weights`` (the weights file used);
    ``failures.csv`` has ``recording``, ``path`` and ``reason`` (header only when none
    failed).
    """
    from .holter import SUMMARY_FIELDS

    store = Store(out)
    rows = [r["summary"] for r in result.results if r["status"] != "failed"]
    columns = ["recording", "start_time", *SUMMARY_FIELDS, "beats_detected", "lead_note"]
    columns += ["units", "warning"]
    summary = pd.DataFrame(rows, columns=columns)
    summary["weights"] = weights
    store.write(
        "summary.csv",
        summary.to_csv(index=False, float_format="%.3f", lineterminator="\n").encode(),
    )
    failures = pd.DataFrame(
        [(r["name"], r["path"], r["error"]) for r in result.failed],
        columns=["recording", "path", "reason"],
    )
    store.write("failures.csv", failures.to_csv(index=False, lineterminator="\n").encode())


def read_beats(out: str | os.PathLike) -> pd.DataFrame:
    """The archive's beat tables as one DataFrame, with a ``recording`` column."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    store = Store(str(out))
    # names are text: "0100" stays "0100" (a guessed integer type would drop the zero)
    partitioning = ds.partitioning(pa.schema([("recording", pa.string())]), flavor="hive")
    dataset = ds.dataset(
        store.path("beats"), format="parquet", partitioning=partitioning, filesystem=store.fs
    )
    table = dataset.to_table().to_pandas()
    table["recording"] = table["recording"].astype(str)
    return table.sort_values(["recording", "sample"], kind="stable").reset_index(drop=True)
