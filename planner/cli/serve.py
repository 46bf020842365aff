"""``planner serve``: the scenario workbench in the browser."""

from __future__ import annotations

from pathlib import Path

import typer

from planner._errors import InputError
from planner.cli._common import COORDS_HELP, CRS_HELP, POPULATION_HELP, POPULATION_TABLE_HELP, app, say


@app.command()
def serve(
    folder: Path | None = typer.Argument(
        None, metavar="DIR", help="An audit's output folder: serve what its summary.json records."
    ),
    osm: str | None = typer.Option(
        None, "--osm", help="OSM extract (.osm or .osm.pbf), a bundled sample name, or a place name (online)."
    ),
    scenarios: Path = typer.Option(
        Path("planner-scenarios"), "--scenarios", help="Folder where scenarios are saved and exported."
    ),
    categories: str | None = typer.Option(None, "--categories", help="Category keys, comma-separated [all]."),
    minutes: str | None = typer.Option(None, "--minutes", help="Minutes, comma-separated [5,10,15]."),
    mode: str | None = typer.Option(None, "--mode", help="walk, bike or drive (paths only on walk) [walk]."),
    homes: Path | None = typer.Option(None, "--homes", help="Homes replacing those found in OSM."),
    facilities: Path | None = typer.Option(None, "--facilities", help="Extra facilities added to OSM's."),
    categories_file: Path | None = typer.Option(None, "--categories-file", help="Your own categories TOML."),
    crs: str | None = typer.Option(None, "--crs", help=CRS_HELP),
    coords: str | None = typer.Option(None, "--coords", help=COORDS_HELP),
    population: Path | None = typer.Option(None, "--population", help=POPULATION_HELP),
    population_table: Path | None = typer.Option(None, "--population-table", help=POPULATION_TABLE_HELP),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to serve on: 127.0.0.1 (this computer only, default); another address "
        "(an intranet) needs the token printed at start on every request.",
    ),
    port: int = typer.Option(8000, "--port", help="Port to serve on."),
    browser: bool = typer.Option(True, "--browser/--no-browser", help="Open the page in the web browser."),
    load: str | None = typer.Option(None, "--load", help="Open a saved scenario of the --scenarios folder."),
) -> None:
    """Start a local web page to try scenarios: add, move or delete facilities, add or close
    paths, open gates, change populations; the life-circle coverage updates at once.
    ``planner serve DIR`` starts on the inputs of the audit written to DIR."""
    from planner.serve.run import folder_inputs, load_session
    from planner.serve.run import serve as run

    if not 1 <= port <= 65535:
        raise InputError(f"--port {port}: give a port from 1 to 65535, e.g. 8000")
    if scenarios.exists() and not scenarios.is_dir():
        raise InputError(f"--scenarios {scenarios}: not a folder; give a folder for the scenario files")
    given = {
        "osm": osm,
        "categories": categories,
        "minutes": minutes,
        "mode": mode,
        "homes": homes,
        "facilities": facilities,
        "categories_file": categories_file,
        "crs": crs,
        "coords": coords,
        "population": population,
        "population_table": population_table,
    }
    if folder is not None:
        extra = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None]
        if extra:
            raise InputError(f"{folder}: the folder gives the inputs; leave out {', '.join(extra)}")
        given = folder_inputs(folder)
    elif osm is None:
        raise InputError("give --osm FILE, or an audit's output folder: planner serve DIR")
    given.update(categories=given["categories"] or "all", mode=given["mode"] or "walk")
    session = load_session(scenarios=scenarios, **given)
    if load:
        session.load(load)
    run(session, host=host, port=port, open_browser=browser, say=say)
