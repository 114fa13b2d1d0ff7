"""Benchmark (not a test): training throughput of ferlib.train.fit vs a bare PyTorch loop.

Both train the same backbone on the same uint8 FaceDataset with the same batch size, shuffle
each epoch, read each batch by indexing the uint8 array and scaling to [0, 1], use Adam with
weight decay, mixed precision on CUDA, and evaluate the same small validation split after every
epoch with ferlib.metrics.classification_metrics (so evaluation is equalised, not excluded).
The engine runs with its progress bar ON and everything else it does per run (seeding, sampler,
history, best-state copy). Repetitions alternate which loop goes first. Target: engine
throughput >= 95 % of the bare loop's (overhead <= 5 %).

    python tests/benchmarks/bench_engine.py                    # cpu-profile sizes, ~1-2 min
    python tests/benchmarks/bench_engine.py --reps 3 --n 1024 --width 8 --batch 64

On a shared machine, wall-clock rates swing with other users' load; the script also prints
images per CPU-second of its own process, which is steadier (run with OMP_NUM_THREADS=1 there).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ferlib.config import resolve_device  # noqa: E402
from ferlib.data.dataset import FaceDataset  # noqa: E402
from ferlib.data.labels import BASIC7  # noqa: E402
from ferlib.metrics import classification_metrics  # noqa: E402
from ferlib.models import build_backbone  # noqa: E402
from ferlib.train import fit  # noqa: E402


def make_data(n, n_val, size, seed=0):
    r = np.random.default_rng(seed)
    def ds(m, split):
        return FaceDataset(r.integers(0, 256, (m, size, size), dtype=np.uint8),
                           r.integers(0, 7, m), BASIC7, "bench", split)
    return ds(n, "train"), ds(n_val, "val")


def bare_loop(model, train, val, epochs, batch_size, lr, device, seed):
    """The loop one would write by hand: shuffle, index, forward, backward, step, evaluate."""
    torch.manual_seed(seed)
    use_amp = device.type == "cuda"
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    images, labels = torch.from_numpy(train.images), torch.from_numpy(train.labels)
    xv = torch.from_numpy(val.images).float().div_(255).unsqueeze(1).to(device)
    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(labels), generator=g)
        for i in range(0, len(perm), batch_size):
            idx = perm[i:i + batch_size]
            x = images[idx].float().div_(255).unsqueeze(1).to(device, non_blocking=True)
            y = labels[idx].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            scores = torch.softmax(model(xv).float(), 1).cpu().numpy()
        classification_metrics(val.labels, scores.argmax(1), scores=scores, class_names=val.class_names)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=2048, help="training images")
    p.add_argument("--n-val", type=int, default=128)
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--backbone", default="smallcnn")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--reps", type=int, default=4)
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    device = resolve_device(a.device)
    train, val = make_data(a.n, a.n_val, a.size)

    def new_model():
        torch.manual_seed(0)
        return build_backbone(a.backbone, 7, width=a.width, image_size=a.size)

    # warm-up (allocator, kernels, imports), not timed
    bare_loop(new_model(), train.subset(range(a.batch * 2)), val, 1, a.batch, 1e-3, device, 0)
    fit(new_model(), train.subset(range(a.batch * 2)), val, epochs=1, batch_size=a.batch,
        device=device, progress=False)
    images = a.n * a.epochs
    rates = {"bare": [], "engine": []}
    cpu_rates = {"bare": [], "engine": []}  # images per CPU-second of this process
    for rep in range(a.reps):
        order = ("bare", "engine") if rep % 2 == 0 else ("engine", "bare")
        for which in order:
            model = new_model()
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            if which == "bare":
                bare_loop(model, train, val, a.epochs, a.batch, 1e-3, device, rep)
            else:
                fit(model, train, val, epochs=a.epochs, batch_size=a.batch, lr=1e-3, device=device,
                    seed=rep, progress=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates[which].append(images / (time.perf_counter() - t0))
            cpu_rates[which].append(images / (time.process_time() - c0))
        print(f"rep {rep}: bare {rates['bare'][-1]:8.1f} img/s   engine {rates['engine'][-1]:8.1f} img/s"
              f"   (per CPU-second: bare {cpu_rates['bare'][-1]:8.1f}, engine "
              f"{cpu_rates['engine'][-1]:8.1f})", flush=True)
    bare, eng = statistics.median(rates["bare"]), statistics.median(rates["engine"])
    print(f"\n{a.backbone} width {a.width}, batch {a.batch}, {a.n} images x {a.epochs} epochs, "
          f"device {device}, torch threads {torch.get_num_threads()}")
    print(f"median images/s  bare loop: {bare:.1f}   engine: {eng:.1f}   ratio engine/bare: "
          f"{eng / bare:.3f}  (overhead {100 * (1 - eng / bare):+.1f} %)")
    print(f"best images/s    bare loop: {max(rates['bare']):.1f}   engine: {max(rates['engine']):.1f}   "
          f"ratio: {max(rates['engine']) / max(rates['bare']):.3f}")
    cb, ce = statistics.median(cpu_rates["bare"]), statistics.median(cpu_rates["engine"])
    print(f"median images per CPU-second  bare loop: {cb:.1f}   engine: {ce:.1f}   ratio: {ce / cb:.3f}"
          "  (less sensitive to other load on a shared machine)")
    return eng / bare


if __name__ == "__main__":
    main()
