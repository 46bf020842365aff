"""The truncated p-median (``beyond_s``): a matrix cut at a routing limit, homes past it count the limit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from planner._errors import InputError
from planner.optimize import PMedian


def _truncated_optimum(cost, w, p, fixed, beyond_s):
    """Brute force: every set of p new sites, Σ w · min(nearest open site, beyond_s) over the
    rows that reach some candidate within the cut-off."""
    rows = np.isfinite(cost).any(axis=1)
    free = [j for j in range(cost.shape[1]) if j not in fixed]
    best = np.inf
    for new in itertools.combinations(free, p):
        nearest = cost[:, list(fixed) + list(new)].min(axis=1)
        best = min(best, float((w * np.minimum(nearest, beyond_s))[rows].sum()))
    return best


def test_by_hand():
    """Two towns 1 h apart: a 10-minute cut-off. One new site: town A (weight 10) beats B (3);
    B's homes then count the cut-off, 600 s each, not the hour."""
    inf = np.inf
    cost = np.array(
        [
            [60.0, inf],  # A
            [120.0, inf],  # A
            [inf, 30.0],  # B
        ]
    )
    w = np.array([5.0, 5.0, 3.0])
    sol = PMedian.from_cost_matrix(cost, w, p=1, beyond_s=600.0).solve(gap=0)
    assert sol.sites.tolist() == [0]
    assert sol.objective == pytest.approx(5 * 60 + 5 * 120 + 3 * 600)
    assert sol.assignment.tolist() == [0, 0, -1]
    assert sol.covered.tolist() == [True, True, False]
    assert sol.info["rows_beyond_cutoff"] == 1
    table = sol.table()
    assert table["site"].tolist() == [0] and table["rank"].tolist() == [1]
    two = PMedian.from_cost_matrix(cost, w, p=2, beyond_s=600.0).solve(gap=0)
    assert two.objective == pytest.approx(5 * 60 + 5 * 120 + 3 * 30) and two.assignment.tolist() == [0, 0, 1]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("method", ["exact", "heuristic", "auto"])
def test_equals_brute_force(seed, method):
    rng = np.random.default_rng(seed)
    n, m, p = 14, 7, 2
    cost = rng.uniform(0, 1000, (n, m))
    beyond_s = 500.0
    cost[cost > beyond_s] = np.inf  # the matrix stops at the cut-off
    cost[rng.integers(0, n)] = np.inf  # a home no candidate reaches
    w = rng.integers(1, 10, n).astype(float)
    fixed = [int(rng.integers(0, m))]
    sol = PMedian.from_cost_matrix(cost, w, p=p, fixed=fixed, beyond_s=beyond_s).solve(method, gap=0)
    assert sol.objective == pytest.approx(_truncated_optimum(cost, w, p, fixed, beyond_s))
    assert len(sol.sites) == p + 1 and fixed[0] in sol.sites and m not in sol.sites
    assert sol.fixed_sites.tolist() == fixed
    assert (sol.assignment < m).all()
    assert len(sol.unreachable) == int((~np.isfinite(cost).any(axis=1)).sum())


def test_sparse_matrix_and_capacities():
    cost = sp.csr_array(np.array([[10.0, 0.0], [0.0, 20.0], [30.0, 40.0]]))
    sol = PMedian.from_cost_matrix(cost, [1, 1, 1], p=1, capacities=[1, 5], beyond_s=100.0).solve(gap=0)
    # Site 1 (room for all) serves rows 1 and 2 at 20 + 40; row 0 counts the cut-off: 160.
    # Site 0 (room for one) serves row 0 or 2; the other two count 100 each: 210 or 230.
    assert sol.sites.tolist() == [1] and sol.objective == pytest.approx(160.0)


def test_refusals():
    with pytest.raises(InputError, match="beyond_s"):
        PMedian.from_cost_matrix(np.ones((2, 2)), p=1, beyond_s=-1.0)
    with pytest.raises(InputError, match="beyond_s"):
        PMedian.from_cost_matrix(np.ones((2, 2)), p=1, beyond_s=600.0, minutes=5)
