"""planner.optimize.p_median: the p-median against brute force, its branch and bound proving the
optimum, capacities, and published optima.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _bench_data import BENCHMARKS, orlib_optima, read_orlib_pmed, read_sjc_cpmp
from scipy import sparse

from planner import InfeasibleError
from planner.optimize import PMedian, _tuning

from .helpers import SEEDS, assign_all, brute_pmedian, needs_benchmarks, open_sets, tiny


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fixed", [(), (3,)])
def test_pmedian_matches_brute_force(seed, fixed):
    cost, w = tiny(seed)
    optimum = brute_pmedian(cost, w, 2, fixed)
    model = PMedian.from_cost_matrix(cost, w, p=2, fixed=list(fixed))
    exact = model.solve(method="exact", gap=0)
    assert exact.objective == pytest.approx(optimum, rel=1e-9)
    assert exact.status == "optimal" and exact.gap == 0
    assert set(fixed) <= set(exact.sites) and len(exact.sites) == 2 + len(fixed)
    heur = model.solve(method="heuristic", gap=0)
    assert heur.lower_bound <= optimum + 1e-6 <= heur.objective + 2e-6
    # Every home is assigned to its nearest open site.
    np.testing.assert_allclose(cost[np.arange(8), exact.assignment], cost[:, exact.sites].min(axis=1))


@pytest.mark.parametrize("seed", SEEDS)
def test_pmedian_sparse_matches_brute_force(seed):
    cost, w = tiny(seed, sparse_share=0.4)
    p = 3
    optimum = brute_pmedian(cost, w, p)
    rows, cols = np.nonzero(np.isfinite(cost))
    matrix = sparse.coo_array((cost[rows, cols], (rows, cols)), shape=cost.shape)
    model = PMedian.from_cost_matrix(matrix, w, p=p)
    if not math.isfinite(optimum):
        with pytest.raises(InfeasibleError, match=r"p=3 is below"):
            model.solve(method="exact")
        return
    exact = model.solve(method="exact", gap=0)
    assert exact.objective == pytest.approx(optimum, rel=1e-9)
    heur = model.solve(method="heuristic", gap=0)
    assert heur.lower_bound <= optimum + 1e-6 <= heur.objective + 2e-6
    np.testing.assert_array_equal(model.unreachable, np.flatnonzero(~np.isfinite(cost).any(axis=1)))


def test_sparse_explicit_zero_is_a_real_cost():
    rows, cols = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    cost = sparse.coo_array((np.array([0.0, 50.0, 80.0, 70.0]), (rows, cols)), shape=(2, 2))
    sol = PMedian.from_cost_matrix(cost, p=1).solve(method="exact", gap=0)
    assert sol.objective == 80.0 and list(sol.sites) == [0]


def test_pmedian_auto_proves_the_optimum_by_branching(monkeypatch):
    """A 200 × 50 instance the heuristic leaves 0.2 % from its bound: auto closes it by
    branch and bound to HiGHS's optimum (gap 0); capped at one node, HiGHS finishes it."""
    rng = np.random.default_rng(3)
    homes, sites = rng.uniform(0, 3000, (200, 2)), rng.uniform(0, 3000, (50, 2))
    cost = np.linalg.norm(homes[:, None] - sites[None], axis=2) * 1.25 / 1.1
    w = rng.integers(1, 200, 200).astype(float)
    ref = PMedian.from_cost_matrix(cost, w, p=5).solve("exact", gap=0)
    heur = PMedian.from_cost_matrix(cost, w, p=5).solve("heuristic", gap=0)
    assert heur.gap > 1e-3
    auto = PMedian.from_cost_matrix(cost, w, p=5).solve("auto", gap=0)
    assert auto.solver == "heuristic+lagrangian+branching"
    assert auto.objective == pytest.approx(ref.objective, rel=1e-12) and auto.gap < 2e-9  # float tolerance
    assert auto.lower_bound <= ref.objective
    monkeypatch.setattr(_tuning, "BRANCH_MAX_NODES", 1)
    capped = PMedian.from_cost_matrix(cost, w, p=5).solve("auto", gap=0)
    assert capped.solver.endswith("highs") and capped.objective == pytest.approx(ref.objective, rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_capacitated_pmedian_matches_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    n, m, p = 6, 4, 2
    cost = rng.integers(60, 900, size=(n, m)).astype(float)
    loads = rng.integers(1, 6, size=n).astype(float)
    caps = rng.integers(6, 14, size=m).astype(float)
    fixed = [0] if seed % 2 else []
    best = math.inf
    for s in open_sets(m, p, fixed):
        best = min(best, assign_all(cost, loads, caps, s))
    model = PMedian.from_cost_matrix(cost, np.ones(n), p=p, capacities=caps, loads=loads, fixed=fixed)
    if not math.isfinite(best):
        with pytest.raises(InfeasibleError):
            model.solve(method="exact")
        return
    for method in ("exact", "heuristic"):
        sol = model.solve(method=method, gap=0)
        # Capacities respected, single sourcing, fixed sites open.
        load = np.bincount(sol.assignment, weights=loads, minlength=m)
        assert np.all(load <= caps + 1e-9)
        assert np.all(sol.assignment >= 0) and set(fixed) <= set(sol.sites)
        assert set(sol.assignment) <= set(sol.sites)
        assert sol.objective == pytest.approx(cost[np.arange(n), sol.assignment].sum())
        if method == "exact":
            assert sol.objective == pytest.approx(best)
        else:
            assert sol.lower_bound <= best + 1e-6 <= sol.objective + 1e-6
    table = model.solve(method="exact", gap=0).table()
    assert set(table.columns) >= {"site", "kind", "rank", "homes", "demand", "load", "capacity"}
    assert np.all(table["load"] <= table["capacity"] + 1e-9)


@pytest.mark.shared
@pytest.mark.parametrize("number", [1, 2, 3, 4, 5])
def test_orlib_pmedian(number):
    needs_benchmarks()
    cost, p = read_orlib_pmed(BENCHMARKS / "orlib-pmed" / f"pmed{number}.txt")
    optimum = orlib_optima()[f"pmed{number}"]
    model = PMedian.from_cost_matrix(cost, p=p)
    exact = model.solve(method="exact", gap=0)
    assert exact.objective == optimum and exact.status == "optimal"
    heur = model.solve(method="heuristic", gap=0)
    assert heur.lower_bound <= optimum <= heur.objective
    assert heur.objective <= optimum * (1 + heur.gap) + 1e-9
    assert heur.objective == optimum  # greedy + interchange reaches these optima


def test_sjc1_capacitated_pmedian():
    needs_benchmarks()
    cost, capacity, demand, p = read_sjc_cpmp()
    model = PMedian.from_cost_matrix(cost, np.ones(len(demand)), p=p, capacities=capacity, loads=demand)
    sol = model.solve(method="exact", gap=0)
    assert sol.objective == pytest.approx(17288.99, abs=0.01)
    load = np.bincount(sol.assignment, weights=demand, minlength=len(demand))
    assert np.all(load <= capacity + 1e-9)
    heur = model.solve(method="heuristic")
    assert heur.lower_bound <= 17288.9931 <= heur.objective
