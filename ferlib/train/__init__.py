"""Training engine, evaluation, feature extraction and the baseline run (chapter 02_baseline).

``fit`` / ``evaluate`` (:mod:`ferlib.train.engine`), ``extract_features``
(:mod:`ferlib.train.features`), ``set_seed`` (:mod:`ferlib.train.seed`), epoch-seeded
shardable samplers (:mod:`ferlib.train.samplers`), torchrun support (:mod:`ferlib.train.ddp`,
``python -m ferlib.train``) and the baseline classifier of every chapter
(:mod:`ferlib.train.baseline`).
"""
from ferlib.train.engine import (CHECKPOINT_NAME, SCALAR_METRICS, FitResult, IndexedDataset,
                                 default_loss, evaluate, fit, unwrap_model)
from ferlib.train.features import dataset_hash, extract_features, model_hash
from ferlib.train.samplers import DistributedClassBalancedSampler, class_balanced_weights
from ferlib.train.seed import set_seed

__all__ = ["fit", "evaluate", "FitResult", "IndexedDataset", "default_loss", "unwrap_model",
           "CHECKPOINT_NAME", "SCALAR_METRICS", "extract_features", "model_hash", "dataset_hash",
           "DistributedClassBalancedSampler", "class_balanced_weights", "set_seed",
           "train_baseline", "load_or_train_baseline"]


def __getattr__(name):  # the baseline pulls in models/data/records; import it on first use
    if name in ("train_baseline", "load_or_train_baseline"):
        from ferlib.train import baseline
        return getattr(baseline, name)
    raise AttributeError(f"module 'ferlib.train' has no attribute {name!r}")
