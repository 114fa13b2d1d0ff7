"""The methods: one package per paper (or reference method), each with its model, loss,
runner, plots and widgets, built on the shared core (``ferlib.data``, ``ferlib.train``,
``ferlib.models``, ``ferlib.records``, ...). A method never imports the book's machinery
(:mod:`ferlib.book`); the papers' claimed numbers come from :mod:`ferlib.claims`.

* :mod:`ferlib.methods.baseline` - the plain cross-entropy classifier every chapter compares
  against (notebooks/02_baseline; ``python -m ferlib.methods.baseline``);
* :mod:`ferlib.methods.ahm` - the Analytic Hierarchy Model and its semantic autoencoder
  (Zhang & Dong; notebooks/03_ahm_semantic_space);
* :mod:`ferlib.methods.latent_aug` - latent covariance augmentation with a VAE-GAN (Li et al.;
  notebooks/04_latent_covariance_augmentation);
* :mod:`ferlib.methods.dan` - DAN, "Distract Your Attention" (Wen et al.), the second classifier
  of Li et al.'s Table I (notebooks/04_latent_covariance_augmentation);
* :mod:`ferlib.methods.ean` - EAN, the label-regularised batch graph (Du et al.), with the SCN
  reference (Wang et al.) and the invariant feature generator
  (notebooks/05_adjacency_threshold_tuning);
* :mod:`ferlib.methods.cucn` - CUCN, class-uncertainty feature mixing
  (notebooks/06_uncertainty_and_imbalance).

:mod:`ferlib.compare` (notebooks/07_comparison) sits above them all: the registry that runs
every method on the same splits.
"""

#: the method packages, in the chapters' order; ``ferlib.methods.<name>`` imports one on first use
PACKAGES = ("baseline", "ahm", "latent_aug", "dan", "ean", "cucn")


def __getattr__(name):
    if name in PACKAGES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
