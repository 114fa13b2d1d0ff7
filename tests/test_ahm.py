"""ferlib.methods.ahm: priority vectors, consistency ratios, the hierarchy file and the semantic
prototypes, pinned with the paper's Table 2 worked by hand (chapter 03_ahm_semantic_space)."""
import json
import warnings

import numpy as np
import pytest

from ferlib.methods.ahm import (PAPER_AUS, RANDOM_INDEX, ConsistencyWarning, consistency_ratio,
                        format_judgment, lambda_max, load_hierarchy, make_reciprocal,
                        paper_table2, priority_vector, semantic_columns, semantic_prototypes)

# Table 2 of the paper (Fear), as printed.
FEAR_B = [[1, 1 / 5, 1 / 3], [5, 1, 3], [3, 1 / 3, 1]]          # over C1, C3, C4
FEAR_C1 = [[1, 3, 1], [1 / 3, 1, 1 / 3], [1, 3, 1]]             # over AU1, AU2, AU4
FEAR_C3_PRINTED = [[1, 5], [1 / 3, 1]]                          # over AU5, AU7 (not reciprocal)


# --- Table 2 by hand ---------------------------------------------------------------------------
def test_table2_B_geometric_by_hand():
    # row products 1/15, 15, 1 -> cube roots 15^(-1/3), 15^(1/3), 1
    g = np.array([15 ** (-1 / 3), 15 ** (1 / 3), 1.0])
    expect = g / g.sum()
    np.testing.assert_allclose(expect, [0.104729, 0.636986, 0.258285], atol=1e-6)
    np.testing.assert_allclose(priority_vector(FEAR_B), expect, rtol=1e-12)


def test_table2_B_paper_square_root_differs():
    # the printed Eq. 2 takes the square root: sqrt(1/15), sqrt(15), 1
    g = np.array([15 ** -0.5, 15 ** 0.5, 1.0])
    np.testing.assert_allclose(priority_vector(FEAR_B, "paper"), g / g.sum(), rtol=1e-12)
    np.testing.assert_allclose(g / g.sum(), [0.050320, 0.754794, 0.194887], atol=1e-6)
    # ... and the principal eigenvector equals the geometric mean for any 3 x 3 reciprocal matrix
    np.testing.assert_allclose(priority_vector(FEAR_B, "eigen"), priority_vector(FEAR_B),
                               rtol=1e-10)


def test_table2_B_consistency_closed_form():
    # for a 3 x 3 reciprocal matrix lambda_max = 1 + x^(1/3) + x^(-1/3), x = R12 R23 / R13
    x = (1 / 5) * 3 / (1 / 3)
    lam = 1 + x ** (1 / 3) + x ** (-1 / 3)
    assert lambda_max(FEAR_B) == pytest.approx(lam, rel=1e-12)
    assert lam == pytest.approx(3.038511, abs=1e-6)
    assert consistency_ratio(FEAR_B) == pytest.approx((lam - 3) / 2 / 0.58, rel=1e-10)
    assert consistency_ratio(FEAR_B) == pytest.approx(0.0332, abs=1e-4)


def test_table2_C1_is_consistent():
    # R_ij = v_i / v_j with v = (3, 1, 3): weights 3/7, 1/7, 3/7 by geometric and eigen, CR = 0
    for m in ("geometric", "eigen"):
        np.testing.assert_allclose(priority_vector(FEAR_C1, m), [3 / 7, 1 / 7, 3 / 7], rtol=1e-10)
    s = np.array([3 ** 0.5, 1 / 3, 3 ** 0.5])  # sqrt(3), sqrt(1/9), sqrt(3)
    np.testing.assert_allclose(priority_vector(FEAR_C1, "paper"), s / s.sum(), rtol=1e-12)
    assert consistency_ratio(FEAR_C1) == pytest.approx(0.0, abs=1e-12)


def test_table2_C3_two_readings():
    with pytest.raises(ValueError, match="not reciprocal.*R\\[0, 1\\] = 5.*R\\[1, 0\\] = 1/3"):
        consistency_ratio(FEAR_C3_PRINTED, "Fear/C3")
    with pytest.raises(ValueError, match="not reciprocal"):
        priority_vector(FEAR_C3_PRINTED)
    upper = make_reciprocal(FEAR_C3_PRINTED, "upper")  # [[1, 5], [1/5, 1]]
    lower = make_reciprocal(FEAR_C3_PRINTED, "lower")  # [[1, 3], [1/3, 1]]
    np.testing.assert_allclose(upper, [[1, 5], [0.2, 1]])
    np.testing.assert_allclose(lower, [[1, 3], [1 / 3, 1]])
    np.testing.assert_allclose(priority_vector(upper), [5 / 6, 1 / 6], rtol=1e-12)
    np.testing.assert_allclose(priority_vector(lower), [3 / 4, 1 / 4], rtol=1e-12)
    # the literal matrix: sqrt(5) and sqrt(1/3) normalised
    lit = priority_vector(FEAR_C3_PRINTED, check_reciprocal=False)
    np.testing.assert_allclose(lit, np.array([5 ** 0.5, 3 ** -0.5]) / (5 ** 0.5 + 3 ** -0.5))
    assert paper_table2("upper")["C3"][1, 0] == pytest.approx(0.2)
    assert paper_table2("lower")["C3"][0, 1] == pytest.approx(3.0)
    assert paper_table2("printed")["C3"][1, 0] == pytest.approx(1 / 3)


def test_fear_prototype_by_hand():
    h = load_hierarchy()
    g = np.array([15 ** (-1 / 3), 15 ** (1 / 3), 1.0])
    wC1, wC3, wC4 = g / g.sum()
    want = {"C1:AU1": wC1 * 3 / 7, "C1:AU2": wC1 / 7, "C1:AU4": wC1 * 3 / 7,
            "C3:AU5": wC3 * 5 / 6, "C3:AU7": wC3 / 6, "C4:AU20": wC4}
    cols = semantic_columns(h, "path")
    row = semantic_prototypes(h, "path")[h.classes.index("Fear")]
    got = {c: v for c, v in zip(cols, row) if v != 0}
    assert set(got) == set(want)
    for c in want:
        assert got[c] == pytest.approx(want[c], rel=1e-12)
    assert got["C3:AU5"] == pytest.approx(0.530821, abs=1e-6)


# --- priority vectors and CR in general ------------------------------------------------------
def test_priority_vector_consistent_matrix_recovers_weights():
    v = np.array([0.5, 0.2, 0.2, 0.1])
    R = v[:, None] / v[None, :]
    for m in ("geometric", "eigen"):
        np.testing.assert_allclose(priority_vector(R, m), v, rtol=1e-10)
    assert not np.allclose(priority_vector(R, "paper"), v)  # sqrt is wrong for n > 2
    assert consistency_ratio(R) == pytest.approx(0.0, abs=1e-10)


def test_eigen_differs_from_geometric_for_n4_and_is_eigenvector():
    R = make_reciprocal([[1, 3, 5, 1], [1, 1, 2, 7], [1, 1, 1, 2], [1, 1, 1, 1]], "upper")
    w = priority_vector(R, "eigen")
    lam = lambda_max(R)
    np.testing.assert_allclose(R @ w, lam * w, rtol=1e-9)
    assert lam > 4
    assert np.abs(w - priority_vector(R)).max() > 1e-3


def test_paper_equals_geometric_for_n2():
    R = [[1, 7], [1 / 7, 1]]
    np.testing.assert_allclose(priority_vector(R, "paper"), priority_vector(R))
    np.testing.assert_allclose(priority_vector(R), [7 / 8, 1 / 8])


def test_cr_warning_names_node_and_value():
    R = make_reciprocal([[1, 9, 1 / 9], [1, 1, 9], [1, 1, 1]], "upper")  # cyclic: very inconsistent
    with pytest.warns(ConsistencyWarning, match="Sad/B.*consistency ratio"):
        cr = consistency_ratio(R, "Sad/B")
    assert cr > 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        consistency_ratio(R, "Sad/B", warn=False)
        consistency_ratio(FEAR_B, "Fear/B")  # 0.033: no warning


def test_random_index_table():
    assert [RANDOM_INDEX[n] for n in range(1, 11)] == [0, 0, 0.58, 0.90, 1.12, 1.24, 1.32, 1.41,
                                                       1.45, 1.49]
    with pytest.raises(ValueError, match="n <= 10"):
        consistency_ratio(np.ones((11, 11)))


@pytest.mark.parametrize("bad,msg", [
    ([[1, -2], [-0.5, 1]], "positive"),
    ([[1, 0], [1, 1]], "positive"),
    ([[1, 2, 3], [0.5, 1, 1]], "square"),
    ([[2, 2], [0.5, 1]], "diagonal"),
    ([[1, np.nan], [1, 1]], "non-finite"),
])
def test_bad_matrices_rejected(bad, msg):
    with pytest.raises(ValueError, match=msg):
        consistency_ratio(bad, "X/B")
    with pytest.raises(ValueError, match=msg):
        priority_vector(bad)


def test_unknown_method():
    with pytest.raises(ValueError, match="method"):
        priority_vector(FEAR_B, "harmonic")


def test_format_judgment():
    assert [format_judgment(x) for x in (0.2, 3.0, 1 / 3, 1)] == ["1/5", "3", "1/3", "1"]


# --- the hierarchy file ---------------------------------------------------------------------------
def test_hierarchy_aus_match_paper_with_fear_au20():
    h = load_hierarchy()
    assert h.classes == ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise")
    for e, aus in PAPER_AUS.items():
        assert h.expressions[e].all_aus == tuple(sorted(aus))
    assert 20 in h.expressions["Fear"].all_aus
    assert len(h.regions) == 4
    # the file stores the paper's Table 2 for Fear (C3 by its upper triangle)
    t2 = paper_table2("upper")
    for node in ("B", "C1", "C3"):
        np.testing.assert_allclose(h.matrix("Fear", node), t2[node])
    assert h.children("Fear", "B") == ("C1", "C3", "C4")


def test_every_node_consistent_and_prototypes_sum_to_one():
    h = load_hierarchy(include_neutral=True)
    assert h.classes[-1] == "Neutral"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        crs = h.check_consistency()
    assert max(crs.values()) < 0.1
    table = h.consistency_table()
    assert len(table) == len(h.nodes())
    for mode in ("path", "composite"):
        for method in ("geometric", "paper", "eigen"):
            P = semantic_prototypes(h, mode, method)
            assert P.shape == (7, len(semantic_columns(h, mode)))
            np.testing.assert_allclose(P.sum(1), 1.0)
            assert (P >= 0).all()


def test_composite_counts_shared_au_once_and_surprise_fear_overlap():
    h = load_hierarchy()
    cols_p, cols_c = semantic_columns(h, "path"), semantic_columns(h, "composite")
    Pp, Pc = semantic_prototypes(h, "path"), semantic_prototypes(h, "composite")
    d = h.classes.index("Disgust")
    # Disgust: B = [[1,3],[1/3,1]] -> nose 3/4, mouth 1/4; nose AU9:AU10 = 2:1
    assert Pp[d, cols_p.index("C2:AU10")] == pytest.approx(0.75 / 3)
    assert Pp[d, cols_p.index("C4:AU10")] == pytest.approx(0.25)
    assert Pc[d, cols_c.index("AU10")] == pytest.approx(0.75 / 3 + 0.25)
    assert Pc[d, cols_c.index("AU9")] == pytest.approx(0.5)
    assert len(cols_c) == len({c.split(":")[1] for c in cols_p})
    # the paper's point: Surprise and Fear share AU1, AU2, AU5 -> positive cosine; Happy/Sad 0.
    # Section 3.1's rule (small weights on shared AUs) keeps our Surprise's share of them at
    # 2/7 (brows 1/7, eyes 1/7 of B = [[1, 1, 1/5], [1, 1, 1/5], [5, 5, 1]]), so the overlap is small
    Pn = Pc / np.linalg.norm(Pc, axis=1, keepdims=True)
    cos = Pn @ Pn.T
    i, j = h.classes.index("Surprise"), h.classes.index("Fear")
    assert 0.1 < cos[i, j] < 0.3
    shared = [cols_c.index(f"AU{a}") for a in (1, 2, 5)]
    assert Pc[i, shared].sum() == pytest.approx(2 / 7)
    assert cos[h.classes.index("Happy"), h.classes.index("Sad")] == 0


def test_class_names_order_and_missing():
    h = load_hierarchy(class_names=["Sad", "Neutral", "Happy"])
    assert h.classes == ("Sad", "Neutral", "Happy")
    P = semantic_prototypes(load_hierarchy(include_neutral=True), "composite",
                            class_names=["Sad", "Neutral", "Happy"])
    np.testing.assert_allclose(P, semantic_prototypes(h, "composite"))
    with pytest.raises(ValueError, match="Contempt"):
        load_hierarchy(class_names=["Happy", "Contempt"])


def test_with_matrix_changes_prototype_and_validates():
    h = load_hierarchy()
    h2 = h.with_matrix("Happy", "B", [[1, 1], [1, 1]])
    i = h.classes.index("Happy")
    cols = semantic_columns(h, "composite")
    assert semantic_prototypes(h2, "composite")[i, cols.index("AU6")] == pytest.approx(0.5)
    assert semantic_prototypes(h, "composite")[i, cols.index("AU6")] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="shape"):
        h.with_matrix("Happy", "B", np.ones((3, 3)))
    with pytest.raises(ValueError, match="Happy/B.*not reciprocal"):
        h.with_matrix("Happy", "B", [[1, 2], [2, 1]])
    with pytest.raises(ValueError, match="no region"):
        h.matrix("Happy", "C1")


def test_file_errors_name_file_and_node(tmp_path):
    from ferlib.methods.ahm.hierarchy import DEFAULT_JUDGMENTS
    data = json.loads(DEFAULT_JUDGMENTS.read_text())
    data["expressions"]["Fear"]["C"]["C3"]["R"] = [[1, 5], ["1/3", 1]]  # as printed
    p = tmp_path / "j.json"
    p.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="j.json: Fear/C3.*not reciprocal"):
        load_hierarchy(p)
    data = json.loads(DEFAULT_JUDGMENTS.read_text())
    data["expressions"]["Fear"]["C"]["C1"]["aus"] = [1, 2, 2]  # the paper's repeated AU2
    p.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="Fear/C1.*repeats"):
        load_hierarchy(p)
    data = json.loads(DEFAULT_JUDGMENTS.read_text())
    data["expressions"]["Sad"]["B"] = [[1, 2.5], [0.4, 1]]
    p.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="Sad/B.*Saaty"):
        load_hierarchy(p)


def test_judgment_editor_lower_triangle_follows():
    from ferlib.methods.ahm.widgets import JudgmentEditor
    ed = JudgmentEditor(load_hierarchy(), live_plots=False)
    assert ed.expr.value == "Fear" and ed.node.value == "B"
    assert "CR = 0.033" in ed.status.value
    ed._cells[(0, 2)].value = 9.0  # C1 vs C4 = 9: now cyclic with C3 > C1, C3 > C4
    np.testing.assert_allclose(ed.hierarchy.matrix("Fear", "B")[2, 0], 1 / 9)
    assert ed._cells[(2, 0)].value == "1/9"
    assert "revise" in ed.status.value
    ed.expr.value = "Surprise"
    ed.node.value = "C4"
    ed._cells[(0, 1)].value = 5.0
    np.testing.assert_allclose(ed.hierarchy.matrix("Surprise", "C4"), [[1, 5], [0.2, 1]])
    with pytest.raises(ValueError, match="upper triangle"):
        ed.set_entry(1, 0, 3.0)
    ed.reset.click()
    np.testing.assert_allclose(ed.hierarchy.matrix("Fear", "B"), FEAR_B)


def test_fit_sweep_on_separable_features():
    from ferlib.methods.ahm.experiment import compare_with_paper, fit_sweep
    h = load_hierarchy()
    P = semantic_prototypes(h, "path")  # (6, N)
    rng = np.random.default_rng(0)
    M = rng.normal(size=(P.shape[1], 12))
    feats = {}
    for split, n in (("train", 120), ("val", 60), ("test", 60)):
        y = np.arange(n) % 6
        X = P[y] @ M + 0.01 * rng.normal(size=(n, 12))
        feats[split] = (np.c_[X, np.zeros(n)], y)  # plus one dead unit
    table, models = fit_sweep(feats, P, (1.0, 100.0), class_names=h.classes)
    assert list(table.lam) == [1.0, 100.0] and set(models) == {1.0, 100.0}
    assert (table.val_accuracy == 1.0).all() and (table.test_accuracy == 1.0).all()
    assert table.singular.all()  # rank(A) = 6 < N and the dead unit: detected and recorded
    s = compare_with_paper((75.0, 2.5), "fer2013")
    assert "+2.5 points" in s and "+6.1" in s and "80.6" in s and "53.2" in s and "89.6" in s


def test_load_ahm_records_adds_the_baseline_and_the_gain(tmp_path):
    from ferlib.methods.ahm.experiment import load_ahm_records
    from ferlib.records import write_record

    write_record(tmp_path / "cpu", method="ahm", dataset="fer2013", split="PublicTest",
                 metrics={"accuracy": 0.45}, params={"profile": "cpu"}, seed=0, device="cpu",
                 wall_time=1.0, extra={"baseline_metrics": {"accuracy": 0.40}})
    r = load_ahm_records(tmp_path)
    assert len(r) == 1 and r["baseline_accuracy"][0] == 0.40
    assert r["gain_points"][0] == pytest.approx(5.0)


def test_lam_on_the_grid_edge_warns():
    import pandas as pd

    from ferlib.methods.ahm.experiment import LAM_GRID, LambdaOnGridEdgeWarning, select_lam
    assert max(LAM_GRID) >= 1e7
    inside = pd.DataFrame({"lam": [1.0, 10.0, 100.0], "val_accuracy": [0.3, 0.5, 0.4]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert select_lam(inside) == 10.0
    top = pd.DataFrame({"lam": [1.0, 10.0, 100.0], "val_accuracy": [0.3, 0.4, 0.5]})
    with pytest.warns(LambdaOnGridEdgeWarning, match="largest"):
        assert select_lam(top) == 100.0
    tie = pd.DataFrame({"lam": [1.0, 10.0], "val_accuracy": [0.5, 0.5]})   # ties: smaller lam
    with pytest.warns(LambdaOnGridEdgeWarning, match="smallest"):
        assert select_lam(tie) == 1.0


def test_prototype_lengths_do_not_weight_the_fit():
    from ferlib.methods.ahm.sae import SemanticClassifier
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(90, 6)), np.arange(90) % 3
    Q = np.abs(rng.normal(size=(3, 4)))
    lengths = np.array([[0.47], [0.6], [0.83]])
    a = SemanticClassifier(lam=2.0).fit(X, y, Q / np.linalg.norm(Q, axis=1, keepdims=True))
    b = SemanticClassifier(lam=2.0).fit(X, y, Q / np.linalg.norm(Q, axis=1, keepdims=True) * lengths)
    np.testing.assert_allclose(a.W_, b.W_, rtol=1e-9, atol=1e-12)
    c = SemanticClassifier(lam=2.0, normalize_prototypes=False).fit(
        X, y, Q / np.linalg.norm(Q, axis=1, keepdims=True) * lengths)
    assert not np.allclose(a.W_, c.W_)
