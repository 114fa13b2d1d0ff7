"""The Analytic Hierarchy Model of Zhang & Dong: image (A) -> expressions (B) -> four face
regions (C) -> action units (D), and the semantic prototypes it defines (Eq. 4-5).

The judgment matrices live in ``ferlib/methods/ahm/judgments.json`` (data, not code); see that
file's ``about`` list for which matrices are the paper's (Fear, Table 2) and which are ours.

AU sets per expression (the paper): Happy 6+12, Surprise 1+2+5+25+26, Fear 1+2+4+5+7+20,
Angry 4+5+24, Disgust 9+10, Sad 1+15. The paper prints Fear's last AU as "2", repeating AU2;
we read it as AU20 (lip stretcher), the FACS fear AU. Neutral (AU0, "no action" in every
region) is optional and ours.

Two semantic spaces (:func:`semantic_prototypes`):

* ``mode="path"`` (the paper, Eq. 4-5): one dimension per path C_r -> D_a below the
  expression; the code of a path is s = U(1) x U(2) x U(3), the product of the local weights
  along A -> B -> C -> D. U(1), the expression's weight under the image, is the same for all
  paths of one row (each prototype row is a single expression), so it drops out when each
  row is normalised to sum to one.
* ``mode="composite"`` (AHP synthesis): one dimension per AU; an AU reached through two
  regions (Disgust's AU10, under nose and mouth) gets the sum of its path weights, counted once.

See notebooks/03_ahm_semantic_space, "The hierarchy" and "Semantic prototypes".
"""
from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ferlib.methods.ahm.ahp import (SAATY_SCALE, check_judgment_matrix, consistency_ratio,
                                    lambda_max, parse_judgment, priority_vector)

__all__ = ["DEFAULT_JUDGMENTS", "PAPER_AUS", "ExpressionNode", "Hierarchy", "load_hierarchy",
           "paper_table2", "semantic_prototypes", "semantic_columns", "MODES"]

DEFAULT_JUDGMENTS = Path(__file__).with_name("judgments.json")
MODES = ("path", "composite")
#: The AU sets of the paper (Fear's repeated AU2 read as AU20).
PAPER_AUS: dict[str, tuple[int, ...]] = {
    "Angry": (4, 5, 24), "Disgust": (9, 10), "Fear": (1, 2, 4, 5, 7, 20), "Happy": (6, 12),
    "Sad": (1, 15), "Surprise": (1, 2, 5, 25, 26)}
_SCALE = np.array([float(f) for f in SAATY_SCALE])


@dataclass(frozen=True)
class ExpressionNode:
    """One B-layer node: its face regions (C children) and their AUs (D grandchildren).

    ``region_matrix`` (n_regions, n_regions) compares ``regions``; ``au_matrices[r]`` compares
    ``aus[r]``. ``source`` says whether the judgments are the paper's or ours.
    """

    name: str
    regions: tuple[str, ...]
    region_matrix: np.ndarray
    aus: dict[str, tuple[int, ...]]
    au_matrices: dict[str, np.ndarray]
    source: str = ""
    optional: bool = False

    @property
    def all_aus(self) -> tuple[int, ...]:
        """The expression's AUs (each once), in ascending order."""
        return tuple(sorted({a for r in self.regions for a in self.aus[r]}))


@dataclass(frozen=True)
class Hierarchy:
    """The four-layer AHM: ``expressions`` (ordered, one per class), region and AU names.

    Node names: ``(expression, "B")`` is the expression's matrix over its regions,
    ``(expression, "C1")`` the matrix over the AUs of region C1 under that expression.
    """

    expressions: dict[str, ExpressionNode]
    region_names: dict[str, str]
    au_names: dict[int, str]
    source: str = ""

    # -- structure ------------------------------------------------------------------------
    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.expressions)

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(self.region_names)

    def nodes(self) -> list[tuple[str, str]]:
        """Every parent node with a judgment matrix: (expression, "B" or region)."""
        return [(e, n) for e, node in self.expressions.items() for n in ("B", *node.regions)]

    def _expr(self, expression: str) -> ExpressionNode:
        try:
            return self.expressions[expression]
        except KeyError:
            raise ValueError(f"no expression {expression!r} in the hierarchy; it has "
                             f"{', '.join(self.expressions)}") from None

    def children(self, expression: str, node: str) -> tuple[str, ...]:
        """Labels of the children compared at a node ("C1", ... or "AU1", ...)."""
        e = self._expr(expression)
        if node == "B":
            return e.regions
        if node not in e.aus:
            raise ValueError(f"{expression} has no region {node!r}; it uses {', '.join(e.regions)}")
        return tuple(f"AU{a}" for a in e.aus[node])

    def matrix(self, expression: str, node: str) -> np.ndarray:
        """A copy of the judgment matrix at ``(expression, node)``."""
        e = self._expr(expression)
        if node == "B":
            return e.region_matrix.copy()
        self.children(expression, node)
        return e.au_matrices[node].copy()

    def with_matrix(self, expression: str, node: str, R) -> "Hierarchy":
        """A new hierarchy with the judgment matrix at ``(expression, node)`` replaced."""
        e = self._expr(expression)
        old = self.matrix(expression, node)
        name = f"{expression}/{node}"
        M = check_judgment_matrix(R, name)
        if M.shape != old.shape:
            raise ValueError(f"judgment matrix {name}: needs shape {old.shape}, got {M.shape}")
        if node == "B":
            new = dataclasses.replace(e, region_matrix=M)
        else:
            new = dataclasses.replace(e, au_matrices={**e.au_matrices, node: M})
        return dataclasses.replace(self, expressions={**self.expressions, expression: new})

    def select(self, class_names: Sequence[str]) -> "Hierarchy":
        """The hierarchy restricted to / reordered as ``class_names`` (a dataset's classes)."""
        missing = [c for c in class_names if c not in self.expressions]
        if missing:
            raise ValueError(f"the hierarchy has no node for class(es) {missing}; it has "
                             f"{', '.join(self.expressions)} (Neutral needs include_neutral=True)")
        return dataclasses.replace(self, expressions={c: self.expressions[c] for c in class_names})

    # -- weights ----------------------------------------------------------------------------
    def local_weights(self, expression: str, node: str, method: str = "geometric") -> np.ndarray:
        """The priority vector at one node (:func:`ferlib.methods.ahm.ahp.priority_vector`)."""
        return priority_vector(self.matrix(expression, node), method,
                               name=f"{expression}/{node}")

    def path_weights(self, expression: str, method: str = "geometric") -> dict[tuple[str, int], float]:
        """{(region, AU): U(2) x U(3)} for every path below ``expression``; sums to one."""
        e = self._expr(expression)
        u2 = self.local_weights(expression, "B", method)
        out = {}
        for r, w_r in zip(e.regions, u2):
            for a, w_a in zip(e.aus[r], self.local_weights(expression, r, method)):
                out[(r, a)] = float(w_r * w_a)
        return out

    def consistency_table(self, warn: bool = False) -> pd.DataFrame:
        """One row per node: expression, node, n, lambda_max, CR, children and their weights
        by the three methods. ``warn=True`` warns for every node with CR > 0.1."""
        rows = []
        for expr, node in self.nodes():
            R = self.matrix(expr, node)
            rows.append({
                "expression": expr, "node": node, "n": len(R),
                "lambda_max": lambda_max(R, f"{expr}/{node}"),
                "CR": consistency_ratio(R, f"{expr}/{node}", warn=warn),
                "children": self.children(expr, node),
                **{f"w_{m}": priority_vector(R, m) for m in ("geometric", "paper", "eigen")},
                "source": self.expressions[expr].source})
        return pd.DataFrame(rows)

    def check_consistency(self) -> dict[tuple[str, str], float]:
        """CR of every node; warns (ConsistencyWarning naming the node) where CR > 0.1."""
        return {(e, n): consistency_ratio(self.matrix(e, n), f"{e}/{n}", warn=True)
                for e, n in self.nodes()}


# ----------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------
def _read_matrix(raw, where: str, n: int) -> np.ndarray:
    if not isinstance(raw, list) or len(raw) != n or any(
            not isinstance(row, list) or len(row) != n for row in raw):
        raise ValueError(f"{where}: needs an {n} x {n} list of lists (one row per child), got "
                         f"{raw!r}")
    M = np.array([[parse_judgment(v, f"{where}[{i}][{j}]") for j, v in enumerate(row)]
                  for i, row in enumerate(raw)])
    M = check_judgment_matrix(M, where)
    off = ~np.isclose(M[..., None], _SCALE, rtol=1e-3).any(-1)
    if off.any():
        i, j = np.argwhere(off)[0]
        raise ValueError(f"{where}[{i}][{j}] = {M[i, j]:g} is not on Saaty's scale "
                         "(1..9 or 1/2..1/9)")
    return M


def load_hierarchy(path=None, include_neutral: bool = False,
                   class_names: Iterable[str] | None = None) -> Hierarchy:
    """Read the judgment file (default ``ferlib/methods/ahm/judgments.json``) into a
    :class:`Hierarchy`.

    ``include_neutral`` keeps the optional Neutral node (ours: AU0 in every region).
    ``class_names`` (e.g. a dataset's ``class_names``) orders / restricts the expressions and
    switches Neutral on when it is among them. Every matrix is checked (square, positive,
    reciprocal, on Saaty's 1-9 scale, one row per child); errors name the file and node.
    """
    path = Path(path) if path is not None else DEFAULT_JUDGMENTS
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    regions = {str(k): str(v) for k, v in data.get("regions", {}).items()}
    au_names = {int(k): str(v) for k, v in data.get("aus", {}).items()}
    wanted = list(class_names) if class_names is not None else None
    if wanted is not None and "Neutral" in wanted:
        include_neutral = True
    exprs: dict[str, ExpressionNode] = {}
    for name, spec in data.get("expressions", {}).items():
        if spec.get("optional") and not include_neutral:
            continue
        where = f"{path.name}: {name}"
        regs = tuple(spec.get("regions", ()))
        unknown = [r for r in regs if r not in regions]
        if unknown or not regs:
            raise ValueError(f"{where}: regions {list(regs)} must be a non-empty subset of "
                             f"{list(regions)}")
        B = _read_matrix(spec.get("B"), f"{where}/B", len(regs))
        aus, mats = {}, {}
        for r in regs:
            sub = spec.get("C", {}).get(r)
            if sub is None:
                raise ValueError(f"{where}: region {r} has no entry under 'C'")
            a = tuple(int(x) for x in sub.get("aus", ()))
            if not a or len(set(a)) != len(a):
                raise ValueError(f"{where}/{r}: AU list {list(a)} must be non-empty without repeats")
            missing = [x for x in a if x not in au_names]
            if missing:
                raise ValueError(f"{where}/{r}: AU(s) {missing} have no name under 'aus'")
            aus[r] = a
            mats[r] = _read_matrix(sub.get("R"), f"{where}/{r}", len(a))
        exprs[name] = ExpressionNode(name, regs, B, aus, mats, str(spec.get("source", "")),
                                     bool(spec.get("optional", False)))
    h = Hierarchy(exprs, regions, au_names, str(path))
    return h.select(wanted) if wanted is not None else h


def paper_table2(reading: str = "upper") -> dict[str, np.ndarray]:
    """The paper's Table 2 (Fear) as printed, with C3 completed by ``reading``:
    ``"upper"`` (5 kept, 1/5 below), ``"lower"`` (1/3 kept, 3 above) or ``"printed"`` (the
    literal, non-reciprocal matrix)."""
    from ferlib.methods.ahm.ahp import make_reciprocal

    raw = json.loads(DEFAULT_JUDGMENTS.read_text())["paper_table2_printed"]
    out = {k: np.array([[parse_judgment(v) for v in row] for row in raw[k]["R"]])
           for k in ("B", "C1", "C3")}
    if reading == "printed":
        return out
    if reading not in ("upper", "lower"):
        raise ValueError(f"reading must be 'upper', 'lower' or 'printed', got {reading!r}")
    out["C3"] = make_reciprocal(out["C3"], keep=reading)
    return out


# ----------------------------------------------------------------------------------------------
# semantic prototypes
# ----------------------------------------------------------------------------------------------
def _column_keys(hierarchy: Hierarchy, mode: str) -> list:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    order = {r: i for i, r in enumerate(hierarchy.regions)}
    if mode == "path":
        keys = {(r, a) for e in hierarchy.expressions.values() for r in e.regions for a in e.aus[r]}
        return sorted(keys, key=lambda k: (order[k[0]], k[1]))
    return sorted({a for e in hierarchy.expressions.values() for a in e.all_aus})


def semantic_columns(hierarchy: Hierarchy, mode: str = "path") -> list[str]:
    """Names of the prototype columns: ``"C1:AU1"`` (path mode) or ``"AU1"`` (composite)."""
    keys = _column_keys(hierarchy, mode)
    return [f"{r}:AU{a}" for r, a in keys] if mode == "path" else [f"AU{a}" for a in keys]


def semantic_prototypes(hierarchy: Hierarchy, mode: str = "path", method: str = "geometric",
                        class_names: Sequence[str] | None = None) -> np.ndarray:
    """Semantic prototypes (n_classes, N), one row per expression, each row summing to one.

    ``mode="path"``: column (C_r, D_a) holds U(2) x U(3) = w(region r | expression) x
    w(AU a | region r, expression) (Eq. 4-5; U(1) is common to the row and normalised away).
    ``mode="composite"``: column D_a holds the sum over the regions that reach AU a.
    ``method`` is the priority-vector method (:func:`ferlib.methods.ahm.ahp.priority_vector`).
    ``class_names`` orders the rows (default: the hierarchy's order). Column names:
    :func:`semantic_columns`. See notebooks/03_ahm_semantic_space, "Semantic prototypes".
    """
    h = hierarchy.select(class_names) if class_names is not None else hierarchy
    keys = _column_keys(h, mode)
    col = {k: i for i, k in enumerate(keys)}
    P = np.zeros((len(h.expressions), len(keys)))  # (n_classes, N)
    for i, expr in enumerate(h.expressions):
        for (r, a), w in h.path_weights(expr, method).items():
            P[i, col[(r, a) if mode == "path" else a]] += w
    if not np.allclose(P.sum(1), 1.0):  # pragma: no cover - guaranteed by priority_vector
        warnings.warn("prototype rows do not sum to one")
    return P
