"""Long-tail profile, label flipping, class-balanced sampler, stratified splits."""
import numpy as np
import pytest

from ferlib.data import (FaceDataset, add_label_noise, class_balanced_sampler, flip_labels,
                         long_tail_counts, make_long_tailed, stratified_cap, stratified_split)


def _toy(counts, size=4):
    labels = np.repeat(np.arange(len(counts)), counts)
    imgs = (np.arange(len(labels))[:, None, None] % 256 * np.ones((1, size, size))).astype(np.uint8)
    names = tuple(f"c{i}" for i in range(len(counts)))
    return FaceDataset(imgs, labels, names, name="toy")


def test_long_tail_counts_by_hand():
    # K = 3, ratio 100, n_max 1000: 1000 * 100^0, 1000 * 100^-0.5 = 100, 1000 * 100^-1 = 10
    assert long_tail_counts(1000, 3, 100).tolist() == [1000, 100, 10]
    # K = 5, ratio 16: 16^(-r/4) = 1, 1/2, 1/4, 1/8, 1/16 of 800
    assert long_tail_counts(800, 5, 16).tolist() == [800, 400, 200, 100, 50]
    with pytest.raises(ValueError, match="imbalance_ratio"):
        long_tail_counts(10, 3, 0.5)


def test_make_long_tailed_profile_and_order():
    ds = _toy([100, 100, 100])
    lt = make_long_tailed(ds, 100, seed=0, order=[2, 0, 1], n_max=100)
    assert lt.class_counts().tolist() == [10, 1, 100]
    # default: balanced set keeps the head; ratio 4 over 3 classes -> 100, 50, 25
    assert make_long_tailed(ds, 4).class_counts().tolist() == [100, 50, 25]
    with pytest.raises(ValueError, match="c2 \\(has 100, needs 200\\)"):
        make_long_tailed(ds, 2, order=[0, 1, 2], n_max=400)
    # same seed, same subset
    a = make_long_tailed(ds, 10, seed=1)
    b = make_long_tailed(ds, 10, seed=1)
    assert (a.images == b.images).all()


def test_flip_labels_exact_rate_and_clean_labels():
    ds = _toy([40, 30, 20, 10])
    noisy = flip_labels(ds, 0.2, seed=0)
    assert (noisy.clean_labels == ds.labels).all()
    changed = noisy.labels != noisy.clean_labels
    assert changed.sum() == 20                       # round(0.2 * 100): every chosen one changes class
    assert (changed == noisy.extras["flipped"]).all()
    assert noisy.labels.min() >= 0 and noisy.labels.max() <= 3
    assert flip_labels(ds, 0.104, seed=0).extras["flipped"].sum() == 10   # round(10.4)
    assert (flip_labels(ds, 0.0).labels == ds.labels).all()
    assert (flip_labels(ds, 0.2, seed=0).labels == noisy.labels).all()
    with pytest.raises(ValueError, match="rate"):
        flip_labels(ds, 1.5)


def test_add_label_noise_is_flip_labels_with_the_experiments_options():
    ds = _toy([40, 30, 20, 10])
    assert add_label_noise(ds, 0.0) is ds                       # rate 0: the split itself
    train = add_label_noise(ds, 0.2, seed=3)                    # training: clean labels kept
    assert (train.labels == flip_labels(ds, 0.2, seed=3).labels).all()
    assert (train.clean_labels == ds.labels).all()
    val = add_label_noise(ds, 0.2, seed=3, keep_clean=False)    # validation: scored on the noise
    assert val.clean_labels is None and (val.labels == train.labels).all()
    assert val.extras["flipped"].sum() == 20


def test_flip_targets_are_uniform_over_other_classes():
    ds = _toy([3000, 0, 0, 0])
    noisy = flip_labels(ds, 1.0, seed=0)
    counts = np.bincount(noisy.labels, minlength=4)
    assert counts[0] == 0
    assert np.all(np.abs(counts[1:] - 1000) < 100)   # 1000 +- 3 sd (sd ~ 26)


def test_class_balanced_sampler_equalises_classes():
    labels = np.repeat(np.arange(3), [900, 90, 10])
    sampler = class_balanced_sampler(labels, num_samples=30000, seed=0)
    drawn = labels[np.fromiter(iter(sampler), dtype=np.int64)]
    freq = np.bincount(drawn, minlength=3) / 30000
    assert np.all(np.abs(freq - 1 / 3) < 0.02)
    again = np.fromiter(iter(class_balanced_sampler(labels, num_samples=50, seed=0)), dtype=np.int64)
    assert (again == np.fromiter(iter(class_balanced_sampler(labels, num_samples=50, seed=0)), dtype=np.int64)).all()
    assert len(class_balanced_sampler(labels)) == 1000


def test_stratified_split_and_cap_keep_proportions():
    ds = _toy([60, 30, 10])
    rest, held = stratified_split(ds, 0.1, seed=0)
    assert held.class_counts().tolist() == [6, 3, 1]
    assert rest.class_counts().tolist() == [54, 27, 9]
    assert held.split == "val"
    capped = stratified_cap(ds, 50, seed=0)
    assert capped.class_counts().tolist() == [30, 15, 5]
    assert stratified_cap(ds, None) is ds
    with pytest.raises(ValueError, match="fraction"):
        stratified_split(ds, 1.2)
