"""Fixed (existing) sites in every model, against brute-force enumeration.

A regression guard: p-center once scored its answer without the fixed sites.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from planner.optimize import MaxCoverage, PCenter, PMedian

FIXED = [0, 3]
FREE = [1, 2, 4, 5, 6, 7]


def _instances():
    for seed in range(8):
        rng = np.random.default_rng(seed)
        yield seed, rng.uniform(10, 1000, (25, 8)), rng.integers(1, 20, 25).astype(float)


@pytest.mark.parametrize("method", ["exact", "heuristic"])
def test_fixed_sites_brute_force(method):
    for seed, cost, w in _instances():
        opened = [FIXED + list(c) for c in itertools.combinations(FREE, 2)]
        pc = min(np.min(cost[:, s], axis=1).max() for s in opened)
        pm = min((w * np.min(cost[:, s], axis=1)).sum() for s in opened)
        mc = max((w * (np.min(cost[:, s], axis=1) <= 300)).sum() for s in opened)
        for model, best, kw in ((PCenter, pc, {}), (PMedian, pm, {}), (MaxCoverage, mc, {"minutes": 5})):
            sol = model.from_cost_matrix(cost, w, p=2, fixed=FIXED, **kw).solve(method=method)
            assert set(FIXED) <= set(sol.sites.tolist()), (seed, model.name)
            assert sol.lower_bound <= best * (1 + 1e-9) + 1e-9, (seed, model.name, sol, best)
            assert best <= sol.upper_bound * (1 + 1e-9) + 1e-9, (seed, model.name, sol, best)
            if method == "exact":
                assert sol.objective == pytest.approx(best, rel=1e-9), (seed, model.name)
