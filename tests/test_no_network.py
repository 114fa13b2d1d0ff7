"""No network at run time (issue 14): with every socket connection and name lookup refused,
the data layer reads a FER2013 CSV, an image-folder dataset and generated SynthFACS faces,
every backbone and method model is built, and one short training run (fit, one epoch) and one
VAE-GAN epoch run. Any attempt to reach the network, even one the caller would catch, is
recorded and fails the test. (In-process: ferlib's imports are covered by the rest of the test
suite running without a network in CI; this checks what runs.)
"""
from __future__ import annotations

import socket

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def no_network(monkeypatch):
    attempts = []

    def refuse(name):
        def f(*a, **k):
            attempts.append(f"{name}{a}")
            raise OSError(f"network blocked by the test: {name}")
        return f

    monkeypatch.setattr(socket.socket, "connect", refuse("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("socket.connect_ex"))
    monkeypatch.setattr(socket.socket, "sendto", refuse("socket.sendto"))
    for name in ("getaddrinfo", "gethostbyname", "create_connection"):
        monkeypatch.setattr(socket, name, refuse(name))
    try:                                  # the blocker works
        socket.create_connection(("example.org", 443), timeout=1)
    except OSError:
        pass
    assert attempts == ["create_connection(('example.org', 443),)"], attempts
    attempts.clear()
    return attempts


def test_data_models_and_training_need_no_network(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("FERLIB_CACHE", str(tmp_path / "cache"))
    from ferlib.data import load_image_folders, load_splits, make_synthfacs
    from ferlib.models import BACKBONES, build_backbone
    from ferlib.methods.cucn.model import build_cucn
    from ferlib.methods.dan.model import build_dan
    from ferlib.methods.ean.model import build_ean
    from ferlib.methods.ean.scn import build_scn
    from ferlib.methods.latent_aug.vaegan import VAEGAN, VAEGANConfig, train_vaegan
    from ferlib.train import fit

    # data layer: a FER2013 CSV, image folders, SynthFACS
    r = np.random.default_rng(0)
    rows = ["emotion,pixels,Usage"] + [
        f"{i % 7},{' '.join(map(str, r.integers(0, 256, 2304)))},{u}"
        for u, n in (("Training", 70), ("PublicTest", 14)) for i in range(n)]
    (tmp_path / "fer2013.csv").write_text("\n".join(rows) + "\n")
    splits = load_splits("fer2013", tmp_path / "fer2013.csv", profile="smoke")
    for split in ("train", "test"):
        for cls in ("angry", "happy"):
            (tmp_path / "img" / split / cls).mkdir(parents=True)
            for j in range(2):
                Image.fromarray(r.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
                    tmp_path / "img" / split / cls / f"{j}.jpg")
    folders = load_image_folders(tmp_path / "img", image_size=16, grayscale=True)
    synth = make_synthfacs(70, 14, seed=0, size=24)
    # every model
    for name in BACKBONES:
        build_backbone(name, 7, in_channels=1, width=4, image_size=48)
    build_cucn(7, "smallcnn", width=4)
    build_dan(7, "smallcnn", width=4)
    build_ean("smallcnn", 7)
    build_scn("smallcnn", 7)
    # one short training run and one VAE-GAN epoch
    model = build_backbone("smallcnn", 7, in_channels=1, width=4, image_size=48)
    res = fit(model, splits.train, splits.val, test_set=splits.test, epochs=1, batch_size=32,
              device="cpu", progress=False, checkpoint_dir=tmp_path / "ck")
    train_vaegan(VAEGAN(VAEGANConfig(latent_dim=2, image_size=24, width=1)), synth["train"], 1,
                 batch_size=32, device="cpu", progress=False)
    assert no_network == [], f"ferlib tried to reach the network: {no_network}"
    assert len(splits.train) > 0 and sorted(folders) == ["test", "train"] and len(res.history) == 1
