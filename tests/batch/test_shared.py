"""Regions sharing one audit: the grouping (hand-worked boxes and street-node counts), and
each region's outputs against the single-region command, faults, resume and roll-up."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import batch
from planner.batch.shared import share_groups
from planner.cli import main
from planner.sources import load_region

from .helpers import FEW, SAMPLES, finished, regions_csv

CELL = 0.01


def _grid(k: int, side: float = 0.02, pad: float = 0.006, x0: float = 116.30, y0: float = 39.90):
    """k × k regions of ``side`` degrees, each box reaching ``pad`` into its neighbours."""
    return np.array(
        [
            (x0 + i * side - pad, y0 + j * side - pad, x0 + (i + 1) * side + pad, y0 + (j + 1) * side + pad)
            for j in range(k)
            for i in range(k)
        ]
    )


def _cells(box: np.ndarray, per_cell: int = 100) -> dict:
    """``per_cell`` street nodes in every cell whose centre lies in some box."""
    x0, y0, x1, y1 = box[:, 0].min(), box[:, 1].min(), box[:, 2].max(), box[:, 3].max()
    return {
        (i, j): per_cell
        for i in range(int(np.floor(x0 / CELL)), int(np.floor(x1 / CELL)) + 1)
        for j in range(int(np.floor(y0 / CELL)), int(np.floor(y1 / CELL)) + 1)
    }


def test_neighbours_share_up_to_the_region_limit():
    box = _grid(2)  # 0 1 / 2 3 (row 0 to the south)
    cells = _cells(box)
    assert share_groups(box, cells, CELL, 1e9, 4) == [[0, 1, 2, 3]]
    # Two a group: the seed (south-west) takes a neighbour (east, first of the two equal ones).
    assert share_groups(box, cells, CELL, 1e9, 2) == [[0, 1], [2, 3]]
    assert share_groups(box, cells, CELL, 1e9, 1) == [[0], [1], [2], [3]]


def test_the_node_cap_holds_and_the_most_shared_neighbour_comes_first():
    box = _grid(2)
    cells = _cells(box)
    # A region's box holds the centres of 4 × 4 cells (100 nodes each), a pair 6 × 4 (the two
    # middle columns are shared), the four 6 × 6.
    assert share_groups(box, cells, CELL, 2400, 4) == [[0, 1], [2, 3]]
    assert share_groups(box, cells, CELL, 2399, 4) == [[0], [1], [2], [3]]
    assert share_groups(box, cells, CELL, 3600, 4) == [[0, 1, 2, 3]]
    # Below the four: a pair and one of the northern regions (adding 2 × 4 cells: 3200).
    three = share_groups(box, cells, CELL, 3599, 4)
    assert sorted(map(len, three)) == [1, 3] and three[0][:2] == [0, 1]
    # Streets only in the three western columns: region 2 (north-west) shares 2 × 3 of its
    # cells with region 0, region 1 (east) only 1 × 4, so region 2 joins first.
    west = {k: v for k, v in cells.items() if (k[0] + 0.5) * CELL < 116.32}
    assert share_groups(box, west, CELL, 1e9, 2) == [[0, 2], [1, 3]]


def test_boxes_that_do_not_meet_or_cross_a_utm_zone_edge_stay_alone():
    apart = np.array([(116.30, 39.90, 116.32, 39.92), (116.40, 39.90, 116.42, 39.92)])
    assert share_groups(apart, _cells(apart), CELL, 1e9, 2) == [[0], [1]]
    # 114°E is the edge between UTM zones 49 and 50: the box across it is audited alone.
    across = np.array([(113.99, 30.0, 114.01, 30.02), (114.0, 30.0, 114.02, 30.02)])
    assert share_groups(across, _cells(across), CELL, 1e9, 2) == [[0], [1]]
    # Two boxes each inside zone 50 but touching: shared.
    inside = np.array([(114.001, 30.0, 114.02, 30.02), (114.015, 30.0, 114.04, 30.02)])
    assert share_groups(inside, _cells(inside), CELL, 1e9, 2) == [[0, 1]]


# ----------------------------------------------------------------------------------------------
# end to end: regions sharing an audit against the single-region command


def _parts(osm: Path, nx: int, ny: int, prefix: str) -> list[dict]:
    """An nx × ny grid of boundary regions over an extract's streets (cut from the row's osm)."""
    x0, y0, x1, y1 = load_region(osm).bounds_wgs84
    xs, ys = np.linspace(x0, x1, nx + 1), np.linspace(y0, y1, ny + 1)
    return [
        {
            "name": f"{prefix}{i}{j}",
            "osm": str(osm),
            "wkt": shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]).wkt,
        }
        for i in range(nx)
        for j in range(ny)
    ]


def _single(tmp_path: Path, row: dict) -> Path:
    """`planner audit --boundary` of one region, as a user runs it."""
    boundary = tmp_path / f"{row['name']}.gpkg"
    gpd.GeoDataFrame(geometry=[shapely.from_wkt(row["wkt"])], crs=4326).to_file(boundary)
    out = tmp_path / "single" / row["name"]
    args = ["audit", "--osm", row["osm"], "--boundary", str(boundary), "--categories", FEW, "--no-map"]
    assert main([*args, "--out", str(out)]) == 0
    return out


def _assert_same_within(single: Path, batched: Path, minutes: int) -> None:
    """Home by home: the same homes; times up to ``minutes`` equal (float rounding aside),
    and so is every coverage verdict and the coverage table."""
    a = gpd.read_file(single / "homes.gpkg", layer="homes")
    b = gpd.read_file(batched / "homes.gpkg", layer="homes")
    assert len(a) == len(b) > 0
    assert a.geometry.geom_equals_exact(b.geometry, tolerance=0).all()
    built = ~a["estimated"].to_numpy()  # grid homes are numbered over what was loaded
    assert (a["home_id"].to_numpy()[built] == b["home_id"].to_numpy()[built]).all()
    assert (single / "coverage.csv").read_bytes() == (batched / "coverage.csv").read_bytes()
    verdicts = [c for c in a.columns if c.endswith("_within_target") or c.startswith("complete_")]
    pd.testing.assert_frame_equal(a[verdicts], b[verdicts])
    for key in FEW.split(","):
        ta, tb = a[f"{key}_time_s"].to_numpy(), b[f"{key}_time_s"].to_numpy()
        near = np.nan_to_num(ta, nan=np.inf) <= 60 * minutes
        assert (near == (np.nan_to_num(tb, nan=np.inf) <= 60 * minutes)).all(), key
        np.testing.assert_allclose(tb[near], ta[near], rtol=1e-9, err_msg=key)
        fa, fb = a[f"{key}_facility_id"].to_numpy()[near], b[f"{key}_facility_id"].to_numpy()[near]
        assert (fa == fb).all(), key


def test_regions_sharing_an_audit_equal_the_command_within_the_thresholds(client, tmp_path):
    rows = _parts(SAMPLES / "nanjing_xinjiekou.osm.pbf", 4, 2, "nj")
    rows += _parts(SAMPLES / "beijing_haidian_wudaokou.osm.pbf", 2, 2, "wd")
    rows += _parts(SAMPLES / "shenzhen_longgang.osm.pbf", 2, 2, "sz")  # 10 × 8 km: buffers of 1.24 km
    regions = regions_csv(tmp_path / "parts.csv", rows)
    out = tmp_path / "batch"
    opts = {"categories": FEW, "map_html": False}
    summary = batch.run_batch(regions, out_dir=out, scheduler=client, progress=False, task_options=opts)
    groups = summary["shared_audits"]
    # 16 regions on 2 workers: groups of at most 8, never across extracts.
    assert groups and all(2 <= len(g) <= 8 and len({n[:2] for n in g}) == 1 for g in groups)
    assert {n[:2] for g in groups for n in g} == {"nj", "wd", "sz"}
    done = [r["name"] for r in rows if (out / "regions" / r["name"] / "summary.json").exists()]
    assert summary["regions"]["done"] == len(done) >= 12  # some parts have no homes
    compared, larger = 0, 0
    for row in rows:
        if row["name"] not in done:
            continue
        single = _single(tmp_path, row)
        batched = out / "regions" / row["name"]
        _assert_same_within(single, batched, 15)
        sa = json.loads((single / "summary.json").read_text(encoding="utf-8"))
        sb = json.loads((batched / "summary.json").read_text(encoding="utf-8"))
        group = next((g for g in groups if row["name"] in g), None)
        if group is None:
            assert "shared_audit" not in sb
            continue
        shared = sb.pop("shared_audit")
        assert shared["regions"] == group and shared["group"] == group[0]
        assert shared["exact_up_to_minutes"] == 15 and shared["network"]["nodes"] >= sb["network"]["nodes"]
        larger += shared["network"]["nodes"] > sb["network"]["nodes"]
        # The same facts but where the shared network matters: times past 15 minutes (homes
        # beyond the sweep's limit or without any path), the network's counts and notes.
        for s in (sa, sb):
            for key in ("region", "seconds", "network", "notes", "travel_times", "inputs"):
                s.pop(key)
        assert sa == sb
        compared += 1
    assert compared >= 10 and larger >= 4  # Longgang's parts: the shared network reaches further


def test_a_failing_group_fails_each_region_and_a_resume_runs_only_what_is_left(client, tmp_path):
    rows = _parts(SAMPLES / "nanjing_xinjiekou.osm.pbf", 4, 2, "nj")
    facilities = tmp_path / "facilities.csv"
    facilities.write_text("name,lon,lat\nnew kindergarten,118.77,32.04\n", encoding="utf-8")  # no category
    for row in rows:
        row["facilities"] = str(facilities) if row["name"] in ("nj00", "nj10") else ""
    regions = regions_csv(tmp_path / "parts.csv", rows)
    out = tmp_path / "batch"
    opts = {"categories": FEW, "map_html": True}
    first = batch.run_batch(regions, out_dir=out, scheduler=client, progress=False, task_options=opts)
    # The two regions with the broken file share their audit (the same files, neighbours).
    assert ["nj00", "nj10"] in first["shared_audits"]
    errors = {f["region"]: f["error"] for f in first["failures"]}
    reason = f"{facilities}: no 'category' column; add one with category keys such as kindergarten"
    assert errors["nj00"] == errors["nj10"] == reason
    assert not (out / "regions" / "nj00").exists()
    done = sorted(n for n in (r["name"] for r in rows) if n not in errors)
    assert len(done) >= 5 and first["regions"]["done"] == len(done)
    assert all(len(g) >= 2 for g in first["shared_audits"]) and len(first["shared_audits"]) >= 2
    # Roll-up and overview map over the regions done, whichever way they were audited.
    table = pd.read_csv(out / "indicators.csv")
    assert set(table["region"]) == {*done, batch.ALL_REGIONS}
    whole = table[
        (table["region"] == batch.ALL_REGIONS) & (table["category"] == "park") & (table["minutes"] == 15)
    ]
    parts = table[
        (table["region"] != batch.ALL_REGIONS) & (table["category"] == "park") & (table["minutes"] == 15)
    ]
    assert whole["homes"].iloc[0] == parts["homes"].sum() > 0
    html = (out / "map.html").read_text(encoding="utf-8")
    assert all(n in html for n in done)
    assert all((out / "regions" / n / "map.html").exists() for n in done)
    assert set(pd.read_csv(out / "failures.csv")["region"]) == set(errors)

    before = finished(out)
    facilities.write_text(
        "category,name,lon,lat\nkindergarten,new kindergarten,118.77,32.04\n", encoding="utf-8"
    )
    again = batch.run_batch(
        regions, out_dir=out, scheduler=client, progress=False, task_options=opts, resume=True
    )
    assert again["regions"]["skipped_done_before"] == len(done)
    assert again["regions"]["run"] == len(errors)
    after = finished(out)
    assert all(after[n] == before[n] for n in done)  # not recomputed
    assert "nj10" in after
    added = gpd.read_file(out / "regions" / "nj10" / "facilities.gpkg", layer="facilities")
    assert "file/0" in set(added["facility_id"])
