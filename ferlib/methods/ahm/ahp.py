"""Analytic Hierarchy Process arithmetic on one judgment matrix (Zhang & Dong, AHM, Eq. 1-3).

A judgment matrix ``R`` (n, n) compares the n children of one node on Saaty's 1-9 scale:
``R[i, j]`` says how much more child i matters than child j, and a proper matrix is positive
and reciprocal (``R[j, i] = 1 / R[i, j]``, ones on the diagonal).

* :func:`priority_vector` -- the children's weights. ``method="geometric"`` is the n-th root
  of each row product normalised to sum to one (Eq. 2-3 done right); ``method="paper"`` keeps
  the square root printed in the paper's Eq. 2, which equals the geometric mean only for
  n = 2; ``method="eigen"`` is Saaty's principal right eigenvector.
* :func:`consistency_ratio` -- Saaty's CR = ((lambda_max - n) / (n - 1)) / RI(n) with the
  standard random indices; above 0.1 the judgments are usually revised.
* :func:`make_reciprocal` -- complete a matrix from its upper (or lower) triangle; used to
  show the two readings of the paper's non-reciprocal Table 2 (C3: 5 above, 1/3 below).

See notebooks/03_ahm_semantic_space, "Weights from a judgment matrix" and "Consistency".
"""
from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np

__all__ = ["RANDOM_INDEX", "SAATY_SCALE", "METHODS", "ConsistencyWarning", "check_judgment_matrix",
           "priority_vector", "consistency_ratio", "lambda_max", "make_reciprocal",
           "parse_judgment", "format_judgment", "is_reciprocal"]

#: Saaty's random consistency indices RI(n), n = 1..10 (reference-facts, "AHP").
RANDOM_INDEX: dict[int, float] = {1: 0.0, 2: 0.0, 3: 0.58, 4: 0.90, 5: 1.12, 6: 1.24, 7: 1.32,
                                  8: 1.41, 9: 1.45, 10: 1.49}
#: The 17 values of Saaty's scale, 1/9 .. 9, as exact fractions.
SAATY_SCALE: tuple[Fraction, ...] = tuple(
    [Fraction(1, k) for k in range(9, 1, -1)] + [Fraction(k) for k in range(1, 10)])
METHODS = ("geometric", "paper", "eigen")
#: CR above this is "not acceptably consistent" (Saaty).
CR_THRESHOLD = 0.1


class ConsistencyWarning(UserWarning):
    """A judgment matrix whose consistency ratio exceeds 0.1."""


def parse_judgment(value, where: str = "judgment") -> float:
    """One matrix entry: a number or a string such as ``"1/5"`` -> float (> 0)."""
    if isinstance(value, str):
        try:
            value = Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{where}: cannot read {value!r} as a judgment (write e.g. 3 or '1/3')"
                             ) from None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: a judgment must be a number or a fraction string, "
                        f"got {value!r}") from None
    return out


def format_judgment(value: float, max_denominator: int = 9) -> str:
    """``0.2 -> "1/5"``, ``3.0 -> "3"`` (the nearest fraction with a small denominator)."""
    f = Fraction(float(value)).limit_denominator(max_denominator)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def _as_matrix(R, name: str) -> np.ndarray:
    try:
        M = np.asarray(R, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"judgment matrix {name}: entries must be numbers") from None
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] == 0:
        raise ValueError(f"judgment matrix {name}: must be square (n, n) with n >= 1, "
                         f"got shape {M.shape}")
    if not np.isfinite(M).all():
        raise ValueError(f"judgment matrix {name}: has non-finite entries")
    if (M <= 0).any():
        i, j = np.argwhere(M <= 0)[0]
        raise ValueError(f"judgment matrix {name}: entries must be positive; "
                         f"R[{i}, {j}] = {M[i, j]:g}")
    return M


def is_reciprocal(R, rtol: float = 1e-3) -> bool:
    """True when ``R[i, j] * R[j, i] == 1`` for all i, j (within ``rtol``)."""
    M = np.asarray(R, dtype=np.float64)
    return bool(np.allclose(M * M.T, 1.0, rtol=0, atol=rtol))


def check_judgment_matrix(R, name: str = "R", rtol: float = 1e-3,
                          reciprocal: bool = True) -> np.ndarray:
    """Validate a judgment matrix: square, finite, positive and (by default) reciprocal with a
    unit diagonal. Returns it as float64; raises ValueError naming ``name`` and the entry."""
    M = _as_matrix(R, name)
    if reciprocal:
        prod = M * M.T  # (n, n), ones for a reciprocal matrix
        bad = np.argwhere(np.abs(prod - 1.0) > rtol)
        if len(bad):
            i, j = bad[0]
            if i == j:
                raise ValueError(f"judgment matrix {name}: diagonal entry R[{i}, {i}] = "
                                 f"{M[i, i]:g}, must be 1")
            i, j = min(i, j), max(i, j)
            raise ValueError(
                f"judgment matrix {name}: not reciprocal: R[{i}, {j}] = {format_judgment(M[i, j])} "
                f"but R[{j}, {i}] = {format_judgment(M[j, i])} (should be "
                f"{format_judgment(1 / M[i, j])}); complete it with make_reciprocal(R, keep="
                f"'upper' or 'lower')")
    return M


def make_reciprocal(R, keep: str = "upper") -> np.ndarray:
    """The reciprocal matrix that keeps the ``"upper"`` (or ``"lower"``) triangle of ``R`` and
    fills the other with reciprocals, with ones on the diagonal."""
    M = _as_matrix(R, "R")
    if keep not in ("upper", "lower"):
        raise ValueError(f"keep must be 'upper' or 'lower', got {keep!r}")
    iu = np.triu_indices(len(M), 1)
    upper = M[iu] if keep == "upper" else 1.0 / M[(iu[1], iu[0])]  # the kept judgments, i < j
    out = np.eye(len(M))  # (n, n)
    out[iu] = upper
    out[(iu[1], iu[0])] = 1.0 / upper
    return out


def priority_vector(R, method: str = "geometric", *, check_reciprocal: bool = True,
                    name: str = "R") -> np.ndarray:
    """Weights (n,) of the n children compared by judgment matrix ``R`` (n, n); they sum to 1.

    ``"geometric"`` (default): w_i = (prod_j R_ij)^(1/n) / sum_k (prod_j R_kj)^(1/n) -- the row
    geometric mean, i.e. AHM Eq. 2 with the n-th root, then the normalisation of Eq. 3.
    ``"paper"``: the square root literally printed in the paper's Eq. 2 (same as
    ``"geometric"`` for n = 2, sharper weights for n > 2).
    ``"eigen"``: Saaty's principal right eigenvector (positive by Perron-Frobenius).
    For a perfectly consistent matrix (R_ij = v_i / v_j) all three give v / sum(v) ... except
    ``"paper"`` for n > 2. ``check_reciprocal=False`` lets the notebook show what a literal
    non-reciprocal matrix (the paper's Table 2, C3) would give.
    See notebooks/03_ahm_semantic_space, "Weights from a judgment matrix".
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    M = check_judgment_matrix(R, name, reciprocal=check_reciprocal)
    n = len(M)
    logs = np.log(M).sum(axis=1)  # (n,) log of each row product
    if method == "geometric":
        w = np.exp((logs - logs.max()) / n)
    elif method == "paper":
        w = np.exp((logs - logs.max()) / 2.0)
    else:
        vals, vecs = np.linalg.eig(M)
        k = int(np.argmax(vals.real))
        w = np.abs(vecs[:, k].real)
    return w / w.sum()


def lambda_max(R, name: str = "R") -> float:
    """The principal (Perron) eigenvalue of a positive reciprocal matrix; >= n, = n iff
    consistent."""
    M = check_judgment_matrix(R, name)
    return float(np.max(np.linalg.eigvals(M).real))


def consistency_ratio(R, name: str | None = None, warn: bool = True) -> float:
    """Saaty's consistency ratio CR = CI / RI(n), CI = (lambda_max - n) / (n - 1).

    ``R`` must be positive and reciprocal (else ValueError). n <= 2 gives 0 (always
    consistent; RI = 0). Above 0.1 a :class:`ConsistencyWarning` naming ``name`` (the node) is
    issued when ``warn``. Random indices: :data:`RANDOM_INDEX` (n <= 10).
    See notebooks/03_ahm_semantic_space, "Consistency".
    """
    label = name or "R"
    M = check_judgment_matrix(R, label)
    n = len(M)
    if n <= 2:
        return 0.0
    if n not in RANDOM_INDEX:
        raise ValueError(f"judgment matrix {label}: Saaty's random index is tabulated for "
                         f"n <= 10 only, got n = {n}; split the node into sub-criteria")
    lam = float(np.max(np.linalg.eigvals(M).real))
    cr = max((lam - n) / (n - 1), 0.0) / RANDOM_INDEX[n]
    if warn and cr > CR_THRESHOLD:
        warnings.warn(f"judgment matrix {label}: consistency ratio {cr:.3f} > {CR_THRESHOLD} "
                      "(Saaty): revise its judgments", ConsistencyWarning, stacklevel=2)
    return cr
