"""Siting on a region: hand-made cases with known answers, the CLI on a real extract.

These check the pure mathematical models (``standards=False`` / ``--no-standards``: candidate
points, no sizing, spacing or catchment) against hand-worked answers; siting by the standards,
the default, is checked in test_site_standards.py."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLES
from osm_fixtures import UTM, X0, Y0, write_osm

from planner import settings
from planner.cli import main
from planner.network import build_network
from planner.siting import candidates_from_region, site
from planner.sources import load_region

CAU = str(SAMPLES / "beijing_haidian_cau.osm.pbf")


def _points(xs, ys, **cols) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        cols, geometry=gpd.points_from_xy(np.asarray(xs) + X0, np.asarray(ys) + Y0), crs=UTM
    )


@pytest.fixture
def line_region(tmp_path):
    """A 1 km street with nodes every 100 m, and an existing kindergarten at x = 0."""
    nodes = {i + 1: (i * 100.0, 0.0) for i in range(11)}
    nodes[100] = (0.0, -10.0)
    path = write_osm(
        tmp_path / "line.osm",
        nodes,
        [(1, list(range(1, 12)), {"highway": "residential"})],
        {100: {"amenity": "kindergarten", "name": "现有幼儿园"}},
    )
    return load_region(path)


def test_mclp_picks_the_site_that_covers_most_people(line_region):
    homes = _points([100, 200, 700, 800, 900], [10] * 5, population=[10.0, 10, 50, 50, 50])
    cands = _points([500, 800], [10, 10], candidate_id=["c500", "c800"], source="file", name=None)
    res = site(
        line_region,
        "kindergarten",
        model="mclp",
        new=1,
        minutes=5,
        candidates=cands,
        homes=homes,
        standards=False,
    )
    assert res.proposed["candidate_id"].tolist() == ["c800"]
    # Existing kindergarten at x=0 covers the homes at 100 and 200 within 5 min (330 m); the
    # new one the three at 700-900: everyone is covered after, 20/170 before.
    ba = res.before_after.set_index("minutes")
    assert ba.loc[5, "population_share_before"] == pytest.approx(20 / 170)
    assert ba.loc[5, "population_share_after"] == pytest.approx(1.0)
    assert res.proposed["population_newly_covered"].iloc[0] == pytest.approx(150.0)
    assert res.proposed["homes_newly_covered"].iloc[0] == 3
    # The fixed existing site stays open and is not proposed again.
    assert len(res.existing) == 1 and 0 in res.solution.sites
    # Home at 800 now: 10 m leg + 0 + 10 m leg, walked with the detour factor.
    t800 = res.homes["time_after_s"].iloc[3]
    # (OSM stores coordinates to about 1 cm: 1e-3 on a 10 m leg.)
    assert t800 == pytest.approx(2 * 10 * settings.off_network_detour / settings.walk_speed_mps, rel=1e-3)


def test_elderly_walk_at_their_own_pace_in_the_model(line_region):
    """Home A (x=400, ten residents, all elderly) and home B (x=1000, twelve adults); one new
    site, c500 or c700, within 5 minutes. A is 300 m + two 10 m legs (×1.2) = 324 m from c700:
    295 s at the adult 1.1 m/s, 360 s at the elderly 0.9 m/s. At the adult pace c700 covers
    both (weight 20 + 12); with the elderly at their pace it covers only B (12), and c500
    covers A (20): the model must choose c500, and the report then shows A's elderly covered."""
    homes = _points(
        [400, 1000],
        [10, 10],
        population=[10.0, 12.0],
        elderly=[10.0, 0.0],
        children=[0.0, 0.0],
        disabled=[0.0, 0.0],
    )
    cands = _points([500, 700], [10, 10], candidate_id=["c500", "c700"], source="file", name=None)
    slow = site(
        line_region,
        "kindergarten",
        model="mclp",
        new=1,
        minutes=5,
        candidates=cands,
        homes=homes,
        standards=False,
    )
    assert slow.proposed["candidate_id"].tolist() == ["c500"]
    assert slow.elderly_time_factor == pytest.approx(
        settings.walk_speed_mps / settings.elderly_walk_speed_mps
    )
    assert slow.solution.objective == pytest.approx(20.0)
    assert slow.before_after.set_index("minutes").loc[5, "elderly_share_after"] == pytest.approx(1.0)
    fast = site(
        line_region,
        "kindergarten",
        model="mclp",
        new=1,
        minutes=5,
        candidates=cands,
        homes=homes,
        elderly_pace=False,
        standards=False,
    )
    assert fast.proposed["candidate_id"].tolist() == ["c700"]
    assert fast.elderly_time_factor == 1.0 and fast.solution.objective == pytest.approx(32.0)
    # The adult-pace plan leaves A's elderly outside 5 minutes at their pace.
    assert fast.before_after.set_index("minutes").loc[5, "elderly_share_after"] == pytest.approx(0.0)
    # Set covering at the elderly pace needs both sites; at the adult pace c700 alone.
    assert (
        len(
            site(
                line_region,
                "kindergarten",
                model="lscp",
                minutes=5,
                candidates=cands,
                homes=homes,
                standards=False,
            ).proposed
        )
        == 2
    )
    assert site(
        line_region,
        "kindergarten",
        model="lscp",
        minutes=5,
        candidates=cands,
        homes=homes,
        elderly_pace=False,
        standards=False,
    ).proposed["candidate_id"].tolist() == ["c700"]


def test_pmedian_matches_brute_force_on_the_line(line_region):
    homes = _points([100, 300, 600, 900], [10] * 4, population=[5.0, 1, 1, 5])
    xs = np.array([200, 400, 700, 900])
    cands = _points(xs, [10] * 4, candidate_id=[f"c{x}" for x in xs], source="file", name=None)
    res = site(
        line_region,
        "kindergarten",
        model="pmedian",
        new=1,
        candidates=cands,
        homes=homes,
        method="exact",
        standards=False,
    )
    # Brute force with the existing site at x=0 kept open. Homes and candidates sit 10 m off
    # street nodes, so a trip is the along-street distance plus two 10 m legs. The elderly
    # (with their priority weight) walk at their own pace: their times count × 1.1/0.9.
    detour, v = settings.off_network_detour, settings.walk_speed_mps
    hx, hp = np.array([100, 300, 600, 900]), np.array([5.0, 1, 1, 5])
    pw, es = settings.priority_weights, settings.elderly_share
    others = 1 - es + pw["children"] * settings.children_share + pw["disabled"] * settings.disabled_share
    elderly = es * (1 + pw["elderly"]) * v / settings.elderly_walk_speed_mps
    w = hp * (others + elderly)
    existing = (hx + 10 * detour + 10 * detour) / v  # the kindergarten is 10 m off node x=0
    totals = {x: float((w * np.minimum(existing, (np.abs(hx - x) + 20 * detour) / v)).sum()) for x in xs}
    best = min(totals, key=totals.get)
    assert res.proposed["candidate_id"].tolist() == [f"c{best}"]
    assert res.solution.objective == pytest.approx(totals[best], rel=1e-4)
    assert res.solution.gap == pytest.approx(0.0, abs=1e-6)


def test_pmedian_with_no_facility_yet_names_where_travel_times_stop(line_region, monkeypatch):
    # No clinic on the line: every home needs a new site within the matrix's reach, 5 min +
    # the 60 s margin here (max_travel_time_s lowered to 300 s): 396 m at 1.1 m/s. Homes at
    # 100 and 900 m, candidates at 100 and 900 m: one site cannot serve both, two can.
    from planner._errors import InfeasibleError

    monkeypatch.setattr(settings, "minutes", (5,))
    monkeypatch.setattr(settings, "max_travel_time_s", 300.0)
    homes = _points([100, 900], [10] * 2, population=[5.0, 5.0])
    cands = _points([100, 900], [10] * 2, candidate_id=["c100", "c900"], source="file", name=None)
    ask = {"model": "pmedian", "candidates": cands, "homes": homes, "minutes": 5}
    ask |= {"method": "exact", "standards": False}
    with pytest.raises(InfeasibleError) as err:
        site(line_region, "clinic", new=1, **ask)
    text = str(err.value)
    assert "\n" not in text and "raise p to 2" in text
    assert "no existing clinic" in text and "within 6 min" in text and "max_travel_time_s" in text
    assert sorted(site(line_region, "clinic", new=2, **ask).proposed["candidate_id"]) == ["c100", "c900"]
    # With the kindergarten at x = 0 open, the matrix stops at the farthest home's time to it:
    # one new site is enough.
    assert site(line_region, "kindergarten", new=1, **ask).proposed["candidate_id"].tolist() == ["c900"]


def test_candidates_from_region_include_buildings_and_street_points():
    region = load_region(CAU)
    cands = candidates_from_region(region, build_network(region))
    assert set(cands["source"]) >= {"building", "street"}
    assert cands["candidate_id"].is_unique


def test_cli_site_writes_outputs(tmp_path):
    out = tmp_path / "site"
    rc = main(
        [
            "site",
            "--no-standards",
            "--osm",
            CAU,
            "--category",
            "elderly_care",
            "--model",
            "mclp",
            "--new",
            "3",
            "--minutes",
            "10",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    sites = gpd.read_file(out / "sites.gpkg", layer="proposed")
    assert sites.crs.to_epsg() == 4326 and len(sites) == 3
    assert sites["rank"].tolist() == [1, 2, 3]
    assert (sites["population_newly_covered"] >= 0).all()
    ba = pd.read_csv(out / "before_after.csv")
    # Percent to 0.1, before → after → change per group.
    assert list(ba.columns[:7]) == [
        "minutes",
        "population_pct_before",
        "population_pct_after",
        "population_pct_change",
        "elderly_pct_before",
        "elderly_pct_after",
        "elderly_pct_change",
    ]
    assert {"children_pct_before", "children_pct_after"} <= set(ba.columns)
    assert (ba["population_pct_after"] >= ba["population_pct_before"]).all()
    # No elderly care is mapped there: before is 0 everywhere.
    assert (ba["population_pct_before"] == 0).all()
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for key in ("objective", "lower_bound", "gap", "solver", "seconds"):
        assert key in s
    assert s["lower_bound"] <= s["objective"] + 1e-9 or s["model"] == "mclp"
    assert (out / "map.html").exists()


def test_lscp_covers_every_home_not_just_its_node(tmp_path):
    """Set covering promises every reachable home within the standard. Homes at one street
    node keep their own legs in the model, so the audit's per-home times agree: after the
    new sites, every reachable home is within 5 minutes (in Nanjing Xinjiekou, with
    node-averaged legs, 1.2 % of the people were not)."""
    out = tmp_path / "lscp"
    rc = main(
        [
            "site",
            "--no-standards",
            "--osm",
            CAU,
            "--category",
            "kindergarten",
            "--model",
            "lscp",
            "--minutes",
            "5",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    ba = pd.read_csv(out / "before_after.csv").set_index("minutes")
    # Every home some candidate reaches within 5 minutes is covered; the others are reported.
    unreachable = s["counts"]["homes_no_candidate_within_reach"]
    assert ba.loc[5, "homes_pct_after"] == round(100 * (1.0 - unreachable / s["counts"]["homes"]), 1)
    assert s["gap"] == 0.0
    # The elderly are modelled at their own pace: every elderly resident some candidate
    # reaches within 5 minutes at 0.9 m/s is covered too.
    assert s["elderly_time_factor"] == pytest.approx(
        settings.walk_speed_mps / settings.elderly_walk_speed_mps, rel=1e-4
    )
    missing = s["counts"]["elderly_no_candidate_within_reach"]
    assert 0 < missing < s["counts"]["elderly"]
    assert ba.loc[5, "elderly_pct_after"] == round(100 * (1.0 - missing / s["counts"]["elderly"]), 1)


@pytest.mark.browser
def test_site_map_draws_offline(tmp_path):
    import browser

    if not browser.chromium_available():
        pytest.skip(browser.SKIP_REASON)
    out = tmp_path / "site"
    assert (
        main(
            [
                "site",
                "--no-standards",
                "--osm",
                CAU,
                "--category",
                "kindergarten",
                "--model",
                "mclp",
                "--new",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    seen = browser.open_in_browser(out / "map.html")
    assert seen["errors"] == [] and seen["external"] == []
    assert seen["paths"] > 50
    assert any("Proposed" in n for n in seen["layer_names"])
    assert "道路 Roads" in seen["layer_names"]  # the streets, for context


def test_bad_site_inputs(tmp_path, capsys):
    out = tmp_path / "o"
    assert (
        main(
            [
                "site",
                "--no-standards",
                "--osm",
                CAU,
                "--category",
                "kindergarden",
                "--model",
                "mclp",
                "--new",
                "1",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "kindergarden" in capsys.readouterr().err
    assert (
        main(["site", "--osm", CAU, "--category", "kindergarten", "--model", "mclp", "--out", str(out)]) == 2
    )
    assert "--new" in capsys.readouterr().err
    # No elderly care is mapped there, so new sites of capacity 1 cannot serve ~14,000 weighted residents.
    assert (
        main(
            [
                "site",
                "--no-standards",
                "--osm",
                CAU,
                "--category",
                "elderly_care",
                "--model",
                "pmedian",
                "--new",
                "1",
                "--capacity",
                "1",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "capacit" in err
    assert not out.exists()
