"""The book runner: execute every chapter with papermill, then build the site with Jupyter Book.

``python -m ferlib.book`` (console script ``ferlib-book``; see notebooks/00_introduction,
"How to run the book", and README.md)::

    ferlib-book --profile smoke                        # every chapter of _toc.yml, then the site
    ferlib-book --profile full --device cuda --dataset fer2013 --data-root ../shared/data/fer2013
    ferlib-book --only 05_adjacency_threshold_tuning -p top_k 3 --no-build
    ferlib-book --profile smoke --update-committed     # refresh the outputs of notebooks/*.ipynb
    ferlib-book sweep 05_adjacency_threshold_tuning --grid threshold=0.3,0.5,0.7 --gpus 0,1

Why a runner: Jupyter Book's own execution cannot pass parameters, so the book is executed here
with papermill (``profile``, ``device`` and the other parameters-cell names are injected) and
Jupyter Book renders the executed copies without executing them again
(``execute_notebooks: "off"`` in ``_config.yml``). A ``--profile cpu`` run thus yields a book of
that profile, while the parameters-cell defaults stay the fast ``smoke`` profile for anyone who
runs a notebook by hand.

Pairs: ``notebooks/NN_name.py`` (Jupytext py:percent) is the source of truth. Before executing,
the runner *syncs* ``NN_name.ipynb`` from it: cell sources and tags come from the ``.py``, outputs
of unchanged cells are kept (``jupytext --update``). ``tests/test_foundation.py`` fails when a
committed pair is out of sync, so CI catches a ``.py`` edit whose ``.ipynb`` was not refreshed.

Layout of ``_build`` (never committed):

- ``_build/executed/<profile>/notebooks/NAME.ipynb``: executed copies (cwd = ``notebooks/``);
- ``_build/executed/<profile>/cache.json``: execution cache. A notebook is skipped when the key
  made of its ``.py`` source, the whole ``ferlib`` source tree, ``book/records``, ``pyproject.toml``,
  ``constraints.txt``, the Python version, the kernel and the parameters equals that of its last successful run, so
  a change to ``ferlib`` re-executes every chapter. ``--force`` ignores the cache;
- ``_build/executed/<profile>/run-log.json``: notebook, status, seconds, parameters, git commit;
- ``_build/src``: the staged book source (``_config.yml``, ``_toc.yml``, ``book/`` and the
  executed ``.ipynb`` only: no ``.py`` twin can ever become a second source of a chapter). There
  papermill's injected-parameters cell is tagged ``remove-cell`` and followed by a one-line note
  of the values it set, so a page shows one parameters cell; the executed copies keep it;
- ``_build/vendor/mathjax-<version>``: MathJax, fetched once from the npm registry (``npm pack``)
  and served with the site (``_static/mathjax``); without npm the pages load it from its CDN;
- ``_build/html/index.html``: the site, built with ``jupyter-book build -W -n --keep-going``;
- ``_build/sweeps/<notebook>/<cell-id>.ipynb`` (+ ``.done``): ``sweep`` results.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import hashlib
import itertools
import json
import multiprocessing
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

try:
    import yaml
except ImportError as err:  # the thin library: the runner is the [book] extra
    raise ImportError("the book runner needs the book's tools: pip install 'ferlib[book]' "
                      "(or `make setup` in the repository)") from err

from ferlib.config import PROFILES, DEVICES, get_profile, resolve_device

__all__ = ["BookError", "find_root", "locate_root", "toc_entries", "toc_notebooks", "parse_value",
           "tree_hash", "cache_key", "sync_pair", "pair_in_sync", "declared_parameters",
           "clean_for_commit", "show_parameters_once", "local_mathjax", "serve_mathjax",
           "run_book", "run_sweep", "main"]

PROG = "ferlib-book"
NOTEBOOK_DIR = "notebooks"
#: Parameters every chapter's parameters cell must define (see DESIGN.md).
REQUIRED_PARAMETERS = ("profile", "device")
#: Files that never count as ferlib source when hashing the tree for the cache key.
_HASH_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
_HASH_SKIP_SUFFIXES = (".pyc", ".pyo")


class BookError(Exception):
    """A user-facing error of the runner: printed as ``ferlib-book: error: ...``, exit code 2."""


# ----------------------------------------------------------------------------------------------
# Table of contents
# ----------------------------------------------------------------------------------------------

ROOT_FROM_OPTION = "--root"
ROOT_FROM_CWD = "the working directory"
ROOT_FROM_INSTALL = "the repository ferlib is installed from: no _toc.yml in the working directory"


def locate_root(start: str | Path | None = None) -> tuple[Path, str]:
    """``(root, how it was found)``: ``start`` (``--root``) if given, else the working directory
    if it holds ``_toc.yml``, else the folder above the ``ferlib`` package (an editable install
    run from elsewhere); ``how`` is one of ROOT_FROM_OPTION / ROOT_FROM_CWD / ROOT_FROM_INSTALL."""
    if start is not None:
        candidates = [(Path(start), ROOT_FROM_OPTION)]
    else:
        candidates = [(Path.cwd(), ROOT_FROM_CWD),
                      (Path(__file__).resolve().parents[2], ROOT_FROM_INSTALL)]
    for c, how in candidates:
        if (c / "_toc.yml").is_file():
            return c.resolve(), how
    raise BookError(f"no _toc.yml in {candidates[0][0].resolve()}: run from the book's root "
                    "(the folder with _config.yml and _toc.yml) or pass --root")


def find_root(start: str | Path | None = None) -> Path:
    """The book's root (see :func:`locate_root`)."""
    return locate_root(start)[0]


def _refuse_committed_write(root: Path, what: str) -> BookError:
    return BookError(
        f"{what} would rewrite committed files of {root}, which was found as {ROOT_FROM_INSTALL} "
        f"({Path.cwd()}). Run from that folder, or pass --root {root} to confirm.")


def toc_entries(root: str | Path) -> list[str]:
    """Every document of ``_toc.yml`` in reading order, root first (e.g. ``book/index``,
    ``notebooks/00_introduction``), without file extensions."""
    path = Path(root) / "_toc.yml"
    try:
        toc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BookError(f"cannot read {path}: {exc}") from None
    if not isinstance(toc, dict) or "root" not in toc:
        raise BookError(f"{path}: expected a jb-book table of contents with a 'root' entry")
    entries = [toc["root"]]

    def walk(items):
        for item in items or []:
            if "file" in item:
                entries.append(item["file"])
            walk(item.get("sections"))

    for part in toc.get("parts") or []:
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [str(Path(e).with_suffix("")) if Path(e).suffix in (".md", ".ipynb") else str(e)
            for e in entries]


def toc_parts(root: str | Path) -> list[list[str]]:
    """The ``notebooks/`` chapters of ``_toc.yml`` grouped by part, parts in order (a toc
    without parts: one group). A chapter that does not say what it reads
    (:func:`chapter_plan`) is taken to read what every chapter of the earlier parts wrote."""
    path = Path(root) / "_toc.yml"
    toc = yaml.safe_load(path.read_text()) or {}
    groups = [part.get("chapters") for part in toc.get("parts") or []] or [toc.get("chapters")]
    out = []
    for chapters in groups:
        names = [Path(str(item["file"])).with_suffix("").name for item in chapters or []
                 if "file" in item and Path(str(item["file"])).parent.as_posix() == NOTEBOOK_DIR]
        if names:
            out.append(names)
    return out


def earlier_parts(root: str | Path) -> dict[str, list[str]]:
    """Each ``notebooks/`` chapter of the toc -> the chapters of the parts before its own: what
    it reads unless it says otherwise (:func:`chapter_plan`)."""
    parts = toc_parts(root)
    return {name: sum(parts[:i], []) for i, part in enumerate(parts) for name in part}


def toc_notebooks(root: str | Path) -> list[str]:
    """Names (``00_introduction`` ...) of the ``notebooks/`` chapters of ``_toc.yml``, in order."""
    return [Path(e).name for e in toc_entries(root)
            if Path(e).parent.as_posix() == NOTEBOOK_DIR]


def _normalise_name(name: str) -> str:
    """``notebooks/05_x.py`` / ``05_x.ipynb`` / ``05_x`` -> ``05_x``."""
    p = Path(name)
    return p.stem if p.suffix in (".py", ".ipynb") else p.name


def select_notebooks(root: Path, only: Sequence[str] | None) -> list[str]:
    """The toc notebooks to run: all of them, or the ``--only`` selection (in toc order). A name
    that is not in the toc is an error listing the valid names; without ``--only`` every toc
    notebook must exist as ``notebooks/NAME.py``."""
    names = toc_notebooks(root)
    if only:
        wanted = [_normalise_name(n) for n in only]
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise BookError(f"notebook(s) not in _toc.yml: {', '.join(unknown)}; "
                            f"valid names: {', '.join(names)}")
        selected = [n for n in names if n in wanted]
    else:
        selected = names
    missing = [n for n in selected if not (root / NOTEBOOK_DIR / f"{n}.py").is_file()]
    if missing:
        hint = "" if only else " (use --only to run a subset while chapters are being written)"
        raise BookError("_toc.yml lists notebook(s) whose source is missing: "
                        + ", ".join(f"{NOTEBOOK_DIR}/{n}.py" for n in missing) + hint)
    return selected


# ----------------------------------------------------------------------------------------------
# Parameters, hashing, cache
# ----------------------------------------------------------------------------------------------

def parse_value(text: str) -> Any:
    """A ``-p name value`` value, parsed as YAML like ``papermill -y`` does: ``3`` -> int,
    ``0.5`` -> float, ``true`` -> bool, ``null`` -> None, ``[1, 2]`` -> list, else the string."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree_hash(folder: str | Path) -> str:
    """SHA-256 over the relative paths and bytes of every file below ``folder`` (caches and
    bytecode skipped). A missing folder hashes as empty."""
    folder = Path(folder)
    h = hashlib.sha256()
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if (not path.is_file() or _HASH_SKIP_DIRS.intersection(rel.parts)
                    or path.suffix in _HASH_SKIP_SUFFIXES or rel.parts[0].endswith(".egg-info")):
                continue
            h.update(rel.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def ferlib_dir() -> Path:
    """The ``ferlib`` package folder whose source the notebooks import (this file is
    ``ferlib/book/runner.py``)."""
    return Path(__file__).resolve().parents[1]


def cache_key(notebook_source: str | bytes, params: dict, *, ferlib_hash: str,
              records_hash: str = "", env_hash: str = "", kernel: str = "python3") -> str:
    """Key of one execution: changes when the notebook, ferlib, the records, the environment,
    the kernel or any parameter changes."""
    if isinstance(notebook_source, str):
        notebook_source = notebook_source.encode()
    payload = {"notebook": _sha(notebook_source), "ferlib": ferlib_hash, "records": records_hash,
               "env": env_hash, "kernel": kernel,
               "parameters": json.loads(json.dumps(params, sort_keys=True, default=str))}
    return _sha(json.dumps(payload, sort_keys=True).encode())


def _env_hash(root: Path) -> str:
    """The declared environment: pyproject.toml (ranges, extras), constraints.txt (the pins)
    and the Python version."""
    data = b"".join((root / name).read_bytes() if (root / name).is_file() else b""
                    for name in ("pyproject.toml", "constraints.txt"))
    return _sha(data + sys.version.encode())


def _load_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)


def git_commit(root: Path) -> str | None:
    """``HEAD`` of the book's repository, with ``+dirty`` when the work tree has changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


# ----------------------------------------------------------------------------------------------
# Jupytext pairs
# ----------------------------------------------------------------------------------------------

def _cell_signature(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source.strip("\n"), tuple(c.metadata.get("tags") or ()))
            for c in nb.cells]


def pair_in_sync(py_path: str | Path, ipynb_path: str | Path | None = None) -> bool:
    """True when the ``.ipynb`` has the cells (types, sources, tags) of the ``.py``."""
    import jupytext

    py_path = Path(py_path)
    ipynb_path = Path(ipynb_path) if ipynb_path else py_path.with_suffix(".ipynb")
    if not ipynb_path.is_file():
        return False
    return _cell_signature(jupytext.read(py_path)) == _cell_signature(jupytext.read(ipynb_path))


def sync_pair(py_path: str | Path) -> tuple[Path, bool]:
    """Write ``NAME.ipynb`` from ``NAME.py`` when their cells differ, keeping the outputs of
    unchanged cells (``jupytext --update --to ipynb``). Returns (ipynb path, whether written)."""
    import jupytext
    from jupytext.combine import combine_inputs_with_outputs

    py_path = Path(py_path)
    ipynb_path = py_path.with_suffix(".ipynb")
    if pair_in_sync(py_path, ipynb_path):
        return ipynb_path, False
    nb = jupytext.read(py_path)
    if ipynb_path.is_file():
        nb = combine_inputs_with_outputs(nb, jupytext.read(ipynb_path), fmt="ipynb")
    jupytext.write(nb, ipynb_path)
    return ipynb_path, True


def declared_parameters(ipynb_path: str | Path) -> dict[str, Any]:
    """Names and defaults of the notebook's ``parameters`` cell (``papermill.inspect_notebook``)."""
    import papermill

    info = papermill.inspect_notebook(str(ipynb_path))
    return {name: spec.get("default") for name, spec in info.items()}


@dataclass(frozen=True)
class ChapterPlan:
    """What the runner needs to schedule one chapter (:func:`chapter_plan`)."""

    reads: tuple[str, ...]      # chapters whose output (records, a trained baseline) it reuses
    seconds: float              # its smoke run's wall time on the 2-core machine: a first run's
    #                             ordering hint (later runs use the time of the last run)


def chapter_plan(py_path: str | Path, earlier: Sequence[str]) -> ChapterPlan:
    """The ``ferlib`` entry of a chapter's notebook metadata, read from the ``jupyter:`` header
    of its ``.py`` (the source of truth)::

        #   ferlib:
        #     reads: [02_baseline]   # chapters it must run after: it reuses what they wrote
        #     seconds: 270           # smoke run time; orders a first run (no cache yet)

    Without ``reads``, the chapter reads every chapter of ``earlier`` (the earlier toc parts).
    A name in ``reads`` must be one of ``earlier``, so the order is the book's and has no cycle.
    Two chapters that both train a missing baseline would each write it: ``reads`` is what
    keeps them apart, and a missing entry costs time (a second training), never a wrong record.
    """
    import jupytext

    meta = jupytext.read(py_path).metadata.get("ferlib") or {}
    where = f"{py_path}: metadata ferlib"
    if not isinstance(meta, dict):
        raise BookError(f"{where} must be a mapping (reads, seconds), got {meta!r}")
    unknown = sorted(set(meta) - {"reads", "seconds"})
    if unknown:
        raise BookError(f"{where} has unknown key(s) {', '.join(unknown)}: use reads, seconds")
    reads = meta.get("reads", list(earlier))
    if not isinstance(reads, list) or not all(isinstance(r, str) for r in reads):
        raise BookError(f"{where}.reads must be a list of chapter names, got {reads!r}")
    wrong = [r for r in reads if r not in earlier]
    if wrong:
        raise BookError(f"{where}.reads names {', '.join(wrong)}: a chapter may read only "
                        f"chapters of earlier toc parts ({', '.join(earlier) or 'none'})")
    seconds = meta.get("seconds", 0.0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise BookError(f"{where}.seconds must be a number >= 0, got {seconds!r}")
    return ChapterPlan(tuple(reads), float(seconds))


def critical_paths(reads: dict[str, Sequence[str]], seconds: dict[str, float]) -> dict[str, float]:
    """Each chapter's time plus the longest chain of chapters that must wait for it: the
    runner starts the ready chapter with the longest one first, so the book ends about as
    early as its ``--jobs`` workers allow (list scheduling by critical path)."""
    waiting = {name: [m for m, deps in reads.items() if name in deps] for name in reads}
    memo: dict[str, float] = {}

    def longest(name: str) -> float:
        if name not in memo:
            memo[name] = seconds.get(name, 0.0) + max(map(longest, waiting[name]), default=0.0)
        return memo[name]

    return {name: longest(name) for name in reads}


def clean_for_commit(nb):
    """An executed notebook as it is committed: papermill's injected-parameters cell and its
    per-cell timing metadata removed, so the cells equal the ``.py`` again (see --update-committed)."""
    nb.cells = [c for c in nb.cells if "injected-parameters" not in (c.metadata.get("tags") or [])]
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if not cell.metadata.get("tags"):
            cell.metadata.pop("tags", None)
    nb.metadata.pop("papermill", None)
    return nb


# ----------------------------------------------------------------------------------------------
# Kernel and environment
# ----------------------------------------------------------------------------------------------

@contextlib.contextmanager
def kernel_environment(root: Path, kernel: str, jobs: int = 1) -> Iterator[dict[str, str]]:
    """Environment for the kernels: ``python3`` is pinned to *this* interpreter (a kernelspec
    under ``_build/kernels`` put first on ``JUPYTER_PATH``), so a user-level ``python3`` spec
    pointing at another Python cannot be picked; ``MPLBACKEND`` is dropped so that figures are
    rendered inline (tests set it to Agg). With ``jobs`` kernels side by side, each gets an
    equal share of the CPU cores as its thread count (``OMP_NUM_THREADS``, unless already
    set), so they do not fight over the cores. Yields the environment dict; ``os.environ``
    is restored afterwards."""
    saved = dict(os.environ)
    env = dict(os.environ)
    if jobs > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, available_cpus() // jobs))
    env.pop("MPLBACKEND", None)
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    if kernel == "python3":
        spec_dir = root / "_build" / "kernels" / "kernels" / "python3"
        spec_dir.mkdir(parents=True, exist_ok=True)
        spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                         "--log-level=ERROR"],
                "display_name": "Python 3 (ferlib)", "language": "python",
                "metadata": {"debugger": False}}
        (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
        env["JUPYTER_PATH"] = os.pathsep.join(
            [str(root / "_build" / "kernels")] + [p for p in [saved.get("JUPYTER_PATH")] if p])
    try:
        os.environ.clear()
        os.environ.update(env)
        yield env
    finally:
        os.environ.clear()
        os.environ.update(saved)


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity mask, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # macOS, Windows
        return os.cpu_count() or 1


def default_jobs(profile: str) -> int:
    """``--jobs auto``: two chapters at a time for the smoke profile on a machine with at least
    two cores (its small CPU models use two threads poorly: two one-thread processes train 1.34
    times as many images per second as one two-thread process on the 2-core machine of
    tests/benchmarks/results/kernel_threads_cpu.md); one for the other profiles,
    whose runs fill a machine, or a GPU, on their own."""
    return min(2, available_cpus()) if profile == "smoke" else 1


def _check_kernel(kernel: str) -> None:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        names = ", ".join(sorted(KernelSpecManager().find_kernel_specs()))
        raise BookError(f"unknown kernel {kernel!r}: installed kernels are {names}") from None


# ----------------------------------------------------------------------------------------------
# Run configuration
# ----------------------------------------------------------------------------------------------

@dataclass
class RunConfig:
    root: Path
    profile: str = "smoke"
    device: str = "auto"
    dataset: str | None = None
    data_root: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    only: list[str] = field(default_factory=list)
    kernel: str = "python3"
    build: bool = True
    force: bool = False
    update_committed: bool = False
    keep_going: bool = False
    jobs: int = 1                 # notebooks executed side by side (each after what it reads)
    # False when the root was not named (--root) and is not the working directory: then no
    # committed file (notebooks/*.ipynb) is written there
    write_committed: bool = True


def _check_data_root(value: Any, origin: str) -> str:
    if value is None:
        return None
    path = Path(str(value)).expanduser()
    if not path.exists():
        raise BookError(f"data root {str(value)!r} ({origin}) does not exist: point it at the "
                        "folder holding the dataset (e.g. ../shared/data/fer2013 with "
                        "fer2013.csv.gz; see README.md, 'Real datasets')")
    return str(path.resolve())


def validate(cfg: RunConfig) -> None:
    """Check profile, device, dataset, data root and option combinations; raise BookError."""
    try:
        get_profile(cfg.profile)
        resolve_device(cfg.device)
    except ValueError as exc:
        raise BookError(str(exc)) from None
    if cfg.dataset is not None:
        from ferlib.data import DATASETS

        if cfg.dataset not in DATASETS:
            raise BookError(f"unknown dataset {cfg.dataset!r}: choose one of {', '.join(DATASETS)}")
    cfg.data_root = _check_data_root(cfg.data_root, "--data-root")
    if "data_root" in cfg.extra:
        cfg.extra["data_root"] = _check_data_root(cfg.extra["data_root"], "-p data_root")
    for name in ("profile", "device", "dataset"):
        if name in cfg.extra:
            raise BookError(f"pass {name} with --{name.replace('_', '-')}, not -p {name}")
    if cfg.update_committed:
        if not cfg.write_committed:
            raise _refuse_committed_write(cfg.root, "--update-committed")
        if cfg.profile != "smoke":
            raise BookError("--update-committed is only allowed with --profile smoke: the "
                            "committed notebooks carry the smoke outputs that nbval checks")
        if cfg.dataset or cfg.data_root or cfg.extra:
            raise BookError("--update-committed runs the parameters-cell defaults: drop "
                            "--dataset, --data-root and -p")
        if resolve_device(cfg.device).type != "cpu":
            raise BookError("--update-committed must run on the CPU (--device cpu): the "
                            "committed outputs are checked by nbval on CPU machines")


def notebook_parameters(cfg: RunConfig, declared: dict[str, Any]) -> dict[str, Any]:
    """What papermill injects into one notebook: profile and device always, dataset / data_root
    / ``-p`` extras only when its parameters cell defines them."""
    params = {"profile": cfg.profile, "device": cfg.device}
    if cfg.dataset is not None and "dataset" in declared:
        params["dataset"] = cfg.dataset
    if cfg.data_root is not None and "data_root" in declared:
        params["data_root"] = cfg.data_root
    params.update({k: v for k, v in cfg.extra.items() if k in declared})
    return params


# ----------------------------------------------------------------------------------------------
# Execution
# ----------------------------------------------------------------------------------------------

def _say(msg: str = "") -> None:
    # one write per line: worker processes (--jobs) share the console, and print() writes the
    # text and its newline separately, so two workers' lines could run together
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def _describe_failure(exc: Exception) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        first = next((ln for ln in (exc.source or "").splitlines() if ln.strip()), "")
        return (f"cell {exc.cell_index} (In [{exc.exec_count}]) raised {exc.ename}: "
                f"{exc.evalue}\n      cell starts: {first[:100]}")
    return f"{type(exc).__name__}: {exc}"


SMOKE_CELL_TIMEOUT = 300  # seconds; the longest smoke cell (chapter 06's ladder) takes about 150
#: seconds for a smoke cell tagged "widget" (it displays a widget, in well under a second): when
#: nbclient misses the kernel's reply to such a cell (jupyter/nbclient#312) it waits out the
#: cell's whole timeout, so these get a short one, and the notebook is run once more
WIDGET_CELL_TIMEOUT = 60


def smoke_cell_timeout(cell) -> int:
    """nbclient's ``timeout_func`` for the smoke profile: the timeout of one cell."""
    return WIDGET_CELL_TIMEOUT if "widget" in cell.get("metadata", {}).get("tags", []) \
        else SMOKE_CELL_TIMEOUT


def is_cell_timeout(exc: BaseException) -> bool:
    """True for nbclient's CellTimeoutError (a TimeoutError), however papermill passes it on."""
    return isinstance(exc, TimeoutError) or type(exc).__name__ == "CellTimeoutError"


def _execute(ipynb: Path, output: Path, params: dict, cfg: RunConfig) -> None:
    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    # a smoke cell that runs for 5 minutes is hung, not slow: fail it rather than the whole CI.
    # A cell that displays a widget can leave nbclient waiting for a reply that the idle kernel
    # already sent (jupyter/nbclient#312): such a timeout gets one more run of the notebook.
    for attempt in (1, 2):
        try:
            # the kernel starts in notebooks/ (nbclient's resources path) and this process
            # keeps its working directory (papermill's cwd= would chdir the whole process)
            papermill.execute_notebook(
                str(ipynb), str(output), parameters=params, kernel_name=cfg.kernel,
                language="python", resources={"metadata": {"path": str(cfg.root / NOTEBOOK_DIR)}},
                progress_bar=False, log_output=False, start_timeout=180,
                **({"timeout_func": smoke_cell_timeout} if cfg.profile == "smoke" else {}))
            return
        except Exception as exc:  # noqa: BLE001 - re-raised unless it is a first timeout
            if attempt == 2 or not is_cell_timeout(exc):
                raise
            _say(f"      {ipynb.stem}: a cell timed out; running the notebook once more")


def _execute_reported(ipynb: Path, output: Path, params: dict, cfg: RunConfig, label: str,
                      threads: int | None = None):
    """:func:`_execute`, returning ``(why, seconds)``: ``why`` None on success, else the failure
    in words (an exception as text: a papermill error does not survive pickling back from a
    worker process). Says when it starts: in a worker, that is when a core is free for it.
    ``threads``: the kernel's ``OMP_NUM_THREADS`` (a worker's own environment; None keeps it)."""
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    _say(f"{label}: running with {json.dumps(params)}"
         + ("" if threads is None else f" ({threads} thread{'s' * (threads != 1)})"))
    t0 = time.perf_counter()
    try:
        _execute(ipynb, output, params, cfg)
    except Exception as exc:  # noqa: BLE001 - reported with the cell that failed
        return _describe_failure(exc), time.perf_counter() - t0
    return None, time.perf_counter() - t0


def run_book(cfg: RunConfig) -> int:
    """Execute the selected notebooks, write cache and run log, then build the site.
    Returns the process exit code (0 ok, 1 a notebook or the build failed)."""
    import nbformat

    root = cfg.root
    validate(cfg)
    names = select_notebooks(root, cfg.only)
    _check_kernel(cfg.kernel)
    out_dir = root / "_build" / "executed" / cfg.profile
    nb_out = out_dir / NOTEBOOK_DIR
    cache_path, log_path = out_dir / "cache.json", out_dir / "run-log.json"
    cache = {} if cfg.force else _load_json(cache_path, {})
    # how long each notebook took last time (kept through --force): the order of --jobs
    last_seconds = {k: v.get("seconds", 0.0) for k, v in _load_json(cache_path, {}).items()}
    hashes = dict(ferlib_hash=tree_hash(ferlib_dir()),
                  records_hash=tree_hash(root / "book" / "records"),
                  env_hash=_env_hash(root), kernel=cfg.kernel)
    log = {"profile": cfg.profile, "device": cfg.device,
           "resolved_device": str(resolve_device(cfg.device)), "kernel": cfg.kernel,
           "python": sys.executable, "git_commit": git_commit(root),
           "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "only": cfg.only or None, "notebooks": [], "build": None}

    # Every user-given -p name must exist in at least one selected notebook (catches typos).
    declared_by, plans = {}, {}
    earlier_of = earlier_parts(root)
    for name in names:
        py = root / NOTEBOOK_DIR / f"{name}.py"
        if not cfg.write_committed and not pair_in_sync(py, py.with_suffix(".ipynb")):
            raise _refuse_committed_write(root, f"syncing {NOTEBOOK_DIR}/{name}.ipynb from its .py")
        ipynb, written = sync_pair(py)
        if written:
            _say(f"synced {NOTEBOOK_DIR}/{name}.ipynb from {name}.py")
        declared = declared_parameters(ipynb)
        missing = [p for p in REQUIRED_PARAMETERS if p not in declared]
        if missing:
            raise BookError(f"{NOTEBOOK_DIR}/{name}.py: its parameters cell (tagged "
                            f"'parameters') does not define {', '.join(missing)}")
        declared_by[name] = declared
        plans[name] = chapter_plan(py, earlier_of.get(name, []))
    for extra in cfg.extra:
        if not any(extra in d for d in declared_by.values()):
            raise BookError(f"parameter {extra!r} (-p) is not defined in the parameters cell of "
                            f"any selected notebook ({', '.join(names)})")
    for opt, value in (("dataset", cfg.dataset), ("data_root", cfg.data_root)):
        skipped = [n for n, d in declared_by.items() if value is not None and opt not in d]
        if skipped:
            _say(f"note: {', '.join(skipped)} take(s) no {opt}; it is not passed there")

    dev = resolve_device(cfg.device)
    _say(f"{PROG}: profile {cfg.profile}, device {cfg.device} ({dev}), kernel {cfg.kernel} "
         f"({sys.executable}), {len(names)} notebook(s)")
    failures, t_all = [], time.perf_counter()
    number = {name: i for i, name in enumerate(names, 1)}

    def start(name: str) -> tuple[dict, tuple | None]:
        """One notebook's run-log entry, and the arguments of its execution (None: cached)."""
        py = root / NOTEBOOK_DIR / f"{name}.py"
        ipynb, output = py.with_suffix(".ipynb"), nb_out / f"{name}.ipynb"
        params = notebook_parameters(cfg, declared_by[name])
        key = cache_key(py.read_bytes(), params, **hashes)
        entry = {"notebook": name, "parameters": params, "output": str(output.relative_to(root)),
                 "key": key}
        if cache.get(name, {}).get("key") == key and output.is_file():
            _say(f"{prefix(name)}: cached (unchanged since {cache[name].get('finished', '?')})")
            return {**entry, "status": "cached", "seconds": 0.0}, None
        return entry, (ipynb, output, params, cfg, prefix(name))

    def prefix(name: str) -> str:
        return f"[{number[name]}/{len(names)}] {name}"

    def report(entry: dict, why: str | None, seconds: float) -> dict:
        name, seconds = entry["notebook"], round(seconds, 2)
        if why is None:
            _say(f"{prefix(name)}: ok in {seconds:.1f} s")
            return {**entry, "status": "ok", "seconds": seconds}
        _say(f"{prefix(name)}: FAILED after {seconds:.1f} s: {why}\n"
             f"      partial output: {entry['output']}")
        return {**entry, "status": "failed", "seconds": seconds, "error": why}

    def settle(entry: dict) -> None:
        """Cache, run log and committed copy of one finished notebook (main thread only)."""
        name, key = entry["notebook"], entry.pop("key")
        if entry["status"] == "failed":
            cache.pop(name, None)
            failures.append((name, entry["error"]))
        elif entry["status"] == "ok":
            cache[name] = {"key": key, "seconds": entry["seconds"],
                           "finished": _dt.datetime.now().isoformat(timespec="seconds")}
        if cfg.update_committed and entry["status"] != "failed":
            nb = clean_for_commit(nbformat.read(root / entry["output"], as_version=4))
            nbformat.write(nb, root / NOTEBOOK_DIR / f"{name}.ipynb")
            _say(f"      updated committed {NOTEBOOK_DIR}/{name}.ipynb")
        log["notebooks"].append(entry)
        _write_json(log_path, log)
        _write_json(cache_path, cache)

    # a chapter waits only for the selected chapters it reads (chapter_plan); with --jobs the
    # ready chapter with the longest chain after it goes first (critical_paths), timed by the
    # last run, else by the chapter's own hint
    reads = {n: tuple(r for r in plans[n].reads if r in number) for n in names}
    priority = critical_paths(reads, {n: last_seconds.get(n) or plans[n].seconds for n in names})
    ok, failed = set(), set()

    def ready(name: str) -> bool:
        return all(r in ok for r in reads[name])

    def blocked(name: str) -> bool:
        return any(r in failed for r in reads[name])

    def finish(entry: dict) -> None:
        settle(entry)
        (failed if entry["status"] == "failed" else ok).add(entry["notebook"])

    user_threads = "OMP_NUM_THREADS" in os.environ
    jobs = min(cfg.jobs, len(names))    # one chapter: run here, with every core
    with kernel_environment(root, cfg.kernel, jobs=jobs):
        if jobs == 1:
            for name in names:          # toc order: every chapter after what it reads
                if failures and not cfg.keep_going:
                    break
                if blocked(name):
                    _say(f"{prefix(name)}: not run: a chapter it reads failed")
                    continue
                entry, job = start(name)
                finish(entry if job is None else report(entry, *_execute_reported(*job)))
        else:
            # each notebook in a worker process of its own (a kernel client is not safe to
            # share between threads)
            pending = sorted(names, key=lambda n: (-priority[n], number[n]))
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(jobs, mp_context=spawn) as pool:
                running: dict = {}
                while True:
                    for name in [n for n in pending if blocked(n)]:
                        pending.remove(name)
                        _say(f"{prefix(name)}: not run: a chapter it reads failed")
                    while len(running) < jobs and not (failures and not cfg.keep_going):
                        name = next((n for n in pending if ready(n)), None)
                        if name is None:
                            break
                        pending.remove(name)
                        entry, job = start(name)
                        if job is None:
                            finish(entry)
                            continue
                        # kernel_environment gave each kernel a share of the cores; the last
                        # chapter, alone on the machine, gets every core
                        alone = not running and not pending and not user_threads
                        running[pool.submit(_execute_reported, *job,
                                            available_cpus() if alone else None)] = entry
                    if not running:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        entry = running.pop(future)
                        try:
                            why, seconds = future.result()
                        except Exception as exc:  # noqa: BLE001 - e.g. a worker killed
                            why, seconds = f"the worker process failed: {exc!r}", 0.0
                        finish(report(entry, why, seconds))
    total = time.perf_counter() - t_all
    if failures:
        for name, why in failures:
            _say(f"{PROG}: error: notebook {name} failed: {why.splitlines()[0]}")
        log["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        _write_json(log_path, log)
        return 1
    _say(f"executed {len(names)} notebook(s) in {total:.1f} s; run log {log_path.relative_to(root)}")
    if cfg.build:
        ok, seconds = build_site(root, cfg.profile, partial=bool(cfg.only))
        log["build"] = {"status": "ok" if ok else "failed", "seconds": round(seconds, 2)}
    log["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    _write_json(log_path, log)
    return 0 if (not cfg.build or log["build"]["status"] == "ok") else 1


# ----------------------------------------------------------------------------------------------
# What the site shows: MathJax served with it, papermill's injected cell replaced by a note
# ----------------------------------------------------------------------------------------------

#: MathJax version served with the site (npm package ``mathjax``): the 3.x that Sphinx's
#: default ``mathjax_path`` (``cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js``) names.
MATHJAX_VERSION = "3.2.2"
#: Sphinx's default MathJax component, and what it loads on demand: TeX extensions, fonts,
#: the right-click menu and its accessibility tools (the other combined components stay out).
MATHJAX_ENTRY = "tex-mml-chtml.js"
MATHJAX_PARTS = (MATHJAX_ENTRY, "input", "output", "a11y", "ui", "sre")
#: the staged folder (an ``html_static_path``) that holds ``mathjax/``: not ``_static``,
#: whose every .js file Jupyter Book would add to every page
_VENDOR_STATIC = "_vendor"
#: papermill's tag on the cell it injects after the ``parameters`` cell
INJECTED_TAG = "injected-parameters"


def local_mathjax(root: Path, fetch: bool = True) -> Path | None:
    """The pinned MathJax copy ``_build/vendor/mathjax-<version>`` (a folder with
    ``tex-mml-chtml.js``), fetched from the npm registry with ``npm pack`` the first time.
    Returns None, after saying why, when it is not there and cannot be fetched (no ``npm``, no
    registry): the site then loads MathJax from its CDN."""
    from ferlib.book.npm import NpmError, npm_fetch

    dest = root / "_build" / "vendor" / f"mathjax-{MATHJAX_VERSION}"
    if (dest / MATHJAX_ENTRY).is_file():
        return dest
    if not fetch:
        return None
    tmp = dest.with_name(dest.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        npm_fetch(f"mathjax@{MATHJAX_VERSION}", {**{f"es5/{p}": tmp / p for p in MATHJAX_PARTS},
                                                  "LICENSE": tmp / "LICENSE"})
    except NpmError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        _say(f"      MathJax: no local copy ({exc}); the pages load it from its CDN")
        return None
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)   # only a complete copy ever has the final name
    _say(f"      MathJax {MATHJAX_VERSION}: fetched from the npm registry into "
         f"{dest.relative_to(root)}")
    return dest


def serve_mathjax(src: Path, mathjax: Path) -> None:
    """Make the staged book ``src`` serve ``mathjax`` (a :func:`local_mathjax` folder) with the
    site: copied to ``src/_vendor/mathjax`` (an ``html_static_path``, so the site gets
    ``_static/mathjax/``) and Sphinx's ``mathjax_path`` pointed at it in ``src/_config.yml``."""
    shutil.copytree(mathjax, src / _VENDOR_STATIC / "mathjax", dirs_exist_ok=True)
    config_path = src / "_config.yml"
    config = yaml.safe_load(config_path.read_text()) or {}
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["html_static_path"] = list(sphinx.get("html_static_path") or []) + [_VENDOR_STATIC]
    sphinx["mathjax_path"] = f"mathjax/{MATHJAX_ENTRY}"   # relative: inside _static
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def _code_span(text: str) -> str:
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def parameters_note(params: dict[str, Any]) -> str:
    """The one line that stands on the page for papermill's injected cell: the values this run
    used (MyST markdown)."""
    values = ", ".join(_code_span(f"{k} = {json.dumps(v) if isinstance(v, str) else repr(v)}")
                       for k, v in params.items())
    return (f"This page was run with {values} (set by `ferlib-book` over the defaults in the "
            "cell above).")


def show_parameters_once(nb) -> bool:
    """Hide papermill's injected-parameters cell on the website and say once what it set.

    The cell stays in the notebook (tagged ``remove-cell``, which myst-nb leaves out of the
    page), and a one-line markdown note with the injected values follows it, so a reader sees
    one parameters cell (the chapter's, with its defaults) and the values of this run. Returns
    whether the notebook had an injected cell."""
    import nbformat

    for i, cell in enumerate(nb.cells):
        tags = list(cell.metadata.get("tags") or [])
        if INJECTED_TAG not in tags:
            continue
        if "remove-cell" not in tags:
            cell.metadata["tags"] = tags + ["remove-cell"]
        params = dict((nb.metadata.get("papermill") or {}).get("parameters") or {})
        if params:   # in the cell's order (the saved metadata has its keys sorted)
            order = re.findall(r"^(\w+)\s*=", cell.source, flags=re.M)
            params = {k: params[k] for k in sorted(
                params, key=lambda k: order.index(k) if k in order else len(order))}
            nb.cells.insert(i + 1, nbformat.v4.new_markdown_cell(parameters_note(params)))
        return True
    return False


def _stage_notebook(source: Path, dest: Path) -> None:
    """Copy an executed notebook into the staged book, with :func:`show_parameters_once`."""
    import nbformat

    nb = nbformat.read(source, as_version=4)
    if show_parameters_once(nb):
        nbformat.write(nb, dest)
    else:
        shutil.copy2(source, dest)


# ----------------------------------------------------------------------------------------------
# Site build
# ----------------------------------------------------------------------------------------------

def stage_source(root: Path, profile: str, partial: bool = False, mathjax: bool = True) -> Path:
    """Copy ``_config.yml``, ``_toc.yml``, ``book/`` and the executed notebooks to
    ``_build/src`` (no ``.py`` file: a chapter has exactly one source). With ``partial`` (an
    ``--only`` run) a chapter not executed for this profile falls back to the committed
    ``notebooks/NAME.ipynb``; one with neither becomes a short placeholder page, so the table
    of contents and the links to it stay valid.

    What a reader sees: each notebook's papermill-injected cell is hidden and replaced by a
    one-line note of the values it set (:func:`show_parameters_once`; the executed copies under
    ``_build/executed`` keep it as it is), and with ``mathjax`` the pinned MathJax copy
    (:func:`local_mathjax`, fetched with npm once) is served with the site, which else loads it
    from its CDN."""
    src = root / "_build" / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, src / name)
    # records travel (the scoreboard links them as downloads); backbone weights do not
    shutil.copytree(root / "book", src / "book", ignore=shutil.ignore_patterns(
        "*.pt", "__pycache__", ".ipynb_checkpoints"))
    # the scoreboard is regenerated from the records, so the site never shows a stale one
    from ferlib.book.scoreboard import BOOK_RECORDS, write_page
    write_page(src / BOOK_RECORDS, src / "book" / "scoreboard.md", shown_as=BOOK_RECORDS)
    nb_src = root / NOTEBOOK_DIR
    (src / NOTEBOOK_DIR).mkdir()
    for extra in nb_src.iterdir():  # figures or data a chapter's markdown links to
        if extra.suffix in (".py", ".ipynb") or extra.name in _HASH_SKIP_DIRS:
            continue
        (shutil.copytree if extra.is_dir() else shutil.copy2)(extra, src / NOTEBOOK_DIR / extra.name)
    executed = root / "_build" / "executed" / profile / NOTEBOOK_DIR
    for name in toc_notebooks(root):
        for candidate, label in ((executed / f"{name}.ipynb", None),
                                 (nb_src / f"{name}.ipynb", "committed smoke outputs")):
            if candidate.is_file():
                _stage_notebook(candidate, src / NOTEBOOK_DIR / f"{name}.ipynb")
                if label and partial:
                    _say(f"      {name}: not executed for profile {profile}; using {label}")
                break
        else:
            if not partial:
                raise BookError(f"no executed notebook for {name}: run without --no-build first")
            _say(f"      {name}: no notebook yet; a placeholder page stands in for it")
            (src / NOTEBOOK_DIR / f"{name}.md").write_text(
                f"# {name.replace('_', ' ')}\n\nThis chapter is not part of this partial build "
                f"(`{NOTEBOOK_DIR}/{name}.py` has not been executed yet).\n")
    mathjax = local_mathjax(root) if mathjax else None
    if mathjax is not None:
        serve_mathjax(src, mathjax)
    return src


def _jupyter_book_exe() -> list[str]:
    exe = Path(sys.executable).with_name("jupyter-book")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    return [sys.executable, "-c", "from jupyter_book.cli.main import main; main()"]


def build_site(root: Path, profile: str, partial: bool = False) -> tuple[bool, float]:
    """Stage the source and run ``jupyter-book build _build/src --path-output <root> -W -n
    --keep-going --all``; the site lands in ``<root>/_build/html``. Sphinx warnings are errors.
    Returns (success, seconds); warnings and, on failure, the log tail are printed."""
    t0 = time.perf_counter()
    _say("building the site with jupyter-book (warnings are errors)...")
    src = stage_source(root, profile, partial=partial)
    cmd = _jupyter_book_exe() + ["build", str(src), "--path-output", str(root), "--builder",
                                 "html", "-W", "-n", "--keep-going", "--all"]
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    text = proc.stdout + proc.stderr
    log_file = root / "_build" / "executed" / profile / "build.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text(text)
    for line in text.splitlines():
        if "WARNING" in line or "ERROR" in line:
            _say(f"      {line}")
    index = root / "_build" / "html" / "index.html"
    if proc.returncode != 0 or not index.is_file():
        tail = "\n".join(text.splitlines()[-25:])
        _say(f"{tail}\n{PROG}: error: the site build failed (exit {proc.returncode}); "
             f"full log: {log_file.relative_to(root)}")
        return False, seconds
    _say(f"built {index.relative_to(root)} in {seconds:.1f} s")
    return True, seconds


# ----------------------------------------------------------------------------------------------
# Sweeps
# ----------------------------------------------------------------------------------------------

def parse_grid(specs: Iterable[str]) -> dict[str, list[Any]]:
    """``["lr=0.1,0.01", "width=8,16"]`` -> ``{"lr": [0.1, 0.01], "width": [8, 16]}`` (YAML
    values)."""
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or not values.strip():
            raise BookError(f"bad --grid {spec!r}: expected name=v1,v2,...")
        if name in grid:
            raise BookError(f"--grid {name} given twice")
        grid[name] = [parse_value(v.strip()) for v in values.split(",")]
    if not grid:
        raise BookError("a sweep needs at least one --grid name=v1,v2")
    return grid


def cell_id(params: dict[str, Any]) -> str:
    """File-safe id of one grid cell: ``lr=0.1__width=8`` (long ids end in a short hash)."""
    text = "__".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
                     for k, v in params.items())
    safe = re.sub(r"[^A-Za-z0-9._=+-]", "_", text)
    if len(safe) > 120:
        safe = safe[:100] + "-" + _sha(text.encode())[:12]
    return safe


@dataclass
class SweepConfig:
    root: Path
    notebook: str
    grid: dict[str, list[Any]]
    profile: str = "smoke"
    device: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)
    gpus: list[str] = field(default_factory=list)
    kernel: str = "python3"
    out: Path | None = None
    force: bool = False
    write_committed: bool = True   # see RunConfig


def _sweep_input(cfg: SweepConfig) -> tuple[str, Path, Path]:
    """(name, input .ipynb, cwd) of the swept notebook: a toc name or a path to a .py/.ipynb."""
    import jupytext

    root = cfg.root
    path = Path(cfg.notebook)
    if path.suffix in (".py", ".ipynb") and path.is_file():
        name, cwd = path.stem, path.resolve().parent
        if path.suffix == ".py":
            work = (cfg.out or root / "_build" / "sweeps") / name
            work.mkdir(parents=True, exist_ok=True)
            ipynb = work / "_input.ipynb"
            jupytext.write(jupytext.read(path), ipynb)
            return name, ipynb, cwd
        return name, path.resolve(), cwd
    name = select_notebooks(root, [cfg.notebook])[0]
    py = root / NOTEBOOK_DIR / f"{name}.py"
    if not cfg.write_committed and not pair_in_sync(py, py.with_suffix(".ipynb")):
        raise _refuse_committed_write(root, f"syncing {NOTEBOOK_DIR}/{name}.ipynb from its .py")
    ipynb, _ = sync_pair(py)
    return name, ipynb, root / NOTEBOOK_DIR


def _sweep_cell(ipynb: Path, output: Path, params: dict, cwd: Path, kernel: str,
                gpu: str | None) -> str | None:
    """Execute one grid cell; returns None on success, else a one-line reason. Without a GPU
    id the cells run one after another in this process; with one, each runs in its own
    ``python -m papermill`` process whose kernel sees only that GPU (CUDA_VISIBLE_DEVICES)."""
    if gpu is None:
        import papermill

        try:
            papermill.execute_notebook(str(ipynb), str(output), parameters=params,
                                       kernel_name=kernel, language="python", cwd=str(cwd),
                                       progress_bar=False, start_timeout=180)
        except Exception as exc:  # noqa: BLE001 - reported per cell, the sweep goes on
            return _describe_failure(exc).replace("\n", " ")
        return None
    env = dict(os.environ, CUDA_VISIBLE_DEVICES=str(gpu))
    cmd = [sys.executable, "-m", "papermill", str(ipynb), str(output), "-k", kernel,
           "--cwd", str(cwd), "--no-progress-bar", "-y", yaml.safe_dump(params)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode == 0:
        return None
    tail = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()][-3:]
    return " | ".join(tail) or f"papermill exited with {proc.returncode}"


def run_sweep(cfg: SweepConfig) -> int:
    """Run one notebook once per grid cell (cartesian product) with papermill, writing
    ``<out>/<notebook>/<cell-id>.ipynb``. A finished cell leaves a ``.done`` marker and is
    skipped next time (resumable); ``--gpus 0,1`` runs one papermill process per GPU at a time
    with ``CUDA_VISIBLE_DEVICES`` set (see ``_sweep_cell``). Returns the exit code (1 if
    any cell failed; the other cells still run)."""
    try:
        get_profile(cfg.profile)
        if not cfg.gpus:
            resolve_device(cfg.device)
    except ValueError as exc:
        raise BookError(str(exc)) from None
    if "data_root" in cfg.extra:
        cfg.extra["data_root"] = _check_data_root(cfg.extra["data_root"], "-p data_root")
    name, ipynb, cwd = _sweep_input(cfg)
    declared = declared_parameters(ipynb)
    for pname in list(cfg.grid) + list(cfg.extra):
        if pname not in declared:
            raise BookError(f"{pname!r} is not defined in the parameters cell of {name} "
                            f"(it defines: {', '.join(declared) or 'nothing'})")
    out_dir = (cfg.out or cfg.root / "_build" / "sweeps") / name
    out_dir.mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in (("profile", cfg.profile),
                              ("device", "cuda" if cfg.gpus else cfg.device)) if k in declared}
    base.update(cfg.extra)
    cells = [dict(zip(cfg.grid, combo)) for combo in itertools.product(*cfg.grid.values())]
    todo = []
    for params in cells:
        cid = cell_id(params)
        if (out_dir / f"{cid}.done").is_file() and not cfg.force:
            _say(f"[sweep {name}] {cid}: done already, skipped")
            continue
        todo.append((cid, {**base, **params}))
    _say(f"[sweep {name}] {len(cells)} cell(s), {len(todo)} to run, "
         f"{max(1, len(cfg.gpus))} at a time -> {out_dir}")
    slots: queue.Queue = queue.Queue()
    for gpu in cfg.gpus or [None]:
        slots.put(gpu)
    failures, lock = [], threading.Lock()

    def work(cid: str, params: dict) -> None:
        gpu = slots.get()
        output = out_dir / f"{cid}.ipynb"
        where = f" (GPU {gpu})" if gpu is not None else ""
        t0 = time.perf_counter()
        try:
            error = _sweep_cell(ipynb, output, params, cwd, cfg.kernel, gpu)
        finally:
            slots.put(gpu)
        seconds = time.perf_counter() - t0
        if error is None:
            _write_json(out_dir / f"{cid}.done", {"parameters": params,
                                                  "seconds": round(seconds, 2), "gpu": gpu})
            _say(f"[sweep {name}] {cid}{where}: ok in {seconds:.1f} s")
        else:
            with lock:
                failures.append(cid)
            _say(f"[sweep {name}] {cid}{where}: FAILED after {seconds:.1f} s: {error}")

    with kernel_environment(cfg.root, cfg.kernel), \
            ThreadPoolExecutor(max_workers=max(1, len(cfg.gpus))) as pool:
        for future in [pool.submit(work, cid, params) for cid, params in todo]:
            future.result()
    if failures:
        _say(f"{PROG}: error: sweep {name}: {len(failures)} cell(s) failed: {', '.join(failures)}"
             " (rerun the same command to retry only those)")
        return 1
    return 0


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="smoke", help=f"one of {', '.join(PROFILES)} "
                        "(default smoke)")
    parser.add_argument("--device", default="auto", help=f"one of {', '.join(DEVICES)} "
                        "(default auto)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="extra parameter passed to notebooks "
                        "whose parameters cell defines NAME; VALUE is parsed as YAML")
    parser.add_argument("--kernel", default="python3",
                        help="Jupyter kernel (default python3 = this Python environment)")
    parser.add_argument("--root", default=None, help="the book's root (default: the working "
                        "directory if it has _toc.yml, else the repository of ferlib, which is "
                        "then never written to: committed notebooks are rewritten only under "
                        "the working directory or --root)")
    parser.add_argument("--force", action="store_true", help="ignore the execution cache / "
                        "finished sweep cells")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Execute the book's notebooks with papermill and build the site "
        "with Jupyter Book. Subcommand: 'ferlib-book sweep NOTEBOOK --grid name=v1,v2' runs one "
        "notebook over a parameter grid (see 'ferlib-book sweep -h').")
    _common(parser)
    parser.add_argument("--dataset", default=None, help="dataset name passed to notebooks that "
                        "take one (synthfacs, fer2013, ferplus, rafdb, affectnet, sfew)")
    parser.add_argument("--data-root", default=None, help="folder of the real dataset")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this toc notebook (repeatable)")
    parser.add_argument("--no-build", action="store_true", help="execute only; skip the site")
    parser.add_argument("--update-committed", action="store_true", help="copy the executed "
                        "smoke notebooks back to notebooks/*.ipynb (profile smoke, CPU only)")
    parser.add_argument("--keep-going", action="store_true", help="run the remaining notebooks "
                        "after a failure (still exits non-zero, builds nothing)")
    parser.add_argument("--jobs", default="auto", help="chapters executed side by side, each "
                        "after the chapters it reads, each kernel with an equal share of the "
                        "cores, the last one alone with all (default auto: 2 for the smoke "
                        "profile on 2 or more cores, else 1)")
    return parser


def build_sweep_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} sweep", description="Run one notebook once per cell of a parameter grid "
        "with papermill; finished cells are skipped, so a sweep can be resumed.")
    parser.add_argument("notebook", help="a toc name (05_adjacency_threshold_tuning) or a path "
                        "to a .py / .ipynb notebook")
    parser.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2",
                        help="a swept parameter (repeatable; the sweep is the product)")
    parser.add_argument("--gpus", default="", help="comma-separated GPU ids: one process per "
                        "GPU at a time via CUDA_VISIBLE_DEVICES (sets device=cuda)")
    parser.add_argument("--out", default=None, help="output folder (default _build/sweeps)")
    _common(parser)
    return parser


def parse_jobs(value: str, profile: str) -> int:
    """``--jobs``: ``auto`` (:func:`default_jobs`) or a whole number >= 1."""
    if value == "auto":
        return default_jobs(profile)
    try:
        jobs = int(value)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise BookError(f"--jobs {value!r}: give a whole number >= 1, or auto")
    return jobs


def _extras(pairs) -> dict[str, Any]:
    extra = {}
    for name, value in pairs:
        if not name.isidentifier():
            raise BookError(f"-p {name!r}: a parameter name must be a Python identifier")
        extra[name] = parse_value(value)
    return extra


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ferlib.book`` / ``ferlib-book``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["sweep"]:
            args = build_sweep_parser().parse_args(argv[1:])
            root, how = locate_root(args.root)
            _say(f"{PROG}: book root {root} ({how})")
            cfg = SweepConfig(root=root, notebook=args.notebook, grid=parse_grid(args.grid),
                              profile=args.profile, device=args.device,
                              extra=_extras(args.parameter), kernel=args.kernel,
                              gpus=[g.strip() for g in args.gpus.split(",") if g.strip()],
                              out=Path(args.out).resolve() if args.out else None,
                              force=args.force, write_committed=how != ROOT_FROM_INSTALL)
            return run_sweep(cfg)
        args = build_parser().parse_args(argv)
        root, how = locate_root(args.root)
        _say(f"{PROG}: book root {root} ({how})")
        cfg = RunConfig(root=root, profile=args.profile, device=args.device,
                        dataset=args.dataset, data_root=args.data_root,
                        extra=_extras(args.parameter), only=args.only, kernel=args.kernel,
                        build=not args.no_build, force=args.force,
                        update_committed=args.update_committed, keep_going=args.keep_going,
                        jobs=parse_jobs(args.jobs, args.profile),
                        write_committed=how != ROOT_FROM_INSTALL)
        return run_book(cfg)
    except BookError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr, flush=True)
        return 2

