"""``planner batch``: one command over many regions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner import settings
from planner._errors import InputError
from planner.cli._common import (
    CategoriesFile,
    Coords,
    Crs,
    Mode,
    OutCoords,
    Population,
    PopulationTable,
    app,
    check_scheduler,
    checked_out_dir,
    facilities_option,
    homes_option,
    map_option,
    osm_option,
    out_option,
    raster_option,
    say,
    share_fraction,
    target_option,
)
from planner.options import check_mode, check_threshold, isochrone_option, parse_minutes

_REGIONS_HELP = (
    "CSV or GeoPackage, one row per region: name, and osm (a path, relative to this file) or a "
    "boundary (GeoPackage geometry, or a CSV wkt column in WGS84) cut from --osm."
)
_OUT_HELP = (
    "Output folder: regions/<name>/ (what the single-region command writes), indicators.csv, "
    "map.html, failures.csv, summary.json."
)
_OSM_HELP = "Large extract (e.g. province.osm.pbf) that boundary rows are cut from."
_SCHEDULER_HELP = "A running Dask scheduler (tcp://host:8786); default a local cluster on this machine."
_WORKERS_HELP = "Workers of the local cluster (default one per core); with --scheduler, wait for this many."
_MEMORY_LIMIT_HELP = (
    "Memory per local worker, e.g. 4GiB (auto = machine memory / workers); a worker above it is "
    "restarted and its region retried."
)
_RESUME_HELP = "Skip regions whose folder already holds summary.json (finished in an earlier run)."
_MAP_INDICATOR_HELP = (
    "category:minutes that map.html colours regions by; default the first category at its target."
)
_CATEGORIES_HELP = "audit: category keys, comma-separated; default all."
_MINUTES_HELP = (
    "audit: thresholds, comma-separated (default 5,10,15); site/villages: the service standard in minutes."
)
_PRINTABLE_HELP = (
    "Also write each region's printable maps map.png and map.pdf (off by default; map.html and "
    "every table are written)."
)
_SHARE_HELP = (
    "audit: neighbouring regions cut from one extract share one audit, split per region (times "
    "and coverage within the thresholds as each region alone, less CPU); --no-share audits each alone."
)
_HOMES_HELP = "Homes for every region (a homes column in the regions file overrides it per region)."
_FACILITIES_HELP = "Extra facilities for every region (a facilities column overrides it per region)."


@app.command()
def batch(  # size: its 30 options one line each, then one call per step of the run
    regions: Annotated[Path, typer.Option("--regions", help=_REGIONS_HELP)],
    out: Annotated[Path, out_option(_OUT_HELP)],
    task: Annotated[str, typer.Option("--task", help="audit, villages or site.")] = "audit",
    osm: Annotated[Path | None, osm_option(_OSM_HELP)] = None,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help=_SCHEDULER_HELP)] = None,
    workers: Annotated[int | None, typer.Option("--workers", help=_WORKERS_HELP)] = None,
    memory_limit: Annotated[str, typer.Option("--memory-limit", help=_MEMORY_LIMIT_HELP)] = "auto",
    resume: Annotated[bool, typer.Option("--resume", help=_RESUME_HELP)] = False,
    map_indicator: Annotated[str | None, typer.Option("--map-indicator", help=_MAP_INDICATOR_HELP)] = None,
    categories: Annotated[str, typer.Option("--categories", help=_CATEGORIES_HELP)] = "all",
    minutes: Annotated[str | None, typer.Option("--minutes", help=_MINUTES_HELP)] = None,
    mode: Mode = "walk",
    homes: Annotated[Path | None, homes_option(_HOMES_HELP)] = None,
    facilities: Annotated[Path | None, facilities_option(_FACILITIES_HELP)] = None,
    categories_file: CategoriesFile = None,
    isochrones: Annotated[str, typer.Option("--isochrones", help="audit: target, all or none.")] = "target",
    category: Annotated[str | None, typer.Option("--category", help="site: the category to site.")] = None,
    model: Annotated[str, typer.Option("--model", help="site: pmedian, mclp, lscp or pcenter.")] = "mclp",
    new: Annotated[int | None, typer.Option("--new", help="site: new sites per region.")] = None,
    raster: Annotated[Path | None, raster_option("villages: population raster.")] = None,
    target: Annotated[float, target_option("villages: target share of villages covered.")] = 0.8,
    map_html: Annotated[bool, map_option("Write each region's map.html.")] = True,
    printable: Annotated[bool, typer.Option("--printable", help=_PRINTABLE_HELP)] = False,
    share: Annotated[bool, typer.Option("--share/--no-share", help=_SHARE_HELP)] = True,
    crs: Crs = None,
    coords: Coords = "wgs84",
    out_coords: OutCoords = "wgs84",
    population: Population = None,
    population_table: PopulationTable = None,
) -> None:
    """Run audit, villages or site over many regions on Dask: a local cluster by default,
    or an existing cluster with --scheduler. Exit 0 when every region is done, 1 when some
    failed (see failures.csv), 2 on bad input."""
    from planner.batch import run_batch

    check_mode(mode)
    check_scheduler(scheduler)
    checked_out_dir(
        out, regions, osm, homes, facilities, categories_file, raster, population, population_table
    )
    minutes = _checked_task_options(
        task, minutes, isochrones, categories, categories_file, target, category, model, new
    )
    options = _task_options(
        task,
        categories=categories,
        minutes=minutes,
        mode=mode,
        homes=homes,
        facilities=facilities,
        categories_file=categories_file,
        isochrones=isochrones,
        map_html=map_html,
        category=category,
        model=model,
        new=new,
        raster=raster,
        target=target,
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
        printable=printable,
        share=share,
    )
    counts = summary["regions"]
    say(f"regions: {counts}; outputs in {out}/")
    raise typer.Exit(0 if counts["failed"] == 0 else 1)


def _checked_task_options(
    task: str,
    minutes: str | None,
    isochrones: str,
    categories: str,
    categories_file: Path | None,
    target: float,
    category: str | None,
    model: str,
    new: int | None,
) -> str | float | None:
    """Check the options of ``task`` before any region starts; return --minutes as the task
    takes it (audit: the text, site/villages: one number or None)."""
    from planner.categories import load_categories, select

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
        return check_threshold(value)
    return minutes


def _task_options(task: str, **o) -> dict:
    """The options of ``task`` that each region's run takes, from the command's options ``o``."""
    # Inputs in Chinese coordinates and population sources: every task takes them.
    shared = ("crs", "coords", "out_coords", "population", "population_table")
    return {**_own_options(task, o), **{k: o[k] for k in shared}}


def _own_options(task: str, o: dict) -> dict:
    if task == "audit":
        return {
            "categories": o["categories"],
            "minutes": o["minutes"] or "5,10,15",
            "mode": o["mode"],
            "homes": o["homes"],
            "facilities": o["facilities"],
            "categories_file": o["categories_file"],
            "isochrones": o["isochrones"],
            "map_html": o["map_html"],
        }
    if task == "site":
        if o["category"] is None:
            raise InputError("--task site needs --category (e.g. --category elderly_care)")
        keys = ("category", "model", "new", "mode", "homes", "facilities", "map_html", "minutes")
        return {k: o[k] for k in keys}
    if task == "villages":
        return {
            "raster": o["raster"],
            "target_share": o["target"],
            "facilities": o["facilities"],
            "categories_file": o["categories_file"],
            "map_html": o["map_html"],
            "minutes": o["minutes"],
        }
    raise InputError(f"--task {task!r}: use audit, villages or site")
