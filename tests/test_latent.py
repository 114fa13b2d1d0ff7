"""Tests of ferlib.methods.latent_aug (class latent statistics, the z' sampler, batch
replacement)."""
import numpy as np
import pytest
import torch
from conftest import ConstantVAE

from ferlib.methods.latent_aug import (LatentAugmentation, augment_batch, class_latent_stats,
                            clean_epochs_from, matrix_sqrt, sample_latent)

SIGMA = torch.tensor([[2.0, 0.6, 0.0],
                      [0.6, 1.0, -0.3],
                      [0.0, -0.3, 0.5]], dtype=torch.float64)


def _cov(z):  # z (N, d) -> (d, d), divide by N - 1
    return torch.from_numpy(np.cov(z.double().numpy(), rowvar=False))


def test_correct_sampler_has_covariance_s_sigma():
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    z = sample_latent(mu, SIGMA, s=0.5, n=40000, generator=g)                # (n, d)
    assert z.shape == (40000, 3)
    assert torch.allclose(z.mean(0), mu, atol=0.02)
    assert torch.allclose(_cov(z), 0.5 * SIGMA, atol=0.03)


def test_literal_readings_have_documented_covariances():
    g = torch.Generator().manual_seed(1)
    mu = torch.zeros(3, dtype=torch.float64)
    s = 0.5
    z_lit = sample_latent(mu, SIGMA, s=s, n=40000, generator=g, method="literal")
    z_diag = sample_latent(mu, SIGMA, s=s, n=40000, generator=g, method="literal-diag")
    # literal: mu + s Sigma r -> Cov = s^2 Sigma^2 ; literal-diag: s^2 diag(Sigma)^2
    assert torch.allclose(_cov(z_lit), s ** 2 * SIGMA @ SIGMA, atol=0.03)
    assert torch.allclose(_cov(z_diag), torch.diag(s ** 2 * SIGMA.diagonal() ** 2), atol=0.03)
    # and they differ from the correct s * Sigma: e.g. Var(z_0) 0.25*(4+0.36)=1.09 vs 1.0
    assert abs(float(_cov(z_lit)[0, 0]) - 1.09) < 0.04
    assert abs(float((s * SIGMA)[0, 0]) - 1.09) > 0.05


def test_same_noise_literal_vs_correct_differ_but_s_zero_returns_mu():
    mu = torch.randn(4, 3, dtype=torch.float64)
    a = sample_latent(mu, SIGMA, 1.0, 2, torch.Generator().manual_seed(3), "correct")
    b = sample_latent(mu, SIGMA, 1.0, 2, torch.Generator().manual_seed(3), "literal")
    assert a.shape == b.shape == (4, 2, 3)
    assert not torch.allclose(a, b)
    z0 = sample_latent(mu, SIGMA, 0.0, 3, torch.Generator().manual_seed(3))
    assert torch.equal(z0, mu.unsqueeze(1).expand(4, 3, 3))


def test_ledoit_wolf_keeps_three_samples_in_64_dims_positive_definite():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(3 + 50, 64))
    labels = np.r_[np.zeros(3), np.ones(50)].astype(int)
    lw = class_latent_stats(mu, labels)
    plain = class_latent_stats(mu, labels, shrinkage=None)
    assert lw.ddof == 0 and plain.ddof == 1
    assert torch.linalg.eigvalsh(lw.covs[0].double()).min() > 1e-6
    assert lw.sqrt_method[0] == "cholesky"
    # the plain sample covariance of 3 points has rank 2: 62 (numerically) zero eigenvalues
    ev = torch.linalg.eigvalsh(plain.covs[0].double())
    assert int((ev > 1e-6).sum()) == 2
    # still no NaN: jitter or eigen square root
    assert plain.sqrt_method[0] in ("cholesky+jitter", "eigen")
    z = plain.sample(torch.from_numpy(mu[:3]).float(), [0, 0, 0], s=1.0, n=5,
                     generator=torch.Generator().manual_seed(0))
    assert z.shape == (3, 5, 64) and torch.isfinite(z).all()


def test_plain_covariance_divides_by_n_minus_one():
    mu = torch.tensor([[0.0], [2.0], [4.0], [10.0]])
    labels = torch.tensor([0, 0, 0, 1])
    with pytest.raises(ValueError, match="single sample"):
        class_latent_stats(mu, labels, shrinkage=None)
    st = class_latent_stats(mu, labels, shrinkage=None, min_samples="skip")
    assert st.covs[0, 0, 0].item() == pytest.approx(4.0)      # ((-2)^2 + 0 + 2^2) / (3 - 1)
    assert st.means[0, 0].item() == pytest.approx(2.0)
    assert not st.present[1]
    st0 = class_latent_stats(mu[:3], labels[:3], shrinkage=None, ddof=0)
    assert st0.covs[0, 0, 0].item() == pytest.approx(8 / 3)
    with pytest.raises(ValueError, match="no covariance"):
        st.sample(mu[:1], [1], s=1.0)


def test_matrix_sqrt_singular_and_indefinite_never_nan():
    v = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64)
    rank1 = torch.outer(v, v)                                 # PSD, singular
    L, _ = matrix_sqrt(rank1)
    assert torch.isfinite(L).all()
    assert torch.allclose(L @ L.T, rank1, atol=1e-3)
    # rounding-level negative eigenvalues are handled (jitter or the clamped eigen root) ...
    tiny = torch.diag(torch.tensor([1.0, -1e-14, 4.0], dtype=torch.float64))
    L, how = matrix_sqrt(tiny)
    assert how in ("cholesky+jitter", "eigen") and torch.isfinite(L).all()
    assert torch.allclose(L @ L.T, torch.diag(torch.tensor([1.0, 0.0, 4.0], dtype=torch.float64)), atol=1e-9)
    # ... but an indefinite matrix is not a covariance: refused, not clamped (issue 14)
    indefinite = torch.diag(torch.tensor([1.0, -1e-3, 4.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="not positive semi-definite: its smallest eigenvalue is -0.001"):
        matrix_sqrt(indefinite)


def test_sampler_errors():
    mu = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="strength"):
        sample_latent(mu, SIGMA, s=-0.1)
    with pytest.raises(ValueError, match="dimension mismatch"):
        sample_latent(torch.zeros(2, 4), SIGMA, s=1.0)
    with pytest.raises(ValueError, match="unknown sampling method"):
        sample_latent(mu, SIGMA, s=1.0, method="paper")
    with pytest.raises(ValueError, match="NaN"):
        matrix_sqrt(torch.full((2, 2), float("nan")))
    st = class_latent_stats(torch.randn(10, 3), torch.tensor([0] * 5 + [1] * 5), class_names=["a", "b"])
    with pytest.raises(ValueError, match="unknown class 5"):
        st.sample(mu, [5, 5], s=1.0)
    with pytest.raises(ValueError, match="unknown class 'c'"):
        st.sample(mu, "c", s=1.0)
    with pytest.raises(ValueError, match="dimension mismatch"):
        st.sample(torch.zeros(2, 4), [0, 1], s=1.0)
    with pytest.raises(ValueError, match="ddof"):
        class_latent_stats(torch.randn(10, 3), torch.zeros(10, dtype=torch.long), ddof=1)


def test_augment_batch_replaces_the_documented_share_and_keeps_labels():
    x = torch.rand(10, 1, 4, 4)
    y = torch.tensor([0, 1] * 5)
    st = class_latent_stats(torch.randn(20, 2), torch.tensor([0, 1] * 10))
    vae = ConstantVAE()
    x_new, mask = augment_batch(vae, st, x, y, s=1.0, aug_ratio=0.3, generator=torch.Generator().manual_seed(0))
    assert int(mask.sum()) == 3                               # round(0.3 * 10)
    assert torch.all(x_new[mask] == 0.5) and torch.equal(x_new[~mask], x[~mask])
    aug = LatentAugmentation(vae, st, s=1.0, aug_ratio=0.5, clean_epochs_from=clean_epochs_from(3, 1))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    for epoch in (1, 2, 3):
        loss, logits = aug(model, x, y, epoch)
        assert logits.shape == (10, 2) and torch.isfinite(loss)
    assert aug.replaced == 10 and aug.seen == 30                # epochs 1, 2 augment; 3 is clean
    with pytest.raises(ValueError, match="aug_ratio"):
        LatentAugmentation(vae, st, aug_ratio=1.5)
    with pytest.raises(ValueError, match="strength"):
        LatentAugmentation(vae, st, s=-1)


def test_chapter_sampler_check_and_paper_table():
    from ferlib.methods.latent_aug import experiment as ex

    chk = ex.sampler_check(s=0.5, n=20000, seed=0).set_index("method")
    assert (chk["max_err_vs_theory"] < 0.06).all()
    assert chk.loc["correct", "max_err_vs_s_sigma"] < 0.06
    # literal: 0.25 * tr(Sigma^2) = 0.25 * (4.36 + 1.45 + 0.34) = 1.5375 vs s tr(Sigma) = 1.75
    assert chk.loc["literal", "theory_total_var"] == pytest.approx(1.5375)
    assert chk.loc["literal", "max_err_vs_s_sigma"] > 0.1
    ours = ex.PAPER_TABLE1.assign(model=["smallcnn"] * 3 + ["DAN (smallcnn)"] * 3)
    both = ex.compare_with_paper(ours)
    assert both["paper accuracy"].tolist() == [0.7021, 0.7322, 0.7443, 0.8832, 0.8864, 0.8924]
    assert ex.default_clean_last(2) == 0 and ex.default_clean_last(60) == 12


def test_committed_table1_rows_and_paper_columns(tmp_path):
    from ferlib.methods.latent_aug.experiment import committed_table1
    from ferlib.records import write_record

    def rec(folder, method, acc, **params):
        write_record(folder, method=method, dataset="fer2013", split="PublicTest",
                     metrics={"accuracy": acc, "mAP": acc - 0.1}, seed=0, device="cpu",
                     wall_time=1.0, params={"profile": "cpu", "backbone": "smallcnn", **params})

    rec(tmp_path, "baseline", 0.40)
    rec(tmp_path, "latent-aug", 0.42)
    rec(tmp_path / "cpu", "dan+latent-aug", 0.45)
    rec(tmp_path / "cells", "baseline", 0.10, imbalance_ratio=10.0)   # not Table I
    t = committed_table1(tmp_path)[("fer2013", "cpu")]
    assert list(zip(t["model"], t["method"])) == [("smallcnn", "none"), ("smallcnn", "latent-aug"),
                                                  ("DAN (smallcnn)", "latent-aug")]
    assert list(t["accuracy"]) == [0.40, 0.42, 0.45]
    assert list(t["paper accuracy"]) == pytest.approx([0.7021, 0.7443, 0.8924])


def test_two_sample_class_falls_back_from_singular_ledoit_wolf_to_oas():
    from sklearn.covariance import LedoitWolf
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(2 + 40, 16))
    labels = np.r_[np.zeros(2), np.ones(40)].astype(int)
    lw = LedoitWolf().fit(mu[:2])                      # shrinkage 0: rank 1, not positive definite
    assert lw.shrinkage_ == 0 and np.linalg.matrix_rank(lw.covariance_) == 1
    st = class_latent_stats(mu, labels)
    assert st.estimator == ["oas (ledoit-wolf singular)", "ledoit-wolf"]
    # sklearn's OAS on a rank-1 sample covariance of n = 2 in d = 16: 2 d / ((n + 1)(d - 1)) = 32/45
    assert st.shrinkage_amount[0] == pytest.approx(32 / 45)
    assert torch.linalg.eigvalsh(st.covs[0].double()).min() > 1e-3
    assert st.sqrt_method[0] == "cholesky"
