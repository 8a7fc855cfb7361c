"""Patient-adaptive mode: a few labelled beats of a patient adapt a shipped model.

Holter analysts review beat families and correct them; the AAMI EC57 patient-specific
protocol lets the first 5 minutes of a recording, labelled by an expert, train the
classifier for that patient. :func:`adapt` leaves the shipped model unchanged and returns
an adapted copy:

- a model of the patient-relative recipe (the default weights) is **fine-tuned with
  replay** (:mod:`ecg_utils.finetune`): boosting continues from its probabilities on the
  patient's labelled beats mixed with a class-balanced replay of its training beats, so
  one or two labelled S beats move its boundary and classes the patient's labels lack
  survive;
- a network gets a memory of the patient's labelled beats: each new beat's
  probabilities are mixed with the vote of its nearest labelled beats in the network's
  own representation (:class:`~ecg_utils.models.PatientAdapted`).

Either adapted model saves and loads like any other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ._io import EcgError
from .beats import CLASS_NAMES, RELATIVE_SET
from .checkpoint import LoadedModel
from .models import PatientAdapted, embed

MATCH_S = 0.15
"""A label names the beat whose R peak lies within this many seconds of its sample."""
NEIGHBOURS = 5
"""Labelled beats that vote for each beat (fewer when fewer are labelled)."""
ADAPTED = ("patient", "patient_trees")
"""Architectures of models already adapted to a patient (not adapted again)."""
VOTE_WEIGHT = 0.5
"""Share of the labelled beats' vote in the adapted probabilities, unless the model's
metadata names the share chosen on its training records (``patient_vote_weight``)."""


def parse_labels(labels, n_samples: int, source: str | Path | None = None) -> pd.DataFrame:
    """Labelled beats as a table of ``sample`` (int) and ``label`` (0-4), sorted.

    Parameters
    ----------
    labels : DataFrame, ndarray of shape (n, 2), or sequence of (sample, class) pairs
        Classes as labels 0-4 or names N, S, V, F, Q; a DataFrame needs ``sample`` and
        ``class`` (or ``label``) columns, and its rows with a blank class (beats of a
        review not yet labelled) are skipped.
    n_samples : int
        Length of the recording: every sample must lie inside it.
    source : path, optional
        Named in error messages (the labels file).

    Raises
    ------
    EcgError
        For no labels, samples outside the recording or not whole numbers, or unknown
        classes.
    """
    if isinstance(labels, pd.DataFrame):
        column = "class" if "class" in labels.columns else "label"
        if "sample" not in labels.columns or column not in labels.columns:
            raise EcgError("labels need 'sample' and 'class' columns", source)
        filled = labels[column].notna() & (labels[column].astype(str).str.strip() != "")
        if len(labels) and not filled.any():
            raise EcgError(
                f"the {column} column is blank in every row: fill in N, S, V, F or Q for the "
                "beats reviewed (blank rows are skipped)",
                source,
            )
        labels = labels[filled]  # rows left blank (beats not reviewed) are skipped
        samples, classes = labels["sample"].to_numpy(), labels[column].to_numpy()
    else:
        pairs = list(labels) if labels is not None else []
        if pairs and any(len(p) != 2 for p in pairs):
            raise EcgError("labels must be (sample, class) pairs", source)
        samples = np.array([p[0] for p in pairs]) if pairs else np.zeros(0)
        classes = np.array([p[1] for p in pairs], dtype=object) if pairs else np.zeros(0)
    if len(samples) == 0:
        raise EcgError("no labelled beats: adaptation needs at least one", source)
    try:
        as_float = np.asarray(samples, dtype=np.float64)
    except (TypeError, ValueError):
        raise EcgError("label samples must be whole numbers", source) from None
    if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
        raise EcgError("label samples must be whole numbers", source)
    outside = (as_float < 0) | (as_float >= n_samples)
    if outside.any():
        raise EcgError(
            f"{int(outside.sum())} label(s) outside the recording (samples 0 to "
            f"{n_samples - 1}), first at sample {int(as_float[outside][0])}",
            source,
        )
    out = np.array([_class_label(c, source) for c in classes], dtype=np.int64)
    table = pd.DataFrame({"sample": as_float.astype(np.int64), "label": out})
    return table.sort_values("sample", kind="stable").reset_index(drop=True)


def _class_label(value, source) -> int:
    text = str(value).strip()
    if text in CLASS_NAMES:
        return CLASS_NAMES.index(text)
    if text.isdigit() and int(text) < len(CLASS_NAMES):
        return int(text)
    raise EcgError(f"unknown class {text!r}; use N, S, V, F, Q or 0-{len(CLASS_NAMES) - 1}", source)


def adapt(
    model,
    signal: np.ndarray,
    fs: float,
    labels,
    r_peaks: np.ndarray | None = None,
    lead: int = 0,
    record: str | None = None,
    vote_weight: float | None = None,
    fine_tune: dict | None = None,
) -> LoadedModel:
    """A copy of ``model`` adapted to one patient from some of their labelled beats.

    Parameters
    ----------
    model : path or LoadedModel
        A shipped model (default weights when None); it is not changed.
    signal : ndarray, shape (n_samples,) or (n_samples, n_leads)
        The patient's recording in mV at ``fs`` Hz.
    fs : float
        Sampling rate in Hz.
    labels : table or pairs of (sample, class)
        Labelled beats (see :func:`parse_labels`): sample positions at ``fs`` and AAMI
        classes. Each names the R peak nearest to it within :data:`MATCH_S`.
    r_peaks : ndarray of int, optional
        R peaks of the recording in samples; detected when None.
    lead : int
        Column of a 2-D ``signal``.
    record : str, optional
        Name of the recording, kept in the metadata.
    vote_weight : float, optional
        Share of the labelled neighbours' vote in the output (0-1); default the model's
        ``patient_vote_weight`` metadata (chosen on its training records by the study),
        else :data:`VOTE_WEIGHT` (networks).
    fine_tune : dict, optional
        Overrides of :data:`ecg_utils.finetune.FINE_TUNE` (relative-recipe models), on
        top of the budget the weights' metadata name (``fine_tune``, chosen on DS1 folds).

    Returns
    -------
    LoadedModel
        Whose model is a :class:`~ecg_utils.trees.PatientTrees` (relative recipe) or a
        :class:`~ecg_utils.models.PatientAdapted` (networks); ``meta["patient"]``
        records the recording, the number of labelled beats per class and the labelled
        span in samples.

    Raises
    ------
    EcgError
        For bad labels (:func:`parse_labels`), labels that fall on no beat, or a model
        without the representation adaptation needs.
    """
    from .predict import recording_inputs, resolve_weights

    loaded = resolve_weights(model)
    if not hasattr(loaded.model, "embed") or loaded.meta.get("architecture") in ADAPTED:
        raise EcgError(
            f"a {loaded.meta.get('architecture')!r} model cannot be adapted: adaptation "
            "needs a shipped beat model (not one already adapted to a patient)"
        )
    n_samples = len(signal)
    table = parse_labels(labels, n_samples)
    peaks, beats, feats = recording_inputs(signal, fs, r_peaks, lead, loaded.feature_set)
    matched = match_labels(table["sample"].to_numpy(), peaks, fs)
    if (matched < 0).all():
        raise EcgError(f"none of the {len(table)} labels lies within {MATCH_S} s of a beat")
    keep = matched >= 0
    beat_idx, beat_labels = matched[keep], table["label"].to_numpy()[keep]
    counts = np.bincount(beat_labels, minlength=len(CLASS_NAMES))
    patient = {
        "record": record,
        "n_labels": int(len(beat_idx)),
        "n_labels_unmatched": int((~keep).sum()),
        "labels_per_class": dict(zip(CLASS_NAMES, counts.tolist(), strict=True)),
        "labelled_samples": [int(peaks[beat_idx].min()), int(peaks[beat_idx].max())],
        "fs": float(fs),
    }
    if loaded.feature_set == RELATIVE_SET:  # the relative recipe: fine-tuning with replay
        from .finetune import FINE_TUNE
        from .finetune import fine_tune as fine_tune_model

        params = {**FINE_TUNE, **loaded.meta.get("fine_tune", {}), **(fine_tune or {})}
        tuned, args = fine_tune_model(loaded, feats[beat_idx], beat_labels, params)
        meta = {**_without_unlabelled(loaded.meta), "architecture": "patient_trees"}
        meta["model_args"] = args
        meta["patient"] = {**patient, "method": "fine-tuning with replay", **params}
        return LoadedModel(tuned, meta)
    x = torch.from_numpy(beats[beat_idx]).unsqueeze(1)
    f = None if feats is None else torch.from_numpy(feats[beat_idx])
    with torch.no_grad():
        memory = embed(loaded.model, x, f)
    args = {
        "base": loaded.meta["architecture"],
        "base_args": loaded.meta.get("model_args", {}),
        "n_labelled": len(beat_idx),
        "embed_dim": int(memory.shape[1]),
        "k": NEIGHBOURS,
        "weight": float(
            vote_weight
            if vote_weight is not None
            else loaded.meta.get("patient_vote_weight") or VOTE_WEIGHT
        ),
    }
    adapted = PatientAdapted(**args)
    adapted.base.load_state_dict(loaded.model.state_dict())
    adapted.remember(memory, torch.from_numpy(beat_labels))
    meta = {**_without_unlabelled(loaded.meta), "architecture": "patient", "model_args": args}
    meta["patient"] = {**patient, "method": "nearest labelled beats vote"}
    return LoadedModel(adapted.eval(), meta)


def _without_unlabelled(meta: dict) -> dict:
    """The shipped model's metadata without its unsupervised adaptation: no unlabelled
    smoothing overrides a labelled patient's evidence."""
    out = {k: v for k, v in meta.items() if k not in ("adaptation", "pseudo_labels")}
    if meta.get("adaptation"):
        out["base_adaptation"] = meta["adaptation"]  # recorded, not applied
    return out


def match_labels(samples: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray:
    """Index of the R peak each label names (nearest within :data:`MATCH_S`), else -1."""
    if len(peaks) == 0:
        return np.full(len(samples), -1, np.int64)
    pos = np.clip(np.searchsorted(peaks, samples), 1, len(peaks) - 1) if len(peaks) > 1 else None
    if pos is None:
        nearest = np.zeros(len(samples), np.int64)
    else:
        left, right = peaks[pos - 1], peaks[pos]
        nearest = np.where(np.abs(samples - left) <= np.abs(samples - right), pos - 1, pos)
    close = np.abs(peaks[nearest] - samples) <= MATCH_S * fs
    return np.where(close, nearest, -1)


FAMILIES = 20
"""Families a recording's beats are grouped into for review (``clusters``)."""
FAMILY_COLUMNS = [
    "family",
    "size",
    "predicted",
    "class",
    "rr_ratio",
    "medoid_sample",
    "example_samples",
]


def review_families(
    model,
    signal: np.ndarray,
    fs: float,
    r_peaks: np.ndarray | None = None,
    lead: int = 0,
    n_families: int = FAMILIES,
    seed: int = 0,
):
    """Group a recording's beats into families for an analyst to review and correct.

    Families share morphology and prematurity
    (:func:`~ecg_utils.unsupervised.beat_families`); each gets the class most of its
    beats are predicted as. The analyst edits the ``class`` column of the family table;
    :func:`family_labels` then turns it into labelled beats for :func:`adapt`.

    Returns
    -------
    families : DataFrame
        One row per family, largest first: ``family``, ``size``, ``predicted`` (class
        name), ``class`` (the same, to edit), ``rr_ratio`` (the family's median
        previous RR over the local median RR: below 1 for premature beats),
        ``medoid_sample`` (the family's most
        typical beat, in samples at ``fs``) and ``example_samples`` (up to five beats,
        spread through the family, separated by spaces).
    members : DataFrame
        One row per beat: ``sample``, ``family``, ``predicted``.
    beats : ndarray, shape (n_beats, 187)
        The beats at 120 Hz, in the order of ``members`` (for figures).
    """
    from .beats import context_features, rr_features
    from .inference import predict_proba
    from .predict import recording_inputs, resolve_weights
    from .unsupervised import beat_families

    loaded = resolve_weights(model)
    peaks, beats, feats = recording_inputs(signal, fs, r_peaks, lead, loaded.feature_set)
    if len(peaks) == 0:
        raise EcgError("no beats found in the recording: nothing to review")
    pred = predict_proba(loaded.model, beats, feats).argmax(1)
    rr = rr_features(peaks, fs)
    families, medoids = beat_families(beats, rr, n_families, seed)
    ratio = context_features(rr)[:, 0]
    rows = []
    for f, medoid in enumerate(medoids):
        members = np.flatnonzero(families == f)
        predicted = CLASS_NAMES[int(np.bincount(pred[members], minlength=5).argmax())]
        spread = members[np.linspace(0, len(members) - 1, min(5, len(members))).astype(int)]
        rows.append(
            {
                "family": f,
                "size": len(members),
                "predicted": predicted,
                "class": predicted,
                "rr_ratio": round(float(np.median(ratio[members])), 2),
                "medoid_sample": int(peaks[medoid]),
                "example_samples": " ".join(str(int(peaks[i])) for i in spread),
            }
        )
    table = pd.DataFrame(rows, columns=FAMILY_COLUMNS)
    table = table.sort_values(["size", "family"], ascending=[False, True]).reset_index(drop=True)
    members = pd.DataFrame(
        {"sample": peaks, "family": families, "predicted": [CLASS_NAMES[p] for p in pred]}
    )
    return table, members, beats


def family_labels(
    families: pd.DataFrame, members: pd.DataFrame, source: str | Path | None = None
) -> tuple[list[tuple[int, int]], int, int]:
    """Labelled beats from a reviewed family table: each family's class for all its beats.

    Returns
    -------
    labels : list of (sample, label)
    reviewed : int
        Families reviewed (the labels the analyst gave).
    changed : int
        Families whose class the analyst changed from the predicted one.
    """
    missing = {"family", "class", "predicted"} - set(families.columns)
    if missing:
        raise EcgError(f"family table lacks column(s) {', '.join(sorted(missing))}", source)
    known = set(members["family"].tolist())
    unknown = sorted(set(families["family"].tolist()) - known)
    if unknown:
        raise EcgError(f"families {unknown[:5]} are not this recording's", source)
    label_of = {
        int(f): _class_label(c, source)
        for f, c in zip(families["family"], families["class"], strict=True)
    }
    labels = [
        (int(s), label_of[int(f)])
        for s, f in zip(members["sample"], members["family"], strict=True)
        if int(f) in label_of
    ]
    changed = int((families["class"].astype(str) != families["predicted"].astype(str)).sum())
    return labels, len(label_of), changed


def plot_families(families: pd.DataFrame, members: pd.DataFrame, beats: np.ndarray, path):
    """One panel per family: its medoid beat (bold) over a few of its members."""
    from matplotlib.figure import Figure

    from .beats import FS_BEAT
    from .evaluation import _save_figure

    n = len(families)
    cols = min(5, n)
    rows = -(-n // cols)
    fig = Figure(figsize=(3.0 * cols, 2.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    t = np.arange(beats.shape[1]) / FS_BEAT
    sample_to_beat = {int(s): i for i, s in enumerate(members["sample"])}
    for ax, (_, row) in zip(axes, families.iterrows(), strict=False):
        examples = [sample_to_beat[int(s)] for s in str(row["example_samples"]).split()]
        ax.plot(t, beats[examples].T, color="0.7", lw=0.7)
        ax.plot(t, beats[sample_to_beat[int(row["medoid_sample"])]], color="C3", lw=1.4)
        title = f"family {row['family']}: {row['size']} beats, {row['predicted']}"
        ax.set_title(f"{title}, RR x{row['rr_ratio']:.2f}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.axis("off")
    return _save_figure(fig, path)
