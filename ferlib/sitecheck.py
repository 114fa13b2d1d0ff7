"""Open the built website in a real browser (headless Chromium via Playwright) and check that
every page of the table of contents loads cleanly (issue: the website in a real browser).

For each page: no console errors, no uncaught page errors, no failed requests for the site's
own files (an off-site resource such as a CDN script is listed but does not fail the check:
this machine has no network, a reader's browser has), and every
``<img>`` decoded (``naturalWidth > 0``). Chapters whose executed notebook holds image outputs
must show at least one figure. A screenshot of the landing page is saved for the README.

    python -m ferlib.sitecheck _build/html --screenshot book/images/site.png

The site is served from a loopback HTTP server (``127.0.0.1``, a free port), as a reader's
browser would get it; nothing leaves the machine.
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


CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class PageReport:
    page: str
    images: int = 0
    problems: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)  # off-site resources (a CDN): not ours


def _is_local(url: str, base: str) -> bool:
    return not url or url.startswith(base) or url.startswith(("data:", "blob:", "about:"))


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


def _serve(root: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def check_site(html_dir, toc_path="_toc.yml", screenshot=None, figure_pages=()) -> list[PageReport]:
    """Load every toc page; return one report per page (``problems`` empty when clean)."""
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

                on_error = lambda e: events.append(f"page error: {e}")
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


def notebooks_with_images(source_root, pages) -> set[str]:
    """Pages whose (executed) notebook under ``source_root`` has an image output."""
    import json
    out = set()
    for name in pages:
        nb = Path(source_root) / f"{name}.ipynb"
        if nb.exists() and "\"image/png\"" in nb.read_text():
            out.add(name)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html_dir", nargs="?", default="_build/html")
    ap.add_argument("--toc", default="_toc.yml")
    ap.add_argument("--sources", default="_build/src",
                    help="the staged book sources, to know which pages must show figures")
    ap.add_argument("--screenshot", default=None)
    args = ap.parse_args(argv)
    pages = toc_pages(args.toc)
    reports = check_site(args.html_dir, args.toc, args.screenshot,
                         notebooks_with_images(args.sources, pages))
    bad = 0
    for r in reports:
        status = "ok" if not r.problems else "FAIL"
        print(f"{status:4} {r.page}: {r.images} figure(s)")
        for p in r.problems:
            print(f"     - {p}")
        for p in r.external:
            print(f"     (off-site, not checked: {p})")
        bad += bool(r.problems)
    print(f"{len(reports) - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
