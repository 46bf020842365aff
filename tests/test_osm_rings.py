"""Closed ways' areas from their node locations (planner.osm_rings) against libosmium's own
assembler over the same data: the same ways make an area, with exactly the same coordinates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import osmium
import pytest
import shapely
from conftest import SAMPLES
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from planner.osm_rings import FIX, UNSET, WayAreas, assemble_ways, closed_way_areas, way_polygons

X0, Y0 = 1_163_000_000, 399_000_000  # Beijing, fixed point


def _libosmium(path: Path) -> dict[int, object]:
    """libosmium's areas of the ways of a file: way id -> MultiPolygon, or None for an empty
    (failed) area; ways without an area are absent."""
    manager = osmium.area.AreaManager()
    osmium.apply(osmium.io.Reader(str(path), osmium.osm.RELATION), manager.first_pass_handler())
    locations = osmium.NodeLocationsForWays(osmium.index.create_map("flex_mem"))
    locations.ignore_errors()
    assembled = osmium.BufferIterator()
    osmium.apply(osmium.io.Reader(str(path)), locations, manager.second_pass_to_buffer(assembled))
    factory = osmium.geom.WKBFactory()
    found = {}
    for area in assembled:
        if area.from_way() and len(area.tags):
            try:
                found[area.orig_id()] = shapely.from_wkb(factory.create_multipolygon(area))
            except RuntimeError:
                found[area.orig_id()] = None
    return found


def _write(path: Path, nodes: dict[int, tuple[int, int] | None], ways: list[tuple]) -> Path:
    """An OSM file of nodes (id -> fixed-point (x, y); None: left out, as in a clipped
    extract) and ways (id, node ids, tags)."""
    writer = osmium.SimpleWriter(str(path))
    for node_id in sorted(nodes):
        if nodes[node_id] is not None:
            x, y = nodes[node_id]
            writer.add_node(osmium.osm.mutable.Node(id=node_id, location=(x / FIX, y / FIX)))
    for way_id, refs, tags in sorted(ways, key=lambda way: way[0]):
        writer.add_way(osmium.osm.mutable.Way(id=way_id, nodes=refs, tags=tags))
    writer.close()
    return path


def _arrays(nodes: dict, ways: list[tuple]) -> tuple:
    """The inputs of :func:`way_polygons` for ``ways``: ids, node counts, x, y, area=no."""
    refs = [ref for _, way_refs, _ in ways for ref in way_refs]
    xy = np.array([nodes.get(ref) or (UNSET, UNSET) for ref in refs], np.int64).reshape(-1, 2)
    return (
        np.array([way[0] for way in ways], np.int64),
        np.array([len(way[1]) for way in ways], np.int64),
        xy[:, 0],
        xy[:, 1],
        np.array([way[2].get("area") == "no" for way in ways], bool),
    )


def _assert_same(ids: np.ndarray, mine: WayAreas, theirs: dict[int, object]) -> None:
    """``mine`` (for ways ``ids``) is libosmium's answer ``theirs`` exactly."""
    assert not mine.hard.any()
    assert set(ids[mine.area].tolist()) == {i for i, g in theirs.items() if g is not None}
    assert set(ids[mine.empty].tolist()) == {i for i, g in theirs.items() if g is None}
    expected = [theirs[i] for i in ids[mine.area].tolist()]
    geom_type, coords, offsets = (
        shapely.to_ragged_array(expected) if expected else (None, np.zeros((0, 2)), ())
    )
    if expected:
        assert geom_type == mine.geom_type
    assert np.array_equal(mine.coords, coords)
    for got, want in zip(mine.offsets, offsets, strict=False):
        assert np.array_equal(got, want)


def _read(path: Path) -> tuple[tuple, list[dict]]:
    """The tagged ways of a file as the inputs of :func:`way_polygons`, node locations by
    pyosmium, and their tags."""
    ids, counts, xs, ys, tags = [], [], [], [], []
    for way in osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY).with_locations():
        if way.is_way() and len(way.tags):
            ids.append(way.id)
            counts.append(len(way.nodes))
            tags.append(dict(way.tags))
            for ref in way.nodes:
                valid = ref.location.valid()
                xs.append(ref.location.x if valid else UNSET)
                ys.append(ref.location.y if valid else UNSET)
    area_no = np.array([t.get("area") == "no" for t in tags], bool)
    return (
        np.array(ids, np.int64),
        np.array(counts, np.int64),
        np.array(xs, np.int64),
        np.array(ys, np.int64),
        area_no,
    ), tags


SAMPLE_FILES = sorted(SAMPLES.glob("*.osm.pbf"))


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name.split(".")[0])
def test_samples_match_libosmium(path: Path) -> None:
    args, _ = _read(path)
    theirs = _libosmium(path)
    assert sum(g is not None for g in theirs.values()) > 0
    _assert_same(args[0], closed_way_areas(*args), theirs)
    # The simple rings alone: each polygon is libosmium's.
    simple = way_polygons(*args)
    assert simple.area.sum() > 0.9 * len(theirs)
    mine = shapely.from_ragged_array(simple.geom_type, simple.coords, simple.offsets)
    for way_id, polygon in zip(args[0][simple.area].tolist(), mine, strict=True):
        assert np.array_equal(shapely.get_coordinates(polygon), shapely.get_coordinates(theirs[way_id]))


@pytest.mark.parametrize("path", SAMPLE_FILES[:3], ids=lambda p: p.name.split(".")[0])
def test_assemble_ways_is_libosmium_on_all_ways(path: Path) -> None:
    args, tags = _read(path)
    _assert_same(args[0], assemble_ways(*args[:4], tags), _libosmium(path))


def _p(dx: int, dy: int) -> tuple[int, int]:
    return X0 + dx, Y0 + dy


# Nodes of the hand-made cases: a square A B C D, A2 at A's place, and others.
NODES: dict[int, tuple[int, int] | None] = {
    1: _p(0, 0),  # A
    2: _p(10, 0),  # B
    3: _p(10, 10),  # C
    4: _p(0, 10),  # D
    5: _p(0, 0),  # A2: another node at A
    6: _p(5, 5),  # M: the square's centre
    7: _p(15, -5),  # S: a spike's tip
    8: _p(20, 0),  # E: on the line A B
    9: _p(5, 0),  # F: between A and B
    10: None,  # X: no location
    11: _p(20, 10),  # G
    12: _p(20, 20),  # H
    13: _p(10, 20),  # K
    14: _p(10, 10),  # C2: another node at C
    15: _p(8, 3),  # N: inside the square, off its diagonals
}
A, B, C, D, A2, M, S, E, F, X, G, H, K, C2, N = range(1, 16)
B_ = {"building": "yes"}
CASES = {
    "square": ([A, B, C, D, A], B_),
    "clockwise": ([A, D, C, B, A], B_),
    "starts at C": ([C, D, A, B, C], B_),
    "triangle": ([A, B, C, A], B_),
    "three nodes": ([A, B, A], B_),
    "area=no": ([A, B, C, D, A], {"barrier": "fence", "area": "no"}),
    "bow-tie": ([A, B, D, C, A], B_),
    "figure-eight at a node": ([A, B, C, G, H, K, C, D, A], B_),
    "figure-eight at two nodes of one place": ([A, B, C, G, H, K, C2, D, A], B_),
    "spike": ([A, B, S, B, C, D, A], B_),
    "repeated nodes": ([A, A, B, C, C, C, D, A, A], B_),
    "repeated locations": ([A, A2, B, C, D, A2], B_),
    "ends two nodes of one place": ([A, B, C, D, A2], B_),
    "node without a location": ([A, B, X, D, A], B_),
    "ends without a location": ([X, B, C, D, X], B_),
    "not closed": ([A, B, C, D], B_),
    "collinear": ([A, B, E, A], B_),
    "back and forth": ([A, B, A, B, A], B_),
    "one place": ([A, A2, A, A2], B_),
    "vertex on an edge": ([A, B, C, F, D, A], B_),
    "straight vertex": ([A, F, B, C, D, A], B_),
    "through the start": ([A, B, N, A, C, D, A], B_),
    "through the centre, crossing": ([A, B, M, A, C, D, A], B_),
}
# Stars of 40 points (more than osm_rings tests pair by pair), one with two far points swapped.
for i in range(40):
    radius = 1000 if i % 2 else 2000
    NODES[100 + i] = _p(round(radius * np.cos(i * np.pi / 20)), round(radius * np.sin(i * np.pi / 20)))
STAR = list(range(100, 140))
CASES["star"] = ([*STAR, STAR[0]], B_)
CASES["star, crossing"] = ([*STAR[:5], STAR[25], *STAR[6:25], STAR[5], *STAR[26:], STAR[0]], B_)


SQUARE = [
    "square",
    "clockwise",
    "starts at C",
    "spike",
    "repeated nodes",
    "repeated locations",
    "ends two nodes of one place",
]
SIMPLE = [*SQUARE[:3], *SQUARE[4:], "triangle", "straight vertex", "star"]
TWO_RINGS = ["figure-eight at a node", "figure-eight at two nodes of one place", "through the start"]
FAILED = [
    "bow-tie",
    "collinear",
    "back and forth",
    "one place",
    "vertex on an edge",
    "through the centre, crossing",
    "star, crossing",
]


def test_hand_made_cases_are_libosmiums(tmp_path: Path) -> None:
    ways = [(i + 1, refs, tags) for i, (refs, tags) in enumerate(CASES.values())]
    theirs = _libosmium(_write(tmp_path / "cases.osm.pbf", NODES, ways))
    args = _arrays(NODES, ways)
    mine = closed_way_areas(*args)
    _assert_same(args[0], mine, theirs)
    names = np.array(list(CASES))
    assert set(names[mine.area]) == {*SIMPLE, *TWO_RINGS, "spike"}
    assert set(names[mine.empty]) == set(FAILED)
    assert set(names[way_polygons(*args).area]) == set(SIMPLE)
    assert set(names[way_polygons(*args).hard]) == {*TWO_RINGS, "spike", *FAILED}
    polygons = dict(
        zip(
            names[mine.area],
            shapely.from_ragged_array(mine.geom_type, mine.coords, mine.offsets),
            strict=True,
        )
    )
    # Counter-clockwise from the smallest (x, y) vertex, repeated locations and the spike gone.
    square = np.array([NODES[n] for n in (A, B, C, D, A)]) / FIX
    for name in SQUARE:
        assert np.array_equal(shapely.get_coordinates(polygons[name]), square)
    assert shapely.get_num_geometries(polygons["figure-eight at a node"]) == 2
    assert (
        shapely.get_coordinates(polygons["straight vertex"]).tolist()[:3]
        == (np.array([NODES[n] for n in (A, F, B)]) / FIX).tolist()
    )


def test_assemble_ways_answers_for_each_way(tmp_path: Path) -> None:
    ways = [(i + 1, refs, tags) for i, (refs, tags) in enumerate(CASES.values())]
    ids, counts, x, y, _ = _arrays(NODES, ways)
    theirs = _libosmium(_write(tmp_path / "cases.osm.pbf", NODES, ways))
    # In another order and with other ids, each way's answer is its own.
    order = np.arange(len(ways))[::-1]
    node = np.concatenate(
        [np.arange(s, s + c) for s, c in zip(np.cumsum(counts) - counts, counts, strict=True)][::-1]
    )
    mine = assemble_ways(ids[order] * 1000, counts[order], x[node], y[node], [ways[i][2] for i in order])
    _assert_same(ids[order], mine, theirs)
    with pytest.raises(ValueError, match="distinct way ids"):
        assemble_ways(np.array([7, 7]), counts[:2], x[: counts[:2].sum()], y[: counts[:2].sum()], [{}, {}])


@st.composite
def _ring(draw: st.DrawFn) -> tuple[list[tuple[int, int]], bool]:
    """A closed ring's locations (small integers: touching, collinear and repeated points
    are common) and whether its closing node is another node at the first's place."""
    if draw(st.booleans()):  # star-shaped: vertices by angle around a centre
        n = draw(st.integers(3, 40))
        size = draw(st.sampled_from([3, 6, 40, 1000]))
        angles = sorted(draw(st.lists(st.floats(0, 2 * np.pi, exclude_max=True), min_size=n, max_size=n)))
        radii = draw(st.lists(st.integers(0, size), min_size=n, max_size=n))
        points = [
            (round(size + r * np.cos(a)), round(size + r * np.sin(a)))
            for a, r in zip(angles, radii, strict=True)
        ]
    else:
        points = draw(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=2, max_size=8))
    if draw(st.booleans()):
        points = points[::-1]
    start = draw(st.integers(0, len(points) - 1))
    points = points[start:] + points[:start]
    doubled = draw(st.lists(st.integers(0, len(points) - 1), max_size=2))
    points = [p for i, p in enumerate(points) for _ in range(1 + doubled.count(i))]
    return [*points, points[0]], draw(st.booleans())


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rings=st.lists(_ring(), min_size=1, max_size=6))
def test_random_rings_are_libosmiums(tmp_path_factory: pytest.TempPathFactory, rings: list) -> None:
    nodes, ways = {}, []
    for way_id, (points, other_end) in enumerate(rings, start=1):
        refs = []
        for dx, dy in points[:-1]:
            refs.append(len(nodes) + 1)
            nodes[refs[-1]] = _p(dx, dy)
        if other_end:
            nodes[len(nodes) + 1] = nodes[refs[0]]
        refs.append(len(nodes) if other_end else refs[0])
        ways.append((way_id, refs, {"building": "yes"}))
    path = _write(tmp_path_factory.mktemp("rings") / "rings.osm.pbf", nodes, ways)
    args = _arrays(nodes, ways)
    _assert_same(args[0], closed_way_areas(*args), _libosmium(path))
    # The simple path takes exactly the rings GEOS calls simple.
    distinct = [[p for i, p in enumerate(pts) if i == 0 or p != pts[i - 1]][:-1] for pts, _ in rings]
    geos = [len(d) >= 3 and shapely.is_simple(shapely.linearrings(np.array(d, float))) for d in distinct]
    assert way_polygons(*args).area.tolist() == geos


def test_batches_and_no_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    import planner.osm_rings

    args, _ = _read(SAMPLES / "nanjing_xinjiekou.osm.pbf")
    whole = way_polygons(*args)
    monkeypatch.setattr(planner.osm_rings, "_BATCH_NODES", 50)  # batches of a few ways
    parts = way_polygons(*args)
    for got, want in zip(
        [parts.area, parts.hard, parts.coords, *parts.offsets],
        [whole.area, whole.hard, whole.coords, *whole.offsets],
        strict=True,
    ):
        assert np.array_equal(got, want)
    assert whole.area.sum() == 1496
    none = np.zeros(0, np.int64)
    empty = closed_way_areas(none, none, none, none, np.zeros(0, bool))
    assert empty.coords.shape == (0, 2) and [o.tolist() for o in empty.offsets] == [[0], [0], [0]]
