"""``planner batch``: one command over many regions."""

from __future__ import annotations

from pathlib import Path

import typer

from planner import settings
from planner._errors import InputError
from planner.cli._common import (
    COORDS_HELP,
    CRS_HELP,
    OUT_COORDS_HELP,
    POPULATION_HELP,
    POPULATION_TABLE_HELP,
    app,
    check_scheduler,
    checked_out_dir,
    say,
    share_fraction,
)
from planner.options import check_mode, check_threshold, isochrone_option, parse_minutes


@app.command()
def batch(
    regions: Path = typer.Option(
        ...,
        "--regions",
        help="CSV or GeoPackage, one row per region: name, and "
        "osm (a path, relative to this file) or a boundary "
        "(GeoPackage geometry, or a CSV wkt column in "
        "WGS84) cut from --osm.",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output folder: regions/<name>/ (what the single-region "
        "command writes), indicators.csv, map.html, failures.csv, "
        "summary.json.",
    ),
    task: str = typer.Option("audit", "--task", help="audit, villages or site."),
    osm: Path | None = typer.Option(
        None, "--osm", help="Large extract (e.g. province.osm.pbf) that boundary rows are cut from."
    ),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        help="A running Dask scheduler (tcp://host:8786); default a local cluster on this machine.",
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        help="Workers of the local cluster (default one per core); with --scheduler, wait for this many.",
    ),
    memory_limit: str = typer.Option(
        "auto",
        "--memory-limit",
        help="Memory per local worker, e.g. 4GiB "
        "(auto = machine memory / workers); a "
        "worker above it is restarted and its "
        "region retried.",
    ),
    resume: bool = typer.Option(
        False,
        "--resume",
        help="Skip regions whose folder already holds summary.json (finished in an earlier run).",
    ),
    map_indicator: str | None = typer.Option(
        None,
        "--map-indicator",
        help="category:minutes that map.html colours regions by; default the first category at its target.",
    ),
    categories: str = typer.Option(
        "all", "--categories", help="audit: category keys, comma-separated; default all."
    ),
    minutes: str | None = typer.Option(
        None,
        "--minutes",
        help="audit: thresholds, comma-separated (default "
        "5,10,15); site/villages: the service "
        "standard in minutes.",
    ),
    mode: str = typer.Option("walk", "--mode", help="walk, bike or drive."),
    homes: Path | None = typer.Option(
        None,
        "--homes",
        help="Homes for every region (a homes column in the regions file overrides it per region).",
    ),
    facilities: Path | None = typer.Option(
        None,
        "--facilities",
        help="Extra facilities for every region (a facilities column overrides it per region).",
    ),
    categories_file: Path | None = typer.Option(None, "--categories-file", help="Your own categories TOML."),
    isochrones: str = typer.Option("target", "--isochrones", help="audit: target, all or none."),
    category: str | None = typer.Option(None, "--category", help="site: the category to site."),
    model: str = typer.Option("mclp", "--model", help="site: pmedian, mclp, lscp or pcenter."),
    new: int | None = typer.Option(None, "--new", help="site: new sites per region."),
    raster: Path | None = typer.Option(None, "--raster", help="villages: population raster."),
    target: float = typer.Option(0.8, "--target", help="villages: target share of villages covered."),
    map_html: bool = typer.Option(True, "--map/--no-map", help="Write each region's map.html."),
    crs: str | None = typer.Option(None, "--crs", help=CRS_HELP),
    coords: str = typer.Option("wgs84", "--coords", help=COORDS_HELP),
    out_coords: str = typer.Option("wgs84", "--out-coords", help=OUT_COORDS_HELP),
    population: Path | None = typer.Option(None, "--population", help=POPULATION_HELP),
    population_table: Path | None = typer.Option(None, "--population-table", help=POPULATION_TABLE_HELP),
) -> None:
    """Run audit, villages or site over many regions on Dask: a local cluster by default,
    or an existing cluster with --scheduler. Exit 0 when every region is done, 1 when some
    failed (see failures.csv), 2 on bad input."""
    from planner.batch import run_batch
    from planner.categories import load_categories, select

    check_mode(mode)
    check_scheduler(scheduler)
    checked_out_dir(
        out, regions, osm, homes, facilities, categories_file, raster, population, population_table
    )
    if task == "audit":
        parse_minutes(minutes or "5,10,15")
        isochrone_option(isochrones)
        select(load_categories(categories_file), categories)
    elif task in ("site", "villages"):
        share_fraction(target)
        if task == "site" and category is not None:
            from planner.siting import check_options

            check_options(model, new, 1.0)
        try:
            value = None if minutes is None else float(minutes)
        except ValueError:
            raise InputError(
                f"--minutes {minutes!r}: give one number of minutes for --task {task}, e.g. 15"
            ) from None
        minutes = check_threshold(value)
    if task == "audit":
        options = {
            "categories": categories,
            "minutes": minutes or "5,10,15",
            "mode": mode,
            "homes": homes,
            "facilities": facilities,
            "categories_file": categories_file,
            "isochrones": isochrones,
            "map_html": map_html,
        }
    elif task == "site":
        if category is None:
            raise InputError("--task site needs --category (e.g. --category elderly_care)")
        options = {
            "category": category,
            "model": model,
            "new": new,
            "mode": mode,
            "homes": homes,
            "facilities": facilities,
            "map_html": map_html,
            "minutes": minutes,
        }
    elif task == "villages":
        options = {
            "raster": raster,
            "target_share": target,
            "facilities": facilities,
            "categories_file": categories_file,
            "map_html": map_html,
            "minutes": minutes,
        }
    else:
        raise InputError(f"--task {task!r}: use audit, villages or site")
    # Inputs in Chinese coordinates and population sources: every task takes them.
    options.update(
        crs=crs,
        coords=coords,
        out_coords=out_coords,
        population=population,
        population_table=population_table,
    )
    summary = run_batch(
        regions,
        task=task,
        out_dir=out,
        osm=osm,
        scheduler=scheduler,
        workers=workers,
        resume=resume,
        task_options=options,
        progress=settings.progress,
        map_indicator=map_indicator,
        memory_limit=memory_limit,
    )
    counts = summary["regions"]
    say(f"regions: {counts}; outputs in {out}/")
    raise typer.Exit(0 if counts["failed"] == 0 else 1)
