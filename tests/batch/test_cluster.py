"""planner.batch.cluster: a large region's per-category sweeps run as tasks on the cluster."""

from __future__ import annotations

import json

import pytest

from planner import batch, settings
from planner.cli import main

from .helpers import (
    FEW,
    SAMPLES,
    assert_same_region,
    regions_csv,
)


def test_large_regions_sweep_categories_as_tasks_on_the_cluster(client, tmp_path):
    from distributed import get_task_stream

    settings.parallel_min_node_sweeps = 0  # reaches the workers with the batch's settings
    regions = regions_csv(
        tmp_path / "r.csv", [{"name": "cau", "osm": str(SAMPLES / "beijing_haidian_cau.osm.pbf")}]
    )
    with get_task_stream(client) as stream:
        batch.run_batch(
            regions,
            out_dir=tmp_path / "batch",
            scheduler=client,
            progress=False,
            task_options={"categories": FEW, "map_html": False},
        )
    sweeps = [t for t in stream.data if str(t["key"]).startswith("_sweep_task")]
    assert len(sweeps) == len(FEW.split(","))
    settings.parallel_min_node_sweeps = 2_000_000
    assert (
        main(
            [
                "audit",
                "--osm",
                str(SAMPLES / "beijing_haidian_cau.osm.pbf"),
                "--categories",
                FEW,
                "--no-map",
                "--out",
                str(tmp_path / "single" / "cau"),
            ]
        )
        == 0
    )
    single = tmp_path / "single" / "cau"
    s = json.loads((single / "summary.json").read_text(encoding="utf-8"))
    (single / "summary.json").write_text(json.dumps({**s, "region": "cau"}), encoding="utf-8")
    assert_same_region(single, tmp_path / "batch" / "regions" / "cau")


def test_local_workers_are_forked_from_one_server_with_the_tasks_modules_loaded():
    import multiprocessing
    import os

    import psutil
    import pytest

    from planner.batch.cluster import LOCAL_MONITOR_INTERVALS, WORKER_PRELOAD, connect

    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("no forkserver on this platform: workers are spawned")

    def facts():
        import sys

        import dask

        return {
            "parent": os.getppid(),
            "preloaded": [m for m in WORKER_PRELOAD if m in sys.modules],
            "intervals": [dask.config.get(k) for k in LOCAL_MONITOR_INTERVALS],
        }

    with connect(None, 2, "2GiB") as client:
        found = list(client.run(facts).values())
    assert len(found) == 2
    server = found[0]["parent"]
    assert server != os.getpid() and all(f["parent"] == server for f in found)  # one fork server
    assert all(f["preloaded"] == list(WORKER_PRELOAD) for f in found)  # before any task ran
    assert all(f["intervals"] == [ours for _, ours in LOCAL_MONITOR_INTERVALS.values()] for f in found)
    assert not psutil.pid_exists(server)  # stopped, and waited for, with the cluster


def test_worker_start_method_keeps_the_users_choice_and_spawns_without_forkserver(monkeypatch):
    import multiprocessing

    import dask

    from planner.batch.cluster import worker_start_method

    key = "distributed.worker.multiprocessing-method"
    with dask.config.set({key: "fork"}), worker_start_method() as method:
        assert method == "fork" and dask.config.get(key) == "fork"
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])  # Windows
    with worker_start_method() as method:
        assert method == "spawn" and dask.config.get(key) == "spawn"


def test_forked_workers_write_what_spawned_workers_write(client, tmp_path):
    """The same boundary regions (two shared audits) on a local cluster of forked workers and on
    the tests' cluster of spawned ones: every output file but the timings equal."""
    import geopandas as gpd
    import numpy as np
    import shapely

    from planner.sources import load_region

    osm = SAMPLES / "beijing_haidian_wudaokou.osm.pbf"
    x0, y0, x1, y1 = load_region(osm).bounds_wgs84
    xs, ys = np.linspace(x0, x1, 3), np.linspace(y0, y1, 3)
    rows = [
        {"name": f"w{i}{j}", "osm": str(osm), "wkt": shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]).wkt}
        for i in (0, 1)
        for j in (0, 1)
    ]
    regions = regions_csv(tmp_path / "r.csv", rows)
    opts = {"categories": FEW}
    forked = batch.run_batch(
        regions, out_dir=tmp_path / "forked", workers=2, progress=False, task_options=opts
    )
    spawned = batch.run_batch(
        regions, out_dir=tmp_path / "spawned", scheduler=client, progress=False, task_options=opts
    )
    assert forked["regions"] == spawned["regions"] and forked["regions"]["done"] >= 3  # one may have no homes
    assert forked["shared_audits"] == spawned["shared_audits"] and len(forked["shared_audits"]) == 2
    assert forked["failures"] == spawned["failures"]
    for row in rows:
        if not (tmp_path / "forked" / "regions" / row["name"]).exists():
            continue
        a, b = tmp_path / "forked" / "regions" / row["name"], tmp_path / "spawned" / "regions" / row["name"]
        assert_same_region(a, b)
        assert gpd.read_file(a / "homes.gpkg").equals(gpd.read_file(b / "homes.gpkg"))
    assert (tmp_path / "forked" / "indicators.csv").read_bytes() == (
        tmp_path / "spawned" / "indicators.csv"
    ).read_bytes()


_SERVER_FACTS = """
import json, os, sys, threading
import psutil
from planner.batch.cluster import WORKER_PRELOAD, connect

def facts():
    import signal, sys
    return {"parent": os.getppid(), "preloaded": [m for m in WORKER_PRELOAD if m in sys.modules],
            "sigterm_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL}

if __name__ == "__main__":
    if sys.argv[1] == "thread":  # another thread running: no fork of this process
        threading.Thread(target=threading.Event().wait, daemon=True).start()
    from planner._io import terminate_as_exit
    with terminate_as_exit(), connect(None, 2, "2GiB") as client:  # as run_batch does
        found = list(client.run(facts).values())
        server = psutil.Process(found[0]["parent"])
        seen = {"server_parent": server.ppid(), "server_cmdline": server.cmdline()}
    print(json.dumps({"found": found, "me": os.getpid(), "cmdline": psutil.Process().cmdline(),
                      "gone": not psutil.pid_exists(server.pid), **seen}))
"""


@pytest.mark.parametrize("thread", [False, True])
def test_the_fork_server_is_a_fork_of_a_process_running_one_thread(tmp_path, thread):
    import multiprocessing
    import subprocess
    import sys

    if "forkserver" not in multiprocessing.get_all_start_methods():
        pytest.skip("no forkserver on this platform: workers are spawned")
    script = tmp_path / "server_facts.py"
    script.write_text(_SERVER_FACTS, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(script), "thread" if thread else "alone"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    from planner.batch.cluster import WORKER_PRELOAD

    assert len(got["found"]) == 2 and len({f["parent"] for f in got["found"]}) == 1  # one server
    assert all(f["preloaded"] == list(WORKER_PRELOAD) for f in got["found"])
    assert all(f["sigterm_default"] for f in got["found"])  # killed on the spot, as before
    assert got["server_parent"] == got["me"] and got["gone"]  # stopped and waited for
    forked = got["server_cmdline"] == got["cmdline"]  # a fork runs this script's command line
    assert forked == (sys.platform == "linux" and sys.version_info < (3, 14) and not thread)
    if not forked:
        assert "multiprocessing.forkserver" in " ".join(got["server_cmdline"])


def _status(link: str) -> int:
    import urllib.error
    import urllib.request

    try:
        return urllib.request.urlopen(link, timeout=30).status
    except urllib.error.HTTPError as err:
        return err.code


def test_the_local_dashboard_runs_only_when_asked_for():
    from planner.batch.cluster import connect

    with connect(None, 1, "1GiB", dashboard=False) as client:
        assert _status(client.dashboard_link) == 404  # the scheduler's bare web pages only
    pytest.importorskip("bokeh")
    with connect(None, 1, "1GiB", dashboard=True) as client:
        assert _status(client.dashboard_link) == 200
