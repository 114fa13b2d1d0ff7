"""Run profiles and device selection, in one place (see notebooks/00_introduction,
"How the profiles work").

A profile scales data, epochs and model size so the same notebook runs in seconds
for CI (``smoke``), in minutes on a 2-core CPU (``cpu``) or with the papers'
settings on a GPU (``full``).

:func:`usable_folder` is the one check of a folder named on a command line
(``python -m ferlib.methods.baseline``, ``python -m ferlib.compare``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

__all__ = ["Profile", "PROFILES", "get_profile", "resolve_device", "DEVICES", "given_or",
           "usable_folder"]


@dataclass(frozen=True)
class Profile:
    """Sizes that a profile fixes. Every chapter reads its sizes from here."""

    name: str
    synth_train: int        # SynthFACS training images (before the long-tail profile is applied)
    synth_test: int         # SynthFACS balanced test images (and as many for validation)
    real_train_cap: int | None  # at most this many real training images (stratified); None = all
    real_eval_cap: int | None   # at most this many real validation / test images; None = all
    image_size: int         # side of the square grey input
    backbone: str           # default backbone name for ferlib.models.build_backbone
    width: int              # base width of the small CNN (ignored by ResNets)
    epochs: int             # classifier epochs
    batch_size: int
    lr: float
    gen_epochs: int         # VAE-GAN epochs (chapter 04)
    latent_dim: int         # VAE-GAN latent size (chapter 04)
    warmup_epochs: int      # EAN: epochs with A = I before the graph is built (chapter 05);
    #                         smoke and cpu: half the run (full: the paper's 50), since a
    #                         graph over features that have not yet learned
    #                         pulls training to the majority class
    #                         (tests/benchmarks/results/noisy_schedule_cpu.md). CUCN's mixing
    #                         waits as long outside the full profile (chapter 06,
    #                         tests/benchmarks/results/cucn_schedule_cpu.md)
    num_workers: int = 0
    # the training recipe (ferlib.train.fit; notebooks/02_baseline, "The cpu recipe")
    optimizer: str = "adam"         # "adam" or "sgd" (Nesterov momentum 0.9)
    weight_decay: float = 1e-4
    schedule: str = "none"          # "none", "onecycle" (peak lr) or "cosine", stepped per batch
    label_smoothing: float = 0.0    # of the plain cross-entropy (baseline and its controls)
    augment: str = "none"           # "none", "flip" or "crop_flip" (ferlib.train.augment)
    dropout: float = 0.0            # before the backbone's linear classifier
    tta_flip: bool = False          # evaluation averages the image and its mirror image
    precision: str = "auto"         # "auto", "fp32", "bf16" (CPU) or "fp16" (CUDA); see precision.py
    channels_last: bool = False     # NHWC tensors: what oneDNN's bfloat16 kernels want
    # per-profile behaviour of the chapters, named here instead of tested by profile name
    gen_width: int = 16             # VAE-GAN encoder/generator base width (chapter 04)
    paper_recipe: bool = False      # methods follow their paper's optimiser and schedule (CUCN:
    #                                 classifier at 5x lr, ExponentialLR(0.9)) instead of the
    #                                 shared recipe above: only where the budget is the paper's
    short_live_runs: bool = False   # runs trained live in a notebook (chapter 05's noise sweep)
    #                                 use a small subset and short grids, so CI runs the book

    def replace(self, **changes) -> "Profile":
        """A copy with some fields changed (``profile.replace(epochs=2)``)."""
        return dataclasses.replace(self, **changes)

    def fit_options(self, epochs: int | None = None) -> dict:
        """The keyword arguments of :func:`ferlib.train.fit` that this profile fixes, so every
        method of a chapter trains with the same budget, optimiser, schedule and augmentation."""
        return {"epochs": int(epochs or self.epochs), "batch_size": self.batch_size, "lr": self.lr,
                "optimizer": self.optimizer, "weight_decay": self.weight_decay,
                "schedule": self.schedule, "label_smoothing": self.label_smoothing,
                "augment": self.augment, "tta_flip": self.tta_flip, "precision": self.precision,
                "channels_last": self.channels_last, "num_workers": self.num_workers}

    def recipe(self) -> dict:
        """The recipe as plain data, for records (what :meth:`fit_options` passes, plus dropout)."""
        return {k: v for k, v in {**self.fit_options(), "dropout": self.dropout}.items()
                if k != "num_workers"}


PROFILES: dict[str, Profile] = {
    # smoke: seconds per training on a CPU, yet a model that learns (about 0.4-0.5 mean class
    # accuracy on SynthFACS, chance 0.14): 32x32 faces cost a 2.25th of 48x48 ones; 3,600 faces
    # x 8 epochs with Adam + one-cycle, batch 64 at lr 6e-3: a fifth faster per run than batch
    # 32 at 3e-3 on 2 cores, as accurate (tests/benchmarks/results/smoke_batch_cpu.md);
    # channels-last tensors: 0.76 of the time per run at one thread, accuracy within the
    # seeds' spread (tests/benchmarks/results/smoke_layout_cpu.md).
    "smoke": Profile("smoke", synth_train=3600, synth_test=280, real_train_cap=1400,
                     real_eval_cap=350, image_size=32, backbone="smallcnn", width=8,
                     epochs=8, batch_size=64, lr=6e-3, gen_epochs=1, latent_dim=16,
                     warmup_epochs=4, schedule="onecycle", channels_last=True, gen_width=4,
                     short_live_runs=True),
    # cpu: the whole training split, the 1.2M-parameter VGG-style net (width 32) chosen by
    # tests/benchmarks/bench_backbones.py, SGD + one-cycle to 0.1, crop/flip, label smoothing,
    # dropout, flip averaging, bfloat16 where the CPU has the units (notebooks/02_baseline,
    # "The cpu recipe"). Budget: 20 epochs, about 20 min on 2 cores with bfloat16 units.
    "cpu": Profile("cpu", synth_train=12000, synth_test=1400, real_train_cap=None,
                   real_eval_cap=None, image_size=48, backbone="smallcnn", width=32,
                   epochs=20, batch_size=128, lr=0.1, gen_epochs=6, latent_dim=32,
                   warmup_epochs=10, optimizer="sgd", weight_decay=5e-4, schedule="onecycle",
                   label_smoothing=0.1, augment="crop_flip", dropout=0.3, tta_flip=True,
                   channels_last=True, gen_width=16),
    "full": Profile("full", synth_train=12000, synth_test=1400, real_train_cap=None,
                    real_eval_cap=None, image_size=48, backbone="resnet18", width=64,
                    epochs=60, batch_size=64, lr=2e-4, gen_epochs=100, latent_dim=128,
                    warmup_epochs=50, num_workers=4, gen_width=64, paper_recipe=True),
}

DEVICES = ("auto", "cpu", "cuda")


def get_profile(name: str | Profile) -> Profile:
    """Return the named profile; an unknown name is an error naming the choices."""
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}") from None


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if isinstance(device, torch.device):
        return device
    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise ValueError(f"unknown device {device!r}: choose one of {', '.join(DEVICES)}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but torch sees no CUDA GPU; "
                         "use device='auto' or 'cpu'")
    return torch.device(device)


def given_or(value, default: int, name: str, minimum: int = 1) -> int:
    """``default`` when ``value`` is None, else ``value`` checked to be an int >= ``minimum``.

    For sizes such as ``epochs`` that default to the profile's: ``epochs or prof.epochs``
    would silently turn an explicit 0 into the profile's default."""
    if value is None:
        return int(default)
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def usable_folder(parser, option: str, value) -> None:
    """Create ``value`` (a folder) now and check it is writable, or stop with
    ``parser.error`` (exit status 2) naming ``option``: an unusable output path is an error
    before any data is loaded or trained on, not after the run. ``parser`` is an
    ``argparse.ArgumentParser``."""
    import os
    from pathlib import Path

    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        parser.error(f"{option} {value}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"{option} {value}: cannot create the folder ({exc.strerror or exc})")
    if not os.access(path, os.W_OK | os.X_OK):
        parser.error(f"{option} {value}: the folder is not writable")
