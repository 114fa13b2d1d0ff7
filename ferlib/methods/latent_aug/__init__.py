"""Latent covariance augmentation for the long tail (Li et al.), chapter
notebooks/04_latent_covariance_augmentation.

* :mod:`ferlib.methods.latent_aug.latent` - per-class latent statistics and the z' sampler;
* :mod:`ferlib.methods.latent_aug.dataset` - batch replacement as a ``loss_fn`` for
  ``ferlib.train.fit``;
* :mod:`ferlib.methods.latent_aug.vaegan` - the VAE-GAN that gives the latent space;
* :mod:`ferlib.methods.latent_aug.experiment` - the chapter's Table I experiment and widgets
  (imported on demand: ``from ferlib.methods.latent_aug import experiment``).

DAN, the second classifier of the chapter's Table I, is :mod:`ferlib.methods.dan`.
"""
from ferlib.methods.latent_aug.dataset import (BatchReplacement, LatentAugmentation,
                                               MatchedResampling, augment_batch,
                                               clean_epochs_from, replacement_rows,
                                               resample_batch)
from ferlib.methods.latent_aug.latent import (SAMPLING_METHODS, SHRINKAGE, ClassLatentStats,
                                              check_covariance, class_latent_stats, matrix_sqrt,
                                              sample_latent)

__all__ = ["ClassLatentStats", "class_latent_stats", "sample_latent", "matrix_sqrt",
           "check_covariance", "SAMPLING_METHODS", "SHRINKAGE", "LatentAugmentation",
           "augment_batch", "clean_epochs_from", "BatchReplacement", "MatchedResampling",
           "replacement_rows", "resample_batch"]
