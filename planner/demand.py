"""Homes, population and vulnerable groups; gated compounds (小区) and their gates.

Homes come from residential buildings (population = footprint × levels / floor area per
person), from a user's file of homes or compounds with households, or — where OSM maps no
buildings, as in much of China — from a regular grid over residential land, flagged
``estimated``. Elderly, children and disabled counts come from shares (national census
defaults in :mod:`planner.settings`) unless the file gives them.
"""

from __future__ import annotations

import os
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings
from planner._errors import InputError
from planner.network import WALL_BARRIERS
from planner.sources import Region

#: ``building=*`` values that are homes wherever they stand.
RESIDENTIAL_BUILDINGS = frozenset(
    {
        "residential",
        "apartments",
        "house",
        "detached",
        "dormitory",
        "terrace",
        "semidetached_house",
        "bungalow",
        "farm",
        "cabin",
        "static_caravan",
    }
)
#: Tags that make a building something other than a home.
_NON_HOME_KEYS = ("amenity", "shop", "office", "tourism", "craft", "healthcare", "leisure", "industrial")
_GATE_BARRIERS = frozenset(
    {"gate", "lift_gate", "entrance", "turnstile", "swing_gate", "sliding_gate", "full-height_turnstile"}
)
#: Smaller footprints are sheds and garages, not homes.
MIN_HOME_FOOTPRINT_M2 = 30.0
#: A residential area larger than this is a district, not one gated compound (小区 rarely
#: exceed ~30 ha; keep a margin).
MAX_COMPOUND_AREA_M2 = 600_000.0

#: A row of a homes file with more people than this is a mistake (a whole city on one point).
MAX_PEOPLE_PER_ROW = 10_000_000.0

_HOME_COLUMNS = [
    "home_id",
    "population",
    "households",
    "elderly",
    "children",
    "disabled",
    "estimated",
    "source",
]


def weighted_share(mask: np.ndarray, weight: np.ndarray) -> float:
    """Share of ``weight`` (people, homes, elderly, villages...) where ``mask`` holds; 0 when the
    total weight is 0.

    >>> weighted_share(np.array([True, False]), np.array([3.0, 1.0]))
    0.75
    """
    total = weight.sum()
    return float(weight[mask].sum() / total) if total > 0 else 0.0


def homes_from_region(region: Region, profile: str | None = None) -> gpd.GeoDataFrame:
    """Home points of a region: residential buildings, plus a grid over residential land
    that has no mapped homes.

    People per home follow the extract's population profile (``profile``: "auto", "urban" or
    "rural"; default ``settings.population_profile``): floor area per person, levels of
    buildings without ``building:levels``, persons per household and grid density differ
    between urban and rural land (:func:`planner.settlement.judge_settlement`). The profile
    used is in ``attrs["profile"]`` and ``attrs["settlement"]``.

    Returns
    -------
    geopandas.GeoDataFrame
        ``home_id`` ("way/123" for a building, "grid/7" for an estimated point),
        ``population``, ``households``, ``elderly``, ``children``, ``disabled``,
        ``estimated`` (bool), ``source`` ("building"/"grid"), point geometry in ``region.crs``.
    """
    from planner.settlement import judge_settlement

    settlement = judge_settlement(region, profile)
    prof = settlement.profile
    feats = region.features
    buildings = home_buildings_of(region)
    parts = []
    if len(buildings):
        levels = np.array([_levels(t, prof.default_levels) for t in buildings["tags"]])
        floor = shapely.area(buildings.geometry.to_numpy()) * levels
        parts.append(
            gpd.GeoDataFrame(
                {
                    "home_id": buildings["osm_id"].to_numpy(),
                    "population": floor / prof.floor_area_per_person_m2,
                    "estimated": False,
                    "source": "building",
                },
                geometry=shapely.point_on_surface(buildings.geometry.to_numpy()),
                crs=region.crs,
            )
        )
    residential = residential_land(feats)
    if len(residential):
        if len(buildings):
            has_homes = np.zeros(len(residential), bool)
            res_idx, _ = shapely.STRtree(parts[0].geometry.to_numpy()).query(
                residential.geometry.to_numpy(), predicate="contains"
            )
            has_homes[np.unique(res_idx)] = True
            residential = residential[~has_homes]
        if len(residential):
            parts.append(
                grid_homes(residential.geometry, crs=region.crs, density_per_ha=prof.grid_density_per_ha)
            )
    if not parts:
        homes = _empty_homes(region.crs)
    else:
        homes = pd.concat(parts, ignore_index=True)
        homes["households"] = homes["population"] / prof.persons_per_household
        homes = add_groups(homes)
    homes.attrs["profile"] = prof.name
    homes.attrs["settlement"] = settlement.summary()
    return homes


def grid_homes(
    polygons: gpd.GeoSeries,
    crs=None,
    spacing_m: float | None = None,
    density_per_ha: float | None = None,
) -> gpd.GeoDataFrame:
    """Estimated homes on a regular grid over polygons of residential land.

    Each polygon's population (area × ``density_per_ha``) is spread evenly over its grid
    points; a polygon smaller than a cell gets one point inside it. Rows are ``estimated``.
    """
    spacing = float(spacing_m or settings.grid_spacing_m)
    density = float(density_per_ha or settings.grid_density_per_ha)
    geoms = np.asarray(polygons.geometry if hasattr(polygons, "geometry") else polygons)
    crs = crs or getattr(polygons, "crs", None)
    xs, ys, pops = [], [], []
    for g in geoms:
        if g is None or g.is_empty or g.area <= 0:
            continue
        gx, gy = grid_points(g, spacing)
        xs.append(gx)
        ys.append(gy)
        pops.append(np.full(len(gx), g.area / 10_000 * density / len(gx)))
    if not xs:
        return _empty_homes(crs)
    x, y, pop = np.concatenate(xs), np.concatenate(ys), np.concatenate(pops)
    return gpd.GeoDataFrame(
        {
            "home_id": [f"grid/{i}" for i in range(len(x))],
            "population": pop,
            "estimated": True,
            "source": "grid",
        },
        geometry=gpd.points_from_xy(x, y),
        crs=crs,
    )


def grid_points(polygon, spacing_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres of a regular grid inside a polygon; one point inside it when the polygon
    is smaller than a cell."""
    minx, miny, maxx, maxy = polygon.bounds
    gx, gy = np.meshgrid(
        np.arange(minx + spacing_m / 2, maxx, spacing_m), np.arange(miny + spacing_m / 2, maxy, spacing_m)
    )
    gx, gy = gx.ravel(), gy.ravel()
    inside = shapely.contains_xy(polygon, gx, gy)
    gx, gy = gx[inside], gy[inside]
    if len(gx) == 0:
        p = polygon.point_on_surface()
        gx, gy = np.array([p.x]), np.array([p.y])
    return gx, gy


def homes_from_file(
    path: str | os.PathLike, crs, region: Region | None = None, file_crs=None, coords: str | None = None
) -> gpd.GeoDataFrame:
    """Homes or compounds from a user's file (GeoPackage/GeoJSON, or CSV with lon/lat).

    Columns used: ``households`` or ``population`` (one is required); optional ``home_id``,
    ``elderly``, ``children``, ``disabled``. Polygons (compounds) become a point inside.
    Rows without a place, with counts that are not numbers, or (given ``region``) beyond the
    extract's streets by more than ``settings.max_snap_m`` are refused, naming the rows.
    ``file_crs`` and ``coords`` are :func:`planner.categories.read_points_table`'s ``crs``
    and ``coords`` (GCJ-02 / BD-09 lon/lat).
    """
    from planner.categories import read_points_table

    frame = read_points_table(path, crs=file_crs, coords=coords)
    if len(frame) == 0:
        raise InputError(f"{path}: no rows; give one row per home or compound")
    if "population" not in frame.columns and "households" not in frame.columns:
        raise InputError(f"{path}: needs a 'households' or 'population' column")
    frame = frame.to_crs(crs)
    from planner.categories import row_numbers

    counts = _file_counts(frame, path)
    pop = pd.Series(
        counts["population"]
        if "population" in counts
        else counts["households"] * settings.persons_per_household
    )
    for col in ("elderly", "children", "disabled"):
        if col in counts and (over := counts[col] > pop.to_numpy() * (1 + 1e-9)).any():
            raise InputError(
                f"{path}: {row_numbers(over)}: {col} exceeds the row's population; check the columns"
            )
    out = gpd.GeoDataFrame(
        {
            "home_id": frame["home_id"].astype(str).to_numpy()
            if "home_id" in frame.columns
            else [f"file/{i}" for i in range(len(frame))],
            "population": pop.to_numpy(float),
            "estimated": False,
            "source": "file",
        },
        geometry=shapely.point_on_surface(frame.geometry.to_numpy()),
        crs=crs,
    )
    for col in ("households", "elderly", "children", "disabled"):
        if col in counts:
            out[col] = counts[col]
    if "floor_area_m2" in frame.columns:  # how --population / --population-table share a cell's count
        floor = pd.to_numeric(frame["floor_area_m2"], errors="coerce").to_numpy(float)
        bad = ~(np.isfinite(floor) & (floor >= 0))
        if bad.any():
            raise InputError(
                f"{path}: {row_numbers(bad)}: floor_area_m2 missing, not a number or negative; "
                "give each home's residential floor area in m²"
            )
        out["floor_area_m2"] = floor
    if region is not None and len(region.node_x):
        _check_near_streets(out, region, path)
    return add_groups(out)


def _file_counts(frame: pd.DataFrame, path) -> dict[str, np.ndarray]:
    """The count columns of a homes file as numbers (NaN where blank); refuses rows whose count
    is not a number, is negative or above :data:`MAX_PEOPLE_PER_ROW`, or where the required
    count (population, else households) is blank."""
    from planner.categories import row_numbers

    counts = {}
    for col in ("population", "households", "elderly", "children", "disabled"):
        if col not in frame.columns:
            continue
        raw = frame[col]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(float)
        blank = raw.isna().to_numpy() | raw.astype(str).str.strip().eq("").to_numpy()
        required = col == ("population" if "population" in frame.columns else "households")
        bad = ~(np.isfinite(values) & (values >= 0) & (values <= MAX_PEOPLE_PER_ROW)) & (~blank | required)
        bad |= raw.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(bool)  # true is not 1 person
        if bad.any():
            raise InputError(
                f"{path}: {row_numbers(bad)}: {col} missing, not a number, negative or above "
                f"{MAX_PEOPLE_PER_ROW:,.0f}; give a count of people (or dwellings) per row"
            )
        counts[col] = np.where(blank, np.nan, values)
    return counts


def _check_near_streets(homes: gpd.GeoDataFrame, region: Region, path) -> None:
    """Refuse homes more than ``settings.max_snap_m`` beyond the box of the region's streets."""
    from planner.categories import row_numbers

    xy = shapely.get_coordinates(homes.geometry.to_numpy())
    pad = settings.max_snap_m
    outside = (
        (xy[:, 0] < region.node_x.min() - pad)
        | (xy[:, 0] > region.node_x.max() + pad)
        | (xy[:, 1] < region.node_y.min() - pad)
        | (xy[:, 1] > region.node_y.max() + pad)
    )
    if outside.any():
        raise InputError(
            f"{path}: {row_numbers(outside)}: more than {pad:g} m beyond the streets of {region.name}; "
            "give an extract that covers them, or fix their coordinates"
        )


def add_groups(
    homes: gpd.GeoDataFrame,
    elderly_share: float | None = None,
    children_share: float | None = None,
    disabled_share: float | None = None,
) -> gpd.GeoDataFrame:
    """Fill ``households``, ``elderly``, ``children`` and ``disabled`` where missing, from
    population and shares (defaults: 7th census and the 2006 disability survey, see
    :mod:`planner.settings`)."""
    homes = homes.copy()
    if "population" not in homes.columns:
        raise InputError("homes: a 'population' column is needed (or 'households' in a homes file)")
    from planner.categories import check_places

    check_places(homes, "homes")
    for col, value in (("home_id", None), ("estimated", False), ("source", "given")):
        if col not in homes.columns:
            homes[col] = [f"home/{i}" for i in range(len(homes))] if col == "home_id" else value
    shares = {
        "elderly": settings.elderly_share if elderly_share is None else elderly_share,
        "children": settings.children_share if children_share is None else children_share,
        "disabled": settings.disabled_share if disabled_share is None else disabled_share,
    }
    for name, share in shares.items():
        if not 0 <= share <= 1:
            raise InputError(f"{name} share {share}: must be between 0 and 1")
        if name not in homes.columns:
            homes[name] = homes["population"] * share
        else:
            homes[name] = homes[name].fillna(homes["population"] * share)
    if "households" not in homes.columns:
        homes["households"] = homes["population"] / settings.persons_per_household
    else:
        homes["households"] = homes["households"].fillna(homes["population"] / settings.persons_per_household)
    cols = _HOME_COLUMNS + [c for c in homes.columns if c not in _HOME_COLUMNS and c != "geometry"]
    return homes[[*cols, "geometry"]]


# --------------------------------------------------------------------------------------------
# gated compounds


def compounds(region: Region) -> gpd.GeoDataFrame:
    """Walled or gated residential compounds (小区) and their gates.

    A residential area is a compound when it is walled (``barrier=wall|fence`` on its
    outline, or barrier lines along at least half of it) or holds private internal ways.

    Returns
    -------
    geopandas.GeoDataFrame
        ``compound_id`` (OSM id), ``name``, ``walled``, ``gate_ids`` (list of OSM ids),
        ``gate_xy`` (k × 2 array), polygon geometry in ``region.crs``. Found once per region
        (the homes and the settlement evidence both ask); do not modify it.
    """
    if "compounds" not in region.derived:
        region.derived["compounds"] = _find_compounds(region)
    return region.derived["compounds"]


def _find_compounds(region: Region) -> gpd.GeoDataFrame:
    feats = region.features
    res = residential_land(feats)
    res = res[shapely.area(res.geometry.to_numpy()) <= MAX_COMPOUND_AREA_M2]
    cols = ["compound_id", "name", "walled", "gate_ids", "gate_xy"]
    if len(res) == 0:
        return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs=region.crs)
    tags = feats["tags"]
    outline = shapely.boundary(res.geometry.to_numpy())
    tol = settings.gate_tolerance_m
    walled = np.array(res["tags"].map(lambda t: t.get("barrier") in WALL_BARRIERS), dtype=bool)
    wall_lines = feats[
        tags.map(lambda t: t.get("barrier") in WALL_BARRIERS).to_numpy()
        & feats.geom_type.isin(["LineString", "MultiLineString", "Polygon", "MultiPolygon"]).to_numpy()
    ]
    if len(wall_lines):
        walled |= share_along_walls(outline, wall_lines.geometry.to_numpy(), tol) >= 0.5
    private = _private_way_lines(region)
    has_private = np.zeros(len(res), bool)
    if len(private):
        idx, _ = shapely.STRtree(private).query(res.geometry.to_numpy(), predicate="intersects")
        has_private[np.unique(idx)] = True
    gated = walled | has_private
    res, outline, walled = res[gated], outline[gated], walled[gated]
    gates = feats[
        (feats["osm_type"] == "node").to_numpy()
        & tags.map(
            lambda t: t.get("barrier") in _GATE_BARRIERS or ("entrance" in t and t.get("entrance") != "no")
        ).to_numpy()
        & ~tags.map(lambda t: t.get("access") == "no" or t.get("locked") == "yes").to_numpy()
    ]
    gate_ids: list[list[str]] = [[] for _ in range(len(res))]
    gate_xy: list[np.ndarray] = [np.zeros((0, 2)) for _ in range(len(res))]
    if len(gates) and len(res):
        c_idx, g_idx = shapely.STRtree(gates.geometry.to_numpy()).query(
            outline, predicate="dwithin", distance=tol
        )
        gxy = shapely.get_coordinates(gates.geometry.to_numpy())
        for c in np.unique(c_idx):
            sel = g_idx[c_idx == c]
            gate_ids[c] = gates["osm_id"].to_numpy()[sel].tolist()
            gate_xy[c] = gxy[sel]
    return gpd.GeoDataFrame(
        {
            "compound_id": res["osm_id"].to_numpy(),
            "name": res["name"].to_numpy(),
            "walled": walled,
            "gate_ids": gate_ids,
            "gate_xy": gate_xy,
        },
        geometry=res.geometry.to_numpy(),
        crs=region.crs,
    )


def share_along_walls(outline: np.ndarray, walls: np.ndarray, tol: float) -> np.ndarray:
    """Share of each outline's length within ``tol`` of a wall (a wall area counts by its ring).

    Each outline meets only the walls near it (an STRtree query), so the cost grows with the
    number of compounds, not with the product of compounds and the whole city's walls.
    """
    rings = np.where(shapely.area(walls) > 0, shapely.boundary(walls), walls)
    zones = shapely.buffer(rings, tol)
    o_idx, w_idx = shapely.STRtree(zones).query(outline, predicate="intersects")
    covered = np.zeros(len(outline))
    if len(o_idx):
        order = np.argsort(o_idx, kind="stable")
        o_idx, w_idx = o_idx[order], w_idx[order]
        starts = np.flatnonzero(np.r_[True, o_idx[1:] != o_idx[:-1]])
        for o, near in zip(o_idx[starts], np.split(w_idx, starts[1:]), strict=True):
            covered[o] = shapely.length(shapely.intersection(outline[o], shapely.union_all(zones[near])))
    return covered / np.maximum(shapely.length(outline), 1e-9)


def assign_compounds(homes: gpd.GeoDataFrame, comp: gpd.GeoDataFrame) -> np.ndarray:
    """Index into ``comp`` of the smallest compound holding each home (-1 for none)."""
    out = np.full(len(homes), -1, np.int64)
    if len(comp) == 0 or len(homes) == 0:
        return out
    h_idx, c_idx = shapely.STRtree(comp.geometry.to_numpy()).query(
        homes.geometry.to_numpy(), predicate="within"
    )
    if len(h_idx):
        area = shapely.area(comp.geometry.to_numpy())[c_idx]
        order = np.lexsort((area, h_idx))
        h_sorted = h_idx[order]
        first = np.ones(len(order), bool)
        first[1:] = h_sorted[1:] != h_sorted[:-1]
        out[h_sorted[first]] = c_idx[order][first]
    return out


# --------------------------------------------------------------------------------------------
# helpers


def home_buildings_of(region: Region) -> gpd.GeoDataFrame:
    """:func:`home_buildings` of a region's features, found once per region (the homes and
    the settlement evidence both ask); do not modify it."""
    if "home_buildings" not in region.derived:
        region.derived["home_buildings"] = home_buildings(region.features)
    return region.derived["home_buildings"]


def home_buildings(feats: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if len(feats) == 0:
        return feats
    polys = feats[feats.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()]
    tags = polys["tags"]
    building = tags.map(lambda t: t.get("building")).fillna("")
    non_home = tags.map(lambda t: any(k in t for k in _NON_HOME_KEYS)).to_numpy()
    typed = building.isin(RESIDENTIAL_BUILDINGS).to_numpy()
    generic = (building == "yes").to_numpy().copy()
    if generic.any():
        res = residential_land(feats)
        inside = np.zeros(len(polys), bool)
        if len(res):
            b_idx, _ = shapely.STRtree(res.geometry.to_numpy()).query(
                shapely.point_on_surface(polys.geometry.to_numpy()), predicate="within"
            )
            inside[np.unique(b_idx)] = True
        generic &= inside
    keep = (typed | generic) & ~non_home & (shapely.area(polys.geometry.to_numpy()) >= MIN_HOME_FOOTPRINT_M2)
    return polys[keep]


def residential_land(feats: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if len(feats) == 0:
        return feats
    is_res = feats["tags"].map(lambda t: t.get("landuse") == "residential" and "building" not in t).to_numpy()
    return feats[is_res & feats.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()]


def _private_way_lines(region: Region) -> np.ndarray:
    ways = region.ways
    private = (ways["access"].isin(["private"]) | (ways["service"] == "private")).to_numpy()
    seg = private[region.seg_way]
    if not seg.any():
        return np.zeros(0, object)
    u, v = region.seg_u[seg], region.seg_v[seg]
    a = np.column_stack([region.node_x[u], region.node_y[u]])
    b = np.column_stack([region.node_x[v], region.node_y[v]])
    return shapely.linestrings(np.stack([a, b], axis=1))


LEVELS_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)")


def _levels(tags: dict, defaults: dict | None = None) -> float:
    text = tags.get("building:levels")
    if text:
        m = LEVELS_RE.match(str(text))
        if m and 0 < float(m.group(1)) < 200:
            return float(m.group(1))
    defaults = settings.default_levels if defaults is None else defaults
    return float(defaults.get(tags.get("building", "yes"), defaults["yes"]))


def _empty_homes(crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: [] for c in _HOME_COLUMNS}, geometry=[], crs=crs)
