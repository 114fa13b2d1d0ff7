"""Back-links from the library to the book cannot rot: every reference in ``ferlib`` to a
chapter section, written as

    notebooks/NN_name, "Heading"        chapter NN_name ("Heading")
    notebooks/NN_name, "Heading" and "Other heading"

names a notebook that exists and a markdown heading of that notebook's ``.py`` source. A named
heading matches a heading equal to it, or one that continues it after ``:``, ``,`` or `` (``
("The experiment" matches "The experiment: baseline vs baseline + AHM"). A reference to a
chapter without a heading (``notebooks/NN_name``) must name an existing notebook.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

# a chapter name not inside a string or code literal of its own ("02_baseline" in code and
# ``05_x`` in an example are not links) and not a file name (02_baseline.ipynb)
_CHAPTER = re.compile(r'(?<![\w"\'`/.-])(?:notebooks/)?(?P<nb>\d\d_[a-z0-9_]+)\b(?!\.)')
_HEADINGS = re.compile(r'\s*[,;:(]?\s*(?P<heads>"[^"]+"(?:\s*(?:, and|,|and)\s*"[^"]+")*)')
_QUOTED = re.compile(r'"([^"]+)"')


def headings(notebook: Path) -> list[str]:
    """Markdown headings (``# ## Title`` lines of ``# %% [markdown]`` cells) of a Jupytext
    percent-format notebook, without the leading hashes."""
    out, markdown = [], False
    for line in notebook.read_text().splitlines():
        if line.startswith("# %%"):
            markdown = "[markdown]" in line
        elif markdown:
            m = re.match(r"#\s*#{1,6}\s+(.*\S)\s*$", line)
            if m:
                out.append(m.group(1))
    return out


def heading_matches(name: str, heading: str) -> bool:
    return heading == name or any(heading.startswith(name + sep) for sep in (":", ",", " ("))


def references(text: str) -> list[tuple[str, list[str]]]:
    """``(notebook, [headings named])`` for every chapter reference in ``text`` (line breaks,
    indentation and comment hashes between the parts are allowed)."""
    flat = re.sub(r"\s*\n\s*(?:#\s*)?", " ", text)
    out = []
    for m in _CHAPTER.finditer(flat):
        tail = _HEADINGS.match(flat, m.end())
        out.append((m.group("nb"), _QUOTED.findall(tail.group("heads")) if tail else []))
    return out


def _all_references():
    for path in sorted((ROOT / "ferlib").rglob("*.py")):
        for nb, heads in references(path.read_text()):
            yield path.relative_to(ROOT), nb, heads


REFS = list(_all_references())


def test_the_scan_finds_the_references():
    named = [(p, nb, h) for p, nb, heads in REFS for h in heads]
    assert len(named) >= 30
    assert (Path("ferlib/train/engine.py"), "02_baseline", "The training engine") in named


def test_every_back_link_resolves():
    broken = []
    for path, nb, heads in REFS:
        source = NOTEBOOKS / f"{nb}.py"
        if not source.is_file():
            broken.append(f"{path}: notebooks/{nb}.py does not exist")
            continue
        have = headings(source)
        for h in heads:
            if not any(heading_matches(h, x) for x in have):
                broken.append(f"{path}: {nb} has no heading {h!r}")
    assert not broken, "docstring back-links that name no existing chapter section:\n" + \
        "\n".join(broken)


@pytest.mark.parametrize("text, expected", [
    ('see notebooks/02_baseline, "The training engine").', [("02_baseline", ["The training engine"])]),
    ('chapter notebooks/06_x ("A"), where', [("06_x", ["A"])]),
    ('notebooks/03_y, "A" and "B (Eq. 1)".', [("03_y", ["A", "B (Eq. 1)"])]),
    ('(chapter 01_data,\n    "FER2013").', [("01_data", ["FER2013"])]),
    ('    # see notebooks/05_z,\n    # "Heading"', [("05_z", ["Heading"])]),
    ('Runner(fn, "dan", "04_latent", "DAN")', []),               # a string in code, not a link
    ('written to notebooks/02_baseline.ipynb', []),               # a file name
    ('``notebooks/05_x.py`` / ``05_x``', []),                     # examples in code literals
    ('(notebooks/07_comparison)', [("07_comparison", [])]),
])
def test_reference_grammar(text, expected):
    assert references(text) == expected


def test_heading_rules(tmp_path):
    nb = tmp_path / "01_x.py"
    nb.write_text('# %% [markdown]\n# # Title\n# ## The experiment: a vs b\n\n# %%\n# ## not md\n')
    assert headings(nb) == ["Title", "The experiment: a vs b"]
    assert heading_matches("The experiment", "The experiment: a vs b")
    assert not heading_matches("The exp", "The experiment: a vs b")
    assert not heading_matches("Title", "Titles")
