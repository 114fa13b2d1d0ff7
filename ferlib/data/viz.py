"""Figures and widgets of the data chapter (notebooks/01_data, "How action units move a face").

``au_explorer()`` is the interactive version (one ipywidgets slider per AU, plus pose and
light, redrawing the face); ``au_intensity_figure()`` is its static counterpart for the
built site (each AU alone at increasing intensity); ``prototype_figure()`` shows the seven
expression prototypes.
"""
from __future__ import annotations

import numpy as np

from .labels import BASIC7
from .synthfacs import AU_LIST, AU_NAMES, EXPRESSION_AUS, render_face, render_faces

__all__ = ["mosaic_figure", "class_grid", "au_intensity_figure", "prototype_figure", "au_explorer"]


def mosaic_figure(rows, row_labels, col_labels=None, title: str | None = None, cell: float = 0.9):
    """One Axes showing a mosaic of grey uint8 images: ``rows`` is a list of (n_i, H, W) arrays
    (one row each, padded with white to the longest), labelled on the left by ``row_labels``.
    Much faster to draw than a grid of subplots. Returns the Figure."""
    import matplotlib.pyplot as plt
    rows = [np.asarray(r) for r in rows]
    h, w = rows[0].shape[1:3]
    ncols = max(len(r) for r in rows)
    mosaic = np.full((len(rows) * (h + 2), ncols * (w + 2)), 255, np.uint8)
    for i, r in enumerate(rows):
        for j, img in enumerate(r):
            mosaic[i * (h + 2) + 1:i * (h + 2) + 1 + h, j * (w + 2) + 1:j * (w + 2) + 1 + w] = img
    fig, ax = plt.subplots(figsize=(cell * ncols + 1.5, cell * len(rows) + 0.4))
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_yticks([(i + 0.5) * (h + 2) for i in range(len(rows))], list(row_labels), fontsize=8)
    if col_labels is not None:
        ax.set_xticks([(j + 0.5) * (w + 2) for j in range(len(col_labels))], list(col_labels), fontsize=8)
        ax.xaxis.tick_top()
    else:
        ax.set_xticks([])
    ax.tick_params(length=0)
    for sp in ax.spines.values():
        sp.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def class_grid(ds, per_class: int = 8, seed: int = 0, title: str | None = None):
    """``per_class`` random images of each class of a FaceDataset, one row per class."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for c, name in enumerate(ds.class_names):
        idx = np.flatnonzero(ds.labels == c)
        if len(idx):
            pick = np.sort(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
            img = ds.images[pick]
            rows.append(img if img.ndim == 3 else img.mean(-1).astype(np.uint8))
            labels.append(f"{name} ({len(idx)})")
    return mosaic_figure(rows, labels, title=title)


def au_intensity_figure(aus=AU_LIST, intensities=(0.0, 0.33, 0.67, 1.0), size: int = 64):
    """One row per AU: the mean identity with only that AU, at each intensity. Returns the Figure."""
    aus = tuple(aus)
    au = np.zeros((len(aus) * len(intensities), len(AU_LIST)), np.float32)
    for i, a in enumerate(aus):
        for j, v in enumerate(intensities):
            au[i * len(intensities) + j, AU_LIST.index(a)] = v
    imgs = render_faces(au, size=size).reshape(len(aus), len(intensities), size, size)
    return mosaic_figure(list(imgs), [f"AU{a} {AU_NAMES[a]}" for a in aus],
                         col_labels=[f"{v:.2f}" for v in intensities], cell=1.1)


def prototype_figure(intensity: float = 1.0, size: int = 96):
    """The seven expressions with their prototype AUs at ``intensity`` (mean identity, frontal)."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(BASIC7), figsize=(1.6 * len(BASIC7), 2.0))
    for ax, name in zip(axes, BASIC7):
        aus = EXPRESSION_AUS[name]
        ax.imshow(render_face({a: intensity for a in aus}, size=size), cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{name}\n" + ("+".join(map(str, aus)) or "none"), fontsize=8)
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def au_explorer(size: int = 128, start: str | None = "Happy"):
    """An ipywidgets panel: one slider per AU (and yaw, roll, occlusion), the face redrawn on
    every change. ``start`` presets the sliders to an expression prototype."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    preset = set(EXPRESSION_AUS.get(start, ())) if start else set()
    sliders = {a: w.FloatSlider(value=1.0 if a in preset else 0.0, min=0, max=1, step=0.05,
                                description=f"AU{a}", tooltip=AU_NAMES[a], continuous_update=False,
                                layout=w.Layout(width="260px"))
               for a in AU_LIST}
    yaw = w.FloatSlider(value=0, min=-50, max=50, step=5, description="yaw", continuous_update=False)
    roll = w.FloatSlider(value=0, min=-20, max=20, step=2, description="roll", continuous_update=False)
    occ = w.Dropdown(options=[("none", 0), ("glasses", 1), ("sunglasses", 2), ("hand", 3)], value=0,
                     description="occluder")
    out = w.Output()

    def redraw(*_):
        img = render_face({a: s.value for a, s in sliders.items()}, size=size, yaw=yaw.value, roll=roll.value,
                          occlusion=occ.value, hand_x=0.25, hand_y=0.55, hand_a=0.3, hand_b=0.25)
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(3, 3))
            ax.imshow(img, cmap="gray", vmin=0, vmax=255)
            ax.set_axis_off()
            plt.show()

    for s in (*sliders.values(), yaw, roll, occ):
        s.observe(redraw, names="value")
    redraw()
    cols = [w.VBox(list(sliders.values())[i::2]) for i in range(2)]
    return w.HBox([w.VBox([w.HBox(cols), yaw, roll, occ]), out])
