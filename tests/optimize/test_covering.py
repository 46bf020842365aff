"""planner.optimize.covering: the greedy cover, completing a start, the local search, and the max-
flow cut of the capacitated test.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from planner.optimize import MaxCoverage, PCenter, SetCover, _tuning, covering

from .helpers import reference_cover_mip


def test_greedy_cover_recount_and_update_agree(monkeypatch):
    """The greedy cover is the same whether scores are recounted or updated after each pick."""
    rng = np.random.default_rng(4)
    homes, sites = rng.uniform(0, 3000, (300, 2)), rng.uniform(0, 3000, (60, 2))
    cost = np.linalg.norm(homes[:, None] - sites[None], axis=2) / 1.1
    inst = SetCover.from_cost_matrix(cost, minutes=6, fixed=[0]).instance
    covers = []
    for limit in (0, 10**9):
        monkeypatch.setattr(_tuning, "GREEDY_RECOUNT_MAX_ENTRIES", limit)
        covers.append(covering.greedy_cover(inst))
    np.testing.assert_array_equal(covers[0], covers[1])
    reach = (cost <= 360).any(axis=1)
    assert (cost[np.ix_(reach, np.append(covers[0], 0))] <= 360).any(axis=1).all()


def test_cover_start_is_completed_greedily():
    """A start that lost sites to the core keeps its own and adds the largest uncovered
    weight first, up to exactly k distinct sites."""
    # Homes 0-4 (weights 1, 2, 4, 8, 16); candidate j covers the homes marked in row j.
    covers = np.array([[1, 1, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0]])
    cost = np.where(covers.T == 1, 60.0, 900.0)
    inst = MaxCoverage.from_cost_matrix(cost, [1, 2, 4, 8, 16], p=3, minutes=5).instance
    assert list(covering.complete_cover_start(inst, np.array([2]), 3)) == [2, 3, 0]
    assert list(covering.complete_cover_start(inst, np.array([3, 1]), 2)) == [3, 1]


def test_set_cover_local_search_improves_the_greedy():
    """1,500 homes × 200 candidates: the greedy needs 50 sites, the optimum (HiGHS) 45; the
    local search returns a valid cover between the two."""
    rng = np.random.default_rng(3)
    homes, sites = rng.uniform(0, 5000, (1500, 2)), rng.uniform(0, 5000, (200, 2))
    cost = np.linalg.norm(homes[:, None] - sites[None], axis=2) / 1.1
    inst = SetCover.from_cost_matrix(cost, minutes=8).instance
    greedy = covering.greedy_cover(inst)
    better = covering.cover_local_search(inst, greedy, None, deadline=None, stall_rounds=5 * len(greedy))
    optimum = reference_cover_mip(cost, 480)
    assert (cost[:, better] <= 480).any(axis=1)[(cost <= 480).any(axis=1)].all()
    assert optimum <= len(better) < len(greedy)


def test_flow_shortfall_finds_the_violated_cut():
    """Homes A, B (load 3 each) reach site X only; C (load 1) reaches X and Y. With X's room
    4 the demand (7) fits the total room (4 + 5) but not A and B: the cut is {A, B}."""
    cost = np.array([[60.0, 0.0], [60.0, 0.0], [60.0, 90.0]])
    loads = np.array([3.0, 3.0, 1.0])
    inst = PCenter.from_cost_matrix(
        sparse.csr_array(cost), loads, p=2, capacities=[4.0, 5.0], loads=loads
    ).instance
    full, members = covering.flow_shortfall(inst, loads, np.array([4.0, 5.0]))
    assert not full and members.tolist() == [True, True, False]
    assert covering.flow_shortfall(inst, loads, np.array([6.0, 1.0])) == (True, None)
    # Fractional room (an LP's y): X half open gives 3 < 6.
    full, members = covering.flow_shortfall(inst, loads, np.array([6.0, 5.0]) * [0.5, 1.0])
    assert not full and members.tolist() == [True, True, False]
