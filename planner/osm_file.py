"""Read an OSM file (``.osm`` XML or ``.osm.pbf``) into flat arrays, libosmium doing the work.

Handing every object to Python costs pyosmium a Python object per tag, about 10 µs per OSM
object, which made reading a city slower than everything after it. Here libosmium reads the
file once, keeps the node locations and writes it as OPL text (its documented
one-line-per-object format: tagged nodes, ways with their nodes' locations, tagged
relations) without Python seeing the objects: a forked process writes it into a pipe and
this one parses it as it comes, a batch of lines at a time, column-wise (arrow's CSV reader
and string kernels, numpy), each distinct tag field once (objects repeat their tags: a third
to two fifths of a real extract's fields are distinct; every object still gets a dict of
its own). Where a process cannot fork, the text goes through a temporary file.

Areas are libosmium's, without a second read: a closed way's polygon is built from its line
of text in the form libosmium's assembler gives it (:mod:`planner.osm_rings`, which hands the
few rings that are not simple to the assembler), and the multipolygon relations are
assembled by libosmium from their lines and their member ways', written to a small file.

OPL escapes ``%``, ``,``, ``=``, spaces and most non-ASCII characters as ``%<hex code point>%``,
so splitting on ``,`` / ``=`` / spaces is exact and :func:`_decode_escapes` restores the text.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import shapely
from pyproj import Transformer

from planner import osm_rings, settings
from planner._errors import InputError

#: Street tags that the network builder reads (everything else on a highway way is dropped).
STREET_TAGS = (
    "highway",
    "oneway",
    "oneway:bicycle",
    "maxspeed",
    "access",
    "foot",
    "bicycle",
    "motor_vehicle",
    "motorcar",
    "service",
    "junction",
    "area",
    "name",
)

#: Tags that keep a highway area (a closed ``highway=*`` way or multipolygon) as a feature.
AREA_KEYS = ("building", "landuse", "amenity", "leisure", "shop", "area")
#: libosmium's fixed-point coordinates: 1e-7 degrees; a location outside these is unset.
FIX = 10_000_000
_FIX_LON, _FIX_LAT = 180 * FIX, 90 * FIX
#: Fixed-point value of an unset coordinate (libosmium's ``undefined_coordinate``).
UNSET = 2_147_483_647
_ESCAPED = re.compile(r"%([0-9a-fA-F]+)%")


class Collected:
    """What a read of an OSM file keeps, in flat arrays rather than per-object records.

    Streets: way ids (``street_ids``), their :data:`STREET_TAGS` values (``street_tags``, a
    row each),
    node count per way (``street_len``), and every way node's OSM id and fixed-point
    location (``refs``, ``ref_x``, ``ref_y``; unset for a node a clipped extract lacks).
    Features: ids (``"node/1"``), tags, and their geometries in lon/lat as blocks in feature
    order (:meth:`add_points`, :meth:`add_ragged`, :meth:`add_wkb`).
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

    def add_areas(self, coords: np.ndarray, offsets: tuple, others: np.ndarray, at: np.ndarray) -> None:
        """Multipolygons of the next features (lon/lat): shapely's ragged arrays, and the
        geometries ``others`` put before the ragged ones of positions ``at``, as
        ``numpy.insert`` does."""
        self._blocks.append(("areas", coords, offsets, others, at))

    def street_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted OSM ids of the street nodes with a location, and their (lon, lat)."""
        x, y = self.ref_x, self.ref_y
        valid = (np.abs(x) <= _FIX_LON) & (np.abs(y) <= _FIX_LAT)
        node_id, first = np.unique(self.refs[valid], return_index=True)
        lonlat = np.column_stack([x[valid][first] / FIX, y[valid][first] / FIX])
        return node_id, lonlat

    def geometries(self, crs: Any) -> np.ndarray:
        """Every feature's geometry in ``crs`` (from WGS84), coordinates projected at once."""
        to_metric = Transformer.from_crs(4326, crs, always_xy=True)

        def project(lonlat: np.ndarray) -> np.ndarray:
            if len(lonlat) == 0:
                return np.zeros((0, 2))
            return np.column_stack(to_metric.transform(lonlat[:, 0], lonlat[:, 1]))

        parts = [np.empty(0, object)]
        for block in self._blocks:
            if block[0] == "points":
                xy = project(np.column_stack(block[1:]))
                parts.append(shapely.points(xy))
            elif block[0] == "ragged":
                geoms = shapely.from_ragged_array(block[1], project(block[2]), block[3])
                parts.append(geoms if block[4] is None else geoms[block[4]])
            else:
                multi = shapely.GeometryType.MULTIPOLYGON
                geoms = shapely.from_ragged_array(multi, project(block[1]), block[2])
                others = shapely.transform(block[3], project) if len(block[3]) else block[3]
                parts.append(np.insert(geoms, block[4], others))
        return np.concatenate(parts)


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
                piped = _parse_text(text)
    nodes, ways, relations = piped
    found, way_areas = _joined(nodes, ways)
    _add_areas(found, way_areas, _relation_areas(relations, ways))
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


def _parse_text(stream: Any) -> tuple[list[dict], list[dict], list[dict]]:
    """Batches of parsed node, way and relation lines from an open binary OPL stream."""
    parts: dict[str, list[dict]] = {"n": [], "w": [], "r": []}
    seen = _Seen()
    while chunk := stream.read(settings.opl_batch_chars):
        chunk += stream.readline()  # up to the end of its last line
        for kind, run in _runs(chunk):
            parse = {"n": _node_lines, "w": _way_lines, "r": _relation_lines}[kind]
            parts[kind].append(parse(run, seen))
    return parts["n"], parts["w"], parts["r"]


def _runs(chunk: bytes):
    """The chunk's runs of lines of one kind (``n``, ``w`` or ``r``), as ``(kind, text)``: a
    sorted file's nodes come before its ways and those before its relations, so a chunk holds
    one run or a few. The kinds are read off every line's first byte at once."""
    if not chunk:
        return
    raw = np.frombuffer(chunk, np.uint8)
    starts = np.append(0, np.flatnonzero(raw[:-1] == ord("\n")) + 1)
    kinds = raw[starts]
    bad = ~np.isin(kinds, _KINDS)  # the writer reads nodes, ways and relations only
    if bad.any():
        at = int(starts[np.argmax(bad)])
        raise RuntimeError(f"OPL text with a line starting {bytes(chunk[at : at + 20])!r}")
    cuts = starts[np.flatnonzero(kinds[1:] != kinds[:-1]) + 1].tolist()
    view = memoryview(chunk)
    for start, end in zip([0, *cuts], [*cuts, len(chunk)], strict=True):
        yield chr(chunk[start]), view[start:end]


_KINDS = np.frombuffer(b"nwr", np.uint8)


def _parse_piped(path: Path) -> tuple[list[dict], list[dict], list[dict]] | None:
    """:func:`_parse_text` of the OPL a forked process writes into a pipe, parsed as it comes;
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
            parts = _parse_text(text)
            writer.join()
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
    import shutil

    compressed = not str(path).lower().endswith((".osm", ".xml"))
    needed = path.stat().st_size * (per_pbf_byte if compressed else per_xml_byte)
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise InputError(
            f"{path}: {doing} needs about {needed / 1e6:,.0f} MB of temporary space in "
            f"{where or folder} and it has {free / 1e6:,.0f} MB free; {fix}"
        )


#: Code points whose escapes :func:`_decode_escapes` leaves in place: the fields are split on
#: them (``,`` ``=`` ``%`` line feed, carriage return).
_DELIMITERS = np.array([0x2C, 0x3D, 0x25, 0x0A, 0x0D])
_HEX = np.full(256, -1, np.int64)
_HEX[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)


def _decode_escapes(text: str) -> str:
    """``text`` with OPL's ``%<hex code point>%`` escapes turned into the characters, except
    those of :data:`_DELIMITERS`; all at once on the UTF-8 bytes.

    Every ``%`` in OPL opens or closes an escape (a literal one is ``%25%``), so the ``%``
    positions pair up; each character's UTF-8 bytes (one to four) are never longer than its
    escape (three to eight), so they are written over its start and the rest is dropped.
    """
    raw = np.frombuffer(text.encode("utf-8"), np.uint8)
    marks = np.flatnonzero(raw == ord("%"))
    if len(marks) == 0:
        return text
    start, end = marks[0::2], marks[1::2]
    digits = end - start - 1
    code = np.zeros(len(start), np.int64)
    for k in range(int(digits.max())):
        inside = k < digits
        code[inside] = code[inside] * 16 + _HEX[raw[start[inside] + 1 + k]]
    keep = np.isin(code, _DELIMITERS)
    start, end, code = start[~keep], end[~keep], code[~keep]
    size = 1 + (code >= 0x80) + (code >= 0x800) + (code >= 0x10000)
    lead = np.select(
        [size == 1, size == 2, size == 3],
        [code, 0xC0 | (code >> 6), 0xE0 | (code >> 12)],
        0xF0 | (code >> 18),
    )
    out = raw.copy()
    out[start] = lead
    for k in (1, 2, 3):  # continuation bytes: 6 bits each, most significant first
        has = size > k
        out[start[has] + k] = 0x80 | ((code[has] >> (6 * (size[has] - 1 - k))) & 0x3F)
    # Each escape's bytes after its character's are dropped: +1 where they begin, -1 after its
    # closing "%". No two escapes share either position (a character's UTF-8 is shorter than
    # its escape), so plain assignment marks them.
    dropped = np.zeros(len(raw) + 1, np.int8)
    dropped[start + size] = 1
    dropped[end + 1] = -1
    return out[np.cumsum(dropped[:-1], dtype=np.int8) == 0].tobytes().decode("utf-8")


def _unescape(text: str) -> str:
    """OPL's ``%<hex>%`` escapes turned back into characters (all of them)."""
    return _ESCAPED.sub(lambda m: chr(int(m[1], 16)), text) if "%" in text else text


class _Seen:
    """What a read has parsed so far: each distinct tag field's dict, by its OPL text, and
    one text object per key or value (``building``, ``yes``) for all the dicts."""

    def __init__(self) -> None:
        self.fields: dict[str, dict[str, str]] = {}
        self.texts: dict[str, str] = {}


def _tag_fields(column: Any, seen: _Seen) -> tuple[list[dict[str, str]], np.ndarray, list[dict]]:
    """OPL tag fields (``T`` then ``k=v,k=v``; an arrow string column) as dicts, each distinct
    field parsed once.

    Objects repeat their tags (``building=yes``; a third to two fifths of the fields of the
    real extracts are distinct), so a field is parsed the first time the read meets it: the
    first object with it takes that dict, every later one a copy, so no two objects share a
    dict. Also returned: each field's number among the distinct ones of ``column`` and their
    dicts, for what depends on the tags alone.
    """
    if not len(column):
        return [], np.zeros(0, np.int64), []
    encoded = pc.dictionary_encode(column.combine_chunks())
    codes = encoded.indices.to_numpy().astype(np.int64)
    distinct = encoded.dictionary.to_pylist()
    known = seen.fields
    new = [f for f in distinct if f not in known]
    known.update(zip(new, _parsed_fields(new, seen.texts), strict=True))
    protos = [known[f] for f in distinct]
    out = [protos[c].copy() for c in codes.tolist()]
    if new:  # the first object with a field new to this read takes the parsed dict itself
        fresh = set(new)
        firsts = np.unique(codes, return_index=True)[1].tolist()
        for code, at in enumerate(firsts):
            if distinct[code] in fresh:
                out[at] = protos[code]
    return out, codes, protos


def _parsed_fields(fields: list[str], texts: dict[str, str]) -> list[dict[str, str]]:
    """OPL tag fields as dicts, their keys and values kept once in ``texts``.

    All escapes are undone at once over the joined fields except those of ``,``, ``=``,
    ``%`` and line breaks, which the split needs; the whole text is then split once, since
    its separators alternate key, value, key, value (each ``=`` is a pair's), and the few
    keys and values holding an escaped separator are unescaped on their own.
    """
    pairs = [field.count("=") for field in fields]
    tagged = [field for field, n in zip(fields, pairs, strict=True) if n]
    if not tagged:
        return [{} for _ in fields]
    # Fields are "T" then "k=v,k=v"; a line break only parts two fields (escaped elsewhere).
    text = _decode_escapes("\n".join(tagged))[1:].replace("\nT", ",").replace("=", ",")
    codes, distinct = pd.factorize(np.array(text.split(","), dtype=object))
    same = texts.setdefault
    distinct = np.array([same(t, t) if "%" not in t else _unescape(t) for t in distinct], object)
    tokens = distinct[codes]
    keys, values = tokens[0::2].tolist(), tokens[1::2].tolist()
    ends = np.cumsum(pairs).tolist()
    return [
        dict(zip(keys[end - n : end], values[end - n : end], strict=True))
        for end, n in zip(ends, pairs, strict=True)
    ]


def _node_list(lists: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Node count per way and all their nodes' ids and fixed-point locations, from OPL node
    lists (an arrow string array of ``N`` then ``n<id>x<lon>y<lat>`` joined by ``,``; ``x``
    and ``y`` empty for a node without a location)."""
    raw, starts, ends = _string_bytes(lists)
    counts = (ends - starts > 1).astype(np.int64)  # "N" alone: no node
    empty = np.zeros(0, np.int64)
    if not counts.any():
        return counts, empty, empty, empty
    text = raw[starts[0] : ends[-1]]  # one array's strings lie end to end
    commas = np.flatnonzero(text == ord(","))
    of_list = np.searchsorted(starts - starts[0], commas, side="right") - 1
    counts += np.bincount(of_list, minlength=len(counts))
    # "Nn<id>x<lon>y<lat>,n..." as lines of " <id> <lon> <lat>": N, n, x and y appear nowhere else.
    table = _table(_NODE_ROWS[text].tobytes(), ["_", "ref", "lon", "lat"], _NODE_TYPES)
    if table.num_rows != counts.sum():
        raise RuntimeError("OPL text with a malformed node list")
    refs = table["ref"].to_numpy()
    # Fixed point from the decimal text: exact whatever the float parser's last bit.
    lon, lat = table["lon"].to_numpy(), table["lat"].to_numpy()
    unset = np.isnan(lon) | np.isnan(lat)
    x = np.where(unset, UNSET, np.rint(np.nan_to_num(lon) * FIX)).astype(np.int64)
    y = np.where(unset, UNSET, np.rint(np.nan_to_num(lat) * FIX)).astype(np.int64)
    return counts, refs, x, y


_NODE_ROWS = np.arange(256, dtype=np.uint8)
_NODE_ROWS[np.frombuffer(b"N,nxy", np.uint8)] = np.frombuffer(b"\n\n   ", np.uint8)
_NODE_TYPES = {"ref": pa.int64(), "lon": pa.float64(), "lat": pa.float64()}


def fixed_degrees(deg: np.ndarray) -> np.ndarray:
    """Degrees parsed from OPL's decimal text as pyosmium gives them (libosmium's fixed point
    divided by 1e7: exact whatever the float parser's last bit); NaN stays NaN."""
    return np.rint(deg * FIX) / FIX


_PARSE = pa_csv.ParseOptions(delimiter=" ", quote_char=False, double_quote=False, escape_char=False)


def _table(text: Any, names: list[str], types: dict[str, Any] | None = None) -> Any:
    """Lines of ``len(names)`` fields separated by one space as an arrow table of the named
    columns (``types``, strings by default), parsed by arrow's CSV reader.

    Fields are never empty but where a location is missing (a field starts with its letter),
    and OPL escapes spaces and line breaks inside them, so splitting on them is exact.
    """
    types = types or dict.fromkeys(names, pa.string())
    try:
        return pa_csv.read_csv(
            pa.py_buffer(text),
            read_options=pa_csv.ReadOptions(column_names=names),
            parse_options=_PARSE,
            convert_options=pa_csv.ConvertOptions(
                column_types=types, include_columns=list(types), strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as err:
        raise RuntimeError(f"OPL text that is not lines of {len(names)} fields: {_first(err)}") from None


def _first(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _string_bytes(column: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An arrow string array's UTF-8 bytes (no copy) and each string's start and end in them."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = np.frombuffer(array.buffers()[1], np.int32, len(array) + 1, array.offset * 4).astype(np.int64)
    data = array.buffers()[2]
    raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    return raw, offsets[:-1], offsets[1:]


def _after_letter(column: Any, kind: Any) -> np.ndarray:
    """Each field but its first letter (``n123`` → 123), as numbers of arrow type ``kind``."""
    return pc.cast(pc.utf8_slice_codeunits(column, 1), kind).to_numpy()


def _node_lines(run: Any, seen: _Seen) -> dict[str, Any]:
    """Tagged nodes with a location, from a run of their OPL lines
    (``n<id> T<tags> x<lon> y<lat>``)."""
    table = _table(run, ["id", "tags", "x", "y"])
    # Malformed extracts lack some locations (the field is just "x" or "y").
    x_ok, y_ok = (pc.greater(pc.binary_length(table[k]), 1) for k in ("x", "y"))
    located = pc.and_(x_ok, y_ok)
    if pc.sum(located).as_py() != table.num_rows:
        table = table.filter(located)
    return {
        "ids": pc.utf8_replace_slice(table["id"], 0, 1, "node/").to_pylist(),
        "tags": _tag_fields(table["tags"], seen)[0],
        "lon": fixed_degrees(_after_letter(table["x"], pa.float64())),
        "lat": fixed_degrees(_after_letter(table["y"], pa.float64())),
    }


def _way_lines(run: Any, seen: _Seen) -> dict[str, Any]:
    """Ways from a run of their OPL lines (``w<id> T<tags> N<nodes>``): the tagged ways' ids;
    the streets' tags, node counts, nodes and locations; the line features' ids, tags, node
    counts and lon/lat; the closed ways' areas (ids, tags, ragged multipolygons); and every
    way's nodes, which a multipolygon may need."""
    table = _table(run, ["id", "tags", "nodes"])
    # Untagged ways matter only as a multipolygon's members (their nodes are kept for those).
    tagged = pc.not_equal(table["tags"], "T").to_numpy(zero_copy_only=False)
    ids = _after_letter(table["id"], pa.int64())
    tags, codes, protos = _tag_fields(table["tags"], seen)
    # What depends on the tags alone, once per distinct tag field.
    street = np.array([("highway" in t and t.get("area") != "yes") for t in protos], bool)[codes]
    barrier = np.array(["barrier" in t for t in protos], bool)[codes]
    highway_only = np.array([_highway_only(t) for t in protos], bool)[codes]
    area_no = np.array([t.get("area") == "no" for t in protos], bool)[codes]
    line = barrier & ~street
    other = np.flatnonzero(~street & ~barrier & tagged)
    lists = table["nodes"].combine_chunks()
    raw, starts, ends = _string_bytes(lists)
    line[other] = ~_closed_rings(raw, starts[other], ends[other])  # those come again as areas
    counts, refs, x, y = _node_list(lists)
    on_street = np.repeat(street, counts)
    # A line keeps its nodes with a location, if two or more (a clipped extract lacks some).
    valid = np.repeat(line, counts) & (x != UNSET)
    way_of = np.repeat(np.arange(len(counts)), counts)[valid]
    line_counts = np.bincount(way_of, minlength=len(counts))
    line &= line_counts >= 2
    on_line = line[way_of]
    rows = np.empty((len(protos), len(STREET_TAGS)), object)
    for code in np.unique(codes[street]).tolist():
        rows[code] = [protos[code].get(k) for k in STREET_TAGS]
    # Closed ways make areas (libosmium's rule and form, planner.osm_rings), but a highway's
    # without an area key, which is left out of the features.
    maybe = tagged & ~highway_only & (counts > 3)
    on_maybe = np.repeat(maybe, counts)
    areas = osm_rings.closed_way_areas(ids[maybe], counts[maybe], x[on_maybe], y[on_maybe], area_no[maybe])
    area_rows = np.flatnonzero(maybe)[areas.area]
    return {
        "ids": ids[tagged],
        # Every way's nodes, for the multipolygons (:func:`_relation_areas`): fixed point fits
        # in int32 (|x| <= 1.8e9, UNSET is int32's largest).
        "way_ids": ids,
        "way_len": counts,
        "way_refs": refs,
        "way_x": x.astype(np.int32),
        "way_y": y.astype(np.int32),
        "street_ids": ids[street],
        "street_tags": rows[codes[street]],
        "street_len": counts[street],
        "refs": refs[on_street],
        "ref_x": x[on_street],
        "ref_y": y[on_street],
        "line_ids": [f"way/{i}" for i in ids[line].tolist()],
        "line_tags": [tags[i] for i in np.flatnonzero(line).tolist()],
        "line_len": line_counts[line],
        "line_lonlat": np.column_stack([x[valid][on_line] / FIX, y[valid][on_line] / FIX]),
        "area_ids": ids[area_rows],
        "area_tags": [tags[i] for i in area_rows.tolist()],
        "area_coords": areas.coords,
        "area_offsets": areas.offsets,
    }


#: A multipolygon's tags (libosmium's rule: ``type=multipolygon`` or ``type=boundary``).
_MULTIPOLYGON = r"(^T|,)type=(multipolygon|boundary)(,|$)"


def _relation_lines(run: Any, seen: _Seen) -> dict[str, Any]:
    """The relations libosmium makes areas of, from a run of OPL lines
    (``r<id> T<tags> M<members>``): ``type=multipolygon`` or ``boundary`` with a way among
    their members. Their ids, their tag and member fields as written, and the ids of their
    way members."""
    table = _table(run, ["id", "tags", "members"])
    table = table.filter(pc.match_substring_regex(table["tags"], _MULTIPOLYGON))
    ids, tags, members = (table[k].to_pylist() for k in ("id", "tags", "members"))
    ways = [[int(m[1 : m.index("@")]) for m in field[1:].split(",") if m[:1] == "w"] for field in members]
    keep = [i for i, w in enumerate(ways) if any(w)]  # a member id of 0 is no way
    return {
        "ids": np.array([int(ids[i][1:]) for i in keep], np.int64),
        "lines": [f"{ids[i]} {tags[i]} {members[i]}" for i in keep],
        "ways": [[w for w in ways[i] if w] for i in keep],
    }


def _relation_areas(relations: list[dict], ways: list[dict]) -> dict[str, Any]:
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
    way_lines = []
    for part in ways:
        node_end = np.cumsum(part["way_len"])
        for row in np.flatnonzero(np.isin(part["way_ids"], member_ids)).tolist():
            nodes = slice(node_end[row] - part["way_len"][row], node_end[row])
            way_lines.append(
                (
                    part["way_ids"][row],
                    _opl_nodes(part["way_refs"][nodes], part["way_x"][nodes], part["way_y"][nodes]),
                )
            )
    way_lines.sort()
    factory = osmium.geom.WKBFactory()
    ids, tags, wkb = [], [], []
    with tempfile.TemporaryDirectory(prefix="planner-osm-") as folder:
        mini = Path(folder) / "multipolygons.opl"
        text = [f"w{way} T N{nodes}" for way, nodes in way_lines] + sorted(
            lines, key=lambda t: int(t[1 : t.index(" ")])
        )
        mini.write_text("\n".join(text) + "\n", encoding="utf-8")
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


def _opl_nodes(refs: np.ndarray, x: np.ndarray, y: np.ndarray) -> str:
    """An OPL node list with locations (``n1x116.3y39.9,...``; ``n1xy`` for one without)."""
    return ",".join(
        f"n{ref}xy" if lon == UNSET else f"n{ref}x{_decimal(lon)}y{_decimal(lat)}"
        for ref, lon, lat in zip(refs.tolist(), x.tolist(), y.tolist(), strict=True)
    )


def _decimal(fixed: int) -> str:
    """Fixed-point degrees as exact decimal text."""
    sign = "-" if fixed < 0 else ""
    whole, part = divmod(abs(fixed), FIX)
    return f"{sign}{whole}.{part:07d}"


def _closed_rings(raw: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Whether each OPL node list (``Nn1x..y..,n2x..y..``, the bytes ``raw[start:end]``) is a
    closed ring of four nodes or more, which libosmium makes an area of: its first and last
    node ids compared on the bytes of all the lists at once (node lists are ASCII)."""
    if not len(starts):
        return np.zeros(0, bool)
    commas = np.flatnonzero(raw == ord(","))
    exes = np.append(np.flatnonzero(raw == ord("x")), len(raw))
    before_end = np.searchsorted(commas, ends)
    closed = before_end - np.searchsorted(commas, starts) >= 3  # four nodes or more
    # The first id runs from "Nn" to its "x", the last from the last ",n" to its "x".
    first = starts + 2
    last = np.where(closed, commas[np.maximum(before_end - 1, 0)] + 2 if len(commas) else 0, 0)
    size = exes[np.minimum(np.searchsorted(exes, first), len(exes) - 1)] - first  # "N" alone: none
    closed &= size == exes[np.searchsorted(exes, last)] - last
    for k in range(int(size[closed].max(initial=0))):
        digit = closed & (k < size)
        closed[digit] &= raw[first[digit] + k] == raw[last[digit] + k]
    return closed


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
    keep = np.array([w is not None and bool(t) and not _highway_only(t) for w, t in pairs], bool)
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


def _highway_only(tags: dict[str, str]) -> bool:
    """A highway area without an area key (a pedestrian square, a roundabout's island): left
    out of the features, its ways being streets."""
    return "highway" in tags and not any(k in tags for k in AREA_KEYS)
