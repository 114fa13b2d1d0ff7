"""How high EAN's threshold should reach: measured (a script, not a test;
notebooks/05_adjacency_threshold_tuning, "Tuning the thresholds by validation accuracy").

On features that have trained for seconds, a batch graph at a moderate tau1 links many faces
of different classes, and the GCN then averages each face with them. This script trains, side
by side in one run, on the smoke profile's SynthFACS split with ``--noise`` of the training
and validation labels flipped (test labels clean), the baseline and EAN at each ``--tau1``
(single-threshold Eq. 4) and, with ``--tau2``, also at each ``--tau1`` with that second
threshold (the two-threshold reading: opposite-pair edges where C_s <= tau2), each in every
graph mode of ``--modes`` (default: the library's, ``EANConfig().mode``; ``hard``: Eq. 4 as
printed, no gradient through the graph, so Adj_loss trains nothing; ``ste``: hard graph
forward, soft gradient back), for each of ``--seeds``.

One row per run: accuracy on the noisy validation labels (what the chapter's tuning selects
on), test accuracy at the epoch chosen on validation (the test split is balanced, so it equals
mean class accuracy), EAN's single-image accuracy, the best epoch, wall time; then the mean
over the seeds. ``ferlib.methods.ean.experiment.TAU1_GRID`` and the smoke grid of
``live_sizes`` follow the mean validation accuracy.

    python tests/benchmarks/bench_ean_threshold.py --out tests/benchmarks/results/ean_threshold_cpu.md
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
from tqdm.auto import tqdm

from ferlib.config import get_profile
from ferlib.data import load_splits
from ferlib.methods.ean import experiment as exp
from ferlib.methods.ean.model import ADJACENCY_MODES, EANConfig

from _report import emit, machine_line  # noqa: E402 - tests/benchmarks, the script's folder


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--tau1", type=float, nargs="+", default=[0.6, 0.8, 0.9, 0.95])
    parser.add_argument("--tau2", type=float, default=None,
                        help="also run each tau1 with this second threshold")
    parser.add_argument("--modes", nargs="+", default=[EANConfig().mode], choices=ADJACENCY_MODES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=None, help="write the table here (markdown)")
    args = parser.parse_args(argv)

    prof = get_profile("smoke")
    tau2s = [None] + ([args.tau2] if args.tau2 is not None else [])
    cases = [("baseline", None, None, None)] + [("ean", t1, t2, m) for t2 in tau2s
                                                for t1 in args.tau1 for m in args.modes]
    rows = []
    runs = [(s, c) for s in args.seeds for c in cases]
    for seed, (method, tau1, tau2, mode) in tqdm(runs, desc="runs"):
        splits = load_splits("synthfacs", profile=prof.name, seed=seed)
        t0 = time.perf_counter()
        r = exp.noisy_label_experiment(
            prof, splits=splits, seed=seed, noise_rates=(args.noise,), methods=(method,),
            tau1=exp.DEFAULT_TAU1 if tau1 is None else tau1, tau2=tau2, device="cpu",
            results_path=None, ean_options=None if mode is None else {"mode": mode}).iloc[0]
        run = (method if tau1 is None else f"EAN, tau1 = {tau1}"
               + ("" if tau2 is None else f", tau2 = {tau2}")
               + ("" if len(args.modes) == 1 else f", {mode}"))
        rows.append({"seed": seed, "run": run,
                     "noisy val accuracy": round(100 * r["val_accuracy"], 1),
                     "test accuracy": round(100 * r["accuracy"], 1),
                     "single image (EAN)": (round(100 * r["single_image_accuracy"], 1)
                                            if pd.notna(r["single_image_accuracy"]) else None),
                     "best epoch": int(r["best_epoch"]),
                     "seconds": round(time.perf_counter() - t0, 1)})
    table = pd.DataFrame(rows)
    mean = (table.groupby("run", sort=False)[["noisy val accuracy", "test accuracy"]]
            .agg(["mean", "min"]).round(1))
    mean.columns = [f"{a}, {b}" for a, b in mean.columns]
    seeds = " ".join(map(str, args.seeds))
    taus = " ".join(map(str, args.tau1))
    head = (f"# EAN's threshold: smoke SynthFACS, {len(splits.train)} training faces, "
            f"{args.noise:.0%} flipped labels, {prof.epochs} epochs (graph from epoch "
            f"{min(prof.warmup_epochs, prof.epochs - 1) + 1}), seeds {seeds}\n\n"
            f"{machine_line()} Percent; each run's epoch is chosen on the noisy validation "
            "labels.\n\n"
            "Command: `python tests/benchmarks/bench_ean_threshold.py "
            f"--noise {args.noise} --tau1 {taus}"
            + ("" if args.tau2 is None else f" --tau2 {args.tau2}")
            + f" --modes {' '.join(args.modes)} --seeds {seeds}`\n\n")
    emit(head + "## Over the seeds\n\n" + mean.reset_index().to_markdown(index=False)
         + "\n\n## Each run\n\n" + table.to_markdown(index=False) + "\n", args.out)
    return table


if __name__ == "__main__":
    main()
