"""Analytic Hierarchy Model (Zhang & Dong): judgment matrices, priority vectors, consistency
ratios and the semantic prototypes built from action units (chapter
notebooks/03_ahm_semantic_space).

* :mod:`ferlib.methods.ahm.ahp` and :mod:`ferlib.methods.ahm.hierarchy` - the AHP and the
  expression hierarchy (re-exported here; judgment matrices in ``judgments.json`` beside them);
* :mod:`ferlib.methods.ahm.sae` - the semantic autoencoder that maps CNN features onto these
  prototypes;
* :mod:`ferlib.methods.ahm.experiment`, :mod:`ferlib.methods.ahm.plots`,
  :mod:`ferlib.methods.ahm.widgets` - the chapter's experiment, figures and editors (imported
  on demand).
"""
from ferlib.methods.ahm.ahp import (CR_THRESHOLD, METHODS, RANDOM_INDEX, SAATY_SCALE,
                                   ConsistencyWarning, check_judgment_matrix, consistency_ratio,
                                   format_judgment, is_reciprocal, lambda_max, make_reciprocal,
                                   parse_judgment, priority_vector)
from ferlib.methods.ahm.hierarchy import (DEFAULT_JUDGMENTS, MODES, PAPER_AUS, ExpressionNode,
                                         Hierarchy, load_hierarchy, paper_table2,
                                         semantic_columns, semantic_prototypes)

__all__ = ["CR_THRESHOLD", "METHODS", "RANDOM_INDEX", "SAATY_SCALE", "ConsistencyWarning",
           "check_judgment_matrix", "consistency_ratio", "format_judgment", "is_reciprocal",
           "lambda_max", "make_reciprocal", "parse_judgment", "priority_vector",
           "DEFAULT_JUDGMENTS", "MODES", "PAPER_AUS", "ExpressionNode", "Hierarchy",
           "load_hierarchy", "paper_table2", "semantic_columns", "semantic_prototypes"]
