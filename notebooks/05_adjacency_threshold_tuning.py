# ---
# jupyter:
#   ferlib:
#     reads: [02_baseline]
#     seconds: 215
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
# # Associative learning: adjacency thresholds, a GCN and noisy labels (EAN)
#
# Du et al. (*EAN*) build a graph over every mini-batch: two faces are linked when their
# backbone features are similar enough, the links are pushed towards "same label" by a loss, and
# a graph convolutional network (GCN) classifies each face together with its neighbours. The
# paper claims this association makes the classifier robust to wrongly labelled training faces
# (RAF-DB with 10 % flipped labels: 84.83 % against SCN's 82.18 %; 20 %: 84.02 against 80.10).
# A separate *invariant feature generator* is meant to make features of one person agree across
# pose, occlusion and lighting.
#
# This chapter builds every equation in `ferlib.methods.ean.model`, checks them by hand on four
# vectors, looks at what a threshold does to a batch of real features (with sliders), and runs
# the noisy-label comparison against the cross-entropy baseline and SCN
# (`ferlib.methods.ean.scn`, Wang et al. CVPR 2020), plus an ablation of the invariant generator
# (`ferlib.methods.ean.invariant`).

# %% tags=["parameters"]
profile = "smoke"
device = "auto"
dataset = "synthfacs"
data_root = None
eval_split = None
val_split = "holdout"
seed = 0
results_path = "../_build/records"
records_path = "../book/records/cpu"   # committed records (cpu profile)
tune = True           # pick tau1 and tau2 on the validation split (below); False: use tau1, tau2
tau1 = None           # Eq. 4 upper threshold when tune is False (None: the library's default)
tau2 = None           # Eq. 4 lower threshold when tune is False (None: the single-threshold form)
temperature = 0.05    # the sigmoid relaxation's temperature
alpha = 0.1           # weight of Adj_loss (Eq. 6; the paper's 0.1)
noise_rate = 0.2      # share of flipped training labels in the live run (smoke profile)

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from ferlib.config import get_profile, resolve_device
from ferlib.data import load_splits
from ferlib.metrics import check_above_chance
from ferlib.methods.ean import model as ean
from ferlib.methods.ean import experiment as exp

prof = get_profile(profile)
dev = resolve_device(device)
print(f"profile {prof.name}: backbone {prof.backbone}, {prof.epochs} epochs, batch {prof.batch_size}, "
      f"warm-up {prof.warmup_epochs} epochs, device {dev}")

# %% [markdown]
# ## The paper's idea, in equations
#
# Let $h_i\in\mathbb R^D$ be the pooled backbone feature of face $i$ in a batch of $B$.
#
# **Eq. 3: cosine similarity.** $\;C_s[i,j] = \dfrac{h_i^\top h_j}{\lVert h_i\rVert\,\lVert h_j\rVert}$.
# A zero feature has no direction; `ferlib` defines its similarity to everything (itself
# included) as $0$ instead of returning NaN.
#
# **Eq. 4: adjacency with two thresholds** $\tau_2<\tau_1$:
#
# $$ A_{ij} = \begin{cases} 1 & C_s[i,j]\ge\tau_1 \ \text{ or }\ C_s[i,j]\le\tau_2\\ 0 & \text{otherwise,}\end{cases} $$
#
# The second condition links *opposite* pairs (features pointing away from each other); the
# paper's simplified form, and most of its text, keeps only the first. We measure both readings
# on the validation split below and let the validation accuracy choose (the chosen one is
# printed, and the noisy-label table uses it). Thresholds are cosines, so both must lie in
# $[-1,1]$; `tau2 >= tau1` is an error.
#
# **Eq. 5-6: label mask and adjacency loss.** $A^{mask}_{ij} = [y_i=y_j]$ and
#
# $$ \mathrm{Adj\_loss} = \alpha\Big(\sum_{ij} A^{mask}_{ij}A_{ij} - \sum_{ij}A^{mask}_{ij}\Big)^2 . $$
#
# **Eq. 7-8: GCN.** With $\tilde A = A + I$ and $\tilde D_{ii}=\sum_j\tilde A_{ij}$,
# $\hat A = \tilde D^{-1/2}\tilde A\tilde D^{-1/2}$ and $H^{(l+1)} = \sigma(\hat A H^{(l)}W^{(l)})$,
# two layers, the last giving the class scores. The total loss is cross-entropy plus
# Adj_loss; for the first epochs (the paper: 50) $A = I$.
#
# ### Four problems with the equations as printed, and what `ferlib` does
#
# 1. **The diagonal.** $C_s[i,i]=1$, so Eq. 4 puts a self-edge on every node and Eq. 7 adds a
#    second one. `ferlib` zeroes the diagonal of $A$ (and of $A^{mask}$): self-loops come once,
#    from $+I$. `self_loops=True` keeps the literal form.
# 2. **No gradient.** A hard threshold is piecewise constant, so Adj_loss computed on it cannot
#    train the backbone. `ferlib` offers the relaxation $\sigma\big((C_s-\tau_1)/T\big)$
#    (`mode="soft"`) and a straight-through graph (`mode="ste"`: the hard graph forward, the
#    soft gradient backward), with which the GCN sees exactly Eq. 4 and Adj_loss trains the
#    features. **The experiments use the printed hard graph** (`mode="hard"`), chosen on
#    validation: see "Which graph trains the backbone?" below. So in our runs Adj_loss is
#    computed and reported but does not train the features.
# 3. **A one-sided loss that grows like $B^4$.** Eq. 6 only counts same-label pairs without an
#    edge; an edge between different labels costs nothing, so the complete graph has zero loss.
#    Its size grows with the square of the number of pairs. `normalize=True` divides by
#    $(\sum A^{mask})^2$, which puts it in $[0,\alpha]$ for every batch size. **The experiments use
#    the normalised form.**
# 4. **With $A=I$ the GCN is an MLP.** $\hat A = I$, so the warm-up epochs train a plain
#    MLP head (with our one-layer GCN, below, the baseline's own linear classifier). At test
#    time the graph needs a batch: we report the batch graph and the single-image case
#    ($A=I$) side by side.
#
# One more, found below on real features: pooled ReLU features are non-negative and share a
# large mean direction, so their raw cosines crowd near 1. `ferlib` centres the batch before
# Eq. 3 (`center=True`, our addition; `center=False` is the literal form).
#
# ### Other choices this chapter makes where the paper says otherwise or nothing
#
# * **Thresholds tuned on validation only.** $\tau_1$ (and $\tau_2$) are picked by the
#   validation accuracy of EAN trained under the chapter's label noise, at a handful of values
#   (`exp.tune_thresholds`, which never reads the test split); the test split is read once, by
#   the noisy-label experiment that uses the chosen values. The library has one default per
#   threshold (`ean.DEFAULT_TAU1` = 0.8, `ean.DEFAULT_TAU2` = None), used where no tuning runs
#   (the comparison chapter's grid and the committed records).
# * **Optimiser.** The paper trains with SGD at 0.1, divided by 10 every 20 epochs; every
#   method here (baseline, SCN, EAN) uses the profile's one recipe (optimiser, one-cycle
#   schedule, augmentation; `prof.fit_options()`), so the three arms differ only in their loss
#   and head.
# * **The graph starts half-way.** The paper keeps $A=I$ for 50 epochs. Over features that have
#   not learned yet, the centred cosines of a batch sit near $\pm 1$ (the features collapse
#   towards one direction), so even a high $\tau_1$ links much of the batch, the GCN averages
#   every face with its neighbours, and training falls towards the majority class (in the
#   benchmark below, the graph from epoch 3 of 8 ends at 23.6-27.5 % test accuracy, from epoch
#   5 at 28.6-38.9 %, the baseline at 44.3 %). The smoke and cpu profiles therefore keep
#   $A=I$ for the first half of their epochs (`prof.warmup_epochs`: 4 of 8, 10 of 20); the full
#   profile keeps the paper's 50. The measurement is `tests/benchmarks/bench_noisy_schedule.py`
#   (smoke, 20 % noise, one seed, the straight-through graph of the time; its table is
#   `tests/benchmarks/results/noisy_schedule_cpu.md`).
# * **SCN relabels in the second half, in the low-importance group.** SCN relabels from epoch
#   10 of 70 on a pretrained backbone; a model trained from scratch for a seventh of a short run
#   is near chance, and relabelling by its argmax turns hundreds of faces into the majority
#   class (in the benchmark, from epoch 2 of 8: 2,281 of 3,600 labels changed, 24.6 % test
#   accuracy). We relabel from the middle of the run (`exp.scn_relabel_epoch`) and, as the SCN
#   paper says (its reference code does otherwise), only in the low-importance group. That
#   last rule is the paper's, not a measured improvement: on the benchmark's one seed,
#   relabelling every sample from epoch 5 scored 41.4 % and the low-importance group 37.5 %.
# * **No invariant generator in the noise table.** The EAN arm of the noisy-label experiment is
#   the backbone + graph + GCN; the invariant feature generator is trained and tested apart, in
#   its own ablation at the end of the chapter.
# * **Eq. 8's non-linearity and depth.** The paper writes $\sigma$ without naming it and does
#   not fix the number of layers. We use one layer, $\hat A H W + b$, whose output is the logits:
#   with $A = I$ it is exactly the baseline's linear classifier, so EAN differs from the
#   baseline only by the graph and Adj_loss. `gcn_layers=2` gives Kipf & Welling's two layers
#   with ReLU between them; in our short runs the hidden layer cost accuracy (same benchmark,
#   the graph from epoch 5: 28.6 % with two layers, 38.9 % with one).
# * **The straight-through graph carries the cross-entropy too.** With `mode="ste"` the soft
#   adjacency's gradient flows back from every term that uses $A$: Adj_loss, and also the
#   cross-entropy through the GCN's propagation $\hat A H W$. The hard graph of the paper gives
#   neither a path through $A$; the cross-entropy still trains the features through $H$.

# %% [markdown]
# ## Checked by hand: Eq. 3-7 on four vectors
#
# Four 2-D features at 0°, 60°, 120° and 180° (norms 2, 3, 1 and 4: cosine ignores length), labels
# $(0,0,0,1)$. Written out here in NumPy and compared with `ferlib`.

# %%
feats, labels = exp.HAND_FEATURES, exp.HAND_LABELS
unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
cs_np = unit @ unit.T                                            # Eq. 3
a_np = (cs_np >= 0.4).astype(float)                              # Eq. 4, tau1 = 0.4
np.fill_diagonal(a_np, 0)                                        # our diagonal choice
a2_np = ((cs_np >= 0.4) | (cs_np <= -0.8)).astype(float)         # two thresholds, tau2 = -0.8
np.fill_diagonal(a2_np, 0)
m_np = (labels[:, None] == labels[None, :]).astype(float)        # Eq. 5
np.fill_diagonal(m_np, 0)
loss_np = 0.1 * ((m_np * a_np).sum() - m_np.sum()) ** 2          # Eq. 6
loss_norm_np = loss_np / m_np.sum() ** 2
at = a_np + np.eye(4)
d = at.sum(1)
a_hat_np = at / np.sqrt(np.outer(d, d))                          # Eq. 7

hand = exp.hand_example(tau1=0.4, tau2=-0.8, alpha=0.1)
for name, ours in (("C_s", cs_np), ("A", a_np), ("A_two", a2_np), ("A_mask", m_np), ("A_hat", a_hat_np)):
    assert np.allclose(hand[name], ours, atol=1e-6), name
assert math.isclose(hand["adj_loss"], loss_np, rel_tol=1e-6)
assert math.isclose(hand["adj_loss_norm"], loss_norm_np, rel_tol=1e-6)
print("C_s =\n", np.round(cs_np, 3))
print("A (tau1=0.4): the path 0-1-2-3; with tau2=-0.8 also the edge 0-3")
print(f"Adj_loss = 0.1 * ({(m_np * a_np).sum():.0f} - {m_np.sum():.0f})^2 = {loss_np:.3f}; "
      f"normalised {loss_norm_np:.4f}")
print("A_hat =\n", np.round(a_hat_np, 3))

# %% [markdown]
# The GCN with $A = I$ is the MLP with the same weights, exactly (not just closely):

# %%
torch.manual_seed(seed)
gcn = ean.GCN(8, 7, hidden=16)
h = torch.randn(5, 8)
print("GCN(A=I) == MLP exactly:", torch.equal(gcn(h, torch.eye(5)), gcn.as_mlp()(h)))

# %% [markdown]
# ### Which graph trains the backbone?
#
# The gradient of Adj_loss with respect to the features, for the three ways of forming $A$:

# %%
grads = {}
for mode in ("hard", "soft", "ste"):
    x = torch.from_numpy(exp.HAND_FEATURES).clone().requires_grad_(True)
    a = ean.adjacency(ean.cosine_similarity_matrix(x), 0.4, mode=mode, temperature=0.1)
    loss = ean.adj_loss(a, ean.label_mask(torch.from_numpy(exp.HAND_LABELS)))
    grads[mode] = float(torch.autograd.grad(loss, x)[0].norm()) if loss.requires_grad else 0.0
print({k: round(v, 4) for k, v in grads.items()})

# %% [markdown]
# Only `soft` and `ste` let Adj_loss move the features. Which graph to train with is a
# hyperparameter, so we chose it on validation: `tests/benchmarks/bench_ean_threshold.py
# --noise 0.2 --tau1 0.8 --tau2 -0.8 --modes ste hard` (smoke, 20 % flipped labels, seeds 0-2;
# the table is `tests/benchmarks/results/ean_graph_mode_cpu.md`) trained EAN with each. On the
# noisy validation labels the hard graph scored higher on 3 of 3 seeds with one threshold
# (mean 33.0 % against 30.3 %) and with two (33.3 % against 24.7 %: with opposite-pair edges
# the straight-through gradient drove training towards chance). Test accuracy, read after the
# choice, agrees (37.5 % against 35.7 %; 36.8 % against 26.0 %; the baseline 40.6 %). The
# library default is therefore `mode="hard"`, Eq. 4 as printed. In our runs Adj_loss is
# computed and reported but trains nothing, so the paper's claim that it shapes the feature
# space is not tested here: the way we found to give it a gradient cost accuracy.

# %% [markdown]
# ### The $B^4$ growth
#
# The worst case of Eq. 6 (every face one class, no edge) against the normalised form:

# %%
rows = []
for b in (16, 32, 64, 128):
    y = torch.zeros(b, dtype=torch.long)
    m = ean.label_mask(y)
    rows.append({"batch": b, "literal": float(ean.adj_loss(torch.zeros(b, b), m, alpha)),
                 "normalised": float(ean.adj_loss(torch.zeros(b, b), m, alpha, normalize=True))})
pd.DataFrame(rows)

# %% [markdown]
# At batch 64 the literal term is about $10^6$ times the cross-entropy; with $\alpha = 0.1$ it
# would drown the classification loss. The normalised form stays at most $\alpha$.

# %% [markdown]
# ## Thresholds on real features
#
# A fixed batch of 64 **validation** faces (stratified by class; nothing in this section or the
# next reads the test split), with the pooled features of the chapter-02 baseline backbone
# (reused from `results_path` or trained now). First the similarities themselves, raw and
# batch-centred:

# %%
splits = load_splits(dataset, data_root=data_root, eval_split=eval_split, val_split=val_split,
                     profile=prof.name, seed=seed)
class_names = splits.train.class_names
fb, yb = exp.baseline_feature_batch(splits, prof, dev, seed, n=64, results_path=results_path,
                                    split="val")
iu = np.triu_indices(len(yb), 1)
raw = ean.cosine_similarity_matrix(torch.from_numpy(fb)).numpy()[iu]
cen = ean.cosine_similarity_matrix(torch.from_numpy(fb), center=True).numpy()[iu]
print(f"{dataset}: {len(yb)} faces; raw cosine 5-95 %: {np.percentile(raw, 5):.4f} .. "
      f"{np.percentile(raw, 95):.4f}; centred: {np.percentile(cen, 5):.2f} .. {np.percentile(cen, 95):.2f}")

# %% [markdown]
# The raw cosines sit in a narrow band just under 1, so a threshold on them links almost
# everything or almost nothing. Centred, they spread over $[-1, 1]$. The sweep below moves
# $\tau_1$ and measures the graph against the "same label" pairs: **edge precision** (share of
# edges that join two faces of one class) and **edge recall** (share of same-label pairs that get
# an edge). This view *explains* a threshold; it does not choose one: edge F1 rewards the
# complete graph whenever the features separate the classes poorly (recall 1 at a precision
# equal to the same-label share), which is not what the classifier needs.

# %%
sweep = exp.threshold_sweep(fb, yb, center=True)
best_f1 = exp.choose_tau(sweep)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
exp.plot_threshold_sweep(exp.threshold_sweep(fb, yb, center=False), ax=axes[0])
axes[0].set_title("raw cosine (literal Eq. 3)")
exp.plot_threshold_sweep(sweep, best_f1, ax=axes[1])
axes[1].set_title("batch-centred cosine (validation faces)")
plt.tight_layout()
plt.show()
base_rate = sweep["same_pairs"].iloc[0] / (len(yb) * (len(yb) - 1) / 2)
print(f"best-edge-F1 tau1 = {best_f1:.3f}; same-label share of all pairs (precision of a random "
      f"graph) = {base_rate:.3f}")

# %% [markdown]
# A precision curve that stays at the same-label share of all pairs means the features do not
# separate the classes yet (the smoke profile's baseline has trained for seconds); on better
# features it rises with $\tau_1$.
#
# ### Tuning the thresholds by validation accuracy
#
# What a threshold is for is the classifier, so we choose it by the validation accuracy of EAN
# itself, trained with `noise_rate` of the training labels flipped and scored on a validation
# split with its own flips (no clean labels to select on). First the single-threshold form at
# a handful of $\tau_1$; then, at the best $\tau_1$, the paper's full Eq. 4 with opposite-pair
# edges ($C_s\le\tau_2$). A setting scores its best validation epoch with the graph on (warm-up
# epochs, $A=I$, are the same for every threshold). Ties go to the single threshold and the
# sparser graph. The smoke profile tries 2 + 1 settings; the other profiles 5 + 2. Every
# profile trains on its whole training split.

# %%
live = exp.live_sizes(prof)
if tune:
    tuning = exp.tune_thresholds(splits, prof, noise_rate=noise_rate, tau1_grid=live["tau1_grid"],
                                 tau2_grid=live["tau2_grid"], alpha=alpha, seed=seed, device=dev,
                                 train_cap=live["train_cap"])
    tau1, tau2 = tuning.tau1, tuning.tau2
    display(tuning.table.round(3))
    exp.plot_tuning(tuning)
    plt.show()
    two = tuning.table[tuning.table["tau2"].notna()]
    one_best = tuning.table.loc[tuning.table["tau2"].isna(), "val_accuracy"].max()
    print(f"single threshold, best: {100 * one_best:.1f} %; with opposite pairs, best: "
          f"{100 * two['val_accuracy'].max():.1f} %" if len(two) else "no two-threshold setting ran")
else:
    tau1 = ean.DEFAULT_TAU1 if tau1 is None else tau1
reading = "single threshold (simplified Eq. 4)" if tau2 is None else "two thresholds (full Eq. 4)"
print(f"thresholds used below: tau1 = {tau1}, tau2 = {tau2}: {reading}")

# %% [markdown]
# On the smoke profile these are single short runs on one seed, scored on noisy validation
# labels: differences of a few points between settings are within the noise of a run, so the
# choice shows the procedure rather than a property of Eq. 4. The table and plot above are the
# measurement of both readings; the reading printed last is the one the noisy-label table
# below uses.
#
# Over three seeds the same holds: `tests/benchmarks/bench_ean_threshold.py` (smoke, 20 %
# noise, seeds 0-2; the table is `tests/benchmarks/results/ean_threshold_cpu.md`) trained EAN
# with the straight-through graph (made before the hard graph was chosen) at $\tau_1$ = 0.6,
# 0.8, 0.9 and 0.95 beside the baseline. Mean test accuracy: baseline 40.6 %,
# EAN 38.0, 35.7, 34.9 and 33.7 %; EAN scored below the baseline at every threshold on every
# seed (12 of 12 pairs; no interval: a benchmark, not a record). In these short runs from
# scratch a sparser graph (a higher $\tau_1$) did not close the gap. The paper's
# backbone is pretrained on faces; without pretrained weights we cannot test whether its
# graph helps there for that reason.
#
# ### The adjacency, live
#
# The heatmap shows $A$ with the faces ordered by class (white lines between classes), beside
# $A^{mask}$; a good graph looks like the mask's diagonal blocks. Below: a static figure at the
# tuned thresholds, then sliders (in a live notebook, starting at the tuned values) for
# $\tau_1$, $\tau_2$, the temperature and the graph mode.

# %%
fig = exp.plot_adjacency_panel(fb, yb, class_names, tau1, tau2, temperature, "hard", alpha)
plt.show()
state = exp.adjacency_state(fb, yb, tau1, tau2, temperature, "hard", alpha)
print(f"tau1={tau1}: precision {state['precision']:.3f}, recall {state['recall']:.3f}, "
      f"mean degree {state['mean_degree']:.1f}, Adj_loss {state['adj_loss']:.1f} "
      f"(normalised {state['adj_loss_norm']:.4f})")

# %% tags=["widget"]
exp.adjacency_explorer(fb, yb, class_names, tau1=tau1, tau2=tau2, temperature=temperature, alpha=alpha)

# %% [markdown]
# ## The noisy-label experiment (Tables 3-4)
#
# The SCN/EAN protocol: a fixed share of the training faces gets a uniformly random *different*
# class (`ferlib.data.flip_labels`, seeded). The validation split gets its own flips (a
# practitioner has no clean labels to select on); the test labels are clean. Three methods, one
# backbone, the same seed:
#
# * **baseline**: cross-entropy;
# * **SCN**: attention-weighted logits, rank regularisation (high-importance share 0.7; margin
#   0.07 at batch 64, 0.15 above), relabelling of the low-importance group when
#   $p_{max}-p_{label}>0.2$, from the middle of the run (see the choices above);
# * **EAN**: the backbone, the batch graph (centred cosine, the tuned `tau1` and `tau2`,
#   the printed hard graph) and a one-layer GCN; loss CE + normalised Adj_loss (no gradient
#   through the hard graph, see above); $A=I$ for the first half of the run; no invariant
#   generator.
#
# Every run writes one record. We report the test accuracy of the epoch selected on validation
# and the mean of the last five epochs (the papers' noisy-label tables use the latter). The
# smoke profile runs only `noise_rate`; the cpu profile runs 0, 10 and 20 %. Each EAN run also
# writes an `ean:single` record: the same weights scored image by image ($A = I$), the control
# that says whether the batch graph at test time adds anything.
#
# **Pipeline check.** At the `smoke` profile every model trains for seconds on synthetic faces,
# one seed: the tables of this section show that the runs learn (the cell asserts that each
# is well above chance) and that their records work, not how the methods compare, and they are
# not set beside the paper's numbers (the committed records are, further down).

# %%
rates = (noise_rate,) if prof.short_live_runs else (0.0, 0.1, 0.2)
results = exp.noisy_label_experiment(prof, splits=splits, seed=seed, noise_rates=rates,
                                     tau1=tau1, tau2=tau2, alpha=alpha, device=dev,
                                     results_path=results_path, train_cap=live["train_cap"],
                                     source="notebooks/05_adjacency_threshold_tuning")
assert results.loc[results["method"] == "ean", "single_image_accuracy"].notna().all(), \
    "the single-image control of EAN is missing"
n_classes = splits.test.num_classes
check_above_chance({f"{r.method} at {r.noise_rate:.0%} noise": r.mean_class_accuracy
                    for r in results.itertuples()}, n_classes)
print(f"pipeline check ({prof.name} profile, one seed): not results")
results[["dataset", "method", "noise_rate", "accuracy", "mean_class_accuracy", "accuracy_last5",
         "best_epoch",
         "single_image_accuracy", "n_relabelled", "wall_time"]].round(3)

# %%
print(f"pipeline check ({prof.name} profile), percent; the paper's columns are not shown here")
exp.noisy_table(results, paper=None).round(2)

# %% [markdown]
# Two details behind the table. **EAN at test time**: the `ours` column builds the graph
# over each evaluation batch of 256 faces, so a face's prediction depends on its batch-mates;
# `ours_single_image` classifies each face alone ($A = I$, the MLP path) with the same weights. **SCN's
# relabelling**: `n_relabelled` counts training labels SCN changed; early in a short run these
# changes follow a model that has barely trained.

# %% [markdown]
# ## The invariant feature generator (Sec. 2.2, the spirit of Table 5)
#
# `ferlib.methods.ean.invariant` adds to the backbone a residual generator $G(h) = h + g(h)$ (zero
# at the start), a discriminator that predicts the nuisance conditions of a feature (profile
# pose, occluder, dim light) trained through a gradient-reversal layer, so the generator learns
# to hide them, and a cosine consistency term on SynthFACS pairs that show one identity frontal
# and in profile (the real data sets carry no identity labels). We train the backbone with the
# generator off and on and test both on the same test faces rendered four ways. The paper's
# Table 5 (the generator across AlexNet, VGG13, VGG16 and ResNet-18 on FERPlus and RAF-DB,
# basic against with the generator) is on the scoreboard; this ablation, written as
# `ean:invariant` records with `generator` 0 and 1, is the nearest run for its gains.

# %%
ablation = exp.invariant_ablation(prof, seed=seed, device=dev, results_path=results_path,
                                  train_cap=live["train_cap"], n_test=live["n_test"],
                                  source="notebooks/05_adjacency_threshold_tuning")
default = ablation[ablation["condition"] == "default"]
check_above_chance({f"generator {g}": a for g, a in zip(default["generator"], default["accuracy"])},
                   n_classes, what="test accuracy (balanced test split)")
ablation.pivot(index="condition", columns="generator", values="accuracy").round(3)

# %% [markdown]
# ## Full results from the committed records
#
# The committed cpu-profile FER2013 records are in `../book/records/cpu` (a 6,000-image
# training subset; `bash scripts/cpu_records.sh`). They predate the validation tuning and the
# choice of the hard graph: EAN ran at the library's default $\tau_1$, single threshold, with
# the straight-through graph (the line below reads both from their `params`). First ours
# beside the paper's RAF-DB numbers; the column `ours_single_image` is EAN with $A=I$ beside
# the batch-graph `ours` (in these older records it sits in the EAN record itself, not in an
# `ean:single` record).

# %%
from pathlib import Path

from ferlib import compare

records_dir = Path(records_path)
committed = exp.load_noisy_records(records_dir)
if committed.empty:
    print(f"no committed noisy-label records in {records_dir} yet")
else:
    print(exp.FROM_SCRATCH_CAVEAT)
    display(exp.noisy_table(committed).round(2))
    taus = {(float(r["param/noise_rate"]), r.get("param/tau1"), r.get("param/tau2"),
             r.get("param/mode"))
            for _, r in compare.load_all_records(records_dir).iterrows() if r["method"] == "ean"}
    print("EAN records' thresholds and graph (noise rate, tau1, tau2, mode):",
          sorted(taus, key=str))
    ean_rows = committed[committed["method"] == "ean"].dropna(subset=["single_image_accuracy"])
    higher = int((ean_rows["single_image_accuracy"] > ean_rows["accuracy"]).sum())
    print(f"EAN, committed runs: the single-image path (A = I) has the higher point estimate in "
          f"{higher} of {len(ean_rows)} runs (one seed each, no paired interval: no direction "
          "can be read from this)")

# %% [markdown]
# Each cell's mean over seeds $\pm$ sd, its 95 % interval and its number of seeds (fewer than
# three: the cell says how many), then the paired gains of EAN over SCN and over the baseline
# at each noise rate and of the batch graph over the single image where `ean:single` records
# exist, with the sentences they allow (a direction only where the paired interval excludes
# zero) and the paper's claims beside ours.

# %%
all_recs = compare.load_all_records(records_dir) if not committed.empty else None
paper_rafdb = exp.PAPER_NOISY[exp.PAPER_NOISY["dataset"] == "rafdb"].set_index(
    ["method", "noise_rate"])["accuracy"]
for ds in sorted(set(committed["dataset"])) if all_recs is not None else []:
    for rate in sorted(set(committed["noise_rate"])):
        cell = {"noise_rate": rate}
        est = compare.estimates_table(all_recs, ds, ["baseline", "scn", "ean", "ean:single"],
                                      ["accuracy", "mean_class_accuracy"], cell=cell)
        print(f"{ds}, noise {rate:.0%} (percent):")
        display(compare.format_estimates(est, ["accuracy", "mean_class_accuracy"]))
        if "ean:single" not in set(est["method"]):
            print("  no ean:single record in this cell: the single-image control is the "
                  "ours_single_image column above, without an interval")
        gains = pd.concat([compare.gains_table(all_recs, ds, against=b, methods=[a], cell=cell)
                           for a, b in (("ean", "scn"), ("ean", "baseline"),
                                        ("ean", "ean:single"))], ignore_index=True)
        for _, g in gains.iterrows():
            print("  " + compare.gain_sentence(g))
        g = gains[gains["against"] == "scn"]
        if len(g) and ("ean", rate) in paper_rafdb.index:
            claimed = paper_rafdb[("ean", rate)] - paper_rafdb[("scn", rate)]
            print("  " + compare.paper_gain_sentence(
                g.iloc[0], claimed, f"EAN over SCN on RAF-DB at {rate:.0%} noise,"))

# %% [markdown]
# ## Summary
#
# * Eq. 3-8 are implemented with four explicit choices: zero-norm rows have similarity 0, $A$
#   has no diagonal (self-loops come from $+I$), Adj_loss is divided by $(\sum A^{mask})^2$
#   (the printed form is one-sided and grows like $B^4$), and the graph is the printed hard
#   one, chosen on validation over a straight-through graph that would give Adj_loss a
#   gradient: so Adj_loss trains nothing in our runs.
# * On pooled ReLU features the raw cosine cannot be thresholded usefully; batch centring is
#   needed before any $\tau$ means something.
# * The thresholds are chosen on the validation split by EAN's validation accuracy under label
#   noise, both readings of Eq. 4 measured; the noisy-label runs use the chosen pair.
# * At test time the batch graph and the single-image path ($A = I$) are both reported; the
#   committed records hold one seed each, so the section above reads no direction from them.

# %% [markdown]
# ## Key numbers
#
# The key numbers of the worked example (deterministic):

# %%
# NBVAL_CHECK_OUTPUT
print("C_s row 0:", np.round(hand["C_s"][0], 3).tolist())
print("edges tau1=0.4:", int(hand["A"].sum()), "| with tau2=-0.8:", int(hand["A_two"].sum()))
print("Adj_loss:", round(hand["adj_loss"], 3), "| normalised:", round(hand["adj_loss_norm"], 4))
print("A_hat diagonal:", [round(float(v), 3) for v in np.diag(hand["A_hat"])])
print("hand-batch edge precision/recall:", {k: round(v, 3) for k, v in
      exp.edge_stats(hand["A"], exp.HAND_LABELS).items() if k in ("precision", "recall")})
