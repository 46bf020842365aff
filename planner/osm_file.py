"""Read an OSM file (``.osm`` XML or ``.osm.pbf``) into flat arrays, libosmium doing the work.

Handing every object to Python costs pyosmium a Python object per tag, about 10 µs per OSM
object, which made reading a city slower than everything after it. Here libosmium reads the
file once, keeps the node locations and writes it as OPL text (its documented
one-line-per-object format: tagged nodes, ways with their nodes' locations, multipolygon
relations) without Python seeing the objects: a forked process writes it into a pipe and
this one parses it as it comes (:mod:`planner.osm_text`: a batch of lines at a time,
column-wise, each distinct tag field once; every object still gets a dict of its own).
Where a process cannot fork, the text goes through a temporary file.

Areas are libosmium's, without a second read: a closed way's polygon is built from its line
of text in the form libosmium's assembler gives it (:mod:`planner.osm_rings`, which hands the
few rings that are not simple to the assembler), and the multipolygon relations are
assembled by libosmium from their lines and their member ways', written to a small file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pyproj import Transformer

from planner import settings
from planner._errors import InputError
from planner.osm_rings import FIX, UNSET
from planner.osm_text import STREET_TAGS, highway_only, parse_text


class Collected:
    """What a read of an OSM file keeps, in flat arrays rather than per-object records.

    Streets: way ids (``street_ids``), their :data:`STREET_TAGS` values (``street_tags``, a
    row each), node count per way (``street_len``), and every way node's OSM id and fixed-point
    location (``refs``, ``ref_x``, ``ref_y``; unset for a node a clipped extract lacks).
    Features: ids (``"node/1"``), tags, and their geometries in lon/lat as blocks in feature
    order (:meth:`add_points`, :meth:`add_ragged`, :meth:`add_wkb`, :meth:`add_areas`).
    """

    def __init__(self) -> None:
        empty = np.zeros(0, np.int64)
        self.street_ids = empty
        self.street_tags = np.empty((0, len(STREET_TAGS)), object)
        self.street_len = empty
        self.refs, self.ref_x, self.ref_y = empty, empty, empty
        self.feat_ids: list[str] = []
        self.feat_tags: list[dict] = []
        self._blocks: list[tuple] = []

    def add_points(self, lon: np.ndarray, lat: np.ndarray) -> None:
        """Point geometries of the next ``len(lon)`` features."""
        self._blocks.append(("points", np.asarray(lon, float), np.asarray(lat, float)))

    def add_ragged(self, geom_type: Any, coords: np.ndarray, offsets: tuple, keep: Any = None) -> None:
        """Geometries of the next features as shapely's ragged arrays (lon/lat), those of
        ``keep`` (a mask over the ragged geometries) if given."""
        self._blocks.append(("ragged", geom_type, coords, offsets, keep))

    def add_wkb(self, wkb: list[bytes]) -> None:
        """Geometries of the next features as WKB (lon/lat)."""
        self._blocks.append(("wkb", wkb))

    def add_areas(self, coords: np.ndarray, offsets: tuple, others: np.ndarray, at: np.ndarray) -> None:
        """Multipolygons of the next features (lon/lat): shapely's ragged arrays, and the
        geometries ``others`` put before the ragged ones of positions ``at``, as
        ``numpy.insert`` does."""
        self._blocks.append(("areas", coords, offsets, others, at))

    def street_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted OSM ids of the street nodes with a location, and their (lon, lat)."""
        x, y = self.ref_x, self.ref_y
        valid = (np.abs(x) <= 180 * FIX) & (np.abs(y) <= 90 * FIX)
        node_id, first = np.unique(self.refs[valid], return_index=True)
        lonlat = np.column_stack([x[valid][first] / FIX, y[valid][first] / FIX])
        return node_id, lonlat

    def geometries(self, crs: Any) -> np.ndarray:
        """Every feature's geometry in ``crs`` (from WGS84), coordinates projected at once."""

        def project(lonlat: np.ndarray) -> np.ndarray:
            return np.column_stack(project_lonlat(lonlat[:, 0], lonlat[:, 1], crs))

        parts = [np.empty(0, object)]
        for block in self._blocks:
            if block[0] == "points":
                xy = project(np.column_stack(block[1:]))
                parts.append(shapely.points(xy))
            elif block[0] == "ragged":
                geoms = shapely.from_ragged_array(block[1], project(block[2]), block[3])
                parts.append(geoms if block[4] is None else geoms[block[4]])
            elif block[0] == "wkb":
                parts.append(shapely.transform(shapely.from_wkb(block[1]), project))
            else:
                multi = shapely.GeometryType.MULTIPOLYGON
                geoms = shapely.from_ragged_array(multi, project(block[1]), block[2])
                others = shapely.transform(block[3], project) if len(block[3]) else block[3]
                parts.append(np.insert(geoms, block[4], others))
        return np.concatenate(parts)


def project_lonlat(lon: np.ndarray, lat: np.ndarray, crs: Any) -> tuple[np.ndarray, np.ndarray]:
    """``lon``, ``lat`` (WGS84) projected to ``crs``: a city's millions of coordinates in a
    thread per core, each with a transformer of its own (proj lets go of the interpreter;
    a transformer is not shared between threads). Where the run keeps to one process (a
    Dask worker, whose core the batch counts; ``sweep_workers = 1``), in this thread."""
    from concurrent.futures import ThreadPoolExecutor

    from planner._parallel import can_fork

    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    threads = min(os.cpu_count() or 1, 4) if can_fork() else 1
    parts = max(1, min(threads, len(lon) // settings.project_min_per_thread))
    bounds = np.linspace(0, len(lon), parts + 1).astype(int).tolist()

    def part(k: int) -> tuple[np.ndarray, np.ndarray]:
        to_metric = Transformer.from_crs(4326, crs, always_xy=True)
        return to_metric.transform(lon[bounds[k] : bounds[k + 1]], lat[bounds[k] : bounds[k + 1]])

    if parts == 1:
        return part(0)
    with ThreadPoolExecutor(parts, thread_name_prefix="planner-proj") as pool:
        done = list(pool.map(part, range(parts)))
    return np.concatenate([d[0] for d in done]), np.concatenate([d[1] for d in done])


def read_file(path: Path) -> Collected:
    """Streets and features of an OSM file (see :class:`Collected`): tagged nodes, then the
    ways that are not streets (barriers, other lines), then areas, each in file order.

    Raises ``RuntimeError`` (libosmium's) for a file it cannot parse.
    """
    from planner._parallel import can_fork

    piped = _parse_piped(path) if can_fork() else None
    if piped is None:
        with tempfile.TemporaryDirectory(prefix="planner-osm-") as folder:
            text_path = Path(folder) / "tagged.opl"
            check_text_room(
                path,
                Path(folder),
                per_pbf_byte=settings.opl_space_factor,
                per_xml_byte=1.0,
                doing="reading it",
                fix="free some space or set TMPDIR to a folder on a larger disk",
                where=Path(folder).parent,
            )
            _write_text(path, str(text_path))
            with open(text_path, "rb") as text:
                piped = parse_text(text)
    nodes, ways, relations = piped
    found, way_areas = _joined(nodes, ways)
    _add_areas(found, way_areas, _relation_areas(path, relations, ways))
    return found


def _write_text(path: Path, target: str) -> None:
    """libosmium's OPL of ``path`` written to ``target``: every tagged node, every way (with
    its nodes' locations; untagged ones too, which multipolygons may be made of) and the
    relations libosmium may make areas of (``type=multipolygon`` or ``boundary``)."""
    import osmium

    locations = osmium.NodeLocationsForWays(osmium.index.create_map("flex_mem"))
    locations.ignore_errors()  # a clipped extract lacks some nodes: their location stays unset
    out = osmium.io.File(target, "opl,locations_on_ways=true,add_metadata=false")
    untagged = osmium.filter.EmptyTagFilter().enable_for(osmium.osm.NODE)
    areas = osmium.filter.TagFilter(("type", "multipolygon"), ("type", "boundary"))
    with (
        osmium.SimpleWriter(out, overwrite=True) as writer,
        osmium.io.Reader(str(path), osmium.osm.NODE | osmium.osm.WAY | osmium.osm.RELATION) as reader,
    ):
        osmium.apply(reader, locations, untagged, areas.enable_for(osmium.osm.RELATION), writer)


def _parse_piped(path: Path) -> tuple[list[dict], list[dict], list[dict]] | None:
    """:func:`planner.osm_text.parse_text` of the OPL a forked process writes into a pipe,
    parsed as it comes;
    None if that process died without an error of the file's (killed, out of memory), and the
    file's own error (libosmium's ``RuntimeError``) if it has one."""
    import multiprocessing as mp

    read_end, write_end = os.pipe()
    writer = mp.get_context("fork").Process(target=_write_piped, args=(path, write_end), daemon=True)
    with open(read_end, "rb") as text:
        try:
            writer.start()
        finally:
            os.close(write_end)  # the child's copy is the only writer left: its exit ends the text
        try:
            parts = parse_text(text)
            writer.join()
        except Exception:
            # Text that ends mid-line because the writer died (killed, out of memory) is the
            # writer's failure, not the file's: the text has ended (its one writer is gone)
            # and the writer did not exit cleanly. Otherwise the error is raised as it is.
            if text.read(1):
                raise
            writer.join()
            if writer.exitcode == 0:
                raise
        finally:
            if writer.is_alive():  # this process failed while reading: stop the writer first
                writer.terminate()
                writer.join()
    if writer.exitcode == 0:
        return parts
    _write_text(path, os.devnull)  # the file's own error, raised here, if it has one
    return None


def _write_piped(path: Path, write_end: int) -> None:
    """The forked writer: :func:`_write_text` into the pipe; a failure exits quietly (the
    parent finds the error again)."""
    try:
        _write_text(path, f"/dev/fd/{write_end}")
    except BaseException:  # noqa: BLE001 - the parent reports it, without a child's traceback
        os._exit(1)


def check_text_room(
    path: Path,
    folder: Path,
    *,
    per_pbf_byte: float,
    per_xml_byte: float,
    doing: str,
    fix: str,
    where: Any = None,
) -> None:
    """Refuse ``path`` when libosmium's OPL text of it (about ``per_pbf_byte`` bytes per byte of
    a compressed file, ``per_xml_byte`` of an XML file) would not fit in ``folder``, before
    libosmium runs out of space (its writer cannot recover from a failed write): one line
    saying what ``doing`` needs, what ``where`` (default ``folder``) has, and the ``fix``."""
    compressed = not str(path).lower().endswith((".osm", ".xml"))
    needed = path.stat().st_size * (per_pbf_byte if compressed else per_xml_byte)
    _need_room(path, needed, folder, doing, fix, where)


def _need_room(path: Path, needed: float, folder: Path, doing: str, fix: str, where: Any = None) -> None:
    """Refuse ``path`` when ``folder`` has less than ``needed`` bytes free (see
    :func:`check_text_room`)."""
    import shutil

    free = shutil.disk_usage(folder).free
    if needed > free:
        raise InputError(
            f"{path}: {doing} needs about {needed / 1e6:,.0f} MB of temporary space in "
            f"{where or folder} and it has {free / 1e6:,.0f} MB free; {fix}"
        )


def _relation_areas(path: Path, relations: list[dict], ways: list[dict]) -> dict[str, Any]:
    """The multipolygons' areas, assembled by libosmium from their OPL lines and their member
    ways' (node ids and locations from the text), written to a small file: exactly what its
    assembler makes of them in the whole file. Returns each area's relation id, tags
    (``type`` left out, as libosmium does), WKB (None where the rings are broken) and the way
    that completed the relation (its largest member id: a sorted file's ways come in id
    order), which places the area among the ways' areas."""
    import osmium

    lines = [line for part in relations for line in part["lines"]]
    members = {
        relation: max(way_ids)
        for part in relations
        for relation, way_ids in zip(part["ids"].tolist(), part["ways"], strict=True)
    }
    empty = {"osm_id": np.zeros(0, np.int64), "last_way": np.zeros(0, np.int64), "tags": [], "wkb": []}
    if not lines:
        return empty
    member_ids = np.unique([w for part in relations for way_ids in part["ways"] for w in way_ids])
    way_lines = _member_way_lines(ways, member_ids)
    factory = osmium.geom.WKBFactory()
    ids, tags, wkb = [], [], []
    with tempfile.TemporaryDirectory(prefix="planner-osm-") as folder:
        mini = Path(folder) / "multipolygons.opl"
        text = ("\n".join(way_lines + sorted(lines, key=lambda t: int(t[1 : t.index(" ")]))) + "\n").encode()
        _need_room(
            path,
            len(text),
            Path(folder),
            "reading its multipolygons",
            "free some space or set TMPDIR to a folder on a larger disk",
            where=Path(folder).parent,
        )
        mini.write_bytes(text)
        manager = osmium.area.AreaManager()
        with osmium.io.Reader(str(mini), osmium.osm.RELATION) as reader:
            osmium.apply(reader, manager.first_pass_handler())
        assembled = osmium.BufferIterator()
        with osmium.io.Reader(str(mini), osmium.osm.WAY) as reader:
            osmium.apply(reader, manager.second_pass_to_buffer(assembled))
        for area in assembled:
            if area.from_way() or not len(area.tags):
                continue
            ids.append(area.orig_id())
            tags.append(dict(area.tags))
            try:
                wkb.append(bytes.fromhex(factory.create_multipolygon(area)))
            except RuntimeError:
                wkb.append(None)
    return {
        "osm_id": np.array(ids, np.int64),
        "last_way": np.array([members[i] for i in ids], np.int64),
        "tags": tags,
        "wkb": wkb,
    }


def _member_way_lines(ways: list[dict], member_ids: np.ndarray) -> list[str]:
    """The OPL lines (``w<id> T N<nodes with locations>``, untagged: a member's tags do not
    matter to its relation's area) of the ways ``member_ids`` names, in id order as libosmium
    wants them, made column-wise by arrow from the batches' node arrays."""
    parts = []
    for part in ways:
        rows = np.isin(part["way_ids"], member_ids)
        on = np.repeat(rows, part["way_len"])
        parts.append(
            (
                part["way_ids"][rows],
                part["way_len"][rows],
                part["way_refs"][on],
                part["way_x"][on],
                part["way_y"][on],
            )
        )
    ids, counts, refs, x, y = (
        np.concatenate([np.zeros(0, np.int64)] + [p[k] for p in parts]) for k in range(5)
    )
    ids, first = np.unique(ids, return_index=True)  # in id order; a repeated way once
    ends = np.cumsum(counts)[first]
    counts = counts[first]
    # Each chosen way's nodes, from where they end in the batches' arrays to their place here.
    nodes = np.repeat(ends - np.cumsum(counts), counts) + np.arange(counts.sum())
    refs, x, y = refs[nodes], x[nodes].astype(np.int64), y[nodes].astype(np.int64)
    ref_text = pc.cast(pa.array(refs), pa.string())
    located = pc.binary_join_element_wise("n", ref_text, "x", _decimal(x), "y", _decimal(y), "")
    # "n<id>" alone for a node without a location: the "n<id>xy" libosmium writes for it is
    # not read back by its own parser.
    node_text = pc.if_else(pa.array(x == UNSET), pc.binary_join_element_wise("n", ref_text, ""), located)
    lists = pa.ListArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(counts)]), pa.int32()), node_text
    )
    id_text = pc.cast(pa.array(ids), pa.string())
    return pc.binary_join_element_wise("w", id_text, " T N", pc.binary_join(lists, ","), "").to_pylist()


def _decimal(fixed: np.ndarray) -> Any:
    """Fixed-point degrees as exact decimal text (an arrow string array)."""
    magnitude = np.abs(fixed)
    sign = pa.array(np.where(fixed < 0, "-", ""))
    whole = pc.cast(pa.array(magnitude // FIX), pa.string())
    part = pc.utf8_lpad(pc.cast(pa.array(magnitude % FIX), pa.string()), 7, "0")
    return pc.binary_join_element_wise(sign, whole, ".", part, "")


def _joined(nodes: list[dict], ways: list[dict]) -> tuple[Collected, dict[str, Any]]:
    """The batches of :func:`_node_lines` and :func:`_way_lines` as one :class:`Collected`
    (nodes and lines), and the ways' areas: ``ids`` of all tagged ways in text order, the
    areas' way ids (``area_ids``), tags and geometries (ragged arrays)."""
    found = Collected()

    def cat(parts: list[dict], key: str, empty: Any = None) -> Any:
        if isinstance(empty, list):
            return [item for part in parts for item in part[key]]
        start = np.zeros(0, np.int64) if empty is None else empty
        return np.concatenate([start] + [part[key] for part in parts])

    found.feat_ids = cat(nodes, "ids", []) + cat(ways, "line_ids", [])
    found.feat_tags = cat(nodes, "tags", []) + cat(ways, "line_tags", [])
    found.add_points(cat(nodes, "lon", np.zeros(0)), cat(nodes, "lat", np.zeros(0)))
    for key in ("street_ids", "street_len", "refs", "ref_x", "ref_y"):
        setattr(found, key, cat(ways, key))
    found.street_tags = cat(ways, "street_tags", np.empty((0, len(STREET_TAGS)), object))
    offsets = np.concatenate([[0], np.cumsum(cat(ways, "line_len"))])
    found.add_ragged(shapely.GeometryType.LINESTRING, cat(ways, "line_lonlat", np.zeros((0, 2))), (offsets,))
    # The areas' ragged arrays end to end: each batch's offsets moved by what comes before.
    levels: list[list[np.ndarray]] = [[np.zeros(1, np.int64)] for _ in range(3)]
    before = [0, 0, 0]  # coordinates, rings and polygons of the batches before
    for part in ways:
        for level, more in enumerate(part["area_offsets"]):
            levels[level].append(more[1:] + before[level])
            before[level] += int(more[-1])
    return found, {
        "ids": cat(ways, "ids"),
        "area_ids": cat(ways, "area_ids"),
        "area_tags": cat(ways, "area_tags", []),
        "coords": cat(ways, "area_coords", np.zeros((0, 2))),
        "offsets": tuple(np.concatenate(level) for level in levels),
    }


def _add_areas(found: Collected, ways: dict[str, Any], relations: dict[str, Any]) -> None:
    """The ways' areas and the relations' in libosmium's order, with their tags: a relation's
    area comes just before the area of the way that completed it (:func:`_relation_areas`),
    or last where the ways are not in id order; a highway's without an area key is left out,
    as is one whose rings are broken."""
    pairs = zip(relations["wkb"], relations["tags"], strict=True)
    keep = np.array([w is not None and bool(t) and not highway_only(t) for w, t in pairs], bool)
    rel_ids, last_way = relations["osm_id"][keep], relations["last_way"][keep]
    area_ids = ways["area_ids"]
    in_order = bool(np.all(np.diff(ways["ids"]) > 0))
    # Before the first way area of an id as large as the completing way's (stable: the
    # relations keep libosmium's order among themselves).
    order = np.argsort(last_way, kind="stable")
    at = np.searchsorted(area_ids, last_way[order]) if in_order else np.full(len(order), len(area_ids))
    ids = np.array([f"way/{i}" for i in area_ids.tolist()], object)
    tags = np.empty(len(area_ids), object)
    tags[:] = ways["area_tags"]
    rel_tags = np.empty(len(order), object)
    rel_tags[:] = [relations["tags"][i] for i in np.flatnonzero(keep)[order].tolist()]
    found.feat_ids += np.insert(ids, at, [f"relation/{i}" for i in rel_ids[order].tolist()]).tolist()
    found.feat_tags += np.insert(tags, at, rel_tags).tolist()
    wkb = [relations["wkb"][i] for i in np.flatnonzero(keep)[order].tolist()]
    found.add_areas(ways["coords"], ways["offsets"], shapely.from_wkb(wkb), at)
