"""An ipywidgets judgment-matrix editor for chapter notebooks/03_ahm_semantic_space,
"Edit the judgments yourself".

Pick an expression and a node (its region matrix "B" or one region's AU matrix), set the
upper triangle on Saaty's 1-9 scale with dropdowns (the lower triangle follows as
reciprocals) and see the weights by the three methods, the consistency ratio, the expression's
semantic prototype and the heatmaps of all prototypes and their cosine similarities update.
On the static site the notebook shows :func:`ferlib.methods.ahm.plots.plot_node` instead.
"""
from __future__ import annotations

import numpy as np

from ferlib.methods.ahm.ahp import SAATY_SCALE, format_judgment
from ferlib.methods.ahm.hierarchy import Hierarchy, load_hierarchy

__all__ = ["JudgmentEditor", "judgment_editor", "SCALE_OPTIONS"]

#: Dropdown options: ("1/9", 1/9) ... ("9", 9.0).
SCALE_OPTIONS = [(format_judgment(float(f)), float(f)) for f in SAATY_SCALE]


def _nearest_scale(v: float) -> float:
    vals = np.array([o[1] for o in SCALE_OPTIONS])
    return float(vals[np.argmin(np.abs(np.log(vals) - np.log(v)))])


class JudgmentEditor:
    """Holds the edited :class:`~ferlib.methods.ahm.hierarchy.Hierarchy` (``.hierarchy``) and the
    widget (``.widget``); ``set_entry(i, j, value)`` edits the current node programmatically."""

    def __init__(self, hierarchy: Hierarchy | None = None, mode: str = "path",
                 method: str = "geometric", live_plots: bool = True):
        import ipywidgets as W

        self.original = hierarchy if hierarchy is not None else load_hierarchy(include_neutral=True)
        self.hierarchy = self.original
        self.live_plots = live_plots
        first = "Fear" if "Fear" in self.hierarchy.classes else self.hierarchy.classes[0]
        self.expr = W.Dropdown(options=list(self.hierarchy.classes), value=first,
                               description="expression")
        self.node = W.Dropdown(options=self._node_options(first), value="B", description="node")
        self.mode = W.ToggleButtons(options=["path", "composite"], value=mode,
                                    description="space")
        self.method = W.Dropdown(options=["geometric", "paper", "eigen"], value=method,
                                 description="weights")
        self.reset = W.Button(description="reset all", icon="undo")
        self.status = W.HTML()
        self.grid_box = W.VBox()
        self.out = W.Output()
        self._cells: dict[tuple[int, int], object] = {}
        self.expr.observe(self._on_expr, names="value")
        self._quiet = False
        self.node.observe(lambda _: None if self._quiet else self._build_grid(), names="value")
        self.mode.observe(lambda _: self._redraw(), names="value")
        self.method.observe(lambda _: self._redraw(), names="value")
        self.reset.on_click(self._on_reset)
        self.widget = W.VBox([W.HBox([self.expr, self.node, self.reset]),
                              W.HBox([self.mode, self.method]), self.grid_box, self.status,
                              self.out])
        self._build_grid()

    # -- helpers ------------------------------------------------------------------------------
    def _node_options(self, expr: str) -> list[tuple[str, str]]:
        e = self.hierarchy.expressions[expr]
        return [("B: regions", "B")] + [
            (f"{r}: {self.hierarchy.region_names[r]}", r) for r in e.regions]

    def _on_expr(self, change):
        self._quiet = True
        try:
            self.node.options = self._node_options(change["new"])
            self.node.value = "B"
        finally:
            self._quiet = False
        self._build_grid()

    def _on_reset(self, _):
        self.hierarchy = self.original
        self._build_grid()

    def _build_grid(self):
        import ipywidgets as W

        e, n = self.expr.value, self.node.value
        R = self.hierarchy.matrix(e, n)
        kids = self.hierarchy.children(e, n)
        self._cells = {}
        lay = W.Layout(width="80px")
        rows = [W.HBox([W.Label("", layout=lay)] + [W.Label(k, layout=lay) for k in kids])]
        for i in range(len(R)):
            cells = [W.Label(kids[i], layout=lay)]
            for j in range(len(R)):
                if j > i:
                    dd = W.Dropdown(options=SCALE_OPTIONS, value=_nearest_scale(R[i, j]),
                                    layout=lay)
                    dd.observe(lambda ch, i=i, j=j: self.set_entry(i, j, ch["new"]), names="value")
                    self._cells[(i, j)] = dd
                    cells.append(dd)
                else:
                    lab = W.Label(format_judgment(R[i, j]), layout=lay)
                    self._cells[(i, j)] = lab
                    cells.append(lab)
            rows.append(W.HBox(cells))
        if len(R) == 1:
            rows.append(W.Label("a single child: nothing to compare (weight 1)"))
        self.grid_box.children = rows
        self._redraw()

    def set_entry(self, i: int, j: int, value: float):
        """Set R[i, j] (i < j) of the current node; R[j, i] becomes 1 / value."""
        if not i < j:
            raise ValueError(f"edit the upper triangle (i < j), got ({i}, {j})")
        e, n = self.expr.value, self.node.value
        R = self.hierarchy.matrix(e, n)
        R[i, j], R[j, i] = value, 1.0 / value
        self.hierarchy = self.hierarchy.with_matrix(e, n, R)
        lower = self._cells.get((j, i))
        if lower is not None:
            lower.value = format_judgment(1.0 / value)
        upper = self._cells.get((i, j))
        if upper is not None and getattr(upper, "value", None) != value:
            upper.value = _nearest_scale(value)  # fires set_entry again with the same value
        self._redraw()

    def _redraw(self):
        from ferlib.methods.ahm.ahp import consistency_ratio, priority_vector

        e, n = self.expr.value, self.node.value
        R = self.hierarchy.matrix(e, n)
        cr = consistency_ratio(R, f"{e}/{n}", warn=False)
        w = priority_vector(R, self.method.value)
        kids = self.hierarchy.children(e, n)
        colour = "#b00" if cr > 0.1 else "#070"
        self.status.value = (f"<b>{e} / {n}</b>: weights ({self.method.value}) "
                             + ", ".join(f"{k} {v:.3f}" for k, v in zip(kids, w))
                             + f"; <span style='color:{colour}'>CR = {cr:.3f}</span>"
                             + (" &gt; 0.1: revise the judgments" if cr > 0.1 else ""))
        if not self.live_plots:
            return
        import matplotlib.pyplot as plt
        from ferlib.methods.ahm.plots import plot_node, plot_prototypes

        self.out.clear_output(wait=True)
        with self.out:
            fig, axes = plt.subplots(2, 3, figsize=(14, 7),
                                     gridspec_kw={"width_ratios": [1, 1.1, 1.8]})
            plot_node(self.hierarchy, e, n, self.mode.value, self.method.value, axes=axes[0])
            for ax in axes[1]:
                ax.remove()
            gs = axes[0, 0].get_gridspec()
            plot_prototypes(self.hierarchy, self.mode.value, self.method.value,
                            axes=[fig.add_subplot(gs[1, 1:]), fig.add_subplot(gs[1, 0])])
            fig.tight_layout()
            plt.show()


def judgment_editor(hierarchy: Hierarchy | None = None, mode: str = "path",
                    method: str = "geometric") -> JudgmentEditor:
    """Build the editor; display ``editor.widget`` in a notebook."""
    return JudgmentEditor(hierarchy, mode, method)
