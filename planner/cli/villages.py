"""``planner villages``: rural service stations per administrative village."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from planner.cli._common import (
    Coords,
    Crs,
    MapHtml,
    Osm,
    Out,
    OutCoords,
    Population,
    PopulationTable,
    app,
    categories_file_option,
    check_town,
    checked_out_dir,
    facilities_option,
    raster_option,
    say,
    share_fraction,
    target_option,
    written_files,
)
from planner.options import check_threshold

_RASTER_HELP = (
    "Population raster (GeoTIFF of people per cell, e.g. WorldPop) summed over each village instead of "
    "the building estimate."
)
_MINUTES_HELP = (
    "One threshold for every category (default: each category's own; village level 10 min walk, "
    "township level 30 min by bike; to confirm)."
)
_TARGET_HELP = "Target share of villages covered by a comprehensive service station (十四五 plan: 0.8)."
_TOWN_HELP = "Township centre as LON,LAT (default: the place=town node or the 镇/乡政府 townhall)."
_CATEGORIES_HELP = (
    "Rural category keys, comma-separated (default all; the service station is always included)."
)
_CATEGORIES_FILE_HELP = "Your own categories TOML, added to planner/data/rural_categories.toml."
_FACILITIES_HELP = "Facilities OSM lacks (GeoPackage/GeoJSON/CSV with a category column of rural keys)."
_VILLAGES_HELP = (
    "Administrative village boundaries (GeoPackage/GeoJSON polygons with a name column and optional "
    "population); default OSM's village boundaries, else the village committees' territories along "
    "the walk network."
)


@app.command()
def villages(
    osm: Osm,
    out: Out,
    raster: Annotated[Path | None, raster_option(_RASTER_HELP)] = None,
    minutes: Annotated[float | None, typer.Option("--minutes", help=_MINUTES_HELP)] = None,
    target: Annotated[float, target_option(_TARGET_HELP)] = 0.8,
    town: Annotated[str | None, typer.Option("--town", help=_TOWN_HELP)] = None,
    categories: Annotated[str, typer.Option("--categories", help=_CATEGORIES_HELP)] = "all",
    categories_file: Annotated[Path | None, categories_file_option(_CATEGORIES_FILE_HELP)] = None,
    facilities: Annotated[Path | None, facilities_option(_FACILITIES_HELP)] = None,
    map_html: MapHtml = True,
    villages_file: Annotated[Path | None, typer.Option("--villages", help=_VILLAGES_HELP)] = None,
    crs: Crs = None,
    coords: Coords = "wgs84",
    out_coords: OutCoords = "wgs84",
    population: Population = None,
    population_table: PopulationTable = None,
) -> None:
    """Rural life circles: the administrative villages (行政村) and their hamlets (自然村), the
    plan's indicator (share of administrative villages with a comprehensive service facility,
    target 80 %), the hamlets and residents within the village-level walk, and where new
    stations would reach the target.

    Writes DIR/villages.gpkg, indicators.csv, summary.json, map.html and, when the target is not
    met, proposed_stations.gpkg. An urban extract is named as such and has no villages invented.
    """
    from planner.villages import run_villages

    started = time.perf_counter()
    check_threshold(minutes)
    share_fraction(target)
    check_town(town)
    from planner.categories import select
    from planner.villages import load_rural_categories

    select(load_rural_categories(categories_file), categories)  # a bad file or key fails before any work
    checked_out_dir(
        out, osm, raster, categories_file, facilities, villages_file, population, population_table
    )
    s = run_villages(
        osm,
        out,
        raster=raster,
        minutes=minutes,
        target_share=target,
        town=town,
        categories_file=categories_file,
        categories=categories,
        facilities=facilities,
        map_html=map_html,
        boundaries=villages_file,
        crs=crs,
        coords=coords,
        out_coords=out_coords,
        population=population,
        population_table=population_table,
    )
    _print_summary(out, s, started)


def _print_summary(out: Path, s: dict, started: float) -> None:
    """The run's summary in a few lines: villages, the indicator, hamlets, proposed stations."""
    ind = s["indicator"]
    if s["settlement"]["kind"] == "urban" and not s["villages"]:
        say(f"region {s['region']}: {s['settlement']['notice']}")
        say(f"outputs: {out}/summary.json, indicators.csv ({time.perf_counter() - started:.1f} s)")
        return
    admin = "、".join(a["name"] or a["admin_id"] for a in s["administrative_village_list"]) or "none"
    say(
        f"region {s['region']} ({s['settlement']['kind']}): {s['administrative_villages']} administrative "
        f"villages ({admin}), {s['villages']} hamlets, {s['population']:,.0f} people"
    )
    if ind["villages"]:
        say(
            f"农村社区综合服务设施覆盖率 administrative villages with a comprehensive service facility: "
            f"{ind['share']:.1%} ({ind['villages_with_facility']} of {ind['villages']}); "
            f"target {ind['target_share']:.0%}: {'met' if ind['target_met'] else 'not met'}"
        )
    h = s["hamlets"]
    if h["hamlets"]:
        say(
            f"within the {h['minutes']:g}-minute {h['mode']} of a service facility: {h['within_walk']} of "
            f"{h['hamlets']} hamlets "
            f"({h['share_within_walk']:.1%}), {h['population_share_within_walk'] or 0:.1%} of their residents"
        )
    plan = s.get("proposed_stations")
    if plan and plan["sites"]:
        names = "、".join(
            f"{site['admin_village'] or site['admin_id']} at {site['name'] or '?'}" for site in plan["sites"]
        )
        say(f"{plan['new_stations']} new stations reach {plan['share_after']:.1%}: {names}")
    for note in s["notes"]:
        say(f"note: {note}")
    say(f"outputs: {out}/{written_files(out)} ({time.perf_counter() - started:.1f} s)")
