"""Where an estate's residents live and how far they walk: dwellings, the walking network,
existing facilities from OSM, and the distance from each dwelling to the nearest facility.

Service radii are measured along the walking network: streets from ``--osm`` (walls and
fences mapped in OSM cut them) plus the plan's own ``path`` lines. Dwellings are the plan's
``residential`` features, else OSM residential buildings inside the estate, else a regular
grid of points over the estate (:data:`DWELLING_GRID_M`). With no network at all, radii fall
back to straight lines, which never overstate distance: a fail is certain, a pass is
provisional, and the report says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from planner import settings
from planner._errors import InputError
from planner.network import Network
from planner.review.plan import Plan
from planner.rules import Rule
from planner.sources import Region

#: Spacing of the dwelling grid when neither the plan nor OSM has residential buildings.
DWELLING_GRID_M: float = 20.0
#: Planned paths get a vertex at least this often (snapping goes to vertices).
_PATH_VERTEX_M = 10.0
#: A path end this close to another path joins it (drawings and lon/lat rounding leave
#: T-junctions a few millimetres apart).
_PATH_SNAP_M = 1.0


@dataclass
class Distances:
    """What :func:`measure_distances` found for the radius rules of a review."""

    #: The plan, in the OSM extract's CRS when one was given.
    plan: Plan
    #: Facilities mapped in OSM of the radius rules' categories (``facility_id``, ``category``, ``name``).
    existing: gpd.GeoDataFrame
    #: Dwelling points with a ``weight`` and a ``<key>_m`` distance column per radius key.
    dwellings: gpd.GeoDataFrame
    dwelling_source: str
    #: Per :func:`radius_key`: (distance in metres per dwelling, nearest facility's row or -1).
    by_key: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    #: ``network``, ``straight_line`` or ``none`` (no radius rule applies).
    method: str = "none"
    network: Network | None = None
    osm_used: bool = False
    notes: list[str] = field(default_factory=list)


def measure_distances(
    plan: Plan, radius_rules: list[Rule], osm: str | os.PathLike | None, categories: dict
) -> Distances:
    """Dwellings, existing facilities and the walk from each dwelling to the nearest facility of
    each radius rule's category (and level), on the OSM streets and planned paths."""
    notes: list[str] = []
    region = None
    if osm is not None:
        reach_m = max([r.ranges[0][0] for r in radius_rules], default=500.0)
        region = load_osm(osm, plan, reach_m)
        plan = plan.to_crs(region.crs)
        notes.extend(f"OSM: {n}" for n in region.notes)
    existing = existing_facilities(region, categories, {r.category for r in radius_rules}, plan.crs)
    dwellings, dwelling_source = dwelling_points(plan, region)
    found = Distances(plan, existing, dwellings, dwelling_source, osm_used=region is not None, notes=notes)
    if not radius_rules:
        return found
    found.network, found.method = walking_network(plan, region)
    keys = sorted({radius_key(r) for r in radius_rules})
    found.by_key = category_distances(plan, existing, dwellings, keys, found.network)
    for key, (dist, _) in found.by_key.items():
        dwellings[f"{key}_m"] = dist
    if found.method == "straight_line":
        notes.append(
            "No walking network (no --osm and no planned paths): service radii were measured as "
            "straight lines, which never exceed the walk. A fail is certain; a pass is provisional "
            "until checked with --osm or planned `path` features."
        )
    if found.network is not None:
        notes.extend(f"network: {n}" for n in found.network.notes)
    return found


def load_osm(osm: str | os.PathLike, plan: Plan, reach_m: float) -> Region:
    """The OSM region around the estate: far enough that walks to the radius fit inside."""
    from planner.sources import load_region

    pad = 1.5 * reach_m + 200.0
    area = gpd.GeoSeries([plan.estate.buffer(pad)], crs=plan.crs).to_crs(4326)
    return load_region(osm, boundary=area)


def existing_facilities(
    region: Region | None, categories: dict, keys: set[str], crs: Any
) -> gpd.GeoDataFrame:
    """Facilities of the categories ``keys`` mapped in the OSM extract, in ``crs`` (none without one)."""
    empty = gpd.GeoDataFrame({"facility_id": [], "category": [], "name": []}, geometry=[], crs=crs)
    if region is None or not keys:
        return empty
    facs = getattr(region, "facilities", None)
    if facs is None:
        from planner.categories import classify

        facs = classify(region.features, [categories[k] for k in keys if k in categories])
    facs = facs[facs["category"].isin(keys)]
    if len(facs) == 0:
        return empty
    out = facs[["facility_id", "category", "name", "geometry"]].reset_index(drop=True)
    return out.to_crs(crs) if CRS.from_user_input(out.crs) != CRS.from_user_input(crs) else out


def dwelling_points(plan: Plan, region: Region | None) -> tuple[gpd.GeoDataFrame, str]:
    """Points that stand for dwellings, with a ``weight`` (households where known)."""
    res = plan.residential
    if len(res):
        hh = res["households"].to_numpy(float)
        weighted = bool(np.isfinite(hh).all() and hh.sum() > 0)
        weight = hh if weighted else np.ones(len(res))
        pts = shapely.point_on_surface(res.geometry.to_numpy())
        how = "plan residential features" + (
            " (weighted by households)"
            if weighted
            else " (equal weights: give every residential feature `households` to weight them)"
        )
        return gpd.GeoDataFrame({"weight": weight}, geometry=pts, crs=plan.crs), how
    if region is not None:
        from planner.demand import homes_from_region

        homes = homes_from_region(region)
        homes = homes[(homes["source"] == "building").to_numpy()]
        if len(homes):
            homes = homes.to_crs(plan.crs) if CRS.from_user_input(homes.crs) != plan.crs else homes
            inside = shapely.contains_xy(
                plan.estate, homes.geometry.x.to_numpy(), homes.geometry.y.to_numpy()
            )
            homes = homes[inside]
        if len(homes):
            return (
                gpd.GeoDataFrame(
                    {"weight": homes["population"].to_numpy(float)},
                    geometry=homes.geometry.to_numpy(),
                    crs=plan.crs,
                ),
                "OSM residential buildings inside the estate (weighted by estimated residents)",
            )
    return _grid(
        plan.estate, DWELLING_GRID_M, plan.crs
    ), f"grid of points every {DWELLING_GRID_M:g} m over the estate (equal weights)"


def _grid(poly, spacing: float, crs) -> gpd.GeoDataFrame:
    from planner.demand import grid_points

    gx, gy = grid_points(poly, spacing)
    return gpd.GeoDataFrame({"weight": np.ones(len(gx))}, geometry=gpd.points_from_xy(gx, gy), crs=crs)


def walking_network(plan: Plan, region: Region | None) -> tuple[Network | None, str]:
    """Walking network from OSM streets and the plan's paths; (None, "straight_line") without either."""
    from planner.network import build_network

    net = None
    if region is not None:
        try:
            net = build_network(region, mode="walk")
        except InputError:
            if len(plan.paths) == 0:
                raise
    if len(plan.paths):
        net = _with_paths(net, plan.paths.geometry.to_numpy(), plan.crs)
    return (net, "network") if net is not None else (None, "straight_line")


def _with_paths(net, lines: np.ndarray, crs):
    """Add planned walkways to a network (or make one from them).

    Paths are noded where they cross or touch each other and get a vertex every
    :data:`_PATH_VERTEX_M`; each path end joins the nearest existing street node within
    ``settings.gate_tolerance_m``. A path end within :data:`_PATH_SNAP_M` of another path
    joins it.
    """
    from planner.network import from_arrays

    lines = _snap_path_ends(shapely.get_parts(lines))
    noded = shapely.union_all(lines)  # splits lines at every crossing, so crossings connect
    # Vertices every few metres, so homes and facilities snap next to the path, not to a
    # crossing far along it.
    parts = shapely.get_parts(shapely.segmentize(noded, _PATH_VERTEX_M))
    seg_a, seg_b = [], []
    for part in parts:
        xy = shapely.get_coordinates(part)
        seg_a.append(xy[:-1])
        seg_b.append(xy[1:])
    a, b = np.concatenate(seg_a), np.concatenate(seg_b)
    pts = np.round(np.concatenate([a, b]), 3)
    uniq, inv = np.unique(pts, axis=0, return_inverse=True)
    inv = inv.ravel()
    pu, pv = inv[: len(a)], inv[len(a) :]
    keep = pu != pv
    pu, pv = pu[keep], pv[keep]
    base = 0 if net is None else net.n_nodes
    x = uniq[:, 0] if net is None else np.concatenate([net.x, uniq[:, 0]])
    y = uniq[:, 1] if net is None else np.concatenate([net.y, uniq[:, 1]])
    plen = np.hypot(uniq[pu, 0] - uniq[pv, 0], uniq[pu, 1] - uniq[pv, 1])
    us, vs, lens = [pu + base, pv + base], [pv + base, pu + base], [plen, plen]
    if net is not None:
        us.insert(0, net.u)
        vs.insert(0, net.v)
        lens.insert(0, net.length_m)
        ends = np.concatenate(
            [
                shapely.get_coordinates(shapely.get_point(lines, 0)),
                shapely.get_coordinates(shapely.get_point(lines, -1)),
            ]
        )
        end_nodes = _row_index(uniq, np.round(ends, 3))
        d, node = net.tree.query(uniq[end_nodes])
        ok = d <= settings.gate_tolerance_m
        ju, jv = end_nodes[ok] + base, node[ok]
        us += [ju, jv]
        vs += [jv, ju]
        lens += [d[ok], d[ok]]
    return from_arrays(
        x,
        y,
        np.concatenate(us),
        np.concatenate(vs),
        crs,
        length_m=np.concatenate(lens),
        two_way=False,
        walk_speed_mps=None if net is None else net.walk_speed_mps,
    )


def _snap_path_ends(lines: np.ndarray) -> np.ndarray:
    """Move path ends that nearly touch another path onto it, as a vertex of both."""
    coords = [shapely.get_coordinates(g) for g in lines]
    tree = shapely.STRtree(lines)
    for i in range(len(coords)):
        for end in (0, -1):
            e = shapely.points(coords[i][end])
            near = [j for j in tree.query(e, predicate="dwithin", distance=_PATH_SNAP_M) if j != i]
            if not near:
                continue
            current = [shapely.linestrings(c) for c in coords]
            j = min(near, key=lambda k: shapely.distance(current[k], e))
            other = current[j]
            if shapely.distance(other, e) == 0 and any((coords[j] == coords[i][end]).all(axis=1)):
                continue  # already a shared vertex
            along = shapely.line_locate_point(other, e)
            p = shapely.get_coordinates(shapely.line_interpolate_point(other, along))[0]
            seg = np.hypot(*np.diff(coords[j], axis=0).T)
            k = int(np.searchsorted(np.concatenate([[0.0], np.cumsum(seg)]), along, side="right"))
            k = min(max(k, 1), len(coords[j]) - 1)
            coords[j] = np.insert(coords[j], k, p, axis=0)
            coords[i][end] = p
    return np.array([shapely.linestrings(c) for c in coords], dtype=object)


def _row_index(table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Index of each row of ``rows`` in ``table`` (rows present in ``table``)."""
    lookup = {tuple(r): i for i, r in enumerate(table.tolist())}
    return np.array([lookup[tuple(r)] for r in rows.tolist() if tuple(r) in lookup], np.int64)


def radius_key(rule: Rule) -> str:
    """Distance key of a radius rule: its category, and its level when it has one (the tier
    rule: a higher level's facility does not stand in for a lower level's)."""
    return f"{rule.category}@{rule.level}" if rule.level else rule.category


def category_distances(
    plan: Plan, existing: gpd.GeoDataFrame, dwellings: gpd.GeoDataFrame, keys: list[str], net: Network | None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per key (``category`` or ``category@level``): distance in metres from each dwelling to
    its nearest facility and that facility's row in the combined table (-1 none). Planned
    facilities count for a ``category@level`` key when they serve that level; existing (OSM)
    ones, whose level is unknown, count for every key of their category."""
    planned = plan.facilities[["facility_id", "category", "geometry"]]
    targets = pd.concat([planned, existing[["facility_id", "category", "geometry"]]], ignore_index=True)
    geoms = targets.geometry.to_numpy()
    cats = targets["category"].to_numpy()
    levels = np.concatenate(
        [
            plan.facilities["level"].to_numpy(object)
            if "level" in plan.facilities.columns
            else np.full(len(planned), None, object),
            np.full(len(existing), None, object),
        ]
    )
    is_existing = np.arange(len(targets)) >= len(planned)
    xy = shapely.get_coordinates(dwellings.geometry.to_numpy())
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    n = len(xy)

    def chosen(key: str) -> np.ndarray:
        cat, _, lv = key.partition("@")
        sel = cats == cat
        return sel & ((levels == lv) | is_existing) if lv else sel

    if net is None:
        for key in keys:
            idx = np.nonzero(chosen(key))[0]
            if len(idx) == 0:
                out[key] = (np.full(n, np.inf), np.full(n, -1, np.int64))
                continue
            tree = shapely.STRtree(geoms[idx])
            (src, tgt), dist = tree.query_nearest(
                dwellings.geometry.to_numpy(), return_distance=True, all_matches=False
            )
            d = np.full(n, np.inf)
            t = np.full(n, -1, np.int64)
            d[src], t[src] = dist, idx[tgt]
            out[key] = (d, t)
        return out
    from planner.access import geometry_access, point_access
    from planner.network import TargetGraph, trip_costs

    origins = point_access(net, xy)
    sel = {key: chosen(key) for key in keys}
    needed = np.logical_or.reduce(list(sel.values())) if sel else np.zeros(len(cats), bool)
    graph = TargetGraph(net, geometry_access(net, geoms[needed]), weight="length") if needed.any() else None
    sub_index = np.nonzero(needed)[0]
    for key in keys:
        local = np.nonzero(sel[key][needed])[0] if needed.any() else np.zeros(0, np.int64)
        if len(local) == 0:
            out[key] = (np.full(n, np.inf), np.full(n, -1, np.int64))
            continue
        cost, tgt = graph.sweep(local)
        d, t = trip_costs(net, origins, cost, tgt, "length")
        out[key] = (d, np.where(t >= 0, sub_index[np.maximum(t, 0)], -1))
    return out


# --------------------------------------------------------------------------------------------
# report
