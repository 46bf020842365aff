"""Reading a city-sized extract: planner's ``load_region`` against pyrosm on the same file.

    flock /tmp/bigrun.lock python scripts/bench_load.py [--n 36] [--runs 3] [--peer-runs 1] [--no-peer]

The files are ``/tmp/city/tiled_N.osm.pbf`` and ``tiled_N_distinct.osm.pbf``
(``scripts/make_tiled_city.py N`` and ``N --distinct-tags``; made here when missing). The
first repeats each tag set N × N times, which favours a reader that parses each distinct tag
set once; the second has the share of distinct tag sets of a real extract, and is the one to
quote.

Each run is a child process (imports included), timed from outside: wall seconds, CPU
seconds (user + system of the child and every process it started) and the child's peak RSS.
planner: ``planner.sources.load_region`` (streets as arrays, every tagged node, way and area
with its tags and geometry in a metric CRS). The peer, pyrosm (a compiled PBF reader):
``OSM(path)`` then ``get_network(network_type="all", nodes=True)``, ``get_buildings()``,
``get_pois()`` and ``get_landuse()``, which is less than planner keeps (no barriers, gates or
places). Printed: the median of ``--runs`` runs of planner and ``--peer-runs`` of pyrosm, and
pyrosm / planner.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PLANNER = "from planner.sources import load_region; r = load_region({path!r}); print(len(r.features))"
PYROSM = (
    "import pyrosm; osm = pyrosm.OSM({path!r}); osm.get_network(network_type='all', nodes=True); "
    "osm.get_buildings(); osm.get_pois(); osm.get_landuse()"
)


#: Runs the code in a child and prints that child's wall and CPU seconds and peak RSS (the
#: largest of it and the processes it waited for), measured by a process of its own so that
#: no earlier run's peak counts.
WRAP = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
subprocess.run([sys.executable, "-c", sys.argv[1]], check=True, stdout=subprocess.DEVNULL)
used = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": time.perf_counter() - started, "cpu": used.ru_utime + used.ru_stime,
                  "peak_gb": used.ru_maxrss / 2**20}))
"""


def timed(code: str) -> dict:
    """Wall, CPU and peak RSS of ``python -c code`` in a child process."""
    done = subprocess.run(
        [sys.executable, "-c", WRAP, code], check=True, cwd=ROOT, capture_output=True, text=True
    )
    return json.loads(done.stdout)


def median_of(code: str, runs: int) -> dict:
    results = [timed(code) for _ in range(runs)]
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=36, help="tiles per side (default 36: a 93 MB file)")
    ap.add_argument("--runs", type=int, default=3, help="runs of planner (default 3)")
    ap.add_argument(
        "--peer-runs", type=int, default=1, help="runs of pyrosm (default 1: about a minute each)"
    )
    ap.add_argument("--city-dir", type=Path, default=Path("/tmp/city"))
    ap.add_argument("--no-peer", action="store_true", help="planner only")
    args = ap.parse_args(argv)
    print(f"{'file':32} {'reader':8} {'wall s':>7} {'cpu s':>7} {'peak GB':>8}")
    for distinct in (False, True):
        path = args.city_dir / f"tiled_{args.n}{'_distinct' if distinct else ''}.osm.pbf"
        if not path.exists():
            extra = ["--distinct-tags"] if distinct else []
            make = [sys.executable, str(ROOT / "scripts" / "make_tiled_city.py"), str(args.n), "--out"]
            subprocess.run([*make, str(args.city_dir), *extra], check=True)
        label = f"{path.name} ({os.path.getsize(path) / 1e6:.0f} MB)"
        ours = median_of(PLANNER.format(path=str(path)), args.runs)
        print(f"{label:32} {'planner':8} {ours['wall']:7.1f} {ours['cpu']:7.1f} {ours['peak_gb']:8.2f}")
        if args.no_peer:
            continue
        peer = median_of(PYROSM.format(path=str(path)), args.peer_runs)
        print(f"{label:32} {'pyrosm':8} {peer['wall']:7.1f} {peer['cpu']:7.1f} {peer['peak_gb']:8.2f}")
        print(
            f"{'':32} {'ratio':8} {peer['wall'] / ours['wall']:6.1f}× {peer['cpu'] / ours['cpu']:6.1f}× "
            "(pyrosm / planner)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
