"""The papers' claims: every quantitative claim of the four papers, read from ``claims.json``
(data, not code, shipped with ferlib next to this module).

The chapters and the method runners read the papers' numbers from here (:func:`claimed`), so
each number is typed once; the reproduction scoreboard (:mod:`ferlib.book.scoreboard`, book page
``book/scoreboard``) sets our value beside each claim. Part of the shared core: it imports
nothing from the methods or the book's machinery.
"""
from __future__ import annotations

import json
from importlib import resources

__all__ = ["load_claims", "claimed"]


def load_claims() -> list[dict]:
    """The claims table shipped with ferlib (``ferlib/claims.json``)."""
    text = resources.files(__package__).joinpath("claims.json").read_text()
    claims = json.loads(text)["claims"]
    ids = [c["id"] for c in claims]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ValueError(f"claims.json: duplicate claim ids {sorted(dup)}")
    return claims


def claimed(*ids: str) -> dict[str, float]:
    """The papers' claimed values by claim id, as printed (percent or points): the chapters read
    the papers' numbers from here, so each is typed once. An unknown id is an error naming it."""
    by_id = {c["id"]: c for c in load_claims()}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise KeyError(f"claims.json has no claim {', '.join(map(repr, missing))}")
    return {i: float(by_id[i]["claimed"]) for i in ids}
