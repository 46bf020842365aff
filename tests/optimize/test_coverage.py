"""planner.optimize.coverage: max-coverage and set covering against brute force and the whole MIP,
capacities, minimum shares per sub-area, and published optima.
"""

from __future__ import annotations

import concurrent.futures
import itertools

import numpy as np
import pytest
from _bench_data import read_sf, read_sjc_cpmp, read_sjc_mclp, sjc_distance
from threadpoolctl import threadpool_info

from planner import InfeasibleError
from planner.optimize import MaxCoverage, PCenter, PMedian, SetCover, _tuning, covering

from .helpers import (
    SEEDS,
    assert_capacitated_optimum,
    brute_lscp,
    brute_mclp,
    needs_benchmarks,
    open_sets,
    reference_cover_mip,
    tiny,
)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fixed", [(), (1,)])
@pytest.mark.parametrize("dense_flops", [_tuning.DENSE_COVER_SWAP_MAX_FLOPS, 0])
def test_max_coverage_matches_brute_force(seed, fixed, dense_flops, monkeypatch):
    monkeypatch.setattr(_tuning, "DENSE_COVER_SWAP_MAX_FLOPS", dense_flops)  # 0: the sparse engine
    cost, w = tiny(seed)
    limit_s = 420.0
    optimum = brute_mclp(cost, w, 2, limit_s, fixed)
    model = MaxCoverage.from_cost_matrix(cost, w, p=2, minutes=limit_s / 60, fixed=list(fixed))
    exact = model.solve(method="exact", gap=0)
    assert exact.objective == pytest.approx(optimum)
    heur = model.solve(method="heuristic", gap=0)
    # Mirrored for maximisation: heuristic <= optimum <= its upper bound.
    assert heur.objective <= optimum + 1e-9 <= heur.upper_bound + 1e-9
    assert set(fixed) <= set(exact.sites)
    covered = (cost[:, exact.sites] <= limit_s).any(axis=1)
    np.testing.assert_array_equal(exact.covered, covered)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fixed", [(), (0,)])
def test_set_cover_matches_brute_force(seed, fixed):
    cost, w = tiny(seed, n=10)
    limit_s = 400.0
    optimum = brute_lscp(cost, limit_s, fixed)
    model = SetCover.from_cost_matrix(cost, w, minutes=limit_s / 60, fixed=list(fixed))
    for method in ("exact", "heuristic", "auto"):
        sol = model.solve(method=method, gap=0)
        assert sol.lower_bound <= optimum <= sol.objective
        if method != "heuristic":
            assert sol.objective == optimum
        reach = (cost <= limit_s).any(axis=1)
        assert (cost[np.ix_(reach, sol.sites)] <= limit_s).any(axis=1).all()
    np.testing.assert_array_equal(model.unreachable, np.flatnonzero(~(cost <= limit_s).any(axis=1)))


def test_max_coverage_leaves_blas_threads_as_found():
    """The heuristic's one-BLAS-thread limit is undone after the solve, also when solves run
    in several threads at once (only the main thread sets it)."""

    def threads():
        return [lib["num_threads"] for lib in threadpool_info()]

    before = threads()
    cost, w = tiny(3)
    model = MaxCoverage.from_cost_matrix(cost, w, p=2, minutes=7)
    model.solve(method="heuristic")
    assert threads() == before
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: model.solve(method="heuristic").objective, range(8)))
    assert threads() == before and len(set(results)) == 1


@pytest.mark.parametrize("method", ["auto", "exact", "heuristic"])
def test_coverage_edge_cases(method):
    """Nothing left to choose: every home covered by fixed sites, no home coverable, p equal
    to the candidates, p = 0."""
    inf = np.inf
    cost = np.array([[60, 900, inf], [60, 60, inf], [inf, 900, 60.0]])
    w = [1.0, 2.0, 3.0]
    sol = MaxCoverage.from_cost_matrix(cost, w, p=1, minutes=5, fixed=[0, 2]).solve(method)
    assert sol.objective == 6.0 and sol.gap == 0 and len(sol.new_sites) == 1
    sol = SetCover.from_cost_matrix(cost, minutes=5, fixed=[0, 2]).solve(method)
    assert sol.objective == 0 and list(sol.sites) == [0, 2]
    nothing = np.full((3, 3), inf)
    sol = MaxCoverage.from_cost_matrix(nothing, w, p=2, minutes=5).solve(method)
    assert sol.objective == 0 and len(sol.new_sites) == 2
    sol = SetCover.from_cost_matrix(nothing, w, minutes=5).solve(method)
    assert sol.objective == 0 and list(sol.unreachable) == [0, 1, 2]
    assert MaxCoverage.from_cost_matrix(cost, w, p=3, minutes=5).solve(method, gap=0).objective == 6.0
    sol = MaxCoverage.from_cost_matrix(cost, w, p=0, minutes=5, fixed=[1]).solve(method, gap=0)
    assert sol.objective == 2.0 and list(sol.sites) == [1]


@pytest.mark.parametrize("seed", range(4))
def test_coverage_models_equal_the_unreduced_mip(seed):
    """Mid-size random instances: the core, the dual LP bound and Lagrangian fixing give the
    optimum of HiGHS on the whole model, integer and fractional weights, with fixed sites."""
    rng = np.random.default_rng(seed)
    n, m = 300, 60
    homes, sites = rng.uniform(0, 3000, (n, 2)), rng.uniform(0, 3000, (m, 2))
    cost = np.linalg.norm(homes[:, None] - sites[None], axis=2) / 1.1
    w = rng.integers(1, 200, n).astype(float) if seed % 2 else rng.uniform(0.5, 100.0, n)
    fixed = [0, 1] if seed >= 2 else None
    ref = reference_cover_mip(cost, 480, w, p=8, fixed=fixed or ())
    for method in ("auto", "exact", "heuristic"):
        sol = MaxCoverage.from_cost_matrix(cost, w, p=8, minutes=8, fixed=fixed).solve(method, gap=0)
        assert sol.upper_bound >= ref - 1e-6
        assert len(sol.new_sites) == 8
        if method != "heuristic":
            assert sol.objective == pytest.approx(ref, rel=1e-9)
    ref = reference_cover_mip(cost, 480, fixed=fixed or ())
    for method in ("auto", "exact", "heuristic"):
        sol = SetCover.from_cost_matrix(cost, w, minutes=8, fixed=fixed).solve(method, gap=0)
        assert sol.lower_bound <= ref <= sol.objective
        assert sol.covered[(cost <= 480).any(axis=1)].all()
        if method != "heuristic":
            assert sol.objective == ref


def test_max_coverage_fixing_closes_the_gap():
    """An instance whose LP bound is above the heuristic's answer: auto proves the optimum
    through Lagrangian fixing + HiGHS on what is left, and it is the full MIP's optimum."""
    rng = np.random.default_rng(2)
    homes, sites = rng.uniform(0, 6000, (2000, 2)), rng.uniform(0, 6000, (300, 2))
    cost = np.linalg.norm(homes[:, None] - sites[None], axis=2) * 1.25 / 1.1
    w = rng.integers(1, 200, 2000).astype(float)
    heur = MaxCoverage.from_cost_matrix(cost, w, p=20, minutes=10).solve("heuristic")
    assert heur.gap > 1e-4  # the LP alone does not prove it
    auto = MaxCoverage.from_cost_matrix(cost, w, p=20, minutes=10).solve("auto")
    assert "fixing" in auto.solver and auto.gap <= 1e-4
    ref = reference_cover_mip(cost, 600, w, p=20)
    assert auto.objective == pytest.approx(ref, rel=1e-9)
    assert heur.upper_bound >= ref - 1e-6


@pytest.mark.parametrize("seed", SEEDS)
def test_capacitated_coverage_matches_brute_force(seed):
    rng = np.random.default_rng(200 + seed)
    n, m, p = 6, 4, 2
    cost = rng.integers(60, 900, size=(n, m)).astype(float)
    w = rng.integers(1, 9, size=n).astype(float)
    caps = rng.integers(5, 15, size=m).astype(float)
    limit_s = 500.0
    best = 0.0
    for s in open_sets(m, p):
        # Each covered home uses capacity = its weight; try every subset/assignment.
        options = [[-1] + [j for j in s if cost[i, j] <= limit_s] for i in range(n)]
        for choice in itertools.product(*options):
            used = np.zeros(m)
            for i, j in enumerate(choice):
                if j >= 0:
                    used[j] += w[i]
            if np.all(used <= caps):
                best = max(best, float(sum(w[i] for i, j in enumerate(choice) if j >= 0)))
    model = MaxCoverage.from_cost_matrix(cost, w, p=p, minutes=limit_s / 60, capacities=caps)
    exact = model.solve(method="exact", gap=0)
    assert exact.objective == pytest.approx(best)
    load = np.bincount(exact.assignment[exact.assignment >= 0], weights=w[exact.assignment >= 0], minlength=m)
    assert np.all(load <= caps + 1e-9)
    heur = model.solve(method="heuristic", gap=0)
    assert heur.objective <= best + 1e-9 <= heur.upper_bound + 1e-9


@pytest.mark.parametrize("seed", range(8))
def test_capacitated_set_cover_matches_brute_force(seed):
    """Fractional loads, sometimes a fixed site: exact and auto equal the fewest new sites
    over every site set and single-source assignment."""
    rng = np.random.default_rng(400 + seed)
    n, m = int(rng.integers(4, 8)), int(rng.integers(3, 6))
    cost = rng.integers(1, 20, (n, m)).astype(float) * 60
    loads = rng.integers(1, 5, n) * (1 + 0.1 * rng.random(n))
    caps = rng.integers(3, 10, m).astype(float)
    fixed = [int(rng.integers(m))] if seed % 2 else []
    rows = np.flatnonzero((cost <= 600).any(axis=1))
    optimum = None
    free = [j for j in range(m) if j not in fixed]
    for k in range(len(free) + 1):
        for new in itertools.combinations(free, k):
            options = [[j for j in list(new) + fixed if cost[i, j] <= 600] for i in rows]
            if any(
                np.all(np.bincount(choice, weights=loads[rows], minlength=m) <= caps)
                for choice in itertools.product(*options)
            ):
                optimum = k
                break
        if optimum is not None:
            break
    model = SetCover.from_cost_matrix(cost, loads, minutes=10, capacities=caps, loads=loads, fixed=fixed)
    assert_capacitated_optimum(model, optimum, rows, loads, caps, cost, limit_s=600)


def test_min_share_constraint_changes_the_answer():
    # Group A: 10 homes near candidate 0; group B: 2 homes only near candidate 1.
    cost = np.full((12, 2), 2000.0)
    cost[:10, 0] = 100.0
    cost[10:, 1] = 100.0
    w = np.ones(12)
    groups = ["A"] * 10 + ["B"] * 2
    plain = MaxCoverage.from_cost_matrix(cost, w, p=1, minutes=5).solve(method="exact")
    assert list(plain.sites) == [0] and plain.objective == 10
    shared = MaxCoverage.from_cost_matrix(cost, w, p=1, minutes=5, groups=groups, min_share={"B": 0.5})
    sol = shared.solve(method="exact")
    assert list(sol.sites) == [1] and sol.objective == 2
    assert sol.group_shares.set_index("group").loc["B", "share"] == 1.0
    heur = shared.solve(method="heuristic")
    assert list(heur.sites) == [1] and heur.shortfall is None
    with pytest.raises(InfeasibleError, match="p=1 is below the 2 new sites"):
        MaxCoverage.from_cost_matrix(cost, w, p=1, minutes=5, groups=groups, min_share=0.5).solve(
            method="exact"
        )
    cover = SetCover.from_cost_matrix(cost, w, minutes=5, groups=groups, min_share={"A": 0.85})
    for method in ("exact", "heuristic"):
        sol = cover.solve(method=method)
        assert list(sol.sites) == [0] and sol.objective == 1


def test_min_share_impossible_raises():
    cost = np.full((4, 2), np.inf)
    cost[:3, 0] = 60.0
    with pytest.raises(InfeasibleError, match=r"group 'all' needs 90% covered but only 75.0%"):
        SetCover.from_cost_matrix(cost, minutes=5, min_share=0.9).solve()


def test_set_cover_reports_unreachable_homes():
    cost = np.array([[60.0, 900.0], [900.0, 60.0], [900.0, 900.0], [np.inf, np.inf]])
    model = SetCover.from_cost_matrix(cost, [1, 2, 3, 4], minutes=5)
    np.testing.assert_array_equal(model.unreachable, [2, 3])
    assert model.unreachable_weight == 7
    sol = model.solve()
    assert sol.objective == 2 and list(sol.unreachable) == [2, 3]
    assert list(sol.assignment) == [0, 1, -1, -1]


@pytest.mark.shared
def test_spopt_sf_all_models():
    needs_benchmarks()
    cost, pop, _ = read_sf()
    assert pop.sum() == 955_113
    pmed = PMedian.from_cost_matrix(cost, pop, p=4).solve(gap=0)
    assert pmed.objective / pop.sum() == pytest.approx(2982.1268579890657, rel=1e-12)
    mclp = MaxCoverage.from_cost_matrix(cost, pop, p=4, minutes=5000 / 60).solve(gap=0)
    assert mclp.objective == 875_247
    lscp = SetCover.from_cost_matrix(cost, pop, minutes=5000 / 60).solve(gap=0)
    assert lscp.objective == 8 and lscp.bound == 8
    expected = [11577.279, 9130.759, 7529.986, 7403.064, 5985.500, 5903.667]
    for p, value in enumerate(expected, start=1):
        sol = PCenter.from_cost_matrix(cost, p=p).solve(method="exact")
        assert sol.objective == pytest.approx(value, abs=1e-3)


SJC_MCLP = [
    (324, 800, 2, 8790),
    (324, 800, 5, 12152),
    (402, 800, 5, 15970),
    (500, 1200, 2, 18070),
    (708, 1200, 5, 24142),
    (818, 800, 10, 28838),
]


@pytest.mark.shared
@pytest.mark.parametrize(("n", "radius", "p", "optimum"), SJC_MCLP)
def test_sjc_max_coverage(n, radius, p, optimum):
    needs_benchmarks()
    xy, demand = read_sjc_mclp(n)
    model = MaxCoverage.from_cost_matrix(sjc_distance(xy), demand, p=p, minutes=radius / 60)
    sol = model.solve(method="auto", gap=0)
    assert sol.objective == optimum and sol.status == "optimal"
    heur = model.solve(method="heuristic", gap=0)
    assert heur.objective <= optimum <= heur.upper_bound


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize("radius", [300.0, 400.0])
def test_sjc1_capacitated_set_cover_equals_the_full_mip(radius):
    """SJC1's capacities and demands as a capacitated set cover (every point within
    ``radius`` of its one site): the split relaxation's sites, reassigned single-source,
    reach the optimum of the full single-source MIP (HiGHS, solved independently)."""
    needs_benchmarks()
    cost, capacity, demand, _ = read_sjc_cpmp()
    model = SetCover.from_cost_matrix(cost, demand, minutes=radius / 60, capacities=capacity, loads=demand)
    sol = model.solve(method="exact")
    full = covering.cover_milp(model.instance, time_limit=None, gap=0.0)
    assert full.status == "optimal"
    assert sol.objective == round(full.objective) and sol.bound == sol.objective
    served = sol.assignment
    assert (served >= 0).all() and cost[np.arange(len(demand)), served].max() <= radius
    assert np.all(np.bincount(served, weights=demand, minlength=len(demand)) <= capacity + 1e-9)
