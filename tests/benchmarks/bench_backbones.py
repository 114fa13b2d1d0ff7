"""Which backbone the cpu profile uses, measured (a script, not a test; notebooks/02_baseline,
"The cpu recipe").

Side by side in one run, for each candidate network:

1. **throughput**: images/s of one training step (forward + backward + SGD step) at batch 128 on
   48x48 grey input, in float32 and in bfloat16 autocast with channels-last tensors;
2. **accuracy after a fixed budget**: the cpu profile's recipe (SGD + one-cycle, crop/flip, label
   smoothing, dropout, flip averaging) for ``--epochs`` epochs on ``--train`` stratified training
   images of FER2013 and of SynthFACS, selected on validation, scored on ``--test`` test images;
   (ResNet-18 is left out here: its step is 4-5x slower than the 1.2M VGG's, so 20 epochs of
   FER2013 cannot fit the cpu profile's 20-minute budget even with bfloat16 units);
3. **bfloat16 against float32 accuracy**: the smoke setting trained both ways with the same
   seed, beside float32 with another seed (the spread that "within noise" is judged against).

bfloat16 throughput is only measured in full where the CPU has bfloat16 units
(:func:`ferlib.train.precision.cpu_has_bf16_units`); elsewhere oneDNN emulates it, one
candidate's step shows the cost, and part 2 runs in float32. The result file names the CPU.

    python tests/benchmarks/bench_backbones.py --data-root ../shared/data/fer2013 \\
        --out tests/benchmarks/results/backbones_cpu.md
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from ferlib.config import get_profile, resolve_device
from ferlib.models import build_backbone
from ferlib.train.precision import cpu_has_bf16_units, cpu_model

CASES = [  # (label, name, kwargs)
    ("vgg w16 (0.3M)", "smallcnn", {"width": 16}),
    ("vgg w32 (1.2M)", "smallcnn", {"width": 32}),
    ("resnet18 3x3 s2 stem (11M)", "resnet18", {"stem": "small_s2"}),
    ("mini-xception w8 (0.05M)", "minixception", {"width": 8}),
]


def throughput(name: str, kwargs: dict, precision: str, batch: int, iters: int, warmup: int,
               device: torch.device) -> float:
    """Images/s of a training step; ``precision`` "fp32" or "bf16" (autocast + channels-last)."""
    torch.manual_seed(0)
    fmt = torch.channels_last if precision == "bf16" else torch.contiguous_format
    model = build_backbone(name, 7, **kwargs).to(device, memory_format=fmt).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(batch, 1, 48, 48, device=device).contiguous(memory_format=fmt)  # (B, 1, H, W)
    y = torch.randint(0, 7, (batch,), device=device)  # (B,)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
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
    return batch * iters / (time.perf_counter() - t0)


def budget_run(name: str, kwargs: dict, splits, epochs: int, precision: str, device) -> dict:
    """The cpu recipe for ``epochs`` epochs; test metrics at the epoch selected on validation."""
    from ferlib.train import fit, set_seed

    prof = get_profile("cpu")
    set_seed(0)
    model = build_backbone(name, splits.train.num_classes, dropout=prof.dropout, **kwargs)
    opts = {**prof.fit_options(epochs), "precision": precision}
    res = fit(model, splits.train, splits.val, test_set=splits.test, seed=0, device=device,
              progress=False, **opts)
    m = res.test_metrics
    return {"accuracy": round(m["accuracy"], 4), "mean class acc": round(m["mean_class_accuracy"], 4),
            "min recall": round(m["min_class_recall"], 4), "train+eval s": round(res.wall_time, 1)}


def small_run(splits, prof, precision: str, seed: int, device) -> dict:
    """The smoke profile's baseline training at ``precision`` and ``seed``."""
    from ferlib.train import fit, set_seed

    set_seed(seed)
    model = build_backbone(prof.backbone, splits.train.num_classes, width=prof.width,
                           image_size=prof.image_size, dropout=prof.dropout)
    res = fit(model, splits.train, splits.val, test_set=splits.test, seed=seed, device=device,
              progress=False, **{**prof.fit_options(), "precision": precision})
    m = res.test_metrics
    return {"accuracy": round(m["accuracy"], 4), "mean class acc": round(m["mean_class_accuracy"], 4),
            "train+eval s": round(res.wall_time, 1)}


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None, help="FER2013 folder or CSV (skipped when absent)")
    ap.add_argument("--train", type=int, default=5000, help="training images per dataset")
    ap.add_argument("--test", type=int, default=1500, help="validation and test images each")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--iters", type=int, default=4, help="timed steps per throughput case")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", nargs="*", help="labels (substring match) of the cases to run")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--out", default=None, help="write the tables here (markdown)")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    units = device.type == "cuda" or cpu_has_bf16_units()
    cases = [c for c in CASES if not args.only or any(o in c[0] for o in args.only)]
    head = (f"CPU: {cpu_model()} ({os.cpu_count()} cores), bfloat16 units: {units}; device {device}; "
            f"torch {torch.__version__}; {torch.get_num_threads()} threads; "
            f"load average at start {os.getloadavg()[0]:.1f}; {platform.platform()}")
    print(head, flush=True)
    out = [f"# Backbone benchmark\n\n{head}\n"]

    rows = []
    for i, (label, name, kw) in enumerate(cases):
        fp32 = throughput(name, kw, "fp32", 128, args.iters, 1, device)
        bf16 = throughput(name, kw, "bf16", 128, args.iters if units else 1, 1, device) \
            if units or i == 0 else float("nan")
        params = sum(p.numel() for p in build_backbone(name, 7, **kw).parameters()) / 1e6
        rows.append({"model": label, "params (M)": round(params, 2), "fp32 img/s": round(fp32, 1),
                     "bf16+CL img/s": round(bf16, 1), "bf16/fp32": round(bf16 / fp32, 2)})
        print(rows[-1], flush=True)
    out += ["## Training throughput (batch 128, 48x48 grey, forward + backward + step)\n",
            pd.DataFrame(rows).to_markdown(index=False), ""]

    if not args.skip_accuracy:
        from ferlib.data import load_splits

        prec = "bf16" if units else "fp32"
        budget = get_profile("cpu").replace(real_train_cap=args.train, real_eval_cap=args.test,
                                            synth_train=args.train, synth_test=args.test)
        datasets = {"synthfacs": load_splits("synthfacs", profile=budget)}
        if args.data_root and Path(args.data_root).exists():
            datasets["fer2013"] = load_splits("fer2013", args.data_root, profile=budget)
        else:
            print(f"FER2013 not found at {args.data_root!r}: accuracy on SynthFACS only", flush=True)
        acc = []
        for ds_name, splits in datasets.items():
            for label, name, kw in cases:
                if name.startswith("resnet"):  # 4-5x slower a step: the budget rules it out
                    continue
                r = budget_run(name, kw, splits, args.epochs, prec, device)
                acc.append({"dataset": ds_name, "model": label, **r})
                print(acc[-1], flush=True)
        out += [f"## Accuracy after a fixed budget ({args.epochs} epochs of {args.train} stratified "
                f"training images, cpu recipe, {prec}; {args.test} validation and test images)\n",
                pd.DataFrame(acc).to_markdown(index=False), ""]
        # bfloat16 against float32: a numerics check, so it is run even where bfloat16 is only
        # emulated (slowly); on the smoke profile's small setting, float32 with two seeds gives
        # the seed-to-seed spread that "within noise" is measured against
        small = get_profile("smoke")
        synth = load_splits("synthfacs", profile=small)
        both = []
        for p, seed in (("fp32", 0), ("fp32", 1), ("bf16", 0)):
            r = small_run(synth, small, p, seed, device)
            both.append({"precision": p, "seed": seed, **r})
            print(both[-1], flush=True)
        spread = abs(both[0]["mean class acc"] - both[1]["mean class acc"])
        gap = abs(both[2]["mean class acc"] - both[0]["mean class acc"])
        out += [f"## bfloat16 against float32 (smoke setting: {small.synth_train} SynthFACS faces "
                f"of {small.image_size}x{small.image_size}, {small.backbone} width {small.width}, "
                f"{small.epochs} epochs)\n",
                pd.DataFrame(both).to_markdown(index=False), "",
                f"Same seed, bf16 - fp32 mean class accuracy: {gap:.3f}; fp32 seed 0 vs seed 1: "
                f"{spread:.3f}. " + ("bfloat16 is emulated on this CPU (no bfloat16 units), so only "
                                     "the accuracy, not the time, of the bf16 row means anything."
                                     if not units else ""), ""]
    out.append(f"Load average at the end: {os.getloadavg()[0]:.1f} (other work shared this machine "
               "when it is above the core count; the ratios within one table are the comparison).")
    text = "\n".join(out)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)
    return text


if __name__ == "__main__":
    main()
