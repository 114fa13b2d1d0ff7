"""Backbones shared by every chapter: a small VGG-style CNN and torchvision ResNets adapted to
grey 48x48 faces (FER2013) and to larger RGB faces (RAF-DB 100x100, 224x224), with an
optional CBAM module in every residual block. See notebooks/00_introduction ("How the profiles
work": the backbone of each profile), notebooks/02_baseline ("Live run at this profile") and,
for CBAM, notebooks/06_uncertainty_and_imbalance.

Every backbone has the same interface::

    forward(x)           (B, in_channels, H, W) -> logits (B, K)
    forward_features(x)  -> pooled penultimate features (B, D);  forward(x) == fc(forward_features(x))
    forward_map(x)       -> last convolutional map (B, C, h, w)   (DAN, RUL/CUCN heads read it)
    feature_dim (D), map_channels (C), fc (nn.Linear D -> K), config (BackboneConfig)

``build_backbone(name, ...)`` and the thin factories (:func:`small_cnn`, :func:`resnet18`, ...)
all go through one private builder, like torchvision's ``resnet.py``.

**ResNets** are torchvision's own ``ResNet`` with its ``BasicBlock`` / ``Bottleneck`` (He et al.,
CVPR 2016), not a rewrite; only the stem (``conv1`` + ``maxpool``) is replaced so that it takes
``in_channels`` (1 for grey) and suits the image size. Stems (``stem=``):

============== ============================================ ============ ===================
stem           layers                                       48x48 map    ResNet-18 CPU speed*
============== ============================================ ============ ===================
"small"        3x3 conv stride 1, no max-pool               layer4 6x6   17 img/s (GPU only)
"small_s2"     3x3 conv stride 2, no max-pool               layer4 3x3   54 img/s
"torchvision"  7x7 conv stride 2 + 3x3 max-pool stride 2    layer4 2x2   243 img/s
============== ============================================ ============ ===================

(* forward + backward, batch 128, 48x48 grey, the project's 2-core CPU; reference facts.)
The default (``stem=None``) is "small" for ``image_size <= 64``: the torchvision stem shrinks a
48x48 face to 12x12 before the first block and leaves a 2x2 layer4 map, which costs accuracy
and leaves almost nothing for spatial attention (DAN, CBAM) to attend to; the 3x3 stride-1
stem is the usual CIFAR-style adaptation and what the ``full`` (GPU) profile should use. For
larger inputs (RAF-DB 100x100 -> layer4 4x4, 224x224 -> 7x7) the default is the torchvision
stem. On a CPU prefer the small CNN, or ``stem="torchvision"``.

``width`` sets the small CNN's base width only (stage widths ``width * (1, 2, 4, 8)``; 16 ->
0.3M parameters and about 557 img/s on the 2-core CPU, 32 -> 1.2M and 128 img/s); ResNets
keep torchvision's widths (64 ... 512 per stage x block expansion).

**CBAM** (``cbam=True``): ResNet blocks become :class:`CBAMBasicBlock` / :class:`CBAMBottleneck`
(subclasses of torchvision's) with CBAM after the block's last BN and before the residual
addition, as in the reference code of Woo et al. (ECCV 2018) and the CUCN paper; in the small
CNN, CBAM follows the second BN of every stage (before its ReLU).

Checkpoints: :func:`load_checkpoint` loads a user's weights (e.g. the MS-Celeb-1M ResNet-18 the
reference methods start from) and reports exactly what was and was not loaded;
:func:`save_backbone` / :func:`load_backbone` pass a trained backbone between chapters.
"""
from __future__ import annotations

import dataclasses
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from ferlib.models.cbam import CBAM

__all__ = ["BackboneConfig", "build_backbone", "small_cnn", "resnet18", "resnet34", "resnet50",
           "resnet101", "SmallCNN", "FERResNet", "CBAMBasicBlock", "CBAMBottleneck",
           "BACKBONES", "STEMS", "default_stem", "LoadReport", "load_checkpoint",
           "save_backbone", "load_backbone", "extract_state_dict", "backbone_label"]

#: backbone names :func:`build_backbone` accepts
BACKBONES = ("smallcnn", "minixception", "resnet18", "resnet34", "resnet50", "resnet101")
#: how tables and figures name each backbone (the papers' spelling)
BACKBONE_LABELS = {"smallcnn": "SmallCNN", "minixception": "mini-Xception", "resnet18": "ResNet-18",
                   "resnet34": "ResNet-34", "resnet50": "ResNet-50", "resnet101": "ResNet-101"}
STEMS = ("small", "small_s2", "torchvision")
_RESNET_LAYOUT = {  # name -> (block kind, blocks per stage); He et al. 2016, Table 1
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
}
CHECKPOINT_FORMAT = 1


def backbone_label(name: str) -> str:
    """The display name of a backbone (``"resnet18"`` -> ``"ResNet-18"``); other names unchanged."""
    return BACKBONE_LABELS.get(name, name)


def default_stem(image_size: int) -> str:
    """"small" (3x3 stride-1 stem, no max-pool) up to 64 px, else "torchvision"."""
    return "small" if int(image_size) <= 64 else "torchvision"


@dataclass(frozen=True)
class BackboneConfig:
    """Everything needed to rebuild a backbone (stored in its checkpoint by save_backbone).

    ``stem`` None means :func:`default_stem` of ``image_size``; the built model's
    ``config.stem`` holds the resolved name (ResNets) or None (small CNN).
    """

    name: str
    num_classes: int
    in_channels: int = 1
    width: int = 16
    cbam: bool = False
    image_size: int = 48
    stem: str | None = None
    dropout: float = 0.0   # before the linear classifier ``fc`` (forward only, not forward_features)

    def __post_init__(self):
        if self.name not in BACKBONES:
            raise ValueError(f"unknown backbone {self.name!r}: choose one of {', '.join(BACKBONES)}")
        for attr in ("num_classes", "in_channels", "width", "image_size"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"backbone {attr} must be a positive integer, got {value!r}")
        if self.stem is not None and self.stem not in STEMS:
            raise ValueError(f"unknown stem {self.stem!r}: choose one of {', '.join(STEMS)} or None")
        if not isinstance(self.cbam, bool):
            raise TypeError(f"backbone cbam must be True or False, got {self.cbam!r}")
        if not (isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"backbone dropout must be a number in [0, 1), got {self.dropout!r}")


def _check_input(x: torch.Tensor, in_channels: int, who: str) -> None:
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ValueError(f"{who} expects images (B, {in_channels}, H, W), got {tuple(x.shape)}")


# ----------------------------------------------------------------------------------------------
# small VGG-style CNN
# ----------------------------------------------------------------------------------------------
def _conv_bn(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)]


class SmallCNN(nn.Module):
    """VGG-style CNN: 4 stages of two (3x3 conv, BN, ReLU), widths ``width * (1, 2, 4, 8)``,
    2x2 max-pool between stages, global average pool, linear classifier. After Khaireddin &
    Chen (2021)'s VGG-style FER2013 network, shrunk for CPU runs (see notebooks/02_baseline).
    """

    def __init__(self, config: BackboneConfig):
        super().__init__()
        self.config = config
        w = config.width
        widths = (w, 2 * w, 4 * w, 8 * w)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        cin = config.in_channels
        for i, cout in enumerate(widths, start=1):
            stage = [*_conv_bn(cin, cout), nn.ReLU(inplace=True), *_conv_bn(cout, cout)]
            if config.cbam:
                stage.append(CBAM(cout))
            stage.append(nn.ReLU(inplace=True))
            layers[f"stage{i}"] = nn.Sequential(*stage)
            if i < len(widths):
                layers[f"pool{i}"] = nn.MaxPool2d(2)
            cin = cout
        self.features = nn.Sequential(layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = widths[-1]
        self.map_channels = widths[-1]
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(self.feature_dim, config.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():
            if isinstance(m, CBAM):
                m.reset_parameters()

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.config.in_channels, "smallcnn")
        return self.features(x)  # (B, 8w, H/8, W/8)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.forward_map(x)), 1)  # (B, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))  # (B, K)


# ----------------------------------------------------------------------------------------------
# ResNets from torchvision's classes
# ----------------------------------------------------------------------------------------------
class CBAMBasicBlock(BasicBlock):
    """torchvision BasicBlock with CBAM after ``bn2`` and before the residual addition
    (reference placement of Woo et al. 2018; CUCN, notebooks/06_uncertainty_and_imbalance)."""

    cbam_reduction = 16

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cbam = CBAM(self.bn2.num_features, reduction=self.cbam_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))   # (B, P, h, w)
        out = self.bn2(self.conv2(out))            # (B, P, h, w)
        out = self.cbam(out)                       # (B, P, h, w)
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class CBAMBottleneck(Bottleneck):
    """torchvision Bottleneck with CBAM after ``bn3`` and before the residual addition."""

    cbam_reduction = 16

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cbam = CBAM(self.bn3.num_features, reduction=self.cbam_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))   # (B, P, h, w)
        out = self.relu(self.bn2(self.conv2(out)))  # (B, P, h, w)
        out = self.bn3(self.conv3(out))            # (B, 4P, h, w)
        out = self.cbam(out)                       # (B, 4P, h, w)
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class FERResNet(ResNet):
    """torchvision ``ResNet`` with a stem for ``in_channels`` and the image size (module
    docstring), optional CBAM blocks, and the ferlib backbone interface. State-dict keys are
    torchvision's (``conv1.weight``, ``layer1.0.bn1.weight``, ..., ``fc.weight``), so ImageNet or
    MS-Celeb ResNet checkpoints load by name (:func:`load_checkpoint`)."""

    def __init__(self, config: BackboneConfig):
        kind, layers = _RESNET_LAYOUT[config.name]
        if kind == "basic":
            block = CBAMBasicBlock if config.cbam else BasicBlock
        else:
            block = CBAMBottleneck if config.cbam else Bottleneck
        super().__init__(block, list(layers), num_classes=config.num_classes)
        stem = config.stem or default_stem(config.image_size)
        self.config = dataclasses.replace(config, stem=stem)
        if stem == "torchvision":
            self.conv1 = nn.Conv2d(config.in_channels, 64, 7, stride=2, padding=3, bias=False)
        else:  # "small" / "small_s2": 3x3 conv, no max-pool
            self.conv1 = nn.Conv2d(config.in_channels, 64, 3, stride=1 if stem == "small" else 2,
                                   padding=1, bias=False)
            self.maxpool = nn.Identity()
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # ResNet.__init__ set every BN weight to 1; restore CBAM's 0
            if isinstance(m, CBAM):
                m.reset_parameters()
        self.feature_dim = 512 * block.expansion
        self.map_channels = 512 * block.expansion
        self.dropout = nn.Dropout(config.dropout)

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.config.in_channels, self.config.name)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/s, W/s)
        x = self.layer1(x)                                     # (B, 64e, ., .)
        x = self.layer2(x)                                     # (B, 128e, ., .)
        x = self.layer3(x)                                     # (B, 256e, ., .)
        return self.layer4(x)                                  # (B, 512e, h, w)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.forward_map(x)), 1)  # (B, 512e)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))  # (B, K)


# ----------------------------------------------------------------------------------------------
# mini-Xception (depthwise-separable residual modules)
# ----------------------------------------------------------------------------------------------
def _separable(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),  # depthwise
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)]   # pointwise


class _XceptionModule(nn.Module):
    """Two separable convs and a 3x3 stride-2 max-pool, plus a 1x1 stride-2 shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(*_separable(cin, cout), nn.ReLU(inplace=True),
                                  *_separable(cout, cout), nn.MaxPool2d(3, stride=2, padding=1))
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)  # (B, cout, H/2, W/2)


class MiniXception(nn.Module):
    """The mini-Xception of Arriaga, Valdenegro-Toro & Ploeger (2017), the network of the ``fer``
    package: two 3x3 convs (``width`` channels), then four residual modules of depthwise-separable
    convs with ``width * (2, 4, 8, 16)`` channels, each halving the map; global average pool and a
    linear classifier (the paper's last conv to K channels, written as ``fc``)."""

    def __init__(self, config: BackboneConfig):
        super().__init__()
        self.config = config
        w = config.width
        layers: list[nn.Module] = [*_conv_bn(config.in_channels, w), nn.ReLU(inplace=True),
                                   *_conv_bn(w, w), nn.ReLU(inplace=True)]
        cin = w
        for mult in (2, 4, 8, 16):
            layers.append(_XceptionModule(cin, w * mult))
            cin = w * mult
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = self.map_channels = cin
        self.dropout = nn.Dropout(config.dropout)
        self.fc = nn.Linear(cin, config.num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.config.in_channels, "minixception")
        return self.features(x)  # (B, 16w, H/16, W/16)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.forward_map(x)), 1)  # (B, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))  # (B, K)


# ----------------------------------------------------------------------------------------------
# builder and factories
# ----------------------------------------------------------------------------------------------
def _build(config: BackboneConfig) -> nn.Module:
    if config.name in ("smallcnn", "minixception"):
        if config.stem is not None:
            raise ValueError(f"stem= applies to ResNets only, not to {config.name}")
        if config.cbam and config.name == "minixception":
            raise ValueError("cbam=True is not available for minixception")
        return SmallCNN(config) if config.name == "smallcnn" else MiniXception(config)
    return FERResNet(config)


def build_backbone(name: str, num_classes: int, in_channels: int = 1, width: int = 16,
                   cbam: bool = False, image_size: int = 48, stem: str | None = None,
                   dropout: float = 0.0) -> nn.Module:
    """Build backbone ``name`` (one of :data:`BACKBONES`) for ``num_classes`` classes.

    ``width``: small CNN base width (ignored by ResNets). ``image_size``: side of the input,
    used to pick the ResNet stem when ``stem`` is None (module docstring). ``cbam``: CBAM in
    every block / stage (Woo et al. 2018). ``dropout``: before ``fc`` in ``forward``.
    """
    return _build(BackboneConfig(name=name, num_classes=num_classes, in_channels=in_channels,
                                 width=width, cbam=cbam, image_size=image_size, stem=stem,
                                 dropout=float(dropout)))


def small_cnn(num_classes: int, **kwargs) -> SmallCNN:
    """The small VGG-style CNN (``build_backbone("smallcnn", ...)``)."""
    return _build(BackboneConfig("smallcnn", num_classes, **kwargs))


def resnet18(num_classes: int, **kwargs) -> FERResNet:
    """ResNet-18 (BasicBlock x (2, 2, 2, 2)); kwargs as :func:`build_backbone`."""
    return _build(BackboneConfig("resnet18", num_classes, **kwargs))


def resnet34(num_classes: int, **kwargs) -> FERResNet:
    """ResNet-34 (BasicBlock x (3, 4, 6, 3)); kwargs as :func:`build_backbone`."""
    return _build(BackboneConfig("resnet34", num_classes, **kwargs))


def resnet50(num_classes: int, **kwargs) -> FERResNet:
    """ResNet-50 (Bottleneck x (3, 4, 6, 3)); kwargs as :func:`build_backbone`."""
    return _build(BackboneConfig("resnet50", num_classes, **kwargs))


def resnet101(num_classes: int, **kwargs) -> FERResNet:
    """ResNet-101 (Bottleneck x (3, 4, 23, 3)), AHM's backbone; kwargs as :func:`build_backbone`."""
    return _build(BackboneConfig("resnet101", num_classes, **kwargs))


# ----------------------------------------------------------------------------------------------
# checkpoints
# ----------------------------------------------------------------------------------------------
_STATE_KEYS = ("state_dict", "model_state_dict", "model", "net", "network")
_PREFIXES = ("module.", "_orig_mod.")  # DataParallel / DDP, torch.compile


@dataclass
class LoadReport:
    """What :func:`load_checkpoint` did.

    ``loaded``: model keys that received checkpoint values. ``missing``: model keys that kept
    their initial values (absent from the checkpoint, or skipped for shape). ``unexpected``:
    checkpoint keys the model does not have. ``skipped_shape``: ``(key, checkpoint shape,
    model shape)`` of keys present in both but of different shapes (e.g. an MS-Celeb ``fc`` of
    8631 classes); they are also in ``missing``. ``adapted``: RGB first-conv weights summed over
    the colour channels for a grey model.
    """

    source: str
    loaded: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    skipped_shape: list = field(default_factory=list)
    adapted: list = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every model key loaded and every checkpoint key used."""
        return not (self.missing or self.unexpected)

    def __str__(self) -> str:
        def show(keys, limit=20):
            keys = [k if isinstance(k, str) else f"{k[0]} {tuple(k[1])} -> {tuple(k[2])}" for k in keys]
            more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
            return ", ".join(keys[:limit]) + more

        lines = [f"load_checkpoint({self.source}): loaded {len(self.loaded)}, missing "
                 f"{len(self.missing)}, unexpected {len(self.unexpected)}, shape-skipped "
                 f"{len(self.skipped_shape)}"]
        if self.skipped_shape:
            lines.append("  skipped (shape ckpt -> model): " + show(self.skipped_shape))
        if self.missing:
            lines.append("  missing (kept initial values): " + show(self.missing))
        if self.unexpected:
            lines.append("  unexpected (ignored): " + show(self.unexpected))
        if self.adapted:
            lines.append("  adapted RGB -> grey: " + show(self.adapted))
        return "\n".join(lines)


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p):], True
    return key


def extract_state_dict(obj, source: str = "checkpoint") -> dict:
    """The tensor state dict inside ``obj``: a raw state dict, or a dict holding one under
    ``state_dict`` / ``model_state_dict`` / ``model`` / ``net`` (nested allowed). ``module.``
    (DataParallel/DDP) and ``_orig_mod.`` (torch.compile) prefixes are stripped."""
    for _ in range(3):
        if isinstance(obj, nn.Module):
            obj = obj.state_dict()
        if not isinstance(obj, Mapping):
            raise TypeError(f"{source}: expected a state dict (a mapping of tensors), got "
                            f"{type(obj).__name__}")
        inner = next((obj[k] for k in _STATE_KEYS if isinstance(obj.get(k), (Mapping, nn.Module))),
                     None)
        if inner is None:
            break
        obj = inner
    tensors = {_strip(str(k)): v for k, v in obj.items() if torch.is_tensor(v)}
    if not tensors:
        raise ValueError(f"{source}: no tensors found; top-level keys: {list(obj)[:10]} (expected "
                         f"a state dict or a dict with one of the keys {', '.join(_STATE_KEYS)})")
    return tensors


def _unwrap(model: nn.Module) -> nn.Module:
    from torch.nn.parallel import DataParallel, DistributedDataParallel
    while isinstance(model, (DataParallel, DistributedDataParallel)):
        model = model.module
    return model


def load_checkpoint(model: nn.Module, path, strict: bool = False, *, verbose: bool = True,
                    adapt_grey: bool = True) -> LoadReport:
    """Load the weights in ``path`` (a file read with ``torch.load(weights_only=True)``, or a
    state dict) into ``model`` by key name and report exactly what happened (:class:`LoadReport`).

    Accepted layouts: a raw state dict; a dict with ``state_dict`` / ``model`` (e.g. the
    MS-Celeb-1M ResNet-18 used by RUL, SCN and DAN); ``module.`` prefixes. Keys whose shapes
    differ (a classifier for 8631 identities instead of K expressions) are skipped and
    reported; with ``adapt_grey`` an RGB first convolution (O, 3, k, k) feeds a grey model
    (O, 1, k, k) as its sum over the colours (a grey pixel g = RGB (g, g, g)).

    Raises ValueError if nothing at all loads (the classic silent failure: wrong prefixes or
    architecture), and, with ``strict``, if anything is missing, unexpected or skipped (the
    model is then left untouched). ``verbose`` prints the report.
    """
    model = _unwrap(model)
    if isinstance(path, (str, os.PathLike)):
        from ferlib.checkpoint import load_checkpoint_file

        source = str(path)
        obj = load_checkpoint_file(path, "checkpoint file")
    else:
        source, obj = "<state dict>", path
    ckpt = extract_state_dict(obj, source)
    own = model.state_dict()
    report = LoadReport(source)
    to_load = {}
    for key, value in ckpt.items():
        if key not in own:
            report.unexpected.append(key)
            continue
        target = own[key]
        if value.shape == target.shape:
            to_load[key] = value
        elif (adapt_grey and value.ndim == 4 and value.shape[1] == 3 and target.shape[1] == 1
              and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]):
            to_load[key] = value.sum(dim=1, keepdim=True)  # (O, 1, k, k)
            report.adapted.append(key)
        else:
            report.skipped_shape.append((key, tuple(value.shape), tuple(target.shape)))
    report.loaded = [k for k in own if k in to_load]
    report.missing = [k for k in own if k not in to_load]
    if not to_load:
        raise ValueError(
            f"{source}: no checkpoint tensor matches {type(model).__name__} (nothing loaded). "
            f"Checkpoint keys start {list(ckpt)[:5]}, model keys start {list(own)[:5]}; "
            f"{len(report.skipped_shape)} keys matched by name but not by shape")
    if strict and (report.missing or report.unexpected):
        raise ValueError(f"strict load failed:\n{report}")
    model.load_state_dict(to_load, strict=False)
    if verbose:
        print(report)
    return report


def save_backbone(model: nn.Module, path, meta: dict | None = None) -> Path:
    """Save ``model``'s state dict with ``meta`` (free-form, JSON-like: method, dataset, ...) and,
    for ferlib backbones, the :class:`BackboneConfig` (name, num_classes, in_channels, width,
    cbam, image_size, stem) so that :func:`load_backbone` rebuilds it. Written atomically."""
    from ferlib.records import to_jsonable

    model = _unwrap(model)
    config = getattr(model, "config", None)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": to_jsonable(dict(meta or {})),
        "backbone_config": dataclasses.asdict(config) if isinstance(config, BackboneConfig) else None,
        "model_class": type(model).__name__,
    }
    from ferlib.checkpoint import save_atomic

    return save_atomic(payload, path)


def load_backbone(path, *, verbose: bool = False) -> nn.Module:
    """Rebuild and load a backbone saved by :func:`save_backbone` (on the CPU). The file's
    ``meta`` is attached as ``model.checkpoint_meta``. Every key must fit (strict)."""
    from ferlib.checkpoint import load_checkpoint_file

    path = Path(path)
    obj = load_checkpoint_file(path, "backbone file")
    if not isinstance(obj, Mapping) or "state_dict" not in obj:
        raise ValueError(f"{path}: not a ferlib backbone file (no 'state_dict'; use load_checkpoint)")
    meta = dict(obj.get("meta") or {})
    cfg = obj.get("backbone_config")
    if cfg is None:
        keys = ("name", "num_classes", "in_channels", "width", "cbam", "image_size", "stem", "dropout")
        if not all(k in meta for k in keys[:2]):
            raise ValueError(f"{path}: holds no backbone_config and its meta lacks name/num_classes; "
                             "cannot rebuild the model")
        cfg = {k: meta[k] for k in keys if k in meta}
    model = _build(BackboneConfig(**cfg))
    load_checkpoint(model, obj["state_dict"], strict=True, verbose=verbose)
    model.checkpoint_meta = meta
    return model
