"""ConstrainedPMedian and ConstrainedPCenter (spacing, minimum catchment, capacities) against
brute force: every site set (itertools), and for each the best split of the rows among its
sites (a linear programme, scipy's linprog), with the rule that a row goes to a new site only
when it is nearer than the row's nearest existing site without a limit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linprog

from planner._errors import InputError
from planner.optimize.constrained_median import ConstrainedPCenter, ConstrainedPMedian

PENALTY = 2_000.0


def _options(cost, i, sites, fixed, cap):
    """Where row i may go among the open sites."""
    free = [s for s in fixed if not np.isfinite(cap[s]) and np.isfinite(cost[i, s])]
    nearest = min((cost[i, s] for s in free), default=np.inf)
    first_free = [s for s in free if cost[i, s] == nearest][:1]
    return [*first_free, *(s for s in sites if s not in free and cost[i, s] < nearest)]


def _split(cost, w, loads, sites, chosen, fixed, cap, low, max_s=np.inf, serve_all=False):
    """The least total time splitting the rows among ``sites`` (entries within ``max_s``);
    None when infeasible. Variables: one share per (row, site) pair, one "left" per row."""
    n = len(w)
    reach = np.isfinite(cost).any(axis=1)
    pairs = [
        (i, s)
        for i in range(n)
        if reach[i]
        for s in _options(cost, i, sites, fixed, cap)
        if cost[i, s] <= max_s
    ]
    rows = [i for i in range(n) if reach[i]]
    k = len(pairs)
    c = np.r_[[w[i] * cost[i, s] for i, s in pairs], [w[i] * PENALTY for i in rows]]
    a_eq = np.zeros((len(rows), k + len(rows)))
    for e, (i, _) in enumerate(pairs):
        a_eq[rows.index(i), e] = 1
    a_eq[:, k:] = np.eye(len(rows))
    a_ub, b_ub = [], []
    for s in sites:
        taken = np.r_[[loads[i] if t == s else 0.0 for i, t in pairs], np.zeros(len(rows))]
        if np.isfinite(cap[s]):
            a_ub.append(taken)
            b_ub.append(cap[s])
        if s in chosen and low[s] > 0:
            a_ub.append(-taken)
            b_ub.append(-low[s])
    bounds = [(0, 1)] * k + [(0, 0 if serve_all else 1)] * len(rows)
    res = linprog(
        c,
        A_ub=np.array(a_ub) if a_ub else None,
        b_ub=b_ub or None,
        A_eq=a_eq if rows else None,
        b_eq=np.ones(len(rows)) if rows else None,
        bounds=bounds,
    )
    return res.fun if res.status == 0 else None


def _site_sets(m, p, fixed, conflicts):
    new = [j for j in range(m) if j not in fixed]
    bad = {frozenset(map(int, c)) for c in conflicts}
    for k in range(p + 1):
        for chosen in itertools.combinations(new, k):
            sites = list(fixed) + list(chosen)
            if not any(frozenset(pair) in bad for pair in itertools.combinations(sites, 2)):
                yield sites, chosen


def _brute(cost, w, p, fixed, cap, low, conflicts):
    """(least total, least worst, least total at the least worst) over every plan."""
    args = (cost, w, w)
    plans = list(_site_sets(cost.shape[1], p, fixed, conflicts))
    totals = [_split(*args, s, ch, fixed, cap, low) for s, ch in plans]
    total = min(t for t in totals if t is not None)
    times = np.unique(cost[np.isfinite(cost)])
    for t in times:
        at = [_split(*args, s, ch, fixed, cap, low, max_s=t, serve_all=True) for s, ch in plans]
        at = [a for a in at if a is not None]
        if at:
            return total, float(t), min(at)
    return total, PENALTY, total


def _instance(seed):
    rng = np.random.default_rng(seed)
    n, m = 5, 5
    cost = rng.uniform(0, 900, (n, m))
    cost[rng.random((n, m)) < 0.2] = np.inf
    w = rng.integers(1, 20, n).astype(float)
    fixed = [0] if seed % 3 == 0 else []
    cap = np.where(rng.random(m) < 0.5, rng.integers(10, 40, m), np.inf).astype(float)
    low = rng.integers(0, 25, m).astype(float)
    conflicts = np.array([c for c in itertools.combinations(range(m), 2) if rng.random() < 0.25]).reshape(
        -1, 2
    )
    p = int(rng.integers(1, 4))
    kw = {"p": p, "fixed": fixed, "loads": w, "capacities": cap, "min_load": low, "conflicts": conflicts}
    return cost, w, kw


def _check_answer(sol, w, kw):
    new = sol.new_sites
    assert len(new) <= kw["p"]
    for a, b in kw["conflicts"]:
        assert not (a in sol.sites and b in sol.sites)
    table = sol.table().set_index("site")
    for s in sol.sites:
        taken = table.loc[s, "load"]
        assert taken <= kw["capacities"][s] + 1e-6
        if s in new:
            assert taken >= kw["min_load"][s] - 1e-6
    assert table["load"].sum() <= w.sum() + 1e-6
    assert set(sol.assignment[sol.assignment >= 0]) <= set(sol.sites)


@pytest.mark.parametrize("seed", range(30))
def test_pmedian_with_spacing_catchment_capacity_equals_brute_force(seed):
    cost, w, kw = _instance(seed)
    sol = ConstrainedPMedian.from_cost_matrix(cost, w, penalty_s=PENALTY, **kw).solve()
    total, _, _ = _brute(cost, w, kw["p"], kw["fixed"], kw["capacities"], kw["min_load"], kw["conflicts"])
    assert sol.objective == pytest.approx(total)
    assert sol.status == "optimal" and sol.gap <= 1e-4
    _check_answer(sol, w, kw)


@pytest.mark.parametrize("seed", range(30))
def test_pcenter_with_spacing_catchment_capacity_equals_brute_force(seed):
    cost, w, kw = _instance(seed)
    sol = ConstrainedPCenter.from_cost_matrix(cost, w, penalty_s=PENALTY, **kw).solve()
    _, worst, at_worst = _brute(
        cost, w, kw["p"], kw["fixed"], kw["capacities"], kw["min_load"], kw["conflicts"]
    )
    assert sol.objective == pytest.approx(worst)
    _check_answer(sol, w, kw)
    # Among the answers at that worst time, the least total time.
    assert sol.info["total_weighted_s"] == pytest.approx(at_worst)


def test_hand_worked_pmedian_catchment_moves_the_site():
    # Rows 0-1 (10 each) at 100 s from site 0 and 300 s from site 1; row 2 (5) only site 1, 100 s.
    # p = 1: site 0 costs 2·10·100 + 5·1,000 (row 2 left, the penalty) = 7,000; site 1 costs
    # 2·10·300 + 5·100 = 6,500, so site 1.
    inf = np.inf
    cost = np.array([[100.0, 300.0], [100.0, 300.0], [inf, 100.0]])
    w = np.array([10.0, 10.0, 5.0])
    plain = ConstrainedPMedian.from_cost_matrix(cost, w, p=1, penalty_s=1_000).solve()
    assert list(plain.new_sites) == [1] and plain.objective == pytest.approx(6_500)
    capped = ConstrainedPMedian.from_cost_matrix(
        cost, w, p=1, penalty_s=1_000, capacities=[inf, 15.0]
    ).solve()
    # Site 1 takes row 2 and 10 residents of rows 0-1: 500 + 3,000 + 10,000 left = 13,500; site 0
    # takes rows 0-1: 2,000 + 5,000 = 7,000.
    assert list(capped.new_sites) == [0] and capped.objective == pytest.approx(7_000)
    both = ConstrainedPMedian.from_cost_matrix(cost, w, p=2, penalty_s=1_000, min_load=[0.0, 6.0]).solve()
    # Beside site 0, site 1 would take only row 2 (5 < 6): it takes one resident of row 0 too
    # (a tenth of it at 300 s), 0.9·10·100 + 0.1·10·300 + 10·100 + 5·100 = 2,700, better than
    # site 0 alone (7,000) or site 1 alone (6,500).
    assert both.objective == pytest.approx(2_700)
    assert both.table().set_index("site").loc[1, "load"] == pytest.approx(6.0)
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
    shut = ConstrainedPMedian.from_cost_matrix(
        cost, w, p=2, fixed=[0], conflicts=[[0, 2]], min_load=2.0
    ).solve()
    assert len(shut.new_sites) == 0 and shut.objective == pytest.approx(400.0)


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="penalty_s"):
        ConstrainedPMedian.from_cost_matrix(np.array([[500.0]]), p=1, penalty_s=10)
    with pytest.raises(InputError, match="p -1"):
        ConstrainedPCenter.from_cost_matrix(np.array([[5.0]]), p=-1)


def test_pcenter_under_a_time_limit_keeps_a_proven_bound():
    rng = np.random.default_rng(3)
    cost = rng.uniform(60, 900, (60, 12))
    w = rng.integers(1, 20, 60).astype(float)
    kw = {"p": 3, "capacities": np.full(12, w.sum() / 2.5), "min_load": w.sum() / 8}
    exact = ConstrainedPCenter.from_cost_matrix(cost, w, **kw).solve()
    assert exact.status == "optimal" and exact.bound == pytest.approx(exact.objective)
    quick = ConstrainedPCenter.from_cost_matrix(cost, w, **kw).solve(time_limit=0.2)
    assert quick.bound <= exact.objective + 1e-6 <= quick.objective + 1e-6
    assert quick.status == ("optimal" if quick.gap == 0 else "feasible")


def test_hand_worked_pcenter_opens_a_site_for_room_not_reach():
    # Site 0 reaches both rows (10 residents each) in 100 s but holds 10: the second row needs
    # site 1, 200 s from row 0 and 300 s from row 1, so row 0 goes there: worst 200 s.
    cost = np.array([[100.0, 200.0], [100.0, 300.0]])
    w = np.array([10.0, 10.0])
    sol = ConstrainedPCenter.from_cost_matrix(cost, w, p=2, capacities=[10.0, 10.0]).solve()
    assert sol.objective == pytest.approx(200.0) and sol.status == "optimal"
    assert list(sol.new_sites) == [0, 1] and list(sol.assignment) == [1, 0]
    # With one site only, one of the rows is left without a site: the penalty.
    one = ConstrainedPCenter.from_cost_matrix(cost, w, p=1, capacities=[10.0, 10.0], penalty_s=1_000).solve()
    assert one.objective == pytest.approx(1_000)


def _tight_instance(seed):
    """Capacities that rarely let the nearest cover serve: sites opened for room, not reach."""
    rng = np.random.default_rng(100 + seed)
    n, m = 8, 6
    cost = rng.uniform(0, 900, (n, m))
    cost[rng.random((n, m)) < 0.3] = np.inf
    w = rng.integers(1, 20, n).astype(float)
    p = int(rng.integers(2, 4))
    fixed = [0] if seed % 2 else []
    cap = rng.uniform(0.6, 1.2, m) * w.sum() / p
    low = np.where(rng.random(m) < 0.5, w.sum() / 10, 0.0)
    conflicts = np.array([c for c in itertools.combinations(range(m), 2) if rng.random() < 0.15]).reshape(
        -1, 2
    )
    kw = {"p": p, "fixed": fixed, "loads": w, "capacities": cap, "min_load": low, "conflicts": conflicts}
    return cost, w, kw


@pytest.mark.parametrize("seed", range(12))
def test_pcenter_with_tight_capacities_equals_brute_force(seed):
    cost, w, kw = _tight_instance(seed)
    sol = ConstrainedPCenter.from_cost_matrix(cost, w, penalty_s=PENALTY, **kw).solve()
    _, worst, at_worst = _brute(
        cost, w, kw["p"], kw["fixed"], kw["capacities"], kw["min_load"], kw["conflicts"]
    )
    assert sol.objective == pytest.approx(worst)
    _check_answer(sol, w, kw)
    assert sol.info["total_weighted_s"] == pytest.approx(at_worst)


def test_pcenter_with_no_new_candidate_left_keeps_the_existing_sites():
    # Candidate 1 needs 100 residents and only 2 live here: it is dropped, no new site is left,
    # and the existing site 0 serves both rows, the worst at 150 s.
    cost = np.array([[100.0, 200.0], [150.0, np.inf]])
    w = np.array([1.0, 1.0])
    sol = ConstrainedPCenter.from_cost_matrix(cost, w, p=1, fixed=[0], min_load=[0.0, 100.0]).solve()
    assert sol.objective == pytest.approx(150.0) and sol.status == "optimal"
    assert list(sol.new_sites) == [] and list(sol.assignment) == [0, 0]
