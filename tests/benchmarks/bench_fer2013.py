"""Benchmark (not a test): parse time of the full FER2013 CSV by ferlib.data.fer2013.

Times :func:`ferlib.data.fer2013.read_fer2013_csv` (no cache) on the real file, ``--repeats``
times, and prints the best and median wall and CPU seconds. Issue 14 made the parser check
every row's pixel count on its own (before, only each 2,048-row chunk's total was checked, so
a row of 2,303 values and one of 2,305 in the same chunk cancelled out); the before/after
numbers are in ``tests/benchmarks/results/fer2013_parse_cpu.txt``.

    python tests/benchmarks/bench_fer2013.py                       # ../shared/data/fer2013
    python tests/benchmarks/bench_fer2013.py --csv path/to/fer2013.csv --repeats 5
    python tests/benchmarks/bench_fer2013.py --against 5c38d41     # before/after, alternating

``--against REV`` also times the parser of git revision REV (its ``ferlib/data/fer2013.py``,
imported as a module of the current package), alternating the two so that load on a shared
machine hits both alike; CPU seconds of this process are steadier than wall seconds there.
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ferlib.data.fer2013 import find_fer2013, read_fer2013_csv  # noqa: E402


def _parser_at(rev: str):
    """read_fer2013_csv of ferlib/data/fer2013.py at git revision ``rev``."""
    repo = Path(__file__).resolve().parents[2]
    src = subprocess.run(["git", "show", f"{rev}:ferlib/data/fer2013.py"], cwd=repo, check=True,
                         capture_output=True, text=True).stdout
    spec = importlib.util.spec_from_loader("ferlib.data._fer2013_at_rev", loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "ferlib.data"
    exec(compile(src, f"{rev}:ferlib/data/fer2013.py", "exec"), mod.__dict__)
    return mod.read_fer2013_csv


def _time(fn, path):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(path)
    return time.perf_counter() - t0, time.process_time() - c0, out


def main(argv=None) -> int:
    root = Path(__file__).resolve().parents[3] / "shared" / "data" / "fer2013"
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--csv", default=str(root), help="the CSV (or its folder)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--against", default=None, metavar="REV", help="also time the parser of REV")
    args = ap.parse_args(argv)
    path = find_fer2013(args.csv)
    parsers = {"this tree": read_fer2013_csv}
    if args.against:
        parsers = {f"at {args.against}": _parser_at(args.against), **parsers}
    times = {name: ([], []) for name in parsers}
    outs = {}
    for _ in range(args.repeats):
        for name, fn in parsers.items():
            wall, cpu, outs[name] = _time(fn, path)
            times[name][0].append(wall)
            times[name][1].append(cpu)
    n = len(next(iter(outs.values()))["labels"])
    print(f"{path}: {n} rows, {args.repeats} parses each")
    for name, (wall, cpu) in times.items():
        print(f"{name:>16}: wall s best {min(wall):.2f}, median {statistics.median(wall):.2f}; "
              f"cpu s best {min(cpu):.2f}, median {statistics.median(cpu):.2f}")
    if len(outs) == 2:
        a, b = outs.values()
        same = all((a[k] == b[k]).all() for k in ("images", "labels", "usage"))
        print(f"same images, labels and usage: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
