"""Command line: train the baseline and write its record + backbone (notebooks/02_baseline).

    python -m ferlib.methods.baseline --dataset synthfacs --profile smoke --out /tmp/records
    python -m ferlib.methods.baseline --dataset fer2013 --data-root ../shared/data/fer2013 \\
        --profile cpu --out book/records/cpu [--balanced] [--checkpoint-dir /tmp/ckpt_fer2013]

Under ``torchrun`` (RANK / WORLD_SIZE set) the same command trains data-parallel; see
:mod:`ferlib.train.ddp` for the multi-GPU and multi-node commands.
"""
from __future__ import annotations

import argparse
import json
import sys


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from ferlib.config import DEVICES, PROFILES
    from ferlib.data import DATASETS
    from ferlib.models import BACKBONES

    p = argparse.ArgumentParser(prog="python -m ferlib.methods.baseline",
                                description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="synthfacs", choices=DATASETS)
    p.add_argument("--data-root", default=None, help="folder with the dataset's files (not for synthfacs)")
    p.add_argument("--eval-split", default=None, help="test split (FER2013 default: PublicTest)")
    p.add_argument("--val-split", default="holdout", help="'holdout' (10%% of train) or a split name")
    p.add_argument("--profile", default="smoke", choices=sorted(PROFILES))
    p.add_argument("--backbone", default=None, choices=BACKBONES, help="default: the profile's backbone")
    p.add_argument("--epochs", type=_positive_int, default=None, help="default: the profile's epochs")
    p.add_argument("--balanced", action="store_true", help="class-balanced sampling")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument("--out", required=True, help="folder for the JSON record and the backbone .pt")
    p.add_argument("--checkpoint-dir", default=None, help="resumable run state (rerun to resume)")
    p.add_argument("--no-progress", action="store_true")
    return p


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Every argument checked before any work starts (exit status 2 with a message)."""
    from pathlib import Path

    from ferlib.config import resolve_device, usable_folder

    if args.dataset == "synthfacs":
        if args.data_root is not None:
            parser.error("--data-root is not used with --dataset synthfacs (it needs no files); "
                         "drop it or name the real dataset with --dataset")
    else:
        if args.data_root is None:
            parser.error(f"--dataset {args.dataset} needs --data-root (ferlib never downloads data)")
        if not Path(args.data_root).expanduser().exists():
            parser.error(f"--data-root {args.data_root} does not exist")
    try:
        resolve_device(args.device)
    except ValueError as exc:
        parser.error(f"--device: {exc}")
    usable_folder(parser, "--out", args.out)
    if args.checkpoint_dir is not None:
        usable_folder(parser, "--checkpoint-dir", args.checkpoint_dir)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    from ferlib.data import load_splits
    from ferlib.methods.baseline.experiment import train_baseline
    from ferlib.train.ddp import distributed

    with distributed(args.device) as (world, rank):
        splits = load_splits(args.dataset, data_root=args.data_root, eval_split=args.eval_split,
                             val_split=args.val_split, profile=args.profile, seed=args.seed)
        result, record_path, ckpt = train_baseline(
            splits, args.profile, args.device, args.seed, args.balanced, args.out,
            backbone=args.backbone, epochs=args.epochs, checkpoint_dir=args.checkpoint_dir,
            progress=not args.no_progress and rank == 0, source="python -m ferlib.methods.baseline")
        if rank == 0:
            t = result.test_metrics or {}
            print(json.dumps({"record": str(record_path), "checkpoint": str(ckpt), "world_size": world,
                              "best_epoch": result.best_epoch,
                              "test_accuracy": round(t.get("accuracy", float("nan")), 4),
                              "test_mean_class_accuracy": round(t.get("mean_class_accuracy", float("nan")), 4),
                              "wall_time_s": round(result.wall_time, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
