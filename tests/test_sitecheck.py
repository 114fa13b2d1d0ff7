"""The site check reads the table of contents in its order (root, then every chapter)."""
from pathlib import Path

from ferlib.book.sitecheck import (_error_source, _is_local, notebooks_with_images,
                              notebooks_with_widgets, toc_pages)

ROOT = Path(__file__).resolve().parents[1]


def test_toc_pages_follow_the_toc(tmp_path):
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: book/index\nparts:\n"
                   "  - caption: A\n    chapters:\n      - file: notebooks/00_x\n"
                   "        sections:\n          - file: notebooks/00_y.ipynb\n"
                   "  - caption: B\n    chapters:\n      - file: book/z\n")
    assert toc_pages(toc) == ["book/index", "notebooks/00_x", "notebooks/00_y", "book/z"]


def test_the_books_toc_has_every_chapter():
    pages = toc_pages(ROOT / "_toc.yml")
    assert pages[0] == "book/index"
    assert "book/scoreboard" in pages and "notebooks/07_comparison" in pages


def test_local_and_offsite_urls():
    base = "http://127.0.0.1:8000"
    assert _is_local(f"{base}/x.js", base) and _is_local("data:image/png;base64,AA", base)
    assert not _is_local("https://cdn.example.org/mathjax.js", base)
    # the widget manager's icon fonts, looked up relative to the page: its problem, not ours
    assert not _is_local(f"{base}/notebooks/@jupyter-widgets/1551f4.woff2", base)


def test_error_source_is_the_innermost_frame():
    class Err:
        stack = ("TypeError: Cannot read properties of undefined (reading 'Queue')\n"
                 "    at t (https://cdn.example.org/npm/embed-amd.js:6:123901)\n"
                 "    at http://127.0.0.1:8000/notebooks/a.html:10:5")
    assert _error_source(Err()) == "https://cdn.example.org/npm/embed-amd.js"
    Err.stack = "ReferenceError: x is not defined\n    at http://127.0.0.1:8000/a.html:3:1"
    assert _error_source(Err()) == "http://127.0.0.1:8000/a.html"
    Err.stack = None
    assert _error_source(Err()) == ""


def test_pages_with_widget_outputs(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "w.ipynb").write_text(
        '{"cells": [{"outputs": [{"data": {"application/vnd.jupyter.widget-view+json": {}}}]}]}')
    (tmp_path / "notebooks" / "n.ipynb").write_text('{"cells": []}')
    assert notebooks_with_widgets(tmp_path, ["notebooks/w", "notebooks/n", "notebooks/missing"]) \
        == {"notebooks/w"}


def test_pages_with_image_outputs(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "a.ipynb").write_text('{"outputs": [{"data": {"image/png": "AA"}}]}')
    (tmp_path / "notebooks" / "b.ipynb").write_text('{"outputs": []}')
    assert notebooks_with_images(tmp_path, ["notebooks/a", "notebooks/b"]) == {"notebooks/a"}
