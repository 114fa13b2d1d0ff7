"""When EAN's graph and SCN's relabelling start, and how deep EAN's GCN is: measured (a script,
not a test; notebooks/05_adjacency_threshold_tuning, "Choices this chapter makes").

A model trained from scratch is barely above chance early in a short run. EAN's batch graph over
such features, and SCN's relabelling by such a model's argmax, can pull training to the majority
class. This script trains, side by side in one run, on the smoke profile's SynthFACS split with
``--noise`` of the training labels flipped (the chapter's live setting; test labels clean):

* the cross-entropy baseline (the reference);
* EAN with the graph from epoch 3 of 8 and from epoch 5 of 8 (warm-up 2 or 4 epochs), with a
  one-layer and a two-layer GCN, at ``--tau1``;
* SCN relabelling from epoch 2 and from epoch 5, every sample or only the low-importance group.

One row per run: test accuracy (epoch selected on the noisy validation split), the mean of the
last five epochs, EAN's single-image accuracy, SCN's number of relabelled training faces, wall
time. The library's defaults (``ferlib.config`` warm-up = half the run, ``EANConfig.gcn_layers``,
``experiment.scn_relabel_epoch``, ``relabel_low_only``) follow this table.

    python tests/benchmarks/bench_noisy_schedule.py --out tests/benchmarks/results/noisy_schedule_cpu.md
"""
from __future__ import annotations

import argparse
import time

import pandas as pd
from tqdm.auto import tqdm

from ferlib.config import get_profile
from ferlib.data import load_splits
from ferlib.methods.ean import experiment as exp

from _report import emit, machine_line  # noqa: E402 - tests/benchmarks, the script's folder

#: (label, method, EANConfig fields, SCNConfig fields); warm-up and relabel epochs are for 8 epochs
CASES = [
    ("baseline", "baseline", None, None),
    ("EAN, graph from epoch 3, 2-layer GCN", "ean", {"warmup_epochs": 2, "gcn_layers": 2}, None),
    ("EAN, graph from epoch 3, 1-layer GCN", "ean", {"warmup_epochs": 2, "gcn_layers": 1}, None),
    ("EAN, graph from epoch 5, 2-layer GCN", "ean", {"warmup_epochs": 4, "gcn_layers": 2}, None),
    ("EAN, graph from epoch 5, 1-layer GCN", "ean", {"warmup_epochs": 4, "gcn_layers": 1}, None),
    ("SCN, relabel from epoch 2, every sample", "scn", None,
     {"relabel_epoch": 2, "relabel_low_only": False}),
    ("SCN, relabel from epoch 5, every sample", "scn", None,
     {"relabel_epoch": 5, "relabel_low_only": False}),
    ("SCN, relabel from epoch 5, low-importance group", "scn", None,
     {"relabel_epoch": 5, "relabel_low_only": True}),
]


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--tau1", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the table here (markdown)")
    args = parser.parse_args(argv)

    prof = get_profile("smoke")
    if prof.epochs != 8:
        raise SystemExit(f"the cases name epochs of an 8-epoch run; smoke has {prof.epochs}")
    splits = load_splits("synthfacs", profile=prof.name, seed=args.seed)
    rows = []
    for label, method, ean_opts, scn_opts in tqdm(CASES, desc="runs"):
        t0 = time.perf_counter()
        r = exp.noisy_label_experiment(prof, splits=splits, seed=args.seed,
                                       noise_rates=(args.noise,), methods=(method,),
                                       tau1=args.tau1, device="cpu", results_path=None,
                                       ean_options=ean_opts, scn_options=scn_opts).iloc[0]
        rows.append({"run": label, "test accuracy": round(100 * r["accuracy"], 1),
                     "last 5 epochs": round(100 * r["accuracy_last5"], 1),
                     "single image (EAN)": (round(100 * r["single_image_accuracy"], 1)
                                            if pd.notna(r["single_image_accuracy"]) else None),
                     "relabelled (SCN)": (int(r["n_relabelled"])
                                          if pd.notna(r["n_relabelled"]) else None),
                     "best epoch": int(r["best_epoch"]),
                     "seconds": round(time.perf_counter() - t0, 1)})
    table = pd.DataFrame(rows)
    head = (f"# EAN's warm-up and depth, SCN's relabelling: smoke SynthFACS, "
            f"{len(splits.train)} training faces, {args.noise:.0%} flipped labels, "
            f"{prof.epochs} epochs, tau1 = {args.tau1}, seed {args.seed}\n\n"
            f"{machine_line()} Test accuracy in percent (the test split is balanced, so it "
            "equals mean class accuracy).\n\n"
            "Command: `python tests/benchmarks/bench_noisy_schedule.py "
            f"--noise {args.noise} --tau1 {args.tau1} --seed {args.seed}`\n\n")
    emit(head + table.to_markdown(index=False) + "\n", args.out)
    return table


if __name__ == "__main__":
    main()
