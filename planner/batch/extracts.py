"""Cutting the regions of a batch out of one large extract, in one pass over the file."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import uuid
from collections import Counter
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
#: Cell side (degrees, about 1 km) on which the cut's second pass counts street nodes.
_CELL_DEG = 0.01


def cut_shared_extracts(
    todo: list[RegionSpec],
    out: Path,
    options: dict,
    cut: bool | None,
    client,
    progress: bool,
    task_name: str = "audit",
    share: bool = False,
    workers: int = 1,
) -> tuple[list[RegionSpec], list[list[str]]]:
    """Cut the boundary regions of each large extract into small extracts, one pass per extract.

    Without this every region's task would read the whole province (minutes, and the whole
    province's arrays in memory, per region). A cut keeps everything that can matter inside
    the buffered boundary, so loading the cut and clipping it gives the same region as
    loading the whole file and clipping it, except for the UTM zone (see :func:`cut_extracts`).

    With ``share`` (audits only), neighbouring regions of one extract with the same homes and
    facilities files are grouped (:func:`cut_shared_groups`, at most ``settings.batch_share_max_nodes``
    street nodes and about an equal share of the regions per worker) and each group gets one
    cut, the union of its members'.

    Returns
    -------
    (list of RegionSpec, list of list of str)
        The regions with their cut, and the names of the regions of each group of two or more.
    """
    groups = _to_cut(todo, cut)
    buffer_m = task_reach_m(task_name, options) if groups else None
    if buffer_m is None:  # a task that takes no boundary: its boundary regions fail with that reason
        return todo, []
    share = share and _can_share(task_name, options)
    eligible = sum(len(v) for v in groups.values())
    max_regions = max(1, math.ceil(eligible / max(1, workers)))
    folder = out / "_extracts"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(".*.tmp-*"):  # a cut pass that was interrupted
        stale.unlink(missing_ok=True)
    replaced: dict[str, RegionSpec] = {}
    futures = []
    for (source, *_), specs in groups.items():
        stat = os.stat(source)
        boxes, paths = {}, {}
        for spec in specs:
            box = cut_box(spec.boundary, buffer_m)
            digest = hashlib.sha1(f"{source}|{stat.st_size}|{stat.st_mtime_ns}|{box}".encode()).hexdigest()[
                :16
            ]
            path = folder / f"{digest}.osm.pbf"
            replaced[spec.name] = dataclasses.replace(spec, cut_osm=str(path))
            # A cut of an earlier, interrupted run is complete (renamed when done).
            if (share and len(specs) > 1) or not path.exists():
                boxes[spec.name], paths[spec.name] = box, str(path)
        if not boxes:
            continue
        if progress:
            print(
                f"planner batch: cutting {len(boxes)} regions out of {source} (one pass over the file)",
                flush=True,
            )
        key = f"cut-{uuid.uuid4().hex[:8]}"
        if share and len(specs) > 1:
            limit = settings.batch_share_max_nodes
            futures.append(
                client.submit(
                    cut_shared_groups, source, boxes, str(folder), limit, max_regions, pure=False, key=key
                )
            )
        else:
            futures.append(client.submit(cut_extracts, source, boxes, paths, pure=False, key=key))
    shared = _take_groups(client.gather(futures), replaced)
    return [replaced.get(s.name, s) for s in todo], shared


def _take_groups(found: list[dict], replaced: dict[str, RegionSpec]) -> list[list[str]]:
    """Each region's cut from what :func:`cut_shared_groups` returned (its group's); the groups
    of two or more."""
    shared: list[list[str]] = []
    for done in found:
        if "groups" in done:
            for name, path in done["paths"].items():
                replaced[name] = dataclasses.replace(replaced[name], cut_osm=path)
            shared += [g for g in done["groups"] if len(g) > 1]
    return shared


def _can_share(task_name: str, options: dict) -> bool:
    """Shared audits: the audit's own task, and no population raster or table (a cell's or a
    polygon's people are shared over the homes loaded, which a larger area would change)."""
    no_people = not options.get("population") and not options.get("population_table")
    return task_name == "audit" and no_people and settings.batch_share_max_nodes > 0


def _to_cut(todo: list[RegionSpec], cut: bool | None) -> dict[tuple, list[RegionSpec]]:
    """The boundary regions to cut, by extract and own homes and facilities files."""
    groups: dict[tuple, list[RegionSpec]] = {}
    for spec in todo:
        if spec.boundary is not None and not spec.error and os.path.isfile(spec.osm):
            groups.setdefault((spec.osm, spec.homes, spec.facilities), []).append(spec)
    # One pass over an extract costs about what one task's reading of it would: cut when the
    # extract is large or when several regions would each read it.
    by_source = Counter(key[0] for key, specs in groups.items() for _ in specs)
    return {
        key: specs
        for key, specs in groups.items()
        if cut or (cut is None and (by_source[key[0]] > 1 or os.path.getsize(key[0]) >= cut_min_bytes))
    }


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

    names = list(boxes)
    plan = _plan(osm, np.array([boxes[n] for n in names], float).reshape(-1, 4))
    _write_cuts(osm, plan, [[i] for i in range(len(names))], [paths[n] for n in names])
    return {n: str(paths[n]) for n in names}


def cut_shared_groups(
    osm: str | os.PathLike,
    boxes: dict[str, tuple[float, float, float, float]],
    folder: str | os.PathLike,
    max_nodes: float,
    max_regions: int,
) -> dict:
    """Group the boxes' regions (:func:`planner.batch.shared.share_groups`) on the street
    nodes the cut's second pass counts, then cut one extract per group: the union of its
    members' cuts (everything :func:`cut_extracts` keeps for any of its boxes).

    Returns
    -------
    dict
        ``groups`` (lists of names, in ``boxes`` order), ``paths`` (name → its group's cut),
        ``street_nodes`` (per group, the estimate it was formed on).
    """
    from planner.batch.shared import share_groups

    names = list(boxes)
    box = np.array([boxes[n] for n in names], float).reshape(-1, 4)
    plan = _plan(osm, box)
    groups = share_groups(box, plan.cells, _CELL_DEG, max_nodes, max_regions)
    stat = os.stat(osm)
    out_paths = []
    for members in groups:
        key = "|".join(str(boxes[names[i]]) for i in members)
        digest = hashlib.sha1(f"{osm}|{stat.st_size}|{stat.st_mtime_ns}|{key}".encode()).hexdigest()[:16]
        out_paths.append(str(Path(folder) / f"{digest}.osm.pbf"))
    todo = [j for j, p in enumerate(out_paths) if not os.path.exists(p)]  # complete cuts of an earlier run
    if todo:
        _write_cuts(osm, plan, [groups[j] for j in todo], [out_paths[j] for j in todo])
    return {
        "groups": [[names[i] for i in members] for members in groups],
        "paths": {names[i]: out_paths[j] for j, members in enumerate(groups) for i in members},
        "street_nodes": [plan.nodes_in(box[members]) for members in groups],
    }


def _plan(osm: str | os.PathLike, box: np.ndarray) -> _CutPlan:
    """The first two passes of a cut: what each box keeps, and the street nodes per cell."""
    import osmium

    plan = _CutPlan(box)
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
    return plan


def _write_cuts(osm, plan: _CutPlan, members: list[list[int]], paths: list[str | os.PathLike]) -> None:
    """Pass 3: write each object, in file order, to every cut one of whose member boxes keeps
    it; each cut is written beside and renamed when complete."""
    import osmium

    tmp = [Path(p).with_name(f".{Path(p).name}.tmp-{uuid.uuid4().hex[:6]}.osm.pbf") for p in paths]
    for p in tmp:
        p.parent.mkdir(parents=True, exist_ok=True)
    writer_of: list[list[int]] = [[] for _ in range(len(plan.box))]
    for j, boxes in enumerate(members):
        for i in boxes:
            writer_of[i].append(j)
    one_each = len(members) == len(plan.box) and all(w == [i] for i, w in enumerate(writer_of))
    plan.writer_of = None if one_each else writer_of
    plan._cell_writers = {}  # found for these writers
    writers = [osmium.SimpleWriter(str(p), overwrite=True) for p in tmp]
    try:
        for obj in osmium.FileProcessor(str(osm)):
            plan.write(obj, writers)
    except BaseException:
        for w in writers:
            with contextlib.suppress(Exception):
                w.close()
        for p in tmp:
            p.unlink(missing_ok=True)
        raise
    for w in writers:
        w.close()
    for p, final in zip(tmp, paths, strict=True):
        os.replace(p, final)


class _CutPlan:
    """Which boxes (cuts) keep each node, way and relation, found over the passes of
    :func:`cut_extracts`."""

    def __init__(self, box: np.ndarray):
        self.box = box
        self.index = _BoxIndex(box)
        #: Street nodes per cell of :data:`_CELL_DEG` (by each street way's box centre), for
        #: the size of a group of regions before it is loaded.
        self.cells: dict[tuple[int, int], int] = {}
        #: Box → the writers of the cuts that keep what it keeps; None: one cut per box.
        self.writer_of: list[list[int]] | None = None
        self.rel_ways: dict[int, list[int]] = {}
        self.way_rels: dict[int, list[int]] = {}
        self.way_hits: dict[int, set[int]] = {}
        self.extra_nodes: dict[int, set[int]] = {}
        self.rel_box: dict[int, list[float]] = {}
        self.member_nodes: dict[int, list[int]] = {}
        self.rel_hits: dict[int, set[int]] = {}
        #: Grid cell → the writers of the boxes covering it whole, and (box, writers) of those
        #: covering part of it (filled by ``_node_writers`` when writing).
        self._cell_writers: dict[tuple[int, int], tuple] = {}

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
            cell = (math.floor((wb[0] + wb[2]) / 2 / _CELL_DEG), math.floor((wb[1] + wb[3]) / 2 / _CELL_DEG))
            self.cells[cell] = self.cells.get(cell, 0) + len(refs)
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

    def nodes_in(self, boxes: np.ndarray) -> int:
        """Street nodes counted in cells whose centre lies in any of ``boxes``."""
        if not self.cells:
            return 0
        cells = np.array(list(self.cells), float)
        count = np.fromiter(self.cells.values(), float, len(self.cells))
        cx, cy = (cells[:, 0] + 0.5) * _CELL_DEG, (cells[:, 1] + 0.5) * _CELL_DEG
        hit = np.zeros(len(cells), bool)
        for x0, y0, x1, y1 in boxes:
            hit |= (x0 <= cx) & (cx <= x1) & (y0 <= cy) & (cy <= y1)
        return int(count[hit].sum())

    def _node_writers(self, lon: float, lat: float):
        """The writers of the cuts that keep a node at (lon, lat) by its location (the boxes
        holding it, edges included), with each grid cell's writers found once (a pass over a
        file sees every node)."""
        key = (math.floor(lon / self.index.cell), math.floor(lat / self.index.cell))
        entry = self._cell_writers.get(key)
        if entry is None:
            whole, part = self.index.cells.get(key, ((), ()))
            box = self.index.box
            entry = self._cell_writers[key] = (
                tuple(self._writers(whole)),
                [(*box[i], tuple(self._writers([i]))) for i in part],
            )
        whole, part = entry
        if not part:
            return whole
        found = set(whole)
        for x0, y0, x1, y1, ws in part:
            if x0 <= lon <= x1 and y0 <= lat <= y1:
                found.update(ws)
        return found

    def _writers(self, hits) -> set[int] | list[int]:
        if self.writer_of is None:
            return hits
        return {j for i in hits for j in self.writer_of[i]}

    def write(self, obj, writers: list) -> None:
        """Add an OSM object to the writers of the cuts that keep it."""
        if obj.is_node():
            loc = obj.location
            found = self._node_writers(loc.lon, loc.lat) if loc.valid() else ()
            extra = self.extra_nodes.get(obj.id)
            if extra:
                found = set(found).union(self._writers(extra))
            for i in found:
                writers[i].add_node(obj)
        elif obj.is_way():
            for i in self._writers(self.way_hits.get(obj.id, ())):
                writers[i].add_way(obj)
        elif obj.is_relation():
            for i in self._writers(self.rel_hits.get(obj.id, ())):
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
