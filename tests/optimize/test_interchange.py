"""planner.optimize.interchange: the dense max-coverage interchange against the swap engine."""

from __future__ import annotations

import numpy as np
import pytest

from planner.optimize import MaxCoverage, interchange


def test_dense_coverage_interchange_matches_the_engine():
    """Max-coverage's dense interchange opens the same sites as the sparse swap engine
    (greedy from the fixed sites, and restarted from given sites), and ends where no single
    swap covers more weight (checked by brute force)."""
    rng = np.random.default_rng(3)
    for trial in range(12):
        n, m = int(rng.integers(30, 200)), int(rng.integers(8, 40))
        homes, sites = rng.uniform(0, 2000, (n, 2)), rng.uniform(0, 2000, (m, 2))
        cost = np.linalg.norm(homes[:, None] - sites[None], axis=2)
        w = rng.integers(1, 60, n).astype(float) + (0.37 if trial % 3 == 0 else 0.0)
        fixed = rng.choice(m, 2, replace=False) if trial % 2 else None
        k = int(rng.integers(2, 6))
        model = MaxCoverage.from_cost_matrix(cost, w, p=k, minutes=8, fixed=fixed)
        inst = model.instance
        # The engine's form of max-coverage: entries cost nothing, leaving a home costs its weight.
        W, P = np.zeros(inst.nnz), np.where(inst.coverable, inst.weights, 0.0)
        engine = interchange.SwapEngine(inst, W, P, k)
        engine.greedy()
        engine.local_search(None)
        dense = interchange.DenseCoverSwap(inst, k)
        found = dense.search(inst.fixed, None)
        np.testing.assert_array_equal(found, engine.open_sites())
        start = rng.choice(np.setdiff1d(np.arange(m), inst.fixed), 2, replace=False)
        engine.reset(start)
        engine.greedy()
        engine.local_search(None)
        np.testing.assert_array_equal(dense.search(start, None), engine.open_sites())
        covered = cost <= 480.0

        def value(open_sites, w=w, covered=covered):
            return float(w[covered[:, open_sites].any(axis=1)].sum())

        assert value(found) == pytest.approx(float(w[covered.any(axis=1)].sum()) - dense.uncovered(found))
        best = value(found)
        for out in np.setdiff1d(found, inst.fixed):
            for into in np.setdiff1d(np.arange(m), found):
                assert value(np.append(found[found != out], into)) <= best + 1e-9
