"""CPU of one whole audit of a tiled city against a batch of k × k boundary regions cut from it.

    flock /tmp/bigrun.lock python scripts/bench_batch_city.py [--n 8] [--k 4] [--workers 2]
        [--printable] [--no-cut] [--no-share] [--runs 1]

The city is ``/tmp/city/tiled_N.osm.pbf`` (``scripts/make_tiled_city.py``). Each run is a
child process timed by ``/usr/bin/time`` (CPU = user + sys of the run and every process it
started, Dask workers included): ``planner audit`` of the whole city (every category, target
isochrones, map.html and the printable map.png/map.pdf), the same without the printable maps
(``map_printable = false`` by ``--config``), then ``planner batch`` over a k × k grid of
boundary regions covering the city's box with the defaults (the extract cut once; neighbouring
regions sharing one audit per group, split per region; regions' printable maps only with
``--printable``), then the same batch with ``share=False`` (each region audited alone on its
own cut; skipped with ``--no-share``), and with ``--no-cut`` with ``cut=False`` too (every task
reads the whole file). Printed:
CPU, wall and the largest single process's peak RSS of each run, and the batch / whole CPU
ratios (against the whole audit with and without its printable maps); then the shared regions
against the lone ones: coverage.csv byte for byte and every home's time up to 15 minutes.
With ``--runs R`` every run is repeated R times in rounds (each round runs each command once,
in turn, so that a busier spell of the machine falls on both sides), and the medians, the
ranges and each round's ratios are printed at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]


def city_box(path: Path) -> tuple[float, float, float, float]:
    """(min lon, min lat, max lon, max lat) of the city's nodes."""
    import osmium

    lon0 = lat0 = float("inf")
    lon1 = lat1 = float("-inf")
    for node in osmium.FileProcessor(str(path), osmium.osm.NODE):
        loc = node.location
        if loc.valid():
            lon0, lat0, lon1, lat1 = (
                min(lon0, loc.lon),
                min(lat0, loc.lat),
                max(lon1, loc.lon),
                max(lat1, loc.lat),
            )
    return lon0, lat0, lon1, lat1


def regions_file(path: Path, folder: Path, k: int) -> Path:
    """A k × k grid of boundary regions over the city's box (a little wider, so no node is left out)."""
    x0, y0, x1, y1 = city_box(path)
    pad = 1e-4
    xs = [x0 - pad + (x1 - x0 + 2 * pad) * i / k for i in range(k + 1)]
    ys = [y0 - pad + (y1 - y0 + 2 * pad) * j / k for j in range(k + 1)]
    rows = [
        {"name": f"r{i}_{j}", "wkt": shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]).wkt}
        for i in range(k)
        for j in range(k)
    ]
    out = folder / "regions.csv"
    pd.DataFrame(rows).to_csv(out, index=False)
    return out


def timed(cmd: list[str]) -> dict:
    """Run ``cmd``; its CPU (user + sys, children included), wall time and largest peak RSS."""
    started = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-f", "TIME %U %S %M", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - started
    line = [x for x in run.stderr.splitlines() if x.startswith("TIME")]
    if run.returncode != 0 or not line:
        sys.exit(f"failed: {' '.join(cmd)}\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}")
    _, user, system, rss_kb = line[-1].split()
    return {
        "cpu_s": float(user) + float(system),
        "wall_s": wall,
        "peak_rss_gb": int(rss_kb) / 1e6,
        "out": run.stdout,
    }


def batch_cmd(
    regions: Path, osm: Path, out: Path, workers: int, cut: bool | None, printable: bool, share: bool
) -> list[str]:
    code = (
        "import json; from planner.batch import run_batch; "
        f"s = run_batch({str(regions)!r}, out_dir={str(out)!r}, osm={str(osm)!r}, workers={workers}, "
        f"progress=False, cut={cut!r}, printable={printable!r}, share={share!r}); "
        "print(json.dumps({'done': s['regions']['done'], 'seconds': s['seconds'], "
        "'groups': [len(g) for g in s['shared_audits']], "
        "'task_cpu_s': round(sum(r.get('cpu_seconds', 0) for r in s['per_region']), 1)}))"
    )
    return [sys.executable, "-c", code]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=8, help="the tiled city's N")
    ap.add_argument("--k", type=int, default=4, help="regions per side (k × k regions)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--printable", action="store_true", help="regions also draw map.png and map.pdf")
    ap.add_argument("--no-cut", action="store_true", help="also run the batch with cut=False")
    ap.add_argument("--no-share", action="store_true", help="skip the batch with share=False")
    ap.add_argument("--runs", type=int, default=1, help="rounds of every run (medians printed at the end)")
    args = ap.parse_args()
    osm = Path(f"/tmp/city/tiled_{args.n}.osm.pbf")
    if not osm.exists():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "make_tiled_city.py"), str(args.n)], check=True
        )
    with tempfile.TemporaryDirectory(prefix="bench-batch-city-") as tmp:
        folder = Path(tmp)
        regions = regions_file(osm, folder, args.k)
        planner = str(Path(sys.executable).parent / "planner")
        config = folder / "no_printable.toml"
        config.write_text("map_printable = false\n", encoding="utf-8")
        cpu: dict[str, list[float]] = {}
        for round_no in range(1, args.runs + 1):
            wholes = {}
            for label, extra in (
                ("with printable maps", []),
                ("without printable maps", ["--config", str(config)]),
            ):
                whole = timed(
                    [planner, *extra, "audit", "--osm", str(osm), "--out", str(folder / f"whole{len(extra)}")]
                )
                wholes[label] = whole["cpu_s"]
                cpu.setdefault(f"whole audit {label}", []).append(whole["cpu_s"])
                print(
                    f"[{round_no}] whole audit of {osm.name}, {label}: {whole['cpu_s']:.1f} CPU s, "
                    f"{whole['wall_s']:.1f} s wall, peak RSS {whole['peak_rss_gb']:.2f} GB",
                    flush=True,
                )
            runs = [("cut, shared audits (default)", None, True)]
            runs += [] if args.no_share else [("cut, each region alone (share=False)", None, False)]
            runs += [("no cut, each region alone", False, False)] if args.no_cut else []
            for label, cut, share in runs:
                out = folder / f"batch-{cut}-{share}"
                shutil.rmtree(out, ignore_errors=True)
                run = timed(batch_cmd(regions, osm, out, args.workers, cut, args.printable, share))
                facts = json.loads(run["out"].strip().splitlines()[-1])
                assert facts["done"] == args.k**2, facts
                cpu.setdefault(f"batch, {label}", []).append(run["cpu_s"])
                ratios = ", ".join(f"{run['cpu_s'] / c:.2f}× the whole audit {w}" for w, c in wholes.items())
                print(
                    f"[{round_no}] batch of {args.k**2} regions, {label}, printable maps "
                    f"{'on' if args.printable else 'off'}, {args.workers} workers: {run['cpu_s']:.1f} CPU s = "
                    f"{ratios}; {run['wall_s']:.1f} s wall, largest process {run['peak_rss_gb']:.2f} GB; the "
                    f"region tasks' own CPU {facts['task_cpu_s']} s; groups sharing an audit {facts['groups']}; "
                    f"seconds {facts['seconds']}",
                    flush=True,
                )
        if args.runs > 1:
            print(summary(cpu), flush=True)
        if not args.no_share:
            print(compare(folder / "batch-None-True", folder / "batch-None-False", 15), flush=True)


def summary(cpu: dict[str, list[float]]) -> str:
    """Median and range of each run's CPU over the rounds, and the batches' ratios per round
    and of the medians."""
    lines = [f"over {len(next(iter(cpu.values())))} rounds (CPU s: median, min-max):"]
    lines += [f"  {k}: {statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})" for k, v in cpu.items()]
    wholes = {k: v for k, v in cpu.items() if k.startswith("whole audit")}
    for k, v in cpu.items():
        if not k.startswith("batch"):
            continue
        for w, base in wholes.items():
            per_round = ", ".join(f"{a / b:.2f}" for a, b in zip(v, base, strict=True))
            lines.append(
                f"  {k} / {w}: median {statistics.median(v) / statistics.median(base):.2f}×; "
                f"per round {per_round}"
            )
    return "\n".join(lines)


def compare(shared: Path, alone: Path, minutes: int) -> str:
    """Shared against lone regions: coverage.csv byte for byte, and every home's time up to
    ``minutes`` (largest relative difference); how many times past it differ."""
    import geopandas as gpd
    import numpy as np

    worst, homes, past = 0.0, 0, 0
    names = sorted(p.name for p in (alone / "regions").iterdir())
    for name in names:
        a, b = shared / "regions" / name, alone / "regions" / name
        assert (a / "coverage.csv").read_bytes() == (b / "coverage.csv").read_bytes(), name
        ha, hb = gpd.read_file(a / "homes.gpkg"), gpd.read_file(b / "homes.gpkg")
        assert len(ha) == len(hb) and ha.geometry.geom_equals_exact(hb.geometry, 0).all(), name
        homes += len(ha)
        for col in [c for c in ha.columns if c.endswith("_time_s")]:
            ta, tb = ha[col].to_numpy(), hb[col].to_numpy()
            near = np.nan_to_num(tb, nan=np.inf) <= 60 * minutes
            assert (near == (np.nan_to_num(ta, nan=np.inf) <= 60 * minutes)).all(), (name, col)
            if near.any():
                worst = max(worst, float(np.max(np.abs(ta[near] - tb[near]) / np.maximum(tb[near], 1.0))))
            past += int((~near & (np.nan_to_num(ta, nan=-1.0) != np.nan_to_num(tb, nan=-1.0))).sum())
    return (
        f"shared against alone, {len(names)} regions, {homes} homes: coverage.csv equal; times up to "
        f"{minutes} min equal to {worst:.1e} (relative); {past} home-category times past {minutes} min differ"
    )


if __name__ == "__main__":
    main()
