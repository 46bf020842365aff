"""Nested life-circle levels (planner.review.levels), rule strength and the plan-level indicators.

Hand-worked plans in EPSG:32650 (metres). Residents default to households × 2.62
(``settings.persons_per_household``) unless the estate gives ``population``. Areas of a level
in an estate: max(1, ceil(households / the level's largest households), ceil(residents /
the level's largest population)), with GB 50180-2018 cl. 3.0.4: 5-minute ≤ 4,000 households
and 12,000 residents, block ≤ 1,000 and 3,000, 10-minute ≤ 8,000 and 25,000.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from shapely import affinity
from shapely.geometry import Point, box, mapping
from typer.testing import CliRunner

from planner._errors import InputError
from planner.cli import app
from planner.review import review
from planner.review.levels import areas_of_level
from planner.rules import load_rulepack

X0, Y0 = 500_000.0, 3_500_000.0


def write_plan(path: Path, features) -> Path:
    fc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32650"}},
        "features": [
            {"type": "Feature", "properties": p, "geometry": mapping(affinity.translate(g, X0, Y0))}
            for p, g in features
        ],
    }
    path.write_text(json.dumps(fc), encoding="utf-8")
    return path


def estate(households, size=600.0, **props):
    return {"role": "estate", "households": households, **props}, box(0, 0, size, size)


def facility(category, floor, geom=None, **props):
    return {"role": "facility", "category": category, "floor_area_m2": floor, **props}, geom or Point(
        100, 100
    )


def green(geom, **props):
    return {"role": "green_space", "name": "park", **props}, geom


def result(rev, rule_id):
    return next(r for r in rev.results if r.rule.id == rule_id)


def write_pack(path: Path, body: str) -> Path:
    path.write_text(
        '[pack]\nid = "local-test"\ntitle_zh = "测试"\ntitle_en = "Test"\nsource = "test"\nscope = "city"\n'
        'city = "测试市"\n\n' + body,
        encoding="utf-8",
    )
    return path


# --------------------------------------------------------------------------------------------
# nested levels


def test_areas_of_a_level_from_its_scale_range():
    levels = {lv.id: lv for lv in load_rulepack("gb50180-2018").levels}
    # 6,000 households, 15,720 residents: ceil(6000/4000) = 2 and ceil(15720/12000) = 2.
    assert areas_of_level(6000, 15720, levels["5min"])[0] == 2
    # ceil(6000/1000) = 6 and ceil(15720/3000) = 6 blocks; one 10-minute area.
    assert areas_of_level(6000, 15720, levels["block"])[0] == 6
    assert areas_of_level(6000, 15720, levels["10min"])[0] == 1
    # At, below and above the 5-minute level's largest households (4,000).
    assert areas_of_level(4000, 10480, levels["5min"])[0] == 1
    assert areas_of_level(4001, 10482.62, levels["5min"])[0] == 2
    # Residents can ask for more areas than households: 4,000 households of 3.5 persons = 14,000 > 12,000.
    n, how = areas_of_level(4000, 14000, levels["5min"])
    assert n == 2 and "ceil(14,000 residents / 12,000) = 2" in how


def _ten_minute_estate(tmp_path, **extra):
    """6,000 households with the 10-minute facilities, a service station, day care and nursery,
    but no kindergarten, health station or convenience store."""
    return write_plan(
        tmp_path / "p.geojson",
        [
            estate(6000, **extra),
            facility("primary_school", 9000, box(0, 0, 100, 100)),
            facility("market", 1000),
            facility("sports", 0, land_area_m2=2000),  # fits only the 10-minute range 1,310–2,460
            facility("community_service", 800, land_area_m2=600),
            facility("elderly_care", 400),
            facility("childcare", 1200, places=80),
        ],
    )


def test_nested_estate_missing_lower_level_facilities_fails_and_names_them(tmp_path):
    plan = _ten_minute_estate(tmp_path)
    rev = review(plan, rules="gb50180-2018")
    assert rev.plan.level == "10min" and not rev.passed and rev.exit_code == 1
    assert rev.level_areas["5min"][0] == 2 and rev.level_areas["block"][0] == 6
    missing = {m["category"]: m for m in rev.missing_facilities()}
    assert missing["kindergarten"] == {
        "rule_id": "gb50180.5min.kindergarten.present",
        "level": "5min",
        "category": "kindergarten",
        "required": 2,
        "planned": 0,
        "strength": "mandatory",
    }
    assert missing["clinic"]["required"] == 2 and missing["clinic"]["planned"] == 0
    assert missing["convenience_store"]["level"] == "block" and missing["convenience_store"]["required"] == 6
    # One service station, day care and nursery where two 5-minute areas need two each.
    for cat in ("community_service", "elderly_care", "childcare"):
        assert missing[cat]["required"] == 2 and missing[cat]["planned"] == 1, cat
    note = result(rev, "gb50180.5min.kindergarten.present").note
    assert "missing kindergarten of the 5min level: 0 planned, 2 needed" in note
    # The 10-minute facilities themselves are there.
    for rid in ("primary_school", "market", "mid_sports"):
        assert result(rev, f"gb50180.10min.{rid}.present").status == "pass"
    # The sports ground is the 10-minute one (by its land area): the 5-minute court is missing.
    assert rev.plan.facilities["level"].tolist()[2] == "10min"
    assert missing["sports"]["level"] == "5min"
    # Tier rule for radii too: the 10-minute ground does not stand in for the 5-minute court.
    court = result(rev, "gb50180.5min.sports_court.radius")
    assert court.status == "advice" and court.details["planned_facilities"] == 0
    assert court.note.startswith("no sports of the 5min level planned")
    assert result(rev, "gb50180.10min.mid_sports.radius").details["planned_facilities"] == 1


@pytest.mark.parametrize(
    ("households", "kindergartens", "status"),
    [
        (4000, 1, "pass"),  # one 5-minute area
        (4001, 1, "fail"),  # ceil(4001/4000) = 2 areas: two kindergartens
        (4001, 2, "pass"),
    ],
)
def test_count_at_the_level_boundary(tmp_path, households, kindergartens, status):
    plan = write_plan(
        tmp_path / "p.geojson",
        [estate(households)]
        + [facility("kindergarten", 3200, Point(100 + 50 * k, 100)) for k in range(kindergartens)],
    )
    r = result(review(plan, rules="gb50180-2018"), "gb50180.5min.kindergarten.present")
    assert r.status == status and r.details["required"] == (1 if households == 4000 else 2)


@pytest.mark.parametrize(
    ("households", "level", "primary"),
    [
        (4999, "5min", "not_applicable"),
        (5000, "10min", "fail"),
        (1499, "block", "not_applicable"),
        (1500, "5min", "not_applicable"),
    ],
)
def test_rules_by_level_at_the_household_boundary(tmp_path, households, level, primary):
    plan = write_plan(tmp_path / "p.geojson", [estate(households)])
    rev = review(plan, rules="gb50180-2018")
    assert rev.plan.level == level
    assert result(rev, "gb50180.10min.primary_school.present").status == primary
    kg = result(rev, "gb50180.5min.kindergarten.present").status
    assert kg == ("not_applicable" if level == "block" else "fail")
    assert result(rev, "gb50180.block.convenience_store.present").status == "fail"  # every level holds blocks


def test_per_1000_indicator_counts_its_own_level_only(tmp_path):
    plan = _ten_minute_estate(tmp_path)
    rev = review(plan, rules="gb50180-2018")
    # 10-minute facilities' floor: school 9,000 + market 1,000 + sports 0 = 10,000 m² for
    # 15,720 residents = 636.1 m²/1,000 (needs 1,050): the 5-minute ones (2,400 m²) do not count.
    r = result(rev, "gb50180.10min.per1000.floor")
    assert r.status == "fail" and r.value == pytest.approx(10000 / 15.72)
    assert r.details["shortfall_area_m2"] == pytest.approx(1050 * 15.72 - 10000)
    # 5-minute facilities: service station 800 + day care 400 + nursery 1,200 = 2,400 m².
    assert result(rev, "gb50180.5min.per1000.floor").value == pytest.approx(2400 / 15.72)
    # Land: the 10-minute school 10,000 m² (drawn) + sports 2,000 = 12,000 m²; the 5-minute 600 m².
    assert result(rev, "gb50180.10min.per1000.land").value == pytest.approx(12000 / 15.72)
    assert result(rev, "gb50180.5min.per1000.land").value == pytest.approx(600 / 15.72)


def test_a_facility_of_unclear_level_must_say(tmp_path):
    # A 15-minute estate: a 800 m² community service facility fits both the 5-minute station
    # (600–1,000 m²) and the sub-district centre (700–1,500 m²).
    feats = [estate(20000, size=1500), facility("community_service", 800)]
    with pytest.raises(
        InputError, match=r"feature 2 \(category=community_service\) could serve the 15min or 5min level"
    ):
        review(write_plan(tmp_path / "p.geojson", feats), rules="gb50180-2018")
    feats[1] = facility("community_service", 800, level="5min")
    rev = review(write_plan(tmp_path / "p.geojson", feats), rules="gb50180-2018")
    assert result(rev, "gb50180.15min.community_service_centre.present").status == "fail"
    # 20,000 households: ceil(20000/4000) = 5 five-minute areas, one station planned.
    assert result(rev, "gb50180.5min.community_service.present").details["required"] == 5


# --------------------------------------------------------------------------------------------
# strength


def _block_estate(tmp_path, store_floor):
    # 1,000 households, 2,620 residents, one block. Block floor: store + 120 m² lockers
    # (≥ 80 × 2.62 = 209.6 needed); play-area land 200 m² (≥ 50 × 2.62 = 131).
    return write_plan(
        tmp_path / "p.geojson",
        [
            estate(1000, size=300),
            facility("convenience_store", store_floor),
            facility("parcel_station", 120, Point(50, 50)),
            facility("park", 0, Point(60, 60), land_area_m2=200),
        ],
    )


def test_advice_alone_exits_0_and_is_shown(tmp_path):
    plan = _block_estate(tmp_path, 120)  # above the advisory 50–100 m²
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["review", "--plan", str(plan), "--rules", "gb50180-2018", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "0 failed, 1 advice" in res.output
    recs = {r["rule_id"]: r for r in json.loads((out / "review.json").read_text(encoding="utf-8"))}
    store = recs["gb50180.block.convenience_store.floor_area"]
    assert (store["status"], store["strength"], store["value"], store["excess"]) == (
        "advice",
        "advisory",
        120,
        20,
    )
    assert recs["gb50180.block.convenience_store.present"]["strength"] == "mandatory"
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["verdict"] == "pass" and summary["advice"] == [
        "gb50180.block.convenience_store.floor_area"
    ]
    page = (out / "review.html").read_text(encoding="utf-8")
    assert "建议 Advice" in page and "通过 PASS" in page and "s-advice" in page


@pytest.mark.parametrize(("store", "code"), [(100, 0), (99, 1)])
def test_a_local_rule_fails_the_estate(tmp_path, store, code):
    pack = write_pack(
        tmp_path / "city.toml",
        """
[[rule]]
id = "city.store.min"
title_zh = "便利店不小于100平方米"
title_en = "Convenience store of at least 100 m²"
clause = "第1条"
confirmed = true
strength = "local"
measure = "facility_area_min_each"
category = "convenience_store"
threshold = 100
unit = "m²"
""",
    )
    plan = _block_estate(tmp_path, store)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["review", "--plan", str(plan), "--rules", f"gb50180-2018,{pack}", "--out", str(out)]
    )
    assert res.exit_code == code, res.output
    rec = next(
        r
        for r in json.loads((out / "review.json").read_text(encoding="utf-8"))
        if r["rule_id"] == "city.store.min"
    )
    assert rec["strength"] == "local" and rec["status"] == ("pass" if code == 0 else "fail")


def test_strength_is_required_in_a_pack(tmp_path):
    pack = write_pack(
        tmp_path / "p.toml",
        """
[[rule]]
id = "x"
title_zh = "x"
title_en = "x"
clause = "x"
confirmed = true
measure = "facility_present"
category = "kindergarten"
threshold = 1
unit = "facilities"
""",
    )
    with pytest.raises(InputError, match="missing strength"):
        load_rulepack(pack)
    pack.write_text(pack.read_text(encoding="utf-8") + 'strength = "should"\n', encoding="utf-8")
    with pytest.raises(InputError, match="strength 'should' must be one of mandatory, advisory, local"):
        load_rulepack(pack)


@pytest.mark.parametrize(("floor", "status"), [(350, "pass"), (349, "fail")])
def test_anhui_minimum_per_elderly_care_facility(tmp_path, floor, status):
    plan = write_plan(
        tmp_path / "p.geojson",
        [
            estate(1000, size=300),
            facility("elderly_care", 400),
            facility("elderly_care", floor, Point(10, 10), facility_id="small"),
        ],
    )
    r = result(review(plan, rules="elderly-care-anhui"), "elderly_care.anhui.min_area_each")
    assert r.status == status and r.value == floor and r.rule.strength == "local"
    if status == "fail":
        assert "small (349 m²)" in r.note


# --------------------------------------------------------------------------------------------
# green space, activity share, commercial share, co-location


def test_green_space_per_resident_and_park_size(tmp_path):
    # 6,000 households, 15,720 residents. 10-minute level: park ≥ 1 ha, ≥ 1.0 m²/resident.
    feats = [estate(6000, size=1000), green(box(0, 0, 100, 100))]  # 1.0 ha: a 10-minute park by size
    rev = review(write_plan(tmp_path / "p.geojson", feats), rules="gb50180-2018")
    assert rev.plan.green["level"].tolist() == ["10min"]
    assert result(rev, "gb50180.10min.green.park").status == "pass"
    per = result(rev, "gb50180.10min.green.per_resident")
    assert per.status == "fail" and per.value == pytest.approx(10000 / 15720)
    assert per.details["shortfall_area_m2"] == pytest.approx(15720 - 10000)
    # 5-minute level: two areas, so two parks of ≥ 0.4 ha; none planned.
    park5 = result(rev, "gb50180.5min.green.park")
    assert park5.status == "fail" and park5.details["parks_required"] == 2
    feats += [
        green(box(200, 0, 257.2, 100), level="10min"),  # 5,720 m²: 15,720 m² of 10-minute green in all
        green(box(400, 0, 500, 50), level="5min"),  # 5,000 m²
        green(box(600, 0, 680, 100)),
    ]  # 8,000 m²: below 1 ha, above 0.4 ha → a 5-minute park
    rev = review(write_plan(tmp_path / "p.geojson", feats), rules="gb50180-2018")
    assert rev.plan.green["level"].tolist() == ["10min", "10min", "5min", "5min"]
    per = result(rev, "gb50180.10min.green.per_resident")
    assert per.status == "pass" and per.value == pytest.approx(1.0)  # exactly at the threshold
    park5 = result(rev, "gb50180.5min.green.park")
    assert park5.status == "pass" and park5.details["parks_planned"] == 2
    # 5-minute green: 13,000 m² / 15,720 = 0.827 m²/resident, below 1.0.
    per5 = result(rev, "gb50180.5min.green.per_resident")
    assert per5.status == "fail" and per5.value == pytest.approx(13000 / 15720)


@pytest.mark.parametrize(("activity", "status"), [(600, "pass"), (599, "advice"), (None, "advice")])
def test_activity_share_of_the_comprehensive_service_facility(tmp_path, activity, status):
    props = {} if activity is None else {"activity_floor_area_m2": activity}
    plan = write_plan(
        tmp_path / "p.geojson", [estate(1000, size=300), facility("community_service", 1000, **props)]
    )
    r = result(review(plan, rules="community-service"), "community_service.activity_share")
    assert r.status == status
    if activity is None:
        assert "give activity_floor_area_m2" in r.note and r.value is None
    else:
        assert r.value == pytest.approx(activity / 10)


def test_activity_area_above_the_floor_area_is_refused(tmp_path):
    plan = write_plan(
        tmp_path / "p.geojson",
        [estate(1000, size=300), facility("community_service", 500, activity_floor_area_m2=600)],
    )
    with pytest.raises(
        InputError, match="activity_floor_area_m2 600 must lie between 0 and its floor_area_m2 500"
    ):
        review(plan, rules="community-service")


@pytest.mark.parametrize(("total", "status"), [(20000, "pass"), (20001, "advice")])
def test_commercial_and_service_share_of_floor_area(tmp_path, total, status):
    # Community service 1,500 + convenience store 100 + market 400 = 2,000 m²; the nursery does not count.
    plan = write_plan(
        tmp_path / "p.geojson",
        [
            estate(1000, size=300, total_floor_area_m2=total),
            facility("community_service", 1500),
            facility("convenience_store", 100),
            facility("market", 400),
            facility("childcare", 900),
        ],
    )
    r = result(review(plan, rules="community-service"), "community_service.commercial_share")
    assert r.status == status and r.value == pytest.approx(200000 / total)


@pytest.mark.parametrize(("gap", "status"), [(10.0, "pass"), (50.0, "pass"), (300.0, "advice")])
def test_health_centre_next_to_elderly_care(tmp_path, gap, status):
    plan = write_plan(
        tmp_path / "p.geojson",
        [
            estate(1000, size=600),
            facility("health_centre", 1800, box(0, 0, 40, 40), facility_id="hc"),
            facility("elderly_care", 500, box(40 + gap, 0, 80 + gap, 40)),
        ],
    )
    r = result(
        review(plan, rules="community-service"), "community_service.health_centre_next_to_elderly_care"
    )
    assert r.status == status and r.value == pytest.approx(gap)
    if status == "advice":
        assert re.search(r"hc is 300 m from the nearest elderly_care", r.note)


def test_co_location_not_applicable_without_a_health_centre(tmp_path):
    plan = write_plan(tmp_path / "p.geojson", [estate(1000, size=300), facility("elderly_care", 500)])
    r = result(
        review(plan, rules="community-service"), "community_service.health_centre_next_to_elderly_care"
    )
    assert r.status == "not_applicable"


def test_notes_naming_plan_data_are_escaped_in_the_report(tmp_path):
    plan = write_plan(
        tmp_path / "p.geojson",
        [
            estate(1000, size=300),
            facility("elderly_care", 400),
            facility("elderly_care", 300, Point(10, 10), facility_id="<script>alert(1)</script>"),
        ],
    )
    out = tmp_path / "out"
    from planner.review import run_review

    assert run_review(plan, rules="elderly-care-anhui", out_dir=out) == 1  # 300 m² < 350: a local rule fails
    page = (out / "review.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in page
    assert "below the minimum: &lt;script&gt;alert(1)&lt;/script&gt; (300 m²)" in page
