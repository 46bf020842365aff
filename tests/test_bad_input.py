"""Bad input: every command and every kind of input file answers a mistake with one line on
stderr starting ``error:``, exit code 2, no traceback and nothing written.

Table-driven cases cover each command (audit, site, villages, review, batch, categories) and
each input (options, --config, categories TOML, homes, facilities, candidates, boundary, OSM,
plan, rule packs, --out); Hypothesis tries arbitrary values of the free-form ones. A
threshold past ``settings.max_travel_time_s`` is checked against an independent Dijkstra.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, SAMPLES
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from osm_fixtures import UTM, X0, Y0, write_osm
from pyproj import Transformer

from planner import settings
from planner._errors import InputError
from planner.cli import main
from planner.options import parse_minutes as _minutes

CAU = str(SAMPLES / "beijing_haidian_cau.osm.pbf")
HAINING = str(SAMPLES / "zhejiang_haining_zhouwangmiao.osm.pbf")
PLAN = str(SAMPLES / "plan_pass.geojson")
LON, LAT = 116.35, 40.0  # inside the CAU extract
_to_wgs = Transformer.from_crs(UTM, 4326, always_xy=True)
_QUICK = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


# --------------------------------------------------------------------------------------------
# input files


def _fc(*features) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def _feature(geometry, **props) -> dict:
    return {"type": "Feature", "properties": props, "geometry": geometry}


def _point(lon=LON, lat=LAT) -> dict:
    return {"type": "Point", "coordinates": [lon, lat]}


def _plan(crs: str | None = None, changes: dict | None = None) -> str:
    data = json.loads(Path(PLAN).read_text(encoding="utf-8"))
    if crs is not None:
        data["crs"] = {"type": "name", "properties": {"name": crs}}
    for (i, key), value in (changes or {}).items():
        data["features"][i]["properties"][key] = value
    return json.dumps(data)


_CAT = 'key = "k1"\nname_zh = "甲"\nname_en = "A"\nlevel = "5min"\n'
_MATCH = 'match = [{ amenity = "x" }]\n'
TEXT_FILES = {
    # homes: lon/lat missing, not numbers, out of range; counts not numbers, negative, infinite
    "homes_lon_empty.csv": f"lon,lat,population\n{LON},{LAT},100\n,{LAT},100\n",
    "homes_lat_nan.csv": f"lon,lat,population\n{LON},{LAT},100\n{LON},nan,100\n",
    "homes_lon_inf.csv": f"lon,lat,population\n{LON},{LAT},100\ninf,{LAT},100\n",
    "homes_lon_200.csv": f"lon,lat,population\n{LON},{LAT},100\n200,{LAT},100\n",
    "homes_lat_95.csv": f"lon,lat,population\n{LON},{LAT},100\n{LON},95,100\n",
    "homes_lat_neg_inf.csv": f"lon,lat,population\n{LON},-inf,100\n",
    "homes_lon_text.csv": f"lon,lat,population\nabc,{LAT},100\n",
    "homes_pop_inf.csv": f"lon,lat,population\n{LON},{LAT},100\n{LON},{LAT},inf\n",
    "homes_pop_neg.csv": f"lon,lat,population\n{LON},{LAT},-5\n",
    "homes_pop_nan.csv": f"lon,lat,population\n{LON},{LAT},nan\n",
    "homes_pop_empty.csv": f"lon,lat,population\n{LON},{LAT},\n",
    "homes_pop_text.csv": f"lon,lat,population\n{LON},{LAT},many\n",
    "homes_pop_huge.csv": f"lon,lat,population\n{LON},{LAT},1e308\n",
    "homes_hh_inf.csv": f"lon,lat,households\n{LON},{LAT},10\n{LON},{LAT},inf\n",
    "homes_elderly_neg.csv": f"lon,lat,population,elderly\n{LON},{LAT},10,-3\n",
    "homes_elderly_over.csv": f"lon,lat,population,elderly\n{LON},{LAT},10,30\n",
    "homes_elderly_text.csv": f"lon,lat,population,elderly\n{LON},{LAT},10,old\n",
    "homes_far_away.csv": f"lon,lat,population\n{LON},{LAT},100\n0,0,100\n",
    "homes_no_rows.csv": "lon,lat,population\n",
    "homes_no_lon.csv": "x1,lat,population\n1,2,3\n",
    "homes_no_people.csv": f"lon,lat,name\n{LON},{LAT},a\n",
    "homes.txt": "hello",
    "homes_pop_bool.geojson": _fc(_feature(_point(), population=True), _feature(_point(), population=False)),
    "homes_null_geom.geojson": _fc(_feature(_point(), population=10), _feature(None, population=10)),
    "homes_bad_coord.geojson": _fc(
        _feature(_point(), population=10), _feature(_point(500, 100), population=10)
    ),
    "homes_empty_geom.geojson": _fc(
        _feature(_point(), population=10), _feature({"type": "Polygon", "coordinates": []}, population=10)
    ),
    # facilities
    "fac_no_lon.csv": f"lon,lat,category\n{LON},{LAT},kindergarten\n,{LAT},kindergarten\n",
    "fac_lat_99.csv": f"lon,lat,category\n{LON},99,kindergarten\n",
    "fac_unknown.csv": f"lon,lat,category\n{LON},{LAT},spaceport\n",
    "fac_no_category.csv": f"lon,lat\n{LON},{LAT}\n",
    "fac_null_geom.geojson": _fc(_feature(None, category="kindergarten")),
    # candidates
    "cand_no_lon.csv": f"lon,lat\n{LON},{LAT}\nnan,{LAT}\n",
    "cand_lat_99.csv": f"lon,lat\n{LON},99\n",
    "cand_cap_neg.csv": f"lon,lat,capacity\n{LON},{LAT},-5\n",
    "cand_cap_empty.csv": f"lon,lat,capacity\n{LON},{LAT},\n",
    "cand_cap_text.csv": f"lon,lat,capacity\n{LON},{LAT},big\n",
    "cand_cap_zero.csv": f"lon,lat,capacity\n{LON},{LAT},0\n",
    "cand_no_rows.csv": "lon,lat\n",
    # categories files
    "cat_min_neg.toml": f"[[category]]\n{_CAT}minutes = -5\n{_MATCH}",
    "cat_min_text.toml": f'[[category]]\n{_CAT}minutes = "abc"\n{_MATCH}',
    "cat_min_zero.toml": f"[[category]]\n{_CAT}minutes = 0\n{_MATCH}",
    "cat_min_nan.toml": f"[[category]]\n{_CAT}minutes = nan\n{_MATCH}",
    "cat_min_inf.toml": f"[[category]]\n{_CAT}minutes = inf\n{_MATCH}",
    "cat_min_bool.toml": f"[[category]]\n{_CAT}minutes = true\n{_MATCH}",
    "cat_min_huge.toml": f"[[category]]\n{_CAT}minutes = 99999999999\n{_MATCH}",
    "cat_match_int.toml": f"[[category]]\n{_CAT}minutes = 5\nmatch = 5\n",
    "cat_match_str.toml": f'[[category]]\n{_CAT}minutes = 5\nmatch = "amenity"\n',
    "cat_match_list_int.toml": f"[[category]]\n{_CAT}minutes = 5\nmatch = [5]\n",
    "cat_match_value_int.toml": f"[[category]]\n{_CAT}minutes = 5\nmatch = [{{ amenity = 5 }}]\n",
    "cat_match_value_table.toml": f"[[category]]\n{_CAT}minutes = 5\nmatch = [{{ amenity = {{ a = 1 }} }}]\n",
    "cat_match_empty.toml": f"[[category]]\n{_CAT}minutes = 5\nmatch = []\n",
    "cat_match_empty_table.toml": f"[[category]]\n{_CAT}minutes = 5\nmatch = [{{}}]\n",
    "cat_match_bad_regex.toml": f'[[category]]\n{_CAT}minutes = 5\nmatch = [{{ name = "~(" }}]\n',
    "cat_name_int.toml": f'[[category]]\nkey = "k1"\nname_zh = 5\nname_en = "A"\nminutes = 5\n{_MATCH}',
    "cat_key_int.toml": f'[[category]]\nkey = 5\nname_zh = "a"\nname_en = "A"\nminutes = 5\n{_MATCH}',
    "cat_key_upper.toml": f'[[category]]\nkey = "Kinder Garten"\nname_zh = "a"\nname_en = "A"\nminutes = 5\n{_MATCH}',
    "cat_mode_list.toml": f'[[category]]\n{_CAT}minutes = 5\nmode = ["walk"]\n{_MATCH}',
    "cat_mode_fly.toml": f'[[category]]\n{_CAT}minutes = 5\nmode = "fly"\n{_MATCH}',
    "cat_exclude_int.toml": f"[[category]]\n{_CAT}minutes = 5\nexclude = 7\n{_MATCH}",
    "cat_level_int.toml": f'[[category]]\nkey = "k1"\nname_zh = "a"\nname_en = "A"\nminutes = 5\nlevel = 3\n{_MATCH}',
    "cat_confirmed_text.toml": f'[[category]]\n{_CAT}minutes = 5\nconfirmed = "no"\n{_MATCH}',
    "cat_unknown_field.toml": f"[[category]]\n{_CAT}minutes = 5\nminuts = 3\n{_MATCH}",
    "cat_two_targets.toml": f"[[category]]\n{_CAT}minutes = 5\ntarget_m = 300\n{_MATCH}",
    "cat_no_target.toml": f"[[category]]\n{_CAT}{_MATCH}",
    "cat_category_int.toml": "category = 5\n",
    "cat_category_strings.toml": "category = ['a']\n",
    "cat_exclude_all_int.toml": f"exclude_all = 5\n[[category]]\n{_CAT}minutes = 5\n{_MATCH}",
    "cat_key_twice.toml": f"[[category]]\n{_CAT}minutes = 5\n{_MATCH}[[category]]\n{_CAT}minutes = 9\n{_MATCH}",
    "cat_empty.toml": "",
    "cat_not_toml.toml": "[[category\n",
    # --config
    "cfg_mtt_nan_text.toml": 'max_travel_time_s = "nan"\n',
    "cfg_mtt_nan.toml": "max_travel_time_s = nan\n",
    "cfg_mtt_inf.toml": "max_travel_time_s = inf\n",
    "cfg_mtt_neg.toml": "max_travel_time_s = -1\n",
    "cfg_mtt_zero.toml": "max_travel_time_s = 0\n",
    "cfg_mtt_text.toml": 'max_travel_time_s = "abc"\n',
    "cfg_mtt_bool.toml": "max_travel_time_s = true\n",
    "cfg_mtt_list.toml": "max_travel_time_s = [1]\n",
    "cfg_mtt_table.toml": "[max_travel_time_s]\na = 1\n",
    "cfg_walk_zero.toml": "walk_speed_mps = 0\n",
    "cfg_walk_text.toml": 'walk_speed_mps = "fast"\n',
    "cfg_elderly_speed_zero.toml": "elderly_walk_speed_mps = 0\n",
    "cfg_minutes_text.toml": 'minutes = "abc"\n',
    "cfg_minutes_int.toml": "minutes = 5\n",
    "cfg_minutes_neg.toml": "minutes = [-5]\n",
    "cfg_minutes_huge.toml": "minutes = [5, 99999999]\n",
    "cfg_bike_int.toml": "bike_speed_kph = 5\n",
    "cfg_bike_text.toml": 'bike_speed_kph = { primary = "x" }\n',
    "cfg_bike_neg.toml": "bike_speed_kph = { primary = -1 }\n",
    "cfg_levels_neg.toml": "default_levels = { yes = -1 }\n",
    "cfg_levels_text.toml": 'default_levels = { yes = "x" }\n',
    "cfg_priority_text.toml": 'priority_weights = { elderly = "x" }\n',
    "cfg_priority_unknown.toml": "priority_weights = { aliens = 1 }\n",
    "cfg_progress_text.toml": 'progress = "yes"\n',
    "cfg_tiles_int.toml": "map_tiles = 5\n",
    "cfg_grid_zero.toml": "grid_spacing_m = 0\n",
    "cfg_grid_tiny.toml": "grid_spacing_m = 1e-9\n",
    "cfg_floor_zero.toml": "floor_area_per_person_m2 = 0\n",
    "cfg_household_zero.toml": "persons_per_household = 0\n",
    "cfg_share_2.toml": "elderly_share = 2\n",
    "cfg_workers_neg.toml": "sweep_workers = -1\n",
    "cfg_workers_float.toml": "sweep_workers = 1.5\n",
    "cfg_contract_5.toml": "contract_min_share = 5\n",
    "cfg_detour_half.toml": "off_network_detour = 0.5\n",
    "cfg_snap_nan.toml": "max_snap_m = nan\n",
    "cfg_unknown.toml": "walk_speeed = 1.2\n",
    "cfg_module_name.toml": "annotations = 1\n",
    "cfg_function.toml": "update = 1\n",
    "cfg_private.toml": "_BOUNDS = 1\n",
    "cfg_not_toml.toml": "a = = 1\n",
    # boundaries
    "bnd.csv": "lon,lat\n1,2\n",
    "bnd_point.geojson": _fc(_feature(_point())),
    "bnd_line.geojson": _fc(_feature({"type": "LineString", "coordinates": [[LON, LAT], [LON + 0.01, LAT]]})),
    "bnd_no_features.geojson": _fc(),
    "bnd_null_geom.geojson": _fc(_feature(None)),
    "bnd_far.geojson": _fc(
        _feature({"type": "Polygon", "coordinates": [[[0, 0], [0.01, 0], [0.01, 0.01], [0, 0]]]})
    ),
    "bnd_bowtie.geojson": _fc(
        _feature(
            {
                "type": "Polygon",
                "coordinates": [
                    [[116.33, 39.99], [116.36, 40.02], [116.36, 39.99], [116.33, 40.02], [116.33, 39.99]]
                ],
            }
        )
    ),
    "bnd_bad_coord.geojson": _fc(
        _feature({"type": "Polygon", "coordinates": [[[0, 0], [500, 0], [500, 100], [0, 0]]]})
    ),
    # OSM extracts
    "empty.osm": "",
    "not_osm.csv": "a,b\n1,2\n",
    "bad_values.osm": "<osm><node id='1' lat='abc' lon='x'/></osm>",
    "no_streets.osm": "<?xml version='1.0'?><osm version='0.6'><node id='1' lat='40' lon='116'>"
    "<tag k='amenity' v='school'/></node></osm>",
    # plans
    "plan_epsg_99999.geojson": _plan("EPSG:99999"),
    "plan_crs_nonsense.geojson": _plan("urn:ogc:def:crs:EPSG::nonsense"),
    "plan_households_nan.geojson": _plan(changes={(0, "households"): "NaN"}),
    "plan_households_huge.geojson": _plan(changes={(0, "households"): 1e308}),
    "plan_households_negative.geojson": _plan(changes={(0, "households"): -10}),
    "plan_floor_area_text.geojson": _plan(changes={(1, "floor_area_m2"): "big"}),
    "plan_category_int.geojson": _plan(changes={(1, "category"): 5}),
    "plan_role_unknown.geojson": _plan(changes={(1, "role"): "spaceship"}),
    "plan_households_true.geojson": _plan(changes={(0, "households"): True}),
    "plan_floor_area_false.geojson": _plan(changes={(1, "floor_area_m2"): False}),
    "plan.csv": "a\n1\n",
    "plan_empty_object.geojson": "{}",
    "plan_list.geojson": "[1, 2]",
    # rule packs
    "rules_bad.toml": "[[rule]]\nid = 5\n",
    "rules_not_toml.toml": "x = = 1\n",
    "rules_empty.toml": "",
    "rules_measure_table.toml": (
        Path(ROOT / "planner/rules/gb50180-2018.toml")
        .read_text(encoding="utf-8")
        .replace('measure = "', 'measure = { a = 1 }  # "', 1)
    ),
    # batch regions (a valid one: the cases check the command's own options)
    "regions.csv": f"name,osm\ncau,{CAU}\n",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("bad_inputs")
    paths = {}
    for name, text in TEXT_FILES.items():
        (folder / name).write_text(text, encoding="utf-8")
        paths[name] = str(folder / name)
    import geopandas as gpd
    import shapely

    two = gpd.GeoDataFrame({"population": [10.0]}, geometry=[shapely.Point(LON, LAT)], crs=4326)
    two.to_file(folder / "two_layers.gpkg", layer="a")
    two.assign(population=[99.0]).to_file(folder / "two_layers.gpkg", layer="b")
    paths["two_layers.gpkg"] = str(folder / "two_layers.gpkg")
    for name, data in {
        "binary.csv": b"\xff\xfe\x00\x01garbage",
        "binary.toml": b"\xff\xfe\x00",
        "homes_latin1.csv": "lon,lat,population,nom\n116.35,40.0,10,Café\n".encode("latin-1"),
        "garbage.osm.pbf": b"\x00\x00\x00\x0dOSMHeader" + b"\x00" * 100,
        "truncated.osm.pbf": Path(CAU).read_bytes()[:50000],
    }.items():
        (folder / name).write_bytes(data)
        paths[name] = str(folder / name)
    (folder / "a_folder").mkdir()
    paths["a_folder"] = str(folder / "a_folder")
    paths["missing"] = str(folder / "missing.csv")
    paths["missing.osm.pbf"] = str(folder / "missing.osm.pbf")
    (folder / "a_file").write_text("x", encoding="utf-8")
    paths["a_file"] = str(folder / "a_file")
    return paths


# --------------------------------------------------------------------------------------------
# the table: (case id, argv with {file} placeholders, text the one line must contain)

AUDIT = ["audit", "--osm", CAU, "--categories", "kindergarten", "--no-map", "--isochrones", "none"]
SITE = ["site", "--osm", CAU, "--category", "kindergarten", "--new", "1", "--no-map"]
VILLAGES = ["villages", "--osm", HAINING, "--no-map"]
REVIEW = ["review", "--plan", PLAN]
BATCH = ["batch", "--regions", "{regions.csv}", "--no-map"]

CASES: list[tuple[str, list[str], str]] = []


def _case(case_id: str, argv: list[str], expect: str) -> None:
    CASES.append((case_id, argv, expect))


for _name, _expect in {
    "homes_lon_empty.csv": "row 2",
    "homes_lat_nan.csv": "row 2",
    "homes_lon_inf.csv": "row 2",
    "homes_lon_200.csv": "row 2",
    "homes_lat_95.csv": "row 2",
    "homes_lat_neg_inf.csv": "row 1",
    "homes_lon_text.csv": "row 1",
    "homes_pop_inf.csv": "row 2",
    "homes_pop_neg.csv": "row 1",
    "homes_pop_nan.csv": "row 1",
    "homes_pop_empty.csv": "row 1",
    "homes_pop_text.csv": "row 1",
    "homes_pop_huge.csv": "row 1",
    "homes_hh_inf.csv": "row 2",
    "homes_elderly_neg.csv": "elderly",
    "homes_elderly_over.csv": "elderly",
    "homes_elderly_text.csv": "elderly",
    "homes_far_away.csv": "row 2",
    "homes_no_rows.csv": "no rows",
    "homes_no_lon.csv": "lon and lat",
    "homes_no_people.csv": "households",
    "homes.txt": "homes.txt",
    "homes_null_geom.geojson": "row 2",
    "homes_bad_coord.geojson": "row 2",
    "homes_empty_geom.geojson": "row 2",
    "binary.csv": "binary.csv",
    "a_folder": "a_folder",
    "missing": "not found",
    "two_layers.gpkg": "2 layers",
    "homes_latin1.csv": "GBK",
    "homes_pop_bool.geojson": "rows 1, 2",
}.items():
    _case(f"audit --homes {_name}", [*AUDIT, "--homes", f"{{{_name}}}"], _expect)
    _case(f"site --homes {_name}", [*SITE, "--homes", f"{{{_name}}}"], _expect)

for _name, _expect in {
    "fac_no_lon.csv": "row 2",
    "fac_lat_99.csv": "row 1",
    "fac_unknown.csv": "spaceport",
    "fac_no_category.csv": "category",
    "fac_null_geom.geojson": "row 1",
}.items():
    _case(f"audit --facilities {_name}", [*AUDIT, "--facilities", f"{{{_name}}}"], _expect)
    _case(f"site --facilities {_name}", [*SITE, "--facilities", f"{{{_name}}}"], _expect)
    if _name != "fac_unknown.csv":  # a rural extract knows other keys; 'spaceport' is unknown there too
        _case(f"villages --facilities {_name}", [*VILLAGES, "--facilities", f"{{{_name}}}"], _expect)

for _name, _expect in {
    "cand_no_lon.csv": "row 2",
    "cand_lat_99.csv": "row 1",
    "cand_cap_neg.csv": "capacity",
    "cand_cap_empty.csv": "capacity",
    "cand_cap_text.csv": "capacity",
    "cand_cap_zero.csv": "capacity",
    "cand_no_rows.csv": "no candidate",
}.items():
    _case(
        f"site --candidates {_name}", [*SITE, "--model", "pmedian", "--candidates", f"{{{_name}}}"], _expect
    )

for _name in [n for n in TEXT_FILES if n.startswith("cat_")] + ["binary.toml", "a_folder", "missing"]:
    _expect = Path(_name).name if _name not in ("missing",) else "not found"
    _case(
        f"audit --categories-file {_name}",
        [*AUDIT[:4], "all", "--no-map", "--categories-file", f"{{{_name}}}"],
        _expect,
    )
    _case(f"villages --categories-file {_name}", [*VILLAGES, "--categories-file", f"{{{_name}}}"], _expect)
    _case(
        f"categories --categories-file {_name}", ["categories", "--categories-file", f"{{{_name}}}"], _expect
    )
    _case(f"review --categories-file {_name}", [*REVIEW, "--categories-file", f"{{{_name}}}"], _expect)

for _name in [n for n in TEXT_FILES if n.startswith("cfg_")] + ["binary.toml", "a_folder", "missing"]:
    _case(f"--config {_name}", ["--config", f"{{{_name}}}", *AUDIT], "--config")
_case("--config after the command", [*AUDIT, "--config", "{cfg_mtt_nan.toml}"], "max_travel_time_s")

for _name, _expect in {
    "bnd.csv": "bnd.csv",
    "bnd_point.geojson": "polygon",
    "bnd_line.geojson": "polygon",
    "bnd_no_features.geojson": "polygon",
    "bnd_null_geom.geojson": "polygon",
    "bnd_far.geojson": "no streets",
    "bnd_bad_coord.geojson": "polygon",
    "a_folder": "a_folder",
    "missing": "not found",
    "homes.txt": "homes.txt",
    "two_layers.gpkg": "2 layers",
    "bnd_bowtie.geojson": "Self-intersection",
}.items():
    _case(f"audit --boundary {_name}", [*AUDIT, "--boundary", f"{{{_name}}}"], _expect)
    _case(f"site --boundary {_name}", [*SITE, "--boundary", f"{{{_name}}}"], _expect)

for _name in (
    "empty.osm",
    "not_osm.csv",
    "bad_values.osm",
    "no_streets.osm",
    "garbage.osm.pbf",
    "truncated.osm.pbf",
    "a_folder",
    "missing.osm.pbf",
):
    _case(f"audit --osm {_name}", ["audit", "--osm", f"{{{_name}}}"], Path(_name).stem.split(".")[0])
    _case(
        f"site --osm {_name}",
        ["site", "--osm", f"{{{_name}}}", "--category", "kindergarten", "--new", "1"],
        Path(_name).stem.split(".")[0],
    )
    _case(f"villages --osm {_name}", ["villages", "--osm", f"{{{_name}}}"], Path(_name).stem.split(".")[0])
    _case(f"review --osm {_name}", [*REVIEW, "--osm", f"{{{_name}}}"], Path(_name).stem.split(".")[0])

for _name, _expect in {
    "plan_epsg_99999.geojson": "EPSG:99999",
    "plan_crs_nonsense.geojson": "nonsense",
    "plan_households_nan.geojson": "households",
    "plan_households_huge.geojson": "households",
    "plan_households_negative.geojson": "households",
    "plan_floor_area_text.geojson": "floor_area_m2",
    "plan_category_int.geojson": "category",
    "plan_role_unknown.geojson": "spaceship",
    "plan.csv": "plan.csv",
    "plan_households_true.geojson": "households = true",
    "plan_floor_area_false.geojson": "floor_area_m2 = false",
    "plan_empty_object.geojson": "plan_empty_object",
    "plan_list.geojson": "plan_list",
    "a_folder": "a_folder",
    "missing": "not found",
}.items():
    _case(f"review --plan {_name}", ["review", "--plan", f"{{{_name}}}"], _expect)

for _rules, _expect in {
    "{rules_bad.toml}": "rules_bad",
    "{rules_not_toml.toml}": "rules_not_toml",
    "{rules_empty.toml}": "rules_empty",
    "{rules_measure_table.toml}": "rules_measure_table",
    "nope": "nope",
    "": "--rules",
    ",": "--rules",
    "gb50180-2018,nope": "nope",
    "../../etc/passwd": "passwd",
}.items():
    _case(f"review --rules {_rules!r}", [*REVIEW, "--rules", _rules], _expect)

for _m in ["abc", "0", "-5", "nan", "inf", "-inf", "99999999999999999999", "1441", "", ",", "5;10", "0x10"]:
    _case(f"audit --minutes {_m!r}", [*AUDIT, "--minutes", _m], "--minutes")
    _case(f"site --minutes {_m!r}", [*SITE, "--minutes", _m], "--minutes")
    _case(f"villages --minutes {_m!r}", [*VILLAGES, "--minutes", _m], "--minutes")
_case("audit --minutes 5.5", [*AUDIT, "--minutes", "5.5"], "--minutes")
for _c in [",", " ", ",,,", "nope", "kindergarten,nope"]:
    _case(f"audit --categories {_c!r}", [*AUDIT[:4], _c, "--no-map"], "--categories")
    _case(f"villages --categories {_c!r}", [*VILLAGES, "--categories", _c], "--categories")
for _mode in ["fly", "", "WALK"]:
    _case(f"audit --mode {_mode!r}", [*AUDIT, "--mode", _mode], "--mode")
    _case(f"site --mode {_mode!r}", [*SITE, "--mode", _mode], "--mode")
_case("audit --isochrones x", [*AUDIT, "--isochrones", "x"], "--isochrones")
for _n in ["0", "-1", "abc", "1.5", "99999999999999999999"]:
    _case(f"site --new {_n}", [*SITE[:5], "--new", _n, "--no-map"], "--new")
_case("site without --new", [*SITE[:5], "--no-map"], "--new")
_case("site lscp --new 2", [*SITE[:5], "--model", "lscp", "--new", "2", "--no-map"], "--new")
for _cap in ["0", "-1", "nan", "inf", "-inf", "abc"]:
    _case(f"site --capacity {_cap}", [*SITE, "--model", "pmedian", "--capacity", _cap], "--capacity")
for _tl in ["0", "-1", "nan", "abc"]:
    _case(f"site --time-limit {_tl}", [*SITE, "--time-limit", _tl], "--time-limit")
_case("site --method x", [*SITE, "--method", "x"], "--method")
_case("site --model x", [*SITE, "--model", "x"], "--model")
_case("site --category nope", ["site", "--osm", CAU, "--category", "nope", "--new", "1"], "--category")
for _t in ["0", "-1", "1.5", "nan", "inf", "abc"]:
    _case(f"villages --target {_t}", [*VILLAGES, "--target", _t], "--target")
for _town in ["abc", "1,2,3", "200,0", "nan,nan", "inf,0", "116", "116.35,", ",40", "116.35;40.0"]:
    _case(f"villages --town {_town!r}", [*VILLAGES, "--town", _town], "--town")
_case("demo --region nope", ["demo", "--region", "nope"], "--region")
_case("audit --osm ''", ["audit", "--osm", ""], "--osm")
_case("unknown command", ["frobnicate"], "frobnicate")
_case("unknown option", [*AUDIT, "--frob"], "--frob")
_case("--out missing its value", ["audit", "--out"], "--out")
for _tag, _extra, _expect in [
    (
        "--minutes abc (site)",
        ["--task", "site", "--category", "kindergarten", "--new", "1", "--minutes", "abc"],
        "--minutes",
    ),
    ("--minutes nan (villages)", ["--task", "villages", "--minutes", "nan"], "--minutes"),
    ("--minutes 0 (audit)", ["--minutes", "0"], "--minutes"),
    ("--minutes abc (audit)", ["--minutes", "abc"], "--minutes"),
    ("--task x", ["--task", "x"], "--task"),
    ("--new -1", ["--task", "site", "--category", "kindergarten", "--new", "-1"], "--new"),
    ("--new 0", ["--task", "site", "--category", "kindergarten", "--new", "0"], "--new"),
    ("--target 2", ["--task", "villages", "--target", "2"], "--target"),
    ("--mode fly", ["--mode", "fly"], "--mode"),
    ("--categories ,", ["--categories", ","], "--categories"),
    ("--categories nope", ["--categories", "nope"], "nope"),
    ("--isochrones x", ["--isochrones", "x"], "--isochrones"),
    ("--model x", ["--task", "site", "--category", "kindergarten", "--new", "1", "--model", "x"], "--model"),
    ("--categories-file bad", ["--categories-file", "{cat_min_neg.toml}"], "cat_min_neg"),
    ("--workers abc", ["--workers", "abc"], "--workers"),
    ("--scheduler nothttp", ["--scheduler", "nothttp"], "--scheduler"),
    ("--scheduler tcp://host", ["--scheduler", "tcp://host"], "--scheduler"),
    ("--scheduler foo://x:1", ["--scheduler", "foo://x:1"], "--scheduler"),
]:
    _case(f"batch {_tag}", [*BATCH, *_extra], _expect)


def _fill(text: str, files: dict[str, str]) -> str:
    """``{name}`` → the path of that input file."""
    return re.sub(r"\{([^{}]+)\}", lambda m: files[m.group(1)], text)


def _run(argv: list[str], capsys) -> tuple[int, list[str], str]:
    rc = main(argv)
    err = capsys.readouterr().err
    return rc, err.splitlines(), err


def _assert_one_line(rc: int, lines: list[str], err: str, expect: str = "") -> None:
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert expect in lines[0], (expect, lines[0])


@pytest.mark.parametrize(("case_id", "argv", "expect"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_one_line_exit_2_nothing_written(case_id, argv, expect, files, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [_fill(a, files) for a in argv]
    expect = _fill(expect, files)
    command = argv[2] if argv[0] == "--config" else argv[0]
    if "--out" not in argv and command not in ("categories", "frobnicate"):
        argv = [*argv, "--out", str(out)]
    before = sorted(os.listdir(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc, lines, err = _run(argv, capsys)
    _assert_one_line(rc, lines, err, expect)
    assert [str(w.message) for w in caught] == []  # a warning is one more line on the user's screen
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == before  # no scratch folder left behind


def test_the_table_covers_every_command_and_input():
    flags = {a for _, argv, _ in CASES for a in argv if a.startswith("--")}
    commands = {argv[0] if not argv[0].startswith("--") else argv[2] for _, argv, _ in CASES}
    assert {"audit", "site", "villages", "review", "batch", "categories", "demo"} <= commands
    assert {
        "--homes",
        "--facilities",
        "--candidates",
        "--categories-file",
        "--config",
        "--boundary",
        "--osm",
        "--plan",
        "--rules",
        "--minutes",
        "--capacity",
        "--new",
        "--town",
        "--target",
        "--mode",
    } <= flags
    assert len(CASES) >= 300


# --------------------------------------------------------------------------------------------
# --out


@pytest.mark.parametrize("command", ["audit", "site", "villages", "review"])
def test_out_that_cannot_be_an_output_folder(command, files, tmp_path, capsys):
    argv = {"audit": AUDIT, "site": SITE, "villages": VILLAGES, "review": REVIEW}[command]
    inside = tmp_path / "inputs"
    inside.mkdir()
    homes = inside / "homes.csv"
    homes.write_text(f"lon,lat,population\n{LON},{LAT},100\n", encoding="utf-8")
    for out, expect in [(files["a_file"], "a_file"), (files["a_file"] + "/sub", "a_file"), ("", "--out")]:
        rc, lines, err = _run([*argv, "--out", out], capsys)
        _assert_one_line(rc, lines, err, expect)
    assert Path(files["a_file"]).read_text(encoding="utf-8") == "x"
    if command in ("audit", "site"):  # an output folder holding one of the run's inputs
        rc, lines, err = _run([*argv, "--homes", str(homes), "--out", str(inside)], capsys)
        _assert_one_line(rc, lines, err, "--out")
        assert sorted(p.name for p in inside.iterdir()) == ["homes.csv"]


def _unwritable_folder():
    """A folder this process cannot write in, and how to run as a user for whom that holds."""
    if os.geteuid() != 0:
        folder = Path(tempfile.mkdtemp())
        folder.chmod(0o555)
        return folder, []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: no folder is unwritable")
    folder = Path(tempfile.mkdtemp(dir="/tmp"))
    folder.chmod(0o755)  # others may enter, not write
    return folder, [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_out_in_a_read_only_folder_subprocess():
    folder, prefix = _unwritable_folder()
    try:
        out = folder / "out"
        proc = subprocess.run(
            [*prefix, sys.executable, "-m", "planner", *AUDIT, "--out", str(out)],
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            env={**os.environ, "HOME": "/tmp"},
        )
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: --out") and "write" in lines[0], proc.stderr
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


def test_out_on_a_read_only_filesystem(tmp_path, capsys):
    if not Path("/sys/kernel").is_dir() or not _sys_refuses_writes():
        pytest.skip("needs /sys mounted as a filesystem that refuses new folders")
    rc, lines, err = _run([*AUDIT, "--out", "/sys/planner-out"], capsys)
    _assert_one_line(rc, lines, err, "/sys")


def _sys_refuses_writes() -> bool:
    probe = Path("/sys") / f"planner-probe-{uuid.uuid4().hex}"
    try:
        probe.mkdir()
    except OSError:
        return True
    probe.rmdir()
    return False


def test_full_disk_is_one_line_and_nothing_half_written(monkeypatch, tmp_path, capsys):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "coverage.csv"))

    monkeypatch.setattr(pd.DataFrame, "to_csv", no_space)
    out = tmp_path / "out"
    rc, lines, err = _run([*AUDIT, "--out", str(out)], capsys)
    _assert_one_line(rc, lines, err, "space")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the scratch folder is gone too


def test_full_disk_on_a_real_small_filesystem(tmp_path):
    """A 300 kB tmpfs: the audit's outputs do not fit. Needs the right to mount (root)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)], capture_output=True, check=False
    ).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "planner", "-q", *AUDIT[:4], "all", "--out", str(mnt / "out")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "space" in lines[0], proc.stderr
        assert list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True, check=False)


def test_a_real_bug_still_shows_its_traceback(monkeypatch, tmp_path):
    """main() turns user mistakes into one line, not every exception."""
    import planner.audit

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(planner.audit, "audit", broken)
    with pytest.raises(ZeroDivisionError):
        main([*AUDIT, "--out", str(tmp_path / "out")])


# --------------------------------------------------------------------------------------------
# the real process: stderr as a user sees it (warnings included), exit code of the console


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["--homes", "{homes_lon_empty.csv}"], "row 2"),
        (["--boundary", "{bnd.csv}"], "bnd.csv"),
        (["--config", "{cfg_mtt_nan_text.toml}"], "max_travel_time_s"),
        (["--frob"], "--frob"),
    ],
)
def test_subprocess_one_line(args, expect, files, tmp_path):
    args = [_fill(a, files) for a in args]
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "planner", *AUDIT, *args, "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], proc.stderr
    assert not out.exists()


def test_subprocess_review_plan_crs_unknown(files, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "planner",
            "review",
            "--plan",
            files["plan_epsg_99999.geojson"],
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "EPSG:99999" in proc.stderr, proc.stderr


# --------------------------------------------------------------------------------------------
# properties: arbitrary values are accepted with their meaning, or refused in one line


_minute_texts = st.one_of(
    st.text(max_size=12),
    st.lists(
        st.one_of(st.integers(-5, 3000), st.sampled_from(["nan", "inf", "", " ", "5.5", "1e3", "abc"])),
        max_size=5,
    ).map(lambda xs: ",".join(str(x) for x in xs)),
)


@hsettings(max_examples=400, **_QUICK)
@given(_minute_texts)
def test_minutes_text_parses_to_its_meaning_or_one_line(text):
    parts = [p for p in text.split(",") if p.strip()]
    try:
        wanted = sorted({int(p) for p in parts})
    except ValueError:
        wanted = None
    try:
        got = _minutes(text)
    except InputError as err:
        assert "\n" not in str(err) and str(err).startswith("--minutes")
        assert (
            wanted is None or not wanted or min(wanted) <= 0 or max(wanted) > settings.max_threshold_minutes
        )
        return
    assert list(got) == wanted and got[0] > 0 and got[-1] <= settings.max_threshold_minutes


@pytest.fixture(scope="module")
def line_region(tmp_path_factory):
    """A 12 km footway with nodes every 500 m, a facility at its west end and five homes on it
    at 1, 3, 5, 8 and 11 km: 15, 45, 76, 121 and 167 minutes at 1.1 m/s."""
    folder = tmp_path_factory.mktemp("line")
    xs = np.arange(0, 12_001, 500.0)
    nodes = {i + 1: (float(x), 0.0) for i, x in enumerate(xs)}
    write_osm(
        folder / "line.osm",
        nodes,
        [(1, list(nodes), {"highway": "footway"})],
        node_tags={1: {"amenity": "test_facility", "name": "F"}},
    )
    (folder / "cats.toml").write_text(
        '[[category]]\nkey = "test_facility"\nname_zh = "测试"\nname_en = "Test"\nminutes = 15\n'
        'level = "15min"\nmatch = [{ amenity = "test_facility" }]\n',
        encoding="utf-8",
    )
    home_x = np.array([1000.0, 3000.0, 5000.0, 8000.0, 11000.0])
    lon, lat = _to_wgs.transform(X0 + home_x, np.full(len(home_x), Y0))
    pd.DataFrame({"lon": lon, "lat": lat, "population": [10.0, 20.0, 30.0, 40.0, 50.0]}).to_csv(
        folder / "homes.csv", index=False
    )
    return {
        "osm": str(folder / "line.osm"),
        "cats": str(folder / "cats.toml"),
        "homes": str(folder / "homes.csv"),
        "node_x": xs,
        "home_x": home_x,
        "pop": np.array([10.0, 20.0, 30.0, 40.0, 50.0]),
    }


def _independent_times(line) -> np.ndarray:
    """scipy's Dijkstra on the line as written (edge time = length / walking speed)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    x = line["node_x"]
    n = len(x)
    w = np.diff(x) / settings.walk_speed_mps
    graph = coo_matrix(
        (np.r_[w, w], (np.r_[np.arange(n - 1), np.arange(1, n)], np.r_[np.arange(1, n), np.arange(n - 1)])),
        shape=(n, n),
    ).tocsr()
    node_t = dijkstra(graph, indices=0)
    return node_t[np.searchsorted(x, line["home_x"])]


def test_threshold_beyond_max_travel_time_raises_the_limit(line_region, tmp_path, capsys):
    """Coverage at 90 and 180 minutes is measured, not capped at the 60-minute value."""
    assert settings.max_travel_time_s == 3600.0
    out = tmp_path / "out"
    rc = main(
        [
            "audit",
            "--osm",
            line_region["osm"],
            "--categories-file",
            line_region["cats"],
            "--categories",
            "test_facility",
            "--homes",
            line_region["homes"],
            "--minutes",
            "60,90,180",
            "--isochrones",
            "none",
            "--no-map",
            "--out",
            str(out),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    expected_t = _independent_times(line_region)
    assert expected_t[-1] > 3600 * 2.5  # the far home is beyond the default limit
    cov = pd.read_csv(out / "coverage.csv")
    cov = cov[(cov["category"] == "test_facility") & cov["minutes"].isin([60, 90, 180])].set_index("minutes")
    pop = line_region["pop"]
    for m in (60, 90, 180):
        within = pop[expected_t <= 60 * m].sum()
        assert cov.loc[m, "population_within"] == round(within)
        assert cov.loc[m, "population_pct"] == round(100 * within / pop.sum(), 1)
    # 60 min: homes at 1 and 3 km (30 of 150 people); 90: + 5 km; 180: everyone.
    assert list(cov.loc[[60, 90, 180], "population_pct"]) == [20.0, 40.0, 100.0]
    import geopandas as gpd

    homes = gpd.read_file(out / "homes.gpkg", layer="homes").sort_values("population")
    assert homes["test_facility_time_s"].to_numpy() == pytest.approx(
        expected_t, rel=1e-6
    )  # float32 edge times


def test_sweep_limit_follows_the_largest_threshold():
    from planner.network import sweep_limit_s

    margin = settings.sweep_margin_s
    assert sweep_limit_s(5, 10, 15) == 900.0 + margin
    assert sweep_limit_s(5, 10, 15, full_times=True) == settings.max_travel_time_s
    assert sweep_limit_s(15, 90) == sweep_limit_s(15, 90, full_times=True) == 5400.0 + margin
    assert sweep_limit_s(180) == 10800.0 + margin
    for bad in (0, -5, math.nan, math.inf, settings.max_threshold_minutes + 1):
        with pytest.raises(InputError):
            sweep_limit_s(15, bad)


def test_site_coverage_at_90_minutes_is_not_capped(line_region):
    """Siting at a 90-minute standard: 'before' counts the homes within 90 minutes of the
    existing facility (1, 3 and 5 km: 60 of 150 people), not those within the 60-minute default."""
    from planner.demand import homes_from_file
    from planner.siting import site
    from planner.sources import load_region

    region = load_region(line_region["osm"])
    homes = homes_from_file(line_region["homes"], region.crs, region=region)
    result = site(
        region,
        "test_facility",
        model="mclp",
        new=1,
        minutes=90,
        homes=homes,
        categories_file=line_region["cats"],
        elderly_pace=False,
    )
    before = result.homes.sort_values("population")["time_before_s"].to_numpy()
    expected = _independent_times(line_region)
    assert before[:3] == pytest.approx(expected[:3], rel=1e-6)
    assert np.isnan(before[3:]).all()  # 121 and 167 minutes: beyond the 90-minute sweep
    ba = result.before_after.set_index("minutes")
    assert ba.loc[15, "population_share_before"] == 0.0  # the nearest home is 15.2 minutes away
    assert ba.loc[90, "population_share_before"] == pytest.approx(60 / 150)


@hsettings(max_examples=12, **_QUICK)
@given(_minute_texts)
def test_audit_minutes_through_main(line_region, tmp_path_factory, capsys, text):
    out = tmp_path_factory.mktemp("m") / "out"
    rc = main(
        [
            "audit",
            "--osm",
            line_region["osm"],
            "--categories-file",
            line_region["cats"],
            "--categories",
            "test_facility",
            "--homes",
            line_region["homes"],
            "--minutes",
            text,
            "--isochrones",
            "none",
            "--no-map",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    if rc == 2:
        assert len(err.splitlines()) == 1 and err.startswith("error: ") and "--minutes" in err, err
        assert not out.exists()
        return
    assert rc == 0, err
    cov = pd.read_csv(out / "coverage.csv")
    shown = sorted(cov.loc[cov["category"] == "test_facility", "minutes"].unique())
    assert set(_minutes(text)) <= set(shown)
    times = _independent_times(line_region)
    for m in _minutes(text):
        pct = float(
            cov.loc[(cov["category"] == "test_facility") & (cov["minutes"] == m), "population_pct"].iloc[0]
        )
        assert pct == round(100 * line_region["pop"][times <= 60 * m].sum() / line_region["pop"].sum(), 1)


@hsettings(max_examples=300, **_QUICK)
@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10, 10**6))
def test_site_minutes_accepted_as_given_or_refused(value):
    from planner.siting import check_options

    try:
        got = check_options("mclp", 1, value)
    except InputError as err:
        assert "\n" not in str(err)
        assert not (math.isfinite(value) and 0 < value <= settings.max_threshold_minutes)
        return
    assert got == float(value) and 0 < got <= settings.max_threshold_minutes


_toml_scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=8),
)
_toml_values = st.one_of(
    _toml_scalars,
    st.lists(_toml_scalars, max_size=3),
    st.dictionaries(st.text(min_size=1, max_size=6), _toml_scalars, max_size=3),
)


def _toml(value) -> str:
    """A value in TOML syntax (a small writer for the values Hypothesis draws)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return (
        "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)} = {_toml(v)}" for k, v in value.items()) + "}"
    )


_SETTING_NAMES = sorted(k for k in settings.__annotations__)


@hsettings(max_examples=600, **_QUICK)
@given(st.sampled_from([*_SETTING_NAMES, "walk_speeed", "update", "_BOUNDS", "annotations"]), _toml_values)
def test_config_values_keep_their_type_or_are_refused(key, value):
    saved = {k: getattr(settings, k) for k in _SETTING_NAMES}
    try:
        try:
            settings.update({key: value})
        except InputError as err:
            assert "\n" not in str(err) and str(err).startswith("config: ")
            assert {k: getattr(settings, k) for k in saved} == saved  # nothing applied
            return
        new, old = getattr(settings, key), saved[key]
        if isinstance(old, bool):
            assert new is value
        elif isinstance(old, (int, float)):
            assert type(new) is type(old) and math.isfinite(new) and new == type(old)(value)
            assert new >= 0
        elif isinstance(old, dict):
            assert set(old) <= set(new) and all(math.isfinite(v) and v >= 0 for v in new.values())
        elif isinstance(old, tuple):
            assert new == tuple(value) and all(0 < m <= settings.max_threshold_minutes for m in new)
        else:
            assert isinstance(new, str) and new == value
    finally:
        for k, v in saved.items():
            setattr(settings, k, v)


@hsettings(max_examples=40, **_QUICK)
@given(
    st.sampled_from(
        [
            "max_travel_time_s",
            "walk_speed_mps",
            "minutes",
            "grid_spacing_m",
            "progress",
            "bike_speed_kph",
            "elderly_share",
        ]
    ),
    _toml_values,
)
def test_config_file_through_main(tmp_path_factory, capsys, key, value):
    cfg = tmp_path_factory.mktemp("cfg") / "my.toml"
    cfg.write_text(f"{key} = {_toml(value)}\n", encoding="utf-8")
    saved = {k: getattr(settings, k) for k in _SETTING_NAMES}
    try:
        rc = main(["--config", str(cfg), "categories"])
    finally:
        for k, v in saved.items():
            setattr(settings, k, v)
    err = capsys.readouterr().err
    assert rc in (0, 2), err
    if rc == 2:
        assert len(err.splitlines()) == 1 and err.startswith(f"error: --config {cfg}"), err
    else:
        assert err == ""


@hsettings(max_examples=120, **_QUICK)
@given(minutes=_toml_values, match=_toml_values, name=_toml_values)
def test_category_fields_mean_what_they_say_or_are_refused(tmp_path_factory, capsys, minutes, match, name):
    from planner.categories import load_categories

    path = tmp_path_factory.mktemp("cat") / f"{uuid.uuid4().hex}.toml"
    path.write_text(
        f'[[category]]\nkey = "k1"\nname_zh = {_toml(name)}\nname_en = "A"\nminutes = {_toml(minutes)}\n'
        f"match = {_toml(match)}\n",
        encoding="utf-8",
    )
    rc = main(["categories", "--categories-file", str(path)])
    err = capsys.readouterr().err
    if rc == 2:
        assert len(err.splitlines()) == 1 and err.startswith("error: ") and path.name in err, err
        return
    assert rc == 0, err
    cat = load_categories(path)["k1"]
    assert isinstance(minutes, (int, float)) and not isinstance(minutes, bool)
    assert cat.minutes == float(minutes) and 0 < cat.minutes <= settings.max_threshold_minutes
    assert isinstance(name, str) and cat.name_zh == name
    assert isinstance(match, list) and match and all(isinstance(t, dict) and t for t in match)
    assert cat.match == tuple(match)


_coordinate_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-400, 400).map(str),
    st.sampled_from(["", " ", "abc", "1e400", "-0", "nan", "NaN", "inf", "116.35", "40.0"]),
)


@hsettings(max_examples=300, **_QUICK)
@given(lon=_coordinate_text, lat=_coordinate_text)
def test_lon_lat_values_are_placed_exactly_or_refused(tmp_path_factory, lon, lat):
    from planner.demand import homes_from_file

    path = tmp_path_factory.mktemp("ll") / "homes.csv"
    path.write_text(f'lon,lat,population\n{LON},{LAT},5\n"{lon}","{lat}",7\n', encoding="utf-8")
    try:
        homes = homes_from_file(path, 4326)
    except InputError as err:
        assert "\n" not in str(err) and "row 2" in str(err)
        x, y = pd.to_numeric(pd.Series([lon, lat]), errors="coerce")
        assert not (np.isfinite(x) and np.isfinite(y) and abs(x) <= 180 and abs(y) <= 90)
        return
    x, y = float(lon), float(lat)
    assert abs(x) <= 180 and abs(y) <= 90
    assert homes.geometry.iloc[1].x == pytest.approx(x, abs=1e-12) and homes.geometry.iloc[
        1
    ].y == pytest.approx(y, abs=1e-12)
    assert list(homes["population"]) == [5.0, 7.0]


def test_implausible_posted_speeds_count_as_absent():
    """OSM maxspeed=0 (closed, or a mapping slip) or 99999 would make a road impassable or
    instant; they fall back to the class speed like a tag that is not a number."""
    from planner.network import speeds_mps

    ways = pd.DataFrame({"highway": ["primary"] * 6, "maxspeed": ["0", "60", "99999", "abc", None, "30 mph"]})
    kph = speeds_mps(ways, "drive", 1.1) * 3.6
    default = settings.drive_speed_kph["primary"]
    assert kph == pytest.approx([default, 60.0, default, default, default, 30 * 1.609344])


_SEEDS = {
    "homes": (".csv", f"lon,lat,population\n{LON},{LAT},10\n".encode()),
    "boundary": (
        ".geojson",
        _fc(
            _feature(
                {
                    "type": "Polygon",
                    "coordinates": [[[116.3, 39.9], [116.4, 39.9], [116.4, 40.1], [116.3, 39.9]]],
                }
            )
        ).encode(),
    ),
    "categories": (".toml", f"[[category]]\n{_CAT}minutes = 5\n{_MATCH}".encode()),
    "config": (".toml", b"walk_speed_mps = 1.2\nminutes = [5, 10]\n"),
    "plan": (".geojson", Path(PLAN).read_bytes()),
}


def _command(role: str, path: str, line_region) -> list[str]:
    audit = ["audit", "--osm", CAU, "--categories", "kindergarten", "--no-map", "--isochrones", "none"]
    return {
        "homes": [
            "audit",
            "--osm",
            line_region["osm"],
            "--categories-file",
            line_region["cats"],
            "--categories",
            "test_facility",
            "--no-map",
            "--isochrones",
            "none",
            "--homes",
            path,
        ],
        "boundary": [*audit, "--boundary", path],
        "categories": ["categories", "--categories-file", path],
        "config": ["--config", path, "categories"],
        "plan": ["review", "--plan", path],
    }[role]


@hsettings(max_examples=60, **_QUICK)
@given(role=st.sampled_from(sorted(_SEEDS)), data=st.data())
def test_damaged_input_files_never_crash(line_region, tmp_path_factory, capsys, role, data):
    """Any input file with bytes flipped, cut or inserted: the run succeeds or says one line."""
    suffix, seed = _SEEDS[role]
    cut = data.draw(st.integers(0, len(seed)), label="cut")
    damaged = data.draw(
        st.sampled_from(
            [
                seed[:cut],
                seed[:cut] + data.draw(st.binary(max_size=8)) + seed[cut:],
                seed[:cut] + seed[cut + 1 :],
                data.draw(st.binary(max_size=40)),
            ]
        ),
        label="bytes",
    )
    folder = tmp_path_factory.mktemp("damaged")
    path = folder / f"input{suffix}"
    path.write_bytes(damaged)
    out = folder / "out"
    argv = _command(role, str(path), line_region)
    saved = {k: getattr(settings, k) for k in _SETTING_NAMES}
    try:
        rc = main(
            [*argv, "--out", str(out)] if argv[-1] != "categories" and argv[0] != "categories" else argv
        )
    finally:
        for k, v in saved.items():
            setattr(settings, k, v)
    err = capsys.readouterr().err
    if role == "plan" and rc == 1:  # a plan that reads but fails a rule
        rc = 0
    assert rc in (0, 2), err
    if rc == 2:
        assert len(err.splitlines()) == 1 and err.startswith("error: "), err
        assert not out.exists()


def test_python_api_refuses_homes_facilities_and_candidates_without_a_place(line_region):
    """GeoDataFrames given from Python get the same check as files: no silent (0, 0)."""
    import geopandas as gpd
    import shapely

    from planner.audit import audit
    from planner.siting import site
    from planner.sources import load_region

    region = load_region(line_region["osm"])
    cats = line_region["cats"]
    good = shapely.Point(X0 + 1000, Y0)
    homes = gpd.GeoDataFrame(
        {"population": [10.0, 10.0]}, geometry=[good, shapely.Point(np.nan, Y0)], crs=UTM
    )
    with pytest.raises(InputError, match="homes: row 2"):
        audit(region, categories="test_facility", categories_file=cats, homes=homes, with_isochrones=False)
    extra = gpd.GeoDataFrame(
        {"facility_id": ["a"], "category": ["test_facility"], "name": [None]}, geometry=[None], crs=UTM
    )
    with pytest.raises(InputError, match="extra facilities: row 1"):
        audit(
            region,
            categories="test_facility",
            categories_file=cats,
            homes=homes.iloc[:1],
            extra_facilities=extra,
            with_isochrones=False,
        )
    candidates = gpd.GeoDataFrame({"candidate_id": ["c"]}, geometry=[shapely.Point()], crs=UTM)
    with pytest.raises(InputError, match="candidates: row 1"):
        site(
            region, "test_facility", new=1, homes=homes.iloc[:1], candidates=candidates, categories_file=cats
        )


def test_terminal_control_characters_in_data_are_shown_escaped(tmp_path, capsys):
    """A name with ANSI escapes or a bidi override (from a categories file, OSM or a plan) and a
    file name with a newline cannot recolour the terminal or fake a second line."""
    cats = tmp_path / "cats.toml"
    cats.write_text(
        '[[category]]\nkey = "k1"\nname_zh = "\\u001b[2J\\u001b[31m假"\nname_en = "A\\u202eB\\r"\n'
        'minutes = 5\nmatch = [{ amenity = "x" }]\n',
        encoding="utf-8",
    )
    assert main(["categories", "--categories-file", str(cats)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\r" not in out
    assert "\\x1b[2J\\x1b[31m假" in out and "A\\u202eB\\r" in out
    odd = tmp_path / "homes\n\x1b[1Aerror: fake.csv"
    odd.write_text("lon,lat,population\n,40,10\n", encoding="utf-8")
    rc, lines, err = _run([*AUDIT, "--homes", str(odd), "--out", str(tmp_path / "o")], capsys)
    _assert_one_line(rc, lines, err, "row 1")
    assert "\x1b" not in err and "\\x1b[1A" in err
