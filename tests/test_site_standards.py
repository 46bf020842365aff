"""Siting by the standards (the default of ``site``) on the real samples (Beijing Haidian,
Nanjing): spacing, catchment, land candidates and capacities hold for every proposed site of
every model; the CLI reports in a planner's units."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from conftest import SAMPLES

from planner import settings
from planner._errors import InputError
from planner.candidates import STREET_FALLBACK, land_candidates
from planner.cli import main
from planner.siting import site
from planner.sources import load_region

LAND = {"building", "vacant_land", "public_land", "facility_site", "file"}


@pytest.fixture(scope="module")
def regions():
    return {
        name: load_region(str(SAMPLES / f"{name}.osm.pbf"))
        for name in ("beijing_haidian_cau", "nanjing_xinjiekou")
    }


def _check_plan(res):
    """Every rule of the standards on a result; returns the proposed sites."""
    std = res.report["standards"]
    spacing = std["sizing"]["min_spacing_m"]
    prop = res.proposed
    xy = shapely.get_coordinates(prop.geometry.to_numpy())
    ex = shapely.get_coordinates(shapely.point_on_surface(res.existing.geometry.to_numpy()))
    for i in range(len(xy)):
        others = np.vstack([np.delete(xy, i, axis=0), ex])
        if len(others):
            assert np.hypot(*(others - xy[i]).T).min() >= spacing - 1e-6
    assert (prop["people_assigned"] >= std["sizing"]["min_catchment_residents"] - 1e-6).all()
    assert (prop["people_assigned"] <= prop["capacity"] + 1e-6).all()
    assert set(prop["source"]) <= LAND or std["candidates"]["street_fallback"]
    table = res.solution.table()
    fixed = table[(table["kind"] == "fixed") & np.isfinite(table["capacity"])]
    assert (fixed["load"] <= fixed["capacity"] + 1e-6).all()
    return prop


@pytest.mark.parametrize("category", ["elderly_care", "community_service", "clinic"])
def test_nanjing_by_the_standards(regions, category):
    res = site(regions["nanjing_xinjiekou"], category, model="mclp", new=6, standards=True)
    prop = _check_plan(res)
    assert 1 <= len(prop) <= 6
    assert not res.report["standards"]["candidates"]["street_fallback"]
    u = res.report["planner_units"]
    assert u["people_within_target_after"] > u["people_within_target_before"]
    assert u["mean_walk_min_after"] <= u["mean_walk_min_before"] if u["mean_walk_min_before"] else True


def test_haidian_kindergarten_no_site_below_the_catchment(regions):
    # No land of ≥ 5,240 m² reaches 1,000 residents within 300 m: nothing is proposed, and the
    # homes beyond every candidate are named.
    res = site(regions["beijing_haidian_cau"], "kindergarten", model="lscp", standards=True)
    assert len(res.proposed) == 0
    assert res.report["standards"]["candidates"]["kept"] == 8
    assert (
        len(res.report["homes_beyond_every_candidate"]) == res.counts["homes_no_candidate_within_reach"] > 0
    )


def test_haidian_with_a_smaller_catchment(regions):
    settings.min_catchment_residents = {**settings.min_catchment_residents, "5min": 300.0}
    res = site(regions["beijing_haidian_cau"], "elderly_care", model="lscp", standards=True)
    prop = _check_plan(res)
    assert len(prop) >= 2
    assert (prop["people_assigned"] >= 300).all()
    # The unconstrained set cover on street points proposes sites far closer together.
    plain = site(regions["beijing_haidian_cau"], "elderly_care", model="lscp", standards=False)
    xy = shapely.get_coordinates(plain.proposed.geometry.to_numpy())
    d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    assert d.min() < 300 and len(plain.proposed) > len(prop)


@pytest.mark.parametrize(
    ("model", "name", "category"),
    [
        ("pmedian", "nanjing_xinjiekou", "elderly_care"),
        ("pmedian", "nanjing_xinjiekou", "clinic"),
        ("pmedian", "beijing_haidian_cau", "elderly_care"),
        ("pcenter", "beijing_haidian_cau", "elderly_care"),
    ],
)
def test_pmedian_pcenter_by_the_standards(regions, model, name, category):
    res = site(regions[name], category, model=model, new=3)  # by the standards: the default
    prop = _check_plan(res)
    assert 1 <= len(prop) <= 3
    assert not res.report["standards"]["candidates"]["street_fallback"]
    assert res.solution.status == "optimal" and res.solution.gap == 0.0
    u = res.report["planner_units"]
    assert u["people_within_target_after"] >= u["people_within_target_before"]
    # The objective is in the model's own unit; the planner's units are beside it.
    assert res.summary()["objective_unit"] == {"pmedian": "weighted seconds", "pcenter": "seconds"}[model]


def test_pmedian_by_the_standards_against_the_pure_model(regions):
    """The pure p-median may use street points; by the standards every site is land or a
    building, no pair is closer than the spacing and each takes at least the catchment."""
    region = regions["nanjing_xinjiekou"]
    pure = site(region, "elderly_care", model="pmedian", new=6, standards=False)
    assert "street" in set(pure.proposed["source"])
    res = site(region, "elderly_care", model="pmedian", new=6)
    ruled = _check_plan(res)
    assert 1 <= len(ruled) <= 6 and not ({"street", STREET_FALLBACK} & set(ruled["source"]))
    # The model counts at most the capacity per site: what it leaves over stays with no site.
    assert ruled["people_assigned"].sum() <= ruled["capacity"].sum() + 1e-6


def test_cli_default_is_by_the_standards(tmp_path, capsys):
    out = tmp_path / "site"
    argv = ["site", "--osm", "beijing_haidian_cau", "--category", "kindergarten", "--model", "lscp"]
    assert main([*argv, "--out", str(out), "--no-map"]) == 0
    text = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    std = summary["standards"]
    assert std["candidates"]["kept"] == 8 and std["candidates"]["given"] == 39
    assert "by the standards: 8 of 39 candidate sites big enough, minimum catchment 1,000 residents" in text
    assert "nothing proposed" in text and summary["new_sites"] == 0
    beyond = summary["homes_beyond_every_candidate"]
    assert len(beyond) == summary["counts"]["homes_no_candidate_within_reach"] == 103
    assert f"103 homes beyond every candidate (none within 4.55 min): {beyond[0]}" in text
    assert STREET_FALLBACK not in text


def test_cli_street_fallback_is_named(tmp_path, capsys, monkeypatch):
    # A facility needing more land than any mapped plot: street points, and the console says so.
    from dataclasses import replace

    import planner.site_standards as site_standards

    sized = site_standards.sizing_for
    monkeypatch.setattr(
        site_standards,
        "sizing_for",
        lambda cat, level=None: replace(
            sized(cat, level), land_m2=1e9, floor_m2=1e9, min_catchment_residents=0.0
        ),
    )
    out = tmp_path / "site"
    argv = [
        "site",
        "--osm",
        "beijing_haidian_cau",
        "--category",
        "elderly_care",
        "--model",
        "mclp",
        "--new",
        "2",
    ]
    assert main([*argv, "--out", str(out), "--no-map"]) == 0
    text = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["standards"]["candidates"]["street_fallback"] is True
    assert summary["standards"]["candidates"]["kept"] > 0
    assert "STREET POINTS (fallback: no mapped land fits)" in text
    sites = gpd.read_file(out / "sites.gpkg")
    assert len(sites) == 2 and set(sites["source"]) == {STREET_FALLBACK}


def test_cli_console_in_planner_units_pure_model(tmp_path, capsys):
    out = tmp_path / "site"
    rc = main(
        [
            "site",
            "--osm",
            "beijing_haidian_cau",
            "--category",
            "kindergarten",
            "--model",
            "lscp",
            "--no-standards",
            "--out",
            str(out),
            "--no-map",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    beyond = summary["homes_beyond_every_candidate"]
    assert len(beyond) == summary["counts"]["homes_no_candidate_within_reach"] == 12
    assert f"12 homes beyond every candidate (none within 4.55 min): {beyond[0]}" in text
    assert "and 4 more" in text
    u = summary["planner_units"]
    assert f"people {u['people_within_target_before']:,.0f} → {u['people_within_target_after']:,.0f}" in text
    assert u["p90_walk_min_after"] < u["p90_walk_min_before"]
    assert STREET_FALLBACK not in text  # the pure model's street points are not the fallback


def test_health_centre_only_next_to_existing_elderly_care(regions):
    import geopandas as gpd

    from planner.candidates import sized_candidates
    from planner.categories import load_categories
    from planner.sizing import sizing_for

    region = regions["nanjing_xinjiekou"]
    settings.min_catchment_residents = {**settings.min_catchment_residents, "15min": 0.0}
    free = site(region, "health_centre", model="mclp", new=1, standards=True)
    assert len(free.proposed) == 1
    # No elderly care is mapped in the sample: the rule leaves no candidate, one line says so.
    with pytest.raises(InputError, match="--colocate: no candidate site for health_centre within 50 m"):
        site(region, "health_centre", model="mclp", new=1, standards=True, colocate=True)
    # An elderly-care home 30 m from another site the free model would open (with two).
    sized, _ = sized_candidates(land_candidates(region), sizing_for(load_categories()["health_centre"]))
    two = site(region, "health_centre", model="mclp", new=2, standards=True).proposed
    other = two[two["candidate_id"] != free.proposed["candidate_id"].iloc[0]].iloc[0]
    spot = shapely.Point(other.geometry.x + 30, other.geometry.y)
    home = gpd.GeoDataFrame(
        {"facility_id": ["e1"], "category": ["elderly_care"], "name": ["敬老院"]},
        geometry=[spot],
        crs=region.crs,
    )
    near = site(
        region, "health_centre", model="mclp", new=1, standards=True, colocate=True, extra_facilities=home
    )
    within = int((sized.geometry.distance(spot) <= 50).sum())
    assert near.report["standards"]["candidates"]["next_to_elderly_care"] == within >= 1
    assert len(near.proposed) == 1
    assert near.proposed.geometry.iloc[0].distance(spot) <= 50  # the answer moved next to elderly care
    assert near.proposed["candidate_id"].iloc[0] != free.proposed["candidate_id"].iloc[0]


def test_colocate_needs_the_standards_and_a_rule(regions):
    with pytest.raises(InputError, match="--colocate: leave out --no-standards"):
        site(regions["nanjing_xinjiekou"], "clinic", model="mclp", new=1, colocate=True, standards=False)
    with pytest.raises(InputError, match="clinic has no co-location rule"):
        site(regions["nanjing_xinjiekou"], "clinic", model="mclp", new=1, standards=True, colocate=True)
