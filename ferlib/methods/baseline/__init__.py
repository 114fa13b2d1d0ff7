"""The baseline: the plain cross-entropy classifier every chapter compares against (chapter
notebooks/02_baseline).

* :mod:`ferlib.methods.baseline.experiment` - ``train_baseline`` and ``load_or_train_baseline``
  (train once, write the record and the backbone, reuse them in later chapters);
* ``python -m ferlib.methods.baseline`` - the command line (also under ``torchrun``, see
  :mod:`ferlib.train.ddp`).
"""
from ferlib.methods.baseline.experiment import (BaselineRun, baseline_method,
                                                build_baseline_model, load_or_train_baseline,
                                                train_baseline)

__all__ = ["train_baseline", "load_or_train_baseline", "build_baseline_model", "baseline_method",
           "BaselineRun"]
