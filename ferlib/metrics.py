"""Classification metrics used across the book (scikit-learn underneath). See
notebooks/02_baseline, "The loss, the sampler and the metrics": FER papers mix overall accuracy (dominated by Happy and
Neutral), mean class accuracy (Li et al., CUCN), max/min class accuracy (CUCN Table II) and
one-vs-rest mAP (Li et al.'s latent augmentation), so every run reports all of them.

Definitions, for K classes, per-class recall r_k = TP_k / (TP_k + FN_k):

* ``accuracy`` = mean(y_pred == y_true);
* ``mean_class_accuracy`` = mean of r_k over the classes present in y_true
  (= sklearn's ``balanced_accuracy_score``);
* ``max_class_recall`` / ``min_class_recall`` = max / min of those r_k;
* ``macro_f1`` = sklearn ``f1_score(average="macro")`` over the classes that occur in y_true or
  y_pred (sklearn's default label set; a class never predicted has F1 = 0);
* ``mAP`` = mean over the classes present in y_true of sklearn ``average_precision_score`` of
  the one-vs-rest problem (class k positive, scores[:, k]); only with ``scores``.

A class absent from y_true has no recall and no AP; it is left out of those averages and
named in ``absent_classes`` (never a silent NaN).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, confusion_matrix, f1_score

__all__ = ["classification_metrics", "SCALAR_KEYS", "check_above_chance"]

SCALAR_KEYS = ("accuracy", "mean_class_accuracy", "macro_f1", "mAP", "max_class_recall",
               "min_class_recall")


def _labels(arr, what: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 1:
        raise ValueError(f"{what} must be 1-D (N,), got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.floating) and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise ValueError(f"{what} must hold integer class indices, got dtype {a.dtype}")
    return a.astype(np.int64)


def classification_metrics(y_true, y_pred, scores=None,
                           class_names: Sequence[str] | None = None) -> dict:
    """All metrics of the module docstring for integer labels ``y_true``, ``y_pred`` (N,) and
    optional class ``scores`` (N, K) (probabilities or logits; any monotone score works for AP).

    K is ``len(class_names)``, else ``scores.shape[1]``, else 1 + the largest label. Returns a
    dict: accuracy, mean_class_accuracy, macro_f1, max_class_recall, min_class_recall,
    per_class_recall {name: recall} (classes present in y_true), confusion (K x K list of lists,
    rows = true class, columns = predicted), n, absent_classes [names], and with scores: mAP and
    per_class_ap {name: AP}.
    """
    y_true = _labels(y_true, "y_true")
    y_pred = _labels(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    n = len(y_true)
    if n == 0:
        raise ValueError("classification_metrics: no samples (y_true is empty)")
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[0] != n:
            raise ValueError(f"scores must have shape (N, K) = ({n}, K), got {scores.shape}")
        if not np.all(np.isfinite(scores)):
            raise ValueError("scores contain NaN or infinite values")
    if class_names is not None:
        names = [str(c) for c in class_names]
        if len(set(names)) != len(names):
            raise ValueError(f"class_names must be unique, got {names}")
        k = len(names)
    elif scores is not None:
        k = scores.shape[1]
        names = [str(i) for i in range(k)]
    else:
        k = int(max(y_true.max(), y_pred.max())) + 1
        names = [str(i) for i in range(k)]
    if scores is not None and scores.shape[1] != k:
        raise ValueError(f"scores have {scores.shape[1]} columns but there are {k} classes "
                         f"({', '.join(names)})")
    for what, arr in (("y_true", y_true), ("y_pred", y_pred)):
        bad = (arr < 0) | (arr >= k)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{what}[{i}] = {arr[i]} is not a class index in [0, {k})")

    labels = np.arange(k)
    cm = confusion_matrix(y_true, y_pred, labels=labels)  # (K, K) rows true, cols predicted
    support = cm.sum(axis=1)
    present = np.flatnonzero(support > 0)
    recall = cm[present, present] / support[present]
    out = {
        "n": int(n),
        "accuracy": float(np.trace(cm) / n),
        "mean_class_accuracy": float(recall.mean()),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "max_class_recall": float(recall.max()),
        "min_class_recall": float(recall.min()),
        "per_class_recall": {names[c]: float(r) for c, r in zip(present, recall)},
        "confusion": cm.tolist(),
        "absent_classes": [names[c] for c in labels if support[c] == 0],
    }
    if scores is not None:
        ap = {names[c]: float(average_precision_score(y_true == c, scores[:, c])) for c in present}
        out["per_class_ap"] = ap
        out["mAP"] = float(np.mean(list(ap.values())))
    return out


def check_above_chance(scores: Mapping[str, float], num_classes: int, factor: float = 2.0,
                       what: str = "mean class accuracy") -> float:
    """Check that every live run of a chapter clearly beats chance: each score (a fraction, by
    run name) must exceed ``factor / num_classes``. Returns the lowest score; raises
    AssertionError naming every run at or below the bar.

    The chapters check trained metrics this way instead of printing them for nbval: a trained
    network's last bits differ between processors, a margin over chance does not.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if not factor > 0:
        raise ValueError(f"factor must be > 0, got {factor!r}")
    if not scores:
        raise ValueError("no scores to check: a chapter's live runs produced nothing")
    values = {str(k): float(v) for k, v in dict(scores).items()}
    missing = [k for k, v in values.items() if not np.isfinite(v)]
    if missing:
        raise AssertionError(f"{what} is NaN or infinite for {missing}")
    bar = factor / num_classes
    weak = {k: round(v, 3) for k, v in values.items() if v <= bar}
    if weak:
        raise AssertionError(f"{what} at or below {bar:.3f} ({factor:g} x chance "
                             f"{1 / num_classes:.3f}): {weak}")
    return min(values.values())
