"""Parse libosmium's OPL text of an OSM file column-wise (see :mod:`planner.osm_file`).

A batch of lines at a time: arrow's CSV reader splits the lines into fields (one space
apart; OPL escapes spaces and line breaks inside a field), arrow's string kernels and numpy
make numbers of ids, locations and node lists, and each distinct tag field is parsed once.
OPL escapes ``%``, ``,``, ``=``, spaces and most non-ASCII characters as ``%<hex code point>%``,
so splitting on ``,`` / ``=`` / spaces is exact and :func:`_decode_escapes` restores the text.
"""

from __future__ import annotations

import re
from itertools import islice
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from planner import osm_rings, settings
from planner.osm_rings import FIX, UNSET

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


_ESCAPED = re.compile(r"%([0-9a-fA-F]+)%")


def parse_text(stream: Any) -> tuple[list[dict], list[dict], list[dict]]:
    """Batches of parsed node, way and relation lines from an open binary OPL stream.

    A thread reads the next batch and splits it into columns (arrow and numpy, which let go
    of the interpreter) while this one makes dicts of the tags of the batch before.
    """
    from concurrent.futures import ThreadPoolExecutor

    parts: dict[str, list[dict]] = {"n": [], "w": [], "r": []}
    seen = _Seen()
    with ThreadPoolExecutor(1, thread_name_prefix="planner-opl") as pool:
        batch = pool.submit(_columns_of_batch, stream)
        while (columns := batch.result()) is not None:
            batch = pool.submit(_columns_of_batch, stream)
            for kind, prepared in columns:
                parse = {"n": _node_lines, "w": _way_lines, "r": _relation_lines}[kind]
                parts[kind].append(parse(prepared, seen))
    pa.default_memory_pool().release_unused()  # the batches' tables, kept for reuse otherwise
    return parts["n"], parts["w"], parts["r"]


def _columns_of_batch(stream: Any) -> list[tuple[str, dict]] | None:
    """The next batch of lines of ``stream`` as its runs' columns (None at the end)."""
    chunk = stream.read(settings.opl_batch_chars)
    if not chunk:
        return None
    chunk += stream.readline()  # up to the end of its last line
    columns = {"n": _node_columns, "w": way_columns, "r": _relation_columns}
    return [(kind, columns[kind](run)) for kind, run in _runs(chunk)]


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


#: Code points whose escapes :func:`_decode_escapes` leaves in place: the fields are split on
#: them (``,`` ``=`` ``%`` line feed, carriage return).
_DELIMITERS = np.array([0x2C, 0x3D, 0x25, 0x0A, 0x0D])


_HEX = np.full(256, -1, np.int32)
_HEX[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)

#: The code points after which a character's UTF-8 takes one byte more, and the first byte's
#: marker bits by length.
_UTF8_STEPS = np.array([0x7F, 0x7FF, 0xFFFF])
_UTF8_LEAD = (0, 0, 0xC0, 0xE0, 0xF0)


def _decode_escapes(text: str) -> str:
    """``text`` with OPL's ``%<hex code point>%`` escapes turned into the characters, except
    those of :data:`_DELIMITERS`; all at once on the UTF-8 bytes.

    Every ``%`` in OPL opens or closes an escape (a literal one is ``%25%``), so the ``%``
    positions pair up; each character's UTF-8 bytes (one to four) are never longer than its
    escape (three to eight), so they are written over its start and the rest is dropped.
    Escapes of one number of digits, and characters of one UTF-8 length, are done together.
    """
    raw = np.frombuffer(text.encode("utf-8"), np.uint8)
    marks = np.flatnonzero(raw == ord("%"))
    start, end = marks[0::2], marks[1::2]
    digits = end - start - 1
    code = np.zeros(len(start), np.int32)
    for count in np.unique(digits[digits > 0]).tolist():  # mostly 4 (CJK) and 2 (spaces)
        at = np.flatnonzero(digits == count)
        first = start[at] + 1
        value = _HEX[raw[first]]
        for k in range(1, count):
            value = (value << 4) | _HEX[raw[first + k]]
        code[at] = value
    chars = ~np.isin(code, _DELIMITERS)
    if not chars.any():
        return text
    start, end, code = start[chars], end[chars], code[chars]
    size = np.searchsorted(_UTF8_STEPS, code) + 1
    out = raw.copy()
    for length in np.unique(size).tolist():  # the lead byte, then six bits a byte
        at = np.flatnonzero(size == length)
        put, value = start[at], code[at]
        out[put] = (value >> 6 * (length - 1)) | _UTF8_LEAD[length]
        for k in range(1, length):
            out[put + k] = 0x80 | ((value >> 6 * (length - 1 - k)) & 0x3F)
    # Runs of bytes kept (from after an escape to the end of the next one's character) and
    # dropped (the rest of that escape), alternating.
    runs = np.empty(2 * len(start) + 1, np.int64)
    runs[0:-1:2] = start + size - np.append(0, end[:-1] + 1)
    runs[1::2] = end + 1 - start - size
    runs[-1] = len(raw) - end[-1] - 1
    kept = np.repeat(np.tile(np.array([True, False]), len(start) + 1)[:-1], runs)
    return out[kept].tobytes().decode("utf-8")


def _unescape(text: str) -> str:
    """OPL's ``%<hex>%`` escapes turned back into characters (all of them)."""
    return _ESCAPED.sub(lambda m: chr(int(m[1], 16)), text) if "%" in text else text


class _Seen:
    """What a read has parsed so far: each distinct tag field's dict, by its OPL text; each
    distinct ``k=v`` pair of those fields, by its OPL text; and one text object per key or
    value (``building``, ``yes``) for all the dicts."""

    def __init__(self) -> None:
        self.fields: dict[str, dict[str, str]] = {}
        self.pairs: dict[str, tuple[str, str]] = {}
        self.texts: dict[str, str] = {}


def _tag_fields(column: Any, seen: _Seen) -> _Fields:
    """OPL tag fields (``T`` then ``k=v,k=v``; an arrow string column), each distinct field
    parsed once: their numbers among the distinct ones of ``column`` and those fields' dicts,
    for what depends on the tags alone; :meth:`_Fields.dicts` gives the objects theirs.

    Objects repeat their tags (``building=yes``; a third to two fifths of the fields of the
    real extracts are distinct), so a field is parsed the first time the read meets it.
    """
    if not len(column):
        return _Fields(np.zeros(0, np.int64), [], np.zeros(0, bool))
    encoded = pc.dictionary_encode(column.combine_chunks())
    codes = encoded.indices.to_numpy().astype(np.int64)
    names = encoded.dictionary.to_pylist()
    known = seen.fields
    table = np.fromiter(map(known.get, names), object, len(names))
    fresh = np.flatnonzero(np.equal(table, None))
    owner = np.zeros(len(codes), bool)
    if len(fresh):
        parsed = _parsed_fields(encoded.dictionary.take(fresh), seen)
        known.update(zip(map(names.__getitem__, fresh.tolist()), parsed, strict=True))
        table[fresh] = np.fromiter(parsed, object, len(parsed))
        owner[_first_places(codes, len(names))[fresh]] = True
    return _Fields(codes, table.tolist(), owner)


class _Fields:
    """One column's tag fields (:func:`_tag_fields`): ``codes`` (each object's number among
    the distinct fields), ``protos`` (their dicts) and ``owner`` (the first object with a
    field new to the read, which may take its dict itself)."""

    def __init__(self, codes: np.ndarray, protos: list[dict], owner: np.ndarray) -> None:
        self.codes, self.protos, self.owner = codes, protos, owner

    def dicts(self, rows: np.ndarray | None = None) -> list[dict[str, str]]:
        """The tags of the objects ``rows`` (default all), a dict of its own each: the owner of
        a fresh field takes the parsed one (once: it is no longer the owner after), every other
        object a copy, so no two objects share a dict."""
        rows = np.arange(len(self.codes)) if rows is None else np.asarray(rows, np.int64)
        table = np.fromiter(self.protos, object, len(self.protos))[self.codes[rows]]
        copied = ~self.owner[rows]
        self.owner[rows] = False
        table[copied] = np.fromiter(map(dict.copy, table[copied].tolist()), object, int(copied.sum()))
        return table.tolist()


def _first_places(codes: np.ndarray, count: int) -> np.ndarray:
    """Where each of the numbers ``0 .. count - 1`` first occurs in ``codes`` (each does).

    Arrow numbers a column's distinct values in the order they first occur, so those places
    are where the running maximum grows; checked, and sorted out otherwise.
    """
    grows = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1))
    if len(grows) == count and (codes[grows] == np.arange(count)).all():
        return grows
    return np.unique(codes, return_index=True)[1]


def _parsed_fields(fields: Any, seen: _Seen) -> list[dict[str, str]]:
    """OPL tag fields (an arrow string array) as dicts, each distinct ``k=v`` pair among them
    decoded once (:func:`_parsed_pairs`).

    Arrow splits the fields at their commas (OPL escapes those inside keys and values) and
    numbers the distinct pairs; the dicts are then made of the pairs' tuples in field order.
    """
    tagged = pc.greater(pc.binary_length(fields), 1)  # "T" alone: no tags
    if not pc.any(tagged).as_py():
        return [{} for _ in range(len(fields))]
    lists = pc.split_pattern(pc.utf8_slice_codeunits(fields.filter(tagged), 1), ",")
    counts = np.zeros(len(fields), np.int64)
    counts[tagged.to_numpy(zero_copy_only=False)] = pc.list_value_length(lists).to_numpy()
    encoded = pc.dictionary_encode(lists.flatten())
    distinct = encoded.dictionary.to_pylist()
    known = seen.pairs
    new = [pair for pair in distinct if pair not in known]
    known.update(zip(new, _parsed_pairs(new, seen.texts), strict=True))
    table = np.fromiter(map(known.__getitem__, distinct), object, len(distinct))
    pairs = iter(table[encoded.indices.to_numpy()].tolist())
    return [dict(islice(pairs, count)) for count in counts.tolist()]


def _parsed_pairs(pairs: list[str], texts: dict[str, str]) -> list[tuple[str, str]]:
    """OPL ``k=v`` pairs as ``(key, value)``, kept once in ``texts``.

    All escapes are undone at once over the joined pairs except those of ``,``, ``=``, ``%``
    and line breaks, which the split needs; each pair's one ``=`` then parts it, and the few
    keys and values holding an escaped separator are unescaped on their own.
    """
    if not pairs:
        return []
    same = texts.setdefault
    parted = (pair.partition("=") for pair in _decode_escapes("\n".join(pairs)).split("\n"))
    return [
        (same(k, k) if "%" not in k else _unescape(k), same(v, v) if "%" not in v else _unescape(v))
        for k, _, v in parted
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


def _node_columns(run: Any) -> dict[str, Any]:
    """The columns of a run of node lines (``n<id> T<tags> x<lon> y<lat>``) with a location."""
    table = _table(run, ["id", "tags", "x", "y"])
    # Malformed extracts lack some locations (the field is just "x" or "y").
    x_ok, y_ok = (pc.greater(pc.binary_length(table[k]), 1) for k in ("x", "y"))
    located = pc.and_(x_ok, y_ok)
    if pc.sum(located).as_py() != table.num_rows:
        table = table.filter(located)
    return {
        "ids": pc.utf8_replace_slice(table["id"], 0, 1, "node/"),
        "tags": table["tags"],
        "lon": fixed_degrees(_after_letter(table["x"], pa.float64())),
        "lat": fixed_degrees(_after_letter(table["y"], pa.float64())),
    }


def _node_lines(columns: dict[str, Any], seen: _Seen) -> dict[str, Any]:
    """Tagged nodes with a location (their ids, tags, lon and lat), from their columns."""
    return {
        "ids": columns["ids"].to_pylist(),
        "tags": _tag_fields(columns["tags"], seen).dicts(),
        "lon": columns["lon"],
        "lat": columns["lat"],
    }


def way_columns(run: Any) -> dict[str, Any]:
    """The columns of a run of way lines (``w<id> T<tags> N<nodes>``), their node lists parsed
    (:func:`_node_list`), and whether each way closes on its first node (:func:`_closed_rings`)."""
    table = _table(run, ["id", "tags", "nodes"])
    lists = table["nodes"].combine_chunks()
    counts, refs, x, y = _node_list(lists)
    return {
        "ids": _after_letter(table["id"], pa.int64()),
        "tags": table["tags"],
        "closed": _closed_rings(*_string_bytes(lists)),
        "counts": counts,
        "refs": refs,
        "x": x,
        "y": y,
    }


def _way_lines(columns: dict[str, Any], seen: _Seen) -> dict[str, Any]:
    """Ways from their columns (:func:`way_columns`): the tagged ways' ids; the streets' tags,
    node counts, nodes and locations; the line features' ids, tags, node counts and lon/lat;
    the closed ways' areas (ids, tags, ragged multipolygons); and every way's nodes, which a
    multipolygon may need."""
    ids, counts, refs, x, y = (columns[k] for k in ("ids", "counts", "refs", "x", "y"))
    # Untagged ways matter only as a multipolygon's members (their nodes are kept for those).
    tagged = pc.not_equal(columns["tags"], "T").to_numpy(zero_copy_only=False)
    fields = _tag_fields(columns["tags"], seen)
    codes, protos = fields.codes, fields.protos
    # What depends on the tags alone, once per distinct tag field.
    street = np.array([("highway" in t and t.get("area") != "yes") for t in protos], bool)[codes]
    barrier = np.array(["barrier" in t for t in protos], bool)[codes]
    only_highway = np.array([highway_only(t) for t in protos], bool)[codes]
    area_no = np.array([t.get("area") == "no" for t in protos], bool)[codes]
    line = barrier & ~street
    other = ~street & ~barrier & tagged
    line[other] = ~columns["closed"][other]  # those come again as areas
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
    maybe = tagged & ~only_highway & (counts > 3)
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
        "line_tags": fields.dicts(np.flatnonzero(line)),
        "line_len": line_counts[line],
        "line_lonlat": np.column_stack([x[valid][on_line] / FIX, y[valid][on_line] / FIX]),
        "area_ids": ids[area_rows],
        "area_tags": fields.dicts(area_rows),  # after the lines: a closed barrier is both
        "area_coords": areas.coords,
        "area_offsets": areas.offsets,
    }


#: A multipolygon's tags (libosmium's rule: ``type=multipolygon`` or ``type=boundary``).
_MULTIPOLYGON = r"(^T|,)type=(multipolygon|boundary)(,|$)"


def area_relations(run: Any) -> dict[str, Any]:
    """The relations libosmium makes areas of, from a run of OPL relation lines: their ids,
    lines and way members' ids (:func:`_relation_lines`)."""
    return _relation_lines(_relation_columns(run), _Seen())


def _relation_columns(run: Any) -> Any:
    """The lines of a run of relation lines (``r<id> T<tags> M<members>``) that are
    ``type=multipolygon`` or ``boundary``, as a table."""
    table = _table(run, ["id", "tags", "members"])
    return table.filter(pc.match_substring_regex(table["tags"], _MULTIPOLYGON))


def _relation_lines(table: Any, seen: _Seen) -> dict[str, Any]:
    """The relations libosmium makes areas of, from their columns (:func:`_relation_columns`):
    those with a way among their members. Their ids, their lines as written, and the ids of
    their way members."""
    ids, tags, members = (table[k].to_pylist() for k in ("id", "tags", "members"))
    ways = [[int(m[1 : m.index("@")]) for m in field[1:].split(",") if m[:1] == "w"] for field in members]
    keep = [i for i, w in enumerate(ways) if any(w)]  # a member id of 0 is no way
    return {
        "ids": np.array([int(ids[i][1:]) for i in keep], np.int64),
        "lines": [f"{ids[i]} {tags[i]} {members[i]}" for i in keep],
        "ways": [[w for w in ways[i] if w] for i in keep],
    }


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


def streets(tags: Any) -> np.ndarray:
    """Which OPL tag fields (an arrow string column: ``T`` then ``k=v,k=v``) are a street's:
    ``highway`` and not ``area=yes``, as the network reads them. OPL escapes ``,`` and ``=``
    inside keys and values, so the field's own commas and equals signs delimit the pairs."""
    highway = pc.match_substring_regex(tags, r"(^T|,)highway=")
    square = pc.match_substring_regex(tags, r"(^T|,)area=yes(,|$)")
    return pc.and_(highway, pc.invert(square)).to_numpy(zero_copy_only=False)


def highway_only(tags: dict[str, str]) -> bool:
    """A highway area without an area key (a pedestrian square, a roundabout's island): left
    out of the features, its ways being streets."""
    return "highway" in tags and not any(k in tags for k in AREA_KEYS)
