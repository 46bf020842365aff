"""Bounded sweeps: times up to the question's limit, homes past it "beyond", no path "unreachable"."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import SAMPLES
from osm_fixtures import write_osm
from scipy.sparse.csgraph import dijkstra

from planner import audit, settings
from planner.access import point_access
from planner.network import Access, TargetGraph, build_network, from_arrays, trip_costs
from planner.reach import BEYOND, REACHED, UNREACHABLE, reach_states, sweep_limit_s
from planner.sources import load_region


def _line_and_island():
    """A 3 km street (nodes every 100 m, walked at 1 m/s) and a 100 m island street 5 km away."""
    x = np.r_[np.arange(31) * 100.0, 8000.0, 8100.0]
    y = np.zeros(len(x))
    u = np.r_[np.arange(30), 31]
    v = np.r_[np.arange(1, 31), 32]
    return from_arrays(x, y, u, v, "EPSG:32650", walk_speed_mps=1.0)


def test_home_at_20_minutes_is_beyond_and_one_on_an_island_unreachable():
    net = _line_and_island()
    facility = Access(owner=np.array([0]), node=np.array([0]), leg_m=np.zeros(1), n_owners=1)
    limit = sweep_limit_s(15)
    assert limit == 15 * 60 + settings.sweep_margin_s
    cost, near = TargetGraph(net, facility).sweep(limit=limit)
    # Homes at 10 and 20 minutes along the street (600 m, 1200 m) and on the island.
    homes = point_access(net, np.array([[600.0, 0.0], [1200.0, 0.0], [8050.0, 40.0]]))
    t, which = trip_costs(net, homes, cost, near)
    assert t[0] == pytest.approx(600.0) and which[0] == 0
    assert np.isinf(t[1:]).all() and (which[1:] == -1).all()
    states = reach_states(net, homes, t, facility.node)
    assert list(states) == [REACHED, BEYOND, UNREACHABLE]
    # Asked for, the full times reach the 20-minute home; the island stays without a path.
    full = sweep_limit_s(15, full_times=True)
    t_full, _ = trip_costs(net, homes, *TargetGraph(net, facility).sweep(limit=full))
    assert t_full[1] == pytest.approx(1200.0) and np.isinf(t_full[2])
    assert list(reach_states(net, homes, t_full, facility.node)) == [REACHED, REACHED, UNREACHABLE]


def test_one_way_trap_is_unreachable_not_beyond():
    """0 → 1 → 2 one way, 2 ↔ 3 both ways; the facility at 0: only 0 has a path to it."""
    x = np.array([0.0, 100.0, 200.0, 300.0])
    net = from_arrays(x, np.zeros(4), [0, 1, 2, 3], [1, 2, 3, 2], "EPSG:32650", two_way=False)
    facility = Access(owner=np.array([0]), node=np.array([0]), leg_m=np.zeros(1), n_owners=1)
    cost, near = TargetGraph(net, facility).sweep(limit=sweep_limit_s(15))
    homes = point_access(net, np.column_stack([x, np.zeros(4)]))
    t, _ = trip_costs(net, homes, cost, near)
    assert list(reach_states(net, homes, t, facility.node)) == [REACHED] + [UNREACHABLE] * 3
    # The facility at 3 instead: 0, 1 and 2 drive to it, 0 and 1 past a 1-second limit.
    facility = Access(owner=np.array([0]), node=np.array([3]), leg_m=np.zeros(1), n_owners=1)
    cost, near = TargetGraph(net, facility).sweep(limit=150.0)
    t, _ = trip_costs(net, homes, cost, near)
    assert list(reach_states(net, homes, t, facility.node)) == [BEYOND, BEYOND, REACHED, REACHED]


@pytest.mark.parametrize("mode", ["walk", "drive"])
def test_bounded_times_equal_scipy_dijkstra(mode):
    """Shanghai centre (drive: one-way streets): within the limit the bounded sweep's times are
    scipy's unbounded Dijkstra on the full graph; past it a node with a path is beyond, one
    without is unreachable."""
    net = build_network(load_region(SAMPLES / "shanghai_center_roads.osm.pbf"), mode)
    rng = np.random.default_rng(5)
    targets = rng.choice(net.n_nodes, 6, replace=False)
    acc = Access(owner=np.arange(6), node=targets, leg_m=np.zeros(6), n_owners=6)
    limit = sweep_limit_s(5) if mode == "walk" else 120.0  # a few blocks: most nodes beyond
    cost, _ = TargetGraph(net, acc).sweep(limit=limit)
    ref = dijkstra(net.graph("time", reverse=True), directed=True, indices=targets, min_only=True)
    inside = ref <= limit
    assert inside.any() and (np.isfinite(ref) & ~inside).any()
    np.testing.assert_allclose(cost[inside], ref[inside], rtol=1e-9)  # chains sum in another order
    assert np.isinf(cost[~inside]).all()
    states = np.asarray(reach_states(net, point_access(net, net.xy()), cost, targets))
    assert (states[inside] == REACHED).all()
    assert (states[np.isfinite(ref) & ~inside] == BEYOND).all()
    assert (states[np.isinf(ref)] == UNREACHABLE).all()
    if mode == "drive":
        assert np.isinf(ref).any()  # one-way traps: the unreachable case is exercised


def _street(tmp_path):
    """A 2.4 km footway (nodes every 100 m), a test facility at its west end, homes at 600 m
    (9 minutes at 1.1 m/s), 1 100 m (16.7) and 2 200 m (33.3); no bus stop anywhere."""
    xs = np.arange(0, 2401, 100.0)
    nodes = {i + 1: (float(x), 0.0) for i, x in enumerate(xs)}
    write_osm(
        tmp_path / "street.osm",
        nodes,
        [(1, list(nodes), {"highway": "footway"})],
        node_tags={1: {"amenity": "test_facility", "name": "F"}},
    )
    (tmp_path / "cats.toml").write_text(
        '[[category]]\nkey = "test_facility"\nname_zh = "测试"\nname_en = "Test"\nminutes = 15\n'
        'level = "15min"\nmatch = [{ amenity = "test_facility" }]\n',
        encoding="utf-8",
    )
    region = load_region(tmp_path / "street.osm")
    x0 = region.node_x.min()
    y0 = region.node_y[np.argmin(region.node_x)]
    homes = gpd.GeoDataFrame(
        {"population": [10.0, 20.0, 30.0]},
        geometry=shapely.points(np.column_stack([x0 + np.array([600.0, 1100.0, 2200.0]), np.full(3, y0)])),
        crs=region.crs,
    )
    return region, homes, tmp_path / "cats.toml"


def test_audit_reports_beyond_and_unreachable(tmp_path):
    region, homes, cats = _street(tmp_path)
    kw = {"categories": "test_facility,bus_stop", "categories_file": cats, "homes": homes}
    kw["with_isochrones"] = False
    result = audit.audit(region, **kw)
    h = result.homes.sort_values("population")
    speed = result.network.walk_speed_mps
    limit = 15 * 60 + settings.sweep_margin_s
    assert result.sweep_limit_s == limit
    assert h["test_facility_time_s"].iloc[0] == pytest.approx(600 / speed, rel=1e-4)  # lon/lat rounding
    assert h["test_facility_time_s"].iloc[1:].isna().all()
    assert list(h["test_facility_reach"]) == [REACHED, BEYOND, BEYOND]
    assert list(h["bus_stop_reach"]) == [UNREACHABLE] * 3  # no bus stop mapped: no path to one
    summary = result.summary()["travel_times"]
    assert summary == {
        "limit_s": limit,
        "full_times": False,
        "homes_beyond_limit": {"test_facility": 2, "bus_stop": 0},
        "homes_unreachable": {"test_facility": 0, "bus_stop": 3},
    }
    json.dumps(summary)
    full = audit.audit(region, full_times=True, **kw)
    f = full.homes.sort_values("population")
    np.testing.assert_allclose(f["test_facility_time_s"], np.array([600, 1100, 2200]) / speed, rtol=1e-4)
    assert list(f["test_facility_reach"]) == [REACHED] * 3
    assert full.sweep_limit_s == settings.max_travel_time_s
    pd.testing.assert_frame_equal(result.coverage, full.coverage)


def test_bounded_audit_coverage_equals_full_times():
    """Coverage counts only homes within thresholds: bounded sweeps leave it unchanged."""
    region = load_region(SAMPLES / "beijing_haidian_cau.osm.pbf")
    kw = {"categories": "supermarket,bus_stop,park,kindergarten,primary_school", "with_isochrones": False}
    bounded, full = audit.audit(region, **kw), audit.audit(region, full_times=True, **kw)
    pd.testing.assert_frame_equal(bounded.coverage, full.coverage)
    for key in ("supermarket", "bus_stop", "park", "kindergarten", "primary_school"):
        b, f = bounded.homes[f"{key}_time_s"], full.homes[f"{key}_time_s"]
        kept = b.notna()
        np.testing.assert_array_equal(b[kept], f[kept])
        past = f[~kept]
        assert (past > bounded.sweep_limit_s).all() or past.isna().all()
        assert (bounded.homes.loc[~kept & f.notna(), f"{key}_reach"] == BEYOND).all()


@pytest.mark.parametrize("seed", range(4))
def test_trip_costs_from_reached_nodes_equal_every_entry(seed):
    """After a bounded sweep trip_costs reads only the entries at reached nodes: the same
    costs and targets (ties: an origin's first entry at its best cost) as over every entry."""
    from planner import network

    rng = np.random.default_rng(seed)
    net = _line_and_island()
    n_entries, n_owners = 60, 25
    acc = Access(
        owner=np.r_[np.arange(n_owners), rng.integers(0, n_owners, n_entries - n_owners)],
        node=rng.integers(0, net.n_nodes, n_entries),
        leg_m=rng.choice([0.0, 5.0, 10.0], n_entries),
        n_owners=n_owners,
    )
    hit = rng.random(net.n_nodes) < 0.2
    node_cost = np.where(hit, rng.choice([0.0, 50.0, 100.0], net.n_nodes), np.inf)
    node_target = np.where(hit, rng.integers(0, 5, net.n_nodes), -1)
    got = network._reached_trip_costs(net, acc, node_cost, node_target, "time", np.flatnonzero(hit))
    # Every entry: a huge finite cost where not reached keeps trip_costs on its dense path.
    far = 1e300
    cost, target = network.trip_costs(net, acc, np.where(hit, node_cost, far), node_target)
    np.testing.assert_array_equal(got[0], np.where(cost >= far, np.inf, cost))
    np.testing.assert_array_equal(got[1], np.where(cost >= far, -1, target))
    assert np.isinf(got[0]).any() and np.isfinite(got[0]).any()


def test_audit_map_draws_beyond_in_the_last_band(tmp_path):
    """The map's data: -2 for a home beyond the limit (drawn in the colour past the largest
    threshold, shown as "> 15"), -1 (grey) only for a home with no path."""
    from planner.maps.audit_map import homes_payload

    region, homes, cats = _street(tmp_path)
    result = audit.audit(region, categories="test_facility,bus_stop", categories_file=cats, homes=homes)
    h = result.homes.sort_values("population").to_crs(4326)
    cat_dicts = [{"key": c.key} for c in result.categories]
    data = homes_payload(h, result.facilities.to_crs(4326), cat_dicts, result.minutes)
    speed = result.network.walk_speed_mps
    assert data["cats"]["test_facility"]["t"] == [int(np.ceil(h["test_facility_time_s"].iloc[0])), -2, -2]
    assert abs(data["cats"]["test_facility"]["t"][0] - 600 / speed) < 1
    assert data["cats"]["bus_stop"]["t"] == [-1, -1, -1]


def test_home_cells_draw_beyond_in_the_last_band():
    from shapely.geometry import Point

    from planner import maps
    from planner.maps.home_cells import CELL_ALPHA, home_cell_image

    homes = gpd.GeoDataFrame(
        {"k_time_s": [np.nan, np.nan], "k_reach": [BEYOND, UNREACHABLE]},
        geometry=[Point(50, -50), Point(150, -50)],
        crs=3857,
    )
    image, _, _ = home_cell_image(homes, "k", (5, 10, 15), 100.0)

    def rgba(colour):
        return [int(colour[i : i + 2], 16) for i in (1, 3, 5)] + [CELL_ALPHA]

    assert image[0].tolist() == [rgba(maps.BAND_COLOURS[3]), rgba(maps.NO_FACILITY_COLOUR)]


def test_pmedian_matrix_cut_where_no_answer_uses_it(monkeypatch):
    """site --model pmedian builds its matrix only to the worst home's time to its nearest
    existing facility (median_cutoff_s): the same sites and objective as on the full matrix."""
    from planner import siting

    region = load_region(SAMPLES / "beijing_haidian_wudaokou.osm.pbf")
    kw = {"model": "pmedian", "new": 3, "standards": False, "method": "exact"}
    cut = siting.site(region, "kindergarten", **kw)
    full_s = sweep_limit_s(15, full_times=True)
    assert cut.counts["cost_matrix_entries"] > 0
    monkeypatch.setattr(siting, "median_cutoff_s", lambda *args: full_s)
    full = siting.site(region, "kindergarten", **kw)
    assert cut.counts["cost_matrix_entries"] < full.counts["cost_matrix_entries"]
    assert cut.solution.objective == pytest.approx(full.solution.objective, rel=1e-9)
    assert sorted(cut.solution.sites) == sorted(full.solution.sites)
