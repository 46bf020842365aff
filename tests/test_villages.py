"""Rural life circles: villages found in OSM, their services, the plan's coverage indicator,
siting new stations, population rasters, and bad input."""

from __future__ import annotations

import json
import warnings

import browser
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from conftest import SAMPLES
from osm_fixtures import UTM, X0, Y0, _to_wgs, square, write_osm

from planner import settings
from planner._errors import InputError
from planner.sources import load_region
from planner.villages import (
    STATION_KEY,
    audit_villages,
    find_villages,
    load_rural_categories,
    propose_stations,
    run_villages,
)

RURAL = SAMPLES / "zhejiang_haining_zhouwangmiao.osm.pbf"

# The 32 named residential areas (自然村) of the real extract, read off its map.
HAMLETS = {
    "东村上",
    "小桥村",
    "石王庙",
    "史家埭",
    "板桥头3",
    "唐角里",
    "潘婆桥",
    "北角里",
    "耀家桥",
    "水心里",
    "漾口",
    "程家兜",
    "芳田村",
    "景树园",
    "周家庄",
    "西墙门",
    "潘家角",
    "夏家埭",
    "姚家簖",
    "陈家门",
    "吕家埭",
    "汪家门",
    "沈家浜头",
    "大悲阁",
    "小安桥",
    "卢家",
    "田心里",
    "陈家浜",
    "马家门",
    "河西角",
    "金家埭",
    "周家角",
}

# --------------------------------------------------------------------------------------------
# A hand-made countryside: one street along y = 0 (a node every 50 m), five square villages
# 100 m wide north of it, one house each (10 × 10 m, levels 1..5), committees in the first and
# the last. Village i stands at x = XS[i]; its house's centre (its centre) at (x, 40).
XS = (0.0, 500.0, 1500.0, 2200.0, 3000.0)
NAMES = ("甲村", "乙村", "丙村", "丁村", "戊村")
LEVELS = (1, 2, 3, 4, 5)


def _countryside(path, committees=True, villages=True):
    nodes, node_tags, ways = {}, {}, []
    street = []
    for k, x in enumerate(np.arange(-200.0, 3250.0, 50.0)):
        nodes[k + 1] = (float(x), 0.0)
        street.append(k + 1)
    ways.append((1, street, {"highway": "residential", "name": "村道"}))
    if villages:
        nid, wid = 1000, 100
        for x, name, levels in zip(XS, NAMES, LEVELS, strict=False):
            ring_nodes, ring = square(nid, x - 50, 20, x + 50, 120)
            nodes.update(ring_nodes)
            ways.append((wid, ring, {"landuse": "residential", "name": name}))
            house_nodes, house = square(nid + 4, x - 5, 35, x + 5, 45)
            nodes.update(house_nodes)
            ways.append((wid + 1, house, {"building": "house", "building:levels": str(levels)}))
            nid, wid = nid + 8, wid + 2
    if committees:
        nodes[900] = (0.0, 80.0)
        node_tags[900] = {"amenity": "townhall", "name": "甲村村委"}
        nodes[901] = (3000.0, 80.0)
        node_tags[901] = {"amenity": "townhall", "name": "戊村村民委员会"}
    return write_osm(path, nodes, ways, node_tags)


@pytest.fixture(scope="module")
def countryside(tmp_path_factory):
    return _countryside(tmp_path_factory.mktemp("countryside") / "countryside.osm")


def _lonlat(x, y):
    return _to_wgs.transform(X0 + x, Y0 + y)


#: libosmium keeps coordinates to 1e-7 degree (about 1 cm): compare times to 0.05 s, areas
#: (hence populations) to 1e-3.
T_ABS = 0.05
REL = 1e-3


def _pop(levels):
    # The countryside has village committees: it is rural, and homes use the rural profile.
    return 100.0 * levels / settings.rural_floor_area_per_person_m2


# --------------------------------------------------------------------------------------------
# villages on the real rural extract


def test_real_extract_villages_are_the_hamlets_and_committees_a_reader_sees():
    region = load_region(RURAL)
    v = find_villages(region)
    named = set(v["name"].dropna())
    assert named >= HAMLETS
    assert {"东村上", "小桥村", "芳田村", "史家埭"} <= named
    assert (v.loc[v["name"].isin(HAMLETS), "source"] == "landuse").all()
    # The two committees: 长春村村委 touches 漾口 (1 m), 博儒桥村委 stands 40 m from 马家门.
    admin = dict(zip(v["name"], v["admin_village"], strict=False))
    assert admin["漾口"] == "长春村"
    assert admin["马家门"] == "博儒桥村"
    assert set(v["admin_village"].dropna()) == {"长春村", "博儒桥村"}
    assert set(v["committee"].dropna()) == {"长春村村委", "博儒桥村委"}
    # 12 farmhouses north of 长春村村委 belong to no named area: one unnamed cluster.
    clusters = v[v["source"] == "cluster"]
    assert len(clusters) == 1 and clusters["homes"].iat[0] == 12 and clusters["name"].isna().all()
    assert len(v) == 33
    # Every mapped farmhouse is in a village; areas do not overlap.
    assert v.attrs["homes_outside"] == 0
    assert v.geometry.union_all().area == pytest.approx(v.geometry.area.sum(), rel=1e-9)
    assert v.crs == region.crs


def test_real_extract_station_inside_and_school():
    region = load_region(RURAL)
    res = audit_villages(region)
    v = res.villages.set_index("name")
    # Committees within 50 m of a hamlet's outline (漾口 1 m, 板桥头3 22 m, 东村上 35 m,
    # 马家门 40 m) are in it.
    assert set(v.index[v["has_service_station"]]) == {"漾口", "板桥头3", "东村上", "马家门"}
    # 周王庙小学（长春分部） stands 22 m from 潘婆桥.
    assert set(v.index[v["primary_school_inside"]]) == {"潘婆桥"}
    assert res.town is None and np.isnan(res.villages["town_time_s"]).all()
    assert any("no township centre found" in n for n in res.notes)
    head, hamlets = res.indicators.iloc[0], res.indicators.iloc[1]
    assert head["indicator"] == "rural_service_coverage" and head["unit"] == "administrative_village"
    assert head["villages"] == 2 and head["villages_inside"] == 2 and head["share_within_target"] == 1.0
    assert hamlets["indicator"] == "hamlets_within_walk"
    assert hamlets["villages"] == 33 and hamlets["villages_inside"] == 4
    assert hamlets["share_within_target"] == pytest.approx(v["service_covered"].mean())
    assert res.modes == {c.key: ("walk" if c.level == "village" else "bike") for c in res.categories}


# --------------------------------------------------------------------------------------------
# the indicator by hand


def test_coverage_indicator_by_hand(countryside):
    res = audit_villages(load_region(countryside))
    v = res.villages.set_index("name").loc[list(NAMES)]
    walk = settings.walk_speed_mps
    detour = settings.off_network_detour
    # 乙村: centre (500, 40) → street node (500, 0), 500 m along the street, then 80 m up to
    # the committee of 甲村 at (0, 80); both legs are straight × detour.
    assert v.loc["乙村", f"{STATION_KEY}_time_s"] == pytest.approx(
        (40 * detour + 500 + 80 * detour) / walk, abs=T_ABS
    )
    # 丁村 is 800 m of street from 戊村's committee: beyond 10 minutes.
    assert v.loc["丁村", f"{STATION_KEY}_time_s"] == pytest.approx(
        (40 * detour + 800 + 80 * detour) / walk, abs=T_ABS
    )
    assert v["has_service_station"].tolist() == [True, False, False, False, True]
    assert v["service_covered"].tolist() == [True, True, False, False, True]
    assert v["population"].to_numpy() == pytest.approx([_pop(k) for k in LEVELS], rel=REL)
    # The plan's indicator counts the two administrative villages (甲村, 戊村): both have
    # their committee, so 2 of 2; the hamlets' walk is the second measure.
    head = res.indicators.iloc[0]
    assert (head["villages"], head["villages_inside"], head["share_within_target"]) == (2, 2, 1.0)
    assert head["target_share"] == 0.8 and head["target_met"]
    assert res.share == 1.0
    # 乙村 and 丙村 lie nearer 甲村's committee along the street, 丁村 nearer 戊村's.
    admin = v["admin_village"].to_dict()
    assert (admin["甲村"], admin["乙村"], admin["丁村"], admin["戊村"]) == ("甲村", "甲村", "戊村", "戊村")
    assert admin["丙村"] in {"甲村", "戊村"}  # 1500 m of street from both committees
    hamlets = res.indicators.iloc[1]
    pops = np.array([_pop(k) for k in LEVELS])
    assert hamlets["villages"] == 5
    assert hamlets["villages_inside"] == 2 and hamlets["share_inside"] == pytest.approx(2 / 5)
    assert hamlets["villages_within_target"] == 3 and hamlets["share_within_target"] == pytest.approx(3 / 5)
    assert hamlets["population_share_inside"] == pytest.approx((pops[0] + pops[4]) / pops.sum(), rel=REL)
    people = res.indicators.iloc[2]
    assert people["indicator"] == "population_within_walk"
    assert people["share_within_target"] == pytest.approx((pops[0] + pops[1] + pops[4]) / pops.sum(), rel=REL)
    # A category with no facility is a finding: 0 everywhere, named in the notes.
    clinic = res.indicators.set_index("category").loc["village_clinic"]
    assert clinic["share_within_target"] == 0 and np.isnan(res.villages["village_clinic_time_s"]).all()
    assert any("village_clinic" in n for n in res.notes)


def test_one_threshold_for_all_and_town_time(countryside):
    region = load_region(countryside)
    lon, lat = _lonlat(1000.0, 10.0)
    res = audit_villages(region, minutes=15, town=(lon, lat))
    v = res.villages.set_index("name")
    # 15 minutes (990 m) reaches 丁村 from 戊村's committee (944 m).
    assert v["service_covered"].tolist() == [True, True, False, True, True]
    assert res.minutes[STATION_KEY] == 15
    # Township centre by bicycle (township level): walked legs, 500 m of residential street
    # at settings.bike_speed_kph["residential"].
    bike = settings.bike_speed_kph["residential"] / 3.6
    walk, detour = settings.walk_speed_mps, settings.off_network_detour
    expected = 40 * detour / walk + 500 / bike + 10 * detour / walk
    assert v.loc["乙村", "town_time_s"] == pytest.approx(expected, abs=T_ABS)
    assert res.town["source"] == "user" and res.town["mode"] == "bike"
    # The same run with the township level driven.
    drive = audit_villages(region, town=f"{lon},{lat}", mode_by_level={"township": "drive"})
    assert drive.town["mode"] == "drive" and drive.modes["primary_school"] == "drive"
    car = settings.drive_speed_kph["residential"] / 3.6
    assert drive.villages.set_index("name").loc["乙村", "town_time_s"] == pytest.approx(
        40 * detour / walk + 500 / car + 10 * detour / walk, abs=T_ABS
    )


# --------------------------------------------------------------------------------------------
# siting


# Three administrative villages along one street: 甲村 (x < 750), 乙村 (750–2000) and 丙村
# (x ≥ 2000), each with its committee in a hamlet (x = 300, 1200, 2700); hamlets are 100 m squares north of
# the street with one house each (levels give their people). A county that counts only
# dedicated centres (党群服务中心/综合服务站) sees one beside 甲村's and 乙村's committees, none in 丙村.
THREE_HAMLETS = {  # name: (x, levels, village)
    "甲一": (-100.0, 2, "甲村"),
    "甲二": (300.0, 2, "甲村"),
    "乙一": (1200.0, 3, "乙村"),
    "乙二": (1700.0, 1, "乙村"),
    "丙一": (2250.0, 1, "丙村"),
    "丙二": (2700.0, 2, "丙村"),
    "丙三": (3150.0, 5, "丙村"),
}
COMMITTEES = {"甲村村委": 300.0, "乙村村民委员会": 1200.0, "丙村村委会": 2700.0}
CENTRES_ONLY = """
[[category]]
key = "village_service_station"
name_zh = "党群服务中心"
name_en = "Party-masses service centre"
minutes = 10
level = "village"
mode = "walk"
source = "a county that counts dedicated centres only (test)"
match = [{ name = "~(党群服务中心|综合服务站)" }]
"""


def _three_villages(path, osm_boundaries=False):
    nodes, node_tags, ways = {}, {}, []
    street = []
    for k, x in enumerate(np.arange(-200.0, 3300.0, 50.0)):
        nodes[k + 1] = (float(x), 0.0)
        street.append(k + 1)
    ways.append((1, street, {"highway": "residential"}))
    nid, wid = 1000, 100
    for name, (x, levels, _v) in THREE_HAMLETS.items():
        ring_nodes, ring = square(nid, x - 50, 20, x + 50, 120)
        nodes.update(ring_nodes)
        ways.append((wid, ring, {"landuse": "residential", "name": name}))
        house_nodes, house = square(nid + 4, x - 5, 35, x + 5, 45)
        nodes.update(house_nodes)
        ways.append((wid + 1, house, {"building": "house", "building:levels": str(levels)}))
        nid, wid = nid + 8, wid + 2
    for k, (name, x) in enumerate(COMMITTEES.items()):
        nodes[900 + k] = (x, 80.0)
        node_tags[900 + k] = {"amenity": "townhall", "townhall:type": "village", "name": name}
    nodes[910], node_tags[910] = (320.0, 80.0), {"amenity": "community_centre", "name": "甲村党群服务中心"}
    nodes[911], node_tags[911] = (1220.0, 80.0), {"office": "government", "name": "乙村综合服务站"}
    if osm_boundaries:  # village-level administrative boundaries, as closed ways
        for k, (name, x0, x1) in enumerate([("甲村", -250, 750), ("乙村", 750, 2000), ("丙村", 2000, 3300)]):
            ring_nodes, ring = square(5000 + 4 * k, x0, -500, x1, 800)
            nodes.update(ring_nodes)
            ways.append((500 + k, ring, {"boundary": "administrative", "admin_level": "10", "name": name}))
    return write_osm(path, nodes, ways, node_tags)


def _boundaries(path):
    rows = [("甲村", -250, 750, 1200), ("乙村", 750, 2000, 900), ("丙村", 2000, 3300, 1500)]
    polys = [
        shapely.box(*_to_wgs.transform(X0 + x0, Y0 - 500), *_to_wgs.transform(X0 + x1, Y0 + 800))
        for _n, x0, x1, _p in rows
    ]
    gpd.GeoDataFrame(
        {"name": [r[0] for r in rows], "population": [r[3] for r in rows]}, geometry=polys, crs=4326
    ).to_file(path, driver="GPKG")
    return path


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    folder = tmp_path_factory.mktemp("three")
    (folder / "centres.toml").write_text(CENTRES_ONLY, encoding="utf-8")
    return (
        _three_villages(folder / "three.osm"),
        _boundaries(folder / "villages.gpkg"),
        folder / "centres.toml",
    )


def test_committee_territories_along_the_network(three):
    osm, _files, _centres = three
    res = audit_villages(load_region(osm))
    admin = res.admin.set_index("name")
    assert list(admin.index) == ["甲村", "乙村", "丙村"] and (admin["source"] == "committee").all()
    # Each hamlet goes to the committee nearest along the street: 丙一 (x = 2250) is 450 m
    # from 丙村's and 1050 m from 乙村's.
    v = res.villages.set_index("name")
    assert v["admin_village"].to_dict() == {n: h[2] for n, h in THREE_HAMLETS.items()}
    assert admin["hamlets"].tolist() == [2, 2, 3]
    assert admin.loc["丙村", "population"] == pytest.approx(_pop(1 + 2 + 5), rel=REL)
    # The territories do not overlap.
    assert admin.geometry.union_all().area == pytest.approx(admin.geometry.area.sum(), rel=1e-9)
    # Default data: a village committee's office counts as the facility: 3 of 3.
    assert admin["has_facility"].all() and res.share == 1.0


def test_osm_village_boundaries_win_over_committee_territories(tmp_path):
    region = load_region(_three_villages(tmp_path / "bounded.osm", osm_boundaries=True))
    res = audit_villages(region)
    assert res.admin["source"].eq("boundary").all() and res.admin["admin_id"].tolist() == [
        "way/500",
        "way/501",
        "way/502",
    ]
    assert res.admin["committee"].tolist() == ["甲村村委", "乙村村民委员会", "丙村村委会"]
    assert res.villages.set_index("name")["admin_village"].to_dict() == {
        n: h[2] for n, h in THREE_HAMLETS.items()
    }
    assert res.settlement["evidence"]["village_boundaries"] == 3


def test_indicator_two_of_three_and_the_station_goes_to_the_third_village(three, tmp_path):
    osm, files, centres = three
    region = load_region(osm)
    for boundaries in (None, files):
        res = audit_villages(region, categories_file=centres, boundaries=boundaries)
        admin = res.admin.set_index("name")
        assert admin["has_facility"].tolist() == [True, True, False]
        head = res.indicators.iloc[0]
        assert (head["villages"], head["villages_inside"]) == (3, 2)
        assert head["share_within_target"] == pytest.approx(2 / 3) and not head["target_met"]
        plan = propose_stations(res)
        # ceil(0.8 × 3) = 3 villages needed, 2 have one: one new station, in 丙村, at 丙二:
        # its 10-minute walk (660 m) reaches 丙一 (450 m of street) and 丙三 (450 m), all of
        # 丙村's people; from 丙三, 丙一 is 900 m away.
        assert len(plan.sites) == 1
        site = plan.sites.iloc[0]
        assert (site["admin_village"], site["name"]) == ("丙村", "丙二")
        assert site["residents_served"] == pytest.approx(_pop(1 + 2 + 5), rel=REL)
        assert plan.share_before == pytest.approx(2 / 3) and plan.share_after == 1.0
    # From the file: its names, its populations.
    assert res.admin["source"].eq("file").all() and res.admin["population"].tolist() == [1200, 900, 1500]
    assert site["residents"] == 1500
    summary = run_villages(osm, tmp_path / "out", categories_file=centres, boundaries=files, map_html=False)
    assert summary["indicator"]["villages_with_facility"] == 2 and summary["indicator"]["villages"] == 3
    assert summary["proposed_stations"]["sites"][0]["admin_village"] == "丙村"
    # Before: 甲一, 甲二, 乙一 and 乙二 lie within the walk of the two centres (≤ 624 m); after, 丙村's three too.
    assert (
        summary["hamlets"]["within_walk"] == 4
        and summary["proposed_stations"]["hamlets_within_walk_after"] == 7
    )
    assert gpd.read_file(tmp_path / "out" / "proposed_stations.gpkg")["name"].tolist() == ["丙二"]
    layer = gpd.read_file(tmp_path / "out" / "administrative_villages.gpkg", layer="administrative_villages")
    assert layer["has_facility_after"].all() and layer["name"].tolist() == ["甲村", "乙村", "丙村"]


def test_bad_village_boundary_files(three, tmp_path):
    osm, _files, _centres = three
    region = load_region(osm)
    nameless = tmp_path / "nameless.geojson"
    gpd.GeoDataFrame({"pop": [1]}, geometry=[shapely.box(116.3, 40.0, 116.31, 40.01)], crs=4326).to_file(
        nameless
    )
    with pytest.raises(InputError, match="no 'name' column") as err:
        audit_villages(region, boundaries=nameless)
    assert "\n" not in str(err.value)
    points = tmp_path / "points.geojson"
    gpd.GeoDataFrame({"name": ["甲村"]}, geometry=[shapely.Point(116.3, 40.0)], crs=4326).to_file(points)
    with pytest.raises(InputError, match="row 1 is not a polygon"):
        run_villages(osm, tmp_path / "out", boundaries=points)
    with pytest.raises(InputError, match="no such file"):
        run_villages(osm, tmp_path / "out", boundaries=tmp_path / "missing.gpkg")
    frame = gpd.GeoDataFrame(
        {"name": ["甲村"], "population": [-5]}, geometry=[shapely.box(116.3, 40.0, 116.31, 40.01)], crs=4326
    )
    with pytest.raises(InputError, match="boundaries: row 1 has a population that is not a number ≥ 0"):
        audit_villages(region, boundaries=frame)
    assert not (tmp_path / "out").exists()


def test_zhouwangmiao_two_administrative_villages_and_their_hamlets(tmp_path):
    summary = run_villages(RURAL, tmp_path / "out", map_html=False)
    assert summary["settlement"]["kind"] == "rural"
    admin = {a["name"]: a for a in summary["administrative_village_list"]}
    assert set(admin) == {"长春村", "博儒桥村"}
    assert {a["committee"] for a in admin.values()} == {"长春村村委", "博儒桥村委"}
    # The plan's indicator: both have their committee office: 2 of 2, nothing to propose.
    ind = summary["indicator"]
    assert (ind["villages"], ind["villages_with_facility"], ind["share"], ind["target_met"]) == (
        2,
        2,
        1.0,
        True,
    )
    assert "proposed_stations" not in summary
    assert not (tmp_path / "out" / "proposed_stations.gpkg").exists()
    # Every hamlet is grouped: 漾口 (beside 长春村村委) and 马家门 (beside 博儒桥村委) in their own.
    assert "漾口" in admin["长春村"]["hamlet_names"] and "马家门" in admin["博儒桥村"]["hamlet_names"]
    assert admin["长春村"]["hamlets"] + admin["博儒桥村"]["hamlets"] == 33 == summary["hamlets"]["grouped"]
    # The second measure: 8 of 33 hamlets within the 10-minute walk of a committee.
    assert summary["hamlets"]["within_walk"] == 8
    assert summary["hamlets"]["share_within_walk"] == pytest.approx(8 / 33)
    ind_csv = pd.read_csv(tmp_path / "out" / "indicators.csv")
    assert ind_csv["indicator"].tolist()[:3] == [
        "rural_service_coverage",
        "hamlets_within_walk",
        "population_within_walk",
    ]
    assert ind_csv["name_zh"].iat[0] == "农村社区综合服务设施覆盖率"
    assert ind_csv["pct_within_target"].iat[1] == round(100 * 8 / 33, 1)  # percent, to 0.1


def test_audit_and_villages_count_the_same_people(tmp_path, monkeypatch):
    from planner.audit import audit

    region = load_region(RURAL)
    for profile in ("auto", "urban"):
        monkeypatch.setattr(settings, "population_profile", profile)
        villages = run_villages(RURAL, tmp_path / f"v_{profile}", map_html=False)
        audited = audit(region, categories="primary_school").summary()
        assert villages["population"] == pytest.approx(audited["population"], rel=1e-9)
        if profile == "auto":
            rural = villages["population"]
    # The rural profile (2-storey farmhouses, 46.8 m² a person, 23 residents per hectare of
    # village land) against the urban one.
    assert rural < villages["population"]


def test_urban_extract_is_named_and_no_compound_is_a_village(tmp_path):
    cau = SAMPLES / "beijing_haidian_cau.osm.pbf"
    summary = run_villages(cau, tmp_path / "out")
    assert summary["settlement"]["kind"] == "urban" and summary["villages"] == 0
    assert summary["administrative_villages"] == 0 and summary["indicator"]["share"] is None
    assert summary["notes"] == [summary["settlement"]["notice"]]
    assert summary["notes"][0].startswith("this extract is urban (10 residential compounds)")
    assert "\n" not in summary["notes"][0]
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert on_disk["settlement"]["kind"] == "urban"
    # Peri-urban Longgang: apartment blocks of an urban village; only its place=village node
    # (荷坳村) is a village, none of its residential areas or building clusters.
    region = load_region(SAMPLES / "shenzhen_longgang.osm.pbf")
    v = find_villages(region)
    assert v.attrs["settlement"]["kind"] == "urban"
    assert v["name"].tolist() == ["荷坳村"] and v["source"].tolist() == ["place"]


# --------------------------------------------------------------------------------------------
# whole run, raster


def test_run_villages_writes_outputs(countryside, tmp_path):
    out = tmp_path / "out"
    summary = run_villages(countryside, out)
    for name in (
        "villages.gpkg",
        "village_centres.gpkg",
        "administrative_villages.gpkg",
        "indicators.csv",
        "summary.json",
        "map.html",
    ):
        assert (out / name).exists(), name
    # Both administrative villages have their committee: nothing to propose.
    assert not (out / "proposed_stations.gpkg").exists() and "proposed_stations" not in summary
    with warnings.catch_warnings():  # one layer per GeoPackage: a plain read_file, no warning
        warnings.simplefilter("error")
        v = gpd.read_file(out / "villages.gpkg")
        assert len(gpd.read_file(out / "village_centres.gpkg")) == 5
    assert v.crs.to_epsg() == 4326 and len(v) == 5
    for col in (
        "village_id",
        "name",
        "source",
        "homes",
        "population",
        "has_service_station",
        "town_time_s",
        f"{STATION_KEY}_time_s",
        f"{STATION_KEY}_inside",
        "primary_school_time_s",
        "admin_village",
    ):
        assert col in v.columns, col
    admin = gpd.read_file(out / "administrative_villages.gpkg", layer="administrative_villages")
    assert admin["name"].tolist() == ["甲村", "戊村"] and admin["has_facility"].all()
    ind = pd.read_csv(out / "indicators.csv")
    assert ind["indicator"].iat[0] == "rural_service_coverage" and ind["pct_within_target"].iat[0] == 100.0
    assert ind["pct_within_target"].iat[1] == 60.0  # hamlets within the walk, in percent
    assert not ind["confirmed"].iat[3]  # TD/T 1062-2021 values are to confirm
    on_disk = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert on_disk["indicator"]["share"] == 1.0 == summary["indicator"]["share"]
    assert on_disk["hamlets"]["within_walk"] == 3 and on_disk["settlement"]["kind"] == "rural"
    assert on_disk["town"] is None and any("no township centre" in n for n in on_disk["notes"])
    page = (out / "map.html").read_text(encoding="utf-8")
    assert "Villages" in page and '<script src="http' not in page


@pytest.mark.skipif(not browser.chromium_available(), reason=browser.SKIP_REASON)
def test_map_opens_offline(tmp_path):
    run_villages(RURAL, tmp_path / "out")
    result = browser.open_in_browser(tmp_path / "out" / "map.html")
    assert result["errors"] == [] and result["external"] == []
    assert {"村庄 Villages", "综合服务站 Service stations", "行政村 Administrative villages"} <= set(
        result["layer_names"]
    )
    assert result["paths"] >= 33  # one outline per village, at least


def test_raster_population_summed_to_villages(countryside, tmp_path):
    # 100 m cells aligned with the village squares: row 0 spans y 20..120, column c spans
    # x -250 + 100 c ..; cell (0, c) holds c + 1 people, row 1 (south of the villages) 50.
    cols = 35
    values = np.vstack([np.arange(1, cols + 1, dtype="float32"), np.full(cols, 50, "float32")])
    tif = tmp_path / "pop.tif"
    with rasterio.open(
        tif,
        "w",
        driver="GTiff",
        width=cols,
        height=2,
        count=1,
        dtype="float32",
        crs=UTM,
        transform=Affine(100.0, 0, X0 - 250.0, 0, -100.0, Y0 + 120.0),
    ) as dst:
        dst.write(values, 1)
    region = load_region(countryside)
    v = find_villages(region, raster=tif)
    expected = [(x + 250 - 50) / 100 + 1 for x in XS]  # the cell under each square
    assert v.set_index("name").loc[list(NAMES), "population"].to_numpy() == pytest.approx(expected, abs=0.02)
    assert v.attrs["population_source"] == "raster"
    summary = run_villages(countryside, tmp_path / "out", raster=tif, map_html=False)
    assert summary["population"] == pytest.approx(sum(expected), abs=0.1)
    assert summary["population_source"] == "raster"


# --------------------------------------------------------------------------------------------
# clusters, place nodes and lone committees


def test_facilities_from_a_file(countryside, tmp_path):
    # A clinic OSM lacks, in 丙村, and a new service station in 丁村.
    rows = [("village_clinic", *_lonlat(1500, 80)), ("village_service_station", *_lonlat(2200, 80))]
    csv = tmp_path / "extra.csv"
    csv.write_text(
        "category,lon,lat\n" + "".join(f"{c},{x:.9f},{y:.9f}\n" for c, x, y in rows), encoding="utf-8"
    )
    summary = run_villages(countryside, tmp_path / "out", facilities=csv, map_html=False)
    v = gpd.read_file(tmp_path / "out" / "villages.gpkg", layer="villages").set_index("name")
    assert v["village_clinic_inside"].tolist() == [False, False, True, False, False]
    assert summary["hamlets"]["within_walk"] == 4 and summary["indicator"]["target_met"]
    assert not (tmp_path / "out" / "proposed_stations.gpkg").exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("category,lon,lat\nclinic,116.3,40.0\n", encoding="utf-8")
    with pytest.raises(InputError, match="unknown category 'clinic'"):
        run_villages(countryside, tmp_path / "out2", facilities=bad)


def test_clusters_places_and_committees(tmp_path):
    nodes, node_tags, ways = {}, {}, []
    street = []
    for k, x in enumerate(np.arange(-200.0, 3250.0, 50.0)):
        nodes[k + 1] = (float(x), 0.0)
        street.append(k + 1)
    ways.append((1, street, {"highway": "unclassified"}))
    nid, wid = 1000, 100

    def house(x, y):
        nonlocal nid, wid
        ring_nodes, ring = square(nid, x - 5, y - 5, x + 5, y + 5)
        nodes.update(ring_nodes)
        ways.append((wid, ring, {"building": "house"}))
        nid, wid = nid + 4, wid + 1

    for x in (0, 30, 60, 90):  # four farmhouses, nothing else: a cluster
        house(x, 40)
    house(0, 240)  # a lone house 200 m north: joins that cluster
    for x, y in ((980, 40), (1020, 40), (1000, 90)):
        house(x, y)  # three houses round a hamlet node
    nodes[900] = (1000.0, 60.0)
    node_tags[900] = {"place": "hamlet", "name": "李家埭"}
    for x in (1960, 2000, 2040):  # three houses by a committee
        house(x, 40)
    nodes[901] = (2000.0, 80.0)
    node_tags[901] = {"amenity": "townhall", "name": "张村村委"}
    nodes[902] = (3000.0, 900.0)  # a village node with nothing mapped round it
    node_tags[902] = {"place": "village", "name": "孤村"}
    nodes[903] = (1500.0, 60.0)  # a township government: the township centre
    node_tags[903] = {"amenity": "townhall", "name": "某某镇人民政府"}
    path = write_osm(tmp_path / "clusters.osm", nodes, ways, node_tags)
    region = load_region(path)
    v = find_villages(region).set_index("village_id")
    assert len(v) == 4
    cluster = v[v["source"] == "cluster"]
    assert len(cluster) == 1 and cluster["homes"].iat[0] == 5 and cluster["name"].isna().all()
    hamlet = v.loc["node/900"]
    assert (hamlet["name"], hamlet["source"], hamlet["homes"]) == ("李家埭", "place", 3)
    assert (hamlet["centre_x"], hamlet["centre_y"]) == pytest.approx((X0 + 1000, Y0 + 60), abs=0.05)
    committee = v.loc["node/901"]
    assert (committee["name"], committee["source"], committee["homes"]) == ("张村", "committee", 3)
    lone = v.loc["node/902"]
    assert (lone["name"], lone["source"], lone["homes"]) == ("孤村", "place", 0)
    assert v.geometry.loc["node/902"].area == pytest.approx(np.pi * 300**2, rel=0.01)
    res = audit_villages(region, villages=find_villages(region))
    assert res.town["source"] == "townhall" and res.town["name"] == "某某镇人民政府"
    assert np.isfinite(res.villages["town_time_s"]).all()


# --------------------------------------------------------------------------------------------
# bad input


def test_no_villages_is_an_input_error(tmp_path):
    path = _countryside(tmp_path / "empty.osm", committees=False, villages=False)
    with pytest.raises(InputError, match="no villages found") as err:
        run_villages(path, tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_unknown_category_and_bad_arguments(countryside, tmp_path):
    region = load_region(countryside)
    with pytest.raises(InputError, match="unknown category 'village_clinc'") as err:
        audit_villages(region, categories="village_clinc")
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="target share"):
        run_villages(countryside, tmp_path / "out", target_share=1.5)
    with pytest.raises(InputError, match="LON,LAT"):
        audit_villages(region, town="somewhere")
    with pytest.raises(InputError, match="walk, bike, drive"):
        audit_villages(region, mode_by_level={"township": "boat"})
    assert not (tmp_path / "out").exists()


def test_rural_categories_file_and_user_override(tmp_path):
    cats = load_rural_categories()
    assert {
        "village_service_station",
        "village_clinic",
        "elderly_mutual_aid",
        "village_culture",
        "village_shop",
        "village_parcel",
        "bus_stop",
        "kindergarten",
        "primary_school",
    } <= set(cats)
    assert {c.mode for c in cats.values() if c.level == "village"} == {"walk"}
    assert {c.mode for c in cats.values() if c.level == "township"} == {"bike"}
    station = cats[STATION_KEY]
    assert station.matches({"amenity": "townhall", "name": "长春村村委"})
    assert station.matches({"office": "government", "name": "博儒桥村"})
    assert station.matches({"amenity": "community_centre"})
    assert not station.matches({"amenity": "townhall", "name": "周王庙镇人民政府"})
    mine = tmp_path / "mine.toml"
    mine.write_text(
        '[[category]]\nkey = "village_clinic"\nname_zh = "村卫生室"\nname_en = "Clinic"\nminutes = 20\n'
        'level = "village"\nmode = "bike"\nmatch = [{ amenity = "clinic" }]\n',
        encoding="utf-8",
    )
    assert load_rural_categories(mine)["village_clinic"].minutes == 20


def test_cli_names_the_indicator_and_the_urban_extract(tmp_path, capsys):
    from typer.testing import CliRunner

    from planner.cli import app

    res = CliRunner().invoke(
        app, ["villages", "--osm", str(RURAL), "--out", str(tmp_path / "rural"), "--no-map"]
    )
    assert res.exit_code == 0, res.output
    assert "2 administrative villages (长春村、博儒桥村), 33 hamlets" in res.output
    assert "农村社区综合服务设施覆盖率" in res.output and "100.0% (2 of 2)" in res.output
    assert "8 of 33 hamlets (24.2%)" in res.output
    cau = SAMPLES / "beijing_haidian_cau.osm.pbf"
    res = CliRunner().invoke(
        app, ["villages", "--osm", str(cau), "--out", str(tmp_path / "urban"), "--no-map"]
    )
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[0].startswith("region beijing_haidian_cau: this extract is urban (")
    from planner.cli import main

    code = main(
        [
            "villages",
            "--osm",
            str(RURAL),
            "--out",
            str(tmp_path / "bad"),
            "--villages",
            str(tmp_path / "no.gpkg"),
        ]
    )
    assert code == 2 and not (tmp_path / "bad").exists()
    assert "error: --villages" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# rural or urban, and the rural population profile


def _settlement_extract(path, committees=(), communities=(), buildings=()):
    """A street, named townhalls, and buildings (x, levels or None, building tag) inside one
    residential area with no name."""
    nodes = {k + 1: (float(x), 0.0) for k, x in enumerate(range(0, 1000, 50))}
    ways = [(1, list(nodes), {"highway": "residential"})]
    node_tags = {}
    for k, name in enumerate(list(committees) + list(communities)):
        nodes[800 + k] = (50.0 * k, 60.0)
        node_tags[800 + k] = {"amenity": "townhall", "name": name}
    ring_nodes, ring = square(2000, 0, 20, 1000, 400)  # 1000 × 380 m = 38 ha
    nodes.update(ring_nodes)
    ways.append((100, ring, {"landuse": "residential"}))
    for k, (x, levels, kind) in enumerate(buildings):
        house_nodes, house = square(3000 + 4 * k, x, 100, x + 10, 110)  # 100 m²
        nodes.update(house_nodes)
        tags = {"building": kind} | ({"building:levels": str(levels)} if levels else {})
        ways.append((200 + k, house, tags))
    return write_osm(path, nodes, ways, node_tags)


def test_rural_or_urban_at_the_thresholds(tmp_path):
    from planner.settlement import judge_settlement

    def verdict(name, **kw):
        return judge_settlement(load_region(_settlement_extract(tmp_path / f"{name}.osm", **kw)))

    tie = verdict("tie", committees=["甲村村委会"], communities=["东苑社区居委会"])
    assert (
        tie.kind == "rural"
        and tie.evidence["village_committees"] == 1 == tie.evidence["community_committees"]
    )
    fewer = verdict("fewer", committees=["甲村村委会"], communities=["东苑社区居委会", "西苑社区居委会"])
    assert fewer.kind == "urban" and "2 residents' committees" in fewer.reason
    # Apartment floor space (apartments, or 4+ levels): 50 % is urban; below it nothing says
    # urban (and nothing rural).
    half = verdict("half", buildings=[(100, 3, "apartments"), (300, 3, "house")])
    assert half.evidence["apartment_floor_share"] == pytest.approx(0.5, abs=1e-3) and half.kind == "urban"
    assert not half.by_default
    below = verdict("below", buildings=[(100, 2, "apartments"), (300, 3, "house")])
    assert below.evidence["apartment_floor_share"] == pytest.approx(0.4, abs=1e-3)
    assert below.kind == "urban" and below.by_default
    assert not verdict("nothing").evidence["village_committees"]


def test_rural_profile_by_hand(tmp_path, monkeypatch):
    from planner.demand import homes_from_region

    path = _settlement_extract(
        tmp_path / "farm.osm", committees=["甲村村委会"], buildings=[(100, None, "yes"), (300, 3, "house")]
    )
    region = load_region(path)
    homes = homes_from_region(region)
    assert homes.attrs["profile"] == "rural"
    # building=yes without levels: a 2-storey farmhouse; 46.8 m² per person; 2.8 per household.
    pop = homes.set_index("source").loc["building", "population"].to_numpy()
    assert pop == pytest.approx([100 * 2 / 46.8, 100 * 3 / 46.8], rel=REL)
    assert homes["households"].to_numpy() == pytest.approx(homes["population"].to_numpy() / 2.8)
    # The same extract with the urban profile: 3 levels for building=yes, 36.52 m² per person.
    monkeypatch.setattr(settings, "population_profile", "urban")
    urban = homes_from_region(region).set_index("source").loc["building", "population"].to_numpy()
    assert urban == pytest.approx([100 * 3 / 36.52, 100 * 3 / 36.52], rel=REL)
    # Residential land with no homes: 23 (rural) against 150 (urban) residents per hectare.
    monkeypatch.setattr(settings, "population_profile", "rural")
    empty = load_region(_settlement_extract(tmp_path / "empty.osm", committees=["甲村村委会"]))
    assert homes_from_region(empty)["population"].sum() == pytest.approx(38 * 23, rel=REL)
    with pytest.raises(InputError, match="use auto, urban or rural"):
        homes_from_region(empty, profile="suburban")


def test_network_voronoi_gives_each_node_its_nearest_committee():
    """On a street with a detour loop, every node's territory is the committee nearest along
    the network, not in a straight line: checked against scipy's Dijkstra from each committee."""
    from hypothesis import given
    from hypothesis import settings as hsettings
    from hypothesis import strategies as st
    from scipy.sparse.csgraph import dijkstra

    from planner.network import from_arrays
    from planner.villages.admin import network_voronoi

    # A grid of 6 × 4 nodes 100 m apart, with the middle row's east-west links removed between
    # columns 2 and 3 (a river): straight-line and network distances disagree across it.
    xs, ys = np.meshgrid(np.arange(6) * 100.0, np.arange(4) * 100.0)
    xy = np.column_stack([xs.ravel(), ys.ravel()])
    idx = np.arange(24).reshape(4, 6)
    pairs = [(idx[r, c], idx[r, c + 1]) for r in range(4) for c in range(5) if not (r in (1, 2) and c == 2)]
    pairs += [(idx[r, c], idx[r + 1, c]) for r in range(3) for c in range(6)]
    u, v = np.array(pairs).T
    net = from_arrays(xy[:, 0], xy[:, 1], u, v, UTM)
    graph = net.graph("time")

    @hsettings(max_examples=25, deadline=None)
    @given(st.lists(st.integers(0, 23), min_size=1, max_size=4, unique=True))
    def check(seeds):
        pts = shapely.points(xy[seeds])
        extent = shapely.box(-200, -200, 700, 500)
        cells = network_voronoi(net, pts, np.arange(len(seeds)), len(seeds), extent)
        dist = dijkstra(graph, directed=True, indices=seeds)  # (seeds, nodes), both ways stored
        for node in range(24):
            best = np.flatnonzero(np.isclose(dist[:, node], dist[:, node].min()))
            inside = [k for k, cell in enumerate(cells) if cell.contains(shapely.Point(xy[node]))]
            assert len(inside) == 1 and inside[0] in best

    check()
