"""ferlib: the thin library behind the research book on facial expression
recognition with long-tailed and noisy data.

Subpackages follow the book's chapters: ``ferlib.data`` (chapter 01_data),
``ferlib.models`` and ``ferlib.train`` (02_baseline), ``ferlib.ahm`` and
``ferlib.sae`` (03_ahm_semantic_space), ``ferlib.augment`` (04), and the
method modules in ``ferlib.models`` (05, 06).
"""

__version__ = "0.1.0"
