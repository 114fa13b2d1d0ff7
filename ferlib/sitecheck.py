"""Open the built website in a real browser (headless Chromium via Playwright) and check that
every page of the table of contents loads cleanly (issue: the website in a real browser).

For each page: no console errors, no uncaught page errors, no failed requests for the site's
own files (an off-site resource such as a CDN script is listed but does not fail the check:
this machine has no network, a reader's browser has; so are errors raised inside such a
script, e.g. the widget manager's, and its icon-font lookups), and every
``<img>`` decoded (``naturalWidth > 0``). Chapters whose executed notebook holds image outputs
must show at least one figure. A screenshot of the landing page is saved for the README.

    python -m ferlib.sitecheck _build/html --screenshot book/images/site.png

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
    problems: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)  # off-site resources (a CDN): not ours


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
    from ferlib.book import toc_entries
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


def check_site(html_dir, toc_path="_toc.yml", screenshot=None, figure_pages=(),
               widget_pages=(), cdn_dir=None) -> list[PageReport]:
    """Load every toc page; return one report per page (``problems`` empty when clean).
    ``widget_pages`` must render a widget when ``cdn_dir`` (a CDN mirror) is given."""
    from playwright.sync_api import sync_playwright

    html_dir = Path(html_dir)
    if not (html_dir / "index.html").exists():
        raise FileNotFoundError(f"{html_dir}/index.html does not exist: build the book first (make book)")
    server = _serve(html_dir)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    reports = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            if cdn_dir is not None:
                page.route("**/*", _mirror_route(Path(cdn_dir), base))
            for name in toc_pages(toc_path):
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
                rep.problems = events
                page.remove_listener("console", on_console)
                page.remove_listener("pageerror", on_error)
                page.remove_listener("requestfailed", on_failed)
                if screenshot and name == toc_pages(toc_path)[0]:
                    Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(screenshot))
                reports.append(rep)
            browser.close()
    finally:
        server.shutdown()
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
    """Fill ``cdn_dir`` with the widget manager files that the pages of ``html_dir`` load from
    CDNs, from the npm registry (``npm pack``), at the versions the pages name. Returns the
    mirrored URLs; a failing ``npm`` is an error naming the package."""
    import re
    import subprocess
    import tarfile
    import tempfile

    html = "".join(p.read_text(errors="replace") for p in Path(html_dir).rglob("*.html"))
    wanted = {}   # url prefix -> (npm spec, folder inside the package)
    for version in set(re.findall(r"cdn\.jsdelivr\.net/npm/@jupyter-widgets/html-manager@([\w.]+)/dist/", html)):
        wanted[f"cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@{version}/dist"] = (
            f"@jupyter-widgets/html-manager@{version}", "dist")
    for version in set(re.findall(r"cdnjs\.cloudflare\.com/ajax/libs/require\.js/([\w.]+)/require\.min\.js", html)):
        wanted[f"cdnjs.cloudflare.com/ajax/libs/require.js/{version}/require.min.js"] = (
            f"requirejs@{version}", "require.js")
    cdn_dir = Path(cdn_dir)
    for target, (spec, inner) in wanted.items():
        with tempfile.TemporaryDirectory() as tmp:
            run = subprocess.run(["npm", "pack", spec, "--silent"], cwd=tmp, capture_output=True, text=True)
            tgz = next(Path(tmp).glob("*.tgz"), None)
            if run.returncode or tgz is None:
                raise RuntimeError(f"npm pack {spec} failed: {run.stderr.strip()[-300:]}")
            with tarfile.open(tgz) as tar:
                tar.extractall(tmp, filter="data")
            src, dst = Path(tmp) / "package" / inner, cdn_dir / target
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True)
            else:
                shutil.copy2(src, dst)
    return sorted(wanted)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html_dir", nargs="?", default="_build/html")
    ap.add_argument("--toc", default="_toc.yml")
    ap.add_argument("--sources", default="_build/src",
                    help="the staged book sources, to know which pages must show figures")
    ap.add_argument("--screenshot", default=None)
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
    reports = check_site(args.html_dir, args.toc, args.screenshot,
                         notebooks_with_images(args.sources, pages),
                         notebooks_with_widgets(args.sources, pages), args.cdn)
    bad = 0
    for r in reports:
        status = "ok" if not r.problems else "FAIL"
        widgets = "" if r.widgets is None else f", {r.widgets} widget element(s)"
        print(f"{status:4} {r.page}: {r.images} figure(s){widgets}")
        for p in r.problems:
            print(f"     - {p}")
        for p in r.external:
            print(f"     (off-site, not checked: {p})")
        bad += bool(r.problems)
    print(f"{len(reports) - bad} passed, {bad} failed")
    if not args.cdn:
        print("widgets not checked (no --cdn mirror of the widget manager)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
