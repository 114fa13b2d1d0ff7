"""Chapter logic of notebooks/04_latent_covariance_augmentation (Li et al., Table I).

The notebook narrates; everything it computes lives here:

* :func:`train_or_load_vaegan` - the VAE-GAN of the profile, resumable, with the perceptual term
  taken from the frozen "none" classifier of Table I;
* :func:`encode_dataset`, :func:`latent_projection`, :func:`covariance_spectrum` and their plots;
* :func:`augmentation_views` / :func:`augmentation_explorer` - the source / reconstruction /
  augmentation grid and its ipywidgets explorer (class, image, strength s, seed, sampler);
* :func:`sampler_check` and :func:`sampler_comparison` - correct versus literal z';
* :func:`run_table1` - none / balanced resampling / latent augmentation, for the profile's
  backbone and for DAN, one results record per run; :data:`PAPER_TABLE1` - the paper's numbers;
* :func:`run_matched_resampling` - the control of latent augmentation: balanced resampling with
  the same number of draws per class (record method ``balanced:matched``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ferlib.methods.latent_aug.dataset import (LatentAugmentation, MatchedResampling,
                                               clean_epochs_from)
from ferlib.methods.latent_aug.latent import (SAMPLING_METHODS, ClassLatentStats,
                                              class_latent_stats, sample_latent)
from ferlib.methods.latent_aug.vaegan import (VAEGAN, PerceptualLoss, VAEGANResult, train_vaegan,
                                              vaegan_config)

__all__ = ["PAPER_TABLE1", "METHODS", "train_or_load_vaegan", "encode_dataset", "latent_projection",
           "plot_latent_projection", "covariance_spectrum", "plot_covariance_spectrum",
           "augmentation_views", "plot_augmentation_views", "augmentation_explorer", "sampler_check",
           "sampler_comparison", "run_latent_augmentation", "run_matched_resampling", "run_dan",
           "build_dan_model",
           "run_table1", "Table1Result",
           "compare_with_paper", "committed_table1", "default_clean_last", "plot_vaegan_grid",
           "MATCHED_ROW"]

def _paper_table1() -> pd.DataFrame:
    """Li et al., Table I on RAF-DB (ResNet34 from ImageNet weights, DAN from MS-Celeb-1M
    weights), accuracy and mAP, as fractions, read from the scoreboard's claims."""
    from ferlib.claims import claimed

    rows = []
    for model, key in (("ResNet34", "r34"), ("DAN", "dan")):
        for method, short in (("none", "none"), ("balanced", "bal"), ("latent-aug", "lat")):
            ids = [f"li-{key}-{short}-acc", f"li-{key}-{short}-map"]
            c = claimed(*ids)
            mAP = c[ids[1]] / 100
            rows.append({"model": model, "method": method, "accuracy": round(c[ids[0]] / 100, 6),
                         "mAP": round(mAP, 6)})
    return pd.DataFrame(rows)


#: Li et al.'s Table I as printed (accuracy per backbone and row), the chapter's comparison column
PAPER_TABLE1 = _paper_table1()
METHODS = ("none", "balanced", "latent-aug")
#: Table I row of the control :func:`run_matched_resampling` (no paper number)
MATCHED_ROW = "balanced (matched draws)"


def default_clean_last(epochs: int) -> int:
    """Epochs at the end trained on original data only (the paper's "training trick", length
    not given in the paper): a fifth of the run, ``epochs // 5`` (smoke 0, cpu 1, full 12)."""
    return epochs // 5


# ------------------------------------------------------------------------------------------
# VAE-GAN and latent space
# ------------------------------------------------------------------------------------------
def train_or_load_vaegan(train_set, profile="smoke", device="auto", seed: int = 0,
                         results_path="../_build/records", perceptual_model=None,
                         epochs: int | None = None, progress: bool = False, **config) -> VAEGANResult:
    """Train the profile's VAE-GAN on ``train_set`` or resume / load it from
    ``<results_path>/checkpoints/vaegan_<dataset>_<profile>_seed<seed>`` (a finished run is
    loaded without training). ``perceptual_model``: a frozen classifier for the perceptual term
    (its ``forward_map``); None switches the term off."""
    from ferlib.config import get_profile, given_or
    from ferlib.train import set_seed

    prof = get_profile(profile)
    set_seed(seed)
    cfg = vaegan_config(prof, image_size=int(train_set.image_size[0]), in_channels=train_set.in_channels,
                        **({"perceptual_weight": 0.0} if perceptual_model is None else {}), **config)
    ckpt = Path(results_path) / "checkpoints" / f"vaegan_{train_set.name}_{prof.name}_seed{seed}"
    perc = PerceptualLoss(perceptual_model) if perceptual_model is not None else None
    return train_vaegan(VAEGAN(cfg), train_set, given_or(epochs, prof.gen_epochs, "epochs", 0), batch_size=prof.batch_size,
                        perceptual=perc, checkpoint_dir=ckpt, device=device, seed=seed, progress=progress)


@torch.no_grad()
def encode_dataset(vaegan: VAEGAN, dataset, batch_size: int = 256, device=None):
    """Encoder means of every image: ``(mu (N, d) float32 tensor on CPU, labels (N,) int64)``."""
    dev = device or next(vaegan.parameters()).device
    vaegan.eval()
    x_all, y_all = dataset.tensors()
    mus = [vaegan.encode(x_all[i:i + batch_size].to(dev))[0].float().cpu()
           for i in range(0, len(x_all), batch_size)]
    return torch.cat(mus), y_all.clone()


def latent_projection(mu, labels, class_names) -> pd.DataFrame:
    """2-D PCA (scikit-learn) of the latent means, one row per image (pc1, pc2, class)."""
    from sklearn.decomposition import PCA

    X = np.asarray(mu, dtype=np.float64)
    pca = PCA(n_components=2, random_state=0).fit(X)
    P = pca.transform(X)
    # fix the sign of each component so the plot does not flip between runs / BLAS builds
    P *= np.sign(pca.components_[:, np.argmax(np.abs(pca.components_), axis=1)].diagonal())
    df = pd.DataFrame({"pc1": P[:, 0], "pc2": P[:, 1],
                       "class": [class_names[int(c)] for c in np.asarray(labels)]})
    df.attrs["explained_variance_ratio"] = pca.explained_variance_ratio_.tolist()
    return df


def plot_latent_projection(df: pd.DataFrame, ax=None, max_points: int = 3000, seed: int = 0):
    """Scatter of :func:`latent_projection`, coloured by class (seaborn)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    d = df.sample(min(len(df), max_points), random_state=seed) if len(df) > max_points else df
    sns.scatterplot(data=d, x="pc1", y="pc2", hue="class", s=10, alpha=0.7, ax=ax, linewidth=0)
    ev = df.attrs.get("explained_variance_ratio")
    if ev:
        ax.set_xlabel(f"PC 1 ({ev[0]:.0%} of variance)")
        ax.set_ylabel(f"PC 2 ({ev[1]:.0%})")
    ax.set_title("Encoder means, 2-D PCA")
    ax.legend(fontsize=7, markerscale=2, loc="best")
    return ax


def covariance_spectrum(stats: ClassLatentStats) -> pd.DataFrame:
    """Eigenvalues of each class covariance (largest first): columns class, n, rank, eigenvalue."""
    rows = []
    for c in range(stats.num_classes):
        if not stats.present[c]:
            continue
        name = stats.class_names[c] if stats.class_names else str(c)
        for k, ev in enumerate(stats.spectrum(c)):
            rows.append({"class": name, "n": int(stats.counts[c]), "rank": k + 1, "eigenvalue": float(ev)})
    return pd.DataFrame(rows)


def plot_covariance_spectrum(stats: ClassLatentStats, ax=None, highlight=None):
    """Log-scale eigenvalue spectrum of every class covariance (one line per class)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    df = covariance_spectrum(stats)
    for name, g in df.groupby("class", sort=False):
        hl = highlight is None or name == highlight
        ax.plot(g["rank"], g["eigenvalue"], marker=".", lw=2 if hl else 1, alpha=1 if hl else 0.35,
                label=f"{name} (n={g['n'].iloc[0]})")
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue rank")
    ax.set_ylabel("eigenvalue of $\\Sigma_c$")
    ax.set_title(f"Class covariance spectra ({stats.shrinkage or 'no shrinkage'})")
    ax.legend(fontsize=7)
    return ax


def plot_vaegan_grid(result: VAEGANResult, epoch: int = -1, ax=None):
    """The epoch's grid: real images, reconstructions G(mu(x)), decoded prior samples."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.2))
    ax.imshow(result.grids[epoch], cmap="gray", vmin=0, vmax=255)
    ax.set_axis_off()
    e = len(result.grids) if epoch == -1 else epoch + 1
    ax.set_title(f"VAE-GAN after epoch {e}: real / reconstruction / prior samples", fontsize=9)
    return ax


# ------------------------------------------------------------------------------------------
# augmentations of one image, and the explorer widget
# ------------------------------------------------------------------------------------------
@torch.no_grad()
def augmentation_views(vaegan: VAEGAN, stats: ClassLatentStats, image: torch.Tensor, label: int, *,
                       s: float = 1.0, seed: int = 0, method: str = "correct", n: int = 8) -> dict:
    """Source image (C, H, W), its reconstruction G(mu(x)) and n decodings of
    z' ~ N(mu(x), s Sigma_label) (``method`` as in :func:`ferlib.methods.latent_aug.sample_latent`).
    Returns numpy arrays: ``source`` (H, W), ``reconstruction`` (H, W), ``augmentations``
    (n, H, W), and ``latent`` (n, d)."""
    dev = next(vaegan.parameters()).device
    vaegan.eval()
    x = image.unsqueeze(0).to(dev)                                    # (1, C, H, W)
    mu, _ = vaegan.encode(x)                                          # (1, d)
    z = stats.sample(mu.cpu(), [label], s=s, n=n, generator=torch.Generator().manual_seed(seed),
                     method=method)[0]                                # (n, d)
    aug = vaegan.decode(z.to(dev))                                    # (n, C, H, W)
    return {"source": image[0].cpu().numpy(), "reconstruction": vaegan.decode(mu)[0, 0].cpu().numpy(),
            "augmentations": aug[:, 0].cpu().numpy(), "latent": z.numpy()}


def plot_augmentation_views(views: dict, title: str = "", fig=None):
    """Source, reconstruction and the augmentations in one row of panels."""
    import matplotlib.pyplot as plt

    imgs = [views["source"], views["reconstruction"], *views["augmentations"]]
    names = ["source", "G(mu(x))"] + [f"z'{i + 1}" for i in range(len(views["augmentations"]))]
    if fig is None:
        fig = plt.figure(figsize=(1.3 * len(imgs), 1.7))
    axes = fig.subplots(1, len(imgs))
    for ax, im, nm in zip(np.atleast_1d(axes), imgs, names):
        ax.imshow(im, cmap="gray", vmin=0, vmax=1)
        ax.set_title(nm, fontsize=8)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9, y=1.02)
    return fig


def augmentation_explorer(vaegan: VAEGAN, stats: ClassLatentStats, dataset, *, n: int = 8,
                          max_strength: float = 4.0):
    """ipywidgets explorer: class, source image (index within the class), strength s, seed and
    the sampler (correct / literal / literal-diag) -> source, reconstruction, augmentations, and
    the class covariance spectrum. Returns the widget (display it in the notebook)."""
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from IPython.display import display

    names = list(dataset.class_names)
    classes = [c for c in range(len(names)) if stats.present[c]]
    cls = W.Dropdown(options=[(names[c], c) for c in classes], value=classes[0], description="class")
    idx = W.IntSlider(0, 0, max(0, int(stats.counts[classes[0]]) - 1), description="image")
    s = W.FloatSlider(value=1.0, min=0.0, max=max_strength, step=0.1, description="strength s")
    seed = W.IntText(value=0, description="seed")
    method = W.ToggleButtons(options=list(SAMPLING_METHODS), value="correct", description="z'")
    out = W.Output()

    def _rows(c):
        return np.flatnonzero(dataset.labels == c)

    def redraw(*_):
        rows = _rows(cls.value)
        idx.max = max(0, len(rows) - 1)
        i = int(rows[min(idx.value, len(rows) - 1)])
        views = augmentation_views(vaegan, stats, dataset[i][0], cls.value, s=s.value, seed=seed.value,
                                   method=method.value, n=n)
        with out:
            out.clear_output(wait=True)
            fig = plot_augmentation_views(views, f"{names[cls.value]} #{i}, s={s.value:.1f}, {method.value}")
            fig2, ax = plt.subplots(figsize=(5, 3))
            plot_covariance_spectrum(stats, ax=ax, highlight=names[cls.value])
            display(fig, fig2)
            plt.close(fig)
            plt.close(fig2)

    for w in (cls, idx, s, seed, method):
        w.observe(redraw, names="value")
    redraw()
    return W.VBox([W.HBox([cls, idx]), W.HBox([s, seed]), method, out])


# ------------------------------------------------------------------------------------------
# correct versus literal sampling
# ------------------------------------------------------------------------------------------
CHECK_SIGMA = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])


def sampler_check(s: float = 0.5, n: int = 20000, seed: int = 0) -> pd.DataFrame:
    """Deterministic check of the three samplers on the fixed 3x3 ``CHECK_SIGMA``: for each
    method the sample covariance of n draws (float64, CPU) against its theory (correct:
    s Sigma; literal: s^2 Sigma^2; literal-diag: s^2 diag(Sigma)^2) and against s Sigma.
    Columns: method, max_err_vs_theory, max_err_vs_s_sigma, total_var, theory_total_var."""
    sig = torch.from_numpy(CHECK_SIGMA)
    theory = {"correct": s * sig, "literal": s ** 2 * sig @ sig,
              "literal-diag": torch.diag(s ** 2 * sig.diagonal() ** 2)}
    rows = []
    for m in SAMPLING_METHODS:
        z = sample_latent(torch.zeros(3, dtype=torch.float64), sig, s, n,
                          torch.Generator().manual_seed(seed), m)          # (n, 3)
        C = torch.from_numpy(np.cov(z.numpy(), rowvar=False))
        rows.append({"method": m, "max_err_vs_theory": float((C - theory[m]).abs().max()),
                     "max_err_vs_s_sigma": float((C - s * sig).abs().max()),
                     "total_var": float(C.trace()), "theory_total_var": float(theory[m].trace())})
    return pd.DataFrame(rows)


def sampler_comparison(stats: ClassLatentStats, strengths=(0.25, 0.5, 1.0, 2.0), n: int = 2000,
                       seed: int = 0) -> pd.DataFrame:
    """For each class and strength: total variance of the draws around mu (trace of the sample
    covariance) of each sampler, against the target s * trace(Sigma_c)."""
    rows = []
    for c in range(stats.num_classes):
        if not stats.present[c]:
            continue
        mu = stats.means[c:c + 1]                                           # (1, d)
        for s in strengths:
            row = {"class": stats.class_names[c] if stats.class_names else c, "s": s,
                   "target s*tr(Sigma)": float(s * stats.covs[c].trace())}
            for m in SAMPLING_METHODS:
                z = stats.sample(mu, [c], s=s, n=n, generator=torch.Generator().manual_seed(seed),
                                 method=m)[0]                               # (n, d)
                row[m] = float(((z - mu) ** 2).sum(1).mean())
            rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------
# Table I
# ------------------------------------------------------------------------------------------
def _params(prof, backbone, epochs, extra=None):
    p = {"profile": prof.name, "backbone": backbone, "width": prof.width, "epochs": epochs,
         "batch_size": prof.batch_size, "lr": prof.lr, "optimizer": "Adam", "weight_decay": 1e-4,
         "select_metric": "accuracy"}
    p.update(extra or {})
    return p


def _write(results_path, method, splits, result, params, seed, source, extra=None):
    """The run's record (:func:`ferlib.train.recording.write_run_record`): ``n_params`` counts
    the classifier that ``fit`` trained, not the VAE-GAN (used in training only)."""
    from ferlib.train.recording import write_run_record

    return write_run_record(Path(results_path), method=method, splits=splits, result=result,
                            params=params, seed=seed, source=source,
                            extra={"n_train": len(splits.train), "n_val": len(splits.val),
                                   "n_test": len(splits.test), **(extra or {})})


def _fit_replacing(splits, loss_fn, prof, backbone: str, device, seed: int, progress: bool,
                   checkpoint_dir=None):
    """The profile's backbone trained with class-balanced sampling and ``loss_fn`` (a
    :class:`~ferlib.methods.latent_aug.dataset.BatchReplacement`): the one recipe of the latent run
    and of its matched control. ``checkpoint_dir`` makes it resumable (the replacement's draws and
    counts are in the checkpoint through its ``state_dict``)."""
    from ferlib.train import fit, set_seed
    from ferlib.methods.baseline.experiment import build_baseline_model

    set_seed(seed)
    model = build_baseline_model(splits, prof, backbone)
    return fit(model, splits.train, splits.val, test_set=splits.test, **prof.fit_options(),
               sampler="balanced", loss_fn=loss_fn, device=device, seed=seed, progress=progress,
               checkpoint_dir=checkpoint_dir)


def _replaced_extra(loss_fn, class_names) -> dict:
    """What a replacement run records of its draws: the share of rows replaced and the count of
    replaced rows per class (equal for a latent run and its matched control)."""
    return {"replaced_share": loss_fn.replaced / max(loss_fn.seen, 1),
            "replaced_per_class": dict(zip(class_names, loss_fn.replaced_per_class.tolist()))}


def run_latent_augmentation(splits, vaegan: VAEGAN, stats: ClassLatentStats, profile="smoke",
                            device="auto", seed: int = 0, strength: float = 1.0, aug_ratio: float = 0.5,
                            clean_last: int | None = None, method: str = "correct",
                            results_path="../_build/records", backbone: str | None = None,
                            progress: bool = False, source: str | None = None,
                            checkpoint_dir=None):
    """The profile's backbone trained with class-balanced sampling and latent augmentation
    (share ``aug_ratio`` of each batch replaced; the last ``clean_last`` epochs clean). Writes one
    record (method "latent-aug"); returns ``(FitResult, record_path)``. ``checkpoint_dir``
    makes the classifier's training resumable (the VAE-GAN has its own checkpoint)."""
    from ferlib.config import get_profile

    prof = get_profile(profile)
    bb = backbone or prof.backbone
    clean_last = default_clean_last(prof.epochs) if clean_last is None else int(clean_last)
    aug = LatentAugmentation(vaegan, stats, s=strength, aug_ratio=aug_ratio, method=method,
                             clean_epochs_from=clean_epochs_from(prof.epochs, clean_last), seed=seed)
    res = _fit_replacing(splits, aug, prof, bb, device, seed, progress, checkpoint_dir)
    params = _params(prof, bb, prof.epochs, {"sampler": "balanced", "strength": strength,
                                             "aug_ratio": aug_ratio, "clean_last": clean_last,
                                             "sampling": method, "latent_dim": stats.latent_dim,
                                             "shrinkage": stats.shrinkage})
    path = _write(results_path, "latent-aug", splits, res, params, seed, source,
                  _replaced_extra(aug, splits.train.class_names))
    return res, path


def run_matched_resampling(splits, stats: ClassLatentStats | None = None, profile="smoke",
                           device="auto", seed: int = 0, aug_ratio: float = 0.5,
                           clean_last: int | None = None, results_path="../_build/records",
                           backbone: str | None = None, progress: bool = False,
                           source: str | None = None, checkpoint_dir=None):
    """The control of :func:`run_latent_augmentation` (Li et al., Table I): the same recipe,
    ``seed``, ``aug_ratio`` and ``clean_last``, and the same rows of the same class-balanced
    batches replaced, but by real training images of the row's class drawn with replacement
    (:class:`~ferlib.methods.latent_aug.dataset.MatchedResampling`) instead of decoded latent draws:
    both runs add the same number of draws per class (record extra ``replaced_per_class``).
    ``stats``: the latent run's class statistics (only classes with statistics were replaced
    there); None replaces rows of every class. Writes one record (method ``"balanced:matched"``);
    returns ``(FitResult, record_path)``; ``checkpoint_dir`` makes the training resumable. See
    notebooks/04_latent_covariance_augmentation, "Table I: none, balanced resampling, latent
    augmentation"."""
    from ferlib.config import get_profile
    from ferlib.train.augment import make_augment

    prof = get_profile(profile)
    bb = backbone or prof.backbone
    clean_last = default_clean_last(prof.epochs) if clean_last is None else int(clean_last)
    present = None if stats is None else np.asarray(stats.present, dtype=bool)
    ctrl = MatchedResampling(splits.train, present, aug_ratio,
                             clean_epochs_from(prof.epochs, clean_last), seed=seed,
                             augment=make_augment(prof.augment))
    res = _fit_replacing(splits, ctrl, prof, bb, device, seed, progress, checkpoint_dir)
    params = _params(prof, bb, prof.epochs, {"sampler": "balanced", "aug_ratio": aug_ratio,
                                             "clean_last": clean_last, "control_of": "latent-aug",
                                             "replacement": "real images of the class, with replacement"})
    path = _write(results_path, "balanced:matched", splits, res, params, seed, source,
                  _replaced_extra(ctrl, splits.train.class_names))
    return res, path


def build_dan_model(splits, profile="smoke", backbone: str | None = None, num_heads: int = 4):
    """The DAN that :func:`run_dan` trains (:func:`ferlib.methods.dan.model.build_dan` on the
    profile's backbone, or ``backbone``), untrained, sized for the splits' classes, channels
    and images."""
    from ferlib.config import get_profile
    from ferlib.methods.dan.model import build_dan

    prof = get_profile(profile)
    tr = splits.train
    return build_dan(tr.num_classes, backbone or prof.backbone, in_channels=tr.in_channels,
                     width=prof.width, image_size=int(tr.image_size[0]), num_heads=num_heads)


def run_dan(splits, mode: str = "none", vaegan: VAEGAN | None = None, stats: ClassLatentStats | None = None,
            profile="smoke", device="auto", seed: int = 0, strength: float = 1.0, aug_ratio: float = 0.5,
            clean_last: int | None = None, results_path="../_build/records", backbone: str | None = None,
            num_heads: int = 4, progress: bool = False, source: str | None = None,
            checkpoint_dir=None):
    """DAN (``ferlib.methods.dan.model``) on the profile's backbone with ``mode`` in
    :data:`METHODS`. Trained by ``ferlib.train.fit`` with Adam at the profile's learning rate (the
    reference's SGD 0.1 assumes a pretrained ResNet-18). Writes one record (method "dan",
    "dan+balanced" or "dan+latent-aug"); returns ``(FitResult, record_path)``. ``checkpoint_dir``
    makes the training resumable."""
    from ferlib.config import get_profile
    from ferlib.methods.dan.model import DANLoss
    from ferlib.train import fit, set_seed

    if mode not in METHODS:
        raise ValueError(f"unknown mode {mode!r}: choose one of {METHODS}")
    if mode == "latent-aug" and (vaegan is None or stats is None):
        raise ValueError("mode='latent-aug' needs the trained vaegan and the class stats")
    prof = get_profile(profile)
    bb = backbone or prof.backbone
    clean_last = default_clean_last(prof.epochs) if clean_last is None else int(clean_last)
    set_seed(seed)
    tr = splits.train
    model = build_dan_model(splits, prof, bb, num_heads)
    loss = DANLoss()
    if mode == "latent-aug":
        loss = LatentAugmentation(vaegan, stats, s=strength, aug_ratio=aug_ratio, base_loss=loss, seed=seed,
                                  clean_epochs_from=clean_epochs_from(prof.epochs, clean_last))
    res = fit(model, tr, splits.val, test_set=splits.test, **prof.fit_options(),
              sampler=None if mode == "none" else "balanced", loss_fn=loss, device=device,
              seed=seed, progress=progress, checkpoint_dir=checkpoint_dir)
    extra = {"sampler": "shuffle" if mode == "none" else "balanced", "num_heads": num_heads,
             "affinity_weight": 1.0, "partition_weight": 1.0}
    if mode == "latent-aug":
        extra.update(strength=strength, aug_ratio=aug_ratio, clean_last=clean_last)
    name = {"none": "dan", "balanced": "dan+balanced", "latent-aug": "dan+latent-aug"}[mode]
    return res, _write(results_path, name, splits, res, _params(prof, bb, prof.epochs, extra), seed, source)


@dataclass
class Table1Result:
    """What :func:`run_table1` returns."""

    table: pd.DataFrame                      # model, method, accuracy, mAP, min/max recall, ...
    per_class: pd.DataFrame                  # rows model/method, columns classes (recall)
    vaegan: VAEGANResult
    stats: ClassLatentStats
    mu: torch.Tensor                         # (N, d) encoder means of the training set
    labels: torch.Tensor                     # (N,)
    baseline_model: torch.nn.Module          # the "none" classifier (also the perceptual net)
    record_paths: list = field(default_factory=list)
    wall_time: float = 0.0


def _row(model_name, method, metrics, last5=None):
    row = {"model": model_name, "method": method}
    for k in ("accuracy", "mAP", "mean_class_accuracy", "min_class_recall"):
        row[k] = float(metrics[k]) if metrics and k in metrics else np.nan
    row["accuracy_last5"] = float(last5["accuracy"]) if last5 and "accuracy" in last5 else np.nan
    return row


def run_table1(splits, profile="smoke", device="auto", seed: int = 0, strength: float = 1.0,
               aug_ratio: float = 0.5, results_path="../_build/records", *, backbone: str | None = None,
               include_dan: bool = True, dan_methods=METHODS, perceptual: bool = True,
               shrinkage: str | None = "ledoit-wolf", clean_last: int | None = None,
               progress: bool = False, source: str | None = None,
               matched_control: bool = False) -> Table1Result:
    """Li et al.'s Table I on ``splits``: the profile's backbone with none / balanced resampling
    (both from ``ferlib.methods.baseline.load_or_train_baseline``, reused when already recorded) /
    latent augmentation, and DAN with ``dan_methods``. Order: the "none" classifier first (it is the
    frozen perceptual network of the VAE-GAN), then the VAE-GAN (resumed or loaded from its
    checkpoint), the class statistics of the encoder means, and the other runs. Each run writes
    one record to ``results_path``. ``matched_control`` adds the row "balanced (matched draws)"
    (:func:`run_matched_resampling`) after the latent run."""
    from ferlib.config import get_profile, resolve_device
    from ferlib.methods.baseline.experiment import load_or_train_baseline

    t0 = time.time()
    prof = get_profile(profile)
    dev = resolve_device(device)
    bb = backbone or prof.backbone
    names = list(splits.train.class_names)
    rows, recalls, paths = [], [], []

    def add(model_name, method, metrics, last5):
        rows.append(_row(model_name, method, metrics, last5))
        rec = dict(metrics.get("per_class_recall", {})) if metrics else {}
        recalls.append({"model": model_name, "method": method, **rec})

    base = load_or_train_baseline(splits, prof, dev, seed, False, results_path, backbone=bb,
                                  progress=progress, source=source)
    add(bb, "none", base.record.get("metrics", {}), (base.record.get("extra") or {}).get("test_last5"))
    paths.append(base.record_path)
    bal = load_or_train_baseline(splits, prof, dev, seed, True, results_path, backbone=bb,
                                 progress=progress, source=source)
    add(bb, "balanced", bal.record.get("metrics", {}), (bal.record.get("extra") or {}).get("test_last5"))
    paths.append(bal.record_path)

    vg = train_or_load_vaegan(splits.train, prof, dev, seed, results_path,
                              perceptual_model=base.model if perceptual else None, progress=progress)
    mu, labels = encode_dataset(vg.model, splits.train)
    stats = class_latent_stats(mu, labels, len(names), shrinkage=shrinkage, class_names=names,
                               min_samples="skip")
    res, p = run_latent_augmentation(splits, vg.model, stats, prof, dev, seed, strength, aug_ratio,
                                     clean_last, results_path=results_path, backbone=bb,
                                     progress=progress, source=source)
    add(bb, "latent-aug", res.test_metrics, res.test_last5)
    paths.append(p)
    if matched_control:
        res, p = run_matched_resampling(splits, stats, prof, dev, seed, aug_ratio, clean_last,
                                        results_path, bb, progress, source)
        add(bb, MATCHED_ROW, res.test_metrics, res.test_last5)
        paths.append(p)
    if include_dan:
        for mode in dan_methods:
            res, p = run_dan(splits, mode, vg.model, stats, prof, dev, seed, strength, aug_ratio, clean_last,
                             results_path, bb, progress=progress, source=source)
            add(f"DAN ({bb})", mode, res.test_metrics, res.test_last5)
            paths.append(p)
    per_class = pd.DataFrame(recalls).set_index(["model", "method"])
    per_class = per_class[[c for c in names if c in per_class.columns]]
    return Table1Result(pd.DataFrame(rows), per_class, vg, stats, mu, labels, base.model, paths,
                        time.time() - t0)


#: record method -> (model family, Table I method)
_TABLE1_ROWS = {"baseline": ("backbone", "none"), "baseline+balanced": ("backbone", "balanced"),
                "latent-aug": ("backbone", "latent-aug"),
                "balanced:matched": ("backbone", MATCHED_ROW), "dan": ("DAN", "none"),
                "dan+balanced": ("DAN", "balanced"), "dan+latent-aug": ("DAN", "latent-aug")}


def committed_table1(folder) -> dict[tuple[str, str], pd.DataFrame]:
    """Table I from the committed records in ``folder`` (recursive; natural imbalance and clean
    labels only), one :func:`compare_with_paper` table per (dataset, profile); the newest record
    of a row wins. Empty when there are none."""
    from ferlib.records import select

    # the chapter's table: natural class balance, clean labels (not a degradation-grid cell)
    df = select(folder, method=list(_TABLE1_ROWS), natural=True, clean=True)
    if len(df) == 0:
        return {}
    out = {}
    for (ds, prof), part in df.groupby(["dataset", "param/profile"], sort=True):
        part = part.drop_duplicates("method", keep="last")
        rows = []
        for method, (family, t1) in _TABLE1_ROWS.items():
            hit = part[part["method"] == method]
            if len(hit):
                bb = str(hit["param/backbone"].iloc[0]) if "param/backbone" in hit else "backbone"
                rows.append(_row(bb if family == "backbone" else f"DAN ({bb})", t1,
                                 hit.iloc[0].to_dict()))
        out[(ds, prof)] = compare_with_paper(pd.DataFrame(rows))
    return out


def compare_with_paper(table: pd.DataFrame) -> pd.DataFrame:
    """Our Table I beside the paper's (RAF-DB, pretrained backbones): one row per method and
    model family (ours: the profile's backbone and DAN on it)."""
    ours = table.copy()
    ours["family"] = np.where(ours["model"].str.startswith("DAN"), "DAN", "ResNet34")
    paper = PAPER_TABLE1.rename(columns={"model": "family", "accuracy": "paper accuracy",
                                         "mAP": "paper mAP"})
    out = ours.merge(paper, on=["family", "method"], how="left")
    return out[["model", "method", "accuracy", "paper accuracy", "mAP", "paper mAP"]]
