"""Benchmark the nearest-facility sweep of the audit against networkx, in one run.

    python scripts/bench_audit.py [--grid-side 1000] [--categories 10] [--nx-grid-categories 1]

On (1) the largest real extract (Shanghai centre roads, ../shared or sample_regions) and
(2) a synthetic grid of grid-side² nodes (default 1,000,000), for 10 categories of
facilities placed on random nodes, it times:

* planner: one scipy.sparse.csgraph multi-source Dijkstra per category (TargetGraph.sweep,
  on the network with its chain nodes contracted out), bounded as the audit bounds it (the
  15-minute question plus settings.sweep_margin_s), plus the per-home minimum over entries
  (trip_costs) and each home's reach state (reach_states: beyond or unreachable), homes =
  every node, snapped through the KD-tree once before the timing (as the audit's homes step
  does, and as the recipes' graph is built before theirs);
* (a) networkx ``multi_source_dijkstra_path_length`` per category on the same graph;
* (b) the osmnx isochrone recipe: one cutoff Dijkstra per facility
  (``single_source_dijkstra_path_length(cutoff=15 min)``), minimum over facilities;

checks that all three agree, and prints the ratios. The planner grid run happens in a child
process so its peak memory (ru_maxrss) is its own. networkx on the 1M grid is slow: by
default it runs on ``--nx-grid-categories`` categories and the 10-category time is scaled
from that (printed as such).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner import settings  # noqa: E402
from planner.network import (  # noqa: E402
    Access,
    TargetGraph,
    build_network,
    from_arrays,
    point_access,
    sweep_many,
    to_networkx,
    trip_costs,
)
from planner.reach import reach_states, reaches, sweep_limit_s  # noqa: E402
from planner.sources import load_region  # noqa: E402

CUTOFF_S = 15 * 60.0


def grid_network(side: int, spacing_m: float = 80.0, seed: int = 0):
    """A side × side street grid with slightly jittered block lengths."""
    rng = np.random.default_rng(seed)
    idx = np.arange(side * side).reshape(side, side)
    u = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    v = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    gx, gy = np.meshgrid(np.arange(side) * spacing_m, np.arange(side) * spacing_m)
    x = gx.ravel() + rng.uniform(-10, 10, side * side)
    y = gy.ravel() + rng.uniform(-10, 10, side * side)
    return from_arrays(x, y, u, v, "EPSG:32651")


def facilities(n_nodes: int, n_categories: int, per_category: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    return [rng.choice(n_nodes, per_category, replace=False) for _ in range(n_categories)]


def planner_sweeps(net, cats, homes, limit=None):
    """Time the audit's sweep: build targets once, one sweep per category, homes = nodes."""
    limit = sweep_limit_s(CUTOFF_S / 60) if limit is None else limit
    t0 = time.perf_counter()
    owner = np.concatenate([np.full(len(c), i) for i, c in enumerate(cats)])
    nodes = np.concatenate(cats)
    fac_id = np.arange(len(nodes))
    acc = Access(owner=fac_id, node=nodes, leg_m=np.zeros(len(nodes)), n_owners=len(nodes))
    targets = TargetGraph(net, acc, "time")
    results = []
    subsets = [np.nonzero(owner == k)[0] for k in range(len(cats))]
    for subset, (cost, which) in zip(subsets, sweep_many(targets, subsets, limit=limit), strict=True):
        home_cost = trip_costs(net, homes, cost, which)[0]
        reach_states(net, homes, home_cost, nodes[subset])
        results.append(home_cost)
    return time.perf_counter() - t0, results


def nx_multi_source(g, cats):
    t0 = time.perf_counter()
    out = [nx.multi_source_dijkstra_path_length(g, {int(n) for n in c}, weight="weight") for c in cats]
    return time.perf_counter() - t0, out


def nx_per_facility(g, cats, cutoff=CUTOFF_S):
    t0 = time.perf_counter()
    out = []
    for c in cats:
        best: dict[int, float] = {}
        for f in c:
            for n, d in nx.single_source_dijkstra_path_length(
                g, int(f), cutoff=cutoff, weight="weight"
            ).items():
                if d < best.get(n, np.inf):
                    best[n] = d
        out.append(best)
    return time.perf_counter() - t0, out


def _check(planner_times, nx_times, n_nodes, cutoff=None):
    # planner stops at the question's limit: compare within it, and nothing missing within it.
    cutoff = sweep_limit_s(CUTOFF_S / 60) if cutoff is None else cutoff
    worst = 0.0
    for p, d in zip(planner_times, nx_times, strict=False):
        nodes = np.fromiter(d.keys(), np.int64)
        vals = np.fromiter(d.values(), float)
        if cutoff is not None:
            keep = vals <= cutoff
            nodes, vals = nodes[keep], vals[keep]
        got = p[nodes]
        if not np.isfinite(got).all():
            return np.inf
        worst = max(worst, float(np.max(np.abs(got - vals) / np.maximum(vals, 1e-9))) if len(vals) else 0.0)
    return worst


def bench_graph(name, net, n_categories, per_category, nx_categories=None):
    cats = facilities(net.n_nodes, n_categories, per_category)
    # One-time structures (CSR matrices, chain contraction, KD-tree) are built with the
    # network, as networkx's graph is built before its timing starts; both are printed.
    t0 = time.perf_counter()
    net.graph("time", reverse=True)
    chains = net.chains("time")
    _ = net.tree
    reaches(net, np.zeros(0, np.int64))  # the strong components, cached on the network
    t_prep = time.perf_counter() - t0
    t0 = time.perf_counter()
    homes = point_access(net, net.xy())
    t_homes = time.perf_counter() - t0
    t_planner, p = min((planner_sweeps(net, cats, homes) for _ in range(3)), key=lambda r: r[0])
    t0 = time.perf_counter()
    g = to_networkx(net, "time")  # walk graphs are symmetric: forward = reverse
    t_nx_prep = time.perf_counter() - t0
    k = nx_categories or n_categories
    t_a, a = nx_multi_source(g, cats[:k])
    t_b, b = nx_per_facility(g, cats[:k])
    scale = n_categories / k
    err_a = _check(p[:k], a, net.n_nodes)
    err_b = _check(p[:k], b, net.n_nodes, cutoff=CUTOFF_S)
    print(
        f"\n== {name}: {net.n_nodes:,} nodes, {net.n_edges:,} directed edges, "
        f"{n_categories} categories × {per_category} facilities"
    )
    core = f"{len(chains.core):,} core nodes after contraction" if chains is not None else "no contraction"
    print(
        f"one-time: planner CSR + contraction + KD-tree + components {t_prep:.3f} s ({core}), homes snapped "
        f"{t_homes:.3f} s; networkx graph {t_nx_prep:.3f} s"
    )
    print(
        f"planner (csgraph, {n_categories} sweeps to {sweep_limit_s(CUTOFF_S / 60):g} s + homes, best of 3) "
        f"{t_planner:8.3f} s"
    )
    note = f" (measured on {k}, ×{scale:g})" if k != n_categories else ""
    print(
        f"(a) networkx multi_source_dijkstra             {t_a * scale:8.2f} s{note}   ratio {t_a * scale / t_planner:6.1f}×"
    )
    print(
        f"(b) networkx cutoff Dijkstra per facility      {t_b * scale:8.2f} s{note}   ratio {t_b * scale / t_planner:6.1f}×"
    )
    print(f"max relative difference vs (a) {err_a:.1e}, vs (b) within cutoff {err_b:.1e}")
    return {"planner_s": t_planner, "a_s": t_a * scale, "b_s": t_b * scale}


def _child_grid(side, n_categories, per_category):
    """Planner alone on the grid, in this process: print time and peak RSS as JSON."""
    t0 = time.perf_counter()
    net = grid_network(side)
    net.chains("time")
    reaches(net, np.zeros(0, np.int64))
    t_build = time.perf_counter() - t0
    cats = facilities(net.n_nodes, n_categories, per_category)
    homes = point_access(net, net.xy())
    t_sweeps, _ = planner_sweeps(net, cats, homes)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps({"nodes": net.n_nodes, "build_s": t_build, "audit_s": t_sweeps, "peak_mb": peak_kb / 1024})
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid-side", type=int, default=1000)
    ap.add_argument("--categories", type=int, default=10)
    ap.add_argument("--per-category", type=int, default=100)
    ap.add_argument("--nx-grid-categories", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    settings.progress = False
    if args.child:
        _child_grid(args.grid_side, args.categories, args.per_category)
        return 0

    shared = ROOT.parent / "shared" / "regions" / "shanghai_center_roads.osm"
    source = shared if shared.exists() else ROOT / "sample_regions" / "shanghai_center_roads.osm.pbf"
    region = load_region(source)
    net = build_network(region, "walk")
    bench_graph(f"Shanghai centre roads ({source.name}), walk", net, args.categories, 40)

    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--grid-side",
            str(args.grid_side),
            "--categories",
            str(args.categories),
            "--per-category",
            str(args.per_category),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    stats = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"\n== synthetic grid, planner alone (child process): {stats['nodes']:,} nodes")
    print(
        f"network from arrays {stats['build_s']:.2f} s; {args.categories}-category audit "
        f"{stats['audit_s']:.2f} s (target ≤ 10 s); peak memory {stats['peak_mb']:.0f} MB (target ≤ 4096 MB)"
    )

    grid = grid_network(args.grid_side)
    bench_graph(
        f"synthetic grid {args.grid_side}×{args.grid_side}",
        grid,
        args.categories,
        args.per_category,
        nx_categories=args.nx_grid_categories,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
