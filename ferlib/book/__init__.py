"""The book's machinery: what executes the chapters, builds the site and checks it; no method
imports it and nothing here is needed to train a model.

* :mod:`ferlib.book.runner` - the book runner (``python -m ferlib.book``, console script
  ``ferlib-book``): papermill execution of every chapter, then the Jupyter Book site. Its public
  names are re-exported here, so ``ferlib.book.run_book``, ``ferlib.book.SMOKE_CELL_TIMEOUT``,
  ... keep working;
* :mod:`ferlib.book.scoreboard` - the reproduction scoreboard page
  (``python -m ferlib.book.scoreboard``); the papers' claims it reads are :mod:`ferlib.claims`;
* :mod:`ferlib.book.sitecheck` - the rendered site's check (``python -m ferlib.book.sitecheck``);
* :mod:`ferlib.book.npm` - fetching MathJax from the npm registry.

Importing this package needs the book's tools (``pip install 'ferlib[book]'``).
"""
from ferlib.book.runner import (INJECTED_TAG, MATHJAX_ENTRY, MATHJAX_PARTS, MATHJAX_VERSION,
                                NOTEBOOK_DIR, PROG, REQUIRED_PARAMETERS, ROOT_FROM_CWD,
                                ROOT_FROM_INSTALL, ROOT_FROM_OPTION, SMOKE_CELL_TIMEOUT,
                                BookError, RunConfig, SweepConfig, build_parser,
                                build_site, build_sweep_parser, cache_key, cell_id,
                                clean_for_commit, declared_parameters, ferlib_dir, find_root,
                                git_commit, is_cell_timeout, kernel_environment,
                                local_mathjax, locate_root, main, notebook_parameters,
                                pair_in_sync, parameters_note, parse_grid, parse_value,
                                run_book, run_sweep, select_notebooks, serve_mathjax,
                                show_parameters_once, stage_source, sync_pair, toc_entries,
                                toc_notebooks, tree_hash, validate)

__all__ = ["BookError", "find_root", "locate_root", "toc_entries", "toc_notebooks", "parse_value",
           "tree_hash", "cache_key", "sync_pair", "pair_in_sync", "declared_parameters",
           "clean_for_commit", "show_parameters_once", "local_mathjax", "serve_mathjax",
           "run_book", "run_sweep", "main",
           "INJECTED_TAG", "MATHJAX_ENTRY", "MATHJAX_PARTS", "MATHJAX_VERSION", "NOTEBOOK_DIR",
           "PROG", "REQUIRED_PARAMETERS", "ROOT_FROM_CWD", "ROOT_FROM_INSTALL", "ROOT_FROM_OPTION",
           "SMOKE_CELL_TIMEOUT", "RunConfig", "SweepConfig", "build_parser", "build_site",
           "build_sweep_parser", "cell_id", "ferlib_dir", "git_commit", "is_cell_timeout",
           "kernel_environment", "notebook_parameters", "parameters_note", "parse_grid",
           "select_notebooks", "stage_source", "validate"]
