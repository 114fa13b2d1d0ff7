"""Semantic autoencoder (SAE, Kodirov et al. 2017) as used by Zhang & Dong's AHM (Eq. 6-10):
a linear map W from CNN features to the AHM semantic space, and a nearest-prototype classifier
by cosine distance.

With features X (n, d) and their semantic codes S (n, k), W (k, d) minimises

    ||X^T - W^T S^T||^2 + lam ||W X^T - S^T||^2      (decoder W^T, encoder W; Eq. 6-8)

whose stationarity condition is the Sylvester equation (Eq. 9, in the paper's column
convention written for our row-major X and S):

    A W + W B = C,   A = S^T S (k, k),  B = lam X^T X (d, d),  C = (1 + lam) S^T X (k, d).

Solvers of :func:`fit_projection`:

* ``"eig"`` (default): A = U diag(a) U^T and B = V diag(b) V^T are symmetric positive
  semi-definite, so in those bases the equation is diagonal: W~_ij = C~_ij / (a_i + b_j),
  C~ = U^T C V, W = U W~ V^T. On the CPU B is not diagonalised but only reduced to tridiagonal
  form once, B = Q T Q^T (LAPACK ``dsytrd``, the first and cheaper half of an eigensolver:
  about a third of ``eigh``'s work, an eighth of the Schur form Bartels-Stewart needs); each
  row of U^T W then solves one tridiagonal system (T + a_i I) y = Q^T c~_i in O(d)
  (Golub, Nash & Van Loan's Hessenberg-Schur method, symmetric case). B's eigenvalues come from
  T in O(d^2) for the singularity check; a singular system falls back to the two full
  eigendecompositions for the minimum-norm solution. On CUDA: the two eigendecompositions in
  torch float64. B = lam X^T X is formed with one symmetric rank-k update (BLAS ``dsyrk``, half
  the work of a general product) for every solver.
* ``"bartels-stewart"``: ``scipy.linalg.solve_sylvester`` (the SAE reference's solver).
* ``"kron"``: the explicit (k d) x (k d) linear system (I_d kron A + B kron I_k) vec W = vec C,
  minimum-norm least squares; for checking on small cases only.

Uniqueness: the solution is unique iff no a_i + b_j is zero. With class-level semantic codes
(one prototype per class) A has rank <= n_classes < k whenever the semantic space has more
dimensions than there are classes, and B is singular when d > n or a feature unit is dead
(all zeros). Then every (i, j) with a_i = b_j = 0 is free: in exact arithmetic C~_ij = 0 there
(a null vector u of A has S u = 0, so u^T C = 0), so the system is consistent and has
infinitely many solutions; Bartels-Stewart silently returns one of them (amplified rounding
noise). We detect such pairs (a_i + b_j <= rcond (max a + max b)) and, by default, warn and
return the minimum-norm solution (those components set to zero) -- which is the limit of the
ridge solution below as ridge -> 0. ``ridge > 0`` adds ridge ||W||^2 to the objective (A + ridge I
in place of A) and makes the solution unique.

See notebooks/03_ahm_semantic_space, "The semantic autoencoder" (Eq. 6-10).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

from ferlib.config import resolve_device

__all__ = ["SOLVERS", "SingularSylvesterWarning", "fit_projection", "sylvester_residual",
           "feature_scale", "cosine_distances", "SemanticClassifier"]

#: solvers of the Sylvester equation :func:`fit_projection` offers
SOLVERS = ("eig", "bartels-stewart", "kron")
ON_SINGULAR = ("warn", "raise", "ignore")
_KRON_MAX = 4096  # largest k * d the explicit Kronecker solve accepts


class SingularSylvesterWarning(UserWarning):
    """A W + W B = C has infinitely many solutions (some a_i + b_j = 0)."""


def _as_2d(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}") from None
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)})")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    return t


def _check_inputs(X, S, lam, ridge):
    Xt, St = _as_2d(X, "X (n_samples, d)"), _as_2d(S, "S (n_samples, k)")
    if Xt.shape[0] != St.shape[0]:
        raise ValueError(f"X and S need one row per sample: X has {Xt.shape[0]} rows, "
                         f"S has {St.shape[0]}")
    if not isinstance(lam, (int, float, np.floating, np.integer)) or not np.isfinite(lam) or lam <= 0:
        raise ValueError(f"lam must be a positive finite number, got {lam!r}")
    if not np.isfinite(ridge) or ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge!r}")
    return Xt, St


def _singular_message(n_pairs: int, rank_a: int, k: int, rank_b: int, d: int,
                      bartels_stewart: bool = False) -> str:
    what = ("scipy's Bartels-Stewart returns one of them, not the minimum-norm one "
            "(solver='eig' gives that)." if bartels_stewart else
            "Returning the minimum-norm one (the ridge -> 0 limit).")
    return (f"A W + W B = C is singular: {n_pairs} eigenvalue pair(s) with a_i + b_j ~ 0 "
            f"(A = S^T S has rank {rank_a} of {k}, B = lam X^T X rank {rank_b} of {d}), so it "
            f"has infinitely many solutions. {what} Pass ridge > 0 for a unique solution, or "
            "use no more semantic dimensions than classes / more samples than features / drop "
            "dead feature units.")


def fit_projection(X, S, lam: float, solver: str = "eig", ridge: float = 0.0, *,
                   device="cpu", on_singular: str = "warn", rcond: float = 1e-10) -> np.ndarray:
    """Solve A W + W B = C for the SAE encoder W (k, d) (Eq. 9; see the module docstring).

    ``X`` (n, d) features and ``S`` (n, k) semantic codes (numpy or torch); ``lam`` > 0 weights
    the encoder term; ``ridge`` >= 0 adds ridge ||W||^2 (A + ridge I). ``solver`` in
    :data:`SOLVERS`; ``device`` is where the ``"eig"`` solver computes (float64 throughout).
    ``on_singular``: ``"warn"`` (default; minimum-norm solution), ``"raise"`` (ValueError)
    or ``"ignore"`` (minimum-norm for ``"eig"``/``"kron"``; the bare scipy result for
    ``"bartels-stewart"``, no check) when some a_i + b_j <= rcond (max a + max b).
    Returns W as a float64 numpy array (k, d).
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if on_singular not in ON_SINGULAR:
        raise ValueError(f"on_singular must be one of {ON_SINGULAR}, got {on_singular!r}")
    Xt, St = _check_inputs(X, S, lam, ridge)
    dev = resolve_device(device) if solver == "eig" else torch.device("cpu")
    Xt = Xt.to(dev, torch.float64)  # (n, d)
    St = St.to(dev, torch.float64)  # (n, k)
    k, d = St.shape[1], Xt.shape[1]
    A = St.T @ St  # (k, k)
    if ridge:
        A = A + ridge * torch.eye(k, dtype=A.dtype, device=dev)
    C = (1.0 + lam) * (St.T @ Xt)  # (k, d)
    if dev.type == "cpu":
        B_lower = _gram_lower(Xt.numpy(), lam)  # (d, d), lower triangle valid
        if solver == "eig":
            W = _solve_tridiagonal(A.numpy(), B_lower, C.numpy(), rcond)
            if W is not None:
                return W
        B = torch.from_numpy(B_lower + np.tril(B_lower, -1).T)  # (d, d) symmetric
    else:
        B = lam * (Xt.T @ Xt)  # (d, d)

    if solver == "eig":
        a, U = torch.linalg.eigh(A)  # (k,), (k, k)
        b, V = torch.linalg.eigh(B)  # (d,), (d, d)
        a, b = a.clamp_min(0), b.clamp_min(0)  # PSD: negative values are rounding
        denom = a[:, None] + b[None, :]  # (k, d)
        tol = rcond * float(a.max() + b.max())
        free = denom <= tol
        n_free = int(free.sum())
        if n_free:
            _on_singular(on_singular, n_free, a, b, tol, k, d)
        Ct = U.T @ C @ V  # (k, d)
        Wt = torch.where(free, torch.zeros_like(Ct), Ct / torch.where(free, 1.0, denom))
        return (U @ Wt @ V.T).cpu().numpy()  # (k, d)

    An, Bn, Cn = A.numpy(), B.numpy(), C.numpy()
    if solver == "kron":
        if k * d > _KRON_MAX:
            raise ValueError(f"solver='kron' builds a (k d) x (k d) system; k * d = {k * d} > "
                             f"{_KRON_MAX}: use 'eig' or 'bartels-stewart'")
        if on_singular != "ignore":
            a, b = np.linalg.eigvalsh(An).clip(0), np.linalg.eigvalsh(Bn).clip(0)
            tol = rcond * (a.max() + b.max())
            n_free = int((a[:, None] + b[None, :] <= tol).sum())
            if n_free:
                _on_singular(on_singular, n_free, torch.from_numpy(a), torch.from_numpy(b),
                             tol, k, d)
        # column-major vec: vec(A W) = (I_d kron A) vec W, vec(W B) = (B^T kron I_k) vec W
        K = np.kron(np.eye(d), An) + np.kron(Bn.T, np.eye(k))  # (k d, k d)
        w, *_ = np.linalg.lstsq(K, Cn.reshape(-1, order="F"), rcond=rcond)  # minimum norm
        return w.reshape((k, d), order="F")

    from scipy.linalg import solve_sylvester
    if on_singular != "ignore":
        a = np.linalg.eigvalsh(An).clip(0)  # k x k: cheap
        tol_a = rcond * (a.max() + np.abs(Bn).max())
        if (a <= tol_a).any():  # A singular: the pairs exist iff B is singular too
            b = np.linalg.eigvalsh(Bn).clip(0)
            tol = rcond * (a.max() + b.max())
            n_free = int((a[:, None] + b[None, :] <= tol).sum())
            if n_free:
                _on_singular(on_singular, n_free, torch.from_numpy(a), torch.from_numpy(b),
                             tol, k, d, bartels_stewart=True)
    return solve_sylvester(An, Bn, Cn)


def _gram_lower(X: np.ndarray, lam: float) -> np.ndarray:
    """lam X^T X (d, d) by BLAS dsyrk: only the lower triangle is computed (the upper is 0).
    A C-ordered X (n, d) is the Fortran-ordered X^T (d, n), so BLAS reads it without a copy."""
    from scipy.linalg.blas import dsyrk
    if X.flags.c_contiguous:
        return dsyrk(float(lam), X.T, trans=0, lower=1)
    return dsyrk(float(lam), np.asfortranarray(X), trans=1, lower=1)


def _apply_q(R: np.ndarray, tau: np.ndarray, M: np.ndarray, transpose: bool) -> np.ndarray:
    """Q M (or Q^T M) for the Q = H_1 ... H_{d-1} of ``dsytrd(lower=1)``: Q = diag(1, Q'), and
    Q' is the Householder product of a QR factorisation stored in R[1:, :d-1] (unit lower
    triangle implicit), which LAPACK ``dormqr`` applies blocked."""
    from scipy.linalg import lapack

    d, m = M.shape
    out = np.array(M, dtype=np.float64, order="F")
    if d < 2:
        return out
    sub, _, info = lapack.dormqr("L", "T" if transpose else "N", R[1:, :d - 1], tau,
                                 out[1:], lwork=max(1, 64 * m))
    if info != 0:  # pragma: no cover - LAPACK argument errors only
        raise RuntimeError(f"LAPACK dormqr failed with info={info}")
    out[1:] = sub
    return out


def _solve_tridiagonal(A: np.ndarray, B_lower: np.ndarray, C: np.ndarray, rcond: float):
    """The ``"eig"`` solve on the CPU through B = Q T Q^T (module docstring), or None when
    some a_i + b_j <= rcond (max a + max b) (the caller then takes the eigenvector path)."""
    from scipy.linalg import eigvalsh_tridiagonal, lapack

    k, d = C.shape
    a, U = np.linalg.eigh(A)  # (k,), (k, k)
    a = a.clip(0)
    lwork = int(lapack.dsytrd_lwork(d, lower=1)[0])
    R, diag, off, tau, info = lapack.dsytrd(B_lower, lower=1, lwork=lwork)
    if info != 0:  # pragma: no cover - LAPACK argument errors only
        raise RuntimeError(f"LAPACK dsytrd failed with info={info}")
    b = eigvalsh_tridiagonal(diag, off, check_finite=False).clip(0) if d > 1 else diag.clip(0)
    tol = rcond * float(a.max() + b.max())
    if (a[:, None] + b[None, :] <= tol).any():
        return None
    Z = _apply_q(R, tau, (U.T @ C).T, transpose=True)  # (d, k): Q^T C~^T
    Y = np.empty_like(Z)
    for i in range(k):  # (T + a_i I) y = z: nonsingular here
        if d == 1:
            Y[:, i] = Z[:, i] / (diag + a[i])
            continue
        *_, y, info = lapack.dgtsv(off, diag + a[i], off, Z[:, i])
        if info != 0:  # pragma: no cover - excluded by the eigenvalue check above
            return None
        Y[:, i] = y
    return U @ _apply_q(R, tau, Y, transpose=False).T  # (k, d)


def _on_singular(mode, n_free, a, b, tol, k, d, bartels_stewart=False):
    msg = _singular_message(n_free, int((a > tol).sum()), k, int((b > tol).sum()), d,
                            bartels_stewart)
    if mode == "raise":
        raise ValueError(msg)
    if mode == "warn":
        warnings.warn(msg, SingularSylvesterWarning, stacklevel=3)


def sylvester_residual(W, X, S, lam: float, ridge: float = 0.0) -> float:
    """Relative residual ||A W + W B - C||_F / ||C||_F of a solution W (k, d)."""
    X = np.asarray(X, np.float64)
    S = np.asarray(S, np.float64)
    A = S.T @ S + ridge * np.eye(S.shape[1])
    B = lam * (X.T @ X)
    C = (1 + lam) * (S.T @ X)
    return float(np.linalg.norm(A @ W + W @ B - C) / np.linalg.norm(C))


def feature_scale(X) -> np.ndarray:
    """Per-dimension scale (d,) that gives each feature column unit L2 norm over the training
    samples, as the SAE reference's ``normalizeFeature`` does; a dead (all-zero) column keeps
    scale 1 (it stays zero) instead of dividing by zero."""
    X = np.asarray(X, np.float64)
    norms = np.linalg.norm(X, axis=0)  # (d,)
    return np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 1.0)


def cosine_distances(P, prototypes) -> np.ndarray:
    """1 - cos(P_i, prototype_c) for estimated codes P (N, k) and prototypes (n_classes, k)
    -> (N, n_classes) (Eq. 10). A zero row has distance 1 to every class."""
    P = np.asarray(P, np.float64)
    Q = np.asarray(prototypes, np.float64)
    pn = np.linalg.norm(P, axis=1, keepdims=True)  # (N, 1)
    qn = np.linalg.norm(Q, axis=1, keepdims=True)  # (n_classes, 1)
    Pn = P / np.where(pn > 0, pn, 1.0)
    Qn = Q / np.where(qn > 0, qn, 1.0)
    return 1.0 - Pn @ Qn.T


class SemanticClassifier:
    """Nearest semantic prototype by cosine distance after the SAE projection (AHM Eq. 6-10).

    ``fit(X, y, prototypes)``: X (n, d) features, y (n,) class indices, prototypes
    (n_classes, k) (``ferlib.methods.ahm.semantic_prototypes``); S = prototypes[y] and W from
    :func:`fit_projection`. ``normalize_features`` scales each feature dimension to unit norm
    over the training samples (SAE reference; test features use the training scale);
    ``normalize_rows`` scales each row of W to unit norm before projecting (the SAE demo's
    ``NormalizeFea(W)``). ``normalize_prototypes`` (default True) scales each prototype to
    unit length before the fit: the AHM prototypes (rows summing to one) have lengths from
    about 0.47 to 0.83, and A = S^T S would weight the classes by them; the cosine step
    ignores lengths, so the normalised fit is the one that treats every class alike. lam
    depends on the feature scale, so sweep it.
    ``distances(X)`` -> (N, n_classes) cosine distances; ``predict(X)`` -> argmin (N,).
    See notebooks/03_ahm_semantic_space, "The experiment".
    """

    def __init__(self, lam: float = 1.0, solver: str = "eig", normalize_features: bool = True,
                 normalize_rows: bool = False, ridge: float = 0.0, device="cpu",
                 on_singular: str = "warn", normalize_prototypes: bool = True):
        if not isinstance(lam, (int, float, np.floating, np.integer)) or not np.isfinite(lam) \
                or lam <= 0:
            raise ValueError(f"lam must be a positive finite number, got {lam!r}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        self.lam, self.solver, self.ridge, self.device = float(lam), solver, ridge, device
        self.normalize_features, self.normalize_rows = normalize_features, normalize_rows
        self.on_singular, self.normalize_prototypes = on_singular, normalize_prototypes
        self.W_ = self.scale_ = self.prototypes_ = None

    def fit(self, X, y, prototypes) -> "SemanticClassifier":
        X = _as_2d(X, "X (n_samples, d)").cpu().double().numpy()
        Q = _as_2d(prototypes, "prototypes (n_classes, k)").cpu().double().numpy()
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must be 1-D with one label per row of X ({len(X)}), "
                             f"got shape {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"y must hold integer class indices, got dtype {y.dtype}")
        if len(y) and (y.min() < 0 or y.max() >= len(Q)):
            raise ValueError(f"labels must lie in 0..{len(Q) - 1} (one prototype row per class); "
                             f"got {y.min()}..{y.max()}")
        self.scale_ = feature_scale(X) if self.normalize_features else np.ones(X.shape[1])
        if self.normalize_prototypes:
            lengths = np.linalg.norm(Q, axis=1, keepdims=True)
            Q = Q / np.where(lengths > 0, lengths, 1.0)
        W = fit_projection(X * self.scale_, Q[y], self.lam, self.solver, self.ridge,
                           device=self.device, on_singular=self.on_singular)  # (k, d)
        if self.normalize_rows:
            n = np.linalg.norm(W, axis=1, keepdims=True)
            W = W / np.where(n > 0, n, 1.0)
        self.W_, self.prototypes_ = W, Q
        return self

    def _check_fitted(self, X) -> np.ndarray:
        if self.W_ is None:
            raise RuntimeError("SemanticClassifier is not fitted: call fit(X, y, prototypes)")
        X = _as_2d(X, "X (n_samples, d)").cpu().double().numpy()
        if X.shape[1] != self.W_.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features, the classifier was fitted on "
                             f"{self.W_.shape[1]}")
        return X

    def transform(self, X) -> np.ndarray:
        """Estimated semantic codes (N, k) = (X * scale) W^T."""
        X = self._check_fitted(X)
        return (X * self.scale_) @ self.W_.T

    def distances(self, X) -> np.ndarray:
        """Cosine distances (N, n_classes) to the class prototypes (Eq. 10)."""
        return cosine_distances(self.transform(X), self.prototypes_)

    def predict(self, X) -> np.ndarray:
        return self.distances(X).argmin(axis=1)
