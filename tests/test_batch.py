"""Batch runs on a Dask LocalCluster of 2 workers (started once for this module).

Real extracts from ``sample_regions/`` (and ``../shared/regions/`` when it is there): outputs
equal the single-region command's, broken regions fail alone, a killed worker and an
interrupted run still give complete results, and homes near a boundary keep their facility
across it.
"""

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
from planner import batch, settings
from planner._errors import InputError
from planner.cli import main
from planner.sources import load_region

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_regions"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL = ["beijing_haidian_cau", "nanjing_xinjiekou", "beijing_chaoyang_wangjing", "shenzhen_longgang",
        "beijing_haidian_wudaokou", "zhejiang_haining_zhouwangmiao"]
FEW = "kindergarten,primary_school,clinic,market,park"  # a quicker audit where the test is about the batch

# The helper tasks below run on the workers: send them by value, so workers need not import tests/.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="3GiB",
                           dashboard_address=":0", silence_logs=40)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def _regions_csv(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _assert_same_region(single: Path, batched: Path) -> None:
    """What the single-region command wrote equals what the batch wrote (timings aside)."""
    for layer in ("homes", "facilities", "isochrones"):
        a = gpd.read_file(single / "homes.gpkg", layer=layer)
        b = gpd.read_file(batched / "homes.gpkg", layer=layer)
        pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry")))
        assert a.geometry.geom_equals_exact(b.geometry, tolerance=0).all(), layer
    assert (single / "coverage.csv").read_bytes() == (batched / "coverage.csv").read_bytes()
    sa = json.loads((single / "summary.json").read_text(encoding="utf-8"))
    sb = json.loads((batched / "summary.json").read_text(encoding="utf-8"))
    sa.pop("seconds"), sb.pop("seconds")
    assert sa == sb
    assert (single / "map.html").exists() == (batched / "map.html").exists()


def _finished(out: Path) -> dict[str, float]:
    """Region folder → mtime of its summary.json; and no half-written folder may be visible."""
    regions = out / "regions"
    visible = [p for p in regions.iterdir() if not p.name.startswith(".")]
    assert all((p / "summary.json").exists() for p in visible), "a region folder without summary.json"
    return {p.name: (p / "summary.json").stat().st_mtime_ns for p in visible}


# ----------------------------------------------------------------------------------------------
# outputs equal the single-region command; broken regions fail alone


def test_outputs_equal_single_region_command_and_broken_regions_fail_alone(client, tmp_path):
    truncated = tmp_path / "truncated.osm.pbf"
    data = (SAMPLES / "beijing_haidian_cau.osm.pbf").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    rows = [{"name": r, "osm": f"{SAMPLES / r}.osm.pbf"} for r in REAL]
    rows += [{"name": "shanghai_center_roads", "osm": str(SAMPLES / "shanghai_center_roads.osm.pbf")},
             {"name": "truncated", "osm": "truncated.osm.pbf"},  # relative: to the regions file's folder
             {"name": "missing", "osm": "no_such_file.osm.pbf"}]
    regions = _regions_csv(tmp_path / "regions.csv", rows)
    out = tmp_path / "batch"
    summary = batch.run_batch(regions, out_dir=out, scheduler=client, progress=False)

    assert summary["regions"] == {"total": 9, "done": 6, "run": 9, "skipped_done_before": 0, "failed": 3}
    for r in REAL:
        assert main(["audit", "--osm", f"{SAMPLES / r}.osm.pbf", "--out", str(tmp_path / "single" / r)]) == 0
        _assert_same_region(tmp_path / "single" / r, out / "regions" / r)
    assert sorted(_finished(out)) == sorted(REAL)  # failed regions leave no folder

    failures = pd.read_csv(out / "failures.csv").set_index("region")["error"]
    assert sorted(failures.index) == ["missing", "shanghai_center_roads", "truncated"]
    assert "no homes found" in failures["shanghai_center_roads"]
    assert "not a readable OSM file" in failures["truncated"]
    assert "file not found" in failures["missing"] and str(tmp_path / "no_such_file.osm.pbf") in failures["missing"]
    assert all("\n" not in e for e in failures)

    # indicators.csv: each region's counts behind coverage.csv, and the whole set from summed counts.
    ind = pd.read_csv(out / "indicators.csv")
    for r in REAL:
        cov = pd.read_csv(out / "regions" / r / "coverage.csv")
        mine = ind[ind["region"] == r].reset_index(drop=True)
        np.testing.assert_allclose(mine["population_share"], cov["population_share"], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(mine["elderly_share"], cov["elderly_share"], rtol=1e-12, atol=1e-15)
    # Regions done before a resume are rolled up from their files: the same numbers.
    from_disk = pd.DataFrame(batch.region_indicators(str(out / "regions" / "nanjing_xinjiekou"), "nanjing_xinjiekou")["rows"])
    pd.testing.assert_frame_equal(from_disk, ind[ind["region"] == "nanjing_xinjiekou"][from_disk.columns].reset_index(drop=True),
                                  check_exact=False, rtol=1e-12)
    keys = ["category", "level", "threshold", "minutes"]
    whole = ind[ind["region"] == batch.ALL_REGIONS].set_index(keys)
    parts = ind[ind["region"] != batch.ALL_REGIONS].groupby(keys, dropna=False)
    np.testing.assert_allclose(whole["population"], parts["population"].sum().loc[whole.index])
    np.testing.assert_allclose(whole["population_share"],
                               (parts["population_within"].sum() / parts["population"].sum()).loc[whole.index])
    assert (whole["regions"] == 6).all()

    html = (out / "map.html").read_text(encoding="utf-8")
    assert "kindergarten" in summary["map_indicator"] and "nanjing_xinjiekou" in html
    assert "<script src=\"http" not in html  # offline
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
    frame = gpd.GeoDataFrame({"name": names, "osm": [os.path.relpath(folder / f"{n}.osm", tmp_path) for n in names]},
                             geometry=[None, None], crs=4326)
    frame.to_file(tmp_path / "regions.gpkg")
    out = tmp_path / "batch"
    batch.run_batch(tmp_path / "regions.gpkg", out_dir=out, scheduler=client, progress=False,
                    task_options={"categories": FEW, "map_html": False})
    for n in names:
        assert main(["audit", "--osm", str(folder / f"{n}.osm"), "--categories", FEW, "--no-map",
                     "--out", str(tmp_path / "single" / n)]) == 0
        _assert_same_region(tmp_path / "single" / n, out / "regions" / n)


# ----------------------------------------------------------------------------------------------
# faults: a worker dies, a task raises once, a run is interrupted


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
    regions = _regions_csv(tmp_path / "regions.csv", [{"name": n, "osm": f"{SAMPLES / n}.osm.pbf"} for n in names])
    markers = tmp_path / "markers"
    markers.mkdir()
    opts = {"categories": FEW, "map_html": False}
    summary = batch.run_batch(
        regions, task=_audit_dying_once, out_dir=tmp_path / "batch", scheduler=client, progress=False,
        task_options={"die": "beijing_chaoyang_wangjing", "raise_once": "beijing_haidian_cau",
                      "markers": str(markers), "audit": batch.check_options("audit", opts)},
    )
    assert (markers / "beijing_chaoyang_wangjing.died").exists() and (markers / "raised").exists()
    assert summary["regions"]["done"] == 3 and summary["regions"]["failed"] == 0
    assert len(list(markers.glob("beijing_haidian_cau.*.ran"))) == 2  # raised once, retried once
    assert sorted(_finished(tmp_path / "batch")) == sorted(names)
    client.wait_for_workers(2)  # the nanny restarted the dead worker
    for n in names:
        assert main(["audit", "--osm", f"{SAMPLES / n}.osm.pbf", "--categories", FEW, "--no-map",
                     "--out", str(tmp_path / "single" / n)]) == 0
        _assert_same_region(tmp_path / "single" / n, tmp_path / "batch" / "regions" / n)
    assert len(pd.read_csv(tmp_path / "batch" / "indicators.csv")["region"].unique()) == 4  # 3 + the whole set


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
    regions = _regions_csv(tmp_path / "regions.csv", [{"name": n, "osm": f"{SAMPLES / n}.osm.pbf"} for n in names])
    out = tmp_path / "batch"
    audit_opts = batch.check_options("audit", {"categories": FEW, "map_html": False})
    (tmp_path / "opts.pkl").write_bytes(cloudpickle.dumps(
        (_audit_hanging, {"hang": "shenzhen_longgang", "audit": audit_opts})))
    script = textwrap.dedent(f"""
        import pickle
        from planner.batch import run_batch
        if __name__ == "__main__":
            task, options = pickle.load(open({str(tmp_path / 'opts.pkl')!r}, "rb"))
            run_batch({str(regions)!r}, task=task, out_dir={str(out)!r}, workers=2, memory_limit="2GiB",
                      task_options=options, progress=False)
    """)
    (tmp_path / "interrupted.py").write_text(script, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(tmp_path / "interrupted.py")], cwd=tmp_path,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            partial = list((out / "regions").glob(".shenzhen_longgang.partial-*/coverage.csv")) if (out / "regions").exists() else []
            if partial and all((out / "regions" / n / "summary.json").exists() for n in names[:2]):
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole run: client, scheduler and workers
        proc.wait()
    before = _finished(out)  # the interrupted region is not visible, only its hidden partial folder
    assert sorted(before) == sorted(names[:2])
    assert list((out / "regions").glob(".shenzhen_longgang.partial-*"))

    counter = tmp_path / "counter"
    counter.mkdir()
    summary = batch.run_batch(regions, task=_audit_counting, out_dir=out, scheduler=client, resume=True,
                              progress=False, task_options={"counter": str(counter), "audit": audit_opts})
    assert sorted(p.name.split(".")[0] for p in counter.iterdir()) == ["shenzhen_longgang"]
    assert summary["regions"] == {"total": 3, "done": 3, "run": 1, "skipped_done_before": 2, "failed": 0}
    after = _finished(out)
    assert sorted(after) == sorted(names) and all(after[n] == before[n] for n in before)  # not recomputed
    assert not list((out / "regions").glob(".*"))  # the partial folder is cleaned
    assert set(pd.read_csv(out / "indicators.csv")["region"]) == {*names, batch.ALL_REGIONS}


# ----------------------------------------------------------------------------------------------
# boundaries cut from one extract


def test_home_near_boundary_keeps_its_facility_across_it(client, tmp_path):
    osm = SAMPLES / "nanjing_xinjiekou.osm.pbf"
    split = 118.782  # through the homes of Xinjiekou
    west, east = shapely.box(118.766, 32.034, split, 32.053), shapely.box(split, 32.034, 118.798, 32.053)
    regions = _regions_csv(tmp_path / "halves.csv", [{"name": "west", "wkt": west.wkt}, {"name": "east", "wkt": east.wkt}])
    out = tmp_path / "batch"
    opts = {"categories": FEW, "map_html": False}
    summary = batch.run_batch(regions, osm=osm, out_dir=out, scheduler=client, progress=False, task_options=opts, cut=True)
    assert summary["regions"]["done"] == 2
    assert not (out / "_extracts").exists()  # cuts of finished regions are removed

    whole = audit_module.audit(load_region(osm), categories=FEW, with_isochrones=False)
    whole_time = whole.homes.set_index("home_id")
    fac_x = whole.facilities.to_crs(4326).geometry.representative_point().x
    fac_side = dict(zip(whole.facilities["facility_id"], np.where(fac_x < split, "west", "east")))
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
            np.testing.assert_allclose(near[f"{key}_time_s"].to_numpy(), ref[f"{key}_time_s"].to_numpy(), rtol=1e-9)
            assert (near[f"{key}_facility_id"].to_numpy() == ref[f"{key}_facility_id"].to_numpy()).all()
    assert crossing > 0  # some homes' nearest facility does lie in the other region

    # Each half equals `planner audit --boundary` on the whole extract (the cut changes nothing).
    gpd.GeoDataFrame(geometry=[west], crs=4326).to_file(tmp_path / "west.gpkg")
    assert main(["audit", "--osm", str(osm), "--boundary", str(tmp_path / "west.gpkg"), "--categories", FEW,
                 "--no-map", "--out", str(tmp_path / "single_west")]) == 0
    single = json.loads((tmp_path / "single_west" / "summary.json").read_text(encoding="utf-8"))
    assert single.pop("region") == "nanjing_xinjiekou"  # the command names a region by its file
    batched = json.loads((out / "regions" / "west" / "summary.json").read_text(encoding="utf-8"))
    assert batched.pop("region") == "west"
    (tmp_path / "single_west" / "summary.json").write_text(json.dumps({**single, "region": "west"}), encoding="utf-8")
    _assert_same_region(tmp_path / "single_west", out / "regions" / "west")


def test_large_regions_sweep_categories_as_tasks_on_the_cluster(client, tmp_path):
    from distributed import get_task_stream

    settings.parallel_min_node_sweeps = 0  # reaches the workers with the batch's settings
    regions = _regions_csv(tmp_path / "r.csv", [{"name": "cau", "osm": str(SAMPLES / "beijing_haidian_cau.osm.pbf")}])
    with get_task_stream(client) as stream:
        batch.run_batch(regions, out_dir=tmp_path / "batch", scheduler=client, progress=False,
                        task_options={"categories": FEW, "map_html": False})
    sweeps = [t for t in stream.data if str(t["key"]).startswith("_sweep_task")]
    assert len(sweeps) == len(FEW.split(","))
    settings.parallel_min_node_sweeps = 2_000_000
    assert main(["audit", "--osm", str(SAMPLES / "beijing_haidian_cau.osm.pbf"), "--categories", FEW, "--no-map",
                 "--out", str(tmp_path / "single" / "cau")]) == 0
    single = tmp_path / "single" / "cau"
    s = json.loads((single / "summary.json").read_text(encoding="utf-8"))
    (single / "summary.json").write_text(json.dumps({**s, "region": "cau"}), encoding="utf-8")
    _assert_same_region(single, tmp_path / "batch" / "regions" / "cau")


# ----------------------------------------------------------------------------------------------
# inputs


def test_regions_file_mistakes_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="no 'name' column"):
        batch.read_regions(_regions_csv(tmp_path / "a.csv", [{"region": "x", "osm": "x.osm"}]))
    with pytest.raises(InputError, match="appears twice"):
        batch.read_regions(_regions_csv(tmp_path / "b.csv", [{"name": "x", "osm": "a.osm"}, {"name": "x", "osm": "b.osm"}]))
    with pytest.raises(InputError, match="no osm file"):
        batch.read_regions(_regions_csv(tmp_path / "c.csv", [{"name": "x", "wkt": "POLYGON((0 0,1 0,1 1,0 0))"}]))
    with pytest.raises(InputError, match="not found"):
        batch.read_regions(tmp_path / "none.csv")
    with pytest.raises(InputError, match="unknown category"):
        batch.run_batch(tmp_path / "none.csv", out_dir=tmp_path / "o", task_options={"categories": "nope"})
    with pytest.raises(InputError, match="not among --minutes"):
        batch.parse_indicator("park:20", batch.check_options("audit", {}))
    # A bad row fails alone, with its reason.
    specs = batch.read_regions(_regions_csv(tmp_path / "d.csv", [
        {"name": "ok", "wkt": "POLYGON((118 32,119 32,119 33,118 32))"},
        {"name": "bad", "wkt": "POLYGON((118 32,119"},
        {"name": "bowtie", "wkt": "POLYGON((118 32,119 33,119 32,118 33,118 32))"}]), osm=SAMPLES / "nanjing_xinjiekou.osm.pbf")
    assert [s.error is None for s in specs] == [True, False, False]
    assert "not a readable polygon" in specs[1].error and "invalid" in specs[2].error
    assert specs[0].osm == str((SAMPLES / "nanjing_xinjiekou.osm.pbf").resolve())
    # GeoPackage boundaries in any CRS come out in WGS84; osm paths are relative to the file.
    gdf = gpd.GeoDataFrame({"name": ["a"], "osm": ["sub/a.osm.pbf"]}, geometry=[shapely.box(118.7, 32.0, 118.8, 32.1)],
                           crs=4326).to_crs(32650)
    gdf.to_file(tmp_path / "r.gpkg")
    (spec,) = batch.read_regions(tmp_path / "r.gpkg")
    assert spec.osm == str(tmp_path / "sub" / "a.osm.pbf")
    assert shapely.equals_exact(spec.boundary.normalize(), shapely.box(118.7, 32.0, 118.8, 32.1).normalize(), 1e-7)


def test_tasks_run_the_commands_run_functions():
    from planner.siting import run_site
    from planner.villages import run_villages

    assert batch.task_function("audit") is batch.run_audit_region
    assert batch.task_function("villages").entry is run_villages
    assert batch.task_function("site").entry is run_site
    with pytest.raises(InputError, match="unknown task"):
        batch.task_function("paint")


def _same_files(single: Path, batched: Path, layers: dict[str, list[str]], csvs: list[str]) -> None:
    for name, names in layers.items():
        for layer in names:
            a, b = gpd.read_file(single / name, layer=layer), gpd.read_file(batched / name, layer=layer)
            pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry")))
            assert a.geometry.geom_equals_exact(b.geometry, tolerance=0).all(), (name, layer)
    for name in csvs:
        assert (single / name).read_bytes() == (batched / name).read_bytes(), name
    sa = json.loads((single / "summary.json").read_text(encoding="utf-8"))
    sb = json.loads((batched / "summary.json").read_text(encoding="utf-8"))
    assert _without_timings(sa) == _without_timings(sb)


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k != "seconds"}
    return [_without_timings(v) for v in value] if isinstance(value, list) else value


def test_villages_and_site_tasks_equal_their_commands(client, tmp_path):
    import pyogrio

    names = ["zhejiang_haining_zhouwangmiao", "beijing_haidian_cau"]
    regions = _regions_csv(tmp_path / "r.csv", [{"name": n, "osm": f"{SAMPLES / n}.osm.pbf"} for n in names])
    with pytest.raises(InputError, match="unknown villages option 'cats'"):
        batch.run_batch(regions, task="villages", out_dir=tmp_path / "v", task_options={"cats": "x"})
    s = batch.run_batch(regions, task="villages", out_dir=tmp_path / "v", scheduler=client, progress=False,
                        task_options={"map_html": False})
    assert s["regions"]["done"] == 2 and not (tmp_path / "v" / "indicators.csv").exists()  # no audit roll-up
    s = batch.run_batch(regions, task="site", out_dir=tmp_path / "s", scheduler=client, progress=False,
                        task_options={"category": "kindergarten", "new": 2, "map_html": False})
    assert s["regions"]["done"] == 2
    for n in names:
        osm = f"{SAMPLES / n}.osm.pbf"
        assert main(["villages", "--osm", osm, "--no-map", "--out", str(tmp_path / "single_v" / n)]) == 0
        single = tmp_path / "single_v" / n
        _same_files(single, tmp_path / "v" / "regions" / n,
                    {f.name: [lay for lay, _ in pyogrio.list_layers(f)] for f in single.glob("*.gpkg")}, ["indicators.csv"])
        assert main(["site", "--osm", osm, "--category", "kindergarten", "--new", "2", "--no-map",
                     "--out", str(tmp_path / "single_s" / n)]) == 0
        single = tmp_path / "single_s" / n
        sa = json.loads((single / "summary.json").read_text(encoding="utf-8"))
        (single / "summary.json").write_text(json.dumps({**sa, "region": n}), encoding="utf-8")  # batch names the region
        _same_files(single, tmp_path / "s" / "regions" / n,
                    {"sites.gpkg": [lay for lay, _ in pyogrio.list_layers(single / "sites.gpkg")]}, ["before_after.csv"])


def test_whole_set_share_comes_from_summed_counts():
    rows = [[{"region": "big", "category": "park", "name_zh": "公园", "name_en": "Park", "level": "10min",
              "threshold": "minutes", "minutes": 15, "target_m": 500.0, "target_minutes": float("nan"), "homes": 100, "homes_within": 90, "population": 9000.0, "population_within": 8100.0,
              **{g: 0.0 for g in ("elderly", "elderly_within", "children", "children_within", "disabled", "disabled_within")}}],
            [{"region": "small", "category": "park", "name_zh": "公园", "name_en": "Park", "level": "10min",
              "threshold": "minutes", "minutes": 15, "target_m": 500.0, "target_minutes": float("nan"), "homes": 10, "homes_within": 1, "population": 1000.0, "population_within": 100.0,
              **{g: 0.0 for g in ("elderly", "elderly_within", "children", "children_within", "disabled", "disabled_within")}}]]
    table = batch.indicators_table(rows).set_index("region")
    assert table.loc["big", "population_share"] == pytest.approx(0.9)
    assert table.loc["small", "population_share"] == pytest.approx(0.1)
    assert table.loc[batch.ALL_REGIONS, "population_share"] == pytest.approx(8200 / 10000)  # not (0.9 + 0.1) / 2
    assert table.loc[batch.ALL_REGIONS, "regions"] == 2 and table.loc[batch.ALL_REGIONS, "elderly_share"] == 0.0


def test_cli_batch_villages_and_site_tasks_run(client, tmp_path):
    """``planner batch --task villages|site`` as the README shows them: they crashed on the
    options the command line passes (no minutes, or one number of minutes)."""
    from planner.categories import load_categories
    from planner.sources import reach_m

    own = _regions_csv(tmp_path / "own.csv", [{"name": "zwm", "osm": str(SAMPLES / "zhejiang_haining_zhouwangmiao.osm.pbf")}])
    base = ["batch", "--scheduler", client.scheduler.address, "--no-map"]
    for minutes in ([], ["--minutes", "10"]):
        out = tmp_path / f"villages{len(minutes)}"
        assert main([*base, "--regions", str(own), "--out", str(out), "--task", "villages", *minutes]) == 0
        s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        assert s["regions"]["done"] == 1 and s["task_options"]["minutes"] == (10.0 if minutes else None)
        assert {"summary.json", "villages.gpkg", "indicators.csv"} <= {p.name for p in (out / "regions" / "zwm").iterdir()}
    # The region's summary is what `planner villages --minutes 10` writes.
    single = tmp_path / "single_villages"
    assert main(["villages", "--osm", str(SAMPLES / "zhejiang_haining_zhouwangmiao.osm.pbf"), "--minutes", "10",
                 "--no-map", "--out", str(single)]) == 0
    assert _without_timings(json.loads((out / "regions" / "zwm" / "summary.json").read_text(encoding="utf-8"))) == \
        _without_timings(json.loads((single / "summary.json").read_text(encoding="utf-8")))  # run_villages takes no name

    # site on a region cut from a larger extract by its boundary: named by its row, loaded with the reach.
    west = shapely.box(118.766, 32.034, 118.782, 32.053)
    cut = _regions_csv(tmp_path / "cut.csv", [{"name": "west", "wkt": west.wkt}])
    out = tmp_path / "site"
    assert main([*base, "--regions", str(cut), "--osm", str(SAMPLES / "nanjing_xinjiekou.osm.pbf"), "--out", str(out),
                 "--task", "site", "--category", "kindergarten", "--new", "1", "--minutes", "10"]) == 0
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["regions"]["done"] == 1 and s["task_options"]["minutes"] == 10.0
    assert json.loads((out / "regions" / "west" / "summary.json").read_text(encoding="utf-8"))["region"] == "west"
    opts = batch.check_options("site", {"category": "kindergarten", "minutes": None})
    assert batch.task_reach_m("site", opts) == reach_m([load_categories()["kindergarten"].minutes], "walk")
    assert batch.task_reach_m("site", {**opts, "minutes": 10.0}) == reach_m([10.0], "walk")
    assert batch.task_reach_m("villages", {"minutes": None}) is None  # takes no boundary: nothing to cut


def test_map_indicator_without_minutes_uses_the_target_when_it_is_a_threshold():
    # A metre target (kindergarten 300 m ≈ 4.5 min) or 8 min is no threshold: the largest one.
    opts = {"_category_keys": ["kindergarten", "pharmacy", "supermarket"], "minutes": (5, 10, 15),
            "_category_targets": {"kindergarten": 300 / 1.1 / 60, "pharmacy": 8.0, "supermarket": 15.0}}
    assert batch.parse_indicator("kindergarten", opts) == ("kindergarten", 15)
    assert batch.parse_indicator("supermarket", opts) == ("supermarket", 15)
    assert batch.parse_indicator("pharmacy:10", opts) == ("pharmacy", 10)
    with pytest.raises(InputError, match="8 min is not among --minutes"):
        batch.parse_indicator("pharmacy:8", opts)
