"""run_batch end to end on a Dask LocalCluster of 2 workers: outputs equal the single-region
command's, broken regions fail alone, a killed worker and an interrupted run still give
complete results, homes near a boundary keep their facility across it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cloudpickle
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from planner import audit as audit_module
from planner import batch
from planner.cli import main
from planner.sources import load_region
from planner.tables import excel_ready

from .helpers import (
    FEW,
    REAL,
    SAMPLES,
    SHARED,
    assert_same_region,
    finished,
    regions_csv,
)

# The helper tasks below run on the workers: send them by value, so workers need not import tests/.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_outputs_equal_single_region_command_and_broken_regions_fail_alone(client, tmp_path):
    truncated = tmp_path / "truncated.osm.pbf"
    data = (SAMPLES / "beijing_haidian_cau.osm.pbf").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    rows = [{"name": r, "osm": f"{SAMPLES / r}.osm.pbf"} for r in REAL]
    rows += [
        {"name": "shanghai_center_roads", "osm": str(SAMPLES / "shanghai_center_roads.osm.pbf")},
        {"name": "truncated", "osm": "truncated.osm.pbf"},  # relative: to the regions file's folder
        {"name": "missing", "osm": "no_such_file.osm.pbf"},
    ]
    regions = regions_csv(tmp_path / "regions.csv", rows)
    out = tmp_path / "batch"
    summary = batch.run_batch(regions, out_dir=out, scheduler=client, progress=False)

    assert summary["regions"] == {"total": 9, "done": 6, "run": 9, "skipped_done_before": 0, "failed": 3}
    for r in REAL:
        assert main(["audit", "--osm", f"{SAMPLES / r}.osm.pbf", "--out", str(tmp_path / "single" / r)]) == 0
        assert_same_region(tmp_path / "single" / r, out / "regions" / r)
        # The printable maps are the command's, a batch's only with printable=True.
        assert (tmp_path / "single" / r / "map.png").exists()
        assert not list((out / "regions" / r).glob("map.p*"))
    assert summary["printable"] is False
    assert sorted(finished(out)) == sorted(REAL)  # failed regions leave no folder

    failures = pd.read_csv(out / "failures.csv").set_index("region")["error"]
    assert sorted(failures.index) == ["missing", "shanghai_center_roads", "truncated"]
    assert "no homes found" in failures["shanghai_center_roads"]
    assert "not a readable OSM file" in failures["truncated"]
    assert (
        "file not found" in failures["missing"]
        and str(tmp_path / "no_such_file.osm.pbf") in failures["missing"]
    )
    assert all("\n" not in e for e in failures)

    # indicators.csv: each region's counts behind coverage.csv, and the whole set from summed counts.
    ind = pd.read_csv(out / "indicators.csv")
    for r in REAL:
        cov = pd.read_csv(out / "regions" / r / "coverage.csv")
        mine = ind[ind["region"] == r].reset_index(drop=True)
        # The same whole people; percentages from them within the last digit (0.1) of the region's.
        for g in ("homes", "population", "elderly", "children"):
            assert mine[f"{g}_within"].tolist() == cov[f"{g}_within"].tolist(), g
        np.testing.assert_allclose(mine["population_pct"], cov["population_pct"], atol=0.1 + 1e-9)
        np.testing.assert_allclose(mine["elderly_pct"], cov["elderly_pct"], atol=0.1 + 1e-9)
    # Regions done before a resume are rolled up from their files: the same numbers.
    from_disk = pd.DataFrame(
        batch.region_indicators(str(out / "regions" / "nanjing_xinjiekou"), "nanjing_xinjiekou")["rows"]
    )
    from_disk = excel_ready(from_disk)  # as indicators.csv holds them
    pd.testing.assert_frame_equal(
        from_disk,
        ind[ind["region"] == "nanjing_xinjiekou"][from_disk.columns].reset_index(drop=True),
        check_exact=False,
        rtol=1e-12,
        check_dtype=False,
    )
    keys = ["category", "level", "threshold", "minutes"]
    whole = ind[ind["region"] == batch.ALL_REGIONS].set_index(keys)
    parts = ind[ind["region"] != batch.ALL_REGIONS].groupby(keys, dropna=False)
    # Totals are the true totals rounded, so within half a person per region of the rounded parts' sum.
    np.testing.assert_allclose(whole["population"], parts["population"].sum().loc[whole.index], atol=0.5 * 6)
    assert whole["population_within"].tolist() == parts["population_within"].sum().loc[whole.index].tolist()
    np.testing.assert_allclose(
        whole["population_pct"],
        (100 * parts["population_within"].sum() / parts["population"].sum()).loc[whole.index],
        atol=0.05 + 0.1,
    )
    assert (whole["regions"] == 6).all()

    html = (out / "map.html").read_text(encoding="utf-8")
    assert "kindergarten" in summary["map_indicator"] and "nanjing_xinjiekou" in html
    # Regions far apart stay visible at the zoom that shows them all: a marker and a name each.
    assert "Region markers" in html and "Region names" in html
    assert '<script src="http' not in html  # offline
    saved = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert saved["workers"] == 2 and len(saved["peak_memory_mb_per_worker"]) >= 2
    assert all(0 < mb < 3 * 1024 for mb in saved["peak_memory_mb_per_worker"].values())


@pytest.mark.shared
def test_shared_xml_extracts_equal_single_region_command(client, tmp_path):
    folder = SHARED / "regions"
    if not folder.exists():
        pytest.skip("needs ../shared/regions (the larger real data beside the repo); absent in this clone")
    names = ["beijing_chaoyang_wangjing", "zhejiang_haining_zhouwangmiao"]
    # A GeoPackage regions file without boundaries: osm paths relative to its own folder.
    frame = gpd.GeoDataFrame(
        {"name": names, "osm": [os.path.relpath(folder / f"{n}.osm", tmp_path) for n in names]},
        geometry=[None, None],
        crs=4326,
    )
    frame.to_file(tmp_path / "regions.gpkg")
    out = tmp_path / "batch"
    batch.run_batch(
        tmp_path / "regions.gpkg",
        out_dir=out,
        scheduler=client,
        progress=False,
        task_options={"categories": FEW, "map_html": False},
    )
    for n in names:
        assert (
            main(
                [
                    "audit",
                    "--osm",
                    str(folder / f"{n}.osm"),
                    "--categories",
                    FEW,
                    "--no-map",
                    "--out",
                    str(tmp_path / "single" / n),
                ]
            )
            == 0
        )
        assert_same_region(tmp_path / "single" / n, out / "regions" / n)


def _audit_dying_once(spec, out_dir, options):
    """The audit, but the worker process dies the first time it meets region ``options['die']``."""
    marker = Path(options["markers"]) / f"{spec.name}.died"
    if spec.name == options["die"] and not marker.exists():
        marker.touch()
        os._exit(1)
    Path(options["markers"], f"{spec.name}.{os.getpid()}.{time.time_ns()}.ran").touch()
    if spec.name == options.get("raise_once") and not Path(options["markers"], "raised").exists():
        Path(options["markers"], "raised").touch()
        raise RuntimeError("a transient error")
    return batch.run_audit_region(spec, out_dir, options["audit"])


_audit_dying_once.writes_audit_outputs = True


def test_worker_killed_mid_run_still_gives_complete_correct_result(client, tmp_path):
    names = ["zhejiang_haining_zhouwangmiao", "beijing_chaoyang_wangjing", "beijing_haidian_cau"]
    regions = regions_csv(
        tmp_path / "regions.csv", [{"name": n, "osm": f"{SAMPLES / n}.osm.pbf"} for n in names]
    )
    markers = tmp_path / "markers"
    markers.mkdir()
    opts = {"categories": FEW, "map_html": False}
    summary = batch.run_batch(
        regions,
        task=_audit_dying_once,
        out_dir=tmp_path / "batch",
        scheduler=client,
        progress=False,
        task_options={
            "die": "beijing_chaoyang_wangjing",
            "raise_once": "beijing_haidian_cau",
            "markers": str(markers),
            "audit": batch.check_options("audit", opts),
        },
    )
    assert (markers / "beijing_chaoyang_wangjing.died").exists() and (markers / "raised").exists()
    assert summary["regions"]["done"] == 3 and summary["regions"]["failed"] == 0
    assert len(list(markers.glob("beijing_haidian_cau.*.ran"))) == 2  # raised once, retried once
    assert sorted(finished(tmp_path / "batch")) == sorted(names)
    client.wait_for_workers(2)  # the nanny restarted the dead worker
    for n in names:
        assert (
            main(
                [
                    "audit",
                    "--osm",
                    f"{SAMPLES / n}.osm.pbf",
                    "--categories",
                    FEW,
                    "--no-map",
                    "--out",
                    str(tmp_path / "single" / n),
                ]
            )
            == 0
        )
        assert_same_region(tmp_path / "single" / n, tmp_path / "batch" / "regions" / n)
    assert (
        len(pd.read_csv(tmp_path / "batch" / "indicators.csv")["region"].unique()) == 4
    )  # 3 + the whole set


def _audit_hanging(spec, out_dir, options):
    """The audit, except that region ``options['hang']`` starts writing and then never ends."""
    if spec.name == options["hang"]:
        out_dir.mkdir(parents=True)
        (out_dir / "coverage.csv").write_text("half-written", encoding="utf-8")
        time.sleep(3600)
    return batch.run_audit_region(spec, out_dir, options["audit"])


def _audit_counting(spec, out_dir, options):
    Path(options["counter"], f"{spec.name}.{time.time_ns()}").touch()
    return batch.run_audit_region(spec, out_dir, options["audit"])


_audit_hanging.writes_audit_outputs = _audit_counting.writes_audit_outputs = True


def test_resume_after_interruption_runs_only_unfinished_regions(client, tmp_path):
    names = ["zhejiang_haining_zhouwangmiao", "beijing_chaoyang_wangjing", "shenzhen_longgang"]
    regions = regions_csv(
        tmp_path / "regions.csv", [{"name": n, "osm": f"{SAMPLES / n}.osm.pbf"} for n in names]
    )
    out = tmp_path / "batch"
    audit_opts = batch.check_options("audit", {"categories": FEW, "map_html": False})
    (tmp_path / "opts.pkl").write_bytes(
        cloudpickle.dumps((_audit_hanging, {"hang": "shenzhen_longgang", "audit": audit_opts}))
    )
    script = textwrap.dedent(f"""
        import pickle
        from planner.batch import run_batch
        if __name__ == "__main__":
            task, options = pickle.load(open({str(tmp_path / "opts.pkl")!r}, "rb"))
            run_batch({str(regions)!r}, task=task, out_dir={str(out)!r}, workers=2, memory_limit="2GiB",
                      task_options=options, progress=False)
    """)
    (tmp_path / "interrupted.py").write_text(script, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "interrupted.py")],
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            partial = (
                list((out / "regions").glob(".shenzhen_longgang.partial-*/coverage.csv"))
                if (out / "regions").exists()
                else []
            )
            if partial and all((out / "regions" / n / "summary.json").exists() for n in names[:2]):
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole run: client, scheduler and workers
        proc.wait()
    before = finished(out)  # the interrupted region is not visible, only its hidden partial folder
    assert sorted(before) == sorted(names[:2])
    assert list((out / "regions").glob(".shenzhen_longgang.partial-*"))

    counter = tmp_path / "counter"
    counter.mkdir()
    summary = batch.run_batch(
        regions,
        task=_audit_counting,
        out_dir=out,
        scheduler=client,
        resume=True,
        progress=False,
        task_options={"counter": str(counter), "audit": audit_opts},
    )
    assert sorted(p.name.split(".")[0] for p in counter.iterdir()) == ["shenzhen_longgang"]
    assert summary["regions"] == {"total": 3, "done": 3, "run": 1, "skipped_done_before": 2, "failed": 0}
    after = finished(out)
    assert sorted(after) == sorted(names) and all(after[n] == before[n] for n in before)  # not recomputed
    assert not list((out / "regions").glob(".*"))  # the partial folder is cleaned
    assert set(pd.read_csv(out / "indicators.csv")["region"]) == {*names, batch.ALL_REGIONS}


def test_home_near_boundary_keeps_its_facility_across_it(client, tmp_path):
    osm = SAMPLES / "nanjing_xinjiekou.osm.pbf"
    split = 118.782  # through the homes of Xinjiekou
    west, east = shapely.box(118.766, 32.034, split, 32.053), shapely.box(split, 32.034, 118.798, 32.053)
    regions = regions_csv(
        tmp_path / "halves.csv", [{"name": "west", "wkt": west.wkt}, {"name": "east", "wkt": east.wkt}]
    )
    out = tmp_path / "batch"
    opts = {"categories": FEW, "map_html": False}
    # Each half audited alone, as the command does (regions sharing an audit: test_shared.py).
    summary = batch.run_batch(
        regions,
        osm=osm,
        out_dir=out,
        scheduler=client,
        progress=False,
        task_options=opts,
        cut=True,
        share=False,
    )
    assert summary["regions"]["done"] == 2 and summary["shared_audits"] == []
    assert not (out / "_extracts").exists()  # cuts of finished regions are removed

    whole = audit_module.audit(load_region(osm), categories=FEW, with_isochrones=False)
    whole_time = whole.homes.set_index("home_id")
    fac_x = whole.facilities.to_crs(4326).geometry.representative_point().x
    fac_side = dict(
        zip(whole.facilities["facility_id"], np.where(fac_x < split, "west", "east"), strict=True)
    )
    crossing = 0
    for name in ("west", "east"):
        homes = gpd.read_file(out / "regions" / name / "homes.gpkg", layer="homes")
        assert homes.to_crs(4326).within(west if name == "west" else east).all()  # only homes inside count
        built = homes[~homes["estimated"]]  # grid homes are numbered per region; buildings keep OSM ids
        for key in FEW.split(","):
            near = built[built[f"{key}_time_s"] <= 15 * 60]
            across = near[[fac_side.get(f) not in (None, name) for f in near[f"{key}_facility_id"]]]
            crossing += len(across)
            ref = whole_time.loc[near["home_id"]]
            np.testing.assert_allclose(
                near[f"{key}_time_s"].to_numpy(), ref[f"{key}_time_s"].to_numpy(), rtol=1e-9
            )
            assert (near[f"{key}_facility_id"].to_numpy() == ref[f"{key}_facility_id"].to_numpy()).all()
    assert crossing > 0  # some homes' nearest facility does lie in the other region

    # Each half equals `planner audit --boundary` on the whole extract (the cut changes nothing).
    gpd.GeoDataFrame(geometry=[west], crs=4326).to_file(tmp_path / "west.gpkg")
    assert (
        main(
            [
                "audit",
                "--osm",
                str(osm),
                "--boundary",
                str(tmp_path / "west.gpkg"),
                "--categories",
                FEW,
                "--no-map",
                "--out",
                str(tmp_path / "single_west"),
            ]
        )
        == 0
    )
    single = json.loads((tmp_path / "single_west" / "summary.json").read_text(encoding="utf-8"))
    assert single.pop("region") == "nanjing_xinjiekou"  # the command names a region by its file
    batched = json.loads((out / "regions" / "west" / "summary.json").read_text(encoding="utf-8"))
    assert batched.pop("region") == "west"
    # Inputs: the user's extract, not the batch's removed cut; the boundary is a regions file row.
    assert batched["inputs"]["osm"] == single["inputs"]["osm"] == str(osm)
    assert batched["inputs"]["osm_path"] == single["inputs"]["osm_path"] == str(osm.resolve())
    assert single["inputs"]["boundary"] == str((tmp_path / "west.gpkg").resolve())
    assert batched["inputs"]["boundary"] == "given in Python, not a file"
    single["inputs"]["boundary"] = batched["inputs"]["boundary"]
    (tmp_path / "single_west" / "summary.json").write_text(
        json.dumps({**single, "region": "west"}), encoding="utf-8"
    )
    assert_same_region(tmp_path / "single_west", out / "regions" / "west")
