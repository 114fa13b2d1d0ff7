"""The smoke profile's batch size, measured (a script, not a test; ferlib/config.py, "smoke").

Side by side in one run: the smoke baseline (the profile's SmallCNN, Adam + one-cycle, 8 epochs
on the 3,600 SynthFACS training faces, epoch selected on validation) at batch 32 with peak
learning rate 3e-3 and at batch 64 with 6e-3 (the learning rate scaled with the batch), for
``--seeds`` seeds each: wall time of the whole ``fit`` and test mean class accuracy (the test
split is balanced). The smoke build trains about twenty such models, so the faster setting
decides how long ``make book`` takes.

    python tests/benchmarks/bench_smoke_batch.py --out tests/benchmarks/results/smoke_batch_cpu.md
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
from tqdm.auto import tqdm

from ferlib.config import get_profile
from ferlib.data import load_splits
from ferlib.methods.baseline.experiment import build_baseline_model
from ferlib.train import fit, set_seed

from _report import emit, machine_line  # noqa: E402 - tests/benchmarks, the script's folder

SETTINGS = [(32, 3e-3), (64, 6e-3)]


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=None, help="write the table here (markdown)")
    args = parser.parse_args(argv)

    rows = []
    for seed in tqdm(args.seeds, desc="seeds"):
        splits = load_splits("synthfacs", profile="smoke", seed=seed)
        for batch, lr in SETTINGS:
            prof = get_profile("smoke").replace(batch_size=batch, lr=lr)
            set_seed(seed)
            model = build_baseline_model(splits, prof)
            t0 = time.perf_counter()
            res = fit(model, splits.train, splits.val, test_set=splits.test, **prof.fit_options(),
                      device="cpu", seed=seed, progress=False)
            rows.append({"batch": batch, "lr": lr, "seed": seed,
                         "seconds": time.perf_counter() - t0,
                         "mean class accuracy": res.test_metrics["mean_class_accuracy"]})
    runs = pd.DataFrame(rows)
    table = (runs.groupby(["batch", "lr"])
             .agg(seeds=("seed", "count"), seconds=("seconds", "mean"),
                  mca=("mean class accuracy", "mean"), mca_sd=("mean class accuracy", "std"))
             .reset_index())
    base = table["seconds"].iloc[0]
    table["time ratio to batch 32"] = table["seconds"] / base
    table = table.round({"seconds": 1, "mca": 3, "mca_sd": 3, "time ratio to batch 32": 2})
    text = (f"# The smoke baseline at two batch sizes: SynthFACS, {len(splits.train)} training "
            f"faces, 8 epochs, seeds {args.seeds}\n\n{machine_line()}\n\n"
            "Command: `python tests/benchmarks/bench_smoke_batch.py`\n\n"
            + table.to_markdown(index=False) + "\n\nPer run:\n\n"
            + runs.round(3).to_markdown(index=False) + "\n")
    emit(text, args.out)
    return table


if __name__ == "__main__":
    main()
