"""ferlib.metrics.classification_metrics on a 3-class, 6-sample case computed by hand."""
import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from ferlib.metrics import classification_metrics

NAMES = ["A", "B", "C"]
Y_TRUE = [0, 0, 1, 1, 2, 2]
Y_PRED = [0, 1, 1, 1, 2, 0]
# columns: class scores; chosen without ties so AP is easy to compute by hand
SCORES = np.array([
    # A     B     C
    [0.90, 0.05, 0.05],
    [0.30, 0.60, 0.10],
    [0.20, 0.70, 0.12],
    [0.10, 0.50, 0.40],
    [0.40, 0.15, 0.45],
    [0.80, 0.10, 0.09],
])


def test_hand_computed_case():
    m = classification_metrics(Y_TRUE, Y_PRED, scores=SCORES, class_names=NAMES)
    # confusion (rows true, cols predicted):  A: 1 1 0 | B: 0 2 0 | C: 1 0 1
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["n"] == 6
    assert m["accuracy"] == pytest.approx(4 / 6)
    # recall A 1/2, B 2/2, C 1/2
    assert m["per_class_recall"] == pytest.approx({"A": 0.5, "B": 1.0, "C": 0.5})
    assert m["mean_class_accuracy"] == pytest.approx(2 / 3)
    assert m["mean_class_accuracy"] == pytest.approx(balanced_accuracy_score(Y_TRUE, Y_PRED))
    assert m["max_class_recall"] == 1.0 and m["min_class_recall"] == 0.5
    # precision A 1/2, B 2/3, C 1/1 -> F1 A 1/2, B 4/5, C 2/3 -> macro (1/2 + 4/5 + 2/3) / 3
    assert m["macro_f1"] == pytest.approx(59 / 90)
    # AP (sum over positives of precision x recall step):
    #  A ranks 0.9(+) 0.8 0.4 0.3(+)        -> 1/2 * 1 + 1/2 * 2/4 = 3/4
    #  B ranks 0.7(+) 0.6 0.5(+)            -> 1/2 * 1 + 1/2 * 2/3 = 5/6
    #  C ranks 0.45(+) 0.4 0.12 0.1 0.09(+) -> 1/2 * 1 + 1/2 * 2/5 = 7/10
    assert m["per_class_ap"] == pytest.approx({"A": 0.75, "B": 5 / 6, "C": 0.7})
    assert m["mAP"] == pytest.approx((0.75 + 5 / 6 + 0.7) / 3)
    assert m["absent_classes"] == []


def test_no_scores_no_map_and_default_names():
    m = classification_metrics(np.array(Y_TRUE), np.array(Y_PRED))
    assert "mAP" not in m and "per_class_ap" not in m
    assert list(m["per_class_recall"]) == ["0", "1", "2"]


def test_class_absent_from_y_true_is_skipped_and_reported():
    names = NAMES + ["D"]
    scores = np.hstack([SCORES, np.full((6, 1), 0.01)])
    m = classification_metrics(Y_TRUE, Y_PRED, scores=scores, class_names=names)
    assert m["absent_classes"] == ["D"]
    assert list(m["per_class_recall"]) == NAMES          # no recall for D, no NaN
    assert m["mean_class_accuracy"] == pytest.approx(2 / 3)
    assert m["mAP"] == pytest.approx((0.75 + 5 / 6 + 0.7) / 3)
    assert m["macro_f1"] == pytest.approx(59 / 90)       # D neither true nor predicted
    assert np.array(m["confusion"]).shape == (4, 4)
    # predicting the absent class counts against macro-F1 (F1_D = 0)
    m2 = classification_metrics(Y_TRUE, [0, 1, 1, 1, 2, 3], class_names=names)
    assert m2["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 2 / 3 + 0) / 4)


def test_clear_errors():
    with pytest.raises(ValueError, match="y_true has 6 labels but y_pred has 5"):
        classification_metrics(Y_TRUE, Y_PRED[:5])
    with pytest.raises(ValueError, match=r"scores must have shape \(N, K\) = \(6, K\)"):
        classification_metrics(Y_TRUE, Y_PRED, scores=SCORES[:4])
    with pytest.raises(ValueError, match="scores have 3 columns but there are 4 classes"):
        classification_metrics(Y_TRUE, Y_PRED, scores=SCORES, class_names=NAMES + ["D"])
    with pytest.raises(ValueError, match=r"y_pred\[5\] = 3 is not a class index in \[0, 3\)"):
        classification_metrics(Y_TRUE, [0, 1, 1, 1, 2, 3], class_names=NAMES)
    bad = SCORES.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        classification_metrics(Y_TRUE, Y_PRED, scores=bad)
    with pytest.raises(ValueError, match="no samples"):
        classification_metrics([], [])
    with pytest.raises(ValueError, match="integer class indices"):
        classification_metrics([0.5, 1.0], [0, 1])


def test_check_above_chance_passes_names_failures_and_rejects_bad_input():
    from ferlib.metrics import check_above_chance

    # 7 classes, factor 2: the bar is 2/7 = 0.2857
    assert check_above_chance({"baseline": 0.45, "ean": 0.29}, 7) == 0.29
    with pytest.raises(AssertionError, match=r"at or below 0.286.*'ean': 0.28"):
        check_above_chance({"baseline": 0.45, "ean": 0.28}, 7)
    with pytest.raises(AssertionError, match=r"at or below 0.500"):
        check_above_chance({"a": 0.5}, 4)                     # equal to the bar fails
    with pytest.raises(AssertionError, match="NaN"):
        check_above_chance({"a": float("nan")}, 7)
    with pytest.raises(ValueError, match="num_classes"):
        check_above_chance({"a": 0.5}, 1)
    with pytest.raises(ValueError, match="no scores"):
        check_above_chance({}, 7)
