"""EAN (Du et al.): a graph over each mini-batch, regularised by the labels and classified by a
GCN, for facial expressions with noisy labels (chapter notebooks/05_adjacency_threshold_tuning).

* :mod:`ferlib.methods.ean.model` - Eq. 3-8: similarity, thresholded adjacency, Adj_loss, GCN;
* :mod:`ferlib.methods.ean.invariant` - the invariant feature generator and its nuisance
  discriminators (the paper's ablation);
* :mod:`ferlib.methods.ean.scn` - SCN (Wang et al., CVPR 2020), the reference the chapter sets
  beside EAN;
* :mod:`ferlib.methods.ean.experiment` - the chapter's threshold sweep, noisy-label experiment
  and widgets (imported on demand: ``from ferlib.methods.ean import experiment``).
"""
from ferlib.methods.ean import model
from ferlib.methods.ean.invariant import (InvariantBackbone, InvariantConfig, InvariantLoss,
                                          build_invariant)
from ferlib.methods.ean.model import *  # noqa: F401,F403 (Eq. 3-8's public names)
from ferlib.methods.ean.scn import SCN, SCNConfig, SCNLoss, build_scn

__all__ = [*model.__all__, "InvariantConfig", "InvariantBackbone", "InvariantLoss",
           "build_invariant", "SCNConfig", "SCN", "SCNLoss", "build_scn"]
