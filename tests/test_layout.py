"""The library's layout, read from the source with ``ast`` (nothing is imported):

* no import circle among ``ferlib`` modules, counting imports inside functions too (a lazy
  import hides a circle from Python, not from a reader);
* no private name (``_x``) of one module used by another, neither imported
  (``from ferlib.m import _x``) nor reached as an attribute (``m._x``);
* the shared core (data, train, metrics, records, config, backbones, claims, ...) imports only
  the core, never a method module (``ferlib.methods.*``: baseline, AHM, latent augmentation,
  DAN, EAN/SCN, CUCN; ``ferlib.compare``) nor the book's machinery (``ferlib.book.*``);
* no method (``ferlib.methods.*``) imports the book's machinery (``ferlib.book.*``): the papers'
  claims come from the core (``ferlib.claims``), not from the scoreboard.

A failure names the modules and lines; the fix is to make the name public or move it where it
belongs, not to hide the import.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ferlib"

#: the shared core: it may import only modules of this list (prefix match on dotted names)
CORE = ("ferlib.data", "ferlib.train", "ferlib.metrics", "ferlib.records", "ferlib.config",
        "ferlib.models.backbones", "ferlib.models.cbam", "ferlib.checkpoint", "ferlib.stats",
        "ferlib.plots", "ferlib.claims")
#: package __init__ files that belong to the core (``ferlib`` itself, ``ferlib.models``)
CORE_INITS = ("ferlib", "ferlib.models")
#: method modules and the book's machinery: a few the core must never reach (checked to exist,
#: so a rename cannot make the contract vacuous); every other non-core module is forbidden too
METHOD_MODULES = ("ferlib.compare", "ferlib.methods", "ferlib.methods.baseline",
                  "ferlib.methods.baseline.experiment", "ferlib.methods.ahm",
                  "ferlib.methods.ahm.sae", "ferlib.methods.latent_aug",
                  "ferlib.methods.latent_aug.vaegan", "ferlib.methods.dan",
                  "ferlib.methods.dan.model", "ferlib.methods.ean", "ferlib.methods.ean.model",
                  "ferlib.methods.ean.experiment", "ferlib.methods.ean.scn",
                  "ferlib.methods.ean.invariant", "ferlib.methods.cucn",
                  "ferlib.methods.cucn.model", "ferlib.methods.cucn.experiment",
                  "ferlib.book", "ferlib.book.runner", "ferlib.book.scoreboard",
                  "ferlib.book.sitecheck", "ferlib.book.npm")
#: the methods (one package per paper): they may import the core and each other, never the
#: book's machinery
METHODS_PACKAGE = "ferlib.methods"
BOOK_PACKAGE = "ferlib.book"


@dataclass(frozen=True)
class Use:
    source: str      # importing module
    target: str      # imported module (the module object the name comes from or is)
    name: str | None  # the name taken from it (None for a plain module import)
    line: int

    def where(self) -> str:
        return f"{self.source}:{self.line}"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def find_modules(package: Path = PACKAGE, root: Path = ROOT) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(package.rglob("*.py"))}


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str | None:
    if node.level == 0:
        return node.module
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def uses(modules: dict[str, Path]) -> list[Use]:
    """Every use of a ferlib module by another, at any depth of the source (module level,
    functions, classes), and every ``alias._name`` attribute read through a module alias."""
    out = []
    for mod, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        aliases: dict[str, str] = {}   # local name -> ferlib module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "ferlib":
                        out.append(Use(mod, a.name, None, node.lineno))
                        if a.asname:             # import ferlib.x.y as z: z is ferlib.x.y
                            aliases[a.asname] = a.name
                        else:                    # import ferlib.x.y: binds ferlib
                            aliases["ferlib"] = "ferlib"
            elif isinstance(node, ast.ImportFrom):
                target = _absolute(mod, is_package, node)
                if not target or target.split(".")[0] != "ferlib":
                    continue
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    if sub in modules:   # ``from ferlib.models import backbones``: a module
                        out.append(Use(mod, sub, None, node.lineno))
                        aliases[a.asname or a.name] = sub
                    else:
                        out.append(Use(mod, target, a.name, node.lineno))
        for node in ast.walk(tree):   # attribute reads through module aliases: m._x, ferlib.m._x
            if isinstance(node, ast.Attribute):
                chain, value = [node.attr], node.value
                while isinstance(value, ast.Attribute):
                    chain.insert(0, value.attr)
                    value = value.value
                if isinstance(value, ast.Name) and value.id in aliases:
                    dotted = aliases[value.id]
                    for i, part in enumerate(chain):
                        if f"{dotted}.{part}" in modules:
                            dotted = f"{dotted}.{part}"
                            continue
                        out.append(Use(mod, dotted, part, node.lineno))
                        break
    return out


def import_graph(found: list[Use], modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for u in found:
        if u.target in modules and u.target != u.source:
            graph[u.source].add(u.target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def private_uses(found: list[Use]) -> list[Use]:
    return [u for u in found if u.name and u.name.startswith("_") and not u.name.startswith("__")
            and u.target != u.source]


def is_core(module: str) -> bool:
    return module in CORE_INITS or any(module == c or module.startswith(c + ".") for c in CORE)


def core_violations(found: list[Use], modules: dict[str, Path]) -> list[Use]:
    return [u for u in found if is_core(u.source) and u.target in modules
            and not is_core(u.target)]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def method_violations(found: list[Use], modules: dict[str, Path]) -> list[Use]:
    """Uses of the book's machinery by a method module."""
    return [u for u in found if _within(u.source, METHODS_PACKAGE)
            and _within(u.target, BOOK_PACKAGE)]


# ----------------------------------------------------------------------------------------------
# the rules on this repository
# ----------------------------------------------------------------------------------------------
MODULES = find_modules()
USES = uses(MODULES)


def test_the_scan_sees_the_library():
    # function-level imports are found too: ferlib.train.features imports the engine in a function
    assert len(MODULES) > 40
    assert any(u.source == "ferlib.train.features" and u.target == "ferlib.train.engine"
               for u in USES)
    for m in METHOD_MODULES:
        assert m in MODULES, f"{m} is gone: update METHOD_MODULES in {__file__}"
    for c in CORE:
        assert c in MODULES, f"{c} is gone: update CORE in {__file__}"


def test_no_import_circle():
    found = cycles(import_graph(USES, MODULES))
    detail = [" <-> ".join(c) + ": " + "; ".join(sorted({
        f"{u.where()} imports {u.target}" for u in USES if u.source in c and u.target in c
        and u.source != u.target})) for c in found]
    assert not found, "import circles in ferlib:\n" + "\n".join(detail)


def test_no_private_name_crosses_modules():
    bad = private_uses(USES)
    assert not bad, "private names used across modules (make them public or move them):\n" + \
        "\n".join(f"{u.where()} uses {u.target}.{u.name}" for u in bad)


def test_the_core_imports_no_method_module():
    bad = core_violations(USES, MODULES)
    assert not bad, "the shared core imports outside the core:\n" + \
        "\n".join(f"{u.where()} imports {u.target}" for u in bad)


def test_no_method_imports_the_book_machinery():
    bad = method_violations(USES, MODULES)
    assert not bad, "a method imports the book's machinery (take it from the core):\n" + \
        "\n".join(f"{u.where()} imports {u.target}" for u in bad)


# ----------------------------------------------------------------------------------------------
# the checker itself, on a tiny fake package: each rule fails when it should
# ----------------------------------------------------------------------------------------------
def _fake(tmp_path: Path, files: dict[str, str]) -> tuple[dict[str, Path], list[Use]]:
    for rel, text in files.items():
        p = tmp_path / "ferlib" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    modules = find_modules(tmp_path / "ferlib", tmp_path)
    return modules, uses(modules)


def test_checker_finds_a_circle_hidden_in_a_function(tmp_path):
    modules, found = _fake(tmp_path, {
        "__init__.py": "",
        "a.py": "from ferlib.b import f\n",
        "b.py": "def f():\n    from . import a\n    return a\n",
        "c.py": "import ferlib.a\n",
    })
    assert cycles(import_graph(found, modules)) == [["ferlib.a", "ferlib.b"]]


def test_checker_finds_private_names_imported_or_read(tmp_path):
    modules, found = _fake(tmp_path, {
        "__init__.py": "",
        "pkg/__init__.py": "",
        "pkg/m.py": "_x = 1\nY = 2\n__version__ = '0'\n",
        "a.py": "from ferlib.pkg.m import _x, Y, __version__\n",
        "b.py": "from ferlib.pkg import m\nz = m._x\n",
        "c.py": "import ferlib.pkg.m\nz = ferlib.pkg.m._x\n",
        "d.py": "from .pkg import m as mm\n\ndef f():\n    return mm.Y\n",
    })
    bad = sorted((u.source, u.name) for u in private_uses(found))
    assert bad == [("ferlib.a", "_x"), ("ferlib.b", "_x"), ("ferlib.c", "_x")]


def test_checker_finds_the_core_reaching_a_method(tmp_path):
    modules, found = _fake(tmp_path, {
        "__init__.py": "",
        "records.py": "def f():\n    from ferlib.compare import g\n",
        "compare.py": "from ferlib.records import f\n\ndef g():\n    pass\n",
    })
    bad = core_violations(found, modules)
    assert [(u.source, u.target, u.line) for u in bad] == [("ferlib.records", "ferlib.compare", 2)]


def test_checker_finds_a_method_reaching_the_book(tmp_path):
    modules, found = _fake(tmp_path, {
        "__init__.py": "",
        "claims.py": "def claimed():\n    pass\n",
        "book/__init__.py": "",
        "book/scoreboard.py": "from ferlib.claims import claimed\n",
        "methods/__init__.py": "",
        "methods/m/__init__.py": "",
        "methods/m/experiment.py": "from ferlib.claims import claimed\n\n"
                                   "def f():\n    from ferlib.book import scoreboard\n",
    })
    bad = method_violations(found, modules)
    assert [(u.source, u.target, u.line) for u in bad] == [
        ("ferlib.methods.m.experiment", "ferlib.book.scoreboard", 4)]


# ----------------------------------------------------------------------------------------------
# one writer of training records (issue 13): write_record is called only by write_run_record
# ----------------------------------------------------------------------------------------------
#: the one function allowed to call ferlib.records.write_record
RECORD_WRITER = ("ferlib.train.recording", "write_run_record")


def record_writes(modules: dict[str, Path]) -> list[tuple[str, str, int]]:
    """``(module, enclosing function or "<module>", line)`` of every call of ``write_record``
    (by name or as an attribute, ``records.write_record(...)``) in the modules."""
    found = []
    for mod, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))

        def visit(node, where):
            for child in ast.iter_child_nodes(node):
                inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    and where == "<module>" else where
                if isinstance(child, ast.Call):
                    f = child.func
                    name = f.id if isinstance(f, ast.Name) else \
                        f.attr if isinstance(f, ast.Attribute) else None
                    if name == "write_record":
                        found.append((mod, where, child.lineno))
                visit(child, inner)

        visit(tree, "<module>")
    return found


def test_one_function_writes_every_training_record():
    calls = record_writes(MODULES)
    assert any((m, f) == RECORD_WRITER for m, f, _ in calls), \
        f"{RECORD_WRITER[0]}.{RECORD_WRITER[1]} no longer calls write_record: update {__file__}"
    bad = [c for c in calls if c[:2] != RECORD_WRITER]
    assert not bad, "write_record called outside the one record writer " \
        f"({'.'.join(RECORD_WRITER)}; call it instead):\n" + \
        "\n".join(f"{m}:{line} in {f}" for m, f, line in bad)


def test_checker_finds_a_record_written_around_the_writer(tmp_path):
    modules, _ = _fake(tmp_path, {
        "__init__.py": "",
        "records.py": "def write_record(**kw):\n    pass\n",
        "train/recording.py": "from ferlib.records import write_record\n\n"
                              "def write_run_record(**kw):\n    return write_record(**kw)\n",
        "a.py": "from ferlib import records\n\nclass R:\n    def go(self):\n"
                "        return records.write_record(method='x')\n",
    })
    calls = record_writes(modules)
    assert sorted(calls) == [("ferlib.a", "go", 5),
                             ("ferlib.train.recording", "write_run_record", 4)]
