"""Benchmark the whole audit on tiled cities of growing size, stage by stage.

    flock /tmp/bigrun.lock python scripts/bench_city.py [--sizes 8,16,24] [--recipe-sizes 8,16]

For each N, ``/tmp/city/tiled_N.osm.pbf`` (made by ``scripts/make_tiled_city.py`` when
missing: N × N copies of the Haidian sample) is audited with every category, target
isochrones and the map, in a child process of its own so that its peak memory (ru_maxrss) is
its own. Printed per N: network nodes, homes, people, the seconds of each stage (load,
network, homes, categories, sweeps, isochrones, outputs, map; a city's printable maps are drawn
in a forked process during the outputs, so the two overlap), the wall time and the peak RSS,
of the audit's process and of its largest forked child (reader, isochrone workers, printable:
a child's RSS counts the pages it still shares with the parent);
then the growth exponent of each stage and of the total, log(time ratio) / log(node ratio),
between the smallest and the largest N.

The osmnx recipe (``--recipe-sizes``, needs ``pip install osmnx``): ``ox.graph_from_xml``,
homes as building centroids and facilities from ``ox.features_from_xml``, ``nearest_nodes``,
one ``networkx.multi_source_dijkstra_path_length`` per category for 5 categories, no map;
compared with planner's audit of the same 5 categories with target isochrones and outputs but
no map. The OSM XML osmnx needs is converted from the PBF beforehand, untimed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("load", "network", "homes", "categories", "sweeps", "isochrones", "outputs", "map")
RECIPE_CATEGORIES = ("kindergarten", "primary_school", "clinic", "pharmacy", "supermarket")
# The tags osmnx's recipe reads for those categories (planner's own matching is richer).
RECIPE_TAGS = {
    "kindergarten": {"amenity": ["kindergarten"]},
    "primary_school": {"amenity": ["school"]},
    "clinic": {"amenity": ["clinic", "doctors"], "healthcare": ["clinic", "doctor"]},
    "pharmacy": {"amenity": ["pharmacy"], "shop": ["chemist"]},
    "supermarket": {"shop": ["supermarket"]},
}


def city_file(n: int, city_dir: Path) -> Path:
    path = city_dir / f"tiled_{n}.osm.pbf"
    if not path.exists():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "make_tiled_city.py"), str(n), "--out", str(city_dir)],
            check=True,
        )
    return path


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


class _RssSampler(threading.Thread):
    """This process's resident memory every ``every_s`` seconds, as (time, bytes), to tell
    which stage holds the peak (ru_maxrss gives the peak only, the forked isochrone workers'
    memory is their own)."""

    def __init__(self, every_s: float = 0.05):
        super().__init__(daemon=True)
        self.every_s, self.samples, self.stop = every_s, [], threading.Event()
        self.page = os.sysconf("SC_PAGE_SIZE")

    def run(self) -> None:
        with open("/proc/self/statm") as f:
            while not self.stop.is_set():
                f.seek(0)
                self.samples.append((time.perf_counter(), int(f.read().split()[1]) * self.page))
                self.stop.wait(self.every_s)

    def peaks_gb(self, bounds: dict[str, tuple[float, float]]) -> dict[str, float]:
        """The largest sample within each stage's (start, end)."""
        t = np.array([a for a, _ in self.samples])
        rss = np.array([b for _, b in self.samples], float)
        out = {}
        for name, (a, b) in bounds.items():
            inside = rss[(t >= a) & (t <= b)]
            out[name] = round(float(inside.max()) / 1e9, 2) if len(inside) else float("nan")
        return out


def run_planner(path: Path, categories: str | None, map_html: bool, keep: Path | None = None) -> dict:
    """Child: one audit of ``path``; stage seconds, sizes and peak RSS as a dict (outputs
    kept in ``keep`` when given)."""
    sys.path.insert(0, str(ROOT))
    from planner import settings
    from planner.audit import audit
    from planner.sources import load_region

    settings.progress = False
    sampler = _RssSampler()
    sampler.start()
    wall = time.perf_counter()
    t = time.perf_counter()
    region = load_region(path)
    load_s = time.perf_counter() - t
    audit_start = time.perf_counter()
    result = audit(region, categories=categories, with_isochrones=True, progress=False)
    del region  # as run_audit does: the OSM objects are not written
    write_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = keep if keep is not None else Path(tmp) / "audit"
        result.write(out, map_html=map_html)
        sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    write_end = time.perf_counter()
    wall = time.perf_counter() - wall
    sampler.stop.set()
    sampler.join()
    s = result.seconds
    map_s = s.get("map", 0.0)
    stages = {
        "load": load_s,
        "network": s.get("network", 0.0),
        "homes": s.get("homes", 0.0),
        "categories": s.get("facilities", 0.0),
        "sweeps": s.get("sweeps", 0.0),
        # The coverage step held the isochrones before they were timed on their own.
        "isochrones": s.get("isochrones", s.get("coverage", 0.0)),
        "outputs": s.get("write", 0.0) - map_s,
        "map": map_s,
    }
    # Stage windows: the audit's steps run in this order, the map closes the writing.
    bounds, t = {"load": (audit_start - load_s, audit_start)}, audit_start
    for name in ("network", "homes", "facilities", "sweeps", "coverage", "isochrones"):
        bounds[name], t = (t, t + s.get(name, 0.0)), t + s.get(name, 0.0)
    bounds["outputs"] = (write_start, write_end - map_s)
    bounds["map"] = (write_end - map_s, write_end)
    return {
        "nodes": int(result.network.n_nodes),
        "homes": len(result.homes),
        "rss_stage_gb": sampler.peaks_gb(bounds),
        "people": float(result.homes["population"].sum()),
        "stages": stages,
        "wall": wall,
        "rss_gb": _peak_rss_gb(),
        # The largest forked child (reader, isochrone workers, printable maps): its RSS counts
        # the pages it shares with the parent until either writes them.
        "child_rss_gb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6,
        "files_mb": {k: round(v / 1e6, 2) for k, v in sizes.items()},
    }


def run_recipe(path: Path) -> dict:
    """Child: the osmnx recipe on ``path`` (converted to OSM XML first, untimed)."""
    import networkx as nx
    import numpy as np
    import osmium
    import osmnx as ox

    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "city.osm"
        with osmium.SimpleWriter(str(xml)) as w:
            for o in osmium.FileProcessor(str(path)):
                w.add(o)
        wall = time.perf_counter()
        t = time.perf_counter()
        graph = ox.project_graph(ox.graph_from_xml(xml, retain_all=True))
        graph_s = time.perf_counter() - t
        t = time.perf_counter()
        tags: dict[str, list[str] | bool] = {"building": True}
        for spec in RECIPE_TAGS.values():
            for k, vals in spec.items():
                tags[k] = sorted(set(tags.get(k, [])) | set(vals))  # type: ignore[arg-type]
        feats = ox.features_from_xml(xml, tags=tags).to_crs(graph.graph["crs"])
        points = feats.geometry.representative_point()
        homes = feats["building"].notna() if "building" in feats else np.zeros(len(feats), bool)
        home_nodes = ox.distance.nearest_nodes(graph, points[homes].x, points[homes].y)
        features_s = time.perf_counter() - t
        t = time.perf_counter()
        und = graph.to_undirected()
        for spec in RECIPE_TAGS.values():
            sel = np.zeros(len(feats), bool)
            for k, vals in spec.items():
                if k in feats:
                    sel |= feats[k].isin(vals).to_numpy()
            if not sel.any():
                continue
            src = set(ox.distance.nearest_nodes(graph, points[sel].x, points[sel].y))
            dist = nx.multi_source_dijkstra_path_length(und, src, weight="length")
            np.array([dist.get(n, np.inf) for n in home_nodes])
        sweeps_s = time.perf_counter() - t
        wall = time.perf_counter() - wall
    return {
        "nodes": graph.number_of_nodes(),
        "homes": int(homes.sum()),
        "stages": {"graph": graph_s, "features": features_s, "sweeps": sweeps_s},
        "wall": wall,
        "rss_gb": _peak_rss_gb(),
    }


def _open_map(path: Path) -> dict:
    sys.path.insert(0, str(ROOT / "tests"))
    import browser

    return browser.open_in_browser(path, timeout_s=300)


def _child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _exponent(a: dict, b: dict, key) -> float:
    ta, tb = key(a), key(b)
    if ta <= 0 or tb <= 0:
        return float("nan")
    return math.log(tb / ta) / math.log(b["nodes"] / a["nodes"])


def print_table(runs: dict[int, dict]) -> None:
    head = ["N", "nodes", "homes", "people", *STAGES, "wall s", "RSS GB", "child RSS GB", "map.html MB"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n, r in runs.items():
        cells = [str(n), f"{r['nodes']:,}", f"{r['homes']:,}", f"{r['people'] / 1e6:.2f} M"]
        cells += [f"{r['stages'][k]:.1f}" for k in STAGES]
        cells += [f"{r['wall']:.1f}", f"{r['rss_gb']:.2f}", f"{r.get('child_rss_gb', 0):.2f}"]
        cells += [f"{r['files_mb'].get('map.html', 0):.1f}"]
        print("| " + " | ".join(cells) + " |")
    sizes = sorted(runs)
    if len(sizes) > 1:
        a, b = runs[sizes[0]], runs[sizes[-1]]
        exps = {k: _exponent(a, b, lambda r, k=k: r["stages"][k]) for k in STAGES}
        exps["wall"] = _exponent(a, b, lambda r: r["wall"])
        print(
            f"\ngrowth exponent N = {sizes[0]} → {sizes[-1]} (log time / log nodes): "
            + ", ".join(f"{k} {v:.2f}" for k, v in exps.items())
        )
    for n, r in runs.items():
        print(
            f"N = {n} peak RSS per stage (GB): " + ", ".join(f"{k} {v}" for k, v in r["rss_stage_gb"].items())
        )
    for n, r in runs.items():
        print(f"N = {n} files (MB): " + ", ".join(f"{k} {v}" for k, v in sorted(r["files_mb"].items())))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="8,16,24", help="tiles per side, comma-separated (default 8,16,24)")
    ap.add_argument("--recipe-sizes", default="8,16", help="N for the osmnx comparison ('' for none)")
    ap.add_argument("--city-dir", type=Path, default=Path("/tmp/city"))
    ap.add_argument("--keep", type=Path, help="keep each audit's outputs in KEEP/tiled_N")
    ap.add_argument(
        "--browser", action="store_true", help="open each map.html in headless Chromium (tests/browser.py)"
    )
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        kind, path = args.child[0], Path(args.child[1])
        if kind == "planner":
            res = run_planner(path, None, True, Path(args.child[2]) if len(args.child) > 2 else None)
        elif kind == "planner5":
            res = run_planner(path, ",".join(RECIPE_CATEGORIES), False)
        else:
            res = run_recipe(path)
        print(json.dumps(res))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    runs = {}
    for n in sizes:
        keep = (
            []
            if args.keep is None and not args.browser
            else [str((args.keep or Path(tempfile.mkdtemp())) / f"tiled_{n}")]
        )
        runs[n] = _child("planner", str(city_file(n, args.city_dir)), *keep)
        print(f"N = {n}: {runs[n]['wall']:.1f} s, {runs[n]['rss_gb']:.2f} GB", file=sys.stderr, flush=True)
        if args.browser:
            runs[n]["browser"] = _open_map(Path(keep[0]) / "map.html")
    print("## planner audit, every category, target isochrones, map\n")
    print_table(runs)
    for n, r in runs.items():
        if "browser" in r:
            b = r["browser"]
            print(
                f"N = {n} map.html in Chromium: load {b['load_ms']} ms, {len(b['errors'])} errors {b['errors'][:2]}"
            )
    recipe_sizes = [int(s) for s in args.recipe_sizes.split(",") if s]
    if recipe_sizes:
        print("\n## 5 categories, no map: planner vs the osmnx recipe\n")
        print(
            "| N | nodes | planner s | planner GB | osmnx s (graph / features / sweeps) | osmnx GB | ratio |"
        )
        print("|---|---|---|---|---|---|---|")
    for n in recipe_sizes:
        path = city_file(n, args.city_dir)
        mine = _child("planner5", str(path))
        theirs = _child("recipe", str(path))
        st = theirs["stages"]
        print(
            f"| {n} | {mine['nodes']:,} | {mine['wall']:.1f} | {mine['rss_gb']:.2f} | {theirs['wall']:.1f} "
            f"({st['graph']:.1f} / {st['features']:.1f} / {st['sweeps']:.1f}) | {theirs['rss_gb']:.2f} | "
            f"{theirs['wall'] / mine['wall']:.2f}× |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
