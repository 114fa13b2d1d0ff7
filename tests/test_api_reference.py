"""The API reference (book/api/*.md, built by Sphinx autodoc in ``make book`` with ``-W -n``)
covers the whole library, and its cross-reference resolver (book/_ext/api_refs.py) finds the one
object a docstring means or nothing: a name that matches no object, or several, is left for
Sphinx to report, which fails the build."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "book" / "api"


def _api_refs():
    spec = importlib.util.spec_from_file_location("api_refs", ROOT / "book" / "_ext" / "api_refs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def documented_modules() -> list[str]:
    return [m for page in sorted(API.glob("*.md"))
            for m in re.findall(r"^\.\. automodule:: (\S+)$", page.read_text(), re.M)]


def library_modules() -> set[str]:
    out = set()
    for path in (ROOT / "ferlib").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue                       # command lines, documented by their module
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.add(".".join(parts))
    return out


def test_every_module_is_documented_once():
    listed = documented_modules()
    assert len(listed) == len(set(listed)), sorted(m for m in listed if listed.count(m) > 1)
    assert set(listed) == library_modules(), (
        f"missing from book/api: {sorted(library_modules() - set(listed))}; "
        f"not a ferlib module: {sorted(set(listed) - library_modules())}")


def test_api_pages_are_in_the_book():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert {f"book/api/{p.stem}" for p in API.glob("*.md")} <= set(files)
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]
    assert "api_refs" in cfg["local_extensions"]
    assert "sphinx.ext.autodoc" in cfg["extra_extensions"]


def test_resolver_finds_the_one_object_meant():
    candidates = _api_refs().candidates
    objects = {"ferlib.train.engine.fit": 0, "ferlib.methods.ahm.sae.SemanticClassifier.fit": 0,
               "ferlib.data.dataset.FaceDataset": 0, "ferlib.methods.ean.model.EAN": 0,
               "ferlib.methods.cucn.model.CUCN": 0}
    # re-exported by its package: ferlib.train.fit is ferlib.train.engine.fit
    assert candidates("ferlib.train.fit", objects) == ["ferlib.train.engine.fit"]
    # unqualified, as a module of ferlib.data writes it
    assert candidates("FaceDataset", objects, "ferlib.data.fer2013") == ["ferlib.data.dataset.FaceDataset"]
    assert candidates("ferlib.methods.ean.model.EAN", objects) == ["ferlib.methods.ean.model.EAN"]
    # nothing, or more than one: left unresolved (the -W build reports it)
    assert candidates("ferlib.train.no_such_function", objects) == []
    assert candidates("ferlib.data.FaceDataset2", objects) == []
    assert len(candidates("fit", objects)) == 2
    # the package a qualified name gives is respected: no fit outside ferlib.methods.ahm.sae
    assert candidates("ferlib.methods.ahm.sae.fit", objects) == \
        ["ferlib.methods.ahm.sae.SemanticClassifier.fit"]
