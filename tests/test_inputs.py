"""Chinese input data: CSV encodings (UTF-8, UTF-8 with BOM, GBK/GB18030), category names in
Chinese or English, and GCJ-02 / BD-09 coordinates (planner._csv, planner.categories,
planner.coords)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from planner import coords
from planner._csv import detect_encoding, read_csv
from planner._errors import InputError
from planner.categories import facilities_from_file, load_categories, read_points_table, resolve_key, select
from planner.villages.rural import load_rural_categories

TABLE = "name,category,lon,lat,population\n海淀幼儿园,幼儿园,116.35,40.0,10\n学院路社区卫生服务站,clinic,116.36,40.01,5\n"


def _write(path, text: str, encoding: str, bom: bool = False) -> str:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    return str(path)


# --- encodings ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("encoding", "bom", "expected"), [
    ("utf-8", False, "utf-8"), ("utf-8", True, "utf-8-sig"), ("gbk", False, "gb18030"),
    ("gb18030", False, "gb18030"),
])
def test_detect_encoding(encoding, bom, expected):
    raw = (b"\xef\xbb\xbf" if bom else b"") + TABLE.encode(encoding)
    assert detect_encoding(raw) == expected


@pytest.mark.parametrize("text", ["name\n学院路\n", "x,名\n1,区\n"])
def test_short_gbk_that_is_also_valid_utf8_reads_as_chinese(text):
    # 学院路 in GBK is the valid UTF-8 of 'ѧԺ·': the Chinese reading wins
    assert text.encode("gbk").decode("utf-8", errors="replace") != text
    assert detect_encoding(text.encode("gbk")) == "gb18030"
    assert detect_encoding(text.encode("utf-8")) == "utf-8"


def test_gbk_and_utf8_bom_csv_read_the_same_table(tmp_path):
    gbk = read_csv(_write(tmp_path / "gbk.csv", TABLE, "gbk"))
    bom = read_csv(_write(tmp_path / "bom.csv", TABLE, "utf-8", bom=True))
    plain = read_csv(_write(tmp_path / "plain.csv", TABLE, "utf-8"))
    pd.testing.assert_frame_equal(gbk, bom)
    pd.testing.assert_frame_equal(gbk, plain)
    assert list(gbk.columns) == ["name", "category", "lon", "lat", "population"]  # no BOM left on 'name'
    assert gbk["name"].tolist() == ["海淀幼儿园", "学院路社区卫生服务站"]


def test_points_tables_read_the_same_from_gbk_and_bom(tmp_path):
    gbk = read_points_table(_write(tmp_path / "gbk.csv", TABLE, "gbk"))
    bom = read_points_table(_write(tmp_path / "bom.csv", TABLE, "utf-8", bom=True))
    assert gbk.equals(bom)
    assert gbk.geometry.x.tolist() == [116.35, 116.36]


def test_csv_neither_utf8_nor_gbk_is_one_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("lon,lat,nom\n116.3,40.0,Café\n".encode("latin-1"))
    with pytest.raises(InputError, match="neither UTF-8 nor GBK/GB18030") as err:
        read_csv(path)
    assert "\n" not in str(err.value) and "latin1.csv" in str(err.value)
    path.write_bytes("lon,lat\n1,2\n".encode("utf-16"))
    with pytest.raises(InputError, match="UTF-16"):
        read_csv(path)


def test_regions_csv_in_gbk(tmp_path):
    from planner.batch.regions import read_regions

    text = "name,wkt\n学院路,\"POLYGON ((116.35 40.0, 116.36 40.0, 116.36 40.01, 116.35 40.0))\"\n"
    specs = read_regions(_write(tmp_path / "regions.csv", text, "gbk"),
                         osm=str(tmp_path / "none.osm.pbf"))
    assert [s.name for s in specs] == ["学院路"]


# --- category names ----------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "key"), [
    ("kindergarten", "kindergarten"), ("幼儿园", "kindergarten"), ("Kindergarten", "kindergarten"),
    (" 养老院 ", "elderly_care"), ("老年人日间照料中心/养老院", "elderly_care"), ("社区卫生服务站", "clinic"),
    ("Pharmacy", "pharmacy"),
])
def test_resolve_key_chinese_or_english(name, key):
    assert resolve_key(name, load_categories()) == key


def test_resolve_key_rural_names_with_notes():
    rural = load_rural_categories()
    assert [c.key for c in select(rural, "幼儿园,村卫生室,养老院")] == [
        "kindergarten", "village_clinic", "township_elderly_home"]


def test_select_mixes_languages_without_repeats():
    assert [c.key for c in select(load_categories(), "幼儿园,clinic,Kindergarten")] == ["kindergarten", "clinic"]


@pytest.mark.parametrize(("name", "hint"), [("养老", "老年人日间照料中心/养老院 (elderly_care)"),
                                        ("kindergarden", "幼儿园 (kindergarten)")])
def test_unknown_category_lists_close_matches_in_one_line(name, hint):
    with pytest.raises(InputError) as err:
        resolve_key(name, load_categories(), "--category")
    text = str(err.value)
    assert text.startswith(f"--category: unknown category {name!r}; did you mean {hint}")
    assert "\n" not in text


def test_unknown_category_without_close_match_lists_keys():
    with pytest.raises(InputError, match="known: kindergarten, childcare"):
        resolve_key("xyz", load_categories())


def test_facilities_file_category_column_in_chinese(tmp_path):
    path = _write(tmp_path / "fac.csv", TABLE, "gbk")
    frame = facilities_from_file(path, 4326, load_categories())
    assert frame["category"].tolist() == ["kindergarten", "clinic"]
    assert frame["name"].tolist() == ["海淀幼儿园", "学院路社区卫生服务站"]


def test_facilities_file_unknown_name_names_the_file(tmp_path):
    path = _write(tmp_path / "fac.csv", TABLE.replace(",幼儿园,", ",托儿园,"), "utf-8")
    with pytest.raises(InputError, match=r"fac\.csv: column category: unknown category '托儿园'; did you mean"):
        facilities_from_file(path, 4326, load_categories())


# --- coordinates -------------------------------------------------------------------------------
# Reference pairs, (lon, lat):
# * googollee/eviltransform, python/test.py (TESTS: Shanghai, Shenzhen, Beijing) — WGS84 ↔ GCJ-02;
# * wandergis/coordtransform, test/app.js (116.404, 39.915) — WGS84 → GCJ-02 and GCJ-02 → BD-09,
#   the closed formulas (its inverses there are one-step approximations, so not used as truth).
EVIL_WGS_GCJ = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),  # Shanghai
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),  # Shenzhen
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),  # Beijing
]
WANDERGIS_WGS_GCJ = ((116.404, 39.915), (116.41024449916938, 39.91640428150164))
WANDERGIS_GCJ_BD = ((116.404, 39.915), (116.41036949371029, 39.92133699351021))


def _metres(a, b) -> float:
    """Distance between two (lon, lat) points in metres (equirectangular, fine at this scale)."""
    lat = math.radians((a[1] + b[1]) / 2)
    return 6371008.8 * math.hypot(math.radians(a[0] - b[0]) * math.cos(lat), math.radians(a[1] - b[1]))


@pytest.mark.parametrize(("wgs", "gcj"), [*EVIL_WGS_GCJ, WANDERGIS_WGS_GCJ])
def test_wgs84_to_gcj02_reference_pairs(wgs, gcj):
    got = coords.wgs84_to_gcj02(*wgs)
    assert got[0] == pytest.approx(gcj[0], abs=1e-9) and got[1] == pytest.approx(gcj[1], abs=1e-9)


@pytest.mark.parametrize(("wgs", "gcj"), [*EVIL_WGS_GCJ, WANDERGIS_WGS_GCJ])
def test_gcj02_to_wgs84_reference_pairs(wgs, gcj):
    got = coords.gcj02_to_wgs84(*gcj)
    assert _metres(got, wgs) < 0.01  # the iterative inverse, not the one-step one (~1 m off)


def test_gcj02_bd09_reference_pair_both_ways():
    gcj, bd = WANDERGIS_GCJ_BD
    got = coords.gcj02_to_bd09(*gcj)
    assert got[0] == pytest.approx(bd[0], abs=1e-9) and got[1] == pytest.approx(bd[1], abs=1e-9)
    assert _metres(coords.bd09_to_gcj02(*bd), gcj) < 0.01


def test_round_trips_within_a_metre_over_china():
    rng = np.random.default_rng(23)
    lon, lat = rng.uniform(74.0, 134.5, 2000), rng.uniform(18.0, 53.0, 2000)
    for fwd, inv in [(coords.wgs84_to_gcj02, coords.gcj02_to_wgs84), (coords.wgs84_to_bd09, coords.bd09_to_wgs84),
                     (coords.gcj02_to_bd09, coords.bd09_to_gcj02)]:
        back = inv(*fwd(lon, lat))
        err = max(_metres((a, b), (c, d)) for a, b, c, d in zip(lon, lat, *back, strict=True))
        assert err < 1.0
    shift = coords.wgs84_to_gcj02(116.38, 39.9)
    assert 300 < _metres(shift, (116.38, 39.9)) < 600  # the offset the conversion is for, in Beijing


@pytest.mark.parametrize("point", [(2.35, 48.85), (-74.0, 40.7), (139.7, 35.7), (151.2, -33.9)])
def test_identity_outside_china(point):
    for func in (coords.wgs84_to_gcj02, coords.gcj02_to_wgs84, coords.wgs84_to_bd09, coords.bd09_to_wgs84):
        got = func(*point)
        assert (float(got[0]), float(got[1])) == point


def test_check_coords_names():
    assert coords.check_coords("GCJ-02") == "gcj02" and coords.check_coords("bd09") == "bd09"
    assert coords.check_coords(None) == "wgs84"
    with pytest.raises(InputError, match="--coords 'mars': use wgs84, gcj02"):
        coords.check_coords("mars")


def test_points_table_in_gcj02_lands_on_its_wgs84_twin(tmp_path):
    (wgs, gcj), *_ = EVIL_WGS_GCJ
    path = _write(tmp_path / "gaode.csv", f"name,lon,lat\nA,{gcj[0]!r},{gcj[1]!r}\n", "utf-8")
    frame = read_points_table(path, coords="gcj02")
    assert _metres((frame.geometry.x[0], frame.geometry.y[0]), wgs) < 0.01
    bd = coords.wgs84_to_bd09(*wgs)
    path = _write(tmp_path / "baidu.csv", f"name,lng,lat\nA,{float(bd[0])!r},{float(bd[1])!r}\n", "utf-8")
    frame = read_points_table(path, coords="bd09")
    assert _metres((frame.geometry.x[0], frame.geometry.y[0]), wgs) < 0.01


def test_points_table_crs_for_projected_csv_columns(tmp_path):
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 4547, always_xy=True).transform(116.35, 40.0)  # CGCS2000 / 3-degree GK CM 117E
    path = _write(tmp_path / "xy.csv", f"x,y\n{x!r},{y!r}\n", "utf-8")
    frame = read_points_table(path, crs="EPSG:4547").to_crs(4326)
    assert frame.geometry.x[0] == pytest.approx(116.35, abs=1e-7)
    with pytest.raises(InputError, match="--coords gcj02 needs lon/lat"):
        read_points_table(path, crs="EPSG:4547", coords="gcj02")
    with pytest.raises(InputError, match="--crs 'EPSG:99999'"):
        read_points_table(path, crs="EPSG:99999")
