"""planner.batch.tasks: the tasks are the commands' run_* functions and write what they write."""

from __future__ import annotations

import json

import pytest
import shapely

from planner import batch
from planner._errors import InputError
from planner.cli import main

from .helpers import (
    SAMPLES,
    regions_csv,
    same_files,
    without_timings,
)


def test_tasks_run_the_commands_run_functions():
    from planner.siting import run_site
    from planner.villages import run_villages

    assert batch.task_function("audit") is batch.run_audit_region
    assert batch.task_function("villages").entry is run_villages
    assert batch.task_function("site").entry is run_site
    with pytest.raises(InputError, match="unknown task"):
        batch.task_function("paint")


def test_villages_and_site_tasks_equal_their_commands(client, tmp_path):
    import pyogrio

    names = ["zhejiang_haining_zhouwangmiao", "beijing_haidian_cau"]
    regions = regions_csv(tmp_path / "r.csv", [{"name": n, "osm": f"{SAMPLES / n}.osm.pbf"} for n in names])
    with pytest.raises(InputError, match="unknown villages option 'cats'"):
        batch.run_batch(regions, task="villages", out_dir=tmp_path / "v", task_options={"cats": "x"})
    s = batch.run_batch(
        regions,
        task="villages",
        out_dir=tmp_path / "v",
        scheduler=client,
        progress=False,
        task_options={"map_html": False},
    )
    assert s["regions"]["done"] == 2 and not (tmp_path / "v" / "indicators.csv").exists()  # no audit roll-up
    s = batch.run_batch(
        regions,
        task="site",
        out_dir=tmp_path / "s",
        scheduler=client,
        progress=False,
        task_options={"category": "kindergarten", "new": 2, "map_html": False},
    )
    assert s["regions"]["done"] == 2
    for n in names:
        osm = f"{SAMPLES / n}.osm.pbf"
        assert main(["villages", "--osm", osm, "--no-map", "--out", str(tmp_path / "single_v" / n)]) == 0
        single = tmp_path / "single_v" / n
        same_files(
            single,
            tmp_path / "v" / "regions" / n,
            {f.name: [lay for lay, _ in pyogrio.list_layers(f)] for f in single.glob("*.gpkg")},
            ["indicators.csv"],
        )
        assert (
            main(
                [
                    "site",
                    "--osm",
                    osm,
                    "--category",
                    "kindergarten",
                    "--new",
                    "2",
                    "--no-map",
                    "--out",
                    str(tmp_path / "single_s" / n),
                ]
            )
            == 0
        )
        single = tmp_path / "single_s" / n
        sa = json.loads((single / "summary.json").read_text(encoding="utf-8"))
        (single / "summary.json").write_text(
            json.dumps({**sa, "region": n}), encoding="utf-8"
        )  # batch names the region
        same_files(
            single,
            tmp_path / "s" / "regions" / n,
            {f.name: [lay for lay, _ in pyogrio.list_layers(f)] for f in single.glob("*.gpkg")},
            ["before_after.csv"],
        )


def test_cli_batch_villages_and_site_tasks_run(client, tmp_path):
    """``planner batch --task villages|site`` as the README shows them: they crashed on the
    options the command line passes (no minutes, or one number of minutes)."""
    from planner.categories import load_categories
    from planner.sources import reach_m

    own = regions_csv(
        tmp_path / "own.csv", [{"name": "zwm", "osm": str(SAMPLES / "zhejiang_haining_zhouwangmiao.osm.pbf")}]
    )
    base = ["batch", "--scheduler", client.scheduler.address, "--no-map"]
    for minutes in ([], ["--minutes", "10"]):
        out = tmp_path / f"villages{len(minutes)}"
        assert main([*base, "--regions", str(own), "--out", str(out), "--task", "villages", *minutes]) == 0
        s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        assert s["regions"]["done"] == 1 and s["task_options"]["minutes"] == (10.0 if minutes else None)
        assert {"summary.json", "villages.gpkg", "indicators.csv"} <= {
            p.name for p in (out / "regions" / "zwm").iterdir()
        }
    # The region's summary is what `planner villages --minutes 10` writes.
    single = tmp_path / "single_villages"
    assert (
        main(
            [
                "villages",
                "--osm",
                str(SAMPLES / "zhejiang_haining_zhouwangmiao.osm.pbf"),
                "--minutes",
                "10",
                "--no-map",
                "--out",
                str(single),
            ]
        )
        == 0
    )
    assert without_timings(
        json.loads((out / "regions" / "zwm" / "summary.json").read_text(encoding="utf-8"))
    ) == without_timings(
        json.loads((single / "summary.json").read_text(encoding="utf-8"))
    )  # run_villages takes no name

    # site on a region cut from a larger extract by its boundary: named by its row, loaded with the reach.
    west = shapely.box(118.766, 32.034, 118.782, 32.053)
    cut = regions_csv(tmp_path / "cut.csv", [{"name": "west", "wkt": west.wkt}])
    out = tmp_path / "site"
    assert (
        main(
            [
                *base,
                "--regions",
                str(cut),
                "--osm",
                str(SAMPLES / "nanjing_xinjiekou.osm.pbf"),
                "--out",
                str(out),
                "--task",
                "site",
                "--category",
                "kindergarten",
                "--new",
                "1",
                "--minutes",
                "10",
            ]
        )
        == 0
    )
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["regions"]["done"] == 1 and s["task_options"]["minutes"] == 10.0
    assert (
        json.loads((out / "regions" / "west" / "summary.json").read_text(encoding="utf-8"))["region"]
        == "west"
    )
    opts = batch.check_options("site", {"category": "kindergarten", "minutes": None})
    assert batch.task_reach_m("site", opts) == reach_m([load_categories()["kindergarten"].minutes], "walk")
    assert batch.task_reach_m("site", {**opts, "minutes": 10.0}) == reach_m([10.0], "walk")
    assert batch.task_reach_m("villages", {"minutes": None}) is None  # takes no boundary: nothing to cut


def test_cli_batch_printable_writes_each_regions_printable_maps(client, tmp_path):
    """``--printable``: each region's map.png and map.pdf, as the single-region command draws them."""
    own = regions_csv(
        tmp_path / "own.csv", [{"name": "zwm", "osm": str(SAMPLES / "zhejiang_haining_zhouwangmiao.osm.pbf")}]
    )
    out = tmp_path / "b"
    base = ["batch", "--scheduler", client.scheduler.address, "--regions", str(own), "--categories", "clinic"]
    assert main([*base, "--out", str(out), "--printable"]) == 0
    files = {p.name for p in (out / "regions" / "zwm").iterdir()}
    assert {"map.html", "map.png", "map.pdf", "coverage.csv"} <= files
    assert (out / "regions" / "zwm" / "map.pdf").read_bytes().startswith(b"%PDF")
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["printable"] is True
