"""Service radii (planner.review.distances): straight lines, planned paths, OSM streets,
walls and existing facilities; dwellings from the plan, OSM or a grid. Distances worked by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pyproj import Transformer
from shapely.geometry import LineString, Point, box

from planner.review import review

from .plans import RADIUS_RULE, X0, Y0, estate, facility, result, write_pack, write_plan


def _radius_plan(tmp_path, facility_xy, dwellings=((0, 0, None),), paths=()):
    feats = [estate(10, geom=box(-20, -20, 20, 20))]
    feats += [
        ({"role": "residential", **({"households": hh} if hh is not None else {})}, Point(x, y))
        for x, y, hh in dwellings
    ]
    feats.append(facility("kindergarten", 3200, Point(*facility_xy)))
    feats += [({"role": "path"}, LineString(p)) for p in paths]
    return write_plan(tmp_path / "p.geojson", feats)


@pytest.mark.parametrize(("x", "status"), [(300.0, "pass"), (300.5, "fail")])
def test_radius_straight_line_at_threshold(tmp_path, x, status):
    pack = write_pack(tmp_path / "r.toml", RADIUS_RULE)
    rev = review(_radius_plan(tmp_path, (x, 0)), rules=[pack])
    r = result(rev, "t.kindergarten.radius")
    assert rev.distance_method == "straight_line"
    assert r.status == status and r.value == pytest.approx(x)
    assert r.shortfall == pytest.approx(max(0.0, x - 300))
    assert any("straight lines" in n for n in rev.notes)


@pytest.mark.parametrize(("x", "status"), [(300.0, "pass"), (301.0, "fail")])
def test_radius_along_planned_paths_at_threshold(tmp_path, x, status):
    # Dwelling and kindergarten both on the path: no off-network legs, the walk is x metres.
    pack = write_pack(tmp_path / "r.toml", RADIUS_RULE)
    rev = review(_radius_plan(tmp_path, (x, 0), paths=[[(0, 0), (x, 0)]]), rules=[pack])
    r = result(rev, "t.kindergarten.radius")
    assert rev.distance_method == "network"
    assert r.status == status and r.value == pytest.approx(x, abs=1e-6)


def test_radius_planned_paths_detour(tmp_path):
    # The only path goes round: (0,0) → (0,200) → (100,200) → (100,0): 500 m for a 100 m gap.
    pack = write_pack(tmp_path / "r.toml", RADIUS_RULE)
    rev = review(
        _radius_plan(tmp_path, (100, 0), paths=[[(0, 0), (0, 200), (100, 200), (100, 0)]]), rules=[pack]
    )
    r = result(rev, "t.kindergarten.radius")
    assert r.status == "fail" and r.value == pytest.approx(500.0) and r.shortfall == pytest.approx(200.0)


def test_radius_share_of_dwellings_weighted_by_households(tmp_path):
    # Two homes: 3 households at 100 m, 1 household at 400 m. 75 % are within 300 m.
    half = write_pack(tmp_path / "r.toml", RADIUS_RULE.replace('unit = "m"', 'unit = "m"\nmin_share = 0.75'))
    plan = _radius_plan(tmp_path, (0, 0), dwellings=[(100, 0, 3), (400, 0, 1)])
    r = result(review(plan, rules=[half]), "t.kindergarten.radius")
    assert (
        r.status == "pass"
        and r.value == pytest.approx(100)
        and r.details["share_within"] == pytest.approx(0.75)
    )
    assert r.details["dwellings_beyond"] == 1
    every = write_pack(tmp_path / "r2.toml", RADIUS_RULE)
    r = result(review(plan, rules=[every]), "t.kindergarten.radius")
    assert r.status == "fail" and r.value == pytest.approx(400) and r.shortfall == pytest.approx(100)


def test_radius_with_no_facility_fails(tmp_path):
    pack = write_pack(tmp_path / "r.toml", RADIUS_RULE.replace('"kindergarten"', '"clinic"'))
    r = result(review(_radius_plan(tmp_path, (0, 0)), rules=[pack]), "t.kindergarten.radius")
    assert r.status == "fail" and r.value is None and "no clinic planned" in r.note


def test_grid_dwellings_when_no_residential_features(tmp_path):
    # 200 m × 200 m estate, 20 m grid: 10 × 10 points at 10, 30, ..., 190.
    pack = write_pack(tmp_path / "r.toml", RADIUS_RULE)
    plan = write_plan(tmp_path / "p.geojson", [estate(1000), facility("kindergarten", 3200, Point(0, 0))])
    rev = review(plan, rules=[pack])
    assert len(rev.dwellings) == 100 and "grid" in rev.dwelling_source
    r = result(rev, "t.kindergarten.radius")
    assert r.value == pytest.approx(math.hypot(190, 190))  # farthest grid point, straight line


# --- OSM: a river between the estate and the kindergarten ---------------------------------------

_TO_LL = Transformer.from_crs(32650, 4326, always_xy=True)


def _osm_xml(
    path: Path,
    nodes: dict[int, tuple[float, float]],
    ways: list[tuple[int, list[int], dict]],
    node_tags: dict[int, dict] | None = None,
) -> Path:
    """A small OSM XML file from node positions in local metres (same origin as the plans)."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    for nid, (x, y) in nodes.items():
        lon, lat = _TO_LL.transform(X0 + x, Y0 + y)
        tags = (node_tags or {}).get(nid, {})
        body = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        lines.append(f'<node id="{nid}" version="1" lat="{lat:.9f}" lon="{lon:.9f}">{body}</node>')
    for wid, refs, tags in ways:
        body = "".join(f'<nd ref="{r}"/>' for r in refs) + "".join(
            f'<tag k="{k}" v="{v}"/>' for k, v in tags.items()
        )
        lines.append(f'<way id="{wid}" version="1">{body}</way>')
    lines.append("</osm>")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


FOOT = {"highway": "footway"}


def _river_osm(
    path: Path, direct: bool = False, wall: bool = False, extra_nodes=None, extra_ways=(), node_tags=None
):
    """South bank path y=120, bridge at x=600, north bank path y=180; river along y=150.

    ``direct`` adds a footway straight across at x=100 (a ford); ``wall`` a wall along y=150.5
    from x=-100 to x=300 (it crosses the ford, not the bridge).
    """
    nodes = {
        1: (0, 120),
        2: (100, 120),
        3: (600, 120),
        4: (600, 180),
        5: (100, 180),
        10: (-100, 150),
        11: (800, 150),
        **(extra_nodes or {}),
    }
    ways = [
        (100, [1, 2, 3], FOOT),
        (101, [3, 4], {**FOOT, "bridge": "yes"}),
        (102, [4, 5], FOOT),
        (103, [10, 11], {"waterway": "river"}),
        *extra_ways,
    ]
    if direct:
        ways.append((104, [2, 5], FOOT))
    if wall:
        nodes.update({20: (-100, 150.5), 21: (300, 150.5)})
        ways.append((105, [20, 21], {"barrier": "wall"}))
    return _osm_xml(path, nodes, ways, node_tags)


def _river_plan(tmp_path, with_kindergarten=True):
    feats = [
        estate(500, geom=box(0, 0, 200, 110)),
        ({"role": "residential", "households": 500}, Point(100, 110)),
    ]
    if with_kindergarten:
        feats.append(facility("kindergarten", 3200, Point(100, 200)))
    return write_plan(tmp_path / "plan.geojson", feats)


def test_river_network_fails_where_straight_line_passes(tmp_path):
    """Home at (100,110), kindergarten at (100,200) across a river: 90 m straight.

    Walk: home → node (100,120) 10 m, ×1.2 detour = 12; along the bank to the bridge at
    x=600 (500), across (60), back (500); node (100,180) → kindergarten 20 m × 1.2 = 24.
    Total 12 + 1060 + 24 = 1096 m.
    """
    pack = write_pack(tmp_path / "r.toml", RADIUS_RULE)
    plan = _river_plan(tmp_path)
    straight = result(review(plan, rules=[pack]), "t.kindergarten.radius")
    assert straight.status == "pass" and straight.value == pytest.approx(90.0)
    osm = _river_osm(tmp_path / "river.osm")
    rev = review(plan, rules=[pack], osm=osm)
    walk = result(rev, "t.kindergarten.radius")
    assert rev.distance_method == "network"
    assert walk.status == "fail"
    assert walk.value == pytest.approx(12 + 1060 + 24, abs=0.2)
    assert walk.shortfall == pytest.approx(1096 - 300, abs=0.2)


def test_a_crossing_makes_it_pass_and_a_wall_cuts_it(tmp_path):
    pack = write_pack(tmp_path / "r.toml", RADIUS_RULE)
    plan = _river_plan(tmp_path)
    # A footway straight across: 12 + 60 + 24 = 96 m.
    r = result(
        review(plan, rules=[pack], osm=_river_osm(tmp_path / "ford.osm", direct=True)),
        "t.kindergarten.radius",
    )
    assert r.status == "pass" and r.value == pytest.approx(96, abs=0.2)
    # The same footway through a mapped wall is cut: back to the bridge.
    r = result(
        review(plan, rules=[pack], osm=_river_osm(tmp_path / "wall.osm", direct=True, wall=True)),
        "t.kindergarten.radius",
    )
    assert r.status == "fail" and r.value == pytest.approx(1096, abs=0.2)


def test_existing_osm_facilities_count_for_radius_not_presence(tmp_path):
    # An existing kindergarten node at (100,130): node (100,120) is 10 m away.
    # Home leg 12 + kindergarten leg 12 = 24 m.
    plan = _river_plan(tmp_path, with_kindergarten=False)
    osm = _river_osm(
        tmp_path / "k.osm",
        extra_nodes={30: (100, 130)},
        node_tags={30: {"amenity": "kindergarten", "name": "阳光幼儿园"}},
    )
    pack = write_pack(
        tmp_path / "r.toml",
        RADIUS_RULE
        + """
[[rule]]
id = "t.kindergarten.present"
title_zh = "幼儿园"
title_en = "Kindergarten planned"
clause = "test"
confirmed = true
strength = "mandatory"
measure = "facility_present"
category = "kindergarten"
threshold = 1
unit = "facilities"
""",
    )
    rev = review(plan, rules=[pack], osm=osm)
    radius = result(rev, "t.kindergarten.radius")
    assert radius.status == "pass" and radius.value == pytest.approx(24, abs=0.2)
    assert radius.details["existing_facilities"] == 1 and radius.details["planned_facilities"] == 0
    assert result(rev, "t.kindergarten.present").status == "fail"


def test_osm_residential_buildings_are_the_dwellings(tmp_path):
    pack = write_pack(tmp_path / "r.toml", RADIUS_RULE)
    plan = write_plan(
        tmp_path / "plan.geojson",
        [estate(500, geom=box(0, 0, 200, 110)), facility("kindergarten", 3200, Point(100, 200))],
    )
    osm = _river_osm(
        tmp_path / "b.osm",
        extra_nodes={40: (90, 95), 41: (110, 95), 42: (110, 105), 43: (90, 105)},
        extra_ways=[(200, [40, 41, 42, 43, 40], {"building": "apartments"})],
    )
    rev = review(plan, rules=[pack], osm=osm)
    assert len(rev.dwellings) == 1 and "OSM residential buildings" in rev.dwelling_source
    # Building centre (100,100): 20 m to node (100,120) → 24; then 1060 + 24 = 1108 m.
    assert result(rev, "t.kindergarten.radius").value == pytest.approx(1108, abs=0.5)
