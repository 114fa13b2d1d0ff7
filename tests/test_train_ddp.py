"""Data-parallel fit: 2 CPU processes (torchrun, gloo) vs 1 process on the same global batches.

ferlib.train.fit under torchrun splits the global batch of 32 into 16 per rank, deals out one
seeded global order round-robin and averages gradients, so the optimiser sees the same mean
gradient as a single process with batches of 32. The model has no BatchNorm and no dropout (those
legitimately differ per rank), so the runs agree up to float32 summation order.

Tolerance: weights within 1e-5 absolute, train loss within 1e-5 relative, val/test metrics
equal. Measured: the largest weight difference after 2 epochs of Adam is 3e-8 and the losses
agree to 4e-8 relative, i.e. float32 rounding. Three variants: the default
loss (DistributedDataParallel), a custom loss_fn (flat gradient all-reduce) and the
class-balanced sampler.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

WORKER = r'''
import sys
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from ferlib.data.dataset import FaceDataset
from ferlib.train import fit
from ferlib.train.ddp import distributed


def stripes(n, seed):
    r = np.random.default_rng(seed)
    y = r.integers(0, 3, n)
    img = r.integers(0, 60, (n, 8, 12)).astype(np.uint8)
    for c in range(3):
        img[y == c, :, 4 * c:4 * c + 4] += 150
    return FaceDataset(img, y, ("a", "b", "c"), "stripes", "train")


class Net(nn.Module):  # no BatchNorm, no dropout
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        h = F.adaptive_avg_pool2d(F.relu(self.conv(x)), (1, 3)).flatten(1)  # (B, 12)
        return self.fc(h)


def custom_loss(model, x, y, epoch):
    logits = model.fc(F.adaptive_avg_pool2d(F.relu(model.conv(x)), (1, 3)).flatten(1))
    return F.cross_entropy(logits, y), logits


VARIANTS = {"ddp": {}, "custom_loss": {"loss_fn": custom_loss}, "balanced": {"sampler": "balanced"}}


def run():
    tr, va, te = stripes(96, 0), stripes(30, 1), stripes(30, 2)
    out = {}
    for name, kw in VARIANTS.items():
        torch.manual_seed(0)
        res = fit(Net(), tr, va, test_set=te, epochs=2, batch_size=32, lr=1e-2, device="cpu",
                  seed=1, progress=False, **kw)
        out[name] = {"state": res.model.state_dict(), "world": res.params["world_size"],
                     "history": res.history.drop(columns="epoch_time").to_dict("list")}
    return out


if __name__ == "__main__":
    with distributed("cpu") as (world, rank):
        result = run()
        if rank == 0:
            torch.save(result, sys.argv[1])
'''


def test_two_gloo_processes_match_one_process(tmp_path):
    script = tmp_path / "ddp_worker.py"
    script.write_text(WORKER)
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script), str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = torch.load(out, weights_only=True)

    spec = importlib.util.spec_from_file_location("ddp_worker", script)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    single = worker.run()

    for name in worker.VARIANTS:
        d, s = ddp[name], single[name]
        assert d["world"] == 2 and s["world"] == 1
        for key, a in s["state"].items():
            assert torch.allclose(d["state"][key], a, atol=1e-5, rtol=0), (name, key)
        hd, hs = d["history"], s["history"]
        assert np.allclose(hd["train_loss"], hs["train_loss"], rtol=1e-5, atol=0), name
        for col in hs:
            if col.startswith(("val_", "test_")) or col in ("epoch", "lr", "train_acc"):
                assert np.allclose(hd[col], hs[col], atol=1e-9), (name, col)
