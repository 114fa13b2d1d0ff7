"""How fast is CBAM on a CPU, written two ways? (a script, not a test; ferlib/models/cbam.py).

Side by side in one run, training steps of the smoke network (SmallCNN, width 8, 32x32, batch
64, Adam) without CBAM, with CBAM written as the equations read (``amax`` pools, the 7x7
spatial convolution in the standard NCHW layout) and with ``ferlib.models.CBAM`` (max-pools
whose backward scatters to the argmax, the spatial convolution in channels-last). Both CBAM
forms start from the same weights; the script first checks that they give the same outputs
and gradients, then times them in alternation (``--repeats`` rounds, the median reported).

    python tests/benchmarks/bench_cbam.py --out tests/benchmarks/results/cbam_cpu.md
"""
from __future__ import annotations

import argparse
import statistics
import time
import types

import pandas as pd
import torch
import torch.nn.functional as F

from _report import emit, machine_line  # noqa: E402 - tests/benchmarks, the script's folder

from ferlib.models import build_backbone
from ferlib.models.cbam import ChannelGate, SpatialGate


def textbook_channel(self: ChannelGate, x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3))))[:, :, None, None]


def textbook_spatial(self: SpatialGate, x: torch.Tensor) -> torch.Tensor:
    pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
    return torch.sigmoid(self.bn(self.conv(pooled)))


def network(form: str, width: int, size: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_backbone("smallcnn", 7, in_channels=1, width=width, cbam=form != "none",
                           image_size=size)
    if form == "textbook":
        for m in model.modules():
            if isinstance(m, ChannelGate):
                m.forward = types.MethodType(textbook_channel, m)
            elif isinstance(m, SpatialGate):
                m.forward = types.MethodType(textbook_spatial, m)
    return model


def agreement(width: int, size: int, batch: int) -> tuple[float, float]:
    """Largest |difference| of the logits and of any parameter's gradient between the forms."""
    x, y = torch.randn(batch, 1, size, size), torch.randint(0, 7, (batch,))
    grads, logits = [], []
    for form in ("textbook", "ferlib"):
        model = network(form, width, size)
        out = model(x)
        F.cross_entropy(out, y).backward()
        logits.append(out.detach())
        grads.append([p.grad.clone() for p in model.parameters()])
    d_out = (logits[0] - logits[1]).abs().max().item()
    d_grad = max((a - b).abs().max().item() for a, b in zip(*grads))
    return d_out, d_grad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the book: 1 per chapter)")
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per round")
    ap.add_argument("--repeats", type=int, default=5, help="rounds, forms alternating")
    ap.add_argument("--out", help="also write the result here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    d_out, d_grad = agreement(args.width, args.size, args.batch)
    x = torch.randn(args.batch, 1, args.size, args.size)
    y = torch.randint(0, 7, (args.batch,))
    forms = ("none", "textbook", "ferlib")
    steps = {}
    for form in forms:
        model = network(form, args.width, args.size)
        opt = torch.optim.Adam(model.parameters(), 1e-3)

        def step(model=model, opt=opt):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
        for _ in range(3):  # warm-up
            step()
        steps[form] = step
    ms = {form: [] for form in forms}
    for _ in range(args.repeats):
        for form in forms:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                steps[form]()
            ms[form].append((time.perf_counter() - t0) / args.steps * 1e3)
    med = {form: statistics.median(v) for form, v in ms.items()}
    table = pd.DataFrame({
        "network": ["SmallCNN, no CBAM", "+ CBAM, textbook form", "+ CBAM, ferlib form"],
        "ms / step (median)": [round(med[f], 1) for f in forms],
        "img / s": [round(args.batch / med[f] * 1e3) for f in forms],
        "CBAM's share of the step": ["", f"{1 - med['none'] / med['textbook']:.0%}",
                                     f"{1 - med['none'] / med['ferlib']:.0%}"],
    })
    text = (f"# CBAM on a CPU: textbook form against ferlib's\n\n{machine_line()}\n\n"
            f"Command: `python tests/benchmarks/bench_cbam.py --threads {args.threads} --width "
            f"{args.width} --size {args.size} --batch {args.batch} --steps {args.steps} "
            f"--repeats {args.repeats}`\n\n"
            f"{table.to_markdown(index=False)}\n\n"
            f"ferlib form / textbook form, time per step: {med['ferlib'] / med['textbook']:.2f}. "
            f"Same weights, one batch: largest |difference| of the logits {d_out:.1e}, of any "
            f"gradient {d_grad:.1e} (summation order only).\n")
    emit(text, args.out)


if __name__ == "__main__":
    main()
