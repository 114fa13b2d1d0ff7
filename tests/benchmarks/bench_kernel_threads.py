"""One kernel with every core, or one kernel per core? Measured for the smoke network (a script,
not a test; ferlib/book/runner.py, ``default_jobs``, and README, "How the book is built").

Side by side in one run: smoke-profile training steps (the SmallCNN of width 8 at 32x32, batch
64, Adam) in one process using all ``--cores`` threads, and in ``--cores`` processes at once
with one thread each. The number compared is the images per second of all processes together:
what ``ferlib-book --jobs`` trades when it runs chapters side by side.

    python tests/benchmarks/bench_kernel_threads.py --out tests/benchmarks/results/kernel_threads_cpu.md
"""
from __future__ import annotations

import argparse
import multiprocessing
import time

import pandas as pd

from _report import emit, machine_line  # noqa: E402 - tests/benchmarks, the script's folder


def steps_per_second(threads: int, batch: int, seconds: float, start, out) -> None:
    """Train for ``seconds`` after a common start signal; put the images per second in ``out``."""
    import torch

    from ferlib.models import build_backbone

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_backbone("smallcnn", 7, in_channels=1, width=8, image_size=32)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = torch.randn(batch, 1, 32, 32), torch.randint(0, 7, (batch,))

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):                  # warm-up
        step()
    start.wait()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    out.put(n * batch / (time.perf_counter() - t0))


def aggregate(processes: int, threads: int, batch: int, seconds: float) -> float:
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=steps_per_second, args=(threads, batch, seconds, start, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    rates = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(rates)


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", default=None, help="write the table here (markdown)")
    args = parser.parse_args(argv)
    rows = []
    for processes, threads in ((1, args.cores), (args.cores, 1)):
        rate = aggregate(processes, threads, args.batch, args.seconds)
        rows.append({"processes": processes, "threads each": threads, "images/s, all": round(rate)})
    table = pd.DataFrame(rows)
    table["ratio"] = (table["images/s, all"] / table["images/s, all"].iloc[0]).round(2)
    emit(f"# Smoke training steps: one {args.cores}-thread process against {args.cores} "
         f"one-thread processes (batch {args.batch}, {args.seconds:g} s each)\n\n"
         f"{machine_line().replace(' threads', ' threads in this process')}\n\n"
         f"Command: `python tests/benchmarks/bench_kernel_threads.py --cores {args.cores}`\n\n"
         + table.to_markdown(index=False) + "\n", args.out)
    return table


if __name__ == "__main__":
    main()
