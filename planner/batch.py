"""Batch runs over many regions on Dask ``distributed``: a laptop or a cluster, one argument apart.

A regions file lists one region per row: a ``name`` and either its own OSM extract (``osm``)
or a boundary polygon (GeoPackage geometry, or a CSV ``wkt`` column in WGS84) cut from one
large extract given once (``osm=`` / ``--osm province.osm.pbf``). Each region is loaded with a
buffer of the largest threshold's reach (:func:`planner.sources.reach_m`) and audited with
``boundary=``, so homes near the boundary still reach facilities just across it while only
homes inside count — exactly what ``planner audit --boundary`` does for one region.

Work split
    One task per region. Inside a large region the per-category sweeps run as tasks of their
    own on the shared network arrays (:func:`dask_sweeper`), which are scattered to the cluster
    once, not pickled per sweep.
Outputs
    ``DIR/regions/<name>/`` holds what the single-region command writes, moved into place
    only when complete; ``DIR/indicators.csv`` rolls coverage up per region and for the whole
    set; ``DIR/map.html`` colours regions by one indicator; ``DIR/failures.csv`` lists the
    regions that failed with their one-line error; ``DIR/summary.json`` has counts, seconds,
    workers and peak memory per worker.
Faults
    A region with bad input fails alone; tasks of a worker that dies are rescheduled by Dask
    (and raised errors retried ``retries`` times). A region that fails keeps the folder an
    earlier run wrote for it. ``resume=True`` continues the run recorded in ``summary.json``
    (written when a run starts, completed when it ends): it refuses other options than that
    run's and skips the regions that run finished. Leftovers of killed workers
    (``.<name>.partial-…``) are removed by the next run once their process is gone.

    >>> from planner.batch import run_batch
    >>> run_batch("counties.gpkg", osm="zhejiang.osm.pbf", out_dir="out/zj",
    ...           task_options={"categories": "kindergarten,clinic,market"})     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import inspect
import json
import math
import os
import re
import shutil
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings
from planner._errors import InputError
from planner._io import (
    MARKER,
    atomic_file,
    is_planner_folder,
    remove_leftovers,
    replace_dir,
    scratch_name,
    terminate_as_exit,
    write_json,
)

#: Name of the whole-set rows in ``indicators.csv``.
ALL_REGIONS = "(all)"
#: Regions cut from one extract of at least this size are first cut into small extracts in one
#: pass (each task then reads its own cut, not the whole province). Smaller files are read whole.
cut_min_bytes: int = 64 * 2**20

_AUDIT_OPTIONS = ("categories", "minutes", "mode", "homes", "facilities", "categories_file", "isochrones", "map_html")
# Share bands of the batch map: ≥ 90 %, ≥ 75 %, ≥ 50 %, below (ColorBrewer RdYlGn as in planner.maps).
_SHARE_BANDS = ((0.9, "#1a9850", "≥ 90 %"), (0.75, "#91cf60", "75–90 %"), (0.5, "#fc8d59", "50–75 %"),
                (-1.0, "#d73027", "< 50 %"))


@dataclass(frozen=True)
class RegionSpec:
    """One row of a regions file, with paths resolved.

    Attributes
    ----------
    name : str
        Region name; also its output folder ``DIR/regions/<name>``.
    osm : str or None
        Absolute path of the region's extract (its own, or the shared large one).
    boundary : shapely geometry or None
        Polygon in WGS84: only homes inside count; the region is loaded with a buffer around it.
    homes, facilities : str or None
        Region's own homes / extra facilities file (absolute paths), overriding the batch's.
    error : str or None
        A problem found while reading the row (e.g. a bad ``wkt``): the region fails with it.
    row : int
        Row in the regions file (1 = first region).
    cut_osm : str or None
        This region's cut of a large extract (see :func:`cut_extracts`), when the batch made one.
    """

    name: str
    osm: str | None
    boundary: Any = None
    homes: str | None = None
    facilities: str | None = None
    error: str | None = None
    row: int = 0
    cut_osm: str | None = None

    @property
    def source(self) -> str | None:
        """The file the task reads: the region's cut of a large extract, or ``osm``."""
        return self.cut_osm or self.osm


# ----------------------------------------------------------------------------------------------
# tasks


def _run_audit_region(spec: RegionSpec, out_dir: Path, options: dict) -> dict:
    """Audit one region into ``out_dir`` (which must not exist yet), as ``planner audit`` would."""
    from planner.audit import audit
    from planner.categories import facilities_from_file, load_categories
    from planner.demand import homes_from_file
    from planner.sources import load_region, reach_m

    mins, mode = options["minutes"], options["mode"]
    boundary = None if spec.boundary is None else gpd.GeoSeries([spec.boundary], crs=4326)
    region = load_region(spec.source, boundary=boundary, name=spec.name,
                         buffer_m=reach_m(mins, mode) if boundary is not None else 0.0)
    homes_file = spec.homes or options.get("homes")
    facilities_file = spec.facilities or options.get("facilities")
    homes = homes_from_file(homes_file, region.crs) if homes_file else None
    extra = (facilities_from_file(facilities_file, region.crs, load_categories(options.get("categories_file")))
             if facilities_file else None)
    result = audit(
        region, categories=options["categories"], minutes=mins, mode=mode, homes=homes,
        extra_facilities=extra, categories_file=options.get("categories_file"),
        with_isochrones=options["isochrones"], boundary=boundary, sweeper=dask_sweeper, progress=False,
    )
    result.write(out_dir, map_html=options["map_html"])
    return {"homes": len(result.homes), "nodes": int(result.network.n_nodes),
            "population": float(result.homes["population"].sum()),
            # The roll-up's counts now, while the homes are in memory (no second read of the files).
            "_indicators": _indicator_rows(spec.name, result.coverage, result.homes)}


_run_audit_region.writes_audit_outputs = True

#: Task name → ``fn(spec, out_dir, options) -> dict``: writes one region's outputs into
#: ``out_dir`` (a new folder, ``summary.json`` included) and returns a few facts for the batch
#: summary. ``fn.writes_audit_outputs = True`` asks for the roll-up (indicators.csv, map.html).
#: ``villages`` and ``site`` are added from their modules when asked for (see ``_PLUGGABLE``).
TASKS: dict[str, Callable[[RegionSpec, Path, dict], dict]] = {"audit": _run_audit_region}


# Tasks whose entry functions other modules provide: (module, function) tried in order; the
# first that exists is registered when the task is asked for.
_PLUGGABLE = {
    "villages": [("planner.villages", "run_villages")],
    "site": [("planner.siting", "run_site")],
}
_SITE_OPTIONS = ("category", "model", "new", "minutes", "candidates", "homes", "facilities", "capacity", "mode",
                 "method", "time_limit", "map_html")


def _task_function(task: str | Callable) -> Callable:
    if callable(task):
        return task
    if task in TASKS:
        return TASKS[task]
    if task in _PLUGGABLE:
        for module, attr in _PLUGGABLE[task]:
            try:
                entry = getattr(__import__(module, fromlist=[attr]), attr)
            except (ImportError, AttributeError):
                continue
            return entry if module == __name__ else _entry_task(task, entry)
        module, attr = _PLUGGABLE[task][0]
        raise InputError(f"task {task!r} is not available yet (needs {module}.{attr}); use --task audit")
    raise InputError(f"--task {task!r}: unknown task; use one of {', '.join([*TASKS, *_PLUGGABLE])}")


def _entry_task(task: str, entry: Callable) -> Callable:
    """Adapt an ``entry(osm, out_dir, **options)`` function (e.g. ``run_villages``) to a batch task."""

    def run(spec: RegionSpec, out_dir: Path, options: dict) -> dict:
        kwargs = dict(options)
        if spec.boundary is not None:
            if "boundary" not in inspect.signature(entry).parameters:
                raise InputError(f"task {task!r} takes no boundary yet; give region {spec.name!r} its own osm file")
            kwargs["boundary"] = gpd.GeoSeries([spec.boundary], crs=4326)
        if "name" in inspect.signature(entry).parameters:
            kwargs["name"] = spec.name  # not the file's stem: a region cut from a large extract
        entry(spec.source, out_dir, **kwargs)
        return {}

    run.__name__ = f"_run_{task}_region"
    run.entry = entry
    return run


def _check_options(task: str | Callable, options: dict | None) -> dict:
    """Normalise the task's options and catch mistakes before any region starts."""
    options = dict(options or {})
    if callable(task):
        return options
    if task != "audit":
        return _check_entry_options(task, options)
    unknown = sorted(set(options) - set(_AUDIT_OPTIONS))
    if unknown:
        raise InputError(f"task_options: unknown audit option {unknown[0]!r}; known: {', '.join(_AUDIT_OPTIONS)}")
    from planner.categories import load_categories, select
    from planner.network import MODES

    out = {
        "categories": options.get("categories") or "all",
        "minutes": _minutes(options.get("minutes", settings.minutes)),
        "mode": options.get("mode", "walk"),
        "isochrones": options.get("isochrones", "target"),
        "map_html": bool(options.get("map_html", True)),
    }
    if out["mode"] not in MODES:
        raise InputError(f"--mode {out['mode']!r}: use one of {', '.join(MODES)}")
    iso = {"target": True, "all": "all", "none": False, True: True, False: False}
    if out["isochrones"] not in iso:
        raise InputError(f"--isochrones {out['isochrones']!r}: use target, all or none")
    out["isochrones"] = iso[out["isochrones"]]
    for key in ("homes", "facilities", "categories_file"):
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


def _check_entry_options(task: str, options: dict) -> dict:
    """Options of another module's task: names its function takes, files as absolute paths."""
    runner = _task_function(task)
    if hasattr(runner, "entry"):
        known = [p for p in inspect.signature(runner.entry).parameters
                 if p not in ("osm", "out_dir", "boundary", "name")]
    else:
        known = list(_SITE_OPTIONS)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InputError(f"task_options: unknown {task} option {unknown[0]!r}; known: {', '.join(known)}")
    if task == "site" and not options.get("category"):
        raise InputError("--category: give the category to site, e.g. elderly_care")
    if task == "site":
        from planner.categories import load_categories

        known_categories = load_categories(options.get("categories_file"))
        if options["category"] not in known_categories:
            raise InputError(f"--category {options['category']!r}: unknown; use one of {', '.join(known_categories)}")
    minutes = options.get("minutes")
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, (int, float))
                                or not math.isfinite(minutes) or minutes <= 0):
        raise InputError(f"--minutes {minutes!r}: give one positive number of minutes for --task {task}, e.g. 15")
    out = {}
    for key, value in options.items():
        if isinstance(value, os.PathLike) or (isinstance(value, str) and key in ("homes", "facilities", "candidates",
                                                                                 "categories_file", "raster")):
            path = Path(value).expanduser().resolve()
            if not path.exists():
                raise InputError(f"--{key.replace('_', '-')} {value}: file not found")
            value = str(path)  # workers may not share this process's working folder
        out[key] = value
    return out


def _minutes(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        parts = [v for v in value.split(",") if v.strip()]
    else:
        parts = list(value)
    try:
        mins = tuple(int(v) for v in parts)
    except (TypeError, ValueError):
        raise InputError(f"--minutes {value!r}: give whole minutes separated by commas, e.g. 5,10,15") from None
    if not mins or min(mins) <= 0:
        raise InputError(f"--minutes {value!r}: give positive whole minutes, e.g. 5,10,15")
    return mins


# ----------------------------------------------------------------------------------------------
# sweeps on the cluster


def _sweep_task(targets, subset: np.ndarray, limit: float | None):
    return targets.sweep(subset, limit)


def dask_sweeper(targets, subsets: list, limit: float | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per-category sweeps as Dask tasks: a ``sweeper`` for :func:`planner.audit.audit`.

    On a large network (``n_nodes × len(subsets) ≥ settings.parallel_min_node_sweeps``) the
    target graph is scattered once (``broadcast=False``: a worker fetches it once when it first
    runs one of the sweeps) and each subset becomes a task. Called inside a Dask task it uses
    :func:`distributed.worker_client`, which secedes from the worker's thread pool while
    waiting, so the sweeps can run on the same worker; called in a process with a Dask client
    it uses that client. Elsewhere, and on small networks where a task costs more than a sweep,
    it sweeps in this process.

    Yields (cost, nearest) per subset, in order, like :func:`planner.network.sweep_many`.
    """
    small = targets.n_nodes * len(subsets) < settings.parallel_min_node_sweeps
    with (contextlib.nullcontext() if small or len(subsets) < 2 else _cluster_client()) as client:
        if client is None:
            for subset in subsets:
                yield targets.sweep(subset, limit)
            return
        shared = client.scatter(targets, broadcast=False, hash=False)
        futures = [client.submit(_sweep_task, shared, np.asarray(s), limit, pure=False) for s in subsets]
        for fut in futures:
            yield fut.result()
            fut.release()  # a node-sized pair of arrays: free it on the worker at once


@contextlib.contextmanager
def _cluster_client():
    """The Dask client to submit sub-tasks with: a worker client inside a task, this process's
    client otherwise, or None when there is no cluster."""
    try:
        from distributed import get_client, get_worker, worker_client
    except ImportError:  # pragma: no cover - distributed is a dependency
        yield None
        return
    try:
        get_worker()
    except ValueError:
        try:
            yield get_client()
        except ValueError:
            yield None
        return
    with worker_client() as client:
        yield client


# ----------------------------------------------------------------------------------------------
# regions file


def read_regions(regions: str | os.PathLike | pd.DataFrame, osm: str | os.PathLike | None = None) -> list[RegionSpec]:
    """Read a regions file (CSV or GeoPackage/GeoJSON) into :class:`RegionSpec` rows.

    Parameters
    ----------
    regions : path or DataFrame
        One row per region: ``name``, and ``osm`` (a path, relative to the file's folder) or a
        boundary (the GeoPackage geometry, or a CSV ``wkt`` polygon in WGS84), or both.
        Optional ``homes`` and ``facilities`` paths per region.
    osm : path, optional
        The large extract that boundary rows without their own ``osm`` are cut from.

    Returns
    -------
    list of RegionSpec
        In file order. Problems of the whole file (no ``name``, duplicate names) raise
        :class:`InputError`; a bad row (unreadable ``wkt``) carries its ``error`` and fails alone.
    """
    if isinstance(regions, pd.DataFrame):
        frame, base, label = regions.copy(), Path.cwd(), "regions"
    else:
        path = Path(regions).expanduser()
        frame, base, label = _read_regions_file(path), path.resolve().parent, str(regions)
    frame.columns = [str(c).strip().lower() if c != getattr(frame, "_geometry_column_name", None) else c
                     for c in frame.columns]
    if "name" not in frame.columns:
        raise InputError(f"{label}: no 'name' column; give one row per region with name and osm or a boundary")
    if len(frame) == 0:
        raise InputError(f"{label}: no regions; give one row per region")
    geoms = None
    if isinstance(frame, gpd.GeoDataFrame) and frame.geometry.notna().any():
        if frame.crs is None:
            raise InputError(f"{label}: the boundaries have no CRS; save the file with one (e.g. EPSG:4326)")
        geoms = frame.geometry.to_crs(4326).to_numpy()
    big = Path(osm).expanduser().resolve() if osm else None
    specs, seen = [], {}
    for i, row in enumerate(frame.to_dict("records")):
        name = _region_name(row.get("name"), label, i + 1)
        if name in seen:
            raise InputError(f"{label}: region name {name!r} appears twice (rows {seen[name]} and {i + 1}); names must be unique")
        seen[name] = i + 1
        boundary, error = None, None
        if geoms is not None and geoms[i] is not None and not geoms[i].is_empty:
            boundary = geoms[i]
        text = _text(row.get("wkt"))
        if text:
            try:
                boundary = shapely.from_wkt(text)
            except shapely.errors.GEOSException as err:
                error = f"row {i + 1}: wkt is not a readable polygon ({str(err).splitlines()[0]}); give WGS84 WKT like POLYGON((lon lat, ...))"
        if boundary is not None and error is None:
            error = _polygon_problem(boundary, i + 1)
        own = _text(row.get("osm"))
        source = str(_resolve(own, base)) if own else (str(big) if big else None)
        if source is None:
            raise InputError(f"{label}: region {name!r} has no osm file; give an osm column or --osm EXTRACT to cut boundaries from")
        if boundary is None and not own and error is None:
            error = f"row {i + 1}: no osm file and no boundary; give its own osm or a boundary to cut from --osm"
        specs.append(RegionSpec(
            name=name, osm=source, boundary=boundary,
            homes=str(_resolve(_text(row.get("homes")), base)) if _text(row.get("homes")) else None,
            facilities=str(_resolve(_text(row.get("facilities")), base)) if _text(row.get("facilities")) else None,
            error=error, row=i + 1,
        ))
    return specs


def _read_regions_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputError(f"--regions {path}: file not found; give a CSV or GeoPackage with one row per region")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        if suffix in (".gpkg", ".geojson", ".json", ".shp", ".fgb"):
            return gpd.read_file(path)
    except Exception as err:  # noqa: BLE001 - any reader failure is the user's file
        raise InputError(f"--regions {path}: cannot read it ({str(err).strip().splitlines()[0]})") from None
    raise InputError(f"--regions {path}: use a .csv (name, osm or wkt) or a .gpkg (name, geometry, optional osm)")


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _region_name(value: Any, label: str, row: int) -> str:
    name = _text(value)
    # The name is a folder: no separators, no hidden or relative names.
    if not name or name in (".", "..", ALL_REGIONS) or name.startswith(".") or re.search(r"[/\\\x00-\x1f]", name):
        raise InputError(f"{label}: row {row} has name {name!r}; give a non-empty name without / or \\ "
                         f"that does not start with '.' (it names the region's output folder)")
    return name


def _resolve(text: str, base: Path) -> Path:
    p = Path(text).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def _polygon_problem(geom, row: int) -> str | None:
    if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
        return f"row {row}: boundary is a {geom.geom_type}, not a polygon; give a polygon in WGS84"
    if not geom.is_valid:
        return f"row {row}: boundary polygon is invalid ({shapely.is_valid_reason(geom)}); fix it (e.g. shapely.make_valid)"
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        return f"row {row}: boundary coordinates are not longitude/latitude; give WGS84 (EPSG:4326)"
    return None


# ----------------------------------------------------------------------------------------------
# running one region on a worker


def _region_job(task: Callable, spec: RegionSpec, regions_dir: str, options: dict, config: dict,
                run_id: str | None = None) -> dict:
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
    info: dict[str, Any] = {"region": spec.name, "worker": _worker_address()}
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
        message = _one_line(err)
        if spec.cut_osm:  # name the user's file, not the batch's cut of it
            message = message.replace(spec.cut_osm, f"{spec.osm} (cut to region {spec.name})")
        info.update(status="failed", error=message)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    info["seconds"] = round(time.perf_counter() - started, 3)
    info["cpu_seconds"] = round(time.process_time() - cpu_started, 3)  # this process only (not sweeps run elsewhere)
    info["peak_rss_mb"] = _peak_rss_mb()
    return info


def _batch_run_of(folder: Path) -> str | None:
    """The batch run that wrote a region folder (its marker), or None."""
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8")).get("batch_run")
    except (OSError, ValueError, AttributeError):
        return None


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    line = text.splitlines()[0] if text else ""
    return line if isinstance(err, InputError) else f"{type(err).__name__}: {line}".rstrip(": ")


def _worker_address() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(peak / 1024 ** (2 if sys.platform == "darwin" else 1), 1)  # bytes on macOS, KiB elsewhere
    except ImportError:  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return round(getattr(info, "peak_wset", info.rss) / 2**20, 1)


def _settings_snapshot() -> dict:
    return {k: copy.deepcopy(v) for k, v in vars(settings).items()
            if not k.startswith("_") and not callable(v) and not inspect.ismodule(v)}


# ----------------------------------------------------------------------------------------------
# the batch


def run_batch(
    regions: str | os.PathLike | pd.DataFrame,
    task: str | Callable = "audit",
    out_dir: str | os.PathLike = "batch-out",
    osm: str | os.PathLike | None = None,
    scheduler: Any = None,
    workers: int | None = None,
    resume: bool = False,
    task_options: dict | None = None,
    progress: bool = True,
    *,
    map_indicator: str | None = None,
    memory_limit: str | float | None = "auto",
    retries: int = 1,
    cut: bool | None = None,
) -> dict:
    """Run a task over every region of a regions file on a Dask cluster.

    Parameters
    ----------
    regions : path or DataFrame
        Regions file (see :func:`read_regions`).
    task : str or callable
        ``"audit"`` (or another name in :data:`TASKS`), or ``fn(spec, out_dir, options)``.
    out_dir : path
        Output folder: ``regions/<name>/``, ``indicators.csv``, ``map.html``,
        ``failures.csv``, ``summary.json``.
    osm : path, optional
        Large extract that boundary rows are cut from.
    scheduler : str or distributed.Client, optional
        Address of a running scheduler (``tcp://host:8786``) or a client; default a new
        ``LocalCluster`` of processes with one thread each. Paths must then be readable, and
        ``out_dir`` writable, at the same place on every worker.
    workers : int, optional
        Workers of the local cluster (default: one per core); with ``scheduler``, wait for
        this many.
    resume : bool
        Continue the run recorded in ``out_dir/summary.json``: skip the regions it finished.
        Options (task, ``osm``, ``task_options``) that differ from that run's are refused.
    task_options : dict, optional
        For ``audit``: ``categories``, ``minutes``, ``mode``, ``homes``, ``facilities``,
        ``categories_file``, ``isochrones`` (target/all/none), ``map_html``.
    progress : bool
        Print the dashboard link and a progress bar over regions.
    map_indicator : str, optional
        ``"category:minutes"`` to colour ``map.html`` by; default the first category at its
        target minutes.
    memory_limit : str or float, optional
        Per worker of the local cluster (Dask: ``"4GiB"``, bytes, a fraction of the machine's
        memory, 0 for none, or ``"auto"`` = memory / workers); a worker above 95 % is restarted
        and its region retried elsewhere.
    retries : int
        Times a region whose task raised an unexpected error is retried (bad input is not).
    cut : bool, optional
        Cut boundary regions out of a shared extract in one pass before the run (default: when
        the extract is at least :data:`cut_min_bytes`).

    Returns
    -------
    dict
        What ``summary.json`` holds.

    Raises
    ------
    InputError
        Bad options or regions file, an ``out_dir`` planner did not write, or ``resume`` with
        options other than the resumed run's; nothing is written then.
    """
    started = time.perf_counter()
    runner = _task_function(task)
    task_name = task if isinstance(task, str) else getattr(task, "__name__", "custom")
    options = _check_options(task, task_options)
    if scheduler is None:
        _check_memory_limit(memory_limit)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"--workers {workers!r}: give a whole number of workers, at least 1")
    indicator = _parse_indicator(map_indicator, options) if task == "audit" else None
    # Tasks that write the audit's files (coverage.csv, homes.gpkg) get the roll-up and map.
    rollup = bool(getattr(runner, "writes_audit_outputs", False))
    specs = read_regions(regions, osm=osm)
    out = _batch_folder(out_dir)
    public_options = {k: v for k, v in options.items() if not k.startswith("_")}
    record = {"task": task_name, "osm": str(Path(osm).expanduser().resolve()) if osm else None,
              "task_options": public_options, "category_keys": options.get("_category_keys")}
    previous = _recorded_run(out) if resume else None
    if previous is not None and isinstance(task, str):  # a callable's options are its own business
        _check_resume(previous, record)
    run_id = (previous or {}).get("run_id") or uuid.uuid4().hex[:12]
    regions_dir = out / "regions"
    finished = {s.name for s in specs if resume and (regions_dir / s.name / "summary.json").exists()
                and _batch_run_of(regions_dir / s.name) == run_id}
    todo = [s for s in specs if s.name not in finished]
    seconds: dict[str, float] = {}
    results: dict[str, dict] = {}
    errors_log: list[str] = []
    with terminate_as_exit(), _connect(scheduler, workers, memory_limit) as client:
        seconds["cluster_start"] = time.perf_counter() - started
        regions_dir.mkdir(parents=True, exist_ok=True)
        remove_leftovers(regions_dir)  # of killed workers whose process is gone
        if not (out / MARKER).exists():
            write_json(out / MARKER, {"written_by": "planner batch"})
        # Recorded before any region runs, so that a killed run can be resumed.
        write_json(out / "summary.json", {"status": "running", "run_id": run_id, **record})
        n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
        scheduler_address = None if scheduler is None else client.scheduler.address
        if progress:
            print(f"planner batch: {len(specs)} regions ({len(finished)} done already), {len(todo)} to run "
                  f"on {n_workers} workers; dashboard {client.dashboard_link}", flush=True)
        t = time.perf_counter()
        todo = _cut_shared_extracts(todo, out, options, cut, client, progress, task_name)
        seconds["cut"] = time.perf_counter() - t
        t = time.perf_counter()
        results = _run_regions(client, runner, task_name, todo, regions_dir, options, retries, progress, errors_log,
                               run_id)
        seconds["regions"] = time.perf_counter() - t
        done_names = [s.name for s in specs if s.name in finished or results.get(s.name, {}).get("status") == "done"]
        t = time.perf_counter()
        rolled: list[dict] = []
        if rollup and done_names:
            now = {n: results[n].pop("_indicators") for n in done_names if "_indicators" in results.get(n, {})}
            earlier = [n for n in done_names if n not in now]  # done before a resume: read their files
            futures = client.map(_region_indicators, [str(regions_dir / n) for n in earlier], earlier, pure=False,
                                 key=[f"indicators-{i}-{uuid.uuid4().hex[:6]}" for i in range(len(earlier))])
            now.update(zip(earlier, client.gather(futures)))
            rolled = [now[n] for n in done_names]
        seconds["rollup_read"] = time.perf_counter() - t
        peaks, limits = _worker_memory(client, results)
    with contextlib.suppress(OSError):  # the cuts of finished regions are gone; so is the folder then
        (out / "_extracts").rmdir()
    t = time.perf_counter()
    failures = [{"region": s.name, "osm": s.osm, "error": results[s.name]["error"]}
                for s in specs if results.get(s.name, {}).get("status") == "failed"]
    _write_csv(pd.DataFrame(failures, columns=["region", "osm", "error"]), out / "failures.csv")
    if errors_log:
        with atomic_file(out / "failures.log", "w", encoding="utf-8") as fh:
            fh.write("\n\n".join(errors_log))
    table = None
    written = {"failures.log"} if errors_log else set()
    if rollup:
        written.add("indicators.csv")
        by_name = {s.name: s for s in specs}
        table = indicators_table([r["rows"] for r in rolled])
        _write_csv(table, out / "indicators.csv")
        outlines = {r["region"]: (by_name[r["region"]].boundary if by_name[r["region"]].boundary is not None
                                  else shapely.from_wkb(r["outline_wkb"])) for r in rolled}
        failed_outlines = {f["region"]: by_name[f["region"]].boundary for f in failures
                           if by_name[f["region"]].boundary is not None}
        if len(table):
            indicator = indicator or _default_indicator(table)
            batch_map(table, outlines, indicator, out / "map.html", failed=failed_outlines)
            written.add("map.html")
    for stale in ("failures.log", "indicators.csv", "map.html"):  # an earlier run's, not this one's
        if stale not in written:
            (out / stale).unlink(missing_ok=True)
    remove_leftovers(regions_dir)  # of workers that were still exiting when the run started
    seconds["rollup"] = time.perf_counter() - t + seconds.pop("rollup_read")
    seconds["total"] = time.perf_counter() - started
    ran = [results[s.name] for s in todo if s.name in results]
    summary = {
        "status": "done",
        "run_id": run_id,
        "task": task_name,
        "osm": record["osm"],
        "regions": {
            "total": len(specs),
            "done": len(done_names),
            "run": len(ran),
            "skipped_done_before": len(finished),
            "failed": len(failures),
        },
        "workers": n_workers,
        "scheduler": scheduler_address,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "regions_per_minute": round(60 * len(ran) / seconds["regions"], 3) if ran and seconds["regions"] > 0 else None,
        "memory_limit_mb_per_worker": limits,
        "peak_memory_mb_per_worker": peaks,
        "task_options": public_options,
        "category_keys": record["category_keys"],
        "map_indicator": None if indicator is None else f"{indicator[0]}:{indicator[1]}",
        "indicators_cover": f"{len(rolled)} of {len(specs)} regions" if rollup else None,
        "per_region": [{k: v for k, v in r.items() if k not in ("error",)} for r in ran],
        "failures": failures,
    }
    write_json(out / "summary.json", summary)
    if progress:
        print(f"planner batch: {summary['regions']['done']} of {len(specs)} regions done, {len(failures)} failed "
              f"({seconds['total']:.1f} s); outputs in {out}", flush=True)
    return summary


def _run_regions(client, runner, task_name, todo, regions_dir, options, retries, progress, errors_log,
                 run_id=None) -> dict:
    """Submit one task per region (largest first) and collect results as they complete."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    config = _settings_snapshot()
    # Largest first (by input size): the long regions start early and do not trail at the end.
    order = sorted(todo, key=_size_guess, reverse=True)
    futures = {}
    for rank, spec in enumerate(order):
        fut = client.submit(
            _region_job, runner, spec, str(regions_dir), options, config, run_id,
            key=f"{task_name}-{rank}-{uuid.uuid4().hex[:8]}", retries=retries, priority=len(order) - rank,
            pure=False,
        )
        futures[fut] = spec
    results: dict[str, dict] = {}
    bar = tqdm(total=len(futures), desc=f"{task_name} regions", unit="region", disable=not progress)
    try:
        for fut in as_completed(futures):
            spec = futures[fut]
            try:
                results[spec.name] = fut.result()
            except Exception as err:  # noqa: BLE001 - a region's crash is its failure, the rest go on
                results[spec.name] = {"region": spec.name, "status": "failed", "error": _failure_text(err)}
                errors_log.append(f"{spec.name}:\n" + "".join(traceback.format_exception(err)))
            if results[spec.name]["status"] == "failed":
                # An earlier run's folder stays (it is not rolled up; its marker names that run).
                bar.write(f"failed: {spec.name}: {results[spec.name]['error']}")
            elif spec.cut_osm:  # done: its cut is not needed again (a resume skips the region)
                Path(spec.cut_osm).unlink(missing_ok=True)
            bar.update(1)
            fut.release()
    finally:
        bar.close()
    return results


def _batch_folder(out_dir: str | os.PathLike) -> Path:
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out_dir}: is a file; give a folder for the batch's outputs")
    if out.is_dir() and not is_planner_folder(out):
        raise InputError(f"--out {out_dir}: holds files planner did not write; give a new or empty folder, "
                         "or the folder of an earlier batch")
    return out


def _recorded_run(out: Path) -> dict | None:
    """What the last run into ``out`` recorded in its summary.json, or None."""
    try:
        record = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


# Options shown by their command-line names where these differ from --<key>.
_FLAGS = {"target_share": "--target", "map_html": "--map/--no-map"}


def _check_resume(previous: dict, current: dict) -> None:
    """Refuse to resume a run with options other than its own: its finished regions would be
    mixed with new ones in indicators.csv."""
    now = json.loads(json.dumps(current, default=str))
    pairs = [("task", previous.get("task"), now["task"]), ("osm", previous.get("osm"), now["osm"])]
    old_opts, new_opts = previous.get("task_options") or {}, now["task_options"] or {}
    keys = [k for k in new_opts if k in old_opts] + [k for k in new_opts if k not in old_opts]
    keys += [k for k in old_opts if k not in new_opts]
    for key in keys:
        if key == "categories" and previous.get("category_keys") and now.get("category_keys"):
            pairs.append((key, sorted(previous["category_keys"]), sorted(now["category_keys"])))
        else:
            pairs.append((key, old_opts.get(key), new_opts.get(key)))
    for key, old, new in pairs:
        if _comparable(old) != _comparable(new):
            flag = _FLAGS.get(key, f"--{key.replace('_', '-')}")
            raise InputError(f"--resume: {flag} {_shown(new)} differs from the run being resumed ({_shown(old)}); "
                             "give that run's options, or leave out --resume to run every region again")


def _comparable(value: Any) -> Any:
    if isinstance(value, list):  # thresholds or categories: the set matters, not the order given
        return sorted(map(str, value))
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value


def _shown(value: Any) -> str:
    if value is None:
        return "(not given)"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


#: Least memory a local worker may be given: below it a worker is restarted on any region.
min_worker_memory_bytes: int = 256 * 2**20


def _check_memory_limit(value: Any) -> None:
    """Memory per local worker as Dask reads it (bytes, "4GiB", a fraction ≤ 1, 0 = none, auto)."""
    from dask.utils import format_bytes, parse_bytes
    from distributed.system import MEMORY_LIMIT

    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return
    hint = "give memory per worker such as 4GiB or 4000MB, a fraction of this machine's memory such as 0.5, or auto"
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or (number is not None and not math.isfinite(number)):
        raise InputError(f"--memory-limit {value!r}: {hint}")
    if number is not None and 0 <= number <= 1:
        nbytes = number * MEMORY_LIMIT  # 0: no limit, as Dask reads it
        if number == 0:
            return
    elif number is not None:
        nbytes = number
    else:
        try:
            nbytes = parse_bytes(str(value))
        except (ValueError, TypeError):
            raise InputError(f"--memory-limit {value!r}: {hint}") from None
    if nbytes < min_worker_memory_bytes:
        raise InputError(f"--memory-limit {value!r}: below {format_bytes(min_worker_memory_bytes)} per worker; {hint}")
    if nbytes > MEMORY_LIMIT:
        raise InputError(f"--memory-limit {value!r}: above this machine's memory ({format_bytes(MEMORY_LIMIT)}); {hint}")


def _failure_text(err: BaseException) -> str:
    from distributed import KilledWorker

    if isinstance(err, KilledWorker):
        return ("its worker died on every attempt (out of memory? give workers more memory with "
                "memory_limit, or fewer workers per machine)")
    return _one_line(err)


def _size_guess(spec: RegionSpec) -> float:
    if spec.boundary is not None:
        return float(shapely.area(spec.boundary))  # deg² is fine for ranking
    try:
        return float(os.path.getsize(spec.osm))
    except OSError:
        return 0.0


@contextlib.contextmanager
def _connect(scheduler, workers, memory_limit) -> Iterator:
    """A client on the given scheduler or on a new LocalCluster (closed again at the end)."""
    import logging

    from distributed import Client, LocalCluster

    if scheduler is not None and hasattr(scheduler, "submit"):  # a Client the caller owns
        if workers:
            scheduler.wait_for_workers(workers)
        yield scheduler
        return
    if scheduler is not None:
        try:
            client = Client(str(scheduler), timeout="30s")
        except OSError as err:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({_one_line(err)}); "
                             "start one with `dask scheduler` or leave it out for a local cluster") from None
        try:
            if workers:
                client.wait_for_workers(workers)
            yield client
        finally:
            client.close()
        return
    n = int(workers) if workers is not None else int(os.cpu_count() or 1)
    if n < 1:
        raise InputError(f"--workers {workers}: give at least 1")
    cluster = LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, memory_limit=memory_limit,
        dashboard_address=":0",  # any free port: several batches (or users) on one machine
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _worker_memory(client, results: dict) -> tuple[dict, dict]:
    """Peak resident memory (MB) and memory limit (MB) per worker address."""
    peaks: dict[str, float] = {}
    for r in results.values():  # workers that died since still count
        if r.get("worker") and r.get("peak_rss_mb"):
            peaks[r["worker"]] = max(peaks.get(r["worker"], 0.0), r["peak_rss_mb"])
    with contextlib.suppress(Exception):
        for addr, mb in client.run(_peak_rss_mb).items():
            peaks[addr] = max(peaks.get(addr, 0.0), mb)
    limits = {}
    for addr, w in client.scheduler_info(n_workers=-1)["workers"].items():
        limits[addr] = round(w["memory_limit"] / 2**20, 1) if w.get("memory_limit") else None
    return dict(sorted(peaks.items())), limits


# ----------------------------------------------------------------------------------------------
# roll-up


def _region_indicators(region_dir: str, name: str) -> dict:
    """:func:`_indicator_rows` of a region folder written earlier (e.g. before a resume)."""
    folder = Path(region_dir)
    cov = pd.read_csv(folder / "coverage.csv", encoding="utf-8")
    homes = gpd.read_file(folder / "homes.gpkg", layer="homes")
    return _indicator_rows(name, cov, homes)


def _indicator_rows(name: str, coverage: pd.DataFrame, homes: gpd.GeoDataFrame) -> dict:
    """Counts behind one region's coverage (people within each threshold), and its outline."""
    totals = {"homes": float(len(homes)), "population": float(homes["population"].sum())}
    for g in ("elderly", "children", "disabled"):
        totals[g] = float(homes[g].sum()) if g in homes.columns else 0.0
    rows = []
    for r in coverage.to_dict("records"):
        # Rows per threshold, at each category's own target (minutes empty for a metre
        # target) and of the complete basic life circle per level.
        row = {"region": name, "category": r["category"], "name_zh": r["name_zh"], "name_en": r["name_en"],
               "level": r["level"] if isinstance(r.get("level"), str) else "",
               "threshold": r.get("threshold", "minutes"), "minutes": float(r["minutes"]),
               "target_m": float(r.get("target_m", np.nan)), "target_minutes": float(r["target_minutes"])}
        row["homes"] = int(totals["homes"])
        row["homes_within"] = int(np.rint(r["homes_share"] * totals["homes"]))
        row["population"] = totals["population"]
        row["population_within"] = totals["population"] - float(r["population_outside"])
        for g in ("elderly", "children", "disabled"):
            row[g] = totals[g]
            row[f"{g}_within"] = float(r[f"{g}_share"]) * totals[g]
        rows.append(row)
    outline = shapely.Point()
    if len(homes):
        # Regions given by their own file: the homes' outline stands for the region on the map.
        metric = homes.estimate_utm_crs() if homes.crs.is_geographic else homes.crs
        hull = homes.to_crs(metric).geometry.union_all().convex_hull.buffer(settings.grid_spacing_m)
        outline = gpd.GeoSeries([hull], crs=metric).to_crs(4326).iloc[0]
    return {"region": name, "rows": rows, "outline_wkb": shapely.to_wkb(outline)}


def indicators_table(rows_per_region: Iterable[list[dict]]) -> pd.DataFrame:
    """Population-weighted coverage per region, category and threshold, plus the whole set.

    The whole set's shares come from summed counts (Σ people within / Σ people), not from an
    average of the regions' shares, so a large county weighs what its population weighs.

    Returns
    -------
    pandas.DataFrame
        ``region`` (``"(all)"`` for the whole set), ``category``, ``name_zh``, ``name_en``,
        ``level``, ``threshold`` (``minutes`` or ``target``, as in ``coverage.csv``),
        ``minutes``, ``target_m``, ``target_minutes``, ``regions``, then for homes,
        population, elderly, children and disabled: the count, the count within, and the share.
    """
    frame = pd.DataFrame([row for rows in rows_per_region for row in rows])
    groups = ("homes", "population", "elderly", "children", "disabled")
    columns = ["region", "category", "name_zh", "name_en", "level", "threshold", "minutes", "target_m",
               "target_minutes", "regions"]
    for g in groups:
        columns += [g, f"{g}_within", f"{g}_share"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame["regions"] = 1
    keys = ["category", "name_zh", "name_en", "level", "threshold", "minutes", "target_m", "target_minutes"]
    whole = frame.groupby(keys, sort=False, as_index=False, dropna=False)[
        ["regions", *groups, *[f"{g}_within" for g in groups]]].sum()
    whole["region"] = ALL_REGIONS
    table = pd.concat([frame, whole], ignore_index=True)
    for g in groups:
        total = table[g].to_numpy(float)
        table[f"{g}_share"] = np.where(total > 0, table[f"{g}_within"].to_numpy(float) / np.where(total > 0, total, 1), 0.0)
    return table[columns]


def _parse_indicator(text: str | None, options: dict) -> tuple[str, int]:
    keys, targets, mins = options["_category_keys"], options["_category_targets"], options["minutes"]
    if not text:
        key = keys[0]
        target = targets[key]
        return key, int(target) if target in mins else max(mins)
    key, _, minute = str(text).partition(":")
    key = key.strip()
    if key not in keys:
        raise InputError(f"--map-indicator {text!r}: category {key!r} is not audited; use one of {', '.join(keys)}")
    if not minute.strip():
        # The category's target as minutes when it is a threshold (a metre target is not).
        return key, int(targets[key]) if targets[key] in mins else max(mins)
    try:
        m = int(minute)
    except ValueError:
        raise InputError(f"--map-indicator {text!r}: give category:minutes, e.g. {key}:15") from None
    if m not in mins:
        raise InputError(f"--map-indicator {text!r}: {m} min is not among --minutes {','.join(map(str, mins))}")
    return key, m


def _default_indicator(table: pd.DataFrame) -> tuple[str, int]:
    first = table.iloc[0]
    mins = table.loc[(table["category"] == first["category"]) & (table["threshold"] == "minutes"), "minutes"]
    target = float(first["target_minutes"])  # NaN for a metre target
    return str(first["category"]), int(target) if (mins == target).any() else int(mins.max())


def batch_map(
    table: pd.DataFrame,
    outlines: dict[str, Any],
    indicator: tuple[str, int],
    path: str | os.PathLike,
    failed: dict[str, Any] | None = None,
) -> Path:
    """Write an offline map of the regions coloured by one indicator's population share.

    Parameters
    ----------
    table : DataFrame
        From :func:`indicators_table`.
    outlines : dict
        Region name → polygon in WGS84.
    indicator : (category, minutes)
    path : path
        The HTML file to write.
    failed : dict, optional
        Failed regions' polygons, drawn grey.
    """
    import folium

    from planner import maps

    key, minutes = indicator
    table = table[table["threshold"] == "minutes"] if "threshold" in table.columns else table
    sel = table[(table["category"] == key) & (table["minutes"] == minutes) & (table["region"] != ALL_REGIONS)]
    sel = sel[sel["region"].isin(list(outlines))]
    whole = table[(table["category"] == key) & (table["minutes"] == minutes) & (table["region"] == ALL_REGIONS)]
    gdf = gpd.GeoDataFrame(
        {"region": sel["region"].to_numpy(),
         "share": [f"{v:.1%}" for v in sel["population_share"]],
         "population": [f"{v:,.0f}" for v in sel["population"]],
         "homes": sel["homes"].to_numpy()},
        geometry=[outlines[n] for n in sel["region"]], crs=4326,
    )
    colours = [_share_colour(v, p) for v, p in zip(sel["population_share"], sel["population"])]
    parts = [g for g in [*outlines.values(), *(failed or {}).values()] if g is not None and not g.is_empty]
    bounds = shapely.union_all(parts).bounds if parts else (73.0, 18.0, 135.0, 54.0)
    m = maps.base_map(bounds)
    name_zh = sel["name_zh"].iloc[0] if len(sel) else key
    name_en = sel["name_en"].iloc[0] if len(sel) else key
    maps.add_polygons(m, gdf, colours, name=f"{name_zh} ≤{minutes} min", tooltip_columns=["region", "share", "population", "homes"],
                      aliases={"region": "区域 region", "share": "人口覆盖率 population share", "population": "人口 population",
                               "homes": "住宅点 homes"}, fill_opacity=0.55, weight=1.0)
    if failed:
        fg = gpd.GeoDataFrame({"region": list(failed), "status": "failed 失败"}, geometry=list(failed.values()), crs=4326)
        maps.add_polygons(m, fg, maps.NO_FACILITY_COLOUR, name="失败 failed", tooltip_columns=["region", "status"],
                          fill_opacity=0.3, dash_array="4 4")
    subtitle = None
    if len(whole):
        w = whole.iloc[0]
        subtitle = (f"全部 all {int(w['regions'])} regions: {w['population_share']:.1%} of "
                    f"{w['population']:,.0f} people within {minutes} min")
    maps.add_title(m, f"{name_zh} {minutes} 分钟覆盖率 — {name_en} within {minutes} min", subtitle)
    items = [(c, label, "area") for _, c, label in _SHARE_BANDS] + [(maps.NO_FACILITY_COLOUR, "无住宅/失败 no homes / failed", "area")]
    maps.add_legend(m, "人口覆盖率 population share", items)
    folium.LayerControl(collapsed=False).add_to(m)
    return maps.save_map(m, path)


def _share_colour(share: float, population: float) -> str:
    from planner.maps import NO_FACILITY_COLOUR

    if not population > 0:
        return NO_FACILITY_COLOUR
    return next(c for lo, c, _ in _SHARE_BANDS if share >= lo)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_file(path, "w", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, index=False)


# ----------------------------------------------------------------------------------------------
# cutting regions out of one large extract


def _cut_shared_extracts(todo: list[RegionSpec], out: Path, options: dict, cut: bool | None, client,
                         progress: bool, task_name: str = "audit") -> list[RegionSpec]:
    """Cut the boundary regions of each large extract into small extracts, one pass per extract.

    Without this every region's task would read the whole province (minutes, and the whole
    province's arrays in memory, per region). A cut keeps everything that can matter inside
    the buffered boundary, so loading the cut and clipping it gives the same region as
    loading the whole file and clipping it, except for the UTM zone (see :func:`cut_extracts`).
    """
    groups: dict[str, list[RegionSpec]] = {}
    for spec in todo:
        if spec.boundary is None or spec.error or not os.path.isfile(spec.osm):
            continue
        if cut or (cut is None and os.path.getsize(spec.osm) >= cut_min_bytes):
            groups.setdefault(spec.osm, []).append(spec)
    buffer_m = _task_reach_m(task_name, options) if groups else None
    if buffer_m is None:  # a task that takes no boundary: its boundary regions fail with that reason
        return todo
    folder = out / "_extracts"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".*.tmp-*"):  # a cut pass that was interrupted
        stale.unlink(missing_ok=True)
    replaced: dict[str, RegionSpec] = {}
    futures = []
    for source, specs in groups.items():
        stat = os.stat(source)
        boxes, paths = {}, {}
        for spec in specs:
            box = _cut_box(spec.boundary, buffer_m)
            digest = hashlib.sha1(f"{source}|{stat.st_size}|{stat.st_mtime_ns}|{box}".encode()).hexdigest()[:16]
            path = folder / f"{digest}.osm.pbf"
            replaced[spec.name] = dataclasses.replace(spec, cut_osm=str(path))
            if not path.exists():  # a cut of an earlier, interrupted run is complete (renamed when done)
                boxes[spec.name], paths[spec.name] = box, str(path)
        if boxes:
            if progress:
                print(f"planner batch: cutting {len(boxes)} regions out of {source} (one pass over the file)", flush=True)
            futures.append(client.submit(cut_extracts, source, boxes, paths, pure=False,
                                         key=f"cut-{uuid.uuid4().hex[:8]}"))
    client.gather(futures)
    return [replaced.get(s.name, s) for s in todo]


def _task_reach_m(task_name: str, options: dict) -> float | None:
    """How far beyond a boundary the task's region is loaded (as its command does), or None
    for a task that takes no boundary."""
    from planner.sources import reach_m

    mode = options.get("mode") or "walk"
    if task_name == "villages":
        return None
    if task_name == "site":
        from planner.categories import load_categories

        minutes = options.get("minutes") or load_categories()[options["category"]].minutes
        return reach_m([minutes], mode)
    minutes = options.get("minutes")
    if isinstance(minutes, (int, float)) and not isinstance(minutes, bool):
        minutes = [minutes]
    return reach_m(minutes or settings.minutes, mode)


def _cut_box(boundary, buffer_m: float) -> tuple[float, float, float, float]:
    """WGS84 box around the boundary buffered by ``buffer_m``, with room to spare: the region
    is buffered later in its own UTM zone, which this box must contain whatever the zone."""
    from planner.sources import metric_crs

    centre = boundary.centroid
    crs = metric_crs(centre.x, centre.y)
    poly = gpd.GeoSeries([boundary], crs=4326).to_crs(crs).buffer(buffer_m * 1.1 + 500.0)
    minx, miny, maxx, maxy = poly.to_crs(4326).total_bounds
    pad = 0.005  # ≈ 500 m more
    return (round(float(minx) - pad, 6), round(float(miny) - pad, 6), round(float(maxx) + pad, 6), round(float(maxy) + pad, 6))


_AREA_RELATION_TYPES = ("multipolygon", "boundary")  # the relations libosmium assembles into areas
_CELL_DEG = 0.1


def cut_extracts(
    osm: str | os.PathLike,
    boxes: dict[str, tuple[float, float, float, float]],
    paths: dict[str, str | os.PathLike],
) -> dict[str, str]:
    """Cut one large OSM extract into one small extract per box, in three passes over the file.

    Each cut keeps every node inside its box (WGS84 ``(minlon, minlat, maxlon, maxlat)``),
    every way whose nodes' bounding box meets it, and every multipolygon/boundary relation
    whose member ways' bounding box meets it. Ways and relations that are not streets keep all
    their nodes and member ways (so buildings, land use, walls and areas have their whole
    outline); streets keep only their nodes inside the box, which is all a clip to a polygon
    inside the box uses. Loading a cut with ``load_region(..., boundary=poly)`` for a ``poly``
    inside the box therefore gives the region that loading the whole file would, except that
    the metric CRS is the UTM zone of the cut's streets rather than of the whole file's.

    Parameters
    ----------
    osm : path
        The large extract (.osm.pbf or .osm).
    boxes : dict
        Name → box.
    paths : dict
        Name → output path (``.osm.pbf``); written beside and renamed when complete.

    Returns
    -------
    dict
        Name → path written.
    """
    import osmium

    names = list(boxes)
    box = np.array([boxes[n] for n in names], float).reshape(-1, 4)
    cells = _cell_index(box)
    # Pass 1: members of area relations.
    rel_ways: dict[int, list[int]] = {}
    way_rels: dict[int, list[int]] = {}
    for rel in osmium.FileProcessor(str(osm), osmium.osm.RELATION):
        if rel.tags.get("type") in _AREA_RELATION_TYPES:
            ways = [m.ref for m in rel.members if m.type == "w"]
            rel_ways[rel.id] = ways
            for w in ways:
                way_rels.setdefault(w, []).append(rel.id)
    # Pass 2: which boxes each way meets; outside nodes that feature ways need.
    way_hits: dict[int, set[int]] = {}
    extra_nodes: dict[int, set[int]] = {}
    rel_box: dict[int, list[float]] = {}
    member_nodes: dict[int, list[int]] = {}
    for way in osmium.FileProcessor(str(osm), osmium.osm.NODE | osmium.osm.WAY).with_locations():
        if not way.is_way():
            continue
        refs, lon, lat = [], [], []
        for n in way.nodes:
            refs.append(n.ref)
            if n.location.valid():
                lon.append(n.location.lon)
                lat.append(n.location.lat)
        if not lon:
            continue
        wb = (min(lon), min(lat), max(lon), max(lat))
        if way.id in way_rels:
            member_nodes[way.id] = refs
            for r in way_rels[way.id]:
                rb = rel_box.setdefault(r, [math.inf, math.inf, -math.inf, -math.inf])
                rb[:] = [min(rb[0], wb[0]), min(rb[1], wb[1]), max(rb[2], wb[2]), max(rb[3], wb[3])]
        hits = _boxes_meeting(cells, box, wb)
        if not hits:
            continue
        way_hits[way.id] = set(hits)
        street = "highway" in way.tags and way.tags.get("area") != "yes"
        if not street:
            for i in hits:
                bx = box[i]
                for ref, n in zip(refs, way.nodes):
                    loc = n.location
                    if not (loc.valid() and bx[0] <= loc.lon <= bx[2] and bx[1] <= loc.lat <= bx[3]):
                        extra_nodes.setdefault(ref, set()).add(i)
    rel_hits: dict[int, set[int]] = {}
    for r, rb in rel_box.items():
        hits = _boxes_meeting(cells, box, tuple(rb))
        if not hits:
            continue
        rel_hits[r] = set(hits)
        for w in rel_ways[r]:
            if w in member_nodes:
                way_hits.setdefault(w, set()).update(hits)
                for ref in member_nodes[w]:
                    extra_nodes.setdefault(ref, set()).update(hits)
    # Pass 3: write each object to the cuts that keep it (file order is kept).
    tmp = {n: Path(paths[n]).with_name(f".{Path(paths[n]).name}.tmp-{uuid.uuid4().hex[:6]}.osm.pbf") for n in names}
    for p in tmp.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    writers = [osmium.SimpleWriter(str(tmp[n]), overwrite=True) for n in names]
    try:
        for obj in osmium.FileProcessor(str(osm)):
            if obj.is_node():
                loc = obj.location
                hits = set(_boxes_containing(cells, box, loc.lon, loc.lat)) if loc.valid() else set()
                hits |= extra_nodes.get(obj.id, set())
                for i in hits:
                    writers[i].add_node(obj)
            elif obj.is_way():
                for i in way_hits.get(obj.id, ()):
                    writers[i].add_way(obj)
            elif obj.is_relation():
                for i in rel_hits.get(obj.id, ()):
                    writers[i].add_relation(obj)
    except BaseException:
        for w in writers:
            with contextlib.suppress(Exception):
                w.close()
        for p in tmp.values():
            p.unlink(missing_ok=True)
        raise
    for w in writers:
        w.close()
    for n in names:
        os.replace(tmp[n], paths[n])
    return {n: str(paths[n]) for n in names}


def _cell_index(box: np.ndarray) -> dict[tuple[int, int], list[int]]:
    """Grid cells of ``_CELL_DEG`` degrees → indices of the boxes that touch them."""
    cells: dict[tuple[int, int], list[int]] = {}
    for i, (x0, y0, x1, y1) in enumerate(box):
        for cx in range(math.floor(x0 / _CELL_DEG), math.floor(x1 / _CELL_DEG) + 1):
            for cy in range(math.floor(y0 / _CELL_DEG), math.floor(y1 / _CELL_DEG) + 1):
                cells.setdefault((cx, cy), []).append(i)
    return cells


def _boxes_containing(cells: dict, box: np.ndarray, lon: float, lat: float) -> list[int]:
    cand = cells.get((math.floor(lon / _CELL_DEG), math.floor(lat / _CELL_DEG)), ())
    return [i for i in cand if box[i, 0] <= lon <= box[i, 2] and box[i, 1] <= lat <= box[i, 3]]


def _boxes_meeting(cells: dict, box: np.ndarray, b: tuple) -> list[int]:
    x0, y0, x1, y1 = b
    cand: set[int] = set()
    for cx in range(math.floor(x0 / _CELL_DEG), math.floor(x1 / _CELL_DEG) + 1):
        for cy in range(math.floor(y0 / _CELL_DEG), math.floor(y1 / _CELL_DEG) + 1):
            cand.update(cells.get((cx, cy), ()))
    return sorted(i for i in cand if box[i, 0] <= x1 and x0 <= box[i, 2] and box[i, 1] <= y1 and y0 <= box[i, 3])
