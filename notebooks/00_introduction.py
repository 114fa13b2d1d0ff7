# ---
# jupyter:
#   ferlib:
#     reads: []
#     seconds: 5
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
# # Introduction: four papers, one library, one book
#
# Facial expression recognition (FER) data is hard in two ways at once. Its classes are
# **long-tailed**: in RAF-DB {cite:p}`li2017rafdb` Happy has 4,772 training images and Fear
# 281; in FER2013 {cite:p}`goodfellow2013fer2013` Disgust has 436 of 28,709. And its labels
# are **noisy**: faces are ambiguous, annotators disagree, and a share of the labels is
# simply wrong. This book reproduces four papers that attack these problems:
#
# | chapter | paper | what it proposes |
# |---|---|---|
# | 03 | Zhang & Dong {cite:p}`zhang_dong_ahm` | a semantic space of facial action units {cite:p}`ekman1978facs` weighted with the Analytic Hierarchy Process {cite:p}`saaty1980ahp` |
# | 04 | Li et al. {cite:p}`li2024semantic` | new minority-class samples drawn in the latent space of a VAE-GAN from class covariances |
# | 05 | Du et al. (EAN) {cite:p}`du2021ean` | a thresholded mini-batch similarity graph and a GCN {cite:p}`kipf2017gcn`, robust to label noise |
# | 06 | Fan et al. (CUCN) {cite:p}`fan2022cucn` | class weights, CBAM attention {cite:p}`woo2018cbam` and uncertainty mixing {cite:p}`zhang2021rul` |
#
# Each chapter states the paper's equations, checks the key one against a computation written
# from scratch in the notebook, runs a small live experiment with the `ferlib` library, and
# reads the results of the long runs from records committed in `book/records/`. Chapter 01
# introduces the data (the synthetic **SynthFACS** set that runs anywhere, and FER2013 when you
# have it), chapter 02 the baseline every method is compared with, and chapter 07 puts the
# four methods side by side.

# %% [markdown]
# ## The parameters of a chapter
#
# Every chapter starts with a cell tagged `parameters`. Its defaults run the whole notebook in
# well under a minute on a laptop CPU; papermill (and the book's runner) replace them to run the
# same notebook at a larger scale. This chapter only needs the two that every chapter has:

# %% tags=["parameters"]
profile = "smoke"   # smoke | cpu | full: how big the data, the models and the training are
device = "auto"     # auto | cpu | cuda

# %%
import dataclasses

import pandas as pd

from ferlib.config import PROFILES, get_profile, resolve_device

prof = get_profile(profile)
dev = resolve_device(device)
print(f"this run: profile {prof.name!r} on {dev}")

# %% [markdown]
# ## How the profiles work
#
# A *profile* fixes every size a chapter uses: how many synthetic images, how many real ones at
# most, which backbone, how many epochs. Chapters never hard-code a size; they read it from
# `ferlib.config.get_profile(profile)`. There are three:
#
# - **smoke**: seconds per chapter on a CPU. The committed notebooks and the continuous
#   integration run this one: 3,600 SynthFACS faces of 32x32, 8 epochs of a tiny CNN. Its
#   models learn (well above chance) but its numbers are pipeline checks, never results.
# - **cpu**: the whole training split of a real dataset, the 1.2M-parameter VGG-style CNN,
#   20 epochs of the recipe of chapter 02 (crop/flip augmentation, SGD with a one-cycle
#   schedule, label smoothing, flip averaging; bfloat16 where the CPU has the units): about
#   20 minutes a FER2013 run on 2 cores with bfloat16 units, longer without them.
# - **full**: the papers' settings (ResNet backbones, tens of epochs); meant for a GPU.
#
# The table is built live from `ferlib.config.PROFILES`, so it cannot drift from the code:

# %%
table = pd.DataFrame([dataclasses.asdict(p) for p in PROFILES.values()]).set_index("name").T
table.index.name = "field"
table

# %% [markdown]
# ## How to run the book
#
# From the repository's root, on a fresh machine:
#
# ```bash
# make book    # creates .venv if needed, executes every chapter (smoke), builds _build/html
# make test    # unit tests + nbval over the committed notebooks
# ```
#
# `make book` calls the runner, `python -m ferlib.book --profile smoke`. It executes every
# notebook listed in `_toc.yml` with [papermill](https://papermill.readthedocs.io), writes the
# executed copies to `_build/executed/<profile>/`, then builds the site with Jupyter Book from
# those copies (Jupyter Book itself never executes anything). Other runs:
#
# ```bash
# python -m ferlib.book --profile cpu                       # the whole book, CPU scale
# python -m ferlib.book --profile full --device cuda \
#     --dataset fer2013 --data-root /data/fer2013           # the papers' scale, on a GPU
# python -m ferlib.book --only 05_adjacency_threshold_tuning -p seed 1 --no-build
# ```
#
# A chapter whose notebook, parameters and `ferlib` source have not changed since its last
# successful run is not executed again (`--force` overrides), so editing one chapter rebuilds
# in seconds, while any change to `ferlib` re-runs them all.
#
# **One notebook by hand.** Each chapter exists twice in `notebooks/`: `NN_name.py`, the
# plain-Python source (Jupytext "percent" format) that is reviewed and edited, and
# `NN_name.ipynb`, the same cells with the outputs of a smoke run. Open either in JupyterLab
# (`.venv/bin/jupyter lab notebooks/`; Jupytext keeps the pair in sync on save). To run one on a
# GPU with other parameters, papermill needs nothing else:
#
# ```bash
# papermill notebooks/02_baseline.ipynb /tmp/02_full.ipynb --cwd notebooks \
#     -p profile full -p device cuda -p dataset fer2013 -p data_root /data/fer2013
# ```
#
# and a parameter sweep is one command, resumable, one process per GPU:
#
# ```bash
# python -m ferlib.book sweep 05_adjacency_threshold_tuning --profile full \
#     --grid seed=0,1,2 --gpus 0,1
# ```
#
# The runner's full documentation is `python -m ferlib.book --help` and the README.

# %% [markdown]
# ## Key numbers
#
# The last cell of every chapter prints its key numbers, rounded. `make test` re-executes the
# notebooks with nbval and compares exactly those cells (marked `NBVAL_CHECK_OUTPUT`) with the
# committed outputs, so a change in behaviour shows up as a failing test. Here: the sizes of the
# active profile.

# %%
# NBVAL_CHECK_OUTPUT
print(f"profile {prof.name}: backbone {prof.backbone} (width {prof.width}), "
      f"{prof.epochs} epochs, batch {prof.batch_size}, lr {prof.lr:g}")
print(f"SynthFACS: {prof.synth_train} train / {prof.synth_test} test images of "
      f"{prof.image_size}x{prof.image_size}; real-data caps: train {prof.real_train_cap}, "
      f"eval {prof.real_eval_cap}")
