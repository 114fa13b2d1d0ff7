"""Training engine, evaluation and feature extraction (chapter 02_baseline).

``fit`` / ``evaluate`` (:mod:`ferlib.train.engine`), ``extract_features``
(:mod:`ferlib.train.features`), ``set_seed`` (:mod:`ferlib.train.seed`), epoch-seeded
shardable samplers (:mod:`ferlib.train.samplers`), torchrun support (:mod:`ferlib.train.ddp`)
and the one writer of training records (:mod:`ferlib.train.recording`). The baseline classifier
of every chapter and its command line are a method: :mod:`ferlib.methods.baseline`.
"""
from ferlib.train.engine import (CHECKPOINT_NAME, SCALAR_METRICS, FitResult, IndexedDataset,
                                 default_loss, evaluate, fit, unwrap_model)
from ferlib.train.features import dataset_hash, extract_features, model_hash
from ferlib.train.samplers import DistributedClassBalancedSampler, class_balanced_weights
from ferlib.train.seed import set_seed

__all__ = ["fit", "evaluate", "FitResult", "IndexedDataset", "default_loss", "unwrap_model",
           "CHECKPOINT_NAME", "SCALAR_METRICS", "extract_features", "model_hash", "dataset_hash",
           "DistributedClassBalancedSampler", "class_balanced_weights", "set_seed"]

