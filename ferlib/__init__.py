"""ferlib: the thin library behind the research book on facial expression
recognition with long-tailed and noisy data.

Three layers, each importing only the ones above it in this list:

* **the shared core** - ``ferlib.config``, ``ferlib.data`` (chapter 01_data), ``ferlib.train``
  and ``ferlib.models`` (shared backbones and CBAM; 02_baseline), ``ferlib.metrics``,
  ``ferlib.stats``, ``ferlib.plots``, ``ferlib.records``, ``ferlib.checkpoint`` and
  ``ferlib.claims`` (the papers' claimed numbers). It imports nothing from the methods or the
  book's machinery;
* **the methods** - one package per paper under ``ferlib.methods``: ``baseline`` (02),
  ``ahm`` (03), ``latent_aug`` and ``dan`` (04), ``ean`` (05), ``cucn`` (06); then
  ``ferlib.compare`` (07), the registry that runs them all;
* **the book's machinery** - ``ferlib.book``: the runner (``python -m ferlib.book``,
  ``ferlib-book``), the scoreboard, the site check. No method imports it.

``tests/test_layout.py`` checks these rules.
"""

__version__ = "0.1.0"

#: what ``import ferlib`` reaches as attributes (``ferlib.methods.ean``, ``ferlib.compare``), each
#: imported on first use so that ``import ferlib`` itself stays cheap
SUBPACKAGES = ("config", "data", "train", "models", "metrics", "stats", "plots", "records",
               "checkpoint", "claims", "methods", "compare", "book")


def __getattr__(name):
    if name in SUBPACKAGES:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
