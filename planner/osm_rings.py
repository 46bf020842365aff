"""Areas of closed OSM ways built from their node locations, as libosmium's assembler builds them.

A closed way whose ring is simple makes one polygon whose form libosmium fixes (libosmium
2.23, ``include/osmium/area``):

- ``multipolygon_manager.hpp`` ``MultipolygonManager::after_way``: an area only for a way of
  more than three nodes whose first and last nodes have the same location, not tagged
  ``area=no``, with a tag; ``assembler.hpp`` ``Assembler::operator()``: no area at all if a
  node has no valid location.
- ``detail/segment_list.hpp`` ``extract_segments_from_way_impl``: consecutive nodes with the
  same location make no segment.
- ``detail/basic_assembler.hpp`` ``create_locations_list`` sorts the segments' ends by
  location (x, then y) and ``create_rings_simple_case`` starts the ring at the first of them,
  the smallest (x, y) vertex; ``add_new_ring`` ends with ``ProtoRing::fix_direction``
  (``detail/proto_ring.hpp``), which reverses an outer ring unless the sum of its segments'
  determinants is positive (counter-clockwise with x = lon, y = lat); reversing keeps the start.

Any other closed way (a self-touching or self-crossing ring, spikes, fewer than three distinct
locations) is "hard": :func:`assemble_ways` hands it to libosmium itself.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

#: libosmium's fixed-point coordinates: 1e-7 degrees; a location outside these is unset.
FIX = 10_000_000
#: Fixed-point value of an unset coordinate (libosmium's ``undefined_coordinate``).
UNSET = 2_147_483_647

#: Nodes of the ways handled at once by :func:`way_polygons`.
_BATCH_NODES = 131_072
#: A ring's extent in fixed point below which the integer tests cannot overflow int64.
_EXTENT_MAX = 2**31 - 1


@dataclass
class WayAreas:
    """Which ways make an area, and the areas, as libosmium's assembler makes them.

    Attributes
    ----------
    area : numpy.ndarray of bool
        Per way: libosmium builds a polygon of it.
    hard : numpy.ndarray of bool
        Per way: not a plain simple ring, left for :func:`assemble_ways` to decide.
    empty : numpy.ndarray of bool
        Per way: libosmium makes an empty area (its rings failed to assemble).
    coords : numpy.ndarray
        The polygons of the ``area`` ways in way order as shapely ragged arrays of
        ``shapely.GeometryType.MULTIPOLYGON`` (as libosmium's WKB): lon/lat coordinates
        (fixed point / 1e7) ...
    offsets : tuple of numpy.ndarray
        ... and the offsets of rings, polygons and multipolygons for
        ``shapely.from_ragged_array``.
    """

    area: np.ndarray
    hard: np.ndarray
    empty: np.ndarray
    coords: np.ndarray
    offsets: tuple[np.ndarray, np.ndarray, np.ndarray]

    geom_type = shapely.GeometryType.MULTIPOLYGON


def way_polygons(
    way_ids: np.ndarray, counts: np.ndarray, x: np.ndarray, y: np.ndarray, area_no: np.ndarray
) -> WayAreas:
    """libosmium's polygons of tagged ways whose ring is simple, computed at once for all.

    Parameters
    ----------
    way_ids : numpy.ndarray of int64
        The ways' ids (each tagged; carried for the caller, not used).
    counts : numpy.ndarray of int64
        Node count per way.
    x, y : numpy.ndarray of int64
        All ways' node locations in way order, libosmium's fixed point (degrees * 1e7),
        :data:`UNSET` for a node without a location.
    area_no : numpy.ndarray of bool
        Per way: tagged ``area=no``.

    Returns
    -------
    WayAreas
        ``area`` for ways of a simple ring (polygon: consecutive duplicate locations dropped,
        counter-clockwise, from the smallest (x, y) vertex, closed), ``hard`` for closed ways
        of any other ring; neither for ways libosmium makes no area of. ``empty`` is all False.
    """
    counts, x, y = (np.asarray(a, np.int64) for a in (counts, x, y))
    area_no = np.asarray(area_no, bool)
    # Batches of ways of about _BATCH_NODES nodes: small temporaries, reused between batches.
    ends = np.concatenate([[0], np.cumsum(counts)])
    cuts = np.searchsorted(ends[1:], np.arange(_BATCH_NODES, ends[-1], _BATCH_NODES))
    cuts = np.unique(np.concatenate([[0], cuts, [len(counts)]])).tolist() if len(counts) else [0, 0]
    # The polygons' coordinates, written batch by batch (a ring has at most its way's nodes).
    coords, filled, parts = np.empty((len(x), 2)), 0, []
    for first, end in itertools.pairwise(cuts):
        nodes = slice(ends[first], ends[end])
        area, closed, lonlat, length = _batch_polygons(
            counts[first:end], x[nodes], y[nodes], area_no[first:end]
        )
        coords[filled : filled + len(lonlat)] = lonlat
        filled += len(lonlat)
        parts.append((area, closed, length))
    area, closed, length = (np.concatenate(part) for part in zip(*parts, strict=True))
    coords = coords[:filled]
    ring_offsets = np.zeros(len(length) + 1, np.int64)
    np.cumsum(length, out=ring_offsets[1:])
    rings = np.arange(len(length) + 1)
    return WayAreas(area, closed & ~area, np.zeros(len(area), bool), coords, (ring_offsets, rings, rings))


def _batch_polygons(
    counts: np.ndarray, x: np.ndarray, y: np.ndarray, area_no: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`way_polygons` of a batch of ways: which make a polygon, which are closed, the
    polygons' coordinates and their counts."""
    n = len(counts)
    ends = np.cumsum(counts)
    starts = ends - counts
    closed = (counts > 3) & ~area_no
    extent = (x.min(), x.max(), y.min(), y.max()) if len(x) else (0, 0, 0, 0)
    if max(-extent[0], extent[1]) > 180 * FIX or max(-extent[2], extent[3]) > 90 * FIX:  # unset locations
        invalid = (np.abs(x) > 180 * FIX) | (np.abs(y) > 90 * FIX)
        closed &= np.bincount(np.repeat(np.arange(n), counts)[invalid], minlength=n) == 0
    first, last = starts[closed], ends[closed] - 1
    closed[closed] = (x[first] == x[last]) & (y[first] == y[last])
    if not closed.all():
        node = np.repeat(closed, counts)
        x, y, counts = x[node], y[node], counts[closed]
        starts = np.cumsum(counts) - counts
    # Each ring's vertices: its way's nodes after the first (whose location comes back as the
    # last), without those at the previous node's location.
    drop = np.ones(len(x), bool)
    drop[1:] = (x[1:] == x[:-1]) & (y[1:] == y[:-1])
    drop[starts] = True
    kept = ~drop
    k = np.add.reduceat(kept, starts, dtype=np.int64) if len(counts) else counts  # segments per ring
    vx, vy = x[kept], y[kept]
    tested = k >= 3
    if max(extent[1] - extent[0], extent[3] - extent[2]) > _EXTENT_MAX:  # only rings spanning less
        some = k > 0
        for v in (vx, vy):
            span = _per_ring(np.maximum, v, k[some]) - _per_ring(np.minimum, v, k[some])
            tested[some] &= span <= _EXTENT_MAX
    if not tested.all():
        keep = np.repeat(tested, k)
        vx, vy = vx[keep], vy[keep]
    simple = _simple_rings(vx, vy, k[tested])
    ok = np.zeros(len(k), bool)
    ok[tested] = simple
    if not simple.all():
        inside = np.repeat(simple, k[tested])
        vx, vy = vx[inside], vy[inside]
    vertex, ring_offsets = _normal_form(vx, vy, k[ok])
    coords = np.empty((len(vertex), 2))
    # float(x) / 1e7 as libosmium's Location::lon() (integers are exact in float64).
    coords[:, 0], coords[:, 1] = vx[vertex] / FIX, vy[vertex] / FIX
    area = np.zeros(n, bool)
    area[np.flatnonzero(closed)[ok]] = True
    return area, closed, coords, np.diff(ring_offsets)


def assemble_ways(
    way_ids: np.ndarray, counts: np.ndarray, x: np.ndarray, y: np.ndarray, tags: list[dict[str, str]]
) -> WayAreas:
    """libosmium's areas of a few ways, by its assembler over a small file of them alone.

    Parameters
    ----------
    way_ids : numpy.ndarray of int64
        The ways' ids, distinct.
    counts, x, y
        As for :func:`way_polygons`.
    tags : list of dict
        Each way's tags (libosmium makes no area of a way without tags or with ``area=no``).

    Returns
    -------
    WayAreas
        ``area`` and its polygons, ``empty`` where libosmium failed to assemble the rings;
        ``hard`` is all False.
    """
    import osmium

    way_ids, counts, x, y = (np.asarray(a, np.int64) for a in (way_ids, counts, x, y))
    if len(np.unique(way_ids)) != len(way_ids) or len(tags) != len(way_ids):
        raise ValueError("assemble_ways needs distinct way ids, and tags for each")
    starts = (np.cumsum(counts) - counts).tolist()
    valid = (np.abs(x) <= 180 * FIX) & (np.abs(y) <= 90 * FIX)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ways.osm.pbf"
        writer = osmium.SimpleWriter(str(path))
        try:
            # Node i + 1 at the i-th location (libosmium assembles by location, not node id);
            # one without a location is left out, as from a clipped extract.
            for i in np.flatnonzero(valid).tolist():
                writer.add_node(osmium.osm.mutable.Node(id=i + 1, location=(x[i] / FIX, y[i] / FIX)))
            for i in np.argsort(way_ids).tolist():  # libosmium's second pass needs ways by id
                nodes = list(range(starts[i] + 1, starts[i] + int(counts[i]) + 1))
                writer.add_way(osmium.osm.mutable.Way(id=int(way_ids[i]), nodes=nodes, tags=tags[i]))
        finally:
            writer.close()
        area_ids, geoms = _libosmium_areas(path)
    order = np.argsort(way_ids)
    row = order[np.searchsorted(way_ids, area_ids, sorter=order)]
    built = ~shapely.is_missing(geoms)
    area, empty = np.zeros(len(way_ids), bool), np.zeros(len(way_ids), bool)
    area[row[built]], empty[row[~built]] = True, True
    if not built.any():
        none = np.zeros(1, np.int64)
        return WayAreas(area, np.zeros_like(area), empty, np.zeros((0, 2)), (none, none, none))
    _, coords, offsets = shapely.to_ragged_array(geoms[built][np.argsort(row[built])])
    return WayAreas(area, np.zeros_like(area), empty, coords, offsets)


def _libosmium_areas(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """libosmium's areas of the tagged closed ways of a file (no relations): the ways' ids
    and the areas' MultiPolygons in lon/lat, None for an empty (failed) one."""
    import osmium

    manager = osmium.area.AreaManager()
    with osmium.io.Reader(str(path), osmium.osm.RELATION) as reader:
        osmium.apply(reader, manager.first_pass_handler())
    locations = osmium.NodeLocationsForWays(osmium.index.create_map("flex_mem"))
    locations.ignore_errors()
    assembled = osmium.BufferIterator()
    with osmium.io.Reader(str(path), osmium.osm.NODE | osmium.osm.WAY) as reader:
        osmium.apply(reader, locations, manager.second_pass_to_buffer(assembled))
    factory = osmium.geom.WKBFactory()
    ids, wkb = [], []
    for area in assembled:
        if len(area.tags):
            ids.append(area.orig_id())
            try:
                wkb.append(factory.create_multipolygon(area))
            except RuntimeError:  # an empty area: its rings failed
                wkb.append(None)
    return np.array(ids, np.int64), shapely.from_wkb(np.array(wkb, object))


def closed_way_areas(
    way_ids: np.ndarray, counts: np.ndarray, x: np.ndarray, y: np.ndarray, area_no: np.ndarray
) -> WayAreas:
    """libosmium's areas of tagged ways: :func:`way_polygons`, and :func:`assemble_ways` for
    the hard ones. Parameters as for :func:`way_polygons`; ``hard`` is all False."""
    simple = way_polygons(way_ids, counts, x, y, area_no)
    hard = np.flatnonzero(simple.hard)
    if not len(hard):
        return simple
    node = np.repeat(simple.hard, counts)
    # Hard ways are tagged and not area=no: any other tag gives libosmium's answer.
    # Ids by position: the answer does not depend on them, and a file may repeat a way's id.
    rest = assemble_ways(
        np.arange(1, len(hard) + 1),
        np.asarray(counts)[hard],
        np.asarray(x)[node],
        np.asarray(y)[node],
        [{"area": "yes"}] * len(hard),
    )
    area, empty = simple.area.copy(), np.zeros_like(simple.area)
    area[hard], empty[hard] = rest.area, rest.empty
    both = np.concatenate([simple.coords, rest.coords])
    offsets = tuple(
        np.concatenate([a[:-1], b + a[-1]]) for a, b in zip(simple.offsets, rest.offsets, strict=True)
    )
    position = np.concatenate([np.flatnonzero(simple.area), hard[rest.area]])
    coords, offsets = _take(both, offsets, np.argsort(position))
    return WayAreas(area, np.zeros_like(area), empty, coords, offsets)


def _take(coords: np.ndarray, offsets: tuple, order: np.ndarray) -> tuple[np.ndarray, tuple]:
    """The multipolygons ``order`` of shapely's ragged arrays (``coords`` and the offsets of
    rings, polygons, multipolygons), as ragged arrays."""
    polygons, polygon_n = _spans(offsets[2], order)
    rings, ring_n = _spans(offsets[1], polygons)
    points, point_n = _spans(offsets[0], rings)
    return coords[points], tuple(np.concatenate([[0], np.cumsum(n)]) for n in (point_n, ring_n, polygon_n))


def _spans(offsets: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The parts of ``items`` (item i: parts ``offsets[i]`` to ``offsets[i + 1]``) in order, and
    the number of parts per item."""
    n = offsets[items + 1] - offsets[items]
    return np.repeat(offsets[items] - np.cumsum(n) + n, n) + np.arange(n.sum()), n


def _per_ring(ufunc: np.ufunc, values: np.ndarray, k: np.ndarray, dtype: type | None = None) -> np.ndarray:
    """``ufunc`` reduced over each ring's ``k`` (> 0) consecutive values."""
    if not len(k):
        return np.zeros(0, dtype or values.dtype)
    return ufunc.reduceat(values, np.cumsum(k) - k, dtype=dtype)


def _simple_rings(vx: np.ndarray, vy: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Whether each ring (``k`` >= 3 vertices ``vx``, ``vy`` each, spanning less than 2**31)
    is simple: no two segments share a point but adjacent ones their common vertex. Exact
    integer arithmetic, as libosmium's."""
    at = np.cumsum(k) - k
    last = at + k - 1
    dx, dy = _to_next(vx, at, last), _to_next(vy, at, last)
    dx1, dy1 = _next(dx, at, last), _next(dy, at, last)  # the next segment's
    turn = dx * dy1 - dy * dx1  # at each segment's end
    simple = np.ones(len(k), bool)
    # A spike: a segment turning straight back over the previous one.
    flat = np.flatnonzero(turn == 0)
    spike = flat[dx[flat] * dx1[flat] + dy[flat] * dy1[flat] < 0]
    simple[np.searchsorted(at, spike, side="right") - 1] = False
    # Turning the same way at every vertex and once around (dx > 0 on one run of segments):
    # a convex polygon, simple. GEOS tests the others (exact on these integer coordinates).
    flips = _per_ring(np.add, (dx > 0) != (dx1 > 0), k, np.int64)
    convex = ((_per_ring(np.minimum, turn, k) > 0) | (_per_ring(np.maximum, turn, k) < 0)) & (flips == 2)
    tested = simple & ~convex
    if tested.any():
        idx = np.flatnonzero(np.repeat(tested, k))
        xy = np.column_stack([vx[idx], vy[idx]]).astype(float)  # exact: integers below 2**31
        rings = shapely.linearrings(xy, indices=np.repeat(np.arange(tested.sum()), k[tested]))
        simple[tested] &= shapely.is_simple(rings)
    return simple


def _next(values: np.ndarray, at: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Each ring's values shifted by one (rings of values from ``at`` to ``last``), cyclically."""
    shifted = np.empty_like(values)
    shifted[:-1] = values[1:]
    shifted[last] = values[at]
    return shifted


def _to_next(values: np.ndarray, at: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Each ring's next value minus its value, cyclically."""
    step = np.empty_like(values)
    np.subtract(values[1:], values[:-1], out=step[:-1])
    step[last] = values[at] - values[last]
    return step


def _normal_form(vx: np.ndarray, vy: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Simple rings (``k`` vertices ``vx``, ``vy`` each) as libosmium writes them: counter-
    clockwise from the smallest (x, y) vertex, closed. Returns the index of each vertex so
    written, and the ring offsets."""
    at = np.cumsum(k) - k
    key = (vx << 31) + vy  # orders as (x, y): |y| < 2**30
    # One smallest vertex per ring (a simple ring repeats no vertex), a corner of its convex
    # hull: the turn there gives the orientation.
    start = np.flatnonzero(key == np.repeat(_per_ring(np.minimum, key, k), k))
    local = start - at
    before, after = at + (local - 1) % k, at + (local + 1) % k
    turn = (vx[start] - vx[before]) * (vy[after] - vy[start]) - (vy[start] - vy[before]) * (
        vx[after] - vx[start]
    )
    step = np.where(turn > 0, 1, -1)
    m = k + 1
    offsets = np.zeros(len(k) + 1, np.int64)
    np.cumsum(m, out=offsets[1:])
    # Each written vertex is the previous one + step, but at the ring's first (its start) and
    # where the walk wraps from one end of the ring's vertices to the other.
    jump = np.repeat(step, m)
    jump[offsets[:-1]] = np.diff(start, prepend=0)
    jump[offsets[:-1] + np.where(step > 0, k - local, local + 1)] = -step * (k - 1)
    return np.cumsum(jump), offsets
