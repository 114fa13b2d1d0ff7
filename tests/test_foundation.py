"""The book's foundation: Jupytext pairs, parameters cells, table of contents, and the runner
``python -m ferlib.book`` (argument errors, execution cache, failure report, sweeps).

Two tests start a Jupyter kernel on tests/fixtures/tiny.py (a few seconds each); everything else
is pure Python.
"""
from __future__ import annotations

import ast
import re
import json
import os
import shutil
import textwrap
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from ferlib.book import runner as book
from ferlib.config import PROFILES

os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "tiny.py"


def _signature(nb):
    return [(c.cell_type, c.source.strip("\n")) for c in nb.cells]


def _parameters_cells(nb):
    return [c for c in nb.cells if "parameters" in (c.metadata.get("tags") or [])]


# ------------------------------------------------------------------ the committed notebooks

def test_there_are_notebooks():
    assert any(p.stem == "00_introduction" for p in NOTEBOOKS)


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_pair_in_sync(py):
    """notebooks/NAME.ipynb has exactly the cells of notebooks/NAME.py (outputs ignored)."""
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.is_file(), (f"{ipynb.relative_to(ROOT)} is missing: run "
                             f"`python -m ferlib.book --only {py.stem} --update-committed "
                             "--device cpu`")
    from_py, from_ipynb = jupytext.read(py), jupytext.read(ipynb)
    assert _signature(from_py) == _signature(from_ipynb), (
        f"{py.name} and {ipynb.name} are out of sync: the .py is the source; refresh the "
        f".ipynb with `python -m ferlib.book --only {py.stem} --update-committed --device cpu`")
    assert [sorted(c.metadata.get("tags") or []) for c in from_py.cells] == \
        [sorted(c.metadata.get("tags") or []) for c in from_ipynb.cells], "cell tags differ"


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_contract(py):
    """One parameters cell defining profile and device (smoke/auto defaults); the last code
    cell is checked by nbval; the pair is declared as ipynb,py:percent."""
    nb = jupytext.read(py)
    cells = _parameters_cells(nb)
    assert len(cells) == 1, f"{py.name}: {len(cells)} cells tagged 'parameters', expected 1"
    namespace: dict = {}
    exec(compile(ast.parse(cells[0].source), str(py), "exec"), namespace)  # literals only
    assert namespace.get("profile") == "smoke", f"{py.name}: default profile must be 'smoke'"
    assert namespace.get("device") == "auto", f"{py.name}: default device must be 'auto'"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "NBVAL_CHECK_OUTPUT" in code[-1].source, \
        f"{py.name}: the last code cell must start with '# NBVAL_CHECK_OUTPUT'"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), \
        f"{py.name}: the first cell must be the markdown title '# ...'"
    formats = nb.metadata.get("jupytext", {}).get("formats", "")
    assert set(formats.split(",")) == {"ipynb", "py:percent"}, f"{py.name}: formats {formats!r}"


#: the closing heading of every chapter, and the heading of the committed results in every
#: chapter that shows committed records
KEY_NUMBERS = "Key numbers"
COMMITTED = "Full results from the committed records"
#: the first two parts of a paper chapter (03-06): the idea, then its check by hand; the live
#: run comes between them and the committed results
IDEA, CHECKED = "The paper's idea, in equations", "Checked by hand"


def _h2(nb) -> list[str]:
    return [line[3:].strip() for c in nb.cells if c.cell_type == "markdown"
            for line in c.source.splitlines() if line.startswith("## ")]


@pytest.mark.parametrize("py", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapters_share_their_shape(py):
    """A paper chapter reads in one order: the idea and its equations, the check by hand, the
    live run, the committed results, the key numbers. Every chapter ends with the same
    section, "Key numbers", holding the nbval cell; a
    chapter that reads committed records takes their folder as the ``records_path``
    parameter, and the method chapters (02-07) show them under "Full results from the
    committed records", the last section but a closing summary before the key numbers."""
    nb = jupytext.read(py)
    heads = _h2(nb)
    assert heads and heads[-1] == KEY_NUMBERS, f"{py.name}: last section {heads[-1:]!r}"
    body = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    if "book/records" in body or "records_path" in body:
        params = _parameters_cells(nb)[0].source
        assert re.search(r"^records_path = ", params, re.M), \
            f"{py.name}: the committed-records folder must be the parameter records_path"
        assert not re.search(r"""Path\(["']\.\./book/records""", body), \
            f"{py.name}: a hard-coded records folder instead of records_path"
    if "03" <= py.stem[:2] <= "06":   # the paper chapters: one order of parts
        assert heads[0] == IDEA and heads[1].startswith(CHECKED), \
            f"{py.name}: a paper chapter opens with {IDEA!r}, then {CHECKED!r}: {heads[:2]}"
    if py.stem[:2] >= "02":   # the method chapters: their long runs come from the records
        # a closing summary may stand between the committed results and the key numbers
        assert COMMITTED in heads and heads.index(COMMITTED) >= len(heads) - 3, \
            f"{py.name}: the committed results belong under {COMMITTED!r}, near the end"


def test_committed_notebooks_have_no_papermill_leftovers():
    for ipynb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(ipynb, as_version=4)
        assert "papermill" not in nb.metadata, ipynb.name
        assert not any("injected-parameters" in (c.metadata.get("tags") or [])
                       for c in nb.cells), ipynb.name


# ------------------------------------------------------------------ table of contents / config

def test_toc_structure():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    assert toc["format"] == "jb-book" and toc["root"] == "book/index"
    assert [p["caption"] for p in toc["parts"]] == [
        "Getting started", "The four papers", "Putting them side by side", "Reference"]
    names = book.toc_notebooks(ROOT)
    assert names[0] == "00_introduction" and len(names) == 8
    assert names == sorted(names)


def test_every_toc_entry_exists():
    missing = []
    for entry in book.toc_entries(ROOT):
        candidates = [ROOT / f"{entry}.md", ROOT / f"{entry}.py"]
        if not any(c.is_file() for c in candidates):
            missing.append(entry)
    assert not missing, f"_toc.yml lists entries that do not exist: {missing}"


def test_config_renders_without_executing():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["execute"]["execute_notebooks"] == "off"
    assert cfg["only_build_toc_files"] is True
    assert "notebooks/*.py" in cfg["exclude_patterns"]
    assert cfg["bibtex_bibfiles"] == ["book/references.bib"]
    bib = (ROOT / "book" / "references.bib").read_text()
    for key in ("zhang_dong_ahm", "li2024semantic", "du2021ean", "fan2022cucn",
                "goodfellow2013fer2013", "li2017rafdb", "barsoum2016ferplus"):
        assert "{" + key + "," in bib, key


# ------------------------------------------------------------------ runner: pure functions

def test_parse_value_is_yaml():
    assert book.parse_value("3") == 3 and book.parse_value("0.5") == 0.5
    assert book.parse_value("true") is True and book.parse_value("null") is None
    assert book.parse_value("fer2013") == "fer2013" and book.parse_value("[1, 2]") == [1, 2]


def test_cache_key_changes_with_ferlib_source(tmp_path):
    lib = tmp_path / "lib"
    (lib / "sub").mkdir(parents=True)
    (lib / "a.py").write_text("x = 1\n")
    (lib / "sub" / "b.json").write_text("{}")
    h1 = book.tree_hash(lib)
    (lib / "__pycache__").mkdir()
    (lib / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"junk")
    assert book.tree_hash(lib) == h1, "bytecode must not change the hash"
    (lib / "sub" / "b.json").write_text('{"k": 1}')
    h2 = book.tree_hash(lib)
    assert h2 != h1
    params = {"profile": "smoke", "device": "auto"}
    k1 = book.cache_key("src", params, ferlib_hash=h1)
    assert k1 == book.cache_key("src", dict(reversed(params.items())), ferlib_hash=h1)
    assert k1 != book.cache_key("src", params, ferlib_hash=h2)
    assert k1 != book.cache_key("src2", params, ferlib_hash=h1)
    assert k1 != book.cache_key("src", {**params, "seed": 1}, ferlib_hash=h1)


def test_clean_for_commit_restores_the_py_cells():
    nb = jupytext.read(FIXTURE)
    injected = nbformat.v4.new_code_cell('x = 2', metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(2, injected)
    nb.metadata["papermill"] = {"duration": 1.0}
    nb.cells[1].metadata["papermill"] = {"duration": 0.1}
    cleaned = book.clean_for_commit(nb)
    assert _signature(cleaned) == _signature(jupytext.read(FIXTURE))
    assert "papermill" not in cleaned.metadata
    assert all("papermill" not in c.metadata for c in cleaned.cells)


def test_grid_and_cell_ids():
    grid = book.parse_grid(["lr=0.1,0.01", "name=a b,c"])
    assert grid == {"lr": [0.1, 0.01], "name": ["a b", "c"]}
    assert book.cell_id({"lr": 0.1, "name": "a b"}) == "lr=0.1__name=a_b"
    for bad in (["lr"], ["lr="], ["1x=2"], ["a=1", "a=2"], []):
        with pytest.raises(book.BookError):
            book.parse_grid(bad)


# ------------------------------------------------------------------ runner: clear errors

@pytest.mark.parametrize("args, expected", [
    (["--profile", "huge"], "unknown profile 'huge': choose one of smoke, cpu, full"),
    (["--device", "gpu"], "unknown device 'gpu': choose one of auto, cpu, cuda"),
    (["--only", "99_nothing"], "not in _toc.yml: 99_nothing; valid names: 00_introduction, 01_data"),
    (["--data-root", "/no/such/folder"], "data root '/no/such/folder' (--data-root) does not exist"),
    (["-p", "data_root", "/no/such/folder"], "(-p data_root) does not exist"),
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--profile", "cpu", "--update-committed"], "only allowed with --profile smoke"),
    (["-p", "profile", "cpu"], "pass profile with --profile"),
])
def test_runner_argument_errors(args, expected, capsys):
    assert book.main(["--root", str(ROOT), "--no-build", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ferlib-book: error: ") and expected in err, err


def test_runner_needs_a_toc(tmp_path, capsys):
    assert book.main(["--root", str(tmp_path)]) == 2
    assert "no _toc.yml in" in capsys.readouterr().err


# ------------------------------------------------------------------ runner on a tiny book

@pytest.fixture
def tiny_book(tmp_path):
    """A book with one chapter, notebooks/tiny.py, and an extra toc chapter with no source."""
    root = tmp_path / "tinybook"
    (root / "notebooks").mkdir(parents=True)
    (root / "book").mkdir()
    shutil.copy(FIXTURE, root / "notebooks" / "tiny.py")
    (root / "book" / "index.md").write_text("# Tiny book\n")
    (root / "_config.yml").write_text("title: tiny\nexecute:\n  execute_notebooks: 'off'\n")
    (root / "_toc.yml").write_text(textwrap.dedent("""\
        format: jb-book
        root: book/index
        chapters:
          - file: notebooks/tiny
          - file: notebooks/later
        """))
    return root


def test_missing_chapter_only_tolerated_with_only(tiny_book, capsys):
    assert book.main(["--root", str(tiny_book), "--no-build"]) == 2
    assert "notebooks/later.py" in capsys.readouterr().err
    assert book.main(["--root", str(tiny_book), "--no-build", "--only", "later"]) == 2
    assert "source is missing: notebooks/later.py" in capsys.readouterr().err


def test_unknown_extra_parameter_is_an_error(tiny_book, capsys):
    assert book.main(["--root", str(tiny_book), "--no-build", "--only", "tiny",
                      "-p", "lerning_rate", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "'lerning_rate' (-p) is not defined in the parameters cell" in err
    # the runner synced the pair before inspecting it
    assert book.pair_in_sync(tiny_book / "notebooks" / "tiny.py")


def test_cache_skips_until_ferlib_changes(tiny_book, tmp_path, monkeypatch, capsys):
    calls = []

    def fake_execute(ipynb, output, params, cfg):
        calls.append(params)
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ipynb, output)

    lib = tmp_path / "fakelib"
    lib.mkdir()
    (lib / "m.py").write_text("A = 1\n")
    monkeypatch.setattr(book, "_execute", fake_execute)
    monkeypatch.setattr(book, "ferlib_dir", lambda: lib)
    argv = ["--root", str(tiny_book), "--no-build", "--only", "tiny", "-p", "x", "3"]
    assert book.main(argv) == 0
    assert calls == [{"profile": "smoke", "device": "auto", "x": 3}]
    assert book.main(argv) == 0 and len(calls) == 1, "unchanged: must be cached"
    assert "tiny: cached" in capsys.readouterr().out
    (lib / "m.py").write_text("A = 2\n")
    assert book.main(argv) == 0 and len(calls) == 2, "a ferlib change must re-execute"
    assert book.main(argv[:-1] + ["4"]) == 0 and len(calls) == 3, "new parameters re-execute"
    assert book.main(argv[:-1] + ["4", "--force"]) == 0 and len(calls) == 4
    log = json.loads((tiny_book / "_build/executed/smoke/run-log.json").read_text())
    assert log["notebooks"][0]["status"] == "ok" and log["notebooks"][0]["parameters"]["x"] == 4
    cache = json.loads((tiny_book / "_build/executed/smoke/cache.json").read_text())
    assert set(cache) == {"tiny"}


def test_failing_cell_is_named(tiny_book, capsys):
    """A real papermill run: exit 1, naming the notebook, the cell and the exception."""
    code = book.main(["--root", str(tiny_book), "--no-build", "--only", "tiny",
                      "-p", "fail", "true", "-p", "x", "7"])
    out = capsys.readouterr().out
    assert code == 1
    assert "error: notebook tiny failed: cell" in out
    assert "ValueError: asked to fail with x=7" in out
    log = json.loads((tiny_book / "_build/executed/smoke/run-log.json").read_text())
    assert log["notebooks"][0]["status"] == "failed"
    assert not json.loads((tiny_book / "_build/executed/smoke/cache.json").read_text())


def test_sweep_skips_finished_cells_and_resumes(tiny_book, capsys):
    out = tiny_book / "_build" / "sweeps" / "tiny"
    base = ["sweep", "tiny", "--root", str(tiny_book)]
    assert book.main(base + ["--grid", "x=2"]) == 0
    nb = nbformat.read(out / "x=2.ipynb", as_version=4)
    assert "x squared is 4 (smoke, auto)" in nb.cells[-1].outputs[0]["text"]
    assert json.loads((out / "x=2.done").read_text())["parameters"]["x"] == 2
    capsys.readouterr()
    (out / "x=2.ipynb").write_text("left alone")  # a finished cell must not be re-run
    assert book.main(base + ["--grid", "x=2,3"]) == 0
    text = capsys.readouterr().out
    assert "x=2: done already, skipped" in text and "x=3: ok" in text
    assert (out / "x=2.ipynb").read_text() == "left alone"
    assert sorted(p.name for p in out.glob("*.done")) == ["x=2.done", "x=3.done"]


def test_sweep_errors(tiny_book, capsys):
    assert book.main(["sweep", "tiny", "--root", str(tiny_book), "--grid", "y=1,2"]) == 2
    assert "'y' is not defined in the parameters cell of tiny" in capsys.readouterr().err
    assert book.main(["sweep", "nope", "--root", str(tiny_book), "--grid", "x=1"]) == 2
    assert "valid names: tiny, later" in capsys.readouterr().err
    assert book.main(["sweep", "tiny", "--root", str(tiny_book), "--grid", "x=1",
                      "--profile", "big"]) == 2
    assert "unknown profile 'big'" in capsys.readouterr().err


def test_profiles_are_documented_in_the_introduction():
    text = (ROOT / "notebooks" / "00_introduction.py").read_text()
    assert "PROFILES" in text
    for name in PROFILES:
        assert f"**{name}**" in text


def test_sweep_gpus_one_process_per_gpu(tiny_book, monkeypatch):
    """--gpus 0,1: at most one cell per GPU at a time, each told device=cuda."""
    import threading
    import time

    running, seen, lock = [], [], threading.Lock()
    peak = [0]

    def fake_cell(ipynb, output, params, cwd, kernel, gpu):
        with lock:
            running.append(gpu)
            peak[0] = max(peak[0], len(running))
            assert running.count(gpu) == 1, f"two cells on GPU {gpu}"
            seen.append((gpu, params["device"], params["x"]))
        time.sleep(0.1)
        with lock:
            running.remove(gpu)
        return None

    monkeypatch.setattr(book, "_sweep_cell", fake_cell)
    assert book.main(["sweep", "tiny", "--root", str(tiny_book), "--grid", "x=1,2,3,4",
                      "--gpus", "0,1"]) == 0
    assert peak[0] == 2
    assert {g for g, _, _ in seen} == {"0", "1"}
    assert {d for _, d, _ in seen} == {"cuda"} and sorted(x for _, _, x in seen) == [1, 2, 3, 4]
    done = tiny_book / "_build" / "sweeps" / "tiny"
    assert len(list(done.glob("*.done"))) == 4


def test_only_a_cell_timeout_earns_the_runner_a_second_try():
    from nbclient.exceptions import CellTimeoutError
    from papermill.exceptions import PapermillExecutionError

    from ferlib.book import is_cell_timeout

    assert is_cell_timeout(CellTimeoutError("cell 18 timed out"))
    assert is_cell_timeout(TimeoutError())
    assert not is_cell_timeout(PapermillExecutionError(3, 3, "x = 1", "ValueError", "bad", []))
    assert not is_cell_timeout(ValueError("bad"))


def test_toc_parts_group_the_chapters():
    parts = book.toc_parts(ROOT)
    assert parts == [["00_introduction", "01_data", "02_baseline"],
                     ["03_ahm_semantic_space", "04_latent_covariance_augmentation",
                      "05_adjacency_threshold_tuning", "06_uncertainty_and_imbalance"],
                     ["07_comparison"]]
    assert sum(parts, []) == book.toc_notebooks(ROOT)


MEET = """\
# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation: {{extension: .py, format_name: percent}}
#   kernelspec: {{display_name: Python 3, language: python, name: python3}}
# ---

# %% tags=["parameters"]
profile = "smoke"
device = "auto"
folder = ""

# %%
import os, time
from pathlib import Path
me, partner, before = {me!r}, {partner!r}, {before!r}
Path(folder, me + ".start").write_text(os.environ.get("OMP_NUM_THREADS", "unset"))
for name in before:   # chapters of an earlier part have ended
    assert Path(folder, name + ".end").exists(), name + " had not ended"
t0 = time.monotonic()
while partner and not Path(folder, partner + ".start").exists():
    assert time.monotonic() - t0 < 60, partner + " never started beside " + me
    time.sleep(0.05)
Path(folder, me + ".end").write_text("done")
"""


@pytest.fixture
def two_part_book(tiny_book):
    """tiny_book with parts: a and b in the first (each waits until the other has started),
    c in the second (it checks that a and b have ended)."""
    for me, partner, before in (("a", "b", []), ("b", "a", []), ("c", "", ["a", "b"])):
        py = tiny_book / "notebooks" / f"{me}.py"
        py.write_text(MEET.format(me=me, partner=partner, before=before))
        jupytext.write(jupytext.read(py), py.with_suffix(".ipynb"))
    (tiny_book / "_toc.yml").write_text(textwrap.dedent("""\
        format: jb-book
        root: book/index
        parts:
          - caption: one
            chapters:
              - file: notebooks/a
              - file: notebooks/b
          - caption: two
            chapters:
              - file: notebooks/c
        """))
    return tiny_book


def test_jobs_run_one_part_side_by_side(two_part_book, tmp_path, monkeypatch, capsys):
    """--jobs 2 (real papermill runs): a and b each wait for the other to start, so they only
    finish side by side; c starts after both ended; a and b get half the cores each, c, the
    last chapter and alone, all of them."""
    monkeypatch.setattr(book, "available_cpus", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    meet = tmp_path / "meet"
    meet.mkdir()
    argv = ["--root", str(two_part_book), "--no-build", "-p", "folder", str(meet)]
    assert book.main(argv + ["--jobs", "2"]) == 0, capsys.readouterr().out
    assert {p.name for p in meet.iterdir()} == {"a.start", "a.end", "b.start", "b.end",
                                                "c.start", "c.end"}
    assert [(meet / f"{n}.start").read_text() for n in "abc"] == ["2", "2", "4"]
    assert "OMP_NUM_THREADS" not in os.environ, "the kernels' environment must not leak"
    log = json.loads((two_part_book / "_build/executed/smoke/run-log.json").read_text())
    assert sorted(e["notebook"] for e in log["notebooks"]) == ["a", "b", "c"]
    assert {e["status"] for e in log["notebooks"]} == {"ok"}


def test_a_chapter_starts_when_what_it_reads_has_ended(two_part_book, tmp_path, capsys):
    """c (second part) declares ``reads: [b]`` and meets a: it starts as soon as b has ended,
    beside a (which waits for it), instead of after the whole first part; b meets nobody."""
    header = "# jupyter:\n#   ferlib:\n#     reads: [b]\n#     seconds: 5\n"
    for me, partner, before in (("a", "c", []), ("b", "", []), ("c", "a", ["b"])):
        py = two_part_book / "notebooks" / f"{me}.py"
        text = MEET.format(me=me, partner=partner, before=before)
        py.write_text(text.replace("# jupyter:\n", header, 1) if me == "c" else text)
    meet = tmp_path / "meet"
    meet.mkdir()
    argv = ["--root", str(two_part_book), "--no-build", "--jobs", "2", "-p", "folder", str(meet)]
    assert book.main(argv) == 0, capsys.readouterr().out
    assert len(list(meet.glob("*.end"))) == 3


def test_chapter_plan_reads_the_py_header(tmp_path):
    py = tmp_path / "c.py"
    body = MEET.format(me="c", partner="", before=[])
    py.write_text(body.replace("# jupyter:\n", "# jupyter:\n#   ferlib:\n#     reads: [a]\n"
                                                "#     seconds: 12.5\n", 1))
    assert book.chapter_plan(py, ["a", "b"]) == book.ChapterPlan(("a",), 12.5)
    plain = tmp_path / "d.py"
    plain.write_text(body)
    assert book.chapter_plan(plain, ["a", "b"]) == book.ChapterPlan(("a", "b"), 0.0)
    with pytest.raises(book.BookError, match=r"c.py: metadata ferlib.reads names z: a chapter "
                                             r"may read only chapters of earlier toc parts \(a\)"):
        book.chapter_plan(_with_reads(py, "[z]"), ["a"])
    with pytest.raises(book.BookError, match="must be a list of chapter names"):
        book.chapter_plan(_with_reads(py, "a"), ["a"])
    with pytest.raises(book.BookError, match=r"unknown key\(s\) after: use reads, seconds"):
        book.chapter_plan(_with_reads(py, "[a]\n#     after: 3"), ["a"])


def _with_reads(py, value):
    text = re.sub(r"reads: .*\n", f"reads: {value}\n", py.read_text(), count=1)
    py.write_text(text)
    return py


def test_critical_paths_by_hand():
    """02 (80 s) feeds 05 (270 s) and 07 (70 s) reads both and 06 (220 s): 02's chain is
    80 + 270 + 70 = 420 s, longer than 06's 220 + 70 = 290 s, so 02 goes first although 06 is
    the longer chapter; 00 (10 s) has nothing after it."""
    reads = {"00": (), "02": (), "05": ("02",), "06": (), "07": ("02", "05", "06")}
    seconds = {"00": 10, "02": 80, "05": 270, "06": 220, "07": 70}
    assert book.critical_paths(reads, seconds) == {"00": 10, "02": 420, "05": 340, "06": 290,
                                                   "07": 70}


def test_the_chapters_say_what_they_read():
    """The book's own plan: every chapter that reuses chapter 02's baseline reads it, and the
    comparison reads the four papers' chapters whose records it reuses."""
    parts = book.toc_parts(ROOT)
    earlier = book.earlier_parts(ROOT)
    assert earlier["05_adjacency_threshold_tuning"] == parts[0]
    plans = {n: book.chapter_plan(ROOT / "notebooks" / f"{n}.py", earlier[n]) for n in earlier}
    assert all(plan.seconds > 0 for plan in plans.values())
    assert plans["07_comparison"].reads == tuple(n for n in sum(parts[:2], []) if n >= "02")
    for name in ("03_ahm_semantic_space", "04_latent_covariance_augmentation",
                 "05_adjacency_threshold_tuning"):
        assert plans[name].reads == ("02_baseline",), name
    for name in ("00_introduction", "01_data", "02_baseline", "06_uncertainty_and_imbalance"):
        assert plans[name].reads == (), name


def test_jobs_one_runs_in_order(two_part_book, monkeypatch):
    calls = []

    def fake_execute(ipynb, output, params, cfg):
        calls.append((ipynb.stem, os.environ.get("OMP_NUM_THREADS")))
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ipynb, output)

    monkeypatch.setattr(book, "_execute", fake_execute)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert book.main(["--root", str(two_part_book), "--no-build", "--jobs", "1"]) == 0
    assert calls == [("a", None), ("b", None), ("c", None)]


def test_jobs_failure_is_reported(two_part_book, tmp_path, capsys):
    """A notebook failing in a worker process is named with its cell, its partner in the part
    still finishes, and the next part does not start."""
    (two_part_book / "notebooks" / "a.py").write_text(MEET.format(me="a", partner="", before=[]))
    (two_part_book / "notebooks" / "b.py").write_text(
        MEET.format(me="b", partner="", before=[]).replace("import os, time",
                                                           "raise ValueError('b breaks')"))
    meet = tmp_path / "meet"
    meet.mkdir()
    argv = ["--root", str(two_part_book), "--no-build", "--jobs", "2", "-p", "folder", str(meet)]
    assert book.main(argv) == 1
    out = capsys.readouterr().out
    assert "b: FAILED" in out and "ValueError: b breaks" in out, out
    assert (meet / "a.end").exists() and "a: ok" in out
    assert not (meet / "c.start").exists(), "the second part must not start after a failure"


def test_jobs_option(monkeypatch, capsys):
    monkeypatch.setattr(book, "available_cpus", lambda: 2)
    assert book.parse_jobs("auto", "smoke") == 2 and book.parse_jobs("auto", "cpu") == 1
    assert book.parse_jobs("3", "cpu") == 3
    monkeypatch.setattr(book, "available_cpus", lambda: 1)
    assert book.parse_jobs("auto", "smoke") == 1
    for bad in ("0", "two", "-1"):
        assert book.main(["--root", str(ROOT), "--no-build", "--jobs", bad]) == 2
        assert f"--jobs {bad!r}: give a whole number >= 1, or auto" in capsys.readouterr().err


def test_widget_cells_get_a_short_timeout(tiny_book, monkeypatch, capsys):
    """A smoke cell tagged "widget" gets WIDGET_CELL_TIMEOUT, the others SMOKE_CELL_TIMEOUT
    (nbclient's timeout_func, a real papermill run): a tagged cell that hangs fails in seconds,
    after the one retry, naming the timeout."""
    assert book.smoke_cell_timeout({"metadata": {"tags": ["widget"]}}) == book.WIDGET_CELL_TIMEOUT
    assert book.smoke_cell_timeout({"metadata": {}}) == book.SMOKE_CELL_TIMEOUT == 300
    py = tiny_book / "notebooks" / "tiny.py"
    py.write_text(py.read_text() + '\n# %% tags=["widget"]\nimport time\ntime.sleep(120)\n')
    monkeypatch.setattr(book, "WIDGET_CELL_TIMEOUT", 2)
    import time as _time
    t0 = _time.monotonic()
    assert book.main(["--root", str(tiny_book), "--no-build", "--only", "tiny"]) == 1
    out = capsys.readouterr().out
    assert _time.monotonic() - t0 < 60, "the tagged cell must not wait for the long timeout"
    assert "tiny: a cell timed out; running the notebook once more" in out, out
    assert "FAILED" in out and "timed out" in out.split("FAILED", 1)[1], out
