"""``planner serve`` from files: load the inputs as ``planner audit`` does, then serve."""

from __future__ import annotations

import os
from collections.abc import Callable

from planner.serve.engine import Engine
from planner.serve.session import Session


def load_session(
    osm: str | os.PathLike,
    scenarios: str | os.PathLike,
    categories: str | None = "all",
    minutes: str | None = None,
    mode: str = "walk",
    homes: str | os.PathLike | None = None,
    facilities: str | os.PathLike | None = None,
    categories_file: str | os.PathLike | None = None,
    crs=None,
    coords: str | None = None,
    population=None,
    population_table=None,
) -> Session:
    """A session on the region, homes and facilities :func:`planner.audit.run_audit` would
    audit with the same arguments (no boundary); scenarios are saved in ``scenarios``."""
    from planner import coords as _coords
    from planner import settings
    from planner.categories import facilities_from_file, load_categories, select
    from planner.demand import homes_from_file
    from planner.options import check_mode, parse_minutes
    from planner.population import homes_with_population
    from planner.sources import load_region

    coords = _coords.check_coords(coords)
    mins = parse_minutes(minutes if minutes is not None else settings.minutes)
    check_mode(mode)
    known = load_categories(categories_file)
    select(known, categories)  # a bad file or key fails before any heavy work
    region = load_region(osm)
    home_table = (
        homes_from_file(homes, region.crs, region=region, file_crs=crs, coords=coords) if homes else None
    )
    home_table = homes_with_population(region, home_table, population, population_table, crs, coords)
    extra = facilities_from_file(facilities, region.crs, known, crs, coords) if facilities else None
    engine = Engine(
        region,
        categories=categories,
        minutes=mins,
        mode=mode,
        homes=home_table,
        extra_facilities=extra,
        categories_file=categories_file,
    )
    inputs = {"osm": str(osm)}
    for key, value in (("homes", homes), ("facilities", facilities), ("categories_file", categories_file)):
        if value is not None:
            inputs[key] = str(value)
    return Session(engine, scenarios, inputs)


_FILE_INPUTS = ("homes", "facilities", "categories_file", "population", "population_table")


def folder_inputs(folder: str | os.PathLike) -> dict:
    """The inputs an audit's output folder records in its ``summary.json`` (see
    :func:`planner.audit.run_audit`), as keyword arguments of :func:`load_session`.

    Raises :class:`~planner._errors.InputError` when the folder has no ``summary.json``, it
    records no inputs, or a recorded file is missing.
    """
    import json
    from pathlib import Path

    from planner._errors import InputError

    path = Path(folder) / "summary.json"
    if not path.is_file():
        raise InputError(f"{folder}: no summary.json; give the output folder of planner audit, or --osm FILE")
    try:
        inputs = json.loads(path.read_text(encoding="utf-8")).get("inputs")
    except (ValueError, AttributeError) as exc:
        raise InputError(
            f"{path}: not an audit summary ({exc}); rerun planner audit, or give --osm FILE"
        ) from None
    if not isinstance(inputs, dict) or "osm" not in inputs:
        raise InputError(f"{path}: records no inputs (an older audit); rerun planner audit, or --osm FILE")
    if inputs.get("boundary"):
        raise InputError(
            f"{path}: the audit used a boundary, which planner serve does not take; "
            "rerun planner audit without --boundary, or give --osm FILE"
        )
    osm = inputs.get("osm_path") or inputs["osm"]
    if inputs.get("osm_path") and not Path(osm).is_file():
        raise InputError(
            f"{path}: the OSM file it records, {osm}, is missing; put it back there, or give --osm FILE"
        )
    kwargs = {
        "osm": osm,
        "categories": inputs.get("categories"),
        "mode": inputs.get("mode") or "walk",
        "coords": inputs.get("coords"),
        "crs": inputs.get("crs"),
    }
    if inputs.get("minutes"):
        kwargs["minutes"] = ",".join(str(int(m)) for m in inputs["minutes"])
    for key in _FILE_INPUTS:
        value = inputs.get(key)
        if value and not Path(value).is_file():
            raise InputError(f"{path}: the {key} file it records ({value}) is not there; put it back there")
        kwargs[key] = value or None
    return kwargs


def serve(
    session: Session,
    host: str = "127.0.0.1",
    port: int = 8000,
    open_browser: bool = True,
    say: Callable[[str], None] = print,
) -> None:
    """Serve the session until interrupted (Ctrl+C); a non-loopback ``host`` gets a token."""
    import uvicorn

    from planner.serve.app import create_app, is_loopback, new_token

    token = None if is_loopback(host) else new_token()
    app = create_app(session, host=host, token=token)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    say(f"planner serve: {session.engine.region.name} at {url}")
    if token:
        say(f"token (needed on every request from another computer): {token}")
    say(f"scenarios are saved in {session.folder.folder}; stop with Ctrl+C")
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")
