"""Every method of the book on one protocol (chapter notebooks/07_comparison).

Each paper compares itself with different baselines, backbones and splits. Here every method
runs on the same :class:`ferlib.data.Splits`, the same profile backbone and the same metrics
(:func:`ferlib.metrics.classification_metrics`), and the tables are built from results records
(:mod:`ferlib.records`), never from typed numbers.

* :data:`METHODS` -- the registry: method name -> :class:`Runner`, a thin callable
  ``run(splits, profile, device, seed, results_path, *, noise_rate=0.0, progress, source,
  checkpoint_dir=None, **opts) -> [record paths]`` that delegates to the chapter module (no
  training logic here).
* :data:`TABLE_ROWS` -- the chapters' other table rows (DAN + latent augmentation, the CUCN
  ladder), runnable the same way but left out of the comparison's default method list.
* :func:`ensure_records` -- runs only the (method, dataset, condition, seed) combinations that
  have no record yet; resumable after a crash. With ``checkpoint_root`` (CLI
  ``--checkpoint-dir``) a run interrupted half-way also resumes from its last finished epoch:
  each run trains in its own :func:`checkpoint_folder`, removed once its record is written.
* :func:`comparison_table`, :func:`per_class_recall_table`, :func:`degradation_table`,
  :func:`plot_degradation` -- the chapter's tables and line plots, averaged over seeds.

Conditions. A grid cell is ``{"imbalance_ratio": r or None, "noise_rate": p}``:

* ``imbalance_ratio`` -- the training split is subsampled to the exponential profile of Cui et
  al. (2019) with head / tail = r (:func:`ferlib.data.make_long_tailed`); None keeps the
  dataset's own distribution. Validation and test are untouched.
* ``noise_rate`` -- a share p of training labels (seed ``seed``) and of validation labels (seed
  ``seed + 1``, scored on the noisy labels) is flipped as in the SCN / EAN protocol
  (:func:`ferlib.data.add_label_noise`); the test labels stay clean.

Records of the natural cell (None, 0) go to ``results_path`` itself, where the chapters write
theirs, so chapter runs are reused; other cells go to ``results_path/cells/<cell>/`` (the
baseline's checkpoint reuse keys on split sizes, which label noise does not change). After a
run, ensure_records stamps ``imbalance_ratio`` and ``noise_rate`` into the params of the records
of the cell (a record without them counts as natural, noise 0: the one definition is
:func:`ferlib.records.cell_of`, and every table here filters through
:func:`ferlib.records.select`). ``n_params``, the trainable parameters of the model that ran,
is written by the runner itself (:func:`ferlib.train.recording.write_run_record`).

Method names. Record ``method`` strings are compared with ``-`` and ``_`` treated alike
(:func:`ferlib.records.normalize_method`), so ``latent-aug`` (written by
ferlib.methods.latent_aug.experiment) and ``latent_aug`` (the scoreboard's name) are the same
method.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ferlib.records import normalize_method, select

__all__ = ["Runner", "SAMPLERS", "METHODS", "TABLE_ROWS", "TABLE_METRICS", "normalize_method",
           "registry_name",
           "count_parameters", "with_label_noise", "with_imbalance", "degradation_grid",
           "cell_folder", "checkpoint_folder", "find_record", "ensure_records", "comparison_table",
           "gains_table", "describe_gains",
           "estimates_table", "format_estimates", "gain_sentence", "paper_gain_sentence",
           "ordering_sentence",
           "per_class_recall_table", "degradation_table", "plot_degradation",
           "plot_cost", "load_all_records", "main"]

#: columns of the main table (means over seeds), in order
TABLE_METRICS = ("accuracy", "mean_class_accuracy", "macro_f1", "min_class_recall")
FACTORS = ("imbalance_ratio", "noise_rate")


# ----------------------------------------------------------------------------------------------
# conditions of a grid cell
# ----------------------------------------------------------------------------------------------
def with_label_noise(splits, noise_rate: float, seed: int = 0):
    """``splits`` with a share ``noise_rate`` of train labels (seed ``seed``) and val labels
    (seed ``seed + 1``, clean labels dropped so selection sees the noise) flipped; test clean.
    The same flips as chapter 05's noisy-label experiment (SCN / EAN protocol)."""
    from ferlib.data import add_label_noise
    from ferlib.data.splits import Splits

    rate = float(noise_rate)
    if not 0 <= rate < 1:
        raise ValueError(f"noise_rate must be in [0, 1), got {noise_rate}")
    if rate == 0:
        return splits
    return Splits(add_label_noise(splits.train, rate, seed),
                  add_label_noise(splits.val, rate, seed + 1, keep_clean=False), splits.test)


def with_imbalance(splits, imbalance_ratio, seed: int = 0):
    """``splits`` with the training split subsampled to head / tail = ``imbalance_ratio``
    (:func:`ferlib.data.make_long_tailed`, classes ranked by their current count); None keeps it."""
    from ferlib.data import make_long_tailed
    from ferlib.data.splits import Splits

    if imbalance_ratio is None:
        return splits
    return Splits(make_long_tailed(splits.train, float(imbalance_ratio), seed=seed),
                  splits.val, splits.test)


def _cell(cell: Mapping | None) -> tuple[float | None, float]:
    cell = dict(cell or {})
    unknown = set(cell) - set(FACTORS)
    if unknown:
        raise ValueError(f"grid cell {cell}: unknown keys {sorted(unknown)} (allowed: {FACTORS})")
    ratio = cell.get("imbalance_ratio")
    if ratio is not None:
        ratio = float(ratio)
        if not ratio >= 1:
            raise ValueError(f"grid cell {cell}: imbalance_ratio must be >= 1 (head / tail)")
    rate = float(cell.get("noise_rate") or 0.0)
    if not 0 <= rate < 1:
        raise ValueError(f"grid cell {cell}: noise_rate must be in [0, 1)")
    return ratio, rate


def degradation_grid(imbalance_ratios: Sequence = (), noise_rates: Sequence = (),
                     natural: bool = True) -> list[dict]:
    """Grid cells: the natural cell (if ``natural``), one per imbalance ratio (noise 0) and one
    per noise rate (natural imbalance), without repeats."""
    cells = [{"imbalance_ratio": None, "noise_rate": 0.0}] if natural else []
    cells += [{"imbalance_ratio": float(r), "noise_rate": 0.0} for r in imbalance_ratios]
    cells += [{"imbalance_ratio": None, "noise_rate": float(p)} for p in noise_rates]
    out, seen = [], set()
    for c in cells:
        key = _cell(c)
        if key not in seen:
            seen.add(key)
            out.append({"imbalance_ratio": key[0], "noise_rate": key[1]})
    return out


def cell_folder(results_path, cell: Mapping | None = None) -> Path:
    """Where the records of ``cell`` go: ``results_path`` for the natural cell, else
    ``results_path/cells/ir<r|nat>_noise<p>``."""
    ratio, rate = _cell(cell)
    if ratio is None and rate == 0:
        return Path(results_path)
    return Path(results_path) / "cells" / _cell_label(ratio, rate)


def _cell_label(ratio, rate) -> str:
    """``ir<r|nat>_noise<p>``: a cell as it appears in folder names."""
    return f"ir{'nat' if ratio is None else f'{ratio:g}'}_noise{rate:g}"


def checkpoint_folder(root, method: str, dataset: str, profile, cell: Mapping | None = None,
                      seed: int = 0) -> Path:
    """The checkpoint folder of one (method, dataset, profile, cell, seed) run under ``root``:
    ``<method>_<dataset>_<profile>_ir<r|nat>_noise<p>_seed<seed>_<digest>``. The readable part
    rounds the cell and replaces odd characters; the digest (12 hex digits of SHA-1) is of the
    exact values (the method by its registry name, the cell's numbers by ``repr``), so two
    different runs never share a folder. A runner gives each training of its run a named
    subfolder of it (``baseline``, ``latent-aug``, ...), so two trainings never share one
    either."""
    from ferlib.config import get_profile

    ratio, rate = _cell(cell)
    key = registry_name(method) or normalize_method(method)
    prof = get_profile(profile).name
    exact = json.dumps([key, str(dataset), prof, repr(ratio), repr(rate), int(seed)])
    digest = hashlib.sha1(exact.encode()).hexdigest()[:12]
    stem = f"{key}_{dataset}_{prof}_{_cell_label(ratio, rate)}_seed{int(seed)}"
    return Path(root) / f"{re.sub(r'[^A-Za-z0-9.=+-]+', '_', stem)}_{digest}"


def _training(checkpoint_dir, name: str) -> Path | None:
    """The subfolder of one training inside a run's checkpoint folder (None: not resumable)."""
    return None if checkpoint_dir is None else Path(checkpoint_dir) / name


# ----------------------------------------------------------------------------------------------
# runners: one thin call into each chapter module
# ----------------------------------------------------------------------------------------------
def _run_baseline(splits, profile, device, seed, results_path, *, noise_rate=0.0,
                  balanced=False, progress=False, source=None, checkpoint_dir=None):
    """ferlib.methods.baseline.load_or_train_baseline (chapter 02): reused when recorded, else
    trained (resumable in ``checkpoint_dir/baseline`` or ``checkpoint_dir/baseline+balanced``)."""
    from ferlib.methods.baseline.experiment import load_or_train_baseline

    s = with_label_noise(splits, noise_rate, seed)
    run = load_or_train_baseline(s, profile, device, seed, balanced, results_path,
                                 checkpoint_dir=_training(checkpoint_dir, "baseline+balanced"
                                                          if balanced else "baseline"),
                                 progress=progress, source=source)
    return [run.record_path]


def _run_balanced(splits, profile, device, seed, results_path, **kw):
    return _run_baseline(splits, profile, device, seed, results_path, balanced=True, **kw)


def _run_ahm(splits, profile, device, seed, results_path, *, noise_rate=0.0, progress=False,
             source=None, checkpoint_dir=None, **opts):
    """ferlib.methods.ahm.experiment.run_ahm_experiment (chapter 03) on the recorded baseline. Only
    the baseline's training is resumable (``checkpoint_dir/baseline``); the SAE heads are
    closed-form solves on its cached features (seconds), redone on a rerun."""
    from ferlib.methods.ahm.experiment import run_ahm_experiment
    from ferlib.methods.baseline.experiment import load_or_train_baseline

    s = with_label_noise(splits, noise_rate, seed)
    base = load_or_train_baseline(s, profile, device, seed, False, results_path,
                                  checkpoint_dir=_training(checkpoint_dir, "baseline"),
                                  progress=progress, source=source)
    run = run_ahm_experiment(s, profile, device, seed, results_path=results_path,
                             progress=progress, source=source, **opts)
    return [base.record_path, run.record_path]


def _latent_setup(splits, profile, device, seed, results_path, noise_rate, progress, source,
                  checkpoint_dir=None):
    """Chapter 04's shared steps (those of run_table1): the baseline (the VAE-GAN's perceptual
    net; resumable in ``checkpoint_dir/baseline``), the VAE-GAN (trained, or loaded from its
    checkpoint) and the class statistics of the encoder means. Returns (noisy splits, baseline
    run, VAE-GAN result, class stats)."""
    from ferlib.methods.latent_aug.experiment import encode_dataset, train_or_load_vaegan
    from ferlib.methods.latent_aug.latent import class_latent_stats
    from ferlib.methods.baseline.experiment import load_or_train_baseline

    s = with_label_noise(splits, noise_rate, seed)
    base = load_or_train_baseline(s, profile, device, seed, False, results_path,
                                  checkpoint_dir=_training(checkpoint_dir, "baseline"),
                                  progress=progress, source=source)
    # the VAE-GAN resumes from its own checkpoint folder beside the records
    # (<results_path>/checkpoints/vaegan_*, git-ignored), never from checkpoint_dir: finished,
    # it IS the model that latent_aug, dan+latent_aug and balanced:matched share, so it must
    # outlive the run that trained it
    vg = train_or_load_vaegan(s.train, profile, device, seed, results_path,
                              perceptual_model=base.model, progress=progress)
    mu, labels = encode_dataset(vg.model, s.train)
    names = list(s.train.class_names)
    stats = class_latent_stats(mu, labels, len(names), shrinkage="ledoit-wolf", class_names=names,
                               min_samples="skip")
    return s, base, vg, stats


def _run_latent_aug(splits, profile, device, seed, results_path, *, noise_rate=0.0,
                    progress=False, source=None, checkpoint_dir=None, **opts):
    """Chapter 04 (ferlib.methods.latent_aug.experiment): the latent-augmented classifier on the
    shared steps of :func:`_latent_setup` (resumable in ``checkpoint_dir/latent-aug``)."""
    from ferlib.methods.latent_aug.experiment import run_latent_augmentation

    s, base, vg, stats = _latent_setup(splits, profile, device, seed, results_path, noise_rate,
                                       progress, source, checkpoint_dir)
    _, path = run_latent_augmentation(s, vg.model, stats, profile, device, seed,
                                      results_path=results_path, progress=progress,
                                      source=source,
                                      checkpoint_dir=_training(checkpoint_dir, "latent-aug"),
                                      **opts)
    return [base.record_path, path]


def _dan_runner(mode: str):
    def run(splits, profile, device, seed, results_path, *, noise_rate=0.0, progress=False,
            source=None, checkpoint_dir=None, **opts):
        """ferlib.methods.latent_aug.experiment.run_dan (chapter 04) with ``mode`` (resumable in
        ``checkpoint_dir/dan``)."""
        from ferlib.methods.latent_aug.experiment import run_dan

        s = with_label_noise(splits, noise_rate, seed)
        _, path = run_dan(s, mode, profile=profile, device=device, seed=seed,
                          results_path=results_path, progress=progress, source=source,
                          checkpoint_dir=_training(checkpoint_dir, "dan"), **opts)
        return [path]
    return run


def _noisy_runner(method: str):
    def run(splits, profile, device, seed, results_path, *, noise_rate=0.0, progress=False,
            source=None, checkpoint_dir=None, **opts):
        """ferlib.methods.ean.experiment.noisy_label_experiment (chapter 05), one method, one
        rate (it flips the labels itself, exactly as :func:`with_label_noise`); its one fit
        resumes in ``checkpoint_dir/<method>_noise<rate>``. The thresholds are the library's
        (or ``opts``): the chapter's tuning sweep is not run here."""
        from ferlib.methods.ean.experiment import noisy_label_experiment

        df = noisy_label_experiment(profile, dataset=splits.train.name, seed=seed,
                                    noise_rates=(float(noise_rate),), methods=(method,),
                                    device=device, results_path=results_path, splits=splits,
                                    progress=progress, source=source,
                                    checkpoint_dir=checkpoint_dir, **opts)
        return [Path(p) for p in df["record"] if p]
    return run


def _run_matched(splits, profile, device, seed, results_path, *, noise_rate=0.0,
                 progress=False, source=None, checkpoint_dir=None, **opts):
    """Chapter 04's control of latent augmentation: balanced resampling with the same draws
    per class (:func:`ferlib.methods.latent_aug.experiment.run_matched_resampling`), on the class
    statistics of the same VAE-GAN (:func:`_latent_setup`: only the classes latent
    augmentation replaced are replaced). Resumable in ``checkpoint_dir/balanced-matched``."""
    from ferlib.methods.latent_aug.experiment import run_matched_resampling

    s, _, _, stats = _latent_setup(splits, profile, device, seed, results_path, noise_rate,
                                   progress, source, checkpoint_dir)
    _, path = run_matched_resampling(s, stats, profile, device, seed, results_path=results_path,
                                     progress=progress, source=source,
                                     checkpoint_dir=_training(checkpoint_dir, "balanced-matched"),
                                     **opts)
    return [path]


def _run_dan_latent_aug(splits, profile, device, seed, results_path, *, noise_rate=0.0,
                        progress=False, source=None, checkpoint_dir=None, **opts):
    """Chapter 04's last Table I row: DAN trained with latent augmentation, on the same VAE-GAN
    and class statistics as :func:`_run_latent_aug` (:func:`_latent_setup`); resumable in
    ``checkpoint_dir/dan+latent-aug``."""
    from ferlib.methods.latent_aug.experiment import run_dan

    s, _, vg, stats = _latent_setup(splits, profile, device, seed, results_path, noise_rate,
                                    progress, source, checkpoint_dir)
    _, path = run_dan(s, "latent-aug", vg.model, stats, profile=profile, device=device, seed=seed,
                      results_path=results_path, progress=progress, source=source,
                      checkpoint_dir=_training(checkpoint_dir, "dan+latent-aug"), **opts)
    return [path]


def _cucn_runner(rung: str):
    def run(splits, profile, device, seed, results_path, *, noise_rate=0.0, progress=False,
            source=None, checkpoint_dir=None, **opts):
        """ferlib.methods.cucn.experiment.run_variant (chapter 06): one rung of Table II
        (resumable in the subfolder of ``checkpoint_dir`` that run_variant names by rung)."""
        from ferlib.methods.cucn.experiment import run_variant

        s = with_label_noise(splits, noise_rate, seed)
        run = run_variant(_cucn_variant(rung, profile), s, profile=profile, device=device, seed=seed,
                          results_path=results_path, progress=progress, source=source,
                          checkpoint_dir=checkpoint_dir, **opts)
        return [run.record_path]
    return run


def _cucn_variant(rung: str, profile="smoke"):
    from ferlib.config import get_profile
    from ferlib.models.backbones import backbone_label
    from ferlib.methods.cucn.experiment import RUNGS

    return RUNGS[rung].on(backbone_label(get_profile(profile).backbone))


_run_cucn = _cucn_runner("cucn")


#: how a runner draws its training batches: uniformly shuffled, class-balanced
#: (``fit(sampler="balanced")``), or none (AHM's closed-form solve on frozen features)
SAMPLERS = ("shuffle", "balanced", "none")


@dataclass(frozen=True)
class Runner:
    """One method of the comparison: ``fn`` runs it through its chapter module and returns the
    record paths it wrote; ``record_method`` is the ``method`` string its record carries;
    ``model`` names the network built for the parameter count; ``chapter`` the notebook.

    What the run trains with, as the chapter's function passes it to ``ferlib.train.fit``:
    ``loss`` (the dotted name of its ``loss_fn``; AHM: the closed-form solve on frozen features),
    ``sampler`` (:data:`SAMPLERS`, as its records' ``sampler`` field says) and ``predict`` (the
    dotted name of its ``predict_fn``; None: the arg-max of the model's logits). Tested to
    resolve (tests/test_compare.py); chapter 07 lists them."""

    fn: Callable
    record_method: str
    model: str
    chapter: str
    label: str = ""
    loss: str = "ferlib.train.engine.default_loss"
    sampler: str = "shuffle"
    predict: str | None = None

    def __call__(self, splits, profile, device, seed, results_path, **opts) -> list[Path]:
        paths = self.fn(splits, profile, device, seed, results_path, **opts)
        return [Path(p) for p in paths if p is not None]


_AHM_SOLVE = "ferlib.methods.ahm.sae.fit_projection"   # Sylvester solve, no gradient steps
_LATENT = "ferlib.methods.latent_aug.dataset.LatentAugmentation"  # around CE, or DAN's loss
_DAN_LOSS = "ferlib.methods.dan.model.DANLoss"
_CUCN_FIT = {"loss": "ferlib.methods.cucn.model.CUCNLoss",
             "predict": "ferlib.methods.cucn.model.predict_fn"}

#: method name (the scoreboard's spelling) -> runner, in the chapters' order
METHODS: dict[str, Runner] = {
    "baseline": Runner(_run_baseline, "baseline", "backbone", "02_baseline",
                       "cross-entropy"),
    "baseline+balanced": Runner(_run_balanced, "baseline+balanced", "backbone", "02_baseline",
                                "class-balanced resampling", sampler="balanced"),
    "ahm": Runner(_run_ahm, "ahm", "ahm", "03_ahm_semantic_space",
                  "AHM semantic space + SAE", loss=_AHM_SOLVE, sampler="none",
                  predict="ferlib.methods.ahm.sae.SemanticClassifier"),
    "latent_aug": Runner(_run_latent_aug, "latent-aug", "backbone",
                         "04_latent_covariance_augmentation", "latent covariance augmentation",
                         loss=_LATENT, sampler="balanced"),
    "dan": Runner(_dan_runner("none"), "dan", "dan", "04_latent_covariance_augmentation", "DAN",
                  loss=_DAN_LOSS),
    "dan+balanced": Runner(_dan_runner("balanced"), "dan+balanced", "dan",
                           "04_latent_covariance_augmentation", "DAN + balanced resampling",
                           loss=_DAN_LOSS, sampler="balanced"),
    "scn": Runner(_noisy_runner("scn"), "scn", "scn", "05_adjacency_threshold_tuning",
                  "SCN (self-cure)", loss="ferlib.methods.ean.scn.SCNLoss"),
    "ean": Runner(_noisy_runner("ean"), "ean", "ean", "05_adjacency_threshold_tuning",
                  "EAN (adjacency graph)", loss="ferlib.methods.ean.model.EANLoss",
                  predict="ferlib.methods.ean.model.ean_predict_batch"),
    "cucn": Runner(_run_cucn, "cucn", "cucn", "06_uncertainty_and_imbalance",
                   "CUCN (weights + CBAM + mixing)", **_CUCN_FIT),
}


#: the other rows of the chapters' tables, runnable by :func:`ensure_records` and the CLI but not
#: in the comparison's default method list: DAN with latent augmentation (chapter 04, Table I),
#: its control (balanced resampling with latent augmentation's draws per class), and
#: the other rungs of the CUCN ladder (chapter 06, Table II; its last rung is ``cucn``): the
#: mixing reading (``cucn:mix``, ``cucn:w+mix``), the no-mixing base, and the no-mixing reading
#: (``cucn:w``, ``cucn:w+cbam``)
TABLE_ROWS: dict[str, Runner] = {
    "dan+latent_aug": Runner(_run_dan_latent_aug, "dan+latent-aug", "dan",
                             "04_latent_covariance_augmentation", "DAN + latent augmentation",
                             loss=_LATENT, sampler="balanced"),
    "balanced:matched": Runner(_run_matched, "balanced:matched", "backbone",
                               "04_latent_covariance_augmentation",
                               "balanced resampling, latent augmentation's draws (control)",
                               loss="ferlib.methods.latent_aug.dataset.MatchedResampling",
                               sampler="balanced"),
    **{m: Runner(_cucn_runner(m), m, m, "06_uncertainty_and_imbalance", f"CUCN ladder: {label}",
                 **_CUCN_FIT)
       for m, label in (("cucn:base", "backbone, no mixing"),
                        ("cucn:mix", "backbone + mixing"),
                        ("cucn:w+mix", "+ class weights + mixing"),
                        ("cucn:w", "+ class weights, no mixing"),
                        ("cucn:w+cbam", "+ weights + CBAM, no mixing"))},
}


def _registry() -> dict[str, Runner]:
    return {**METHODS, **TABLE_ROWS}


def registry_name(method: str) -> str | None:
    """The :data:`METHODS` (or :data:`TABLE_ROWS`) key of a registry or record method name
    (``"latent-aug"`` -> ``"latent_aug"``), or None when it is not a registry method."""
    norm = normalize_method(method)
    for key, runner in _registry().items():
        if norm in (normalize_method(key), normalize_method(runner.record_method)):
            return key
    return None


def _runner(method: str) -> Runner:
    key = registry_name(method)
    if key is None:
        raise ValueError(f"unknown method {method!r}: choose from {', '.join(_registry())}")
    return _registry()[key]


# ----------------------------------------------------------------------------------------------
# parameter counts
# ----------------------------------------------------------------------------------------------
def _builder(model: str) -> Callable:
    """``(splits, profile) -> model`` for a :class:`Runner`'s ``model`` name: the builder its
    chapter module trains (or, for AHM, assembles) that network with."""
    if model == "backbone":
        from ferlib.methods.baseline.experiment import build_baseline_model
        return build_baseline_model
    if model == "ahm":
        from ferlib.methods.ahm.experiment import build_ahm_parts
        return build_ahm_parts
    if model == "dan":
        from ferlib.methods.latent_aug.experiment import build_dan_model
        return build_dan_model
    if model in ("scn", "ean"):
        from ferlib.methods.ean.experiment import build_noisy_model
        return lambda splits, profile: build_noisy_model(model, splits.train, profile)
    if model.startswith("cucn"):
        from ferlib.methods.cucn.experiment import build_variant_model
        return lambda splits, profile: build_variant_model(_cucn_variant(model, profile), splits,
                                                           profile)
    raise ValueError(f"no builder for model {model!r}")  # pragma: no cover - registry models only


def count_parameters(method: str, splits, profile="smoke") -> int:
    """Trainable parameters of the network ``method`` classifies with, built (untrained) for
    ``splits`` at ``profile`` by the builder its runner uses, counted as its records count them
    (:func:`ferlib.train.recording.count_trainable`). The records' own ``n_params`` (of the
    model that ran) come first; this fills in for records written before they held it. AHM:
    the backbone plus the SAE projection W (semantic dim x feature dim). Latent augmentation
    counts the classifier only (the VAE-GAN is used in training, not at test time)."""
    from ferlib.config import get_profile
    from ferlib.train.recording import count_trainable

    return count_trainable(_builder(_runner(method).model)(splits, get_profile(profile)))


# ----------------------------------------------------------------------------------------------
# records: reading, matching, stamping
# ----------------------------------------------------------------------------------------------
def load_all_records(*folders, optional=()) -> pd.DataFrame:
    """:func:`ferlib.records.load_records` of every folder (recursively), concatenated, with a
    ``folder`` column. Every folder must exist, and together they must hold at least one
    record (errors name the folders), except that the folders also listed in ``optional`` (a
    results folder before its first run) may be missing; None entries are ignored. An
    unreadable or incomplete record is an error naming it."""
    from ferlib.records import load_records

    frames = []
    optional = {str(Path(o)) for o in optional if o is not None}
    named = [f for f in folders if f is not None]
    for f in named:
        if not Path(f).is_dir() and str(Path(f)) not in optional:
            raise FileNotFoundError(f"records folder {f} does not exist")
        df = load_records(f, "**/*.json", missing_ok=True)
        if len(df):
            frames.append(df.assign(folder=str(f)))
    if not frames:
        if named and not all(str(Path(f)) in optional for f in named):
            raise ValueError(f"no results record in {', '.join(map(str, named))}")
        return load_records(Path("/nonexistent-ferlib-folder"), missing_ok=True)
    return pd.concat(frames, ignore_index=True, sort=False)


def _col(df: pd.DataFrame, name: str, default=np.nan) -> pd.Series:
    return df[name] if name in df.columns else pd.Series(default, index=df.index, dtype=object)


def _select(df: pd.DataFrame, dataset=None, split=None, profile=None) -> pd.DataFrame:
    if df is None or len(df) == 0:
        return pd.DataFrame(columns=list(getattr(df, "columns", [])) +
                            ["imbalance_ratio", "noise_rate", "method_key"])
    out = select(df, dataset=dataset, split=split, profile=profile)
    return out.assign(method_key=[normalize_method(str(m)) for m in out["method"]])


def _at_cell(df: pd.DataFrame, ratio: float | None, rate: float) -> pd.DataFrame:
    """The rows of one grid cell (ratio None = the natural class balance)."""
    return select(df, natural=ratio is None, imbalance_ratio=ratio, noise_rate=rate)


def find_record(records_df: pd.DataFrame, method: str, dataset: str, seed: int, cell=None,
                split: str | None = None, profile=None) -> pd.Series | None:
    """The newest record row of ``method`` (any spelling) on ``dataset`` / ``seed`` / ``cell``
    (and ``split`` / ``profile`` when given), or None."""
    ratio, rate = _cell(cell)
    df = _select(records_df, dataset, split, profile)
    if len(df) == 0:
        return None
    keys = {normalize_method(method)}
    if registry_name(method):
        r = _registry()[registry_name(method)]
        keys |= {normalize_method(registry_name(method)), normalize_method(r.record_method)}
    hit = _at_cell(df[df["method_key"].isin(keys)], ratio, rate)
    hit = hit[pd.to_numeric(hit["seed"], errors="coerce") == seed]
    return None if len(hit) == 0 else hit.iloc[-1]


def _stamp(path: Path, ratio, rate) -> None:
    """Add the cell to a record's params, in place and atomically; everything else, provenance
    and the runner's ``n_params`` included, stays as written."""
    from ferlib.records import read_record, write_text_atomic

    rec = read_record(path)
    params = dict(rec.get("params") or {})
    params["imbalance_ratio"] = ratio
    params.setdefault("noise_rate", rate)
    rec["params"] = params
    write_text_atomic(path, json.dumps(rec, indent=1) + "\n")


def _expected_split(dataset: str, eval_split):
    from ferlib.data.splits import DATASET_SPLITS

    if dataset == "synthfacs":
        return "test"
    return eval_split or DATASET_SPLITS.get(dataset, (None, None))[1]


def ensure_records(methods: Sequence[str], grid=None, *, dataset: str = "synthfacs",
                   data_root=None, eval_split=None, val_split: str = "holdout",
                   profile="smoke", device="auto", seeds: Sequence[int] = (0,),
                   results_path="../_build/records", read_also: Sequence = (),
                   method_opts: Mapping | None = None, progress: bool = True,
                   train_progress: bool = False, source: str | None = None,
                   splits=None, checkpoint_root=None) -> pd.DataFrame:
    """Make sure every (method, cell, seed) of the grid has a record; run only the missing ones.

    ``grid``: a list of cells ``{"imbalance_ratio": r|None, "noise_rate": p}`` (see
    :func:`degradation_grid`; default: the natural cell only). Records already in
    ``results_path`` or in the folders of ``read_also`` (e.g. the committed
    ``book/records/cpu``), searched recursively, count as done when method (either spelling),
    dataset, evaluation split, seed, profile name and cell match. Data is loaded only when
    something must run (``splits`` may be given to skip loading for ``seeds == (seed,)``).
    ``method_opts`` maps a method to extra keyword arguments for its runner. A failing run
    raises; the records written before it stay, so a rerun resumes.

    ``checkpoint_root``: a folder; each run then trains in its own
    :func:`checkpoint_folder` (every training in a named subfolder), so a run interrupted
    half-way resumes from its last finished epoch with the same record metrics as an
    uninterrupted one. The folder of a run is removed once its records are written (the record
    is the result). None: nothing is checkpointed and an interrupted run starts again.

    Returns the plan: one row per (method, imbalance_ratio (NaN = natural), noise_rate, seed)
    with ``status`` ("found" or "ran") and ``record`` (path).
    """
    from tqdm.auto import tqdm

    from ferlib.config import get_profile

    prof = get_profile(profile)
    runners = {m: _runner(m) for m in methods}
    cells = [dict(zip(FACTORS, _cell(c))) for c in (grid or [{}])]
    method_opts = dict(method_opts or {})
    split_name = _expected_split(dataset, eval_split)
    if checkpoint_root is not None and Path(checkpoint_root).exists() \
            and not Path(checkpoint_root).is_dir():
        raise ValueError(f"checkpoint_root {checkpoint_root}: exists and is not a folder")

    def known():   # results_path may be new and empty; the read_also folders must exist
        return load_all_records(results_path, *read_also, optional=[results_path])

    Path(results_path).mkdir(parents=True, exist_ok=True)

    have = known()
    plan = []
    for seed in seeds:
        for cell in cells:
            for m in methods:
                hit = find_record(have, m, dataset, seed, cell, split_name, prof.name)
                plan.append({"method": m, **cell, "seed": int(seed),
                             "status": "found" if hit is not None else "todo",
                             "record": None if hit is None else str(Path(hit["folder"]) / hit["file"])})
    todo = [row for row in plan if row["status"] == "todo"]

    def run_folder(row):
        return None if checkpoint_root is None else checkpoint_folder(
            checkpoint_root, row["method"], dataset, prof, {k: row[k] for k in FACTORS},
            row["seed"])

    def drop(folder):
        # the records are the result; a leftover folder would look like work in progress
        if folder is not None and folder.exists():
            shutil.rmtree(folder)

    for row in plan:   # recorded runs: a folder left by a stop between record and removal
        if row["status"] == "found":
            drop(run_folder(row))
    base_splits: dict[int, object] = {}
    bar = tqdm(todo, desc="comparison runs", disable=not progress or not todo)
    for row in bar:
        seed, cell = row["seed"], {k: row[k] for k in FACTORS}
        bar.set_postfix_str(f"{row['method']} ir={cell['imbalance_ratio']} noise={cell['noise_rate']:g}")
        # a run of an earlier row (e.g. the baseline that AHM builds on) may have made it
        hit = find_record(known(), row["method"], dataset, seed, cell, split_name, prof.name)
        if hit is not None:
            row.update(status="found", record=str(Path(hit["folder"]) / hit["file"]))
            drop(run_folder(row))
            continue
        if seed not in base_splits:
            if splits is not None and len(seeds) == 1:
                base_splits[seed] = splits
            else:
                from ferlib.data import load_splits
                base_splits[seed] = load_splits(dataset, data_root=data_root, eval_split=eval_split,
                                                val_split=val_split, profile=prof, seed=seed)
        s = with_imbalance(base_splits[seed], cell["imbalance_ratio"], seed)
        folder = cell_folder(results_path, cell)
        folder.mkdir(parents=True, exist_ok=True)
        runner = runners[row["method"]]
        ckpt = run_folder(row)
        paths = runner(s, prof, device, seed, folder, noise_rate=cell["noise_rate"],
                       progress=train_progress, source=source, checkpoint_dir=ckpt,
                       **method_opts.get(row["method"], {}))
        for p in paths:
            _stamp(Path(p), cell["imbalance_ratio"], cell["noise_rate"])
        drop(ckpt)
        own = [p for p in paths if registry_name(json.loads(Path(p).read_text())["method"])
               == registry_name(row["method"])]
        row.update(status="ran", record=str(own[-1]) if own else None)
    out = pd.DataFrame(plan, columns=["method", *FACTORS, "seed", "status", "record"])
    out["imbalance_ratio"] = pd.to_numeric(out["imbalance_ratio"], errors="coerce")  # NaN = natural
    return out


# ----------------------------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------------------------
def _order(keys) -> list[str]:
    reg = [normalize_method(k) for k in METHODS]
    return sorted(keys, key=lambda k: (reg.index(k) if k in reg else len(reg), k))


def _one_per_seed(df: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Keep the newest record per (by..., seed) (load_records sorts by time)."""
    return df.drop_duplicates(subset=[*by, "seed"], keep="last")


def _methods_filter(df: pd.DataFrame, methods) -> pd.DataFrame:
    if methods is None:
        keep = {normalize_method(m) for m in METHODS} | \
            {normalize_method(r.record_method) for r in METHODS.values()}
    else:
        keep = set()
        for m in methods:
            keep.add(normalize_method(m))
            if registry_name(m):
                keep.add(normalize_method(registry_name(m)))
    return df[df["method_key"].isin(keep)]


def _display_names(df: pd.DataFrame) -> pd.DataFrame:
    """``method`` column back as the registry spelling when it is a registry method."""
    df = df.copy()
    df["method"] = [registry_name(k) or k for k in df["method_key"]]
    return df


def comparison_table(records_df: pd.DataFrame, dataset: str, split: str | None = None,
                     profile=None, methods: Sequence[str] | None = None, cell=None,
                     n_params: Mapping[str, int] | None = None) -> pd.DataFrame:
    """One row per method: ``n_runs`` (seeds), the means over seeds of accuracy,
    mean_class_accuracy, macro_f1, min_class_recall (and ``accuracy_std``, sample std over seeds,
    NaN for one run), ``wall_time`` (mean seconds per run) and ``n_params``.

    Only records of ``dataset`` (``split``, ``profile``) at ``cell`` (default natural, noise 0),
    of ``methods`` (default: the registry's) and the newest record per seed. ``n_params`` comes
    from the records' ``params.n_params`` (written by the runner that made them), else from the
    ``n_params`` mapping (e.g. :func:`count_parameters` per method), else NaN: the table's
    ``attrs["note"]`` then says which methods lack it. Methods in registry order.
    """
    ratio, rate = _cell(cell)
    df = _select(records_df, dataset, split, profile)
    cols = ["method", "n_runs", *TABLE_METRICS, "accuracy_std", "wall_time", "n_params"]
    if len(df):
        df = _methods_filter(_at_cell(df, ratio, rate), methods)
    if len(df) == 0:
        out = pd.DataFrame(columns=cols)
        out.attrs["note"] = f"no records for {dataset} at this condition"
        return out
    df = _one_per_seed(df, ["method_key"])
    for c in (*TABLE_METRICS, "wall_time", "param/n_params"):
        df[c] = pd.to_numeric(_col(df, c), errors="coerce")
    g = df.groupby("method_key")
    out = g[list(TABLE_METRICS) + ["wall_time"]].mean()
    out["n_runs"] = g.size()
    out["accuracy_std"] = g["accuracy"].std(ddof=1)
    out["n_params"] = g["param/n_params"].mean()
    out = out.reset_index()
    if n_params:
        given = {normalize_method(registry_name(k) or k): v for k, v in n_params.items()}
        miss = out["n_params"].isna()
        if miss.any():
            out.loc[miss, "n_params"] = out.loc[miss, "method_key"].map(given).astype(float)
    out = out.set_index("method_key").loc[_order(out["method_key"])].reset_index()
    out = _display_names(out)[cols]
    lacking = out.loc[out["n_params"].isna(), "method"].tolist()
    out.attrs["note"] = ("" if not lacking else
                         f"n_params not recorded for {', '.join(lacking)} (pass n_params= or rerun "
                         "through ensure_records)")
    return out.reset_index(drop=True)


def gains_table(records_df: pd.DataFrame, dataset: str, against: str = "baseline",
                methods: Sequence[str] | None = None, metric: str = "accuracy",
                split: str | None = None, profile=None, cell=None) -> pd.DataFrame:
    """One row per method: its gain over ``against`` in ``metric`` (points), paired by seed and
    test image (:func:`ferlib.stats.paired_gain`), with the 95 % interval, the number of
    paired seeds, how the interval was made and its ``reading`` ("higher", "lower", "not
    significant", "no interval": :func:`ferlib.stats.reading`). Same selection as
    :func:`comparison_table` (newest record per seed); ``records_df`` needs the ``folder``
    column of :func:`load_all_records`. See notebooks/07_comparison, "Seeds and intervals"."""
    from ferlib.stats import paired_gain, reading

    cols = ["method", "against", "seeds", "gain", "low", "high", "interval", "reading"]
    paths = _paths_by_key(records_df, dataset, split, profile, cell)
    base_key = _key(against)
    if base_key not in paths:
        return pd.DataFrame(columns=cols)
    keys = pd.DataFrame({"method_key": list(paths)})
    rows = []
    for key in _order(_methods_filter(keys, methods)["method_key"].unique()):
        if key == base_key:
            continue
        gain = paired_gain(paths[key], paths[base_key], metric).scaled()
        rows.append({"method": registry_name(key) or key, "against": against,
                     "seeds": gain.n_seeds, "gain": gain.value, "low": gain.low,
                     "high": gain.high, "interval": gain.method, "reading": reading(gain)})
    return pd.DataFrame(rows, columns=cols)


def describe_gains(gains: pd.DataFrame) -> str:
    """One sentence per reading of a :func:`gains_table`, written from its intervals (so a
    chapter's text changes when its records do): which methods are above, below or not
    distinguishable from the baseline, which have no interval, and how many seeds there are."""
    if len(gains) == 0:
        return "No gains to describe: no method has records beside the baseline."
    against = gains["against"].iloc[0]
    words = {"higher": f"above {against} (paired 95 % interval above zero)",
             "lower": f"below {against} (paired 95 % interval below zero)",
             "not significant": f"not significantly different from {against} (the interval "
                                "holds zero)",
             "no interval": "without an interval (one seed and no per-image predictions), so "
                            f"nothing is claimed about them against {against}"}
    out = []
    for key, text in words.items():
        names = gains.loc[gains["reading"] == key, "method"].tolist()
        if names:
            out.append(f"{', '.join(names)}: {text}.")
    seeds = gains["seeds"].astype(int)
    if seeds.min() < 3:
        few = gains.loc[seeds < 3, "method"].tolist()
        out.append(f"Fewer than three paired seeds for {', '.join(few)} "
                   f"({seeds.min()} to {seeds.max()}).")
    return " ".join(out)


def _paths_by_key(records_df, dataset, split=None, profile=None, cell=None) -> dict:
    """Record paths of one cell, newest record per (method, seed), by normalised method."""
    ratio, rate = _cell(cell)
    df = _select(records_df, dataset, split, profile)
    if len(df):
        df = _at_cell(df, ratio, rate)
    if len(df) == 0:
        return {}
    df = _one_per_seed(df, ["method_key"])
    return {k: [str(Path(f) / n) for f, n in zip(g["folder"], g["file"])]
            for k, g in df.groupby("method_key")}


def _key(method: str) -> str:
    return normalize_method(registry_name(method) or method)


def estimates_table(records_df: pd.DataFrame, dataset: str, methods: Sequence[str],
                    metrics: Sequence[str] = ("accuracy",), split: str | None = None,
                    profile=None, cell=None) -> pd.DataFrame:
    """One row per method of ``methods`` that has records in the cell (in the order given,
    named as given): ``seeds`` and, per metric (percent), the mean over seeds, the sd over
    seeds (NaN for one seed), the 95 % interval (``_low`` / ``_high``, NaN when none can be
    made) and how it was made (``_interval``), from :func:`ferlib.stats.estimate`. A metric a
    record lacks is NaN. Same selection as :func:`gains_table` (``records_df`` from
    :func:`load_all_records`). :func:`format_estimates` makes the chapters' display of it."""
    from ferlib.stats import estimate

    paths = _paths_by_key(records_df, dataset, split, profile, cell)
    rows = []
    for m in methods:
        key = _key(m) if _key(m) in paths else normalize_method(m)
        if key not in paths:
            continue
        row = {"method": m, "seeds": len(paths[key])}
        for metric in metrics:
            try:
                est = estimate(paths[key], metric).scaled()
            except ValueError:
                est = None
            nan = float("nan")
            row[metric] = est.value if est else nan
            row[f"{metric}_sd"] = est.sd if est and est.sd is not None else nan
            row[f"{metric}_low"] = est.low if est and est.low is not None else nan
            row[f"{metric}_high"] = est.high if est and est.high is not None else nan
            row[f"{metric}_interval"] = est.method if est else "metric not recorded"
        rows.append(row)
    return pd.DataFrame(rows)


def format_estimates(table: pd.DataFrame, metrics: Sequence[str] = ("accuracy",),
                     digits: int = 2) -> pd.DataFrame:
    """:func:`estimates_table` as text, one column per metric: "mean +- sd" with the 95 %
    interval in brackets; a row with fewer than three seeds says how many ("n=1")."""
    out = pd.DataFrame({"method": table["method"], "seeds": table["seeds"]})
    for metric in metrics:
        cells = []
        for _, r in table.iterrows():
            if pd.isna(r[metric]):
                cells.append("-")
                continue
            text = f"{r[metric]:.{digits}f}"
            text += f" ± {r[f'{metric}_sd']:.{digits}f}" if pd.notna(r[f"{metric}_sd"]) \
                else " ± -"
            if pd.notna(r[f"{metric}_low"]):
                text += f" [{r[f'{metric}_low']:.{digits}f}, {r[f'{metric}_high']:.{digits}f}]"
            if r["seeds"] < 3:
                text += f" (n={int(r['seeds'])})"
            cells.append(text)
        out[metric] = cells
    return out


def _seeds_phrase(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def _interval_phrase(n: int) -> str:
    """What an interval over ``n`` seeds counts: one seed's interval sees the test images only,
    not the spread between trainings (ferlib.stats)."""
    return _seeds_phrase(n) + (", test images only" if n == 1 else "")


def gain_sentence(row, metric: str = "accuracy") -> str:
    """A sentence for one row of :func:`gains_table` built from its ``reading``: a direction
    only when the paired 95 % interval excludes zero."""
    a, b, g, n = row["method"], row["against"], float(row["gain"]), int(row["seeds"])
    if row["reading"] == "no interval":
        why = str(row["interval"]).removeprefix("none: ")
        return (f"{a} minus {b} in {metric}: {g:+.2f} points on {_seeds_phrase(n)}, with no "
                f"interval ({why}): the records do not say which is higher.")
    ci = f"95 % paired interval [{row['low']:+.2f}, {row['high']:+.2f}], {_interval_phrase(n)}"
    if row["reading"] == "not significant":
        return (f"{a} minus {b} in {metric}: {g:+.2f} points ({ci}); the interval holds zero, "
                "so the difference is not significant.")
    word = "higher" if row["reading"] == "higher" else "lower"
    return f"{a} scores {word} than {b} in {metric}: {g:+.2f} points ({ci})."


def paper_gain_sentence(row, claimed: float, paper_what: str, metric: str = "accuracy") -> str:
    """Our gain (a :func:`gains_table` row) against the paper's ``claimed`` gain (points),
    by :func:`ferlib.stats.verdict`: says plainly when ours reverses the paper's, and that a
    gain without an interval neither confirms nor contradicts it."""
    from ferlib.stats import Estimate, verdict

    ours = Estimate(float(row["gain"]), None,
                    None if pd.isna(row["low"]) else float(row["low"]),
                    None if pd.isna(row["high"]) else float(row["high"]), int(row["seeds"]),
                    str(row["interval"]))
    v = verdict("gain", claimed, ours, 0.0)
    head = (f"The paper: {paper_what} {claimed:+.2f} points in {metric}; ours "
            f"({row['method']} minus {row['against']}): {ours.value:+.2f}")
    if v == "no interval":
        same = (ours.value > 0) == (claimed > 0)
        return (f"{head} on {_seeds_phrase(ours.n_seeds)} with no interval. The point estimate "
                f"has {'the same sign as' if same else 'the opposite sign to'} the paper's, but "
                "without an interval the records neither confirm nor contradict the paper.")
    ci = f"[{ours.low:+.2f}, {ours.high:+.2f}], {_interval_phrase(ours.n_seeds)}"
    text = {"reversed": "our result reverses the paper's: the interval excludes zero on the "
                        "other side",
            "not significant": "the interval holds zero: the records do not reproduce the "
                               "paper's direction",
            "direction reproduced": "the direction is reproduced, not the size",
            "reproduced": "reproduced"}[v]
    if ours.n_seeds < 3:   # the book's rule: a claim about a difference needs three seeds
        text += f" (on {_seeds_phrase(ours.n_seeds)}: a reading, not yet a verdict)"
    return f"{head} {ci}: {text}."


def ordering_sentence(label: str, ours: Mapping[str, float], paper: Mapping[str, float],
                      seeds: int, interval_note: str = "") -> str:
    """Compare the order of ``ours`` (name -> value) with the paper's over the same names:
    "the same order as", "the exact reverse of", or "a different order from" the paper's, with
    both orders written out. ``seeds`` (the fewest seeds of any row) and ``interval_note`` say
    how far the order can be trusted."""
    names = [k for k in paper if k in ours]
    mine = sorted(names, key=lambda k: -ours[k])
    theirs = sorted(names, key=lambda k: -paper[k])
    rel = ("the same order as" if mine == theirs else
           "the exact reverse of" if mine == theirs[::-1] else "a different order from")
    text = (f"{label}: ours {' > '.join(mine)}, {rel} the paper's {' > '.join(theirs)}")
    return text + f" ({_seeds_phrase(seeds)}{'; ' + interval_note if interval_note else ''})."


def per_class_recall_table(records_df: pd.DataFrame, dataset: str, split: str | None = None,
                           profile=None, methods: Sequence[str] | None = None,
                           cell=None) -> pd.DataFrame:
    """Mean recall per class over seeds: index = method (registry order), columns = classes
    (the ``recall/<class>`` columns of the records, in record order). Feed it to
    :func:`ferlib.plots.plot_per_class_recall`."""
    ratio, rate = _cell(cell)
    df = _select(records_df, dataset, split, profile)
    rec_cols = [c for c in df.columns if str(c).startswith("recall/")]
    if len(df):
        df = _methods_filter(_at_cell(df, ratio, rate), methods)
    if len(df) == 0 or not rec_cols:
        return pd.DataFrame()
    df = _one_per_seed(df, ["method_key"])
    out = df.groupby("method_key")[rec_cols].mean()
    out = out.loc[_order(out.index)].dropna(axis=1, how="all")
    out.columns = [c[len("recall/"):] for c in out.columns]
    out.index = [registry_name(k) or k for k in out.index]
    out.index.name = "method"
    return out


def degradation_table(records_df: pd.DataFrame, factor: str = "imbalance_ratio",
                      metric: str = "accuracy", dataset: str | None = None,
                      split: str | None = None, profile=None,
                      methods: Sequence[str] | None = None) -> pd.DataFrame:
    """How ``metric`` changes with ``factor`` ("imbalance_ratio" or "noise_rate"): one row per
    (method, factor value) with ``n_runs`` and the mean and sample std over seeds. For the
    imbalance factor only noise-free records with a recorded ratio count; for the noise factor
    only records at the natural imbalance (a record without noise_rate counts as 0)."""
    if factor not in FACTORS:
        raise ValueError(f"factor must be one of {FACTORS}, got {factor!r}")
    df = _select(records_df, dataset, split, profile)
    cols = ["method", factor, "n_runs", metric, f"{metric}_std"]
    if len(df):
        if metric not in df.columns:
            raise ValueError(f"metric {metric!r} is not a column of the records "
                             f"(have e.g. {', '.join(c for c in TABLE_METRICS if c in df.columns)})")
        if factor == "imbalance_ratio":
            df = select(df, natural=False, clean=True)
        else:
            df = select(df, natural=True)
        df = _methods_filter(df, methods)
    if len(df) == 0:
        return pd.DataFrame(columns=cols)
    df = _one_per_seed(df, ["method_key", factor])
    df[metric] = pd.to_numeric(df[metric], errors="coerce")
    g = df.groupby(["method_key", factor])[metric]
    out = pd.DataFrame({"n_runs": g.size(), metric: g.mean(), f"{metric}_std": g.std(ddof=1)})
    out = out.reset_index()
    order = _order(out["method_key"].unique())
    out["_o"] = out["method_key"].map({k: i for i, k in enumerate(order)})
    out = out.sort_values(["_o", factor]).drop(columns="_o")
    return _display_names(out)[cols].reset_index(drop=True)


def plot_degradation(table: pd.DataFrame, factor: str | None = None, metric: str = "accuracy",
                     ax=None, title: str | None = None):
    """Line plot of :func:`degradation_table`: ``metric`` against the factor, one line per
    method (seaborn; error bars are the std over seeds where there are several)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if factor is None:
        factor = next((f for f in FACTORS if f in table.columns), None)
    if factor is None or factor not in table.columns or len(table) == 0:
        raise ValueError("plot_degradation needs a non-empty degradation_table")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    sns.lineplot(data=table, x=factor, y=metric, hue="method", marker="o", ax=ax)
    std = f"{metric}_std"
    if std in table.columns and table[std].notna().any():
        for _, part in table.groupby("method", sort=False):
            ax.errorbar(part[factor], part[metric], yerr=part[std].fillna(0), fmt="none",
                        ecolor="grey", alpha=0.5, capsize=2)
    if factor == "imbalance_ratio":
        ax.set_xscale("log")
        ax.set_xlabel("imbalance ratio (head / tail, log scale)")
    else:
        ax.set_xlabel("share of flipped training labels")
    ax.set_ylabel(metric.replace("_", " "))
    if title:
        ax.set_title(title)
    return ax


def plot_cost(table: pd.DataFrame, metric: str = "accuracy", ax=None):
    """Cost against benefit: mean wall time per run (log scale) against ``metric`` for each
    method of :func:`comparison_table`, the marker area growing with the parameter count."""
    import matplotlib.pyplot as plt

    if len(table) == 0:
        raise ValueError("plot_cost needs a non-empty comparison_table")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    n = pd.to_numeric(table["n_params"], errors="coerce")
    size = 30 + 270 * (n / n.max()).fillna(0) if n.notna().any() else 60
    ax.scatter(table["wall_time"], table[metric], s=size, alpha=0.6)
    for _, row in table.iterrows():
        ax.annotate(row["method"], (row["wall_time"], row[metric]), xytext=(4, 2),
                    textcoords="offset points", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("training time per run, s (log scale)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title("cost and benefit (marker area ~ parameters)")
    return ax


def main(argv=None) -> int:
    """``python -m ferlib.compare``: fill the comparison grid with records (resumable) and print
    the tables. Example (the book's FER2013 table)::

        python -m ferlib.compare --dataset fer2013 --data-root ../shared/data/fer2013 \
            --profile cpu --out book/records/cpu --imbalance 1 10 50 100 --noise 0.1 0.2 \
            --checkpoint-dir _build/ckpt
    """
    ap = argparse.ArgumentParser(prog="python -m ferlib.compare", description=main.__doc__)
    ap.add_argument("--dataset", default="synthfacs")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--eval-split", default=None)
    ap.add_argument("--val-split", default="holdout")
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--methods", nargs="+", default=list(METHODS),
                    help=f"from: {' '.join(METHODS)} (the comparison, default) and the "
                         f"chapters' other table rows {' '.join(TABLE_ROWS)}")
    ap.add_argument("--imbalance", type=float, nargs="*", default=[], help="imbalance ratios")
    ap.add_argument("--noise", type=float, nargs="*", default=[], help="label-noise rates")
    ap.add_argument("--out", default="_build/records", help="records folder")
    ap.add_argument("--read-also", nargs="*", default=[], help="folders of existing records")
    ap.add_argument("--checkpoint-dir", default=None,
                    help="folder for the run state of each run (rerun to resume an interrupted "
                         "run from its last finished epoch); a run's subfolder is removed once "
                         "its record is written")
    args = ap.parse_args(argv)
    # checked before any data is loaded or trained on
    from ferlib.config import usable_folder
    usable_folder(ap, "--out", args.out)
    if args.checkpoint_dir is not None:
        usable_folder(ap, "--checkpoint-dir", args.checkpoint_dir)
    grid = degradation_grid(args.imbalance, args.noise)
    plan = ensure_records(args.methods, grid, dataset=args.dataset, data_root=args.data_root,
                          eval_split=args.eval_split, val_split=args.val_split,
                          profile=args.profile, device=args.device, seeds=args.seeds,
                          results_path=args.out, read_also=args.read_also, train_progress=True,
                          source="python -m ferlib.compare", checkpoint_root=args.checkpoint_dir)
    print(plan.to_string(index=False))
    recs = load_all_records(args.out, *args.read_also)
    print(comparison_table(recs, args.dataset, profile=args.profile,
                           methods=args.methods).round(4).to_string(index=False))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
