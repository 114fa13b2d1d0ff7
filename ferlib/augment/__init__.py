"""Latent covariance augmentation for the long tail (Li et al.), chapter
notebooks/04_latent_covariance_augmentation.

* :mod:`ferlib.augment.latent` - per-class latent statistics and the z' sampler;
* :mod:`ferlib.augment.dataset` - batch replacement as a ``loss_fn`` for ``ferlib.train.fit``;
* :mod:`ferlib.augment.experiment` - the chapter's Table I experiment and widgets
  (imported on demand: ``from ferlib.augment import experiment``).

The VAE-GAN itself is :mod:`ferlib.models.vaegan`; DAN is :mod:`ferlib.models.dan`.
"""
from ferlib.augment.dataset import (BatchReplacement, LatentAugmentation, MatchedResampling,
                                    augment_batch, clean_epochs_from, replacement_rows,
                                    resample_batch)
from ferlib.augment.latent import (SAMPLING_METHODS, SHRINKAGE, ClassLatentStats, class_latent_stats,
                                   check_covariance, matrix_sqrt, sample_latent)

__all__ = ["ClassLatentStats", "class_latent_stats", "sample_latent", "matrix_sqrt", "check_covariance",
           "SAMPLING_METHODS", "SHRINKAGE", "LatentAugmentation", "augment_batch",
           "clean_epochs_from", "BatchReplacement", "MatchedResampling", "replacement_rows",
           "resample_batch"]
