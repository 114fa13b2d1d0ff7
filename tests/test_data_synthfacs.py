"""SynthFACS: shapes, determinism, AU effects, class proportions, nuisance conditions."""
import numpy as np
import pytest

from ferlib.data import BASIC7, FaceDataset, load_splits
from ferlib.data import synthfacs as sf


def test_au_list_and_prototypes():
    assert sf.AU_LIST == (1, 2, 4, 5, 6, 7, 9, 10, 12, 15, 17, 20, 23, 24, 25, 26)
    assert set(sf.EXPRESSION_AUS) == set(BASIC7)
    assert sf.EXPRESSION_AUS["Happy"] == (6, 12)
    assert sf.EXPRESSION_AUS["Fear"] == (1, 2, 4, 5, 7, 20, 26)
    assert sf.EXPRESSION_AUS["Neutral"] == ()
    v = sf.au_vector({12: 0.5}, AU6=1.0)
    assert v.shape == (16,) and v[sf.AU_LIST.index(12)] == 0.5 and v[sf.AU_LIST.index(6)] == 1.0
    with pytest.raises(ValueError, match="AU3"):
        sf.au_vector({3: 1.0})


def test_class_counts_rafdb_scaled_by_hand():
    # 12271 RAF-DB images scaled to 1000: exact shares 57.45, 58.43, 22.90, 388.88, 161.52,
    # 105.13, 205.69 -> floors 57,58,22,388,161,105,205 (sum 996); the 4 largest remainders
    # (Fear .90, Happy .88, Neutral .69, Sad .52) get +1.
    c = sf.class_counts_for(1000, "rafdb")
    assert c.tolist() == [57, 58, 23, 389, 162, 105, 206]
    assert sf.class_counts_for(12271, "rafdb").tolist() == list(sf.RAFDB_TRAIN_COUNTS)
    assert sf.class_counts_for(10, "balanced").tolist() == [2, 2, 2, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="imbalance"):
        sf.class_counts_for(10, "zipf")


def test_make_synthfacs_splits_and_extras():
    d = sf.make_synthfacs(140, 21, seed=0, size=32)
    tr, va, te = d["train"], d["val"], d["test"]
    assert isinstance(tr, FaceDataset) and tr.class_names == BASIC7
    assert tr.images.shape == (140, 32, 32) and tr.images.dtype == np.uint8
    assert tr.class_counts().tolist() == sf.class_counts_for(140, "rafdb").tolist()
    assert va.class_counts().tolist() == [3] * 7 and te.class_counts().tolist() == [3] * 7
    assert tr.extras["au"].shape == (140, 16) and tr.extras["au"].dtype == np.float32
    assert tr.extras["pose"].shape == (140, 2)
    assert tr.extras["occluded"].dtype == bool
    # identities are disjoint between splits
    assert not set(tr.extras["identity"]) & set(te.extras["identity"])
    assert not set(va.extras["identity"]) & set(te.extras["identity"])
    # neutral faces carry no prototype AU; happy faces carry AU6 or AU12
    au, y = tr.extras["au"], tr.labels
    happy = au[y == BASIC7.index("Happy")][:, [sf.AU_LIST.index(6), sf.AU_LIST.index(12)]]
    assert (happy.max(1) > 0).all()


def test_same_seed_same_bytes_and_chunk_independent():
    a = sf.make_synthfacs_split(50, seed=3, split="train")
    b = sf.make_synthfacs_split(50, seed=3, split="train")
    c = sf.make_synthfacs_split(50, seed=4, split="train")
    assert a.images.tobytes() == b.images.tobytes()
    assert (a.labels == b.labels).all()
    assert a.images.tobytes() != c.images.tobytes()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 40)
    au = sf.sample_aus(rng, labels)
    nuis = sf.sample_nuisance(rng, 40)
    ident = sf.sample_identities(rng.integers(0, 50, 40), seed=0)
    one = sf.render_faces(au, ident, nuis, chunk_size=1)
    many = sf.render_faces(au, ident, nuis, chunk_size=256)
    assert one.tobytes() == many.tobytes()


def test_identity_is_a_function_of_id():
    a = sf.sample_identities(np.array([5, 9, 5]), seed=1)
    assert all(a[k][0] == a[k][2] for k in sf.IDENTITY_FIELDS)
    assert any(a[k][0] != a[k][1] for k in sf.IDENTITY_FIELDS)


def test_aus_move_the_face():
    neutral = sf.render_face({}, size=64).astype(int)
    # lip corner puller raises the corners: the mouth region changes, the brow region does not
    smile = sf.render_face({12: 1.0}, size=64).astype(int)
    diff = np.abs(smile - neutral)
    assert diff[40:56].sum() > 0 and diff[:18].sum() == 0
    # inner brow raiser changes the brow region, not the mouth
    brow = np.abs(sf.render_face({1: 1.0}, size=64).astype(int) - neutral)
    assert brow[8:26].sum() > 0 and brow[44:].sum() == 0
    # jaw drop opens the mouth: a dark cavity makes the lower face darker
    jaw = sf.render_face({26: 1.0}, size=64).astype(int)
    assert jaw[40:56].mean() < neutral[40:56].mean() - 1
    # sensible output range: the neutral face is neither black nor saturated
    assert 30 < neutral.mean() < 200


def test_conditions_change_one_factor():
    base = sf.make_synthfacs_split(21, seed=0, split="test", condition="default")
    front = sf.make_synthfacs_split(21, seed=0, split="test", condition="frontal")
    prof = sf.make_synthfacs_split(21, seed=0, split="test", condition="profile")
    occ = sf.make_synthfacs_split(21, seed=0, split="test", condition="occluded")
    dim = sf.make_synthfacs_split(21, seed=0, split="test", condition="dim")
    for d in (front, prof, occ, dim):   # same faces and expressions
        assert (d.labels == base.labels).all() and (d.extras["au"] == base.extras["au"]).all()
        assert (d.extras["identity"] == base.extras["identity"]).all()
    assert (front.extras["pose"] == 0).all()
    assert np.allclose(np.abs(prof.extras["pose"][:, 1]), sf.SynthFACSConfig().profile_yaw)
    assert occ.extras["occluded"].all()
    assert dim.images.mean() < base.images.mean()
    with pytest.raises(ValueError, match="condition"):
        sf.make_synthfacs_split(7, condition="foggy")


def test_identity_pairs_share_everything_but_pose():
    front, prof = sf.make_identity_pairs(14, seed=0, size=32)
    assert len(front) == len(prof) == 14
    assert (front.extras["identity"] == prof.extras["identity"]).all()
    assert (front.labels == prof.labels).all()
    assert (front.extras["pose"] == 0).all() and (np.abs(prof.extras["pose"][:, 1]) > 0).all()
    assert (front.images != prof.images).any()
    assert sf.make_pairs is sf.make_identity_pairs


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"\(N, 16\)"):
        sf.render_faces(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        sf.render_faces(np.full((1, 16), np.nan))
    with pytest.raises(ValueError, match="unknown nuisance field 'tilt'"):
        sf.render_faces(np.zeros((1, 16)), nuisance={"tilt": [1.0]})
    with pytest.raises(ValueError, match="intensity"):
        sf.SynthFACSConfig(intensity=(0.8, 0.2))


def test_load_splits_synthfacs_profile_sizes():
    from ferlib.config import get_profile
    tiny = get_profile("smoke").replace(synth_train=70, synth_test=14, image_size=24)
    s = load_splits("synthfacs", profile=tiny, seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (70, 14, 14)
    assert s.test.class_counts().tolist() == [2] * 7 and s.train.images.shape[1:] == (24, 24)
    occl = load_splits("synthfacs", profile=tiny, eval_split="occluded")
    assert occl.test.extras["occluded"].all() and not occl.val.extras["occluded"].all()
    with pytest.raises(ValueError, match="unknown dataset"):
        load_splits("mnist")
    with pytest.raises(ValueError, match="condition"):
        load_splits("synthfacs", profile=tiny, eval_split="PublicTest")


def test_golden_bytes():
    """The bytes of a seeded split are pinned: the same on every machine (only IEEE-exact float32
    arithmetic per pixel, polynomial sines, counter-based noise). A change here means the
    generator changed, and the calibration record in book/records must be remade."""
    import hashlib
    ds = sf.make_synthfacs_split(14, seed=0, size=32, split="train")
    assert ds.labels.tolist() == [4, 3, 5, 0, 1, 6, 5, 3, 6, 3, 6, 4, 3, 3]
    assert hashlib.sha256(ds.images.tobytes()).hexdigest()[:16] == "8008f0a0c24680e4"


def test_figures_are_single_mosaics():
    import matplotlib
    matplotlib.use("Agg")
    from ferlib.data.viz import au_intensity_figure, class_grid
    fig = au_intensity_figure(aus=(12, 26), intensities=(0.0, 1.0), size=24)
    assert len(fig.axes) == 1
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["AU12 lip corner puller", "AU26 jaw drop"]
    ds = sf.make_synthfacs_split(14, seed=0, size=16)
    assert len(class_grid(ds, per_class=2).axes) == 1


def test_calibration_record_round_trip(tmp_path):
    from ferlib.config import get_profile
    from ferlib.data.calibration import calibrate_synthfacs, write_calibration_record
    from ferlib.records import load_records
    tiny = get_profile("smoke").replace(synth_train=70, synth_test=14, image_size=16, width=4,
                                        epochs=1, batch_size=32)
    res = calibrate_synthfacs(tiny, seed=0, device="cpu", progress=False)
    m = res["metrics"]
    assert 0 <= m["accuracy"] <= 1
    assert res["recall_spread"] == pytest.approx(m["max_class_recall"] - m["min_class_recall"])
    assert res["params"]["train_counts"] == sf.class_counts_for(70, "rafdb").tolist()
    write_calibration_record(res, tmp_path)
    recs = load_records(tmp_path)
    assert recs["method"].tolist() == ["synthfacs-calibration"]
