"""Isochrones: the area within a time (or a network distance) of a sweep's sources.

A sweep gives every network node its cost to the nearest source. The streets reached are the
segments whose near end is within the limit, cut where the limit runs out; the isochrone is
the set of points within ``settings.isochrone_buffer_m`` of those pieces. It is drawn on a
raster of ``settings.isochrone_cell_m`` cells: a cell is in when its centre lies within the
buffer of a piece, found row by row as the interval where each piece's buffer (a stadium)
crosses the row of cell centres, then polygonised (``rasterio.features.shapes``) and
simplified. Cost is linear in the reached pieces and in the cells of their extent, where a
union of buffered pieces grows faster; the outline stays within half a cell's diagonal (plus
the simplification tolerance) of the exact buffer, and the area within a fraction of a
percent of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.features
import shapely
from tqdm import tqdm

from planner import settings
from planner._errors import InputError
from planner.categories import Category
from planner.network import Network, geometry_access

if TYPE_CHECKING:
    from planner.audit import AuditResult

# Pieces per chunk when filling the raster, and cells per band of rows filled at once: they
# bound the memory of the row intervals and of the running sums, whatever the city's size.
_CHUNK_PIECES = 50_000
_BAND_CELLS = 2_000_000


def isochrone_polygons(
    net: Network,
    node_time_s: np.ndarray,
    minutes: Sequence[int],
    category: str | None = None,
    buffer_m: float | None = None,
) -> gpd.GeoDataFrame:
    """Areas within each threshold of the sweep's sources, as polygons.

    Every street segment reachable within the time is kept whole, and a segment whose far
    end is out of reach is cut where the time runs out; the area within ``buffer_m``
    (``settings.isochrone_buffer_m``) of the kept pieces is the isochrone. This follows the
    street network, unlike a convex hull of reached nodes.
    """
    buf = settings.isochrone_buffer_m if buffer_m is None else buffer_m
    geoms, mins = [], []
    for m in sorted(minutes):
        poly = reach_polygon(net, node_time_s, net.time_s, m * 60.0, buf)
        if poly is None:
            continue
        geoms.append(poly)
        mins.append(int(m) if float(m).is_integer() else float(m))
    return gpd.GeoDataFrame(
        {"category": [category] * len(geoms), "minutes": mins}, geometry=geoms, crs=net.crs
    )


def target_isochrone(net: Network, node_dist_m: np.ndarray, cat: Category) -> gpd.GeoDataFrame:
    """The area within a metre target along the network (``minutes``: its walking time)."""
    poly = reach_polygon(net, node_dist_m, net.length_m, float(cat.target_m), settings.isochrone_buffer_m)
    geoms = [] if poly is None else [poly]
    return gpd.GeoDataFrame(
        {
            "category": [cat.key] * len(geoms),
            "minutes": [cat.minutes] * len(geoms),
            "target_m": [cat.target_m] * len(geoms),
        },
        geometry=geoms,
        crs=net.crs,
    )


def category_isochrones(
    net: Network,
    cats: Sequence[Category],
    minutes: Sequence[int],
    node_time: dict,
    node_dist: dict,
    with_isochrones: bool | str,
    show: bool = False,
) -> gpd.GeoDataFrame | None:
    """Each category's own target by default; ``"all"`` draws every threshold too.

    On a large network the categories are drawn in parallel processes
    (``settings.sweep_workers``, as the sweeps), each sending back its polygons.
    """
    jobs: list[tuple[Category, tuple]] = []
    for c in cats:
        mins = [m for m in minutes if m != c.minutes] if with_isochrones == "all" else []
        if c.unit == "min":
            mins = sorted(set(mins) | {c.minutes})
        elif len(node_dist.get(c.key, ())):
            jobs.append((c, ()))
        if mins:
            jobs.append((c, tuple(mins)))
    if not jobs:
        return None
    parts = list(
        tqdm(
            _draw_all(net, jobs, node_time, node_dist),
            total=len(jobs),
            desc="isochrones",
            unit="layer",
            disable=not show,
            leave=False,
        )
    )
    return pd.concat(parts, ignore_index=True)


def _draw_all(net: Network, jobs: list, node_time: dict, node_dist: dict):
    """Yield each job's isochrones, in order: in forked workers that inherit the network and
    the sweeps' times when the work is large enough to pay for them."""
    import multiprocessing as mp
    import os

    state = (net, node_time, node_dist)
    workers = min(settings.sweep_workers or os.cpu_count() or 1, len(jobs))
    big = net.n_nodes * len(jobs) >= settings.parallel_min_node_sweeps
    # A daemonic process (a Dask worker running a batch region) may not start children.
    if workers <= 1 or not big or "fork" not in mp.get_all_start_methods() or mp.current_process().daemon:
        for job in jobs:
            yield _draw(state, job)
        return
    from concurrent.futures import ProcessPoolExecutor

    context = mp.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=state) as pool:
        yield from pool.map(_worker_draw, jobs)


_WORKER_STATE: tuple | None = None


def _init_worker(*state) -> None:
    global _WORKER_STATE
    _WORKER_STATE = state


def _worker_draw(job: tuple) -> gpd.GeoDataFrame:
    return _draw(_WORKER_STATE, job)


def _draw(state: tuple, job: tuple) -> gpd.GeoDataFrame:
    """One job: a category's target by network distance (no minutes) or its time thresholds."""
    net, node_time, node_dist = state
    cat, mins = job
    if not mins:
        return target_isochrone(net, node_dist[cat.key], cat)
    return isochrone_polygons(net, node_time[cat.key], mins, category=cat.key)


def facility_isochrones(
    result: AuditResult, facility_ids: Iterable[str], minutes: Sequence[int] | None = None
) -> gpd.GeoDataFrame:
    """Isochrones of chosen facilities, one set per facility (``facility_id``, ``minutes``)."""
    from planner.network import sweep

    minutes = tuple(minutes or result.minutes)
    fac = result.facilities.drop_duplicates("facility_id").set_index("facility_id", drop=False)
    parts = []
    for fid in facility_ids:
        if fid not in fac.index:
            raise InputError(f"facility {fid!r}: not among the audit's facilities")
        acc = geometry_access(result.network, np.array([fac.loc[fid, "geometry"]], dtype=object))
        cost, _ = sweep(result.network, acc, "time", limit=max(minutes) * 60.0)
        part = isochrone_polygons(result.network, cost, minutes, category=fac.loc[fid, "category"])
        part.insert(0, "facility_id", fid)
        parts.append(part)
    return (
        pd.concat(parts, ignore_index=True)
        if parts
        else gpd.GeoDataFrame(
            {"facility_id": [], "category": [], "minutes": []}, geometry=[], crs=result.network.crs
        )
    )


def reach_pieces(
    net: Network, node_cost: np.ndarray, edge_cost: np.ndarray, limit: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Street pieces within ``limit`` of the sweep's sources: start and end coordinates
    (``ax, ay, bx, by``), a segment whose far end is out of reach cut where the limit runs out."""
    ta, tb = node_cost[net.u], node_cost[net.v]
    # A segment reached at both ends appears in both directions: keep it once.
    reach = (ta <= limit) & ~((tb <= limit) & (net.u > net.v))
    u, v = net.u[reach], net.v[reach]
    frac = np.clip((limit - ta[reach]) / np.maximum(edge_cost[reach], 1e-9), 0.0, 1.0)
    ax, ay = net.x[u], net.y[u]
    return ax, ay, ax + (net.x[v] - ax) * frac, ay + (net.y[v] - ay) * frac


def reach_polygon(
    net: Network,
    node_cost: np.ndarray,
    edge_cost: np.ndarray,
    limit: float,
    buffer_m: float,
    cell_m: float | None = None,
):
    """The area within ``buffer_m`` of the street pieces within ``limit`` of the sweep's
    sources (a Polygon or MultiPolygon in the network's CRS), or None when nothing is reached.

    ``cell_m`` (``settings.isochrone_cell_m``): the raster's cell size; the outline is
    simplified by half of it (more would cut the staircase's outer corners and grow the area).
    """
    cell = settings.isochrone_cell_m if cell_m is None else float(cell_m)
    ax, ay, bx, by = reach_pieces(net, node_cost, edge_cost, limit)
    if not len(ax):
        return None
    mask, transform = buffer_mask(ax, ay, bx, by, buffer_m, cell)
    return mask_polygon(mask, transform, simplify_m=0.5 * cell)


def buffer_mask(
    ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray, buffer_m: float, cell_m: float
) -> tuple[np.ndarray, rasterio.Affine]:
    """Cells whose centre is within ``buffer_m`` of a segment (a, b), on a grid aligned to
    multiples of ``cell_m``; returns the boolean mask (rows north to south) and its transform."""
    pad = buffer_m + cell_m
    x0 = np.floor((min(ax.min(), bx.min()) - pad) / cell_m) * cell_m
    y0 = np.floor((min(ay.min(), by.min()) - pad) / cell_m) * cell_m
    x1 = np.ceil((max(ax.max(), bx.max()) + pad) / cell_m) * cell_m
    y1 = np.ceil((max(ay.max(), by.max()) + pad) / cell_m) * cell_m
    width, height = round((x1 - x0) / cell_m), round((y1 - y0) / cell_m)
    mask = np.zeros((height, width), bool)
    # Pieces sorted north to south and taken in chunks: each chunk fills a few bands of rows.
    order = np.argsort(-np.maximum(ay, by), kind="stable")
    for start in range(0, len(order), _CHUNK_PIECES):
        i = order[start : start + _CHUNK_PIECES]
        row, c0, c1 = _row_intervals(ax[i], ay[i], bx[i], by[i], buffer_m, x0, y1, cell_m)
        # Bands of rows of at most _BAND_CELLS cells, only where intervals are.
        band_rows = max(1, _BAND_CELLS // (width + 1))
        band = row // band_rows
        order_b = np.argsort(band, kind="stable")
        row, c0, c1, band = row[order_b], c0[order_b], c1[order_b], band[order_b]
        bands, first = np.unique(band, return_index=True)
        for b, f, e in zip(bands.tolist(), first.tolist(), [*first[1:].tolist(), len(band)], strict=True):
            _fill_rows(mask, row[f:e], c0[f:e], c1[f:e], b * band_rows, min((b + 1) * band_rows, height))
    return mask, rasterio.Affine(cell_m, 0.0, x0, 0.0, -cell_m, y1)


def _fill_rows(mask: np.ndarray, row, c0, c1, lo: int, hi: int) -> None:
    """Set ``mask[row, c0..c1]`` for every interval, rows ``lo`` to ``hi``: starts +1, ends -1
    and a running sum along each row (cells covered by any interval)."""
    stride = mask.shape[1] + 1
    flat = np.bincount((row - lo) * stride + c0, minlength=(hi - lo) * stride)
    flat -= np.bincount((row - lo) * stride + c1 + 1, minlength=(hi - lo) * stride)
    mask[lo:hi] |= np.cumsum(flat.reshape(hi - lo, stride)[:, :-1], axis=1) > 0


def _row_intervals(ax, ay, bx, by, buf: float, x0: float, y1: float, cell: float):
    """Per piece and row of cell centres it crosses, the first and last column whose centre is
    within ``buf`` of the piece: (row, first column, last column)."""
    # Rows whose centre y = y1 - (row + 0.5) * cell lies within buf of the piece's y range.
    first = np.ceil((y1 - (np.maximum(ay, by) + buf)) / cell - 0.5).astype(np.int64)
    last = np.floor((y1 - (np.minimum(ay, by) - buf)) / cell - 0.5).astype(np.int64)
    n = np.maximum(last - first + 1, 0)
    seg = np.repeat(np.arange(len(ax)), n)
    row = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n) + first[seg]
    yc = y1 - (row + 0.5) * cell
    pax, pay, dx, dy = ax[seg], ay[seg], (bx - ax)[seg], (by - ay)[seg]
    # The buffer of a segment is convex (a stadium): its crossing with a row is one interval,
    # the hull of the crossings of the two end discs and of the strip between them.
    lo, hi = np.full(len(seg), np.inf), np.full(len(seg), -np.inf)
    for cx, cy in ((pax, pay), (pax + dx, pay + dy)):
        h2 = buf * buf - (yc - cy) ** 2
        half = np.sqrt(np.maximum(h2, 0.0))
        lo = np.where(h2 >= 0, np.minimum(lo, cx - half), lo)
        hi = np.where(h2 >= 0, np.maximum(hi, cx + half), hi)
    length = np.hypot(dx, dy)
    ok = length > 0
    ux = np.divide(dx, length, out=np.zeros_like(dx), where=ok)
    uy = np.divide(dy, length, out=np.zeros_like(dy), where=ok)
    # Strip: |normal · (p - a)| <= buf and 0 <= direction · (p - a) <= length, linear in x.
    nl, nr = _linear_interval(-uy, uy * pax + ux * (yc - pay), -buf, buf)
    dl, dr = _linear_interval(ux, -ux * pax + uy * (yc - pay), 0.0, length)
    sl, sr = np.maximum(nl, dl), np.minimum(nr, dr)
    strip = ok & (sl <= sr)
    lo, hi = np.where(strip, np.minimum(lo, sl), lo), np.where(strip, np.maximum(hi, sr), hi)
    # Columns whose centre x = x0 + (col + 0.5) * cell lies in [lo, hi].
    c0 = np.ceil((lo - x0) / cell - 0.5)
    c1 = np.floor((hi - x0) / cell - 0.5)
    keep = np.isfinite(lo) & (c1 >= c0)
    return row[keep], c0[keep].astype(np.int64), c1[keep].astype(np.int64)


def _linear_interval(coef, const, lo, hi):
    """The x with ``lo <= coef * x + const <= hi``, as (low, high); empty when low > high."""
    zero = coef == 0
    safe = np.where(zero, 1.0, coef)
    a, b = (lo - const) / safe, (hi - const) / safe
    low, high = np.where(coef > 0, a, b), np.where(coef > 0, b, a)
    inside = (const >= lo) & (const <= hi)
    low = np.where(zero, np.where(inside, -np.inf, np.inf), low)
    high = np.where(zero, np.where(inside, np.inf, -np.inf), high)
    return low, high


def mask_polygon(mask: np.ndarray, transform, simplify_m: float = 0.0):
    """The cells of a boolean mask as one (Multi)Polygon, each part's outline simplified by
    ``simplify_m`` (Douglas–Peucker, without the topology checks whose cost grows faster than
    the outline; a part that it would make invalid keeps its cell outline)."""
    if not mask.any():
        return None
    shapes = rasterio.features.shapes(mask.view(np.uint8), mask=mask, transform=transform, connectivity=4)
    parts = np.array([shapely.geometry.shape(g) for g, _ in shapes], dtype=object)
    if simplify_m > 0:
        light = shapely.simplify(parts, simplify_m, preserve_topology=False)
        good = shapely.is_valid(light) & ~shapely.is_empty(light)
        parts = np.where(good, light, parts)
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(list(parts))
