"""ConstrainedPMedian and ConstrainedPCenter (spacing, minimum catchment, capacities) against
brute force: every site set (itertools) and every single-site assignment of the rows, with
the rule that a row goes to a new site only when it is nearer than the row's nearest
existing site without a limit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from planner._errors import InputError
from planner.optimize.constrained_median import ConstrainedPCenter, ConstrainedPMedian

PENALTY = 2_000.0


def _options(cost, i, sites, fixed, cap):
    """Where row i may go among the open sites (-1: no site)."""
    free = [s for s in fixed if not np.isfinite(cap[s]) and np.isfinite(cost[i, s])]
    nearest = min((cost[i, s] for s in free), default=np.inf)
    first_free = [s for s in free if cost[i, s] == nearest][:1]
    others = [s for s in sites if s not in free and np.isfinite(cost[i, s]) and cost[i, s] < nearest]
    return [-1, *first_free, *others]


def _brute(cost, w, loads, p, fixed, cap, low, conflicts):
    """(least total, least worst, least total at the least worst) over every plan."""
    n, m = cost.shape
    new = [j for j in range(m) if j not in fixed]
    bad = {frozenset(map(int, c)) for c in conflicts}
    reach = np.isfinite(cost).any(axis=1)
    plans = []
    for k in range(p + 1):
        for chosen in itertools.combinations(new, k):
            sites = list(fixed) + list(chosen)
            if any(frozenset(pair) in bad for pair in itertools.combinations(sites, 2)):
                continue
            options = [_options(cost, i, sites, fixed, cap) if reach[i] else [-1] for i in range(n)]
            for assign in itertools.product(*options):
                a = np.array(assign)
                load = {s: loads[a == s].sum() for s in sites}
                if any(load[s] > cap[s] + 1e-9 for s in sites) or any(load[s] < low[s] - 1e-9 for s in chosen):
                    continue
                t = np.array([cost[i, a[i]] if a[i] >= 0 else PENALTY for i in range(n)])[reach]
                plans.append((float((w[reach] * t).sum()), float(t.max()) if len(t) else 0.0))
    total = min(pl[0] for pl in plans)
    worst = min(pl[1] for pl in plans)
    at_worst = min(pl[0] for pl in plans if pl[1] <= worst + 1e-9)
    return total, worst, at_worst


def _instance(seed):
    rng = np.random.default_rng(seed)
    n, m = 5, 5
    cost = rng.uniform(0, 900, (n, m))
    cost[rng.random((n, m)) < 0.2] = np.inf
    w = rng.integers(1, 20, n).astype(float)
    fixed = [0] if seed % 3 == 0 else []
    cap = np.where(rng.random(m) < 0.5, rng.integers(10, 40, m), np.inf).astype(float)
    low = rng.integers(0, 25, m).astype(float)
    conflicts = np.array([c for c in itertools.combinations(range(m), 2) if rng.random() < 0.25]).reshape(-1, 2)
    p = int(rng.integers(1, 4))
    kw = {"p": p, "fixed": fixed, "loads": w, "capacities": cap, "min_load": low, "conflicts": conflicts}
    return cost, w, kw


def _check_answer(sol, w, kw):
    new = sol.new_sites
    assert len(new) <= kw["p"]
    for a, b in kw["conflicts"]:
        assert not (a in sol.sites and b in sol.sites)
    for s in sol.sites:
        taken = w[sol.assignment == s].sum()
        assert taken <= kw["capacities"][s] + 1e-9
        if s in new:
            assert taken >= kw["min_load"][s] - 1e-9
    assert set(sol.assignment[sol.assignment >= 0]) <= set(sol.sites)


@pytest.mark.parametrize("seed", range(30))
def test_pmedian_with_spacing_catchment_capacity_equals_brute_force(seed):
    cost, w, kw = _instance(seed)
    sol = ConstrainedPMedian.from_cost_matrix(cost, w, penalty_s=PENALTY, **kw).solve()
    total, _, _ = _brute(cost, w, w, kw["p"], kw["fixed"], kw["capacities"], kw["min_load"], kw["conflicts"])
    assert sol.objective == pytest.approx(total)
    assert sol.status == "optimal" and sol.gap <= 1e-4
    _check_answer(sol, w, kw)


@pytest.mark.parametrize("seed", range(30))
def test_pcenter_with_spacing_catchment_capacity_equals_brute_force(seed):
    cost, w, kw = _instance(seed)
    sol = ConstrainedPCenter.from_cost_matrix(cost, w, penalty_s=PENALTY, **kw).solve()
    _, worst, at_worst = _brute(
        cost, w, w, kw["p"], kw["fixed"], kw["capacities"], kw["min_load"], kw["conflicts"]
    )
    assert sol.objective == pytest.approx(worst)
    _check_answer(sol, w, kw)
    # Among the answers at that worst time, the least total time.
    t = np.where(sol.assignment >= 0, cost[np.arange(len(w)), np.maximum(sol.assignment, 0)], PENALTY)
    reach = np.isfinite(cost).any(axis=1)
    assert float((w * t)[reach].sum()) == pytest.approx(at_worst)


def test_hand_worked_pmedian_catchment_moves_the_site():
    # Rows 0-1 (10 each) at 100 s from site 0 and 300 s from site 1; row 2 (5) only site 1, 100 s.
    # p = 1: site 0 costs 2·10·100 + 5·1,000 (row 2 left, the penalty) = 7,000; site 1 costs
    # 2·10·300 + 5·100 = 6,500, so site 1.
    inf = np.inf
    cost = np.array([[100.0, 300.0], [100.0, 300.0], [inf, 100.0]])
    w = np.array([10.0, 10.0, 5.0])
    plain = ConstrainedPMedian.from_cost_matrix(cost, w, p=1, penalty_s=1_000).solve()
    assert list(plain.new_sites) == [1] and plain.objective == pytest.approx(6_500)
    capped = ConstrainedPMedian.from_cost_matrix(cost, w, p=1, penalty_s=1_000, capacities=[inf, 15.0]).solve()
    # Site 1 takes row 2 and one of rows 0-1 (15): 500 + 3,000 + 10,000 left = 13,500; site 0
    # takes rows 0-1: 2,000 + 5,000 = 7,000.
    assert list(capped.new_sites) == [0] and capped.objective == pytest.approx(7_000)
    both = ConstrainedPMedian.from_cost_matrix(cost, w, p=2, penalty_s=1_000, min_load=[0.0, 6.0]).solve()
    # Beside site 0, site 1 would take only row 2 (5 < 6): it takes one of rows 0-1 too,
    # 1,000 + 3,000 + 500 = 4,500, better than site 0 alone (7,000) or site 1 alone (6,500).
    assert both.objective == pytest.approx(4_500)
    assert list(both.new_sites) == [0, 1]


def test_existing_site_keeps_its_homes_and_blocks_neighbours():
    # Site 0 is existing (no limit); site 1 is nearer row 1 only; site 2 conflicts with site 0.
    cost = np.array([[100.0, 200.0, 50.0], [300.0, 100.0, 50.0]])
    w = np.array([1.0, 1.0])
    sol = ConstrainedPMedian.from_cost_matrix(cost, w, p=2, fixed=[0], conflicts=[[0, 2]]).solve()
    assert list(sol.new_sites) == [1]
    assert list(sol.assignment) == [0, 1]
    assert sol.objective == pytest.approx(200.0)
    # Row 0 may not go to site 1 (farther than its existing site), so a catchment of 2 shuts it.
    shut = ConstrainedPMedian.from_cost_matrix(cost, w, p=2, fixed=[0], conflicts=[[0, 2]], min_load=2.0).solve()
    assert len(shut.new_sites) == 0 and shut.objective == pytest.approx(400.0)


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="penalty_s"):
        ConstrainedPMedian.from_cost_matrix(np.array([[500.0]]), p=1, penalty_s=10)
    with pytest.raises(InputError, match="p -1"):
        ConstrainedPCenter.from_cost_matrix(np.array([[5.0]]), p=-1)
