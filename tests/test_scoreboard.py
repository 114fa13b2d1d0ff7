"""The reproduction scoreboard: claims data integrity and verdicts from records."""
import json
import re

import numpy as np
import pytest

from ferlib.records import encode_labels
from ferlib.book.scoreboard import render_markdown, scoreboard
from ferlib.claims import load_claims
from ferlib.stats import Estimate, verdict

REQUIRED = {"id", "paper", "where", "dataset", "metric", "kind", "claimed", "setup", "ours"}


def _record(folder, name, method, dataset, metrics, seed=0, n=None, **params):
    """A record; with ``n``, per-image predictions on n test images (labels i % 7) that are
    right on the first round(accuracy * n) images, so two such records are nested and their
    paired difference is worked by hand."""
    rec = {"method": method, "dataset": dataset, "split": "test", "seed": seed,
           "metrics": dict(metrics), "params": {"profile": "full", **params}}
    if n is not None:
        y = np.arange(n) % 7
        right = int(round(metrics["accuracy"] * n))
        rec["metrics"]["n"] = n
        rec["predictions"] = {"y_true": encode_labels(y),
                              "y_pred": encode_labels(np.where(np.arange(n) < right, y, (y + 1) % 7))}
    (folder / f"{name}.json").write_text(json.dumps(rec))


def test_claims_are_complete_and_consistent():
    claims = {c["id"]: c for c in load_claims()}
    for c in claims.values():
        assert REQUIRED <= set(c), c["id"]
        assert c["kind"] in {"absolute", "gain"}
        assert ("minus" in c["ours"]) == (c["kind"] == "gain"), c["id"]
    # gains typed in the claims equal the differences of the absolute claims they come from
    diff = lambda a, b: round(claims[a]["claimed"] - claims[b]["claimed"], 2)
    assert claims["li-r34-lat-gain-acc"]["claimed"] == diff("li-r34-lat-acc", "li-r34-bal-acc")
    assert claims["li-r34-lat-gain-map"]["claimed"] == diff("li-r34-lat-map", "li-r34-bal-map")
    assert claims["ean-rafdb-10-gain"]["claimed"] == diff("ean-rafdb-10", "scn-rafdb-10")
    assert claims["ean-rafdb-20-gain"]["claimed"] == diff("ean-rafdb-20", "scn-rafdb-20")
    assert claims["ean-ferplus-10-gain"]["claimed"] == diff("ean-ferplus-10", "scn-ferplus-10")
    assert claims["cucn-affectnet-gain"]["claimed"] == diff("cucn-t2-r18ms-w-cbam-acc", "cucn-t2-r18ms-acc")
    assert claims["cucn-affectnet-w-gain"]["claimed"] == diff("cucn-t2-r18ms-w-min", "cucn-t2-r18ms-min")
    # CUCN's Table I AffectNet number is Table II's + W + CBAM row (mixing on in every rung)
    assert claims["cucn-affectnet"]["claimed"] == claims["cucn-t2-r18ms-w-cbam-acc"]["claimed"]
    for c in claims.values():
        if c["where"] == "Table 5" and c["kind"] == "gain":
            stem = c["id"][: -len("-gain")]
            assert c["claimed"] == diff(stem + "-genc", stem + "-basic"), c["id"]


def test_claim_set_is_complete():
    """Every number each paper reports for its own method and the baselines it ran, by table."""
    from collections import Counter
    claims = load_claims()
    n = Counter((c["paper"].split(" (")[1].split(")")[0] if "(" in c["paper"] else c["paper"],
                 c["where"], c["kind"]) for c in claims)
    # AHM: Table 3's own row on three datasets, and the two gain sentences
    assert n[("AHM", "Table 3", "absolute")] == 3
    assert {c["dataset"] for c in claims if c["where"] == "Table 3"} == {"rafdb", "fer2013", "sfew"}
    assert n[("AHM", "results text", "gain")] == 2
    # Li et al. Table I: two backbones x three rows x accuracy and mAP, and the two ResNet34 gains
    li = [c for c in claims if c["paper"].startswith("Li et al.") and c["kind"] == "absolute"]
    assert len(li) == 12
    assert {(c["id"].split("-")[1], c["metric"]) for c in li} == {
        (b, m) for b in ("r34", "dan") for m in ("accuracy", "mAP")}
    assert sorted(c["claimed"] for c in li if c["id"].startswith("li-dan") and c["metric"] == "mAP") \
        == [80.95, 81.98, 82.05]
    # EAN: Tables 3-4 (EAN and SCN, two datasets, three noise rates) and Table 5 (two datasets x
    # four backbones x basic / with G_enc, and the gains)
    ean = [c for c in claims if "EAN" in c["paper"]]
    assert sum(c["where"] == "Tables 3-4" and c["kind"] == "absolute" for c in ean) == 12
    assert sum(c["where"] == "Table 5" and c["kind"] == "absolute" for c in ean) == 16
    assert sum(c["where"] == "Table 5" and c["kind"] == "gain" for c in ean) == 8
    # CUCN: Table I (RAF-DB, AffectNet) and Table II's seven rows x max, min and overall accuracy
    cucn = [c for c in claims if "CUCN" in c["paper"]]
    assert sum(c["where"] == "Table I" for c in cucn) == 2
    t2 = [c for c in cucn if c["where"] == "Table II" and c["kind"] == "absolute"]
    assert len(t2) == 21
    assert Counter(c["metric"] for c in t2) == {"accuracy": 7, "min_class_recall": 7,
                                                 "max_class_recall": 7}
    by_id = {c["id"]: c["claimed"] for c in t2}
    assert [by_id[f"cucn-t2-r50in-{s}"] for s in ("max", "min", "acc")] == [92, 34, 60.28]


def test_verdicts(tmp_path):
    # EAN at 10 % noise on RAF-DB: 84.5 % of 1,000 images, interval about [82.3, 86.7]: 84.83 is
    # inside; at 20 %: 80.0 [77.5, 82.5] widened by 1 point stops at 83.5 < 84.02
    _record(tmp_path, "a", "ean", "rafdb", {"accuracy": 0.845}, n=1000, noise_rate=0.1)
    _record(tmp_path, "b", "ean", "rafdb", {"accuracy": 0.800}, n=1000, noise_rate=0.2)
    # two seeds of SCN at 10 %: mean 82.0, sd 1.41
    _record(tmp_path, "c", "scn", "rafdb", {"accuracy": 0.81}, n=1000, noise_rate=0.1)
    _record(tmp_path, "d", "scn", "rafdb", {"accuracy": 0.83}, seed=1, n=1000, noise_rate=0.1)
    # latent augmentation on FER2013 only (two seeds): the RAF-DB gain claim is judged there
    for seed in (0, 1):
        _record(tmp_path, f"e{seed}", "latent-aug", "fer2013",
                {"accuracy": 0.60, "mAP": 0.50 + 0.02 * seed}, seed=seed, n=1000)
        _record(tmp_path, f"f{seed}", "baseline+balanced", "fer2013",
                {"accuracy": 0.62, "mAP": 0.45 + 0.01 * seed}, seed=seed, n=1000)
    table = scoreboard(tmp_path).set_index("id")
    assert table.loc["ean-rafdb-10", "verdict"] == "reproduced"
    assert table.loc["ean-rafdb-10", "ours"] == pytest.approx(84.5)
    assert table.loc["ean-rafdb-10", "low"] == pytest.approx(84.5 - 2.24, abs=0.4)
    assert table.loc["ean-rafdb-20", "verdict"] == "not reproduced"
    assert table.loc["scn-rafdb-10", "ours"] == pytest.approx(82.0)
    assert table.loc["scn-rafdb-10", "seeds"] == 2
    assert table.loc["scn-rafdb-10", "sd"] == pytest.approx(np.sqrt(2))
    # paired by seed: only seed 0 is in both cells, 84.5 - 81.0; 35 more right answers in
    # 1,000: interval about 3.5 +- 1.96 sqrt(0.035 * 0.965 / 1000) = [2.36, 4.64], 2.65 inside
    gain = table.loc["ean-rafdb-10-gain"]
    assert gain["ours"] == pytest.approx(3.5) and gain["seeds"] == 1
    assert gain["interval"] == "paired bootstrap over test images"
    assert gain["verdict"] == "reproduced"
    # latent minus balanced: -2.0 with the interval below zero, the paper claims +1.21
    assert table.loc["li-r34-lat-gain-acc", "verdict"] == "not run; on fer2013: reversed"
    assert table.loc["li-r34-lat-gain-acc", "ours_nearest"] == pytest.approx(-2.0)
    # mAP is not in the predictions: a t interval over the two paired seeds (5, 6 points:
    # 5.5 +- 12.71 * 0.707 / sqrt(2)) holds zero
    gain_map = table.loc["li-r34-lat-gain-map"]
    assert gain_map["interval"] == "t over paired seeds"
    assert gain_map["low"] == pytest.approx(5.5 - 6.353, abs=1e-3)
    assert gain_map["verdict"] == "not run; on fer2013: not significant"
    assert table.loc["cucn-rafdb", "verdict"] == "not run"
    page = render_markdown(table.reset_index(), tmp_path, tmp_path)
    assert page.count("\n| ") == len(table) + 1  # header + one row per claim


def test_a_record_without_predictions_has_no_paired_interval(tmp_path):
    # AHM on FER2013 (the claim's own dataset) from the cpu profile, one seed, no predictions
    _record(tmp_path, "a", "ahm", "fer2013", {"accuracy": 0.45, "n": 1000}, profile="cpu")
    _record(tmp_path, "b", "baseline", "fer2013", {"accuracy": 0.40, "n": 1000}, profile="cpu")
    table = scoreboard(tmp_path).set_index("id")
    # one seed's accuracy still has a Wilson interval: 45 % of 1,000 is far from 80.6
    assert table.loc["ahm-fer2013", "interval"] == "Wilson, one seed"
    assert table.loc["ahm-fer2013", "verdict"] == "not reproduced; cpu profile, from scratch"
    assert table.loc["ahm-fer2013-gain", "ours"] == pytest.approx(5.0)
    assert table.loc["ahm-fer2013-gain", "verdict"] == "no interval; cpu profile, from scratch"
    page = render_markdown(table.reset_index(), tmp_path, tmp_path)
    assert "nan" not in page


def test_a_paired_gain_on_the_claims_dataset_names_the_profile(tmp_path):
    # +5 points, 50 more right answers in 1,000: [3.6, 6.4] holds the paper's +6.1
    _record(tmp_path, "a", "ahm", "fer2013", {"accuracy": 0.45}, n=1000, profile="cpu")
    _record(tmp_path, "b", "baseline", "fer2013", {"accuracy": 0.40}, n=1000, profile="cpu")
    table = scoreboard(tmp_path).set_index("id")
    assert table.loc["ahm-fer2013-gain", "verdict"] == "reproduced; cpu profile, from scratch"


def test_bad_record_names_the_file(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        scoreboard(tmp_path)


def test_only_natural_clean_records_of_the_longest_profile_answer(tmp_path):
    # a degradation-grid cell (imbalance 10) and a noisy run must not count for clean claims
    _record(tmp_path, "a", "cucn", "rafdb", {"accuracy": 0.50}, imbalance_ratio=10)
    _record(tmp_path, "b", "cucn", "rafdb", {"accuracy": 0.60}, noise_rate=0.2)
    _record(tmp_path, "c", "cucn", "rafdb", {"accuracy": 0.88}, n=1000)
    # a smoke record is superseded by the full-profile record of the same method
    rec = {"method": "ahm", "dataset": "rafdb", "split": "test", "metrics": {"accuracy": 0.1},
           "params": {"profile": "smoke"}}
    (tmp_path / "d.json").write_text(json.dumps(rec))
    _record(tmp_path, "e", "ahm", "rafdb", {"accuracy": 0.896}, n=1000)
    table = scoreboard(tmp_path).set_index("id")
    assert table.loc["cucn-rafdb", "ours"] == pytest.approx(88.0)
    assert table.loc["ahm-rafdb", "ours"] == pytest.approx(89.6)
    assert table.loc["ahm-rafdb", "verdict"] == "reproduced"


def test_committed_page_is_up_to_date(tmp_path):
    """book/scoreboard.md is what the committed records give today, verdicts recomputed."""
    from pathlib import Path

    from ferlib.book.scoreboard import BOOK_RECORDS
    root = Path(__file__).resolve().parents[1]
    page = root / "book" / "scoreboard.md"
    fresh = render_markdown(scoreboard(root / BOOK_RECORDS), root / BOOK_RECORDS, page.parent,
                            shown_as=BOOK_RECORDS)
    assert page.read_text() == fresh, \
        "book/scoreboard.md is stale: run python -m ferlib.book.scoreboard"


def test_every_verdict_on_the_page_follows_from_its_interval():
    """Read back from the page, each row's interval and verdict obey ferlib.stats.verdict."""
    from pathlib import Path

    from ferlib.book.scoreboard import TOLERANCE
    rows = [line for line in (Path(__file__).resolve().parents[1] / "book" / "scoreboard.md"
                              ).read_text().splitlines() if line.startswith("| ")][1:]
    claims = {(c["paper"], c["where"], c["dataset"], c["setup"], c["metric"]): c
              for c in load_claims()}
    assert len(rows) == len(claims)
    checked = 0
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        claim = claims[tuple(cells[:5])]
        ci = re.match(r"\[(-?[\d.]+), (-?[\d.]+)\]", cells[8])
        said = cells[9].split(";")
        if ci is None:
            assert said[0] in ("not run", "no interval"), row
            continue
        if said == ["not run"]:   # an absolute claim answered only on another dataset
            assert claim["kind"] == "absolute", row
            continue
        est = Estimate(0.0, None, float(ci.group(1)), float(ci.group(2)), 1, "page")
        want = verdict(claim["kind"], claim["claimed"], est, TOLERANCE)
        got = said[0] if said[0] != "not run" else said[1].split(": ")[1]
        assert got == want, row
        checked += 1
    assert checked >= 1


def test_claimed_values_feed_the_chapter_tables():
    from ferlib.methods.latent_aug.experiment import PAPER_TABLE1
    from ferlib.methods.cucn.experiment import PAPER_TABLE2
    from ferlib.claims import claimed

    assert claimed("li-r34-none-acc", "cucn-t2-r18ms-w-cbam-min") == {
        "li-r34-none-acc": 70.21, "cucn-t2-r18ms-w-cbam-min": 59.0}
    row = PAPER_TABLE1[(PAPER_TABLE1.model == "ResNet34") & (PAPER_TABLE1.method == "latent-aug")]
    assert row["accuracy"].item() == pytest.approx(0.7443) and row["mAP"].item() == pytest.approx(0.6737)
    t2 = PAPER_TABLE2.set_index("paper_row")
    assert len(t2) == 7 and t2.loc["ResNet18# + W", "accuracy"] == 63.34
    assert t2.loc["ResNet50* + W + CBAM", ["max_class_recall", "min_class_recall"]].tolist() == [83, 53]
    with pytest.raises(KeyError, match="no-such-claim"):
        claimed("no-such-claim")


def test_text_params_and_minus_params(tmp_path):
    # EAN's Table 5: the SynthFACS ablation (generator on minus off) is the gain's nearest run;
    # the per-backbone absolute claims need backbone "alexnet" and match no smallcnn record
    _record(tmp_path, "on", "ean:invariant", "synthfacs", {"accuracy": 0.70}, n=1000,
            generator=1, backbone="smallcnn")
    _record(tmp_path, "off", "ean:invariant", "synthfacs", {"accuracy": 0.66}, n=1000,
            generator=0, backbone="smallcnn")
    # an ImageNet-pretrained ResNet-50 row matches no record of ours
    _record(tmp_path, "c", "cucn", "affectnet", {"accuracy": 0.60}, backbone="resnet18")
    t = scoreboard(tmp_path).set_index("id")
    gain = t.loc["ean-t5-rafdb-resnet18-gain"]
    assert gain["nearest_dataset"] == "synthfacs" and gain["ours_nearest"] == pytest.approx(4.0)
    assert gain["verdict"] == "not run; on synthfacs: direction reproduced"
    assert t.loc["ean-t5-rafdb-alexnet-genc", "verdict"] == "not run"
    assert pd_isna(t.loc["ean-t5-rafdb-alexnet-genc", "ours_nearest"])
    assert t.loc["cucn-t2-r18ms-w-cbam-acc", "ours"] == pytest.approx(60.0)
    assert t.loc["cucn-t2-r50in-w-cbam-acc", "verdict"] == "not run"


def pd_isna(v):
    import pandas as pd
    return v is None or pd.isna(v)
