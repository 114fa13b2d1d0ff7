# ---
# jupyter:
#   ferlib:
#     reads: []
#     seconds: 34
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
# # Data: SynthFACS, FER2013 and the long tail
#
# Every chapter needs faces to learn from, and a fresh machine has none: the real data sets
# cannot be downloaded by a program (FER2013 {cite:p}`goodfellow2013fer2013` sits behind a
# Kaggle login, RAF-DB {cite:p}`li2017rafdb`, AffectNet {cite:p}`mollahosseini2019affectnet`
# and SFEW {cite:p}`dhall2011sfew` behind licence agreements). So the book's default data is
# made in process: **SynthFACS**, grey faces drawn from facial action units (AUs) of the Facial
# Action Coding System {cite:p}`ekman1978facs`. It is built to have the two problems the four
# papers attack: a **long tail** (the training split has RAF-DB's class proportions, Fear 281 :
# Happy 4,772) and **confusable classes** (Fear shares most of its AUs with Surprise, Anger its
# brow lowerer with Sadness). Label noise is added on demand with `flip_labels`.
#
# Users with real data point the same code at it: `load_splits("fer2013", data_root=...)`.
# This chapter shows how SynthFACS is made, the class distributions of SynthFACS and FER2013,
# the long-tail and label-noise tools, and how hard SynthFACS is for a plain CNN.

# %% tags=["parameters"]
profile = "smoke"              # smoke | cpu | full
device = "auto"                # auto | cpu | cuda
dataset = "synthfacs"          # the data set of the live sections (synthfacs or a real one)
data_root = None               # e.g. "../../shared/data/fer2013" or your own FER2013 folder
eval_split = None
val_split = "holdout"
seed = 0
results_path = "../_build/records"
records_path = "../book/records/cpu"   # committed records (difficulty calibration, cpu profile)

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from ferlib.config import get_profile, resolve_device
from ferlib.data import (AU_LIST, AU_NAMES, BASIC7, EXPRESSION_AUS, class_balanced_sampler,
                         flip_labels, load_splits, long_tail_counts, make_identity_pairs,
                         make_long_tailed, make_synthfacs_split, render_face)
from ferlib.data.synthfacs import RAFDB_TRAIN_COUNTS, class_counts_for
from ferlib.data.viz import au_explorer, au_intensity_figure, class_grid, mosaic_figure, prototype_figure
from ferlib.plots import plot_class_counts

prof = get_profile(profile)
dev = resolve_device(device)
print(f"profile {prof.name}: SynthFACS {prof.synth_train} train / {prof.synth_test} val / "
      f"{prof.synth_test} test images, {prof.image_size}x{prof.image_size}; device {dev}")

# %% [markdown]
# ## SynthFACS: faces from action units
#
# A FACS action unit is the visible effect of one facial muscle (or group). SynthFACS models
# sixteen of them; each has an intensity in $[0, 1]$ and moves a part of a procedurally drawn
# face (soft shapes on a pixel grid: an ellipse for the face, curves for brows and lids, a lip
# band whose corners and opening follow the AUs):

# %%
effects = {1: "inner brow ends up", 2: "outer brow ends up, arch", 4: "brows down and together, glabella lines",
           5: "upper lid up", 6: "cheeks up, lower lid up, crow's feet", 7: "lids narrow",
           9: "nose wrinkles, nostrils up", 10: "upper lip up, deep nasolabial folds",
           12: "mouth corners up and out", 15: "mouth corners down", 17: "lower lip up, chin crease",
           20: "mouth wider, flatter", 23: "lips thinner, narrower", 24: "lips pressed thin",
           25: "lips apart", 26: "jaw drop: mouth open, chin lower"}
pd.DataFrame({"AU": [f"AU{a}" for a in AU_LIST], "FACS name": [AU_NAMES[a] for a in AU_LIST],
              "drawn as": [effects[a] for a in AU_LIST]}).set_index("AU")

# %% [markdown]
# Each expression draws its AUs from an EMFACS-style prototype {cite:p}`ekman1978facs`
# (Fear reads AU20, where the AHM paper {cite:p}`zhang_dong_ahm` repeats AU2). A sample picks
# an apex strength $s \sim U(0.3, 1)$ and gives each prototype AU the intensity
# $\mathrm{clip}(s + \epsilon, 0.05, 1)$, $\epsilon \sim U(-0.2, 0.2)$; each prototype AU is
# missing with probability 0.15, optional AUs (e.g. AU25 with a smile) join with probability
# 0.4, and a quarter of the faces get one extra random AU. A weak Fear therefore looks much
# like a Surprise, and a weak anything like Neutral.

# %%
pd.DataFrame({"expression": list(EXPRESSION_AUS),
              "prototype AUs": ["+".join(map(str, v)) or "none" for v in EXPRESSION_AUS.values()]}
             ).set_index("expression").T

# %%
fig = prototype_figure(intensity=1.0, size=96)

# %% [markdown]
# ### How action units move a face
#
# In a live notebook the panel below has one slider per AU (and pose and occluder sliders)
# and redraws the face on every change. The static figure after it shows the same thing for
# the built site: each AU alone on the mean identity, at increasing intensity.

# %% tags=["widget"]
au_explorer(size=128, start="Happy")

# %%
fig = au_intensity_figure(intensities=(0.0, 0.33, 0.67, 1.0), size=64)

# %% [markdown]
# ### Nuisance factors
#
# Besides the expression, every face varies in **identity** (face shape, placement of the
# features, skin and hair tone; identities of train, validation and test are disjoint),
# **pose** (roll; yaw drawn as a horizontal foreshortening that shifts the features by their
# depth), an **illumination** gradient and gain, **occluders** (glasses, sunglasses, a hand),
# **blur** and **sensor noise**. A test split can be rendered with one factor fixed, showing
# the *same* faces; the EAN chapter uses such conditions and same-identity frontal/profile
# pairs:

# %%
conditions = ["clean", "default", "frontal", "profile", "occluded", "dim"]
cond_sets = {c: make_synthfacs_split(7, seed=seed, split="test", condition=c) for c in conditions}
fig = mosaic_figure([cond_sets[c].images for c in conditions], conditions,
                    col_labels=[BASIC7[y] for y in cond_sets["default"].labels])

# %%
frontal, profile_view = make_identity_pairs(6, seed=seed)
fig = mosaic_figure([frontal.images, profile_view.images], ["frontal", "profile"],
                    col_labels=[f"id {i}" for i in frontal.extras["identity"]])

# %% [markdown]
# ## The splits the chapters use
#
# `load_splits` is the single entry point. For SynthFACS the training split follows RAF-DB's
# class proportions scaled to the profile's size by largest remainders; validation and test are
# balanced. Checking the scaling from scratch, for the profile's training size $N$:
# $n_c = \lfloor N\,r_c / \sum r \rfloor$, then the classes with the largest remainders get one
# more image until the counts sum to $N$:

# %%
r = np.asarray(RAFDB_TRAIN_COUNTS, dtype=float)
exact = r / r.sum() * prof.synth_train
n_c = np.floor(exact).astype(int)
n_c[np.argsort(-(exact - n_c), kind="stable")[: prof.synth_train - n_c.sum()]] += 1
assert (n_c == class_counts_for(prof.synth_train, "rafdb")).all()

t0 = time.perf_counter()
splits = load_splits("synthfacs", profile=prof, seed=seed)
gen_s = time.perf_counter() - t0
assert (splits.train.class_counts() == n_c).all()
print(f"generated {sum(len(s) for s in splits)} faces in {gen_s:.1f} s")
splits.summary()

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3))
plot_class_counts(splits.train.class_counts(), BASIC7, ax=axes[0], title="SynthFACS train (RAF-DB proportions)")
plot_class_counts(splits.test.class_counts(), BASIC7, ax=axes[1], title="SynthFACS test (balanced)")
fig.tight_layout()

# %%
fig = class_grid(splits.train, per_class=10, seed=seed, title="SynthFACS train (class size in brackets)")

# %% [markdown]
# ## FER2013
#
# FER2013 {cite:p}`goodfellow2013fer2013` has 28,709 training and 3,589 + 3,589 test faces of
# 48x48 grey pixels, in the same canonical label order. `ferlib.data.load_fer2013` reads the
# Kaggle CSV (plain or gzipped, with or without the `PrivateTest` rows, or the
# `icml_face_data.csv` variant) or the `train/<class>/` image folders, parses it once and caches
# the arrays (`$FERLIB_CACHE`, default `~/.cache/ferlib`), so later loads take about a second.
# Nothing is downloaded: set `data_root` to your copy.

# %%
fer = None
fer_root = Path(data_root) if data_root else None
if fer_root is not None and fer_root.exists():
    from ferlib.data.fer2013 import load_fer2013
    t0 = time.perf_counter()
    fer = load_fer2013(fer_root)
    print(f"FER2013 loaded in {time.perf_counter() - t0:.1f} s from {fer.source}")
    display(fer.summary)
    fig, axes = plt.subplots(1, len(fer), figsize=(6 * len(fer), 3), squeeze=False)
    for ax, (name, ds) in zip(axes[0], fer.items()):
        plot_class_counts(ds.class_counts(), ds.class_names, ax=ax, title=f"FER2013 {name}")
    fig.tight_layout()
else:
    print("FER2013 not shown: data_root is not set (or does not exist). Set data_root to a folder "
          "holding fer2013.csv(.gz) from the Kaggle 'Challenges in Representation Learning: Facial "
          "Expression Recognition Challenge' to see its class distribution here.")

# %%
if fer is not None:
    name = next(iter(fer))
    fig = class_grid(fer[name], per_class=10, seed=seed, title=f"FER2013 {name} (class size in brackets)")

# %% [markdown]
# ## Long tail and label noise
#
# **Long tail.** `make_long_tailed(ds, ratio)` subsamples to the exponential profile of
# {cite:t}`cui2019classbalanced`,
#
# $$ n_c = n_{\max}\, \rho^{-\,\mathrm{rank}(c)/(K-1)}, $$
#
# so the head class keeps $n_{\max}$ images and the tail class $n_{\max}/\rho$. From scratch,
# for the balanced test split and $\rho = 10$:

# %%
K, rho = 7, 10.0
n_max = int(splits.test.class_counts().max())
by_hand = np.floor(n_max * rho ** (-np.arange(K) / (K - 1)) + 1e-9).astype(int)
assert (by_hand == long_tail_counts(n_max, K, rho)).all()
lt = make_long_tailed(splits.test, rho, seed=seed)
assert sorted(lt.class_counts().tolist(), reverse=True) == by_hand.tolist()
print("long-tailed counts:", dict(zip(BASIC7, lt.class_counts().tolist())))

# %% [markdown]
# **Label noise.** `flip_labels(ds, p, seed)` follows the protocol of SCN / RUL
# {cite:p}`wang2020scn,zhang2021rul`: exactly $\mathrm{round}(pN)$ samples, chosen at random,
# get a uniformly random *different* class; the clean labels stay in `clean_labels` for
# evaluation. The EAN chapter uses $p = 0.1$ and $0.2$. The table shows where the flipped
# labels of the training split went (rows: clean, columns: noisy):

# %%
noisy = flip_labels(splits.train, 0.2, seed=seed)
n_flipped = int((noisy.labels != noisy.clean_labels).sum())
assert n_flipped == round(0.2 * len(noisy))
print(f"{n_flipped} of {len(noisy)} labels flipped ({n_flipped / len(noisy):.1%})")
pd.crosstab(pd.Series(pd.Categorical.from_codes(noisy.clean_labels, BASIC7), name="clean"),
            pd.Series(pd.Categorical.from_codes(noisy.labels, BASIC7), name="noisy"), dropna=False)

# %% [markdown]
# **Class-balanced sampling.** `class_balanced_sampler` weights every sample by $1/n_{y}$, so
# each class is drawn with probability $1/K$ (with replacement):

# %%
sampler = class_balanced_sampler(splits.train.labels, num_samples=7000, seed=seed)
drawn = splits.train.labels[np.fromiter(iter(sampler), dtype=np.int64)]
pd.DataFrame({"train share": splits.train.class_counts() / len(splits.train),
              "balanced draw share": np.bincount(drawn, minlength=7) / len(drawn)},
             index=list(BASIC7)).round(3).T

# %% [markdown]
# ## How hard is SynthFACS?
#
# A benchmark is useful only if a plain classifier neither solves it nor fails. The target:
# a small CNN trained with cross-entropy on the imbalanced training split reaches between 55 %
# and 85 % on the balanced test split, with at least 20 points between its best and worst class
# recall, so that the imbalance methods of the later chapters have something to fix. The
# calibration runs at the `cpu` profile (12,000 training faces, the small VGG-style CNN,
# 8 epochs) with
#
# ```bash
# python -m ferlib.data.calibration --profile cpu --out book/records/cpu
# ```
#
# and writes the record read here:

# %%
from ferlib.records import load_records

recs = load_records(records_path)
cal = recs[recs["method"] == "synthfacs-calibration"] if len(recs) else recs
if len(cal):
    cols = ["param/profile", "param/backbone", "param/epochs", "param/n_train", "seed", "accuracy",
            "mean_class_accuracy", "macro_f1", "min_class_recall", "max_class_recall"]
    table = cal[[c for c in cols if c in cal.columns]].copy()
    table["recall spread"] = cal["max_class_recall"] - cal["min_class_recall"]
    display(table.round(3))
    recall = cal[[f"recall/{c}" for c in BASIC7]].iloc[-1]
    recall.index = list(BASIC7)
    display(recall.round(3).to_frame("class recall (latest calibration)").T)
else:
    print(f"no calibration record in {records_path}: run "
          "`python -m ferlib.data.calibration --profile cpu --out book/records/cpu`")

# %% [markdown]
# In the committed record the plain CNN lands inside the target band, and the per-class
# recalls show what later chapters must fix: **Fear**, the rarest class (281 of 12,271 at
# RAF-DB's proportions) and the one whose AUs are a superset of Surprise's, is recognised worst;
# **Happy**, the head class with its own cue (the smile, AU12), best; and **Neutral** loses
# the faint expressions of every other class.
#
# The same measurement, live, at this notebook's profile. At the smoke profile (8 epochs on
# 3,600 faces of 32x32) the network learns, but from so few faces that these numbers only show
# that the pipeline works; they are not results. The committed record above was made with the
# old cpu profile (12,000 faces, width-16 CNN, Adam, 8 epochs, no augmentation).

# %%
from ferlib.data.calibration import calibrate_synthfacs

live = calibrate_synthfacs(prof, seed=seed, device=str(dev), progress=False)
m = live["metrics"]
print(f"live ({prof.name}): accuracy {m['accuracy']:.3f}, mean class accuracy {m['mean_class_accuracy']:.3f}, "
      f"recall spread {live['recall_spread']:.3f}")
pd.Series(m["per_class_recall"]).round(3).to_frame("recall").T

# %% [markdown]
# ## Key numbers
#
# Class counts of the profile's SynthFACS splits, the long-tail and label-noise counts, and the
# mean grey level of one seeded face (the generator's bytes are the same on every machine).

# %%
# NBVAL_CHECK_OUTPUT
print("train counts:", splits.train.class_counts().tolist())
print("test counts:", splits.test.class_counts().tolist())
print("long tail (rho 10) counts:", lt.class_counts().tolist())
print("flipped at 20%:", n_flipped)
print("happy face mean grey:", round(float(render_face({6: 1.0, 12: 1.0}, size=48).mean()), 2))
print("first train face mean grey:", round(float(splits.train.images[0].mean()), 2))
