"""Where a new facility could go: land and buildings, each with its area.

:func:`land_candidates` finds, in the region's OSM features, the land a facility can occupy:
vacant, brownfield, greenfield and construction land (``vacant_land``), public-facility land
(``public_land``), non-residential buildings that could be converted (``building``) and sites
of public services that could take another use (``facility_site``); each with its land area
(the polygon) and floor area (footprint × ``building:levels``; one storey where the levels are
not mapped, so a building is never credited with floors nobody mapped). :func:`parcels_from_file`
reads a user's parcels (``--candidates FILE``). :func:`sized_candidates` keeps those big enough
for a category (:mod:`planner.sizing`) and falls back to street points, labelled as such, only
when no mapped land or building fits. The pure models (``--no-standards``) take candidate
points instead: :func:`candidates_from_region` and :func:`candidates_from_file` (also in
:mod:`planner.siting`).
"""

from __future__ import annotations

import os

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner._errors import InputError
from planner.network import Network
from planner.sizing import Sizing, candidate_capacity, fits
from planner.sources import Region

#: Land uses a new facility can be built on.
VACANT_LANDUSE = frozenset({"brownfield", "greenfield", "construction", "vacant"})
#: Land uses for public facilities (公共管理与公共服务用地).
PUBLIC_LANDUSE = frozenset({"civic", "institutional", "public", "education", "religious"})
#: Non-residential building uses that could be converted to a community facility.
CONVERTIBLE_BUILDINGS = frozenset(
    {
        "commercial",
        "retail",
        "office",
        "public",
        "civic",
        "community_centre",
        "industrial",
        "warehouse",
        "service",
        "government",
    }
)
#: Public-service sites whose land or building could take another community use.
FACILITY_AMENITIES = frozenset(
    {"community_centre", "social_facility", "townhall", "library", "social_centre"}
)
#: The label of street points used when no mapped land or building fits.
STREET_FALLBACK = "street (fallback: no mapped land fits)"
COLUMNS = ["candidate_id", "source", "name", "land_m2", "floor_m2", "places"]

# --- Candidate points of the pure models (``planner site --no-standards``) -----------------------
#: Non-residential building uses that can host a community facility (existing stock).
_STOCK_BUILDINGS = frozenset(
    {
        "commercial",
        "retail",
        "office",
        "public",
        "civic",
        "community_centre",
        "industrial",
        "warehouse",
        "school",
        "kindergarten",
        "service",
        "government",
        "yes",
    }
)
_VACANT_LANDUSE = frozenset({"brownfield", "greenfield", "construction", "vacant", "grass", "village_green"})


def land_candidates(region: Region) -> gpd.GeoDataFrame:
    """Land and buildings of the region a facility could occupy.

    Returns
    -------
    GeoDataFrame
        ``candidate_id`` (OSM id), ``source`` (``vacant_land``, ``public_land``, ``building``,
        ``facility_site``), ``name``, ``land_m2``, ``floor_m2`` (NaN: not known), ``places``
        (NaN), points on the surface, in the region's CRS.
    """
    feats = region.features
    polys = feats[feats.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()]
    tags = polys["tags"].tolist()
    source = np.array([_land_source(t) for t in tags], dtype=object)
    keep = source != None  # noqa: E711 (elementwise on an object array)
    sub = polys[keep]
    area = sub.geometry.area.to_numpy()
    levels = np.array([_levels(t) for t in np.asarray(tags, dtype=object)[keep]], float)
    is_building = np.array(["building" in t for t in np.asarray(tags, dtype=object)[keep]], bool)
    return gpd.GeoDataFrame(
        {
            "candidate_id": sub["osm_id"].astype(str).to_numpy(),
            "source": source[keep].astype(str),
            "name": sub["name"].to_numpy(),
            "land_m2": area,
            "floor_m2": np.where(is_building, area * levels, np.nan),
            "places": np.nan,
        },
        geometry=shapely.point_on_surface(sub.geometry.to_numpy()),
        crs=region.crs,
    )


def parcels_from_file(
    path: str | os.PathLike, crs, file_crs=None, coords: str | None = None
) -> gpd.GeoDataFrame:
    """A user's candidate parcels (GeoPackage/GeoJSON, or CSV with lon/lat).

    Optional columns: ``candidate_id``, ``name``, ``max_floor_area_m2`` (floor a facility may
    use), ``land_area_m2`` (default: a polygon's area), ``places`` (e.g. childcare places) and
    ``capacity`` (residents the site can serve, overriding the standards' capacity).
    ``file_crs`` and ``coords`` are :func:`planner.categories.read_points_table`'s ``crs`` and
    ``coords``.
    """
    from planner.categories import read_points_table, row_numbers

    frame = read_points_table(path, crs=file_crs, coords=coords).to_crs(crs)
    if len(frame) == 0:
        raise InputError(f"{path}: no candidate sites in the file")
    geoms = frame.geometry.to_numpy()
    poly_area = np.where(shapely.get_type_id(geoms) >= 3, shapely.area(geoms), np.nan)
    out = gpd.GeoDataFrame(
        {
            "candidate_id": frame["candidate_id"].astype(str).to_numpy()
            if "candidate_id" in frame
            else [f"file/{i}" for i in range(len(frame))],
            "source": "file",
            "name": frame["name"].to_numpy() if "name" in frame else None,
            "land_m2": poly_area,
            "floor_m2": np.nan,
            "places": np.nan,
        },
        geometry=shapely.point_on_surface(geoms),
        crs=crs,
    )
    for column, target in (
        ("max_floor_area_m2", "floor_m2"),
        ("land_area_m2", "land_m2"),
        ("places", "places"),
        ("capacity", "capacity"),
    ):
        if column not in frame:
            continue
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(float)
        bad = (raw.notna().to_numpy() & ~np.isfinite(values)) | (np.isfinite(values) & (values <= 0))
        if column == "capacity":
            bad |= ~np.isfinite(values)
        if bad.any():
            raise InputError(
                f"{path}: {row_numbers(bad)}: {column} is not a positive number; give it in "
                f"{'residents' if column == 'capacity' else 'm²' if column.endswith('m2') else 'places'} "
                "or leave the cell empty"
            )
        out[target] = values
    return out


def sized_candidates(
    candidates: gpd.GeoDataFrame, sizing: Sizing, net: Network | None = None, street_spacing_m: float = 150.0
) -> tuple[gpd.GeoDataFrame, dict]:
    """The candidates big enough for one facility of the category, with ``capacity``
    (residents, :func:`planner.sizing.candidate_capacity`, or the file's own).

    When none fits and ``net`` is given, street points about every ``street_spacing_m`` are
    the candidates instead, with ``source`` :data:`STREET_FALLBACK` and the standard capacity.

    Returns
    -------
    (GeoDataFrame, dict)
        The candidates, and counts: ``given``, ``too_small``, ``kept``, ``street_fallback``.
    """
    cand = candidates.reset_index(drop=True)
    for column in ("land_m2", "floor_m2", "places"):
        if column not in cand:
            cand[column] = np.nan
    ok = fits(sizing, cand["land_m2"].to_numpy(float), cand["floor_m2"].to_numpy(float))
    kept = cand[ok].reset_index(drop=True)
    cap = candidate_capacity(sizing, kept["floor_m2"].to_numpy(float), kept["places"].to_numpy(float))
    if "capacity" in kept:
        cap = np.where(np.isfinite(kept["capacity"].to_numpy(float)), kept["capacity"].to_numpy(float), cap)
    kept["capacity"] = cap
    info = {"given": len(cand), "too_small": int((~ok).sum()), "kept": len(kept), "street_fallback": False}
    if len(kept) == 0 and net is not None:
        kept = street_points(net, candidates.crs, street_spacing_m)
        kept["capacity"] = sizing.residents_per_facility
        info.update(kept=len(kept), street_fallback=True)
    return kept, info


def street_points(net: Network, crs, spacing_m: float = 150.0) -> gpd.GeoDataFrame:
    """Street nodes on a regular spacing (one per occupied cell of a ``spacing_m`` grid),
    labelled :data:`STREET_FALLBACK`."""
    cell = np.floor(net.xy() / spacing_m).astype(np.int64)
    _, first = np.unique(cell, axis=0, return_index=True)
    return gpd.GeoDataFrame(
        {
            "candidate_id": [f"street/{int(net.node_id[i])}" for i in first],
            "source": STREET_FALLBACK,
            "name": None,
            "land_m2": np.nan,
            "floor_m2": np.nan,
            "places": np.nan,
        },
        geometry=gpd.points_from_xy(net.x[first], net.y[first]),
        crs=crs,
    )


def _land_source(tags: dict) -> str | None:
    if not tags:
        return None
    building = tags.get("building")
    if tags.get("amenity") in FACILITY_AMENITIES:
        return "facility_site"
    if building is None and tags.get("landuse") in VACANT_LANDUSE:
        return "vacant_land"
    if building is None and tags.get("landuse") in PUBLIC_LANDUSE:
        return "public_land"
    if building in CONVERTIBLE_BUILDINGS or (
        building == "yes" and any(k in tags for k in ("shop", "office"))
    ):
        return "building"
    return None


def _levels(tags: dict) -> float:
    try:
        v = float(str(tags.get("building:levels", "")).strip())
    except ValueError:
        return 1.0
    return v if np.isfinite(v) and v >= 1 else 1.0


def candidates_from_region(region: Region, net: Network, spacing_m: float = 150.0) -> gpd.GeoDataFrame:
    """Where a new facility could go: existing non-residential buildings and vacant or
    brownfield land (the "existing building stock"), plus network nodes about every
    ``spacing_m`` where those are sparse.

    Returns
    -------
    GeoDataFrame
        ``candidate_id``, ``source`` ("building", "vacant_land", "street"), ``name``, points.
    """
    feats = region.features
    polys = feats[feats.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()]
    tags = polys["tags"]
    building = tags.map(lambda t: t.get("building"))
    is_stock = (
        building.isin(_STOCK_BUILDINGS).to_numpy()
        & ~tags.map(
            lambda t: t.get("building") == "yes" and not any(k in t for k in ("amenity", "shop", "office"))
        ).to_numpy()
    )
    is_vacant = tags.map(lambda t: t.get("landuse") in _VACANT_LANDUSE and "building" not in t).to_numpy()
    parts = []
    for mask, source in ((is_stock, "building"), (is_vacant, "vacant_land")):
        sub = polys[mask]
        if len(sub):
            parts.append(
                gpd.GeoDataFrame(
                    {
                        "candidate_id": sub["osm_id"].to_numpy(),
                        "source": source,
                        "name": sub["name"].to_numpy(),
                    },
                    geometry=shapely.point_on_surface(sub.geometry.to_numpy()),
                    crs=region.crs,
                )
            )
    # Street nodes on a regular spacing: one per occupied cell of a spacing_m grid.
    cell = np.floor(net.xy() / spacing_m).astype(np.int64)
    _, first = np.unique(cell, axis=0, return_index=True)
    parts.append(
        gpd.GeoDataFrame(
            {
                "candidate_id": [f"street/{int(net.node_id[i])}" for i in first],
                "source": "street",
                "name": None,
            },
            geometry=gpd.points_from_xy(net.x[first], net.y[first]),
            crs=region.crs,
        )
    )
    return pd.concat(parts, ignore_index=True)


def candidates_from_file(
    path: str | os.PathLike, crs, file_crs=None, coords: str | None = None
) -> gpd.GeoDataFrame:
    """A user's candidate sites (GeoPackage/GeoJSON, or CSV with lon/lat); optional
    ``candidate_id``, ``name``, ``capacity``; ``file_crs`` and ``coords`` as for
    :func:`planner.categories.read_points_table`."""
    from planner.categories import read_points_table

    frame = read_points_table(path, crs=file_crs, coords=coords).to_crs(crs)
    if len(frame) == 0:
        raise InputError(f"{path}: no candidate sites in the file")
    out = gpd.GeoDataFrame(
        {
            "candidate_id": frame["candidate_id"].astype(str).to_numpy()
            if "candidate_id" in frame
            else [f"file/{i}" for i in range(len(frame))],
            "source": "file",
            "name": frame["name"].to_numpy() if "name" in frame else None,
        },
        geometry=shapely.point_on_surface(frame.geometry.to_numpy()),
        crs=crs,
    )
    if "capacity" in frame:
        from planner.categories import row_numbers

        caps = pd.to_numeric(frame["capacity"], errors="coerce").to_numpy(float)
        bad = ~(np.isfinite(caps) & (caps > 0))
        if bad.any():
            raise InputError(
                f"{path}: {row_numbers(bad)}: capacity missing, not a number or not positive; give each "
                "site's capacity in weighted residents (or drop the column for no limit)"
            )
        out["capacity"] = caps
    return out
