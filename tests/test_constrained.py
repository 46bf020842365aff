"""ConstrainedCoverage (spacing, minimum catchment, capacities) against brute force: every
site set (itertools) and every assignment of homes to its sites."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from planner._errors import InputError
from planner.optimize.constrained import ConstrainedCoverage, conflict_pairs

MIN = 5.0  # minutes: covered when cost ≤ 300 s


def _brute(cost, w, loads, p, fixed, cap, low, conflicts):
    """Best covered weight over site sets of ≤ p new sites and single-site assignments."""
    n, m = cost.shape
    new = [j for j in range(m) if j not in fixed]
    bad = {frozenset(map(int, c)) for c in conflicts}
    best = -1.0
    for k in range(p + 1):
        for chosen in itertools.combinations(new, k):
            sites = list(fixed) + list(chosen)
            if any(frozenset(pair) in bad for pair in itertools.combinations(sites, 2)):
                continue
            # Homes a fixed site without a limit reaches are its own: they count for no new site.
            free = [s for s in fixed if not np.isfinite(cap[s])]
            done = [any(cost[i, s] <= 60 * MIN for s in free) for i in range(n)]
            options = [
                [-1] if done[i] else [-1] + [s for s in sites if cost[i, s] <= 60 * MIN] for i in range(n)
            ]
            for assign in itertools.product(*options):
                a = np.array(assign)
                load = {s: loads[a == s].sum() for s in sites}
                if any(load[s] > cap[s] + 1e-9 for s in sites):
                    continue
                if any(load[s] < low[s] - 1e-9 for s in chosen):
                    continue
                covered = (a >= 0) | np.array(done)
                best = max(best, float(w[covered].sum()))
    return best


@pytest.mark.parametrize("seed", range(25))
def test_max_coverage_with_spacing_catchment_capacity_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, m = 6, 5
    cost = rng.uniform(0, 600, (n, m))  # about half the pairs within 300 s
    w = rng.integers(1, 20, n).astype(float)
    loads = w.copy()
    fixed = [0] if seed % 3 == 0 else []
    cap = np.where(rng.random(m) < 0.5, rng.integers(10, 40, m), np.inf).astype(float)
    low = rng.integers(0, 25, m).astype(float)
    conflicts = np.array([c for c in itertools.combinations(range(m), 2) if rng.random() < 0.25]).reshape(
        -1, 2
    )
    p = int(rng.integers(1, 4))
    sol = ConstrainedCoverage.from_cost_matrix(
        cost, w, p=p, minutes=MIN, fixed=fixed, loads=loads, capacities=cap, min_load=low, conflicts=conflicts
    ).solve()
    assert sol.objective == pytest.approx(_brute(cost, w, loads, p, fixed, cap, low, conflicts))
    new = sol.new_sites
    assert len(new) <= p
    # The answer itself keeps every constraint.
    for a, b in conflicts:
        assert not (a in sol.sites and b in sol.sites)
    for s in new:
        taken = loads[sol.assignment == s].sum()
        assert low[s] - 1e-9 <= taken <= cap[s] + 1e-9


def test_hand_worked_catchment_and_spacing():
    # Homes 0-2 (10 residents each) reach candidate 0 and 1; home 3 (4 residents) only candidate 2.
    inf = np.inf
    cost = np.array([[100, 120, inf], [100, 120, inf], [100, 120, inf], [inf, inf, 60]], float)
    w = np.array([10, 10, 10, 4], float)
    # Without limits: both clusters, 34 covered.
    plain = ConstrainedCoverage.from_cost_matrix(cost, w, p=2, minutes=MIN).solve()
    assert plain.objective == 34 and len(plain.new_sites) == 2 and 2 in plain.new_sites
    # Catchment 5: candidate 2 serves 4 residents, below it: only the cluster (30).
    one = ConstrainedCoverage.from_cost_matrix(cost, w, p=2, minutes=MIN, min_load=5).solve()
    assert one.objective == 30 and len(one.new_sites) == 1
    # At the catchment (4 ≥ 4) it opens again.
    at = ConstrainedCoverage.from_cost_matrix(cost, w, p=2, minutes=MIN, min_load=4).solve()
    assert at.objective == 34
    # Capacity 20 per site and 0-1 in conflict: one of the cluster's homes stays out.
    capped = ConstrainedCoverage.from_cost_matrix(
        cost, w, p=3, minutes=MIN, capacities=20, conflicts=[[0, 1]]
    ).solve()
    assert capped.objective == 24
    # Set covering (p=None): the fewest sites reaching the best coverage.
    cover = ConstrainedCoverage.from_cost_matrix(cost, w, p=None, minutes=MIN).solve()
    assert cover.objective == 34 and len(cover.new_sites) == 2


def test_fixed_site_blocks_its_neighbours_and_covers_its_homes():
    cost = np.array([[50, 60, 500], [400, 70, 80]], float)
    w = np.array([5.0, 7.0])
    sol = ConstrainedCoverage.from_cost_matrix(
        cost, w, p=1, minutes=MIN, fixed=[0], conflicts=[[0, 1]]
    ).solve()
    # Candidate 1 is too close to the existing site 0; candidate 2 takes home 1.
    assert list(sol.new_sites) == [2]
    assert sol.objective == 12
    assert list(sol.assignment) == [0, 2]


def test_no_home_in_reach_of_a_new_candidate_opens_nothing():
    # Home 0 is covered by the existing site 0; home 1 reaches no candidate within MIN.
    cost = np.array([[50, 900, 900], [900, 900, 900]], float)
    w = np.array([5.0, 7.0])
    for p in (1, None):
        sol = ConstrainedCoverage.from_cost_matrix(
            cost, w, p=p, minutes=MIN, fixed=[0], conflicts=[[1, 2]]
        ).solve()
        assert sol.objective == 5 and sol.status == "optimal"
        assert list(sol.assignment) == [0, -1]
        if p is None:  # the fewest sites covering as much: none
            assert list(sol.new_sites) == []


def test_conflict_pairs_by_distance():
    xy = np.array([[0, 0], [299, 0], [300, 0], [1000, 0]], float)
    pairs = {tuple(p) for p in conflict_pairs(xy, 300.0)}
    assert pairs == {(0, 1), (1, 2)}  # 300 m apart is allowed, 299 m is not
    # Two fixed sites are never a conflict (both open already).
    assert {tuple(p) for p in conflict_pairs(xy, 300.0, fixed=[0, 1])} == {(1, 2)}


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="minutes"):
        ConstrainedCoverage.from_cost_matrix(np.zeros((1, 1)), p=1, minutes=0)
    with pytest.raises(InputError, match="p -1"):
        ConstrainedCoverage.from_cost_matrix(np.zeros((1, 1)), p=-1, minutes=5)
    with pytest.raises(InputError, match="capacities"):
        ConstrainedCoverage.from_cost_matrix(np.zeros((1, 1)), p=1, minutes=5, capacities=-1)


@pytest.mark.parametrize("seed", range(15))
def test_spacing_only_equals_brute_force(seed):
    # No capacity or catchment: the plain max-coverage's sites when they keep the spacing,
    # else the classical covering programme with the conflicts.
    rng = np.random.default_rng(100 + seed)
    n, m = 7, 6
    cost = rng.uniform(0, 600, (n, m))
    w = rng.integers(1, 20, n).astype(float)
    conflicts = np.array([c for c in itertools.combinations(range(m), 2) if rng.random() < 0.4]).reshape(
        -1, 2
    )
    p = int(rng.integers(1, 4))
    inf_cap, zero = np.full(m, np.inf), np.zeros(m)
    sol = ConstrainedCoverage.from_cost_matrix(cost, w, p=p, minutes=MIN, conflicts=conflicts).solve()
    assert sol.objective == pytest.approx(_brute(cost, w, w, p, [], inf_cap, zero, conflicts))
    for a, b in conflicts:
        assert not (a in sol.sites and b in sol.sites)
    # Set covering: the most coverage any conflict-free set reaches, with the fewest sites.
    cover = ConstrainedCoverage.from_cost_matrix(cost, w, p=None, minutes=MIN, conflicts=conflicts).solve()
    best = _brute(cost, w, w, m, [], inf_cap, zero, conflicts)
    fewest = next(
        k for k in range(m + 1) if _brute(cost, w, w, k, [], inf_cap, zero, conflicts) >= best - 1e-9
    )
    assert cover.objective == pytest.approx(best) and len(cover.new_sites) == fewest
