"""Cutting boundary regions out of a shared extract: a cut loads as the whole file does."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import pandas as pd
import pytest
import shapely

from planner import batch
from planner.batch.extracts import cut_box, cut_shared_extracts, cut_shared_groups
from planner.batch.regions import RegionSpec
from planner.sources import load_region

from .helpers import SAMPLES

BUFFER_M = 300.0


def _halves(path):
    x0, y0, x1, y1 = load_region(path).bounds_wgs84
    xm = (x0 + x1) / 2
    return {
        "west": shapely.box(x0, y0, xm, y1).buffer(-0.002),
        "east": shapely.box(xm, y0, x1, y1).buffer(-0.002),
    }


def _feature_rows(region):
    geoms = shapely.set_precision(region.features.geometry.to_numpy(), 1e-3)
    return sorted(
        zip(region.features["osm_id"], map(repr, region.features["tags"]), shapely.to_wkt(geoms), strict=True)
    )


@pytest.mark.parametrize("name", ["beijing_haidian_wudaokou", "nanjing_xinjiekou", "shanghai_center_roads"])
def test_a_cut_loads_as_the_whole_file_does(tmp_path, name):
    path = SAMPLES / f"{name}.osm.pbf"
    polys = _halves(path)
    cuts = batch.cut_extracts(
        path,
        {n: cut_box(p, BUFFER_M) for n, p in polys.items()},
        {n: tmp_path / f"{n}.osm.pbf" for n in polys},
    )
    for n, poly in polys.items():
        boundary = gpd.GeoSeries([poly], crs=4326)
        whole = load_region(path, boundary=boundary, buffer_m=BUFFER_M)
        cut = load_region(cuts[n], boundary=boundary, buffer_m=BUFFER_M)
        assert cut.crs == whole.crs and len(whole.seg_u) > 100
        for field in ("node_id", "node_x", "node_y", "seg_u", "seg_v"):
            np.testing.assert_array_equal(getattr(cut, field), getattr(whole, field), err_msg=field)
        pd.testing.assert_frame_equal(
            cut.ways.iloc[cut.seg_way].reset_index(drop=True),
            whole.ways.iloc[whole.seg_way].reset_index(drop=True),
        )
        assert _feature_rows(cut) == _feature_rows(whole)


class _Client:
    """Runs what the batch submits at once, in this process."""

    def submit(self, fn, *args, pure=True, key=None):
        return fn(*args)

    def gather(self, futures):
        return futures


def test_regions_sharing_a_small_extract_are_cut_one_alone_is_not(tmp_path):
    path = SAMPLES / "nanjing_xinjiekou.osm.pbf"
    polys = _halves(path)
    assert path.stat().st_size < batch.cut_min_bytes
    specs = [
        RegionSpec(name=n, osm=str(path), boundary=p, row=i + 1) for i, (n, p) in enumerate(polys.items())
    ]
    both, groups = cut_shared_extracts(specs, tmp_path / "a", {}, None, _Client(), progress=False)
    assert groups == []  # without share=True each region has its own cut
    assert all(s.cut_osm and s.source == s.cut_osm for s in both)
    assert all(
        Path(s.cut_osm).parent == tmp_path / "a" / "_extracts" and Path(s.cut_osm).is_file() for s in both
    )
    assert both[0].cut_osm != both[1].cut_osm
    alone, _ = cut_shared_extracts(specs[:1], tmp_path / "b", {}, None, _Client(), progress=False)
    assert alone[0].cut_osm is None and alone[0].source == str(path)
    forced, _ = cut_shared_extracts(specs[:1], tmp_path / "c", {}, True, _Client(), progress=False)
    assert forced[0].cut_osm is not None
    never, _ = cut_shared_extracts(specs, tmp_path / "d", {}, False, _Client(), progress=False)
    assert all(s.cut_osm is None for s in never)


def _ids(path) -> set[tuple[str, int]]:
    return {(o.type_str(), o.id) for o in osmium.FileProcessor(str(path))}


def test_a_group_cut_holds_exactly_what_its_members_cuts_hold(tmp_path):
    path = SAMPLES / "nanjing_xinjiekou.osm.pbf"
    polys = _halves(path)
    boxes = {n: cut_box(p, BUFFER_M) for n, p in polys.items()}
    alone = batch.cut_extracts(path, boxes, {n: tmp_path / f"{n}.osm.pbf" for n in polys})
    found = cut_shared_groups(path, boxes, tmp_path / "g", max_nodes=10**9, max_regions=2)
    assert found["groups"] == [["west", "east"]]
    assert found["paths"]["west"] == found["paths"]["east"]
    assert _ids(found["paths"]["west"]) == _ids(alone["west"]) | _ids(alone["east"])
    # The street nodes the cut pass counts: between the larger half's and the sum of both.
    sizes = [len(load_region(alone[n]).node_id) for n in polys]
    assert max(sizes) < found["street_nodes"][0] <= 1.2 * sum(sizes)
    # Capped below the pair's street nodes, each half is cut alone.
    apart = cut_shared_groups(
        path, boxes, tmp_path / "h", max_nodes=found["street_nodes"][0] - 1, max_regions=2
    )
    assert apart["groups"] == [["west"], ["east"]]
    assert _ids(apart["paths"]["east"]) == _ids(alone["east"])


def test_shared_regions_are_cut_once_per_group(tmp_path):
    path = SAMPLES / "nanjing_xinjiekou.osm.pbf"
    specs = [
        RegionSpec(name=n, osm=str(path), boundary=p, row=i + 1)
        for i, (n, p) in enumerate(_halves(path).items())
    ]
    opts = {"minutes": [5, 10, 15]}
    both, groups = cut_shared_extracts(
        specs, tmp_path / "a", opts, None, _Client(), False, share=True, workers=1
    )
    assert groups == [["west", "east"]] and both[0].cut_osm == both[1].cut_osm
    # One worker per region: each region is audited alone, on its own cut.
    apart, groups = cut_shared_extracts(
        specs, tmp_path / "b", opts, None, _Client(), False, share=True, workers=2
    )
    assert groups == [] and apart[0].cut_osm != apart[1].cut_osm
    # Not with a population raster or table (their people are shared over the homes loaded).
    for key in ("population", "population_table"):
        people = {**opts, key: "people.tif" if key == "population" else "people.csv"}
        apart, groups = cut_shared_extracts(
            specs, tmp_path / key, people, None, _Client(), False, share=True, workers=1
        )
        assert groups == [] and apart[0].cut_osm != apart[1].cut_osm


# A hand-made extract: box A = (0, 0, 1, 1), box B = (2, 2, 3, 3).
_TINY = """\
n1 T x0.5 y0.5
n2 T x1.5 y0.5
n3 T x0.5 y1.5
n4 T x2.5 y2.5
n5 T x2.6 y2.5
n6 T x2.6 y2.6
n7 Tamenity=cafe x0.2 y0.2
n8 T x y
n9 T x5 y5
w10 Thighway=residential Nn1,n2
w11 Tbuilding=yes Nn1,n3,n2,n1
w12 Tbuilding=yes Nn4,n5,n6,n4
w13 Tbarrier=wall Nn4,n5
w14 Tnatural=water Nn7,n2,n3,n7
w15 Thighway=footway Nn8,n9
w16 Thighway=service Nn1,n7
r21 Ttype=multipolygon,natural=water Mw14@outer,w12@inner
r22 Ttype=route,route=bus Mw10@,n1@stop
"""


def _described(o) -> tuple:
    if o.is_node():
        more = (o.location.lon, o.location.lat)
    elif o.is_way():
        more = [n.ref for n in o.nodes]
    else:
        more = [(m.type, m.ref, m.role) for m in o.members]
    return (o.type_str(), o.id, dict(o.tags), more)


def test_a_cut_keeps_what_can_matter_inside_its_box(tmp_path):
    src = tmp_path / "tiny.opl"
    src.write_text(_TINY, encoding="utf-8")
    boxes = {"a": (0.0, 0.0, 1.0, 1.0), "b": (2.0, 2.0, 3.0, 3.0)}
    cuts = batch.cut_extracts(src, boxes, {n: tmp_path / f"{n}.osm.pbf" for n in boxes})
    # A: the nodes inside (1, 7); the street w10 without its outside node 2; the building w11
    # and the lake w14, which reach outside, with all their nodes (2, 3); the multipolygon r21
    # whose outer ring meets A, whole: its inner ring w12 far away and w12's nodes (4, 5, 6).
    # Not the wall w13 (in B only), the footway w15 (its one located node is outside), the
    # bus route r22 (not an area).
    assert _ids(cuts["a"]) == {
        *(("n", i) for i in (1, 2, 3, 4, 5, 6, 7)),
        *(("w", i) for i in (10, 11, 12, 14, 16)),
        ("r", 21),
    }
    # B: its nodes 4, 5, 6 and the ways within it (w12, the wall w13); r21 (its members' box
    # spans both boxes) with w14 and its nodes 7, 2, 3.
    assert _ids(cuts["b"]) == {
        *(("n", i) for i in (2, 3, 4, 5, 6, 7)),
        *(("w", i) for i in (12, 13, 14)),
        ("r", 21),
    }
    # Objects keep their tags, node lists (the street's outside node as a reference), locations
    # and members, in file order.
    got = [_described(o) for o in osmium.FileProcessor(str(cuts["a"]))]
    assert [o[:2] for o in got] == sorted(_ids(cuts["a"]), key=lambda t: ("nwr".index(t[0]), t[1]))
    assert ("w", 10, {"highway": "residential"}, [1, 2]) in got
    assert ("n", 7, {"amenity": "cafe"}, (0.2, 0.2)) in got
    assert (
        "r",
        21,
        {"type": "multipolygon", "natural": "water"},
        [("w", 14, "outer"), ("w", 12, "inner")],
    ) in got
    # The street nodes counted for grouping, per cell of 0.01° by the street's box centre, and
    # for a box those of the cells whose centre it holds: w16's two (cell centre (0.355, 0.355));
    # not w10's (centre (1.0, 0.5): its cell's centre (1.005, 0.505) is outside), nor w15's
    # (it meets no box).
    found = cut_shared_groups(src, {"a": boxes["a"]}, tmp_path / "g", max_nodes=10**9, max_regions=2)
    assert found["groups"] == [["a"]] and found["street_nodes"] == [2]
    assert _ids(found["paths"]["a"]) == _ids(cuts["a"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.osm.pbf", "b.osm.pbf", "g", "tiny.opl"]
    assert len(list((tmp_path / "g").iterdir())) == 1  # the cut; no text left behind


def test_a_cut_without_room_for_its_text_is_refused(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from planner._errors import InputError

    path = SAMPLES / "nanjing_xinjiekou.osm.pbf"
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(InputError, match=r"nanjing_xinjiekou\.osm\.pbf: cutting its regions needs about"):
        batch.cut_extracts(
            path, {"a": cut_box(_halves(path)["west"], BUFFER_M)}, {"a": tmp_path / "a.osm.pbf"}
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("tags", "street"),
    [
        (b"Thighway=residential,name=x", True),
        (b"Tname=a,highway=service", True),
        (b"Thighway=pedestrian,area=no", True),
        (b"Thighway=pedestrian,area=yes", False),  # a square: an area, not a street
        (b"Tabandoned:highway=service", False),
        (b"Tnote=highway%3d%x", False),  # "=" inside a value is escaped
        (b"T", False),
    ],
)
def test_the_cut_tells_streets_by_their_opl_tag_field(tags, street):
    import pyarrow as pa

    from planner.osm_text import streets

    assert streets(pa.array([tags.decode()])).tolist() == [street]


def _meeting_by_every_pair(bbox: np.ndarray, box: np.ndarray) -> list[tuple[int, int]]:
    b = np.nan_to_num(bbox, nan=1e9)[:, None, :]
    hit = (
        (box[:, 0] <= b[..., 2])
        & (b[..., 0] <= box[:, 2])
        & (box[:, 1] <= b[..., 3])
        & (b[..., 1] <= box[:, 3])
    )
    return list(zip(*(a.tolist() for a in np.nonzero(hit)), strict=True))


@pytest.mark.parametrize("few", [0, 16])
@pytest.mark.parametrize("seed", range(30))
def test_rectangles_meet_the_boxes_through_the_grid_as_pair_by_pair(seed, few, monkeypatch):
    """The grid join (and, for a few boxes, the comparison of each pair) finds the pairs a
    comparison of every rectangle with every box finds, in the same order: points, rectangles
    on a box's edge, ones wider than many cells, none."""
    from planner.batch import extracts

    rng = np.random.default_rng(seed)
    nb, nr = int(rng.integers(1, 30)), int(rng.integers(0, 300))
    x0, y0 = rng.uniform(0, 10, nb), rng.uniform(0, 10, nb)
    box = np.c_[x0, y0, x0 + rng.uniform(0, 3, nb), y0 + rng.uniform(0, 3, nb)]
    corner = rng.uniform(-1, 12, (nr, 2))
    extent = rng.uniform(0, 2, (nr, 2)) * (rng.random((nr, 1)) < 0.7)  # a third are points
    extent[rng.random(nr) < 0.05] *= 40  # wider than many cells
    bbox = np.c_[corner, corner + extent]
    if nr:
        bbox[rng.random(nr) < 0.1] = np.nan  # no location
    if nr > 2:
        bbox[0] = [box[0, 2], box[0, 3], box[0, 2] + 1, box[0, 3] + 1]  # on the first box's corner
    monkeypatch.setattr(extracts, "_FEW_BOXES", few)
    rows, boxes = extracts._meeting(bbox, box)
    assert list(zip(rows.tolist(), boxes.tolist(), strict=True)) == _meeting_by_every_pair(bbox, box)


def test_items_reach_every_cut_that_holds_their_box():
    from planner.batch.extracts import _cuts_of

    at, cut = _cuts_of(np.array([2, 0, 1, 2]), [[0, 2], [2], [3]])
    assert sorted(zip(at.tolist(), cut.tolist(), strict=True)) == [(0, 0), (0, 1), (1, 0), (3, 0), (3, 1)]


def test_cuts_written_a_few_at_a_time_hold_what_all_at_once_hold(tmp_path, monkeypatch):
    """More cuts than files may be open: written in rounds (the text read once per round),
    each cut holds the same objects, tags and node lists."""
    from planner.batch import extracts

    path = SAMPLES / "beijing_haidian_cau.osm.pbf"
    r = load_region(path)
    x0, y0, x1, y1 = r.bounds_wgs84
    xs, ys = np.linspace(x0, x1, 4), np.linspace(y0, y1, 3)
    boxes = {f"r{i}{j}": (xs[i], ys[j], xs[i + 1], ys[j + 1]) for i in range(3) for j in range(2)}
    together = extracts.cut_extracts(path, boxes, {n: tmp_path / "all" / f"{n}.osm.pbf" for n in boxes})
    monkeypatch.setattr(extracts, "_files_at_once", lambda: 4)  # rounds of 4, 2
    rounds = extracts.cut_extracts(path, boxes, {n: tmp_path / "rounds" / f"{n}.osm.pbf" for n in boxes})
    for name in boxes:
        assert _objects(rounds[name]) == _objects(together[name]), name
    assert sum(len(_objects(together[n])) > 0 for n in boxes) >= 4  # most boxes hold something


def _objects(path) -> list[tuple]:
    out = []
    for o in osmium.FileProcessor(str(path)):
        tags = tuple(sorted((t.k, t.v) for t in o.tags))
        if o.is_node():
            out.append(("n", o.id, o.location.x, o.location.y, tags))
        elif o.is_way():
            out.append(("w", o.id, tuple(n.ref for n in o.nodes), tags))
        else:
            out.append(("r", o.id, tuple((m.type, m.ref, m.role) for m in o.members), tags))
    return out
