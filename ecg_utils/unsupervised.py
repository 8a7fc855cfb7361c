"""Adapting a model to one recording without labels.

:func:`~ecg_utils.predict.classify_record` has the whole recording, not one beat at a
time: what the recording's other beats say about the patient can correct a model
trained on other patients. Three ways, each optional and combinable
(:data:`ADAPTATIONS`, applied in this order):

``batchnorm``
    BatchNorm statistics recomputed on the recording's beats (AdaBN, Li et al. 2018):
    the layers then normalise this patient's beats as the training beats were.
``self_training``
    One round of self-training: the beats the model classifies with probability
    >= :data:`CONFIDENT` become pseudo-labels, the classifier head (the layers after
    the convolutions) is fine-tuned on them for :data:`SELF_TRAINING_EPOCHS` epochs,
    and every beat is classified again.
``clusters``
    Labels made consistent within families of beats that share morphology and
    prematurity: the beats are clustered (k-means on the beat's main shape components
    and its RR ratios) and each beat's probabilities are averaged with its family's.
``pseudo_labels``
    Class-balanced pseudo-labels on the patient-relative features (models of the
    relative recipe): the recording's most confident beats of each class (at most
    :data:`PSEUDO_PER_CLASS` a class, probability >= :data:`PSEUDO_CONFIDENT`) vote, as
    nearest neighbours in the recording's standardised features, for every beat; each
    beat keeps ``1 - PSEUDO_WEIGHT`` of its own probabilities (:func:`pseudo_label_vote`).
``paced_only``
    Q (paced) only in a paced recording: unless at least ``paced_share`` of a
    recording's beats are predicted Q, no beat of it is called Q; each takes its most
    likely other class (:func:`paced_only`). A recording-level rule, with its share
    chosen by the study on records the model never saw.

Which of them the shipped model uses is decided by record-fold cross-validation on the
training records (the study's adaptation ablation), never on a test set.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ._io import EcgError
from .beats import CLASS_NAMES, Beats, beat_features, context_features
from .inference import predict_proba

ADAPTATIONS = ("batchnorm", "self_training", "clusters", "pseudo_labels", "paced_only")
"""Unsupervised adaptations to one recording, in the order they are applied."""
CONFIDENT = 0.95
"""Probability from which a beat's predicted class is used as a pseudo-label."""
SELF_TRAINING_EPOCHS = 2
"""Epochs of head fine-tuning on the pseudo-labelled beats."""
SELF_TRAINING_LR = 1e-3
BEATS_PER_CLUSTER = 40
"""Clusters per recording: one per this many beats, between 2 and :data:`MAX_CLUSTERS`."""
MAX_CLUSTERS = 40
CLUSTER_WEIGHT = 0.5
"""Share of a beat's adapted probabilities that comes from its family's mean."""
PSEUDO_CONFIDENT = 0.9
"""Probability from which a beat can be a pseudo-label of ``pseudo_labels``."""
PSEUDO_PER_CLASS = 300
"""Most confident beats per class kept as pseudo-labels (class balance)."""
PSEUDO_NEIGHBOURS = 10
PSEUDO_WEIGHT = 0.5
"""Share of the pseudo-labelled neighbours' vote in a beat's adapted probabilities."""


def check_adaptations(methods: Sequence[str] | None) -> tuple[str, ...]:
    """The asked-for adaptations in the order they apply; unknown names are errors."""
    methods = tuple(methods or ())
    unknown = [m for m in methods if m not in ADAPTATIONS]
    if unknown:
        raise EcgError(f"unknown adaptation {unknown[0]!r}; choose from: {', '.join(ADAPTATIONS)}")
    return tuple(m for m in ADAPTATIONS if m in methods)


def adapted_proba(
    model: nn.Module,
    x: np.ndarray,
    features: np.ndarray | None,
    methods: Sequence[str],
    rr: np.ndarray | None = None,
    seed: int = 0,
    options: dict | None = None,
) -> np.ndarray:
    """Class probabilities of one recording's beats after adapting ``model`` to them.

    Parameters
    ----------
    model : nn.Module
        Eval-mode model, called as ``model(x)`` or ``model(x, features)``; not changed
        (adaptations work on a copy).
    x : ndarray, shape (n_beats, 187)
        The recording's beats at 120 Hz, in time order.
    features : ndarray, shape (n_beats, k), or None
        Their per-beat features, as the model takes them.
    methods : sequence of str
        Names from :data:`ADAPTATIONS` (an empty sequence: no adaptation).
    rr : ndarray, shape (n_beats, 4), optional
        RR intervals in seconds (:func:`~ecg_utils.beats.rr_features`), which the
        ``clusters`` adaptation needs.
    seed : int
        Seed of the fine-tuning batches and the clustering.
    options : dict, optional
        Keyword arguments of :func:`pseudo_label_vote` and ``paced_share`` of
        :func:`paced_only` (the weights' metadata ``pseudo_labels``, chosen by the study).

    Returns
    -------
    ndarray, shape (n_beats, 5), float32
    """
    methods = check_adaptations(methods)
    x = np.ascontiguousarray(x, dtype=np.float32)
    if len(x) == 0:
        return np.zeros((0, len(CLASS_NAMES)), np.float32)
    if features is not None and features.shape[1] == 0:
        features = None
    if "batchnorm" in methods:
        model = recompute_statistics(model, x, features)
    proba = predict_proba(model, x, features)
    if "self_training" in methods:
        model = self_train(model, x, features, proba, seed)
        proba = predict_proba(model, x, features)
    if "clusters" in methods:
        if rr is None:
            raise EcgError("the clusters adaptation needs the beats' RR intervals")
        proba = cluster_consistent(proba, x, rr, seed)
    options = dict(options or {})
    share = options.pop("paced_share", PACED_SHARE)
    if "pseudo_labels" in methods:
        if features is None:
            raise EcgError("the pseudo_labels adaptation needs the beats' features")
        proba = pseudo_label_vote(proba, features, **options)
    if "paced_only" in methods:
        proba = paced_only(proba, share)
    return proba


PACED_SHARE = 0.5
"""Share of a recording's beats that must be predicted Q for it to count as paced."""


def paced_only(proba: np.ndarray, share: float = PACED_SHARE) -> np.ndarray:
    """A recording's probabilities with Q (paced) removed unless the recording is paced.

    Parameters
    ----------
    proba : ndarray, shape (n_beats, 5)
    share : float
        The recording counts as paced when at least this share of its beats are
        predicted Q; otherwise Q's probability is given to the other classes in
        proportion (so a beat takes its most likely other class).

    Returns
    -------
    ndarray, shape (n_beats, 5), float32
    """
    q = CLASS_NAMES.index("Q")
    proba = np.asarray(proba, np.float32)
    if len(proba) == 0 or (proba.argmax(1) == q).mean() >= share:
        return proba
    out = proba.copy()
    out[:, q] = 0.0
    return out / np.clip(out.sum(axis=1, keepdims=True), 1e-12, None)


def pseudo_label_vote(
    proba: np.ndarray,
    features: np.ndarray,
    confident: float = PSEUDO_CONFIDENT,
    per_class: int = PSEUDO_PER_CLASS,
    neighbours: int = PSEUDO_NEIGHBOURS,
    weight: float = PSEUDO_WEIGHT,
) -> np.ndarray:
    """One recording's probabilities mixed with the vote of its confident beats.

    Parameters
    ----------
    proba : ndarray, shape (n_beats, 5)
        The model's probabilities for the recording's beats.
    features : ndarray, shape (n_beats, k)
        Their features (NaN columns, a missing lead, count as 0); standardised over the
        recording, so distances are the patient's own.
    confident, per_class, neighbours, weight : see :data:`PSEUDO_CONFIDENT` etc.

    Returns
    -------
    ndarray, shape (n_beats, 5), float32
        ``(1 - weight) * proba + weight * vote``; ``proba`` unchanged when no class has
        3 confident beats.
    """
    from sklearn.neighbors import NearestNeighbors

    f = np.nan_to_num(np.asarray(features, np.float64))
    f = (f - f.mean(axis=0)) / (f.std(axis=0) + 1e-6)
    label, top = proba.argmax(1), proba.max(1)
    chosen = []
    for k in range(proba.shape[1]):
        idx = np.flatnonzero((label == k) & (top >= confident))
        if len(idx) >= 3:
            chosen.append(idx[np.argsort(-top[idx], kind="stable")][:per_class])
    if not chosen:
        return proba.astype(np.float32)
    chosen = np.concatenate(chosen)
    n = min(neighbours, len(chosen))
    _, nearest = NearestNeighbors(n_neighbors=n).fit(f[chosen]).kneighbors(f)
    votes = np.stack([(label[chosen][nearest] == k).sum(1) for k in range(proba.shape[1])], 1)
    vote = (votes + 0.1) / (n + 0.1 * proba.shape[1])
    return ((1 - weight) * proba + weight * vote).astype(np.float32)


def adapted_beats_proba(loaded, beats: Beats, methods: Sequence[str], seed: int = 0):
    """:func:`adapted_proba` for each recording of a :class:`Beats` set, separately.

    ``loaded`` is a :class:`~ecg_utils.checkpoint.LoadedModel`. Returns ``(n_beats, 5)``
    probabilities in the order of ``beats``.
    """
    out = np.zeros((len(beats), len(CLASS_NAMES)), np.float32)
    for rec in dict.fromkeys(beats.record.tolist()):
        idx = np.flatnonzero(beats.record == rec)
        part = beats.subset(idx)
        feats = beat_features(part, loaded.feature_set) if loaded.feature_set else None
        out[idx] = adapted_proba(
            loaded.model, part.x, feats, methods, part.rr, seed, loaded.meta.get("pseudo_labels")
        )
    return out


def recompute_statistics(model: nn.Module, x: np.ndarray, features: np.ndarray | None):
    """A copy of ``model`` whose BatchNorm statistics are those of these beats."""
    from .training import recompute_batchnorm

    xt = torch.from_numpy(x).unsqueeze(1)
    ft = torch.zeros((len(x), 0)) if features is None else torch.from_numpy(features)
    return recompute_batchnorm(model, xt, ft, batch_size=256)


def _head(model: nn.Module) -> nn.Module:
    """The layers after the convolutions: ``head`` (ResNet1D) or ``fc1``/``fc2`` (ECG1DCNN)."""
    head = getattr(model, "head", None)
    if head is not None:
        return head
    return nn.ModuleList([m for m in model.modules() if isinstance(m, nn.Linear)])


def self_train(
    model: nn.Module,
    x: np.ndarray,
    features: np.ndarray | None,
    proba: np.ndarray,
    seed: int = 0,
) -> nn.Module:
    """A copy of ``model`` whose head is fine-tuned on its own confident predictions.

    Beats whose highest probability is at least :data:`CONFIDENT` keep their predicted
    class as a label; each class's loss is weighted by the inverse of its pseudo-label
    count, so the recording's dominant class does not swamp the rest. The convolutions
    and BatchNorm statistics stay as they are. With fewer than two pseudo-labelled
    classes there is nothing to learn, and the copy is returned unchanged.
    """
    tuned = copy.deepcopy(model).eval()
    device = next(tuned.parameters()).device
    confident = proba.max(axis=1) >= CONFIDENT
    labels = proba.argmax(axis=1)[confident]
    if len(np.unique(labels)) < 2:
        return tuned
    generator = torch.Generator().manual_seed(seed)
    counts = np.bincount(labels, minlength=len(CLASS_NAMES)).astype(np.float64)
    inverse = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    weight = torch.tensor(inverse, dtype=torch.float32)
    weight = (weight / weight[weight > 0].mean()).to(device)
    criterion = nn.CrossEntropyLoss(weight=weight)
    head = _head(tuned)
    for p in tuned.parameters():
        p.requires_grad_(False)
    for p in head.parameters():
        p.requires_grad_(True)
    optimizer = torch.optim.Adam([p for p in head.parameters()], lr=SELF_TRAINING_LR)
    xt = torch.from_numpy(x[confident]).unsqueeze(1)
    ft = None if features is None else torch.from_numpy(features[confident])
    yt = torch.from_numpy(labels.astype(np.int64))
    head.train()  # dropout on in the head; BatchNorm layers (in the trunk) stay in eval
    for _ in range(SELF_TRAINING_EPOCHS):
        order = torch.randperm(len(yt), generator=generator)
        for start in range(0, len(order), 128):
            b = order[start : start + 128]
            xb, yb = xt[b].to(device), yt[b].to(device)
            logits = tuned(xb) if ft is None else tuned(xb, ft[b].to(device))
            loss = criterion(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    for p in tuned.parameters():
        p.requires_grad_(True)
    return tuned.eval()


def cluster_consistent(
    proba: np.ndarray, x: np.ndarray, rr: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Probabilities pulled towards the mean of each beat's family.

    Families are k-means clusters (one per :data:`BEATS_PER_CLUSTER` beats, at most
    :data:`MAX_CLUSTERS`) of the beat's first 8 principal components (fitted on this
    recording) and its RR ratios (previous and next RR over the local median, so
    premature beats of one shape form their own family), all standardised. Each beat
    keeps ``1 - CLUSTER_WEIGHT`` of its own probabilities.

    Parameters
    ----------
    proba : ndarray, shape (n_beats, 5)
    x : ndarray, shape (n_beats, 187)
        Beats at 120 Hz.
    rr : ndarray, shape (n_beats, 4)
        RR intervals in seconds.

    Returns
    -------
    ndarray, shape (n_beats, 5), float32
    """
    n = len(x)
    k = int(np.clip(n // BEATS_PER_CLUSTER, 2, MAX_CLUSTERS))
    if n < 2 * k:
        return proba.astype(np.float32)
    families, _ = beat_families(x, rr, k, seed)
    means = np.zeros((k, proba.shape[1]))
    np.add.at(means, families, proba)
    means /= np.bincount(families, minlength=k)[:, None]
    return ((1 - CLUSTER_WEIGHT) * proba + CLUSTER_WEIGHT * means[families]).astype(np.float32)


def beat_families(
    x: np.ndarray, rr: np.ndarray, k: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Families of a recording's beats that share morphology and prematurity.

    k-means over the beat's first 8 principal components (fitted on this recording) and
    its previous and next RR over the local median (weighted twice, so premature beats
    of a usual shape form their own family), all standardised.

    Parameters
    ----------
    x : ndarray, shape (n_beats, 187)
        Beats at 120 Hz.
    rr : ndarray, shape (n_beats, 4)
        RR intervals in seconds.
    k : int
        Number of families (at most the number of beats).

    Returns
    -------
    families : ndarray of int, shape (n_beats,)
        Family of each beat, 0..k-1.
    medoids : ndarray of int, shape (k,)
        For each family, the index of its beat nearest to the family's centre.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    n = len(x)
    k = int(min(k, n))
    if k < 1:
        raise EcgError("a recording needs at least one beat to form families")
    shape = PCA(n_components=min(8, n), random_state=seed).fit_transform(x) if n > 1 else x[:, :1]
    rhythm = context_features(rr)[:, :2]  # previous and next RR over the local median
    z = np.concatenate([shape, rhythm], axis=1)
    z = (z - z.mean(axis=0)) / (z.std(axis=0) + 1e-6)
    z[:, -2:] *= 2.0  # prematurity matters as much as several shape components
    km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(z)
    families = km.labels_.astype(np.int64)
    medoids = np.zeros(k, np.int64)
    for f in range(k):
        members = np.flatnonzero(families == f)
        distance = ((z[members] - km.cluster_centers_[f]) ** 2).sum(axis=1)
        medoids[f] = members[np.argmin(distance)]
    return families, medoids
