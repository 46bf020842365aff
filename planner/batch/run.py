"""Running a batch: the regions on the cluster, resume, the summary."""

from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from planner._errors import InputError
from planner._io import (
    MARKER,
    is_planner_folder,
    remove_leftovers,
    terminate_as_exit,
    write_json,
)
from planner.batch.cluster import check_memory_limit, connect, failure_text, worker_memory
from planner.batch.extracts import cut_shared_extracts
from planner.batch.regions import read_regions, size_guess
from planner.batch.rollup import (
    gather_indicators,
    parse_indicator,
    write_rollup,
)
from planner.batch.shared import group_job
from planner.batch.tasks import batch_run_of, check_options, region_job, settings_snapshot, task_function


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
    printable: bool = False,
    share: bool = True,
) -> dict:  # size: a numpy docstring of 16 parameters; the body is one line per step of the run
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
        Print the dashboard link and a progress bar over regions (a local cluster starts
        Dask's dashboard only then).
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
        several regions share the extract, or it is at least :data:`cut_min_bytes`).
    printable : bool
        Also write each region's printable maps ``map.png`` and ``map.pdf`` (off by default:
        they cost more than a small region's audit; ``map.html`` and every table are written).
    share : bool
        Audit neighbouring regions cut from the same extract with the same options together,
        once per group, and split the result per region (:mod:`planner.batch.shared`): times
        and coverage up to the largest threshold are those of each region alone; longer times
        may be shorter. Not with a population raster or table. False audits every region alone.

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
    runner = task_function(task)
    task_name = task if isinstance(task, str) else getattr(task, "__name__", "custom")
    options = check_options(task, task_options)
    if scheduler is None:
        check_memory_limit(memory_limit)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise InputError(f"--workers {workers!r}: give a whole number of workers, at least 1")
    indicator = parse_indicator(map_indicator, options) if task == "audit" else None
    # Tasks that write the audit's files (coverage.csv, homes.gpkg) get the roll-up and map.
    rollup = bool(getattr(runner, "writes_audit_outputs", False))
    specs = read_regions(regions, osm=osm, coords=options.get("coords"), crs=options.get("crs"))
    out = batch_folder(out_dir)
    public_options = {k: v for k, v in options.items() if not k.startswith("_")}
    record = {
        "task": task_name,
        "osm": str(Path(osm).expanduser().resolve()) if osm else None,
        "task_options": public_options,
        "category_keys": options.get("_category_keys"),
        "printable": bool(printable),
        "share": bool(share),
    }
    previous = recorded_run(out) if resume else None
    if previous is not None and isinstance(task, str):  # a callable's options are its own business
        check_resume(previous, record)
    run_id = (previous or {}).get("run_id") or uuid.uuid4().hex[:12]
    regions_dir = out / "regions"
    finished = {
        s.name
        for s in specs
        if resume
        and (regions_dir / s.name / "summary.json").exists()
        and batch_run_of(regions_dir / s.name) == run_id
    }
    todo = [s for s in specs if s.name not in finished]
    seconds: dict[str, float] = {}
    results: dict[str, dict] = {}
    errors_log: list[str] = []
    with terminate_as_exit(), connect(scheduler, workers, memory_limit, dashboard=progress) as client:
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
            print(
                f"planner batch: {len(specs)} regions ({len(finished)} done already), {len(todo)} to run "
                f"on {n_workers} workers; dashboard {client.dashboard_link}",
                flush=True,
            )
        t = time.perf_counter()
        todo, shared = cut_shared_extracts(
            todo, out, options, cut, client, progress, task_name, share=share, workers=n_workers
        )
        seconds["cut"] = time.perf_counter() - t
        t = time.perf_counter()
        results = run_regions(
            client,
            runner,
            task_name,
            todo,
            regions_dir,
            options,
            retries,
            progress,
            errors_log,
            run_id,
            printable=printable,
            shared=shared,
        )
        seconds["regions"] = time.perf_counter() - t
        done_names = [
            s.name for s in specs if s.name in finished or results.get(s.name, {}).get("status") == "done"
        ]
        t = time.perf_counter()
        rolled = gather_indicators(client, results, done_names, regions_dir) if rollup else []
        seconds["rollup_read"] = time.perf_counter() - t
        peaks, limits = worker_memory(client, results)
    # Cuts are kept for failed regions only (a resume reuses them); a group's cut that no failed
    # region needs, or one an earlier run grouped otherwise, is removed.
    needed = {s.cut_osm for s in todo if results.get(s.name, {}).get("status") == "failed"}
    for stale in (out / "_extracts").glob("*.osm.pbf"):
        if str(stale) not in needed:
            stale.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # the cuts of finished regions are gone; so is the folder then
        (out / "_extracts").rmdir()
    t = time.perf_counter()
    failures = [
        {"region": s.name, "osm": s.osm, "error": results[s.name]["error"]}
        for s in specs
        if results.get(s.name, {}).get("status") == "failed"
    ]
    indicator = write_rollup(out, specs, failures, errors_log, rolled if rollup else None, indicator)
    remove_leftovers(regions_dir)  # of workers that were still exiting when the run started
    seconds["rollup"] = time.perf_counter() - t + seconds.pop("rollup_read")
    seconds["total"] = time.perf_counter() - started
    ran = [results[s.name] for s in todo if s.name in results]
    summary = _summary(
        run_id,
        record,
        specs,
        done_names,
        ran,
        finished,
        failures,
        seconds,
        rolled if rollup else None,
        indicator,
        n_workers=n_workers,
        scheduler=scheduler_address,
        limits=limits,
        peaks=peaks,
        shared=shared,
    )
    write_json(out / "summary.json", summary)
    if progress:
        print(
            f"planner batch: {summary['regions']['done']} of {len(specs)} regions done, {len(failures)} "
            f"failed ({seconds['total']:.1f} s); outputs in {out}",
            flush=True,
        )
    return summary


def _summary(
    run_id: str,
    record: dict,
    specs: list,
    done_names: list,
    ran: list,
    finished: set,
    failures: list,
    seconds: dict,
    rolled: list | None,
    indicator,
    *,
    n_workers: int,
    scheduler,
    limits: dict,
    peaks: dict,
    shared: list,
) -> dict:
    """What ``summary.json`` holds when a run ends (``rolled`` None: a task without roll-up)."""
    return {
        "status": "done",
        "run_id": run_id,
        "task": record["task"],
        "osm": record["osm"],
        "regions": {
            "total": len(specs),
            "done": len(done_names),
            "run": len(ran),
            "skipped_done_before": len(finished),
            "failed": len(failures),
        },
        "workers": n_workers,
        "scheduler": scheduler,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "regions_per_minute": round(60 * len(ran) / seconds["regions"], 3)
        if ran and seconds["regions"] > 0
        else None,
        "memory_limit_mb_per_worker": limits,
        "peak_memory_mb_per_worker": peaks,
        "task_options": record["task_options"],
        "category_keys": record["category_keys"],
        "printable": record["printable"],
        "share": record["share"],
        "shared_audits": [g for g in shared if len(g) > 1],
        "map_indicator": None if indicator is None else f"{indicator[0]}:{indicator[1]}",
        "indicators_cover": None if rolled is None else f"{len(rolled)} of {len(specs)} regions",
        "per_region": [{k: v for k, v in r.items() if k not in ("error",)} for r in ran],
        "failures": failures,
    }


def run_regions(
    client,
    runner,
    task_name,
    todo,
    regions_dir,
    options,
    retries,
    progress,
    errors_log,
    run_id=None,
    *,
    printable: bool = False,
    shared: list[list[str]] | None = None,
) -> dict:
    """Submit one task per region, or per group of regions sharing an audit (``shared``: their
    names), largest first, and collect results as they complete."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    config = {**settings_snapshot(), "map_printable": bool(printable)}
    by_name = {s.name: s for s in todo}
    in_group = {n for g in shared or () for n in g}
    jobs = [[by_name[n] for n in g] for g in shared or ()] + [[s] for s in todo if s.name not in in_group]
    # Largest first (by input size): the long regions start early and do not trail at the end.
    jobs.sort(key=lambda specs: sum(map(size_guess, specs)), reverse=True)
    futures = {}
    for rank, specs in enumerate(jobs):
        if len(specs) > 1:
            args = (group_job, specs, str(regions_dir), options, config, run_id)
        else:
            args = (region_job, runner, specs[0], str(regions_dir), options, config, run_id)
        fut = client.submit(
            *args,
            key=f"{task_name}-{rank}-{uuid.uuid4().hex[:8]}",
            retries=retries,
            priority=len(jobs) - rank,
            pure=False,
        )
        futures[fut] = specs
    results: dict[str, dict] = {}
    bar = tqdm(total=len(todo), desc=f"{task_name} regions", unit="region", disable=not progress)
    try:
        for fut in as_completed(futures):
            specs = futures[fut]
            try:
                got = fut.result()
                found = got if isinstance(got, list) else [got]
            except Exception as err:  # noqa: BLE001 - a region's crash is its failure, the rest go on
                found = [{"region": s.name, "status": "failed", "error": failure_text(err)} for s in specs]
                errors_log.append(
                    f"{', '.join(s.name for s in specs)}:\n" + "".join(traceback.format_exception(err))
                )
            for spec, info in zip(specs, found, strict=True):
                results[spec.name] = info
                if info["status"] == "failed":
                    # An earlier run's folder stays (it is not rolled up; its marker names that run).
                    bar.write(f"failed: {spec.name}: {info['error']}")
            cuts = {s.cut_osm for s in specs if s.cut_osm}
            if all(results[s.name]["status"] == "done" for s in specs):
                for cut in cuts:  # not needed again (a resume skips the regions)
                    Path(cut).unlink(missing_ok=True)
            bar.update(len(specs))
            fut.release()
    finally:
        bar.close()
    return results


def batch_folder(out_dir: str | os.PathLike) -> Path:
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out_dir}: is a file; give a folder for the batch's outputs")
    if out.is_dir() and not is_planner_folder(out):
        raise InputError(
            f"--out {out_dir}: holds files planner did not write; give a new or empty folder, "
            "or the folder of an earlier batch"
        )
    return out


def recorded_run(out: Path) -> dict | None:
    """What the last run into ``out`` recorded in its summary.json, or None."""
    try:
        record = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


# Options shown by their command-line names where these differ from --<key>.
_FLAGS = {"target_share": "--target", "map_html": "--map/--no-map"}


def check_resume(previous: dict, current: dict) -> None:
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
            raise InputError(
                f"--resume: {flag} {_shown(new)} differs from the run being resumed ({_shown(old)}); "
                "give that run's options, or leave out --resume to run every region again"
            )


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
