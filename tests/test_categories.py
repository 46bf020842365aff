"""Category targets in their source's unit, the guide's basic business types, coverage at,
just below and just above each target, the complete basic life circle and co-location."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from osm_fixtures import UTM, X0, Y0, write_osm

from planner import audit, settings
from planner._errors import InputError
from planner.categories import classify, load_categories
from planner.cli import main
from planner.network import from_arrays
from planner.sources import load_region

# ----------------------------------------------------------------------------------------------
# the bundled targets

#: key → (value, unit): GB 50180-2018 appendix B radii in metres, the MOFCOM ladder in minutes.
TARGETS = {
    "kindergarten": (300, "m"),
    "childcare": (300, "m"),
    "clinic": (300, "m"),
    "elderly_care": (300, "m"),
    "community_service": (300, "m"),
    "primary_school": (500, "m"),
    "market": (500, "m"),
    "sports": (500, "m"),
    "culture": (500, "m"),
    "bus_stop": (500, "m"),
    "middle_school": (1000, "m"),
    "health_centre": (1000, "m"),
    "convenience_store": (5, "min"),
    "pharmacy": (8, "min"),
    "laundry": (8, "min"),
    "hairdresser": (8, "min"),
    "breakfast": (8, "min"),
    "supermarket": (15, "min"),
    "repairs": (15, "min"),
    "photo_print": (15, "min"),
    "housekeeping": (15, "min"),
    "parcel_station": (15, "min"),
}


def test_bundled_targets_in_their_sources_unit():
    cats = load_categories()
    for key, (value, unit) in TARGETS.items():
        cat = cats[key]
        assert (cat.unit, cat.target_m if unit == "m" else cat.target_minutes) == (unit, value), key
        assert cat.basic and cat.basic_source, key
    for cat in cats.values():
        assert cat.source and isinstance(cat.confirmed, bool)
        assert cat.source.startswith(("GB 50180", "商务部阶梯", "便民指南")) or not cat.confirmed, cat.key
    # The park's radius is not in the standards' facts: reported, flagged, not basic.
    assert cats["park"].confirmed is False and cats["park"].basic is False
    # A metre target converts to minutes at the walking speed for models that need a time.
    assert cats["kindergarten"].minutes == pytest.approx(300 / settings.walk_speed_mps / 60)
    assert cats["pharmacy"].minutes == 8.0 and cats["pharmacy"].metres == pytest.approx(
        8 * 60 * settings.walk_speed_mps
    )
    assert cats["kindergarten"].target_label == "≤ 300 m" and cats["pharmacy"].target_label == "≤ 8 min"


@pytest.mark.parametrize(
    ("tags", "key"),
    [
        ({"shop": "laundry"}, "laundry"),
        ({"shop": "dry_cleaning"}, "laundry"),
        ({"name": "福奈特干洗"}, "laundry"),
        ({"shop": "hairdresser"}, "hairdresser"),
        ({"name": "丝域美发"}, "hairdresser"),
        ({"shop": "copyshop"}, "photo_print"),
        ({"shop": "photo"}, "photo_print"),
        ({"name": "图文快印"}, "photo_print"),
        ({"craft": "key_cutter"}, "repairs"),
        ({"craft": "shoemaker"}, "repairs"),
        ({"name": "老王修鞋配钥匙"}, "repairs"),
        ({"name": "阿姨帮家政服务"}, "housekeeping"),
        ({"amenity": "fast_food", "name": "永和豆浆早餐"}, "breakfast"),
        ({"amenity": "cafe", "cuisine": "breakfast"}, "breakfast"),
    ],
)
def test_basic_business_types_from_osm_tags(tags, key):
    cats = load_categories()
    feats = gpd.GeoDataFrame(
        {"osm_id": ["node/1"], "name": [tags.get("name")], "tags": [tags]},
        geometry=[shapely.Point(0, 0)],
        crs=UTM,
    )
    assert key in classify(feats, cats.values())["category"].tolist()


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("target_m = 300\nminutes = 5\n", "exactly one target"),
        ("", "exactly one target"),
        ("target_m = -3\n", "must be a positive number"),
        ('minutes = "8"\n', "must be a positive number"),
    ],
)
def test_a_category_needs_one_positive_target(tmp_path, keys, message):
    f = tmp_path / "c.toml"
    f.write_text(
        '[[category]]\nkey = "bank"\nname_zh = "银行"\nname_en = "Bank"\n'
        + keys
        + 'match = [{ amenity = "bank" }]\n',
        encoding="utf-8",
    )
    with pytest.raises(InputError, match=message):
        load_categories(f)


def test_cli_categories_lists_target_unit_and_source(capsys):
    assert main(["categories"]) == 0
    out = capsys.readouterr().out
    kinder = next(line for line in out.splitlines() if line.startswith("kindergarten"))
    assert "≤ 300 m" in kinder and "(5min, basic)" in kinder
    assert "≤ 8 min" in next(line for line in out.splitlines() if line.startswith("pharmacy"))
    assert "source: GB 50180-2018 附录B 五分钟生活圈居住区: 幼儿园, service radius ≤ 300 m" in out
    assert "(10min, to-confirm)" in next(line for line in out.splitlines() if line.startswith("park"))


# ----------------------------------------------------------------------------------------------
# at, below and above each target, on a street whose lengths are exact


def _street_audit(tmp_path, stops_m, facilities, mode="walk", speed_mps=None):
    """Homes on the nodes of a straight street at ``stops_m`` metres from x = 0, facilities
    (category, x) on it; the network is given exactly (no OSM coordinate rounding)."""
    osm = write_osm(
        tmp_path / "street.osm", {1: (0, 0), 2: (600, 0)}, [(1, [1, 2], {"highway": "residential"})]
    )
    region = load_region(osm)
    assert region.crs.to_epsg() == 32650
    xs = np.unique(np.r_[0.0, stops_m, [x for _, x in facilities]])
    time_s = None if speed_mps is None else np.diff(xs) / speed_mps
    net = from_arrays(
        X0 + xs,
        np.full(len(xs), Y0),
        np.arange(len(xs) - 1),
        np.arange(1, len(xs)),
        UTM,
        time_s=time_s,
        mode=mode,
    )
    homes = gpd.GeoDataFrame(
        {"home_id": [f"h{x:g}" for x in stops_m], "population": 10.0},
        geometry=gpd.points_from_xy(X0 + np.asarray(stops_m, float), np.full(len(stops_m), Y0)),
        crs=UTM,
    )
    extra = gpd.GeoDataFrame(
        {
            "facility_id": [f"f{i}" for i in range(len(facilities))],
            "category": [c for c, _ in facilities],
            "name": None,
        },
        geometry=gpd.points_from_xy([X0 + x for _, x in facilities], [Y0] * len(facilities)),
        crs=UTM,
    )
    keys = sorted({c for c, _ in facilities})
    return audit.audit(
        region, categories=keys, homes=homes, extra_facilities=extra, network=net, with_isochrones=False
    )


def _target_row(result, key):
    cov = result.coverage
    return cov[(cov["category"] == key) & (cov["threshold"] == "target")].iloc[0]


def test_metre_target_at_below_and_above(tmp_path):
    # Kindergarten at x = 0; homes 299, 300 and 301 m along the street: the radius is ≤ 300 m.
    result = _street_audit(tmp_path, [299, 300, 301], [("kindergarten", 0)])
    homes = result.homes.set_index("home_id")
    assert homes["kindergarten_dist_m"].tolist() == [299.0, 300.0, 301.0]
    row = _target_row(result, "kindergarten")
    assert row["homes_share"] == pytest.approx(2 / 3)
    # A distance: the elderly, slower walkers, are within 300 m where everyone is.
    assert row["elderly_share"] == pytest.approx(2 / 3)
    assert (row["target_m"], row["target_unit"]) == (300, "m") and np.isnan(row["target_minutes"])
    assert homes["kindergarten_within_target"].tolist() == [True, True, False]


def test_minute_target_at_below_and_above(tmp_path):
    # Pharmacy ≤ 8 min: 8 × 60 s × 1.1 m/s = 528 m; homes at 527, 528 and 529 m.
    result = _street_audit(tmp_path, [527, 528, 529], [("pharmacy", 0)])
    t = result.homes["pharmacy_time_s"].to_numpy()
    np.testing.assert_allclose(t, np.array([527, 528, 529]) / settings.walk_speed_mps)
    row = _target_row(result, "pharmacy")
    assert row["homes_share"] == pytest.approx(2 / 3)
    assert row["minutes"] == 8 and row["target_minutes"] == 8 and np.isnan(row["target_m"])
    # The elderly walk at 0.9 m/s: 528 m takes 9.8 min, over the 8 minutes.
    assert row["elderly_share"] == 0.0


def test_metre_target_on_a_bike_network_is_measured_in_metres(tmp_path):
    # Bike network at 4 m/s: time is not distance / walking speed, so metres come from a
    # sweep by length; the 300 m radius still holds at 300 m and not at 301 m.
    result = _street_audit(tmp_path, [299, 300, 301], [("kindergarten", 0)], mode="bike", speed_mps=4.0)
    homes = result.homes.set_index("home_id")
    assert homes["kindergarten_dist_m"].tolist() == [299.0, 300.0, 301.0]
    np.testing.assert_allclose(homes["kindergarten_time_s"], [299 / 4, 300 / 4, 301 / 4])
    assert _target_row(result, "kindergarten")["homes_share"] == pytest.approx(2 / 3)


def test_market_target_is_500_network_metres_not_10_minutes(tmp_path):
    # 600 m is within 10 minutes (660 m at 1.1 m/s) but beyond the GB 50180 radius of 500 m.
    result = _street_audit(tmp_path, [500, 501, 600], [("market", 0)])
    cov = result.coverage
    ten = cov[(cov["category"] == "market") & (cov["minutes"] == 10) & (cov["threshold"] == "minutes")].iloc[
        0
    ]
    assert ten["homes_share"] == 1.0
    assert _target_row(result, "market")["homes_share"] == pytest.approx(1 / 3)


# ----------------------------------------------------------------------------------------------
# the complete basic life circle, by hand


def _hand_homes() -> pd.DataFrame:
    """Four homes with chosen distances and times to four basic categories:
    kindergarten (5min, ≤ 300 m), convenience store (block, ≤ 5 min), primary school
    (10min, ≤ 500 m), supermarket (15min, ≤ 15 min)."""
    return pd.DataFrame(
        {
            "population": [100.0, 200.0, 300.0, 400.0],
            "elderly": [10.0, 20.0, 30.0, 40.0],
            "children": [1.0, 1.0, 1.0, 1.0],
            "disabled": [0.0, 0.0, 0.0, 0.0],
            # home 0: everything close; home 1: school 501 m; home 2: kindergarten 301 m;
            # home 3: store 300 s (at the limit; elderly 367 s, over), supermarket 901 s.
            "kindergarten_dist_m": [100.0, 200.0, 301.0, 300.0],
            "kindergarten_time_s": [91.0, 182.0, 274.0, 273.0],
            "convenience_store_time_s": [60.0, 240.0, 60.0, 300.0],
            "primary_school_dist_m": [400.0, 501.0, 100.0, 500.0],
            "primary_school_time_s": [364.0, 455.0, 91.0, 455.0],
            "supermarket_time_s": [600.0, 600.0, 600.0, 901.0],
        }
    )


def test_complete_life_circle_shares_by_hand():
    cats = load_categories()
    chosen = [cats[k] for k in ("kindergarten", "convenience_store", "primary_school", "supermarket")]
    factor = 1.1 / 0.9  # elderly walking 0.9 m/s, everyone 1.1 m/s
    rows = audit.complete_rows(_hand_homes(), chosen, elderly_time_factor=factor).set_index("level")
    # 5-minute circle = kindergarten + the block's store: homes 0, 1, 3 (home 2's kindergarten
    # is 301 m). Elderly: store times × 1.222 = 73, 293, 73, 367 s → home 3 over 300 s.
    assert rows.loc["5min", "homes_share"] == pytest.approx(3 / 4)
    assert rows.loc["5min", "population_share"] == pytest.approx(700 / 1000)
    assert rows.loc["5min", "elderly_share"] == pytest.approx(30 / 100)
    # 10-minute circle adds the school (≤ 500 m): home 1 is at 501 m → homes 0 and 3.
    assert rows.loc["10min", "homes_share"] == pytest.approx(2 / 4)
    assert rows.loc["10min", "population_share"] == pytest.approx(500 / 1000)
    assert rows.loc["10min", "elderly_share"] == pytest.approx(10 / 100)
    # 15-minute circle adds the supermarket (≤ 15 min = 900 s): home 3 is at 901 s → home 0.
    assert rows.loc["15min", "homes_share"] == pytest.approx(1 / 4)
    assert rows.loc["15min", "population_share"] == pytest.approx(100 / 1000)
    assert rows.loc["15min", "elderly_share"] == pytest.approx(10 / 100)
    assert rows.loc["15min", "target_source"].endswith(
        "kindergarten ≤ 300 m, convenience_store ≤ 5 min, primary_school ≤ 500 m, supermarket ≤ 15 min"
    )


def test_complete_circle_in_an_audit(tmp_path):
    # Kindergarten at 0 and a school at 450: home at 300 m has both (≤ 300 m, ≤ 500 m: 150 m
    # from the school); home at 301 m misses the kindergarten.
    result = _street_audit(tmp_path, [300, 301], [("kindergarten", 0), ("primary_school", 450)])
    homes = result.homes.set_index("home_id")
    assert homes["complete_5min"].tolist() == [True, False]
    assert homes["complete_10min"].tolist() == [True, False]
    summary = result.summary()["complete_life_circle"]
    # The 15-minute circle holds the lower levels' basics: with none of its own audited, it
    # equals the 10-minute one, and says which of its basics were not audited.
    assert set(summary) == {"5min", "10min", "15min"}
    assert summary["10min"]["homes_share"] == summary["15min"]["homes_share"] == 0.5
    assert "middle_school" in summary["15min"]["basic_categories_not_audited"]
    assert "middle_school" not in summary["10min"]["basic_categories_not_audited"]
    assert summary["10min"]["categories"] == {"kindergarten": "≤ 300 m", "primary_school": "≤ 500 m"}
    assert "clinic" in summary["5min"]["basic_categories_not_audited"]


# ----------------------------------------------------------------------------------------------
# co-location of health centres and elderly care


def test_co_location_finding_by_hand():
    pts = {"hc1": (0, 0), "hc2": (1000, 0), "hosp": (2000, 0), "ec1": (50, 0), "ec2": (1051, 0)}
    fac = gpd.GeoDataFrame(
        {
            "facility_id": list(pts),
            "category": ["health_centre", "health_centre", "health_centre", "elderly_care", "elderly_care"],
            "name": ["某街道社区卫生服务中心", "某镇卫生院", "某医院", "日间照料中心", "养老院"],
        },
        geometry=[shapely.Point(p) for p in pts.values()],
        crs=UTM,
    )
    found = audit.co_location(fac)
    assert found["distance_m"] == settings.colocation_distance_m == 50.0
    assert "assumption" in found["distance_source"] and "(十一)" in found["source"]
    # The hospital is not a community health centre; hc1 is 50 m (at the distance) from ec1,
    # hc2 51 m (just over) from ec2.
    assert (found["health_centres"], found["adjacent"], found["not_adjacent"]) == (2, 1, 1)
    detail = {d["facility_id"]: d for d in found["health_centres_detail"]}
    assert detail["hc1"]["adjacent"] and detail["hc1"]["nearest_elderly_care_id"] == "ec1"
    assert not detail["hc2"]["adjacent"] and detail["hc2"]["distance_m"] == 51.0
    assert found["elderly_care_next_to_a_health_centre"] == 1
    assert audit.co_location(fac[fac["category"] == "health_centre"])["checked"] is False


# ----------------------------------------------------------------------------------------------
# column-wise matching equals object-by-object matching

SAMPLES = sorted((Path(__file__).resolve().parents[1] / "sample_regions").glob("*.osm.pbf"))


def _all_categories():
    from planner.categories import DATA_DIR

    return list(
        load_categories(files=[DATA_DIR / "categories.toml", DATA_DIR / "rural_categories.toml"]).values()
    )


def _one_by_one(tags, cats):
    return np.array([[c.matches(t or {}) for c in cats] for t in tags], bool).reshape(len(tags), len(cats))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name.split(".")[0])
def test_match_matrix_equals_matches_on_every_sample_object(path):
    from planner.categories import match_matrix

    cats = _all_categories()
    feats = load_region(path).features
    tags = feats["tags"].tolist()
    expected = _one_by_one(tags, cats)
    assert expected.any()  # the samples hold facilities: the comparison is not all-False
    np.testing.assert_array_equal(match_matrix(tags, cats), expected)
    # classify keeps the object-by-object rows and order: per feature, categories in order.
    found = classify(feats, cats)
    lines = feats.geom_type.isin(["LineString", "MultiLineString"]).to_numpy()
    rows = [
        (feats["osm_id"].iloc[i], c.key)
        for i in range(len(feats))
        for j, c in enumerate(cats)
        if expected[i, j] and not lines[i]
    ]
    assert list(zip(found["facility_id"], found["category"], strict=True)) == rows


def _tag_dicts():
    from hypothesis import strategies as st

    cats = _all_categories()
    keys, values = set(), set()
    for c in cats:
        for table in (*c.match, *c.exclude):
            for key, want in table.items():
                keys.add(key)
                for w in want if isinstance(want, list) else [want]:
                    values.add(w.lstrip("~").strip("$()^").split("|")[0])
    words = st.sampled_from([*sorted(values), "", "幼儿园", "小学", "某某小学附属幼儿园", "村委", "yes"])
    text = st.lists(words, min_size=1, max_size=3).map("".join) | st.text(max_size=6)
    return st.dictionaries(st.sampled_from([*sorted(keys), "building", "other"]), text, max_size=5)


def test_match_matrix_equals_matches_on_generated_tags():
    from hypothesis import given
    from hypothesis import settings as hsettings
    from hypothesis import strategies as st

    from planner.categories import match_matrix

    cats = _all_categories()

    @hsettings(max_examples=200, deadline=None)
    @given(st.lists(_tag_dicts() | st.none(), max_size=12))
    def check(tags):
        np.testing.assert_array_equal(match_matrix(tags, cats), _one_by_one(tags, cats))

    check()
