"""planner.optimize.lagrangian: the coverage bound LP, the smoothed dual's terms, and the
p-median's branch and bound against brute force.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.optimize import MaxCoverage, PMedian, _tuning, lagrangian

from .helpers import open_sets


def test_coverage_lp_bound_is_the_same_with_merged_homes(monkeypatch):
    """Max-coverage's bound LP with equal homes merged into one column (weights summed) has
    the optimum of the LP without merging, with and without fixed sites."""
    rng = np.random.default_rng(8)
    for trial in range(10):
        homes = rng.integers(0, 10, (300, 2)) * 150.0  # on a grid: many equal homes
        sites = rng.uniform(0, 1500, (40, 2))
        cost = np.linalg.norm(homes[:, None] - sites[None], axis=2)
        w = rng.integers(1, 50, 300).astype(float) + (0.5 if trial % 2 else 0.0)
        fixed = [int(rng.integers(40))] if trial % 3 == 0 else None
        inst = MaxCoverage.from_cost_matrix(cost, w, p=4, minutes=5, fixed=fixed).instance
        values, columns = [], []
        for share in (0.0, 2.0):  # always merge, never
            monkeypatch.setattr(_tuning, "SAME_HOMES_MIN_SHARE", share)
            lp = lagrangian.CoverageDualLp(inst, inst.weights, 4, integral=False, deadline=None)
            lp.run()
            values.append(lp.result()[2])
            columns.append(len(lp.w))
        assert values[0] == pytest.approx(values[1], rel=1e-9)
        reach = cost <= 300.0
        outside_fixed = ~reach[:, fixed].any(axis=1) if fixed else np.ones(len(reach), dtype=bool)
        assert columns[1] == int((reach.any(axis=1) & outside_fixed).sum()) > 2 * columns[0]


def test_coverage_bound_lp_without_dominated_candidates(monkeypatch):
    """Leaving dominated candidates out of max-coverage's bound LP changes neither the bound
    nor σ of the candidates kept, and σ of those left out is still evaluated (fixing uses it)."""
    rng = np.random.default_rng(5)
    homes, sites = rng.integers(0, 10, (300, 2)) * 100.0, rng.integers(0, 10, (60, 2)) * 100.0
    cost = np.linalg.norm(homes[:, None] - sites[None], axis=2) + rng.uniform(0, 30, (300, 60))
    w = rng.integers(1, 50, 300).astype(float)
    inst = MaxCoverage.from_cost_matrix(cost, w, p=4, minutes=5, fixed=[3]).instance
    results = []
    for flops in (0, 10**12):
        monkeypatch.setattr(_tuning, "COVERAGE_LP_DOMINANCE_MAX_FLOPS", flops)
        lp = lagrangian.CoverageDualLp(inst, inst.weights, 4, integral=True, deadline=None)
        lp.run()
        results.append((lp, lp.result()))
    (full, (bound_full, _, value_full, _)), (reduced, (bound, _, value, sigma)) = results
    assert len(reduced.cols_u) < len(full.cols_u)  # some candidates were dominated
    assert bound == bound_full and value == pytest.approx(value_full, rel=1e-9)
    assert (sigma[~inst.is_fixed] > 0).sum() > len(reduced.cols_u)


def test_smoothed_entries_match_the_plain_formula():
    """The in-place float32 evaluation of the smoothed dual's entry terms equals the plain
    softplus formula (float64) to float32 accuracy, and its per-row sums equal bincount's,
    rows without entries included."""
    rng = np.random.default_rng(8)
    n = 60
    row = np.sort(rng.choice(np.setdiff1d(np.arange(n), [0, 17, 59]), 900))  # three rows get no entry
    col = rng.integers(0, 25, 900)
    w = rng.uniform(0, 5000, 900)
    tau_row = rng.uniform(5, 200, n)
    lam = rng.uniform(0, 5000, n)
    terms = lagrangian.SmoothedEntries(row, col, w.astype(np.float32), tau_row)
    value, slope = terms.evaluate(lam)
    exp_value, exp_slope = lagrangian.smooth_min0(w - lam[row], tau_row[row])
    assert np.all(np.abs(value - exp_value) <= 1e-5 * np.abs(exp_value) + 1e-4 * tau_row[row])
    np.testing.assert_allclose(slope, exp_slope, atol=1e-5)
    x = rng.normal(size=900).astype(np.float32)
    np.testing.assert_allclose(
        terms.row_sums(x), np.bincount(row, weights=x, minlength=n), rtol=1e-6, atol=1e-5
    )
    assert (np.bincount(row, minlength=n) == 0).sum() == 3


@pytest.mark.parametrize("seed", range(8))
def test_pmedian_branch_and_bound_matches_brute_force(seed):
    """The Lagrangian branch and bound on its own: with the incumbent above the optimum it
    finds the optimum, with the optimum as incumbent it finds nothing better, and its proven
    bound is the optimum (gap 0), whatever λ it starts from, with fixed and closed sites and
    homes only closed sites reach."""
    rng = np.random.default_rng(seed)
    n, m, p = 20, 9, 3
    cost = rng.integers(60, 1200, size=(n, m)).astype(float)
    cost[rng.random((n, m)) < 0.35] = np.inf
    w = rng.integers(1, 20, n).astype(float)
    fixed = [0] if seed % 2 else []
    closed = np.zeros(m, dtype=bool)
    closed[[m - 1, m - 2] if seed >= 4 else [m - 1]] = True
    inst = PMedian.from_cost_matrix(cost, w, p=p, fixed=fixed).instance
    W = inst.weights[inst.row] * inst.cost_s
    reach = np.isfinite(cost).any(axis=1)
    best = math.inf
    for sites in open_sets(m, p, fixed):
        if closed[sites].any():
            continue
        nearest = cost[:, sites].min(axis=1)
        if np.isfinite(nearest[reach]).all():
            best = min(best, float((w * np.where(reach, nearest, 0)).sum()))
    starts = {"zero": np.zeros(n), "nearest": np.bincount(inst.row, weights=W, minlength=n) * 0}
    starts["nearest"][inst.coverable] = W[inst.indptr[:-1][inst.coverable]]
    for lam in starts.values():
        if not math.isfinite(best):
            finished, found, _, _ = lagrangian.pmedian_branch_and_bound(
                inst, W, p, lam, closed, 1e12, 0.0, integral=True, deadline=None, max_nodes=10_000
            )
            assert finished and found is None
            continue
        finished, found, proven, _ = lagrangian.pmedian_branch_and_bound(
            inst, W, p, lam, closed, best * 1.3 + 1, 0.0, integral=True, deadline=None, max_nodes=10_000
        )
        assert finished and found is not None
        assert set(fixed) <= set(found) and len(found) == p + len(fixed) and not closed[found].any()
        is_open = np.zeros(m, dtype=bool)
        is_open[found] = True
        assert lagrangian.open_cost(inst, W, is_open) == best
        assert proven == pytest.approx(best, rel=1e-9)
        finished, found, proven, _ = lagrangian.pmedian_branch_and_bound(
            inst, W, p, lam, closed, best, 0.0, integral=True, deadline=None, max_nodes=10_000
        )
        assert finished and found is None and proven == pytest.approx(best, rel=1e-9)
