"""Sweeps on the contracted graph against an independent Dijkstra on the full graph."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from conftest import SAMPLES

from planner.network import Access, TargetGraph, build_network, from_arrays, to_networkx
from planner.sources import load_region


def _per_owner(net, acc: Access, owners) -> dict[int, np.ndarray]:
    """Per target, every node's cost to it: networkx Dijkstra on the full, uncontracted graph."""
    g = to_networkx(net, "time").reverse(copy=True)
    leg = acc.leg(net, "time")
    out = {}
    for o in owners:
        best = np.full(net.n_nodes, np.inf)
        for node, leg_s in zip(acc.node[acc.owner == o], leg[acc.owner == o], strict=False):
            for k, d in nx.single_source_dijkstra_path_length(g, int(node), weight="weight").items():
                best[k] = min(best[k], d + leg_s)
        out[int(o)] = best
    return out


def _check(net, acc, subset=None, limit=None):
    tg = TargetGraph(net, acc, "time")
    cost, near = tg.sweep(subset, limit)
    owners = np.unique(acc.owner) if subset is None else subset
    each = _per_owner(net, acc, owners)
    ref = np.min(list(each.values()), axis=0)
    if limit is not None:
        ref[ref > limit] = np.inf
    np.testing.assert_array_equal(np.isfinite(cost), np.isfinite(ref))
    ok = np.isfinite(ref)
    np.testing.assert_allclose(cost[ok], ref[ok], rtol=1e-9, atol=1e-9)
    assert np.isin(near[ok], owners).all() and (near[~ok] == -1).all()
    # The target named is one at that cost.
    named = np.array([each[int(o)][i] for i, o in zip(np.flatnonzero(ok), near[ok], strict=False)])
    np.testing.assert_allclose(named, ref[ok], rtol=1e-9, atol=1e-9)
    return tg


def test_chain_contraction_by_hand():
    """A street 0-1-2-3-4 whose stretch 2-3 is one-way 3 → 2, a loop 4-5-6-4 and a spur 1-7.

    Nodes 2, 3, 5, 6 are chain nodes; the target sits on chain node 3 with a 10 m leg.
    """
    x = np.array([0, 100, 200, 300, 400, 450, 450, 100], float)
    y = np.array([0, 0, 0, 0, 0, 50, -50, 100], float)
    two = [(0, 1), (1, 2), (3, 4), (4, 5), (5, 6), (6, 4), (1, 7)]
    u = [a for a, b in two] + [b for a, b in two] + [3]
    v = [b for a, b in two] + [a for a, b in two] + [2]
    net = from_arrays(x, y, u, v, "EPSG:32650", two_way=False)
    target = Access(owner=np.array([0]), node=np.array([3]), leg_m=np.array([10.0]), n_owners=1)
    tg = TargetGraph(net, target)
    assert tg.chains is not None and set(tg.chains.inner) == {2, 3, 5, 6}
    cost, near = tg.sweep()
    speed, leg_s = net.walk_speed_mps, target.leg(net, "time")[0]
    assert cost[3] == pytest.approx(leg_s) and near[3] == 0
    assert cost[4] == pytest.approx(100 / speed + leg_s)
    assert cost[5] == pytest.approx((100 + 50 * 2**0.5) / speed + leg_s)
    # 2 → 3 is against the one-way: west of 3 nothing reaches the target.
    assert np.isinf(cost[[0, 1, 2, 7]]).all() and (near[[0, 1, 2, 7]] == -1).all()
    _check(net, target)


@pytest.mark.parametrize("mode", ["walk", "drive"])
def test_contracted_sweeps_equal_full_dijkstra(mode):
    """Shanghai centre (drive: one-way streets), targets on chain and core nodes, several
    entries per target, legs, a subset and a limit."""
    net = build_network(load_region(SAMPLES / "shanghai_center_roads.osm.pbf"), mode)
    rng = np.random.default_rng(3)
    k = 30
    acc = Access(
        owner=rng.integers(0, 12, k),
        node=rng.choice(net.n_nodes, k, replace=False),
        leg_m=rng.uniform(0, 80, k),
        n_owners=12,
    )
    tg = _check(net, acc, subset=np.arange(0, 12, 3))
    assert tg.chains is not None and len(tg.chains.core) < net.n_nodes / 3
    assert len(tg.on_chain[0]) > 0  # some targets sit on chain nodes
    _check(net, acc, limit=300.0)
