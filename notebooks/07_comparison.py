# ---
# jupyter:
#   ferlib:
#     reads: [02_baseline, 03_ahm_semantic_space, 04_latent_covariance_augmentation, 05_adjacency_threshold_tuning, 06_uncertainty_and_imbalance]
#     seconds: 49
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # All methods on one protocol
#
# The four papers of this book each compare themselves with different baselines, on different
# datasets, from different pretrained backbones, with different rules for picking the reported
# epoch. Zhang & Dong (AHM) compare with ResNets on FER2013; Li et al. report RAF-DB with a
# ResNet34 and DAN; Du et al. (EAN) quote SCN on noisy RAF-DB and FERPlus; Fan et al. (CUCN)
# report AffectNet. None of these numbers can be set beside another. A difference of a point
# between two tables says as much about the protocol as about the method.
#
# This chapter puts every method through **one protocol**:
#
# * the same splits (`ferlib.data.load_splits`: train, a validation split for selection, a test
#   split that is only reported), the same seed, the same backbone of the profile, trained from
#   scratch;
# * the epoch is chosen on the validation split, never on the test split;
# * the same metrics (`ferlib.metrics.classification_metrics`): overall accuracy, mean class
#   accuracy, macro-F1, and the recall of the worst class, which is what imbalance methods
#   claim to lift;
# * the same conditions: the training set made more long-tailed (imbalance ratio 1 to 100) or
#   its labels flipped (0 to 20 %), and each method measured again.
#
# Every number below comes from a results record (`ferlib.records`) written by the chapter that
# explains the method; `ferlib.compare` only calls the chapter modules and never trains on its
# own. Records that exist are reused, so this notebook trains only what is missing. The
# [reproduction scoreboard](../book/scoreboard.md) ({doc}`../book/scoreboard`) sets the same
# records against every quantitative claim of the four papers.

# %% tags=["parameters"]
profile = "smoke"              # smoke | cpu | full
device = "auto"                # auto | cpu | cuda
dataset = "synthfacs"          # synthfacs | fer2013 | ferplus | rafdb | affectnet | sfew
data_root = None               # e.g. "../../shared/data/fer2013" for FER2013
eval_split = None              # default: the dataset's evaluation split (FER2013: PublicTest)
val_split = "holdout"          # holdout: a stratified 10 % of the training split
seed = 0
methods = None                 # None: short runs -> baseline, baseline+balanced, ahm; else all
degradation_methods = None     # None: short runs -> baseline; else `methods`
imbalance_ratios = None        # None: short live runs -> [10]; else [1, 10, 50, 100]
noise_rates = None             # None: short live runs -> [0, 0.2]; else [0, 0.1, 0.2]
results_path = "../_build/records"
records_path = "../book/records"   # committed records, one folder per profile
records_profile = "cpu"            # the profile of the committed records shown at the end

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from ferlib import compare
from ferlib.config import get_profile, resolve_device
from ferlib.data import load_splits, long_tail_counts, make_long_tailed
from ferlib.metrics import check_above_chance, classification_metrics
from ferlib.plots import plot_per_class_recall
from ferlib.records import select

prof = get_profile(profile)
dev = resolve_device(device)
short = prof.short_live_runs   # the smoke profile: grids that CI runs in seconds
if methods is None:
    methods = ["baseline", "baseline+balanced", "ahm"] if short else list(compare.METHODS)
if degradation_methods is None:
    # short runs: the baseline's two degradation points (the smoke build's time budget)
    degradation_methods = ["baseline"] if short else list(methods)
if imbalance_ratios is None:
    # short runs leave out ratio 1: a balanced subsample of the smoke split is 574 faces (82 each),
    # too few to learn from in seconds; the other profiles run the whole grid
    imbalance_ratios = [10] if short else [1, 10, 50, 100]
if noise_rates is None:
    noise_rates = [0.0, 0.2] if short else [0.0, 0.1, 0.2]
committed_dir = Path(records_path) / records_profile
splits = load_splits(dataset, data_root=data_root, eval_split=eval_split, val_split=val_split,
                     profile=prof, seed=seed)
class_names = list(splits.train.class_names)
print(f"profile {prof.name}: {prof.backbone} (width {prof.width}), {prof.epochs} epochs; "
      f"device {dev}; {dataset}: train / val / test = {len(splits.train)} / {len(splits.val)} / "
      f"{len(splits.test)} ({splits.test.split})")
print("methods:", ", ".join(methods))

# %% [markdown]
# ## The methods and where they come from
#
# `ferlib.compare.METHODS` maps each method to a runner: a few lines that call the chapter's
# own function on the given splits and return the records it wrote. Each entry also names what
# its run trains and tests with: the loss (AHM: the closed-form Sylvester solve on frozen
# features, `fit_projection`), the batch sampler (uniformly shuffled or class-balanced) and the
# prediction (EAN: over the graph of each test batch).

# %%
display(pd.DataFrame([{"method": name, "record method": r.record_method, "what": r.label,
                       "loss": r.loss.rsplit(".", 1)[-1], "sampler": r.sampler,
                       "prediction": (r.predict or "logits: arg-max").rsplit(".", 1)[-1],
                       "chapter": r.chapter} for name, r in compare.METHODS.items()]))

# %% [markdown]
# ## What is measured, checked by hand
#
# With $n_{c}$ test images of class $c$ and $t_{c}$ of them predicted correctly, $K$ classes
# and $N = \sum_c n_c$:
#
# $$\text{accuracy} = \frac{\sum_c t_c}{N}, \qquad
#   \text{mean class accuracy} = \frac{1}{K}\sum_c \frac{t_c}{n_c}, \qquad
#   \text{min class recall} = \min_c \frac{t_c}{n_c},$$
#
# and macro-F1 is the unweighted mean over classes of $2PR/(P+R)$. On a balanced test split
# accuracy and mean class accuracy agree; on an imbalanced one (FER2013's PublicTest has 55
# Disgust faces and 895 Happy ones) accuracy mostly measures the large classes.
#
# The imbalance sweep subsamples the training split to the exponential profile of Cui et al.
# (2019), with classes ranked by size $r = 0, \dots, K-1$ and imbalance ratio $\rho$ = head / tail:
#
# $$n_r = \left\lfloor n_{\max}\, \rho^{-r/(K-1)} \right\rfloor .$$
#
# Both checked from scratch against ferlib:

# %%
y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
y_pred = np.array([0, 0, 0, 1, 1, 0, 2, 2, 1, 0])
m = classification_metrics(y_true, y_pred, class_names=["a", "b", "c"])
recall = np.array([3 / 4, 1 / 2, 2 / 4])
precision = np.array([3 / 5, 1 / 3, 2 / 2])
f1 = 2 * precision * recall / (precision + recall)
assert np.isclose(m["accuracy"], 6 / 10)
assert np.isclose(m["mean_class_accuracy"], recall.mean())
assert np.isclose(m["min_class_recall"], recall.min())
assert np.isclose(m["macro_f1"], f1.mean())

rho, K, n_max = 10.0, 7, 500
by_hand = np.floor(n_max * rho ** (-np.arange(K) / (K - 1)) + 1e-9)
assert (long_tail_counts(n_max, K, rho) == by_hand).all()
lt = make_long_tailed(splits.train, 10.0, seed=seed)
counts = np.sort(lt.class_counts())[::-1]
print("hand example: accuracy", m["accuracy"], "mean class accuracy", round(m["mean_class_accuracy"], 4),
      "macro-F1", round(m["macro_f1"], 4))
print(f"{dataset} train at ratio 10, largest to smallest class:", counts.tolist(),
      f"(head / tail = {counts[0] / counts[-1]:.1f})")

# %% [markdown]
# ## Filling the grid: only what is missing
#
# `ensure_records` looks for a record of every (method, condition, seed) in `results_path` and in
# the committed records of this profile; it trains only the missing ones and stamps each new
# record with its condition (the runner has written the parameter count of the network it
# trained). Run it again after a crash
# and it carries on where it stopped. At the `smoke` profile the grid is cut down so the
# notebook stays quick; the numbers only show that the pipeline runs.

# %%
grid = compare.degradation_grid(imbalance_ratios, noise_rates)
source = "notebooks/07_comparison"
kw = dict(dataset=dataset, data_root=data_root, eval_split=eval_split, val_split=val_split,
          profile=prof, device=dev, seeds=[seed], results_path=results_path,
          read_also=[committed_dir], splits=splits, source=source, progress=False)
plan = compare.ensure_records(methods, [grid[0]], **kw)
plan_deg = compare.ensure_records(degradation_methods, grid, **kw)
display(pd.concat([plan, plan_deg], ignore_index=True)
        .drop_duplicates(["method", "imbalance_ratio", "noise_rate", "seed"]).drop(columns="record"))

# %% [markdown]
# ## The table
#
# One row per method on the same splits: means over seeds (`n_runs` of them), training time
# per run in seconds and trainable parameters. The AHM row adds the semantic projection to the
# baseline backbone it reuses, and its training time is the semantic step only (the baseline's
# is on its own row). Latent augmentation counts the classifier (the VAE-GAN is used only while
# training), and its time is the classifier's training, not the VAE-GAN's.

# %%
records = compare.load_all_records(results_path, committed_dir)
n_params = {m_: compare.count_parameters(m_, splits, prof) for m_ in methods}
table = compare.comparison_table(records, dataset, split=splits.test.split, profile=prof,
                                 methods=methods, n_params=n_params)
display(table.round(3))
if table.attrs.get("note"):
    print(table.attrs["note"])

# %% [markdown]
# The mean over seeds is nothing more than a group-by over the records; checked on the table:

# %%
natural = select(records, dataset=dataset, split=splits.test.split, profile=prof,
                 natural=True, clean=True)
for _, row in table.iterrows():
    runs = natural[natural["method"].map(compare.registry_name) == row["method"]]
    runs = runs.drop_duplicates("seed", keep="last")
    assert len(runs) == row["n_runs"] and np.isclose(runs["accuracy"].mean(), row["accuracy"])
print("table means match the records")

# %% [markdown]
# ## Seeds and intervals
#
# A difference between two rows means something only when it is larger than what another seed
# or another test set would give. `ferlib.stats` puts a 95 % interval on every number, counting
# two sources of variation:
#
# * **the test images.** Resample the $N$ test images with replacement, the same images for
#   every seed, and recompute the metric averaged over seeds; the standard deviation of that
#   over 2,000 resamples is $\mathrm{se}_{\text{images}}$ (a bootstrap, `scipy.stats.bootstrap`);
# * **the training randomness.** Each seed changes the initialisation, the data order, the
#   augmentation and, in noisy cells, which labels are flipped; all seeds are scored on the same
#   images, so the spread $s$ of the $n$ per-seed values is the training's share.
#
# $$\bar m \pm 1.96 \sqrt{\mathrm{se}_{\text{images}}^2 + s^2 / n}.$$
#
# A **gain** of method $A$ over a baseline $B$ is *paired*: on seed $k$ and image $i$ the
# difference $d_{ki} = [\hat y^A_{ki} = y_i] - [\hat y^B_{ki} = y_i]$ (for accuracy), so the
# images both get right or both get wrong drop out, and the interval of $\bar d$ is much
# narrower than the two rows' intervals side by side. A gain whose interval holds zero is
# **not significant**, and the tables below say so instead of ranking. Records keep each test
# image's label and prediction for this (`ferlib.records.predictions_of`).
#
# Checked from scratch on this run's records: the paired bootstrap by hand with NumPy against
# `ferlib.stats.paired_gain` (one seed here, so only the images' share).

# %%
from ferlib.records import predictions_of
from ferlib.stats import paired_gain, reading

natural_live = select(records, dataset=dataset, split=splits.test.split, profile=prof,
                      natural=True, clean=True)
natural_live = natural_live[natural_live["seed"] == seed]
path_of = {compare.registry_name(m_): str(Path(f) / n) for m_, f, n in
           zip(natural_live["method"], natural_live["folder"], natural_live["file"])}
other = next(m_ for m_ in methods if m_ != "baseline")
(y_a, p_a), (y_b, p_b) = predictions_of(path_of[other]), predictions_of(path_of["baseline"])
assert (y_a == y_b).all()   # the same test images, in the same order
d = (p_a == y_a).astype(float) - (p_b == y_b).astype(float)
rng = np.random.default_rng(0)
boot = np.array([d[rng.integers(0, len(d), len(d))].mean() for _ in range(2000)])
half_by_hand = 1.96 * boot.std()
gain = paired_gain([path_of[other]], [path_of["baseline"]])
assert np.isclose(gain.value, d.mean())
assert abs((gain.high - gain.low) / 2 - half_by_hand) < 0.1 * half_by_hand + 1e-9
print(f"{other} minus baseline: {100 * d.mean():+.2f} points; 95 % half-width by hand "
      f"{100 * half_by_hand:.2f}, ferlib.stats {100 * (gain.high - gain.low) / 2:.2f}")

# %% [markdown]
# Every method's gain over the baseline in this run, paired by seed and image. At the `smoke`
# profile this is a **pipeline check** (one seed of a network trained for seconds on synthetic
# faces), not a result; the committed records below are the results.

# %%
gains_live = compare.gains_table(records, dataset, split=splits.test.split, profile=prof,
                                 methods=methods)
display(gains_live.round(2))

# %% [markdown]
# ## Per-class recall
#
# Overall accuracy hides the classes that matter most for the long-tail papers. The recall of
# every class, for every method, on the same test faces:

# %%
per_class = compare.per_class_recall_table(records, dataset, split=splits.test.split,
                                           profile=prof, methods=methods)
ax = plot_per_class_recall(per_class, title=f"{dataset}, {prof.name} profile: recall per class")
ax.legend(fontsize=7, ncol=2)
plt.show()
display(per_class.round(2))

# %% [markdown]
# ## Cost
#
# A method that gains a point at ten times the training time, or with three times the
# parameters, is a different trade from one that gains it for free. Training time is the wall
# time the engine measured for the run (same device for all rows of a table); parameters are
# those of the network used at test time.

# %%
compare.plot_cost(table)
plt.show()

# %% [markdown]
# ## How each method degrades
#
# **Imbalance.** The training split is subsampled to head / tail ratios; validation and test
# stay as they are. Balanced resampling, latent augmentation and CUCN's class weights exist to
# flatten the curve of mean class accuracy as the ratio grows.
#
# **Label noise.** A share of training labels (and of validation labels, as a practitioner has
# no clean labels to select on) is flipped to a random other class; the test labels stay clean.
# SCN, EAN and CUCN's uncertainty claim robustness here.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
deg_imb = compare.degradation_table(records, "imbalance_ratio", "mean_class_accuracy",
                                    dataset=dataset, split=splits.test.split, profile=prof,
                                    methods=degradation_methods)
deg_noise = compare.degradation_table(records, "noise_rate", "accuracy", dataset=dataset,
                                      split=splits.test.split, profile=prof,
                                      methods=degradation_methods)
compare.plot_degradation(deg_imb, "imbalance_ratio", "mean_class_accuracy", ax=axes[0],
                         title="imbalance")
compare.plot_degradation(deg_noise, "noise_rate", "accuracy", ax=axes[1], title="label noise")
fig.tight_layout()
plt.show()
display(deg_imb.round(3))
display(deg_noise.round(3))

# %% [markdown]
# ## Full results from the committed records
#
# The runs behind the book's conclusions are committed in `book/records/<profile>` with their
# provenance (git commit, versions, device, command). The FER2013 records of the cpu profile
# (Training -> PublicTest, seed 0) were made with the **old cpu protocol** (a stratified
# 6,000-image training subset, width-16 CNN, Adam, 8 epochs, no augmentation; chapter 02 sets it
# beside the new recipe) and come from
#
# ```bash
# bash scripts/cpu_records.sh      # every method; baseline, SCN and EAN at 10 % and 20 % noise
# ```
#
# which calls `python -m ferlib.compare`. The imbalance curves on real data need
# `python -m ferlib.compare ... --imbalance 1 10 50 100` on top (one run per method and ratio);
# they are not among the committed records yet, so the imbalance panel here shows only when
# they have been run (`--device cuda --profile full` on a GPU). All runs start from scratch:
# the papers start from backbones pretrained on ImageNet or MS-Celeb-1M, so compare the
# ordering of the methods and the shape of the curves with the papers, not the absolute numbers.

# %%
committed = compare.load_all_records(committed_dir)
shown = False
for ds_name in sorted(set(committed["dataset"].dropna())) if len(committed) else []:
    t = compare.comparison_table(committed, ds_name, profile=records_profile)
    if len(t) == 0:
        continue
    shown = True
    print(f"{ds_name}, {records_profile} profile:")
    display(t.round(3))
    pc = compare.per_class_recall_table(committed, ds_name, profile=records_profile)
    if len(pc):
        plot_per_class_recall(pc, title=f"{ds_name}, {records_profile} profile")
        plt.show()
    panels = [(f, mt) for f, mt in (("imbalance_ratio", "mean_class_accuracy"), ("noise_rate", "accuracy"))
              if len(compare.degradation_table(committed, f, mt, dataset=ds_name,
                                               profile=records_profile))]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False)
        for ax, (f, mt) in zip(axes[0], panels):
            compare.plot_degradation(compare.degradation_table(committed, f, mt, dataset=ds_name,
                                                               profile=records_profile), f, mt, ax=ax,
                                     title=f"{ds_name}: {f.replace('_', ' ')}")
        fig.tight_layout()
        plt.show()
if not shown:
    print(f"no committed records in {committed_dir} yet: run the commands above")

# %% [markdown]
# The same records as paired gains over the baseline, with their intervals. The sentence under
# the table is written from the intervals, so it changes when the records do.

# %%
for ds_name in sorted(set(committed["dataset"].dropna())) if len(committed) else []:
    g = compare.gains_table(committed, ds_name, profile=records_profile)
    if len(g) == 0:
        continue
    print(f"{ds_name}, {records_profile} profile: gains over the baseline (points)")
    display(g.round(2))
    print(compare.describe_gains(g))

# %% [markdown]
# Every quantitative claim of the four papers, with our value on the same or the nearest
# protocol and a verdict, is on the {doc}`../book/scoreboard` page, generated from these
# records by `python -m ferlib.book.scoreboard`.
#
# ## Key numbers
#
# A trained network's last bits differ between processors (their convolution kernels differ),
# so the live accuracies are *checked* here, with a margin, rather than pinned: every live run
# must beat chance clearly (twice the chance rate of mean class accuracy). Then the cell that
# nbval compares prints only what is the same on every machine: the table's shape, the methods
# and their exact parameter counts.

# %%
assert table["method"].is_unique, "the comparison table has one row per method"
n_classes = len(splits.test.class_names)
lowest = check_above_chance(dict(zip(table["method"], table["mean_class_accuracy"])), n_classes)
print(f"every live run's mean class accuracy is above {2 / n_classes:.2f} (chance {1 / n_classes:.2f}); "
      f"lowest {lowest:.2f}")

# %%
# NBVAL_CHECK_OUTPUT
print("table:", table.shape, table["method"].tolist())
print("parameters:", {m_: int(v) for m_, v in zip(table["method"], table["n_params"])})
print("imbalance points:", len(deg_imb), "noise points:", len(deg_noise))
