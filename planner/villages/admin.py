"""Administrative villages (行政村): the unit the plan's rural indicator counts.

The 十四五 plan's rural target (国办发〔2021〕56号: 65.7 % in 2020 → ≥ 80 % by 2025) counts
administrative villages — each the territory of one 村民委员会 — that have a comprehensive
service facility. Their hamlets (自然村, natural villages) are what :func:`planner.villages.
find_villages` finds; this module

* finds the administrative villages (:func:`find_admin_villages`), from the first source that
  has them: a user's boundary file (``--villages FILE``, the way county offices hold them),
  village-level ``boundary=administrative`` areas in OSM, or village committees (村委会)
  whose territories are the network Voronoi cells of the walk network — every street node
  belongs to the committee nearest along the network (one multi-source sweep,
  :class:`planner.network.TargetGraph`), drawn as the union of the nodes' Voronoi cells;
* groups hamlets under them (:func:`assign_hamlets`);
* computes the plan's indicator (:func:`admin_indicator`) and places the fewest new stations
  that reach the target, one per administrative village without a facility, where it serves
  most of that village's residents (:func:`place_stations`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner._errors import InputError
from planner.access import geometry_access
from planner.network import Network, TargetGraph, cost_matrix
from planner.settlement import is_village_boundary, is_village_committee
from planner.sources import Region

__all__ = [
    "ADMIN_COLUMNS",
    "StationSites",
    "admin_indicator",
    "assign_hamlets",
    "find_admin_villages",
    "network_voronoi",
    "place_stations",
    "read_village_boundaries",
]

#: Columns of :func:`find_admin_villages`' frame (plus geometry).
ADMIN_COLUMNS = ["admin_id", "name", "source", "committee", "population_given"]
#: Territories drawn from committees reach this far beyond the outermost street node.
TERRITORY_MARGIN_M = 200.0

_NAME_COLUMNS = ("name", "名称", "村名", "行政村")
_SUFFIX = ("村民委员会", "村委会", "村委")


def admin_name(committee_name: str | None) -> str | None:
    """The administrative village a committee serves: 长春村村委 → 长春村, 博儒桥村委 → 博儒桥村."""
    if not committee_name:
        return None
    base = committee_name.strip()
    for suffix in _SUFFIX:
        if base.endswith(suffix):
            base = base[: -len(suffix)].strip() or base
            break
    return base if base.endswith("村") else base + "村"


def read_village_boundaries(
    path: str | os.PathLike, crs, file_crs=None, coords: str | None = None
) -> gpd.GeoDataFrame:
    """Administrative villages from a user's file (GeoPackage/GeoJSON/Shapefile of polygons,
    or a CSV in UTF-8 or GBK with a ``wkt`` column).

    Columns: a name (``name``, or 名称/村名/行政村), optional ``population``. ``file_crs`` and
    ``coords`` are :func:`planner.categories.read_points_table`'s ``crs`` and ``coords``.

    Returns
    -------
    GeoDataFrame
        :data:`ADMIN_COLUMNS` in ``crs``, ``source="file"``.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(
            f"--villages {path}: no such file; give a GeoPackage or GeoJSON of village boundaries"
        )
    if path.lower().endswith(".csv") or file_crs is not None or coords not in (None, "wgs84"):
        from planner.categories import read_points_table

        frame = read_points_table(path, crs=file_crs, coords=coords)
        return boundaries_frame(frame, crs, f"--villages {path}")
    try:
        frame = gpd.read_file(path)
    except (OSError, ValueError, RuntimeError) as err:  # pyogrio's DataSourceError is a RuntimeError
        raise InputError(
            f"--villages {path}: not a readable GeoPackage/GeoJSON ({str(err).splitlines()[0]})"
        ) from None
    return boundaries_frame(frame, crs, f"--villages {path}")


def boundaries_frame(frame: gpd.GeoDataFrame, crs, label: str = "boundaries") -> gpd.GeoDataFrame:
    """Check and normalise administrative village boundaries (see :func:`read_village_boundaries`)."""
    if "admin_id" in frame.columns and set(ADMIN_COLUMNS) <= set(frame.columns):
        return frame.to_crs(crs).reset_index(drop=True)  # already ours
    if len(frame) == 0:
        raise InputError(f"{label}: no rows; give one polygon per administrative village")
    if frame.crs is None:
        raise InputError(f"{label}: no coordinate reference system; save it with one (e.g. EPSG:4326)")
    name_col = next((c for c in _NAME_COLUMNS if c in frame.columns), None)
    if name_col is None:
        raise InputError(f"{label}: no 'name' column; add the administrative village names")
    kinds = frame.geometry.geom_type.to_numpy()
    bad = np.flatnonzero(~np.isin(kinds, ["Polygon", "MultiPolygon"]) | frame.geometry.isna().to_numpy())
    if len(bad):
        raise InputError(f"{label}: row {bad[0] + 1} is not a polygon; give village boundaries as polygons")
    names = frame[name_col]
    missing = np.flatnonzero(names.isna().to_numpy() | (names.astype(str).str.strip() == "").to_numpy())
    if len(missing):
        raise InputError(f"{label}: row {missing[0] + 1} has no name; name every village")
    population = np.full(len(frame), np.nan)
    if "population" in frame.columns:
        population = pd.to_numeric(frame["population"], errors="coerce").to_numpy(float)
        wrong = np.flatnonzero(
            np.isfinite(population) & (population < 0)
            | (frame["population"].notna().to_numpy() & ~np.isfinite(population))
        )
        if len(wrong):
            raise InputError(f"{label}: row {wrong[0] + 1} has a population that is not a number ≥ 0")
    frame = frame.to_crs(crs)
    return gpd.GeoDataFrame(
        {
            "admin_id": [f"file/{i + 1}" for i in range(len(frame))],
            "name": names.astype(str).str.strip().to_numpy(),
            "source": "file",
            "committee": None,
            "population_given": population,
        },
        geometry=shapely.make_valid(frame.geometry.to_numpy()),
        crs=crs,
    )


def find_admin_villages(
    region: Region, net: Network | None = None, boundaries: str | os.PathLike | gpd.GeoDataFrame | None = None
) -> gpd.GeoDataFrame:
    """The administrative villages of a region, with their territories.

    Parameters
    ----------
    region : Region
    net : Network, optional
        The walk network for committee territories (built when needed and not given).
    boundaries : path or GeoDataFrame, optional
        A user's village boundaries (see :func:`read_village_boundaries`); they win over OSM.

    Returns
    -------
    GeoDataFrame
        :data:`ADMIN_COLUMNS` and territory polygons in ``region.crs``; ``source`` is ``file``,
        ``boundary`` (OSM) or ``committee`` (network Voronoi). Empty when none is mapped.
    """
    crs = region.crs
    if boundaries is not None:
        if isinstance(boundaries, gpd.GeoDataFrame):
            return boundaries_frame(boundaries.reset_index(drop=True), crs)
        return read_village_boundaries(boundaries, crs)
    feats = region.features
    tags = feats["tags"].tolist()
    geoms = feats.geometry.to_numpy()
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6)) if len(geoms) else np.zeros(0, bool)
    committees = [i for i, t in enumerate(tags) if is_village_committee(t)]
    bounds = [i for i in np.flatnonzero(polygonal) if is_village_boundary(tags[i]) and tags[i].get("name")]
    if bounds:
        return _boundary_villages(feats, bounds, committees, crs)
    if not committees:
        return empty_admin_villages(crs)
    return _committee_villages(region, net, committees)


def _boundary_villages(feats: gpd.GeoDataFrame, bounds: list, committees: list, crs) -> gpd.GeoDataFrame:
    """Administrative villages from OSM's village boundaries (features ``bounds``), each with the
    names of the village committees (features ``committees``) inside it."""
    tags = feats["tags"].tolist()
    geoms = feats.geometry.to_numpy()
    rows = {
        "admin_id": feats["osm_id"].to_numpy()[bounds],
        "name": [tags[i]["name"] for i in bounds],
        "source": "boundary",
        "committee": None,
        "population_given": np.nan,
    }
    out = gpd.GeoDataFrame(rows, geometry=geoms[bounds], crs=crs)
    if committees:
        pts = shapely.point_on_surface(geoms[committees])
        c_idx, a_idx = shapely.STRtree(out.geometry.to_numpy()).query(pts, predicate="within")
        named = {}
        for c, a in zip(c_idx, a_idx, strict=True):
            i = committees[c]
            named.setdefault(int(a), []).append(tags[i].get("name") or feats["osm_id"].iat[i])
        out["committee"] = [("、".join(named[k]) if k in named else None) for k in range(len(out))]
    return out


def _committee_villages(region: Region, net: Network | None, committees: list) -> gpd.GeoDataFrame:
    """Administrative villages from the village committees (features ``committees``), each with
    its territory along the walk network (:func:`network_voronoi`)."""
    feats = region.features
    tags = feats["tags"].tolist()
    geoms = feats.geometry.to_numpy()
    # One administrative village per committee name (a committee may be mapped twice: its
    # building and a point in it).
    names, first = {}, []
    for i in committees:
        key = admin_name(tags[i].get("name")) or feats["osm_id"].iat[i]
        if key not in names:
            names[key] = []
            first.append(i)
        names[key].append(i)
    keys = list(names)
    if net is None:
        from planner.network import build_network

        net = build_network(region, "walk")
    members = [names[k] for k in keys]
    owner = np.concatenate([np.full(len(m), j) for j, m in enumerate(members)])
    flat = np.concatenate(members)
    territories = network_voronoi(net, geoms[flat], owner, len(keys), _extent(region, net))
    return gpd.GeoDataFrame(
        {
            "admin_id": feats["osm_id"].to_numpy()[first],
            "name": [
                k if isinstance(k, str) and not k.startswith(("node/", "way/", "relation/")) else None
                for k in keys
            ],
            "source": "committee",
            "committee": [
                "、".join(dict.fromkeys(tags[i].get("name") or feats["osm_id"].iat[i] for i in m))
                for m in members
            ],
            "population_given": np.nan,
        },
        geometry=territories,
        crs=region.crs,
    )


def network_voronoi(net: Network, seeds: np.ndarray, owner: np.ndarray, n_owners: int, extent) -> np.ndarray:
    """Territory polygons of seed geometries on a network: each street node belongs to the
    seed nearest along the network (one multi-source sweep), each territory is the union of
    its nodes' planar Voronoi cells, clipped to ``extent``.

    ``owner`` maps each seed to its territory (several seeds may share one); returns
    ``n_owners`` polygons (empty where a territory holds no node).
    """
    _cost, nearest = TargetGraph(net, geometry_access(net, seeds), "time").sweep()
    label = np.where(nearest >= 0, owner[np.maximum(nearest, 0)], -1)
    xy = net.xy()
    # Nodes closer than a centimetre would give degenerate cells; one of each such group is enough.
    _, keep = np.unique(np.round(xy, 2), axis=0, return_index=True)
    keep = keep[label[keep] >= 0]
    cells = shapely.voronoi_polygons(shapely.multipoints(xy[keep]), extend_to=extent, ordered=True)
    cells = shapely.intersection(shapely.get_parts(cells), extent)
    out = np.empty(n_owners, dtype=object)
    lab = label[keep]
    for j in range(n_owners):
        mine = cells[lab == j]
        out[j] = shapely.union_all(mine) if len(mine) else shapely.Polygon()
    return out


def _extent(region: Region, net: Network):
    pts = shapely.multipoints(net.xy())
    return shapely.buffer(shapely.convex_hull(pts), TERRITORY_MARGIN_M)


def empty_admin_villages(crs) -> gpd.GeoDataFrame:
    """No administrative village: :func:`find_admin_villages`' columns, no rows."""
    return gpd.GeoDataFrame({c: [] for c in ADMIN_COLUMNS}, geometry=gpd.GeoSeries([], crs=crs), crs=crs)


def assign_hamlets(admin: gpd.GeoDataFrame, hamlets: gpd.GeoDataFrame) -> np.ndarray:
    """Index into ``admin`` of the territory holding each hamlet's centre (-1: none)."""
    out = np.full(len(hamlets), -1, np.int64)
    if len(admin) == 0 or len(hamlets) == 0:
        return out
    pts = shapely.points(hamlets[["centre_x", "centre_y"]].to_numpy(float))
    h, a = shapely.STRtree(admin.geometry.to_numpy()).query(pts, predicate="within")
    out[h] = a
    return out


def facilities_inside(admin: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame) -> np.ndarray:
    """Per administrative village: how many of ``facilities`` stand inside its territory."""
    count = np.zeros(len(admin), np.int64)
    if len(admin) == 0 or len(facilities) == 0:
        return count
    pts = shapely.point_on_surface(facilities.geometry.to_numpy())
    _f, a = shapely.STRtree(admin.geometry.to_numpy()).query(pts, predicate="within")
    np.add.at(count, a, 1)
    return count


def admin_indicator(admin: pd.DataFrame, target_share: float) -> dict:
    """The plan's indicator over administrative villages (``has_facility`` column)."""
    n = len(admin)
    k = int(admin["has_facility"].sum()) if n else 0
    share = k / n if n else None
    needed = max(0, math.ceil(target_share * n - 1e-9) - k) if n else 0
    return {
        "villages": n,
        "villages_with_facility": k,
        "share": share,
        "new_needed": needed,
        "target_met": bool(share >= target_share - 1e-12) if n else None,
    }


@dataclass
class StationSites:
    """New stations, one per chosen administrative village."""

    sites: gpd.GeoDataFrame
    chosen: np.ndarray  # indices into the admin frame
    notes: list


def place_stations(
    admin: gpd.GeoDataFrame, hamlets: gpd.GeoDataFrame, net: Network, limit_s: float, needed: int
) -> StationSites:
    """The ``needed`` new stations: in the administrative villages without a facility that
    have the most residents, each where it serves most of its village's residents.

    A station's site is one of its village's hamlet centres (on the settlement): the one whose
    walk of ``limit_s`` reaches the most people among the village's hamlets (ties: the least
    total walking). Hamlets with no population estimate are not demand. A village with no
    populated hamlet gets its station at its territory's middle (named in ``notes``).
    """
    crs = admin.crs
    cols = {
        "rank": [],
        "admin_id": [],
        "admin_village": [],
        "village_id": [],
        "name": [],
        "residents": [],
        "residents_served": [],
        "villages_added": [],
    }
    notes: list[str] = []
    if needed <= 0:
        empty = gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
        return StationSites(empty, np.zeros(0, int), notes)
    without = np.flatnonzero(~admin["has_facility"].to_numpy(bool))
    pop = admin["population"].to_numpy(float)
    # Most residents first; the indicator counts villages, so any of them adds one.
    order = without[np.lexsort((admin["admin_id"].to_numpy()[without].astype(str), -pop[without]))]
    chosen = order[:needed]
    h_admin = hamlets["admin_index"].to_numpy()
    h_pop = hamlets["population"].to_numpy(float)
    h_xy = hamlets[["centre_x", "centre_y"]].to_numpy(float)
    points = []
    for rank, a in enumerate(chosen, start=1):
        mine = np.flatnonzero((h_admin == a) & (h_pop > 0))
        name = admin["name"].iat[a]
        if len(mine) == 0:
            pt = shapely.point_on_surface(admin.geometry.iat[a])
            notes.append(
                f"{name or admin['admin_id'].iat[a]}: no hamlet with residents mapped; "
                "its station is placed at the territory's middle"
            )
            site_id, site_name, served = None, None, 0.0
        else:
            m = cost_matrix(net, h_xy[mine], h_xy[mine], cutoff=limit_s).tocoo()
            costs = np.full((len(mine), len(mine)), float(limit_s))
            reach = np.zeros((len(mine), len(mine)), bool)
            costs[m.row, m.col] = m.data
            reach[m.row, m.col] = True
            reach[np.arange(len(mine)), np.arange(len(mine))] = True  # a station in a hamlet serves it
            served_by = (reach * h_pop[mine][:, None]).sum(axis=0)
            total = costs.sum(axis=0)
            best = np.lexsort((total, -served_by))[0]
            pt = shapely.points(h_xy[mine[best]])
            site_id, site_name = hamlets["village_id"].iat[mine[best]], hamlets["name"].iat[mine[best]]
            served = float(served_by[best])
        points.append(pt)
        cols["rank"].append(rank)
        cols["admin_id"].append(admin["admin_id"].iat[a])
        cols["admin_village"].append(name)
        cols["village_id"].append(site_id)
        cols["name"].append(site_name if isinstance(site_name, str) else name)
        cols["residents"].append(float(pop[a]))
        cols["residents_served"].append(served)
        cols["villages_added"].append(1)
    sites = gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries(points, crs=crs), crs=crs)
    return StationSites(sites, chosen, notes)


def audit_admin_villages(
    region: Region,
    hamlets: gpd.GeoDataFrame,
    stations: gpd.GeoDataFrame,
    net: Network | None = None,
    boundaries: str | os.PathLike | gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Administrative villages with their hamlets, residents and comprehensive service facilities.

    Sets ``hamlets["admin_index"]`` (row of the result, -1: in none) and, where there are
    administrative villages, ``hamlets["admin_village"]`` (its name).

    Parameters
    ----------
    hamlets : GeoDataFrame
        :func:`planner.villages.find_villages`' frame with ``service_covered`` (the hamlet's
        centre within the village-level walk of a station, or one inside).
    stations : GeoDataFrame
        The comprehensive service facilities (what the rural categories file counts as one).

    Returns
    -------
    GeoDataFrame
        :data:`ADMIN_COLUMNS` plus ``hamlets``, ``population`` (the file's where given, else
        its hamlets' sum), ``population_source``, ``facilities`` (inside the territory),
        ``has_facility``, ``hamlets_within_walk``, ``population_within_walk``.
    """
    admin = find_admin_villages(region, net, boundaries).reset_index(drop=True)
    idx = assign_hamlets(admin, hamlets)
    hamlets["admin_index"] = idx
    if len(admin):
        names = admin["name"].to_numpy(object)
        hamlets["admin_village"] = [names[i] if i >= 0 else None for i in idx]
    n = len(admin)
    mine = idx >= 0
    pop = hamlets["population"].to_numpy(float)
    covered = hamlets["service_covered"].to_numpy(bool)
    summed = np.bincount(idx[mine], weights=pop[mine], minlength=n)
    given = admin["population_given"].to_numpy(float) if n else np.zeros(0)
    admin["hamlets"] = np.bincount(idx[mine], minlength=n).astype(np.int64)
    admin["population"] = np.where(np.isfinite(given), given, summed)
    admin["population_source"] = np.where(np.isfinite(given), "file", "hamlets")
    admin["facilities"] = facilities_inside(admin, stations)
    admin["has_facility"] = admin["facilities"].to_numpy() > 0
    admin["hamlets_within_walk"] = np.bincount(idx[mine & covered], minlength=n).astype(np.int64)
    walk = mine & covered
    admin["population_within_walk"] = np.bincount(idx[walk], weights=pop[walk], minlength=n)
    return admin


def indicator_rows(
    admin: pd.DataFrame,
    hamlets: pd.DataFrame,
    minutes: float,
    mode: str,
    target_share: float,
    baseline_share: float,
    source: str,
    confirmed: bool,
) -> list[dict]:
    """The head rows of ``indicators.csv``: the plan's indicator over administrative villages,
    then the shares of hamlets and of their residents within the village-level walk."""
    ind = admin_indicator(admin, target_share)
    base = {
        "category": "village_service_station",
        "level": "village",
        "mode": mode,
        "target_minutes": minutes,
        "confirmed": confirmed,
    }
    nan = float("nan")
    coverage = dict(
        base,
        indicator="rural_service_coverage",
        unit="administrative_village",
        name_zh="农村社区综合服务设施覆盖率",
        name_en="Administrative villages with a comprehensive service facility in their territory",
        mode=None,
        target_minutes=nan,
        villages=ind["villages"],
        villages_inside=ind["villages_with_facility"],
        share_inside=ind["share"],
        villages_within_target=ind["villages_with_facility"],
        share_within_target=ind["share"],
        population_share_inside=nan,
        population_share_within_target=nan,
        target_share=target_share,
        baseline_share_2020=baseline_share,
        target_met=ind["target_met"],
        confirmed=True,
        source=source,
    )
    return [coverage, *_hamlet_rows(hamlets, base)]


def _hamlet_rows(hamlets: pd.DataFrame, base: dict) -> list[dict]:
    """The rows of hamlets, and of their residents, within the village-level walk of a station."""
    n_h = len(hamlets)
    covered = hamlets["service_covered"].to_numpy(bool)
    pop = hamlets["population"].to_numpy(float)
    inside = hamlets["has_service_station"].to_numpy(bool)
    share_pop = float(pop[covered].sum() / pop.sum()) if pop.sum() > 0 else float("nan")
    share_pop_in = float(pop[inside].sum() / pop.sum()) if pop.sum() > 0 else float("nan")
    nan = float("nan")
    return [
        dict(
            base,
            indicator="hamlets_within_walk",
            unit="hamlet",
            name_zh="步行可达综合服务设施的自然村比例",
            name_en="Hamlets within the village-level walk of a comprehensive service facility",
            villages=n_h,
            villages_inside=int(inside.sum()),
            share_inside=float(inside.mean()) if n_h else nan,
            villages_within_target=int(covered.sum()),
            share_within_target=float(covered.mean()) if n_h else nan,
            population_share_inside=share_pop_in,
            population_share_within_target=share_pop,
            target_share=nan,
            baseline_share_2020=nan,
            target_met=None,
            source="TD/T 1062-2021《社区生活圈规划技术指南》村/组层级 within a short walk "
            "(to confirm); minutes: rural categories file",
        ),
        dict(
            base,
            indicator="population_within_walk",
            unit="resident",
            name_zh="步行可达综合服务设施的农村人口比例",
            name_en="Rural residents (of hamlets) within the village-level walk of a comprehensive service "
            "facility",
            villages=n_h,
            villages_inside=int(inside.sum()),
            share_inside=share_pop_in,
            villages_within_target=int(covered.sum()),
            share_within_target=share_pop,
            population_share_inside=share_pop_in,
            population_share_within_target=share_pop,
            target_share=nan,
            baseline_share_2020=nan,
            target_met=None,
            source="TD/T 1062-2021《社区生活圈规划技术指南》村/组层级 within a short walk "
            "(to confirm); a hamlet's residents count when its centre is within the minutes",
        ),
    ]


def admin_summary(admin: pd.DataFrame, hamlets: pd.DataFrame, target_share: float) -> dict:
    """The administrative villages and the hamlet shares, JSON-ready (for ``summary.json``)."""
    ind = admin_indicator(admin, target_share)
    covered = hamlets["service_covered"].to_numpy(bool)
    pop = hamlets["population"].to_numpy(float)
    grouped = (
        hamlets["admin_index"].to_numpy() >= 0 if "admin_index" in hamlets else np.zeros(len(hamlets), bool)
    )
    villages = []
    for k, row in enumerate(admin.itertuples()):
        names = hamlets.loc[hamlets["admin_index"].to_numpy() == k, "name"]
        villages.append(
            {
                "admin_id": row.admin_id,
                "name": row.name if isinstance(row.name, str) else None,
                "source": row.source,
                "committee": row.committee if isinstance(row.committee, str) else None,
                "has_facility": bool(row.has_facility),
                "facilities": int(row.facilities),
                "hamlets": int(row.hamlets),
                "hamlet_names": [n for n in names if isinstance(n, str)],
                "population": float(row.population),
                "population_source": row.population_source,
                "hamlets_within_walk": int(row.hamlets_within_walk),
                "population_within_walk": float(row.population_within_walk),
            }
        )
    return {
        "indicator": ind,
        "administrative_villages": villages,
        "hamlets": {
            "hamlets": len(hamlets),
            "grouped": int(grouped.sum()),
            "within_walk": int(covered.sum()),
            "share_within_walk": float(covered.mean()) if len(hamlets) else None,
            "population_share_within_walk": float(pop[covered].sum() / pop.sum()) if pop.sum() > 0 else None,
        },
    }
