"""ferlib.stats: estimates over seeds, bootstrap and paired intervals, and the verdict rules,
pinned with numbers worked by hand."""
from __future__ import annotations

import numpy as np
import pytest

from ferlib.records import encode_labels
from ferlib.stats import Estimate, estimate, metric_on_images, paired_gain, verdict


def rec(y_true, y_pred, seed=0, **extra):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    acc = float(np.mean(y_true == y_pred))
    return {"method": "m", "dataset": "d", "seed": seed,
            "metrics": {"n": len(y_true), "accuracy": acc, **extra},
            "predictions": {"y_true": encode_labels(y_true), "y_pred": encode_labels(y_pred)}}


def test_metrics_from_correctness_by_hand():
    y_true = np.array([0, 0, 1, 1, 2])
    correct = np.array([1, 0, 1, 1, 0], dtype=bool)
    assert metric_on_images("accuracy", y_true, correct) == pytest.approx(0.6)
    # recalls 1/2, 2/2, 0/1
    assert metric_on_images("mean_class_accuracy", y_true, correct) == pytest.approx(0.5)
    assert metric_on_images("min_class_recall", y_true, correct) == 0.0
    assert metric_on_images("max_class_recall", y_true, correct) == 1.0
    # vectorised over leading axes: two rows at once
    two = metric_on_images("mean_class_accuracy", y_true, np.stack([correct, ~correct]))
    assert two.tolist() == pytest.approx([0.5, 0.5])   # recalls 1/2, 0, 1
    with pytest.raises(ValueError, match="mAP"):
        metric_on_images("mAP", y_true, correct)


def test_paired_gain_of_100_more_right_answers_in_1000():
    y = np.arange(1000) % 7
    wrong = (y + 1) % 7
    base = np.where(np.arange(1000) < 500, y, wrong)          # 500 right
    better = np.where(np.arange(1000) < 600, y, wrong)        # the same 500 + 100 more
    gain = paired_gain([rec(y, better)], [rec(y, base)])
    assert gain.value == pytest.approx(0.1) and gain.n_seeds == 1 and gain.sd is None
    # d_i in {0, 1}, p = 0.1: sd of the mean sqrt(0.1 * 0.9 / 1000) = 0.0095, so about +-0.019
    assert gain.low == pytest.approx(0.1 - 0.0186, abs=0.004)
    assert gain.high == pytest.approx(0.1 + 0.0186, abs=0.004)
    assert gain.method == "paired bootstrap over test images"
    # unpaired, each accuracy's interval is about +-0.031: pairing is what makes it narrow
    single = estimate([rec(y, base)])
    assert single.high - single.low == pytest.approx(2 * 1.96 * np.sqrt(0.25 / 1000), abs=0.008)
    # a method against itself: exactly zero, and not significant
    same = paired_gain([rec(y, base)], [rec(y, base)])
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    assert verdict("gain", 2.0, same, 1.0) == "not significant"


def test_seeds_are_paired_by_seed_number_and_averaged():
    y = np.arange(700) % 7
    right, wrong = y, (y + 1) % 7
    a = [rec(y, np.where(np.arange(700) < n, right, wrong), seed=s)
         for s, n in ((0, 400), (1, 500), (2, 600))]
    b = [rec(y, np.where(np.arange(700) < 350, right, wrong), seed=s) for s in (2, 0, 9)]
    gain = paired_gain(a, b)
    # seeds 0 and 2 in common: (400 - 350) / 700 and (600 - 350) / 700
    assert gain.n_seeds == 2
    assert gain.value == pytest.approx((50 + 250) / 2 / 700)
    assert gain.sd == pytest.approx(np.std([50 / 700, 250 / 700], ddof=1))
    cell = estimate(a)
    assert cell.value == pytest.approx(500 / 700) and cell.sd == pytest.approx(100 / 700)
    assert cell.low < cell.value < cell.high and cell.n_seeds == 3
    with pytest.raises(ValueError, match="no seed in common"):
        paired_gain(a[:1], [rec(y, y, seed=5)])
    with pytest.raises(ValueError, match="both seed 0"):
        paired_gain([a[0], a[0]], b)


def test_records_scored_on_other_test_labels_are_not_paired():
    y = np.array([0, 1, 2, 3])
    with pytest.raises(ValueError, match="differ"):
        estimate([rec(y, y), rec(y[::-1], y, seed=1)])
    with pytest.raises(ValueError, match="different test labels"):
        paired_gain([rec(y, y)], [rec(y[::-1], y)])


def test_fallbacks_without_predictions():
    old = {"method": "m", "dataset": "d", "seed": 0, "metrics": {"n": 100, "accuracy": 0.5}}
    wilson = estimate([old])
    # Wilson 50/100: centre 0.5, half-width 1.96 sqrt(0.0025 + 1.96^2 / 40000) / (1 + 1.96^2 / 100)
    assert wilson.method == "Wilson, one seed"
    assert (wilson.low, wilson.high) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    seeds = [{**old, "seed": s, "metrics": {"n": 100, "accuracy": v}}
             for s, v in enumerate((0.4, 0.5, 0.6))]
    t = estimate(seeds)
    # mean 0.5, sd 0.1, t(0.975, 2) = 4.303: half-width 4.303 * 0.1 / sqrt(3) = 0.2484
    assert t.method == "t over seeds" and t.sd == pytest.approx(0.1)
    assert (t.low, t.high) == pytest.approx((0.5 - 0.2484, 0.5 + 0.2484), abs=1e-4)
    none = paired_gain([old], [old])
    assert not none.has_interval and none.method.startswith("none")
    assert verdict("gain", 5.0, none, 1.0) == "no interval"


@pytest.mark.parametrize("kind, claimed, low, high, expected", [
    ("absolute", 80.0, 70.0, 78.0, "not reproduced"),   # 80 > 78 + 1
    ("absolute", 79.0, 70.0, 78.0, "reproduced"),       # within the widened interval
    ("gain", 6.0, 2.0, 8.0, "reproduced"),
    ("gain", 6.0, 0.5, 3.0, "direction reproduced"),    # 6 > 3 + 1
    ("gain", 6.0, -0.5, 3.0, "not significant"),
    ("gain", 6.0, -4.0, -1.0, "reversed"),
    ("gain", -2.0, -4.0, -1.0, "reproduced"),           # a claimed loss, reproduced
    ("gain", -2.0, 1.0, 3.0, "reversed"),
])
def test_verdict_rules(kind, claimed, low, high, expected):
    ours = Estimate((low + high) / 2, None, low, high, 3, "paired bootstrap over test images")
    assert verdict(kind, claimed, ours, tolerance=1.0) == expected
