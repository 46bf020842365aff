"""planner.optimize._arrays: entries grouped by candidate."""

from __future__ import annotations

import numpy as np

from planner.optimize import MaxCoverage, _arrays, _tuning


def test_csc_order_radix_and_scipy_agree(monkeypatch):
    """Entries grouped by candidate, rows ascending within each: the radix sort of small
    instances and scipy's CSR → CSC conversion give the same order and pointers."""
    rng = np.random.default_rng(2)
    cost = np.where(rng.random((300, 70)) < 0.2, rng.uniform(0, 900, (300, 70)), np.inf)
    inst = MaxCoverage.from_cost_matrix(cost, p=2, minutes=15).instance
    order, ptr = _arrays.csc_order(inst)
    monkeypatch.setattr(_tuning, "CSC_RADIX_MAX_ENTRIES", 0)
    scipy_order, scipy_ptr = _arrays.csc_order(inst)
    np.testing.assert_array_equal(order, scipy_order)
    np.testing.assert_array_equal(ptr, scipy_ptr)
    assert np.all(np.diff(inst.col[order]) >= 0)
