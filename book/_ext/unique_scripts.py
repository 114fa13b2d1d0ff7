"""Sphinx extension of this book: each page loads every script once.

sphinx-thebe and sphinx-togglebutton's inline configuration scripts reach each page twice in a
Jupyter Book build (once with file name None, once with ""), so every page declared ``const THEBE_JS_URL``
twice and the browser stopped with "Identifier 'THEBE_JS_URL' has already been declared"
(found by ``python -m ferlib.book.sitecheck``). Dropping repeats at page render keeps the first
occurrence, hence the order the extensions asked for.
"""
from __future__ import annotations


def _key(asset):
    # an inline script is registered once with filename None and once with "": the same script
    attrs = getattr(asset, "attributes", {})
    return (getattr(asset, "filename", asset) or None, tuple(sorted(attrs.items())))


def _unique(items):
    seen, out = set(), []
    for item in items:
        if _key(item) not in seen:
            seen.add(_key(item))
            out.append(item)
    return out


def _drop_repeated_scripts(app, pagename, templatename, context, doctree):
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = _unique(context[key])


def setup(app):
    # after the theme's own handlers (default priority 500), which may still add files
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
