"""Raster isochrones (planner.isochrones) against the exact union of buffered street pieces."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from conftest import SAMPLES

from planner import settings
from planner.access import facility_access, homes_on_network
from planner.categories import load_categories, region_facilities, select
from planner.isochrones import buffer_mask, category_isochrones, mask_polygon, reach_pieces, reach_polygon
from planner.network import TargetGraph, from_arrays, sweep_many
from planner.sources import load_region

BUF = 40.0


def exact_reach_polygon(net, node_cost, edge_cost, limit, buf):
    """The reference: every reached piece buffered (GEOS, 4 segments a quarter circle) and
    unioned, as the audit drew isochrones before the raster."""
    ax, ay, bx, by = reach_pieces(net, node_cost, edge_cost, limit)
    if not len(ax):
        return None
    lines = shapely.linestrings(np.stack([np.c_[ax, ay], np.c_[bx, by]], axis=1))
    return shapely.union_all(shapely.buffer(lines, buf, quad_segs=4))


def areal_hausdorff_m(a, b) -> float:
    """The farthest a point of either area lies from the other area (0 inside it)."""
    far = 0.0
    for p, q in ((a, b), (b, a)):
        rest = shapely.difference(p, q)
        if not rest.is_empty:
            far = max(far, float(shapely.distance(shapely.points(shapely.get_coordinates(rest)), q).max()))
    return far


def line_net(length_m=100.0):
    """Two nodes, one straight street of ``length_m`` along x."""
    return from_arrays(np.array([0.0, length_m]), np.array([0.0, 0.0]), np.array([0]), np.array([1]), 32650)


# ----------------------------------------------------------------------------------------------
# hand-worked


def test_one_street_is_a_stadium():
    # A 100 m street reached whole: 100 × 80 m rectangle + a 40 m disc = 8,000 + 5,026.5 m².
    net = line_net(100.0)
    poly = reach_polygon(net, np.array([0.0, 100.0]), net.length_m, 100.0, BUF, cell_m=2.0)
    assert poly.area == pytest.approx(8000 + np.pi * BUF**2, rel=0.01)
    # In and out across the buffer's edge, a cell and a half either side.
    assert poly.contains(shapely.Point(50, BUF - 3))
    assert not poly.intersects(shapely.Point(50, BUF + 3))
    assert poly.contains(shapely.Point(-BUF + 3, 0))
    assert not poly.intersects(shapely.Point(-BUF - 3, 0))


def test_cut_where_the_limit_runs_out():
    # Limit 60 m on a 100 m street from node 0: the piece ends at x = 60, buffered to x = 100.
    net = line_net(100.0)
    poly = reach_polygon(net, np.array([0.0, 100.0]), net.length_m, 60.0, BUF, cell_m=2.0)
    assert poly.bounds[2] == pytest.approx(60 + BUF, abs=3.0)
    assert poly.area == pytest.approx(60 * 2 * BUF + np.pi * BUF**2, rel=0.01)
    # Nothing reached: no polygon.
    assert reach_polygon(net, np.array([np.inf, np.inf]), net.length_m, 60.0, BUF) is None


def test_cell_centres_decide():
    # A diagonal segment: a cell is in exactly when its centre is within the buffer.
    ax, ay, bx, by = (np.array([3.0]), np.array([7.0]), np.array([83.0]), np.array([61.0]))
    mask, transform = buffer_mask(ax, ay, bx, by, 25.0, 5.0)
    rows, cols = np.indices(mask.shape)
    cx = transform.c + (cols + 0.5) * transform.a
    cy = transform.f + (rows + 0.5) * transform.e
    seg = shapely.LineString([(3, 7), (83, 61)])
    d = shapely.distance(shapely.points(cx.ravel(), cy.ravel()), seg).reshape(mask.shape)
    assert (mask == (d <= 25.0 + 1e-9)).all()
    assert mask.sum() > 100


def test_mask_polygon_simplifies_within_tolerance():
    mask = np.zeros((40, 40), bool)
    rows, cols = np.indices(mask.shape)
    mask[(rows - 20) ** 2 + (cols - 20) ** 2 <= 15**2] = True  # a disc of radius 15 cells
    transform = buffer_mask(np.array([0.0]), np.array([0.0]), np.array([1.0]), np.array([0.0]), 1.0, 1.0)[1]
    raw, light = mask_polygon(mask, transform), mask_polygon(mask, transform, simplify_m=0.75)
    assert raw.area == mask.sum()
    assert shapely.get_num_coordinates(light) < shapely.get_num_coordinates(raw)
    assert shapely.hausdorff_distance(raw, light) <= 0.75 + 1e-9
    assert light.is_valid


# ----------------------------------------------------------------------------------------------
# the sample regions: same areas as the exact union


SAMPLE_REGIONS = [
    "beijing_haidian_cau",
    "beijing_haidian_wudaokou",
    "beijing_chaoyang_wangjing",
    "nanjing_xinjiekou",
    "shenzhen_longgang",
    "zhejiang_haining_zhouwangmiao",
]


@pytest.mark.parametrize("name", SAMPLE_REGIONS)
def test_same_areas_as_the_exact_union(name):
    region = load_region(SAMPLES / f"{name}.osm.pbf")
    on_net = homes_on_network(region, "walk")
    net = on_net.network
    fac = region_facilities(region.features, select(load_categories(), None), None)
    # The four categories with the most facilities mapped in the region.
    cats = select(load_categories(), list(fac["category"].value_counts().index[:4]))
    fac_access, _ = facility_access(net, fac, on_net.compounds)
    subsets = [np.nonzero(fac["category"].to_numpy() == c.key)[0] for c in cats]
    swept = sweep_many(TargetGraph(net, fac_access, "time"), subsets, limit=3600.0)
    compared = 0
    for cat, (cost, _) in zip(cats, swept, strict=True):
        for node_cost, edge_cost, limit in (
            (cost, net.time_s, cat.minutes * 60.0),
            (cost * net.walk_speed_mps, net.length_m, 1000.0),
        ):
            exact = exact_reach_polygon(net, node_cost, edge_cost, limit, BUF)
            raster = reach_polygon(net, node_cost, edge_cost, limit, BUF)
            assert (exact is None) == (raster is None)
            if exact is None:
                continue
            compared += 1
            assert raster.is_valid
            assert abs(raster.area - exact.area) <= 0.02 * exact.area, (cat.key, limit)
            assert areal_hausdorff_m(raster, exact) <= 25.0, (cat.key, limit)
    assert compared >= 2


def test_parallel_workers_draw_the_same(monkeypatch):
    region = load_region(SAMPLES / "beijing_haidian_cau.osm.pbf")
    on_net = homes_on_network(region, "walk")
    net = on_net.network
    cats = select(load_categories(), "kindergarten,supermarket,pharmacy")
    fac = region_facilities(region.features, cats, None)
    fac_access, _ = facility_access(net, fac, on_net.compounds)
    subsets = [np.nonzero(fac["category"].to_numpy() == c.key)[0] for c in cats]
    swept = sweep_many(TargetGraph(net, fac_access, "time"), subsets, limit=3600.0)
    node_time = {c.key: cost for c, (cost, _) in zip(cats, swept, strict=True)}
    node_dist = {c.key: node_time[c.key] * net.walk_speed_mps for c in cats if c.unit == "m"}
    monkeypatch.setattr(settings, "parallel_min_node_sweeps", 10**12)
    alone = category_isochrones(net, cats, [5, 10], node_time, node_dist, "all")
    monkeypatch.setattr(settings, "parallel_min_node_sweeps", 0)
    monkeypatch.setattr(settings, "sweep_workers", 2)
    forked = category_isochrones(net, cats, [5, 10], node_time, node_dist, "all")
    # kindergarten: its 300 m target, then 5 and 10 minutes; the others 5, 10 and their target.
    assert list(alone["category"]) == ["kindergarten"] * 3 + ["supermarket"] * 3 + ["pharmacy"] * 3
    assert list(forked["category"]) == list(alone["category"])
    assert list(forked["minutes"]) == list(alone["minutes"])
    assert shapely.equals_exact(forked.geometry.to_numpy(), alone.geometry.to_numpy(), tolerance=0).all()
