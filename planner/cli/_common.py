"""Shared parts of the command line: the ``app`` with its global options, option checks,
help texts and the printing of output lines (terminal controls escaped)."""

from __future__ import annotations

import math
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

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


def written_files(out: Path) -> str:
    """The files a run wrote in ``out``, as a comma-separated list."""
    return ", ".join(sorted(p.name for p in Path(out).iterdir() if not p.name.startswith(".")))


def checked_out_dir(out: Path, *inputs: Path | str | None) -> Path:
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


def share_fraction(target: float) -> float:
    if not (math.isfinite(target) and 0 < target <= 1):
        raise InputError(f"--target {target:g}: give a share above 0 and at most 1, e.g. 0.8")
    return target


def check_town(text: str | None) -> None:
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


def check_scheduler(address: str | None) -> None:
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


def print_report(out: Path, result) -> None:
    cov = result.coverage
    say(
        f"region {result.region}: {len(result.homes)} homes, "
        f"{result.homes['population'].sum():,.0f} people, {result.network.n_nodes} network nodes"
    )
    at_target = cov[(cov["threshold"] == "target") & (cov["category"] != "complete_life_circle")]
    if len(at_target):
        say("population within each category's target (目标内人口比例; metres along the network or minutes):")
        for row in at_target.itertuples():
            target = f"≤ {row.target_m:g} m" if row.target_unit == "m" else f"≤ {row.target_minutes:g} min"
            say(f"  {row.name_zh:<12} {row.name_en:<36} {target:>10}  {row.population_share:6.1%}")
    complete = cov[cov["category"] == "complete_life_circle"]
    if len(complete):
        say(
            "complete basic life circle (完整基本生活圈: every basic category of the level and those "
            "below within its target), share of homes / people / elderly:"
        )
        circle = result.summary()["complete_life_circle"]
        for row in complete.itertuples():
            none = circle.get(row.level, {}).get("basic_categories_without_facilities", [])
            say(
                f"  {row.level:<6} {row.homes_share:6.1%} {row.population_share:6.1%} "
                f"{row.elderly_share:6.1%}" + (f"  (none mapped: {', '.join(none)})" if none else "")
            )
    co = result.co_location
    if co.get("checked"):
        say(
            f"health centres next to elderly care (毗邻建设, ≤ {co['distance_m']:g} m): "
            f"{co['adjacent']} of {co['health_centres']}"
        )
    missing = result.summary()["categories_without_facilities"]
    if missing:
        say(f"no facility mapped for: {', '.join(missing)}")
    say(f"outputs: {out}/{written_files(out)}")


# Options shared by the commands: each declared once here, used as a parameter's annotation
# (``crs: Crs = None``); the default stays in the command's signature, where typer reads it.
# An option whose help says something different per command takes that help as an argument.

CRS_HELP = (
    "CRS of CSV x/y columns and of input files that declare none (e.g. EPSG:4547); default WGS84 lon/lat."
)
COORDS_HELP = (
    "Lon/lat of the input files: wgs84, gcj02 (Gaode/Amap, Tencent) or bd09 (Baidu); converted to WGS84."
)
OUT_COORDS_HELP = (
    "Lon/lat of the written GeoPackages: wgs84, or gcj02/bd09 to overlay them on "
    "Gaode/Baidu maps (map.html stays WGS84: its base map is OSM)."
)
POPULATION_HELP = (
    "Population raster (GeoTIFF of people per cell, e.g. WorldPop, GHS-POP; any CRS), "
    "shared over homes by floor area."
)
POPULATION_TABLE_HELP = (
    "People per polygon (census, 街道/社区): GeoPackage/GeoJSON, or CSV with a wkt "
    "column; shared over homes by floor area."
)
OSM_HELP = "OSM extract (.osm / .osm.pbf), a bundled sample name, or a place name (online)."
OUT_HELP = "Output folder (replaced atomically when the run succeeds)."
CATEGORIES_FILE_HELP = "Your own categories TOML."


def osm_option(help: str = OSM_HELP) -> Any:
    return typer.Option("--osm", help=help)


def out_option(help: str = OUT_HELP) -> Any:
    return typer.Option("--out", help=help)


def homes_option(help: str) -> Any:
    return typer.Option("--homes", help=help)


def facilities_option(help: str) -> Any:
    return typer.Option("--facilities", help=help)


def categories_file_option(help: str = CATEGORIES_FILE_HELP) -> Any:
    return typer.Option("--categories-file", help=help)


def boundary_option(help: str) -> Any:
    return typer.Option("--boundary", help=help)


def map_option(help: str = "Write map.html.") -> Any:
    return typer.Option("--map/--no-map", help=help)


def coords_option(help: str = COORDS_HELP) -> Any:
    return typer.Option("--coords", help=help)


def raster_option(help: str) -> Any:
    return typer.Option("--raster", help=help)


def target_option(help: str) -> Any:
    return typer.Option("--target", help=help)


Osm = Annotated[str, osm_option()]
Out = Annotated[Path, out_option()]
Mode = Annotated[str, typer.Option("--mode", help="walk, bike or drive.")]
MapHtml = Annotated[bool, map_option()]
CategoriesFile = Annotated[Path | None, categories_file_option()]
Crs = Annotated[str | None, typer.Option("--crs", help=CRS_HELP)]
Coords = Annotated[str, coords_option()]
OutCoords = Annotated[str, typer.Option("--out-coords", help=OUT_COORDS_HELP)]
Population = Annotated[Path | None, typer.Option("--population", help=POPULATION_HELP)]
PopulationTable = Annotated[Path | None, typer.Option("--population-table", help=POPULATION_TABLE_HELP)]


#: Characters that drive a terminal rather than show (C0/C1 controls, DEL, bidi overrides):
#: data from OSM, plans and user files is printed with them escaped.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def plain_text(text: str) -> str:
    """``text`` with terminal control characters shown as escapes (``\\x1b``), never acted on."""
    return _CONTROLS.sub(lambda m: ascii(m.group())[1:-1], str(text))


def say(text: str) -> None:
    """Print a line of output; names from the data cannot move the cursor or recolour the terminal."""
    typer.echo(plain_text(text))


def one_line(text: str) -> str:
    return plain_text(re.sub(r"\s*[\r\n]+\s*", " ", str(text)).strip())
