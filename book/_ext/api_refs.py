"""Sphinx extension of this book: cross-references in ferlib's docstrings resolve the way a
reader of the source resolves them.

A docstring names an object the way its module sees it: ``:class:`FaceDataset``` inside
``ferlib.data.fer2013``, or ``:func:`ferlib.train.fit``` (re-exported by the package, defined
in ``ferlib.train.engine``). Sphinx looks such names up only literally, so before it gives up
(``missing-reference``) this extension finds the one documented object they mean: a ferlib
object whose full name ends with the name, within the package the name gives. A name that
matches no documented object, or several, stays unresolved, and the ``-W -n`` build fails on
it: a docstring cannot point at something that does not exist. Names from other libraries
(torch, numpy, ...) are shown as code without a link, since the book is built offline, and so
is prose that a numpy-style ``name : description`` line puts where a type would be.
"""
from __future__ import annotations

import re

from sphinx.util.nodes import make_refnode

#: packages whose documentation is not part of this build: their names are shown, not linked
EXTERNAL = ("torch", "torchvision", "numpy", "np", "scipy", "sklearn", "pandas", "pd",
            "matplotlib", "PIL", "ipywidgets", "papermill", "nbformat", "tqdm")


def candidates(target: str, objects, module: str | None = None) -> list[str]:
    """Documented ferlib names that ``target`` can mean: ``target`` itself, or a name ending
    with ``.<last part>`` inside the package ``target`` names (``ferlib.train.fit`` ->
    ``ferlib.train.engine.fit``). An unqualified name prefers the current module's package."""
    if target in objects:
        return [target]
    head, _, last = target.rpartition(".")
    found = [n for n in objects if n.startswith("ferlib.") and n.endswith("." + last)
             and (not head or n.startswith(head + ".") or n.endswith("." + target))]
    if len(found) > 1 and not head and module:
        package = module.rpartition(".")[0]
        near = [n for n in found if n.startswith(package + ".")]
        found = near or found
    return found


def resolve(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    # prose in a numpy-style "name : description" line lands in the type slot: it names nothing
    if target.split(".")[0] in EXTERNAL or not re.fullmatch(r"[A-Za-z_][\w.]*", target):
        return contnode
    domain = env.get_domain("py")
    found = candidates(target, domain.objects, node.get("py:module"))
    if len(found) != 1:
        return None  # Sphinx reports it; -W makes it an error
    entry = domain.objects[found[0]]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode,
                        found[0])


def setup(app):
    app.connect("missing-reference", resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
