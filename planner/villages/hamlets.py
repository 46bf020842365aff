"""Hamlets (自然村): the villages an OSM extract shows, with their homes and population.

:func:`find_villages` runs eight named steps: named settlement areas, their homes, place nodes
that name them, clusters of the buildings left over, circles round lone place nodes, village
committees, overlaps clipped, and the homes of each (clipped) area.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import connected_components

from planner._errors import InputError
from planner.demand import homes_from_region
from planner.settlement import is_village_committee, judge_settlement
from planner.sources import Region

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


_COMMITTEE_SUFFIX = re.compile(r"(村民委员会|村委会|村委)$")
# Where areas overlap, the more precise outline wins: mapped areas, then building clusters,
# then the circles drawn round lone place nodes and committees.
_MAPPED, _CLUSTER, _CIRCLE = 0, 1, 2


@dataclass
class _Features:
    """The extract's OSM features, one entry per feature in each field."""

    ids: pd.Series
    tags: list[dict]
    geoms: np.ndarray
    names: list[str | None]
    polygonal: np.ndarray

    @classmethod
    def of(cls, feats: gpd.GeoDataFrame) -> _Features:
        tags = feats["tags"].tolist()
        geoms = feats.geometry.to_numpy()
        polygonal = np.isin(shapely.get_type_id(geoms), (3, 6)) if len(geoms) else np.zeros(0, bool)
        return cls(feats["osm_id"], tags, geoms, [t.get("name") or None for t in tags], polygonal)


@dataclass
class _Homes:
    """The homes, and the village each belongs to (``village``: index, -1 for none)."""

    frame: gpd.GeoDataFrame
    pts: np.ndarray
    estimated: np.ndarray
    village: np.ndarray

    @classmethod
    def of(cls, homes: gpd.GeoDataFrame) -> _Homes:
        xy = shapely.get_coordinates(homes.geometry.to_numpy()) if len(homes) else np.zeros((0, 2))
        pts = shapely.points(xy) if len(xy) else np.zeros(0, object)
        estimated = homes["estimated"].to_numpy(bool) if "estimated" in homes else np.zeros(len(homes), bool)
        return cls(homes, pts, estimated, np.full(len(homes), -1, np.int64))


# size: over 80 lines by its numpy docstring only; the code itself is under 60.
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
    homes = homes_from_region(region) if homes is None else homes.to_crs(region.crs)
    verdict = homes.attrs.get("settlement") or judge_settlement(region).summary()
    if urban is None:
        urban = verdict["kind"] == "urban"
    h = _Homes.of(homes.reset_index(drop=True))
    f = _Features.of(region.features)
    notes: list[str] = []

    villages = _named_areas(f, urban)  # 1.
    _homes_in_named_areas(h, villages)  # 2.
    loose_places = _name_areas_by_place_nodes(f, villages, notes)  # 3.
    loose_places = _clusters(f, h, villages, loose_places, link_m, min_homes, urban, notes)  # 4.
    _place_circles(f, villages, loose_places)  # 5.
    _attach_committees(f, villages)  # 6.
    if not villages:
        raise NoVillagesError(
            f"{region.source}: no villages found (no place=village|hamlet, named landuse=residential, "
            f"village committee or cluster of {min_homes}+ homes); check that the extract covers a rural area"
        )
    _clip_overlaps(villages)  # 7.
    _homes_in_villages(h, villages)  # 8.

    gdf = _village_frame(villages, h.frame, h.village, h.estimated, region.crs)
    gdf.attrs["population_source"] = "homes"
    outside = h.village < 0
    gdf.attrs["homes_outside"] = int(outside.sum())
    gdf.attrs["population_outside"] = (
        float(h.frame["population"].to_numpy(float)[outside].sum()) if len(h.frame) else 0.0
    )
    gdf.attrs["notes"] = notes
    gdf.attrs["settlement"] = verdict
    if raster is not None:
        from planner.raster import sum_to_polygons

        gdf["population"] = sum_to_polygons(raster, gdf)
        gdf.attrs["population_source"] = "raster"
    return gdf


def _named_areas(f: _Features, urban: bool) -> list[dict]:
    """Step 1. Named settlement areas: place areas and (rural only) named residential land."""
    villages = []
    for i in np.flatnonzero(f.polygonal):
        t = f.tags[i]
        if not f.names[i]:
            continue
        if t.get("place") in _PLACES:
            source = "place"
        elif t.get("landuse") == "residential" and "building" not in t and not urban:
            source = "landuse"
        else:
            continue
        villages.append(_village(f.ids.iat[i], f.names[i], source, f.geoms[i], _MAPPED))
    return villages


def _homes_in_named_areas(h: _Homes, villages: list[dict]) -> None:
    """Step 2. Homes in or at the edge of a named area belong to it."""
    if villages and len(h.frame):
        hi, v = _nearest_within(h.pts, [r["geometry"] for r in villages], EDGE_M)
        h.village[hi] = v


def _name_areas_by_place_nodes(f: _Features, villages: list[dict], notes: list[str]) -> list[int]:
    """Step 3. Place nodes name the area they stand in; returns the others (they seed clusters)."""
    place_nodes = [
        i
        for i in range(len(f.tags))
        if f.tags[i].get("place") in _PLACES and f.names[i] and shapely.get_type_id(f.geoms[i]) == 0
    ]
    if not (place_nodes and villages):
        return place_nodes
    p, v = _nearest_within(f.geoms[place_nodes], [r["geometry"] for r in villages], EDGE_M)
    for pi, vi in zip(p, v, strict=True):
        i = place_nodes[pi]
        rec = villages[vi]
        if rec["source"] == "place" and rec["name"] != f.names[i]:
            notes.append(f"place {f.names[i]} ({f.ids.iat[i]}) stands in {rec['name']}: kept the latter")
            continue
        rec.update(name=f.names[i], source="place", centre=f.geoms[i])
    named_places = set(p.tolist())
    return [i for pi, i in enumerate(place_nodes) if pi not in named_places]


def _clusters(
    f: _Features,
    h: _Homes,
    villages: list[dict],
    loose_places: list[int],
    link_m: float,
    min_homes: int,
    urban: bool,
    notes: list[str],
) -> list[int]:
    """Step 4. Clusters of the homes left over and of unnamed residential land.

    A place node names the nearest cluster within its radius; returns the place nodes left.
    """
    unnamed_res = [
        i
        for i in np.flatnonzero(f.polygonal)
        if f.tags[i].get("landuse") == "residential"
        and "building" not in f.tags[i]
        and not f.names[i]
        and not urban
    ]
    free = np.flatnonzero((h.village < 0) & ~h.estimated & (not urban))
    if not len(free) + len(unnamed_res):
        return loose_places
    items = np.concatenate([h.pts[free], f.geoms[unnamed_res]])
    n_free = len(free)
    labels = _single_linkage(items, link_m)
    n_comp = int(labels.max()) + 1
    comp_homes = np.bincount(labels[:n_free], minlength=n_comp)
    comp_area = np.bincount(labels[n_free:], minlength=n_comp) > 0
    seed, loose_places = _seed_clusters(f, items, labels, loose_places, notes)
    keep = (comp_homes >= min_homes) | comp_area
    keep[list(seed)] = True
    comp_village = np.full(n_comp, -1, np.int64)
    n_clusters = 0
    for c in np.flatnonzero(keep):
        members = items[labels == c]
        outline = shapely.convex_hull(shapely.union_all(shapely.buffer(members, CLUSTER_BUFFER_M)))
        if c in seed:
            i = seed[c]
            rec = _village(f.ids.iat[i], f.names[i], "place", outline, _CLUSTER, centre=f.geoms[i])
        else:
            n_clusters += 1
            rec = _village(f"cluster/{n_clusters}", None, "cluster", outline, _CLUSTER)
        comp_village[c] = len(villages)
        villages.append(rec)
    h.village[free] = comp_village[labels[:n_free]]
    # Estimated homes on unnamed residential land go with that land's cluster.
    est_free = np.flatnonzero((h.village < 0) & h.estimated)
    if len(est_free) and unnamed_res:
        hi, a = _nearest_within(h.pts[est_free], f.geoms[unnamed_res], 0.0)
        h.village[est_free[hi]] = comp_village[labels[n_free + a]]
    return loose_places


def _seed_clusters(
    f: _Features, items: np.ndarray, labels: np.ndarray, loose_places: list[int], notes: list[str]
) -> tuple[dict[int, int], list[int]]:
    """Cluster label → the place node naming it (the nearest within its radius: homes are often
    mapped around, not at, the node that names them), and the place nodes left."""
    seed: dict[int, int] = {}
    seeded: set[int] = set()
    for kind, radius in PLACE_RADIUS_M.items():
        of_kind = [i for i in loose_places if f.tags[i]["place"] == kind]
        p, it = _nearest_within(f.geoms[of_kind], items, radius)
        for pi, ii in zip(p, it, strict=True):
            if labels[ii] in seed:
                other = f.names[seed[labels[ii]]]
                notes.append(f"places {other} and {f.names[of_kind[pi]]} share one cluster: named it {other}")
                continue
            seed[int(labels[ii])] = of_kind[pi]
        seeded |= {of_kind[pi] for pi in p}
    return seed, [i for i in loose_places if i not in seeded]


def _place_circles(f: _Features, villages: list[dict], loose_places: list[int]) -> None:
    """Step 5. Place nodes with nothing mapped near them: a circle of ``PLACE_RADIUS_M``."""
    for i in loose_places:
        radius = PLACE_RADIUS_M[f.tags[i]["place"]]
        villages.append(
            _village(
                f.ids.iat[i],
                f.names[i],
                "place",
                shapely.buffer(f.geoms[i], radius),
                _CIRCLE,
                centre=f.geoms[i],
            )
        )


def _attach_committees(f: _Features, villages: list[dict]) -> None:
    """Step 6. Village committees name the village they stand in (or found one)."""
    committees = [i for i in range(len(f.tags)) if _is_committee(f.tags[i])]
    if not committees:
        return
    existing = [r["geometry"] for r in villages]
    c_idx, v_idx = (
        _nearest_within(f.geoms[committees], existing, EDGE_M)
        if existing
        else (np.zeros(0, int), np.zeros(0, int))
    )
    attached = dict(zip(c_idx.tolist(), v_idx.tolist(), strict=True))
    for ci, i in enumerate(committees):
        admin = _admin_village(f.names[i])
        if ci in attached:
            rec = villages[attached[ci]]
            if rec["source"] == "cluster":
                rec.update(village_id=f.ids.iat[i], name=admin, source="committee")
        else:
            rec = _village(
                f.ids.iat[i],
                admin,
                "committee",
                shapely.buffer(f.geoms[i], EDGE_M),
                _CIRCLE,
                centre=shapely.point_on_surface(f.geoms[i]),
            )
            villages.append(rec)
        rec["committee"].append(f.names[i])
        rec["admin_village"] = rec["admin_village"] or admin


def _clip_overlaps(villages: list[dict]) -> None:
    """Step 7. Areas must not overlap (a raster's people would count twice): mapped areas win
    over clusters, clusters over circles."""
    shapes = shapely.make_valid(np.array([r["geometry"] for r in villages], dtype=object))
    # Rank by kind, then by order found (two overlapping named areas: the first wins).
    rank = np.array([r["rank"] * len(villages) + k for k, r in enumerate(villages)])
    a, b = shapely.STRtree(shapes).query(shapes, predicate="intersects")
    earlier = rank[b] < rank[a]
    for k in np.unique(a[earlier]):
        above = shapely.union_all(shapes[b[earlier & (a == k)]])
        villages[k]["geometry"] = shapely.difference(shapes[k], above)
    for k in np.setdiff1d(np.arange(len(villages)), a[earlier]):
        villages[k]["geometry"] = shapes[k]


def _homes_in_villages(h: _Homes, villages: list[dict]) -> None:
    """Step 8. A home inside a village's (clipped) area is its; scattered homes join the nearest
    village within ``ATTACH_M``."""
    if len(h.frame):
        hi, v = shapely.STRtree([r["geometry"] for r in villages]).query(h.pts, predicate="within")
        h.village[hi] = v
    loose = np.flatnonzero(h.village < 0)
    if len(loose):
        hi, v = _nearest_within(h.pts[loose], [r["geometry"] for r in villages], ATTACH_M)
        h.village[loose[hi]] = v


def _village(village_id: str, name: str | None, source: str, geometry, rank: int, centre=None) -> dict:
    return {
        "village_id": village_id,
        "name": name,
        "source": source,
        "geometry": geometry,
        "rank": rank,
        "centre": centre,
        "committee": [],
        "admin_village": None,
    }


def _village_frame(
    villages: list[dict], homes: gpd.GeoDataFrame, home_village: np.ndarray, estimated: np.ndarray, crs
) -> gpd.GeoDataFrame:
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
    idx = shapely.STRtree(targets).query_nearest(
        geoms, max_distance=max_m if max_m > 0 else 1e-6, all_matches=False
    )
    return idx[0].astype(np.int64), idx[1].astype(np.int64)
