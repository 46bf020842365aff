"""Regions of one extract audited together: neighbouring regions cut from the same file with
the same options share one audit (loaded once with one buffer around their union), then the
result is split per region (:meth:`planner.audit.AuditResult.part`).

Why the split equals the single-region command within the thresholds: a region alone is loaded
with a buffer of the largest threshold's reach (:func:`planner.sources.reach_m`, with a 25 %
margin) and a trip of at most that threshold never leaves it (its straight-line length is at
most the distance walked). The group's network holds every street of each member's buffer, so
every path of at most the largest threshold is in both networks, and a home's time and
coverage up to that threshold are the same. Longer times can be shorter in the group, where
the network reaches further. Both are projected to the same UTM zone: a group only holds
regions whose cut boxes lie in one zone.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np

from planner import settings
from planner._errors import InputError
from planner._io import MARKER, remove_leftovers, replace_dir, scratch_name, write_json
from planner.batch.cluster import one_line, peak_rss_mb, worker_address
from planner.batch.regions import RegionSpec
from planner.batch.rollup import indicator_rows
from planner.batch.tasks import audit_arguments, name_extract


def share_groups(
    box: np.ndarray, cells: dict, cell_deg: float, max_nodes: float, max_regions: int
) -> list[list[int]]:
    """Group overlapping boxes (regions with their buffers) so that each group is audited once.

    Starting from the south-westernmost box not yet grouped, a group takes, one at a time, the
    overlapping box of the same UTM zone whose street nodes it already holds most of (then the
    largest overlap), while the street nodes of the union of its boxes stay at most
    ``max_nodes`` and it has fewer than ``max_regions`` members.

    Parameters
    ----------
    box : ndarray of shape (n, 4)
        WGS84 ``(minlon, minlat, maxlon, maxlat)`` per region (its boundary and buffer).
    cells : dict
        ``(i, j)`` → street nodes counted in the cell ``[i, i+1) × [j, j+1)`` of ``cell_deg``.
    cell_deg : float
        The cells' side in degrees.
    max_nodes : float
        Street nodes a group's union may hold (``settings.batch_share_max_nodes``).
    max_regions : int
        Members a group may have.

    Returns
    -------
    list of list of int
        Every box index once, in groups (a lone region is a group of one).
    """
    n = len(box)
    keys = np.array(list(cells), float).reshape(-1, 2)
    count = np.fromiter(cells.values(), float, len(cells))
    cx, cy = (keys[:, 0] + 0.5) * cell_deg, (keys[:, 1] + 0.5) * cell_deg
    cells_of = [
        frozenset(np.nonzero((x0 <= cx) & (cx <= x1) & (y0 <= cy) & (cy <= y1))[0].tolist())
        for x0, y0, x1, y1 in box
    ]

    def nodes(ids) -> float:
        return float(count[list(ids)].sum()) if ids else 0.0

    zone = [_utm_zone(b) for b in box]
    done = np.zeros(n, bool)
    groups = []
    for seed in sorted(range(n), key=lambda i: (box[i, 1], box[i, 0], i)):
        if done[seed]:
            continue
        done[seed] = True
        group, held = [seed], set(cells_of[seed])
        while zone[seed] is not None and len(group) < max_regions and nodes(held) <= max_nodes:
            best, best_key = None, None
            for c in range(n):
                if done[c] or zone[c] != zone[seed]:
                    continue
                overlap = sum(_overlap(box[c], box[m]) for m in group)
                if overlap <= 0:
                    continue
                total = nodes(held | cells_of[c])
                if total > max_nodes:
                    continue
                key = (nodes(cells_of[c]) - (total - nodes(held)), overlap, -c)
                if best_key is None or key > best_key:
                    best, best_key = c, key
            if best is None:
                break
            group.append(best)
            held |= cells_of[best]
            done[best] = True
        groups.append(sorted(group))
    return sorted(groups)


def _utm_zone(b) -> tuple[int, bool] | None:
    """The UTM zone (number, north) holding the whole box, or None across a zone's edge."""
    zones = {int(math.floor((lon + 180) / 6) % 60) + 1 for lon in (b[0], b[2])}
    north = {lat >= 0 for lat in (b[1], b[3])}
    return (zones.pop(), north.pop()) if len(zones) == 1 and len(north) == 1 else None


def _overlap(a, b) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def group_job(
    specs: list[RegionSpec], regions_dir: str, options: dict, config: dict, run_id: str | None = None
) -> list[dict]:
    """Audit a group of regions once on a worker, then write each region's folder.

    Each region's folder holds what :func:`planner.batch.tasks.run_audit_region` would write
    (:meth:`planner.audit.AuditResult.part` of the group's audit), with ``shared_audit`` in its
    ``summary.json``, and is moved into place when complete, as :func:`region_job` does. Bad
    input of the group (:class:`InputError`) fails each of its regions with the one-line
    reason; a region left without homes fails alone. Other errors are raised (Dask retries
    the group).

    Returns
    -------
    list of dict
        Per region what :func:`planner.batch.tasks.region_job` returns; ``seconds`` and
        ``cpu_seconds`` are the region's own writing plus an equal share of the group's audit.
    """
    from planner.audit import run_audit
    from planner.sources import reach_m

    started, cpu_started = time.perf_counter(), time.process_time()
    for key, value in config.items():
        setattr(settings, key, value)
    settings.progress = False
    root = Path(regions_dir)
    root.mkdir(parents=True, exist_ok=True)
    names = [s.name for s in specs]
    for name in names:
        remove_leftovers(root, name)
    first = specs[0]
    info = [{"region": s.name, "worker": worker_address(), "shared_audit": names[0]} for s in specs]
    try:
        result = run_audit(
            first.source,
            None,
            boundary=gpd.GeoSeries([s.boundary for s in specs], crs=4326),
            name=first.name,
            **audit_arguments(first, options),
        )
    except InputError as err:
        message = one_line(err)
        if first.cut_osm:
            message = message.replace(first.cut_osm, f"{first.osm} (cut to regions {', '.join(names)})")
        return [{**i, "status": "failed", "error": message} for i in info]
    buffer_m = reach_m(result.minutes, options["mode"])
    group = {
        "group": names[0],
        "regions": names,
        "network": {"nodes": int(result.network.n_nodes), "edges": int(result.network.n_edges)},
        "homes": len(result.homes),
        "exact_up_to_minutes": max(result.minutes),
    }
    audit_wall = time.perf_counter() - started
    audit_cpu = time.process_time() - cpu_started
    for spec, facts in zip(specs, info, strict=True):
        t, cpu = time.perf_counter(), time.process_time()
        facts.update(_write_part(result, spec, root, options, buffer_m, group, run_id))
        facts["seconds"] = round(time.perf_counter() - t + audit_wall / len(specs), 3)
        facts["cpu_seconds"] = round(time.process_time() - cpu + audit_cpu / len(specs), 3)
        facts["peak_rss_mb"] = peak_rss_mb()
    return info


def _write_part(
    result, spec: RegionSpec, root: Path, options: dict, buffer_m: float, group: dict, run_id
) -> dict:
    """Write one region of a shared audit into ``root/<name>`` (atomically); its facts."""
    work = root / scratch_name(spec.name, "partial")
    try:
        part = result.part(spec.boundary, buffer_m, spec.name)
        if len(part.homes) == 0:  # the text a lone region fails with
            raise InputError(
                f"{spec.source}: no homes inside the boundary; check the boundary or give --homes"
            )
        part.write(work, map_html=options["map_html"], out_coords=options.get("out_coords"))
        summary_path = work / "summary.json"
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        summary["shared_audit"] = {
            **group,
            "note": (
                "audited together with its neighbours on one network: times and coverage up to "
                f"{group['exact_up_to_minutes']} minutes equal the region audited alone; longer "
                "times may be shorter (the shared network reaches further)"
            ),
        }
        write_json(summary_path, summary)
        if spec.cut_osm:
            name_extract(summary_path, spec)
        write_json(work / MARKER, {"written_by": "planner batch", "batch_run": run_id, "region": spec.name})
        replace_dir(work, root / spec.name)
    except InputError as err:
        shutil.rmtree(work, ignore_errors=True)
        message = one_line(err)
        if spec.cut_osm:
            message = message.replace(spec.cut_osm, f"{spec.osm} (cut to region {spec.name})")
        return {"status": "failed", "error": message}
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    facts: dict[str, Any] = {
        "status": "done",
        "homes": len(part.homes),
        "nodes": int(part.network.n_nodes),
        "population": float(part.homes["population"].sum()),
        "_indicators": indicator_rows(spec.name, part.coverage, part.homes),
    }
    return facts
