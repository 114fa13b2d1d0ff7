"""EAN: a graph over each mini-batch, regularised by the labels, classified by a GCN.

Du et al., "EAN" (the third paper of the book), Sec. 2.3-2.4, Eq. 3-8. The book chapter is
notebooks/05_adjacency_threshold_tuning, "The paper's idea, in equations" (each equation below
is named there) and "Checked by hand" (Eq. 3-7 computed on four vectors).

Pipeline for a batch of B images::

    backbone.forward_features(x)             h   (B, D)
    Eq. 3  cosine similarity                 C_s (B, B)
    Eq. 4  thresholded adjacency             A   (B, B)   edges where C_s >= tau1 (or <= tau2)
    Eq. 5  same-label mask                   A_mask (B, B)
    Eq. 6  Adj_loss = alpha * (sum(A_mask * A) - sum(A_mask))^2
    Eq. 7  A_hat = D~^-1/2 (A + I) D~^-1/2   (row-normalised D~^-1 (A + I) as an option)
    Eq. 8  H^{l+1} = relu(A_hat H^l W^l)     one layer by default: A_hat H W + b, the logits

Choices made here, where the paper is silent or wrong (each is shown in the chapter):

* **Zero-norm features** (Eq. 3 divides by ||h_i||): cosine is undefined. We define the
  similarity of a zero row with every row, itself included, as 0, so it never gets a NaN and
  never gets an edge from tau1 > 0.
* **Diagonal**: C_s is 1 on the diagonal, so Eq. 4 would put a self-edge on every node and Eq. 7
  would then add a second one (A + I has 2 on the diagonal). By default (``self_loops=False``) we
  zero the diagonal of A and of A_mask, so self-loops come once, from the ``+ I`` of Eq. 7, and
  the loss counts pairs of distinct samples. ``self_loops=True`` keeps the literal form.
* **Centring** (not in the paper): pooled post-ReLU features are non-negative and share a
  large mean direction, so their raw cosines crowd near 1 (0.997-0.9999 for the smoke
  baseline) and a fixed tau1 links everything or nothing. ``center=True`` (the default of
  :class:`EANConfig`, used by the chapter's experiments) subtracts the batch mean before Eq. 3;
  ``center=False`` is the literal form.
* **Gradient**: a hard threshold (Eq. 4 as printed) is piecewise constant, so Adj_loss computed
  on it has no gradient and cannot train the backbone. ``mode="soft"`` uses
  ``sigmoid((C_s - tau1) / T)``; ``mode="ste"`` uses the hard graph in the forward pass and the
  soft graph's gradient in the backward pass (straight-through), so the GCN sees exactly Eq. 4
  and Adj_loss trains the features. Chosen on validation, the default of :class:`EANConfig` is
  the printed ``mode="hard"``: in smoke runs with 20 % flipped labels the straight-through
  graph scored lower on the noisy validation labels in 3 of 3 seeds (mean 30.3 % against
  33.0 %), and with the two-threshold reading it fell to 24.7 % against 33.3 %
  (tests/benchmarks/results/ean_graph_mode_cpu.md). So by default Adj_loss is computed and
  reported but does not train the features; the cross-entropy still trains them through the
  GCN's propagation over the hard graph.
* **Loss scale**: Eq. 6 is one-sided (it only punishes missing same-label edges; cross-label
  edges cost nothing) and its value grows like B^4. ``normalize=True`` divides by
  ``sum(A_mask)^2``, giving a number in [0, alpha] whatever the batch size; the experiments of
  the chapter use the normalised form, the literal one is kept as an option.
* **Warm-up**: the paper fixes A = I for the first 50 epochs. With A = I (or A = 0 with our
  diagonal convention) the renormalised A_hat is exactly I, and the GCN is exactly an MLP with
  the same weights (tested).
* **Eq. 8**: the paper's sigma is unnamed and its depth unfixed. The default is one layer,
  ``A_hat H W + b`` (the logits): with A = I it is exactly the baseline's linear classifier, so
  EAN differs from the baseline only by the graph and Adj_loss. ``gcn_layers=2`` gives Kipf &
  Welling's two layers with ReLU between them; in short runs the hidden layer cost accuracy
  (tests/benchmarks/results/noisy_schedule_cpu.md, smoke, 20 % noise, seed 0: 38.9 % with one
  layer against 28.6 % with two, the graph from epoch 5 of 8), so one layer is the default.
* **Warm-up length**: a graph over features that have not learned yet links almost everything
  (the centred cosines become nearly +-1 once the features collapse towards one direction), the
  GCN then averages each face with the whole batch, and training falls to the majority class.
  In the same benchmark (made with the straight-through graph) the graph from epoch 3 of 8
  ends at 23.6-27.5 % test accuracy, from epoch 5 at 28.6-38.9 % (the baseline: 44.3 %). The
  smoke and cpu profiles turn the graph on for the second half of the run (the paper: after
  50 epochs).
* **Straight-through and the cross-entropy**: with ``mode="ste"`` the soft graph's gradient
  reaches C_s from every term that uses A, so the cross-entropy also moves the edges, not only
  Adj_loss.
* **Inference**: the graph needs a batch. :func:`ean_predict_batch` builds it over the test
  batch (the prediction of an image then depends on its batch-mates); :func:`ean_predict_single`
  uses A = I (each image alone, the MLP path). The chapter reports both.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "cosine_similarity_matrix", "check_thresholds", "adjacency", "hard_adjacency",
    "soft_adjacency", "label_mask", "adj_loss", "normalized_adjacency", "GCNLayer", "GCN",
    "EANConfig", "EAN", "build_ean", "graph_active", "EANLoss", "ean_loss_fn",
    "ean_predict_batch", "ean_predict_single", "ADJACENCY_MODES", "NORMALIZATIONS",
    "DEFAULT_TAU1", "DEFAULT_TAU2", "DEFAULT_ALPHA",
]

ADJACENCY_MODES = ("hard", "soft", "ste")
#: The library's one default per Eq. 4 threshold (on batch-centred cosines): EANConfig, the
#: noisy-label runner and the comparison use these unless given others; chapter 05 replaces
#: them by the values its validation-only tuning picks
#: (ferlib.methods.ean.experiment.tune_thresholds).
DEFAULT_TAU1 = 0.8
#: the second threshold of Eq. 4's two-threshold reading; None: the one-threshold reading
DEFAULT_TAU2 = None
#: Eq. 6's weight (the paper's 0.1): the one default of EANConfig, adj_loss and the runners
DEFAULT_ALPHA = 0.1
NORMALIZATIONS = ("sym", "row")


# --------------------------------------------------------------------------------------
# Eq. 3: cosine similarity
# --------------------------------------------------------------------------------------
def _check_features(features: torch.Tensor, name: str = "features") -> torch.Tensor:
    if not isinstance(features, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (B, D), got {type(features).__name__}")
    if features.ndim != 2:
        raise ValueError(f"{name} must be 2-D (B, D), got shape {tuple(features.shape)}")
    if features.shape[0] < 2:
        raise ValueError(
            f"{name} has a batch of {features.shape[0]}: the EAN graph (Eq. 3-4) needs at least "
            "2 samples; for one image use A = I (ean_predict_single)")
    if not features.is_floating_point():
        raise TypeError(f"{name} must be floating point, got {features.dtype}")
    if not torch.isfinite(features).all():
        bad = int(torch.nonzero(~torch.isfinite(features))[0, 0])
        raise ValueError(f"{name} row {bad} holds a NaN or inf")
    return features


def cosine_similarity_matrix(features: torch.Tensor, eps: float = 1e-12,
                             center: bool = False) -> torch.Tensor:
    """Eq. 3: ``C_s[i, j] = <h_i, h_j> / (||h_i|| ||h_j||)``, shape (B, B).

    A row with norm <= ``eps`` has an undefined cosine; we define its similarity with every row
    (itself included) as 0, so the result is never NaN. The batch must hold at least 2 rows.
    ``center=True`` subtracts the batch mean first (not in the paper): pooled post-ReLU
    features are non-negative and share a large common direction, so their raw cosines crowd
    near 1 and no fixed tau separates classes; centring spreads them over [-1, 1].
    See notebooks/05_adjacency_threshold_tuning, "Checked by hand".
    """
    h = _check_features(features).float()                          # (B, D)
    if center:
        h = h - h.mean(dim=0, keepdim=True)                        # (B, D)
    norms = h.norm(dim=1)                                          # (B,)
    valid = norms > eps                                            # (B,)
    safe = torch.where(valid, norms, torch.ones_like(norms))      # (B,)
    unit = h / safe[:, None]                                       # (B, D)
    unit = unit * valid[:, None].to(h.dtype)                       # zero rows stay 0
    with torch.autocast(h.device.type, enabled=False):             # float32 even under AMP
        unit = unit.float()
        cs = unit @ unit.T                                         # (B, B)
    return cs.clamp(-1.0, 1.0)


# --------------------------------------------------------------------------------------
# Eq. 4: adjacency
# --------------------------------------------------------------------------------------
def check_thresholds(tau1: float, tau2: float | None = None) -> None:
    """Thresholds are cosines: each in [-1, 1]; with two, ``tau2 < tau1`` (Eq. 4)."""
    for name, tau in (("tau1", tau1), ("tau2", tau2)):
        if tau is None and name == "tau2":
            continue
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or math.isnan(float(tau)):
            raise TypeError(f"{name} must be a number in [-1, 1], got {tau!r}")
        if not -1.0 <= float(tau) <= 1.0:
            raise ValueError(f"{name}={tau} is outside [-1, 1], the range of a cosine similarity")
    if tau2 is not None and not float(tau2) < float(tau1):
        raise ValueError(f"Eq. 4 needs tau2 < tau1, got tau1={tau1}, tau2={tau2}")


def _check_square(m: torch.Tensor, name: str) -> None:
    if not isinstance(m, torch.Tensor) or m.ndim != 2 or m.shape[0] != m.shape[1]:
        shape = tuple(m.shape) if isinstance(m, torch.Tensor) else type(m).__name__
        raise ValueError(f"{name} must be a square (B, B) tensor, got {shape}")


def _set_diagonal(a: torch.Tensor, self_loops: bool) -> torch.Tensor:
    if self_loops:
        return a
    eye = torch.eye(a.shape[0], dtype=torch.bool, device=a.device)
    return a.masked_fill(eye, 0.0)


def hard_adjacency(cs: torch.Tensor, tau1: float, tau2: float | None = None,
                   self_loops: bool = False) -> torch.Tensor:
    """Eq. 4 as printed: ``A[i, j] = 1`` if ``C_s >= tau1`` or (two thresholds) ``C_s <= tau2``.

    Float tensor of 0/1, (B, B), no gradient. ``self_loops=False`` zeroes the diagonal (see the
    module docstring). See notebooks/05_adjacency_threshold_tuning, "Checked by hand".
    """
    _check_square(cs, "C_s")
    check_thresholds(tau1, tau2)
    edge = cs >= tau1                                              # (B, B) bool
    if tau2 is not None:
        edge = edge | (cs <= tau2)
    return _set_diagonal(edge.to(cs.dtype).detach(), self_loops)


def soft_adjacency(cs: torch.Tensor, tau1: float, tau2: float | None = None,
                   temperature: float = 0.05, self_loops: bool = False) -> torch.Tensor:
    """Differentiable relaxation of Eq. 4: ``sigmoid((C_s - tau1) / T)``.

    With two thresholds the two soft edges are joined by a soft OR,
    ``1 - (1 - s1)(1 - s2)`` with ``s2 = sigmoid((tau2 - C_s) / T)``, which stays in [0, 1].
    As ``T -> 0`` it tends to :func:`hard_adjacency` (away from the thresholds).
    """
    _check_square(cs, "C_s")
    check_thresholds(tau1, tau2)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    a = torch.sigmoid((cs - tau1) / temperature)                   # (B, B)
    if tau2 is not None:
        s2 = torch.sigmoid((tau2 - cs) / temperature)              # (B, B)
        a = 1.0 - (1.0 - a) * (1.0 - s2)
    return _set_diagonal(a, self_loops)


def adjacency(cs: torch.Tensor, tau1: float, tau2: float | None = None, *, mode: str = "hard",
              temperature: float = 0.05, self_loops: bool = False) -> torch.Tensor:
    """Eq. 4 in one of three forms (``mode``):

    * ``"hard"``: the printed 0/1 graph; no gradient reaches C_s.
    * ``"soft"``: the sigmoid relaxation (:func:`soft_adjacency`); values in (0, 1).
    * ``"ste"``: straight-through: the value is the hard graph, the gradient is the soft one's.
    """
    if mode not in ADJACENCY_MODES:
        raise ValueError(f"mode={mode!r}: choose one of {ADJACENCY_MODES}")
    if mode == "hard":
        return hard_adjacency(cs, tau1, tau2, self_loops)
    soft = soft_adjacency(cs, tau1, tau2, temperature, self_loops)
    if mode == "soft":
        return soft
    hard = hard_adjacency(cs, tau1, tau2, self_loops)
    return hard + (soft - soft.detach())                            # value hard, gradient soft


# --------------------------------------------------------------------------------------
# Eq. 5-6: label mask and adjacency loss
# --------------------------------------------------------------------------------------
def label_mask(labels: torch.Tensor, self_loops: bool = False) -> torch.Tensor:
    """Eq. 5: ``A_mask[i, j] = 1`` if ``y_i == y_j`` (float (B, B)); diagonal as in Eq. 4."""
    if not isinstance(labels, torch.Tensor) or labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D tensor (B,), got "
                         f"{tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__}")
    if labels.shape[0] < 2:
        raise ValueError(f"labels has a batch of {labels.shape[0]}: Eq. 5 needs at least 2 samples")
    mask = (labels[:, None] == labels[None, :]).float()             # (B, B)
    return _set_diagonal(mask, self_loops)


def adj_loss(a: torch.Tensor, a_mask: torch.Tensor, alpha: float = DEFAULT_ALPHA,
             normalize: bool = False) -> torch.Tensor:
    """Eq. 6: ``Adj_loss = alpha * (sum(A_mask * A) - sum(A_mask))^2`` (a scalar).

    As printed it only counts same-label pairs that lack an edge (edges between different
    labels cost nothing) and scales like B^4. ``normalize=True`` divides by ``sum(A_mask)^2``
    (the squared share of missing same-label edges, times alpha; 0 when the batch has no
    same-label pair). The chapter's experiments use ``normalize=True``.
    See notebooks/05_adjacency_threshold_tuning, "Checked by hand".
    """
    _check_square(a, "A")
    _check_square(a_mask, "A_mask")
    if a.shape != a_mask.shape:
        raise ValueError(f"A {tuple(a.shape)} and A_mask {tuple(a_mask.shape)} differ in shape")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    a, a_mask = a.float(), a_mask.float()                           # B^4 overflows float16
    total = a_mask.sum()
    loss = alpha * ((a_mask * a).sum() - total) ** 2
    if normalize:
        loss = loss / total.clamp_min(1.0) ** 2                     # 0/0 -> 0 (no same-label pair)
    return loss


# --------------------------------------------------------------------------------------
# Eq. 7-8: GCN
# --------------------------------------------------------------------------------------
def normalized_adjacency(a: torch.Tensor, normalization: str = "sym") -> torch.Tensor:
    """Eq. 7: ``A_hat = D~^-1/2 (A + I) D~^-1/2`` with ``D~_ii = sum_j (A + I)_ij``.

    ``normalization="row"`` gives ``D~^-1 (A + I)`` of the reference GCN code (Kipf & Welling).
    A must be non-negative (every degree is then >= 1, so no division by zero); a soft A
    (values in (0, 1), symmetric like C_s) goes through the same formula.
    See notebooks/05_adjacency_threshold_tuning, "The paper's idea, in equations".
    """
    _check_square(a, "A")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization={normalization!r}: choose one of {NORMALIZATIONS}")
    if (a < 0).any():
        raise ValueError("A must be non-negative for Eq. 7 (degrees of A + I must be >= 1)")
    a_tilde = a + torch.eye(a.shape[0], dtype=a.dtype, device=a.device)   # (B, B)
    deg = a_tilde.sum(dim=1)                                               # (B,)
    if normalization == "row":
        return a_tilde / deg[:, None]
    # a_ij / sqrt(d_i d_j): one rounding, so A = I (d = 2) gives exactly I
    return a_tilde / torch.sqrt(deg[:, None] * deg[None, :])               # (B, B)


class GCNLayer(nn.Module):
    """Eq. 8, one layer before its nonlinearity: ``A_hat @ (H W) + b`` (bias after the
    propagation, as in the reference GCN code of Kipf & Welling). With ``A_hat = I`` it is
    the affine map ``H W + b`` bit for bit (``I @ M == M`` exactly in floating point)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))    # (out, in)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None  # (out,)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))      # nn.Linear's default
        if self.bias is not None:
            bound = 1.0 / math.sqrt(in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    def affine(self, h: torch.Tensor) -> torch.Tensor:
        out = h @ self.weight.T                                     # (B, out)
        return out if self.bias is None else out + self.bias

    def forward(self, h: torch.Tensor, a_hat: torch.Tensor) -> torch.Tensor:
        out = a_hat @ (h @ self.weight.T)                           # (B, B) @ (B, out)
        return out if self.bias is None else out + self.bias


class _Affine(nn.Module):
    """The MLP view of a GCNLayer (shares its parameters)."""

    def __init__(self, layer: GCNLayer):
        super().__init__()
        self.layer = layer

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.layer.affine(h)


class GCN(nn.Module):
    """Two (``num_layers``) GCN layers, ReLU (and optional dropout) between them (Eq. 8).

    ``forward(h, a)`` takes the *raw* adjacency A (B, B) and forms Eq. 7 itself; ``a=None``
    means A_hat = I, the MLP path. ``as_mlp()`` returns the same layers as an ``nn.Sequential``
    MLP sharing the weights (equal to ``forward(h, I)`` exactly; tested).
    """

    def __init__(self, in_features: int, num_classes: int, hidden: int | None = None,
                 num_layers: int = 2, dropout: float = 0.0, normalization: str = "sym"):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization={normalization!r}: choose one of {NORMALIZATIONS}")
        hidden = hidden or in_features
        dims = [in_features] + [hidden] * (num_layers - 1) + [num_classes]
        self.layers = nn.ModuleList(GCNLayer(i, o) for i, o in zip(dims[:-1], dims[1:]))
        self.dropout = dropout
        self.normalization = normalization

    def propagation(self, a: torch.Tensor | None, batch: int, like: torch.Tensor) -> torch.Tensor:
        if a is None:
            return torch.eye(batch, dtype=like.dtype, device=like.device)
        if a.shape != (batch, batch):
            raise ValueError(f"A has shape {tuple(a.shape)}, expected ({batch}, {batch})")
        return normalized_adjacency(a.to(like.dtype), self.normalization)

    def forward(self, h: torch.Tensor, a: torch.Tensor | None = None) -> torch.Tensor:
        a_hat = self.propagation(a, h.shape[0], h)                  # (B, B)
        for k, layer in enumerate(self.layers):
            if k:
                h = F.dropout(F.relu(h), self.dropout, self.training)
            h = layer(h, a_hat)                                     # (B, out_k)
        return h

    def as_mlp(self) -> nn.Sequential:
        mods: list[nn.Module] = []
        for k, layer in enumerate(self.layers):
            if k:
                mods += [nn.ReLU(), nn.Dropout(self.dropout)]
            mods.append(_Affine(layer))
        return nn.Sequential(*mods)


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------
@dataclass
class EANConfig:
    """EAN hyperparameters (paper values where it gives them).

    ``tau1``/``tau2``: Eq. 4 thresholds (``tau2=None``: single threshold, the paper's simplified
    form; defaults :data:`DEFAULT_TAU1`, :data:`DEFAULT_TAU2`). ``center``: subtract
    the batch mean before Eq. 3 (ours; see the module docstring). ``mode``: how A is
    formed (see :func:`adjacency`; ``"hard"``, chosen on validation over ``"ste"``).
    ``alpha``: Eq. 6 weight (paper 0.1). ``normalize_loss``: divide Eq. 6 by sum(A_mask)^2
    (our experiments: True). ``warmup_epochs``: epochs with
    A = I (paper 50; profiles set it). ``graph_at_eval``: whether ``model(x)`` in eval mode
    builds the graph over the batch (True) or uses A = I (False).
    """

    tau1: float = DEFAULT_TAU1
    tau2: float | None = DEFAULT_TAU2
    center: bool = True
    temperature: float = 0.05
    mode: str = "hard"      # chosen on validation over "ste" (module docstring, "Gradient")
    self_loops: bool = False
    alpha: float = DEFAULT_ALPHA
    normalize_loss: bool = True
    gcn_hidden: int | None = None
    gcn_layers: int = 1
    dropout: float = 0.0
    normalization: str = "sym"
    warmup_epochs: int = 50
    graph_at_eval: bool = True

    def __post_init__(self):
        check_thresholds(self.tau1, self.tau2)
        if self.mode not in ADJACENCY_MODES:
            raise ValueError(f"EANConfig.mode={self.mode!r}: choose one of {ADJACENCY_MODES}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"EANConfig.normalization={self.normalization!r}: choose one of "
                             f"{NORMALIZATIONS}")
        if not self.temperature > 0:
            raise ValueError(f"EANConfig.temperature must be > 0, got {self.temperature}")
        if self.warmup_epochs < 0:
            raise ValueError(f"EANConfig.warmup_epochs must be >= 0, got {self.warmup_epochs}")

    def to_dict(self) -> dict:
        return asdict(self)


def graph_active(epoch: int | None, warmup_epochs: int) -> bool:
    """Warm-up schedule: A = I in epochs ``1 .. warmup_epochs`` (epochs are numbered from 1,
    as ``ferlib.train.fit`` does), the C_s graph from epoch ``warmup_epochs + 1`` on.
    ``epoch=None`` (no schedule) means active."""
    return epoch is None or epoch > warmup_epochs


class EAN(nn.Module):
    """A ferlib backbone (``forward_features`` -> (B, D)) followed by the EAN GCN head.

    ``forward(x, epoch=None, graph=None)`` returns logits (B, K). ``graph`` forces the graph on
    (True) or off (False, A = I); by default it follows the warm-up schedule in training and
    ``config.graph_at_eval`` in eval mode. The last batch's ``features``, ``C_s``, ``A`` (None
    when A = I) are kept in ``self.last`` for the loss and for plots.
    See notebooks/05_adjacency_threshold_tuning, "The paper's idea, in equations".
    """

    def __init__(self, backbone: nn.Module, num_classes: int, config: EANConfig | None = None):
        super().__init__()
        if not hasattr(backbone, "forward_features"):
            raise TypeError(f"backbone {type(backbone).__name__} has no forward_features(x)")
        self.config = config or EANConfig()
        self.backbone = backbone
        dim = getattr(backbone, "feature_dim", None)
        if dim is None:
            raise TypeError(f"backbone {type(backbone).__name__} has no feature_dim attribute")
        self.num_classes = num_classes
        self.head = GCN(dim, num_classes, self.config.gcn_hidden, self.config.gcn_layers,
                        self.config.dropout, self.config.normalization)
        self.last: dict = {}

    def build_graph(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(C_s, A) for a batch of features, with this model's thresholds and mode."""
        c = self.config
        cs = cosine_similarity_matrix(features, center=c.center)   # (B, B)
        a = adjacency(cs, c.tau1, c.tau2, mode=c.mode, temperature=c.temperature,
                      self_loops=c.self_loops)                      # (B, B)
        return cs, a

    def forward(self, x: torch.Tensor, epoch: int | None = None,
                graph: bool | None = None) -> torch.Tensor:
        h = self.backbone.forward_features(x)                       # (B, D)
        if graph is None:
            graph = (graph_active(epoch, self.config.warmup_epochs) if self.training
                     else self.config.graph_at_eval)
        graph = bool(graph) and h.shape[0] >= 2
        cs = a = None
        if graph:
            cs, a = self.build_graph(h)
        self.last = {"features": h, "C_s": cs, "A": a}
        return self.head(h, a)                                      # (B, K)


def build_ean(backbone: str | nn.Module = "smallcnn", num_classes: int = 7, *,
              in_channels: int = 1, width: int = 16, image_size: int = 48,
              config: EANConfig | None = None, **config_kw) -> EAN:
    """EAN on a ferlib backbone given by name (``ferlib.models.build_backbone``) or module."""
    if config is not None and config_kw:
        raise TypeError("pass either config= or EANConfig keyword arguments, not both")
    config = config or EANConfig(**config_kw)
    if isinstance(backbone, str):
        from ferlib.models.backbones import build_backbone
        backbone = build_backbone(backbone, num_classes, in_channels=in_channels, width=width,
                                  image_size=image_size)
    return EAN(backbone, num_classes, config)


# --------------------------------------------------------------------------------------
# Loss and prediction for ferlib.train.fit
# --------------------------------------------------------------------------------------
def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)                          # DDP / DataParallel


class EANLoss:
    """Total loss of EAN: ``CE(logits, y) + Adj_loss`` (Eq. 6 with ``alpha`` inside),
    the graph following the warm-up schedule. A callable for ``ferlib.train.fit(loss_fn=...)``:
    ``loss_fn(model, x, y, epoch, **kw) -> (loss, logits)``. During warm-up (A = I) the
    Adj_loss term is 0. ``last`` keeps the last batch's parts (ce, adj) for logging.
    """

    def __init__(self, alpha: float | None = None, normalize: bool | None = None):
        self.alpha, self.normalize = alpha, normalize
        self.last: dict = {}

    def __call__(self, model, x, y, epoch=None, **kw):
        net = _unwrap(model)
        cfg = net.config
        alpha = cfg.alpha if self.alpha is None else self.alpha
        normalize = cfg.normalize_loss if self.normalize is None else self.normalize
        logits = model(x, epoch=epoch)                              # (B, K)
        ce = F.cross_entropy(logits, y)
        a = net.last.get("A")
        if a is None:
            adj = logits.new_zeros(())
        else:
            adj = adj_loss(a, label_mask(y, cfg.self_loops).to(a.dtype), alpha, normalize)
        self.last = {"ce": float(ce.detach()), "adj": float(adj.detach())}
        return ce + adj, logits


def ean_loss_fn(model, x, y, epoch=None, **kw):
    """Functional form of :class:`EANLoss` with the model's config (alpha, normalisation)."""
    return EANLoss()(model, x, y, epoch, **kw)


def ean_predict_batch(model, x):
    """Logits with the graph built over the given test batch (depends on the batch-mates and
    the evaluation batch size; a batch of one falls back to A = I)."""
    return model(x, graph=True)


def ean_predict_single(model, x):
    """Logits with A = I: every image classified alone (the MLP path of the GCN)."""
    return model(x, graph=False)
