"""The experiments of chapter notebooks/06_uncertainty_and_imbalance (CUCN, Fan et al. 2022).

* :func:`run_table2`: the paper's Table II ablation ladder, read with the uncertainty mixing
  on in every rung (mixing -> + class weights W -> + W + CBAM = the full CUCN), plus the
  no-mixing base as an extra row (``reading="no-mixing"``: base -> + W -> + W + CBAM without
  mixing, then CUCN) — each trained with :func:`ferlib.train.fit`, selected on the validation
  split, one results record per run.
* :func:`uncertainty_scores`, :func:`extreme_samples`: which training images the uncertainty
  branch finds most / least uncertain.
* :func:`uncertainty_vs_noise`: the same model trained on a copy with flipped labels
  (:func:`ferlib.data.flip_labels`); is the learnt uncertainty higher on the flipped samples?
* :data:`PAPER_TABLE2` and :func:`compare_with_paper`: the paper's AffectNet numbers beside ours.
* :func:`mixing_state`, :func:`plot_mixing`, :func:`mixing_explorer`: Eq. 2 on two chosen faces.

Record method names (matched by ``ferlib/claims.json``): ``cucn:base`` (no mixing),
``cucn:mix``, ``cucn:w+mix``, ``cucn`` (the full model) in the mixing reading; ``cucn:w`` and
``cucn:w+cbam`` (no mixing) in the other (:data:`RUNGS`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from ferlib.config import get_profile, given_or, resolve_device
from ferlib.models import backbones
from ferlib.methods.cucn.model import (CUCN, CUCNLoss, class_weights, mix_features, mixing_loss,
                                predict_fn, relative_uncertainty, resolve_class_weights)

__all__ = ["Variant", "table2_variants", "build_variant_model", "run_variant", "VariantRun",
           "run_table2", "Table2", "table2_frame", "PAPER_TABLE2", "READINGS", "RUNGS",
           "HEAD_LR_FACTOR", "LR_DECAY", "head_parameters", "optimizer_factory",
           "compare_with_paper", "committed_table2",
           "uncertainty_scores", "extreme_samples", "uncertainty_vs_noise", "NoiseStudy",
           "class_gap", "hand_case", "load_table2_records", "FROM_SCRATCH_CAVEAT",
           "mixing_state", "plot_mixing", "mixing_explorer"]

FROM_SCRATCH_CAVEAT = (
    "The paper starts from a ResNet-18 pretrained on MS-Celeb-1M and reports AffectNet; our runs "
    "start from scratch (no pretrained weights here) on SynthFACS or FER2013, so compare the "
    "direction of each step, not the absolute numbers.")

#: Fan et al., Table II (AffectNet, 7 classes), its seven rows: (row key, backbone,
#: pretraining, claim id stem). ``#`` = MS-Celeb-1M, ``*`` = ImageNet pretrained.
_TABLE2_ROWS = (
    ("ResNet18#", "ResNet-18", "MS-Celeb-1M", "cucn-t2-r18ms"),
    ("ResNet18# + W", "ResNet-18", "MS-Celeb-1M", "cucn-t2-r18ms-w"),
    ("ResNet18# + W + CBAM", "ResNet-18", "MS-Celeb-1M", "cucn-t2-r18ms-w-cbam"),
    ("ResNet18*", "ResNet-18", "ImageNet", "cucn-t2-r18in"),
    ("ResNet18* + W + CBAM", "ResNet-18", "ImageNet", "cucn-t2-r18in-w-cbam"),
    ("ResNet50*", "ResNet-50", "ImageNet", "cucn-t2-r50in"),
    ("ResNet50* + W + CBAM", "ResNet-50", "ImageNet", "cucn-t2-r50in-w-cbam"),
)


def _paper_table2() -> pd.DataFrame:
    """Fan et al., Table II (AffectNet, 7 classes), all seven rows in percent (overall, worst
    and best class accuracy), read from the scoreboard's claims. The "+ W + CBAM" row of the
    MS-Celeb ResNet-18 equals CUCN's own Table I number (63.77), so the paper's ladder very
    likely keeps the uncertainty mixing on in every row (:data:`READINGS`)."""
    from ferlib.claims import claimed

    rows = []
    for row, backbone, pretrained, stem in _TABLE2_ROWS:
        c = claimed(f"{stem}-acc", f"{stem}-min", f"{stem}-max")
        rows.append({"paper_row": row, "backbone": backbone, "pretrained": pretrained,
                     "accuracy": c[f"{stem}-acc"], "min_class_recall": c[f"{stem}-min"],
                     "max_class_recall": c[f"{stem}-max"]})
    return pd.DataFrame(rows)


#: Fan et al.'s Table II as printed (accuracy per rung of the ladder), the chapter's comparison
#: column
PAPER_TABLE2 = _paper_table2()


# ----------------------------------------------------------------------------------------------
# the ablation ladder
# ----------------------------------------------------------------------------------------------
#: the two readings of Table II: mixing on in every rung (the paper's, very likely), or the
#: ladder that adds the mixing last (rungs without mixing)
READINGS = ("mixing", "no-mixing")


@dataclass(frozen=True)
class Variant:
    """One rung of Table II. ``label`` names the backbone that runs (``backbone``) and the rung;
    ``paper_row`` is the row of :data:`PAPER_TABLE2` it is compared with (None: no such row);
    ``reading`` says which reading of the table the comparison uses."""

    method: str    # record method name
    rung: str      # what the rung adds to the backbone, e.g. "+ W + CBAM + mixing"
    weighted: bool
    cbam: bool
    mix: bool
    paper_row: str | None = None
    reading: str = "mixing"
    backbone: str = "ResNet-18"

    @property
    def label(self) -> str:
        return f"{self.backbone} {self.rung}".strip()

    def on(self, backbone_label: str) -> "Variant":
        """The same rung on another backbone (its label says so)."""
        from dataclasses import replace
        return replace(self, backbone=backbone_label)


#: every rung by record method name: the mixing reading (``cucn:mix``, ``cucn:w+mix``, ``cucn``),
#: the no-mixing reading (``cucn:w``, ``cucn:w+cbam``), and the no-mixing base both share
RUNGS = {v.method: v for v in (
    Variant("cucn:base", "(no mixing)", False, False, False, "ResNet18#", "no-mixing"),
    Variant("cucn:mix", "+ mixing", False, False, True, "ResNet18#", "mixing"),
    Variant("cucn:w+mix", "+ W + mixing", True, False, True, "ResNet18# + W", "mixing"),
    Variant("cucn", "+ W + CBAM + mixing (CUCN)", True, True, True, "ResNet18# + W + CBAM",
            "mixing"),
    Variant("cucn:w", "+ W (no mixing)", True, False, False, "ResNet18# + W", "no-mixing"),
    Variant("cucn:w+cbam", "+ W + CBAM (no mixing)", True, True, False, "ResNet18# + W + CBAM",
            "no-mixing"),
)}


def table2_variants(use_cbam: bool = True, mix: bool = True, backbone_label: str = "ResNet-18",
                    reading: str = "mixing") -> list[Variant]:
    """The ladder of Table II on ``backbone_label``.

    ``reading="mixing"`` (default; the paper's, very likely): the no-mixing base as an extra
    row, then mixing -> + W -> + W + CBAM, all with the uncertainty mixing (``cucn:base``,
    ``cucn:mix``, ``cucn:w+mix``, ``cucn``). ``reading="no-mixing"``: base -> + W -> + W + CBAM
    without mixing, then the full CUCN (``cucn:base``, ``cucn:w``, ``cucn:w+cbam``, ``cucn``).
    ``use_cbam=False`` drops the CBAM rungs; ``mix=False`` keeps only the rungs without mixing
    (the no-mixing reading without its last rung).
    """
    if reading not in READINGS:
        raise ValueError(f"reading={reading!r}: choose one of {READINGS}")
    if not mix:
        reading = "no-mixing"
    names = (["cucn:base", "cucn:mix", "cucn:w+mix", "cucn"] if reading == "mixing"
             else ["cucn:base", "cucn:w", "cucn:w+cbam", "cucn"])
    out = [RUNGS[m] for m in names if (use_cbam or not RUNGS[m].cbam) and (mix or not RUNGS[m].mix)]
    if reading == "no-mixing" and mix and not use_cbam:
        out.append(RUNGS["cucn:w+mix"])
    return [v.on(backbone_label) for v in out]


def build_variant_model(variant: Variant, splits, profile="smoke", backbone: str | None = None,
                        embed_dim: int = 64, drop_rate: float = 0.4) -> nn.Module:
    """The profile's backbone (with CBAM if the variant has it), wrapped in :class:`CUCN` when
    the variant mixes."""
    from ferlib.models.backbones import build_backbone

    prof = get_profile(profile)
    train = splits.train
    size = int(train.image_size[0])
    net = build_backbone(backbone or prof.backbone, num_classes=train.num_classes,
                         in_channels=train.in_channels, width=prof.width, cbam=variant.cbam,
                         dropout=prof.dropout,
                         image_size=size)
    if not variant.mix:
        return net
    return CUCN(net, train.num_classes, embed_dim=embed_dim, drop_rate=drop_rate,
                in_channels=train.in_channels, image_size=size)


class VariantRun(NamedTuple):
    variant: Variant
    result: object            # ferlib.train.FitResult
    record_path: Path | None
    class_weight: torch.Tensor | None


#: the paper's classifier learning rate over the backbone's (5e-4 vs 1e-4, Adam,
#: ExponentialLR(0.9)), used where the profile follows the paper (``Profile.paper_recipe``:
#: full); smoke and cpu train with the profile's own recipe (ferlib.config,
#: notebooks/02_baseline), one learning rate for every parameter
HEAD_LR_FACTOR = 5.0
#: the paper's per-epoch learning-rate decay (ExponentialLR), with the same condition
LR_DECAY = 0.9


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The classifier's parameters: CUCN's mean / log-variance heads and ``fc``, or a plain
    backbone's ``fc``."""
    if isinstance(model, CUCN):
        mods = (model.mu_head, model.logvar_head, model.fc)
    else:
        mods = (model.fc,)
    return [p for m in mods for p in m.parameters() if p.requires_grad]


def optimizer_factory(model: nn.Module, lr: float, head_factor: float = 1.0,
                      weight_decay: float = 1e-4):
    """An :func:`ferlib.train.fit` optimizer factory: Adam with two parameter groups, the
    backbone at ``lr`` and the classifier (:func:`head_parameters`) at ``head_factor * lr``."""
    def make(params):
        params = list(params)
        head_ids = {id(p) for p in head_parameters(model)}
        head = [p for p in params if id(p) in head_ids]
        body = [p for p in params if id(p) not in head_ids]
        return torch.optim.Adam([{"params": body, "lr": lr},
                                 {"params": head, "lr": head_factor * lr}],
                                lr=lr, weight_decay=weight_decay)
    return make


def mix_warmup(profile, epochs: int) -> int:
    """Epochs a mixing rung trains on the unmixed feature before it mixes
    (:func:`ferlib.methods.cucn.model.mixing_active`): none where the profile follows the paper
    (full: RUL mixes from the first epoch of a pretrained backbone); otherwise the profile's
    warm-up, at most ``epochs - 1`` (smoke and cpu: half the run, as EAN's graph)."""
    prof = get_profile(profile)
    return 0 if prof.paper_recipe else min(prof.warmup_epochs, epochs - 1)


def _weights_spec(spec):
    return spec if (spec is None or isinstance(spec, str)) else [float(v) for v in spec]


def run_variant(variant: Variant, splits, *, profile="smoke", device="auto", seed: int = 0,
                class_weights="effective", beta: float = 0.999, normalizer: str = "weights",
                weighting: str = "rul", results_path="../_build/records",
                backbone: str | None = None, epochs: int | None = None,
                checkpoint_dir=None, progress: bool = False, source: str | None = None,
                train_set=None, method_suffix: str = "",
                mix_warmup_epochs: int | None = None) -> VariantRun:
    """Train one rung with :func:`ferlib.train.fit` and write its record.

    ``class_weights``: ``"effective"`` (default), ``"inverse"``, a list of K numbers or None —
    used only by weighted rungs, computed from the training split's class counts. ``train_set``
    replaces ``splits.train`` (e.g. a label-flipped copy). Adam (``profile.lr``, weight decay
    1e-4); a profile with ``paper_recipe`` (full) follows the paper: the classifier at 5x the
    backbone's learning rate (:data:`HEAD_LR_FACTOR`) and ExponentialLR(:data:`LR_DECAY`). The
    record's ``variant`` label names the backbone that actually ran.
    """
    from ferlib.train import fit, set_seed
    from ferlib.train.recording import FIT_FIELDS, write_run_record

    prof = get_profile(profile)
    bb = backbone or prof.backbone
    variant = variant.on(backbones.backbone_label(bb))       # the label names the backbone that runs
    n_epochs = given_or(epochs, prof.epochs, "epochs")
    train = splits.train if train_set is None else train_set
    cw = resolve_class_weights(class_weights, train.class_counts(), beta) if variant.weighted else None
    if mix_warmup_epochs is None:
        mix_warmup_epochs = mix_warmup(prof, n_epochs) if variant.mix else 0
    loss = CUCNLoss(class_weight=cw, mix=variant.mix, normalizer=normalizer, weighting=weighting,
                    warmup_epochs=mix_warmup_epochs)
    set_seed(seed)  # the initial weights depend on the seed only
    model = build_variant_model(variant, splits, prof, bb)
    scheduler = None
    head_factor = HEAD_LR_FACTOR if prof.paper_recipe else 1.0
    if prof.paper_recipe:
        scheduler = lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, LR_DECAY)  # noqa: E731
    ckpt = None if checkpoint_dir is None else Path(checkpoint_dir) / (
        variant.method.replace(":", "_").replace("+", "_") + method_suffix.replace(":", "_"))
    opts = prof.fit_options(n_epochs)
    if head_factor != 1.0:   # the paper's two learning rates (Adam)
        opts["optimizer"] = optimizer_factory(model, prof.lr, head_factor, opts["weight_decay"])
    result = fit(model, train, splits.val, test_set=splits.test, **opts,
                 loss_fn=loss, predict_fn=predict_fn, scheduler=scheduler, device=device,
                 seed=seed, checkpoint_dir=ckpt, progress=progress)
    params = {"profile": prof.name, "backbone": bb, "width": prof.width, "epochs": n_epochs,
              "batch_size": prof.batch_size, "lr": prof.lr,
              "optimizer": "adam" if head_factor != 1.0 else (prof.optimizer or "adam"),
              "weight_decay": opts["weight_decay"], "schedule": opts.get("schedule"),
              "scheduler": f"ExponentialLR({LR_DECAY})" if scheduler else None,
              "head_lr": head_factor * prof.lr, "variant": variant.label,
              "reading": variant.reading, "paper_row": variant.paper_row, "weighted": variant.weighted, "cbam": variant.cbam,
              "mix": variant.mix, "class_weights": _weights_spec(class_weights) if variant.weighted else None,
              "class_weight_vector": None if cw is None else [round(v, 6) for v in cw.tolist()],
              "beta": beta, "normalizer": normalizer, "weighting": weighting,
              "mix_warmup_epochs": mix_warmup_epochs,
              "val_split": splits.val.split, "n_train": len(train), "n_val": len(splits.val),
              "n_test": len(splits.test), "image_size": int(train.image_size[0]),
              "in_channels": train.in_channels,
              "label_noise": float(np.mean(train.labels != train.clean_labels))
              if getattr(train, "clean_labels", None) is not None else 0.0}
    record_path = None
    if results_path is not None:
        folder = Path(results_path)
        folder.mkdir(parents=True, exist_ok=True)
        record_path = write_run_record(
            folder, method=variant.method + method_suffix, splits=splits, result=result,
            params=params, seed=seed, source=source, fit_fields=(*FIT_FIELDS, "history"))
    return VariantRun(variant, result, record_path, cw)


@dataclass
class Table2:
    """What :func:`run_table2` returns: ``table`` (one row per rung) and the runs by method."""

    table: pd.DataFrame
    runs: dict = field(default_factory=dict)


def class_gap(metrics: dict) -> float:
    """Best minus worst per-class recall (the paper's max/min class accuracy gap)."""
    return float(metrics["max_class_recall"] - metrics["min_class_recall"])


def table2_frame(runs) -> pd.DataFrame:
    """One row per run: overall / min / max class recall (test split, epoch chosen on val), the
    worst and best classes, the gap, and the mean of the last 5 epochs' test accuracy."""
    rows = []
    for run in (runs.values() if isinstance(runs, dict) else runs):
        m = run.result.test_metrics
        per = m["per_class_recall"]
        rows.append({"method": run.variant.method, "setup": run.variant.label,
                     "reading": run.variant.reading,
                     "accuracy": m["accuracy"], "min_class_recall": m["min_class_recall"],
                     "worst_class": min(per, key=per.get),
                     "max_class_recall": m["max_class_recall"], "best_class": max(per, key=per.get),
                     "gap": class_gap(m), "mean_class_accuracy": m["mean_class_accuracy"],
                     "accuracy_last5": (run.result.test_last5 or {}).get("accuracy", math.nan),
                     "best_epoch": run.result.best_epoch, "wall_time_s": run.result.wall_time})
    return pd.DataFrame(rows)


def run_table2(splits, *, profile="smoke", device="auto", seed: int = 0,
               class_weights="effective", use_cbam: bool = True, mix: bool = True,
               results_path="../_build/records", backbone: str | None = None,
               checkpoint_dir=None, progress: bool = False, source: str | None = None,
               reading: str = "mixing") -> Table2:
    """Train every rung of :func:`table2_variants` (``reading``) on the same splits and seed."""
    prof = get_profile(profile)
    label = backbones.backbone_label(backbone or prof.backbone)
    runs = {}
    for variant in table2_variants(use_cbam, mix, label, reading):
        runs[variant.method] = run_variant(
            variant, splits, profile=prof, device=device, seed=seed, class_weights=class_weights,
            results_path=results_path, backbone=backbone, checkpoint_dir=checkpoint_dir,
            progress=progress, source=source)
    return Table2(table2_frame(runs), runs)


def compare_with_paper(table: pd.DataFrame, dataset: str = "synthfacs") -> pd.DataFrame:
    """Ours (percent) beside the :data:`PAPER_TABLE2` row each rung is compared with (the
    MS-Celeb ResNet-18 rows), one row per rung; ``reading`` says which reading of Table II the
    comparison uses (the no-mixing base is an extra row beside the paper's first)."""
    ours = table[["method", "setup", "accuracy", "min_class_recall", "max_class_recall"]].copy()
    for col in ("accuracy", "min_class_recall", "max_class_recall"):
        ours[col] = 100 * ours[col]
    ours = ours.rename(columns={c: f"ours_{c}" for c in ("accuracy", "min_class_recall",
                                                          "max_class_recall")})
    ours.insert(2, "reading", [RUNGS[m].reading if m in RUNGS else "" for m in ours["method"]])
    ours.insert(3, "paper_row", [RUNGS[m].paper_row if m in RUNGS else None for m in ours["method"]])
    paper = PAPER_TABLE2[PAPER_TABLE2["pretrained"] == "MS-Celeb-1M"].drop(
        columns=["backbone", "pretrained"]).rename(
        columns={c: f"paper_{c}" for c in ("accuracy", "min_class_recall", "max_class_recall")})
    out = ours.merge(paper, on="paper_row", how="left")
    out.attrs["note"] = (f"ours: {dataset}, from scratch; paper: AffectNet, MS-Celeb-1M pretrained "
                         "ResNet-18. reading 'mixing': mixing on in every rung (the paper's, very "
                         "likely); 'no-mixing': the rung without it. " + FROM_SCRATCH_CAVEAT)
    return out


def load_table2_records(folder) -> pd.DataFrame | None:
    """Committed CUCN records (``book/records``) as a flat table, or None if the folder holds
    records but no CUCN one. A folder that does not exist or holds no record is an error."""
    folder = Path(folder)
    from ferlib.records import select

    # the chapter's table: natural class balance, clean labels (not a degradation-grid cell)
    df = select(folder, method=set(RUNGS), natural=True, clean=True)
    return df.reset_index(drop=True) if len(df) else None


def committed_table2(records: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """:func:`compare_with_paper` for each (dataset, profile) of :func:`load_table2_records`,
    rungs in ladder order (the newest record of a rung wins)."""
    order = {m: i for i, m in enumerate(
        ["cucn:base", "cucn:mix", "cucn:w", "cucn:w+mix", "cucn:w+cbam", "cucn"])}
    out = {}
    for (ds, prof), part in records.groupby(["dataset", "param/profile"], sort=True):
        t = part.drop_duplicates("method", keep="last")
        # the rung's label from the backbone it ran on (records before this label fix say ResNet-18)
        bb = str(t["param/backbone"].iloc[0]) if "param/backbone" in t else "resnet18"
        labels = {m: v.on(backbones.backbone_label(bb)).label for m, v in RUNGS.items()}
        t = t.assign(setup=t["method"].map(labels))
        t = t.assign(_o=t["method"].map(order).fillna(len(order))).sort_values("_o")
        cols = ["method", "setup", "accuracy", "min_class_recall", "max_class_recall"]
        out[(ds, prof)] = compare_with_paper(t[cols].reset_index(drop=True), ds)
    return out


# ----------------------------------------------------------------------------------------------
# uncertainty
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def uncertainty_scores(model: CUCN, dataset, device="auto", batch_size: int = 256) -> np.ndarray:
    """``u = mean exp(logvar)`` of every sample (N,), in eval mode (no dropout, running BN)."""
    if not isinstance(model, CUCN):
        raise TypeError(f"uncertainty needs a CUCN model, got {type(model).__name__}")
    dev = resolve_device(device)
    model = model.to(dev).eval()
    x_all, _ = dataset.tensors()  # (N, C, H, W)
    out = [model.uncertainty(x_all[i:i + batch_size].to(dev)).float().cpu()
           for i in range(0, len(x_all), batch_size)]
    return torch.cat(out).numpy()


def extreme_samples(scores, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``k`` largest and the ``k`` smallest scores (largest first / smallest first)."""
    scores = np.asarray(scores)
    order = np.argsort(scores, kind="stable")
    return order[::-1][:k].copy(), order[:k].copy()


class NoiseStudy(NamedTuple):
    """Uncertainty of a CUCN trained on a label-flipped copy, per training sample."""

    frame: pd.DataFrame   # columns: uncertainty, flipped, label, clean_label
    summary: dict         # rate, n_flipped, mean_u_flipped, mean_u_clean, auroc
    run: VariantRun


def uncertainty_vs_noise(splits, *, rate: float = 0.2, profile="smoke", device="auto",
                         seed: int = 0, class_weights="effective", use_cbam: bool = True,
                         results_path="../_build/records", backbone: str | None = None,
                         progress: bool = False, source: str | None = None) -> NoiseStudy:
    """Train the full model on ``flip_labels(splits.train, rate, seed)`` and compare the learnt
    uncertainty of flipped and clean samples (AUROC of u for "is flipped", sklearn).

    In RUL's convention a hard (here: mislabelled) sample should get a *large* u. The record's
    method is ``cucn`` (or ``cucn:w+mix``) with suffix ``@noise<rate>``.
    """
    from sklearn.metrics import roc_auc_score

    from ferlib.data import flip_labels

    noisy = flip_labels(splits.train, rate, seed=seed)
    variant = table2_variants(use_cbam, True)[-1]          # cucn, or cucn:w+mix without CBAM
    run = run_variant(variant, splits, profile=profile, device=device, seed=seed,
                      class_weights=class_weights, results_path=results_path, backbone=backbone,
                      progress=progress, source=source, train_set=noisy,
                      method_suffix=f"@noise{rate:g}")
    u = uncertainty_scores(run.result.model, noisy, device)
    flipped = noisy.labels != noisy.clean_labels
    frame = pd.DataFrame({"uncertainty": u, "flipped": flipped, "label": noisy.labels,
                          "clean_label": noisy.clean_labels})
    auroc = float(roc_auc_score(flipped, u)) if 0 < flipped.sum() < len(flipped) else math.nan
    summary = {"rate": rate, "n_flipped": int(flipped.sum()),
               "mean_u_flipped": float(u[flipped].mean()) if flipped.any() else math.nan,
               "mean_u_clean": float(u[~flipped].mean()) if (~flipped).any() else math.nan,
               "auroc": auroc}
    return NoiseStudy(frame, summary, run)


# ----------------------------------------------------------------------------------------------
# the worked example the chapter checks (deterministic numbers for its last cell)
# ----------------------------------------------------------------------------------------------
def hand_case() -> dict:
    """The chapter's worked example through ferlib: class weights of counts (1290, 281, 4772)
    (RAF-DB Surprise / Fear / Happy), the mixing weights of u = (1, 3, 6) under the permutation
    (1, 2, 0), and the class-weighted mixing loss of two samples with logits (0, 0) and (ln 3, 0),
    labels (0, 1), partners swapped, class weights (1, 3): (12 ln 2 - ln 3) / 8."""
    counts = [1290, 281, 4772]
    logvar = torch.log(torch.tensor([[1.0, 1.0], [3.0, 3.0], [6.0, 6.0]]))
    mu = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    _, w = mix_features(mu, logvar, torch.tensor([1, 2, 0]))
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    loss = mixing_loss(logits, torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([1.0, 3.0]))
    return {"inverse": class_weights(counts, method="inverse").tolist(),
            "effective": class_weights(counts, method="effective").tolist(),
            "mix_weights": w.tolist(), "mixing_loss": float(loss),
            "mixing_loss_closed_form": (12 * math.log(2) - math.log(3)) / 8}


# ----------------------------------------------------------------------------------------------
# the mixing explorer (CUCN Eq. 2 on two chosen faces)
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def mixing_state(model: CUCN, dataset, i: int, j: int, device="cpu",
                 weighting: str = "rul") -> dict:
    """CUCN Eq. 2 on training faces ``i`` and ``j`` (evaluation mode: no dropout, running BN):
    their uncertainties ``u_i``, ``u_j``, the weight ``w`` of ``mu_i`` in the mix
    (:func:`ferlib.methods.cucn.model.mix_features`), the class probabilities of each face alone and
    of the mixed feature, and the mixing loss's two halves (cross-entropy of the mix against
    ``y_i`` and against ``y_j``). Numpy arrays and floats."""
    if not isinstance(model, CUCN):
        raise TypeError(f"the mixing explorer needs a CUCN model, got {type(model).__name__}")
    n = len(dataset)
    for name, k in (("i", i), ("j", j)):
        if not 0 <= int(k) < n:
            raise ValueError(f"face {name}={k} is outside the dataset's 0..{n - 1}")
    dev = resolve_device(device)
    model = model.to(dev).eval()
    x = torch.stack([dataset[int(i)][0], dataset[int(j)][0]]).to(dev)   # (2, C, H, W)
    y = torch.as_tensor([int(dataset.labels[i]), int(dataset.labels[j])], device=dev)
    mu, logvar = model.embed(x)                                         # (2, D), (2, D)
    mixed, w = mix_features(mu, logvar, torch.tensor([1, 0], device=dev), weighting)
    p_alone = torch.softmax(model.fc(mu), dim=1)                        # (2, K)
    logit_mix = model.fc(mixed[:1])                                     # (1, K): w mu_i + (1-w) mu_j
    p_mix = torch.softmax(logit_mix, dim=1)[0]
    ce = torch.nn.functional.cross_entropy
    u = relative_uncertainty(logvar)
    return {"i": int(i), "j": int(j), "y_i": int(y[0]), "y_j": int(y[1]),
            "u_i": float(u[0]), "u_j": float(u[1]), "w": float(w[0]),
            "p_i": p_alone[0].cpu().numpy(), "p_j": p_alone[1].cpu().numpy(),
            "p_mix": p_mix.cpu().numpy(),
            "ce_y_i": float(ce(logit_mix, y[:1])), "ce_y_j": float(ce(logit_mix, y[1:]))}


def plot_mixing(state: dict, dataset, class_names, axes=None):
    """The two faces (with label and u), and the class probabilities of each alone and of the
    mix, the two labels marked; the title gives w and the two halves of the loss."""
    import matplotlib.pyplot as plt
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), gridspec_kw={"width_ratios": [1, 1, 2.6]})
    else:
        fig = axes[0].figure
    for ax, key in zip(axes[:2], ("i", "j")):
        img = dataset[state[key]][0].numpy()
        ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray")
        ax.set_title(f"face {state[key]}: {class_names[state['y_' + key]]}\nu = {state['u_' + key]:.3g}",
                     fontsize=9)
        ax.axis("off")
    k = len(class_names)
    xs = np.arange(k)
    ax = axes[2]
    ax.bar(xs - 0.27, state["p_i"], 0.27, label=f"face {state['i']} alone", color="C0", alpha=0.6)
    ax.bar(xs, state["p_mix"], 0.27, label="mixed feature", color="k")
    ax.bar(xs + 0.27, state["p_j"], 0.27, label=f"face {state['j']} alone", color="C1", alpha=0.6)
    for key, c in (("y_i", "C0"), ("y_j", "C1")):
        ax.axvline(state[key], color=c, ls="--", lw=1)
    ax.set_xticks(xs)
    ax.set_xticklabels([n[:4] for n in class_names], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(f"w (share of face {state['i']}) = {state['w']:.3f};  CE(mix, y_i) = "
                 f"{state['ce_y_i']:.2f}, CE(mix, y_j) = {state['ce_y_j']:.2f}", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def mixing_explorer(model: CUCN, dataset, class_names=None, i: int = 0, j: int = 1,
                    device="cpu"):
    """ipywidgets: pick two training faces (by index, or a class each and a position in it);
    redraws :func:`plot_mixing` with their uncertainties, the weight w and the mixed
    prediction against both labels."""
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from IPython.display import display

    names = list(class_names or dataset.class_names)
    n = len(dataset)
    si = W.IntSlider(value=i, min=0, max=n - 1, description="face i", continuous_update=False)
    sj = W.IntSlider(value=j, min=0, max=n - 1, description="face j", continuous_update=False)
    out = W.Output()

    def redraw(*_):
        with out:
            out.clear_output(wait=True)
            fig = plot_mixing(mixing_state(model, dataset, si.value, sj.value, device), dataset, names)
            display(fig)
            plt.close(fig)

    for s in (si, sj):
        s.observe(redraw, names="value")
    redraw()
    return W.VBox([W.HBox([si, sj]), out])
