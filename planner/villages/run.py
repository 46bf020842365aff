"""The ``planner villages`` command: find, audit, propose, write."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from planner._io import atomic_dir
from planner.categories import facilities_from_file
from planner.demand import homes_from_region
from planner.sources import Region, load_region
from planner.tables import write_csv

from .admin import read_village_boundaries
from .audit import audit_villages
from .hamlets import NoVillagesError, find_villages
from .indicator import INDICATOR_SOURCE, TARGET_SHARE, check_share
from .result import VillageAudit
from .rural import load_rural_categories
from .stations import propose_stations


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
    crs=None,
    coords: str | None = None,
    population=None,
    population_table=None,
    out_coords: str | None = None,
) -> dict:
    """Find the administrative villages and hamlets of an extract, audit their services,
    propose stations if the plan's indicator falls short, and write ``DIR/villages.gpkg``
    (layers villages = hamlets, village_centres, administrative_villages, facilities),
    ``indicators.csv``, ``summary.json``, ``map.html`` (and ``proposed_stations.gpkg`` when
    the target is not met) atomically.

    Parameters are those of :func:`audit_villages`; ``osm`` is what
    :func:`planner.sources.load_region` takes, ``facilities`` a file of facilities OSM lacks
    (GeoPackage/GeoJSON, or CSV with lon, lat; a ``category`` column of rural keys) and
    ``boundaries`` a file of administrative village boundaries (``--villages FILE``);
    ``crs``, ``coords``, ``population``, ``population_table`` and ``out_coords`` as for
    :func:`planner.audit.run_audit` (a population source replaces the homes' estimate before
    hamlets are found).

    An urban extract (:func:`planner.settlement.judge_settlement`) has no villages to invent:
    only its ``place=village|hamlet`` and village committees count, and with none of them
    the run writes ``summary.json`` and ``indicators.csv`` with the urban notice only.

    Returns
    -------
    dict
        The summary (what ``summary.json`` holds).
    """
    from planner import coords as _coords

    started = time.perf_counter()
    check_share(target_share)
    coords, out_coords = _coords.check_coords(coords), _coords.check_coords(out_coords, "--out-coords")
    known = load_rural_categories(categories_file)  # a bad file fails before any heavy work
    region = load_region(osm)
    boundary_frame, extra = _user_files(region, boundaries, facilities, known, crs, coords)
    homes = _homes(region, population, population_table, crs, coords)
    verdict = homes.attrs["settlement"]
    try:
        found = find_villages(region, homes, raster=raster)
    except NoVillagesError:
        if verdict["kind"] != "urban" or verdict["by_default"] or boundary_frame is not None:
            raise
        return _write_urban(region, verdict, float(homes["population"].sum()), out_dir, started)
    found.attrs["settlement"] = verdict
    result = audit_villages(
        region,
        villages=found,
        categories=categories,
        minutes=minutes,
        town=town,
        categories_file=categories_file,
        target_share=target_share,
        extra_facilities=extra,
        boundaries=boundary_frame,
    )
    _add_notes(result, verdict, homes)
    stations = None
    if result.admin is not None and len(result.admin) and result.share < target_share - 1e-12:
        stations = propose_stations(result, target_share=target_share)
        result.seconds["siting"] = stations.seconds
    result.seconds["run"] = time.perf_counter() - started
    result.write(out_dir, stations, map_html=map_html, out_coords=out_coords)
    return result.summary(stations)


def _user_files(region: Region, boundaries, facilities, known: dict, crs, coords: str | None) -> tuple:
    """The user's village boundaries and extra facilities (each None when not given)."""
    boundary_frame = None
    if boundaries is not None:
        boundary_frame = read_village_boundaries(boundaries, region.crs, crs, coords)
    extra = None
    if facilities is not None:
        extra = facilities_from_file(facilities, region.crs, known, crs, coords)
    return boundary_frame, extra


def _homes(region: Region, population, population_table, crs, coords: str | None) -> gpd.GeoDataFrame:
    """The region's homes; a population raster or table replaces their estimate."""
    if population is None and population_table is None:
        return homes_from_region(region)
    from planner.population import homes_with_population

    return homes_with_population(region, None, population, population_table, crs, coords)


def _add_notes(result: VillageAudit, verdict: dict, homes: gpd.GeoDataFrame) -> None:
    """Notes of the run beside the audit's: the urban notice, where the population came from."""
    if verdict["kind"] == "urban":
        result.notes.insert(0, verdict["notice"])
    if "population" in homes.attrs:
        from planner.population import population_summary

        src = population_summary(homes)["source"]
        result.notes.append(
            f"homes' population from the {src['source']} {src['file']}: "
            f"{src['homes_from_source']} homes, {src['people_from_source']:,.0f} people, "
            "shared by floor area; "
            f"{src['homes_kept_estimate']} homes outside it keep their estimate"
        )


def _write_urban(
    region: Region, verdict: dict, population: float, out_dir: str | Path, started: float
) -> dict:
    """An urban extract with no village at all: the notice, written as the run's summary."""
    summary = {
        "region": region.name,
        "settlement": verdict,
        "administrative_villages": 0,
        "villages": 0,
        "population": population,
        "population_source": "homes",
        "indicator": {
            "name_zh": "农村社区综合服务设施覆盖率",
            "share": None,
            "villages": 0,
            "villages_with_facility": 0,
            "target_met": None,
            "source": INDICATOR_SOURCE,
        },
        "notes": [verdict["notice"]],
        "seconds": {"run": round(time.perf_counter() - started, 3)},
    }
    with atomic_dir(out_dir) as tmp:
        pd.DataFrame(
            [
                {
                    "indicator": "rural_service_coverage",
                    "unit": "administrative_village",
                    "name_zh": "农村社区综合服务设施覆盖率",
                    "villages": 0,
                    "villages_inside": 0,
                    "share_inside": None,
                    "source": INDICATOR_SOURCE,
                }
            ]
        ).pipe(write_csv, tmp / "indicators.csv")
        (tmp / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    return summary
