"""CUCN (Fan et al., "Combating Uncertainty and Class Imbalance in Facial Expression
Recognition", 2022): class weights, CBAM and relative-uncertainty feature mixing (chapter
notebooks/06_uncertainty_and_imbalance).

* :mod:`ferlib.methods.cucn.model` - class weights, relative uncertainty, feature mixing, the
  weighted and mixing losses and the CUCN model;
* :mod:`ferlib.methods.cucn.experiment` - the chapter's Table 2 ladder, noise study and widgets
  (imported on demand: ``from ferlib.methods.cucn import experiment``).
"""
from ferlib.methods.cucn import model
from ferlib.methods.cucn.model import *  # noqa: F401,F403 (the model's public names)

__all__ = list(model.__all__)
