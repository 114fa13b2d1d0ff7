"""Class-covariance sampling in the VAE-GAN latent space (Li et al., Eq. for z'), chapter
notebooks/04_latent_covariance_augmentation, "The latent space of each class" and "Correct versus
literal sampling".

Li et al. encode every training image with E, take the encoder means ``mu(x)``, estimate for
each class c the covariance ``Sigma_c`` of those means, and draw augmentations of an image x of
class c from ``N(mu(x), s * Sigma_c)`` with a strength ``s >= 0``; G decodes them.

The paper writes the draw as ``z' = s Sigma_c o r + mu`` with ``r ~ N(0, I)``. That is not a
draw from ``N(mu, s Sigma_c)``. The correct draw (implemented as ``method="correct"``) is

    z' = mu + sqrt(s) L r,   L L^T = Sigma_c,          Cov(z') = s Sigma_c.

Two literal readings are kept as options so the chapter can show the difference:

* ``method="literal"``: "o" read as applying the matrix to r, ``z' = mu + s Sigma_c r``;
  then ``Cov(z') = s^2 Sigma_c Sigma_c^T = s^2 Sigma_c^2`` (eigenvalues squared, s squared).
* ``method="literal-diag"``: "o" read as the element-wise (Hadamard) product with the diagonal,
  ``z' = mu + s diag(Sigma_c) * r``; then ``Cov(z') = s^2 diag(Sigma_c)^2`` (no correlations,
  variances squared).

Covariance estimate (:func:`class_latent_stats`): with ``shrinkage=None`` the sample covariance
divides by ``n_c - ddof`` (default ``ddof=1``, unbiased); with ``shrinkage="ledoit-wolf"``
(default) or ``"oas"`` scikit-learn's estimator is used, which shrinks the maximum-likelihood
covariance (divides by ``n_c``) towards ``(trace/d) I`` and so stays positive definite when a
class has fewer samples than latent dimensions (Fear: 281 RAF-DB images). A class with one
sample has no covariance and is an error.

The square root ``L`` is a Cholesky factor, with a growing diagonal jitter when the matrix is
numerically singular, falling back to the symmetric eigen square root with rounding-level
negative eigenvalues clamped to zero; no path produces NaN.

Every path refuses a matrix that is not a covariance (:func:`check_covariance`): NaN or inf
entries, a non-symmetric matrix, or a negative eigenvalue beyond rounding error (a negative or
indefinite matrix) is a ValueError naming the argument. Nothing is symmetrised or clamped
silently.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["ClassLatentStats", "class_latent_stats", "sample_latent", "matrix_sqrt",
           "check_strength", "check_covariance", "SAMPLING_METHODS", "SHRINKAGE"]

SAMPLING_METHODS = ("correct", "literal", "literal-diag")
SHRINKAGE = ("ledoit-wolf", "oas", None)


def _as_tensor(a, name: str) -> torch.Tensor:
    if isinstance(a, np.ndarray):
        a = torch.from_numpy(a)
    if not isinstance(a, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(a).__name__}")
    return a


def check_strength(s) -> float:
    """The augmentation strength ``s`` of the z' draw (see the module docstring) as a float; a
    non-number is a TypeError, a negative or non-finite value a ValueError."""
    try:
        s = float(s)
    except (TypeError, ValueError):
        raise TypeError(f"strength s must be a number, got {s!r}") from None
    if not np.isfinite(s) or s < 0:
        raise ValueError(f"strength s must be a finite number >= 0, got {s}")
    return s


def check_covariance(cov: torch.Tensor, name: str = "cov") -> None:
    """Raise ValueError naming ``name`` unless ``cov`` ((d, d) or a batch (n, d, d)) is a
    covariance matrix: finite, symmetric and positive semi-definite, each up to rounding error
    (``10 max(d, 10) eps`` relative to the largest entry / eigenvalue, eps of the dtype)."""
    c = cov if cov.ndim == 3 else cov.unsqueeze(0)                       # (n, d, d)
    if c.ndim != 3 or c.shape[-1] != c.shape[-2]:
        raise ValueError(f"{name} must be a square (d, d) matrix or a batch (n, d, d), got shape "
                         f"{tuple(cov.shape)}")
    where = (lambda i: name) if cov.ndim == 2 else (lambda i: f"{name}[{i}]")
    finite = torch.isfinite(c).flatten(1).all(1)                         # (n,)
    if not finite.all():
        i = int(torch.nonzero(~finite)[0])
        raise ValueError(f"{where(i)} contains NaN or inf: not a covariance matrix")
    if c.shape[-1] == 0:
        return
    c64 = c.detach().double().cpu()
    d = c.shape[-1]
    eps = torch.finfo(c.dtype if c.is_floating_point() else torch.float32).eps
    rel = 10.0 * max(d, 10) * eps
    scale = c64.abs().flatten(1).amax(1)                                 # (n,)
    asym = (c64 - c64.transpose(-1, -2)).abs().flatten(1).amax(1)        # (n,)
    bad = torch.nonzero(asym > rel * scale).flatten()
    if len(bad):
        i = int(bad[0])
        m = c64[i]
        r, k = divmod(int((m - m.T).abs().argmax()), d)
        raise ValueError(f"{where(i)} is not symmetric: entry ({r}, {k}) is {m[r, k].item():.6g} but "
                         f"({k}, {r}) is {m[k, r].item():.6g}; a covariance matrix is symmetric "
                         "(it is not symmetrised for you)")
    evals = torch.linalg.eigvalsh(c64)                                   # (n, d) ascending
    top = evals.abs().amax(1)                                            # (n,)
    bad = torch.nonzero(evals[:, 0] < -rel * top).flatten()
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{where(i)} is not positive semi-definite: its smallest eigenvalue is "
                         f"{evals[i, 0].item():.6g} (largest {evals[i, -1].item():.6g}); a covariance "
                         "matrix has no negative eigenvalues (they are not clamped for you)")


def matrix_sqrt(cov: torch.Tensor, max_tries: int = 4) -> tuple[torch.Tensor, str]:
    """A factor L with ``L L^T = cov`` (up to jitter) for a symmetric (d, d) matrix.

    Tries the Cholesky factor of ``cov + eps I`` with ``eps = 0, 1e-10, 1e-8, 1e-6`` times the
    mean absolute diagonal entry (``max_tries`` values); if all fail, returns ``V diag(sqrt(max(lambda, 0)))`` from ``eigh`` (negative
    eigenvalues clamped). Returns ``(L, how)`` with how in {"cholesky", "cholesky+jitter",
    "eigen"}. Non-finite input is a ValueError.
    """
    cov = _as_tensor(cov, "cov")
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"covariance must be a square (d, d) matrix, got shape {tuple(cov.shape)}")
    check_covariance(cov, "covariance")
    return _matrix_sqrt(cov, max_tries)


def _matrix_sqrt(cov: torch.Tensor, max_tries: int = 4) -> tuple[torch.Tensor, str]:
    """:func:`matrix_sqrt` of a matrix already checked to be a covariance."""
    cov = 0.5 * (cov + cov.T)                                     # (d, d) rounding-level asymmetry
    d = cov.shape[0]
    scale = float(cov.diagonal().abs().mean()) or 1.0
    eye = torch.eye(d, dtype=cov.dtype, device=cov.device)
    for k in range(max_tries):
        eps = 0.0 if k == 0 else scale * 10.0 ** (-12 + 2 * k)
        L, info = torch.linalg.cholesky_ex(cov + eps * eye)
        if int(info) == 0 and torch.isfinite(L).all():
            return L, "cholesky" if k == 0 else "cholesky+jitter"
    evals, evecs = torch.linalg.eigh(cov)                         # (d,), (d, d)
    return evecs * evals.clamp(min=0).sqrt(), "eigen"             # (d, d): V diag(sqrt(lambda))


def sample_latent(mu_x, cov_c, s: float = 1.0, n: int = 1, generator: torch.Generator | None = None,
                  method: str = "correct", sqrt_cov: torch.Tensor | None = None, *,
                  _check: bool = True) -> torch.Tensor:
    """Draw ``n`` latent augmentations of each row of ``mu_x`` (chapter 04, "Eq. z'").

    ``mu_x``: (B, d) (or (d,)) encoder means; ``cov_c``: (d, d) class covariance or (B, d, d),
    one per row. ``method``: "correct" ``mu + sqrt(s) L r`` (Cov = s Sigma), "literal"
    ``mu + s Sigma r`` (Cov = s^2 Sigma^2), "literal-diag" ``mu + s diag(Sigma) * r``
    (Cov = s^2 diag(Sigma)^2). ``sqrt_cov`` optionally passes a precomputed L (same shape as
    cov_c). Returns (B, n, d) (or (n, d) for a 1-D mu_x). A ``cov_c`` that is not a covariance
    (NaN/inf, not symmetric, negative eigenvalues) is a ValueError on every path.
    """
    s = check_strength(s)
    if method not in SAMPLING_METHODS:
        raise ValueError(f"unknown sampling method {method!r}: choose one of {SAMPLING_METHODS}")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n (draws per row) must be an int >= 1, got {n!r}")
    mu = _as_tensor(mu_x, "mu_x")
    cov = _as_tensor(cov_c, "cov_c").to(dtype=mu.dtype if mu.is_floating_point() else torch.float32,
                                         device=mu.device)
    mu = mu.to(cov.dtype)
    squeeze = mu.ndim == 1
    if squeeze:
        mu = mu.unsqueeze(0)                                          # (1, d)
    if mu.ndim != 2:
        raise ValueError(f"mu_x must be (B, d) or (d,), got shape {tuple(mu.shape)}")
    B, d = mu.shape
    if cov.ndim == 2:
        cov = cov.unsqueeze(0)                                        # (1, d, d)
    if cov.ndim != 3 or cov.shape[-1] != cov.shape[-2]:
        raise ValueError(f"cov_c must be (d, d) or (B, d, d), got shape {tuple(_as_tensor(cov_c, 'cov_c').shape)}")
    if cov.shape[-1] != d:
        raise ValueError(f"dimension mismatch: mu_x has d={d} but cov_c is {cov.shape[-1]}x{cov.shape[-1]}")
    if cov.shape[0] not in (1, B):
        raise ValueError(f"cov_c holds {cov.shape[0]} matrices for {B} rows of mu_x")
    if not torch.isfinite(mu).all():
        raise ValueError("mu_x contains NaN or inf")
    if _check:
        check_covariance(cov if cov.shape[0] > 1 else cov[0], "cov_c")
        if sqrt_cov is not None and not torch.isfinite(_as_tensor(sqrt_cov, "sqrt_cov")).all():
            raise ValueError("sqrt_cov contains NaN or inf")

    r = torch.randn((B, n, d), generator=generator, dtype=mu.dtype,
                    device=generator.device if generator is not None else mu.device).to(mu.device)  # (B, n, d)
    if method == "correct":
        if sqrt_cov is None:
            L = torch.stack([matrix_sqrt(c)[0] for c in cov])         # (1|B, d, d)
        else:
            L = _as_tensor(sqrt_cov, "sqrt_cov").to(cov)
            L = L.unsqueeze(0) if L.ndim == 2 else L
        step = (s ** 0.5) * torch.einsum("bij,bnj->bni", L.expand(B, d, d), r)         # (B, n, d)
    elif method == "literal":
        step = s * torch.einsum("bij,bnj->bni", cov.expand(B, d, d), r)                # (B, n, d)
    else:  # literal-diag
        step = s * cov.diagonal(dim1=-2, dim2=-1).unsqueeze(1) * r                     # (B, n, d)
    z = mu.unsqueeze(1) + step                                                          # (B, n, d)
    return z[0] if squeeze else z


@dataclass
class ClassLatentStats:
    """Per-class mean (K, d) and covariance (K, d, d) of latent means, with square roots.

    ``present[c]`` is False for classes without statistics (no samples, or skipped because of
    fewer than 2 samples with ``min_samples="skip"``); sampling those is an error.
    """

    means: torch.Tensor            # (K, d)
    covs: torch.Tensor             # (K, d, d)
    counts: np.ndarray             # (K,)
    present: np.ndarray            # (K,) bool
    shrinkage: str | None
    ddof: int
    class_names: tuple[str, ...] | None = None
    shrinkage_amount: np.ndarray | None = None    # (K,) sklearn's shrinkage coefficient
    sqrt_method: list[str] = field(default_factory=list)
    sqrt_covs: torch.Tensor | None = None          # (K, d, d)
    estimator: list[str] = field(default_factory=list)   # (K,) which estimate each class got

    def __post_init__(self):
        present = torch.as_tensor(np.asarray(self.present, dtype=bool))
        if len(present) and present.any():
            check_covariance(self.covs[present], "ClassLatentStats.covs")

    @property
    def latent_dim(self) -> int:
        return self.means.shape[1]

    @property
    def num_classes(self) -> int:
        return self.means.shape[0]

    def _class(self, c) -> int:
        if isinstance(c, str):
            if self.class_names is None or c not in self.class_names:
                raise ValueError(f"unknown class {c!r}; classes: {self.class_names}")
            c = self.class_names.index(c)
        c = int(c)
        if not 0 <= c < self.num_classes:
            raise ValueError(f"unknown class {c}: the statistics cover classes 0..{self.num_classes - 1}")
        if not self.present[c]:
            name = f" ({self.class_names[c]})" if self.class_names else ""
            raise ValueError(f"class {c}{name} has no covariance ({self.counts[c]} samples)")
        return c

    def cov(self, c) -> torch.Tensor:
        return self.covs[self._class(c)]

    def spectrum(self, c) -> np.ndarray:
        """Eigenvalues of Sigma_c, largest first."""
        return torch.linalg.eigvalsh(self.cov(c)).flip(0).cpu().numpy()

    def sample(self, mu_x, classes, s: float = 1.0, n: int = 1, generator=None,
               method: str = "correct") -> torch.Tensor:
        """``sample_latent`` with each row's class covariance: mu_x (B, d), classes (B,) ints
        (or one int / class name for all rows). Returns (B, n, d)."""
        mu = _as_tensor(mu_x, "mu_x")
        if mu.ndim != 2 or mu.shape[1] != self.latent_dim:
            raise ValueError(f"dimension mismatch: mu_x has shape {tuple(mu.shape)} but the class "
                             f"statistics have d={self.latent_dim}")
        if isinstance(classes, (int, np.integer, str)):
            classes = [classes] * len(mu)
        cls = [self._class(c) for c in (classes.tolist() if hasattr(classes, "tolist") else classes)]
        if len(cls) != len(mu):
            raise ValueError(f"{len(cls)} classes for {len(mu)} rows of mu_x")
        idx = torch.as_tensor(cls, dtype=torch.long)
        covs = self.covs[idx].to(mu.device)                              # (B, d, d)
        L = self.sqrt_covs[idx].to(mu.device)                           # (B, d, d)
        # covs were checked when the statistics were made (__post_init__)
        return sample_latent(mu, covs, s, n, generator, method, sqrt_cov=L, _check=False)

    def to(self, device) -> "ClassLatentStats":
        self.means, self.covs = self.means.to(device), self.covs.to(device)
        self.sqrt_covs = self.sqrt_covs.to(device)
        return self


def class_latent_stats(mu, labels, num_classes: int | None = None, *,
                       shrinkage: str | None = "ledoit-wolf", ddof: int | None = None,
                       class_names=None, min_samples: str = "error") -> ClassLatentStats:
    """Per-class mean and covariance of encoder means (Li et al., "class covariance"; chapter
    04, "Estimating Sigma_c").

    ``mu``: (N, d) latent means; ``labels``: (N,) ints. ``shrinkage``: "ledoit-wolf" (default,
    ``sklearn.covariance.LedoitWolf``), "oas" (``sklearn.covariance.OAS``) or None (plain sample
    covariance). ``ddof``: divisor is ``n_c - ddof``; default 1 without shrinkage (unbiased) and
    0 with shrinkage (sklearn's estimators shrink the divide-by-n covariance; another ddof is an
    error there). A class with one sample is a ValueError unless ``min_samples="skip"`` (its
    ``present`` flag is then False, as for classes with no samples). Ledoit-Wolf is not always
    positive definite: for a class of two samples its estimated shrinkage is 0 and the estimate
    has rank 1; a class whose Ledoit-Wolf estimate is singular gets the OAS estimate instead
    (``estimator[c]`` says which each class got).
    """
    from sklearn.covariance import OAS, LedoitWolf

    if shrinkage not in SHRINKAGE:
        raise ValueError(f"unknown shrinkage {shrinkage!r}: choose one of {SHRINKAGE}")
    if min_samples not in ("error", "skip"):
        raise ValueError(f"min_samples must be 'error' or 'skip', got {min_samples!r}")
    if ddof is None:
        ddof = 1 if shrinkage is None else 0
    if shrinkage is not None and ddof != 0:
        raise ValueError(f"ddof={ddof} with shrinkage={shrinkage!r}: scikit-learn's shrinkage "
                         "estimators use the divide-by-n covariance; leave ddof=None (0)")
    if ddof not in (0, 1):
        raise ValueError(f"ddof must be 0 (divide by n) or 1 (divide by n-1), got {ddof}")
    X = _as_tensor(mu, "mu").detach().cpu().double().numpy()
    y = np.asarray(_as_tensor(labels, "labels").cpu().numpy() if not isinstance(labels, (list, tuple))
                   else labels).astype(np.int64)
    if X.ndim != 2:
        raise ValueError(f"mu must be (N, d), got shape {X.shape}")
    if y.shape != (len(X),):
        raise ValueError(f"labels must be ({len(X)},) for mu of {len(X)} rows, got {y.shape}")
    if not np.isfinite(X).all():
        bad = int(np.flatnonzero(~np.isfinite(X).all(1))[0])
        raise ValueError(f"mu has NaN or inf at row {bad}")
    if len(y) and y.min() < 0:
        raise ValueError(f"labels must be >= 0, got {y.min()}")
    K = int(num_classes if num_classes is not None else (y.max() + 1 if len(y) else 0))
    if len(y) and y.max() >= K:
        raise ValueError(f"label {y.max()} >= num_classes={K}")
    d = X.shape[1]
    counts = np.bincount(y, minlength=K)
    means, covs = np.zeros((K, d)), np.zeros((K, d, d))
    present = counts >= 2
    amount = np.full(K, np.nan)
    kind = ["none" if not present[c] else (shrinkage or f"sample (ddof {ddof})") for c in range(K)]
    for c in range(K):
        name = f" ({class_names[c]})" if class_names is not None else ""
        if counts[c] == 1 and min_samples == "error":
            raise ValueError(f"class {c}{name} has a single sample: its covariance is undefined; "
                             "pass min_samples='skip' to leave it without augmentation")
        if not present[c]:
            continue
        Xc = X[y == c]                                              # (n_c, d)
        means[c] = Xc.mean(0)
        if shrinkage is None:
            covs[c] = np.cov(Xc, rowvar=False, ddof=ddof).reshape(d, d)
        else:
            est = (LedoitWolf() if shrinkage == "ledoit-wolf" else OAS()).fit(Xc)
            used = shrinkage
            if shrinkage == "ledoit-wolf" and _singular(est.covariance_):
                # Ledoit-Wolf's estimated shrinkage can be 0 for a tiny class (two samples:
                # shrinkage 0, a rank-1 matrix); OAS shrinks such a class strongly
                # (2d / (3(d - 1)) for n = 2, about 2/3) and is positive definite there
                est, used = OAS().fit(Xc), "oas (ledoit-wolf singular)"
            covs[c] = est.covariance_
            amount[c] = est.shrinkage_
            kind[c] = used
    covs_t = torch.from_numpy(covs).float()
    if present.any():   # checked in the float32 they are kept in (rounding tolerance of float32)
        check_covariance(covs_t[torch.from_numpy(present)], "class covariance")
    sq, how = [], []
    for c in range(K):
        if present[c]:
            L, h = _matrix_sqrt(covs_t[c].double())
            sq.append(L.float())
            how.append(h)
        else:
            sq.append(torch.zeros(d, d))
            how.append("none")
    return ClassLatentStats(means=torch.from_numpy(means).float(), covs=covs_t, counts=counts,
                            present=present, shrinkage=shrinkage, ddof=ddof,
                            class_names=tuple(class_names) if class_names is not None else None,
                            shrinkage_amount=amount, sqrt_method=how,
                            sqrt_covs=torch.stack(sq) if K else None, estimator=kind)


def _singular(cov: np.ndarray, rtol: float = 1e-10) -> bool:
    """True when ``cov``'s smallest eigenvalue is not above ``rtol`` times its mean one."""
    ev = np.linalg.eigvalsh(cov)
    return bool(ev[0] <= rtol * max(ev.mean(), np.finfo(float).tiny))
