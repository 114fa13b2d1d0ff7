"""Figures of chapter notebooks/03_ahm_semantic_space: the four-layer hierarchy as a layered
node-link drawing, one judgment node in detail (matrix, weights by the three methods,
the expression's prototype), and the heatmaps of all prototypes and their cosine similarities.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ferlib.methods.ahm.ahp import METHODS, consistency_ratio, format_judgment, priority_vector
from ferlib.methods.ahm.hierarchy import Hierarchy, semantic_columns, semantic_prototypes

__all__ = ["draw_hierarchy", "plot_node", "plot_prototypes", "weights_table"]

_LAYER_Y = {"A": 3.0, "B": 2.0, "C": 1.0, "D": 0.0}


def _spread(n: int, width: float = 1.0) -> np.ndarray:
    return np.linspace(0.5 / n, 1 - 0.5 / n, n) * width if n else np.zeros(0)


def draw_hierarchy(hierarchy: Hierarchy, highlight: str | None = "Fear",
                   method: str = "geometric", ax=None):
    """Layered drawing A (image) -> B (expressions) -> C (regions) -> D (AUs).

    Grey edges are the structure; the paths of ``highlight`` are drawn in colour with widths
    and labels giving the local weights U(2) (B -> C) and U(3) (C -> D).
    """
    h = hierarchy
    if ax is None:
        _, ax = plt.subplots(figsize=(11, 5))
    exprs, regions = h.classes, h.regions
    aus = sorted({a for e in h.expressions.values() for a in e.all_aus})
    pos = {("A", "image"): (0.5, _LAYER_Y["A"])}
    pos.update({("B", e): (x, _LAYER_Y["B"]) for e, x in zip(exprs, _spread(len(exprs)))})
    pos.update({("C", r): (x, _LAYER_Y["C"]) for r, x in zip(regions, _spread(len(regions)))})
    pos.update({("D", a): (x, _LAYER_Y["D"]) for a, x in zip(aus, _spread(len(aus)))})

    def line(p, q, **kw):
        (x0, y0), (x1, y1) = pos[p], pos[q]
        ax.plot([x0, x1], [y0, y1], zorder=1, **kw)

    for e in exprs:
        line(("A", "image"), ("B", e), color="0.8", lw=0.8)
    cd = set()
    for e, node in h.expressions.items():
        for r in node.regions:
            line(("B", e), ("C", r), color="0.8", lw=0.8)
            cd.update((r, a) for a in node.aus[r])
    for r, a in cd:
        line(("C", r), ("D", a), color="0.8", lw=0.8)
    if highlight is not None:
        node = h.expressions[highlight]
        line(("A", "image"), ("B", highlight), color="C3", lw=2.5)
        u2 = h.local_weights(highlight, "B", method)
        for r, w in zip(node.regions, u2):
            line(("B", highlight), ("C", r), color="C3", lw=0.8 + 6 * w)
            (x0, y0), (x1, y1) = pos[("B", highlight)], pos[("C", r)]
            ax.text(0.55 * x0 + 0.45 * x1, 0.55 * y0 + 0.45 * y1, f"{w:.2f}", color="C3",
                    fontsize=8, ha="center", va="center", backgroundcolor="white", zorder=4)
            for a, v in zip(node.aus[r], h.local_weights(highlight, r, method)):
                line(("C", r), ("D", a), color="C0", lw=0.8 + 6 * v)
                (x0, y0), (x1, y1) = pos[("C", r)], pos[("D", a)]
                ax.text(0.35 * x0 + 0.65 * x1, 0.35 * y0 + 0.65 * y1, f"{v:.2f}", color="C0",
                        fontsize=8, ha="center", va="center", backgroundcolor="white", zorder=4)
    for (layer, key), (x, y) in pos.items():
        if layer == "A":
            label = "A: image"
        elif layer == "B":
            label = key
        elif layer == "C":
            label = f"{key}\n{h.region_names[key]}"
        else:
            label = f"AU{key}"
        bold = layer == "B" and key == highlight
        ax.text(x, y, label, ha="center", va="center", fontsize=8 if layer != "D" else 7.5,
                fontweight="bold" if bold else "normal", zorder=5,
                bbox=dict(boxstyle="round,pad=0.3", fc="white",
                          ec="C3" if bold else "0.4", lw=1.2 if bold else 0.8))
    for layer, y in _LAYER_Y.items():
        ax.text(-0.02, y, layer, ha="right", va="center", fontsize=11, fontweight="bold")
    ax.set_xlim(-0.05, 1.02)
    ax.set_ylim(-0.4, 3.4)
    ax.axis("off")
    title = "Analytic Hierarchy Model: image -> expression -> face region -> AU"
    if highlight:
        title += f"  (weights of {highlight}, {method} mean)"
    ax.set_title(title, fontsize=10)
    return ax


def weights_table(R, children, methods=METHODS, check_reciprocal: bool = True) -> pd.DataFrame:
    """Priority vectors of one matrix by each method, one column per method."""
    return pd.DataFrame({m: priority_vector(R, m, check_reciprocal=check_reciprocal)
                         for m in methods}, index=list(children))


def plot_node(hierarchy: Hierarchy, expression: str, node: str, mode: str = "path",
              method: str = "geometric", axes=None):
    """One judgment node: the matrix (with fractions), its weights by the three methods and CR,
    and the expression's semantic prototype. Used live by the widget and as its static
    fallback figure."""
    h = hierarchy
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(13, 3.4),
                               gridspec_kw={"width_ratios": [1, 1.1, 1.8]})
    R = h.matrix(expression, node)
    kids = h.children(expression, node)
    ax = axes[0]
    ax.imshow(np.log(R), cmap="RdBu_r", vmin=-np.log(9), vmax=np.log(9))
    for i in range(len(R)):
        for j in range(len(R)):
            ax.text(j, i, format_judgment(R[i, j]), ha="center", va="center", fontsize=9)
    ax.set_xticks(range(len(kids)), kids, fontsize=8)
    ax.set_yticks(range(len(kids)), kids, fontsize=8)
    cr = consistency_ratio(R, f"{expression}/{node}", warn=False)
    ax.set_title(f"{expression} / {node}: CR = {cr:.3f}" + ("  (> 0.1!)" if cr > 0.1 else ""),
                 fontsize=9, color="C3" if cr > 0.1 else "black")
    weights_table(R, kids).plot.bar(ax=axes[1], rot=0, width=0.8)
    axes[1].set_ylim(0, 1)
    axes[1].set_title("local weights by method", fontsize=9)
    axes[1].legend(fontsize=7)
    cols = semantic_columns(h, mode)
    row = semantic_prototypes(h, mode, method)[h.classes.index(expression)]
    keep = row > 0
    axes[2].bar(np.array(cols)[keep], row[keep], color="C2")
    axes[2].set_ylim(0, 1)
    axes[2].tick_params(axis="x", rotation=45, labelsize=8)
    axes[2].set_title(f"{expression} prototype ({mode} mode, {method}; sums to 1)", fontsize=9)
    return axes


def plot_prototypes(hierarchy: Hierarchy, mode: str = "path", method: str = "geometric",
                    axes=None):
    """Heatmaps of all prototypes (n_classes, N) and of their cosine similarities."""
    import seaborn as sns

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(14, 3.8), gridspec_kw={"width_ratios": [2.2, 1]})
    P = semantic_prototypes(hierarchy, mode, method)  # (n_classes, N)
    cols = semantic_columns(hierarchy, mode)
    sns.heatmap(pd.DataFrame(P, index=hierarchy.classes, columns=cols), ax=axes[0], cmap="viridis",
                annot=P.shape[1] <= 20, fmt=".2f", annot_kws={"fontsize": 6}, cbar=False)
    axes[0].set_title(f"semantic prototypes ({mode} mode, {method})", fontsize=10)
    Pn = P / np.linalg.norm(P, axis=1, keepdims=True)
    sns.heatmap(pd.DataFrame(Pn @ Pn.T, index=hierarchy.classes, columns=hierarchy.classes),
                ax=axes[1], cmap="mako", vmin=0, vmax=1, annot=True, fmt=".2f",
                annot_kws={"fontsize": 7}, square=True)
    axes[1].set_title("cosine similarity of prototypes", fontsize=10)
    return axes
