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


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [
        ("utf-8", False, "utf-8"),
        ("utf-8", True, "utf-8-sig"),
        ("gbk", False, "gb18030"),
        ("gb18030", False, "gb18030"),
    ],
)
def test_detect_encoding(encoding, bom, expected):
    raw = (b"\xef\xbb\xbf" if bom else b"") + TABLE.encode(encoding)
    assert detect_encoding(raw) == expected


@pytest.mark.parametrize("text", ["name\n学院路\n", "x,名\n1,区\n"])
def test_short_gbk_that_is_also_valid_utf8_reads_as_chinese(text):
    # 学院路 in GBK is the valid UTF-8 of 'ѧԺ·': the Chinese reading wins
    assert text.encode("gbk").decode("utf-8", errors="replace") != text
    assert detect_encoding(text.encode("gbk")) == "gb18030"
    assert detect_encoding(text.encode("utf-8")) == "utf-8"


@pytest.mark.parametrize("text", ["\u202eRTL 名称", "name\n\u202eRTL\n"])
def test_utf8_with_punctuation_or_bidi_marks_stays_utf8(text):
    # these bytes decode as GB18030 too (into ideographs), but they are UTF-8
    text.encode("utf-8").decode("gb18030")
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

    text = 'name,wkt\n学院路,"POLYGON ((116.35 40.0, 116.36 40.0, 116.36 40.01, 116.35 40.0))"\n'
    specs = read_regions(_write(tmp_path / "regions.csv", text, "gbk"), osm=str(tmp_path / "none.osm.pbf"))
    assert [s.name for s in specs] == ["学院路"]
    wgs = specs[0].boundary
    gcj = coords.geometries_from_wgs84([wgs], "gcj02")[0]
    text = f'name,wkt\n学院路,"{gcj.wkt}"\n'
    (spec,) = read_regions(
        _write(tmp_path / "gaode.csv", text, "gbk"), osm=str(tmp_path / "none.osm.pbf"), coords="gcj02"
    )
    assert spec.boundary.symmetric_difference(wgs).area < 1e-14  # back on its WGS84 twin


# --- category names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("kindergarten", "kindergarten"),
        ("幼儿园", "kindergarten"),
        ("Kindergarten", "kindergarten"),
        (" 养老院 ", "elderly_care"),
        ("老年人日间照料中心/养老院", "elderly_care"),
        ("社区卫生服务站", "clinic"),
        ("Pharmacy", "pharmacy"),
    ],
)
def test_resolve_key_chinese_or_english(name, key):
    assert resolve_key(name, load_categories()) == key


def test_resolve_key_rural_names_with_notes():
    rural = load_rural_categories()
    assert [c.key for c in select(rural, "幼儿园,村卫生室,养老院")] == [
        "kindergarten",
        "village_clinic",
        "township_elderly_home",
    ]


def test_select_mixes_languages_without_repeats():
    assert [c.key for c in select(load_categories(), "幼儿园,clinic,Kindergarten")] == [
        "kindergarten",
        "clinic",
    ]


@pytest.mark.parametrize(
    ("name", "hint"),
    [("养老", "老年人日间照料中心/养老院 (elderly_care)"), ("kindergarden", "幼儿园 (kindergarten)")],
)
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
    with pytest.raises(
        InputError, match=r"fac\.csv: column category: unknown category '托儿园'; did you mean"
    ):
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
    for fwd, inv in [
        (coords.wgs84_to_gcj02, coords.gcj02_to_wgs84),
        (coords.wgs84_to_bd09, coords.bd09_to_wgs84),
        (coords.gcj02_to_bd09, coords.bd09_to_gcj02),
    ]:
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

    x, y = Transformer.from_crs(4326, 4547, always_xy=True).transform(
        116.35, 40.0
    )  # CGCS2000 / 3-degree GK CM 117E
    path = _write(tmp_path / "xy.csv", f"x,y\n{x!r},{y!r}\n", "utf-8")
    frame = read_points_table(path, crs="EPSG:4547").to_crs(4326)
    assert frame.geometry.x[0] == pytest.approx(116.35, abs=1e-7)
    with pytest.raises(InputError, match="--coords gcj02 needs lon/lat"):
        read_points_table(path, crs="EPSG:4547", coords="gcj02")
    with pytest.raises(InputError, match="--crs 'EPSG:99999'"):
        read_points_table(path, crs="EPSG:99999")


# --- commands: GCJ-02 facilities, --out-coords -------------------------------------------------

CAU = str(__import__("conftest").SAMPLES / "beijing_haidian_cau.osm.pbf")
#: Facility points inside the CAU extract (WGS84): kindergartens the audit measures from.
TWINS = [(116.3420, 40.0010), (116.3550, 40.0060), (116.3350, 39.9990)]


def _facility_csv(path, points, encoding="utf-8") -> str:
    rows = "".join(f"K{i},幼儿园,{x!r},{y!r}\n" for i, (x, y) in enumerate(points))
    return _write(path, "name,category,lon,lat\n" + rows, encoding)


def test_audit_with_gaode_facilities_lands_on_the_wgs84_twins(tmp_path):
    from planner.audit import audit
    from planner.network import build_network, geometry_access
    from planner.sources import load_region

    region = load_region(CAU)
    cats = load_categories()
    gcj = [tuple(float(v) for v in coords.wgs84_to_gcj02(*p)) for p in TWINS]
    wgs_file = facilities_from_file(_facility_csv(tmp_path / "wgs.csv", TWINS), region.crs, cats)
    gcj_file = facilities_from_file(
        _facility_csv(tmp_path / "gcj.csv", gcj, "gbk"), region.crs, cats, coords="gcj02"
    )
    raw_file = facilities_from_file(
        _facility_csv(tmp_path / "raw.csv", gcj), region.crs, cats
    )  # GCJ read as WGS84
    net = build_network(region, "walk")
    nodes = {
        name: geometry_access(net, frame.geometry.to_numpy()).node.tolist()
        for name, frame in [("wgs", wgs_file), ("gcj", gcj_file), ("raw", raw_file)]
    }
    assert nodes["gcj"] == nodes["wgs"]
    assert nodes["raw"] != nodes["wgs"]  # unconverted, the 500 m shift puts them elsewhere
    runs = {
        name: audit(
            region,
            categories="kindergarten",
            minutes=(5,),
            extra_facilities=frame,
            with_isochrones=False,
            network=net,
        )
        for name, frame in [("wgs", wgs_file), ("gcj", gcj_file)]
    }
    # the same nodes; the legs differ by the round trip's sub-millimetre error
    np.testing.assert_allclose(
        runs["gcj"].homes["kindergarten_time_s"], runs["wgs"].homes["kindergarten_time_s"], rtol=0, atol=1e-3
    )


def _table_csv(path, polygons, encoding="utf-8") -> str:
    """A 街道 table: name, 常住人口, wkt (WGS84)."""
    rows = "".join(f'{name},{people},"{poly.wkt}"\n' for name, people, poly in polygons)
    return _write(path, "name,常住人口,wkt\n" + rows, encoding)


def test_cli_audit_gaode_facilities_out_coords_and_population_table(tmp_path, capsys):
    import json

    import geopandas as gpd
    import shapely

    from planner.cli import main

    gcj = [tuple(float(v) for v in coords.wgs84_to_gcj02(*p)) for p in TWINS]
    fac = _facility_csv(tmp_path / "fac.csv", gcj, "gbk")
    west, east = shapely.box(116.340, 39.990, 116.352, 40.015), shapely.box(116.352, 39.990, 116.365, 40.015)
    # --coords applies to every input file: the 街道 polygons come from Gaode too
    west_gcj, east_gcj = coords.geometries_from_wgs84([west, east], "gcj02")
    table = _table_csv(tmp_path / "streets.csv", [("西区", 12000, west_gcj), ("东区", 8000, east_gcj)], "gbk")
    out = tmp_path / "out"
    rc = main(
        [
            "audit",
            "--osm",
            CAU,
            "--categories",
            "幼儿园",
            "--minutes",
            "5",
            "--no-map",
            "--isochrones",
            "none",
            "--facilities",
            fac,
            "--coords",
            "gcj02",
            "--out-coords",
            "gcj02",
            "--population-table",
            table,
            "--out",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    homes = gpd.read_file(out / "homes.gpkg", layer="homes")
    facilities = gpd.read_file(out / "facilities.gpkg", layer="facilities")
    # written in GCJ-02: the file's facilities are back at the Gaode coordinates they came in
    mine = facilities[facilities["facility_id"].str.startswith("file/")]
    for (x, y), geom in zip(gcj, mine.geometry, strict=True):
        assert _metres((geom.x, geom.y), (x, y)) < 0.01
    # the table's counts, read back from the WGS84 of the written GCJ-02 points
    lon, lat = coords.gcj02_to_wgs84(homes.geometry.x.to_numpy(), homes.geometry.y.to_numpy())
    in_west = shapely.within(shapely.points(lon, lat), west)
    in_east = shapely.within(shapely.points(lon, lat), east)
    assert homes.loc[in_west, "population"].sum() == pytest.approx(12000, rel=1e-9)
    assert homes.loc[in_east, "population"].sum() == pytest.approx(8000, rel=1e-9)
    assert set(homes.loc[in_west | in_east, "population_source"]) == {"table"}
    assert set(homes.loc[~(in_west | in_east), "population_source"]) <= {"estimate"}
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    src = summary["population_sources"]
    assert src["by_source"]["table"]["homes"] == int((in_west | in_east).sum())
    assert src["by_source"]["table"]["people"] == pytest.approx(20000, rel=1e-9)
    assert src["source"]["file"] == "streets.csv" and src["source"]["source_total"] == 20000


def test_cli_bad_coords_and_crs_are_one_line(tmp_path, capsys):
    from planner.cli import main

    fac = _facility_csv(tmp_path / "fac.csv", TWINS)
    for extra, expect in [
        (["--coords", "mars"], "--coords 'mars'"),
        (["--out-coords", "utm"], "--out-coords 'utm'"),
        (["--crs", "EPSG:99999"], "--crs 'EPSG:99999'"),
    ]:
        rc = main(
            [
                "audit",
                "--osm",
                CAU,
                "--categories",
                "kindergarten",
                "--no-map",
                "--facilities",
                fac,
                "--out",
                str(tmp_path / "o"),
                *extra,
            ]
        )
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and expect in err[0], err
        assert not (tmp_path / "o").exists()


# --- population: raster and table, shared by floor area -----------------------------------------


def _homes_grid(bounds, n, crs, seed=0):
    import geopandas as gpd

    rng = np.random.default_rng(seed)
    x = rng.uniform(bounds[0], bounds[2], n)
    y = rng.uniform(bounds[1], bounds[3], n)
    floor = rng.uniform(300.0, 6000.0, n)
    return gpd.GeoDataFrame(
        {
            "home_id": [f"h{i}" for i in range(n)],
            "population": floor / 35.0,
            "floor_area_m2": floor,
            "households": floor / 35.0 / 2.62,
            "elderly": floor / 35.0 * 0.19,
        },
        geometry=gpd.points_from_xy(x, y),
        crs=crs,
    )


def test_raster_population_sums_to_the_cells_and_follows_floor_area():
    from conftest import shared_path

    from planner.population import distribute

    tif = shared_path("rasters", "guangzhou_worldpop_1km_utm49n.tif")
    # A synthetic 6 km x 6 km district under Yuexiu (the raster's densest cells), cell-aligned,
    # with 4,000 homes: every cell holds homes.
    left, top = 699261.1171725811 + 31 * 1000, 2650394.2615644643 - 85 * 1000
    bounds = (left, top - 6000, left + 6000, top)
    homes = _homes_grid(bounds, 4000, 32649, seed=23).to_crs(4326)  # any CRS: WGS84 here
    out = distribute(homes, raster=tif)
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(tif) as src:  # the 6 x 6 cells under the district (nodata is 0: no people)
        cell_total = float(src.read(1, window=Window(31, 85, 6, 6)).astype("float64").sum())
    assert cell_total > 100_000  # a real, dense clip (people per 36 km² of central Guangzhou)
    assert out["population"].sum() == pytest.approx(cell_total, rel=1e-3)
    info = out.attrs["population"]
    assert info["homes_from_source"] == 4000 and info["homes_kept_estimate"] == 0
    assert info["people_from_source"] == pytest.approx(info["source_people_in_zones_with_homes"], rel=1e-12)
    assert set(out["population_source"]) == {"raster"}
    # inside each cell, people per m² of floor area is one number
    pts = out.to_crs(32649).geometry
    cell = (np.floor((pts.x - left) / 1000) * 10 + np.floor((top - pts.y) / 1000)).astype(int)
    density = out["population"] / out["floor_area_m2"]
    spread = density.groupby(cell.to_numpy()).agg(lambda d: d.max() / d.min() - 1)
    assert len(spread) == 36 and spread.max() < 1e-9
    # groups scale with the home's new population
    np.testing.assert_allclose(out["elderly"], out["population"] * 0.19, rtol=1e-9)


def test_homes_beyond_the_raster_keep_their_estimate():
    from conftest import shared_path

    from planner.population import distribute

    tif = shared_path("rasters", "guangzhou_worldpop_1km_utm49n.tif")
    left, top = 699261.1171725811 + 31 * 1000, 2650394.2615644643 - 85 * 1000
    inside = _homes_grid((left, top - 2000, left + 2000, top), 200, 32649, seed=1)
    beyond = _homes_grid((200000, 2500000, 202000, 2502000), 30, 32649, seed=2)  # far west of the raster
    homes = pd.concat([inside, beyond], ignore_index=True)
    out = distribute(homes, raster=tif)
    assert (out["population_source"].iloc[200:] == "estimate").all()
    np.testing.assert_array_equal(out["population"].iloc[200:], beyond["population"])
    assert out.attrs["population"]["homes_kept_estimate"] == 30


def test_table_population_is_exact_per_polygon_and_follows_floor_area(tmp_path):
    import geopandas as gpd
    import shapely

    from planner.population import distribute, read_population_table

    a, b, empty = (
        shapely.box(0, 0, 1000, 1000),
        shapely.box(1000, 0, 2000, 1000),
        shapely.box(0, 1000, 1000, 2000),
    )
    homes = gpd.GeoDataFrame(
        {"population": [10.0, 10.0, 10.0, 50.0, 7.0], "floor_area_m2": [100.0, 300.0, 600.0, 2000.0, 900.0]},
        geometry=gpd.points_from_xy([100, 500, 900, 1500, 5000], [500, 500, 500, 500, 500]),
        crs=32650,
    )
    table = gpd.GeoDataFrame({"population": [1000.0, 333.0, 55.0]}, geometry=[a, b, empty], crs=32650)
    gbk = _table_csv(tmp_path / "t.csv", [("甲", 1000, a), ("乙", 333, b), ("丙", 55, empty)], "gbk")
    read = read_population_table(gbk, crs="EPSG:32650")
    np.testing.assert_array_equal(read["population"], [1000.0, 333.0, 55.0])
    assert read["name"].tolist() == ["甲", "乙", "丙"]
    for source in (table, read):
        out = distribute(homes, table=source)
        # polygon a: 1000 people over floor areas 100, 300, 600; b: 333 to its one home
        np.testing.assert_allclose(out["population"], [100.0, 300.0, 600.0, 333.0, 7.0], rtol=1e-12)
        assert out["population_source"].tolist() == ["table"] * 4 + ["estimate"]
        info = out.attrs["population"]
        assert info["source_total"] == 1388.0 and info["source_people_in_polygons_without_homes"] == 55.0
        assert info["people_from_source"] == pytest.approx(1333.0)


def test_population_table_bad_rows_are_one_line(tmp_path):
    from planner.population import read_population_table

    path = _write(tmp_path / "t.csv", 'name,人口,wkt\nA,-5,"POLYGON ((0 0, 1 0, 1 1, 0 0))"\n', "utf-8")
    with pytest.raises(InputError, match=r"row 1: 人口 is missing, not a number or negative"):
        read_population_table(path)
    path = _write(tmp_path / "u.csv", 'name,count,wkt\nA,5,"POLYGON ((0 0, 1 0, 1 1, 0 0))"\n', "utf-8")
    with pytest.raises(InputError, match="no population column"):
        read_population_table(path)
    path = _write(tmp_path / "v.csv", 'name,population,wkt\nA,5,"POINT (0 0)"\n', "utf-8")
    with pytest.raises(InputError, match="row 1: no polygon"):
        read_population_table(path)


def test_review_plan_drawn_on_gaode_reads_as_its_wgs84_twin(tmp_path):
    import geopandas as gpd
    from review.plans import estate, facility, write_plan

    from planner.review.plan import read_plan

    utm = write_plan(
        tmp_path / "utm.geojson", [estate(1000), facility("幼儿园", 3200), facility("clinic", 150)]
    )
    wgs = gpd.read_file(utm).to_crs(4326)
    wgs.to_file(tmp_path / "wgs.geojson", driver="GeoJSON")
    gcj = wgs.set_geometry(coords.geometries_from_wgs84(wgs.geometry.to_numpy(), "gcj02"), crs=4326)
    gcj.to_file(tmp_path / "gcj.geojson", driver="GeoJSON")
    twin = read_plan(tmp_path / "wgs.geojson")
    plan = read_plan(tmp_path / "gcj.geojson", coords="gcj02")
    raw = read_plan(tmp_path / "gcj.geojson")  # the Gaode drawing taken as WGS84
    assert plan.facilities["category"].tolist() == ["kindergarten", "clinic"]
    shift = plan.estate.centroid.distance(twin.estate.centroid)
    assert shift < 0.01 and raw.estate.centroid.distance(twin.estate.centroid) > 300
    assert abs(plan.estate.area - twin.estate.area) < 1e-3 * twin.estate.area


def test_homes_file_floor_area_shares_a_table_and_homes_outside_stay_file(tmp_path):
    from types import SimpleNamespace

    import shapely

    from planner.demand import homes_from_file
    from planner.population import homes_with_population, population_summary

    text = (
        "名称,lon,lat,population,floor_area_m2\n"
        "甲,116.3500,40.0000,10,1000\n乙,116.3510,40.0000,10,3000\n丙,116.4000,40.0500,42,800\n"
    )
    homes = homes_from_file(_write(tmp_path / "homes.csv", text, "gbk"), 32650)
    box = shapely.box(116.349, 39.999, 116.352, 40.001)
    table = _table_csv(tmp_path / "t.csv", [("学院路街道", 800, box)])
    out = homes_with_population(SimpleNamespace(crs=homes.crs), homes, population_table=table)
    np.testing.assert_allclose(out["population"], [200.0, 600.0, 42.0], rtol=1e-12)
    assert out["population_source"].tolist() == ["table", "table", "file"]
    summary = population_summary(out)
    assert summary["by_source"] == {
        "file": {"homes": 1, "people": 42.0},
        "table": {"homes": 2, "people": 800.0},
    }
    assert summary["source"]["weight"] == "floor_area_m2" and summary["source"]["file"] == "t.csv"
    bad = _write(tmp_path / "bad.csv", text.replace(",800\n", ",-1\n"), "utf-8")
    with pytest.raises(InputError, match="row 3: floor_area_m2 missing, not a number or negative"):
        homes_from_file(bad, 32650)


def _raster_over(path, bounds, crs, cell_m, seed=5) -> tuple[str, np.ndarray]:
    """A GeoTIFF of people per cell covering ``bounds`` (in ``crs``), cells of ``cell_m``."""
    import rasterio
    from affine import Affine

    cols = int(np.ceil((bounds[2] - bounds[0]) / cell_m)) + 2
    rows = int(np.ceil((bounds[3] - bounds[1]) / cell_m)) + 2
    values = np.random.default_rng(seed).uniform(100, 2000, (rows, cols)).astype("float32")
    transform = Affine(cell_m, 0.0, bounds[0] - cell_m, 0.0, -cell_m, bounds[3] + cell_m)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=cols,
        height=rows,
        count=1,
        dtype="float32",
        crs=crs,
        transform=transform,
        nodata=-1,
    ) as dst:
        dst.write(values, 1)
    return str(path), values


def test_cli_site_with_population_raster(tmp_path, capsys):
    import json

    import geopandas as gpd
    import rasterio

    from planner.cli import main
    from planner.demand import homes_from_region
    from planner.raster import rowcol
    from planner.sources import load_region

    region = load_region(CAU)
    bounds = homes_from_region(region).total_bounds
    tif, values = _raster_over(tmp_path / "pop.tif", bounds, region.crs.to_string(), 400.0)
    out = tmp_path / "site"
    rc = main(
        [
            "site",
            "--osm",
            CAU,
            "--category",
            "养老院",
            "--new",
            "1",
            "--no-map",
            "--population",
            tif,
            "--out",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["category"] == "elderly_care"
    src = summary["population_sources"]
    homes = homes_from_region(region)
    with rasterio.open(tif) as ds:
        rows, cols = rowcol(ds.transform, homes.geometry.x.to_numpy(), homes.geometry.y.to_numpy())
    cells = set(zip(rows.tolist(), cols.tolist(), strict=True))
    expected = sum(float(values[r, c]) for r, c in cells)  # every cell holding a home, whole
    assert src["by_source"] == {"raster": {"homes": len(homes), "people": pytest.approx(expected, rel=1e-9)}}
    assert src["source"]["file"] == "pop.tif"
    assert src["source"]["crs"] == region.crs.to_string() and src["source"]["cell_size"] == 400.0
    assert gpd.read_file(out / "sites.gpkg", layer="proposed").crs.to_epsg() == 4326


def test_cli_villages_with_population_table(tmp_path, capsys):
    import json

    import shapely

    from planner.cli import main
    from planner.demand import homes_from_region
    from planner.sources import load_region

    haining = str(__import__("conftest").SAMPLES / "zhejiang_haining_zhouwangmiao.osm.pbf")
    region = load_region(haining)
    w, s, e, n = homes_from_region(region).to_crs(4326).total_bounds
    table = _table_csv(
        tmp_path / "村.csv",
        [("周王庙镇", 5000, shapely.box(w - 0.001, s - 0.001, e + 0.001, n + 0.001))],
        "gbk",
    )
    out = tmp_path / "villages"
    rc = main(
        [
            "villages",
            "--osm",
            haining,
            "--no-map",
            "--categories",
            "村卫生室",
            "--population-table",
            table,
            "--out",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["population"] == pytest.approx(5000, rel=1e-6)
    assert any("from the table 村.csv" in note and "5,000 people" in note for note in summary["notes"])


def test_boundary_csv_with_wkt_in_gbk(tmp_path):
    import shapely
    from pyproj import CRS

    from planner.sources import boundary_polygon

    box = shapely.box(116.34, 39.99, 116.36, 40.01)
    path = _write(tmp_path / "边界.csv", f'name,wkt\n学院路街道,"{box.wkt}"\n', "gbk")
    got = boundary_polygon(path, CRS.from_epsg(4326))
    assert got.equals_exact(box, 1e-12)
