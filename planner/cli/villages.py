"""``planner villages``: rural service stations per administrative village."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from planner.cli._common import (
    COORDS_HELP,
    CRS_HELP,
    OUT_COORDS_HELP,
    POPULATION_HELP,
    POPULATION_TABLE_HELP,
    app,
    check_town,
    checked_out_dir,
    say,
    share_fraction,
    written_files,
)
from planner.options import check_threshold


@app.command()
def villages(
    osm: str = typer.Option(
        ..., "--osm", help="OSM extract (.osm / .osm.pbf), a bundled sample name, or a place name (online)."
    ),
    out: Path = typer.Option(..., "--out", help="Output folder (replaced atomically when the run succeeds)."),
    raster: Path | None = typer.Option(
        None,
        "--raster",
        help="Population raster (GeoTIFF of people per "
        "cell, e.g. WorldPop) summed over each "
        "village instead of the building estimate.",
    ),
    minutes: float | None = typer.Option(
        None,
        "--minutes",
        help="One threshold for every category "
        "(default: each category's own; village "
        "level 10 min walk, township level 30 min "
        "by bike; to confirm).",
    ),
    target: float = typer.Option(
        0.8,
        "--target",
        help="Target share of villages covered by a comprehensive service station (十四五 plan: 0.8).",
    ),
    town: str | None = typer.Option(
        None,
        "--town",
        help="Township centre as LON,LAT (default: the place=town node or the 镇/乡政府 townhall).",
    ),
    categories: str = typer.Option(
        "all",
        "--categories",
        help="Rural category keys, comma-separated (default all; the service station is always included).",
    ),
    categories_file: Path | None = typer.Option(
        None,
        "--categories-file",
        help="Your own categories TOML, added to planner/data/rural_categories.toml.",
    ),
    facilities: Path | None = typer.Option(
        None,
        "--facilities",
        help="Facilities OSM lacks (GeoPackage/GeoJSON/CSV with a category column of rural keys).",
    ),
    map_html: bool = typer.Option(True, "--map/--no-map", help="Write map.html."),
    villages_file: Path | None = typer.Option(
        None,
        "--villages",
        help="Administrative village boundaries "
        "(GeoPackage/GeoJSON polygons with "
        "a name column and optional "
        "population); default OSM's village "
        "boundaries, else the village "
        "committees' territories along the "
        "walk network.",
    ),
    crs: str | None = typer.Option(None, "--crs", help=CRS_HELP),
    coords: str = typer.Option("wgs84", "--coords", help=COORDS_HELP),
    out_coords: str = typer.Option("wgs84", "--out-coords", help=OUT_COORDS_HELP),
    population: Path | None = typer.Option(None, "--population", help=POPULATION_HELP),
    population_table: Path | None = typer.Option(None, "--population-table", help=POPULATION_TABLE_HELP),
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
