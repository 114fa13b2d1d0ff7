"""The experiment of chapter notebooks/03_ahm_semantic_space: baseline vs baseline + AHM.

1. The chapter-02 baseline backbone (:func:`ferlib.train.baseline.load_or_train_baseline`:
   reused from ``results_path`` when recorded, else trained).
2. Its penultimate features of train / val / test (:func:`ferlib.train.extract_features`).
3. The AHM semantic prototypes of the dataset's classes (:func:`ferlib.ahm.semantic_prototypes`)
   and the SAE projection fitted on the training features (:class:`ferlib.sae.SemanticClassifier`),
   for every lam of a grid; lam is selected on the VALIDATION split (or fixed by the caller).
4. Test accuracy and per-class recall of the baseline's own softmax head and of the semantic
   classifier, on the same test images; one results record (method ``"ahm"``) per run.

The paper (Zhang & Dong) reports +6.1 points over ResNet34 on FER2013 and 80.6 % with
ResNet101 + AHM, from ImageNet-style pretrained backbones; ours start from scratch.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ferlib.scoreboard import claimed

__all__ = ["LAM_GRID", "LambdaOnGridEdgeWarning", "select_lam", "AHMRun", "run_ahm_experiment", "fit_sweep", "PAPER_CLAIMS",
           "compare_with_paper", "load_ahm_records"]

#: lam grid; features are scaled to unit column norm, so A = S^T S grows with n and lam must
#: grow with it for the encoder term to matter (the SAE reference uses lam up to 5e5).
#: Extended to 1e7 after the FER2013 cpu run chose the old top, 1e5, with validation accuracy
#: still rising; a choice on either edge of the grid warns (:class:`LambdaOnGridEdgeWarning`).
LAM_GRID = (0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7)
#: The paper's claims (accuracy, %), read from the scoreboard's claims.
_CLAIM_IDS = {"fer2013_ahm_resnet101": "ahm-fer2013", "fer2013_gain_resnet34": "ahm-fer2013-gain",
              "fer2013_gain_resnet": "ahm-fer2013-gain-2", "rafdb_ahm_resnet101": "ahm-rafdb",
              "sfew_ahm_resnet101": "ahm-sfew"}
_CLAIMED = claimed(*_CLAIM_IDS.values())
PAPER_CLAIMS = {name: _CLAIMED[claim_id] for name, claim_id in _CLAIM_IDS.items()}


class LambdaOnGridEdgeWarning(UserWarning):
    """The lam chosen on validation is the smallest or largest of the grid."""


def select_lam(sweep: pd.DataFrame) -> float:
    """The lam of ``sweep`` with the best validation accuracy (ties: the smaller lam). Warns
    (:class:`LambdaOnGridEdgeWarning`) when it is the grid's smallest or largest value: the
    best lam may lie beyond the grid. A large lam means the encoder term dominates: W tends
    to the least-squares regression of the codes on the features and the autoencoder's
    reconstruction term stops mattering."""
    import warnings
    if sweep.empty:
        raise ValueError("the lam sweep is empty")
    best = float(sweep.sort_values(["val_accuracy", "lam"], ascending=[False, True]).iloc[0]["lam"])
    lo, hi = float(sweep["lam"].min()), float(sweep["lam"].max())
    if len(sweep) > 1 and best in (lo, hi):
        edge = "largest" if best == hi else "smallest"
        warnings.warn(f"lam = {best:g} is the {edge} value of the grid {lo:g}..{hi:g}: validation "
                      f"accuracy may still improve beyond it; extend the grid", LambdaOnGridEdgeWarning,
                      stacklevel=2)
    return best


@dataclass
class AHMRun:
    """What :func:`run_ahm_experiment` returns."""

    sweep: pd.DataFrame          # one row per lam: val/test accuracy and mean class accuracy
    lam: float                   # the lam used for the reported numbers
    baseline_metrics: dict       # the baseline's softmax head on the test split
    ahm_metrics: dict            # the semantic classifier on the test split
    prototypes: np.ndarray       # (n_classes, N)
    columns: list[str]
    record_path: Path | None
    classifier: object = None
    params: dict = field(default_factory=dict)

    def per_class_recall(self) -> pd.DataFrame:
        """Recall per class, baseline vs baseline + AHM."""
        return pd.DataFrame({"baseline": self.baseline_metrics["per_class_recall"],
                             "baseline+AHM": self.ahm_metrics["per_class_recall"]})

    def summary(self) -> pd.DataFrame:
        keys = ("accuracy", "mean_class_accuracy", "macro_f1", "min_class_recall")
        return pd.DataFrame({"baseline": {k: self.baseline_metrics[k] for k in keys},
                             "baseline+AHM": {k: self.ahm_metrics[k] for k in keys}})


def fit_sweep(feats: dict, prototypes: np.ndarray, lams=LAM_GRID, class_names=None,
              solver: str = "eig", ridge: float = 0.0, normalize_rows: bool = False,
              device="cpu") -> tuple[pd.DataFrame, dict]:
    """Fit a :class:`~ferlib.sae.SemanticClassifier` per lam on ``feats["train"]`` = (X, y) and
    score it on ``feats["val"]`` and ``feats["test"]``. Returns (table, {lam: classifier})."""
    import warnings

    from ferlib.metrics import classification_metrics
    from ferlib.sae import SemanticClassifier, SingularSylvesterWarning

    rows, models = [], {}
    Xtr, ytr = feats["train"]
    for lam in lams:
        clf = SemanticClassifier(lam=lam, solver=solver, ridge=ridge,
                                 normalize_rows=normalize_rows, device=device)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SingularSylvesterWarning)
            clf.fit(Xtr, ytr, prototypes)
        row = {"lam": float(lam), "singular": any(issubclass(w.category, SingularSylvesterWarning)
                                                  for w in caught)}
        for split in ("val", "test"):
            X, y = feats[split]
            m = classification_metrics(y, clf.predict(X), class_names=class_names)
            row[f"{split}_accuracy"] = m["accuracy"]
            row[f"{split}_mean_class_accuracy"] = m["mean_class_accuracy"]
        rows.append(row)
        models[float(lam)] = clf
    return pd.DataFrame(rows), models


def run_ahm_experiment(splits, profile="smoke", device="auto", seed: int = 0, lam=None,
                       lams=LAM_GRID, mode: str = "path", method: str = "geometric",
                       results_path="../_build/records", solver: str = "eig", ridge: float = 0.0,
                       normalize_rows: bool = False, hierarchy=None, progress: bool = False,
                       source: str | None = None, write: bool = True) -> AHMRun:
    """Baseline vs baseline + AHM on ``splits`` (ferlib.data.load_splits). ``lam=None`` picks
    lam from ``lams`` by validation accuracy; a number fixes it (and is added to the sweep).
    ``hierarchy`` defaults to ``ferlib.ahm.load_hierarchy(class_names=...)`` of the dataset's
    classes. Writes one record (method ``"ahm"``) to ``results_path`` unless ``write=False``.
    """
    from ferlib.ahm.hierarchy import load_hierarchy, semantic_columns, semantic_prototypes
    from ferlib.config import get_profile, resolve_device
    from ferlib.metrics import classification_metrics
    from ferlib.train import evaluate, extract_features
    from ferlib.train.baseline import load_or_train_baseline

    t0 = time.perf_counter()
    prof = get_profile(profile)
    dev = resolve_device(device)
    names = list(splits.train.class_names)
    h = (hierarchy.select(names) if hierarchy is not None
         else load_hierarchy(class_names=names))
    P = semantic_prototypes(h, mode, method)  # (n_classes, N)
    cols = semantic_columns(h, mode)

    base = load_or_train_baseline(splits, prof, device, seed, results_path=results_path,
                                  progress=progress, source=source)
    cache = Path(results_path) / "features"
    feats = {s: extract_features(base.model, getattr(splits, s), device=dev, cache_dir=cache)
             for s in ("train", "val", "test")}
    grid = sorted(set(float(v) for v in lams) | ({float(lam)} if lam is not None else set()))
    sweep, models = fit_sweep(feats, P, grid, names, solver, ridge, normalize_rows, device=dev)
    if lam is None:
        lam_used = select_lam(sweep)
    else:
        lam_used = float(lam)
    clf = models[lam_used]
    Xte, yte = feats["test"]
    D = clf.distances(Xte)  # (N, n_classes)
    ahm = classification_metrics(yte, D.argmin(1), scores=1.0 - D, class_names=names)
    Xva, yva = feats["val"]
    ahm_val = classification_metrics(yva, clf.predict(Xva), class_names=names)
    base_m = evaluate(base.model, splits.test, device=dev)
    base_m = {k: v for k, v in base_m.items() if k not in ("scores", "y_pred", "y_true")}

    params = {"profile": prof.name, "backbone": prof.backbone, "lam": lam_used,
              "lam_selected_on": "val" if lam is None else "fixed", "lam_grid": grid,
              "lam_on_grid_edge": lam_used in (min(grid), max(grid)),
              "normalize_prototypes": True,
              "mode": mode, "weights": method, "solver": solver, "ridge": ridge,
              "normalize_features": True, "normalize_rows": normalize_rows,
              "semantic_dim": int(P.shape[1]), "feature_dim": int(Xte.shape[1]),
              "n_train": len(splits.train), "n_val": len(splits.val), "n_test": len(splits.test),
              "val_split": splits.val.split}
    record_path = None
    if write:
        from ferlib.records import write_record
        record_path = Path(write_record(
            results_path, method="ahm", dataset=splits.train.name, split=splits.test.split,
            metrics={**ahm, "y_true": yte, "y_pred": D.argmin(1)}, params=params, seed=seed,
            device=str(dev),
            wall_time=time.perf_counter() - t0, source=source,
            extra={"baseline_metrics": base_m, "val_metrics": ahm_val,
                   "baseline_record": (Path(base.record_path).name if base.record_path else None),
                   "sweep": sweep.to_dict(orient="list"),
                   "gain_accuracy": ahm["accuracy"] - base_m["accuracy"]}))
    return AHMRun(sweep, lam_used, base_m, ahm, P, cols, record_path, clf, params)


def compare_with_paper(run_or_records, dataset: str) -> str:
    """One sentence setting our gain beside the paper's (+6.1 points over ResNet34 on FER2013,
    80.6 % with ResNet101 + AHM)."""
    if isinstance(run_or_records, AHMRun):
        acc = 100 * run_or_records.ahm_metrics["accuracy"]
        gain = 100 * (run_or_records.ahm_metrics["accuracy"]
                      - run_or_records.baseline_metrics["accuracy"])
    else:
        acc, gain = run_or_records
    return (f"On {dataset} the AHM semantic classifier reaches {acc:.1f} % accuracy, "
            f"{gain:+.1f} points over the same backbone's softmax head; the paper claims "
            f"+{PAPER_CLAIMS['fer2013_gain_resnet34']} points over ResNet34 and "
            f"{PAPER_CLAIMS['fer2013_ahm_resnet101']} % with ResNet101 + AHM on FER2013 "
            f"(Table 3 also gives {PAPER_CLAIMS['rafdb_ahm_resnet101']} % on RAF-DB and "
            f"{PAPER_CLAIMS['sfew_ahm_resnet101']} % on SFEW 2.0; pretrained backbones; ours are trained from scratch, so compare directions, not "
            "absolute numbers).")


def load_ahm_records(folder) -> pd.DataFrame:
    """Committed ``ahm`` records of the natural, clean-label cell (not a degradation-grid cell of
    chapter 07) with their baseline accuracy and the gain (empty if none)."""
    from ferlib.records import read_record, select

    df = select(folder, method="ahm", natural=True, clean=True).reset_index(drop=True)
    if df.empty:
        return pd.DataFrame()
    extras = [read_record(Path(folder) / f).get("extra") or {} for f in df["file"]]
    df["baseline_accuracy"] = [(e.get("baseline_metrics") or {}).get("accuracy", np.nan) for e in extras]
    df["gain_points"] = 100 * (df["accuracy"] - df["baseline_accuracy"])
    return df
