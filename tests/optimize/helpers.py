"""Shared instances, brute-force optima and an independent MIP for the optimize tests."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from _bench_data import BENCHMARKS
from scipy import optimize as sopt
from scipy import sparse

from planner import InfeasibleError

SEEDS = range(6)


def needs_benchmarks():
    if not BENCHMARKS.is_dir():
        pytest.skip("needs ../shared/benchmarks (published instances); absent in this clone")


def tiny(seed: int, n: int = 8, m: int = 6, sparse_share: float = 0.0):
    """Random demand × candidate travel times (s) and integer weights."""
    rng = np.random.default_rng(seed)
    cost = rng.integers(60, 1200, size=(n, m)).astype(float)
    if sparse_share:
        cost[rng.random((n, m)) < sparse_share] = np.inf
    weights = rng.integers(1, 20, size=n).astype(float)
    return cost, weights


def open_sets(m: int, p: int, fixed=()):
    free = [j for j in range(m) if j not in set(fixed)]
    for new in itertools.combinations(free, p):
        yield list(fixed) + list(new)


def brute_pmedian(cost, w, p, fixed=()):
    best = math.inf
    for s in open_sets(cost.shape[1], p, fixed):
        nearest = cost[:, s].min(axis=1)
        reach = np.isfinite(cost).any(axis=1)
        if np.isinf(nearest[reach]).any():
            continue
        best = min(best, float((w[reach] * nearest[reach]).sum()))
    return best


def brute_mclp(cost, w, p, limit_s, fixed=()):
    return max(
        float(w[(cost[:, s] <= limit_s).any(axis=1)].sum()) for s in open_sets(cost.shape[1], p, fixed)
    )


def brute_lscp(cost, limit_s, fixed=()):
    need = (cost <= limit_s).any(axis=1)
    for p in range(cost.shape[1] + 1):
        for s in open_sets(cost.shape[1], p, fixed) if p <= cost.shape[1] - len(fixed) else []:
            if (cost[np.ix_(need, s)] <= limit_s).any(axis=1).all():
                return p
    raise AssertionError("no cover")


def brute_pcenter(cost, p, fixed=()):
    reach = np.isfinite(cost).any(axis=1)
    return min(float(cost[np.ix_(reach, s)].min(axis=1).max()) for s in open_sets(cost.shape[1], p, fixed))


def assign_all(cost, loads, caps, s):
    """Best single-source assignment cost to open sites ``s`` by enumeration (tiny only)."""
    n = cost.shape[0]
    best = math.inf
    for choice in itertools.product(s, repeat=n):
        used = {}
        ok = True
        total = 0.0
        for i, j in enumerate(choice):
            if not np.isfinite(cost[i, j]):
                ok = False
                break
            used[j] = used.get(j, 0.0) + loads[i]
            total += cost[i, j]
        if ok and all(used[j] <= caps[j] + 1e-9 for j in used):
            best = min(best, total)
    return best


def assert_capacitated_optimum(model, optimum, rows, loads, caps, cost, limit_s=math.inf):
    """exact and auto reach ``optimum`` (None: infeasible) with a proof; every row in
    ``rows`` served by one site it reaches (within ``limit_s``), loads within the capacities."""
    for method in ("exact", "auto"):
        if optimum is None:
            with pytest.raises(InfeasibleError):
                model.solve(method=method)
            continue
        sol = model.solve(method=method)
        assert sol.objective == optimum and sol.bound == optimum
        served = sol.assignment[rows]
        assert np.all(cost[rows, served] > 0) and np.all(cost[rows, served] <= limit_s)
        assert np.all(np.bincount(served, weights=loads[rows], minlength=len(caps)) <= caps + 1e-9)


def reference_cover_mip(cost, limit_s, weights=None, p=None, fixed=()):
    """The optimum of the whole covering model by scipy's MILP (HiGHS), written here from its
    definition and independent of planner's reductions: with ``p`` the most weight within
    ``limit_s`` of ``p`` new sites (max-coverage), without it the fewest new sites within
    ``limit_s`` of every home some candidate reaches (set covering)."""
    covers = np.asarray(cost) <= limit_s
    n, m = covers.shape
    is_fixed = np.zeros(m, dtype=bool)
    is_fixed[list(fixed)] = True
    site_lb = is_fixed.astype(float)
    if p is None:
        need = covers.any(axis=1)
        rows = sopt.LinearConstraint(sparse.csr_array(covers[need].astype(float)), lb=1.0)
        res = sopt.milp(
            (~is_fixed).astype(float),
            constraints=[rows],
            integrality=np.ones(m),
            bounds=sopt.Bounds(site_lb, 1.0),
            options={"mip_rel_gap": 0.0},
        )
        assert res.status == 0, res.message
        return round(res.fun)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    # Variables: m sites, then n homes; home i counts only when an open site covers it.
    link = sparse.hstack([-sparse.csr_array(covers.astype(float)), sparse.identity(n)])
    count = np.concatenate([(~is_fixed).astype(float), np.zeros(n)])
    res = sopt.milp(
        np.concatenate([np.zeros(m), -w]),
        constraints=[sopt.LinearConstraint(link, ub=0.0), sopt.LinearConstraint(count, p, p)],
        integrality=np.concatenate([np.ones(m), np.zeros(n)]),
        bounds=sopt.Bounds(np.concatenate([site_lb, np.zeros(n)]), 1.0),
        options={"mip_rel_gap": 0.0},
    )
    assert res.status == 0, res.message
    return -res.fun
