"""When CUCN starts mixing: measured (a script, not a test; notebooks/06_uncertainty_and_imbalance,
"Choices this chapter makes").

RUL's relative-uncertainty mixing (CUCN's third part) starts in the first epoch of a pretrained
backbone. Trained from scratch in a short run, the mean and log-variance heads are untrained at
first, so the relative uncertainty that weighs the mix is noise. This script trains, side by
side in one run, on the smoke profile's SynthFACS split (the chapter's live setting), each
mixing rung of the ladder with mixing from the first epoch and after a warm-up on the unmixed
feature (``--warmup`` epochs of ``--epochs``), beside the rung without mixing.

One row per run and seed: validation accuracy (what selects the schedule), test accuracy and mean class
accuracy at the epoch chosen on validation, the smallest class recall, the best epoch and wall
time; then the mean over the seeds. ``ferlib.methods.cucn.experiment.mix_warmup`` follows the
mean validation accuracy.

    python tests/benchmarks/bench_cucn_schedule.py --out tests/benchmarks/results/cucn_schedule_cpu.md
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
from tqdm.auto import tqdm

from ferlib.config import get_profile
from ferlib.data import load_splits
from ferlib.methods.cucn import experiment as exp

from _report import emit, machine_line  # noqa: E402 - tests/benchmarks, the script's folder


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=None, help="write the table here (markdown)")
    args = parser.parse_args(argv)

    prof = get_profile("smoke")
    variants = {v.method: v for v in exp.table2_variants(use_cbam=True, mix=True)}
    cases = [("cucn:base", 0)] + [(m, w) for m in ("cucn:mix", "cucn:w+mix", "cucn")
                                  for w in (0, args.warmup)]
    rows = []
    for seed, (method, warmup) in tqdm([(s, c) for s in args.seeds for c in cases], desc="runs"):
        splits = load_splits("synthfacs", profile=prof.name, seed=seed)
        t0 = time.perf_counter()
        run = exp.run_variant(variants[method], splits, profile=prof, device="cpu",
                              seed=seed, results_path=None, mix_warmup_epochs=warmup)
        m, v = run.result.test_metrics, run.result.val_metrics
        rows.append({"seed": seed, "rung": run.variant.label,
                     "mixing from epoch": (warmup + 1) if variants[method].mix else None,
                     "val accuracy": round(100 * v["accuracy"], 1),
                     "test accuracy": round(100 * m["accuracy"], 1),
                     "min class recall": round(100 * m["min_class_recall"], 1),
                     "best epoch": run.result.best_epoch,
                     "seconds": round(time.perf_counter() - t0, 1)})
    table = pd.DataFrame(rows)
    keys = ["rung", "mixing from epoch"]
    mean = (table.fillna({"mixing from epoch": 0})
            .groupby(keys, sort=False)[["val accuracy", "test accuracy", "min class recall"]]
            .mean().round(1).reset_index())
    seeds = " ".join(map(str, args.seeds))
    head = (f"# CUCN's mixing schedule: smoke SynthFACS, {len(splits.train)} training faces, "
            f"{prof.epochs} epochs, seeds {seeds}\n\n"
            f"{machine_line()} Percent; each run's epoch is chosen on validation; the test "
            "split is balanced, so test accuracy equals mean class accuracy. Mixing from epoch "
            "0 in the mean table: the rung does not mix.\n\n"
            "Command: `python tests/benchmarks/bench_cucn_schedule.py "
            f"--warmup {args.warmup} --seeds {seeds}`\n\n")
    emit(head + "## Mean over the seeds\n\n" + mean.to_markdown(index=False)
         + "\n\n## Each run\n\n" + table.to_markdown(index=False) + "\n", args.out)
    return table


if __name__ == "__main__":
    main()
