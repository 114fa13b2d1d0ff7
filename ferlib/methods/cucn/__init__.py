"""CUCN (Fan et al., "Combating Uncertainty and Class Imbalance in Facial Expression
Recognition", 2022): class weights, CBAM and relative-uncertainty feature mixing (chapter
notebooks/06_uncertainty_and_imbalance).

* :mod:`ferlib.methods.cucn.model` - class weights, relative uncertainty, feature mixing, the
  weighted and mixing losses and the CUCN model;
* :mod:`ferlib.methods.cucn.experiment` - the chapter's Table 2 ladder, noise study and widgets
  (imported on demand: ``from ferlib.methods.cucn import experiment``).
"""
from ferlib.methods.cucn.model import (CLASS_WEIGHT_METHODS, CUCN, CUCNConfig, CUCNLoss,
                                       MixOutput, build_cucn, check_class_weight, class_weights,
                                       cucn_loss_fn, cucn_resnet18, mix_features, mixing_loss,
                                       mixing_weights, predict_fn, relative_uncertainty,
                                       resolve_class_weights, weighted_cross_entropy)

__all__ = [
    "CLASS_WEIGHT_METHODS", "class_weights", "resolve_class_weights",
    "relative_uncertainty", "mixing_weights", "mix_features",
    "weighted_cross_entropy", "mixing_loss", "check_class_weight",
    "CUCNConfig", "CUCN", "MixOutput", "build_cucn", "cucn_resnet18",
    "cucn_loss_fn", "CUCNLoss", "predict_fn",
]
