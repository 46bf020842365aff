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

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

#: Rings of more segments than this are tested for simplicity by GEOS, smaller ones pairwise
#: in numpy (GEOS costs more per ring than all pairs of a small ring together).
_PAIRWISE_MAX = 32
#: Segment pairs tested at once (bounds the memory of the pairwise test).
_PAIRS_AT_ONCE = 2_000_000
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
        ``planner.osm_file.UNSET`` for a node without a location.
    area_no : numpy.ndarray of bool
        Per way: tagged ``area=no``.

    Returns
    -------
    WayAreas
        ``area`` for ways of a simple ring (polygon: consecutive duplicate locations dropped,
        counter-clockwise, from the smallest (x, y) vertex, closed), ``hard`` for closed ways
        of any other ring; neither for ways libosmium makes no area of. ``empty`` is all False.
    """
    from planner.osm_file import FIX

    counts, x, y = (np.asarray(a, np.int64) for a in (counts, x, y))
    n = len(counts)
    ends = np.cumsum(counts)
    starts = ends - counts
    way_of = np.repeat(np.arange(n), counts)
    invalid = (np.abs(x) > 180 * FIX) | (np.abs(y) > 90 * FIX)
    closed = (counts > 3) & (np.bincount(way_of[invalid], minlength=n) == 0) & ~np.asarray(area_no, bool)
    first, last = starts[closed], ends[closed] - 1
    closed[closed] = (x[first] == x[last]) & (y[first] == y[last])
    # The closed ways' nodes, without consecutive repeats of a location, then without the
    # closing node (now each way's last, at its first's location).
    node = np.flatnonzero(closed[way_of])
    wo, nx, ny = way_of[node], x[node], y[node]
    repeat = np.zeros(len(node), bool)
    repeat[1:] = (wo[1:] == wo[:-1]) & (nx[1:] == nx[:-1]) & (ny[1:] == ny[:-1])
    wo, nx, ny = wo[~repeat], nx[~repeat], ny[~repeat]
    closing = np.diff(wo, append=n) != 0
    wo, nx, ny = wo[~closing], nx[~closing], ny[~closing]
    ring_way = np.flatnonzero(closed)
    k = np.bincount(wo, minlength=n)[ring_way]  # distinct locations (= segments) per ring
    # Rings of three vertices or more, from their lower left corner: small integers for the
    # exact tests.
    three = k >= 3
    nx, ny, ring_way, k = nx[np.repeat(three, k)], ny[np.repeat(three, k)], ring_way[three], k[three]
    x0, y0 = _per_ring(np.minimum, nx, k), _per_ring(np.minimum, ny, k)
    tested = _per_ring(np.maximum, nx, k) - x0 <= _EXTENT_MAX
    tested &= _per_ring(np.maximum, ny, k) - y0 <= _EXTENT_MAX
    keep, kt = np.repeat(tested, k), k[tested]
    vx, vy = nx[keep] - np.repeat(x0[tested], kt), ny[keep] - np.repeat(y0[tested], kt)
    area2, simple = _simple_rings(vx, vy, kt)
    ok = np.zeros(len(k), bool)
    ok[tested] = simple
    inside = np.repeat(simple, kt)
    coords, ring_offsets = _normal_form(vx[inside], vy[inside], kt[simple], area2[simple])
    coords += np.repeat(np.column_stack([x0, y0])[ok], kt[simple] + 1, axis=0)
    area = np.zeros(n, bool)
    area[ring_way[ok]] = True
    rings = np.arange(int(ok.sum()) + 1)
    # float(x) / 1e7 as libosmium's Location::lon() (exact integers in float64).
    return WayAreas(area, closed & ~area, np.zeros(n, bool), coords / FIX, (ring_offsets, rings, rings))


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

    from planner.osm_file import FIX

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
    rest = assemble_ways(
        np.asarray(way_ids)[hard],
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


def _per_ring(ufunc: np.ufunc, values: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``ufunc`` reduced over each ring's ``k`` (> 0) consecutive values."""
    return ufunc.reduceat(values, np.cumsum(k) - k) if len(k) else np.zeros(0, values.dtype)


def _simple_rings(vx: np.ndarray, vy: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Twice the signed area of each ring (open vertices ``vx``, ``vy`` of ``k`` per ring from
    the first, in [0, 2**31)) and whether it is simple: no two segments share a point but
    adjacent ones their common vertex. Exact integer arithmetic, as libosmium's."""
    ring, at = np.repeat(np.arange(len(k)), k), np.cumsum(k) - k
    nxt = np.arange(len(vx)) + 1
    nxt[at + k - 1] = at
    dx, dy = vx[nxt] - vx, vy[nxt] - vy
    # Wrapping int64 sums are exact: the true sums are below 2**63 in magnitude.
    with np.errstate(over="ignore"):
        area2 = _per_ring(np.add, vx * vy[nxt] - vx[nxt] * vy, k)
    # A spike: a segment turning straight back over the previous one.
    spike = (dx * dy[nxt] - dy * dx[nxt] == 0) & (dx * dx[nxt] + dy * dy[nxt] < 0)
    simple = (area2 != 0) & (np.bincount(ring[spike], minlength=len(k)) == 0)
    large = k > _PAIRWISE_MAX
    if large.any():
        idx = np.flatnonzero(np.repeat(large, k))
        xy = np.column_stack([vx[idx], vy[idx]]).astype(float)  # exact: integers below 2**31
        rings = shapely.linearrings(xy, indices=np.repeat(np.arange(large.sum()), k[large]))
        simple[large] &= shapely.is_simple(rings)
    for size in np.unique(k[~large]).tolist():
        i, j = np.triu_indices(size, 2)
        pair = (j - i >= 2) & ~((i == 0) & (j == size - 1))
        i, j = i[pair], j[pair]
        of_size = np.flatnonzero(k == size)
        step = max(1, _PAIRS_AT_ONCE // max(len(i), 1))
        for chunk in range(0, len(of_size), step):
            rings = of_size[chunk : chunk + step]
            a, b = at[rings][:, None] + i, at[rings][:, None] + j
            meet = _segments_meet(vx[a], vy[a], dx[a], dy[a], vx[b], vy[b], dx[b], dy[b])
            simple[rings] &= ~meet.any(axis=1)
    return area2, simple


def _segments_meet(
    px: np.ndarray,
    py: np.ndarray,
    pdx: np.ndarray,
    pdy: np.ndarray,
    qx: np.ndarray,
    qy: np.ndarray,
    qdx: np.ndarray,
    qdy: np.ndarray,
) -> np.ndarray:
    """Whether closed segments p (from ``px, py`` by ``pdx, pdy``) and q share a point: the
    exact orientation test (int64 products of coordinates below 2**31)."""

    def side(ax, ay, adx, ady, bx, by):
        return np.sign(adx * (by - ay) - ady * (bx - ax))

    s1, s2 = side(px, py, pdx, pdy, qx, qy), side(px, py, pdx, pdy, qx + qdx, qy + qdy)
    s3, s4 = side(qx, qy, qdx, qdy, px, py), side(qx, qy, qdx, qdy, px + pdx, py + pdy)
    collinear = (s1 == 0) & (s2 == 0)
    overlap = _overlap(px, pdx, qx, qdx) & _overlap(py, pdy, qy, qdy)
    return np.where(collinear, overlap, (s1 * s2 <= 0) & (s3 * s4 <= 0))


def _overlap(p: np.ndarray, dp: np.ndarray, q: np.ndarray, dq: np.ndarray) -> np.ndarray:
    """Whether the closed intervals [p, p + dp] and [q, q + dq] (either direction) meet."""
    return (np.maximum(p, p + dp) >= np.minimum(q, q + dq)) & (np.maximum(q, q + dq) >= np.minimum(p, p + dp))


def _normal_form(
    vx: np.ndarray, vy: np.ndarray, k: np.ndarray, area2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Simple rings (``k`` open vertices each, coordinates in [0, 2**31)) as libosmium writes
    them: counter-clockwise from the smallest (x, y) vertex, closed. Returns the coordinates
    (fixed point, as float) and the ring offsets."""
    at = np.cumsum(k) - k
    key = (vx << 32) | vy  # orders as (x, y)
    # One smallest vertex per ring: a simple ring repeats no vertex.
    start = np.flatnonzero(key == np.repeat(_per_ring(np.minimum, key, k), k)) - at
    m = k + 1
    offsets = np.concatenate([[0], np.cumsum(m)])
    step = np.arange(offsets[-1]) - np.repeat(offsets[:-1], m)
    turn = np.where(area2 > 0, 1, -1)
    vertex = np.repeat(at, m) + (np.repeat(start, m) + np.repeat(turn, m) * step) % np.repeat(k, m)
    return np.column_stack([vx[vertex], vy[vertex]]).astype(float), offsets
