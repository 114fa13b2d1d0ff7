"""EAN (Du et al.) Eq. 3-8 pinned on a hand-made batch of 4 features, the warm-up schedule,
inference modes, bad input, and the invariant feature generator (ferlib.methods.ean.model /
invariant).

The hand batch: 2-D vectors at 0, 60, 120 and 180 degrees with different norms, so

    C_s = [[ 1,  .5, -.5, -1 ],
           [ .5,  1,  .5, -.5],
           [-.5,  .5,  1,  .5],
           [-1, -.5,  .5,  1 ]]

With tau1 = 0.4 the graph is the path 0-1-2-3; tau2 = -0.8 adds the edge 0-3 (a cycle).
"""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from ferlib.methods.ean.model import (EAN, EANConfig, EANLoss, GCN, adj_loss, adjacency,
                               cosine_similarity_matrix, ean_loss_fn, ean_predict_batch,
                               ean_predict_single, graph_active, hard_adjacency, label_mask,
                               normalized_adjacency, soft_adjacency)
from ferlib.methods.ean.invariant import (InvariantBackbone, InvariantConfig, InvariantLoss,
                                     grad_reverse, nuisance_targets, pair_consistency)

S3 = math.sqrt(3.0)


def hand_features():
    return torch.tensor([[2.0, 0.0],                     # 0 deg, norm 2
                         [0.5 * 3, S3 / 2 * 3],          # 60 deg, norm 3
                         [-0.5, S3 / 2],                 # 120 deg, norm 1
                         [-4.0, 0.0]])                   # 180 deg, norm 4


CS = torch.tensor([[1.0, 0.5, -0.5, -1.0],
                   [0.5, 1.0, 0.5, -0.5],
                   [-0.5, 0.5, 1.0, 0.5],
                   [-1.0, -0.5, 0.5, 1.0]])
PATH = torch.tensor([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], dtype=torch.float32)


from conftest import TinyBackbone  # noqa: E402


# ------------------------------------------------------------------ Eq. 3
def test_cosine_matrix_hand_batch():
    cs = cosine_similarity_matrix(hand_features())
    torch.testing.assert_close(cs, CS, atol=1e-6, rtol=0)


def test_cosine_zero_row_is_zero_not_nan():
    h = hand_features()
    h[2] = 0.0
    cs = cosine_similarity_matrix(h)
    assert torch.isfinite(cs).all()
    assert (cs[2] == 0).all() and (cs[:, 2] == 0).all()       # its self-similarity too
    torch.testing.assert_close(cs[[0, 1, 3]][:, [0, 1, 3]], CS[[0, 1, 3]][:, [0, 1, 3]],
                               atol=1e-6, rtol=0)
    a = hard_adjacency(cs, 0.4)
    assert a[2].sum() == 0 and a[:, 2].sum() == 0              # an isolated node


def test_cosine_matches_torch_on_random_batch():
    h = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    ref = torch.nn.functional.cosine_similarity(h[:, None, :], h[None, :, :], dim=2)
    torch.testing.assert_close(cosine_similarity_matrix(h), ref, atol=1e-6, rtol=0)


# ------------------------------------------------------------------ Eq. 4
def test_single_and_two_threshold_adjacency():
    torch.testing.assert_close(hard_adjacency(CS, 0.4), PATH)
    cycle = PATH.clone()
    cycle[0, 3] = cycle[3, 0] = 1
    torch.testing.assert_close(hard_adjacency(CS, 0.4, -0.8), cycle)
    # tau1 = 0.5 keeps the 0.5 pairs (>=), tau2 = -0.5 adds all the -0.5 and -1 pairs
    assert hard_adjacency(CS, 0.5).sum() == 6
    assert hard_adjacency(CS, 0.5, -0.5).sum() == 12           # every off-diagonal pair


def test_diagonal_choice():
    assert torch.diagonal(hard_adjacency(CS, 0.4)).sum() == 0  # default: no self-edges in A
    a_lit = hard_adjacency(CS, 0.4, self_loops=True)           # the literal Eq. 4
    torch.testing.assert_close(a_lit, PATH + torch.eye(4))
    # self-loops then come twice: A + I has 2 on the diagonal
    a_hat = normalized_adjacency(a_lit)
    deg = torch.tensor([3.0, 4.0, 4.0, 3.0])
    torch.testing.assert_close(torch.diagonal(a_hat), 2 / deg)
    assert torch.diagonal(label_mask(torch.tensor([0, 0, 1, 1]))).sum() == 0
    assert torch.diagonal(label_mask(torch.tensor([0, 0, 1, 1]), self_loops=True)).sum() == 4


def test_soft_adjacency_values_and_limit():
    s = soft_adjacency(CS, 0.4, temperature=0.05)
    assert s[0, 1].item() == pytest.approx(1 / (1 + math.exp(-2.0)), abs=1e-6)   # sigmoid(2)
    assert s[0, 2].item() == pytest.approx(1 / (1 + math.exp(18.0)), abs=1e-9)   # sigmoid(-18)
    assert torch.diagonal(s).sum() == 0
    cold = soft_adjacency(CS, 0.4, -0.8, temperature=1e-3)
    torch.testing.assert_close(cold, hard_adjacency(CS, 0.4, -0.8), atol=1e-6, rtol=0)
    two = soft_adjacency(CS, 0.4, -0.8, temperature=0.5)
    assert (two <= 1).all() and (two >= 0).all()


def test_hard_threshold_has_no_gradient_soft_and_ste_do():
    y = torch.tensor([0, 0, 0, 1])
    grads = {}
    for mode in ("hard", "soft", "ste"):
        h = hand_features().requires_grad_(True)
        a = adjacency(cosine_similarity_matrix(h), 0.4, mode=mode, temperature=0.1)
        loss = adj_loss(a, label_mask(y))
        if mode == "hard":
            assert not loss.requires_grad                      # Eq. 4 as printed: no gradient
            continue
        loss.backward()
        grads[mode] = h.grad.abs().sum().item()
        if mode == "ste":                                      # value = the hard graph
            torch.testing.assert_close(a.detach(), PATH)
    assert grads["soft"] > 0 and grads["ste"] > 0


def test_default_graph_is_the_printed_hard_one_so_adj_loss_trains_nothing():
    # chosen on validation (tests/benchmarks/results/ean_graph_mode_cpu.md): with the default
    # config the Adj_loss term is a number without a gradient, the cross-entropy still trains
    # the backbone through H, and "ste" gives Adj_loss its gradient back
    assert EANConfig().mode == "hard"
    torch.manual_seed(0)
    x, y = torch.randn(8, 16), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    for mode, adj_has_grad in (("hard", False), ("ste", True)):
        model = EAN(TinyBackbone(), 2, EANConfig(tau1=0.0, mode=mode, warmup_epochs=0))
        loss_fn = EANLoss()
        loss, _ = loss_fn(model, x, y, epoch=1)
        assert model.last["A"] is not None and loss_fn.last["adj"] > 0
        adj = adj_loss(model.last["A"], label_mask(y), model.config.alpha, normalize=True)
        assert adj.requires_grad is adj_has_grad
        loss.backward()
        assert model.backbone.body[1].weight.grad.abs().sum() > 0       # CE through H


# ------------------------------------------------------------------ Eq. 5-6
def test_mask_and_loss_hand_values():
    y = torch.tensor([0, 0, 0, 1])
    m = label_mask(y)
    expect = torch.tensor([[0, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.float32)
    torch.testing.assert_close(m, expect)
    a = hard_adjacency(CS, 0.4)
    # sum(A_mask * A) = 4 (pairs 0-1, 1-2 both ways), sum(A_mask) = 6
    assert adj_loss(a, m, alpha=0.1).item() == pytest.approx(0.1 * (4 - 6) ** 2)       # 0.4
    assert adj_loss(a, m, alpha=0.1, normalize=True).item() == pytest.approx(0.4 / 36)
    # one-sided: a graph with every edge costs nothing, although it links different labels
    full = torch.ones(4, 4) - torch.eye(4)
    assert adj_loss(full, m).item() == 0.0
    # no same-label pair: literal 0, normalised 0 (not 0/0)
    m0 = label_mask(torch.tensor([0, 1, 2, 3]))
    assert adj_loss(a, m0, normalize=True).item() == 0.0


def test_literal_loss_grows_like_batch_to_the_fourth():
    def worst(b):   # every sample the same label, no edge: (0 - b(b-1))^2 * alpha
        y = torch.zeros(b, dtype=torch.long)
        return adj_loss(torch.zeros(b, b), label_mask(y), alpha=1.0)
    assert worst(8).item() == (8 * 7) ** 2
    assert worst(16).item() / worst(8).item() == pytest.approx((16 * 15 / (8 * 7)) ** 2)
    y = torch.zeros(16, dtype=torch.long)
    assert adj_loss(torch.zeros(16, 16), label_mask(y), alpha=1.0, normalize=True).item() == 1.0


# ------------------------------------------------------------------ Eq. 7-8
def test_normalised_adjacency_hand_values():
    a_hat = normalized_adjacency(PATH)               # degrees of A + I: 2, 3, 3, 2
    r6 = 1 / math.sqrt(6)
    expect = torch.tensor([[1 / 2, r6, 0, 0],
                           [r6, 1 / 3, 1 / 3, 0],
                           [0, 1 / 3, 1 / 3, r6],
                           [0, 0, r6, 1 / 2]])
    torch.testing.assert_close(a_hat, expect)
    row = normalized_adjacency(PATH, "row")
    torch.testing.assert_close(row.sum(1), torch.ones(4))
    torch.testing.assert_close(row[1], torch.tensor([1 / 3, 1 / 3, 1 / 3, 0]))
    cycle = hard_adjacency(CS, 0.4, -0.8)
    torch.testing.assert_close(normalized_adjacency(cycle), (cycle + torch.eye(4)) / 3)


def test_gcn_with_identity_is_exactly_the_mlp():
    torch.manual_seed(0)
    gcn = GCN(5, 3, hidden=7)
    h = torch.randn(6, 5)
    mlp = gcn.as_mlp()
    out_i = gcn(h, torch.eye(6))                     # A = I: A_hat = 2I / 2 = I
    out_0 = gcn(h, torch.zeros(6, 6))                # A = 0 (our diagonal convention)
    out_none = gcn(h, None)
    assert torch.equal(out_i, mlp(h)) and torch.equal(out_0, mlp(h)) and torch.equal(out_none, mlp(h))
    # and the same as an nn.Linear MLP with copied weights
    ref = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    for lin, layer in zip((ref[0], ref[2]), gcn.layers):
        lin.weight.data.copy_(layer.weight.data)
        lin.bias.data.copy_(layer.bias.data)
    torch.testing.assert_close(out_i, ref(h))


def test_gcn_layer_propagates_on_hand_graph():
    gcn = GCN(2, 2, num_layers=1)
    with torch.no_grad():
        gcn.layers[0].weight.copy_(torch.eye(2))
        gcn.layers[0].bias.zero_()
    h = hand_features()
    torch.testing.assert_close(gcn(h, PATH), normalized_adjacency(PATH) @ h)


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("tau1,tau2", [(1.5, None), (-1.2, None), (0.5, -1.01), (0.3, 0.3), (0.2, 0.6)])
def test_bad_thresholds(tau1, tau2):
    with pytest.raises(ValueError, match="tau"):
        hard_adjacency(CS, tau1, tau2)
    with pytest.raises(ValueError, match="tau"):
        EANConfig(tau1=tau1, tau2=tau2)


def test_batch_of_one_and_bad_features():
    with pytest.raises(ValueError, match="batch of 1"):
        cosine_similarity_matrix(torch.ones(1, 4))
    with pytest.raises(ValueError, match="batch of 1"):
        label_mask(torch.tensor([3]))
    with pytest.raises(ValueError, match="2-D"):
        cosine_similarity_matrix(torch.ones(4))
    bad = hand_features()
    bad[1, 0] = float("nan")
    with pytest.raises(ValueError, match="row 1"):
        cosine_similarity_matrix(bad)
    with pytest.raises(ValueError, match="non-negative"):
        normalized_adjacency(-PATH)


# ------------------------------------------------------------------ model, schedule, inference
def make_ean(warmup=2, **kw):
    torch.manual_seed(0)
    return EAN(TinyBackbone(), 3, EANConfig(tau1=0.3, warmup_epochs=warmup, **kw))


def test_warmup_schedule():
    assert [graph_active(e, 2) for e in (1, 2, 3, 4)] == [False, False, True, True]
    assert graph_active(1, 0) and graph_active(None, 50)
    model = make_ean(warmup=2)
    x = torch.rand(8, 1, 4, 4)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    loss_fn = EANLoss()
    for epoch in (1, 2):
        loss, logits = loss_fn(model, x, y, epoch)
        assert model.last["A"] is None and loss_fn.last["adj"] == 0.0
        ce = nn.functional.cross_entropy(logits, y)
        assert loss.item() == pytest.approx(ce.item())
    loss, logits = loss_fn(model, x, y, 3)
    assert model.last["A"] is not None and loss_fn.last["adj"] > 0
    a = model.last["A"].detach()
    expect = 0.1 * ((label_mask(y) * a).sum() - label_mask(y).sum()) ** 2 / label_mask(y).sum() ** 2
    assert loss_fn.last["adj"] == pytest.approx(expect.item(), rel=1e-5)
    loss2, _ = ean_loss_fn(model, x, y, 3)
    assert loss2.item() == pytest.approx(loss.item(), rel=1e-6)


def test_inference_single_vs_batch():
    model = make_ean(warmup=0).eval()
    x = torch.rand(6, 1, 4, 4)
    with torch.no_grad():
        single = ean_predict_single(model, x)
        one_by_one = torch.cat([ean_predict_single(model, x[i:i + 1]) for i in range(6)])
        torch.testing.assert_close(single, one_by_one)                   # batch-independent
        h = model.backbone.forward_features(x)
        assert torch.equal(single, model.head.as_mlp()(h))                # A = I: the MLP
        batch = ean_predict_batch(model, x)
        _, a = model.build_graph(h)
        torch.testing.assert_close(batch, model.head(h, a))
        assert a.sum() > 0 and not torch.allclose(batch, single)          # the graph matters
        # a batch of one falls back to A = I instead of failing
        torch.testing.assert_close(ean_predict_batch(model, x[:1]), single[:1])


def test_fit_integration():
    train_mod = pytest.importorskip("ferlib.train")
    pytest.importorskip("ferlib.metrics", reason="the engine's metrics module is not written yet")
    from ferlib.data.dataset import FaceDataset
    rng = np.random.default_rng(0)
    ds = FaceDataset(rng.integers(0, 255, (48, 4, 4), dtype=np.uint8), rng.integers(0, 3, 48),
                     ("a", "b", "c"), "toy", "train")
    model = make_ean(warmup=1)
    res = train_mod.fit(model, ds, ds.subset(range(16), "val"), epochs=2, batch_size=16, lr=1e-2,
                        loss_fn=EANLoss(), predict_fn=ean_predict_single, device="cpu",
                        progress=False)
    assert len(res.history) == 2 and np.isfinite(res.history["train_loss"]).all()


# ------------------------------------------------------------------ invariant generator
def test_gradient_reversal():
    x = torch.randn(3, 2, requires_grad=True)
    (grad_reverse(x, 0.5) * torch.tensor([1.0, 2.0])).sum().backward()
    torch.testing.assert_close(x.grad, -0.5 * torch.tensor([[1.0, 2.0]]).expand(3, 2))


def test_invariant_generator_starts_as_identity_and_loss_parts():
    torch.manual_seed(0)
    inv = InvariantBackbone(TinyBackbone(), 3, InvariantConfig(pair_batch=4))
    x = torch.rand(6, 1, 4, 4)
    torch.testing.assert_close(inv.forward_features(x), inv.backbone.forward_features(x))
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert pair_consistency(a, 3 * a).item() == pytest.approx(0.0, abs=1e-6)
    assert pair_consistency(a, a.flip(1)).item() == pytest.approx(1.0)
    nuis = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 1, 1], [0, 0, 0], [1, 0, 1]], np.float32)
    loss_fn = InvariantLoss(nuis, pairs=(torch.rand(5, 1, 4, 4), torch.rand(5, 1, 4, 4)))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    loss, logits = loss_fn(inv, x, y, 1, idx=torch.arange(6))
    assert logits.shape == (6, 3) and loss_fn.last["adv"] > 0 and loss_fn.last["pair"] >= 0
    loss.backward()
    assert inv.discriminator.net[0].weight.grad.abs().sum() > 0
    assert inv.generator.net[2].weight.grad.abs().sum() > 0


def test_nuisance_targets():
    class DS:
        name = "fake"
        extras = {"pose": np.array([[0, 5.0], [0, -40.0], [0, 25.0]]),
                  "occluded": np.array([False, True, False]),
                  "illumination": np.array([1.0, 0.5, 0.9])}
    t = nuisance_targets(DS())
    np.testing.assert_array_equal(t, [[0, 0, 0], [1, 1, 1], [1, 0, 0]])
    DS.extras = {"pose": DS.extras["pose"]}
    with pytest.raises(ValueError, match="occluded"):
        nuisance_targets(DS())


def test_batch_centring_spreads_cosines():
    h = torch.tensor([[1.0, 10.0], [-1.0, 10.0], [0.5, 10.0]])
    raw = cosine_similarity_matrix(h)
    assert raw[0, 1] > 0.98                                    # a shared direction dominates
    cen = cosine_similarity_matrix(h, center=True)             # rows (1,0), (-1,0), (0.5,0) minus mean
    assert cen[0, 1].item() == pytest.approx(-1.0, abs=1e-6)
    assert cen[0, 2].item() == pytest.approx(1.0, abs=1e-6)


# ------------------------------------------------------------------ chapter helpers
def test_edge_stats_sweep_and_hand_example():
    from ferlib.methods.ean import experiment as exp
    st = exp.edge_stats(PATH, [0, 0, 0, 1])          # edges 01, 12, 23; same pairs 01, 02, 12
    assert st["precision"] == pytest.approx(2 / 3) and st["recall"] == pytest.approx(2 / 3)
    assert st["edges"] == 3 and st["mean_degree"] == pytest.approx(1.5)
    soft = exp.edge_stats(0.5 * PATH, [0, 0, 0, 1])  # soft edges count with their weight
    assert soft["precision"] == pytest.approx(2 / 3) and soft["recall"] == pytest.approx(1 / 3)
    sweep = exp.threshold_sweep(exp.HAND_FEATURES, exp.HAND_LABELS, taus=[-1.0, 0.4, 0.6],
                                center=False)
    assert sweep["edges"].tolist() == [6, 3, 0]
    assert exp.choose_tau(sweep) == 0.4     # F1 2/3 (complete graph), 2/3, 0: a tie goes to the sparser graph
    hand = exp.hand_example()
    assert hand["adj_loss"] == pytest.approx(0.4) and hand["adj_loss_norm"] == pytest.approx(0.4 / 36)
    f, y = exp.stratified_batch(np.random.default_rng(0).normal(size=(50, 3)), np.arange(50) % 5, n=20)
    assert f.shape == (20, 3) and (np.diff(y) >= 0).all() and np.bincount(y).tolist() == [4] * 5


def test_load_noisy_records_reads_the_comparison_grid(tmp_path):
    from ferlib.methods.ean.experiment import load_noisy_records
    from ferlib.records import write_record

    def rec(folder, method, rate, acc, **params):
        write_record(folder, method=method, dataset="fer2013", split="PublicTest",
                     metrics={"accuracy": acc}, seed=0, device="cpu", wall_time=1.0,
                     params={"profile": "cpu", "noise_rate": rate, **params})

    cell = tmp_path / "cells" / "irnat_noise0.1"
    rec(tmp_path, "ean", 0.0, 0.50)
    rec(cell, "ean", 0.1, 0.45)
    rec(cell, "baseline", 0.1, 0.40, imbalance_ratio=None)   # the grid's baseline: used
    rec(tmp_path, "baseline", 0.2, 0.30)
    rec(tmp_path, "ean:baseline", 0.2, 0.35)                 # the chapter's own: preferred
    rec(tmp_path / "cells" / "ir10_noise0", "baseline", 0.0, 0.9, imbalance_ratio=10.0)  # left out
    got = load_noisy_records(tmp_path).set_index(["method", "noise_rate"])["accuracy"].to_dict()
    assert got == {("baseline", 0.1): 0.40, ("baseline", 0.2): 0.35, ("ean", 0.0): 0.50,
                   ("ean", 0.1): 0.45}


# ------------------------------------------------------------------ threshold tuning
class _NoTestSplits:
    """Splits whose test split cannot be read: the tuning must never touch it."""

    def __init__(self, train, val):
        self.train, self.val = train, val

    @property
    def test(self):
        raise AssertionError("threshold tuning read the test split")


def test_tuning_reads_validation_only_and_picks_by_accuracy():
    from ferlib.data.dataset import FaceDataset
    from ferlib.methods.ean import experiment as exp
    rng = np.random.default_rng(0)
    mk = lambda n, split: FaceDataset(rng.integers(0, 255, (n, 16, 16), dtype=np.uint8),
                                      np.arange(n) % 3, ("a", "b", "c"), "toy", split)
    splits = _NoTestSplits(mk(48, "train"), mk(24, "val"))
    with pytest.raises(AssertionError):
        splits.test
    tuning = exp.tune_thresholds(splits, "smoke", noise_rate=0.2, tau1_grid=(0.0, 0.5),
                                 tau2_grid=(-0.5, 0.7), epochs=2, device="cpu")
    t = tuning.table
    # two single-threshold runs, then one two-threshold run at the best tau1 (0.7 > tau1 is skipped)
    assert list(t["tau2"].isna()) == [True, True, False]
    best1 = t.loc[t["tau2"].isna()].sort_values("tau1", ascending=False)
    best1 = float(best1.loc[best1["val_accuracy"].idxmax(), "tau1"])
    assert t["tau1"].iloc[2] == best1 and t["tau2"].iloc[2] == -0.5
    top = t["val_accuracy"].max()
    assert t.loc[(t["tau1"] == tuning.tau1) & ((t["tau2"].isna()) if tuning.tau2 is None
                                               else (t["tau2"] == tuning.tau2)),
                 "val_accuracy"].iloc[0] == top
    assert ((t["val_accuracy"] >= 0) & (t["val_accuracy"] <= 1)).all()


def test_one_default_per_threshold():
    import inspect

    from ferlib.methods.ean import model as ean_mod
    from ferlib.methods.ean import experiment as exp
    assert EANConfig().tau1 == ean_mod.DEFAULT_TAU1 and EANConfig().tau2 == ean_mod.DEFAULT_TAU2
    sig = inspect.signature(exp.noisy_label_experiment).parameters
    assert sig["tau1"].default is None and sig["tau2"].default is ean_mod.DEFAULT_TAU2


def test_noisy_table_without_the_paper_column():
    import pandas as pd

    from ferlib.methods.ean import experiment as exp

    results = pd.DataFrame({"dataset": ["synthfacs"] * 2, "method": ["ean", "scn"],
                            "noise_rate": [0.1, 0.1], "accuracy": [0.5, 0.4],
                            "accuracy_last5": [0.45, 0.35], "single_image_accuracy": [0.55, None]})
    live = exp.noisy_table(results, paper=None)
    assert not any(c.startswith("paper") for c in live.columns)
    assert live.set_index("method").loc["ean", "ours_single_image"] == pytest.approx(55.0)
    assert "paper_rafdb" in exp.noisy_table(results).columns


def test_one_default_for_alpha():
    import inspect

    from ferlib.methods.ean import model as ean_mod
    from ferlib.methods.ean import experiment as exp
    assert ean_mod.DEFAULT_ALPHA == 0.1 and EANConfig().alpha == ean_mod.DEFAULT_ALPHA  # paper's
    for fn in (ean_mod.adj_loss, exp.noisy_label_experiment, exp.tune_thresholds):
        assert inspect.signature(fn).parameters["alpha"].default is ean_mod.DEFAULT_ALPHA, fn


def test_live_sizes_follow_the_profile_field_not_its_name():
    from ferlib.config import get_profile
    from ferlib.methods.ean import experiment as exp
    smoke, cpu = get_profile("smoke"), get_profile("cpu")
    assert smoke.short_live_runs and not cpu.short_live_runs and not get_profile("full").short_live_runs
    assert exp.live_sizes("smoke") == {"train_cap": None, "n_test": 140,
                                       "tau1_grid": (0.6, 0.8), "tau2_grid": (-0.8,)}
    assert exp.live_sizes(cpu)["n_test"] is None
    assert exp.live_sizes(cpu.replace(short_live_runs=True))["n_test"] == 140
    assert exp.live_sizes(smoke.replace(short_live_runs=False))["tau1_grid"] == exp.TAU1_GRID


def test_graph_and_relabelling_start_half_way():
    """EAN's graph starts half-way through the smoke and cpu runs (full: the paper's 50 epochs)
    and SCN relabels from the middle of the run (tests/benchmarks/bench_noisy_schedule.py
    measures why)."""
    from ferlib.config import PROFILES
    from ferlib.methods.ean import experiment as exp
    from ferlib.methods.ean import model as ean_mod
    assert {n: (p.warmup_epochs, p.epochs) for n, p in PROFILES.items()} == {
        "smoke": (4, 8), "cpu": (10, 20), "full": (50, 60)}
    assert [exp.scn_relabel_epoch(e) for e in (1, 2, 3, 8, 20, 60)] == [2, 2, 2, 5, 11, 31]
    assert EANConfig().gcn_layers == 1 and ean_mod.DEFAULT_TAU1 == 0.8
