"""planner.optimize.solution: the site table and its ranks."""

from __future__ import annotations

import pickle

import numpy as np

from planner.optimize import MaxCoverage


def test_table_ranks_and_coverage():
    cost = np.array([[60.0, 900.0, 900.0], [60.0, 900.0, 900.0], [900.0, 60.0, 900.0], [900.0, 900.0, 60.0]])
    sol = MaxCoverage.from_cost_matrix(cost, [5, 5, 3, 1], p=2, minutes=5, fixed=[2]).solve()
    table = sol.table()
    assert list(table["site"]) == [2, 0, 1]
    assert list(table["kind"]) == ["fixed", "new", "new"]
    assert list(table["rank"]) == [1, 2, 3]
    assert list(table["coverage_added"]) == [1, 10, 3]
    assert list(table["demand"]) == [1, 10, 3]
    assert sol.objective == 14 and sol.gap == 0
    # The table is built on first use; a pickled solution (e.g. from a Dask worker) carries it.
    copy = pickle.loads(
        pickle.dumps(MaxCoverage.from_cost_matrix(cost, [5, 5, 3, 1], p=2, minutes=5, fixed=[2]).solve())
    )
    assert copy.table().equals(table)
