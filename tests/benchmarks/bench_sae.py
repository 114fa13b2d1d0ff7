"""Benchmark (not a test): the SAE Sylvester solve A W + W B = C by ``solver="eig"`` (on the
CPU: A's eigendecomposition and one tridiagonal reduction of B, then one tridiagonal solve per
row) against ``solver="bartels-stewart"`` (scipy.linalg.solve_sylvester, the SAE reference's
solver), side by side in one run so that both see the same machine load. See
ferlib/methods/ahm/sae.py and notebooks/03_ahm_semantic_space, "The semantic autoencoder".

Random features X (n, d) and class-level semantic codes S = prototypes[y] (the AHM path
prototypes, one per class, as the chapter uses them). Each timing includes forming A, B and C
(``fit_projection`` does it, with one BLAS dsyrk for both solvers), so forming X^T X -- a floor
both share -- is in both. Each row also gives the relative Sylvester residual of the eig W. The
Bartels-Stewart call runs with ``on_singular="ignore"`` (the bare scipy solve, no singularity
check), which favours it. Target: eig >= 4x faster at d = 2048, n = 8000 on the 2-core CPU
(>= 30x with ``--device cuda``).

    python tests/benchmarks/bench_sae.py [--device cpu|cuda] [--sizes 512:8000,2048:8000,...]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from ferlib.methods.ahm import load_hierarchy, semantic_prototypes
from ferlib.methods.ahm.sae import fit_projection, sylvester_residual

DEFAULT_SIZES = "512:8000,512:28709,2048:8000,2048:28709"


def _timed(fn):
    """(result, wall seconds, CPU seconds of this process). On a shared machine the CPU
    seconds are the steadier measure of the work done (wall time depends on the load)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def run(sizes, device="cpu", lam=1.0, seed=0, repeats=1) -> pd.DataFrame:
    protos = semantic_prototypes(load_hierarchy(include_neutral=True), "path")  # (7, k)
    rng = np.random.default_rng(seed)
    fit_projection(rng.normal(size=(64, 16)), rng.normal(size=(64, 4)), lam, device=device)  # warm
    rows = []
    for d, n in sizes:
        X = np.abs(rng.normal(size=(n, d))).astype(np.float32)  # (n, d) ReLU-like features
        X /= np.linalg.norm(X, axis=0, keepdims=True)  # unit-norm columns, as the classifier does
        y = rng.integers(0, len(protos), n)
        S = protos[y]  # (n, k)
        runs = [_timed(lambda: fit_projection(X, S, lam, "eig", device=device))
                for _ in range(repeats)]
        W_eig, t_eig, c_eig = min(runs, key=lambda r: r[1])
        W_bs, t_bs, c_bs = _timed(lambda: fit_projection(X, S, lam, "bartels-stewart",
                                                         on_singular="ignore"))
        rel = np.linalg.norm(W_eig - W_bs) / np.linalg.norm(W_bs)
        res = sylvester_residual(W_eig, X, S, lam)
        rows.append({"d": d, "n": n, "k": S.shape[1], "device (eig)": device,
                     "eig wall s": t_eig, "B-S wall s": t_bs, "speed-up (wall)": t_bs / t_eig,
                     "eig cpu s": c_eig, "B-S cpu s": c_bs, "speed-up (cpu)": c_bs / c_eig,
                     "rel. diff W": rel, "residual (eig)": res})
        print(f"d={d:5d} n={n:6d}: eig {t_eig:7.2f} s wall / {c_eig:7.2f} s cpu, "
              f"bartels-stewart {t_bs:7.2f} s wall / {c_bs:7.2f} s cpu, x{t_bs / t_eig:5.1f} "
              f"(wall) x{c_bs / c_eig:5.1f} (cpu), |dW|/|W| = {rel:.1e}, residual {res:.1e}", flush=True)
    return pd.DataFrame(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="d:n pairs, comma-separated")
    ap.add_argument("--lam", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=1, help="eig timings: best of this many")
    args = ap.parse_args(argv)
    sizes = [tuple(int(v) for v in s.split(":")) for s in args.sizes.split(",")]
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    df = run(sizes, args.device, args.lam, repeats=args.repeats)
    print()
    print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    same = (df["rel. diff W"] < 1e-6).all()
    print(f"\nsame W (relative difference < 1e-6): {same}; "
          f"eig residual < 1e-8: {(df['residual (eig)'] < 1e-8).all()}")


if __name__ == "__main__":
    main()
