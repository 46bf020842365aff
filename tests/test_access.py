"""How homes and facilities enter the network (planner.access), checked against hand-worked
distances and an independent networkx Dijkstra on a small walled compound with two gates."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from osm_fixtures import X0, Y0, square, write_osm

from planner import settings
from planner._errors import InputError
from planner.access import facility_access, homes_on_network
from planner.categories import load_categories, region_facilities
from planner.network import TargetGraph, snap, to_networkx, trip_costs
from planner.sources import load_region

HOME_XY = (150.0, 60.0)
NORTH_GATE, EAST_GATE = (150.0, 250.0), (250.0, 150.0)


def _compound(tmp_path, gates: bool = True):
    """Streets round a walled compound (x 50..250, y 20..250) with one home inside; a north
    gate and an east gate, each with a footway out to the street; a kindergarten 10 m south of
    the south street at (100, -10)."""
    nodes = {
        1: (0, 0),
        2: (100, 0),
        3: (200, 0),
        4: (300, 0),
        10: (300, 150),
        5: (300, 300),
        6: (150, 300),
        7: (0, 300),
        8: NORTH_GATE,
        9: EAST_GATE,
        20: (100, -10),
    }
    wall_nodes, wall_ring = square(30, 50, 20, 250, 250)
    home_nodes, home_ring = square(40, HOME_XY[0] - 10, HOME_XY[1] - 10, HOME_XY[0] + 10, HOME_XY[1] + 10)
    nodes.update(wall_nodes)
    nodes.update(home_nodes)
    ways = [
        (100, [1, 2, 3, 4], {"highway": "residential"}),
        (101, [4, 10, 5], {"highway": "residential"}),
        (102, [5, 6, 7], {"highway": "residential"}),
        (103, [8, 6], {"highway": "footway"}),
        (104, [9, 10], {"highway": "footway"}),
        (110, wall_ring, {"landuse": "residential", "barrier": "wall", "name": "测试小区"}),
        (120, home_ring, {"building": "apartments", "building:levels": "6"}),
    ]
    tags = {20: {"amenity": "kindergarten", "name": "幼儿园"}}
    if gates:
        tags.update({8: {"barrier": "gate"}, 9: {"barrier": "gate"}})
    return load_region(write_osm(tmp_path / "compound.osm", nodes, ways, tags))


def _node_at(net, xy) -> int:
    node, dist = snap(net, np.array([[X0 + xy[0], Y0 + xy[1]]], float))
    assert dist[0] < 0.05  # a network node (OSM keeps coordinates to about 1 cm)
    return int(node[0])


def test_a_home_in_a_gated_compound_enters_the_network_at_each_gate(tmp_path):
    on_net = homes_on_network(_compound(tmp_path))
    net, acc = on_net.network, on_net.access
    assert len(on_net.homes) == 1 and acc.n_owners == 1
    gates = {_node_at(net, NORTH_GATE): np.hypot(0, 190), _node_at(net, EAST_GATE): np.hypot(100, 90)}
    assert sorted(acc.node.tolist()) == sorted(gates)
    for node, leg in zip(acc.node, acc.leg_m, strict=True):
        assert leg == pytest.approx(
            gates[int(node)], abs=0.05
        )  # straight to the gate; the gate is on the network
    assert on_net.home_compound_id.tolist() == ["way/110"] and on_net.home_compound.tolist() == [0]
    assert on_net.compound_info == {
        "detected": 1,
        "with_gates": 1,
        "homes_routed_through_gates": 1,
        "without_gates_fell_back_to_nearest_street": [],
    }


def test_trip_leaves_by_the_better_gate_as_networkx_finds(tmp_path):
    region = _compound(tmp_path)
    on_net = homes_on_network(region)
    net, comps = on_net.network, on_net.compounds
    kindergarten = region_facilities(region.features, [load_categories()["kindergarten"]])
    fac_acc, fac_comp = facility_access(net, kindergarten, comps)
    assert fac_comp.tolist() == [-1]  # outside the compound: entered from the street
    cost, which = TargetGraph(net, fac_acc, "time").sweep(limit=3600.0)
    got, target = trip_costs(net, on_net.access, cost, which, "time")

    # Independently: networkx from each gate to the street node the kindergarten is 10 m from.
    detour, speed = settings.off_network_detour, net.walk_speed_mps
    graph = to_networkx(net, "time")
    street = _node_at(net, (100, 0))
    per_gate = {
        gate: straight * detour / speed
        + nx.dijkstra_path_length(graph, _node_at(net, gate), street)
        + 10 * detour / speed
        for gate, straight in ((NORTH_GATE, 190.0), (EAST_GATE, np.hypot(100, 90)))
    }
    assert got[0] == pytest.approx(min(per_gate.values()), rel=1e-4)
    assert target.tolist() == [0]
    # By hand: east gate, footway 50 m, east street 150 m, south street 200 m.
    assert per_gate[EAST_GATE] == pytest.approx(
        (np.hypot(100, 90) * detour + 50 + 150 + 200 + 10 * detour) / speed, rel=1e-4
    )
    assert per_gate[NORTH_GATE] > per_gate[EAST_GATE]


def test_a_compound_without_gates_falls_back_to_the_nearest_street_node(tmp_path):
    on_net = homes_on_network(_compound(tmp_path, gates=False))
    net, acc = on_net.network, on_net.access
    # The nearest node is the south street's (100, 0) or (200, 0), 78.1 m away, through the wall.
    assert acc.n_owners == 1 and len(acc.node) == 1
    assert acc.leg_m[0] == pytest.approx(np.hypot(50, 60), abs=0.05)
    assert int(acc.node[0]) in {_node_at(net, (100, 0)), _node_at(net, (200, 0))}
    assert on_net.compound_info["with_gates"] == 0 and on_net.compound_info["homes_routed_through_gates"] == 0
    assert on_net.compound_info["without_gates_fell_back_to_nearest_street"] == [
        {"compound_id": "way/110", "name": "测试小区"}
    ]


def test_only_homes_inside_the_boundary_count(tmp_path):
    region = _compound(tmp_path)
    home = homes_on_network(region).homes.geometry.iloc[0]
    near = gpd.GeoSeries([home.buffer(30.0)], crs=region.crs)
    assert len(homes_on_network(region, boundary=near).homes) == 1
    elsewhere = gpd.GeoSeries([shapely.box(home.x + 100, home.y, home.x + 200, home.y + 100)], crs=region.crs)
    with pytest.raises(InputError, match="no homes inside the boundary"):
        homes_on_network(region, boundary=elsewhere)


def test_point_and_polygon_entries_and_street_lines():
    from planner.access import geometry_access, point_access, roads_gdf
    from planner.network import from_arrays

    # An L of streets: (0,0) – (100,0) – (100,100), both directions.
    net = from_arrays([0.0, 100.0, 100.0], [0.0, 0.0, 100.0], [0, 1], [1, 2], "EPSG:32650")
    acc = point_access(net, np.array([[10.0, 5.0], [100.0, 70.0]]))
    assert acc.node.tolist() == [0, 2] and acc.leg_m == pytest.approx([np.hypot(10, 5), 30.0])
    # A 20 m square whose outline passes 5 m from node 1 (at 100,0): entered there with a
    # 5 m leg, and at its centre's nearest node (node 1 too) with the centre's leg.
    park = shapely.box(105.0, -10.0, 125.0, 10.0)
    entries = geometry_access(net, np.array([park], dtype=object), reach_m=6.0)
    pairs = zip(entries.node.tolist(), entries.leg_m.round(6).tolist(), strict=True)
    assert sorted(pairs) == [(1, 5.0), (1, 15.0)]
    assert geometry_access(net, np.array([park], dtype=object), reach_m=4.0).leg_m.tolist() == [15.0]
    roads = roads_gdf(net)
    assert len(roads) == 2 and sorted(roads.length.round(6)) == [100.0, 100.0]
    # The same segments as one MultiLineString (a city's streets, drawn as an image).
    one = roads_gdf(net, one_feature=True)
    assert len(one) == 1 and one.geom_type[0] == "MultiLineString" and one.crs == roads.crs
    assert shapely.equals(one.geometry[0], shapely.multilinestrings(roads.geometry.to_numpy()))


def test_entries_and_street_lines_keep_their_old_import_paths():
    import planner.access
    from planner.audit import roads_gdf
    from planner.network import geometry_access, point_access

    assert point_access is planner.access.point_access
    assert geometry_access is planner.access.geometry_access
    assert roads_gdf is planner.access.roads_gdf
