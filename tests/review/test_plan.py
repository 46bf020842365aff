"""Reading a plan (planner.review.plan): the estate's level and residents, and bad input:
one clear line naming the file and the fix, nothing written.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import LineString, Point, Polygon, box

from planner import settings
from planner._errors import InputError
from planner.review import estate_level, read_plan, run_review
from planner.rules import load_rulepack

from .plans import estate, facility, write_plan


@pytest.mark.parametrize(
    ("households", "level"),
    [
        (100, "block"),
        (300, "block"),
        (1000, "block"),
        (1200, "block"),  # gap between block (≤ 1000) and 5-min (≥ 1500): the lower level
        (1500, "5min"),
        (4000, "5min"),
        (4999, "5min"),
        (5000, "10min"),
        (8000, "10min"),
        (16999, "10min"),
        (17000, "15min"),
        (40000, "15min"),
    ],
)
def test_level_from_households(households, level):
    assert estate_level(households, load_rulepack("gb50180-2018").levels)[0] == level


def test_level_given_in_the_plan_wins(tmp_path):
    plan = read_plan(write_plan(tmp_path / "p.geojson", [estate(2000, level="10min")]))
    assert plan.level == "10min" and plan.level_source == "plan"
    assert any("outside that level's range" in n for n in plan.notes)
    plan = read_plan(write_plan(tmp_path / "p.geojson", [estate(2000)]))
    assert plan.level == "5min" and "3.0.4" in plan.level_source


def test_population_default_is_households_times_persons_per_household(tmp_path):
    plan = read_plan(write_plan(tmp_path / "p.geojson", [estate(1000)]))
    assert plan.population == pytest.approx(1000 * settings.persons_per_household)
    plan = read_plan(write_plan(tmp_path / "p.geojson", [estate(1000, population=3000)]))
    assert plan.population == 3000 and plan.population_given


def test_estate_wider_than_any_life_circle_is_refused(tmp_path):
    # MAX_ESTATE_EXTENT_M = 20 km: 19 km is read (an odd plan, but one), 21 km is refused in
    # one line before anything is laid out over it (a damaged file once asked for a 349 GiB grid).
    wide = read_plan(write_plan(tmp_path / "a.geojson", [estate(1000, geom=box(500_000, 0, 519_000, 200))]))
    assert wide.households == 1000
    with pytest.raises(InputError, match=r"spans 21\.0 km \(limit 20 km"):
        read_plan(write_plan(tmp_path / "b.geojson", [estate(1000, geom=box(500_000, 0, 521_000, 200))]))


def _assert_refused(tmp_path, plan_path, match, **kwargs):
    out = tmp_path / "out"
    with pytest.raises(InputError, match=match) as info:
        run_review(plan_path, out_dir=out, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert Path(plan_path).name in message or "--rules" in message or ".toml" in message or ".osm" in message
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp")]
    return message


BOWTIE = Polygon([(0, 0), (200, 200), (200, 0), (0, 200)])


@pytest.mark.parametrize(
    ("features", "match"),
    [
        ([({"role": "estate"}, box(0, 0, 200, 200))], "no 'households'"),
        ([estate(0)], "positive whole number"),
        ([estate(1000.5)], "positive whole number"),
        ([estate("many")], "'many' is not a number"),
        ([estate(10_000_000)], "more than any life circle"),
        ([estate(1000, geom=box(0, 0, 10, 10))], "per ha"),
        ([estate(1000, population=50)], "persons per household"),
        ([estate(1000, level="5-minute")], "level '5-minute' is not known"),
        ([estate(1000, geom=BOWTIE)], "Self-intersection"),
        (
            [estate(1000), facility("kindergarten", 3200, BOWTIE)],
            r"feature 2 \(role=facility\) has an invalid geometry",
        ),
        (
            [estate(1000), facility("kindergarden", 3200)],
            "unknown category 'kindergarden'; did you mean 'kindergarten'",
        ),
        ([estate(1000), facility(None, 3200)], "has no 'category'"),
        ([estate(1000), facility("kindergarten", -10)], "floor_area_m2 -10 is negative"),
        ([estate(1000), facility("kindergarten", 3_000_000)], "more than any community facility"),
        ([estate(1000), facility("kindergarten", 3200, land_area_m2=-1)], "land_area_m2 -1 is negative"),
        (
            [estate(1000), facility("kindergarten", 3200, box(0, 0, 50, 50), land_area_m2=250_000)],
            "check the unit",
        ),
        ([estate(1000), facility("kindergarten", None)], "has no floor_area_m2"),
        ([estate(1000), facility("kindergarten", 3200, Point(50_000, 0))], "km from the estate"),
        ([estate(1000), facility("childcare", 500, places=-3)], "places -3 is negative"),
        ([facility("kindergarten", 3200)], "no feature with role=estate"),
        ([estate(1000), estate(500)], "2 features have role=estate"),
        ([estate(1000), ({"role": "facilty"}, Point(0, 0))], "role 'facilty'"),
        ([estate(1000), ({"name": "x"}, Point(0, 0))], "role None"),
        ([estate(1000, geom=LineString([(0, 0), (100, 100)]))], "is a LineString"),
        ([estate(1000), ({"role": "path"}, Point(0, 0))], "a path must be LineString"),
    ],
)
def test_bad_plan(tmp_path, features, match):
    _assert_refused(tmp_path, write_plan(tmp_path / "plan.geojson", features), match)


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_bad_plan_no_crs(tmp_path):
    frame = gpd.GeoDataFrame({"role": ["estate"], "households": [1000]}, geometry=[box(0, 0, 200, 200)])
    path = tmp_path / "plan.gpkg"
    frame.to_file(path, layer="plan")
    _assert_refused(tmp_path, path, "no CRS")


def test_bad_plan_metres_labelled_as_lonlat(tmp_path):
    # GeoJSON without a crs member means WGS84; these are UTM metres.
    _assert_refused(
        tmp_path, write_plan(tmp_path / "plan.geojson", [estate(1000)], crs=None), "not longitude/latitude"
    )


def test_bad_plan_no_role_property(tmp_path):
    path = tmp_path / "plan.geojson"
    write_plan(path, [({"households": 1000}, box(0, 0, 200, 200))])
    _assert_refused(tmp_path, path, "no 'role' property")


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("plan.geojson", "{not json", "cannot read the plan"),
        ("plan.shp", "", "unsupported file type"),
        ("missing.geojson", None, "file not found"),
    ],
)
def test_bad_plan_file(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    _assert_refused(tmp_path, path, match)


def test_bad_rules_and_osm(tmp_path):
    plan = write_plan(tmp_path / "plan.geojson", [estate(1000)])
    _assert_refused(tmp_path, plan, "unknown rule pack", rules=["gb50180-2018", "no-such-pack"])
    bad_osm = tmp_path / "x.osm"
    bad_osm.write_text("hello")
    _assert_refused(tmp_path, plan, "not OSM XML", osm=bad_osm)


def test_failed_run_leaves_previous_output_alone(tmp_path):
    out = tmp_path / "out"
    good = write_plan(tmp_path / "good.geojson", [estate(1000), facility("community_service", 300)])
    assert run_review(good, rules="community-service", out_dir=out) == 0
    before = (out / "review.json").read_text(encoding="utf-8")
    bad = write_plan(tmp_path / "bad.geojson", [estate(None)])
    with pytest.raises(InputError):
        run_review(bad, out_dir=out)
    assert (out / "review.json").read_text(encoding="utf-8") == before
