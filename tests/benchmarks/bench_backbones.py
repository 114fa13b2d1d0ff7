"""Training throughput of the backbones (a script, not a test): images/s of forward + backward
+ SGD step at batch 128 on 48x48 grey input, for the small CNN (widths 8, 16) and ResNet-18
with each stem. The numbers behind the speed table in ferlib.models.backbones and
notebooks/02_baseline.

    python tests/benchmarks/bench_backbones.py              # 2 warm-up + 5 timed iterations
    python tests/benchmarks/bench_backbones.py --iters 1 --warmup 1 --device cuda
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from torch import nn

from ferlib.config import resolve_device
from ferlib.models import build_backbone

CASES = [  # (label, name, kwargs)
    ("smallcnn w8", "smallcnn", {"width": 8}),
    ("smallcnn w16", "smallcnn", {"width": 16}),
    ("resnet18 torchvision stem", "resnet18", {"stem": "torchvision"}),
    ("resnet18 3x3 s2 stem", "resnet18", {"stem": "small_s2"}),
    ("resnet18 3x3 s1 stem", "resnet18", {"stem": "small"}),
]


def bench(name: str, kwargs: dict, batch: int, size: int, iters: int, warmup: int,
          device: torch.device) -> dict:
    torch.manual_seed(0)
    model = build_backbone(name, 7, in_channels=1, image_size=size, **kwargs).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.rand(batch, 1, size, size, device=device)  # (B, 1, H, W)
    y = torch.randint(0, 7, (batch,), device=device)     # (B,)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {"params (M)": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
            "images/s": round(batch * iters / dt, 1), "s/iter": round(dt / iters, 3)}


def main(argv=None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=48)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--only", nargs="*", help="labels (substring match) of the cases to run")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for label, name, kwargs in CASES:
        if args.only and not any(o in label for o in args.only):
            continue
        r = bench(name, kwargs, args.batch, args.size, args.iters, args.warmup, device)
        rows.append({"model": label, **r})
        print(f"{label:28s} {r['params (M)']:6.2f}M {r['images/s']:9.1f} img/s", flush=True)
    table = pd.DataFrame(rows)
    print(f"\nbatch {args.batch}, {args.size}x{args.size} grey, forward+backward+step, "
          f"{device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
