"""Benchmark planner serve: edit-to-update latency against a full rerun of the audit.

    flock /tmp/bigrun.lock python scripts/bench_serve.py [--edits 100] [--graph-edits 5] [--city 16]

On (1) the Shanghai centre network (../shared/regions/shanghai_center_roads.osm; roads only,
so homes are every 4th street node with 100 people each and 10 facilities per category on
random nodes, as bench_audit.py does) and (2) the tiled city ``/tmp/city/tiled_N.osm.pbf``
(N × N copies of the Haidian sample, made by ``scripts/make_tiled_city.py``; about 250,000
network nodes at N = 16) with its own homes and facilities, it times:

* the session start: load the extract and build the engine (network, homes, every sweep);
* ``--edits`` random edits through the API (Starlette's TestClient: POST /api/edits, then GET
  /api/times of the edited category, as the page does): new facilities (60 %), moved (15 %),
  deleted (10 %), populations of homes (15 %); median and p95 per kind and over all;
* ``--graph-edits`` new paths (two sweeps from the path's ends merged with every category)
  and closed streets (only the categories whose best paths may cross the street are swept
  again), reported apart;
* the full audit of the same inputs (``planner.audit.audit`` on the loaded region, no
  isochrones, no outputs: the least a rerun costs), and with ``--rerun`` the whole
  ``run_audit`` (load, audit, isochrones, outputs, map) into a scratch folder.

A region that is absent is skipped with a note. Prints one JSON object per region.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner import settings  # noqa: E402
from planner.audit import audit, run_audit  # noqa: E402
from planner.serve.engine import Engine  # noqa: E402
from planner.serve.session import Session  # noqa: E402
from planner.sources import load_region  # noqa: E402

SHANGHAI = ROOT.parent / "shared" / "regions" / "shanghai_center_roads.osm"
KINDS = {"add_facility": 0.60, "move_facility": 0.15, "delete_facility": 0.10, "set_population": 0.15}


def synthetic_inputs(region, seed: int = 0):
    """Homes on every 4th street node (100 people each) and 10 facilities per category on
    random nodes, for a roads-only extract."""
    import geopandas as gpd
    import shapely

    from planner.categories import load_categories
    from planner.network import build_network

    rng = np.random.default_rng(seed)
    net = build_network(region)
    nodes = np.arange(0, net.n_nodes, 4)
    homes = gpd.GeoDataFrame(
        {"home_id": [f"h{i}" for i in nodes], "population": 100.0},
        geometry=shapely.points(net.x[nodes], net.y[nodes]),
        crs=region.crs,
    )
    keys = list(load_categories())
    at = rng.integers(0, net.n_nodes, 10 * len(keys))
    facilities = gpd.GeoDataFrame(
        {
            "facility_id": [f"f{i}" for i in range(len(at))],
            "category": np.repeat(keys, 10),
            "name": None,
        },
        geometry=shapely.points(net.x[at], net.y[at]),
        crs=region.crs,
    )
    return net, homes, facilities


def random_edit(engine: Engine, kind: str, rng: np.random.Generator, lonlat) -> dict:
    net = engine.net
    if kind == "add_facility":
        node = int(rng.integers(net.n_nodes))
        lon, lat = lonlat(net.x[node] + rng.normal(0, 20), net.y[node] + rng.normal(0, 20))
        key = engine.categories[int(rng.integers(len(engine.categories)))].key
        return {"kind": kind, "category": key, "lon": lon, "lat": lat}
    if kind in ("move_facility", "delete_facility"):
        fac = engine.current_facilities()
        row = fac.iloc[int(rng.integers(len(fac)))]
        edit = {"kind": kind, "facility_id": str(row["facility_id"]), "category": str(row["category"])}
        if kind == "move_facility":
            node = int(rng.integers(net.n_nodes))
            edit["lon"], edit["lat"] = lonlat(net.x[node], net.y[node])
        return edit
    if kind == "set_population":
        home = str(engine.homes["home_id"].iloc[int(rng.integers(len(engine.homes)))])
        return {"kind": kind, "home_id": home, "population": float(rng.integers(0, 2000))}
    if kind == "add_path":
        a = int(rng.integers(net.n_nodes))
        near = net.tree.query_ball_point((net.x[a], net.y[a]), 300.0)
        b = int(near[int(rng.integers(len(near)))]) if len(near) > 1 else (a + 1) % net.n_nodes
        b = b if b != a else (a + 1) % net.n_nodes
        return {
            "kind": kind,
            "coordinates": [list(lonlat(net.x[a], net.y[a])), list(lonlat(net.x[b], net.y[b]))],
        }
    i = int(rng.integers(net.n_edges))
    mid = lonlat((net.x[net.u[i]] + net.x[net.v[i]]) / 2, (net.y[net.u[i]] + net.y[net.v[i]]) / 2)
    return {"kind": "close_path", "lon": mid[0], "lat": mid[1]}


def stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    a = np.asarray(values) * 1000.0
    return {
        "n": len(a),
        "median_ms": round(float(np.median(a)), 1),
        "p95_ms": round(float(np.percentile(a, 95)), 1),
    }


def bench(name: str, source: Path, n_edits: int, n_graph: int, rerun: bool, seed: int = 0) -> dict:
    from pyproj import Transformer
    from starlette.testclient import TestClient

    from planner.serve.app import create_app

    t = time.perf_counter()
    region = load_region(source)
    homes = extra = None
    if name == "shanghai":
        _, homes, extra = synthetic_inputs(region, seed)
    loaded_s = time.perf_counter() - t
    t = time.perf_counter()
    engine = Engine(region, homes=homes, extra_facilities=extra)
    engine_s = time.perf_counter() - t
    to_wgs = Transformer.from_crs(region.crs, 4326, always_xy=True)

    def lonlat(x, y):
        lon, lat = to_wgs.transform(float(x), float(y))
        return float(lon), float(lat)

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = TestClient(create_app(Session(engine, tmp)), base_url="http://127.0.0.1")
        rng = np.random.default_rng(seed)
        kinds = rng.choice(list(KINDS), size=n_edits, p=list(KINDS.values()))
        kinds = [*kinds, *(["add_path", "close_path"] * n_graph)[:n_graph]]
        times: dict[str, list[float]] = {}
        for kind in kinds:
            edit = random_edit(engine, str(kind), rng, lonlat)
            started = time.perf_counter()
            out = client.post("/api/edits", json=edit)
            if out.status_code != 200:
                raise RuntimeError(f"{edit}: {out.text}")
            category = edit.get("category") or engine.categories[0].key
            client.get("/api/times", params={"category": category})
            times.setdefault(str(kind), []).append(time.perf_counter() - started)
        state_s = time.perf_counter()
        client.get("/api/state")
        state_s = time.perf_counter() - state_s
    incremental = [v for k, vs in times.items() if k in KINDS for v in vs]
    t = time.perf_counter()
    audit(region, homes=homes, extra_facilities=extra, with_isochrones=False, progress=False)
    audit_s = time.perf_counter() - t
    out = {
        "region": name,
        "network_nodes": int(engine.net.n_nodes),
        "network_edges": int(engine.net.n_edges),
        "homes": len(engine.homes),
        "facilities": int(engine.active.sum()),
        "categories": len(engine.categories),
        "load_s": round(loaded_s, 2),
        "engine_start_s": round(engine_s, 2),
        "state_payload_s": round(state_s, 2),
        "edits": stats(incremental),
        "by_kind": {k: stats(v) for k, v in times.items()},
        "full_audit_compute_s": round(audit_s, 2),
        "speedup_median": round(audit_s / float(np.median(incremental)), 1) if incremental else None,
    }
    if rerun and name != "shanghai":
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            run_audit(source, Path(tmp) / "out", progress=False)
            out["run_audit_s"] = round(time.perf_counter() - t, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--edits", type=int, default=100)
    ap.add_argument("--graph-edits", type=int, default=5)
    ap.add_argument("--city", type=int, default=16, help="N of /tmp/city/tiled_N.osm.pbf (0: skip)")
    ap.add_argument("--rerun", action="store_true", help="also time run_audit with outputs and map")
    ap.add_argument("--only", choices=["shanghai", "city"], default=None)
    args = ap.parse_args()
    settings.progress = False
    runs = []
    if args.only in (None, "shanghai"):
        runs.append(("shanghai", SHANGHAI))
    if args.city and args.only in (None, "city"):
        runs.append((f"tiled_{args.city}", Path(f"/tmp/city/tiled_{args.city}.osm.pbf")))
    for name, path in runs:
        if not path.exists():
            print(json.dumps({"region": name, "skipped": f"{path} absent"}))
            continue
        print(
            json.dumps(bench(name, path, args.edits, args.graph_edits, args.rerun), ensure_ascii=False),
            flush=True,
        )


if __name__ == "__main__":
    main()
