"""Run profiles and device selection, in one place (see notebooks/00_introduction,
"How the profiles work").

A profile scales data, epochs and model size so the same notebook runs in seconds
for CI (``smoke``), in minutes on a 2-core CPU (``cpu``) or with the papers'
settings on a GPU (``full``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

__all__ = ["Profile", "PROFILES", "get_profile", "resolve_device", "DEVICES", "given_or"]


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
    warmup_epochs: int      # EAN: epochs with A = I before the graph is built (chapter 05)
    num_workers: int = 0

    def replace(self, **changes) -> "Profile":
        """A copy with some fields changed (``profile.replace(epochs=2)``)."""
        return dataclasses.replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", synth_train=1200, synth_test=280, real_train_cap=1400,
                     real_eval_cap=350, image_size=48, backbone="smallcnn", width=8,
                     epochs=2, batch_size=64, lr=2e-3, gen_epochs=1, latent_dim=16,
                     warmup_epochs=1),
    # cpu: a stratified 6,000-image subset of a real training split keeps one 8-epoch FER2013
    # run at 3-7 minutes on 2 cores (book/records/cpu), so a chapter's table fits in a sitting.
    "cpu": Profile("cpu", synth_train=12000, synth_test=1400, real_train_cap=6000,
                   real_eval_cap=None, image_size=48, backbone="smallcnn", width=16,
                   epochs=8, batch_size=128, lr=2e-3, gen_epochs=6, latent_dim=32,
                   warmup_epochs=3),
    "full": Profile("full", synth_train=12000, synth_test=1400, real_train_cap=None,
                    real_eval_cap=None, image_size=48, backbone="resnet18", width=64,
                    epochs=60, batch_size=64, lr=2e-4, gen_epochs=100, latent_dim=128,
                    warmup_epochs=50, num_workers=4),
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
