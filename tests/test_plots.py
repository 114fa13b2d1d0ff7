"""ferlib.plots draws without showing and returns Axes / Figures (Agg backend)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from ferlib import plots  # noqa: E402


def test_confusion_normalised_annotations():
    ax = plots.plot_confusion([[3, 1], [0, 0]], ["A", "B"])
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["0.75", "0.25", "0.00", "0.00"]  # row-normalised; empty row stays 0
    with pytest.raises(ValueError, match="3 class names"):
        plots.plot_confusion(np.eye(2), ["A", "B", "C"])
    plt.close("all")


def test_recall_history_grid_counts():
    ax = plots.plot_per_class_recall({"ce": {"A": 0.5, "B": 1.0}, "ce+bal": {"A": 0.7, "B": 0.8}})
    heights = sorted(round(p.get_height(), 2) for p in ax.patches if p.get_height() > 0)
    assert heights == [0.5, 0.7, 0.8, 1.0]
    table = pd.DataFrame({"method": ["x"], "recall/A": [0.2], "accuracy": [0.9]})
    ax = plots.plot_per_class_recall(table)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A"]
    hist = pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [1.1, 0.9],
                         "train_acc": [0.3, 0.6], "val_accuracy": [0.3, 0.5]})
    fig = plots.plot_history(hist)
    assert [len(a.lines) for a in fig.axes] == [2, 2]
    fig = plots.image_grid(np.zeros((5, 8, 8), np.uint8), labels=[0, 1, 0, 1, 0],
                           class_names=["A", "B"], ncols=3)
    assert [a.get_title() for a in fig.axes[:3]] == ["A", "B", "A"] and len(fig.axes) == 6
    ax = plots.plot_class_counts([10, 2], ["A", "B"])
    assert [t.get_text() for t in ax.texts] == ["10", "2"]
    plt.close("all")
