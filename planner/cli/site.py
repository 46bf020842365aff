"""``planner site``: one category, or several sited together (``--category a,b,c``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

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
    checked_out_dir,
    facilities_option,
    homes_option,
    say,
    written_files,
)
from planner.options import check_mode

_STANDARDS_HELP = (
    "Default, every model: candidates are land and buildings big enough for the category "
    "(--candidates: parcels with max_floor_area_m2, land_area_m2, places), each with its capacity; "
    "no new site takes fewer residents than the minimum catchment or stands closer to another than "
    "the minimum spacing (data/sizing.toml, settings); street points only as a fallback the console "
    "names, when no mapped land fits. Several categories (--category a,b,c) are sited together: a "
    "site may host several (a shared complex) and --new bounds the sites used. --no-standards: the "
    "pure mathematical model on candidate points (buildings, vacant land, street nodes), no sizing, "
    "spacing or catchment."
)
_CATEGORY_HELP = "Category key of the facility to site, e.g. elderly_care (see `planner categories`)."
_MODEL_HELP = (
    "pmedian (least total travel time), mclp (most people within --minutes), lscp (fewest sites so "
    "everyone reachable is within --minutes), pcenter (least worst time)."
)
_NEW_HELP = (
    "Number of new sites (pmedian, mclp, pcenter), or a range such as 1-12: each is solved and "
    "DIR/tradeoff.csv and tradeoff.png show where the gain flattens."
)
_MINUTES_HELP = "Service standard in minutes (default: the category's target circle)."
_CANDIDATES_HELP = (
    "Candidate sites file (GeoPackage/GeoJSON, or CSV with lon,lat): parcels with optional "
    "max_floor_area_m2, land_area_m2, places, capacity; default: the region's land and buildings "
    "big enough for the category (--no-standards: non-residential buildings, vacant land and "
    "street points)."
)
_CAPACITY_HELP = (
    "Capacity of every new site in residents, replacing the standards' sizing (--no-standards: "
    "weighted residents, capacitated models); a candidates file's capacity column overrides it."
)
_METHOD_HELP = "auto, exact (HiGHS) or heuristic (with a proven bound)."
_TIME_LIMIT_HELP = "Seconds for the solver; the best answer so far is returned with its gap."
_PACE_HELP = (
    "Walking: model the elderly at their own slower pace (settings.elderly_walk_speed_mps), as the "
    "report counts them, so the standard holds for them too; --adult-pace: everyone at the adult pace."
)
_HOMES_HELP = "Homes or compounds with households or population (replaces OSM homes)."
_FACILITIES_HELP = "Existing facilities OSM lacks (category column); they stay open."
_COLOCATE_HELP = (
    "By the standards: a new community health centre only next to elderly care (毗邻建设, within "
    "settings.colocation_distance_m): existing elderly care, or with --category "
    "health_centre,elderly_care,... elderly care sited with it."
)


# size: 24 option declarations, one line each, then the run and its console summary.
@app.command()
def site(
    osm: Osm,
    category: Annotated[str, typer.Option("--category", help=_CATEGORY_HELP)],
    model: Annotated[str, typer.Option("--model", help=_MODEL_HELP)] = "mclp",
    out: Out = ...,
    new: Annotated[str | None, typer.Option("--new", help=_NEW_HELP)] = None,
    minutes: Annotated[float | None, typer.Option("--minutes", help=_MINUTES_HELP)] = None,
    candidates: Annotated[Path | None, typer.Option("--candidates", help=_CANDIDATES_HELP)] = None,
    homes: Annotated[Path | None, homes_option(_HOMES_HELP)] = None,
    facilities: Annotated[Path | None, facilities_option(_FACILITIES_HELP)] = None,
    capacity: Annotated[float | None, typer.Option("--capacity", help=_CAPACITY_HELP)] = None,
    mode: Mode = "walk",
    method: Annotated[str, typer.Option("--method", help=_METHOD_HELP)] = "auto",
    time_limit: Annotated[float | None, typer.Option("--time-limit", help=_TIME_LIMIT_HELP)] = None,
    boundary: Annotated[Path | None, boundary_option("Polygon of the area whose homes count.")] = None,
    map_html: MapHtml = True,
    elderly_pace: Annotated[bool, typer.Option("--elderly-pace/--adult-pace", help=_PACE_HELP)] = True,
    standards: Annotated[bool, typer.Option("--standards/--no-standards", help=_STANDARDS_HELP)] = True,
    colocate: Annotated[bool, typer.Option("--colocate/--no-colocate", help=_COLOCATE_HELP)] = False,
    crs: Crs = None,
    coords: Coords = "wgs84",
    out_coords: OutCoords = "wgs84",
    population: Population = None,
    population_table: PopulationTable = None,
) -> None:
    """Propose sites for new facilities of one category and show what they change.

    Writes DIR/sites.gpkg (proposed sites with rank and the coverage each adds), DIR/before_after.csv,
    DIR/summary.json (objective, lower_bound, gap, solver, seconds) and DIR/map.html.
    """
    from planner.siting import run_site

    started = time.perf_counter()
    check_mode(mode)
    checked_out_dir(out, osm, candidates, homes, facilities, boundary, population, population_table)
    if "," in category:
        _site_district(
            osm, out, category, new, colocate, candidates, mode, time_limit, standards, map_html, started
        )
        return
    result = run_site(
        osm,
        out,
        category,
        model=model,
        new=new,
        minutes=minutes,
        candidates=candidates,
        homes=homes,
        facilities=facilities,
        capacity=capacity,
        mode=mode,
        method=method,
        time_limit=time_limit,
        boundary=boundary,
        map_html=map_html,
        elderly_pace=elderly_pace,
        standards=standards,
        colocate=colocate,
        crs=crs,
        coords=coords,
        out_coords=out_coords,
        population=population,
        population_table=population_table,
    )
    s = result.summary()
    # By the standards the outcome is told in people and minutes below; the model's own
    # objective (weighted seconds, weighted demand) stays in summary.json.
    told = (
        f"by the standards, gap {s['gap']:.2%}, solver {s['solver']}"
        if "standards" in s
        else f"objective {s['objective']:,.1f} {s['objective_unit']}, bound {s['lower_bound']:,.1f}, "
        f"gap {s['gap']:.2%}, solver {s['solver']}"
    )
    say(
        f"{s['category_name_zh']} {s['category_name_en']}: {s['model']} → {s['new_sites']} new sites "
        f"(+{s['existing_sites']} existing); {told}"
    )
    ba = result.before_after
    for row in ba.itertuples():
        say(
            f"  ≤{row.minutes:g} min: people {row.population_share_before:6.1%} → "
            f"{row.population_share_after:6.1%}, "
            f"elderly {row.elderly_share_before:6.1%} → {row.elderly_share_after:6.1%}"
        )
    from planner.tradeoff import console_lines

    for line in console_lines(result):
        say(line)
    say(f"outputs: {out}/{written_files(out)} ({time.perf_counter() - started:.1f} s)")


def _site_district(
    osm, out, category, new, colocate, candidates, mode, time_limit, standards, map_html, started
) -> None:
    """``planner site --category a,b,c``: several categories sited together."""
    from planner.site_levels import run_district

    district = run_district(
        osm,
        out,
        category,
        new=new,
        colocate=colocate,
        candidates=candidates,
        mode=mode,
        time_limit=time_limit,
        standards=standards,
        map_html=map_html,
    )
    for line in district.console_lines():
        say(line)
    say(f"outputs: {out}/{written_files(out)} ({time.perf_counter() - started:.1f} s)")
