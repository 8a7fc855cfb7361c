"""Command line: ``python -m ecg_utils {download,build,train,evaluate,report,run,...}``.

Every command reports bad input as one line naming the file and the problem and exits
with status 2 (1 for unexpected failures, 130 when interrupted); ``--debug`` shows the
traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import numpy as np

from ._io import EcgError
from .beats import FEATURE_SETS, annotated_beats

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one ``error: …`` line (exit status 2)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see '{self.prog} --help')\n")


def _progress(args) -> bool:
    """Progress bars only for a person at a terminal, and never with --quiet."""
    return not args.quiet and sys.stderr.isatty()


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _add_recording_args(p: argparse.ArgumentParser) -> None:
    """The recording of ``adapt`` and ``clusters``: a WFDB record or samples with --fs."""
    p.add_argument("path", type=Path, help="WFDB record (.hea), EDF, or CSV/NPY of samples")
    _add_fs_lead_args(p)


def _add_fs_lead_args(p: argparse.ArgumentParser) -> None:
    """``--fs`` and ``--lead``: how a recording is read (:func:`ecg_utils.predict.read_input`)."""
    p.add_argument(
        "--fs",
        type=_positive_float,
        help="sampling rate (Hz) of a NPY file or a CSV without a time column; checked "
        "against a WFDB/EDF header or a CSV time column (a mismatch is an error)",
    )
    p.add_argument(
        "--lead",
        help="lead or CSV column name (case-insensitive) or column index (default: MLII, "
        "else II, else V1, else the first)",
    )


def _annotated(kind: str, extra: dict, args):
    """R peaks and AAMI labels of the ``--ann`` annotations of a WFDB record."""
    from .beats import annotated_beats
    from .records import read_annotations

    if kind != "record":
        raise EcgError("--ann needs a WFDB record", args.path)
    return annotated_beats(*read_annotations(extra["record_path"], args.ann))


def _add_sensitivity_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sensitivity",
        choices=("balanced", "high"),
        default="balanced",
        help="operating point: balanced (mean F1 of N, S, V) or high (most S beats found "
        "with S +P >= 50 %%, most V beats with V +P >= 90 %%, on out-of-fold predictions)",
    )


def _add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default="auto",
        help="auto (a CUDA GPU, else Apple MPS, else the CPU), cpu, cuda, cuda:N or mps",
    )


def _add_data_args(p: argparse.ArgumentParser, kaggle: bool = True) -> None:
    p.add_argument(
        "--mitdb-dir",
        type=Path,
        help="folder of MIT-BIH WFDB records (default: env ECG_MITDB_DIR, else download)",
    )
    if kaggle:
        p.add_argument(
            "--kaggle-dir",
            type=Path,
            help="folder with mitbih_train.csv / mitbih_test.csv (Kaggle protocol only)",
        )
    p.add_argument("--cache-dir", type=Path, help="cache folder (default: env ECG_CACHE_DIR)")


def _load_beats(args):
    from .beats import build_beats
    from .sources import default_cache_dir, resolve_mitdb_dir

    cache = args.cache_dir or default_cache_dir()
    mitdb = resolve_mitdb_dir(args.mitdb_dir, cache_dir=cache)
    return build_beats(mitdb, cache, progress=_progress(args))


def _load_protocol_data(args, protocol: str):
    """Beats and split of a protocol, from Kaggle CSVs or MIT-BIH records."""
    from .beats import Beats
    from .sources import beats_from_kaggle_csv, resolve_kaggle_dir
    from .splits import make_split

    if getattr(args, "kaggle_dir", None) is not None:
        if protocol != "kaggle":
            raise EcgError("--kaggle-dir only serves the kaggle protocol; use --mitdb-dir")
        folder = resolve_kaggle_dir(args.kaggle_dir)
        train = beats_from_kaggle_csv(folder / "mitbih_train.csv")
        test = beats_from_kaggle_csv(folder / "mitbih_test.csv")
        beats = Beats.concat([train, test], {"source": str(folder)})
        return beats, make_split(beats, "kaggle", test_beats=len(test))
    beats = _load_beats(args)
    return beats, make_split(beats, protocol)


def cmd_download(args) -> int:
    from .sources import default_cache_dir, download_kaggle, download_mitdb

    cache = args.cache_dir or default_cache_dir()
    if args.source == "physionet":
        path = download_mitdb(cache, base_url=args.url, progress=_progress(args))
    else:
        path = download_kaggle(args.out or cache / "kaggle")
    print(path)
    return 0


def cmd_records(args) -> int:
    from .sources import default_cache_dir, download_mitdb, find_mitdb_dir, mitdb_candidates

    cache = args.cache_dir or default_cache_dir()
    found = find_mitdb_dir(cache)
    if found is None and args.download:
        found = download_mitdb(cache, base_url=args.url, progress=_progress(args))
    if found is None:
        places = ", ".join(str(p) for p in mitdb_candidates(cache))
        raise EcgError(
            f"MIT-BIH records not found (looked in {places}): set ECG_MITDB_DIR to a folder "
            "of them, or run `python -m ecg_utils records --download`"
        )
    print(found)
    return 0


def cmd_build(args) -> int:
    from .beats import save_beats
    from .sources import write_kaggle_csv
    from .splits import kaggle_split

    beats = _load_beats(args)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.format == "kaggle-csv":
        train, test = kaggle_split(beats.y)
        write_kaggle_csv(beats.x[train], beats.y[train], args.out / "mitbih_train.csv")
        write_kaggle_csv(beats.x[test], beats.y[test], args.out / "mitbih_test.csv")
    else:
        save_beats(beats, args.out / "beats.npz")
    _print_counts(beats)
    return 0


def _print_counts(beats) -> None:
    from .study import KAGGLE_REFERENCE_COUNTS

    counts = beats.counts()
    print(f"{'class':<6}{'ours':>8}{'kaggle':>8}")
    for name, n in counts.items():
        print(f"{name:<6}{n:>8}{KAGGLE_REFERENCE_COUNTS[name]:>8}")
    print(f"{'all':<6}{len(beats):>8}{sum(KAGGLE_REFERENCE_COUNTS.values()):>8}")


CONFIG_FLAGS = (
    "architecture",
    "feature_set",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "schedule",
    "loss",
    "sampler",
    "patience",
    "cv_folds",
    "seed",
    "threads",
)


def _train_config(args):
    from .training import TrainConfig

    base = {}
    if args.config:
        try:
            base = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EcgError(f"cannot read configuration: {exc}", args.config) from None
        if not isinstance(base, dict):
            raise EcgError("configuration must be a JSON object", args.config)
    overrides = {k: getattr(args, k) for k in CONFIG_FLAGS if getattr(args, k) is not None}
    if args.augment is not None:
        overrides["augment"] = args.augment
    if args.protocol is not None:  # else the configuration file's, else the default
        overrides["protocol"] = args.protocol
    try:
        return TrainConfig.from_dict({**base, **overrides})
    except EcgError as exc:
        if args.config and exc.path is None:
            raise EcgError(exc.problem, args.config) from None
        raise


def cmd_train(args) -> int:
    from .device import resolve_device
    from .study import train_on_split, training_metadata
    from .training import save_trained

    cfg = _train_config(args)
    resolve_device(args.device)
    out = args.out
    if out.is_dir():
        raise EcgError("--out must be a weights file (.pth), not a folder", out)
    beats, split = _load_protocol_data(args, cfg.protocol)
    result = train_on_split(
        cfg,
        beats,
        split,
        checkpoint=out.with_suffix(".ckpt"),
        resume=args.resume,
        progress=_progress(args),
        device=args.device,
    )
    save_trained(result, out, training_metadata(beats))
    if result.cv:  # the fold models, for adaptation and ensembles judged on their folds
        from .checkpoint import fold_models_path, save_fold_models

        save_fold_models(result.cv.pop("fold_states"), fold_models_path(out))
    out.with_suffix(".ckpt").unlink(missing_ok=True)
    print(
        f"saved {out} (best epoch {result.best_epoch}, {result.n_parameters:,} parameters, "
        f"{result.seconds:.0f} s"
        + (f" + {result.cv['seconds']:.0f} s cross-validation)" if result.cv else ")")
    )
    return 0


def cmd_evaluate(args) -> int:
    from .checkpoint import load_model
    from .device import resolve_device
    from .operating import with_operating_point
    from .study import evaluate_weights

    resolve_device(args.device)
    loaded = load_model(args.weights)  # bad weights fail before the data is read
    loaded = with_operating_point(loaded, args.sensitivity)
    if args.protocol == "patient-specific":
        if args.device not in ("auto", "cpu"):
            raise EcgError("--protocol patient-specific runs on the CPU; leave out --device")
        return _evaluate_patient_specific(args, loaded)
    if args.protocol == "svdb-dev":
        from .svdb import evaluate_svdb, find_svdb_dir

        metrics = evaluate_svdb(loaded, find_svdb_dir(args.svdb_dir), n_boot=args.bootstrap)
        return _print_metrics(args, metrics, seen=False)
    beats, split = _load_protocol_data(args, args.protocol)
    seen = _seen_in_training(loaded, args.protocol)
    if seen and not args.quiet:
        print(
            f"warning: {args.weights} was trained on all records, the {args.protocol} test "
            "records included: these figures are not those of new patients (its new-patient "
            "estimate is its record-fold cross-validation, in its metadata and the report)",
            file=sys.stderr,
        )
    metrics = evaluate_weights(loaded, beats, split, n_boot=args.bootstrap, device=args.device)
    return _print_metrics(args, metrics, seen)


def _print_metrics(args, metrics: dict, seen: bool) -> int:
    """Print a protocol's metrics as JSON (``--json``) or as text."""
    if args.json:
        keys = ("protocol", "n_beats", "accuracy", "macro_f1", "classes")
        out = {k: metrics[k] for k in keys}
        out["operating_point"] = args.sensitivity
        out["test_records_seen_in_training"] = seen
        if args.bootstrap:
            out["ci"] = metrics["ci"]
        print(json.dumps(out))
    else:
        from .evaluation import fmt_pct

        print(f"protocol {metrics['protocol']}: {metrics['n_beats']} test beats")
        print(f"accuracy {fmt_pct(metrics['accuracy'])} %, macro-F1 {metrics['macro_f1']:.4f}")
        for name, c in metrics["classes"].items():
            print(
                f"  {name}: Se {fmt_pct(c['sensitivity'])} %  +P {fmt_pct(c['ppv'])} %  "
                f"F1 {c['f1']:.3f}  (n={c['support']})"
            )
    return 0


def _evaluate_patient_specific(args, loaded) -> int:
    from .evaluation import fmt_pct
    from .patient_specific import evaluate_patient_specific
    from .sources import default_cache_dir, resolve_mitdb_dir

    if args.selection == "active" and not args.labelled_beats:
        raise EcgError("--selection active needs --labelled-beats (the review's budget)")
    mitdb = resolve_mitdb_dir(args.mitdb_dir, cache_dir=args.cache_dir or default_cache_dir())
    seen = _seen_in_training(loaded, "inter-patient")
    if seen and not args.quiet:
        print(f"warning: {args.weights} was trained on the DS2 records", file=sys.stderr)
    from .splits import DS2

    records = tuple(r for r in DS2 if (Path(mitdb) / f"{r}.hea").exists())
    if not records:
        raise EcgError("no DS2 record found for the patient-specific protocol", mitdb)
    if len(records) < len(DS2) and not args.quiet:
        missing = ", ".join(sorted(set(DS2) - set(records)))
        print(f"note: DS2 records not found, left out: {missing}", file=sys.stderr)
    result = evaluate_patient_specific(
        loaded,
        mitdb,
        records=records,
        minutes=args.labelled_minutes,
        n_boot=args.bootstrap,
        labelled_beats=args.labelled_beats,
        selection=args.selection,
    )
    metrics = result["adapted"]
    if args.json:
        keys = ("n_beats", "accuracy", "macro_f1", "classes")
        out = {"protocol": "patient-specific", **{k: metrics[k] for k in keys}}
        out["operating_point"] = args.sensitivity
        out["test_records_seen_in_training"] = seen
        out["labelled_minutes"] = args.labelled_minutes
        out["labelled_beats"] = args.labelled_beats
        out["selection"] = args.selection if args.labelled_beats else None
        out["records"] = list(records)
        if args.bootstrap:
            out["ci"] = metrics["ci"]
        print(json.dumps(out))
        return 0
    picked = (
        "one per family of"
        if args.selection == "medoids"
        else "by simulated active review, rounds of 5, in"
    )
    given = (
        f"{args.labelled_beats} labelled beats ({picked} the first "
        f"{args.labelled_minutes:g} minutes)"
        if args.labelled_beats
        else f"the first {args.labelled_minutes:g} labelled minutes"
    )
    print(f"protocol patient-specific: {metrics['n_beats']} beats scored besides {given}")
    for label, m in (("adapted", metrics), ("without adaptation", result["global"])):
        c = m["classes"]
        print(
            f"  {label}: accuracy {fmt_pct(m['accuracy'])} %, S Se {fmt_pct(c['S']['sensitivity'])}"
            f" / +P {fmt_pct(c['S']['ppv'])} %, V Se {fmt_pct(c['V']['sensitivity'])} / +P "
            f"{fmt_pct(c['V']['ppv'])} %"
        )
    return 0


def _seen_in_training(loaded, protocol: str) -> bool:
    """Whether the weights were trained on the test records of ``protocol``."""
    trained_on = (loaded.meta.get("train_config") or {}).get("protocol")
    everything = trained_on == "all-records" and protocol != "kaggle"
    random_beats = trained_on == "kaggle" and protocol == "inter-patient"
    return everything or random_beats


def cmd_report(args) -> int:
    from .report import write_report

    path = write_report(args.results, args.out, args.readme)
    print(path)
    return 0


def cmd_run(args) -> int:
    from .device import resolve_device
    from .report import write_report
    from .sources import default_cache_dir, resolve_mitdb_dir
    from .study import StudyOptions, run_study

    resolve_device(args.device)
    cache = args.cache_dir or default_cache_dir()
    mitdb = resolve_mitdb_dir(args.mitdb_dir, cache_dir=cache)
    seed = args.seed_weights
    opts = StudyOptions(
        mitdb_dir=mitdb,
        out_dir=args.out,
        cache_dir=cache,
        quick=args.quick,
        seed_weights=seed,
        progress=not args.quiet,  # also its epoch lines (tqdm.write), kept in logs
        force=args.force,
        experiments=args.only,
        device=args.device,
        reuse_results=args.reuse_results,
        svdb_dir=args.svdb_dir,
    )
    if args.plan or not args.quiet:
        from .beats import build_beats
        from .plan import describe_plan, plan_study
        from .study import beats_data

        beats = build_beats(mitdb, cache, progress=False)  # cached: the run reads it again
        print(describe_plan(plan_study(opts, beats_data(beats, args.quick))), flush=True)
    if args.plan:
        return 0
    run_study(opts)
    report = write_report(opts.results_dir, args.out / "report.md", args.out / "README.md")
    print(f"wrote {report}")
    return 0


def _archive_mode(paths: list[Path]) -> bool:
    """Several paths, a folder or a glob pattern: the archive mode of ``predict``."""
    from .archive import is_pattern

    return len(paths) > 1 or paths[0].is_dir() or is_pattern(str(paths[0]))


def cmd_predict(args) -> int:
    paths = list(args.path)
    if _archive_mode(paths):
        return cmd_predict_archive(args, paths)
    if args.workers is not None or args.scheduler or args.csv:
        raise EcgError("--workers, --scheduler and --csv are for folders or several recordings")
    args.path = paths[0]
    import torch

    from .predict import (
        beats_table,
        classify_with_quality,
        heart_rate_warning,
        plot_strip,
        plot_window,
        read_input,
        resolve_weights,
        summarize,
        wants_two_leads,
        with_other_lead,
        write_table,
    )

    # one thread: the batches are small, and a second thread that waits for a busy core
    # costs more than it gives (bench/predict.py)
    torch.set_num_threads(args.threads)
    from .device import resolve_device
    from .operating import with_operating_point

    resolve_device(args.device)  # a device that is not there fails before any work

    plot_start = 0.0 if args.plot_start is None else args.plot_start
    plot_seconds = 20.0 if args.plot_seconds is None else args.plot_seconds
    if not args.plot and (args.plot_start is not None or args.plot_seconds is not None):
        raise EcgError("--plot-start and --plot-seconds choose the window of --plot; add --plot")
    loaded = with_operating_point(resolve_weights(args.weights), args.sensitivity)
    kind, data, fs, extra = read_input(args.path, args.fs, args.lead, wants_two_leads(loaded))
    if args.plot:  # a window outside the recording fails before any output is written
        if kind == "beats":
            raise EcgError("--plot needs a recording, not single beats", args.path)
        plot_window(len(data), fs, plot_start, plot_seconds)
    if kind == "beats":
        from .inference import predict_proba

        if loaded.meta.get("feature_set"):
            raise EcgError(
                "this model needs RR intervals; give a recording, not single beats", args.path
            )
        from .device import on_device

        proba = predict_proba(on_device(loaded.model, args.device), data)
        table = beats_table(np.arange(len(data)), None, proba)
        quality = None
    else:
        peaks = None
        if args.ann:
            from .records import read_annotations

            if kind != "record":
                raise EcgError("--ann needs a WFDB record", args.path)
            samples, symbols = read_annotations(extra["record_path"], args.ann)
            peaks, _ = annotated_beats(samples, symbols)
        table, quality = classify_with_quality(
            with_other_lead(data, extra),
            fs,
            r_peaks=peaks,
            weights=loaded,
            adaptation=not args.no_adaptation,
            device=args.device,
            keep_noisy=args.keep_noisy,
        )
    for key in ("lead_note", "units_note"):
        if extra.get(key) and not args.quiet:
            print(f"note: {extra[key]}", file=sys.stderr)
    warning = heart_rate_warning(table, fs)
    if warning:
        print(f"warning: {args.path}: {warning}", file=sys.stderr)
    if args.out:
        write_table(table, args.out)
    if args.plot:
        name = Path(args.path).with_suffix("").name
        title = f"{name}, lead {extra['lead']}" if extra.get("lead") else name
        units = extra.get("units", "mV")
        noisy_s = quality.intervals() if quality is not None else None
        plot_strip(data, fs, table, args.plot, plot_seconds, plot_start, title, units, noisy_s)
    print(summarize(table, fs))
    if not args.out:
        print(table.head(10).to_string(index=False))
    return 0


def cmd_predict_archive(args, paths: list[Path]) -> int:
    """``predict`` over many recordings: Parquet, Holter summaries, failures (exit 1)."""
    from .archive import ArchiveOptions, find_recordings, run_archive, weights_checksum
    from .predict import resolve_weights

    if args.out is None:
        raise EcgError("--out FOLDER (or URL) is required for a folder or several recordings")
    if args.plot or args.plot_start is not None or args.plot_seconds is not None:
        raise EcgError("--plot draws one recording; give a single file")
    if args.device not in ("auto", "cpu"):
        raise EcgError("a folder runs one CPU process per recording; --device is for one file")
    out = str(args.out)
    if "://" not in out and Path(out).suffix.lower() == ".csv":
        raise EcgError("--out must be a folder (or URL) for several recordings", out)
    recordings = find_recordings(paths, exclude=out)
    weights_path = Path(args.weights or _default_weights())
    resolve_weights(weights_path)  # bad weights fail here, before any work starts
    options = ArchiveOptions(
        weights=str(weights_path.resolve()),
        weights_sha256=weights_checksum(weights_path),
        fs=args.fs,
        lead=args.lead,
        ann=args.ann,
        sensitivity=args.sensitivity,
        adaptation=not args.no_adaptation,
        keep_noisy=args.keep_noisy,
        csv=args.csv,
        threads=args.threads,
    )
    result = run_archive(
        recordings,
        out,
        options,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=_progress(args),
    )
    print(result.line())
    print(f"wrote {out}/beats (Parquet, by recording), {out}/summary.csv, {out}/failures.csv")
    for r in result.failed:
        print(f"failed: {r['error']}", file=sys.stderr)
    return EXIT_FAILURE if result.failed else 0


def _default_weights() -> Path:
    from . import DEFAULT_WEIGHTS

    return DEFAULT_WEIGHTS


def _read_for(args, weights):
    """A recording read for ``weights``: with its second lead when the model reads one.

    Returns (kind, signal, fs, extra, loaded): ``signal`` is 1-D, or ``(n, 2)`` with the
    classified lead first."""
    from .predict import read_input, resolve_weights, wants_two_leads, with_other_lead

    loaded = resolve_weights(weights)
    kind, data, fs, extra = read_input(args.path, args.fs, args.lead, wants_two_leads(loaded))
    if kind != "beats":
        data = with_other_lead(data, extra)
    return kind, data, fs, extra, loaded


def cmd_adapt(args) -> int:
    import pandas as pd

    from .adaptation import adapt
    from .checkpoint import save_model

    kind, data, fs, extra, loaded = _read_for(args, args.weights)
    if kind == "beats":
        raise EcgError("adaptation needs a recording, not single beats", args.path)
    record = Path(args.path).with_suffix("").name
    peaks, labels, source = None, None, args.labels
    if args.ann:
        peaks, classes = _annotated(kind, extra, args)
        if args.labels is None:  # the annotations label the first minutes
            source = extra["record_path"].with_suffix(f".{args.ann}")
            first = peaks < args.minutes * 60 * fs
            labels = list(zip(peaks[first], classes[first], strict=True))
    if args.clusters is not None:
        labels, source = _reviewed_labels(args.clusters, record)
    elif args.labels is not None:
        try:
            labels = pd.read_csv(args.labels)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise EcgError(f"cannot read labels: {exc}", args.labels) from None
        named = labels.get("record")
        if named is not None and set(named.astype(str)) - {record}:
            others = ", ".join(sorted(set(named.astype(str)) - {record}))
            raise EcgError(f"labels are for record(s) {others}, not {record}", args.labels)
    elif not args.ann:
        raise EcgError(
            "give the labelled beats: --labels LABELS.csv, --clusters families.csv or --ann atr"
        )
    try:
        loaded = adapt(loaded, data, fs, labels, r_peaks=peaks, record=record)
    except EcgError as exc:
        if exc.path is None:
            raise EcgError(exc.problem, source) from None
        raise
    save_model(loaded.model, args.out, loaded.meta)
    patient = loaded.meta["patient"]
    counts = ", ".join(f"{k} {v}" for k, v in patient["labels_per_class"].items() if v)
    n = patient["n_labels"]
    print(f"saved {args.out}: adapted to {record} from {n} labelled beats ({counts})")
    return 0


def _reviewed_labels(families_csv: Path, record: str):
    """Labelled beats from a reviewed ``families.csv`` and the ``beats.csv`` beside it."""
    import pandas as pd

    from .adaptation import family_labels

    members_csv = families_csv.with_name("beats.csv")
    tables = []
    for path in (families_csv, members_csv):
        try:
            tables.append(pd.read_csv(path))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise EcgError(f"cannot read the cluster review: {exc}", path) from None
    families, members = tables
    named = set(members.get("record", pd.Series([record])).astype(str))
    if named - {record}:
        raise EcgError(
            f"the cluster review is of record {', '.join(sorted(named))}, not {record}", members_csv
        )
    labels, reviewed, changed = family_labels(families, members, families_csv)
    print(f"{reviewed} families reviewed, {changed} corrected: {len(labels)} beats labelled")
    return labels, families_csv


def cmd_clusters(args) -> int:
    from ._io import atomic_open
    from .adaptation import plot_families, review_families

    kind, data, fs, extra, loaded = _read_for(args, args.weights)
    if kind == "beats":
        raise EcgError("the cluster review needs a recording, not single beats", args.path)
    peaks = _annotated(kind, extra, args)[0] if args.ann else None
    families, members, beats = review_families(
        loaded, data, fs, r_peaks=peaks, n_families=args.families
    )
    record = Path(args.path).with_suffix("").name
    members.insert(0, "record", record)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, table in (("families.csv", families), ("beats.csv", members)):
        with atomic_open(args.out / name, "w") as handle:
            table.to_csv(handle, index=False)
    plot_families(families, members, beats, args.out / "families.png")
    print(
        f"{len(members)} beats in {len(families)} families: edit the class column of "
        f"{args.out / 'families.csv'}, then run "
        f"'python -m ecg_utils adapt {args.path} --clusters {args.out / 'families.csv'} "
        f"--out patient.pth'"
    )
    return 0


def cmd_review(args) -> int:
    from ._io import atomic_open
    from .review import review_beats

    kind, data, fs, extra, loaded = _read_for(args, args.weights)
    if kind == "beats":
        raise EcgError("the review needs a recording, not single beats", args.path)
    peaks = _annotated(kind, extra, args)[0] if args.ann else None
    record = Path(args.path).with_suffix("").name
    table = review_beats(loaded, data, fs, args.budget, r_peaks=peaks, record=record)
    with atomic_open(args.out, "w", newline="") as handle:
        table.to_csv(handle, index=False)
    print(
        f"{len(table)} beats to review in {args.out} (the least sure of "
        f"{table['family'].nunique()} families first): fill in the class column (N, S, V, F "
        f"or Q; leave a row blank to skip it), then run 'python -m ecg_utils adapt "
        f"{args.path} --labels {args.out} --out patient.pth'"
    )
    return 0


def cmd_explain(args) -> int:
    from .checkpoint import load_model
    from .explain import plot_explanations

    loaded = load_model(args.weights)  # bad weights fail before the data is read
    beats, split = _load_protocol_data(args, args.protocol)
    test = beats.subset(split.test)
    path = plot_explanations(loaded, test, None, args.out, n_per_class=args.n_per_class)
    print(path)
    return 0


def cmd_export(args) -> int:
    from .export import export_onnx, onnx_metadata_path

    path = export_onnx(args.weights, args.out, opset=args.opset)
    print(f"wrote {path} and {onnx_metadata_path(path)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ecg_utils", description="AAMI heartbeat classification on MIT-BIH with a 1D CNN."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)
    sub_add = sub.add_parser

    def add_parser(name, **kwargs):
        return sub_add(name, parents=[common], **kwargs)

    sub.add_parser = add_parser

    p = sub.add_parser("download", help="download MIT-BIH (PhysioNet) or the Kaggle CSVs")
    p.add_argument("--source", choices=("physionet", "kaggle"), default="physionet")
    p.add_argument("--url", help="PhysioNet base URL (default: env ECG_PHYSIONET_URL)")
    p.add_argument("--out", type=Path, help="target folder for the Kaggle CSVs")
    p.add_argument("--cache-dir", type=Path)
    p.set_defaults(func=cmd_download)

    p = sub.add_parser(
        "records", help="print the MIT-BIH folder found (env, ../shared, cache), or fetch it"
    )
    p.add_argument(
        "--download", action="store_true", help="download (checksummed) when none is found"
    )
    p.add_argument("--url", help="PhysioNet folder URL (default: env ECG_PHYSIONET_URL)")
    p.add_argument("--cache-dir", type=Path, help="download cache (default: env ECG_CACHE_DIR)")
    p.set_defaults(func=cmd_records)

    p = sub.add_parser("build", help="segment beats (Kachuee et al. 2018) from MIT-BIH records")
    _add_data_args(p, kaggle=False)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--format", choices=("kaggle-csv", "npz"), default="kaggle-csv")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("train", help="train a model on one protocol")
    _add_data_args(p)
    p.add_argument(
        "--protocol",
        choices=("kaggle", "inter-patient", "all-records"),
        help="default: the --config file's, else kaggle (all-records needs --cv-folds)",
    )
    p.add_argument("--config", type=Path, help="JSON file of TrainConfig fields")
    p.add_argument("--out", type=Path, default=Path("runs/model.pth"), help="weights path")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--architecture", choices=("ecg1dcnn", "resnet1d"))
    p.add_argument("--feature-set", choices=sorted(FEATURE_SETS))
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--lr", type=_positive_float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=("none", "onecycle", "cosine"))
    p.add_argument("--loss", choices=("ce", "weighted_ce"))
    p.add_argument("--sampler", choices=("none", "balanced"))
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--patience", type=_int)
    p.add_argument(
        "--cv-folds",
        type=_int,
        help="inter-patient: choose epoch and offsets by cross-validation over this many "
        "record folds, then train on all training records (in one go: no --resume)",
    )
    p.add_argument("--seed", type=_int)
    p.add_argument("--threads", type=_int)
    _add_device_arg(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate weights on a protocol's test side")
    _add_data_args(p)
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument(
        "--protocol",
        choices=("kaggle", "inter-patient", "patient-specific", "svdb-dev"),
        default="kaggle",
        help="svdb-dev: the 39 development records of the MIT-BIH Supraventricular "
        "Arrhythmia Database (validation across databases, annotated R peaks)",
    )
    p.add_argument(
        "--svdb-dir",
        type=Path,
        help="svdb-dev folder (default: env ECG_SVDB_DIR, else ../shared/data/svdb-dev)",
    )
    _add_sensitivity_arg(p)
    p.add_argument(
        "--labelled-minutes",
        type=_positive_float,
        default=5.0,
        help="patient-specific: minutes at the start of each DS2 record whose labels adapt "
        "the model (the rest is scored)",
    )
    p.add_argument(
        "--labelled-beats",
        type=_positive_int,
        help="patient-specific, few labels (EC57): the beats of the first --labelled-minutes "
        "grouped into this many families, each family's most typical beat labelled with its "
        "reference class (only those beats); the rest of the record is scored",
    )
    p.add_argument(
        "--selection",
        choices=("medoids", "active"),
        default="medoids",
        help="patient-specific with --labelled-beats: label the families' medoids, or "
        "simulate active review (rounds of 5 beats the adapted model is least sure of, one "
        "per family first, as 'review' lists them)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--bootstrap", type=_int, default=0, help="bootstrap resamples for CIs")
    _add_device_arg(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("report", help="write report.md from results/*.json")
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--out", type=Path, default=Path("report.md"))
    p.add_argument(
        "--readme", type=Path, default=None, help="also regenerate this README's results block"
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("predict", help="classify the beats of a recording or a whole archive")
    p.add_argument(
        "path",
        type=Path,
        nargs="+",
        help="WFDB record (.hea), CSV/NPY of samples, or beats CSV; or folders, glob patterns "
        "or several recordings (then --out is a folder and a Holter summary is written)",
    )
    p.add_argument("--weights", type=Path, help="default: ecg_utils.DEFAULT_WEIGHTS")
    _add_sensitivity_arg(p)
    p.add_argument(
        "--no-adaptation",
        action="store_true",
        help="classify each beat alone, without the unsupervised adaptation to the recording "
        "that the weights name",
    )
    p.add_argument(
        "--keep-noisy",
        action="store_true",
        help="keep the classifier's label for beats in noisy stretches (still marked noisy "
        "in the quality column; by default they are labelled Q)",
    )
    _add_fs_lead_args(p)
    p.add_argument(
        "--ann", help="use this annotation file's R peaks (e.g. atr) instead of detection"
    )
    p.add_argument(
        "--out",
        help="write the per-beat table as CSV; for an archive, the output folder or fsspec URL",
    )
    p.add_argument("--plot", type=Path, help="draw a strip (PNG) with beats coloured by class")
    p.add_argument(
        "--plot-start", type=_non_negative_float, help="--plot: window start in s (default 0)"
    )
    p.add_argument(
        "--plot-seconds", type=_positive_float, help="--plot: window length in s (default 20)"
    )
    p.add_argument("--threads", type=_positive_int, default=1, help="torch CPU threads (each)")
    p.add_argument(
        "--workers", type=_positive_int, help="archive: parallel recordings (default: the cores)"
    )
    p.add_argument(
        "--scheduler",
        help="archive: 'local' (a Dask LocalCluster) or a Dask scheduler address "
        "(tcp://HOST:8786); default: a pool of processes",
    )
    p.add_argument("--csv", action="store_true", help="archive: also one CSV per recording")
    _add_device_arg(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("run", help="the whole study: data, training, evaluation, report")
    _add_data_args(p, kaggle=False)
    p.add_argument("--out", type=Path, default=Path("."), help="project folder for outputs")
    p.add_argument("--quick", action="store_true", help="1 epoch per model (smoke test)")
    p.add_argument("--force", action="store_true", help="retrain even if results are valid")
    p.add_argument(
        "--only",
        nargs="+",
        help="run only these experiments ('relative': the patient-relative recipe)",
    )
    p.add_argument(
        "--svdb-dir",
        type=Path,
        help="svdb-dev folder, where the patient-relative recipe is chosen (default: env "
        "ECG_SVDB_DIR, else ../shared/data/svdb-dev)",
    )
    p.add_argument(
        "--seed-weights", type=Path, help="the seed's ecg_cnn.pth for the fidelity check"
    )
    p.add_argument(
        "--plan", action="store_true", help="say what the run would do and how long, then stop"
    )
    p.add_argument(
        "--reuse-results",
        action="store_true",
        help="keep the results already in results/ (the committed ones in a fresh clone) "
        "whose configuration and data fingerprint match, even without their run's weights",
    )
    _add_device_arg(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("adapt", help="adapt a model to one patient from labelled beats")
    _add_recording_args(p)
    p.add_argument("--weights", type=Path, help="model to adapt (default: DEFAULT_WEIGHTS)")
    p.add_argument("--labels", type=Path, help="CSV of labelled beats: sample,class[,record]")
    p.add_argument("--clusters", type=Path, help="a reviewed families.csv (see 'clusters')")
    p.add_argument("--ann", help="annotation extension: its beats in the first --minutes label")
    p.add_argument("--minutes", type=_positive_float, default=5.0, help="labelled minutes (--ann)")
    p.add_argument("--out", type=Path, required=True, help="adapted weights (.pth)")
    p.set_defaults(func=cmd_adapt)

    p = sub.add_parser("clusters", help="group a recording's beats into families to review")
    _add_recording_args(p)
    p.add_argument("--weights", type=Path, help="model whose predictions name the families")
    p.add_argument("--ann", help="annotation extension whose beats to use (else detected)")
    p.add_argument("--families", type=_positive_int, default=20, help="number of families")
    p.add_argument("--out", type=Path, required=True, help="folder for families.csv/.png")
    p.set_defaults(func=cmd_clusters)

    p = sub.add_parser("review", help="list the beats the model is least sure of, to label")
    _add_recording_args(p)
    p.add_argument("--weights", type=Path, help="model whose doubts pick the beats")
    p.add_argument("--ann", help="annotation extension whose beats to use (else detected)")
    p.add_argument("--budget", type=_positive_int, default=20, help="beats to list (>= 1)")
    p.add_argument("--out", type=Path, required=True, help="review CSV to fill in")
    p.set_defaults(func=cmd_review)

    p = sub.add_parser("explain", help="Grad-CAM figure of test beats (correct and wrong)")
    _add_data_args(p)
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--protocol", choices=("kaggle", "inter-patient"), default="kaggle")
    p.add_argument("--out", type=Path, default=Path("figures/explain.png"), help="output PNG")
    p.add_argument("--n-per-class", type=_positive_int, default=3)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("export", help="export weights to ONNX (metadata JSON beside it)")
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--format", choices=("onnx",), default="onnx")
    p.add_argument("--out", type=Path, required=True, help="output .onnx file")
    p.add_argument("--opset", type=_positive_int, default=17)
    p.set_defaults(func=cmd_export)
    return parser


@contextlib.contextmanager
def _sigterm_interrupts():
    """Turn SIGTERM (``kill``, a job scheduler) into KeyboardInterrupt so outputs stay whole."""
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _sigterm_interrupts():
            return args.func(args)
    except EcgError as exc:
        if args.debug:
            raise
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(
            "interrupted; outputs written so far are complete (use --resume to continue)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except Exception as exc:  # last resort: one line, not a traceback
        if args.debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(
            f"error: {type(exc).__name__}: {first} (rerun with --debug for details)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
