"""The reproduction scoreboard: every quantitative claim of the four papers beside our value
(book page ``book/scoreboard``; see notebooks/07_comparison for the method table).

Claims live in ``ferlib/claims.json`` (data, not code), read by :mod:`ferlib.claims`. Our
values come from results records (:mod:`ferlib.records`), never from typed numbers: a claim is
answered by the records whose ``method`` (and listed ``params``) match. Verdicts:

* ``reproduced``: our value on the claim's own dataset is within ``tolerance`` points;
* ``not reproduced``: it is further away. For a gain, whether its direction holds is added; for
  a record of a profile below ``full`` (small CNN from scratch), the profile is named;
* ``not run``: we hold no record on that dataset. Where a record on a dataset we can run
  (FER2013, SynthFACS) answers the same comparison, its value is shown as the nearest
  protocol, and for a gain claim whether its direction holds there.

Several records for one claim (seeds) are averaged. Only records of the datasets' natural class
balance answer a claim, at the claim's noise rate (0 unless it names one): the query is
:func:`ferlib.records.select`, so a cell of chapter 07's degradation grid (any imbalance ratio,
1 included) never enters a verdict. A claim's ``ours`` names the record ``method`` and the
``params`` a record must carry (numbers compared as numbers, text such as ``backbone`` or
``pretrained`` as text: a claim on an ImageNet-pretrained ResNet-50 matches no record of ours);
a gain subtracts the ``minus`` method, with ``minus_params`` when the two sides differ in a
parameter (EAN's Table 5: generator on minus off).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ferlib.claims import load_claims
from ferlib.records import load_records, select
from ferlib.stats import Estimate, estimate, paired_gain
from ferlib.stats import verdict as stats_verdict

__all__ = ["collect_records", "scoreboard", "render_markdown", "write_page",
           "TOLERANCE", "BOOK_RECORDS"]

TOLERANCE = 1.0  # percentage points, for absolute values and gains alike
# the records the book reads (chapters and this page): the old cpu protocol until every cell of
# the cpu recipe exists with three seeds (scripts/evidence.sh writes book/records/cpu_v2)
BOOK_RECORDS = "book/records/cpu"
NEAREST = ("fer2013", "synthfacs")  # datasets we run here, in order of preference
PROFILE_RANK = {"smoke": 0, "cpu": 1, "full": 2}


@dataclass(frozen=True)
class _Used:
    """One record behind a value: its path, profile and metric."""
    path: Path
    profile: str
    value: float


def collect_records(folder) -> pd.DataFrame:
    """Every record below ``folder`` (recursively) as a :func:`ferlib.records.select` table,
    with a ``path`` column (``folder / file``).

    Nothing vanishes: a folder that does not exist or holds no record, and a file that is not
    valid JSON or an incomplete record (no method, dataset or metrics), are errors naming the
    folder or file (:func:`ferlib.records.scan_records`). JSON files that are not records at
    all are left out and listed in ``attrs["skipped_files"]``; :func:`scoreboard` counts them."""
    loaded = load_records(folder, "**/*.json")
    table = select(loaded)
    table = table.assign(path=[str(Path(folder) / f) for f in table["file"]])
    table.attrs["skipped_files"] = list(loaded.attrs.get("skipped_files", []))
    return table


def _cell(records: pd.DataFrame, method, dataset, params, metric) -> list[_Used]:
    """The records (one per seed) that answer ``method`` on ``dataset`` with ``params``.

    Only records of the natural class balance answer a claim (the papers train on the
    datasets' own balance; the degradation grid's cells, ratio 1 included, do not count), at
    the claim's noise rate (0 unless it names one): :func:`ferlib.records.select`. A longer
    profile supersedes a shorter one."""
    want = dict(params)
    rate = float(want.pop("noise_rate", 0.0))
    hits = select(records, method=method, dataset=dataset, natural=True, noise_rate=rate)
    for key, value in want.items():
        column = f"param/{key}"
        raw = hits[column] if column in hits.columns else pd.Series(None, index=hits.index,
                                                                      dtype=object)
        if isinstance(value, str):   # e.g. backbone, pretrained: compared as text
            hits = hits[raw.notna() & (raw.astype(str).str.lower() == value.lower())]
            continue
        have = pd.to_numeric(raw, errors="coerce")
        hits = hits[np.isclose(have.astype(float), float(value))]
    if metric not in hits.columns:
        return []
    hits = hits[hits[metric].notna()]
    profiles = (hits["param/profile"] if "param/profile" in hits.columns
                else pd.Series(None, index=hits.index, dtype=object))
    used = sorted((_Used(Path(path), str(prof), float(v))
                   for path, prof, v in zip(hits["path"], profiles, hits[metric])),
                  key=lambda u: u.path)
    if not used:
        return []
    best = max(PROFILE_RANK.get(u.profile, -1) for u in used)
    return [u for u in used if PROFILE_RANK.get(u.profile, -1) == best]


def _answer(records, claim, dataset) -> tuple[Estimate | None, list[_Used]]:
    """Our estimate for ``claim`` on ``dataset`` (in percent or points): the mean over seeds
    with its 95 % interval, a paired one for a gain (:mod:`ferlib.stats`), and the records."""
    ours, metric = claim["ours"], claim["metric"]
    params = ours.get("params", {})
    used = _cell(records, ours["method"], dataset, params, metric)
    if not used:
        return None, []
    if "minus" not in ours:
        return estimate([str(u.path) for u in used], metric).scaled(), used
    other = _cell(records, ours["minus"], dataset, ours.get("minus_params", params), metric)
    if not other:
        return None, []
    gain = paired_gain([str(u.path) for u in used], [str(u.path) for u in other], metric)
    return gain.scaled(), used + other


def scoreboard(records_folder, *, tolerance: float = TOLERANCE) -> pd.DataFrame:
    """One row per claim: claimed value, our estimate (mean over seeds ``ours``, ``sd``, the
    95 % interval ``low``/``high``, ``seeds``, how the interval was made), the verdict of
    :func:`ferlib.stats.verdict` and the records behind it. ``attrs``: ``records_read`` (how
    many records) and ``skipped_files`` (JSON files below the folder that are not records)."""
    records = collect_records(records_folder)
    skipped = records.attrs["skipped_files"]
    rows = []
    for claim in load_claims():
        est, used = _answer(records, claim, claim["dataset"])
        nearest, near, near_used = None, None, []
        if est is None:
            for ds in NEAREST:
                near, near_used = _answer(records, claim, ds)
                if near is not None:
                    nearest = ds
                    break
        if est is not None:
            verdict = stats_verdict(claim["kind"], claim["claimed"], est, tolerance)
            profiles = sorted({r.profile for r in used} - {"full"})
            if profiles:   # the claim's dataset, but not the paper's scale: say so
                verdict += f"; {','.join(profiles)} profile, from scratch"
        elif nearest is not None and claim["kind"] == "gain":
            verdict = (f"not run; on {nearest}: "
                       f"{stats_verdict('gain', claim['claimed'], near, tolerance)}")
        else:
            verdict = "not run"
        shown = est if est is not None else near
        rows.append({
            "id": claim["id"], "paper": claim["paper"], "where": claim["where"],
            "dataset": claim["dataset"], "setup": claim["setup"], "metric": claim["metric"],
            "kind": claim["kind"], "claimed": claim["claimed"],
            "ours": None if est is None else est.value,
            "nearest_dataset": nearest, "ours_nearest": None if near is None else near.value,
            "sd": None if shown is None else shown.sd,
            "low": None if shown is None else shown.low,
            "high": None if shown is None else shown.high,
            "seeds": 0 if shown is None else shown.n_seeds,
            "interval": None if shown is None else shown.method,
            "verdict": verdict,
            "profiles": sorted({r.profile for r in (used or near_used)}),
            "records": [str(r.path) for r in (used or near_used)],
        })
    table = pd.DataFrame(rows)
    table.attrs.update(records_read=len(records), skipped_files=[str(p) for p in skipped])
    return table


def _fmt(v):
    return "" if v is None or pd.isna(v) else f"{v:.2f}"


def _interval_cell(r) -> str:
    if r.seeds == 0:
        return ""
    sd = "" if r.sd is None or pd.isna(r.sd) else f" ± {r.sd:.2f}"
    ci = f"[{r.low:.2f}, {r.high:.2f}]" if not (r.low is None or pd.isna(r.low)) else "none"
    return f"{ci}, sd{sd or ' -'}, n={r.seeds}"


RULES = (
    "How a verdict is reached. An absolute claim on its own dataset is *reproduced* when the "
    "paper's number lies inside our 95 % interval widened by {tol:.1f} point on each side, "
    "and *not reproduced* otherwise. A gain is compared through a paired 95 % interval (the "
    "same test images and seeds for both methods): *reversed* when it excludes zero on the "
    "side opposite the paper's, *not significant* when it holds zero, *direction reproduced* "
    "when it excludes zero on the paper's side, and *reproduced* when in addition the paper's "
    "gain lies within the interval widened by the same tolerance. Intervals count the test "
    "images (a bootstrap over them, the same images for every seed) and the spread over seeds "
    "(`ferlib.stats`, explained in chapter 07, \"Seeds and intervals\"); "
    "a record older than per-image predictions gives a Wilson interval for one seed's "
    "accuracy, and *no interval* where even that is missing.")


def render_markdown(table: pd.DataFrame, records_root, page_dir, shown_as=None) -> str:
    """The scoreboard as a MyST page; record links are relative to ``page_dir``."""
    import os
    counts = table["verdict"].str.split(";").str[0].value_counts()
    lines = [
        "# Reproduction scoreboard", "",
        "Every quantitative claim of the four papers, next to the value our committed results "
        "records give on the same protocol. This page is generated by "
        "`python -m ferlib.book.scoreboard` from `ferlib/claims.json` and the records in "
        f"`{shown_as or Path(records_root).as_posix()}`; do not edit it by hand. `make test` "
        "recomputes every verdict from the records and fails when this page disagrees.", "",
        RULES.format(tol=TOLERANCE), "",
        "We hold no pretrained weights and run only FER2013 and SynthFACS here, so most claims "
        "read *not run*; for a gain, the nearest protocol we did run is judged by the same rule, "
        "trained from scratch with the profile named in the last column. Percent (or points) "
        "throughout; *n* is the number of seeds, *sd* their standard deviation.", "",
        "Summary: " + ", ".join(f"{k}: {v}" for k, v in counts.items()), "",
        "| paper | where | dataset | setup | metric | claimed | ours | nearest run | "
        "95 % interval, sd, n | verdict | records |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        near = f"{r.nearest_dataset}: {_fmt(r.ours_nearest)}" if isinstance(r.nearest_dataset, str) else ""
        links = " ".join(
            f"{{download}}`{i + 1} <{os.path.relpath(p, page_dir)}>`"
            for i, p in enumerate(r.records))
        prof = ",".join(r.profiles)
        lines.append(f"| {r.paper} | {r['where']} | {r.dataset} | {r.setup} | {r.metric} | "
                     f"{_fmt(r.claimed)}{' (gain)' if r.kind == 'gain' else ''} | {_fmt(r.ours)} | "
                     f"{near} | {_interval_cell(r)} | {r.verdict} | "
                     f"{links}{' (' + prof + ')' if prof else ''} |")
    return "\n".join(lines) + "\n"


def write_page(records_folder=BOOK_RECORDS, out="book/scoreboard.md", shown_as=None) -> Path:
    """Write the page; the records are read (and any error raised) before ``out`` is touched.
    Prints how many records were read and names any JSON file that is not a record."""
    out = Path(out)
    if out.is_dir():
        raise IsADirectoryError(f"--out {out} is a folder; give the page's file name (e.g. {out / 'scoreboard.md'})")
    table = scoreboard(records_folder)
    skipped = table.attrs.get("skipped_files", [])
    print(f"read {table.attrs.get('records_read', 0)} records from {records_folder}"
          + (f"; {len(skipped)} JSON file(s) there are not records and were left out: "
             + ", ".join(skipped) if skipped else ""))
    out.write_text(render_markdown(table, records_folder, out.parent, shown_as))
    return out
