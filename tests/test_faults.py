"""Faults: runs killed mid-write, reruns, failing regions, resumes with other options, umask.

A killed ``planner audit`` or ``planner batch`` leaves the old outputs as they were; the next
run into the same folder removes what the killed one left and replaces the outputs whole.
The killed runs hang on purpose at a known point (a patched ``save_map``, a task that sleeps),
so the kill lands mid-write every time.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cloudpickle
import pandas as pd
import pytest

from planner import _io, batch
from planner._errors import InputError
from planner.cli import main

SAMPLES = Path(__file__).resolve().parents[1] / "sample_regions"
SMALL = SAMPLES / "zhejiang_haining_zhouwangmiao.osm.pbf"  # the smallest real extract
OTHER = SAMPLES / "beijing_chaoyang_wangjing.osm.pbf"
# (SMALL maps no kindergarten: no isochrones.gpkg)
AUDIT_FILES = [
    ".planner",
    "coverage.csv",
    "facilities.gpkg",
    "homes.gpkg",
    "map.html",
    "map.pdf",
    "map.png",
    "summary.json",
]
MAP_FILES = ("map.html", "map.pdf", "map.png")  # map.html and the printable map.png/map.pdf

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the hanging task runs on workers


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        memory_limit="2GiB",
        dashboard_address=":0",
        silence_logs=40,
    )
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name → bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _categories(out: Path) -> list[str]:
    return list(json.loads((out / "summary.json").read_text(encoding="utf-8"))["categories"])


def _wait_for(found, proc: subprocess.Popen):
    """Poll until ``found()`` gives something while ``proc`` runs; fail if it ends first."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        hit = found()
        if hit:
            return hit
        assert proc.poll() is None, f"the run ended first: {proc.stderr.read().decode()[-3000:]}"
        time.sleep(0.05)
    pytest.fail("the run never got there")


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 120
    while not _io._process_gone(pid):
        assert time.monotonic() < deadline, f"process {pid} is still there"
        time.sleep(0.05)


# ----------------------------------------------------------------------------------------------
# planner audit killed mid-write


_HANGING_AUDIT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import planner.maps

    def save_map(m, path):  # write half the map, then hang: the kill lands mid-write
        Path(path).write_text("half-written", encoding="utf-8")
        time.sleep(600)

    planner.maps.save_map = save_map
    from planner.cli import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_audit_keeps_old_outputs_and_the_rerun_replaces_them(tmp_path, sig):
    work = tmp_path / "work"
    out = work / "out"
    assert main(["audit", "--osm", str(SMALL), "--out", str(out), "--categories", "kindergarten"]) == 0
    before = _files(out)
    assert sorted(before) == AUDIT_FILES and _categories(out) == ["kindergarten"]

    script = tmp_path / "hanging_audit.py"
    script.write_text(_HANGING_AUDIT, encoding="utf-8")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(script),
            "-q",
            "audit",
            "--osm",
            str(SMALL),
            "--out",
            str(out),
            "--categories",
            "clinic",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        (tmp,) = _wait_for(lambda: [p for p in work.glob(".out.tmp-*") if (p / "map.html").exists()], proc)
        assert sorted(p.name for p in tmp.iterdir()) == [
            "coverage.csv",
            "facilities.gpkg",
            "homes.gpkg",
            "map.html",
        ]  # mid-write
        proc.send_signal(sig)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stderr = proc.stderr.read().decode()
    assert "Traceback" not in stderr
    assert _files(out) == before  # the old outputs, byte for byte
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        assert _names(work) == sorted([tmp.name, "out"])  # nothing could clean up: the next run does
    else:
        assert proc.returncode == 128 + signal.SIGTERM  # SIGTERM became SystemExit: it cleaned up itself
        assert _names(work) == ["out"]

    assert main(["audit", "--osm", str(SMALL), "--out", str(out), "--categories", "clinic", "--no-map"]) == 0
    assert _names(work) == ["out"]  # the killed run's scratch folder is gone
    assert _names(out) == [
        ".planner",
        "coverage.csv",
        "facilities.gpkg",
        "homes.gpkg",  # no stale map.html
        "summary.json",
    ]  # (no clinic mapped: no isochrones)
    assert _categories(out) == ["clinic"]


def test_leftovers_of_live_runs_are_kept_and_of_dead_runs_removed(tmp_path):
    live = subprocess.Popen(["sleep", "600"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        host = _io._HOST
        names = {
            "live_dir": f".out.tmp-{host}-{live.pid}-0123abcd",
            "dead_dir": f".old.tmp-{host}-{dead.pid}-0123abcd",
            "dead_file": f".map.html.tmp-{host}-{dead.pid}-89abcdef.tmp",
            "dead_partial": f".region.partial-{host}-{dead.pid}-00ff00ff",
            "other_host": f".out.tmp-{'0' * 8 if host != '0' * 8 else '1' * 8}-{dead.pid}-0123abcd",
            "user_file": ".notes.tmp",
        }
        for key, name in names.items():
            if key.endswith("dir") or key in ("dead_partial", "other_host"):
                (tmp_path / name).mkdir()
                (tmp_path / name / "coverage.csv").write_text("half", encoding="utf-8")
            else:
                (tmp_path / name).write_text("half", encoding="utf-8")
        with _io.atomic_dir(tmp_path / "out") as tmp:
            (tmp / "summary.json").write_text("{}", encoding="utf-8")
        # Removed: scratch of processes gone on this host. Kept: a live run's, another host's, the user's.
        assert _names(tmp_path) == sorted([names["live_dir"], names["other_host"], names["user_file"], "out"])
        assert _names(tmp_path / "out") == [".planner", "summary.json"]
    finally:
        live.kill()
        live.wait()


def test_only_folders_planner_wrote_are_replaced(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.docx").write_bytes(b"years of work")
    assert (
        main(["audit", "--osm", str(SMALL), "--out", str(mine), "--categories", "kindergarten", "--no-map"])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: --out") and "planner did not write" in err
    assert _files(mine) == {"thesis.docx": b"years of work"}
    assert _names(tmp_path) == ["mine"]  # no scratch folder left either

    # An empty folder, and one holding only outputs of a planner without the marker, are replaced whole.
    for name, content in (("empty", {}), ("older", {"summary.json": "{}", "map.html": "<html>"})):
        folder = tmp_path / name
        folder.mkdir()
        for file, text in content.items():
            (folder / file).write_text(text, encoding="utf-8")
        with _io.atomic_dir(folder) as tmp:
            (tmp / "coverage.csv").write_text("new", encoding="utf-8")
        assert _names(folder) == [".planner", "coverage.csv"]
    # A planner folder is replaced whole, files added to it by hand too.
    (tmp_path / "older" / "my_notes.txt").write_text("notes", encoding="utf-8")
    with _io.atomic_dir(tmp_path / "older") as tmp:
        (tmp / "summary.json").write_text("{}", encoding="utf-8")
    assert _names(tmp_path / "older") == [".planner", "summary.json"]
    with pytest.raises(InputError, match="is a file"), _io.atomic_dir(tmp_path / "mine" / "thesis.docx"):
        pass
    # A folder holding only a `regions` folder is the user's data, not a batch's outputs.
    (tmp_path / "data" / "regions").mkdir(parents=True)
    with pytest.raises(InputError, match="planner did not write"), _io.atomic_dir(tmp_path / "data"):
        pass
    assert _names(tmp_path / "data") == ["regions"]


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with (
        pytest.raises(InputError, match=r"^--out .*out: no space left on the device; free some space"),
        _io.atomic_dir(out) as tmp,
    ):
        (tmp / "homes.gpkg").write_text("half", encoding="utf-8")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "homes.gpkg"))
    assert _names(tmp_path) == []


def test_a_writer_failing_on_a_nearly_full_device_is_a_full_disk(tmp_path, monkeypatch):
    """GDAL reports a full disk while writing a GeoPackage as 'Failed to commit transaction' with
    no errno: a writer's error with under 1 MiB left on the device is taken for a full disk."""
    from pyogrio.errors import DataSourceError

    for free, error, expected in [
        (0, DataSourceError("Failed to commit transaction"), InputError),
        (2**30, DataSourceError("Failed to commit transaction"), DataSourceError),
        (0, ValueError("a bug"), ValueError),
    ]:
        monkeypatch.setattr(_io, "_free_bytes", lambda path, free=free: free)
        with pytest.raises(expected) as caught, _io.atomic_dir(tmp_path / "out") as tmp:
            (tmp / "homes.gpkg").write_text("half", encoding="utf-8")
            raise error
        if expected is InputError:
            assert str(caught.value).startswith(f"--out {tmp_path / 'out'}: no space left on the device")
        assert _names(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# umask


@pytest.mark.parametrize(
    ("umask", "dir_mode", "file_mode"),
    [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)],
    ids=["umask022", "umask027"],
)
def test_outputs_follow_the_umask(tmp_path, umask, dir_mode, file_mode):
    out = tmp_path / "made" / "out"  # its parent is made by the run too
    subprocess.run(
        [
            sys.executable,
            "-m",
            "planner",
            "-q",
            "audit",
            "--osm",
            str(SMALL),
            "--out",
            str(out),
            "--categories",
            "kindergarten",
        ],
        umask=umask,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    modes = {
        str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in sorted(tmp_path.rglob("*"))
    }
    assert modes == {
        "made": dir_mode,
        "made/out": dir_mode,
        **{f"made/out/{f}": file_mode for f in AUDIT_FILES},
    }


def test_batch_outputs_follow_the_umask(tmp_path):
    regions = tmp_path / "regions.csv"
    pd.DataFrame([{"name": "zwm", "osm": str(SMALL)}]).to_csv(regions, index=False)
    out = tmp_path / "batch"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "planner",
            "-q",
            "batch",
            "--regions",
            str(regions),
            "--out",
            str(out),
            "--workers",
            "1",
            "--categories",
            "kindergarten",
        ],
        umask=0o027,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    modes = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in sorted(out.rglob("*"))}
    folders = {"regions", "regions/zwm"}
    assert sorted(modes) == sorted(
        [
            ".planner",
            "failures.csv",
            "indicators.csv",
            "map.html",
            "regions",
            "summary.json",
            "regions/zwm",
            # a batch writes no printable maps per region unless --printable is given
            *(f"regions/zwm/{f}" for f in AUDIT_FILES if f not in ("map.pdf", "map.png")),
        ]
    )
    assert {k: v for k, v in modes.items() if k in folders} == dict.fromkeys(folders, 488)
    assert {k: v for k, v in modes.items() if k not in folders} == {
        k: 0o640 for k in modes if k not in folders
    }
    assert stat.S_IMODE(out.stat().st_mode) == 0o750


# ----------------------------------------------------------------------------------------------
# planner batch killed mid-run, failing reruns, resume


def _hang_on(spec, out_dir, options):
    """The audit, except that region ``options['hang']`` starts writing and then hangs."""
    if spec.name == options["hang"]:
        out_dir.mkdir(parents=True)
        (out_dir / "coverage.csv").write_text("half-written", encoding="utf-8")
        time.sleep(600)
    return batch.run_audit_region(spec, out_dir, options["audit"])


_hang_on.writes_audit_outputs = True


def _regions(tmp_path: Path) -> Path:
    path = tmp_path / "regions.csv"
    pd.DataFrame([{"name": "small", "osm": str(SMALL)}, {"name": "other", "osm": str(OTHER)}]).to_csv(
        path, index=False
    )
    return path


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL-all", "SIGTERM"])
def test_killed_batch_keeps_old_regions_and_the_rerun_cleans_up(client, tmp_path, sig):
    regions, out = _regions(tmp_path), tmp_path / "batch"
    first = {"categories": "kindergarten", "map_html": False}
    batch.run_batch(regions, out_dir=out, scheduler=client, progress=False, task_options=first)
    before = _files(out / "regions")
    assert sorted(before) == sorted(
        [
            *(f"{r}/{f}" for r in ("other", "small") for f in AUDIT_FILES if f not in MAP_FILES),
            "other/isochrones.gpkg",
        ]
    )  # other maps a kindergarten: its isochrones

    # The larger region runs first on the one worker, and hangs mid-write.
    audit_opts = batch.check_options("audit", {"categories": "clinic", "map_html": False})
    (tmp_path / "task.pkl").write_bytes(cloudpickle.dumps((_hang_on, {"hang": "other", "audit": audit_opts})))
    (tmp_path / "killed.py").write_text(
        textwrap.dedent(f"""
        import pickle
        from planner.batch import run_batch
        if __name__ == "__main__":
            task, options = pickle.load(open({str(tmp_path / "task.pkl")!r}, "rb"))
            run_batch({str(regions)!r}, task=task, out_dir={str(out)!r}, workers=1, memory_limit="2GiB",
                      task_options=options, progress=False)
    """),
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "killed.py")],
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        (partial,) = _wait_for(lambda: list((out / "regions").glob(".other.partial-*/coverage.csv")), proc)
        if sig == signal.SIGKILL:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole run: client, scheduler and workers
        else:
            proc.send_signal(signal.SIGTERM)  # the batch only: it shuts its workers down
        proc.wait(timeout=120)
        if sig == signal.SIGTERM:
            assert proc.returncode == 128 + signal.SIGTERM
            deadline = time.monotonic() + 120
            while True:  # the workers went with it: no process of the run is left
                try:
                    os.killpg(proc.pid, 0)
                except ProcessLookupError:
                    break
                assert time.monotonic() < deadline, "workers outlived the batch"
                time.sleep(0.1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    after_kill = {k: v for k, v in _files(out / "regions").items() if not k.startswith(".")}
    assert after_kill == before  # both regions as the first run left them
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["status"] == "running"
    partial = partial.parent
    assert _names(out / "regions") == sorted([partial.name, "other", "small"])
    _wait_gone(int(_io._SCRATCH.match(partial.name)["pid"]))  # the killed worker

    summary = batch.run_batch(
        regions,
        out_dir=out,
        scheduler=client,
        progress=False,
        task_options={"categories": "clinic", "map_html": False},
    )
    assert summary["regions"] == {"total": 2, "done": 2, "run": 2, "skipped_done_before": 0, "failed": 0}
    assert _names(out / "regions") == ["other", "small"]  # the killed worker's partial folder is gone
    assert _names(out) == [
        ".planner",
        "failures.csv",
        "indicators.csv",
        "map.html",
        "regions",
        "summary.json",
    ]
    assert _categories(out / "regions" / "other") == ["clinic"] == _categories(out / "regions" / "small")


def test_failing_rerun_keeps_the_good_region_folder(client, tmp_path):
    osm = tmp_path / "small.osm.pbf"
    osm.write_bytes(SMALL.read_bytes())
    regions = tmp_path / "regions.csv"
    pd.DataFrame([{"name": "small", "osm": "small.osm.pbf"}]).to_csv(regions, index=False)
    out = tmp_path / "batch"
    opts = {"categories": "kindergarten", "map_html": False}
    assert (
        batch.run_batch(regions, out_dir=out, scheduler=client, progress=False, task_options=opts)["regions"][
            "done"
        ]
        == 1
    )
    good = _files(out / "regions" / "small")
    assert (out / "map.html").exists()

    osm.write_bytes(osm.read_bytes()[:2000])  # the extract is replaced by a broken one
    s = batch.run_batch(regions, out_dir=out, scheduler=client, progress=False, task_options=opts)
    assert s["regions"] == {"total": 1, "done": 0, "run": 1, "skipped_done_before": 0, "failed": 1}
    assert _files(out / "regions" / "small") == good  # the earlier good folder, byte for byte
    failures = pd.read_csv(out / "failures.csv")
    assert failures["region"].tolist() == ["small"] and "not a readable OSM file" in failures["error"].iloc[0]
    assert len(pd.read_csv(out / "indicators.csv")) == 0  # the earlier result is not rolled up as this run's
    assert _names(out) == [
        ".planner",
        "failures.csv",
        "indicators.csv",
        "regions",
        "summary.json",
    ]  # no stale map

    # --resume does not take the earlier run's folder for this run's result: it runs the region again.
    s = batch.run_batch(
        regions, out_dir=out, scheduler=client, progress=False, task_options=opts, resume=True
    )
    assert s["regions"] == {"total": 1, "done": 0, "run": 1, "skipped_done_before": 0, "failed": 1}
    assert _files(out / "regions" / "small") == good


def test_resume_with_other_options_exits_2_and_changes_nothing(client, tmp_path, capsys):
    regions, out = _regions(tmp_path), tmp_path / "batch"
    base = ["batch", "--regions", str(regions), "--out", str(out), "--scheduler", client.scheduler.address]
    opts = ["--categories", "kindergarten,park", "--minutes", "10,15", "--no-map"]
    assert main([*base, *opts]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["task"] == "audit" and summary["status"] == "done"
    assert {k: summary["task_options"][k] for k in ("categories", "minutes", "mode", "map_html")} == {
        "categories": "kindergarten,park",
        "minutes": [10, 15],
        "mode": "walk",
        "map_html": False,
    }
    before = _files(out)
    capsys.readouterr()
    cases = [
        (
            ["--categories", "kindergarten", "--minutes", "10,15", "--no-map"],
            "--categories kindergarten differs",
        ),
        (
            ["--categories", "kindergarten,park", "--minutes", "5,10,15", "--no-map"],
            "--minutes 5,10,15 differs",
        ),
        (
            ["--categories", "kindergarten,park", "--minutes", "10,15", "--no-map", "--mode", "bike"],
            "--mode bike differs",
        ),
        (["--categories", "kindergarten,park", "--minutes", "10,15"], "--map/--no-map on differs"),
        (["--task", "site", "--category", "kindergarten", "--new", "1", "--no-map"], "--task site differs"),
    ]
    for args, message in cases:
        assert main([*base, "--resume", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: --resume: {message} from the run being resumed") and "\n" not in err, (
            err
        )
        assert _files(out) == before
    # The same options in another order resume it: nothing to run again.
    assert (
        main([*base, "--resume", "--no-map", "--minutes", "15,10", "--categories", "park,kindergarten"]) == 0
    )
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["regions"] == {"total": 2, "done": 2, "run": 0, "skipped_done_before": 2, "failed": 0}
    assert _files(out / "regions") == {
        k[len("regions/") :]: v for k, v in before.items() if k.startswith("regions/")
    }


# ----------------------------------------------------------------------------------------------
# batch's own input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--memory-limit", "lots"], "--memory-limit 'lots': give memory per worker such as 4GiB"),
        (["--memory-limit", "2"], "--memory-limit '2': below 256.00 MiB per worker"),
        (["--memory-limit", "1e30"], "--memory-limit '1e30': above this machine's memory"),
        (["--workers", "0"], "--workers 0: give"),
    ],
)
def test_batch_options_are_one_line_errors(tmp_path, capsys, args, message):
    regions = _regions(tmp_path)
    assert main(["batch", "--regions", str(regions), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and "\n" not in err, err
    assert _names(tmp_path) == ["regions.csv"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty CSV; give a header row"),
        (b"name,osm\n", "no regions"),
        (b"\x00\x01\x02\xff\xfe", "neither UTF-8 nor GBK/GB18030"),
        (b"region,osm\nx,a.osm\n", "no 'name' column"),
        (b"name,osm\n,a.osm.pbf\n", "row 1 has name ''"),
        (b"name,osm\n../up,a.osm.pbf\n", "row 1 has name '../up'"),
        (b"name\nx\n", "region 'x' has no osm file"),
    ],
)
def test_regions_file_mistakes_exit_2(tmp_path, capsys, content, message):
    regions = tmp_path / "regions.csv"
    regions.write_bytes(content)
    assert main(["batch", "--regions", str(regions), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(regions) in err and message in err and "\n" not in err, err
    assert _names(tmp_path) == ["regions.csv"]


def test_batch_into_a_folder_planner_did_not_write_exits_2(tmp_path, capsys):
    regions = _regions(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.xlsx").write_bytes(b"x")
    assert main(["batch", "--regions", str(regions), "--out", str(mine)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --out {mine}: holds files planner did not write") and "\n" not in err
    assert _files(mine) == {"data.xlsx": b"x"}


# ----------------------------------------------------------------------------------------------
# villages: an area left empty by the overlap step


def test_villages_with_an_area_mapped_twice(tmp_path):
    """Real extract with one hamlet mapped twice (place=hamlet over its named residential land):
    the second area is left empty by the overlap step; it crashed with an IndexError in
    ``_village_frame`` (``point_on_surface`` of an empty geometry)."""
    import osmium

    from planner.sources import load_region
    from planner.villages import find_villages

    doubled = tmp_path / "doubled.osm.pbf"
    hamlet = None
    writer = osmium.SimpleWriter(str(doubled))
    for obj in osmium.FileProcessor(str(SMALL)):
        if obj.is_node():
            writer.add_node(obj)
        elif obj.is_way():
            writer.add_way(obj)
            refs = [n.ref for n in obj.nodes]
            if (
                hamlet is None
                and obj.tags.get("landuse") == "residential"
                and obj.tags.get("name")
                and refs[0] == refs[-1]
            ):
                hamlet = (refs, obj.tags["name"], obj.id)
        else:
            writer.add_relation(obj)
    writer.add_way(
        osmium.osm.mutable.Way(id=10**12, nodes=hamlet[0], tags={"place": "hamlet", "name": hamlet[1]})
    )
    writer.close()
    assert hamlet[1] == "东村上"

    original = find_villages(load_region(SMALL))
    found = find_villages(load_region(doubled))
    assert not found.geometry.is_empty.any()
    assert sorted(found["village_id"]) == sorted(
        original["village_id"]
    )  # the empty duplicate is not a village
    assert f"way/{hamlet[2]}" in set(found["village_id"])
    pd.testing.assert_frame_equal(
        pd.DataFrame(found.drop(columns="geometry")).sort_values("village_id").reset_index(drop=True),
        pd.DataFrame(original.drop(columns="geometry")).sort_values("village_id").reset_index(drop=True),
    )
