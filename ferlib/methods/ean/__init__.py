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
from ferlib.methods.ean.invariant import (InvariantBackbone, InvariantConfig, InvariantLoss,
                                          build_invariant)
from ferlib.methods.ean.model import (ADJACENCY_MODES, DEFAULT_ALPHA, DEFAULT_TAU1, DEFAULT_TAU2,
                                      EAN, GCN, NORMALIZATIONS, EANConfig, EANLoss, GCNLayer,
                                      adj_loss, adjacency, build_ean, check_thresholds,
                                      cosine_similarity_matrix, ean_loss_fn, ean_predict_batch,
                                      ean_predict_single, graph_active, hard_adjacency,
                                      label_mask, normalized_adjacency, soft_adjacency)
from ferlib.methods.ean.scn import SCN, SCNConfig, SCNLoss, build_scn

__all__ = [
    "cosine_similarity_matrix", "check_thresholds", "adjacency", "hard_adjacency",
    "soft_adjacency", "label_mask", "adj_loss", "normalized_adjacency", "GCNLayer", "GCN",
    "EANConfig", "EAN", "build_ean", "graph_active", "EANLoss", "ean_loss_fn",
    "ean_predict_batch", "ean_predict_single", "ADJACENCY_MODES", "NORMALIZATIONS",
    "DEFAULT_TAU1", "DEFAULT_TAU2", "DEFAULT_ALPHA",
    "InvariantConfig", "InvariantBackbone", "InvariantLoss", "build_invariant",
    "SCNConfig", "SCN", "SCNLoss", "build_scn",
]
