"""Rural life circles: hamlets and administrative villages, their services, the plan's indicator.

The 十四五 urban–rural community service plan (国办发〔2021〕56号) counts administrative villages
(行政村): 80 % of them should have a comprehensive service facility by 2025 (65.7 % in 2020).
This module

* finds the hamlets (自然村) in OSM (:func:`find_villages`): ``place=village|hamlet`` nodes,
  named ``landuse=residential`` areas, village committees (村委会), and clusters of buildings
  where none of those is mapped, each with its homes and population (from buildings via
  :mod:`planner.demand` with the extract's rural or urban profile, or a population raster);
  on an urban extract (:mod:`planner.settlement`) only places and committees count;
* measures, per hamlet, which rural facility categories (``data/rural_categories.toml``,
  the village and township levels of TD/T 1062-2021) it has inside and within their target
  minutes, each level in its own travel mode, and the time to the township centre; groups the
  hamlets under their administrative villages and counts those with a comprehensive service
  facility (:mod:`planner.admin_villages`) (:func:`audit_villages`);
* proposes the fewest new stations that reach the target, one per administrative village
  without one, where it serves most of its residents (:func:`propose_stations`);
* writes it all (:func:`run_villages`).

Everything is measured in the region's metric CRS; outputs are WGS84.
"""

from __future__ import annotations

import json
import re
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from pyproj import Transformer
from scipy.sparse.csgraph import connected_components

from planner import settings
from planner._errors import InputError
from planner._io import atomic_dir
from planner.categories import Category, load_categories, region_facilities, select
from planner.demand import homes_from_region
from planner.network import (
    MODES, Network, TargetGraph, build_network, cost_matrix, geometry_access, nearest, point_access, sweep_limit_s,
    sweep_many, trip_costs,
)
from planner.settlement import is_village_committee, judge_settlement
from planner.sources import Region

__all__ = [
    "RURAL_CATEGORIES_FILE",
    "StationPlan",
    "VillageAudit",
    "audit_villages",
    "coverage_indicators",
    "find_villages",
    "load_rural_categories",
    "propose_stations",
    "run_villages",
]

#: The rural categories bundled with planner (village and township levels).
RURAL_CATEGORIES_FILE = Path(__file__).resolve().parent / "data" / "rural_categories.toml"
#: The category whose coverage is the plan's indicator.
STATION_KEY = "village_service_station"
#: The plan's target and baseline: share of villages with a comprehensive service facility,
#: ≥ 80 % by 2025 from 65.7 % at end-2020 (国办发〔2021〕56号; facts §2, confirmed).
TARGET_SHARE = 0.8
BASELINE_SHARE_2020 = 0.657
INDICATOR_SOURCE = (
    "国办发〔2021〕56号《“十四五”城乡社区服务体系建设规划》: rural community comprehensive "
    "service facility coverage 65.7% (2020) → ≥ 80% (2025)"
)

#: Buildings closer than this (footprint to footprint) belong to one cluster: farmhouses of a
#: hamlet stand 10–50 m apart, hamlets are separated by a few hundred metres of fields.
LINK_M = 100.0
#: A cluster of buildings is a village from this many homes up (fewer are scattered houses,
#: counted with the nearest village within ``ATTACH_M``).
MIN_CLUSTER_HOMES = 3
#: A home, committee, place node or facility within this distance of a village's outline is
#: in the village: OSM sketches hamlet outlines roughly, and committee compounds often stand
#: at their edge.
EDGE_M = 50.0
#: Scattered homes join the nearest village within this distance; farther ones stay outside
#: every village (counted in the summary).
ATTACH_M = 200.0
#: A cluster's outline: its members buffered by this much, then their convex hull.
CLUSTER_BUFFER_M = 30.0
#: Radius of a village mapped only as a ``place`` node with no home or area near it (an
#: assumption, so that a raster has an area to sum; override by mapping the area).
PLACE_RADIUS_M = {"village": 300.0, "hamlet": 150.0}

_PLACES = ("village", "hamlet")


class NoVillagesError(InputError):
    """An extract with no village at all (on an urban extract, the urban notice is the answer)."""

_COMMITTEE = re.compile(r"(村民委员会|村委会|村委)")
_COMMITTEE_SUFFIX = re.compile(r"(村民委员会|村委会|村委)$")
_TOWN_GOVERNMENT = re.compile(r"((镇|乡)(人民)?政府|街道办事处)")
# Where areas overlap, the more precise outline wins: mapped areas, then building clusters,
# then the circles drawn round lone place nodes and committees.
_MAPPED, _CLUSTER, _CIRCLE = 0, 1, 2


# --------------------------------------------------------------------------------------------
# categories


def load_rural_categories(extra_file: str | Path | None = None) -> dict[str, Category]:
    """The rural categories (``data/rural_categories.toml``), updated by a user's file.

    Returns
    -------
    dict
        key → :class:`~planner.categories.Category`, village level first.
    """
    return load_categories(extra_file, files=[RURAL_CATEGORIES_FILE])


def _confirmed_flags(extra_file: str | Path | None) -> dict[str, bool]:
    """``confirmed`` of each category (the loader ignores that key; a reviewer needs it)."""
    flags: dict[str, bool] = {}
    for path in [RURAL_CATEGORIES_FILE] + ([Path(extra_file)] if extra_file is not None else []):
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        for entry in data.get("category", []):
            flags[entry["key"]] = bool(entry.get("confirmed", True))
    return flags


# --------------------------------------------------------------------------------------------
# villages


def find_villages(
    region: Region,
    homes: gpd.GeoDataFrame | None = None,
    raster: Any = None,
    *,
    link_m: float = LINK_M,
    min_homes: int = MIN_CLUSTER_HOMES,
    urban: bool | None = None,
) -> gpd.GeoDataFrame:
    """Villages (hamlets, 自然村) of a rural region, with their homes and population.

    Villages come, in this order of precedence, from ``place=village|hamlet`` (nodes, or areas
    with a name), named ``landuse=residential`` areas (自然村), and clusters of the homes and
    unnamed residential areas left over (single linkage at ``link_m``, scipy connected
    components; clusters of fewer than ``min_homes`` homes are scattered houses). A ``place``
    node names the area it stands in, else the nearest cluster within ``PLACE_RADIUS_M``, else
    it is a circle of that radius. A village committee (村委会: ``amenity=
    townhall`` / ``office=government`` with a 村委/村民委员会 name) belongs to the village within
    ``EDGE_M`` of it: the village gets its administrative-village name (``admin_village``,
    长春村 for 长春村村委), and an unnamed cluster takes it as its name (source
    ``committee``); a committee with no village near it is a village of its own.

    Parameters
    ----------
    region : Region
        From :func:`planner.sources.load_region`.
    homes : GeoDataFrame, optional
        Home points with ``population`` (default: :func:`planner.demand.homes_from_region`).
    raster : path or PopulationRaster, optional
        Population raster: each village's population is then the raster summed over its
        area (:func:`planner.raster.sum_to_polygons`) instead of its homes'.
    link_m : float
        Linkage distance of building clusters, metres.
    min_homes : int
        Fewest homes of a cluster village.
    urban : bool, optional
        The extract is urban (default: as :func:`planner.settlement.judge_settlement` finds):
        residential areas and building clusters are compounds and blocks there, not villages,
        so only ``place=village|hamlet`` and village committees make villages.

    Returns
    -------
    GeoDataFrame
        One row per village in ``region.crs`` (polygons that do not overlap): ``village_id``
        (OSM id of its area, place or committee, or ``cluster/N``), ``name`` (None for an
        unnamed cluster), ``source`` (place/landuse/committee/cluster), ``admin_village``,
        ``committee``, ``homes`` (mapped homes), ``homes_estimated`` (grid points of
        :func:`planner.demand.grid_homes`), ``population``, ``centre_x``, ``centre_y`` (a
        home near the village's population-weighted middle, or its place node). ``attrs``
        holds ``homes_outside`` and ``population_outside`` (homes in no village) and
        ``population_source``.

    Raises
    ------
    InputError
        No village found.
    """
    crs = region.crs
    feats = region.features
    homes = homes_from_region(region) if homes is None else homes.to_crs(crs)
    verdict = homes.attrs.get("settlement") or judge_settlement(region).summary()
    if urban is None:
        urban = verdict["kind"] == "urban"
    homes = homes.reset_index(drop=True)
    home_xy = shapely.get_coordinates(homes.geometry.to_numpy()) if len(homes) else np.zeros((0, 2))
    home_pts = shapely.points(home_xy) if len(home_xy) else np.zeros(0, object)
    estimated = homes["estimated"].to_numpy(bool) if "estimated" in homes else np.zeros(len(homes), bool)
    home_village = np.full(len(homes), -1, np.int64)

    tags = feats["tags"].tolist()
    geoms = feats.geometry.to_numpy()
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6)) if len(geoms) else np.zeros(0, bool)
    names = [t.get("name") or None for t in tags]

    villages: list[dict] = []

    # 1. Named settlement areas: place areas and named residential land.
    for i in np.flatnonzero(polygonal):
        t = tags[i]
        if not names[i]:
            continue
        if t.get("place") in _PLACES:
            source = "place"
        elif t.get("landuse") == "residential" and "building" not in t and not urban:
            source = "landuse"
        else:
            continue
        villages.append(_village(feats["osm_id"].iat[i], names[i], source, geoms[i], _MAPPED))
    n_named = len(villages)

    # 2. Homes in or at the edge of a named area belong to it.
    if n_named and len(homes):
        h, v = _nearest_within(home_pts, [r["geometry"] for r in villages], EDGE_M)
        home_village[h] = v

    # 3. Place nodes: they name the area they stand in; the others seed clusters below.
    place_nodes = [i for i in range(len(tags)) if tags[i].get("place") in _PLACES and names[i]
                   and shapely.get_type_id(geoms[i]) == 0]
    notes: list[str] = []
    if place_nodes and n_named:
        p, v = _nearest_within(geoms[place_nodes], [r["geometry"] for r in villages], EDGE_M)
        for pi, vi in zip(p, v):
            i = place_nodes[pi]
            rec = villages[vi]
            if rec["source"] == "place" and rec["name"] != names[i]:
                notes.append(f"place {names[i]} ({feats['osm_id'].iat[i]}) stands in {rec['name']}: kept the latter")
                continue
            rec.update(name=names[i], source="place", centre=geoms[i])
        named_places = set(p.tolist())
        loose_places = [i for pi, i in enumerate(place_nodes) if pi not in named_places]
    else:
        loose_places = place_nodes

    # 4. Clusters of the homes left over and of unnamed residential land.
    unnamed_res = [i for i in np.flatnonzero(polygonal)
                   if tags[i].get("landuse") == "residential" and "building" not in tags[i] and not names[i]
                   and not urban]
    free = np.flatnonzero((home_village < 0) & ~estimated & (not urban))
    items = np.concatenate([home_pts[free], geoms[unnamed_res]]) if len(free) + len(unnamed_res) else np.zeros(0, object)
    n_free = len(free)
    if len(items):
        labels = _single_linkage(items, link_m)
        n_comp = int(labels.max()) + 1
        comp_homes = np.bincount(labels[:n_free], minlength=n_comp)
        comp_area = np.bincount(labels[n_free:], minlength=n_comp) > 0
        seed: dict[int, int] = {}
        # A place node names the nearest cluster within its radius (homes are often mapped
        # around, not at, the node that names them).
        seeded: set[int] = set()
        for kind, radius in PLACE_RADIUS_M.items():
            of_kind = [i for i in loose_places if tags[i]["place"] == kind]
            p, it = _nearest_within(geoms[of_kind], items, radius)
            for pi, ii in zip(p, it):
                if labels[ii] in seed:
                    other = names[seed[labels[ii]]]
                    notes.append(f"places {other} and {names[of_kind[pi]]} share one cluster: named it {other}")
                    continue
                seed[int(labels[ii])] = of_kind[pi]
            seeded |= {of_kind[pi] for pi in p}
        loose_places = [i for i in loose_places if i not in seeded]
        keep = (comp_homes >= min_homes) | comp_area
        keep[list(seed)] = True
        comp_village = np.full(n_comp, -1, np.int64)
        n_clusters = 0
        for c in np.flatnonzero(keep):
            members = items[labels == c]
            outline = shapely.convex_hull(shapely.union_all(shapely.buffer(members, CLUSTER_BUFFER_M)))
            if c in seed:
                i = seed[c]
                rec = _village(feats["osm_id"].iat[i], names[i], "place", outline, _CLUSTER, centre=geoms[i])
            else:
                n_clusters += 1
                rec = _village(f"cluster/{n_clusters}", None, "cluster", outline, _CLUSTER)
            comp_village[c] = len(villages)
            villages.append(rec)
        home_village[free] = comp_village[labels[:n_free]]
        # Estimated homes on unnamed residential land go with that land's cluster.
        est_free = np.flatnonzero((home_village < 0) & estimated)
        if len(est_free) and unnamed_res:
            h, a = _nearest_within(home_pts[est_free], geoms[unnamed_res], 0.0)
            home_village[est_free[h]] = comp_village[labels[n_free + a]]

    # 5. Place nodes with nothing mapped near them: a circle of PLACE_RADIUS_M.
    for i in loose_places:
        radius = PLACE_RADIUS_M[tags[i]["place"]]
        villages.append(_village(feats["osm_id"].iat[i], names[i], "place", shapely.buffer(geoms[i], radius), _CIRCLE,
                                 centre=geoms[i]))

    # 6. Village committees name the village they stand in (or found one).
    committees = [i for i in range(len(tags)) if _is_committee(tags[i])]
    if committees:
        existing = [r["geometry"] for r in villages]
        c_idx, v_idx = _nearest_within(geoms[committees], existing, EDGE_M) if existing else (np.zeros(0, int), np.zeros(0, int))
        attached = dict(zip(c_idx.tolist(), v_idx.tolist()))
        for ci, i in enumerate(committees):
            admin = _admin_village(names[i])
            if ci in attached:
                rec = villages[attached[ci]]
                if rec["source"] == "cluster":
                    rec.update(village_id=feats["osm_id"].iat[i], name=admin, source="committee")
            else:
                rec = _village(feats["osm_id"].iat[i], admin, "committee", shapely.buffer(geoms[i], EDGE_M), _CIRCLE,
                               centre=shapely.point_on_surface(geoms[i]))
                villages.append(rec)
            rec["committee"].append(names[i])
            rec["admin_village"] = rec["admin_village"] or admin

    if not villages:
        raise NoVillagesError(
            f"{region.source}: no villages found (no place=village|hamlet, named landuse=residential, "
            f"village committee or cluster of {min_homes}+ homes); check that the extract covers a rural area"
        )

    # 7. Areas must not overlap (a raster's people would count twice): mapped areas win over
    # clusters, clusters over circles.
    shapes = shapely.make_valid(np.array([r["geometry"] for r in villages], dtype=object))
    # Rank by kind, then by order found (two overlapping named areas: the first wins).
    rank = np.array([r["rank"] * len(villages) + k for k, r in enumerate(villages)])
    a, b = shapely.STRtree(shapes).query(shapes, predicate="intersects")
    earlier = (rank[b] < rank[a])
    for k in np.unique(a[earlier]):
        villages[k]["geometry"] = shapely.difference(shapes[k], shapely.union_all(shapes[b[earlier & (a == k)]]))
    for k in np.setdiff1d(np.arange(len(villages)), a[earlier]):
        villages[k]["geometry"] = shapes[k]

    # 8. A home inside a village's (clipped) area is its; scattered homes join the nearest
    # village within ATTACH_M.
    if len(homes):
        h, v = shapely.STRtree([r["geometry"] for r in villages]).query(home_pts, predicate="within")
        home_village[h] = v
    loose = np.flatnonzero(home_village < 0)
    if len(loose):
        h, v = _nearest_within(home_pts[loose], [r["geometry"] for r in villages], ATTACH_M)
        home_village[loose[h]] = v

    gdf = _village_frame(villages, homes, home_village, estimated, crs)
    gdf.attrs["population_source"] = "homes"
    outside = home_village < 0
    gdf.attrs["homes_outside"] = int(outside.sum())
    gdf.attrs["population_outside"] = float(homes["population"].to_numpy(float)[outside].sum()) if len(homes) else 0.0
    gdf.attrs["notes"] = notes
    gdf.attrs["settlement"] = verdict
    if raster is not None:
        from planner.raster import sum_to_polygons

        gdf["population"] = sum_to_polygons(raster, gdf)
        gdf.attrs["population_source"] = "raster"
    return gdf


def _village(village_id: str, name: str | None, source: str, geometry, rank: int, centre=None) -> dict:
    return {"village_id": village_id, "name": name, "source": source, "geometry": geometry, "rank": rank,
            "centre": centre, "committee": [], "admin_village": None}


def _village_frame(villages: list[dict], homes: gpd.GeoDataFrame, home_village: np.ndarray,
                   estimated: np.ndarray, crs) -> gpd.GeoDataFrame:
    # An area mapped twice (place=hamlet over the same named residential land) or wholly inside
    # earlier ones is left empty by the overlap step; without homes it is not a village of its own.
    counts = np.bincount(home_village[home_village >= 0], minlength=len(villages))
    empty = np.array([r["geometry"] is None or shapely.is_empty(r["geometry"]) for r in villages], bool)
    if (empty & (counts == 0)).any():
        kept = np.flatnonzero(~(empty & (counts == 0)))
        new_index = np.full(len(villages), -1, np.int64)
        new_index[kept] = np.arange(len(kept))
        villages = [villages[k] for k in kept]
        home_village = np.where(home_village >= 0, new_index[np.maximum(home_village, 0)], -1)
    n = len(villages)
    pop = homes["population"].to_numpy(float) if len(homes) else np.zeros(0)
    mine = home_village >= 0
    population = np.bincount(home_village[mine], weights=pop[mine], minlength=n)
    mapped = np.bincount(home_village[mine & ~estimated], minlength=n)
    grid = np.bincount(home_village[mine & estimated], minlength=n)
    xy = shapely.get_coordinates(homes.geometry.to_numpy()) if len(homes) else np.zeros((0, 2))
    centres = np.zeros((n, 2))
    for k, rec in enumerate(villages):
        if rec["centre"] is not None and rec["source"] == "place":
            centres[k] = shapely.get_coordinates(rec["centre"])[0]
            continue
        own = np.flatnonzero(home_village == k)
        if len(own):
            # A real home near the population-weighted middle: on the settlement, where a
            # station for it would go (a hull's middle may be a field).
            w = np.maximum(pop[own], 1e-9)
            mid = (xy[own] * w[:, None]).sum(axis=0) / w.sum()
            centres[k] = xy[own[np.argmin(np.hypot(*(xy[own] - mid).T))]]
        elif rec["centre"] is not None:
            centres[k] = shapely.get_coordinates(rec["centre"])[0]
        else:
            centres[k] = shapely.get_coordinates(shapely.point_on_surface(rec["geometry"]))[0]
    return gpd.GeoDataFrame(
        {
            "village_id": [r["village_id"] for r in villages],
            "name": [r["name"] for r in villages],
            "source": [r["source"] for r in villages],
            "admin_village": [r["admin_village"] for r in villages],
            "committee": ["、".join(r["committee"]) or None for r in villages],
            "homes": mapped.astype(np.int64),
            "homes_estimated": grid.astype(np.int64),
            "population": population,
            "centre_x": centres[:, 0],
            "centre_y": centres[:, 1],
        },
        geometry=[r["geometry"] for r in villages],
        crs=crs,
    )


def _is_committee(tags: dict) -> bool:
    """A named village committee (村委会, :func:`planner.settlement.is_village_committee`)."""
    return bool(tags.get("name")) and is_village_committee(tags)


def _admin_village(committee_name: str) -> str:
    """The administrative village a committee serves: 长春村村委 → 长春村, 博儒桥村委 → 博儒桥村."""
    base = _COMMITTEE_SUFFIX.sub("", committee_name).strip() or committee_name
    return base if base.endswith("村") else base + "村"


def _single_linkage(geoms: np.ndarray, link_m: float) -> np.ndarray:
    """Cluster labels: geometries within ``link_m`` of each other (transitively) share one."""
    a, b = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=link_m)
    graph = sp.csr_matrix((np.ones(len(a)), (a, b)), shape=(len(geoms), len(geoms)))
    return connected_components(graph, directed=False)[1]


def _nearest_within(geoms: np.ndarray, targets: Sequence, max_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(index into ``geoms``, index of the nearest target) for geometries with a target
    within ``max_m`` (ties: the first target)."""
    targets = np.asarray(list(targets), dtype=object) if not isinstance(targets, np.ndarray) else targets
    if len(geoms) == 0 or len(targets) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    idx = shapely.STRtree(targets).query_nearest(geoms, max_distance=max_m if max_m > 0 else 1e-6,
                                                 all_matches=False)
    return idx[0].astype(np.int64), idx[1].astype(np.int64)


# --------------------------------------------------------------------------------------------
# the audit


@dataclass
class StationPlan:
    """New comprehensive service stations that bring the plan's indicator up to a target share.

    Attributes
    ----------
    sites : GeoDataFrame
        One row per new station (metric CRS, points at the hamlet centre where it serves
        most residents of its administrative village): ``rank``, ``admin_id``,
        ``admin_village``, ``village_id`` and ``name`` (the hamlet), ``residents`` (of the
        administrative village), ``residents_served`` (within the walk), ``villages_added`` (1).
    covered_before, covered_after : ndarray of bool
        Per administrative village: a facility in its territory.
    hamlets_covered_after : ndarray of bool
        Per hamlet: a station inside or within ``minutes`` once the new ones are built.
    """

    sites: gpd.GeoDataFrame
    covered_before: np.ndarray
    covered_after: np.ndarray
    target_share: float
    minutes: float
    mode: str
    model: str
    solver: str
    status: str
    gap: float
    seconds: float
    hamlets_covered_after: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def share_before(self) -> float:
        return float(self.covered_before.mean()) if len(self.covered_before) else 0.0

    @property
    def share_after(self) -> float:
        return float(self.covered_after.mean()) if len(self.covered_after) else 0.0

    def summary(self) -> dict:
        return {
            "new_stations": int(len(self.sites)), "model": self.model, "solver": self.solver,
            "status": self.status, "gap": self.gap, "target_share": self.target_share,
            "share_before": self.share_before, "share_after": self.share_after,
            "villages_covered_after": int(self.covered_after.sum()), "minutes": self.minutes,
            "hamlets_within_walk_after": (int(self.hamlets_covered_after.sum())
                                          if self.hamlets_covered_after is not None else None),
            "mode": self.mode, "seconds": round(self.seconds, 3),
            "sites": [{"rank": int(r.rank), "admin_id": r.admin_id,
                       "admin_village": r.admin_village if isinstance(r.admin_village, str) else None,
                       "village_id": r.village_id if isinstance(r.village_id, str) else None,
                       "name": r.name if isinstance(r.name, str) else None,  # unnamed clusters
                       "residents": round(float(r.residents), 1), "residents_served": round(float(r.residents_served), 1),
                       "villages_added": int(r.villages_added)} for r in self.sites.itertuples()],
            "notes": list(self.notes),
        }


@dataclass
class VillageAudit:
    """What :func:`audit_villages` found, in the region's metric CRS.

    Attributes
    ----------
    villages : GeoDataFrame
        The hamlets: :func:`find_villages`' columns plus, per category key, ``<key>_time_s``
        (from the hamlet's centre, in the category's mode; NaN beyond
        ``settings.max_travel_time_s``), ``<key>_inside`` and ``<key>_within`` (inside, or
        within the category's minutes); ``has_service_station``, ``service_covered`` (a
        station inside or within the village-level walk), ``town_time_s`` and
        ``admin_index`` (row of ``admin``, -1 for none).
    admin : GeoDataFrame
        The administrative villages (:func:`planner.admin_villages.audit_admin_villages`):
        the unit of the plan's indicator.
    settlement : dict
        :meth:`planner.settlement.Settlement.summary` of the extract (rural or urban).
    facilities : GeoDataFrame
        ``facility_id``, ``category``, ``name``, geometry.
    indicators : DataFrame
        See :func:`coverage_indicators`.
    town : dict or None
        ``name``, ``source`` (place/townhall/user), ``osm_id``, ``x``, ``y``, ``mode``.
    """

    region: str
    villages: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    categories: list[Category]
    minutes: dict[str, float]
    modes: dict[str, str]
    confirmed: dict[str, bool]
    networks: dict[str, Network]
    town: dict | None
    indicators: pd.DataFrame
    target_share: float
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    admin: gpd.GeoDataFrame | None = None
    settlement: dict | None = None

    @property
    def share(self) -> float:
        """The plan's indicator: share of administrative villages with a comprehensive service
        facility in their territory (NaN when there is none)."""
        if self.admin is None or len(self.admin) == 0:
            return float("nan")
        return float(self.admin["has_facility"].mean())

    def summary(self, stations: StationPlan | None = None) -> dict:
        """The facts of the run as a JSON-ready dict (what ``summary.json`` holds)."""
        v = self.villages
        fac_counts = self.facilities["category"].value_counts().to_dict()
        to_wgs = Transformer.from_crs(v.crs, 4326, always_xy=True)
        town = None
        if self.town is not None:
            lon, lat = to_wgs.transform(self.town["x"], self.town["y"])
            town = {k: self.town[k] for k in ("name", "source", "osm_id", "mode")} | {
                "lon": round(lon, 6), "lat": round(lat, 6)}
        from planner.admin_villages import admin_summary

        admin = admin_summary(self.admin if self.admin is not None else pd.DataFrame(), v, self.target_share)
        in_hamlets = float(v["population"].sum())
        homes_source = v.attrs.get("population_source", "homes") == "homes"
        out = {
            "region": self.region,
            "crs": v.crs.to_string(),
            "settlement": self.settlement,
            "administrative_villages": len(admin["administrative_villages"]),
            "villages": int(len(v)),
            "villages_by_source": {s: int(n) for s, n in v["source"].value_counts().items()},
            "homes": int(v["homes"].sum()),
            "homes_estimated": int(v["homes_estimated"].sum()),
            "homes_outside_villages": int(v.attrs.get("homes_outside", 0)),
            # Every home of the extract (as audit counts them), not only those in hamlets.
            "population": in_hamlets + float(v.attrs.get("population_outside", 0.0)) if homes_source else in_hamlets,
            "population_in_hamlets": in_hamlets,
            "population_source": v.attrs.get("population_source", "homes"),
            "indicator": {
                "name_zh": "农村社区综合服务设施覆盖率",
                "name_en": "Administrative villages with a comprehensive service facility in their territory",
                "share": admin["indicator"]["share"],
                "villages_with_facility": admin["indicator"]["villages_with_facility"],
                "villages": admin["indicator"]["villages"],
                "new_needed": admin["indicator"]["new_needed"],
                "target_share": self.target_share,
                "target_met": admin["indicator"]["target_met"],
                "baseline_share_2020": BASELINE_SHARE_2020,
                "unit": "administrative village (行政村)",
                "rule": "an administrative village counts when a comprehensive service facility (category "
                        f"{STATION_KEY} of the rural categories file) stands inside its territory",
                "source": INDICATOR_SOURCE,
            },
            "hamlets": dict(admin["hamlets"], minutes=self.minutes[STATION_KEY], mode=self.modes[STATION_KEY]),
            "administrative_village_list": admin["administrative_villages"],
            "categories": {c.key: {"name_zh": c.name_zh, "name_en": c.name_en, "level": c.level,
                                   "mode": self.modes[c.key], "target_minutes": self.minutes[c.key],
                                   "confirmed": self.confirmed.get(c.key, True)}
                           for c in self.categories},
            "facilities": {c.key: int(fac_counts.get(c.key, 0)) for c in self.categories},
            "categories_without_facilities": [c.key for c in self.categories if fac_counts.get(c.key, 0) == 0],
            "town": town,
            "networks": {m: {"nodes": int(n.n_nodes), "edges": int(n.n_edges)} for m, n in self.networks.items()},
            "parameters": {"link_m": LINK_M, "min_cluster_homes": MIN_CLUSTER_HOMES, "edge_m": EDGE_M,
                           "attach_m": ATTACH_M, "max_travel_time_s": settings.max_travel_time_s},
            "seconds": {k: round(s, 3) for k, s in self.seconds.items()},
            "notes": list(self.notes),
        }
        if stations is not None:
            out["proposed_stations"] = stations.summary()
        return out

    def write(self, out_dir: str | Path, stations: StationPlan | None = None, map_html: bool = True) -> Path:
        """Write ``villages.gpkg``, ``indicators.csv``, ``summary.json``, ``map.html`` and, with
        ``stations``, ``proposed_stations.gpkg``, atomically."""
        started = time.perf_counter()
        with atomic_dir(out_dir) as tmp:
            villages = self._villages_out(stations)
            villages.to_file(tmp / "villages.gpkg", layer="villages", driver="GPKG")
            centres = gpd.GeoDataFrame(
                villages.drop(columns="geometry"),
                geometry=gpd.points_from_xy(self.villages["centre_x"], self.villages["centre_y"], crs=self.villages.crs).to_crs(4326),
            )
            centres.to_file(tmp / "villages.gpkg", layer="village_centres", driver="GPKG")
            if self.admin is not None and len(self.admin):
                admin = self.admin.drop(columns="population_given")
                if stations is not None:
                    admin["has_facility_after"] = stations.covered_after
                admin.to_crs(4326).to_file(tmp / "villages.gpkg", layer="administrative_villages", driver="GPKG")
            if len(self.facilities):
                self.facilities.to_crs(4326).assign(geometry=lambda d: d.geometry.representative_point()).to_file(
                    tmp / "villages.gpkg", layer="facilities", driver="GPKG")
            self.indicators.to_csv(tmp / "indicators.csv", index=False, encoding="utf-8")
            if stations is not None and len(stations.sites):
                stations.sites.to_crs(4326).to_file(tmp / "proposed_stations.gpkg", layer="proposed_stations",
                                                    driver="GPKG")
            if map_html:
                from planner.maps import save_map

                save_map(self.map(stations), tmp / "map.html")
            self.seconds["write"] = time.perf_counter() - started
            (tmp / "summary.json").write_text(
                json.dumps(self.summary(stations), ensure_ascii=False, indent=2), encoding="utf-8")
        return Path(out_dir)

    def _villages_out(self, stations: StationPlan | None) -> gpd.GeoDataFrame:
        v = self.villages.drop(columns=["centre_x", "centre_y"]).copy()
        if stations is not None and stations.hamlets_covered_after is not None:
            v["covered_after"] = stations.hamlets_covered_after
        return v.to_crs(4326)

    def map(self, stations: StationPlan | None = None):
        """An offline folium map: villages coloured by coverage, facilities, proposed stations."""
        import folium

        from planner.audit import roads_gdf
        from planner.maps import add_legend, add_lines, add_points, add_polygons, add_title, base_map

        v = self.villages.to_crs(4326)
        status = np.where(v["has_service_station"], "inside",
                          np.where(v["service_covered"], "within", "not covered"))
        colours = {"inside": "#1a9850", "within": "#91cf60", "not covered": "#d73027"}
        label = {"inside": "有站 station in the village", "within": "可达 station within reach",
                 "not covered": "未覆盖 not covered"}
        minutes = self.minutes[STATION_KEY]
        show = v.assign(
            label=[n or i for n, i in zip(v["name"], v["village_id"])],
            status=[label[s] for s in status],
            station_min=np.round(v[f"{STATION_KEY}_time_s"] / 60.0, 1),
        )
        west, south, east, north = show.total_bounds
        m = base_map((west, south, east, north), padding_top_left=(20, 80), padding_bottom_right=(260, 20))
        if self.networks:
            # One network's streets for context (the walk network has the most of them).
            net = self.networks.get("walk") or next(iter(self.networks.values()))
            group = folium.FeatureGroup(name="道路 Roads")
            add_lines(group, roads_gdf(net).to_crs(4326), weight=1.2)
            group.add_to(m)
        aliases = {"label": "村庄 Village", "source": "来源 Source", "population": "人口 Population",
                   "status": "覆盖 Coverage", "station_min": "到综合服务站 Minutes to station",
                   "admin_village": "行政村 Admin. village"}
        if self.admin is not None and len(self.admin):
            # The indicator's unit: territories outlined, green with a facility, red without.
            admin = self.admin.to_crs(4326).assign(
                label=[n or i for n, i in zip(self.admin["name"], self.admin["admin_id"])],
                facility=np.where(self.admin["has_facility"], "有 yes", "无 no"))
            add_polygons(m, admin, np.where(self.admin["has_facility"], "#1a9850", "#d73027").tolist(),
                         name="行政村 Administrative villages", fill_opacity=0.04, weight=3, dash_array="8 6",
                         tooltip_columns=["label", "hamlets", "population", "facility"],
                         aliases={"label": "行政村 Admin. village", "hamlets": "自然村 Hamlets",
                                  "population": "人口 Population", "facility": "综合服务设施 Service facility"})
        add_polygons(m, show, [colours[s] for s in status], name="村庄 Villages", fill_opacity=0.35,
                     tooltip_columns=["label", "admin_village", "source", "population", "status", "station_min"],
                     aliases=aliases)
        fac = self.facilities.to_crs(4326)
        if len(fac):
            names = {c.key: f"{c.name_zh} {c.name_en}" for c in self.categories}
            fac = gpd.GeoDataFrame(
                {"name": [n if isinstance(n, str) and n else "(未命名 unnamed)" for n in fac["name"]],
                 "kind": [names.get(c, c) for c in fac["category"]], "is_station": fac["category"] == STATION_KEY},
                geometry=fac.geometry.representative_point().to_numpy(), crs=4326,
            ).drop_duplicates(subset=["name", "kind", "geometry"])
            other = fac[~fac["is_station"]]
            add_points(m, other, "#ffffff", radius=4, outline="#555555", weight=1.5, name="其他设施 Other facilities",
                       tooltip_columns=["name", "kind"], aliases={"name": "设施 Facility", "kind": "类别 Category"})
            add_points(m, fac[fac["is_station"]], "#ffffff", radius=7, outline="#1f1f1f", weight=3,
                       name="综合服务站 Service stations", tooltip_columns=["name"],
                       aliases={"name": "综合服务站 Service station"}, fill_opacity=1.0)
        if self.town is not None:
            to_wgs = Transformer.from_crs(self.villages.crs, 4326, always_xy=True)
            lon, lat = to_wgs.transform(self.town["x"], self.town["y"])
            add_points(m, gpd.GeoDataFrame({"name": [self.town["name"] or "镇中心 Township centre"]},
                                           geometry=gpd.points_from_xy([lon], [lat]), crs=4326),
                       "#762a83", radius=8, name="镇中心 Township centre", tooltip_columns=["name"],
                       aliases={"name": "镇中心 Township centre"})
        legend = [(colours["inside"], label["inside"], "area"),
                  (colours["within"], f"{label['within']} (≤ {minutes:g} 分钟 min)", "area"),
                  (colours["not covered"], label["not covered"], "area"),
                  ("#1f1f1f", "综合服务站 Service station", "ring"),
                  ("#555555", "其他设施 Other facility", "ring")]
        if stations is not None and len(stations.sites):
            sites = stations.sites.to_crs(4326).assign(
                label=[f"{r}. {n or i}" for r, n, i in zip(stations.sites["rank"], stations.sites["name"],
                                                           stations.sites["village_id"])])
            add_points(m, sites, "#2166ac", radius=9, outline="#ffffff", weight=2, name="拟建站点 Proposed stations",
                       tooltip_columns=["label", "villages_added"],
                       aliases={"label": "拟建 Proposed", "villages_added": "新增覆盖村庄 Villages added"},
                       fill_opacity=1.0)
            legend.append(("#2166ac", f"拟建站点 Proposed station ({len(sites)})"))
        if self.town is not None:
            legend.append(("#762a83", "镇中心 Township centre"))
        legend.append(("#9a9a9a", "道路 Road", "line"))
        add_legend(m, "村级综合服务设施覆盖 Village service coverage", legend)
        add_title(m, f"{self.region} — 乡村生活圈 rural life circles",
                  (f"行政村综合服务设施覆盖率 coverage {self.share:.0%} of {len(self.admin)} administrative villages "
                   f"(目标 target {self.target_share:.0%})") if np.isfinite(self.share)
                  else "no administrative village found 未找到行政村")
        folium.LayerControl(collapsed=False).add_to(m)
        return m


def audit_villages(
    region: Region,
    villages: gpd.GeoDataFrame | None = None,
    categories: str | Iterable[str] | None = None,
    minutes: float | None = None,
    town: Any = None,
    categories_file: str | Path | None = None,
    raster: Any = None,
    mode_by_level: dict[str, str] | None = None,
    extra_facilities: gpd.GeoDataFrame | None = None,
    target_share: float = TARGET_SHARE,
    boundaries: str | Path | gpd.GeoDataFrame | None = None,
) -> VillageAudit:
    """Per hamlet: the rural facilities it has inside and within reach, and its time to the
    township centre; per administrative village: a comprehensive service facility in its
    territory (:mod:`planner.admin_villages`); per region: the plan's coverage indicator.

    Each category is measured in its own mode (``mode`` in the categories file: village level
    on foot, township level by bicycle/e-bike), one network per mode, one multi-source
    Dijkstra per category (:func:`planner.network.sweep_many`).

    Parameters
    ----------
    region : Region
    villages : GeoDataFrame, optional
        From :func:`find_villages` (found here when None).
    categories : str or list of str, optional
        Rural category keys (all when None); the service station is always included.
    minutes : float, optional
        One threshold for every category instead of each category's own.
    town : (lon, lat), "lon,lat" or shapely Point (WGS84), optional
        The township centre; default the region's ``place=town`` node or 镇/乡政府 townhall.
    categories_file : path, optional
        A user's categories TOML, added to the rural ones (a key that exists replaces it).
    raster : path or PopulationRaster, optional
        Population raster for the villages (when ``villages`` is None).
    mode_by_level : dict, optional
        Override the mode of a level, e.g. ``{"township": "drive"}``.
    extra_facilities : GeoDataFrame, optional
        Facilities OSM lacks (``facility_id``, ``category``, ``name``).
    target_share : float
        The indicator's target (the plan: 0.8).
    boundaries : path or GeoDataFrame, optional
        The administrative villages' boundaries (name, optional population); default from
        OSM's village boundaries, else its village committees' network territories.

    Returns
    -------
    VillageAudit
    """
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    _check_share(target_share)
    if minutes is not None and not (np.isfinite(minutes) and minutes > 0):
        raise InputError(f"minutes={minutes!r}: give a positive number of minutes")
    mode_by_level = dict(mode_by_level or {})
    for level, mode in mode_by_level.items():
        if mode not in MODES:
            raise InputError(f"mode_by_level[{level!r}] = {mode!r}: use one of {', '.join(MODES)}")
    known = load_rural_categories(categories_file)
    cats = select(known, categories)
    if STATION_KEY not in {c.key for c in cats}:  # the indicator needs it
        cats = [known[STATION_KEY]] + cats
    confirmed = _confirmed_flags(categories_file)
    modes = {c.key: mode_by_level.get(c.level, c.mode) for c in cats}
    target_min = {c.key: float(minutes) if minutes is not None else float(c.minutes) for c in cats}
    town_xy = _parse_town(town, region) if town is not None else None

    t = time.perf_counter()
    if villages is None:
        villages = find_villages(region, raster=raster)
    missing_cols = {"village_id", "name", "source", "population", "centre_x", "centre_y"} - set(villages.columns)
    if missing_cols:
        raise InputError(f"villages: missing {', '.join(sorted(missing_cols))}; give the output of find_villages")
    attrs = dict(villages.attrs)
    villages = villages.to_crs(region.crs).reset_index(drop=True).copy()
    villages.attrs = attrs
    seconds["villages"] = time.perf_counter() - t

    t = time.perf_counter()
    facilities = region_facilities(region.features, cats, extra_facilities)
    centre_xy = villages[["centre_x", "centre_y"]].to_numpy(float)
    polys = villages.geometry.to_numpy()
    networks: dict[str, Network] = {}
    needed = list(dict.fromkeys(modes.values()))
    for mode in needed:
        networks[mode] = build_network(region, mode)
    seconds["networks"] = time.perf_counter() - t

    t = time.perf_counter()
    limit = sweep_limit_s(*target_min.values())  # a threshold past max_travel_time_s raises it
    for mode in needed:
        net = networks[mode]
        keys = [c.key for c in cats if modes[c.key] == mode]
        fac = facilities[facilities["category"].isin(keys)].reset_index(drop=True)
        access = point_access(net, centre_xy)
        if len(fac):
            targets = TargetGraph(net, geometry_access(net, fac.geometry.to_numpy()), "time")
            subsets = [np.flatnonzero(fac["category"].to_numpy() == k) for k in keys]
            swept = sweep_many(targets, subsets, limit=limit)
        else:
            swept = ((np.full(net.n_nodes, np.inf), np.full(net.n_nodes, -1)) for _ in keys)
        for key, (cost, which) in zip(keys, swept):
            village_cost, _ = trip_costs(net, access, cost, which, "time")
            villages[f"{key}_time_s"] = np.where(np.isfinite(village_cost) & (village_cost <= limit), village_cost, np.nan)
    for cat in cats:
        key = cat.key
        sub = facilities.geometry.to_numpy()[facilities["category"].to_numpy() == key]
        inside = np.zeros(len(villages), bool)
        if len(sub):
            v_idx, _ = shapely.STRtree(sub).query(polys, predicate="dwithin", distance=EDGE_M)
            inside[np.unique(v_idx)] = True
        villages[f"{key}_inside"] = inside
        villages[f"{key}_within"] = inside | (np.nan_to_num(villages[f"{key}_time_s"].to_numpy(float), nan=np.inf)
                                              <= target_min[key] * 60.0)
    villages["has_service_station"] = villages[f"{STATION_KEY}_inside"]
    villages["service_covered"] = villages[f"{STATION_KEY}_within"]
    seconds["sweeps"] = time.perf_counter() - t

    notes = list(villages.attrs.get("notes", []))
    town_info = None
    if town_xy is not None:
        town_info = {"name": None, "source": "user", "osm_id": None, "x": town_xy[0], "y": town_xy[1]}
    else:
        town_info = _find_town(region)
    if town_info is None:
        villages["town_time_s"] = np.nan
        notes.append("no township centre found (no place=town node, no 镇/乡政府 townhall): town_time_s is "
                     "empty; give the centre with town=(lon, lat) (--town LON,LAT)")
    else:
        town_mode = mode_by_level.get("township", next((modes[c.key] for c in cats if c.level == "township"), "bike"))
        if town_mode not in networks:
            networks[town_mode] = build_network(region, town_mode)
        town_info["mode"] = town_mode
        cost, _ = nearest(networks[town_mode], centre_xy, np.array([[town_info["x"], town_info["y"]]]), "time", limit)
        villages["town_time_s"] = np.where(np.isfinite(cost), cost, np.nan)
    missing = [c.key for c in cats if not (facilities["category"] == c.key).any()]
    if missing:
        notes.append("no facility mapped for: " + ", ".join(missing)
                     + " (every village counts as without; add them with extra_facilities / --facilities FILE)")
    unbuilt = int(((villages["homes"] == 0) & (villages["homes_estimated"] > 0)).sum()) if "homes" in villages else 0
    if unbuilt and villages.attrs.get("population_source") == "homes":
        rural = (villages.attrs.get("settlement") or {}).get("kind") == "rural"
        density = settings.rural_grid_density_per_ha if rural else settings.grid_density_per_ha
        notes.append(f"{unbuilt} villages have no mapped buildings: their population is estimated at "
                     f"{density:g} residents per hectare of residential land (settings."
                     f"{'rural_' if rural else ''}grid_density_per_ha, to confirm); give a population raster "
                     "for better weights")
    if villages.attrs.get("homes_outside"):
        notes.append(f"{villages.attrs['homes_outside']} homes lie farther than {ATTACH_M:g} m from every village "
                     "and are in no village")
    t = time.perf_counter()
    from planner.admin_villages import audit_admin_villages

    # Territories are drawn on the walk network: committees serve the people who walk to them.
    admin = audit_admin_villages(region, villages, facilities[facilities["category"] == STATION_KEY],
                                 networks.get("walk"), boundaries)
    if len(admin) == 0:
        notes.append("no administrative village found (no village boundary, no 村委会 mapped): the plan's indicator "
                     "is empty; give the boundaries with --villages FILE")
    elif (admin["hamlets"] == 0).any():
        empty = admin.loc[admin["hamlets"] == 0, "name"].fillna("?").tolist()
        notes.append(f"administrative villages with no hamlet mapped in this extract: {'、'.join(empty)}")
    loose = int((villages["admin_index"] < 0).sum())
    if len(admin) and loose:
        notes.append(f"{loose} hamlets lie in no administrative village's territory (outside the boundaries)")
    seconds["admin_villages"] = time.perf_counter() - t
    indicators = coverage_indicators(villages, cats, target_min, modes, confirmed, target_share, admin=admin)
    seconds["total"] = time.perf_counter() - t0
    return VillageAudit(
        region=region.name, villages=villages, facilities=facilities, categories=cats, minutes=target_min,
        modes=modes, confirmed=confirmed, networks=networks, town=town_info, indicators=indicators,
        target_share=target_share, seconds=seconds, notes=notes, admin=admin,
        settlement=villages.attrs.get("settlement") or judge_settlement(region).summary(),
    )


def coverage_indicators(
    villages: pd.DataFrame,
    categories: Sequence[Category],
    minutes: dict[str, float],
    modes: dict[str, str],
    confirmed: dict[str, bool] | None = None,
    target_share: float = TARGET_SHARE,
    admin: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The plan's indicator, then shares of hamlets (and of their people) with each category
    inside and within reach.

    The first row (``indicator = "rural_service_coverage"``, unit ``administrative_village``)
    is the plan's indicator: the share of administrative villages (``admin``, from
    :func:`planner.admin_villages.audit_admin_villages`) with a comprehensive service facility
    in their territory, against ``target_share``. The next two are the shares of hamlets and
    of their residents within the village-level walk of one; then one row per category
    (unit ``hamlet``).

    Returns
    -------
    DataFrame
        ``indicator``, ``category``, ``name_zh``, ``name_en``, ``level``, ``mode``,
        ``target_minutes``, ``villages``, ``villages_inside``, ``share_inside``,
        ``villages_within_target``, ``share_within_target``, ``population_share_inside``,
        ``population_share_within_target``, ``target_share``, ``baseline_share_2020``,
        ``target_met``, ``confirmed``, ``source``, ``unit``.
    """
    from planner.admin_villages import _empty, indicator_rows

    confirmed = confirmed or {}
    pop = villages["population"].to_numpy(float)
    n = len(villages)
    rows = []
    for cat in categories:
        inside = villages[f"{cat.key}_inside"].to_numpy(bool)
        within = villages[f"{cat.key}_within"].to_numpy(bool)
        rows.append({
            "indicator": "category", "category": cat.key, "name_zh": cat.name_zh, "name_en": cat.name_en,
            "level": cat.level, "mode": modes[cat.key], "target_minutes": minutes[cat.key], "villages": n,
            "villages_inside": int(inside.sum()), "share_inside": _share(inside, np.ones(n)),
            "villages_within_target": int(within.sum()), "share_within_target": _share(within, np.ones(n)),
            "population_share_inside": _share(inside, pop), "population_share_within_target": _share(within, pop),
            "target_share": np.nan, "baseline_share_2020": np.nan, "target_met": None,
            "confirmed": confirmed.get(cat.key, True), "source": cat.source, "unit": "hamlet",
        })
    if admin is None:
        admin = _empty(getattr(villages, "crs", None)).assign(has_facility=pd.Series([], dtype=bool))
    head = indicator_rows(admin, villages, minutes[STATION_KEY], modes[STATION_KEY], target_share,
                          BASELINE_SHARE_2020, INDICATOR_SOURCE, confirmed.get(STATION_KEY, True))
    return pd.DataFrame(head + rows)[INDICATOR_COLUMNS]


#: Columns of ``indicators.csv``, in order.
INDICATOR_COLUMNS = [
    "indicator", "unit", "category", "name_zh", "name_en", "level", "mode", "target_minutes", "villages",
    "villages_inside", "share_inside", "villages_within_target", "share_within_target", "population_share_inside",
    "population_share_within_target", "target_share", "baseline_share_2020", "target_met", "confirmed", "source",
]


def _share(mask: np.ndarray, weight: np.ndarray) -> float:
    total = weight.sum()
    return float(weight[mask].sum() / total) if total > 0 else 0.0


def _check_share(share: float) -> None:
    if not (isinstance(share, (int, float)) and 0 < share <= 1):
        raise InputError(f"target share {share!r}: give a share between 0 and 1, e.g. 0.8")


# --------------------------------------------------------------------------------------------
# township centre


def _find_town(region: Region) -> dict | None:
    """The township centre: a ``place=town`` node, else a 镇/乡(人民)政府 townhall."""
    feats = region.features
    best = None
    for osm_id, name, tags, geom in zip(feats["osm_id"], feats["name"], feats["tags"], feats.geometry):
        if tags.get("place") == "town":
            rank = 0
        elif (tags.get("amenity") == "townhall" or tags.get("office") == "government") and name \
                and _TOWN_GOVERNMENT.search(name):
            rank = 1
        else:
            continue
        if best is None or rank < best[0]:
            p = shapely.point_on_surface(geom)
            best = (rank, {"name": name, "source": "place" if rank == 0 else "townhall", "osm_id": osm_id,
                           "x": float(p.x), "y": float(p.y)})
    return None if best is None else best[1]


def _parse_town(town: Any, region: Region) -> tuple[float, float]:
    """A user's township centre (WGS84 lon/lat) in the region's CRS."""
    try:
        if isinstance(town, str):
            lon, lat = (float(v) for v in town.split(","))
        elif isinstance(town, shapely.Point):
            lon, lat = town.x, town.y
        else:
            lon, lat = (float(v) for v in town)
    except (TypeError, ValueError):
        raise InputError(f"town {town!r}: give the township centre as LON,LAT (WGS84), e.g. 120.49,30.48") from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InputError(f"town {town!r}: not a longitude,latitude pair (WGS84)")
    x, y = Transformer.from_crs(4326, region.crs, always_xy=True).transform(lon, lat)
    return float(x), float(y)


# --------------------------------------------------------------------------------------------
# siting


def propose_stations(
    result: VillageAudit,
    target_share: float | None = None,
    minutes: float | None = None,
) -> StationPlan:
    """The fewest new comprehensive service stations that bring the plan's indicator to
    ``target_share``, each where it serves most residents of its administrative village.

    The indicator counts administrative villages with a facility in their territory, so each
    new station adds exactly one village: the fewest is ``ceil(target × villages) − with``,
    chosen among the villages without one, those with most residents first. Inside its
    village a station goes to the hamlet centre whose walk of ``minutes`` (the station's
    own, 10 by default) reaches most of the village's residents
    (:func:`planner.admin_villages.place_stations`; hamlets with no population are not demand).

    Returns
    -------
    StationPlan
        Empty ``sites`` when the indicator already meets the target (or there is no
        administrative village).
    """
    from planner.admin_villages import admin_indicator, place_stations

    started = time.perf_counter()
    share = result.target_share if target_share is None else target_share
    _check_share(share)
    mode = result.modes[STATION_KEY]
    mins = float(minutes) if minutes is not None else result.minutes[STATION_KEY]
    if not (np.isfinite(mins) and mins > 0):
        raise InputError(f"minutes={minutes!r}: give a positive number of minutes")
    admin = result.admin if result.admin is not None else gpd.GeoDataFrame()
    before = admin["has_facility"].to_numpy(bool) if len(admin) else np.zeros(0, bool)
    ind = admin_indicator(admin, share) if len(admin) else {"new_needed": 0}
    net = result.networks[mode]
    placed = place_stations(admin, result.villages, net, mins * 60.0, ind["new_needed"]) if len(admin) else None
    after = before.copy()
    hamlets_after = result.villages["service_covered"].to_numpy(bool).copy()
    if placed is not None and len(placed.sites):
        after[placed.chosen] = True
        xy = result.villages[["centre_x", "centre_y"]].to_numpy(float)
        cost = cost_matrix(net, xy, shapely.get_coordinates(placed.sites.geometry.to_numpy()), cutoff=mins * 60.0)
        hamlets_after |= np.asarray(cost.getnnz(axis=1) > 0).ravel()
        hamlets_after[result.villages["village_id"].isin(placed.sites["village_id"].dropna()).to_numpy()] = True
    sites = placed.sites if placed is not None else gpd.GeoDataFrame(
        {"rank": [], "admin_id": [], "admin_village": [], "village_id": [], "name": [], "residents": [],
         "residents_served": [], "villages_added": []}, geometry=gpd.GeoSeries([], crs=result.villages.crs))
    status = "target met" if len(admin) and not len(sites) else ("no administrative villages" if not len(admin) else "optimal")
    return StationPlan(
        sites=sites, covered_before=before, covered_after=after, target_share=share, minutes=mins, mode=mode,
        model="one station per administrative village without one", solver="ranking by residents",
        status=status, gap=0.0, seconds=time.perf_counter() - started, hamlets_covered_after=hamlets_after,
        notes=placed.notes if placed is not None else [],
    )


# --------------------------------------------------------------------------------------------
# the whole run


def run_villages(
    osm: str | Path,
    out_dir: str | Path,
    raster: Any = None,
    minutes: float | None = None,
    target_share: float = TARGET_SHARE,
    town: Any = None,
    categories_file: str | Path | None = None,
    categories: str | Iterable[str] | None = None,
    facilities: str | Path | None = None,
    map_html: bool = True,
    boundaries: str | Path | None = None,
) -> dict:
    """Find the administrative villages and hamlets of an extract, audit their services,
    propose stations if the plan's indicator falls short, and write ``DIR/villages.gpkg``
    (layers villages = hamlets, village_centres, administrative_villages, facilities),
    ``indicators.csv``, ``summary.json``, ``map.html`` (and ``proposed_stations.gpkg`` when
    the target is not met) atomically.

    Parameters are those of :func:`audit_villages`; ``osm`` is what
    :func:`planner.sources.load_region` takes, ``facilities`` a file of facilities OSM lacks
    (GeoPackage/GeoJSON, or CSV with lon, lat; a ``category`` column of rural keys) and
    ``boundaries`` a file of administrative village boundaries (``--villages FILE``).

    An urban extract (:func:`planner.settlement.judge_settlement`) has no villages to invent:
    only its ``place=village|hamlet`` and village committees count, and with none of them
    the run writes ``summary.json`` and ``indicators.csv`` with the urban notice only.

    Returns
    -------
    dict
        The summary (what ``summary.json`` holds).
    """
    from planner.sources import load_region

    started = time.perf_counter()
    _check_share(target_share)
    known = load_rural_categories(categories_file)  # a bad file fails before any heavy work
    region = load_region(osm)
    boundary_frame = None
    if boundaries is not None:
        from planner.admin_villages import read_village_boundaries

        boundary_frame = read_village_boundaries(boundaries, region.crs)
    extra = None
    if facilities is not None:
        from planner.categories import facilities_from_file

        extra = facilities_from_file(facilities, region.crs, known)
    homes = homes_from_region(region)
    verdict = homes.attrs["settlement"]
    try:
        found = find_villages(region, homes, raster=raster)
    except NoVillagesError:
        if verdict["kind"] != "urban" or verdict["by_default"] or boundary_frame is not None:
            raise
        return _write_urban(region, verdict, float(homes["population"].sum()), out_dir, started)
    found.attrs["settlement"] = verdict
    result = audit_villages(region, villages=found, categories=categories, minutes=minutes, town=town,
                            categories_file=categories_file, target_share=target_share,
                            extra_facilities=extra, boundaries=boundary_frame)
    if verdict["kind"] == "urban":
        result.notes.insert(0, verdict["notice"])
    stations = None
    if result.admin is not None and len(result.admin) and result.share < target_share - 1e-12:
        stations = propose_stations(result, target_share=target_share)
        result.seconds["siting"] = stations.seconds
    result.seconds["run"] = time.perf_counter() - started
    result.write(out_dir, stations, map_html=map_html)
    return result.summary(stations)


def _write_urban(region: Region, verdict: dict, population: float, out_dir: str | Path, started: float) -> dict:
    """An urban extract with no village at all: the notice, written as the run's summary."""
    summary = {
        "region": region.name, "settlement": verdict, "administrative_villages": 0, "villages": 0,
        "population": population, "population_source": "homes",
        "indicator": {"name_zh": "农村社区综合服务设施覆盖率", "share": None, "villages": 0,
                      "villages_with_facility": 0, "target_met": None, "source": INDICATOR_SOURCE},
        "notes": [verdict["notice"]], "seconds": {"run": round(time.perf_counter() - started, 3)},
    }
    with atomic_dir(out_dir) as tmp:
        pd.DataFrame([{"indicator": "rural_service_coverage", "unit": "administrative_village",
                       "name_zh": "农村社区综合服务设施覆盖率", "villages": 0, "villages_inside": 0,
                       "share_inside": None, "source": INDICATOR_SOURCE}]).to_csv(
            tmp / "indicators.csv", index=False, encoding="utf-8")
        (tmp / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary
