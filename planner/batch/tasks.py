"""What a batch runs per region: the commands' ``run_*`` functions, on a worker, each into a
folder moved into place only when complete."""

from __future__ import annotations

import copy
import inspect
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd

from planner import settings
from planner._errors import InputError
from planner._io import (
    MARKER,
    remove_leftovers,
    replace_dir,
    scratch_name,
    write_json,
)
from planner.audit import run_audit
from planner.batch.cluster import dask_sweeper, one_line, peak_rss_mb, worker_address
from planner.batch.regions import RegionSpec
from planner.batch.rollup import indicator_rows
from planner.coords import check_coords
from planner.options import check_mode, isochrone_option, parse_minutes
from planner.siting import run_site
from planner.villages import run_villages

_AUDIT_OPTIONS = (
    "categories",
    "minutes",
    "mode",
    "homes",
    "facilities",
    "categories_file",
    "isochrones",
    "map_html",
    "crs",
    "coords",
    "out_coords",
    "population",
    "population_table",
)
#: Options naming input files: made absolute, as workers may not share this process's folder.
_FILE_OPTIONS = (
    "homes",
    "facilities",
    "candidates",
    "categories_file",
    "raster",
    "population",
    "population_table",
)


def audit_arguments(spec: RegionSpec, options: dict) -> dict:
    """The keyword arguments of :func:`planner.audit.run_audit` that a batch's options and a
    region's own files give (the same for a region audited alone and for a shared audit)."""
    return {
        "categories": options["categories"],
        "minutes": options["minutes"],
        "mode": options["mode"],
        "homes": spec.homes or options.get("homes"),
        "facilities": spec.facilities or options.get("facilities"),
        "categories_file": options.get("categories_file"),
        "isochrones": options["isochrones"],
        "sweeper": dask_sweeper,
        "progress": False,
        "crs": options.get("crs"),
        "coords": options.get("coords"),
        "population": options.get("population"),
        "population_table": options.get("population_table"),
    }


def run_audit_region(spec: RegionSpec, out_dir: Path, options: dict) -> dict:
    """Audit one region into ``out_dir`` (which must not exist yet): :func:`planner.audit.run_audit`,
    with the region's name, its boundary, and the per-category sweeps on the cluster."""
    boundary = None if spec.boundary is None else gpd.GeoSeries([spec.boundary], crs=4326)
    result = run_audit(
        spec.source,
        out_dir,
        boundary=boundary,
        map_html=options["map_html"],
        name=spec.name,
        out_coords=options.get("out_coords"),
        **audit_arguments(spec, options),
    )
    if spec.cut_osm:
        name_extract(Path(out_dir) / "summary.json", spec)
    return {
        "homes": len(result.homes),
        "nodes": int(result.network.n_nodes),
        "population": float(result.homes["population"].sum()),
        # The roll-up's counts now, while the homes are in memory (no second read of the files).
        "_indicators": indicator_rows(spec.name, result.coverage, result.homes),
    }


run_audit_region.writes_audit_outputs = True


def name_extract(summary_path: Path, spec: RegionSpec) -> None:
    """Record the user's extract, not the batch's cut of it, as the region's OSM input in its
    ``summary.json``: the cut is removed once the region is done, and the region loaded from it
    equals the extract loaded with the region's boundary."""
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    inputs = summary.get("inputs")
    if isinstance(inputs, dict) and inputs.get("osm") == spec.cut_osm:
        inputs["osm"], inputs["osm_path"] = spec.osm, str(Path(spec.osm).resolve())
        write_json(summary_path, summary)


def task_function(task: str | Callable) -> Callable:
    """The function a batch runs per region: a task name of :data:`TASKS`, or ``task`` itself."""
    if callable(task):
        return task
    if task in TASKS:
        return TASKS[task]
    raise InputError(f"--task {task!r}: unknown task; use one of {', '.join(TASKS)}")


def entry_task(task: str, entry: Callable) -> Callable:
    """Adapt an ``entry(osm, out_dir, **options)`` function (e.g. ``run_villages``) to a batch task."""

    def run(spec: RegionSpec, out_dir: Path, options: dict) -> dict:
        kwargs = dict(options)
        if spec.boundary is not None:
            if "boundary" not in inspect.signature(entry).parameters:
                raise InputError(
                    f"task {task!r} takes no boundary yet; give region {spec.name!r} its own osm file"
                )
            kwargs["boundary"] = gpd.GeoSeries([spec.boundary], crs=4326)
        if "name" in inspect.signature(entry).parameters:
            kwargs["name"] = spec.name  # not the file's stem: a region cut from a large extract
        entry(spec.source, out_dir, **kwargs)
        return {}

    run.__name__ = f"_run_{task}_region"
    run.entry = entry
    return run


#: Task name → ``fn(spec, out_dir, options) -> dict``: writes one region's outputs into
#: ``out_dir`` (a new folder, ``summary.json`` included) and returns a few facts for the batch
#: summary. ``fn.writes_audit_outputs = True`` asks for the roll-up (indicators.csv, map.html).
TASKS: dict[str, Callable[[RegionSpec, Path, dict], dict]] = {
    "audit": run_audit_region,
    "villages": entry_task("villages", run_villages),
    "site": entry_task("site", run_site),
}


def check_options(task: str | Callable, options: dict | None) -> dict:
    """Normalise the task's options and catch mistakes before any region starts."""
    options = dict(options or {})
    if callable(task):
        return options
    if task != "audit":
        return check_entry_options(task, options)
    unknown = sorted(set(options) - set(_AUDIT_OPTIONS))
    if unknown:
        raise InputError(
            f"task_options: unknown audit option {unknown[0]!r}; known: {', '.join(_AUDIT_OPTIONS)}"
        )
    from planner.categories import load_categories, select

    out = {
        "categories": options.get("categories") or "all",
        "minutes": parse_minutes(options.get("minutes", settings.minutes)),
        "mode": check_mode(options.get("mode", "walk")),
        "isochrones": isochrone_option(options.get("isochrones", "target")),
        "map_html": bool(options.get("map_html", True)),
        "crs": options.get("crs"),
        "coords": check_coords(options.get("coords")),
        "out_coords": check_coords(options.get("out_coords"), "--out-coords"),
    }
    for key in ("homes", "facilities", "categories_file", "population", "population_table"):
        if options.get(key):
            path = Path(options[key]).expanduser().resolve()
            if not path.exists():
                raise InputError(f"--{key.replace('_', '-')} {options[key]}: file not found")
            out[key] = str(path)
    # Unknown categories or a bad categories file fail here, once, not in every region.
    cats = select(load_categories(out.get("categories_file")), out["categories"])
    out["_category_keys"] = [c.key for c in cats]
    out["_category_targets"] = {c.key: c.minutes for c in cats}
    return out


def check_entry_options(task: str, options: dict) -> dict:
    """Options of another module's task: names its function takes, files as absolute paths."""
    runner = task_function(task)
    known = [
        p
        for p in inspect.signature(runner.entry).parameters
        if p not in ("osm", "out_dir", "boundary", "name")
    ]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InputError(f"task_options: unknown {task} option {unknown[0]!r}; known: {', '.join(known)}")
    if task == "site" and not options.get("category"):
        raise InputError("--category: give the category to site, e.g. elderly_care")
    if task == "site":
        from planner.categories import load_categories, resolve_key

        known_categories = load_categories(options.get("categories_file"))
        options = {**options, "category": resolve_key(options["category"], known_categories, "--category")}
    minutes = options.get("minutes")
    if minutes is not None and (
        isinstance(minutes, bool)
        or not isinstance(minutes, (int, float))
        or not math.isfinite(minutes)
        or minutes <= 0
    ):
        raise InputError(
            f"--minutes {minutes!r}: give one positive number of minutes for --task {task}, e.g. 15"
        )
    out = {}
    for key, value in options.items():
        if isinstance(value, os.PathLike) or (isinstance(value, str) and key in _FILE_OPTIONS):
            path = Path(value).expanduser().resolve()
            if not path.exists():
                raise InputError(f"--{key.replace('_', '-')} {value}: file not found")
            value = str(path)  # workers may not share this process's working folder
        out[key] = value
    return out


def region_job(
    task: Callable, spec: RegionSpec, regions_dir: str, options: dict, config: dict, run_id: str | None = None
) -> dict:
    """Run ``task`` for one region on a worker and move its folder into place when complete.

    The folder's :data:`~planner._io.MARKER` records ``run_id``, the batch run that wrote it
    (what ``resume`` looks for). Bad input (:class:`InputError`) is returned as a failure,
    not raised: retrying it would fail again. Other errors are raised, so Dask retries them
    (``retries``). A failed region's folder from an earlier run is left as it was.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    for key, value in config.items():  # the client's settings (e.g. from --config) hold here too
        setattr(settings, key, value)
    settings.progress = False
    root = Path(regions_dir)
    root.mkdir(parents=True, exist_ok=True)
    remove_leftovers(root, spec.name)  # what an earlier attempt left when its worker was killed
    work = root / scratch_name(spec.name, "partial")
    info: dict[str, Any] = {"region": spec.name, "worker": worker_address()}
    try:
        if spec.error:
            raise InputError(spec.error)
        facts = task(spec, work, options) or {}
        if not (work / "summary.json").exists():
            raise RuntimeError(f"task wrote no summary.json into {work.name}")
        write_json(work / MARKER, {"written_by": "planner batch", "batch_run": run_id, "region": spec.name})
        replace_dir(work, root / spec.name)  # readers see the old folder or the new one, never a mix
        info.update(facts, status="done")
    except InputError as err:
        shutil.rmtree(work, ignore_errors=True)
        message = one_line(err)
        if spec.cut_osm:  # name the user's file, not the batch's cut of it
            message = message.replace(spec.cut_osm, f"{spec.osm} (cut to region {spec.name})")
        info.update(status="failed", error=message)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    info["seconds"] = round(time.perf_counter() - started, 3)
    info["cpu_seconds"] = round(
        time.process_time() - cpu_started, 3
    )  # this process only (not sweeps run elsewhere)
    info["peak_rss_mb"] = peak_rss_mb()
    return info


def batch_run_of(folder: Path) -> str | None:
    """The batch run that wrote a region folder (its marker), or None."""
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8")).get("batch_run")
    except (OSError, ValueError, AttributeError):
        return None


def settings_snapshot() -> dict:
    return {
        k: copy.deepcopy(v)
        for k, v in vars(settings).items()
        if not k.startswith("_") and not callable(v) and not inspect.ismodule(v)
    }
