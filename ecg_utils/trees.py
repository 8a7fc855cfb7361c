"""Beat models on patient-relative features: boosted trees and a linear model, as tensors.

Both are fitted with scikit-learn (:class:`~sklearn.ensemble.HistGradientBoostingClassifier`,
:class:`~sklearn.linear_model.LogisticRegression`) and then copied into PyTorch modules
whose state dicts hold only tensors, so that they are saved, loaded
(``torch.load(..., weights_only=True)``), evaluated and run by ``predict`` exactly like the
project's networks. Both take ``(x, features)`` like :class:`~ecg_utils.models.ResNet1D`
with features, and ignore the beat ``x``: they read only the features
(:mod:`ecg_utils.relative`), ``(batch, n_features)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class BoostedTrees(nn.Module):
    """Gradient-boosted decision trees evaluated with tensors.

    Parameters
    ----------
    n_features : int
        Length of the feature vector.
    n_trees : int
        Trees in all (iterations x classes).
    n_nodes : int
        Nodes of the largest tree; smaller trees are padded with leaves.
    depth : int
        Depth of the deepest tree (steps of the descent).
    num_classes : int

    The output ``baseline + sum of the leaves reached, per class + logit_offsets`` is a
    logit vector ``(batch, num_classes)``, the same raw prediction scikit-learn's
    ``HistGradientBoostingClassifier`` turns into probabilities with a softmax.
    """

    def __init__(
        self, n_features: int, n_trees: int, n_nodes: int, depth: int, num_classes: int = 5
    ):
        super().__init__()
        self.n_features = int(n_features)
        self.depth = int(depth)
        self.register_buffer("feature", torch.zeros(n_trees, n_nodes, dtype=torch.long))
        self.register_buffer("threshold", torch.zeros(n_trees, n_nodes, dtype=torch.float64))
        self.register_buffer("missing_left", torch.zeros(n_trees, n_nodes, dtype=torch.bool))
        self.register_buffer("left", torch.zeros(n_trees, n_nodes, dtype=torch.long))
        self.register_buffer("right", torch.zeros(n_trees, n_nodes, dtype=torch.long))
        self.register_buffer("leaf", torch.ones(n_trees, n_nodes, dtype=torch.bool))
        self.register_buffer("value", torch.zeros(n_trees, n_nodes, dtype=torch.float64))
        self.register_buffer("tree_class", torch.zeros(n_trees, dtype=torch.long))
        self.register_buffer("baseline", torch.zeros(num_classes, dtype=torch.float64))
        self.register_buffer("logit_offsets", torch.zeros(num_classes))

    def forward(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        if features is None:
            raise ValueError("BoostedTrees reads the per-beat features; none were given")
        f = features.to(torch.float64)
        n, n_trees = f.shape[0], self.feature.shape[0]
        trees = torch.arange(n_trees, device=f.device).expand(n, n_trees)
        node = torch.zeros(n, n_trees, dtype=torch.long, device=f.device)
        for _ in range(self.depth):
            feat = self.feature[trees, node]
            v = f.gather(1, feat)
            go_left = torch.where(
                torch.isnan(v), self.missing_left[trees, node], v <= self.threshold[trees, node]
            )
            nxt = torch.where(go_left, self.left[trees, node], self.right[trees, node])
            node = torch.where(self.leaf[trees, node], node, nxt)
        values = self.value[trees, node]
        raw = torch.zeros(n, len(self.baseline), dtype=torch.float64, device=f.device)
        raw.index_add_(1, self.tree_class, values)
        return (raw + self.baseline).to(torch.float32) + self.logit_offsets

    def embed(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """The logits, ``(batch, num_classes)``: the trees have no hidden representation."""
        return self.forward(x, features)


class ByLeads(nn.Module):
    """Two models of one recipe: one for recordings with a second lead, one without.

    Parameters
    ----------
    full : dict
        ``{"architecture": ..., "model_args": ...}`` of the model that reads every column.
    first : dict
        The same for the model that reads only the first ``first["model_args"]
        ["n_features"]`` columns (the rhythm and the classified lead).

    n_features : int, optional
        Length of the feature vector given (default: ``full``'s).
    n_first : int, optional
        How many leading columns describe the rhythm and the first lead; a beat with NaN
        after them has no second lead (default: ``first``'s feature count).
    full_columns, first_columns : list of int, optional
        The columns each model reads (default: the first ``n_features`` of each).
    n_replay : int
        Training beats kept with the weights (``replay_features``, ``replay_labels``) for
        fine-tuning on a patient (:mod:`ecg_utils.finetune`); 0 for none.

    A beat whose columns after ``n_first`` hold NaN (no second lead:
    :func:`ecg_utils.relative.relative_features` with ``n_leads=2`` on a one-lead
    recording) is classified by ``first``; every other beat by ``full``. Output: logits
    ``(batch, num_classes)``.
    """

    def __init__(
        self,
        full: dict,
        first: dict,
        n_features: int | None = None,
        n_first: int | None = None,
        full_columns: list[int] | None = None,
        first_columns: list[int] | None = None,
        n_replay: int = 0,
    ):
        super().__init__()
        from .models import build_model

        self.full = build_model(full["architecture"], **full["model_args"])
        self.first = build_model(first["architecture"], **first["model_args"])
        self.n_features = int(n_features or self.full.n_features)
        self.n_first = int(n_first or self.first.n_features)
        full_columns = list(range(self.full.n_features)) if full_columns is None else full_columns
        first_columns = (
            list(range(self.first.n_features)) if first_columns is None else first_columns
        )
        self.register_buffer("full_columns", torch.as_tensor(full_columns, dtype=torch.long))
        self.register_buffer("first_columns", torch.as_tensor(first_columns, dtype=torch.long))
        self.register_buffer("logit_offsets", torch.zeros(full["model_args"].get("num_classes", 5)))
        if n_replay:  # weights without a replay set load as they were saved
            self.register_buffer("replay_features", torch.zeros(n_replay, self.n_features))
            self.register_buffer("replay_labels", torch.zeros(n_replay, dtype=torch.long))

    def forward(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        if features is None:
            raise ValueError("ByLeads reads the per-beat features; none were given")
        one_lead = torch.isnan(features[:, self.n_first :]).any(dim=1)
        out = self.full(x, torch.nan_to_num(features[:, self.full_columns]))
        if one_lead.any():
            out[one_lead] = self.first(x, features[one_lead][:, self.first_columns])
        return out + self.logit_offsets

    def embed(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """The logits, ``(batch, num_classes)``."""
        return self.forward(x, features)


SENTINEL = -1.0e6
"""Stands for a missing value (a recording without a second lead) in the features the
patient trees read: scikit-learn's exact trees take no NaN."""


class PatientTrees(nn.Module):
    """A shipped model fine-tuned on one patient: its logits plus boosted patient trees.

    Parameters
    ----------
    base : dict
        ``{"architecture": ..., "model_args": ...}`` of the shipped model.
    trees : dict
        :class:`BoostedTrees` arguments of the patient's trees.

    Output: ``log softmax(base(x, f)) + trees(f')``, logits ``(batch, num_classes)``, with
    ``f'`` the features with NaN replaced by :data:`SENTINEL` (the raw prediction of
    scikit-learn's ``GradientBoostingClassifier`` started from the base model).
    """

    def __init__(self, base: dict, trees: dict):
        super().__init__()
        from .models import build_model

        self.base = build_model(base["architecture"], **base["model_args"])
        self.trees = BoostedTrees(**trees)
        self.n_features = int(getattr(self.base, "n_features", trees["n_features"]))
        self.register_buffer("logit_offsets", torch.zeros(trees.get("num_classes", 5)))

    def forward(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        if features is None:
            raise ValueError("PatientTrees reads the per-beat features; none were given")
        start = torch.log_softmax(self.base(x, features), dim=1)
        filled = torch.nan_to_num(features, nan=SENTINEL)
        return start + self.trees(x, filled) + self.logit_offsets

    def embed(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """The logits, ``(batch, num_classes)``."""
        return self.forward(x, features)


def trees_from_gradient_boosting(clf, num_classes: int = 5) -> tuple[BoostedTrees, dict]:
    """Copy the trees of a fitted ``GradientBoostingClassifier`` (without its initial
    estimator) into :class:`BoostedTrees`: ``learning_rate x sum of the trees``, per class."""
    classes = [int(c) for c in clf.classes_]
    if len(classes) < 3:
        raise ValueError("patient trees need at least three classes in their training beats")
    trees = [(classes[k], t.tree_) for row in clf.estimators_ for k, t in enumerate(row)]
    args = dict(
        n_features=int(clf.n_features_in_),
        n_trees=len(trees),
        n_nodes=max(t.node_count for _, t in trees),
        depth=max(max(t.max_depth for _, t in trees), 1),
        num_classes=num_classes,
    )
    model = BoostedTrees(**args)
    with torch.no_grad():
        for i, (k, t) in enumerate(trees):
            m = t.node_count
            leaf = t.children_left == -1
            model.feature[i, :m] = torch.as_tensor(np.where(leaf, 0, t.feature).astype(np.int64))
            model.threshold[i, :m] = torch.as_tensor(t.threshold.astype(np.float64))
            model.left[i, :m] = torch.as_tensor(np.where(leaf, 0, t.children_left).astype(np.int64))
            model.right[i, :m] = torch.as_tensor(
                np.where(leaf, 0, t.children_right).astype(np.int64)
            )
            model.leaf[i, :m] = torch.as_tensor(leaf)
            model.value[i, :m] = torch.as_tensor(t.value[:, 0, 0] * clf.learning_rate)
            model.tree_class[i] = k
    return model.eval(), args


class LinearBeatModel(nn.Module):
    """A linear classifier on standardised features: ``W (f - mean) / scale + b``.

    Parameters
    ----------
    n_features : int
    num_classes : int
    """

    def __init__(self, n_features: int, num_classes: int = 5):
        super().__init__()
        self.n_features = int(n_features)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.linear = nn.Linear(n_features, num_classes)

    def forward(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(self.embed(x, features))

    def embed(self, x: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        """The standardised features, ``(batch, n_features)``."""
        if features is None:
            raise ValueError("LinearBeatModel reads the per-beat features; none were given")
        return (features - self.mean) / self.scale


def _class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-beat weights that give every class present the same total weight."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    per_class = np.where(counts > 0, len(y) / (np.maximum(counts, 1) * (counts > 0).sum()), 0)
    return per_class[y]


def fit_boosted_trees(
    features: np.ndarray, y: np.ndarray, params: dict | None = None, num_classes: int = 5
) -> tuple[BoostedTrees, dict]:
    """Fit class-weighted gradient-boosted trees and copy them into :class:`BoostedTrees`.

    Parameters
    ----------
    features : ndarray, shape (n_beats, n_features)
    y : ndarray, shape (n_beats,)
        AAMI labels 0..4 (every class present weighs the same in the loss).
    params : dict, optional
        Keyword arguments of ``HistGradientBoostingClassifier`` (``random_state`` fixed).

    Returns
    -------
    model : BoostedTrees
        In eval mode; its logits equal scikit-learn's raw predictions. A class absent
        from ``y`` gets a logit of -30 (never predicted).
    model_args : dict
        The arguments that rebuild the module (for the weights' metadata).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    params = {"random_state": 0, **(params or {})}
    y = np.asarray(y, dtype=np.int64)
    clf = HistGradientBoostingClassifier(**params)
    clf.fit(np.asarray(features, dtype=np.float64), y, sample_weight=_class_weights(y, num_classes))
    return trees_from_sklearn(clf, num_classes)


def fit_boosted_trees_ovr(
    features: np.ndarray,
    y: np.ndarray,
    params: dict | None = None,
    monotonic: dict[int, list[int]] | None = None,
    num_classes: int = 5,
) -> tuple[BoostedTrees, dict]:
    """One-vs-rest boosted trees, each class with its own monotonic constraints.

    scikit-learn refuses ``monotonic_cst`` for multiclass boosting, so each class present
    gets a binary class-weighted booster (class against the rest) with the constraints
    ``monotonic[k]`` (one of -1, 0, 1 per feature); the class's logit is its booster's.

    Returns
    -------
    model : BoostedTrees
        Its softmax is over the one-vs-rest logits.
    model_args : dict
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    params = {"random_state": 0, **(params or {})}
    parts = []
    for k in np.unique(y):
        target = (y == k).astype(np.int64)
        cst = (monotonic or {}).get(int(k))
        clf = HistGradientBoostingClassifier(**params, monotonic_cst=cst)
        clf.fit(x, target, sample_weight=_class_weights(target, 2))
        parts.append((int(k), clf))
    predictors = [(k, p) for k, clf in parts for it in clf._predictors for p in it]
    model, args = _empty_trees(x.shape[1], predictors, num_classes)
    _copy_trees(model, predictors)
    baseline = np.full(num_classes, -30.0)
    for k, clf in parts:
        baseline[k] = float(np.ravel(clf._baseline_prediction)[0])
    with torch.no_grad():
        model.baseline.copy_(torch.as_tensor(baseline))
    return model.eval(), args


def _empty_trees(n_features: int, predictors: list, num_classes: int):
    """A :class:`BoostedTrees` sized for ``predictors`` (pairs of class, tree)."""
    depth = max(int(p.nodes["depth"].max()) for _, p in predictors)
    args = dict(
        n_features=int(n_features),
        n_trees=len(predictors),
        n_nodes=max(len(p.nodes) for _, p in predictors),
        depth=max(depth, 1),
        num_classes=num_classes,
    )
    return BoostedTrees(**args), args


def _copy_trees(model: BoostedTrees, predictors: list) -> None:
    """Copy scikit-learn tree predictors (pairs of class, tree) into ``model``."""
    with torch.no_grad():
        for t, (k, p) in enumerate(predictors):
            nodes, m = p.nodes, len(p.nodes)
            model.feature[t, :m] = torch.as_tensor(nodes["feature_idx"].astype(np.int64))
            model.threshold[t, :m] = torch.as_tensor(nodes["num_threshold"].astype(np.float64))
            model.missing_left[t, :m] = torch.as_tensor(nodes["missing_go_to_left"].astype(bool))
            model.left[t, :m] = torch.as_tensor(nodes["left"].astype(np.int64))
            model.right[t, :m] = torch.as_tensor(nodes["right"].astype(np.int64))
            model.leaf[t, :m] = torch.as_tensor(nodes["is_leaf"].astype(bool))
            model.value[t, :m] = torch.as_tensor(nodes["value"].astype(np.float64))
            model.tree_class[t] = k


def trees_from_sklearn(clf, num_classes: int = 5) -> tuple[BoostedTrees, dict]:
    """Copy a fitted multiclass ``HistGradientBoostingClassifier`` into :class:`BoostedTrees`."""
    classes = [int(c) for c in clf.classes_]
    predictors = [(k, p) for it in clf._predictors for k, p in enumerate(it)]
    if len(classes) == 2:  # binary: one tree per iteration, the logit of the second class
        predictors = [(1, p) for it in clf._predictors for p in it]
    predictors = [(classes[k], p) for k, p in predictors]
    model, args = _empty_trees(clf.n_features_in_, predictors, num_classes)
    _copy_trees(model, predictors)
    with torch.no_grad():
        baseline = np.full(num_classes, -30.0)
        base = np.asarray(clf._baseline_prediction, dtype=np.float64).ravel()
        if len(classes) == 2:
            baseline[classes[0]], baseline[classes[1]] = 0.0, base[0]
        else:
            baseline[classes] = base
        model.baseline.copy_(torch.as_tensor(baseline))
    return model.eval(), args


def fit_linear(
    features: np.ndarray, y: np.ndarray, params: dict | None = None, num_classes: int = 5
) -> tuple[LinearBeatModel, dict]:
    """Fit a class-weighted multinomial logistic regression on standardised features.

    Parameters
    ----------
    features : ndarray, shape (n_beats, n_features)
    y : ndarray, shape (n_beats,)
    params : dict, optional
        Keyword arguments of ``LogisticRegression`` (``C`` is the inverse penalty).

    Returns
    -------
    model : LinearBeatModel
        A class absent from ``y`` gets a bias of -30.
    model_args : dict
    """
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    clf = LogisticRegression(max_iter=2000, **(params or {}))
    clf.fit((x - mean) / scale, y, sample_weight=_class_weights(y, num_classes))
    args = dict(n_features=x.shape[1], num_classes=num_classes)
    model = LinearBeatModel(**args)
    weight = np.zeros((num_classes, x.shape[1]))
    bias = np.full(num_classes, -30.0)
    classes = clf.classes_.astype(np.int64)
    coef, intercept = clf.coef_, clf.intercept_
    if len(classes) == 2:  # binary: one row, the logit of the second class
        coef, intercept = np.vstack([0 * coef, coef]), np.array([0.0, intercept[0]])
    weight[classes], bias[classes] = coef, intercept
    with torch.no_grad():
        model.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        model.scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
        model.linear.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        model.linear.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return model.eval(), args
