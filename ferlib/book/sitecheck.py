"""Open the built website in a real browser (headless Chromium via Playwright) and check that
every page of the table of contents loads cleanly and shows what a reader should see.

For each page: no console errors, no uncaught page errors, no failed requests for the site's
own files (an off-site resource such as a CDN script is listed but does not fail the check:
this machine has no network, a reader's browser has; so are errors raised inside such a
script, e.g. the widget manager's, and its icon-font lookups), and every
``<img>`` decoded (``naturalWidth > 0``). Chapters whose executed notebook holds image outputs
must show at least one figure.

Equations. Every page must typeset all its math: once MathJax is done, no raw TeX delimiter
(``\\(``, ``\\[``, ``$$``, ``\\begin{``) may be left in the page's text and no MathJax error node
(``mjx-merror`` / ``merror``: bad TeX) may be on it (:func:`inspect_rendered`, a pure function
of the rendered HTML). The book serves its own pinned MathJax (``ferlib.book`` fetches it from
the npm registry), so this holds offline; a site that loads MathJax from its CDN fails it here
unless ``--cdn`` mirrors it too. Papermill's injected-parameters cell must not be shown either.

Screenshots. ``--screenshots DIR`` saves ``DIR/site.png`` (the landing page, the README's
picture) and ``DIR/chapter.png`` (the first chapter showing a typeset equation and a rendered
widget, framed around both), so the pictures always show the current site::

    python -m ferlib.book.sitecheck _build/html --cdn _build/cdn --fetch-cdn \\
        --screenshots book/images

The site is served from a loopback HTTP server (``127.0.0.1``, a free port), as a reader's
browser would get it; nothing leaves the machine.

Widgets. The executed notebooks keep their widgets' state, and the pages render it with the
widget manager that myst-nb loads from a CDN (``require.js`` and
``@jupyter-widgets/html-manager``). With ``--cdn DIR`` the browser gets those files from a local
mirror (``DIR/<host>/<path>``; ``--fetch-cdn`` fills it from the npm registry for the versions
the pages name) and every page whose notebook has a widget must then render one
(``.jupyter-widgets`` elements). Without a mirror the widget check is reported as not run.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class PageReport:
    page: str
    images: int = 0
    widgets: int | None = None   # rendered widget elements (None: no mirror, not checked)
    equations: int = 0           # equations MathJax typeset
    mathjax: str | None = None   # the MathJax version that ran on the page (None: none did)
    problems: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)  # off-site resources (a CDN): not ours


# ----------------------------------------------------------------------------------------------
# What a reader sees: the rendered page, inspected as HTML (a pure function, tested on strings)
# ----------------------------------------------------------------------------------------------

#: TeX delimiters that MathJax replaces by typeset math: one left in a page's text is an
#: equation a reader sees as raw TeX (MathJax missing, or the equation not processed)
#: (its value stays off the API page, where MathJax would take it for an equation)
#:
#: :meta hide-value:
RAW_TEX = {"\\(": "\\)", "\\[": "\\]", "$$": "$$", "\\begin{": "\\end{"}
#: elements whose text is not the page's prose: what MathJax itself skips (code, scripts) and
#: its own output (``mjx-container``, whose errors are looked at separately)
_NOT_PROSE = {"script", "style", "noscript", "textarea", "pre", "code", "annotation",
              "annotation-xml", "mjx-container", "svg", "math", "title"}
#: the first line of papermill's injected-parameters cell
INJECTED_HEADER = "# Parameters"


@dataclass
class Rendered:
    """What :func:`inspect_rendered` found on one page."""
    equations: int = 0                                  # typeset equations (mjx-container)
    raw_tex: list[str] = field(default_factory=list)    # text around each raw delimiter left
    errors: list[str] = field(default_factory=list)     # MathJax error messages (merror)
    injected_cells: int = 0                             # papermill injected cells shown

    def problems(self) -> list[str]:
        out = []
        if self.raw_tex:
            shown = "; ".join(repr(t) for t in self.raw_tex[:3])
            more = f" (+{len(self.raw_tex) - 3} more)" if len(self.raw_tex) > 3 else ""
            out.append(f"{len(self.raw_tex)} equation(s) left as raw TeX, not typeset: "
                       f"{shown}{more}")
        out += [f"MathJax error: {e}" for e in self.errors]
        if self.injected_cells:
            out.append(f"papermill's injected-parameters cell is shown ({self.injected_cells}x): "
                       "it should be hidden (tag remove-cell)")
        return out


def inspect_rendered(html: str) -> Rendered:
    """Inspect a page as the browser rendered it (``page.content()`` once MathJax is done).

    - every ``mjx-container`` is one typeset equation;
    - a MathJax error node (``mjx-merror`` in its output, ``merror`` in MathML, or
      ``data-mml-node="merror"`` in SVG output; one per equation) is an error, with MathJax's
      message (its ``data-mjx-error`` attribute or its text); so is an undefined macro that
      MathJax's ``noundefined`` package shows as red text (``<mtext mathcolor="red">\\foo``);
    - a TeX delimiter (:data:`RAW_TEX`) left in the prose (outside code, scripts and MathJax's
      output) is an equation that was not typeset;
    - a code cell tagged ``injected-parameters``, or a code block starting with papermill's
      ``# Parameters`` line, is the injected cell shown to the reader.
    """
    from html.parser import HTMLParser

    found = Rendered()
    prose: list[str] = []

    class Parser(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.skip: list[str] = []         # open elements of _NOT_PROSE (nesting)
            self.container_error = False      # the current mjx-container has had its error
            self.error: dict | None = None    # the error element being read
            self.pre: list[str] | None = None  # text of the code block being read
            self.red: list[str] | None = None  # text of a red mtext (an undefined macro)

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if "tag_injected-parameters" in (attrs.get("class") or "").split():
                found.injected_cells += 1
            if tag == "mjx-container":
                found.equations += 1
                self.container_error = False
            if self.error is not None:
                self.error["depth"] += tag == self.error["tag"]
            elif tag in ("mjx-merror", "merror") or attrs.get("data-mml-node") == "merror":
                inside = "mjx-container" in self.skip
                if not (inside and self.container_error):   # one per equation
                    self.container_error = inside
                    self.error = {"tag": tag, "depth": 0, "text": [],
                                  "message": attrs.get("data-mjx-error") or attrs.get("title")}
            if tag == "pre" and self.pre is None:
                self.pre = []
            if tag == "mtext" and attrs.get("mathcolor") == "red":   # MathJax's noundefined
                self.red = []
            if tag in _NOT_PROSE:
                self.skip.append(tag)

        def handle_endtag(self, tag):
            if self.error is not None and tag == self.error["tag"]:
                if self.error["depth"]:
                    self.error["depth"] -= 1
                else:
                    text = " ".join("".join(self.error["text"]).split())
                    found.errors.append(self.error["message"] or text or "(no message)")
                    self.error = None
            if tag == "mtext" and self.red is not None:
                macro = "".join(self.red).strip()
                if macro.startswith("\\"):
                    found.errors.append(f"Undefined control sequence {macro}")
                self.red = None
            if tag == "pre" and self.pre is not None:
                if "".join(self.pre).lstrip().startswith(INJECTED_HEADER + "\n"):
                    found.injected_cells += 1
                self.pre = None
            if tag in self.skip:   # close it, and whatever was left open inside it
                del self.skip[len(self.skip) - 1 - self.skip[::-1].index(tag):]

        def handle_data(self, data):
            if self.error is not None:
                self.error["text"].append(data)
            if self.pre is not None:
                self.pre.append(data)
            if self.red is not None:
                self.red.append(data)
            if not self.skip:
                prose.append(data)

    Parser().feed(html)
    text = "".join(prose)
    for opening, closing in RAW_TEX.items():
        start = 0
        while (i := text.find(opening, start)) >= 0:
            end = text.find(closing, i + len(opening))
            end = len(text) if end < 0 else end + len(closing)
            tex = " ".join(text[i:end].split())
            found.raw_tex.append(tex if len(tex) <= 60 else tex[:57] + "...")
            start = end
    return found


# the widget manager looks its icon fonts up relative to the page (not to its CDN folder):
# those requests fail on any host, so they are the manager's, not the site's
WIDGET_MANAGER_ASSETS = "/@jupyter-widgets/"   # the site itself has no such folder


def _is_local(url: str, base: str) -> bool:
    if WIDGET_MANAGER_ASSETS in url:
        return False
    return not url or url.startswith(base) or url.startswith(("data:", "blob:", "about:"))


def _error_source(error) -> str:
    """The script URL of an uncaught error's innermost frame ('' when unknown)."""
    import re
    m = re.search(r"\((https?://[^)\s]+?):\d+:\d+\)|at (https?://\S+?):\d+:\d+", getattr(error, "stack", "") or "")
    return (m.group(1) or m.group(2)) if m else ""


def toc_pages(toc_path="_toc.yml") -> list[str]:
    """Document names in the order of ``_toc.yml`` (root first)."""
    from ferlib.book.runner import toc_entries
    return toc_entries(Path(toc_path).parent)


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError("no Chromium found: install Debian's 'chromium' package "
                            "(apt-get install chromium)")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # one line per request would bury the report
        pass


def _serve(root: Path):
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _mirror_route(cdn_dir: Path, base: str):
    """A Playwright route handler answering off-site requests from ``cdn_dir/<host>/<path>``.

    The pages pin ``require.min.js`` with a subresource-integrity hash; npm ships that version
    unminified, so on the site's own pages the ``integrity`` attribute of a mirrored script is
    dropped (only in what this check's browser sees; the built files are not touched)."""
    import re

    def mirrored(url):
        parts = urlsplit(url)
        local = cdn_dir / parts.netloc / parts.path.lstrip("/")
        return local if parts.netloc and local.is_file() else None

    def drop_integrity(match):
        tag = match.group(0)
        src = re.search(r'src="([^"]+)"', tag)
        return re.sub(r'\s(integrity|crossorigin)="[^"]*"', "", tag) if src and mirrored(src.group(1)) else tag

    def handle(route):
        url = route.request.url
        if url.startswith(base):
            if url.split("?")[0].endswith(".html"):
                resp = route.fetch()
                body = re.sub(r"<script\b[^>]*>", drop_integrity, resp.text())
                route.fulfill(response=resp, body=body)
            else:
                route.continue_()
        elif mirrored(url):
            route.fulfill(path=str(mirrored(url)))
        else:
            route.continue_()
    return handle


#: waits for MathJax's first typesetting (and the fonts it asked for); returns the version that
#: ran, None when the page has no MathJax, "timeout" when it did not finish in time
_WAIT_FOR_MATHJAX = """async (ms) => {
  const mj = window.MathJax;
  if (!mj || !mj.startup || !mj.startup.promise) return null;
  const late = new Promise(r => setTimeout(() => r("timeout"), ms));
  const done = await Promise.race([mj.startup.promise.then(() => "done"), late]);
  if (document.fonts) await Promise.race([document.fonts.ready, new Promise(r => setTimeout(r, 3000))]);
  return done === "done" ? String(mj.version) : "timeout";
}"""

#: the vertical span (page coordinates) of a rendered widget and the typeset equation nearest to
#: it, the pair lying closest together on the page (for the chapter screenshot), or null
_WIDGET_AND_EQUATION = """() => {
  const box = e => { const r = e.getBoundingClientRect();
                     return [r.top + window.scrollY, r.bottom + window.scrollY]; };
  const widgets = [...document.querySelectorAll(".widget-subarea > .jupyter-widgets")]
                  .map(box).filter(([t, b]) => b - t > 20);
  const eqs = [...document.querySelectorAll("article mjx-container, main mjx-container")].map(box);
  let best = null;
  for (const [wt, wb] of widgets) for (const [t, b] of eqs) {
    const span = [Math.min(wt, t), Math.max(wb, b)];
    if (!best || span[1] - span[0] < best[1] - best[0]) best = span;
  }
  return best;
}"""

SCREENSHOT_SIZE = {"width": 1280, "height": 900}
#: the screenshots ``--screenshots DIR`` writes: the landing page (the README's), and the chapter
#: whose rendered widget and typeset equation lie closest together, framed around both
SITE_SHOT, CHAPTER_SHOT = "site.png", "chapter.png"


def _widget_and_equation(page) -> tuple[float, float] | None:
    span = page.evaluate(_WIDGET_AND_EQUATION)
    return tuple(span) if span else None


def _screenshot_around(page, span, path: Path) -> None:
    """A viewport screenshot (the site's header and sidebar included) scrolled so that ``span``
    is in the middle, or its top near the top of the window when it is taller than that."""
    top, bottom = span
    height = SCREENSHOT_SIZE["height"]
    y = (top + bottom - height) / 2 if bottom - top < height - 120 else top - 100
    page.evaluate("y => window.scrollTo(0, y)", max(0, y))
    page.wait_for_timeout(200)
    page.screenshot(path=str(path))
    page.evaluate("() => window.scrollTo(0, 0)")


def check_site(html_dir, toc_path="_toc.yml", screenshots=None, figure_pages=(),
               widget_pages=(), cdn_dir=None, mathjax_timeout_ms=30000) -> list[PageReport]:
    """Load every toc page; return one report per page (``problems`` empty when clean).
    ``widget_pages`` must render a widget when ``cdn_dir`` (a CDN mirror) is given. Every page
    must typeset all its math and must not show papermill's injected cell
    (:func:`inspect_rendered`). With ``screenshots`` (a folder) the landing page and one
    chapter with an equation and a widget are saved there (:data:`SITE_SHOT`,
    :data:`CHAPTER_SHOT`)."""
    from playwright.sync_api import sync_playwright

    html_dir = Path(html_dir)
    if not (html_dir / "index.html").exists():
        raise FileNotFoundError(f"{html_dir}/index.html does not exist: build the book first (make book)")
    if screenshots is not None:
        Path(screenshots).mkdir(parents=True, exist_ok=True)
    server = _serve(html_dir)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    reports, chapter_shot = [], None
    pages = toc_pages(toc_path)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport=SCREENSHOT_SIZE)
            if cdn_dir is not None:
                page.route("**/*", _mirror_route(Path(cdn_dir), base))
            for name in pages:
                rep = PageReport(name)
                events: list[str] = []

                def on_console(m, events=events, rep=rep):
                    if m.type != "error":
                        return
                    url = (m.location or {}).get("url", "")
                    (events if _is_local(url, base) else rep.external).append(
                        f"console {m.type}: {m.text} [{url}]")

                def on_failed(r, events=events, rep=rep):
                    (events if _is_local(r.url, base) else rep.external).append(
                        f"request failed: {r.url} ({r.failure})")

                def on_error(e, events=events, rep=rep):
                    src = _error_source(e)   # an error inside a CDN script is not the site's
                    (events if _is_local(src, base) else rep.external).append(
                        f"page error: {e}" + (f" [{src}]" if src else ""))

                page.on("console", on_console)
                page.on("pageerror", on_error)
                page.on("requestfailed", on_failed)
                response = page.goto(f"{base}/{name}.html", wait_until="load")
                if response is None or response.status != 200:
                    events.append(f"HTTP {None if response is None else response.status}")
                page.wait_for_timeout(300)
                imgs = page.eval_on_selector_all(
                    "article img, main img", "els => els.map(e => [e.src, e.complete && e.naturalWidth > 0])")
                rep.images = len(imgs)
                events += [f"broken image {src}" for src, ok in imgs if not ok]
                if name in figure_pages and not imgs:
                    events.append("no figure shown, but the notebook has image outputs")
                if cdn_dir is not None:
                    if name in widget_pages:   # the manager renders after load: give it time
                        try:
                            page.wait_for_selector(".jupyter-widgets", timeout=15000)
                        except Exception:  # noqa: BLE001 - a timeout is the finding
                            pass
                    rep.widgets = page.eval_on_selector_all(".jupyter-widgets", "els => els.length")
                    if name in widget_pages and not rep.widgets:
                        events.append("no widget rendered, but the notebook saved widget state")
                # the equations, once MathJax is done: all typeset, none an error
                ran = page.evaluate(_WAIT_FOR_MATHJAX, mathjax_timeout_ms)
                rep.mathjax = None if ran in (None, "timeout") else ran
                if ran == "timeout":
                    events.append(f"MathJax did not finish typesetting in {mathjax_timeout_ms} ms")
                rendered = inspect_rendered(page.content())
                rep.equations = rendered.equations
                events += rendered.problems()
                if rendered.raw_tex and rep.mathjax is None:
                    mj = [x for x in rep.external if "mathjax" in x.lower()]
                    events.append("MathJax did not run on this page" + (
                        f" ({mj[0]}; build with npm on the PATH to serve it with the site)"
                        if mj else ""))
                rep.problems = events
                page.remove_listener("console", on_console)
                page.remove_listener("pageerror", on_error)
                page.remove_listener("requestfailed", on_failed)
                if screenshots is not None:
                    if name == pages[0]:
                        page.screenshot(path=str(Path(screenshots) / SITE_SHOT))
                    elif rep.equations and rep.widgets:
                        span = _widget_and_equation(page)
                        if span and (chapter_shot is None
                                     or span[1] - span[0] < chapter_shot[1]):
                            _screenshot_around(page, span, Path(screenshots) / CHAPTER_SHOT)
                            chapter_shot = (name, span[1] - span[0])
                reports.append(rep)
            browser.close()
    finally:
        server.shutdown()
    if screenshots is not None:
        print(f"screenshots: {Path(screenshots) / SITE_SHOT} (landing page), " + (
            f"{Path(screenshots) / CHAPTER_SHOT} ({chapter_shot[0]})" if chapter_shot else
            "no chapter screenshot: no page showed both a typeset equation and a rendered "
            "widget (widgets render with --cdn)"))
    return reports


def _notebooks_containing(source_root, pages, marker: str) -> set[str]:
    out = set()
    for name in pages:
        nb = Path(source_root) / f"{name}.ipynb"
        if nb.exists() and marker in nb.read_text():
            out.add(name)
    return out


def notebooks_with_images(source_root, pages) -> set[str]:
    """Pages whose (executed) notebook under ``source_root`` has an image output."""
    return _notebooks_containing(source_root, pages, "\"image/png\"")


def notebooks_with_widgets(source_root, pages) -> set[str]:
    """Pages whose (executed) notebook under ``source_root`` has a widget view output."""
    return _notebooks_containing(source_root, pages, "application/vnd.jupyter.widget-view+json")


def fetch_cdn_mirror(html_dir, cdn_dir) -> list[str]:
    """Fill ``cdn_dir`` with the files that the pages of ``html_dir`` load from CDNs (the
    widget manager, require.js, and MathJax where the site does not serve its own), from the
    npm registry (``npm pack``), at the versions the pages name. Returns the mirrored URLs; a
    failing ``npm`` is an error naming the package."""
    import re

    from ferlib.book.npm import npm_fetch

    html = "".join(p.read_text(errors="replace") for p in Path(html_dir).rglob("*.html"))
    wanted = {}   # url prefix -> (npm spec, folder inside the package)
    for version in set(re.findall(r"cdn\.jsdelivr\.net/npm/@jupyter-widgets/html-manager@([\w.]+)/dist/", html)):
        wanted[f"cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@{version}/dist"] = (
            f"@jupyter-widgets/html-manager@{version}", "dist")
    for version in set(re.findall(r"cdnjs\.cloudflare\.com/ajax/libs/require\.js/([\w.]+)/require\.min\.js", html)):
        wanted[f"cdnjs.cloudflare.com/ajax/libs/require.js/{version}/require.min.js"] = (
            f"requirejs@{version}", "require.js")
    for version in set(re.findall(r"cdn\.jsdelivr\.net/npm/mathjax@([\w.]+)/es5/", html)):
        wanted[f"cdn.jsdelivr.net/npm/mathjax@{version}/es5"] = (f"mathjax@{version}", "es5")
    cdn_dir = Path(cdn_dir)
    for target, (spec, inner) in wanted.items():
        npm_fetch(spec, {inner: cdn_dir / target})
    return sorted(wanted)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html_dir", nargs="?", default="_build/html")
    ap.add_argument("--toc", default="_toc.yml")
    ap.add_argument("--sources", default="_build/src",
                    help="the staged book sources, to know which pages must show figures")
    ap.add_argument("--screenshots", default=None, metavar="DIR",
                    help=f"save {SITE_SHOT} (the landing page) and {CHAPTER_SHOT} (a chapter "
                    "with an equation and a widget) there, e.g. book/images for the README")
    ap.add_argument("--cdn", default=None, help="a local mirror of the widget manager's CDN "
                    "files (DIR/<host>/<path>): widgets are then checked too")
    ap.add_argument("--fetch-cdn", action="store_true",
                    help="fill --cdn from the npm registry first")
    args = ap.parse_args(argv)
    pages = toc_pages(args.toc)
    if args.fetch_cdn:
        if not args.cdn:
            ap.error("--fetch-cdn needs --cdn DIR")
        for url in fetch_cdn_mirror(args.html_dir, args.cdn):
            print(f"mirrored https://{url}")
    reports = check_site(args.html_dir, args.toc, args.screenshots,
                         notebooks_with_images(args.sources, pages),
                         notebooks_with_widgets(args.sources, pages), args.cdn)
    bad = 0
    for r in reports:
        status = "ok" if not r.problems else "FAIL"
        widgets = "" if r.widgets is None else f", {r.widgets} widget element(s)"
        print(f"{status:4} {r.page}: {r.images} figure(s){widgets}, {r.equations} equation(s)")
        for p in r.problems:
            print(f"     - {p}")
        for p in r.external:
            print(f"     (off-site, not checked: {p})")
        bad += bool(r.problems)
    versions = sorted({r.mathjax for r in reports if r.mathjax})
    print(f"equations: {sum(r.equations for r in reports)} typeset"
          + (f" by MathJax {', '.join(versions)}" if versions else ""))
    print(f"{len(reports) - bad} passed, {bad} failed")
    if not args.cdn:
        print("widgets not checked (no --cdn mirror of the widget manager)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
