"""The life-circle audit: network travel time from every home to the nearest facility of
each category, coverage within 5/10/15 minutes, isochrones, and the audit's outputs.

One multi-source Dijkstra per category (``scipy.sparse.csgraph``) gives every network node
its time to the category's nearest facility; a home's time is its off-network leg plus the
time of the node it enters the network at (for homes in gated compounds: the best gate).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from tqdm import tqdm  # plain bars: tqdm.auto warns in Jupyter without ipywidgets

from planner import settings
from planner._errors import InputError
from planner._io import atomic_dir
from planner.categories import Category, load_categories, region_facilities
from planner.demand import add_groups, assign_compounds, compounds, homes_from_region
from planner.network import (
    Access, Network, TargetGraph, build_network, geometry_access, point_access, snap, sweep_many,
    trip_costs,
)
from planner.sources import Region


@dataclass
class AuditResult:
    """Everything an audit found, in the region's metric CRS.

    Attributes
    ----------
    homes : GeoDataFrame
        One row per home: ``home_id``, ``population``, groups, and per category key
        ``<key>_time_s`` (NaN when no facility is reachable within
        ``settings.max_travel_time_s``) and ``<key>_facility_id``.
    facilities : GeoDataFrame
        ``facility_id``, ``category``, ``name``, geometry.
    coverage : DataFrame
        One row per category and threshold (see :func:`coverage_table`).
    isochrones : GeoDataFrame or None
        ``category``, ``minutes``, polygon: the area within that many minutes of the
        category's nearest facility.
    node_time_s : dict
        Category key → time from every network node to its nearest facility.
    """

    region: str
    network: Network
    categories: list[Category]
    minutes: tuple[int, ...]
    homes: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    coverage: pd.DataFrame
    isochrones: gpd.GeoDataFrame | None
    node_time_s: dict[str, np.ndarray]
    compounds: dict
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """The facts of the run as a JSON-ready dict (what ``summary.json`` holds)."""
        fac_counts = self.facilities["category"].value_counts().to_dict()
        missing = [c.key for c in self.categories if fac_counts.get(c.key, 0) == 0]
        return {
            "region": self.region,
            "crs": self.network.crs.to_string(),
            "mode": self.network.mode,
            "walk_speed_mps": self.network.walk_speed_mps,
            "elderly_walk_speed_mps": settings.elderly_walk_speed_mps,
            "minutes": list(self.minutes),
            "network": {"nodes": int(self.network.n_nodes), "edges": int(self.network.n_edges)},
            "homes": int(len(self.homes)),
            "homes_estimated": int(self.homes["estimated"].sum()),
            "population": float(self.homes["population"].sum()),
            "facilities": {c.key: int(fac_counts.get(c.key, 0)) for c in self.categories},
            "categories": {c.key: {"name_zh": c.name_zh, "name_en": c.name_en, "target_minutes": c.minutes}
                           for c in self.categories},
            "categories_without_facilities": missing,
            "compounds": self.compounds,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "notes": self.notes + self.network.notes,
        }

    def write(self, out_dir: str | Path, map_html: bool = True) -> Path:
        """Write ``homes.gpkg``, ``coverage.csv``, ``summary.json`` and ``map.html`` atomically."""
        started = time.perf_counter()
        with atomic_dir(out_dir) as tmp:
            homes = self.homes.to_crs(4326)
            homes.to_file(tmp / "homes.gpkg", layer="homes", driver="GPKG")
            self.facilities.to_crs(4326).assign(geometry=lambda d: d.geometry.representative_point()).to_file(
                tmp / "homes.gpkg", layer="facilities", driver="GPKG"
            )
            if self.isochrones is not None and len(self.isochrones):
                self.isochrones.to_crs(4326).to_file(tmp / "homes.gpkg", layer="isochrones", driver="GPKG")
            self.coverage.to_csv(tmp / "coverage.csv", index=False, encoding="utf-8")
            if map_html:
                from planner.maps import map_audit, save_map

                m = map_audit(
                    homes=homes,
                    facilities=self.facilities.to_crs(4326).assign(
                        geometry=lambda d: d.geometry.representative_point()),
                    isochrones=None if self.isochrones is None else self.isochrones.to_crs(4326),
                    categories=[{"key": c.key, "name_zh": c.name_zh, "name_en": c.name_en, "minutes": c.minutes}
                                for c in self.categories],
                    roads=roads_gdf(self.network).to_crs(4326),
                    minutes=self.minutes,
                    title=f"{self.region} — 生活圈 life-circle audit",
                )
                save_map(m, tmp / "map.html")
            self.seconds["write"] = time.perf_counter() - started
            summary = self.summary()
            (tmp / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
        return Path(out_dir)


def audit(
    region: Region,
    categories: str | Iterable[str] | None = None,
    minutes: Sequence[int] | None = None,
    mode: str = "walk",
    homes: gpd.GeoDataFrame | None = None,
    extra_facilities: gpd.GeoDataFrame | None = None,
    categories_file: str | Path | None = None,
    with_isochrones: bool | str = True,
    network: Network | None = None,
    boundary=None,
    sweeper=None,
    progress: bool | None = None,
) -> AuditResult:
    """Audit a region's life circles.

    Parameters
    ----------
    region : Region
        From :func:`planner.sources.load_region`.
    categories : str or list of str, optional
        Category keys (comma-separated or a list); all when None.
    minutes : sequence of int, optional
        Thresholds; default ``settings.minutes`` (5, 10, 15).
    mode : {"walk", "bike", "drive"}
    homes : GeoDataFrame, optional
        Homes to use instead of those found in OSM (``population`` column required).
    extra_facilities : GeoDataFrame, optional
        Facilities to add to those in OSM (``facility_id``, ``category``, ``name``).
    categories_file : path, optional
        A user's categories TOML, added to the bundled ones.
    with_isochrones : bool or "all"
        Draw each category's area within its target circle (True), within every threshold
        ("all"), or none (False).
    network : Network, optional
        A network built already (skips :func:`build_network`).
    boundary : polygon, GeoDataFrame or path, optional
        Count only homes inside it. Load the region with a buffer beyond it
        (``load_region(..., boundary, buffer_m=reach_m(minutes))``) so that facilities just
        across the boundary still serve homes near it.
    sweeper : callable, optional
        ``sweeper(targets, subsets, limit)`` → iterable of (cost, nearest) per subset, in
        order; default :func:`planner.network.sweep_many` (local processes). The batch
        engine passes one that runs the sweeps as tasks on a Dask cluster.

    Returns
    -------
    AuditResult
    """
    from planner.categories import select

    show = settings.progress if progress is None else progress
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    cats = select(load_categories(categories_file), categories)
    minutes = tuple(int(m) for m in (minutes or settings.minutes))
    if not minutes or min(minutes) <= 0:
        raise InputError(f"--minutes {minutes}: give positive whole minutes such as 5,10,15")
    net = network if network is not None else build_network(region, mode)
    seconds["network"] = time.perf_counter() - t0

    t = time.perf_counter()
    if homes is None:
        homes = homes_from_region(region)
    else:
        homes = add_groups(homes.to_crs(region.crs).reset_index(drop=True))
    if len(homes) == 0:
        raise InputError(
            f"{region.source}: no homes found (no residential buildings or residential land use); "
            "give homes with --homes FILE (households or population per point)"
        )
    if boundary is not None:
        from planner.sources import boundary_polygon

        poly = boundary_polygon(boundary, region.crs)
        homes = homes[shapely.within(homes.geometry.to_numpy(), poly)]
        if len(homes) == 0:
            raise InputError(f"{region.source}: no homes inside the boundary; check the boundary or give --homes")
    homes = homes.reset_index(drop=True)
    comps = compounds(region)
    access, comp_info = home_access(net, homes, comps)
    homes["snap_m"] = _snap_distance(net, homes)
    homes["compound_id"] = comp_info.pop("_home_compound")
    seconds["homes"] = time.perf_counter() - t

    t = time.perf_counter()
    facilities = region_facilities(region.features, cats, extra_facilities)
    fac_access = geometry_access(net, facilities.geometry.to_numpy())
    targets = TargetGraph(net, fac_access, "time")
    seconds["facilities"] = time.perf_counter() - t

    t = time.perf_counter()
    node_time: dict[str, np.ndarray] = {}
    fac_ids = facilities["facility_id"].to_numpy()
    cat_of = facilities["category"].to_numpy()
    subsets = [np.nonzero(cat_of == cat.key)[0] for cat in cats]
    swept = (sweeper or sweep_many)(targets, subsets, limit=settings.max_travel_time_s)
    for cat, (cost, which) in tqdm(zip(cats, swept), total=len(cats), desc="nearest-facility sweeps",
                                   unit="category", disable=not show, leave=False):
        node_time[cat.key] = cost
        home_cost, home_target = trip_costs(net, access, cost, which, "time")
        home_cost[home_cost > settings.max_travel_time_s] = np.inf
        homes[f"{cat.key}_time_s"] = np.where(np.isfinite(home_cost), home_cost, np.nan)
        homes[f"{cat.key}_facility_id"] = np.where(
            np.isfinite(home_cost), fac_ids[np.clip(home_target, 0, None)] if len(fac_ids) else None, None
        )
    seconds["sweeps"] = time.perf_counter() - t

    t = time.perf_counter()
    speed_ratio = net.walk_speed_mps / settings.elderly_walk_speed_mps if net.mode == "walk" else 1.0
    cov = coverage_table(homes, cats, minutes, elderly_time_factor=speed_ratio)
    iso = None
    if with_isochrones:
        # Each category's own target circle by default (one polygon union per category is
        # the slow part of an audit); "all" draws every threshold.
        parts = [isochrone_polygons(net, node_time[c.key],
                                    minutes if with_isochrones == "all" else [c.minutes], category=c.key)
                 for c in tqdm(cats, desc="isochrones", unit="category", disable=not show, leave=False)]
        iso = pd.concat(parts, ignore_index=True) if parts else None
    seconds["coverage"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    notes = []
    if homes["estimated"].any():
        notes.append(
            f"{int(homes['estimated'].sum())} homes are estimated on a {settings.grid_spacing_m:g} m grid over "
            "residential land without mapped buildings"
        )
    missing = [c.key for c in cats if not (cat_of == c.key).any()]
    if missing:
        notes.append("no facility mapped for: " + ", ".join(missing) + " (their coverage is 0; add them with --facilities FILE)")
    return AuditResult(
        region=region.name, network=net, categories=cats, minutes=minutes, homes=homes,
        facilities=facilities, coverage=cov, isochrones=iso, node_time_s=node_time,
        compounds=comp_info, seconds=seconds, notes=notes,
    )


def home_access(net: Network, homes: gpd.GeoDataFrame, comps: gpd.GeoDataFrame) -> tuple[Access, dict]:
    """Where each home enters the street network.

    Homes inside a gated compound leave through one of its gates (the straight walk to the
    gate plus the gate's snap to the street); a compound with walls but no mapped gate falls
    back to the nearest street node, and the returned summary says so.
    """
    xy = shapely.get_coordinates(homes.geometry.to_numpy())
    base = point_access(net, xy)
    comp_of = assign_compounds(homes, comps)
    n_gates = np.array([len(g) for g in comps["gate_ids"]], np.int64) if len(comps) else np.zeros(0, np.int64)
    gated_home = (comp_of >= 0) & (n_gates[np.clip(comp_of, 0, None)] > 0 if len(comps) else False)
    info = {
        "detected": int(len(comps)),
        "with_gates": int((n_gates > 0).sum()),
        "homes_routed_through_gates": int(gated_home.sum()),
        "without_gates_fell_back_to_nearest_street": [
            {"compound_id": cid, "name": name}
            for cid, name, k in zip(comps["compound_id"], comps["name"], n_gates) if k == 0
        ] if len(comps) else [],
        "_home_compound": np.where(comp_of >= 0, comps["compound_id"].to_numpy()[np.clip(comp_of, 0, None)] if len(comps) else None, None),
    }
    if not gated_home.any():
        return base, info
    h = np.nonzero(gated_home)[0]
    counts = n_gates[comp_of[h]]
    owner = np.repeat(h, counts)
    gate_xy = np.concatenate([comps["gate_xy"].iloc[c] for c in comp_of[h]])
    gate_node, gate_snap = snap(net, gate_xy)
    leg = np.hypot(xy[owner, 0] - gate_xy[:, 0], xy[owner, 1] - gate_xy[:, 1]) + gate_snap
    keep = ~gated_home
    return Access(
        owner=np.concatenate([base.owner[keep], owner]),
        node=np.concatenate([base.node[keep], gate_node]),
        leg_m=np.concatenate([base.leg_m[keep], leg]),
        n_owners=base.n_owners,
    ), info


def coverage_table(
    homes: pd.DataFrame,
    categories: Sequence[Category],
    minutes: Sequence[int],
    elderly_time_factor: float = 1.0,
) -> pd.DataFrame:
    """Shares of homes, people, elderly and children within each threshold of each category.

    ``elderly_time_factor`` scales times for the elderly (walking speed / elderly walking
    speed): on a walk network every edge is walked at one speed, so a slower walker's time
    is exactly proportional. Homes with no reachable facility count as outside.

    Returns
    -------
    pandas.DataFrame
        ``category``, ``name_zh``, ``name_en``, ``minutes``, ``target_minutes``,
        ``homes_share``, ``population_share``, ``elderly_share``, ``children_share``,
        ``disabled_share``, ``population_outside``.
    """
    rows = []
    pop = homes["population"].to_numpy(float)
    groups = {g: homes[g].to_numpy(float) for g in ("elderly", "children", "disabled")}
    for cat in categories:
        t = homes[f"{cat.key}_time_s"].to_numpy(float)
        for m in minutes:
            limit = m * 60.0
            inside = np.nan_to_num(t, nan=np.inf) <= limit
            inside_elderly = np.nan_to_num(t * elderly_time_factor, nan=np.inf) <= limit
            rows.append({
                "category": cat.key,
                "name_zh": cat.name_zh,
                "name_en": cat.name_en,
                "minutes": int(m),
                "target_minutes": cat.minutes,
                "homes_share": _share(inside, np.ones_like(pop)),
                "population_share": _share(inside, pop),
                "elderly_share": _share(inside_elderly, groups["elderly"]),
                "children_share": _share(inside, groups["children"]),
                "disabled_share": _share(inside, groups["disabled"]),
                "population_outside": float(pop[~inside].sum()),
            })
    return pd.DataFrame(rows)


def _share(mask: np.ndarray, weight: np.ndarray) -> float:
    total = weight.sum()
    return float(weight[mask].sum() / total) if total > 0 else 0.0


def isochrone_polygons(
    net: Network,
    node_time_s: np.ndarray,
    minutes: Sequence[int],
    category: str | None = None,
    buffer_m: float | None = None,
) -> gpd.GeoDataFrame:
    """Areas within each threshold of the sweep's sources, as polygons.

    Every street segment reachable within the time is kept whole, and a segment whose far
    end is out of reach is cut where the time runs out; the kept lines are buffered by
    ``buffer_m`` (``settings.isochrone_buffer_m``). This follows the street network, unlike
    a convex hull of reached nodes.
    """
    buf = settings.isochrone_buffer_m if buffer_m is None else buffer_m
    geoms, mins = [], []
    for m in sorted(minutes):
        limit = m * 60.0
        ta, tb = node_time_s[net.u], node_time_s[net.v]
        # A segment reached at both ends appears in both directions: draw it once.
        reach = (ta <= limit) & ~((tb <= limit) & (net.u > net.v))
        if not reach.any():
            continue
        u, v = net.u[reach], net.v[reach]
        frac = np.clip((limit - ta[reach]) / np.maximum(net.time_s[reach], 1e-9), 0.0, 1.0)
        ax, ay = net.x[u], net.y[u]
        bx = ax + (net.x[v] - ax) * frac
        by = ay + (net.y[v] - ay) * frac
        lines = shapely.linestrings(np.stack([np.column_stack([ax, ay]), np.column_stack([bx, by])], axis=1))
        # Buffer segments one by one and union: far faster in GEOS than buffering one
        # MultiLineString with many overlapping parts.
        poly = shapely.union_all(shapely.buffer(lines, buf, quad_segs=4))
        geoms.append(poly)
        mins.append(int(m))
    return gpd.GeoDataFrame(
        {"category": [category] * len(geoms), "minutes": mins}, geometry=geoms, crs=net.crs
    )


def facility_isochrones(
    result: AuditResult, facility_ids: Iterable[str], minutes: Sequence[int] | None = None
) -> gpd.GeoDataFrame:
    """Isochrones of chosen facilities, one set per facility (``facility_id``, ``minutes``)."""
    from planner.network import sweep

    minutes = tuple(minutes or result.minutes)
    fac = result.facilities.drop_duplicates("facility_id").set_index("facility_id", drop=False)
    parts = []
    for fid in facility_ids:
        if fid not in fac.index:
            raise InputError(f"facility {fid!r}: not among the audit's facilities")
        acc = geometry_access(result.network, np.array([fac.loc[fid, "geometry"]], dtype=object))
        cost, _ = sweep(result.network, acc, "time", limit=max(minutes) * 60.0)
        part = isochrone_polygons(result.network, cost, minutes, category=fac.loc[fid, "category"])
        part.insert(0, "facility_id", fid)
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else gpd.GeoDataFrame(
        {"facility_id": [], "category": [], "minutes": []}, geometry=[], crs=result.network.crs)


def roads_gdf(net: Network) -> gpd.GeoDataFrame:
    """One line per street segment (either direction once), for maps."""
    a, b = np.minimum(net.u, net.v), np.maximum(net.u, net.v)
    pairs = np.unique(np.column_stack([a, b]), axis=0)
    lines = shapely.linestrings(np.stack([
        np.column_stack([net.x[pairs[:, 0]], net.y[pairs[:, 0]]]),
        np.column_stack([net.x[pairs[:, 1]], net.y[pairs[:, 1]]]),
    ], axis=1))
    return gpd.GeoDataFrame(geometry=lines, crs=net.crs)


def _snap_distance(net: Network, homes: gpd.GeoDataFrame) -> np.ndarray:
    _, dist = snap(net, shapely.get_coordinates(homes.geometry.to_numpy()))
    return dist
