"""planner.sources: reading OSM extracts into a Region, through load_region and its helpers.

A hand-written extract (tests/osm_fixtures.py, coordinates in metres) checks what becomes a
street, a segment and a feature, and where; a bundled sample is counted against an
independent pass of pyosmium over the same file.
"""

from __future__ import annotations

import math

import numpy as np
import osmium
import pytest
import shapely
from conftest import SAMPLES
from osm_fixtures import UTM, X0, Y0, square, write_osm
from pyproj import Transformer

from planner import InputError, load_region, settings
from planner.sources import boundary_polygon, metric_crs, reach_m, sample_path

_to_wgs = Transformer.from_crs(UTM, 4326, always_xy=True)


def _lonlat_box(x0, y0, x1, y1):
    """A WGS84 polygon of a box given in the fixture's metres (its four corners transformed:
    the UTM grid is not aligned with the meridians)."""
    lon, lat = _to_wgs.transform(np.add([x0, x1, x1, x0], X0), np.add([y0, y0, y1, y1], Y0))
    return shapely.Polygon(zip(lon, lat, strict=True))


@pytest.fixture
def tiny(tmp_path):
    """Two streets (one crossing the other at node 2), a pedestrian square (an area, not a
    street), a building of 20 m × 30 m, a kindergarten node, a wall, an untagged node and a
    street cut at the extract's edge (its node 999 is missing)."""
    nodes = {1: (0, 0), 2: (100, 0), 3: (200, 0), 4: (100, 100), 5: (300, 300)}
    b_nodes, b_ring = square(10, 20, 20, 40, 50)
    p_nodes, p_ring = square(20, 120, 20, 160, 60)
    nodes.update(b_nodes)
    nodes.update(p_nodes)
    nodes.update({30: (0, 150), 31: (50, 150), 40: (60, -20)})
    ways = [
        (100, [1, 2, 3], {"highway": "residential", "name": "甲路"}),
        (101, [2, 4], {"highway": "footway"}),
        (102, [3, 999], {"highway": "service"}),
        (103, b_ring, {"building": "apartments", "building:levels": "6"}),
        (104, p_ring, {"highway": "pedestrian", "area": "yes"}),
        (105, [30, 31], {"barrier": "wall"}),
    ]
    node_tags = {40: {"amenity": "kindergarten", "name": "小太阳幼儿园"}}
    return write_osm(tmp_path / "tiny.osm", nodes, ways, node_tags)


def test_tiny_extract_streets_segments_and_coordinates(tiny):
    region = load_region(tiny)
    assert region.name == "tiny" and region.source == str(tiny)
    assert region.crs.to_epsg() == 32650  # the UTM zone of the streets' median point
    # Street nodes only: 1-4 (node 999 is not in the file), sorted by id.
    assert region.node_id.tolist() == [1, 2, 3, 4]
    expected = np.add([[0, 0], [100, 0], [200, 0], [100, 100]], [X0, Y0])
    # OSM stores 1e-7° (about 1 cm): coordinates come back to that precision.
    assert np.column_stack([region.node_x, region.node_y]) == pytest.approx(expected, abs=0.01)
    # 1-2 and 2-3 of way 100, 2-4 of way 101; 3-999 left out.
    assert region.ways["way_id"].tolist() == [100, 101, 102]
    pairs = sorted(
        (int(region.node_id[u]), int(region.node_id[v]), int(region.ways["way_id"].iloc[w]))
        for u, v, w in zip(region.seg_u, region.seg_v, region.seg_way, strict=True)
    )
    assert pairs == [(1, 2, 100), (2, 3, 100), (2, 4, 101)]
    row = region.ways.set_index("way_id").loc[100]
    assert row["highway"] == "residential" and row["name"] == "甲路" and row["oneway"] is None


def test_tiny_extract_features(tiny):
    feats = load_region(tiny).features.set_index("osm_id")
    # Tagged objects other than streets: the kindergarten, the building, the pedestrian area,
    # the wall. Untagged node 5 is only a location; the streets are not features.
    assert sorted(feats.index) == ["node/40", "way/103", "way/104", "way/105"]
    assert feats.loc["node/40", "osm_type"] == "node" and feats.loc["node/40", "name"] == "小太阳幼儿园"
    kg = feats.loc["node/40", "geometry"]
    assert (kg.x, kg.y) == pytest.approx((X0 + 60, Y0 - 20), abs=0.01)
    building = feats.loc["way/103"]
    assert building["geometry"].geom_type == "MultiPolygon"
    assert building["geometry"].area == pytest.approx(20 * 30, rel=2e-3)
    assert building["tags"] == {"building": "apartments", "building:levels": "6"}
    assert feats.loc["way/104", "geometry"].area == pytest.approx(40 * 40, rel=2e-3)
    wall = feats.loc["way/105", "geometry"]
    assert wall.geom_type == "LineString" and wall.length == pytest.approx(50, abs=0.02)


def test_boundary_keeps_streets_with_both_ends_inside_and_buffer_widens_it(tiny):
    box = _lonlat_box(-10, -10, 150, 110)  # holds nodes 1, 2 and 4, not 3 (x = 200)
    clipped = load_region(tiny, boundary=box)
    assert clipped.node_id.tolist() == [1, 2, 4]
    assert len(clipped.seg_u) == 2  # 1-2 and 2-4
    assert "way/103" in set(clipped.features["osm_id"]) and "way/105" not in set(clipped.features["osm_id"])
    wider = load_region(tiny, boundary=box, buffer_m=60)  # reaches x = 210: node 3 and 2-3 come back
    assert wider.node_id.tolist() == [1, 2, 3, 4] and len(wider.seg_u) == 3


def test_boundary_polygon_is_projected_to_the_region(tiny):
    region = load_region(tiny)
    poly = boundary_polygon(_lonlat_box(0, 0, 100, 50), region.crs)
    assert poly.area == pytest.approx(100 * 50, rel=1e-3)
    assert poly.bounds == pytest.approx((X0, Y0, X0 + 100, Y0 + 50), abs=0.05)


def test_a_boundary_with_no_streets_inside_is_refused(tiny):
    with pytest.raises(InputError, match="no streets in this region inside the boundary"):
        load_region(tiny, boundary=_lonlat_box(1000, 1000, 1100, 1100))


def _independent_counts(path):
    """Street ways, their located nodes and segments, and tagged objects, counted by pyosmium."""
    ways, nodes, segments, tagged_nodes = 0, set(), 0, 0
    for obj in osmium.FileProcessor(str(path)).with_locations():
        if obj.is_node() and len(obj.tags):
            tagged_nodes += 1
        elif obj.is_way() and "highway" in obj.tags and obj.tags.get("area") != "yes":
            ways += 1
            located = [n.location.valid() for n in obj.nodes]
            refs = [n.ref for n in obj.nodes]
            nodes.update(r for r, ok in zip(refs, located, strict=True) if ok)
            segments += sum(
                a and b and r != s for a, b, r, s in zip(located, located[1:], refs, refs[1:], strict=False)
            )
    return ways, len(nodes), segments, tagged_nodes


@pytest.mark.parametrize(
    ("name", "ways", "nodes", "segments"),
    [("nanjing_xinjiekou", 383, 1607, 1775), ("beijing_haidian_cau", 302, 1456, 1631)],
)
def test_bundled_sample_by_name_and_by_path(name, ways, nodes, segments):
    path = SAMPLES / f"{name}.osm.pbf"
    assert sample_path(name) == path
    by_name, by_path = load_region(name), load_region(path)
    assert by_name.name == by_path.name == name
    assert by_name.crs.to_epsg() == 32650  # Nanjing (118.8° E) and Beijing (116.3° E): zone 50
    assert (len(by_name.ways), len(by_name.node_id), len(by_name.seg_u)) == (ways, nodes, segments)
    assert (len(by_path.ways), len(by_path.node_id), len(by_path.seg_u)) == (ways, nodes, segments)
    counted = _independent_counts(path)
    assert counted[:3] == (ways, nodes, segments)
    assert (by_name.features["osm_type"] == "node").sum() == counted[3]
    lon0, lat0, lon1, lat1 = by_name.bounds_wgs84
    assert lon0 < lon1 and lat0 < lat1 and 116 < lon0 < 119 and 31 < lat0 < 41


def test_sample_path_knows_the_bundled_names_only():
    assert sample_path("zhejiang_haining_zhouwangmiao") == SAMPLES / "zhejiang_haining_zhouwangmiao.osm.pbf"
    assert sample_path("no_such_sample") is None


@pytest.mark.parametrize(
    ("lon", "lat", "epsg"),
    [
        (116.3, 40.0, 32650),  # Beijing
        (121.47, 31.23, 32651),  # Shanghai
        (114.0, 22.5, 32650),  # Shenzhen: 114° E is the edge of zones 49 and 50; floor(294 / 6) + 1 = 50
        (-70.6, -33.4, 32719),  # Santiago: south
        (179.99, 0.0, 32660),
        (-180.0, 0.0, 32601),
    ],
)
def test_metric_crs_is_the_utm_zone(lon, lat, epsg):
    assert metric_crs(lon, lat).to_epsg() == epsg


@pytest.mark.parametrize(
    ("lon", "lat", "epsg"),
    [(116.3, 40.0, 32650), (121.47, 31.23, 32651), (-70.6, -33.4, 32719), (114.02, 22.5, 32650)],
)
def test_metric_crs_of_a_frame_is_the_zone_of_its_bounds_centre(lon, lat, epsg):
    import geopandas as gpd

    from planner.sources import metric_crs_of

    # Two points 0.1° apart: the centre of their bounds decides (114.02 ± 0.05 straddles 114° E,
    # the edge of zones 49 and 50, with the centre in zone 50), in lon/lat or in a projected CRS, as
    # geopandas' estimate_utm_crs picks it.
    frame = gpd.GeoSeries(gpd.points_from_xy([lon - 0.05, lon + 0.05], [lat - 0.05, lat + 0.05]), crs=4326)
    for f in (frame, frame.to_crs(3857), gpd.GeoSeries(frame.to_numpy())):
        assert metric_crs_of(f).to_epsg() == epsg
    assert frame.estimate_utm_crs().to_epsg() == epsg


def test_reach_m_by_hand():
    # 15 min walk × 1.1 m/s × 1.25 margin.
    assert reach_m([5, 10, 15]) == pytest.approx(15 * 60 * 1.1 * 1.25)
    assert reach_m([15], margin=1.0) == pytest.approx(990.0)
    fastest_bike_mps = max(settings.bike_speed_kph.values()) / 3.6
    assert reach_m([30], "bike") == pytest.approx(30 * 60 * fastest_bike_mps * 1.25)
    settings.walk_speed_mps = 1.2
    assert reach_m([10]) == pytest.approx(10 * 60 * 1.2 * 1.25)
    assert math.isfinite(reach_m([10], "drive"))


@pytest.mark.parametrize("name", ["beijing_haidian_cau", "nanjing_xinjiekou", "tiny.osm"])
def test_reading_in_two_processes_gives_the_one_process_region(name, monkeypatch, tiny):
    """A forked process writes the text while this one reads it: the Region must be the one
    a single process gives (the text through a file), feature by feature (ids, tags,
    coordinates) and street by street (two samples, and the hand-written XML extract with its
    area and its cut street)."""
    from planner import osm_file

    path = tiny if name == "tiny.osm" else SAMPLES / f"{name}.osm.pbf"
    monkeypatch.setattr(settings, "sweep_workers", 1)
    piped = []
    monkeypatch.setattr(osm_file, "_parse_piped", lambda path: piped.append(path))
    one = load_region(path)
    assert piped == []  # one process: no pipe asked for
    monkeypatch.undo()
    two = load_region(path)
    assert two.features["osm_id"].tolist() == one.features["osm_id"].tolist()
    assert two.features["tags"].tolist() == one.features["tags"].tolist()
    a, b = (shapely.get_coordinates(r.features.geometry.to_numpy()) for r in (one, two))
    np.testing.assert_array_equal(a, b)
    for attr in ("node_id", "node_x", "node_y", "seg_u", "seg_v", "seg_way"):
        np.testing.assert_array_equal(getattr(two, attr), getattr(one, attr))
    assert two.ways.equals(one.ways)
    # The tagged nodes come first, then the ways and areas.
    is_node = (one.features["osm_type"] == "node").to_numpy()
    assert is_node.any() and not is_node[is_node.sum() :].any()
