"""Kill and resume for real (issue 14): a training subprocess is killed with SIGKILL in the
middle of an epoch, then again while it writes its checkpoint, and a third process resumes;
its history and weights must equal those of an uninterrupted run, bit for bit (CPU, one
thread). The same for the VAE-GAN's own training loop.

Each run trains a tiny model on tiny synthetic data for three epochs (well under a second;
a child's cost is mostly importing torch). The killed runs are child processes; the child
stops itself at a chosen point (it writes a marker file and sleeps) so that the parent's
SIGKILL lands exactly there: mid-epoch, or with half of the new checkpoint written to its
temporary file. The uninterrupted run and the final resume run the same script in this
process, with one thread as in the children.
"""
from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

CHILD = textwrap.dedent('''
    import io, json, os, sys, time
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(1)
    kind, mode, ckdir, out, marker = sys.argv[1:6]
    ckdir = None if ckdir == "-" else ckdir

    def pause(what):                      # the parent SIGKILLs us while we sleep here
        with open(marker + ".tmp", "w") as f:   # renamed whole: the parent never reads it empty
            f.write(what)
        os.replace(marker + ".tmp", marker)
        time.sleep(600)

    if mode == "kill-in-save":            # die with half of the next checkpoint written
        real_save = torch.save

        def half_save(obj, f, *a, **k):
            buf = io.BytesIO()
            real_save(obj, buf, *a, **k)
            data = buf.getvalue()
            f.write(data[: len(data) // 2])
            f.flush()
            pause("in save")
        torch.save = half_save

    from ferlib.data.dataset import FaceDataset

    def faces(n, seed, size):
        r = np.random.default_rng(seed)
        return FaceDataset(r.integers(0, 256, (n, size, size), dtype=np.uint8),
                           np.arange(n) % 3, ("a", "b", "c"), "toy", f"s{seed}")

    if kind == "fit":
        from ferlib.train import fit

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                torch.manual_seed(0)
                self.conv = nn.Conv2d(1, 4, 3, padding=1)
                self.bn = nn.BatchNorm2d(4)
                self.drop = nn.Dropout(0.2)
                self.fc = nn.Linear(4, 3)

            def forward(self, x):
                h = F.adaptive_avg_pool2d(F.relu(self.bn(self.conv(x))), 1).flatten(1)
                return self.fc(self.drop(h))

        class Loss:                       # cross-entropy that can pause mid-epoch
            def __call__(self, model, x, y, epoch, **kw):
                self.batches = getattr(self, "batches", 0) + 1
                if mode == "kill-mid-epoch" and epoch == 2 and self.batches == 9:  # 3rd of 6
                    pause("mid-epoch")
                logits = model(x)
                return F.cross_entropy(logits, y), logits

        res = fit(Net(), faces(48, 0, 8), faces(24, 1, 8), test_set=faces(24, 2, 8), epochs=3,
                  batch_size=8, lr=1e-2, device="cpu", seed=3, progress=False, loss_fn=Loss(),
                  scheduler=lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9),
                  checkpoint_dir=ckdir)
        hist = res.history.drop(columns="epoch_time")
        torch.save({"history": hist.to_dict(orient="list"),
                    "state": res.model.state_dict()}, out)
    else:
        import ferlib.methods.latent_aug.vaegan as vg

        if mode == "kill-mid-epoch":
            real_losses = vg.vaegan_losses
            steps = []

            def losses(*a, **k):          # pause in the middle of epoch 2 (steps 3..4)
                steps.append(1)
                if len(steps) == 4:
                    pause("mid-epoch")
                return real_losses(*a, **k)
            vg.vaegan_losses = losses
        torch.manual_seed(0)
        model = vg.VAEGAN(vg.VAEGANConfig(latent_dim=2, image_size=8, width=1))
        res = vg.train_vaegan(model, faces(8, 0, 8), 3, batch_size=4, checkpoint_dir=ckdir,
                              device="cpu", seed=1, progress=False)
        torch.save({"history": res.history.to_dict(orient="list"),
                    "state": res.model.state_dict()}, out)
''')


def _start(tmp_path, kind, mode, ckdir, out):
    script = tmp_path / "child.py"
    if not script.exists():
        script.write_text(CHILD)
    marker = tmp_path / f"paused-{mode}"
    marker.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script), kind, mode, str(ckdir) if ckdir else "-",
                             str(out), str(marker)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, marker


def _run_here(tmp_path, kind, mode, ckdir, out):
    """The child script run to the end in this process (modes "full" and "normal" patch
    nothing; the thread count, set to 1 as in the children, is restored)."""
    script = tmp_path / "child.py"
    if not script.exists():
        script.write_text(CHILD)
    argv, threads = sys.argv, torch.get_num_threads()
    sys.argv = [str(script), kind, mode, str(ckdir) if ckdir else "-", str(out), str(tmp_path / "m")]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv
        torch.set_num_threads(threads)
    return torch.load(out, weights_only=True)


def _kill_when_paused(tmp_path, kind, mode, ckdir):
    proc, marker = _start(tmp_path, kind, mode, ckdir, tmp_path / "never.pt")
    deadline = time.monotonic() + 300
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"the child exited ({proc.returncode}) before pausing:\n{proc.stdout.read()}")
        assert time.monotonic() < deadline, "the child never reached its pause point"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert marker.read_text() == {"kill-mid-epoch": "mid-epoch", "kill-in-save": "in save"}[mode]


def _same(full, resumed):
    assert resumed["history"] == full["history"]
    assert list(resumed["state"]) == list(full["state"])
    for k, v in full["state"].items():
        assert torch.equal(v, resumed["state"][k]), k


@pytest.mark.parametrize("kind, ckpt_name", [("fit", "last.pt"), ("vaegan", "vaegan_last.pt")])
def test_sigkill_mid_epoch_and_mid_checkpoint_write_then_resume(tmp_path, kind, ckpt_name):
    from ferlib.checkpoint import load_checkpoint_file

    full = _run_here(tmp_path, kind, "full", None, tmp_path / "full.pt")
    ck = tmp_path / "ck"
    # 1. SIGKILL in the middle of epoch 2: the checkpoint of epoch 1 is there
    _kill_when_paused(tmp_path, kind, "kill-mid-epoch", ck)
    saved = load_checkpoint_file(ck / ckpt_name)
    assert saved["epoch"] == 1
    # 2. resume; SIGKILL while the checkpoint of epoch 2 is half written: the file under the
    #    real name is still the complete epoch-1 checkpoint, the half file is a temporary one
    _kill_when_paused(tmp_path, kind, "kill-in-save", ck)
    assert load_checkpoint_file(ck / ckpt_name)["epoch"] == 1
    partial = list(ck.glob(f"{ckpt_name}.tmp*"))
    assert len(partial) == 1 and 0 < partial[0].stat().st_size
    # 3. resume to the end: the same history and weights as the uninterrupted run
    _same(full, _run_here(tmp_path, kind, "normal", ck, tmp_path / "resumed.pt"))
    assert not list(ck.glob(f"{ckpt_name}.tmp*")), "the half-written temporary file was left"
    assert load_checkpoint_file(ck / ckpt_name)["epoch"] == 3
