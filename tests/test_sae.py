"""ferlib.methods.ahm.sae: the SAE Sylvester solve (AHM Eq. 6-9) by three solvers, the singular
case, and the cosine nearest-prototype classifier (Eq. 10). Chapter 03_ahm_semantic_space."""
import warnings

import numpy as np
import pytest
import torch

from ferlib.methods.ahm.sae import (SemanticClassifier, SingularSylvesterWarning, cosine_distances,
                        feature_scale, fit_projection, sylvester_residual)


def _problem(n=40, d=6, k=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(n, k))


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def test_solvers_agree_with_kronecker():
    X, S = _problem()
    lam = 0.7
    Wk = fit_projection(X, S, lam, "kron")
    assert Wk.shape == (4, 6)
    for solver in ("eig", "bartels-stewart"):
        W = fit_projection(X, S, lam, solver)
        assert _rel(W, Wk) < 1e-8, solver
        assert sylvester_residual(W, X, S, lam) < 1e-8
    assert sylvester_residual(Wk, X, S, lam) < 1e-8


def test_solution_is_stationary_point_of_the_objective():
    # gradient of ||X - S W||^2 + lam ||X W^T - S||^2 vanishes at W (torch autograd)
    X, S = _problem(n=30, d=5, k=3, seed=1)
    lam = 2.0
    W = torch.tensor(fit_projection(X, S, lam), requires_grad=True)
    Xt, St = torch.tensor(X), torch.tensor(S)
    loss = ((Xt - St @ W) ** 2).sum() + lam * ((Xt @ W.T - St) ** 2).sum()
    loss.backward()
    assert W.grad.abs().max() < 1e-9 * loss.item()


def test_scalar_closed_form():
    # d = k = 1: (s.s) w + lam (x.x) w = (1 + lam) s.x
    x, s = np.array([[1.0], [2.0]]), np.array([[3.0], [1.0]])
    lam = 0.5
    want = (1 + lam) * 5.0 / (10.0 + lam * 5.0)
    for solver in ("eig", "bartels-stewart", "kron"):
        assert fit_projection(x, s, lam, solver)[0, 0] == pytest.approx(want, rel=1e-12)


def test_singular_case_detected_and_minimum_norm():
    # class-level S: 3 classes, k = 5 > 3 -> A = S^T S rank 3; d = 8 > n = 6 -> B singular
    rng = np.random.default_rng(2)
    protos = rng.random((3, 5))
    y = np.array([0, 1, 2, 0, 1, 2])
    X, S = rng.normal(size=(6, 8)), protos[y]
    with pytest.warns(SingularSylvesterWarning, match="rank 3 of 5.*ridge"):
        W = fit_projection(X, S, 1.0, "eig")
    with pytest.raises(ValueError, match="infinitely many"):
        fit_projection(X, S, 1.0, "eig", on_singular="raise")
    with pytest.warns(SingularSylvesterWarning):
        Wk = fit_projection(X, S, 1.0, "kron")
    # the system is consistent: W solves it, and is the minimum-norm solution (= kron lstsq)
    assert sylvester_residual(W, X, S, 1.0) < 1e-8
    assert _rel(W, Wk) < 1e-8
    # the ridge -> 0 limit of the unique ridge solution
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Wr = fit_projection(X, S, 1.0, "eig", ridge=1e-7)
    assert _rel(Wr, W) < 1e-4
    # Bartels-Stewart says it cannot pick the minimum-norm solution
    with pytest.warns(SingularSylvesterWarning, match="Bartels-Stewart returns one of them"):
        fit_projection(X, S, 1.0, "bartels-stewart")


def test_dead_unit_makes_it_singular():
    rng = np.random.default_rng(3)
    protos = rng.random((2, 3))
    y = rng.integers(0, 2, 50)
    X = rng.normal(size=(50, 4))
    X[:, 2] = 0  # a dead ReLU unit
    with pytest.warns(SingularSylvesterWarning, match="rank 3 of 4"):
        W = fit_projection(X, protos[y], 1.0)
    np.testing.assert_allclose(W[:, 2], 0, atol=1e-12)  # nothing to learn for a dead unit


def test_nonsingular_gives_no_warning():
    X, S = _problem(n=50, d=6, k=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_projection(X, S, 1.0)
        fit_projection(X, S, 1.0, "bartels-stewart")


def test_torch_inputs_and_ridge_residual():
    X, S = _problem(seed=4)
    W = fit_projection(torch.tensor(X, dtype=torch.float32), torch.tensor(S), 1.3, ridge=0.5)
    assert W.dtype == np.float64
    assert sylvester_residual(W, X.astype(np.float32), S, 1.3, ridge=0.5) < 1e-6


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_eig_on_cuda_matches_cpu():
    X, S = _problem(n=200, d=32, k=5)
    assert _rel(fit_projection(X, S, 1.0, device="cuda"), fit_projection(X, S, 1.0)) < 1e-10


@pytest.mark.parametrize("kwargs,exc,msg", [
    (dict(lam=0.0), ValueError, "lam"),
    (dict(lam=-1.0), ValueError, "lam"),
    (dict(lam=1.0, ridge=-1.0), ValueError, "ridge"),
    (dict(lam=1.0, solver="qr"), ValueError, "solver"),
])
def test_bad_parameters(kwargs, exc, msg):
    X, S = _problem()
    with pytest.raises(exc, match=msg):
        fit_projection(X, S, **kwargs)


def test_bad_arrays():
    X, S = _problem()
    with pytest.raises(ValueError, match="one row per sample"):
        fit_projection(X, S[:-1], 1.0)
    Xn = X.copy()
    Xn[3, 2] = np.nan
    with pytest.raises(ValueError, match="X .*non-finite"):
        fit_projection(Xn, S, 1.0)
    with pytest.raises(ValueError, match="2-D"):
        fit_projection(X[:, 0], S, 1.0)
    with pytest.raises(ValueError, match="k d"):
        fit_projection(np.ones((3, 100)), np.ones((3, 50)), 1.0, "kron")


def test_feature_scale_and_cosine():
    X = np.array([[3.0, 0.0, 1.0], [4.0, 0.0, 0.0]])
    np.testing.assert_allclose(feature_scale(X), [1 / 5, 1.0, 1.0])
    D = cosine_distances([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], [[2.0, 0.0], [0.0, 3.0]])
    np.testing.assert_allclose(D, [[0, 1], [1 - 2 ** -0.5, 1 - 2 ** -0.5], [1, 1]])


def test_classifier_separable_case():
    # features = prototypes mixed by a random invertible map plus small noise -> near-perfect
    rng = np.random.default_rng(5)
    protos = np.eye(3) + 0.1
    M = rng.normal(size=(3, 10))
    y = np.repeat(np.arange(3), 30)
    X = protos[y] @ M + 0.01 * rng.normal(size=(90, 10))
    clf = SemanticClassifier(lam=1.0).fit(X, y, protos)
    D = clf.distances(X)
    assert D.shape == (90, 3)
    assert (D >= -1e-12).all() and (D <= 2 + 1e-12).all()
    assert (clf.predict(X) == y).mean() == 1.0
    assert clf.W_.shape == (3, 10)
    np.testing.assert_allclose(np.linalg.norm(X * clf.scale_, axis=0), 1.0)
    rows = SemanticClassifier(lam=1.0, normalize_rows=True).fit(X, y, protos)
    np.testing.assert_allclose(np.linalg.norm(rows.W_, axis=1), 1.0)
    assert (rows.predict(X) == y).mean() == 1.0
    # without feature scaling the W differs (lam depends on the scale)
    raw = SemanticClassifier(lam=1.0, normalize_features=False).fit(X, y, protos)
    assert not np.allclose(raw.W_, clf.W_)


def test_classifier_errors():
    X, _ = _problem()
    y = np.zeros(40, dtype=int)
    protos = np.eye(3)
    with pytest.raises(ValueError, match="lam"):
        SemanticClassifier(lam=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        SemanticClassifier().predict(X)
    with pytest.raises(ValueError, match="one label per row"):
        SemanticClassifier().fit(X, y[:-1], protos)
    with pytest.raises(ValueError, match="0..2"):
        SemanticClassifier().fit(X, y + 3, protos)
    with pytest.raises(TypeError, match="integer"):
        SemanticClassifier().fit(X, y.astype(float), protos)
    y[:20] = 1
    with pytest.warns(SingularSylvesterWarning):  # 2 of 3 classes used and a dead unit
        pass_through = SemanticClassifier().fit(np.c_[X, np.zeros(40)], y, protos)
    with pytest.raises(ValueError, match="X has 6 features.*fitted on 7"):
        pass_through.predict(X)


def test_cpu_tridiagonal_path_equals_the_two_eigendecompositions():
    # the CPU "eig" solve reduces B to tridiagonal form only; the answer is the diagonal solve
    # in the eigenbases of A and B, W = U (C~ / (a_i + b_j)) V^T, written out here in numpy
    rng = np.random.default_rng(3)
    X, S, lam = rng.normal(size=(60, 12)), rng.normal(size=(60, 5)), 0.7
    A, B, C = S.T @ S, lam * X.T @ X, (1 + lam) * S.T @ X
    a, U = np.linalg.eigh(A)
    b, V = np.linalg.eigh(B)
    W_hand = U @ ((U.T @ C @ V) / (a[:, None] + b[None, :])) @ V.T
    W = fit_projection(X, S, lam, "eig")
    np.testing.assert_allclose(W, W_hand, rtol=1e-10, atol=1e-12)
    assert sylvester_residual(W, X, S, lam) < 1e-12
