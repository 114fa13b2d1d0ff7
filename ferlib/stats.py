"""Seeds, 95 % confidence intervals and paired gains for results records: what the scoreboard's
verdicts and the chapters' tables rest on (see book/scoreboard, "How a verdict is reached", and
notebooks/07_comparison, "Seeds and intervals").

A *cell* is the set of records of one method under one condition (dataset, split, class balance,
noise rate, profile), one record per seed. Its estimate is the mean over seeds with a 95 %
interval that counts two sources of variation, taken as independent:

* the **test images**: a bootstrap over test images (``scipy.stats.bootstrap``, 2,000
  resamples, a fixed random state so that a page regenerated from the same records reads the
  same), the same resampled images for every seed, the metric averaged over seeds; its
  standard error ``se_images`` says how much the number would move on another test set drawn
  like this one;
* the **training randomness** (initialisation, data order, augmentation, flipped labels): the
  standard deviation over seeds ``sd``, all seeds scored on the same images.

The interval is mean +- 1.96 sqrt(se_images^2 + sd^2 / n_seeds); with one seed only the first
term is known, and the table says n = 1.

A *gain* of method A over method B is paired: the seeds both cells hold, on the same test
images, resampled together (a paired bootstrap over test images within seeds, combined over
seeds by averaging), and ``sd`` is the spread of the per-seed differences. Pairing removes the
test set's shared difficulty from the difference, so a paired interval is narrower than the two
cells' intervals suggest.

This needs each record's per-image predictions (``ferlib.records.predictions_of``). Records made
before they were kept answer with a binomial (Wilson) interval for one seed's accuracy, a
Student-t interval over seeds for any metric with two seeds or more, and no interval otherwise
(the method says which). Metrics that predictions alone cannot give (mAP needs the scores) use
the seeds.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy_stats

from ferlib.records import predictions_of, read_record

__all__ = ["Estimate", "CONFIDENCE", "N_RESAMPLES", "PREDICTION_METRICS", "metric_on_images",
           "estimate", "paired_gain", "verdict", "reading"]

CONFIDENCE = 0.95
N_RESAMPLES = 2000
RANDOM_STATE = 20261201   # fixed: a page regenerated from the same records reads the same
# metrics computable from (y_true, y_pred): those the bootstrap can resample
PREDICTION_METRICS = ("accuracy", "mean_class_accuracy", "min_class_recall", "max_class_recall")


@dataclass(frozen=True)
class Estimate:
    """A metric of a cell (or a paired gain) over its seeds, as a fraction (0.41, not 41 %).

    ``value``: mean over seeds; ``sd``: standard deviation over seeds (None for one seed);
    ``low``/``high``: the 95 % interval (None when none can be made); ``n_seeds``; ``method``:
    how the interval was made ("paired bootstrap over test images", "bootstrap over test
    images", "Wilson, one seed", "t over seeds", or "none: ..." saying why)."""

    value: float
    sd: float | None
    low: float | None
    high: float | None
    n_seeds: int
    method: str

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def scaled(self, factor: float = 100.0) -> "Estimate":
        """The same estimate in other units (percent by default)."""
        f = (lambda v: None if v is None else v * factor)
        return Estimate(self.value * factor, f(self.sd), f(self.low), f(self.high),
                        self.n_seeds, self.method)

    def __str__(self) -> str:
        sd = "" if self.sd is None else f" +- {self.sd:.2f}"
        ci = f" [{self.low:.2f}, {self.high:.2f}]" if self.has_interval else ""
        return f"{self.value:.2f}{sd}{ci} (n={self.n_seeds})"


def metric_on_images(metric: str, y_true: np.ndarray, correct: np.ndarray,
                     n_classes: int | None = None) -> np.ndarray:
    """``metric`` of each row of ``correct`` (..., N) booleans (prediction right on image i)
    over test images whose labels are ``y_true`` (..., N), vectorised over leading axes.

    accuracy = mean(correct); the recall of class k = mean of ``correct`` over the images of
    class k; mean_class_accuracy / min_class_recall / max_class_recall over the classes
    present (a resample that happens to miss a class leaves it out, as
    :func:`ferlib.metrics.classification_metrics` does)."""
    if metric not in PREDICTION_METRICS:
        raise ValueError(f"metric {metric!r} cannot be computed from predictions; choose from "
                         f"{PREDICTION_METRICS}")
    correct = np.asarray(correct, dtype=float)
    if metric == "accuracy":
        return correct.mean(axis=-1)
    y_true = np.broadcast_to(np.asarray(y_true), correct.shape)
    k = int(n_classes or (int(y_true.max()) + 1))
    onehot = y_true[..., None] == np.arange(k)                       # (..., N, K)
    count = onehot.sum(axis=-2)                                      # (..., K)
    hits = (onehot * correct[..., None]).sum(axis=-2)                # (..., K)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(count > 0, hits / np.maximum(count, 1), np.nan)
    reduce = {"mean_class_accuracy": np.nanmean, "min_class_recall": np.nanmin,
              "max_class_recall": np.nanmax}[metric]
    return reduce(recall, axis=-1)


def _predictions(records: Sequence[dict], where: Sequence[str]):
    """``(y_true, correct (S, N))`` of records on one test split, or None if any lacks them.
    Records scored on different test labels cannot be paired: a ValueError naming them."""
    preds = [predictions_of(r, w) for r, w in zip(records, where)]
    if not preds or any(p is None for p in preds):
        return None
    y_true = preds[0][0]
    for (yt, _), w in zip(preds, where):
        if len(yt) != len(y_true) or not np.array_equal(yt, y_true):
            raise ValueError(f"{w}: its test labels differ from {where[0]}'s; records of one "
                             "cell (or a pair) must be scored on the same test images")
    return y_true, np.stack([yp == y_true for _, yp in preds])


def _bootstrap_se(y_true: np.ndarray, statistic) -> float:
    """The standard error of ``statistic(idx)`` (a statistic of resampled image indices), the
    test images resampled with ``scipy.stats.bootstrap``."""
    res = _scipy_stats.bootstrap((np.arange(len(y_true)),), statistic, vectorized=True, axis=-1,
                                 n_resamples=N_RESAMPLES, batch=100, method="percentile",
                                 confidence_level=CONFIDENCE,
                                 rng=np.random.default_rng(RANDOM_STATE))
    return float(res.standard_error)


def _interval(value: float, se_images: float, per_seed: np.ndarray) -> tuple[float, float]:
    """``value`` +- z * sqrt(se_images^2 + sd_seeds^2 / n): the test images' share (bootstrap)
    and the training randomness' share (the spread of the per-seed values, which all saw the
    same images), taken as independent."""
    var = se_images ** 2 + (per_seed.var(ddof=1) / len(per_seed) if len(per_seed) > 1 else 0.0)
    half = _scipy_stats.norm.ppf(0.5 + CONFIDENCE / 2) * np.sqrt(var)
    return float(value - half), float(value + half)


def _t_interval(values: np.ndarray) -> tuple[float | None, float | None]:
    if len(values) < 2:
        return None, None
    half = _scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1) * values.std(ddof=1) \
        / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def _sd(values: np.ndarray) -> float | None:
    return float(values.std(ddof=1)) if len(values) >= 2 else None


def _metric_values(records: Sequence[dict], metric: str, where: Sequence[str]) -> np.ndarray:
    out = []
    for r, w in zip(records, where):
        v = (r.get("metrics") or {}).get(metric)
        if v is None:
            raise ValueError(f"{w}: the record has no metric {metric!r}")
        out.append(float(v))
    return np.asarray(out)


def estimate(records: Sequence, metric: str = "accuracy", where: Sequence[str] | None = None
             ) -> Estimate:
    """The :class:`Estimate` of ``metric`` over ``records`` (dicts or paths), one per seed."""
    records, where = _read(records, where)
    values = _metric_values(records, metric, where)
    n_seeds = len(values)
    got = _predictions(records, where) if metric in PREDICTION_METRICS else None
    if got is not None:
        y_true, correct = got
        k = int(y_true.max()) + 1
        se = _bootstrap_se(y_true, lambda idx, axis=-1: metric_on_images(
            metric, y_true[idx], correct[:, idx], k).mean(axis=0))
        low, high = _interval(float(values.mean()), se, values)
        return Estimate(float(values.mean()), _sd(values), low, high, n_seeds,
                        "bootstrap over test images")
    if n_seeds == 1 and metric == "accuracy" and "n" in (records[0].get("metrics") or {}):
        n = int(records[0]["metrics"]["n"])
        ci = _scipy_stats.binomtest(int(round(values[0] * n)), n).proportion_ci(
            CONFIDENCE, method="wilson")
        return Estimate(float(values[0]), None, float(ci.low), float(ci.high), 1,
                        "Wilson, one seed")
    low, high = _t_interval(values)
    method = "t over seeds" if low is not None else \
        "none: one seed and no per-image predictions"
    return Estimate(float(values.mean()), _sd(values), low, high, n_seeds, method)


def paired_gain(records_a: Sequence, records_b: Sequence, metric: str = "accuracy",
                where_a: Sequence[str] | None = None, where_b: Sequence[str] | None = None
                ) -> Estimate:
    """The gain of A over B (A minus B) in ``metric``, paired by seed and test image.

    Only the seeds both sides hold are used (a record's ``seed``); each must hold one record
    per seed (two records of one seed on a side is a ValueError naming them). With per-image
    predictions: a paired bootstrap over test images; without: a t interval over the paired
    per-seed differences (two seeds or more), else none."""
    records_a, where_a = _read(records_a, where_a)
    records_b, where_b = _read(records_b, where_b)
    by_a, by_b = _by_seed(records_a, where_a), _by_seed(records_b, where_b)
    seeds = sorted(set(by_a) & set(by_b))
    if not seeds:
        raise ValueError(f"no seed in common between {list(where_a)} (seeds {sorted(by_a)}) "
                         f"and {list(where_b)} (seeds {sorted(by_b)}): a gain must be paired")
    ra, wa = zip(*(by_a[s] for s in seeds))
    rb, wb = zip(*(by_b[s] for s in seeds))
    diffs = _metric_values(ra, metric, wa) - _metric_values(rb, metric, wb)
    got_a = _predictions(ra, wa) if metric in PREDICTION_METRICS else None
    got_b = _predictions(rb, wb) if got_a is not None else None
    if got_a is not None and got_b is not None:
        (y_true, ca), (y_true_b, cb) = got_a, got_b
        if not np.array_equal(y_true, y_true_b):
            raise ValueError(f"{wa[0]} and {wb[0]} were scored on different test labels: "
                             "they cannot be paired")
        k = int(y_true.max()) + 1
        se = _bootstrap_se(y_true, lambda idx, axis=-1: (
            metric_on_images(metric, y_true[idx], ca[:, idx], k)
            - metric_on_images(metric, y_true[idx], cb[:, idx], k)).mean(axis=0))
        low, high = _interval(float(diffs.mean()), se, diffs)
        return Estimate(float(diffs.mean()), _sd(diffs), low, high, len(seeds),
                        "paired bootstrap over test images")
    low, high = _t_interval(diffs)
    method = "t over paired seeds" if low is not None else \
        "none: one seed and no per-image predictions"
    return Estimate(float(diffs.mean()), _sd(diffs), low, high, len(seeds), method)


def verdict(kind: str, claimed: float, ours: Estimate | None, tolerance: float) -> str:
    """The scoreboard's rule, in the units of ``claimed`` (``ours`` already scaled to them).

    * absolute: *reproduced* when ``claimed`` lies in our interval widened by ``tolerance`` on
      each side, else *not reproduced*;
    * gain: *reversed* when the paired interval excludes zero on the side opposite the paper's
      sign; *not significant* when it holds zero; when it excludes zero on the paper's side,
      *reproduced* if ``claimed`` also lies in the interval widened by ``tolerance``, else
      *direction reproduced*;
    * *no interval* when ``ours`` has none (one seed without per-image predictions)."""
    if kind not in ("absolute", "gain"):
        raise ValueError(f"kind must be 'absolute' or 'gain', got {kind!r}")
    if ours is None or not ours.has_interval:
        return "no interval"
    inside = ours.low - tolerance <= claimed <= ours.high + tolerance
    if kind == "absolute":
        return "reproduced" if inside else "not reproduced"
    if ours.low <= 0 <= ours.high:
        return "not significant"
    ours_positive = ours.low > 0
    if ours_positive != (claimed > 0):
        return "reversed"
    return "reproduced" if inside else "direction reproduced"


def reading(gain: Estimate) -> str:
    """What a paired gain says on its own: "higher" (interval above zero), "lower" (below),
    "not significant" (holds zero) or "no interval". The chapters' sentences are built from it."""
    if not gain.has_interval:
        return "no interval"
    if gain.low > 0:
        return "higher"
    if gain.high < 0:
        return "lower"
    return "not significant"


def _read(records, where):
    recs, names = [], []
    for i, r in enumerate(records):
        if isinstance(r, dict):
            recs.append(r)
            names.append(where[i] if where is not None else f"record {i}")
        else:
            recs.append(read_record(r))
            names.append(where[i] if where is not None else str(r))
    if not recs:
        raise ValueError("no records: an estimate needs at least one seed")
    return recs, names


def _by_seed(records, where) -> dict:
    out = {}
    for r, w in zip(records, where):
        seed = r.get("seed")
        if seed in out:
            raise ValueError(f"{w} and {out[seed][1]} are both seed {seed} of one cell; "
                             "a cell holds one record per seed")
        out[seed] = (r, w)
    return out
