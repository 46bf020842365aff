"""Cutting boundary regions out of a shared extract: a cut loads as the whole file does."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
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
    import osmium

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
