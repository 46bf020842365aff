"""Offline maps: self-contained HTML, colours, and a real load in headless Chromium."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point

from planner import maps, settings
from planner.maps import plain_text

try:  # tests/ may or may not be a package
    from . import browser
except ImportError:
    import browser

CRS_UTM = "EPSG:32648"  # Chengdu
X0, Y0 = 404_000.0, 3_393_000.0
MINUTES = (5, 10, 15)
CATEGORIES = [
    {"key": "kindergarten", "name_zh": "幼儿园", "name_en": "Kindergarten", "minutes": 5},
    {"key": "clinic", "name_zh": "社区卫生服务站", "name_en": "Clinic", "minutes": 15},
]
needs_chromium = pytest.mark.skipif(not browser.chromium_available(), reason=browser.SKIP_REASON)


def _audit(n_side: int = 8) -> dict:
    """A small synthetic audit in EPSG:4326: homes on a grid, two categories, roads."""
    rng = np.random.default_rng(1)
    xs, ys = np.meshgrid(np.arange(n_side) * 90.0 + X0, np.arange(n_side) * 90.0 + Y0)
    xs, ys = xs.ravel() + rng.normal(0, 8, xs.size), ys.ravel() + rng.normal(0, 8, ys.size)
    homes = gpd.GeoDataFrame(
        {"home_id": [f"way/{100 + i}" for i in range(xs.size)], "population": rng.integers(10, 400, xs.size)},
        geometry=gpd.points_from_xy(xs, ys),
        crs=CRS_UTM,
    )
    facilities = gpd.GeoDataFrame(
        {
            "facility_id": ["node/1", "node/2", "way/3"],
            "category": ["kindergarten", "kindergarten", "clinic"],
            "name": ["阳光幼儿园", None, "玉林社区卫生服务站 <A&B>"],
        },
        geometry=[Point(X0 + 100, Y0 + 100), Point(X0 + 550, Y0 + 500), Point(X0 + 300, Y0 + 300)],
        crs=CRS_UTM,
    )
    iso_rows = []
    for cat in CATEGORIES:
        fac = facilities[facilities["category"] == cat["key"]]
        dist = np.stack([homes.distance(p).to_numpy() for p in fac.geometry])
        seconds = dist.min(axis=0) * 1.3 / 1.1
        seconds[dist.min(axis=0) > 450] = np.nan  # some homes reach nothing
        nearest = fac["facility_id"].to_numpy()[dist.argmin(axis=0)]
        homes[f"{cat['key']}_time_s"] = seconds
        homes[f"{cat['key']}_facility_id"] = np.where(np.isnan(seconds), None, nearest)
        for mins in MINUTES:
            radius = mins * 60 * 1.1 / 1.3
            area = shapely.union_all([p.buffer(radius) for p in fac.geometry])
            iso_rows.append({"category": cat["key"], "minutes": mins, "geometry": area})
    isochrones = gpd.GeoDataFrame(iso_rows, crs=CRS_UTM)
    span = n_side * 90.0
    steps = np.arange(-45, span, 180)
    lines = [LineString([(X0 - 45, Y0 + y), (X0 + span, Y0 + y)]) for y in steps]
    lines += [LineString([(X0 + x, Y0 - 45), (X0 + x, Y0 + span)]) for x in steps]
    roads = gpd.GeoDataFrame({"highway": ["residential"] * len(lines)}, geometry=lines, crs=CRS_UTM)
    return {
        "homes": homes.to_crs(4326),
        "facilities": facilities.to_crs(4326),
        "isochrones": isochrones.to_crs(4326),
        "categories": CATEGORIES,
        "roads": roads.to_crs(4326),
        "minutes": MINUTES,
    }


def _city_audit(n_homes: int = 20_000, n_categories: int = 17, side_m: float = 8_000.0) -> dict:
    """A synthetic district: random homes, 25 facilities per category, a 100 m street grid."""
    rng = np.random.default_rng(2)
    xs, ys = X0 + rng.uniform(0, side_m, n_homes), Y0 + rng.uniform(0, side_m, n_homes)
    homes = {
        "home_id": [f"way/{10_000_000 + i}" for i in range(n_homes)],
        "population": rng.gamma(2.0, 40.0, n_homes),
    }
    categories, fac_rows, iso_rows = [], [], []
    for c in range(n_categories):
        key = f"cat{c}"
        categories.append(
            {"key": key, "name_zh": f"设施{c}", "name_en": f"Category {c}", "minutes": MINUTES[c % 3]}
        )
        fx, fy = X0 + rng.uniform(0, side_m, 25), Y0 + rng.uniform(0, side_m, 25)
        ids = np.array([f"node/{c * 1000 + j}" for j in range(25)], dtype=object)
        fac_rows += [
            {
                "facility_id": ids[j],
                "category": key,
                "name": f"设施{c}-{j}号",
                "geometry": Point(fx[j], fy[j]),
            }
            for j in range(25)
        ]
        d2 = (xs[:, None] - fx[None]) ** 2 + (ys[:, None] - fy[None]) ** 2
        seconds = np.sqrt(d2.min(axis=1)) * 1.3 / 1.1
        seconds[rng.random(n_homes) < 0.03] = np.nan
        seconds[:6] = [0, 300, 300.4, 600, 899.6, 900]  # on and near the band limits
        homes[f"{key}_time_s"] = seconds
        homes[f"{key}_facility_id"] = np.where(np.isnan(seconds), None, ids[d2.argmin(axis=1)])
        for mins in MINUTES:
            area = shapely.union_all(shapely.buffer(shapely.points(fx, fy), mins * 60 * 1.1 / 1.3))
            iso_rows.append({"category": key, "minutes": mins, "geometry": area})
    # Streets as 2-point segments between jittered grid nodes, as planner.audit.roads_gdf.
    k = int(side_m // 100) + 1
    gx, gy = np.meshgrid(np.arange(k) * 100.0 + X0, np.arange(k) * 100.0 + Y0)
    nodes = np.stack([gx + rng.normal(0, 3, gx.shape), gy + rng.normal(0, 3, gy.shape)], -1)
    segments = np.concatenate(
        [
            np.stack([nodes[:, :-1], nodes[:, 1:]], -2).reshape(-1, 2, 2),
            np.stack([nodes[:-1], nodes[1:]], -2).reshape(-1, 2, 2),
        ]
    )
    frames = {
        "homes": gpd.GeoDataFrame(homes, geometry=gpd.points_from_xy(xs, ys), crs=CRS_UTM),
        "facilities": gpd.GeoDataFrame(fac_rows, crs=CRS_UTM),
        "isochrones": gpd.GeoDataFrame(iso_rows, crs=CRS_UTM),
        "roads": gpd.GeoDataFrame(geometry=shapely.linestrings(segments), crs=CRS_UTM),
    }
    return {**{k: v.to_crs(4326) for k, v in frames.items()}, "categories": categories, "minutes": MINUTES}


class _Loads(HTMLParser):
    """Every URL an HTML page would load through a tag (script/style content is skipped)."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        url = a.get("href") if tag == "link" else a.get("src")
        if url and tag in ("script", "link", "img", "iframe"):
            self.urls.append(url)


def _loaded_urls(text: str) -> list[str]:
    parser = _Loads()
    parser.feed(text)
    return [u for u in parser.urls if not u.startswith("data:")]


@pytest.fixture
def audit_html(tmp_path: Path) -> Path:
    data = _audit()
    m = maps.map_audit(**data, title="成都市玉林街道 Yulin Subdistrict")
    return maps.save_map(m, tmp_path / "audit.html")


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> tuple[dict, Path]:
    """The 20,000-home, 17-category synthetic audit and its saved map."""
    data = _city_audit()
    path = tmp_path_factory.mktemp("city") / "city.html"
    maps.save_map(maps.map_audit(**data, title="合成 Synthetic district"), path)
    return data, path


# --- Colours -----------------------------------------------------------------------------------
def test_time_colour_bands():
    seconds = np.array([0, 300, 301, 600, 899, 900, 901, 7200, np.nan])
    green, yellow_green, orange, red = maps.BAND_COLOURS
    assert maps.time_colour(seconds, (5, 10, 15)) == [
        green,
        green,
        yellow_green,
        yellow_green,
        orange,
        orange,
        red,
        red,
        maps.NO_FACILITY_COLOUR,
    ]
    # Other limits give one more colour than limits, still green to red.
    colours = maps.time_colour([60, 180, 400], (2, 5))
    assert colours[0] == green and colours[-1] == red and len(set(colours)) == 3


def test_time_legend_items_match_colours():
    items = maps.time_legend_items((5, 10, 15))
    assert [c for c, _ in items] == [*maps.BAND_COLOURS, maps.NO_FACILITY_COLOUR]
    labels = [label for _, label in items]
    assert labels[:2] == ["≤ 5 分钟 min", "5–10 分钟 min"] and labels[3] == "> 15 分钟 min"
    assert "不可达" in labels[-1] and "Not reachable" in labels[-1]


# --- Self-contained HTML -----------------------------------------------------------------------
def test_audit_html_is_self_contained(audit_html: Path):
    text = audit_html.read_text(encoding="utf-8")
    assert _loaded_urls(text) == []
    assert "charset=UTF-8" in text or 'charset="utf-8"' in text
    # Leaflet and jQuery inlined, their CDNs gone, unused bootstrap/font-awesome dropped.
    assert 'version="1.9.3"' in text and "jQuery v3.7.1" in text
    for cdn in ("cdn.jsdelivr.net", "code.jquery.com", "cdnjs.cloudflare.com", "bootstrapcdn"):
        assert cdn not in text
    assert "data:image/png;base64," in text  # Leaflet's CSS images
    # Legend, title and an escaped OSM name.
    assert "到最近设施的时间 Time to nearest facility" in text
    assert "成都市玉林街道" in text
    assert "<A&B>" not in text
    assert not list(audit_html.parent.glob(".*.tmp"))  # atomic write left no temp file


def test_audit_map_embeds_homes_once(city):
    """20,000 homes × 17 categories: one compact data block, not a GeoJSON layer per category.

    Measured: ~5.4 MB (3.5 MB of it the homes' arrays, ~10 bytes per home and category; the
    rest 17 × 3 isochrones, 425 facilities, 13,000 street segments and Leaflet). The former
    GeoJSON-per-category map of the same data was 90 MB (~260 bytes per home and category),
    so the bound fails it by an order of magnitude.
    """
    data, path = city
    text = path.read_text(encoding="utf-8")
    assert path.stat().st_size < 8_000_000
    assert _loaded_urls(text) == []
    blocks = re.findall(r'<script type="application/json" id="[^"]+">(.*?)</script>', text, re.S)
    assert len(blocks) == 1
    payload = json.loads(blocks[0])
    n, k = len(data["homes"]), len(data["categories"])
    assert len(payload["lon"]) == len(payload["id"]) == len(payload["pop"]) == n
    assert sorted(payload["cats"]) == sorted(c["key"] for c in data["categories"])
    homes_arrays = {key: payload[key] for key in ("lon", "lat", "id", "pop")}
    homes_arrays["cats"] = {key: {"t": c["t"], "f": c["f"]} for key, c in payload["cats"].items()}
    assert len(maps.audit_map._inline_json(homes_arrays).encode()) < 12 * n * k
    assert text.count("way/10000123") == 1  # each home once, not once per category
    assert text.count('"Feature"') < 1_000  # facilities, isochrones, one road feature
    assert text.count("new L.PlannerHomes(") == k


def test_homes_payload_encodes_times_bands_and_facilities():
    homes = gpd.GeoDataFrame(
        {
            "home_id": ["a", "b", "c", "d", "e"],
            "population": [10.4, 10.6, np.nan, 0, 3],
            "k_time_s": [0.0, 299.2, 300.0, 300.4, np.nan],
            "k_facility_id": ["node/1", "node/2", "node/1", None, "node/2"],
        },
        geometry=gpd.points_from_xy([104.0000012, 104.1, 104.2, 104.3, 104.4], [30.6] * 5),
        crs=4326,
    )
    facilities = gpd.GeoDataFrame(
        {"facility_id": ["node/1", "node/2"], "name": ["甲 <A&B>", None]},
        geometry=gpd.points_from_xy([104, 104.1], [30.6, 30.6]),
        crs=4326,
    )
    cats = [{"key": "k", "name_zh": "甲", "name_en": "A"}, {"key": "missing"}]
    p = maps.audit_map.homes_payload(homes, facilities, cats, MINUTES)
    assert p["lon"][0] == 104.0 and p["id"] == ["a", "b", "c", "d", "e"]
    assert p["pop"] == [10, 11, None, 0, 3]
    # Whole seconds rounded up; -1 unreachable (its facility dropped too).
    assert p["cats"]["k"]["t"] == [0, 300, 300, 301, -1]
    assert [p["fid"][f] if f >= 0 else None for f in p["cats"]["k"]["f"]] == [
        "node/1",
        "node/2",
        "node/1",
        None,
        None,
    ]
    assert p["fname"] == ["甲 <A&B>", None]
    assert p["cats"]["missing"] == {"t": [-1] * 5, "f": [-1] * 5}
    # A home past the sweep's limit is -2 (not grey), whatever the reach column's dtype, and
    # a missing state is not "beyond".
    for dtype in ("category", "string", "str", "object"):
        reach = pd.Series(["reached", "reached", "reached", None, "beyond"], dtype=dtype)
        t = maps.audit_map.homes_payload(homes.assign(k_reach=reach), facilities, cats, MINUTES)["cats"]["k"][
            "t"
        ]
        assert t == [0, 300, 300, 301, -2], dtype
        reach = pd.Series(["reached"] * 4 + [None], dtype=dtype)
        t = maps.audit_map.homes_payload(homes.assign(k_reach=reach), facilities, cats, MINUTES)["cats"]["k"][
            "t"
        ]
        assert t == [0, 300, 300, 301, -1], dtype

    # The browser's band rule (first limit the time is ≤ to) on these whole seconds gives
    # time_colour's colours.
    def js_colour(s):
        if s < 0:
            return p["none"]
        return next((p["palette"][b] for b, lim in enumerate(p["limits"]) if s <= lim), p["palette"][-1])

    seconds = homes["k_time_s"].to_numpy()
    assert [js_colour(s) for s in p["cats"]["k"]["t"]] == maps.time_colour(seconds, MINUTES)
    # Safe inside <script>: no "<", ">" or "&" characters.
    assert "<" not in maps.audit_map._inline_json(p) and json.loads(maps.audit_map._inline_json(p)) == p


_HOSTILE = "</script><img src=x onerror=alert(1)>{{7*7}} & \u202eevil"


def _with_hostile_facilities(data: dict) -> dict:
    """The small audit with a clinic named like an attack, an unnamed one (empty name) and a
    kindergarten drawn as a multipoint of two sites."""
    fac = data["facilities"]
    c = fac.geometry.iloc[2]
    extra = gpd.GeoDataFrame(
        {
            "facility_id": ["way/4", "node/5", "relation/6"],
            "category": ["clinic", "clinic", "kindergarten"],
            "name": [_HOSTILE, "", "双址幼儿园"],
        },
        geometry=[
            Point(c.x + 0.001, c.y),
            Point(c.x, c.y + 0.001),
            shapely.MultiPoint([(c.x - 0.001, c.y), (c.x - 0.002, c.y)]),
        ],
        crs=4326,
    )
    return {**data, "facilities": gpd.GeoDataFrame(pd.concat([fac, extra], ignore_index=True), crs=4326)}


def test_map_data_carries_every_categorys_facilities_isochrones_and_roads():
    data = _with_hostile_facilities(_audit())
    text = maps.offline_html(maps.map_audit(**data))
    (block,) = re.findall(r'<script type="application/json" id="[^"]+">(.*?)</script>', text, re.S)
    assert "<" not in block and ">" not in block and "&" not in block  # inert inside <script>
    assert "onerror=alert" not in text.replace(block, "")  # only in the data block, as data
    assert "{{7*7}}" in block  # never rendered as a template
    p = json.loads(block)
    fac = data["facilities"]
    for cat in CATEGORIES:
        rows = fac[fac["category"] == cat["key"]]
        points = shapely.get_parts(rows.geometry.to_numpy())
        owner = np.repeat(np.arange(len(rows)), shapely.get_num_geometries(rows.geometry.to_numpy()))
        drawn = p["cats"][cat["key"]]["p"]
        # Every facility of the category (each point of a multipoint), in the frame's order.
        assert [p["fid"][p["fac"]["f"][r]] for r in drawn] == rows["facility_id"].to_numpy()[owner].tolist()
        names = [n if isinstance(n, str) and n else None for n in rows["name"].to_numpy()[owner]]
        assert [p["fname"][p["fac"]["f"][r]] for r in drawn] == [
            None if n is None else plain_text(n) for n in names
        ]
        xy = np.round(shapely.get_coordinates(points), 6)
        assert [p["fac"]["lon"][r] for r in drawn] == xy[:, 0].tolist()
        assert [p["fac"]["lat"][r] for r in drawn] == xy[:, 1].tolist()
        # Isochrones: largest time first; the target solid and wider, the others dashed.
        iso = p["cats"][cat["key"]]["iso"]
        assert [p["iso_g"][layer["g"][0]] is not None for layer in iso] == [True] * len(MINUTES)
        light = maps.light_polygons(data["isochrones"], 0.75 * settings.isochrone_cell_m)
        mine = light[light["category"] == cat["key"]].sort_values("minutes", ascending=False)
        for layer, (_, row) in zip(iso, mine.iterrows(), strict=True):
            (g,) = layer["g"]
            assert shapely.from_geojson(json.dumps(p["iso_g"][g])).equals_exact(row.geometry, 0)
            target = row["minutes"] == cat["minutes"]
            assert layer["s"]["weight"] == (2.5 if target else 1.2)
            assert ("dashArray" in layer["s"]) == (not target)
            assert layer["s"]["color"] == maps.time_colour([row["minutes"] * 60], MINUTES)[0]
    assert p["fac"]["unnamed"] == "(未命名 unnamed)"
    (roads,) = p["roads_g"]
    assert shapely.from_geojson(json.dumps(roads)).equals_exact(
        maps.light_lines(data["roads"]).geometry.iloc[0], 0
    )


def _page_roads(text: str) -> list:
    (block,) = re.findall(r'<script type="application/json" id="[^"]+">(.*?)</script>', text, re.S)
    return json.loads(block)["roads_g"]


def test_roads_made_light_once_are_drawn_as_given():
    # The audit passes light_lines' output (shared with the printable map): drawn as it is,
    # not merged and simplified again. Reprojected, the mark no longer holds: made light again.
    data = _audit()
    light = maps.light_lines(data["roads"])
    assert maps.layers.is_light(light, maps.layers.MAP_SIMPLIFY_M, maps.layers.MAP_DECIMALS)
    moved = light.to_crs(CRS_UTM)
    assert not maps.layers.is_light(moved, maps.layers.MAP_SIMPLIFY_M, maps.layers.MAP_DECIMALS)
    again = maps.light_lines(light).geometry.iloc[0]
    assert not again.equals_exact(light.geometry.iloc[0], 0)  # simplifying again moves lines
    (drawn,) = _page_roads(maps.offline_html(maps.map_audit(**{**data, "roads": light})))
    assert shapely.from_geojson(json.dumps(drawn)).equals_exact(light.geometry.iloc[0], 0)
    (redrawn,) = _page_roads(maps.offline_html(maps.map_audit(**{**data, "roads": moved})))
    assert shapely.from_geojson(json.dumps(redrawn)).equals_exact(maps.light_lines(moved).geometry.iloc[0], 0)


def test_a_citys_streets_are_merged_in_tiles(monkeypatch):
    # 10 parallel streets of 100 segments of 10 m, 100 m apart: merged whole, 10 polylines;
    # by tiles for 250 segments each (a 2 x 2 grid over the segments' starts), each street
    # breaks where it crosses into the next column of tiles (2 pieces), the same lines drawn.
    xs = np.arange(0, 1001, 10.0) + X0
    segments = [
        LineString([(a, Y0 + 100 * k), (b, Y0 + 100 * k)])
        for k in range(10)
        for a, b in itertools.pairwise(xs)
    ]
    roads = gpd.GeoDataFrame(geometry=segments, crs=CRS_UTM)
    whole = maps.light_lines(roads).geometry.iloc[0]
    monkeypatch.setattr(maps.layers, "MERGE_BLOCK_LINES", 250)
    tiled = maps.light_lines(roads).geometry.iloc[0]
    assert shapely.get_num_geometries(whole) == 10
    assert shapely.get_num_geometries(tiled) == 20
    assert shapely.length(tiled) == pytest.approx(shapely.length(whole), rel=1e-12)
    assert shapely.hausdorff_distance(whole, tiled) < 1e-6  # degrees: a tenth of a metre


def test_roads_and_isochrones_are_simplified():
    # A straight street of 10 m segments (as a network gives it) becomes one 2-point line.
    xs = np.arange(0, 1001, 10.0) + X0
    segments = [LineString([(a, Y0), (b, Y0)]) for a, b in itertools.pairwise(xs)]
    roads = gpd.GeoDataFrame(geometry=segments, crs=CRS_UTM).to_crs(4326)
    light = maps.light_lines(roads)
    assert len(light) == 1 and shapely.get_num_coordinates(light.geometry.iloc[0]) == 2
    assert light.crs.equals("EPSG:4326")
    # A buffered isochrone keeps its area within 0.5 % with fewer vertices, in lon/lat.
    iso = gpd.GeoDataFrame(
        {"category": ["k"], "minutes": [5]}, geometry=[Point(X0, Y0).buffer(400, quad_segs=64)], crs=CRS_UTM
    )
    light = maps.light_polygons(iso.to_crs(4326))
    assert light["minutes"].tolist() == [5]
    back = light.to_crs(CRS_UTM).geometry.iloc[0]
    assert abs(back.area / iso.geometry.iloc[0].area - 1) < 0.005
    assert shapely.get_num_coordinates(back) < shapely.get_num_coordinates(iso.geometry.iloc[0])


def test_many_homes_are_drawn_lighter(monkeypatch):
    monkeypatch.setattr(maps.audit_map, "MAP_MANY_HOMES", 10)
    text = maps.offline_html(maps.map_audit(**_audit(4)))
    assert '"stroke": false' in text and '"radius": 2.0' in text


def test_home_cells_take_the_worst_band():
    from planner.maps.home_cells import CELL_ALPHA, home_cell_image

    # Web Mercator at the equator: 100 m cells from x = 0, one row below y = 0.
    homes = gpd.GeoDataFrame(
        {"k_time_s": [300.0, np.nan, 301.0, 10_000.0]},
        geometry=[Point(50, -50), Point(60, -60), Point(150, -50), Point(250, -50)],
        crs=3857,
    )
    image, bounds, cell_m = home_cell_image(homes, "k", MINUTES, 100.0)
    assert cell_m == 100.0 and image.shape == (1, 3, 4)

    def rgba(colour):
        return [int(colour[i : i + 2], 16) for i in (1, 3, 5)] + [CELL_ALPHA]

    # 300 s (≤ 5 min) shares its cell with a home that reaches nothing: the cell is grey;
    # 301 s is in the 5-10 band; 10,000 s past the last limit in the last band.
    assert image[0].tolist() == [
        rgba(maps.NO_FACILITY_COLOUR),
        rgba(maps.BAND_COLOURS[1]),
        rgba(maps.BAND_COLOURS[3]),
    ]
    (south, west), (north, east) = bounds
    assert west == pytest.approx(0) and east == pytest.approx(300 / 111_319.49, rel=1e-6)
    assert north == pytest.approx(0, abs=1e-9) and south == pytest.approx(-100 / 111_319.49, rel=1e-3)
    # A cell grows when the image would exceed its largest side.
    far = homes.assign(geometry=[Point(0, 0), Point(0, 0), Point(0, 0), Point(1e6, 0)])
    assert home_cell_image(far, "k", MINUTES, 100.0)[2] > 100.0


def test_road_image_marks_the_streets():
    from planner.maps.home_cells import MAX_SIDE_PX, add_road_image

    # An L of two streets, 40 km each: the image's pixels along both, nowhere else.
    roads = gpd.GeoDataFrame(geometry=[LineString([(0, 0), (40_000, 0), (40_000, 40_000)])], crs=3857)
    m = folium.Map()
    assert add_road_image(m, roads)
    (overlay,) = [c for g in m._children.values() for c in g._children.values()]
    image = overlay.url
    assert image.startswith("data:image/png;base64,")
    import base64
    import io

    import matplotlib.image

    pixels = matplotlib.image.imread(io.BytesIO(base64.b64decode(image.split(",", 1)[1])), format="png")
    alpha = pixels[..., 3] > 0
    assert alpha.shape == (MAX_SIDE_PX, MAX_SIDE_PX)
    assert alpha[-1].all() and alpha[:, -1].all()  # the bottom row and the right column
    assert alpha.sum() == 2 * MAX_SIDE_PX - 1
    assert not add_road_image(folium.Map(), roads.iloc[:0])


def test_city_map_draws_homes_as_cells(monkeypatch):
    data = _audit(8)
    detailed = maps.offline_html(maps.map_audit(**data))
    monkeypatch.setattr(settings, "map_detail_max_homes", 63)  # 64 homes: a "city"
    text = maps.offline_html(maps.map_audit(**data))
    assert "L.PlannerHomes" in detailed and "L.PlannerHomes" not in text
    assert "way/100" in detailed and "way/100" not in text  # no home ids embedded
    # One image of cells per category and one of the roads; facilities without names.
    assert text.count("L.imageOverlay(") == len(CATEGORIES) + 1
    assert "阳光幼儿园" in detailed and "阳光幼儿园" not in text
    assert "Homes in ~50 m cells" in text
    # The kindergartens as one multipoint of both, not its centroid.
    points = re.findall(r'"coordinates": (\[\[[^"]*?\]\]), "type": "MultiPoint"', text)
    assert sorted(len(json.loads(p)) for p in points) == [1, 2]  # a clinic, two kindergartens
    # No per-home data block: the homes are in the images only.
    assert 'type="application/json"' in detailed and 'type="application/json"' not in text


def test_points_are_one_geojson_layer(tmp_path: Path):
    rng = np.random.default_rng(0)
    n = 3000
    gdf = gpd.GeoDataFrame(
        {"home_id": np.arange(n), "t": rng.uniform(0, 1500, n)},
        geometry=gpd.points_from_xy(rng.uniform(104.0, 104.05, n), rng.uniform(30.6, 30.65, n)),
        crs="EPSG:4326",
    )
    m = maps.base_map(tuple(gdf.total_bounds))
    colours = maps.time_colour(gdf["t"].to_numpy())
    layer = maps.add_points(m, gdf, colours, popup_columns=["home_id"], name="住宅 Homes")
    assert isinstance(layer, folium.GeoJson)
    assert [type(c) for c in m._children.values()].count(folium.GeoJson) == 1
    assert len(layer.data["features"]) == n
    text = maps.offline_html(m)
    assert text.count("new L.CircleMarker(") == 1  # one pointToLayer, not one object per point
    # Leaflet + jQuery are ~250 kB; each point costs well under 200 bytes.
    assert len(text.encode()) < 250_000 + 200 * n


def test_add_polygons_and_lines_accept_projected_data():
    data = _audit(4)
    m = maps.base_map(tuple(data["homes"].total_bounds))
    polys = maps.add_polygons(
        m, data["isochrones"].to_crs(CRS_UTM), "#1a9850", name="等时圈", tooltip_columns=["minutes"]
    )
    lines = maps.add_lines(m, data["roads"].to_crs(CRS_UTM))
    lon = polys.data["features"][0]["geometry"]["coordinates"][0][0][0]
    assert 103 < lon[0] < 105  # reprojected to longitude/latitude
    assert lines.options["interactive"] is False
    assert maps.add_lines(m, data["roads"].iloc[:0]) is None


def test_unknown_cdn_dependency_raises():
    m = maps.base_map((104.0, 30.6, 104.1, 30.7))
    m.get_root().header.add_child(folium.JavascriptLink("https://cdn.example.com/new-thing.js"))
    with pytest.raises(RuntimeError, match=re.escape("https://cdn.example.com/new-thing.js")):
        maps.offline_html(m)


def test_plugin_with_cdn_raises():
    from folium.plugins import Fullscreen

    m = maps.base_map((104.0, 30.6, 104.1, 30.7))
    Fullscreen().add_to(m)
    with pytest.raises(RuntimeError, match=r"Control\.FullScreen|fullscreen"):
        maps.offline_html(m)


def test_awesome_icon_raises():
    m = maps.base_map((104.0, 30.6, 104.1, 30.7))
    folium.Marker([30.65, 104.05], icon=folium.Icon(icon="home")).add_to(m)
    with pytest.raises(RuntimeError, match=re.escape("folium.Icon")):
        maps.offline_html(m)


def test_tiles_only_when_configured(monkeypatch):
    m = maps.base_map((104.0, 30.6, 104.1, 30.7))
    assert "tile.openstreetmap.org" not in maps.offline_html(m)
    monkeypatch.setattr(settings, "map_tiles", "OpenStreetMap")
    text = maps.offline_html(maps.base_map((104.0, 30.6, 104.1, 30.7)))
    assert "tile.openstreetmap.org" in text  # loaded by Leaflet at run time, not by a tag
    assert _loaded_urls(text) == []


def test_base_map_rejects_bad_bounds():
    with pytest.raises(ValueError, match="finite"):
        maps.base_map((np.nan, 30.6, 104.1, 30.7))


# --- In a browser ------------------------------------------------------------------------------
@pytest.mark.browser
@needs_chromium
def test_audit_map_in_chromium(audit_html: Path, tmp_path: Path):
    shot = tmp_path / "audit.png"
    result = browser.open_in_browser(audit_html, shot)
    assert result["errors"] == []
    assert result["external"] == []
    assert result["leaflet"] == "1.9.3"
    # First category shown: 64 homes, 2 facilities, 3 isochrones, plus the road lines.
    assert result["paths"] > 64
    assert result["layers"] == len(CATEGORIES) + 1  # categories + roads
    assert result["layer_names"] == ["道路 Roads", "幼儿园 Kindergarten", "社区卫生服务站 Clinic"]

    import matplotlib.image

    assert result["screenshot"] == str(shot) and shot.stat().st_size > 10_000
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (900, 1200)
    assert pixels.std() > 0.05  # not blank
    # Homes in the ≤ 5 min band are drawn (their exact colour appears).
    green = np.array([0x1A, 0x98, 0x50]) / 255
    assert (np.abs(pixels - green).max(axis=-1) < 0.02).sum() > 100


# Click the first home and the first facility of the shown layer; return the popups' text.
# Homes are L.PlannerHomes markers (built from the shared arrays), facilities GeoJSON features.
_OPEN_POPUPS = """
var out = {};
maps[0].eachLayer(function (l) {
  if (!(l instanceof L.CircleMarker)) return;
  var kind = l._plannerHome !== undefined ? 'home' : l.feature ? 'facility' : null;
  if (!kind || kind in out) return;
  l.fire('click', {latlng: l.getLatLng()}, true);  // propagates to the layer's popup
  var shown = document.querySelectorAll('.leaflet-popup-content');
  out[kind] = shown.length ? shown[shown.length - 1].innerText : null;
  maps[0].closePopup();
});
return out;
"""


@pytest.mark.browser
@needs_chromium
def test_popups_show_chinese_and_escaped_names(tmp_path: Path):
    data = _audit()
    data["categories"] = CATEGORIES[::-1]  # clinic first: its facility name has "<A&B>"
    path = maps.save_map(maps.map_audit(**data), tmp_path / "clinic.html")
    result = browser.open_in_browser(path, extra_js=_OPEN_POPUPS)
    assert result["errors"] == []
    home, facility = result["extra"]["home"], result["extra"]["facility"]
    assert "住宅 Home" in home and "人口 Population" in home and "目标 target ≤ 15" in home
    assert "way/" in home and "最近设施 Nearest facility" in home
    # The first home drawn is the clinic's nearest: its facility by name and id.
    assert "玉林社区卫生服务站 <A&B> (way/3)" in home
    assert "玉林社区卫生服务站 <A&B>" in facility and "node/" not in facility
    assert "way/3" in facility


# Tick every category, then hover and click every facility: the tooltip's and the popup's text.
_FACILITY_TABLES = """
document.querySelectorAll('.leaflet-control-layers-overlays input').forEach(function (input) {
  if (!input.checked) input.click();
});
var out = [];
maps[0].eachLayer(function (l) {
  if (!(l instanceof L.CircleMarker) || !l.feature) return;
  l.fire('mouseover', {latlng: l.getLatLng()}, true);
  var tips = document.querySelectorAll('.leaflet-tooltip');
  var tip = tips.length ? tips[tips.length - 1].innerText : null;
  l.fire('mouseout', {latlng: l.getLatLng()}, true);
  l.fire('click', {latlng: l.getLatLng()}, true);
  var pops = document.querySelectorAll('.leaflet-popup-content');
  out.push({tip: tip, popup: pops.length ? pops[pops.length - 1].innerText : null});
  maps[0].closePopup();
});
return out;
"""


@pytest.mark.browser
@needs_chromium
def test_every_facility_shows_its_name_and_id_as_text_in_chromium(tmp_path: Path):
    data = _with_hostile_facilities(_audit())
    path = maps.save_map(maps.map_audit(**data), tmp_path / "facilities.html")
    result = browser.open_in_browser(path, extra_js=_FACILITY_TABLES)
    assert result["errors"] == [] and result["dialogs"] == []  # the name's <img onerror> is text
    shown = result["extra"]
    fac = data["facilities"]
    expected = []
    for cat in CATEGORIES:
        label = f"{cat['name_zh']} {cat['name_en']}"
        for _, row in fac[fac["category"] == cat["key"]].iterrows():
            name = (
                plain_text(row["name"])
                if isinstance(row["name"], str) and row["name"]
                else "(未命名 unnamed)"
            )
            expected += [f"{label}\t{name}\n编号 ID\t{row['facility_id']}"] * shapely.get_num_geometries(
                row.geometry
            )
    assert sorted(s["tip"] for s in shown) == sorted(expected)
    assert sorted(s["popup"] for s in shown) == sorted(expected)
    assert any(_HOSTILE.split("\u202e")[0] in s["tip"] for s in shown)


# Count the homes drawn per category, switch the layer control from the first category to the
# second (as a user clicks), count again, and open the popup of one home of the second.
_SWITCH_CATEGORY = """
var m = maps[0];
function drawn() {
  var out = {};
  m.eachLayer(function (l) {
    if (!(l instanceof L.PlannerHomes)) return;
    var colours = {}, n = 0;
    l.eachLayer(function (x) {
      if (!m.hasLayer(x)) return;
      n++;
      colours[x.options.fillColor] = (colours[x.options.fillColor] || 0) + 1;
    });
    out[l._key] = {n: n, colours: colours};
  });
  return out;
}
function facilities() {
  var ids = [];
  m.eachLayer(function (l) {
    if (l.feature && l.feature.properties.facility_id) ids.push(l.feature.properties.facility_id);
  });
  return ids;
}
function toggle(name) {
  var labels = document.querySelectorAll('.leaflet-control-layers-overlays label');
  for (var i = 0; i < labels.length; i++) {
    if (labels[i].textContent.trim() === name) {
      labels[i].querySelector('input').click();
      return true;
    }
  }
  return false;
}
var out = {before: drawn(), facilities_before: facilities()};
out.toggled = [toggle(NAMES[1]), toggle(NAMES[0])];
out.after = drawn();
out.facilities_after = facilities();
var home = null;
m.eachLayer(function (l) { if (home === null && l._plannerHome !== undefined) home = l; });
home.fire('click', {latlng: home.getLatLng()}, true);
var shown = document.querySelectorAll('.leaflet-popup-content');
out.home = home._plannerHome;
out.popup = shown.length ? shown[shown.length - 1].innerText : null;
return out;
"""


@pytest.mark.browser
@needs_chromium
def test_city_map_switches_categories_in_chromium(city, tmp_path: Path):
    """20,000 homes: the first category drawn; ticking another draws its homes (bands as
    time_colour), unticking the first removes them; popups come from the shared arrays."""
    data, path = city
    homes, cats = data["homes"], data["categories"]
    names = [f"{c['name_zh']} {c['name_en']}" for c in cats[:2]]
    js = _SWITCH_CATEGORY.replace("NAMES", json.dumps(names, ensure_ascii=False))
    shot = tmp_path / "city.png"
    result = browser.open_in_browser(path, shot, timeout_s=180, extra_js=js)
    assert result["errors"] == [] and result["external"] == []
    assert result["layers"] == len(cats) + 1

    def expected(key):
        colours = maps.time_colour(homes[f"{key}_time_s"].to_numpy(), MINUTES)
        return {"n": len(homes), "colours": dict(Counter(colours))}

    out = result["extra"]
    assert out["toggled"] == [True, True]
    assert out["before"] == {"cat0": expected("cat0")}
    assert out["after"] == {"cat1": expected("cat1")}  # cat0's homes gone, cat1's drawn
    category = dict(zip(data["facilities"]["facility_id"], data["facilities"]["category"], strict=False))
    assert sorted(category[f] for f in out["facilities_before"]) == ["cat0"] * 25
    assert sorted(category[f] for f in out["facilities_after"]) == ["cat1"] * 25
    row = homes.iloc[out["home"]]  # the first drawn: cat1's nearest home
    fac = row["cat1_facility_id"]
    name = data["facilities"].set_index("facility_id").loc[fac, "name"]
    assert row["home_id"] in out["popup"] and f"{name} ({fac})" in out["popup"]
    assert str(round(row["population"])) in out["popup"]
    seconds = int(np.ceil(row["cat1_time_s"]))  # whole minutes without ".0", as _display
    assert (f"{seconds // 60}" if seconds % 60 == 0 else f"{seconds / 60:.1f}") in out["popup"]

    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.std() > 0.05
    for colour in maps.BAND_COLOURS:  # every band appears among 20,000 homes
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
        assert (np.abs(pixels - rgb).max(axis=-1) < 0.02).sum() > 50, colour


@pytest.mark.browser
@needs_chromium
def test_map_works_offline_with_tiles_configured(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(settings, "map_tiles", "OpenStreetMap")
    m = maps.map_audit(**_audit(4))
    result = browser.open_in_browser(maps.save_map(m, tmp_path / "tiles.html"))
    # Tiles cannot load here; everything else must.
    assert [e for e in result["errors"] if not e.startswith("failed to load https://tile.")] == []
    assert result["paths"] > 16 and result["layers"] == 3


@pytest.mark.browser
@needs_chromium
def test_city_map_in_chromium(tmp_path: Path, monkeypatch):
    """A city's map (forced by the threshold): the shown category's homes are one image."""
    monkeypatch.setattr(settings, "map_detail_max_homes", 10)
    path = maps.save_map(maps.map_audit(**_audit(8)), tmp_path / "city.html")
    js = "return document.querySelectorAll('img.leaflet-image-layer').length;"
    result = browser.open_in_browser(path, tmp_path / "city.png", extra_js=js)
    assert result["errors"] == [] and result["external"] == []
    assert result["extra"] == 2  # the roads and the first category's cells, not the second's
    assert result["layers"] == len(CATEGORIES) + 1
    assert result["load_ms"] is not None

    import matplotlib.image

    pixels = matplotlib.image.imread(tmp_path / "city.png")[..., :3]
    assert pixels.std() > 0.05


@pytest.mark.browser
@needs_chromium
def test_cjk_font_installed():
    """Chinese labels show as boxes without a CJK font (Debian: fonts-noto-cjk)."""
    if shutil.which("fc-list") is None:
        pytest.skip("no fontconfig")
    fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout
    assert fonts.strip(), "no Chinese font: apt-get install -y fonts-noto-cjk"


def test_line_vertices_reads_lines_rings_and_polygons_by_hand():
    from planner.maps.base import line_vertices

    geoms = np.array(
        [
            LineString([(0, 0), (1, 1)]),
            shapely.MultiLineString([[(2, 2), (3, 3), (4, 4)], [(5, 5), (6, 6)]]),
            shapely.Polygon(
                [(0, 0), (2, 0), (2, 2), (0, 0)], holes=[[(0.5, 0.2), (1.5, 0.2), (1.5, 1.0), (0.5, 0.2)]]
            ),
            Point(1, 1),  # ignored
            None,
        ],
        dtype=object,
    )
    xy, index = line_vertices(geoms)
    assert xy[:7].tolist() == [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4], [5, 5], [6, 6]]
    # The lines 0, 1, 2 (the multi's two parts), then the polygon's shell 3 and hole 4.
    assert index.tolist() == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4]
    assert xy[11:].tolist() == [[0.5, 0.2], [1.5, 0.2], [1.5, 1.0], [0.5, 0.2]]
    empty_xy, empty_index = line_vertices(np.array([Point(0, 0)], dtype=object))
    assert empty_xy.shape == (0, 2) and len(empty_index) == 0
