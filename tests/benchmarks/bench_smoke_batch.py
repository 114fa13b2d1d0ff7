"""The smoke profile's batch size and tensor layout, measured (a script, not a test;
ferlib/config.py, "smoke").

Side by side in one run: the smoke baseline (the profile's SmallCNN, Adam + one-cycle, 8 epochs
on the 3,600 SynthFACS training faces, epoch selected on validation) in two settings, for
``--seeds`` seeds each: wall time of the whole ``fit`` and test mean class accuracy (the test
split is balanced). ``--vary batch``: batch 32 with peak learning rate 3e-3 against batch 64
with 6e-3 (the learning rate scaled with the batch); ``--vary layout``: the standard NCHW
tensors against channels-last (NHWC), at the profile's batch. The smoke build trains about
twenty such models, so the faster setting decides how long ``make book`` takes.

    python tests/benchmarks/bench_smoke_batch.py --out tests/benchmarks/results/smoke_batch_cpu.md
    python tests/benchmarks/bench_smoke_batch.py --vary layout --threads 1 \
        --out tests/benchmarks/results/smoke_layout_cpu.md
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
import torch
from tqdm.auto import tqdm

from ferlib.config import get_profile
from ferlib.data import load_splits
from ferlib.methods.baseline.experiment import build_baseline_model
from ferlib.train import fit, set_seed

from _report import emit, machine_line  # noqa: E402 - tests/benchmarks, the script's folder

#: --vary -> (label of the setting column, the profile changes of each setting)
SETTINGS = {"batch": ("batch, lr", [{"batch_size": 32, "lr": 3e-3}, {"batch_size": 64, "lr": 6e-3}]),
            "layout": ("channels_last", [{"channels_last": False}, {"channels_last": True}])}


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--vary", choices=sorted(SETTINGS), default="batch")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's; the book gives each chapter 1)")
    parser.add_argument("--out", default=None, help="write the table here (markdown)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    column, settings = SETTINGS[args.vary]

    rows = []
    for seed in tqdm(args.seeds, desc="seeds"):
        splits = load_splits("synthfacs", profile="smoke", seed=seed)
        for changes in settings:
            prof = get_profile("smoke").replace(**changes)
            set_seed(seed)
            model = build_baseline_model(splits, prof)
            t0 = time.perf_counter()
            res = fit(model, splits.train, splits.val, test_set=splits.test, **prof.fit_options(),
                      device="cpu", seed=seed, progress=False)
            rows.append({column: ", ".join(f"{v:g}" if isinstance(v, float) else str(v)
                                           for v in changes.values()), "seed": seed,
                         "seconds": time.perf_counter() - t0,
                         "mean class accuracy": res.test_metrics["mean_class_accuracy"]})
    runs = pd.DataFrame(rows)
    table = (runs.groupby(column, sort=False)
             .agg(seeds=("seed", "count"), seconds=("seconds", "mean"),
                  mca=("mean class accuracy", "mean"), mca_sd=("mean class accuracy", "std"))
             .reset_index())
    first = table[column].iloc[0]
    table[f"time ratio to {first}"] = table["seconds"] / table["seconds"].iloc[0]
    table = table.round(3).round({"seconds": 1, f"time ratio to {first}": 2})
    command = "python tests/benchmarks/bench_smoke_batch.py" + \
        (f" --vary {args.vary}" if args.vary != "batch" else "") + \
        (f" --threads {args.threads}" if args.threads else "")
    text = (f"# The smoke baseline, {column} in two settings: SynthFACS, {len(splits.train)} "
            f"training faces, 8 epochs, seeds {args.seeds}\n\n{machine_line()}\n\n"
            f"Command: `{command}`\n\n"
            + table.to_markdown(index=False) + "\n\nPer run:\n\n"
            + runs.round(3).to_markdown(index=False) + "\n")
    emit(text, args.out)
    return table


if __name__ == "__main__":
    main()
