"""CUCN: class weights, CBAM and relative-uncertainty feature mixing (chapter
notebooks/06_uncertainty_and_imbalance).

Fan et al., "Combating Uncertainty and Class Imbalance in Facial Expression Recognition"
(arXiv 2212.07751, 2022) — called CUCN in this book — combine three parts on a ResNet-18:

1. **Class weights** in the cross-entropy (the paper's Eq. 1): :func:`class_weights`.
2. **CBAM** in every BasicBlock: provided by the shared backbone option
   ``ferlib.models.backbones.build_backbone(..., cbam=True)`` (module ``ferlib.models.cbam``).
3. **Relative uncertainty mixing** taken from RUL (Zhang et al., "Relative Uncertainty
   Learning for Facial Expression Recognition", NeurIPS 2021): two heads on the backbone's
   last feature map give a mean feature ``mu`` and a log-variance; each sample is mixed with a
   partner from a random permutation of the batch, weighted by relative uncertainty, and the
   mixed feature is classified against both labels (the paper's Eq. 2): :class:`CUCN`,
   :func:`mix_features`, :func:`mixing_loss`, :func:`cucn_loss_fn`.

Choices made where the paper is ambiguous or wrong (all shown in the chapter):

* **Which classes get the larger weight.** The paper's text says both that larger classes get
  the larger weight and that the weighting makes the network attend to the small classes. In a
  weighted cross-entropy a larger ``w_k`` scales the gradient of class-k samples, so only
  "minority classes get the larger weights" reduces minority error. We implement that.
* **Normalisation of the weights.** Every method returns weights with mean 1 over the classes
  (``w.sum() == K``), so an all-equal vector is exactly the unweighted loss.
* **Eq. 2's factor 2.** The paper sums the two cross-entropies; RUL's code averages them
  (``0.5 CE(y_i) + 0.5 CE(y_j)``). The sum is the average times 2 (only a learning-rate
  rescaling); we use the average.
* **Normaliser of the class-weighted mixing loss.** Each half (label ``y_i`` and partner label
  ``y_j``) is a weighted mean, ``sum_n w_{y_n} CE_n / sum_n w_{y_n}``, PyTorch's convention for
  ``cross_entropy(weight=...)``, so each half is a convex combination of per-sample losses and the
  two halves are then averaged (``normalizer="weights"``, default). ``normalizer="batch"``
  divides by the batch size ``N`` instead (the weights then also scale the loss).
* **Mixing weight convention.** ``w = u_i / (u_i + u_j)`` multiplies ``mu_i``: the *more
  uncertain* sample dominates the mixed feature. This is literally the issue's / paper's form and
  RUL's public code (``att1 = att / (att + att[index])`` with ``att = exp(logvar).mean(1)``).
  It is not a bug: the uncertainty is learnt only through the add-up loss, and an easy sample is
  still recognised from a small share of the mix while a hard one needs a large share, so the
  branch learns *large* ``u`` for hard samples — that is what makes ``u`` an uncertainty. The
  opposite convention (``weighting="certain"``: ``w = u_j / (u_i + u_j)``) gives the same model
  family up to ``logvar -> -logvar``; the learnt ``u`` then ranks samples the other way round.
* **When mixing starts** (ours). RUL mixes from the first epoch of a pretrained backbone.
  ``warmup_epochs`` (:func:`mixing_active`) first trains on the unmixed ``mu``; the smoke and
  cpu profiles mix in the second half of the run, chosen on validation accuracy
  (tests/benchmarks/results/cucn_schedule_cpu.md: +2.7 to +5.4 points of mean validation
  accuracy over three seeds for each mixing rung).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CLASS_WEIGHT_METHODS", "class_weights", "resolve_class_weights",
    "relative_uncertainty", "mixing_weights", "mix_features",
    "weighted_cross_entropy", "mixing_loss", "check_class_weight",
    "CUCNConfig", "CUCN", "MixOutput", "build_cucn", "cucn_resnet18",
    "cucn_loss_fn", "CUCNLoss", "predict_fn", "mixing_active",
]

CLASS_WEIGHT_METHODS = ("inverse", "effective", "given")
NORMALIZERS = ("weights", "batch")
WEIGHTINGS = ("rul", "certain")


# ----------------------------------------------------------------------------------------------
# Class weights (paper Eq. 1)
# ----------------------------------------------------------------------------------------------
def _as_vector(values, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of numbers, got the string {values!r}")
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D vector (one entry per class), "
                         f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"{name}[{bad}] = {arr[bad]} is not finite")
    return arr


def class_weights(counts=None, method: str = "effective", beta: float = 0.999,
                  given=None) -> torch.Tensor:
    """Per-class weights for the weighted cross-entropy (Fan et al., CUCN, Eq. 1), mean 1.

    Args:
        counts: training samples per class, length K (``FaceDataset.class_counts()``).
        method: ``"inverse"``: ``w_k ∝ 1 / n_k``; ``"effective"``: ``w_k ∝ (1 - beta) /
            (1 - beta^n_k)``, the inverse effective number of samples (Cui et al., CVPR 2019,
            "Class-Balanced Loss", Eq. 3); ``"given"``: a vector set by hand, as the paper does.
        beta: ``"effective"`` only, in [0, 1); 0 gives equal weights, beta -> 1 approaches
            ``"inverse"``.
        given: ``"given"`` only: K positive finite numbers (if ``counts`` is given too, its length
            must match).

    Returns:
        float32 tensor (K,) normalised to mean 1 over the classes (``w.sum() == K``), the same
        normalisation for every method, so equal weights equal the plain cross-entropy.

    The paper contradicts itself: its text says the larger classes get the larger weights *and*
    that the weighting makes the model attend to the small classes. Only the second reduces the
    error on minority classes (a larger weight scales that class's gradient), so here the
    minority classes get the larger weights. See notebooks/06_uncertainty_and_imbalance,
    "The data and its weights".
    """
    if method not in CLASS_WEIGHT_METHODS:
        raise ValueError(f"unknown class-weight method {method!r}: choose one of "
                         f"{', '.join(CLASS_WEIGHT_METHODS)}")
    if method == "given":
        if given is None:
            raise ValueError("method='given' needs the weight vector: pass given=[w_0, ..., w_K-1]")
        w = _as_vector(given, "given")
        if np.any(w <= 0):
            bad = int(np.flatnonzero(w <= 0)[0])
            raise ValueError(f"given[{bad}] = {w[bad]}: class weights must be positive")
        if counts is not None:
            n = _as_vector(counts, "counts")
            if len(n) != len(w):
                raise ValueError(f"given has {len(w)} weights but counts has {len(n)} classes")
    else:
        if given is not None:
            raise ValueError(f"given= is only used with method='given', not {method!r}")
        if counts is None:
            raise ValueError(f"method={method!r} needs counts (training samples per class)")
        n = _as_vector(counts, "counts")
        if np.any(n < 0):
            bad = int(np.flatnonzero(n < 0)[0])
            raise ValueError(f"counts[{bad}] = {n[bad]}: class counts cannot be negative")
        if np.any(n == 0):
            bad = int(np.flatnonzero(n == 0)[0])
            raise ValueError(f"counts[{bad}] = 0: class {bad} has no training samples, so its "
                             f"{method!r} weight is undefined; drop the class or use "
                             "method='given'")
        if method == "inverse":
            w = 1.0 / n
        else:
            if not (isinstance(beta, (int, float)) and 0.0 <= beta < 1.0):
                raise ValueError(f"beta must be in [0, 1), got {beta!r}")
            effective = (1.0 - np.power(beta, n)) / (1.0 - beta)  # (K,) effective numbers
            w = 1.0 / effective
    w = w * (len(w) / w.sum())  # mean 1 over classes
    return torch.as_tensor(w, dtype=torch.float32)


def resolve_class_weights(spec, counts, beta: float = 0.999) -> torch.Tensor | None:
    """Turn the notebook parameter ``class_weights`` into a weight vector (or None).

    ``spec``: None / ``"none"`` (no weights), ``"inverse"``, ``"effective"``, or a list of K
    numbers (the paper's hand-set style, normalised to mean 1). See :func:`class_weights`.
    """
    if spec is None or (isinstance(spec, str) and spec.lower() == "none"):
        return None
    if isinstance(spec, str):
        if spec not in ("inverse", "effective"):
            raise ValueError(f"class_weights={spec!r}: use None, 'inverse', 'effective' or a "
                             "list of per-class weights")
        return class_weights(counts, method=spec, beta=beta)
    return class_weights(counts, method="given", given=spec)


# ----------------------------------------------------------------------------------------------
# Relative uncertainty and mixing (RUL; paper Eq. 2)
# ----------------------------------------------------------------------------------------------
def relative_uncertainty(logvar: torch.Tensor) -> torch.Tensor:
    """Uncertainty ``u = mean_d exp(logvar_d)`` (RUL) of each sample: (B, D) -> (B,)."""
    if logvar.ndim != 2:
        raise ValueError(f"logvar must be (B, D), got shape {tuple(logvar.shape)}")
    return logvar.exp().mean(dim=1)  # (B,)


def _log_uncertainty(logvar: torch.Tensor) -> torch.Tensor:
    # log u = logsumexp(logvar) - log D: no overflow for large log-variances
    return torch.logsumexp(logvar, dim=1) - math.log(logvar.shape[1])  # (B,)


def mixing_weights(logvar: torch.Tensor, perm: torch.Tensor,
                   weighting: str = "rul") -> torch.Tensor:
    """Weight ``w_i`` of ``mu_i`` when sample i is mixed with sample ``perm[i]``: (B,).

    ``weighting="rul"``: ``w_i = u_i / (u_i + u_perm[i])`` (the issue's, the paper's and RUL's
    code's form: the more uncertain sample dominates). ``"certain"``: ``u_perm[i] / (u_i +
    u_perm[i])``. Computed as ``sigmoid(log u_i - log u_j)``, which equals the ratio exactly and
    cannot overflow.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}: choose one of {', '.join(WEIGHTINGS)}")
    log_u = _log_uncertainty(logvar)  # (B,)
    diff = log_u - log_u[perm]  # (B,)
    return torch.sigmoid(diff if weighting == "rul" else -diff)  # (B,)


def mix_features(mu: torch.Tensor, logvar: torch.Tensor, perm: torch.Tensor,
                 weighting: str = "rul") -> tuple[torch.Tensor, torch.Tensor]:
    """Mixed feature ``w_i mu_i + (1 - w_i) mu_perm[i]`` (RUL; CUCN Eq. 2) and the weights.

    Returns ``(mixed (B, D), w (B,))``. See notebooks/06_uncertainty_and_imbalance,
    "Checked by hand".
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} differ in shape")
    perm = _check_perm(perm, mu.shape[0], mu.device)
    w = mixing_weights(logvar, perm, weighting)  # (B,)
    mixed = w[:, None] * mu + (1.0 - w[:, None]) * mu[perm]  # (B, D)
    return mixed, w


def _check_perm(perm, n: int, device) -> torch.Tensor:
    perm = torch.as_tensor(perm, dtype=torch.long, device=device)
    if perm.shape != (n,) or not torch.equal(torch.sort(perm).values,
                                             torch.arange(n, device=device)):
        raise ValueError(f"perm must be a permutation of 0..{n - 1}, got {perm.tolist()}")
    return perm


def check_class_weight(class_weight, name: str = "class_weight") -> torch.Tensor | None:
    """``class_weight`` as a float32 tensor (K,), or None; anything that would make a weighted
    loss NaN or silently wrong is a ValueError naming ``name``: a value that is not a number, a
    NaN or infinite entry, a negative entry, or all entries zero. (Single zeros are allowed: a
    class that should not count.)"""
    if class_weight is None:
        return None
    if isinstance(class_weight, torch.Tensor):
        w = class_weight.detach()
    else:
        if isinstance(class_weight, (str, bytes)):
            raise TypeError(f"{name} must be a sequence of numbers, got the string {class_weight!r}")
        try:
            w = torch.as_tensor(np.asarray(class_weight, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a sequence of numbers, got {class_weight!r}") from None
    if w.ndim != 1 or w.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D vector (one weight per class), "
                         f"got shape {tuple(w.shape)}")
    if not (w.is_floating_point() or w.dtype in (torch.int8, torch.int16, torch.int32, torch.int64,
                                                 torch.uint8)):
        raise TypeError(f"{name} must hold real numbers, got dtype {w.dtype}")
    wc = w.cpu().double()
    bad = torch.nonzero(~torch.isfinite(wc)).flatten()
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{name}[{i}] = {wc[i].item()}: class weights must be finite")
    bad = torch.nonzero(wc < 0).flatten()
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{name}[{i}] = {wc[i].item()}: class weights cannot be negative")
    if not (wc > 0).any():
        raise ValueError(f"{name} is all zeros: no class would count in the loss")
    return w if w.dtype == torch.float32 else w.float()


def weighted_cross_entropy(logits: torch.Tensor, y: torch.Tensor,
                           class_weight: torch.Tensor | None = None,
                           normalizer: str = "weights") -> torch.Tensor:
    """Class-weighted cross-entropy (CUCN Eq. 1), one of two normalisers.

    ``"weights"``: ``sum_n w_{y_n} CE_n / sum_n w_{y_n}`` (PyTorch's ``cross_entropy(weight=)``);
    ``"batch"``: ``sum_n w_{y_n} CE_n / N``. Without weights both are the plain mean.
    """
    if normalizer not in NORMALIZERS:
        raise ValueError(f"unknown normalizer {normalizer!r}: choose one of {', '.join(NORMALIZERS)}")
    class_weight = check_class_weight(class_weight)
    ce = F.cross_entropy(logits, y, reduction="none")  # (B,)
    if class_weight is None:
        return ce.mean()
    class_weight = class_weight.to(device=logits.device, dtype=ce.dtype)
    if class_weight.shape != (logits.shape[1],):
        raise ValueError(f"class_weight has shape {tuple(class_weight.shape)} but the model has "
                         f"{logits.shape[1]} classes")
    w = class_weight[y]  # (B,)
    if normalizer == "weights":
        # a batch of zero-weight classes only contributes 0 (not 0 / 0 = NaN)
        denom = w.sum().clamp_min(torch.finfo(ce.dtype).tiny)
    else:
        denom = torch.tensor(float(len(y)), device=ce.device)
    return (w * ce).sum() / denom


def mixing_loss(logits_mixed: torch.Tensor, y: torch.Tensor, perm: torch.Tensor,
                class_weight: torch.Tensor | None = None,
                normalizer: str = "weights") -> torch.Tensor:
    """``0.5 CE(f(mixed), y) + 0.5 CE(f(mixed), y[perm])`` (CUCN Eq. 2 averaged, as RUL's code).

    The paper writes the sum (twice this). Each half is :func:`weighted_cross_entropy` with the
    given normaliser.
    """
    perm = _check_perm(perm, len(y), y.device)
    return 0.5 * (weighted_cross_entropy(logits_mixed, y, class_weight, normalizer)
                  + weighted_cross_entropy(logits_mixed, y[perm], class_weight, normalizer))


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CUCNConfig:
    """Sizes of a CUCN model. Defaults follow RUL (64-d heads, dropout 0.4) and the paper
    (ResNet-18 with CBAM)."""

    num_classes: int = 7
    backbone: str = "resnet18"
    in_channels: int = 1
    width: int = 16
    image_size: int = 48
    cbam: bool = True
    embed_dim: int = 64
    drop_rate: float = 0.4


class MixOutput(NamedTuple):
    """What :meth:`CUCN.mixed_forward` returns (B = batch, D = embed_dim, K = classes)."""

    logits_mixed: torch.Tensor  # (B, K) classifier on the mixed feature
    logits: torch.Tensor        # (B, K) classifier on the unmixed mu
    mu: torch.Tensor            # (B, D)
    logvar: torch.Tensor        # (B, D)
    uncertainty: torch.Tensor   # (B,)  u = mean exp(logvar)
    weights: torch.Tensor       # (B,)  w_i of mu_i in the mix
    perm: torch.Tensor          # (B,)  partner index


def _head(channels: int, area: int, embed_dim: int, drop_rate: float) -> nn.Sequential:
    # RUL's heads: BN2d (no affine) -> dropout -> flatten -> linear -> BN1d
    return nn.Sequential(
        nn.BatchNorm2d(channels, eps=2e-5, affine=False),
        nn.Dropout(p=drop_rate),
        nn.Flatten(),
        nn.Linear(channels * area, embed_dim),
        nn.BatchNorm1d(embed_dim, eps=2e-5),
    )


class CUCN(nn.Module):
    """Backbone + RUL mean / log-variance heads + linear classifier (Fan et al.; Zhang et al.).

    ``forward(x)`` classifies the *unmixed* mean feature ``mu`` (inference, and the default
    ``predict_fn`` of :func:`ferlib.train.fit`); training mixes through :meth:`mixed_forward`
    (used by :func:`cucn_loss_fn`). Like every backbone it has ``forward_features`` (mu, (B, D)),
    ``forward_map``, ``feature_dim`` and ``fc``. See notebooks/06_uncertainty_and_imbalance.

    Args:
        backbone: any module with ``forward_map(x) -> (B, C, h, w)`` (``build_backbone``).
        num_classes: K.
        embed_dim: size of mu and logvar (RUL: 64).
        drop_rate: dropout in both heads (RUL: 0.4).
        in_channels, image_size: input shape, used once to size the heads from the map.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, embed_dim: int = 64,
                 drop_rate: float = 0.4, in_channels: int = 1, image_size: int = 48):
        super().__init__()
        if not hasattr(backbone, "forward_map"):
            raise TypeError(f"backbone {type(backbone).__name__} has no forward_map(x); build it "
                            "with ferlib.models.build_backbone")
        if num_classes < 2 or embed_dim < 1:
            raise ValueError(f"need num_classes >= 2 and embed_dim >= 1, got {num_classes}, {embed_dim}")
        self.backbone = backbone
        was_training = backbone.training
        backbone.eval()
        with torch.no_grad():
            probe = next(backbone.parameters(), torch.empty(0))
            fmap = backbone.forward_map(torch.zeros(1, in_channels, image_size, image_size,
                                                    device=probe.device))  # (1, C, h, w)
        backbone.train(was_training)
        _, channels, h, w = fmap.shape
        self.map_channels = channels
        self.map_size = (h, w)
        self.mu_head = _head(channels, h * w, embed_dim, drop_rate)
        self.logvar_head = _head(channels, h * w, embed_dim, drop_rate)
        self.fc = nn.Linear(embed_dim, num_classes)
        self.feature_dim = embed_dim
        self.num_classes = num_classes

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_map(x)  # (B, C, h, w)

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)``, each (B, D)."""
        fmap = self.backbone.forward_map(x)  # (B, C, h, w)
        if self.training and fmap.shape[0] == 1:
            # BatchNorm1d cannot use batch statistics of one sample: use running stats
            with _bn1d_eval(self):
                return self.mu_head(fmap), self.logvar_head(fmap)
        return self.mu_head(fmap), self.logvar_head(fmap)  # (B, D), (B, D)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)[0]  # (B, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x))  # (B, K) from the unmixed mu

    @torch.no_grad()
    def uncertainty(self, x: torch.Tensor) -> torch.Tensor:
        """``u = mean exp(logvar)`` per sample (B,), in the module's current mode."""
        return relative_uncertainty(self.embed(x)[1])

    def mixed_forward(self, x: torch.Tensor, perm: torch.Tensor | None = None,
                      generator: torch.Generator | None = None,
                      weighting: str = "rul") -> MixOutput:
        """Training pass: mix each sample's mu with ``mu[perm]`` (random permutation unless
        ``perm`` is given; ``generator`` fixes it) and classify the mixed and unmixed features."""
        mu, logvar = self.embed(x)  # (B, D), (B, D)
        if perm is None:
            perm = torch.randperm(mu.shape[0], generator=generator).to(mu.device)
        mixed, w = mix_features(mu, logvar, perm, weighting)  # (B, D), (B,)
        return MixOutput(self.fc(mixed), self.fc(mu), mu, logvar,
                         relative_uncertainty(logvar), w, torch.as_tensor(perm, device=mu.device))


class _bn1d_eval:
    def __init__(self, model: nn.Module):
        self.bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d) and m.training]

    def __enter__(self):
        for m in self.bns:
            m.eval()

    def __exit__(self, *exc):
        for m in self.bns:
            m.train()


def _build_cucn(config: CUCNConfig, backbone: nn.Module | None = None) -> CUCN:
    if backbone is None:
        from ferlib.models.backbones import build_backbone
        backbone = build_backbone(config.backbone, config.num_classes,
                                  in_channels=config.in_channels, width=config.width,
                                  cbam=config.cbam, image_size=config.image_size)
    return CUCN(backbone, config.num_classes, embed_dim=config.embed_dim,
                drop_rate=config.drop_rate, in_channels=config.in_channels,
                image_size=config.image_size)


def build_cucn(num_classes: int = 7, backbone: str | nn.Module = "resnet18", **kwargs) -> CUCN:
    """A CUCN on a named backbone (``build_backbone`` names) or on a given backbone module.
    Keyword arguments are :class:`CUCNConfig` fields (``cbam``, ``embed_dim``, ``width``, ...)."""
    if isinstance(backbone, nn.Module):
        return _build_cucn(CUCNConfig(num_classes=num_classes, **kwargs), backbone=backbone)
    return _build_cucn(CUCNConfig(num_classes=num_classes, backbone=backbone, **kwargs))


def cucn_resnet18(num_classes: int = 7, **kwargs) -> CUCN:
    """The paper's model: ResNet-18 with CBAM in every BasicBlock, RUL heads, linear classifier."""
    kwargs.setdefault("cbam", True)
    return _build_cucn(CUCNConfig(num_classes=num_classes, backbone="resnet18", **kwargs))


# ----------------------------------------------------------------------------------------------
# Plug-ins for ferlib.train.fit
# ----------------------------------------------------------------------------------------------
def cucn_loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epoch: int = 0, *,
                 class_weight: torch.Tensor | Sequence[float] | None = None, mix: bool = True,
                 normalizer: str = "weights", weighting: str = "rul",
                 perm: torch.Tensor | None = None, generator: torch.Generator | None = None,
                 warmup_epochs: int = 0, **unused) -> tuple[torch.Tensor, torch.Tensor]:
    """Training loss of CUCN for :func:`ferlib.train.fit`: returns ``(loss, logits)``.

    ``mix=True`` (needs a :class:`CUCN`): :func:`mixing_loss` of the mixed feature;
    ``mix=False`` (any classifier): :func:`weighted_cross_entropy` on ``model(x)``.
    ``warmup_epochs`` (ours, not in the paper): in epochs ``1 .. warmup_epochs`` (numbered from
    1, as ``fit`` does) a mixing model trains on its unmixed ``mu`` with the weighted
    cross-entropy, and mixes from the next epoch on (:func:`mixing_active`). ``logits``
    are those of the unmixed feature (for training accuracy), detached. Extra keywords from the
    engine (``idx``) are ignored. Bind the options with :class:`CUCNLoss`.
    """
    class_weight = check_class_weight(class_weight)
    if not mix or not mixing_active(epoch, warmup_epochs):
        logits = model(x)  # (B, K)
        return weighted_cross_entropy(logits, y, class_weight, normalizer), logits.detach()
    model = getattr(model, "module", model)  # DistributedDataParallel wraps the model
    if not isinstance(model, CUCN):
        raise TypeError(f"mix=True needs a CUCN model (mean/log-variance heads), got "
                        f"{type(model).__name__}; use mix=False for a plain backbone")
    out = model.mixed_forward(x, perm=perm, generator=generator, weighting=weighting)
    loss = mixing_loss(out.logits_mixed, y, out.perm, class_weight, normalizer)
    return loss, out.logits.detach()


def mixing_active(epoch: int | None, warmup_epochs: int) -> bool:
    """Whether epoch ``epoch`` (numbered from 1) mixes: after ``warmup_epochs`` epochs on the
    unmixed feature. ``warmup_epochs=0`` (the paper, RUL) mixes from the first epoch; so does
    ``epoch=None``. Why a warm-up: the relative uncertainty of untrained heads is noise, and
    in a short run from scratch mixing from the start cost accuracy
    (tests/benchmarks/results/cucn_schedule_cpu.md; notebooks/06_uncertainty_and_imbalance)."""
    _check_warmup_epochs(warmup_epochs)
    return warmup_epochs == 0 or epoch is None or epoch > warmup_epochs


def _check_warmup_epochs(warmup_epochs) -> None:
    if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
        raise ValueError(f"warmup_epochs must be an integer >= 0, got {warmup_epochs!r}")


class CUCNLoss:
    """:func:`cucn_loss_fn` with its options bound, e.g. ``fit(..., loss_fn=CUCNLoss(w))``.

    ``seed`` makes the permutations reproducible with a private generator (the global RNG is
    left alone).
    """

    def __init__(self, class_weight=None, mix: bool = True, normalizer: str = "weights",
                 weighting: str = "rul", seed: int | None = None, warmup_epochs: int = 0):
        _check_warmup_epochs(warmup_epochs)
        if normalizer not in NORMALIZERS:
            raise ValueError(f"unknown normalizer {normalizer!r}: choose one of {', '.join(NORMALIZERS)}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {weighting!r}: choose one of {', '.join(WEIGHTINGS)}")
        self.class_weight = check_class_weight(class_weight)
        self.mix, self.normalizer, self.weighting = mix, normalizer, weighting
        self.warmup_epochs = warmup_epochs
        self.generator = None
        if seed is not None:
            self.generator = torch.Generator().manual_seed(int(seed))

    def __call__(self, model, x, y, epoch=0, **kw):
        return cucn_loss_fn(model, x, y, epoch, class_weight=self.class_weight, mix=self.mix,
                            normalizer=self.normalizer, weighting=self.weighting,
                            generator=self.generator, warmup_epochs=self.warmup_epochs)

    def state_dict(self) -> dict:
        """The permutation generator's state (``fit`` checkpoints it, so a resume is exact)."""
        return {} if self.generator is None else {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if state.get("generator") is not None and self.generator is not None:
            self.generator.set_state(state["generator"])

    def __repr__(self) -> str:
        w = None if self.class_weight is None else [round(v, 3) for v in self.class_weight.tolist()]
        return (f"CUCNLoss(class_weight={w}, mix={self.mix}, normalizer={self.normalizer!r}, "
                f"weighting={self.weighting!r}, warmup_epochs={self.warmup_epochs})")


def predict_fn(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Inference logits: the classifier on the unmixed mean feature (RUL tests on mu)."""
    return model(x)  # (B, K)
