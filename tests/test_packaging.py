"""A thin library with the book's exact versions pinned once.

* ``pip install ferlib`` (the base dependencies) pulls no book, notebook, test or browser tool,
  and declares compatible ranges, not pins;
* every package the project declares, library and extras alike, is pinned ``==`` in
  ``constraints.txt``, inside its declared range, and nothing else is pinned there;
* ``make setup`` and ``environment.yml`` install through that file and pin nothing themselves;
* ``import ferlib`` and its models, training, data and method modules work with every
  book/test tool made unimportable (a subprocess with an import blocker).
"""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CONSTRAINTS = ROOT / "constraints.txt"

#: what the library must not pull: the book's runner and site, notebooks, tests, the browser
BOOK_TOOLS = {"jupyter-book", "papermill", "playwright", "jupyterlab", "pytest", "nbval",
              "jupytext", "ipykernel", "pytest-benchmark", "nbformat", "notebook", "sphinx",
              "ipywidgets", "pyyaml"}
#: import names of the tools above (and of what they bring) for the import blocker
BLOCKED_IMPORTS = ("jupyter_book", "papermill", "playwright", "jupyterlab", "pytest", "nbval",
                   "jupytext", "ipykernel", "pytest_benchmark", "nbformat", "notebook", "sphinx",
                   "ipywidgets", "IPython", "yaml", "jupyter_client")


def _requirements(items) -> list[Requirement]:
    return [Requirement(r) for r in items]


def _pins() -> dict[str, str]:
    pins = {}
    for n, line in enumerate(CONSTRAINTS.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", line)
        assert m, f"constraints.txt:{n}: {line!r} is not an exact pin name==version"
        name = canonicalize_name(m.group(1))
        assert name not in pins, f"constraints.txt:{n}: {name} is pinned twice"
        pins[name] = m.group(2)
    return pins


BASE = _requirements(PYPROJECT["dependencies"])
EXTRAS = {k: _requirements(v) for k, v in PYPROJECT["optional-dependencies"].items()}
PINS = _pins()


def _declared() -> dict[str, list[Requirement]]:
    """Every third-party requirement of the base and the extras, by canonical name (the
    self-references ``ferlib[...]`` between extras left out)."""
    out: dict[str, list[Requirement]] = {}
    for req in BASE + [r for reqs in EXTRAS.values() for r in reqs]:
        if canonicalize_name(req.name) != "ferlib":
            out.setdefault(canonicalize_name(req.name), []).append(req)
    return out


def test_the_base_dependencies_are_the_library_only():
    names = {canonicalize_name(r.name) for r in BASE}
    assert {"torch", "torchvision", "numpy"} <= names
    assert not names & BOOK_TOOLS, f"the library pulls book/test tools: {sorted(names & BOOK_TOOLS)}"
    pinned = [str(r) for r in BASE if any(s.operator in ("==", "===") for s in r.specifier)]
    assert not pinned, f"base dependencies are ranges, pins live in constraints.txt: {pinned}"
    for r in BASE:
        assert r.specifier, f"{r.name}: give a lower bound the library is known to need"


def test_the_extras_hold_the_book_and_all_holds_every_extra():
    assert {"book", "test", "site", "lab", "all"} <= set(EXTRAS)
    assert {canonicalize_name(r.name) for r in EXTRAS["book"]} >= {"jupyter-book", "papermill"}
    assert "playwright" in {canonicalize_name(r.name) for r in EXTRAS["site"]}
    all_extras = set().union(*(r.extras for r in EXTRAS["all"] if r.name == "ferlib"))
    assert all_extras == set(EXTRAS) - {"all"}


def test_every_declared_package_is_pinned_once_inside_its_range():
    declared = _declared()
    missing = sorted(set(declared) - set(PINS))
    assert not missing, f"declared in pyproject.toml but not pinned in constraints.txt: {missing}"
    stray = sorted(set(PINS) - set(declared))
    assert not stray, f"pinned in constraints.txt but declared nowhere in pyproject.toml: {stray}"
    for name, reqs in declared.items():
        for req in reqs:
            assert req.specifier.contains(PINS[name], prereleases=True), \
                f"constraints.txt pins {name}=={PINS[name]}, outside pyproject's {req}"
    assert PINS["torch"] == "2.14.1" and PINS["torchvision"] == "0.29.1"


def test_make_setup_and_conda_install_through_the_constraints():
    make = (ROOT / "Makefile").read_text()
    assert re.search(r'pip install .*-c constraints\.txt -e "?\.\[all\]"?', make)
    assert re.search(r"\.ferlib-installed:.*constraints\.txt", make), \
        "make setup must re-install when the pins change"
    env = (ROOT / "environment.yml").read_text()
    assert "- -c constraints.txt" in env and "- -e .[all]" in env
    lines = [ln.split("#", 1)[0] for ln in env.splitlines()]
    assert not [ln for ln in lines if "==" in ln or re.search(r"python=\d+\.\d+\.", ln)], \
        "environment.yml pins no package itself: constraints.txt does"


def test_the_library_imports_without_the_book_tools():
    """What ``pip install ferlib`` gives is enough to import the library: every module but
    the book's machinery (``ferlib.book``) imports with the book/test tools made unimportable."""
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "ferlib").rglob("*.py")
        if p.name != "__main__.py" and p.relative_to(ROOT / "ferlib").parts[0] != "book")
    script = textwrap.dedent(f"""
        import importlib, importlib.abc, sys
        BLOCKED = {BLOCKED_IMPORTS!r}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"blocked: {{name}} (not a library dependency)")
        for name in list(sys.modules):
            if name.split(".")[0] in BLOCKED:
                del sys.modules[name]
        sys.meta_path.insert(0, Block())
        for m in {modules!r}:
            importlib.import_module(m)
        print(len({modules!r}), "modules imported")
        """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg",
                              "PATH": "/usr/bin:/bin"}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "modules imported" in out.stdout and len(modules) > 40


def test_the_runner_says_which_extra_it_needs():
    script = textwrap.dedent("""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "yaml":
                    raise ModuleNotFoundError("blocked: yaml")
        sys.meta_path.insert(0, Block())
        import ferlib.book
        """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode != 0 and "pip install 'ferlib[book]'" in out.stderr


def test_import_ferlib_reaches_every_subpackage_and_method():
    """``import ferlib; ferlib.methods.ahm`` works in a fresh interpreter (nothing imported
    before), and the lists behind it name exactly what is on disk, so a new package is
    reachable only once it is listed."""
    import ferlib
    import ferlib.methods

    on_disk = {p.stem for p in (ROOT / "ferlib").glob("*.py") if p.stem != "__init__"}
    on_disk |= {p.parent.name for p in (ROOT / "ferlib").glob("*/__init__.py")}
    assert set(ferlib.SUBPACKAGES) == on_disk
    methods = {p.parent.name for p in (ROOT / "ferlib" / "methods").glob("*/__init__.py")}
    assert set(ferlib.methods.PACKAGES) == methods
    script = textwrap.dedent("""
        import sys, ferlib
        assert "ferlib.methods" not in sys.modules
        for name in ferlib.methods.PACKAGES:
            getattr(ferlib.methods, name)
        print(ferlib.methods.ahm.priority_vector.__module__, ferlib.compare.SAMPLERS[0])
        try:
            ferlib.no_such_package
        except AttributeError as exc:
            print(exc)
        """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg",
                              "PATH": "/usr/bin:/bin"}, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[:2] == [
        "ferlib.methods.ahm.ahp shuffle",
        "module 'ferlib' has no attribute 'no_such_package'"]
