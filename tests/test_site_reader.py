"""The website as a reader sees it: equations typeset (MathJax served with the site) and checked,
papermill's injected cell hidden with its values said once.

Pure tests: the site check's inspection of a rendered page
(:func:`ferlib.book.sitecheck.inspect_rendered`, on HTML strings) and the runner's staging
(:func:`ferlib.book.show_parameters_once`, :func:`ferlib.book.serve_mathjax`). One browser test
(marked ``slow``, about 20 s) builds a small book with Jupyter Book, MathJax served from the pinned
local copy, one page of good math, one of deliberately bad TeX and one showing an injected cell, and
runs the site check on it offline; it is skipped when Debian's ``chromium`` is absent or MathJax
cannot be had (no ``npm``).
"""
from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import nbformat
import pytest
import yaml

from ferlib.book import runner as book
from ferlib.book.sitecheck import check_site, inspect_rendered

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ inspecting a rendered page

TYPESET = ('<mjx-container class="MathJax" jax="CHTML"><mjx-math><mjx-mi class="mjx-i">'
           '<mjx-c class="mjx-c1D465"></mjx-c></mjx-mi></mjx-math><mjx-assistive-mml>'
           '<math><mi>x</mi></math></mjx-assistive-mml></mjx-container>')
BAD = ('<mjx-container class="MathJax" jax="CHTML"><mjx-math><mjx-merror '
       'data-mjx-error="Undefined control sequence \\nope" title="Undefined control sequence '
       '\\nope"><mjx-mtext><mjx-c class="mjx-c55"></mjx-c></mjx-mtext></mjx-merror></mjx-math>'
       '<mjx-assistive-mml><math><merror data-mjx-error="Undefined control sequence \\nope">'
       '<mtext>Undefined control sequence \\nope</mtext></merror></math></mjx-assistive-mml>'
       '</mjx-container>')


def _page(body):
    return (f"<html><head><title>t</title><script>var s = '\\\\(x\\\\)';</script></head>"
            f"<body><nav>Home</nav><article>{body}</article></body></html>")


def test_a_typeset_page_passes():
    found = inspect_rendered(_page(f"<p>Let {TYPESET} be a face.</p><div>{TYPESET}</div>"))
    assert (found.equations, found.raw_tex, found.errors, found.injected_cells) == (2, [], [], 0)
    assert found.problems() == []


@pytest.mark.parametrize("raw", ["\\(C_s[i,j]\\)", "\\[ A_{ij} \\]", "$$ x $$",
                                 "\\begin{align} a &= b \\end{align}"])
def test_raw_tex_left_in_the_text_fails(raw):
    found = inspect_rendered(_page(f'<p>Eq. 3: <span class="math notranslate">{raw}</span>.</p>'))
    assert found.equations == 0 and len(found.raw_tex) == 1
    assert raw.split()[0][:3] in found.raw_tex[0]
    assert "raw TeX" in found.problems()[0]


def test_tex_in_code_scripts_and_typeset_output_is_not_raw():
    html = _page("<pre>print(r'\\(x\\)')</pre><p><code>$$</code> and "
                 f"<code>\\begin{{align}}</code> in code; {TYPESET}</p>"
                 "<textarea>\\[y\\]</textarea>")
    assert inspect_rendered(html).raw_tex == []


def test_a_mathjax_error_fails_once_per_equation_with_its_message():
    found = inspect_rendered(_page(f"<p>{TYPESET} then {BAD}</p>"))
    assert found.equations == 2
    assert found.errors == ["Undefined control sequence \\nope"]
    assert found.problems() == ["MathJax error: Undefined control sequence \\nope"]
    # an error node with no attribute: its text is the message; SVG output marks it too
    found = inspect_rendered(_page("<math><merror><mtext>Missing argument for \\frac</mtext>"
                                   "</merror></math><svg><g data-mml-node=\"merror\"><text>E</text>"
                                   "</g></svg>"))
    assert found.errors == ["Missing argument for \\frac", "E"]


def test_an_undefined_macro_shown_in_red_is_an_error():
    """MathJax's noundefined package (the book drops it) typesets ``\\nope`` as red text."""
    red = ('<mjx-container><mjx-math><mjx-mtext style="color: red;"><mjx-c></mjx-c></mjx-mtext>'
           '</mjx-math><mjx-assistive-mml><math><mtext mathcolor="red">\\nope</mtext><mtext '
           'mathcolor="red">not a macro</mtext></math></mjx-assistive-mml></mjx-container>')
    assert inspect_rendered(_page(red)).errors == ["Undefined control sequence \\nope"]


def test_papermill_injected_cell_is_found():
    injected = ('<div class="cell tag_injected-parameters docutils container"><div class='
                '"cell_input"><pre><span></span><span class="c1"># Parameters</span>\n'
                'profile = <span>"smoke"</span>\n</pre></div></div>')
    assert inspect_rendered(_page(injected)).injected_cells == 2   # the tag and the code
    untagged = '<pre><span></span><span class="c1"># Parameters</span>\nprofile = "cpu"\n</pre>'
    found = inspect_rendered(_page(untagged))
    assert found.injected_cells == 1 and "injected-parameters" in found.problems()[0]
    # the chapter's own parameters cell, and prose that says "# Parameters", are fine
    own = '<div class="cell tag_parameters"><pre>profile = "smoke"\ndevice = "auto"\n</pre></div>'
    assert inspect_rendered(_page(own + "<p># Parameters</p>")).injected_cells == 0


# ------------------------------------------------------------------ staging: what the site gets

def _executed_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter"),
                nbformat.v4.new_code_cell('profile = "smoke"\ndevice = "auto"',
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('# Parameters\nprofile = "cpu"\ndevice = "cuda"\n'
                                          'data_root = "/data/fer `x`"\n',
                                          metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("print(profile)")]
    nb.metadata["papermill"] = {"parameters": {"data_root": "/data/fer `x`", "device": "cuda",
                                               "profile": "cpu"}}
    return nb


def test_injected_cell_is_hidden_and_its_values_said_once():
    nb = _executed_notebook()
    assert book.show_parameters_once(nb)
    tags = [c.metadata.get("tags") for c in nb.cells]
    assert tags[2] == ["injected-parameters", "remove-cell"]   # kept, hidden on the page
    note = nb.cells[3]
    assert note.cell_type == "markdown" and note.source.startswith("This page was run with ")
    # in the injected cell's order, not the metadata's (sorted when the notebook is saved)
    assert 'with `profile = "cpu"`, `device = "cuda"`' in note.source
    assert "`` data_root = \"/data/fer `x`\" ``" in note.source
    assert [c.source for c in nb.cells[4:]] == ["print(profile)"]
    nbformat.validate(nb)
    # a second staging of the same notebook changes nothing more; a committed one has no cell
    assert book.show_parameters_once(nb) and nb.cells[2].metadata["tags"].count("remove-cell") == 1
    plain = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    assert not book.show_parameters_once(plain) and len(plain.cells) == 1


def test_staged_chapter_hides_the_injected_cell(tmp_path):
    source, staged = tmp_path / "run.ipynb", tmp_path / "staged.ipynb"
    nbformat.write(_executed_notebook(), source)
    book._stage_notebook(source, staged)
    assert nbformat.read(source, as_version=4).cells[2].metadata["tags"] == ["injected-parameters"]
    assert "remove-cell" in nbformat.read(staged, as_version=4).cells[2].metadata["tags"]


def test_serve_mathjax_points_sphinx_at_the_local_copy(tmp_path):
    mathjax = tmp_path / "mathjax"
    (mathjax / "input").mkdir(parents=True)
    (mathjax / book.MATHJAX_ENTRY).write_text("/* MathJax */")
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy2(ROOT / "_config.yml", src / "_config.yml")
    book.serve_mathjax(src, mathjax)
    config = yaml.safe_load((src / "_config.yml").read_text())
    assert config["sphinx"]["config"]["mathjax_path"] == "mathjax/tex-mml-chtml.js"
    assert config["sphinx"]["config"]["html_static_path"] == ["_vendor"]
    assert (src / "_vendor" / "mathjax" / book.MATHJAX_ENTRY).is_file()
    # the rest of the book's configuration is untouched
    original = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["parse"] == original["parse"] and config["title"] == original["title"]
    assert config["sphinx"]["local_extensions"] == original["sphinx"]["local_extensions"]


def test_no_local_mathjax_without_npm(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))   # no npm here: the pages use the CDN
    assert book.local_mathjax(tmp_path) is None
    assert book.local_mathjax(tmp_path, fetch=False) is None


# ------------------------------------------------------------------ in a browser, offline

PAGES = {
    "index.md": """\
        # Good math

        Inline $h_i\\in\\mathbb R^D$, a cosine $\\;C_s[i,j] = \\dfrac{h_i^\\top h_j}{\\lVert h_i\\rVert}$
        and a display:

        $$ A_{ij} = \\begin{cases} 1 & C_s[i,j]\\ge\\tau_1\\\\ 0 & \\text{otherwise}\\end{cases} $$

        \\begin{align}
        a &= b + c
        \\end{align}
        """,
    "bad.md": """\
        # Bad TeX

        This one is fine: $x^2$. This one is not: $\\frac{1}$, and neither is

        $$ \\undefinedmacro{y} $$
        """,
    "injected.md": """\
        # An injected cell shown

        ```python
        # Parameters
        profile = "smoke"
        ```
        """,
}


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory):
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    mathjax = book.local_mathjax(ROOT)   # the book's pinned copy (fetched with npm once)
    if mathjax is None:
        pytest.skip("no local MathJax: npm is missing or the npm registry cannot be reached")
    src = tmp_path_factory.mktemp("tinybook")
    # the book's own configuration, extension, favicon and bibliography: its pages, not a toy's
    shutil.copy2(ROOT / "_config.yml", src / "_config.yml")
    for part in ("book/_ext", "book/images/favicon.png", "book/references.bib"):
        (src / part).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (ROOT / part).is_dir() else shutil.copy2)(ROOT / part, src / part)
    (src / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n"
                                  "  - file: bad\n  - file: injected\n")
    for name, text in PAGES.items():
        (src / name).write_text(textwrap.dedent(text))
    book.serve_mathjax(src, mathjax)
    proc = subprocess.run(book._jupyter_book_exe() + ["build", str(src), "--builder", "html",
                                                      "-W", "-n", "--keep-going"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return src


@pytest.mark.slow
def test_site_check_typesets_good_math_and_fails_on_bad_tex(tiny_site, tmp_path):
    html = tiny_site / "_build" / "html"
    assert "_static/mathjax/tex-mml-chtml.js" in (html / "index.html").read_text()
    reports = {r.page: r for r in check_site(html, tiny_site / "_toc.yml", screenshots=tmp_path)}
    good, bad, injected = reports["index"], reports["bad"], reports["injected"]
    assert good.problems == [] and good.equations == 4 and good.mathjax == book.MATHJAX_VERSION
    assert not [e for r in reports.values() for e in r.external]   # nothing went off-site
    errors = [p for p in bad.problems if p.startswith("MathJax error")]
    assert errors == ["MathJax error: Missing argument for \\frac",
                      "MathJax error: Undefined control sequence \\undefinedmacro"], bad.problems
    assert bad.equations == 3
    assert injected.problems and "injected-parameters" in injected.problems[0]
    assert (tmp_path / "site.png").stat().st_size > 1000


@pytest.mark.slow
def test_site_check_fails_where_mathjax_cannot_load(tiny_site, tmp_path):
    """The same page with MathJax from a CDN that cannot be reached: its equations stay raw TeX
    and the check fails; with the CDN mirrored (``--cdn``), they are typeset again."""
    site = tmp_path / "html"
    shutil.copytree(tiny_site / "_build" / "html", site)
    page = site / "index.html"
    local = page.read_text()
    page.write_text(local.replace("_static/mathjax/tex-mml-chtml.js",
                                  "https://cdn.invalid/npm/mathjax@3/es5/tex-mml-chtml.js"))
    report = check_site(site, tiny_site / "_toc.yml")[0]
    assert report.mathjax is None and report.equations == 0
    assert any("left as raw TeX" in p for p in report.problems), report.problems
    assert any(p.startswith("MathJax did not run") for p in report.problems), report.problems
    # a stock Jupyter Book page (Sphinx's CDN URL), with the CDN mirrored as --fetch-cdn does
    page.write_text(local.replace("_static/mathjax/tex-mml-chtml.js",
                                  "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"))
    cdn = tmp_path / "cdn"
    shutil.copytree(site / "_static" / "mathjax", cdn / "cdn.jsdelivr.net/npm/mathjax@3/es5")
    report = check_site(site, tiny_site / "_toc.yml", cdn_dir=cdn)[0]
    assert report.problems == [] and report.equations == 4
