"""Plots shared by the chapters (seaborn / matplotlib): confusion matrix, per-class recall of
several methods side by side, training curves, image grids, class counts. See
notebooks/02_baseline. Every function draws on ``ax`` (a new figure when None) and returns the
Axes (or Figure for multi-panel plots); none calls ``plt.show()``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

__all__ = ["plot_confusion", "plot_per_class_recall", "plot_history", "image_grid",
           "plot_class_counts"]


def _axes(ax, figsize):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_confusion(cm, class_names: Sequence[str], normalize: bool = True, ax=None,
                   title: str | None = None, cmap: str = "Blues"):
    """Heat map of a confusion matrix (rows = true class, columns = predicted). With
    ``normalize`` each row is divided by its total, so the diagonal is the per-class recall
    (a class with no samples shows a row of 0). Returns the Axes."""
    cm = np.asarray(cm, dtype=np.float64)
    k = len(class_names)
    if cm.shape != (k, k):
        raise ValueError(f"confusion matrix has shape {cm.shape} but there are {k} class names")
    if normalize:
        totals = cm.sum(axis=1, keepdims=True)
        cm = np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)
    ax = _axes(ax, (0.75 * k + 2, 0.65 * k + 1.5))
    sns.heatmap(cm, annot=True, fmt=".2f" if normalize else ".0f", cmap=cmap, square=True,
                xticklabels=class_names, yticklabels=class_names, cbar=False, ax=ax,
                vmin=0, vmax=1 if normalize else None)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    return ax


def plot_per_class_recall(data, ax=None, title: str | None = None):
    """Grouped bars of per-class recall for several methods. ``data``: a dict
    ``{method: {class: recall}}`` or a DataFrame with one row per method (index = method) and
    one column per class (``recall/<class>`` columns of :func:`ferlib.records.load_records` are
    recognised; other columns ignored). Returns the Axes."""
    if isinstance(data, Mapping):
        df = pd.DataFrame({m: pd.Series(r, dtype=float) for m, r in data.items()}).T
    elif isinstance(data, pd.DataFrame):
        df = data.copy()
        rec = [c for c in df.columns if str(c).startswith("recall/")]
        if rec:
            if "method" in df.columns:
                df = df.set_index("method")
            df = df[rec].rename(columns=lambda c: str(c)[len("recall/"):])
    else:
        raise TypeError(f"plot_per_class_recall needs a dict or DataFrame, got {type(data).__name__}")
    if df.empty:
        raise ValueError("plot_per_class_recall: no recall values to plot")
    long = df.rename_axis("method").reset_index().melt(id_vars="method", var_name="class",
                                                       value_name="recall")
    long["method"] = long["method"].astype(str)
    ax = _axes(ax, (max(6, 0.9 * df.shape[1] * max(1, len(df)) / 2 + 3), 3.5))
    sns.barplot(data=long, x="class", y="recall", hue="method", ax=ax)
    ax.set_ylim(0, 1)
    ax.set_xlabel("")
    if title:
        ax.set_title(title)
    return ax


def plot_history(history, ax=None, metric: str = "accuracy"):
    """Training curves from a history table (``FitResult.history``: epoch, train_loss,
    train_acc, val_loss?, val_accuracy, test_accuracy, ...): loss on the left, ``metric`` on the
    right. With ``ax`` give two Axes; returns the Figure."""
    h = pd.DataFrame(history)
    if "epoch" not in h.columns or h.empty:
        raise ValueError("plot_history needs a non-empty table with an 'epoch' column")
    if ax is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    else:
        axes = list(ax)
        if len(axes) != 2:
            raise ValueError("plot_history: pass two Axes (loss, metric)")
        fig = axes[0].figure
    loss_cols = [c for c in h.columns if c.endswith("_loss")]
    acc_cols = [c for c in h.columns
                if c.endswith(f"_{metric}") or (metric == "accuracy" and c == "train_acc")]
    for col, axis in [(c, axes[0]) for c in loss_cols] + [(c, axes[1]) for c in acc_cols]:
        axis.plot(h["epoch"], h[col], marker="o", ms=3, label=col)
    axes[0].set_title("loss")
    axes[1].set_title(metric)
    for axis in axes:
        axis.set_xlabel("epoch")
        if axis.lines:
            axis.legend(fontsize=8)
    return fig


def image_grid(images, labels=None, class_names: Sequence[str] | None = None, ncols: int = 8,
               ax=None, titles: Sequence[str] | None = None):
    """Images in a grid. ``images``: (N, H, W) grey or (N, H, W, 3) uint8/float arrays, or
    (N, C, H, W) tensors in [0, 1]. ``labels`` (class indices) are shown through
    ``class_names``; ``titles`` override them. ``ax`` may be one Axes (the grid is drawn as a
    single mosaic there) or None (a Figure of subplots). Returns the Figure."""
    try:
        import torch
        if torch.is_tensor(images):
            images = images.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    imgs = np.asarray(images)
    if imgs.ndim == 4 and imgs.shape[1] in (1, 3) and imgs.shape[-1] not in (1, 3):
        imgs = imgs.transpose(0, 2, 3, 1)  # (N, H, W, C)
    if imgs.ndim == 4 and imgs.shape[-1] == 1:
        imgs = imgs[..., 0]
    if imgs.ndim not in (3, 4) or len(imgs) == 0:
        raise ValueError(f"image_grid needs (N, H, W), (N, H, W, 3) or (N, C, H, W); got {imgs.shape}")
    n = len(imgs)
    if labels is not None and len(labels) != n:
        raise ValueError(f"image_grid: {n} images but {len(labels)} labels")
    if titles is None and labels is not None:
        titles = [class_names[int(y)] if class_names is not None else str(int(y)) for y in labels]
    ncols = max(1, min(int(ncols), n))
    nrows = int(np.ceil(n / ncols))
    grey = imgs.ndim == 3
    if ax is not None:  # mosaic in one Axes
        h, w = imgs.shape[1:3]
        shape = (nrows * h, ncols * w) + (() if grey else (imgs.shape[-1],))
        mosaic = np.zeros(shape, dtype=np.float64)
        scale = 255.0 if imgs.dtype == np.uint8 else 1.0
        for i, img in enumerate(imgs):
            r, c = divmod(i, ncols)
            mosaic[r * h:(r + 1) * h, c * w:(c + 1) * w] = img / scale
        ax.imshow(mosaic, cmap="gray" if grey else None, vmin=0, vmax=1)
        ax.set_axis_off()
        return ax.figure
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.45 * nrows), squeeze=False)
    vmax = 255 if imgs.dtype == np.uint8 else 1
    for i, axis in enumerate(axes.flat):
        axis.set_axis_off()
        if i < n:
            axis.imshow(imgs[i], cmap="gray" if grey else None, vmin=0, vmax=vmax)
            if titles is not None:
                axis.set_title(str(titles[i]), fontsize=8)
    fig.tight_layout()
    return fig


def plot_class_counts(counts, class_names: Sequence[str], ax=None, title: str | None = None,
                      log: bool = False):
    """Bar chart of samples per class (the long tail), with the counts printed on the bars.
    Returns the Axes."""
    counts = np.asarray(counts)
    if counts.shape != (len(class_names),):
        raise ValueError(f"{counts.shape[0] if counts.ndim else 1} counts for "
                         f"{len(class_names)} class names")
    ax = _axes(ax, (max(5, 0.8 * len(class_names)), 3))
    sns.barplot(x=list(class_names), y=counts, ax=ax, color="tab:blue")
    for i, c in enumerate(counts):
        ax.annotate(f"{int(c)}", (i, c), ha="center", va="bottom", fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel("images")
    if title:
        ax.set_title(title)
    return ax
