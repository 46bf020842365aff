"""Cutting the regions of a batch out of one large extract, in one pass over the file."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np

from planner import settings
from planner.batch.regions import RegionSpec

#: Boundary regions of one extract are first cut into small extracts in one pass (each task
#: then reads its own cut, not the whole province) when there are several of them, or when the
#: extract is at least this size. A single region of a smaller file reads it whole.
cut_min_bytes: int = 64 * 2**20

_AREA_RELATION_TYPES = ("multipolygon", "boundary")  # the relations libosmium assembles into areas


def cut_shared_extracts(
    todo: list[RegionSpec],
    out: Path,
    options: dict,
    cut: bool | None,
    client,
    progress: bool,
    task_name: str = "audit",
) -> list[RegionSpec]:
    """Cut the boundary regions of each large extract into small extracts, one pass per extract.

    Without this every region's task would read the whole province (minutes, and the whole
    province's arrays in memory, per region). A cut keeps everything that can matter inside
    the buffered boundary, so loading the cut and clipping it gives the same region as
    loading the whole file and clipping it, except for the UTM zone (see :func:`cut_extracts`).
    """
    groups: dict[str, list[RegionSpec]] = {}
    for spec in todo:
        if spec.boundary is not None and not spec.error and os.path.isfile(spec.osm):
            groups.setdefault(spec.osm, []).append(spec)
    # One pass over an extract costs about what one task's reading of it would: cut when the
    # extract is large or when several regions would each read it.
    groups = {
        source: specs
        for source, specs in groups.items()
        if cut or (cut is None and (len(specs) > 1 or os.path.getsize(source) >= cut_min_bytes))
    }
    buffer_m = task_reach_m(task_name, options) if groups else None
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
            box = cut_box(spec.boundary, buffer_m)
            digest = hashlib.sha1(f"{source}|{stat.st_size}|{stat.st_mtime_ns}|{box}".encode()).hexdigest()[
                :16
            ]
            path = folder / f"{digest}.osm.pbf"
            replaced[spec.name] = dataclasses.replace(spec, cut_osm=str(path))
            if not path.exists():  # a cut of an earlier, interrupted run is complete (renamed when done)
                boxes[spec.name], paths[spec.name] = box, str(path)
        if boxes:
            if progress:
                print(
                    f"planner batch: cutting {len(boxes)} regions out of {source} (one pass over the file)",
                    flush=True,
                )
            futures.append(
                client.submit(
                    cut_extracts, source, boxes, paths, pure=False, key=f"cut-{uuid.uuid4().hex[:8]}"
                )
            )
    client.gather(futures)
    return [replaced.get(s.name, s) for s in todo]


def task_reach_m(task_name: str, options: dict) -> float | None:
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


def cut_box(boundary, buffer_m: float) -> tuple[float, float, float, float]:
    """WGS84 box around the boundary buffered by ``buffer_m``, with room to spare: the region
    is buffered later in its own UTM zone, which this box must contain whatever the zone.

    Everything beyond that buffer is parsed by the region's task and then clipped away, so the
    room is kept small: 10 % of the buffer (a neighbouring zone's scale differs by under 1 %)
    and about 100 m (edges of the boundary bend a little between zones).
    """
    from planner.sources import metric_crs

    centre = boundary.centroid
    crs = metric_crs(centre.x, centre.y)
    poly = gpd.GeoSeries([boundary], crs=4326).to_crs(crs).buffer(buffer_m * 1.1)
    minx, miny, maxx, maxy = poly.to_crs(4326).total_bounds
    pad = 0.001  # ≈ 100 m
    return (
        round(float(minx) - pad, 6),
        round(float(miny) - pad, 6),
        round(float(maxx) + pad, 6),
        round(float(maxy) + pad, 6),
    )


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
    plan = _CutPlan(np.array([boxes[n] for n in names], float).reshape(-1, 4))
    # Pass 1: members of area relations.
    for rel in osmium.FileProcessor(str(osm), osmium.osm.RELATION):
        if rel.tags.get("type") in _AREA_RELATION_TYPES:
            plan.add_area_relation(rel.id, [m.ref for m in rel.members if m.type == "w"])
    # Pass 2: which boxes each way meets; outside nodes that feature ways need. The nodes only
    # fill the location index in C++; Python sees the ways.
    for way in (
        osmium.FileProcessor(str(osm), osmium.osm.NODE | osmium.osm.WAY)
        .with_locations()
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
    ):
        plan.add_way(way)
    plan.add_relations_meeting_boxes()
    # Pass 3: write each object to the cuts that keep it (file order is kept).
    tmp = {
        n: Path(paths[n]).with_name(f".{Path(paths[n]).name}.tmp-{uuid.uuid4().hex[:6]}.osm.pbf")
        for n in names
    }
    for p in tmp.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    writers = [osmium.SimpleWriter(str(tmp[n]), overwrite=True) for n in names]
    try:
        for obj in osmium.FileProcessor(str(osm)):
            plan.write(obj, writers)
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


class _CutPlan:
    """Which boxes (cuts) keep each node, way and relation, found over the passes of
    :func:`cut_extracts`."""

    def __init__(self, box: np.ndarray):
        self.box = box
        self.index = _BoxIndex(box)
        self.rel_ways: dict[int, list[int]] = {}
        self.way_rels: dict[int, list[int]] = {}
        self.way_hits: dict[int, set[int]] = {}
        self.extra_nodes: dict[int, set[int]] = {}
        self.rel_box: dict[int, list[float]] = {}
        self.member_nodes: dict[int, list[int]] = {}
        self.rel_hits: dict[int, set[int]] = {}

    def add_area_relation(self, rel_id: int, ways: list[int]) -> None:
        self.rel_ways[rel_id] = ways
        for w in ways:
            self.way_rels.setdefault(w, []).append(rel_id)

    def add_way(self, way) -> None:
        """The boxes a way meets; a feature way (not a street) keeps its nodes outside them."""
        refs, lon, lat = [], [], []
        for n in way.nodes:
            refs.append(n.ref)
            loc = n.location
            if loc.valid():
                lon.append(loc.lon)
                lat.append(loc.lat)
        if not lon:
            return
        wb = (min(lon), min(lat), max(lon), max(lat))
        if way.id in self.way_rels:
            self.member_nodes[way.id] = refs
            for r in self.way_rels[way.id]:
                rb = self.rel_box.setdefault(r, [math.inf, math.inf, -math.inf, -math.inf])
                rb[:] = [min(rb[0], wb[0]), min(rb[1], wb[1]), max(rb[2], wb[2]), max(rb[3], wb[3])]
        hits = self.index.meeting(wb)
        if not hits:
            return
        self.way_hits[way.id] = set(hits)
        street = "highway" in way.tags and way.tags.get("area") != "yes"
        if street:
            return
        for i in hits:
            bx = self.box[i]
            if bx[0] <= wb[0] and wb[2] <= bx[2] and bx[1] <= wb[1] and wb[3] <= bx[3]:
                continue  # wholly inside: its nodes are kept by their location
            for ref, n in zip(refs, way.nodes, strict=True):
                loc = n.location
                if not (loc.valid() and bx[0] <= loc.lon <= bx[2] and bx[1] <= loc.lat <= bx[3]):
                    self.extra_nodes.setdefault(ref, set()).add(i)

    def add_relations_meeting_boxes(self) -> None:
        """Area relations whose member ways' box meets a cut: the cut keeps them whole."""
        for r, rb in self.rel_box.items():
            hits = self.index.meeting(tuple(rb))
            if not hits:
                continue
            self.rel_hits[r] = set(hits)
            for w in self.rel_ways[r]:
                if w in self.member_nodes:
                    self.way_hits.setdefault(w, set()).update(hits)
                    for ref in self.member_nodes[w]:
                        self.extra_nodes.setdefault(ref, set()).update(hits)

    def write(self, obj, writers: list) -> None:
        """Add an OSM object to the writers of the cuts that keep it."""
        if obj.is_node():
            loc = obj.location
            hits = self.index.containing(loc.lon, loc.lat) if loc.valid() else []
            extra = self.extra_nodes.get(obj.id)
            if extra:
                hits = extra.union(hits)
            for i in hits:
                writers[i].add_node(obj)
        elif obj.is_way():
            for i in self.way_hits.get(obj.id, ()):
                writers[i].add_way(obj)
        elif obj.is_relation():
            for i in self.rel_hits.get(obj.id, ()):
                writers[i].add_relation(obj)


class _BoxIndex:
    """Which of many boxes hold a point or meet a box, through a grid of cells about half the
    smallest box's side: a cell lists the boxes that cover it whole (no test needed) and those
    that cover part of it."""

    def __init__(self, box: np.ndarray):
        self.box = [tuple(map(float, b)) for b in box]
        sides = np.concatenate([box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]]) if len(box) else np.ones(1)
        self.cell = max(float(sides.min()) / 2, 1e-4)
        self.cells: dict[tuple[int, int], tuple[list[int], list[int]]] = {}
        c = self.cell
        for i, (x0, y0, x1, y1) in enumerate(self.box):
            for cx in range(math.floor(x0 / c), math.floor(x1 / c) + 1):
                for cy in range(math.floor(y0 / c), math.floor(y1 / c) + 1):
                    whole, part = self.cells.setdefault((cx, cy), ([], []))
                    inside = x0 <= cx * c and (cx + 1) * c <= x1 and y0 <= cy * c and (cy + 1) * c <= y1
                    (whole if inside else part).append(i)

    def containing(self, lon: float, lat: float) -> list[int]:
        """The boxes that hold a point (edges included)."""
        found = self.cells.get((math.floor(lon / self.cell), math.floor(lat / self.cell)))
        if found is None:
            return []
        whole, part = found
        box = self.box
        return whole + [i for i in part if box[i][0] <= lon <= box[i][2] and box[i][1] <= lat <= box[i][3]]

    def meeting(self, b: tuple) -> list[int]:
        """The boxes that meet box ``b`` (edges included), sorted."""
        x0, y0, x1, y1 = b
        c, cand = self.cell, set()
        for cx in range(math.floor(x0 / c), math.floor(x1 / c) + 1):
            for cy in range(math.floor(y0 / c), math.floor(y1 / c) + 1):
                found = self.cells.get((cx, cy))
                if found:
                    cand.update(found[0])
                    cand.update(found[1])
        box = self.box
        return sorted(
            i for i in cand if box[i][0] <= x1 and x0 <= box[i][2] and box[i][1] <= y1 and y0 <= box[i][3]
        )
