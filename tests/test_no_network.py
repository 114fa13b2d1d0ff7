"""No network at run time (issue 14): in a fresh process whose sockets refuse every connection
and name lookup (before ferlib or torch is imported), the data layer reads a FER2013 CSV, an image-folder
dataset and generated SynthFACS faces, every backbone and method model is built, and one
short training run (fit, one epoch) and one VAE-GAN step run. Any attempt to reach the
network, even one the caller would catch, is recorded and fails the test.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent('''
    import json, socket, sys
    attempts = []

    def refuse(name):
        def f(*a, **k):
            attempts.append(f"{name}{a[1:] if name.startswith('socket.') else a}")
            raise OSError(f"network blocked by the test: {name}")
        return f

    socket.socket.connect = refuse("socket.connect")
    socket.socket.connect_ex = refuse("socket.connect_ex")
    socket.socket.sendto = refuse("socket.sendto")
    socket.getaddrinfo = refuse("getaddrinfo")
    socket.gethostbyname = refuse("gethostbyname")
    socket.create_connection = refuse("create_connection")
    try:                                  # the blocker works
        socket.create_connection(("example.org", 443), timeout=1)
    except OSError:
        pass
    assert attempts == ["create_connection(('example.org', 443),)"], attempts
    attempts.clear()

    import numpy as np
    import torch
    from PIL import Image

    tmp = sys.argv[1]
    # data layer: a FER2013 CSV, image folders, SynthFACS
    from ferlib.data import load_splits, load_image_folders, make_synthfacs
    r = np.random.default_rng(0)
    rows = ["emotion,pixels,Usage"] + [
        f"{i % 7},{' '.join(map(str, r.integers(0, 256, 2304)))},{u}"
        for u, n in (("Training", 70), ("PublicTest", 14)) for i in range(n)]
    open(f"{tmp}/fer2013.csv", "w").write("\\n".join(rows) + "\\n")
    splits = load_splits("fer2013", f"{tmp}/fer2013.csv", profile="smoke")
    import os
    for split in ("train", "test"):
        for cls in ("angry", "happy"):
            os.makedirs(f"{tmp}/img/{split}/{cls}")
            for j in range(2):
                Image.fromarray(r.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
                    f"{tmp}/img/{split}/{cls}/{j}.jpg")
    folders = load_image_folders(f"{tmp}/img", image_size=16, grayscale=True)
    synth = make_synthfacs(70, 14, seed=0, size=24)
    # every model
    from ferlib.models import BACKBONES, build_backbone
    from ferlib.models.cucn import build_cucn
    from ferlib.models.dan import build_dan
    from ferlib.models.ean import build_ean
    from ferlib.models.scn import build_scn
    from ferlib.models.vaegan import VAEGAN, VAEGANConfig, train_vaegan
    for name in BACKBONES:
        build_backbone(name, 7, in_channels=1, width=4, image_size=48)
    build_cucn(7, "smallcnn", width=4)
    build_dan(7, "smallcnn", width=4)
    build_ean("smallcnn", 7)
    build_scn("smallcnn", 7)
    # one short training run and one VAE-GAN step
    from ferlib.train import fit
    model = build_backbone("smallcnn", 7, in_channels=1, width=4, image_size=48)
    res = fit(model, splits.train, splits.val, test_set=splits.test, epochs=1, batch_size=32,
              device="cpu", progress=False, checkpoint_dir=f"{tmp}/ck")
    train_vaegan(VAEGAN(VAEGANConfig(latent_dim=2, image_size=24, width=1)), synth["train"], 1,
                 batch_size=32, device="cpu", progress=False)
    print(json.dumps({"attempts": attempts, "train": len(splits.train),
                      "folders": sorted(folders), "epochs": len(res.history)}))
''')


def test_data_models_and_training_need_no_network(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               FERLIB_CACHE=str(tmp_path / "cache"), MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["attempts"] == [], f"ferlib tried to reach the network: {report['attempts']}"
    assert report["train"] > 0 and report["folders"] == ["test", "train"] and report["epochs"] == 1
