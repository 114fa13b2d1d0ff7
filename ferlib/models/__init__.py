"""The shared models of the core: backbones and CBAM (notebooks/02_baseline,
notebooks/06_uncertainty_and_imbalance). Each method's own model lives in its package under
:mod:`ferlib.methods` (e.g. ``from ferlib.methods.cucn import CUCN``)."""
from ferlib.models.backbones import (BACKBONES, STEMS, BackboneConfig, CBAMBasicBlock,
                                     CBAMBottleneck, FERResNet, LoadReport, SmallCNN,
                                     build_backbone, default_stem, extract_state_dict,
                                     load_backbone, load_checkpoint, resnet18, resnet34, resnet50,
                                     resnet101, save_backbone, small_cnn)
from ferlib.models.cbam import CBAM

__all__ = ["BACKBONES", "STEMS", "BackboneConfig", "CBAM", "CBAMBasicBlock", "CBAMBottleneck",
           "FERResNet", "LoadReport", "SmallCNN", "build_backbone", "default_stem",
           "extract_state_dict", "load_backbone", "load_checkpoint", "resnet18", "resnet34",
           "resnet50", "resnet101", "save_backbone", "small_cnn"]
