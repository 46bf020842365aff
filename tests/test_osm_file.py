"""planner.osm_file: libosmium writes the tagged objects as OPL and planner reads the text back.

Checked against an independent pass of pyosmium over the same file, handing every object to
Python (its ``dict(obj.tags)``, ``Location.lon``, WKB of areas): ids, tags, coordinates and
street nodes must be equal, on bundled samples (PBF), a shared XML extract, and hand-written
extracts whose tags hold every character OPL escapes.
"""

from __future__ import annotations

import io

import numpy as np
import osmium
import pyarrow as pa
import pytest
import shapely
from conftest import SAMPLES, shared_path
from hypothesis import given
from hypothesis import strategies as st
from osm_fixtures import square, write_osm
from pyproj import CRS

from planner import osm_file, osm_rings, osm_text, settings
from planner.osm_file import read_file
from planner.osm_text import AREA_KEYS, STREET_TAGS, _closed_rings, _decode_escapes

WGS84 = CRS.from_epsg(4326)


def reference(path) -> dict:
    """Features and streets of ``path`` by pyosmium's Python iterator, object by object: tagged
    nodes, then ways that are neither streets nor areas, then areas, as planner promises."""
    nodes, lines, areas = [], [], []
    streets = {"ids": [], "tags": [], "refs": [], "lon": []}
    processor = (
        osmium.FileProcessor(str(path))
        .with_locations()
        .with_areas()
        .with_filter(osmium.filter.EmptyTagFilter())
        .with_filter(osmium.filter.EntityFilter(osmium.osm.NODE | osmium.osm.WAY | osmium.osm.AREA))
    )
    wkb = osmium.geom.WKBFactory()
    for obj in processor:
        tags = dict(obj.tags)
        if obj.is_node():
            nodes.append((f"node/{obj.id}", tags, shapely.Point(obj.location.lon, obj.location.lat)))
        elif obj.is_way():
            closed = len(obj.nodes) > 3 and obj.nodes.is_closed()
            if "highway" in tags and tags.get("area") != "yes":
                streets["ids"].append(obj.id)
                streets["tags"].append([tags.get(k) for k in STREET_TAGS])
                streets["refs"] += [n.ref for n in obj.nodes]
                streets["lon"] += [n.location.lon if n.location.valid() else None for n in obj.nodes]
            elif "barrier" in tags or not closed:
                coords = [(n.lon, n.lat) for n in obj.nodes if n.location.valid()]
                if len(coords) >= 2:
                    lines.append((f"way/{obj.id}", tags, shapely.LineString(coords)))
        else:
            if "highway" in tags and not any(k in tags for k in AREA_KEYS):
                continue
            try:
                geom = shapely.from_wkb(wkb.create_multipolygon(obj))
            except RuntimeError:
                continue
            kind = "way" if obj.from_way() else "relation"
            areas.append((f"{kind}/{obj.orig_id()}", tags, geom))
    return {"features": nodes + lines + areas, "streets": streets}


def assert_same(path) -> None:
    found, expected = read_file(path), reference(path)
    features = expected["features"]
    assert found.feat_ids == [f[0] for f in features]
    assert found.feat_tags == [f[1] for f in features]
    geoms = found.geometries(WGS84)
    want = np.array([f[2] for f in features], dtype=object)
    assert len(geoms) == len(want)
    assert shapely.equals_exact(geoms, want, tolerance=0).all()
    streets = expected["streets"]
    assert found.street_ids.tolist() == streets["ids"]
    assert found.street_tags.tolist() == streets["tags"]
    assert found.refs.tolist() == streets["refs"]
    lon = np.array([np.nan if v is None else v for v in streets["lon"]])
    valid = np.abs(found.ref_x) <= 180 * 10**7
    assert (valid == ~np.isnan(lon)).all()
    np.testing.assert_array_equal(found.ref_x[valid] / 10**7, lon[valid])


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.osm.pbf")), ids=lambda p: p.name.split(".")[0])
def test_every_sample_reads_as_pyosmium_hands_it_to_python(path):
    assert_same(path)


def test_a_shared_xml_extract_reads_as_pyosmium_hands_it_to_python():
    assert_same(shared_path("regions/shenzhen_longgang.osm"))


#: Tag text with every character class OPL escapes or passes through.
AWKWARD = [
    "甲路 a,b=c%d",  # CJK, space, comma, equals, percent
    "50%20%off",  # a literal that looks like an escape
    "line\nbreak\ttab\rcr",
    "emoji 🏫 ok",  # a code point above U+FFFF (five hex digits)
    "Xīngbākè é ü ©",  # Latin letters OPL writes as they are
    "back\\slash 'quote' \"double\" <lt> &amp;",
    ",,==%%",
    "",
]


def test_every_escaped_character_comes_back(tmp_path):
    """Keys and values with spaces, commas, equals, percent signs, line breaks, emoji and
    backslashes: the tags read back are the ones written, node, way and area alike."""
    nodes = {1: (0, 0), 2: (100, 0), 3: (200, 0)}
    ring_nodes, ring = square(10, 20, 20, 40, 50)
    nodes.update(ring_nodes)
    node_tags = {
        1: {"amenity": "school", **{f"k{i}": v for i, v in enumerate(AWKWARD)}},
        2: {"name=with,odd %keys": "v", "名称": "值"},
    }
    ways = [
        (100, [1, 2, 3], {"highway": "residential", "name": AWKWARD[0], "note": AWKWARD[3]}),
        (101, [1, 3], {"barrier": "wall", "name": AWKWARD[2]}),
        (102, ring, {"building": "yes", "name": AWKWARD[1], "addr:street": AWKWARD[5]}),
    ]
    path = write_osm(tmp_path / "awkward.osm", nodes, ways, node_tags)
    found = read_file(path)
    assert found.feat_ids == ["node/1", "node/2", "way/101", "way/102"]
    assert found.feat_tags[0] == node_tags[1]
    assert found.feat_tags[1] == node_tags[2]
    assert found.feat_tags[2] == ways[1][2]
    assert found.feat_tags[3] == ways[2][2]
    assert found.street_tags.tolist() == [[ways[0][2].get(k) for k in STREET_TAGS]]
    assert_same(path)


def test_a_cut_street_keeps_its_missing_node_unset_and_a_cut_line_is_dropped(tmp_path):
    """A clipped extract: a street's node 999 has no location (kept as a ref, unset), a wall
    left with one located node is not a line, and one with two is."""
    nodes = {1: (0, 0), 2: (100, 0), 3: (0, 50)}
    ways = [
        (100, [1, 2, 999], {"highway": "service"}),
        (101, [3, 998], {"barrier": "wall"}),
        (102, [1, 997, 3], {"barrier": "fence"}),
    ]
    found = read_file(write_osm(tmp_path / "cut.osm", nodes, ways))
    assert found.refs.tolist() == [1, 2, 999]
    assert (np.abs(found.ref_x) <= 180 * 10**7).tolist() == [True, True, False]
    assert found.feat_ids == ["way/102"]
    assert len(shapely.get_coordinates(found.geometries(WGS84))) == 2
    node_id, _ = found.street_nodes()
    assert node_id.tolist() == [1, 2]


def test_small_batches_of_text_give_the_same_read(monkeypatch):
    """The OPL text is read back a batch at a time: batches of a few lines give what one
    batch of everything gives (areas included, their ragged arrays joined end to end)."""
    path = SAMPLES / "nanjing_xinjiekou.osm.pbf"
    whole = read_file(path)
    monkeypatch.setattr(settings, "opl_batch_chars", 400)
    small = read_file(path)
    assert small.feat_ids == whole.feat_ids and small.feat_tags == whole.feat_tags
    assert small.street_tags.tolist() == whole.street_tags.tolist()
    for key in ("street_ids", "street_len", "refs", "ref_x", "ref_y"):
        np.testing.assert_array_equal(getattr(small, key), getattr(whole, key))
    assert shapely.equals_exact(small.geometries(WGS84), whole.geometries(WGS84), tolerance=0).all()


def _same_read(a, b) -> None:
    assert (
        a.feat_ids == b.feat_ids
        and a.feat_tags == b.feat_tags
        and a.street_tags.tolist() == b.street_tags.tolist()
    )
    for key in ("street_ids", "street_len", "refs", "ref_x", "ref_y"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert shapely.equals_exact(a.geometries(WGS84), b.geometries(WGS84), tolerance=0).all()


def test_the_text_through_a_file_equals_the_text_through_a_pipe(monkeypatch):
    """Where a process cannot fork (one process asked, a Dask worker) the OPL goes through a
    temporary file instead of a pipe from a forked writer: the same read."""
    from planner._parallel import can_fork

    path = SAMPLES / "beijing_haidian_wudaokou.osm.pbf"
    assert can_fork()  # this machine takes the pipe by default
    piped = read_file(path)
    monkeypatch.setattr(settings, "sweep_workers", 1)
    _same_read(read_file(path), piped)


def test_a_writer_that_dies_without_an_error_is_replaced_by_the_file(monkeypatch):
    """The forked writer killed (out of memory, a signal) is not an error of the file: the
    text is written again through a temporary file and the read is complete."""
    import os

    path = SAMPLES / "nanjing_xinjiekou.osm.pbf"
    whole = read_file(path)
    monkeypatch.setattr(osm_file, "_write_piped", lambda path, fd: os._exit(9))
    assert osm_file._parse_piped(path) is None
    _same_read(read_file(path), whole)


def test_a_writer_that_dies_mid_line_is_replaced_by_the_file(monkeypatch):
    """Killed in the middle of a line, the writer leaves text that cannot be parsed: that is
    still not an error of the file (nor one telling the user to download it again)."""
    import os

    path = SAMPLES / "nanjing_xinjiekou.osm.pbf"
    whole = read_file(path)

    def dies_mid_line(path, fd):
        os.write(fd, b"n1 Tamenity=school x116.1 y39.9\nw5 Thighway=residential Nn1x116.1y39.9,n2x1")
        os._exit(9)

    monkeypatch.setattr(osm_file, "_write_piped", dies_mid_line)
    assert osm_file._parse_piped(path) is None
    _same_read(read_file(path), whole)


def test_a_broken_file_raises_its_own_error_through_the_pipe(tmp_path):
    """A PBF cut short: libosmium's error, raised in this process (the child stays quiet)."""

    data = (SAMPLES / "nanjing_xinjiekou.osm.pbf").read_bytes()
    cut = tmp_path / "cut.osm.pbf"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(RuntimeError, match="PBF"):
        osm_file._parse_piped(cut)


def test_too_little_temporary_space_is_refused_before_writing(monkeypatch, tmp_path):
    """Through a file, the text needs room: too little is refused with the folder named and
    TMPDIR as the fix, before libosmium's writer runs out of space (it cannot recover)."""
    import shutil
    from collections import namedtuple

    from planner import InputError

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(settings, "sweep_workers", 1)
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(10**9, 10**9, 1000))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    with pytest.raises(InputError, match=r"temporary space .* set TMPDIR") as err:
        read_file(SAMPLES / "nanjing_xinjiekou.osm.pbf")
    assert str(tmp_path) in str(err.value)
    assert not list(tmp_path.iterdir())  # nothing left behind


def _closed_by_strings(nodes: str) -> bool:
    """A closed ring of four nodes or more, read off the string with str methods."""
    if nodes.count(",") < 3:
        return False
    last = nodes.rfind(",") + 1
    return nodes[1 : nodes.index("x")] == nodes[last : nodes.index("x", last)]


@given(
    st.lists(
        st.lists(
            st.tuples(st.integers(-(10**12), 10**12), st.booleans()),
            max_size=7,
        ),
        max_size=30,
    )
)
def test_closed_rings_on_all_lists_at_once_agree_with_each_list_read_alone(ways):
    """Node lists of every length (none to seven nodes; ids of one to thirteen digits, some
    negative; some nodes without a location), the last id often equal to the first."""
    lists = []
    for way in ways:
        nodes = [f"n{i}x1.5y-2.25" if located else f"n{i}xy" for i, located in way]
        if len(way) >= 2 and way[0][0] % 2 == 0:  # close about half the rings
            nodes[-1] = nodes[0]
        lists.append("N" + ",".join(nodes))
    raw, starts, ends = osm_text._string_bytes(pa.array(lists, pa.string()))
    assert _closed_rings(raw, starts, ends).tolist() == [_closed_by_strings(s) for s in lists]


def test_a_file_of_nodes_alone_reads(tmp_path):
    """Only a node (a POI), no way: no street, no area, the POI with its tags."""
    path = write_osm(tmp_path / "poi.osm", {1: (0, 0)}, [], {1: {"amenity": "school", "name": "小学"}})
    found = read_file(path)
    assert found.feat_ids == ["node/1"] and found.feat_tags == [{"amenity": "school", "name": "小学"}]
    assert len(found.street_ids) == 0 and found.street_tags.shape == (0, len(STREET_TAGS))


def _opl_escaped(text: str) -> str:
    """``text`` escaped as libosmium's OPL writer does (its safe ranges written as they are)."""
    safe = ((0x21, 0x24), (0x26, 0x2B), (0x2D, 0x3C), (0x3E, 0x3F), (0x41, 0x7E), (0xA1, 0xAC), (0xAE, 0x5FF))
    return "".join(c if any(a <= ord(c) <= b for a, b in safe) else f"%{ord(c):x}%" for c in text)


@given(st.lists(st.text(max_size=12), min_size=1, max_size=8))
def test_escapes_decoded_all_at_once_are_the_characters_but_the_delimiters(texts):
    """Any text (CJK, emoji, line breaks, "%", ",", "="), escaped as OPL does and decoded at
    once: every character comes back except the delimiters the split needs, left escaped."""
    escaped = "\n".join(_opl_escaped(t) for t in texts)
    decoded = _decode_escapes(escaped).split("\n")
    kept = {",": "%2c%", "=": "%3d%", "%": "%25%", "\n": "%a%", "\r": "%d%"}
    assert decoded == ["".join(kept.get(c, c) for c in t) for t in texts]


def test_escapes_at_each_utf8_length_boundary_decode():
    """The last and first code points of each UTF-8 length (one to four bytes) and the
    largest, escaped with one to six hex digits, alone, in a run and between letters."""
    edges = [0x9, 0x7F, 0x80, 0x7FF, 0x800, 0xFFFF, 0x10000, 0x10FFFF]
    chars = "".join(map(chr, edges))
    escaped = "".join(f"%{c:x}%" for c in edges)
    assert _decode_escapes(escaped) == chars
    assert _decode_escapes(f"a{escaped}b%2c%c") == f"a{chars}b%2c%c"
    assert [_decode_escapes(f"%{c:x}%") for c in edges] == list(chars)
    assert _decode_escapes("%a%%25%") == "%a%%25%"  # delimiters alone: the text as it is


@given(
    st.lists(st.dictionaries(st.text(max_size=6), st.text(max_size=10), max_size=4), min_size=1, max_size=10),
    st.integers(1, 6),
)
def test_tag_fields_read_in_batches_are_the_tags_each_object_its_own_dict(tag_sets, batch):
    """OPL tag fields of any text, some repeated within a batch and in later ones, read batch
    by batch: each object's dict equals its tags in their order, and no two share a dict."""
    objects = tag_sets + tag_sets[::2]
    fields = ["T" + ",".join(f"{_opl_escaped(k)}={_opl_escaped(v)}" for k, v in t.items()) for t in objects]
    seen, read = osm_text._Seen(), []
    for at in range(0, len(fields), batch):
        column = pa.chunked_array([fields[at : at + batch]], pa.string())
        parsed = osm_text._tag_fields(column, seen)
        tags = parsed.dicts()
        assert [parsed.protos[c] for c in parsed.codes.tolist()] == tags
        read += tags
    assert [list(t.items()) for t in read] == [list(t.items()) for t in objects]
    assert all(type(t) is dict for t in read) and len({id(t) for t in read}) == len(read)


def test_a_closed_barrier_is_a_line_and_an_area_each_with_its_own_dict():
    """A closed way tagged barrier is a line feature and an area: equal tags, two dicts, and
    later objects with the same field a dict each too."""
    ring = "Nn1x116.1y39.9,n2x116.2y39.9,n3x116.2y40.0,n1x116.1y39.9"
    text = f"w7 Tbarrier=wall {ring}\nw8 Tbarrier=wall {ring}\n"
    _, (ways,), _ = osm_text.parse_text(io.BytesIO(text.encode()))
    assert ways["line_ids"] == ["way/7", "way/8"] and ways["area_ids"].tolist() == [7, 8]
    every = ways["line_tags"] + ways["area_tags"]
    assert every == [{"barrier": "wall"}] * 4 and len({id(t) for t in every}) == 4


def test_text_whose_nodes_and_ways_alternate_is_read_run_by_run():
    """An unsorted file's text (a node after a way) is split into runs of one kind each."""
    text = (
        "n1 Tamenity=school x116.1 y39.9\n"
        "w5 Thighway=residential Nn1x116.1y39.9,n2x116.2y39.9\n"
        "n3 Tshop=bakery x116.3 y39.8\n"
    )
    nodes, ways, _ = osm_text.parse_text(io.BytesIO(text.encode()))
    assert [n["ids"] for n in nodes] == [["node/1"], ["node/3"]]
    assert [w["street_ids"].tolist() for w in ways] == [[5]]
    assert nodes[1]["tags"] == [{"shop": "bakery"}] and ways[0]["street_tags"][0][0] == "residential"
    with pytest.raises(RuntimeError, match="OPL text with a line starting"):
        osm_text.parse_text(io.BytesIO(("\n" + text).encode()))
    # The last line without its line break reads the same.
    nodes, ways, _ = osm_text.parse_text(io.BytesIO(text.rstrip("\n").encode()))
    assert [n["ids"] for n in nodes] == [["node/1"], ["node/3"]] and nodes[1]["tags"] == [{"shop": "bakery"}]
    with pytest.raises(RuntimeError, match="not lines of 4 fields"):
        osm_text.parse_text(io.BytesIO(b"n1 Tamenity=school x116.1\n"))


def _xml(path, nodes: dict, ways: list, relations: list):
    """An OSM XML file: nodes id → (lon, lat); ways (id, refs, tags); relations (id,
    [(type, ref, role)], tags)."""

    def tags(t):
        return "".join(f'<tag k="{k}" v="{v}"/>' for k, v in t.items())

    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6">']
    out += [f'<node id="{i}" version="1" lon="{x}" lat="{y}"/>' for i, (x, y) in nodes.items()]
    for i, refs, t in ways:
        out.append(
            f'<way id="{i}" version="1">' + "".join(f'<nd ref="{r}"/>' for r in refs) + tags(t) + "</way>"
        )
    for i, members, t in relations:
        body = "".join(f'<member type="{k}" ref="{r}" role="{role}"/>' for k, r, role in members)
        out.append(f'<relation id="{i}" version="1">{body}{tags(t)}</relation>')
    path.write_text("\n".join([*out, "</osm>"]), encoding="utf-8")
    return path


def _box(first: int, x: float, y: float, size: float) -> dict:
    return {
        first + k: (x + dx * size, y + dy * size)
        for k, (dx, dy) in enumerate([(0, 0), (1, 0), (1, 1), (0, 1)])
    }


def test_multipolygons_are_libosmiums_and_take_their_place_among_the_way_areas(tmp_path):
    """Relations are assembled by libosmium from their lines and their member ways' (written
    to a small file), not by a second read of the whole file: the areas, their tags and their
    order must be those of libosmium's assembler over the whole file. A multipolygon of two
    untagged outer halves and an untagged inner ring comes just before the area of the way
    after its last member; a boundary is an area; one whose member is missing, one with no
    tag but its type, and a highway square without an area key are not; a route is not; nor
    is a closed way tagged area=no."""
    nodes = {**_box(1, 116.30, 39.90, 0.01), **_box(5, 116.303, 39.903, 0.002)}
    nodes |= {
        **_box(11, 116.32, 39.90, 0.005),
        **_box(21, 116.33, 39.90, 0.005),
        **_box(31, 116.34, 39.90, 0.005),
    }
    nodes |= _box(41, 116.35, 39.90, 0.005)
    ways = [
        (5, [11, 12, 13, 14, 11], {"building": "yes"}),
        (10, [1, 2, 3], {}),
        (11, [3, 4, 1], {}),
        (12, [5, 6, 7, 8, 5], {}),
        (13, [21, 22, 23, 24, 21], {"landuse": "residential", "name": "小区"}),
        (14, [31, 32, 33, 34, 31], {}),
        (15, [41, 42, 43, 44, 41], {"highway": "footway"}),
        (16, [1, 2], {"highway": "residential"}),
        (17, [41, 42, 9999, 44, 41], {}),
        (18, [21, 22, 23, 24, 21], {"leisure": "park", "area": "no"}),  # no area: area=no
    ]
    relations = [
        (
            100,
            [("w", 10, "outer"), ("w", 11, "outer"), ("w", 12, "inner")],
            {"type": "multipolygon", "building": "yes", "name": "楼 A,=%"},
        ),
        (101, [("w", 14, "outer")], {"type": "boundary", "boundary": "administrative", "name": "街道"}),
        (102, [("w", 14, "outer"), ("w", 99, "outer")], {"type": "multipolygon", "landuse": "grass"}),
        (103, [("w", 14, "outer")], {"type": "multipolygon"}),
        (104, [("w", 15, "outer")], {"type": "multipolygon", "highway": "pedestrian"}),
        # Clipped: a member way's node is missing from the file.
        (106, [("w", 17, "outer")], {"type": "multipolygon", "leisure": "park"}),
        (105, [("w", 16, ""), ("n", 1, "stop")], {"type": "route", "route": "bus"}),
    ]
    path = _xml(tmp_path / "mp.osm", nodes, ways, relations)
    assert_same(path)
    found = read_file(path)
    areas = [i for i in found.feat_ids if i.startswith(("way", "relation"))]
    assert areas == ["way/5", "relation/100", "way/13", "relation/101"]
    assert found.feat_tags[found.feat_ids.index("relation/100")] == {"building": "yes", "name": "楼 A,=%"}
    hole = found.geometries(WGS84)[found.feat_ids.index("relation/100")]
    assert len(hole.geoms) == 1 and len(hole.geoms[0].interiors) == 1


def test_a_file_whose_ways_are_not_in_id_order_reads(tmp_path):
    """libosmium's assembler refuses ways out of id order; the closed ways' areas built from
    the text do not need it: the same areas as the file in order, in the file's order."""
    nodes = {**_box(1, 116.30, 39.90, 0.001), **_box(5, 116.31, 39.90, 0.001)}
    ways = [(7, [1, 2, 3, 4, 1], {"building": "yes"}), (6, [5, 6, 7, 8, 5], {"building": "school"})]
    unsorted = read_file(_xml(tmp_path / "unsorted.osm", nodes, ways, []))
    ordered = read_file(_xml(tmp_path / "sorted.osm", nodes, ways[::-1], []))
    assert unsorted.feat_ids == ["way/7", "way/6"] and ordered.feat_ids == ["way/6", "way/7"]
    assert shapely.equals_exact(
        unsorted.geometries(WGS84)[::-1], ordered.geometries(WGS84), tolerance=0
    ).all()


@given(
    st.lists(
        st.lists(
            st.tuples(
                st.integers(-(180 * 10**7), 180 * 10**7),
                st.integers(-(90 * 10**7), 90 * 10**7),
                st.booleans(),
            ),
            max_size=6,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_member_ways_written_for_libosmium_read_back_exactly(ways):
    """A multipolygon's member ways go to libosmium as OPL lines made column-wise: every
    location (either sign, either hemisphere, whole degrees and 1e-7 steps) comes back in
    libosmium's fixed point exactly, and a node without one comes back without one."""
    import tempfile
    from pathlib import Path

    counts = np.array([len(w) for w in ways], np.int64)
    x = np.array([lon if located else osm_rings.UNSET for w in ways for lon, _, located in w], np.int64)
    y = np.array([lat if located else osm_rings.UNSET for w in ways for _, lat, located in w], np.int64)
    ids = np.arange(len(ways), 0, -1, dtype=np.int64) * 10  # written back in id order
    part = {
        "way_ids": ids,
        "way_len": counts,
        "way_refs": np.arange(1, counts.sum() + 1),
        "way_x": x,
        "way_y": y,
    }
    lines = osm_file._member_way_lines([part], ids)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ways.opl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        read = {
            w.id: [(n.ref, n.location.x, n.location.y, n.location.valid()) for n in w.nodes]
            for w in osmium.FileProcessor(str(path))
        }
    starts = np.concatenate([[0], np.cumsum(counts)])
    for k, way_id in enumerate(ids.tolist()):
        nodes = range(starts[k], starts[k + 1])
        want = [(i + 1, x[i], y[i], True) if x[i] != osm_rings.UNSET else (i + 1, False) for i in nodes]
        got = [(r, lx, ly, True) if ok else (r, False) for r, lx, ly, ok in read[way_id]]
        assert got == want


def test_too_little_room_for_the_multipolygons_text_is_refused(monkeypatch, tmp_path):
    """The multipolygons go to libosmium through a small file: where TMPDIR has no room for
    it, one line naming the folder and TMPDIR as the fix, and nothing left behind."""
    import shutil
    import tempfile
    from collections import namedtuple

    from planner import InputError

    path = SAMPLES / "nanjing_xinjiekou.osm.pbf"  # 10 multipolygons
    read_file(path)  # the text through a pipe needs no room
    usage = namedtuple("usage", "total used free")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(10**9, 10**9, 100))
    with pytest.raises(
        InputError, match=r"nanjing_xinjiekou.* multipolygons .* temporary space .* set TMPDIR"
    ) as err:
        read_file(path)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())
