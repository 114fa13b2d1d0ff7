"""Analytic Hierarchy Model (Zhang & Dong): judgment matrices, priority vectors, consistency
ratios and the semantic prototypes built from action units (chapter
notebooks/03_ahm_semantic_space). The semantic autoencoder that maps CNN features onto these
prototypes is :mod:`ferlib.sae`.
"""
from ferlib.ahm.ahp import (CR_THRESHOLD, METHODS, RANDOM_INDEX, SAATY_SCALE, ConsistencyWarning,
                            check_judgment_matrix, consistency_ratio, format_judgment,
                            is_reciprocal, lambda_max, make_reciprocal, parse_judgment,
                            priority_vector)
from ferlib.ahm.hierarchy import (DEFAULT_JUDGMENTS, MODES, PAPER_AUS, ExpressionNode, Hierarchy,
                                  load_hierarchy, paper_table2, semantic_columns,
                                  semantic_prototypes)

__all__ = ["CR_THRESHOLD", "METHODS", "RANDOM_INDEX", "SAATY_SCALE", "ConsistencyWarning",
           "check_judgment_matrix", "consistency_ratio", "format_judgment", "is_reciprocal",
           "lambda_max", "make_reciprocal", "parse_judgment", "priority_vector",
           "DEFAULT_JUDGMENTS", "MODES", "PAPER_AUS", "ExpressionNode", "Hierarchy",
           "load_hierarchy", "paper_table2", "semantic_columns", "semantic_prototypes"]
