"""The villages audit: per hamlet, the rural facilities inside and within reach and the time to
the township centre; per administrative village, the plan's indicator."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer

from planner import settings
from planner._errors import InputError
from planner.access import geometry_access, point_access
from planner.categories import Category, region_facilities, select
from planner.network import (
    MODES,
    Network,
    TargetGraph,
    build_network,
    nearest,
    sweep_limit_s,
    sweep_many,
    trip_costs,
)
from planner.settlement import judge_settlement
from planner.sources import Region

from .admin import audit_admin_villages
from .hamlets import ATTACH_M, EDGE_M, find_villages
from .indicator import TARGET_SHARE, check_share, coverage_indicators
from .result import VillageAudit
from .rural import STATION_KEY, confirmed_flags, load_rural_categories

_TOWN_GOVERNMENT = re.compile(r"((镇|乡)(人民)?政府|街道办事处)")


# size: over 80 lines by its numpy docstring only; the code itself is under 60.
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
    territory (:mod:`planner.villages.admin`); per region: the plan's coverage indicator.

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
    mode_by_level = _check_arguments(target_share, minutes, mode_by_level)
    cats, confirmed = _categories(categories_file, categories)
    modes = {c.key: mode_by_level.get(c.level, c.mode) for c in cats}
    target_min = {c.key: float(minutes) if minutes is not None else float(c.minutes) for c in cats}
    town_xy = _parse_town(town, region) if town is not None else None

    t = time.perf_counter()
    villages = _hamlets(region, villages, raster)
    seconds["villages"] = time.perf_counter() - t

    t = time.perf_counter()
    facilities = region_facilities(region.features, cats, extra_facilities)
    networks: dict[str, Network] = {}
    for mode in dict.fromkeys(modes.values()):
        networks[mode] = build_network(region, mode)
    seconds["networks"] = time.perf_counter() - t

    t = time.perf_counter()
    # Full times (to max_travel_time_s, or past it for a larger threshold): the table reports how
    # far each hamlet is from its station, clinic and township centre, which has no threshold;
    # a township's network is small, so the full sweep costs little.
    limit = sweep_limit_s(*target_min.values(), full_times=True)
    _category_times(villages, facilities, cats, modes, networks, limit)
    _inside_and_within(villages, facilities, cats, target_min)
    seconds["sweeps"] = time.perf_counter() - t

    notes = list(villages.attrs.get("notes", []))
    township_mode = next((modes[c.key] for c in cats if c.level == "township"), "bike")
    town_mode = mode_by_level.get("township", township_mode)
    town_info = _town_times(region, villages, town_xy, town_mode, networks, limit, notes)
    notes.extend(_data_notes(villages, facilities, cats))
    t = time.perf_counter()
    admin = _admin_villages(region, villages, facilities, networks, boundaries, notes)
    seconds["admin_villages"] = time.perf_counter() - t
    indicators = coverage_indicators(villages, cats, target_min, modes, confirmed, target_share, admin=admin)
    seconds["total"] = time.perf_counter() - t0
    return VillageAudit(
        region=region.name,
        villages=villages,
        facilities=facilities,
        categories=cats,
        minutes=target_min,
        modes=modes,
        confirmed=confirmed,
        networks=networks,
        town=town_info,
        indicators=indicators,
        target_share=target_share,
        seconds=seconds,
        notes=notes,
        admin=admin,
        settlement=villages.attrs.get("settlement") or judge_settlement(region).summary(),
    )


def _check_arguments(
    target_share: float, minutes: float | None, mode_by_level: dict[str, str] | None
) -> dict[str, str]:
    """Refuse a bad share, threshold or mode in one line; returns ``mode_by_level`` as a dict."""
    check_share(target_share)
    if minutes is not None and not (np.isfinite(minutes) and minutes > 0):
        raise InputError(f"minutes={minutes!r}: give a positive number of minutes")
    mode_by_level = dict(mode_by_level or {})
    for level, mode in mode_by_level.items():
        if mode not in MODES:
            raise InputError(f"mode_by_level[{level!r}] = {mode!r}: use one of {', '.join(MODES)}")
    return mode_by_level


def _categories(
    categories_file: str | Path | None, categories: str | Iterable[str] | None
) -> tuple[list[Category], dict[str, bool]]:
    """The categories to measure (the service station always, the indicator needs it) and their
    ``confirmed`` flags."""
    known = load_rural_categories(categories_file)
    cats = select(known, categories)
    if STATION_KEY not in {c.key for c in cats}:
        cats = [known[STATION_KEY], *cats]
    return cats, confirmed_flags(categories_file)


def _hamlets(region: Region, villages: gpd.GeoDataFrame | None, raster: Any) -> gpd.GeoDataFrame:
    """The hamlets, found here or checked, in the region's CRS with a fresh index."""
    if villages is None:
        villages = find_villages(region, raster=raster)
    needed = {"village_id", "name", "source", "population", "centre_x", "centre_y"}
    missing_cols = needed - set(villages.columns)
    if missing_cols:
        raise InputError(
            f"villages: missing {', '.join(sorted(missing_cols))}; give the output of find_villages"
        )
    attrs = dict(villages.attrs)
    villages = villages.to_crs(region.crs).reset_index(drop=True).copy()
    villages.attrs = attrs
    return villages


def _category_times(
    villages: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    cats: list[Category],
    modes: dict[str, str],
    networks: dict[str, Network],
    limit: float,
) -> None:
    """``<key>_time_s`` from each hamlet's centre: one multi-source sweep per category, in its mode."""
    centre_xy = villages[["centre_x", "centre_y"]].to_numpy(float)
    for mode in dict.fromkeys(modes.values()):
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
        for key, (cost, which) in zip(keys, swept, strict=False):
            village_cost, _ = trip_costs(net, access, cost, which, "time")
            villages[f"{key}_time_s"] = np.where(
                np.isfinite(village_cost) & (village_cost <= limit), village_cost, np.nan
            )


def _inside_and_within(
    villages: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    cats: list[Category],
    target_min: dict[str, float],
) -> None:
    """``<key>_inside`` (a facility within ``EDGE_M`` of the hamlet's area) and ``<key>_within``
    (inside, or within the category's minutes); the service station's as the hamlet's coverage."""
    polys = villages.geometry.to_numpy()
    for cat in cats:
        key = cat.key
        sub = facilities.geometry.to_numpy()[facilities["category"].to_numpy() == key]
        inside = np.zeros(len(villages), bool)
        if len(sub):
            v_idx, _ = shapely.STRtree(sub).query(polys, predicate="dwithin", distance=EDGE_M)
            inside[np.unique(v_idx)] = True
        villages[f"{key}_inside"] = inside
        time_s = np.nan_to_num(villages[f"{key}_time_s"].to_numpy(float), nan=np.inf)
        villages[f"{key}_within"] = inside | (time_s <= target_min[key] * 60.0)
    villages["has_service_station"] = villages[f"{STATION_KEY}_inside"]
    villages["service_covered"] = villages[f"{STATION_KEY}_within"]


def _town_times(
    region: Region,
    villages: gpd.GeoDataFrame,
    town_xy: tuple[float, float] | None,
    town_mode: str,
    networks: dict[str, Network],
    limit: float,
    notes: list[str],
) -> dict | None:
    """``town_time_s`` from each hamlet's centre to the township centre (the user's, else the
    region's); returns the centre, or None (with a note) when there is none."""
    if town_xy is not None:
        town_info = {"name": None, "source": "user", "osm_id": None, "x": town_xy[0], "y": town_xy[1]}
    else:
        town_info = _find_town(region)
    if town_info is None:
        villages["town_time_s"] = np.nan
        notes.append(
            "no township centre found (no place=town node, no 镇/乡政府 townhall): town_time_s is "
            "empty; give the centre with town=(lon, lat) (--town LON,LAT)"
        )
        return None
    if town_mode not in networks:
        networks[town_mode] = build_network(region, town_mode)
    town_info["mode"] = town_mode
    centre_xy = villages[["centre_x", "centre_y"]].to_numpy(float)
    town_xy = np.array([[town_info["x"], town_info["y"]]])
    cost, _ = nearest(networks[town_mode], centre_xy, town_xy, "time", limit)
    villages["town_time_s"] = np.where(np.isfinite(cost), cost, np.nan)
    return town_info


def _data_notes(villages: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, cats: list[Category]) -> list[str]:
    """What the data lack: categories with no facility, hamlets with no building, homes outside."""
    notes = []
    missing = [c.key for c in cats if not (facilities["category"] == c.key).any()]
    if missing:
        notes.append(
            "no facility mapped for: "
            + ", ".join(missing)
            + " (every village counts as without; add them with extra_facilities / "
            "--facilities FILE)"
        )
    unbuilt = (
        int(((villages["homes"] == 0) & (villages["homes_estimated"] > 0)).sum())
        if "homes" in villages
        else 0
    )
    if unbuilt and villages.attrs.get("population_source") == "homes":
        rural = (villages.attrs.get("settlement") or {}).get("kind") == "rural"
        density = settings.rural_grid_density_per_ha if rural else settings.grid_density_per_ha
        notes.append(
            f"{unbuilt} villages have no mapped buildings: their population is estimated at "
            f"{density:g} residents per hectare of residential land (settings."
            f"{'rural_' if rural else ''}grid_density_per_ha, to confirm); give a population raster "
            "for better weights"
        )
    if villages.attrs.get("homes_outside"):
        notes.append(
            f"{villages.attrs['homes_outside']} homes lie farther than {ATTACH_M:g} m from every "
            "village and are in no village"
        )
    return notes


def _admin_villages(
    region: Region,
    villages: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    networks: dict[str, Network],
    boundaries: str | Path | gpd.GeoDataFrame | None,
    notes: list[str],
) -> gpd.GeoDataFrame:
    """The administrative villages with their hamlets and facilities, and notes on what is missing."""
    # Territories are drawn on the walk network: committees serve the people who walk to them.
    admin = audit_admin_villages(
        region, villages, facilities[facilities["category"] == STATION_KEY], networks.get("walk"), boundaries
    )
    if len(admin) == 0:
        notes.append(
            "no administrative village found (no village boundary, no 村委会 mapped): the plan's "
            "indicator is empty; give the boundaries with --villages FILE"
        )
    elif (admin["hamlets"] == 0).any():
        empty = admin.loc[admin["hamlets"] == 0, "name"].fillna("?").tolist()
        notes.append(f"administrative villages with no hamlet mapped in this extract: {'、'.join(empty)}")
    loose = int((villages["admin_index"] < 0).sum())
    if len(admin) and loose:
        notes.append(f"{loose} hamlets lie in no administrative village's territory (outside the boundaries)")
    return admin


def _find_town(region: Region) -> dict | None:
    """The township centre: a ``place=town`` node, else a 镇/乡(人民)政府 townhall."""
    feats = region.features
    best = None
    for osm_id, name, tags, geom in zip(
        feats["osm_id"], feats["name"], feats["tags"], feats.geometry, strict=True
    ):
        if tags.get("place") == "town":
            rank = 0
        elif (
            (tags.get("amenity") == "townhall" or tags.get("office") == "government")
            and name
            and _TOWN_GOVERNMENT.search(name)
        ):
            rank = 1
        else:
            continue
        if best is None or rank < best[0]:
            p = shapely.point_on_surface(geom)
            best = (
                rank,
                {
                    "name": name,
                    "source": "place" if rank == 0 else "townhall",
                    "osm_id": osm_id,
                    "x": float(p.x),
                    "y": float(p.y),
                },
            )
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
        raise InputError(
            f"town {town!r}: give the township centre as LON,LAT (WGS84), e.g. 120.49,30.48"
        ) from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InputError(f"town {town!r}: not a longitude,latitude pair (WGS84)")
    x, y = Transformer.from_crs(4326, region.crs, always_xy=True).transform(lon, lat)
    return float(x), float(y)
