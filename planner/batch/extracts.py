"""Cutting the regions of a batch out of one large extract, in one pass over the file.

libosmium reads the extract once and writes every object as OPL text (its one-line-per-object
format; ways with their nodes' locations) into a temporary file; the text is read back a
batch of lines at a time and each cut's lines are chosen column-wise (numpy), so Python never
handles an OSM object one by one. Each cut's text is then written as ``.osm.pbf`` by libosmium.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import math
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from planner import settings
from planner.batch.regions import RegionSpec
from planner.osm_file import check_text_room
from planner.osm_rings import FIX, UNSET
from planner.osm_text import area_relations, fixed_degrees, streets, way_columns

#: Boundary regions of one extract are first cut into small extracts in one pass (each task
#: then reads its own cut, not the whole province) when there are several of them, or when the
#: extract is at least this size. A single region of a smaller file reads it whole.
cut_min_bytes: int = 64 * 2**20

#: Cell side (degrees, about 1 km) on which the cut pass counts street nodes.
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
    """Cut one large OSM extract into one small extract per box, in one pass over the file.

    Each cut keeps every node inside its box (WGS84 ``(minlon, minlat, maxlon, maxlat)``),
    every way whose nodes' bounding box meets it, and every multipolygon/boundary relation
    whose member ways' bounding box meets it. Ways and relations that are not streets keep all
    their nodes and member ways (so buildings, land use, walls and areas have their whole
    outline); streets keep only their nodes inside the box, which is all a clip to a polygon
    inside the box uses. Loading a cut with ``load_region(..., boundary=poly)`` for a ``poly``
    inside the box therefore gives the region that loading the whole file would, except that
    the metric CRS is the UTM zone of the cut's streets rather than of the whole file's. A cut
    holds no metadata (versions, timestamps, users), which loading does not read.

    The OPL text takes about 6.5-11 times a ``.osm.pbf``'s size (beside the first path, while
    cutting), the cuts' text up to twice that again; a folder without that room is refused first
    (:class:`~planner._errors.InputError`).

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
    with _opl_text(osm, Path(paths[names[0]]).parent if names else Path(".")) as (text, relations):
        plan = _plan(text, relations, np.array([boxes[n] for n in names], float).reshape(-1, 4))
        _write_cuts(text, plan, [[i] for i in range(len(names))], [paths[n] for n in names])
    return {n: str(paths[n]) for n in names}


def cut_shared_groups(
    osm: str | os.PathLike,
    boxes: dict[str, tuple[float, float, float, float]],
    folder: str | os.PathLike,
    max_nodes: float,
    max_regions: int,
) -> dict:
    """Group the boxes' regions (:func:`planner.batch.shared.share_groups`) on the street
    nodes the cut pass counts, then cut one extract per group: the union of its
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
    Path(folder).mkdir(parents=True, exist_ok=True)
    with _opl_text(osm, Path(folder)) as (text, relations):
        plan = _plan(text, relations, box)
        groups = share_groups(box, plan.cells, _CELL_DEG, max_nodes, max_regions)
        stat = os.stat(osm)
        out_paths = []
        for members in groups:
            key = "|".join(str(boxes[names[i]]) for i in members)
            digest = hashlib.sha1(f"{osm}|{stat.st_size}|{stat.st_mtime_ns}|{key}".encode()).hexdigest()[:16]
            out_paths.append(str(Path(folder) / f"{digest}.osm.pbf"))
        # Complete cuts of an earlier run are kept.
        todo = [j for j, p in enumerate(out_paths) if not os.path.exists(p)]
        if todo:
            _write_cuts(text, plan, [groups[j] for j in todo], [out_paths[j] for j in todo])
    return {
        "groups": [[names[i] for i in members] for members in groups],
        "paths": {names[i]: out_paths[j] for j, members in enumerate(groups) for i in members},
        "street_nodes": [plan.nodes_in(box[members]) for members in groups],
    }


def _plan(text: Path, relations: Path, box: np.ndarray) -> _CutPlan:
    """What each box keeps, and the street nodes per cell, from the OPL text of
    :func:`_opl_text` (``relations``: the area relations' members first, so that only their
    member ways keep their node lists)."""
    plan = _CutPlan(box)
    rel_ids, members = [], []
    with open(relations, "rb") as lines:
        while batch := lines.readlines(settings.opl_batch_chars):
            found = area_relations(b"".join(batch))
            rel_ids += found["ids"].tolist()
            members += found["ways"]
    member_ways = np.unique(np.fromiter((w for m in members for w in m), np.int64))
    with open(text, "rb") as lines:
        while batch := lines.readlines(settings.opl_batch_chars):
            plan.add_ways(_way_lines([s for s in batch if s[:1] == b"w"]), member_ways)
    plan.add_area_relations(np.array(rel_ids, np.int64), members)
    return plan


@contextlib.contextmanager
def _opl_text(osm: str | os.PathLike, folder: Path) -> Iterator[tuple[Path, Path]]:
    """Every object of ``osm`` as libosmium's OPL text (ways with their nodes' locations, no
    metadata: nothing a region's loading reads), and its relations alone, in hidden files of
    ``folder``, removed at the end; libosmium writes them without Python seeing an object."""
    folder.mkdir(parents=True, exist_ok=True)
    check_text_room(
        Path(osm),
        folder,
        per_pbf_byte=_OPL_PER_PBF_BYTE * _TEXT_COPIES,
        per_xml_byte=_TEXT_COPIES,
        doing="cutting its regions",
        fix="free some space or give --out on a larger disk",
    )
    stem = f".{uuid.uuid4().hex[:8]}.tmp-"
    text, relations = folder / f"{stem}all.opl", folder / f"{stem}relations.opl"
    try:
        _write_opl(osm, text, relations)
        yield text, relations
    finally:
        text.unlink(missing_ok=True)
        relations.unlink(missing_ok=True)


def _write_opl(osm: str | os.PathLike, text: Path, relations: Path) -> None:
    """``osm`` as OPL text (ways with their nodes' locations) and its relations alone, in one
    read: the relations' writer comes after the text's behind a filter that passes only them."""
    import osmium

    locations = osmium.NodeLocationsForWays(osmium.index.create_map("flex_mem"))
    locations.ignore_errors()  # a clipped extract lacks some nodes: their location stays unset
    with (
        osmium.SimpleWriter(osmium.io.File(str(text), _OPL_LOCATIONS), overwrite=True) as everything,
        osmium.SimpleWriter(osmium.io.File(str(relations), _OPL), overwrite=True) as only_relations,
        osmium.io.Reader(str(osm)) as reader,
    ):
        osmium.apply(
            reader, locations, everything, osmium.filter.EntityFilter(osmium.osm.RELATION), only_relations
        )


_OPL = "opl,add_metadata=false"
_OPL_LOCATIONS = f"{_OPL},locations_on_ways=true"


#: Bytes of OPL text (every object, ways with locations) per byte of a ``.osm.pbf``: 6.5-11
#: on the bundled samples and the tiled city.
_OPL_PER_PBF_BYTE = 12.0
#: The text of the whole file, and of the cuts (their buffers overlap: up to about twice it).
_TEXT_COPIES = 3.0


def _write_cuts(text: Path, plan: _CutPlan, members: list[list[int]], paths: list[str | os.PathLike]) -> None:
    """Write each object of the OPL text, in file order, to every cut one of whose member
    boxes keeps it: lines chosen column-wise, a batch at a time, for as many cuts at once as
    files may be open (:func:`_files_at_once`; each further round reads the text again); each
    cut's text is then written as ``.osm.pbf`` (uncompressed: it is read a few times and
    removed) beside its path and renamed when complete."""
    import osmium

    stem = f"tmp-{uuid.uuid4().hex[:6]}"
    cut_text = [Path(p).with_name(f".{Path(p).name}.{stem}.opl") for p in paths]
    tmp = [Path(p).with_name(f".{Path(p).name}.{stem}.osm.pbf") for p in paths]
    try:
        for p in cut_text:
            p.parent.mkdir(parents=True, exist_ok=True)
        step = _files_at_once()
        for first in range(0, len(paths), step):
            part = slice(first, first + step)
            _write_texts(text, plan, members[part], cut_text[part])
            for src, dst in zip(cut_text[part], tmp[part], strict=True):  # before the next round's text
                with (
                    osmium.SimpleWriter(osmium.io.File(str(dst), _CUT_FORMAT), overwrite=True) as w,
                    osmium.io.Reader(str(src)) as reader,
                ):
                    osmium.apply(reader, w)
                src.unlink()
    except BaseException:
        for p in cut_text + tmp:
            p.unlink(missing_ok=True)
        raise
    for p, final in zip(tmp, paths, strict=True):
        os.replace(p, final)


def _write_texts(text: Path, plan: _CutPlan, members: list[list[int]], targets: list[Path]) -> None:
    """The OPL lines each cut (the boxes of ``members``) keeps, written to its target."""
    keep = plan.by_cut(members)
    with contextlib.ExitStack() as files:
        outs = [files.enter_context(open(p, "wb")) for p in targets]
        with open(text, "rb") as lines:
            while batch := lines.readlines(settings.opl_batch_chars):
                for out, chosen in zip(outs, plan.choose(batch, members, keep), strict=True):
                    out.write(b"".join(chosen))


def _files_at_once() -> int:
    """Cuts whose text is written at once: half the files this process may open (a province
    cut into thousands of counties would pass Linux's usual limit of 1,024)."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):  # no such limit here (Windows)
        return 256
    return 1 << 16 if soft == resource.RLIM_INFINITY else max(16, soft // 2)


_CUT_FORMAT = "pbf,pbf_compression=none"


def _way_lines(lines: list[bytes]) -> dict:
    """Ways from OPL lines with locations (:func:`planner.osm_text.way_columns`): ids, street
    or not, node counts, and every node's id and lon/lat (NaN where the extract lacks the
    node)."""
    if not lines:
        empty = np.zeros(0, np.int64)
        return {"ids": empty, "street": np.zeros(0, bool), "counts": empty, "refs": empty,
                "lon": np.zeros(0), "lat": np.zeros(0)}  # fmt: skip
    ways = way_columns(b"".join(lines))
    unset = ways["x"] == UNSET
    return {
        "ids": ways["ids"],
        "street": streets(ways["tags"]),
        "counts": ways["counts"],
        "refs": ways["refs"],
        "lon": np.where(unset, np.nan, ways["x"] / FIX),
        "lat": np.where(unset, np.nan, ways["y"] / FIX),
    }


def _node_table(lines: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids and lon/lat (NaN: no location) of OPL node lines (``n<id> T<tags> x<lon> y<lat>``)."""
    # Deleting n, x and y leaves the id and the coordinates as numbers (the tags, column 2,
    # are not read).
    table = pd.read_csv(
        io.BytesIO(b"".join(lines).translate(None, b"nxy")),
        sep=" ",
        header=None,
        usecols=[0, 2, 3],
        names=["id", "lon", "lat"],
        dtype={"id": np.int64, "lon": np.float64, "lat": np.float64},
        engine="c",
        quoting=csv.QUOTE_NONE,
    )
    return (
        table["id"].to_numpy(),
        fixed_degrees(table["lon"].to_numpy()),
        fixed_degrees(table["lat"].to_numpy()),
    )


def _line_ids(lines: list[bytes]) -> np.ndarray:
    return np.array([line[1 : line.index(b" ")] for line in lines], np.int64)


def _meeting(bbox: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row of ``bbox``, box) pairs of the rectangles (WGS84 rows) that meet, edges included.

    Through a grid whose cell is the boxes' median size: each box is listed in the cells it
    covers and each row meets only the boxes of its own cells, so the work grows with the
    rows and the boxes, not with their product (a province cut into thousands of regions).
    A point is a row whose corners coincide.
    """
    bbox = np.asarray(bbox, float).reshape(-1, 4)
    ok = ~np.isnan(bbox).any(axis=1)
    if not ok.any() or len(box) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(box) <= _FEW_BOXES:
        return _meeting_each(bbox, box)
    size = float(np.median(np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])))
    cell = size if size > 0 else 1.0
    origin = np.nanmin(np.vstack([bbox[ok, :2], box[:, :2]]), axis=0)

    def cells(rect: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, cell key) of every cell each rectangle covers."""
        lo = np.floor((rect[:, :2] - origin) / cell).astype(np.int64)
        hi = np.floor((rect[:, 2:] - origin) / cell).astype(np.int64)
        nx, ny = hi[:, 0] - lo[:, 0] + 1, hi[:, 1] - lo[:, 1] + 1
        row = np.repeat(np.arange(len(rect)), nx * ny)
        k = np.arange(len(row)) - np.repeat(np.cumsum(nx * ny) - nx * ny, nx * ny)
        cx, cy = lo[row, 0] + k // ny[row], lo[row, 1] + k % ny[row]
        return row, cx * (1 << 32) + cy

    def covered(rect: np.ndarray) -> np.ndarray:
        span = np.floor((rect[:, 2:] - origin) / cell) - np.floor((rect[:, :2] - origin) / cell) + 1
        return span[:, 0] * span[:, 1]

    # A rectangle over many cells (a province's boundary relation) is tested against every
    # box instead: its cells would outnumber the boxes.
    wide = ok & (covered(np.where(ok[:, None], bbox, 0.0)) > max(64, len(box)))
    box_row, box_key = cells(box)
    order = np.argsort(box_key, kind="stable")
    box_row, box_key = box_row[order], box_key[order]
    rows = np.flatnonzero(ok & ~wide)
    out_r, out_b = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for r in np.flatnonzero(wide).tolist():
        b = np.flatnonzero(
            (box[:, 0] <= bbox[r, 2])
            & (bbox[r, 0] <= box[:, 2])
            & (box[:, 1] <= bbox[r, 3])
            & (bbox[r, 1] <= box[:, 3])
        )
        out_r.append(np.full(len(b), r))
        out_b.append(b)
    step = 1 << 20  # rows at a time: their cells' candidate pairs stay in memory
    for a in range(0, len(rows), step):
        part = rows[a : a + step]
        row, key = cells(bbox[part])
        first = np.searchsorted(box_key, key, "left")
        count = np.searchsorted(box_key, key, "right") - first
        r = part[np.repeat(row, count)]
        b = box_row[_ranges(first, count)]
        hit = (box[b, 0] <= bbox[r, 2]) & (bbox[r, 0] <= box[b, 2])
        hit &= (box[b, 1] <= bbox[r, 3]) & (bbox[r, 1] <= box[b, 3])
        pair = _sorted_unique(r[hit] * len(box) + b[hit])  # a pair found in several shared cells once
        out_r.append(pair // len(box))
        out_b.append(pair % len(box))
    pair = _sorted_unique(np.concatenate(out_r) * len(box) + np.concatenate(out_b))
    return pair // len(box), pair % len(box)


#: Up to this many boxes every rectangle is compared with every box: cheaper than the grid.
_FEW_BOXES = 16


def _meeting_each(bbox: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_meeting` by comparing every rectangle with every box (a NaN row meets none)."""
    rows, cols = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    step = max(1, 4_000_000 // max(1, len(box)))
    for a in range(0, len(bbox), step):
        b = bbox[a : a + step, None, :]
        hit = (box[:, 0] <= b[..., 2]) & (b[..., 0] <= box[:, 2])
        hit &= (box[:, 1] <= b[..., 3]) & (b[..., 1] <= box[:, 3])
        r, c = np.nonzero(hit)
        rows.append(r + a)
        cols.append(c)
    return np.concatenate(rows), np.concatenate(cols)


def _ranges(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``start[k], start[k] + 1, ... start[k] + count[k] - 1`` for every k, concatenated."""
    ends = np.cumsum(count)
    return np.repeat(start - (ends - count), count) + np.arange(ends[-1] if len(ends) else 0)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """``values`` sorted, each once (a sort: faster here than ``np.unique``'s hash path)."""
    values = np.sort(values)
    return values[np.concatenate([[True], values[1:] != values[:-1]])] if len(values) else values


def _cuts_of(box: np.ndarray, members: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """For items in boxes (``box``: a box index each), every (item, cut) pair of the cuts
    whose ``members`` hold the item's box: the items' positions and those cuts."""
    member_box = np.array([b for boxes in members for b in boxes], np.int64)
    member_cut = np.repeat(np.arange(len(members)), [len(boxes) for boxes in members])
    order = np.argsort(member_box, kind="stable")
    member_box, member_cut = member_box[order], member_cut[order]
    first = np.searchsorted(member_box, box, "left")
    count = np.searchsorted(member_box, box, "right") - first
    return np.repeat(np.arange(len(box)), count), member_cut[_ranges(first, count)]


def _sorted_member(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Which of ``ids`` are in ``sorted_ids``."""
    if len(sorted_ids) == 0:
        return np.zeros(len(ids), bool)
    at = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return sorted_ids[at] == ids


class _CutPlan:
    """Which boxes (cuts) keep each node, way and relation, found from the OPL text: as
    (id, box) pairs of the ways and relations that meet a box, and of the nodes a box keeps
    whatever their location (nodes of feature ways reaching beyond it, of area relations)."""

    def __init__(self, box: np.ndarray):
        self.box = np.asarray(box, float).reshape(-1, 4)
        #: Street nodes per cell of :data:`_CELL_DEG` (by each street way's box centre), for
        #: the size of a group of regions before it is loaded.
        self.cells: dict[tuple[int, int], int] = {}
        self._ways: list[tuple[np.ndarray, np.ndarray]] = []
        self._relations: list[tuple[np.ndarray, np.ndarray]] = []
        self._nodes: list[tuple[np.ndarray, np.ndarray]] = []
        #: The cells' counts and centres as arrays, made at the first :meth:`nodes_in`.
        self._cell_arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        #: Area relations' member ways (that have a location): id → (box, node ids).
        self._members: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def add_ways(self, ways: dict, member_ways: np.ndarray) -> None:
        """The boxes each way meets (by its nodes' box); a feature way (not a street) keeps its
        nodes outside them; a street counts its nodes in its cell."""
        counts, lon, lat = ways["counts"], ways["lon"], ways["lat"]
        n = len(counts)
        start = np.cumsum(counts) - counts
        valid = ~(np.isnan(lon) | np.isnan(lat))
        way_of = np.repeat(np.arange(n), counts)[valid]
        located = np.bincount(way_of, minlength=n) > 0
        bbox = np.full((n, 4), np.nan)
        if located.any():
            first = np.searchsorted(way_of, np.flatnonzero(located))
            for col, deg, reduce in zip(
                range(4), (lon, lat) * 2, (np.minimum,) * 2 + (np.maximum,) * 2, strict=True
            ):
                bbox[located, col] = reduce.reduceat(deg[valid], first)
        for k in np.flatnonzero(located & _sorted_member(member_ways, ways["ids"])):
            self._members[int(ways["ids"][k])] = (bbox[k], ways["refs"][start[k] : start[k] + counts[k]])
        wi = np.flatnonzero(located)
        r, box_of = _meeting(bbox[wi], self.box)
        way_of_hit = wi[r]
        self._ways.append((ways["ids"][way_of_hit], box_of))
        street = ways["street"]
        hit_streets = np.unique(way_of_hit[street[way_of_hit]])
        if len(hit_streets):
            b = bbox[hit_streets]
            cx = np.floor((b[:, 0] + b[:, 2]) / 2 / _CELL_DEG).astype(np.int64)
            cy = np.floor((b[:, 1] + b[:, 3]) / 2 / _CELL_DEG).astype(np.int64)
            for key, count in zip(
                zip(cx.tolist(), cy.tolist(), strict=True), counts[hit_streets].tolist(), strict=True
            ):
                self.cells[key] = self.cells.get(key, 0) + count
            self._cell_arrays = None
        # Feature ways not wholly inside a box they meet keep their nodes outside it.
        feature = ~street[way_of_hit]
        w, i = way_of_hit[feature], box_of[feature]
        wb, bx = bbox[w], self.box[i]
        inside = (bx[:, 0] <= wb[:, 0]) & (wb[:, 2] <= bx[:, 2])
        inside &= (bx[:, 1] <= wb[:, 1]) & (wb[:, 3] <= bx[:, 3])
        w, i = w[~inside], i[~inside]
        at = _ranges(start[w], counts[w])
        i = np.repeat(i, counts[w])
        bx = self.box[i]
        x, y = lon[at], lat[at]  # NaN (no location) is in no box
        kept = (bx[:, 0] <= x) & (x <= bx[:, 2]) & (bx[:, 1] <= y) & (y <= bx[:, 3])
        self._nodes.append((ways["refs"][at[~kept]], i[~kept]))

    def add_area_relations(self, ids: np.ndarray, members: list[list[int]]) -> None:
        """Area relations whose member ways' box meets a cut: the cut keeps them whole (the
        relation, its member ways and all their nodes)."""
        found = [[self._members[w] for w in ways if w in self._members] for ways in members]
        has = np.array([bool(f) for f in found], bool)
        if not has.any():
            return
        boxes = [np.array([b for b, _ in f]) for f in found if f]
        rbox = np.array([[*b[:, :2].min(axis=0), *b[:, 2:].max(axis=0)] for b in boxes])
        held = np.flatnonzero(has)
        r, box_of = _meeting(rbox, self.box)
        self._relations.append((ids[held[r]], box_of))
        for k, i in zip(held[r].tolist(), box_of.tolist(), strict=True):
            ways = [w for w in members[k] if w in self._members]
            self._ways.append((np.array(ways, np.int64), np.full(len(ways), i)))
            refs = np.concatenate([self._members[w][1] for w in ways])
            self._nodes.append((refs, np.full(len(refs), i)))

    def nodes_in(self, boxes: np.ndarray) -> int:
        """Street nodes counted in cells whose centre lies in any of ``boxes``."""
        if not self.cells:
            return 0
        if self._cell_arrays is None:
            cells = np.array(list(self.cells), float)  # once, not per group: a province has ~10^6
            count = np.fromiter(self.cells.values(), float, len(self.cells))
            self._cell_arrays = (count, (cells[:, 0] + 0.5) * _CELL_DEG, (cells[:, 1] + 0.5) * _CELL_DEG)
        count, cx, cy = self._cell_arrays
        hit = np.zeros(len(count), bool)
        for x0, y0, x1, y1 in boxes:
            hit |= (x0 <= cx) & (cx <= x1) & (y0 <= cy) & (cy <= y1)
        return int(count[hit].sum())

    def by_cut(self, members: list[list[int]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """What each cut (the boxes of ``members``) keeps by id: per kind (``ways``,
        ``relations``, and ``nodes`` kept whatever their location), the (id, cut) pairs,
        sorted by id, each once."""
        out = {}
        for kind, pairs in (("ways", self._ways), ("relations", self._relations), ("nodes", self._nodes)):
            ids = np.concatenate([np.zeros(0, np.int64), *(p[0] for p in pairs)])
            box = np.concatenate([np.zeros(0, np.int64), *(p[1] for p in pairs)])
            at, cut = _cuts_of(box, members)
            ids = ids[at]
            order = np.lexsort((cut, ids))
            ids, cut = ids[order], cut[order]
            once = np.concatenate([[True], (ids[1:] != ids[:-1]) | (cut[1:] != cut[:-1])]) if len(ids) else []
            out[kind] = (ids[once], cut[once])
        return out

    def choose(self, lines: list[bytes], members: list[list[int]], keep: dict) -> list[list[bytes]]:
        """Per cut, the OPL lines of ``lines`` it keeps, in their order: a node inside one of its
        boxes (edges included) or kept by id, the ways and relations it keeps (``keep``, from
        :meth:`by_cut`). Found for all cuts at once, as (line, cut) pairs through the boxes'
        grid (:func:`_meeting`) and the ids' order, not in one pass per cut."""
        kind = np.frombuffer(b"".join(line[:1] for line in lines), np.uint8)
        text = np.array(lines, dtype=object)
        line_of, cut_of = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]

        def by_id(rows: np.ndarray, ids: np.ndarray, kept: tuple[np.ndarray, np.ndarray]) -> None:
            first = np.searchsorted(kept[0], ids, "left")
            count = np.searchsorted(kept[0], ids, "right") - first
            line_of.append(np.repeat(rows, count))
            cut_of.append(kept[1][_ranges(first, count)])

        nodes = np.flatnonzero(kind == ord("n"))
        if len(nodes):
            node_id, lon, lat = _node_table(text[nodes].tolist())
            by_id(nodes, node_id, keep["nodes"])
            row, box = _meeting(np.stack([lon, lat, lon, lat], axis=1), self.box)  # NaN: in no box
            at, cut = _cuts_of(box, members)
            line_of.append(nodes[row[at]])
            cut_of.append(cut)
        for letter, kind_name in (("w", "ways"), ("r", "relations")):
            rows = np.flatnonzero(kind == ord(letter))
            if len(rows):
                by_id(rows, _line_ids(text[rows].tolist()), keep[kind_name])
        # Sorted by cut, then line (the file's order); a line a cut keeps twice, once.
        size = max(len(lines), 1)
        pair = _sorted_unique(np.concatenate(cut_of) * size + np.concatenate(line_of))
        cut, line = pair // size, pair % size
        bounds = np.searchsorted(cut, np.arange(len(members) + 1))
        return [text[line[bounds[c] : bounds[c + 1]]].tolist() for c in range(len(members))]
