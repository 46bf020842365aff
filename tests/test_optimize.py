"""Location models: brute force on tiny instances, bounds, and published optima."""

from __future__ import annotations

import itertools
import math
import pickle

import numpy as np
import pytest
from _bench_data import (
    BENCHMARKS,
    orlib_optima,
    read_orlib_pmed,
    read_sf,
    read_sjc_cpmp,
    read_sjc_mclp,
    sjc_distance,
)
from scipy import sparse

from planner._errors import InfeasibleError, InputError
from planner.optimize import (
    MaxCoverage,
    PCenter,
    PMedian,
    SetCover,
    _arrays,
    _parallel,
    _tuning,
    covering,
    demand_weights,
    dominance,
    interchange,
    lagrangian,
)

SEEDS = range(6)


def _needs_benchmarks():
    if not BENCHMARKS.is_dir():
        pytest.skip("needs ../shared/benchmarks (published instances); absent in this clone")


def _tiny(seed: int, n: int = 8, m: int = 6, sparse_share: float = 0.0):
    """Random demand × candidate travel times (s) and integer weights."""
    rng = np.random.default_rng(seed)
    cost = rng.integers(60, 1200, size=(n, m)).astype(float)
    if sparse_share:
        cost[rng.random((n, m)) < sparse_share] = np.inf
    weights = rng.integers(1, 20, size=n).astype(float)
    return cost, weights


def _open_sets(m: int, p: int, fixed=()):
    free = [j for j in range(m) if j not in set(fixed)]
    for new in itertools.combinations(free, p):
        yield list(fixed) + list(new)


def _brute_pmedian(cost, w, p, fixed=()):
    best = math.inf
    for s in _open_sets(cost.shape[1], p, fixed):
        nearest = cost[:, s].min(axis=1)
        reach = np.isfinite(cost).any(axis=1)
        if np.isinf(nearest[reach]).any():
            continue
        best = min(best, float((w[reach] * nearest[reach]).sum()))
    return best


def _brute_mclp(cost, w, p, limit_s, fixed=()):
    return max(
        float(w[(cost[:, s] <= limit_s).any(axis=1)].sum()) for s in _open_sets(cost.shape[1], p, fixed)
    )


def _brute_lscp(cost, limit_s, fixed=()):
    need = (cost <= limit_s).any(axis=1)
    for p in range(cost.shape[1] + 1):
        for s in _open_sets(cost.shape[1], p, fixed) if p <= cost.shape[1] - len(fixed) else []:
            if (cost[np.ix_(need, s)] <= limit_s).any(axis=1).all():
                return p
    raise AssertionError("no cover")


def _brute_pcenter(cost, p, fixed=()):
    reach = np.isfinite(cost).any(axis=1)
    return min(float(cost[np.ix_(reach, s)].min(axis=1).max()) for s in _open_sets(cost.shape[1], p, fixed))


def _assign_all(cost, loads, caps, s):
    """Best single-source assignment cost to open sites ``s`` by enumeration (tiny only)."""
    n = cost.shape[0]
    best = math.inf
    for choice in itertools.product(s, repeat=n):
        used = {}
        ok = True
        total = 0.0
        for i, j in enumerate(choice):
            if not np.isfinite(cost[i, j]):
                ok = False
                break
            used[j] = used.get(j, 0.0) + loads[i]
            total += cost[i, j]
        if ok and all(used[j] <= caps[j] + 1e-9 for j in used):
            best = min(best, total)
    return best


# ---------------------------------------------------------------------------------------------
# Tiny instances: exact equals brute force, heuristic bounds bracket the optimum
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fixed", [(), (3,)])
def test_pmedian_matches_brute_force(seed, fixed):
    cost, w = _tiny(seed)
    optimum = _brute_pmedian(cost, w, 2, fixed)
    model = PMedian.from_cost_matrix(cost, w, p=2, fixed=list(fixed))
    exact = model.solve(method="exact", gap=0)
    assert exact.objective == pytest.approx(optimum, rel=1e-9)
    assert exact.status == "optimal" and exact.gap == 0
    assert set(fixed) <= set(exact.sites) and len(exact.sites) == 2 + len(fixed)
    heur = model.solve(method="heuristic", gap=0)
    assert heur.lower_bound <= optimum + 1e-6 <= heur.objective + 2e-6
    # Every home is assigned to its nearest open site.
    np.testing.assert_allclose(cost[np.arange(8), exact.assignment], cost[:, exact.sites].min(axis=1))


@pytest.mark.parametrize("seed", SEEDS)
def test_pmedian_sparse_matches_brute_force(seed):
    cost, w = _tiny(seed, sparse_share=0.4)
    p = 3
    optimum = _brute_pmedian(cost, w, p)
    rows, cols = np.nonzero(np.isfinite(cost))
    matrix = sparse.coo_array((cost[rows, cols], (rows, cols)), shape=cost.shape)
    model = PMedian.from_cost_matrix(matrix, w, p=p)
    if not math.isfinite(optimum):
        with pytest.raises(InfeasibleError, match=r"p=3 is below"):
            model.solve(method="exact")
        return
    exact = model.solve(method="exact", gap=0)
    assert exact.objective == pytest.approx(optimum, rel=1e-9)
    heur = model.solve(method="heuristic", gap=0)
    assert heur.lower_bound <= optimum + 1e-6 <= heur.objective + 2e-6
    np.testing.assert_array_equal(model.unreachable, np.flatnonzero(~np.isfinite(cost).any(axis=1)))


def test_sparse_explicit_zero_is_a_real_cost():
    rows, cols = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    cost = sparse.coo_array((np.array([0.0, 50.0, 80.0, 70.0]), (rows, cols)), shape=(2, 2))
    sol = PMedian.from_cost_matrix(cost, p=1).solve(method="exact", gap=0)
    assert sol.objective == 80.0 and list(sol.sites) == [0]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fixed", [(), (1,)])
@pytest.mark.parametrize("dense_flops", [_tuning.DENSE_COVER_SWAP_MAX_FLOPS, 0])
def test_max_coverage_matches_brute_force(seed, fixed, dense_flops, monkeypatch):
    monkeypatch.setattr(_tuning, "DENSE_COVER_SWAP_MAX_FLOPS", dense_flops)  # 0: the sparse engine
    cost, w = _tiny(seed)
    limit_s = 420.0
    optimum = _brute_mclp(cost, w, 2, limit_s, fixed)
    model = MaxCoverage.from_cost_matrix(cost, w, p=2, minutes=limit_s / 60, fixed=list(fixed))
    exact = model.solve(method="exact", gap=0)
    assert exact.objective == pytest.approx(optimum)
    heur = model.solve(method="heuristic", gap=0)
    # Mirrored for maximisation: heuristic <= optimum <= its upper bound.
    assert heur.objective <= optimum + 1e-9 <= heur.upper_bound + 1e-9
    assert set(fixed) <= set(exact.sites)
    covered = (cost[:, exact.sites] <= limit_s).any(axis=1)
    np.testing.assert_array_equal(exact.covered, covered)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fixed", [(), (0,)])
def test_set_cover_matches_brute_force(seed, fixed):
    cost, w = _tiny(seed, n=10)
    limit_s = 400.0
    optimum = _brute_lscp(cost, limit_s, fixed)
    model = SetCover.from_cost_matrix(cost, w, minutes=limit_s / 60, fixed=list(fixed))
    for method in ("exact", "heuristic", "auto"):
        sol = model.solve(method=method, gap=0)
        assert sol.lower_bound <= optimum <= sol.objective
        if method != "heuristic":
            assert sol.objective == optimum
        reach = (cost <= limit_s).any(axis=1)
        assert (cost[np.ix_(reach, sol.sites)] <= limit_s).any(axis=1).all()
    np.testing.assert_array_equal(model.unreachable, np.flatnonzero(~(cost <= limit_s).any(axis=1)))


def test_cover_core_hand_worked():
    """Dominance by hand. Candidates cover homes: c0 {0,1}, c1 {1}, c2 {2,3}, c3 {2,3,4}.

    c1 ⊂ c0 and c2 ⊂ c3 are never needed; for set covering, home 0 (c0) implies home 1
    (c0, c1 → c0 after c1 goes), and homes 2, 3, 4 all become {c3}: one stays. For
    max-coverage the equal homes merge with their weights summed.
    """
    inf = np.inf
    cost = np.array(
        [
            [60, inf, inf, inf],
            [60, 60, inf, inf],
            [inf, inf, 60, 60],
            [inf, inf, 60, 60],
            [inf, inf, inf, 60],
        ]
    )
    w = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    core = dominance._cover_core(
        SetCover.from_cost_matrix(cost, w, minutes=5)._inst, rows_are_constraints=True
    )
    assert list(core.cols) == [0, 3]
    assert core.inst.n == 2 and core.inst.nnz == 2
    core = dominance._cover_core(
        MaxCoverage.from_cost_matrix(cost, w, p=1, minutes=5)._inst, rows_are_constraints=False
    )
    assert list(core.cols) == [0, 3]
    np.testing.assert_allclose(np.sort(core.inst.weights), [3.0, 12.0])
    # With c3 fixed open, homes 2-4 are covered whatever is chosen: they leave the core.
    core = dominance._cover_core(
        MaxCoverage.from_cost_matrix(cost, w, p=1, minutes=5, fixed=[3])._inst, rows_are_constraints=False
    )
    assert list(core.cols) == [0] and core.outside_weight == 12.0
    sol = MaxCoverage.from_cost_matrix(cost, w, p=2, minutes=5).solve()
    assert sol.objective == 15.0 and len(sol.new_sites) == 2  # c0, c3, and nothing else adds


@pytest.mark.parametrize("rows_are_constraints", [True, False])
def test_cover_core_dense_and_sparse_products_agree(monkeypatch, rows_are_constraints):
    """The dominance steps give the same core whether the pairwise product is dense or
    sparse (random sets with many equal and nested ones)."""
    rng = np.random.default_rng(3)
    homes, sites = rng.integers(0, 12, (400, 2)) * 100.0, rng.integers(0, 12, (80, 2)) * 100.0
    cost = np.linalg.norm(homes[:, None] - sites[None], axis=2)
    w = rng.integers(1, 9, 400).astype(float)
    inst = MaxCoverage.from_cost_matrix(cost, w, p=5, minutes=5, fixed=[7])._inst
    cores = []
    for flops in (0, 10**9):  # never dense, always dense
        monkeypatch.setattr(_tuning, "CORE_DENSE_FLOPS_PER_PRODUCT", flops)
        cores.append(dominance._cover_core(inst, rows_are_constraints=rows_are_constraints))
    sparse_core, dense_core = cores
    np.testing.assert_array_equal(sparse_core.cols, dense_core.cols)
    np.testing.assert_array_equal(sparse_core.rows, dense_core.rows)
    np.testing.assert_array_equal(sparse_core.inst.weights, dense_core.inst.weights)
    np.testing.assert_array_equal(sparse_core.inst.col, dense_core.inst.col)
    assert sparse_core.inst.m < inst.m - 1 and sparse_core.inst.n < inst.n  # it did reduce
    if not rows_are_constraints:  # merged homes keep the total weight outside fixed coverage
        assert sparse_core.inst.weights.sum() + sparse_core.outside_weight == pytest.approx(w.sum())


@pytest.mark.parametrize("lookup", ["table", "bits", "search"])
@pytest.mark.parametrize("whole_after", [_tuning.SUBSET_WHOLE_CHECK_PAIRS, 0])
@pytest.mark.parametrize("mode", ["subset", "superset", "same"])
def test_dominance_steps_match_their_definition(mode, whole_after, lookup, monkeypatch):
    """Every drop (or representative) of the dense ordered one-argmax dominance step and of
    the sparse rarest-element one, against the pairwise definition on small random 0/1
    matrices (many equal, nested and empty sets), the pairs in shuffled order too, with
    membership looked up in a dense table, a bit table or by binary search, and the pairs
    checked whole at once or one element at a time first."""
    if lookup != "table":
        monkeypatch.setattr(_tuning, "CORE_DENSE_MAX_CELLS", 0)
    if lookup == "search":
        monkeypatch.setattr(_tuning, "SUBSET_BITS_MAX_CELLS", 0)
    monkeypatch.setattr(_tuning, "SUBSET_WHOLE_CHECK_PAIRS", whole_after)
    rng = np.random.default_rng(11)
    for _ in range(400):
        n, k = int(rng.integers(1, 12)), int(rng.integers(1, 6))
        mat = (rng.random((n, k)) < rng.random()).astype(np.float32)
        sets = [set(np.flatnonzero(r)) for r in mat]
        if mode == "same":
            expected = np.array([min(a for a in range(n) if sets[a] == sets[b]) for b in range(n)])
        else:
            expected = np.zeros(n, dtype=bool)
            for b, a in itertools.permutations(range(n), 2):
                if mode == "superset":  # b contains a (a smaller, or equal with a lower index)
                    expected[b] |= sets[a] <= sets[b] and (len(sets[a]) < len(sets[b]) or a < b)
                else:  # b inside a (a larger, or equal with a lower index)
                    expected[b] |= sets[b] <= sets[a] and (len(sets[a]) > len(sets[b]) or a < b)
        np.testing.assert_array_equal(dominance._dominance_dense(mat, mode), expected)
        s, e = np.nonzero(mat)
        np.testing.assert_array_equal(dominance._dominance_sparse(s, e, n, k, mode), expected)
        by_elem = np.argsort(e, kind="stable")
        np.testing.assert_array_equal(
            dominance._dominance_sparse(s[by_elem], e[by_elem], n, k, mode), expected
        )
        shuffled = rng.permutation(len(s))
        np.testing.assert_array_equal(
            dominance._dominance_sparse(s[shuffled], e[shuffled], n, k, mode), expected
        )


@pytest.mark.parametrize("lookup", ["table", "bits", "search"])
def test_same_sets_match_their_definition(lookup, monkeypatch):
    """The hashed merge of equal sets: each set's representative is the lowest index of an
    equal set, pairs in any order; sets whose hashes collide stay apart; below
    ``min_share`` nothing is merged (None)."""
    if lookup != "table":
        monkeypatch.setattr(_tuning, "CORE_DENSE_MAX_CELLS", 0)
    if lookup == "search":
        monkeypatch.setattr(_tuning, "SUBSET_BITS_MAX_CELLS", 0)
    rng = np.random.default_rng(5)
    for _ in range(300):
        n, k = int(rng.integers(1, 14)), int(rng.integers(1, 5))
        mat = rng.random((n, k)) < rng.random()
        sets = [frozenset(np.flatnonzero(r)) for r in mat]
        expected = np.array([min(a for a in range(n) if sets[a] == sets[b]) for b in range(n)])
        s, e = np.nonzero(mat)
        shuffled = rng.permutation(len(s))
        for order in (np.arange(len(s)), shuffled):
            np.testing.assert_array_equal(dominance._same_sets(s[order], e[order], n, k), expected)
        share = float(np.mean(expected != np.arange(n)))
        assert dominance._same_sets(s, e, n, k, min_share=share + 1e-9) is None
    # Two different pairs of elements with equal hashes (birthday search over the keys).
    key = dominance._element_keys(3000).astype(np.int64)
    assert len(np.unique(key)) == 3000 and key.min() >= 1 and key.max() < 2**31
    seen = {}
    for a, b in itertools.combinations(range(3000), 2):
        pair = seen.setdefault(int(key[a] + key[b]), (a, b))
        if pair != (a, b):
            break
    else:
        pytest.fail("no colliding pair found")
    sets_, elems = np.array([0, 0, 1, 1, 2, 2]), np.array([*pair, a, b, *pair])
    np.testing.assert_array_equal(dominance._same_sets(sets_, elems, 3, 3000), [0, 1, 0])


def test_csc_order_radix_and_scipy_agree(monkeypatch):
    """Entries grouped by candidate, rows ascending within each: the radix sort of small
    instances and scipy's CSR → CSC conversion give the same order and pointers."""
    rng = np.random.default_rng(2)
    cost = np.where(rng.random((300, 70)) < 0.2, rng.uniform(0, 900, (300, 70)), np.inf)
    inst = MaxCoverage.from_cost_matrix(cost, p=2, minutes=15)._inst
    order, ptr = _arrays._csc_order(inst)
    monkeypatch.setattr(_tuning, "CSC_RADIX_MAX_ENTRIES", 0)
    scipy_order, scipy_ptr = _arrays._csc_order(inst)
    np.testing.assert_array_equal(order, scipy_order)
    np.testing.assert_array_equal(ptr, scipy_ptr)
    assert np.all(np.diff(inst.col[order]) >= 0)


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
        inst = MaxCoverage.from_cost_matrix(cost, w, p=4, minutes=5, fixed=fixed)._inst
        values, columns = [], []
        for share in (0.0, 2.0):  # always merge, never
            monkeypatch.setattr(_tuning, "SAME_HOMES_MIN_SHARE", share)
            lp = lagrangian._CoverageDualLp(inst, inst.weights, 4, integral=False, deadline=None)
            lp.run()
            values.append(lp.result()[2])
            columns.append(len(lp.w))
        assert values[0] == pytest.approx(values[1], rel=1e-9)
        assert columns[1] == int((inst.coverable & ~_arrays._rows_by_fixed(inst)).sum()) > 2 * columns[0]


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
        inst = model._inst
        W, P = model._entry_costs()
        engine = interchange._SwapEngine(inst, W, P, k)
        engine.greedy()
        engine.local_search(None)
        dense = interchange._DenseCoverSwap(inst, k)
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


def test_max_coverage_leaves_blas_threads_as_found():
    """The heuristic's one-BLAS-thread limit is undone after the solve, also when solves run
    in several threads at once (only the main thread sets it)."""
    import concurrent.futures

    def threads():
        return [lib["num_threads"] for lib in _parallel._blas_threads().info()]

    before = threads()
    cost, w = _tiny(3)
    model = MaxCoverage.from_cost_matrix(cost, w, p=2, minutes=7)
    model.solve(method="heuristic")
    assert threads() == before
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: model.solve(method="heuristic").objective, range(8)))
    assert threads() == before and len(set(results)) == 1


def test_coverage_bound_lp_without_dominated_candidates(monkeypatch):
    """Leaving dominated candidates out of max-coverage's bound LP changes neither the bound
    nor σ of the candidates kept, and σ of those left out is still evaluated (fixing uses it)."""
    rng = np.random.default_rng(5)
    homes, sites = rng.integers(0, 10, (300, 2)) * 100.0, rng.integers(0, 10, (60, 2)) * 100.0
    cost = np.linalg.norm(homes[:, None] - sites[None], axis=2) + rng.uniform(0, 30, (300, 60))
    w = rng.integers(1, 50, 300).astype(float)
    inst = MaxCoverage.from_cost_matrix(cost, w, p=4, minutes=5, fixed=[3])._inst
    results = []
    for flops in (0, 10**12):
        monkeypatch.setattr(_tuning, "COVERAGE_LP_DOMINANCE_MAX_FLOPS", flops)
        lp = lagrangian._CoverageDualLp(inst, inst.weights, 4, integral=True, deadline=None)
        lp.run()
        results.append((lp, lp.result()))
    (full, (bound_full, _, value_full, _)), (reduced, (bound, _, value, sigma)) = results
    assert len(reduced.cols_u) < len(full.cols_u)  # some candidates were dominated
    assert bound == bound_full and value == pytest.approx(value_full, rel=1e-9)
    assert (sigma[~inst.is_fixed] > 0).sum() > len(reduced.cols_u)


def test_greedy_cover_recount_and_update_agree(monkeypatch):
    """The greedy cover is the same whether scores are recounted or updated after each pick."""
    rng = np.random.default_rng(4)
    homes, sites = rng.uniform(0, 3000, (300, 2)), rng.uniform(0, 3000, (60, 2))
    cost = np.linalg.norm(homes[:, None] - sites[None], axis=2) / 1.1
    inst = SetCover.from_cost_matrix(cost, minutes=6, fixed=[0])._inst
    covers = []
    for limit in (0, 10**9):
        monkeypatch.setattr(_tuning, "GREEDY_RECOUNT_MAX_ENTRIES", limit)
        covers.append(covering._greedy_cover(inst))
    np.testing.assert_array_equal(covers[0], covers[1])
    reach = (cost <= 360).any(axis=1)
    assert (cost[np.ix_(reach, np.append(covers[0], 0))] <= 360).any(axis=1).all()


@pytest.mark.parametrize("method", ["auto", "exact", "heuristic"])
def test_coverage_edge_cases(method):
    """Nothing left to choose: every home covered by fixed sites, no home coverable, p equal
    to the candidates, p = 0."""
    inf = np.inf
    cost = np.array([[60, 900, inf], [60, 60, inf], [inf, 900, 60.0]])
    w = [1.0, 2.0, 3.0]
    sol = MaxCoverage.from_cost_matrix(cost, w, p=1, minutes=5, fixed=[0, 2]).solve(method)
    assert sol.objective == 6.0 and sol.gap == 0 and len(sol.new_sites) == 1
    sol = SetCover.from_cost_matrix(cost, minutes=5, fixed=[0, 2]).solve(method)
    assert sol.objective == 0 and list(sol.sites) == [0, 2]
    nothing = np.full((3, 3), inf)
    sol = MaxCoverage.from_cost_matrix(nothing, w, p=2, minutes=5).solve(method)
    assert sol.objective == 0 and len(sol.new_sites) == 2
    sol = SetCover.from_cost_matrix(nothing, w, minutes=5).solve(method)
    assert sol.objective == 0 and list(sol.unreachable) == [0, 1, 2]
    assert MaxCoverage.from_cost_matrix(cost, w, p=3, minutes=5).solve(method, gap=0).objective == 6.0
    sol = MaxCoverage.from_cost_matrix(cost, w, p=0, minutes=5, fixed=[1]).solve(method, gap=0)
    assert sol.objective == 2.0 and list(sol.sites) == [1]


def test_pcenter_heuristic_closes_the_gap_on_the_benchmark_instance():
    """The covering tests on the dominance core (LP bound, Lagrangian, local search) decide
    every radius of a 500 × 100 instance like the bench's: the heuristic's answer is the
    proven optimum (before the core it ended 3 % above its bound there)."""
    rng = np.random.default_rng(1)
    homes, sites = rng.uniform(0, 3000, (500, 2)), rng.uniform(0, 3000, (100, 2))
    cost = np.linalg.norm(homes[:, None] - sites[None], axis=2) * 1.25 / 1.1
    w = rng.integers(1, 200, 500).astype(float)
    exact = PCenter.from_cost_matrix(cost, w, p=10).solve(method="exact")
    heur = PCenter.from_cost_matrix(cost, w, p=10).solve(method="heuristic")
    assert exact.objective == exact.bound
    assert heur.objective == exact.objective and heur.bound == exact.bound


def _unreduced(model):
    """The same model solved without dominance reductions (HiGHS on the full formulation)."""
    model._is_core = True
    return model


@pytest.mark.parametrize("seed", range(4))
def test_coverage_models_equal_the_unreduced_mip(seed):
    """Mid-size random instances: the core, the dual LP bound and Lagrangian fixing give the
    optimum of HiGHS on the whole model, integer and fractional weights, with fixed sites."""
    rng = np.random.default_rng(seed)
    n, m = 300, 60
    homes, sites = rng.uniform(0, 3000, (n, 2)), rng.uniform(0, 3000, (m, 2))
    cost = np.linalg.norm(homes[:, None] - sites[None], axis=2) / 1.1
    w = rng.integers(1, 200, n).astype(float) if seed % 2 else rng.uniform(0.5, 100.0, n)
    fixed = [0, 1] if seed >= 2 else None
    ref = _unreduced(MaxCoverage.from_cost_matrix(cost, w, p=8, minutes=8, fixed=fixed)).solve("exact", gap=0)
    for method in ("auto", "exact", "heuristic"):
        sol = MaxCoverage.from_cost_matrix(cost, w, p=8, minutes=8, fixed=fixed).solve(method, gap=0)
        assert sol.upper_bound >= ref.objective - 1e-6
        assert len(sol.new_sites) == 8
        if method != "heuristic":
            assert sol.objective == pytest.approx(ref.objective, rel=1e-9)
    ref = _unreduced(SetCover.from_cost_matrix(cost, w, minutes=8, fixed=fixed)).solve("exact", gap=0)
    for method in ("auto", "exact", "heuristic"):
        sol = SetCover.from_cost_matrix(cost, w, minutes=8, fixed=fixed).solve(method, gap=0)
        assert sol.lower_bound <= ref.objective <= sol.objective
        assert sol.covered[(cost <= 480).any(axis=1)].all()
        if method != "heuristic":
            assert sol.objective == ref.objective


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
    inst = PMedian.from_cost_matrix(cost, w, p=p, fixed=fixed)._inst
    W = inst.weights[inst.row] * inst.cost_s
    reach = np.isfinite(cost).any(axis=1)
    best = math.inf
    for sites in _open_sets(m, p, fixed):
        if closed[sites].any():
            continue
        nearest = cost[:, sites].min(axis=1)
        if np.isfinite(nearest[reach]).all():
            best = min(best, float((w * np.where(reach, nearest, 0)).sum()))
    starts = {"zero": np.zeros(n), "nearest": np.bincount(inst.row, weights=W, minlength=n) * 0}
    starts["nearest"][inst.coverable] = W[inst.indptr[:-1][inst.coverable]]
    for lam in starts.values():
        if not math.isfinite(best):
            finished, found, _, _ = lagrangian._pmedian_branch_and_bound(
                inst, W, p, lam, closed, 1e12, 0.0, integral=True, deadline=None, max_nodes=10_000
            )
            assert finished and found is None
            continue
        finished, found, proven, _ = lagrangian._pmedian_branch_and_bound(
            inst, W, p, lam, closed, best * 1.3 + 1, 0.0, integral=True, deadline=None, max_nodes=10_000
        )
        assert finished and found is not None
        assert set(fixed) <= set(found) and len(found) == p + len(fixed) and not closed[found].any()
        is_open = np.zeros(m, dtype=bool)
        is_open[found] = True
        assert lagrangian._open_cost(inst, W, is_open) == best
        assert proven == pytest.approx(best, rel=1e-9)
        finished, found, proven, _ = lagrangian._pmedian_branch_and_bound(
            inst, W, p, lam, closed, best, 0.0, integral=True, deadline=None, max_nodes=10_000
        )
        assert finished and found is None and proven == pytest.approx(best, rel=1e-9)


def test_pmedian_auto_proves_the_optimum_by_branching(monkeypatch):
    """A 200 × 50 instance the heuristic leaves 0.2 % from its bound: auto closes it by
    branch and bound to HiGHS's optimum (gap 0); capped at one node, HiGHS finishes it."""
    rng = np.random.default_rng(3)
    homes, sites = rng.uniform(0, 3000, (200, 2)), rng.uniform(0, 3000, (50, 2))
    cost = np.linalg.norm(homes[:, None] - sites[None], axis=2) * 1.25 / 1.1
    w = rng.integers(1, 200, 200).astype(float)
    ref = PMedian.from_cost_matrix(cost, w, p=5).solve("exact", gap=0)
    heur = PMedian.from_cost_matrix(cost, w, p=5).solve("heuristic", gap=0)
    assert heur.gap > 1e-3
    auto = PMedian.from_cost_matrix(cost, w, p=5).solve("auto", gap=0)
    assert auto.solver == "heuristic+lagrangian+branching"
    assert auto.objective == pytest.approx(ref.objective, rel=1e-12) and auto.gap < 2e-9  # float tolerance
    assert auto.lower_bound <= ref.objective
    monkeypatch.setattr(_tuning, "BRANCH_MAX_NODES", 1)
    capped = PMedian.from_cost_matrix(cost, w, p=5).solve("auto", gap=0)
    assert capped.solver.endswith("highs") and capped.objective == pytest.approx(ref.objective, rel=1e-12)


def test_cover_start_is_completed_greedily():
    """A start that lost sites to the core keeps its own and adds the largest uncovered
    weight first, up to exactly k distinct sites."""
    # Homes 0-4 (weights 1, 2, 4, 8, 16); candidate j covers the homes marked in row j.
    covers = np.array([[1, 1, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0]])
    cost = np.where(covers.T == 1, 60.0, 900.0)
    inst = MaxCoverage.from_cost_matrix(cost, [1, 2, 4, 8, 16], p=3, minutes=5)._inst
    assert list(covering._complete_cover_start(inst, np.array([2]), 3)) == [2, 3, 0]
    assert list(covering._complete_cover_start(inst, np.array([3, 1]), 2)) == [3, 1]


def test_set_cover_local_search_improves_the_greedy():
    """1,500 homes × 200 candidates: the greedy needs 50 sites, the optimum (HiGHS) 45; the
    local search returns a valid cover between the two."""
    rng = np.random.default_rng(3)
    homes, sites = rng.uniform(0, 5000, (1500, 2)), rng.uniform(0, 5000, (200, 2))
    cost = np.linalg.norm(homes[:, None] - sites[None], axis=2) / 1.1
    inst = SetCover.from_cost_matrix(cost, minutes=8)._inst
    greedy = covering._greedy_cover(inst)
    better = covering._cover_local_search(inst, greedy, None, deadline=None, stall_rounds=5 * len(greedy))
    optimum = _unreduced(SetCover.from_cost_matrix(cost, minutes=8)).solve("exact", gap=0).objective
    assert (cost[:, better] <= 480).any(axis=1)[(cost <= 480).any(axis=1)].all()
    assert optimum <= len(better) < len(greedy)


def test_max_coverage_fixing_closes_the_gap():
    """An instance whose LP bound is above the heuristic's answer: auto proves the optimum
    through Lagrangian fixing + HiGHS on what is left, and it is the full MIP's optimum."""
    rng = np.random.default_rng(2)
    homes, sites = rng.uniform(0, 6000, (2000, 2)), rng.uniform(0, 6000, (300, 2))
    cost = np.linalg.norm(homes[:, None] - sites[None], axis=2) * 1.25 / 1.1
    w = rng.integers(1, 200, 2000).astype(float)
    heur = MaxCoverage.from_cost_matrix(cost, w, p=20, minutes=10).solve("heuristic")
    assert heur.gap > 1e-4  # the LP alone does not prove it
    auto = MaxCoverage.from_cost_matrix(cost, w, p=20, minutes=10).solve("auto")
    assert "fixing" in auto.solver and auto.gap <= 1e-4
    ref = _unreduced(MaxCoverage.from_cost_matrix(cost, w, p=20, minutes=10)).solve("exact", gap=0)
    assert auto.objective == ref.objective
    assert heur.upper_bound >= ref.objective


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fixed", [(), (5,)])
def test_pcenter_matches_brute_force(seed, fixed):
    cost, w = _tiny(seed)
    optimum = _brute_pcenter(cost, 2, fixed)
    model = PCenter.from_cost_matrix(cost, w, p=2, fixed=list(fixed))
    exact = model.solve(method="exact")
    assert exact.objective == optimum and exact.bound == optimum
    heur = model.solve(method="heuristic")
    assert heur.lower_bound <= optimum <= heur.objective


@pytest.mark.parametrize("seed", range(6))
def test_capacitated_pcenter_matches_brute_force(seed):
    """With capacities the worst time is that of the capacitated assignment, not of each
    home's nearest open site (which was reported before: below the true optimum)."""
    rng = np.random.default_rng(200 + seed)
    n, m, p = 6, 5, 2
    cost = rng.integers(1, 20, size=(n, m)).astype(float) * 60
    loads = rng.integers(1, 4, size=n).astype(float)
    caps = rng.integers(3, 8, size=m).astype(float)
    optimum = math.inf
    for s in itertools.combinations(range(m), p):
        for choice in itertools.product(s, repeat=n):
            if np.all(np.bincount(choice, weights=loads, minlength=m) <= caps):
                optimum = min(optimum, max(cost[i, j] for i, j in enumerate(choice)))
    model = PCenter.from_cost_matrix(cost, loads, p=p, capacities=caps, loads=loads)
    if not np.isfinite(optimum):
        with pytest.raises(InfeasibleError):
            model.solve()
        return
    sol = model.solve()
    assert sol.objective == optimum and sol.bound == optimum
    served = sol.assignment
    assert (served >= 0).all() and np.all(np.bincount(served, weights=loads, minlength=m) <= caps)
    assert cost[np.arange(n), served].max() == optimum


def test_capacitated_pcenter_loose_capacities_return_the_uncapacitated_optimum():
    """Loose capacities: the uncapacitated optimum fits them and is returned at once, proven."""
    rng = np.random.default_rng(5)
    homes, sites = rng.uniform(0, 3000, (150, 2)), rng.uniform(0, 3000, (40, 2))
    cost = np.linalg.norm(homes[:, None] - sites[None], axis=2) * 1.25 / 1.1
    loads = rng.integers(1, 50, 150).astype(float)
    free = PCenter.from_cost_matrix(cost, loads, p=4).solve(method="exact")
    loose = PCenter.from_cost_matrix(
        cost, loads, p=4, capacities=np.full(40, loads.sum()), loads=loads
    ).solve()
    assert loose.objective == free.objective and loose.status == "optimal"


def test_capacitated_pcenter_tight_capacities_proven_by_an_independent_mip():
    """Tight capacities (18 % of the demand per site, p = 6): the start (the uncapacitated
    optimum's sites, reassigned) is 1,226 s; the split-relaxation search proves and reaches
    the optimum. Checked independently: at the next smaller travel time the single-source
    covering MIP (HiGHS, no relaxation) needs more than 6 sites."""
    rng = np.random.default_rng(6)
    homes, sites = rng.uniform(0, 3000, (150, 2)), rng.uniform(0, 3000, (40, 2))
    cost = np.linalg.norm(homes[:, None] - sites[None], axis=2) * 1.25 / 1.1
    loads = rng.integers(1, 50, 150).astype(float)
    caps = np.full(40, 0.18 * loads.sum())
    model = PCenter.from_cost_matrix(cost, loads, p=6, capacities=caps, loads=loads)
    sol = model.solve(method="exact")
    assert sol.status == "optimal" and sol.bound == sol.objective
    assert sol.info["start_upper_s"] > 1.2 * sol.objective and sol.info["split_tests"] > 0
    served = sol.assignment
    assert (served >= 0).all() and np.all(np.bincount(served, weights=loads, minlength=40) <= caps + 1e-9)
    assert set(np.unique(served)) <= set(sol.sites) and len(sol.sites) == 6
    assert sol.objective == pytest.approx(cost[np.arange(150), served].max())
    inst = model._inst
    values = np.unique(inst.cost_s)
    below = values[np.searchsorted(values, sol.objective) - 1]
    res = covering._cover_milp(inst.subset(inst.cost_s <= below), time_limit=None, gap=0.0)
    assert res.status == "optimal" and res.objective > 6.5


@pytest.mark.parametrize("seed", range(8))
def test_capacitated_pcenter_brute_force_with_fixed_and_unreachable(seed):
    """Fractional loads, pairs out of reach (sparse input), sometimes a fixed site: exact and
    auto equal enumeration of every site set and single-source assignment."""
    rng = np.random.default_rng(300 + seed)
    n, m = int(rng.integers(4, 8)), int(rng.integers(3, 6))
    p = int(rng.integers(1, min(3, m - 1) + 1))
    cost = rng.integers(1, 20, (n, m)).astype(float) * 60
    cost[rng.random((n, m)) < 0.25] = 0.0  # absent from the sparse matrix: out of reach
    loads = rng.integers(1, 5, n) * (1 + 0.1 * rng.random(n))
    caps = rng.integers(3, 10, m).astype(float)
    fixed = [int(rng.integers(m))] if seed % 2 else []
    reach = cost > 0
    rows = np.flatnonzero(reach.any(axis=1))
    optimum = math.inf
    for new in itertools.combinations([j for j in range(m) if j not in fixed], p):
        open_sites = list(new) + fixed
        options = [[j for j in open_sites if reach[i, j]] for i in rows]
        for choice in itertools.product(*options):
            if np.all(np.bincount(choice, weights=loads[rows], minlength=m) <= caps):
                optimum = min(optimum, max(cost[i, j] for i, j in zip(rows, choice, strict=False)))
    model = PCenter.from_cost_matrix(
        sparse.csr_array(cost), loads, p=p, capacities=caps, loads=loads, fixed=fixed
    )
    _assert_capacitated_optimum(model, optimum if np.isfinite(optimum) else None, rows, loads, caps, cost)


def _assert_capacitated_optimum(model, optimum, rows, loads, caps, cost, limit_s=math.inf):
    """exact and auto reach ``optimum`` (None: infeasible) with a proof; every row in
    ``rows`` served by one site it reaches (within ``limit_s``), loads within the capacities."""
    for method in ("exact", "auto"):
        if optimum is None:
            with pytest.raises(InfeasibleError):
                model.solve(method=method)
            continue
        sol = model.solve(method=method)
        assert sol.objective == optimum and sol.bound == optimum
        served = sol.assignment[rows]
        assert np.all(cost[rows, served] > 0) and np.all(cost[rows, served] <= limit_s)
        assert np.all(np.bincount(served, weights=loads[rows], minlength=len(caps)) <= caps + 1e-9)


def test_flow_shortfall_finds_the_violated_cut():
    """Homes A, B (load 3 each) reach site X only; C (load 1) reaches X and Y. With X's room
    4 the demand (7) fits the total room (4 + 5) but not A and B: the cut is {A, B}."""
    cost = np.array([[60.0, 0.0], [60.0, 0.0], [60.0, 90.0]])
    loads = np.array([3.0, 3.0, 1.0])
    inst = PCenter.from_cost_matrix(
        sparse.csr_array(cost), loads, p=2, capacities=[4.0, 5.0], loads=loads
    )._inst
    full, members = covering._flow_shortfall(inst, loads, np.array([4.0, 5.0]))
    assert not full and members.tolist() == [True, True, False]
    assert covering._flow_shortfall(inst, loads, np.array([6.0, 1.0])) == (True, None)
    # Fractional room (an LP's y): X half open gives 3 < 6.
    full, members = covering._flow_shortfall(inst, loads, np.array([6.0, 5.0]) * [0.5, 1.0])
    assert not full and members.tolist() == [True, True, False]


@pytest.mark.parametrize("seed", SEEDS)
def test_capacitated_pmedian_matches_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    n, m, p = 6, 4, 2
    cost = rng.integers(60, 900, size=(n, m)).astype(float)
    loads = rng.integers(1, 6, size=n).astype(float)
    caps = rng.integers(6, 14, size=m).astype(float)
    fixed = [0] if seed % 2 else []
    best = math.inf
    for s in _open_sets(m, p, fixed):
        best = min(best, _assign_all(cost, loads, caps, s))
    model = PMedian.from_cost_matrix(cost, np.ones(n), p=p, capacities=caps, loads=loads, fixed=fixed)
    if not math.isfinite(best):
        with pytest.raises(InfeasibleError):
            model.solve(method="exact")
        return
    for method in ("exact", "heuristic"):
        sol = model.solve(method=method, gap=0)
        # Capacities respected, single sourcing, fixed sites open.
        load = np.bincount(sol.assignment, weights=loads, minlength=m)
        assert np.all(load <= caps + 1e-9)
        assert np.all(sol.assignment >= 0) and set(fixed) <= set(sol.sites)
        assert set(sol.assignment) <= set(sol.sites)
        assert sol.objective == pytest.approx(cost[np.arange(n), sol.assignment].sum())
        if method == "exact":
            assert sol.objective == pytest.approx(best)
        else:
            assert sol.lower_bound <= best + 1e-6 <= sol.objective + 1e-6
    table = model.solve(method="exact", gap=0).table()
    assert set(table.columns) >= {"site", "kind", "rank", "homes", "demand", "load", "capacity"}
    assert np.all(table["load"] <= table["capacity"] + 1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_capacitated_coverage_matches_brute_force(seed):
    rng = np.random.default_rng(200 + seed)
    n, m, p = 6, 4, 2
    cost = rng.integers(60, 900, size=(n, m)).astype(float)
    w = rng.integers(1, 9, size=n).astype(float)
    caps = rng.integers(5, 15, size=m).astype(float)
    limit_s = 500.0
    best = 0.0
    for s in _open_sets(m, p):
        # Each covered home uses capacity = its weight; try every subset/assignment.
        options = [[-1] + [j for j in s if cost[i, j] <= limit_s] for i in range(n)]
        for choice in itertools.product(*options):
            used = np.zeros(m)
            for i, j in enumerate(choice):
                if j >= 0:
                    used[j] += w[i]
            if np.all(used <= caps):
                best = max(best, float(sum(w[i] for i, j in enumerate(choice) if j >= 0)))
    model = MaxCoverage.from_cost_matrix(cost, w, p=p, minutes=limit_s / 60, capacities=caps)
    exact = model.solve(method="exact", gap=0)
    assert exact.objective == pytest.approx(best)
    load = np.bincount(exact.assignment[exact.assignment >= 0], weights=w[exact.assignment >= 0], minlength=m)
    assert np.all(load <= caps + 1e-9)
    heur = model.solve(method="heuristic", gap=0)
    assert heur.objective <= best + 1e-9 <= heur.upper_bound + 1e-9


# ---------------------------------------------------------------------------------------------
# Minimum share per sub-area
# ---------------------------------------------------------------------------------------------
def test_min_share_constraint_changes_the_answer():
    # Group A: 10 homes near candidate 0; group B: 2 homes only near candidate 1.
    cost = np.full((12, 2), 2000.0)
    cost[:10, 0] = 100.0
    cost[10:, 1] = 100.0
    w = np.ones(12)
    groups = ["A"] * 10 + ["B"] * 2
    plain = MaxCoverage.from_cost_matrix(cost, w, p=1, minutes=5).solve(method="exact")
    assert list(plain.sites) == [0] and plain.objective == 10
    shared = MaxCoverage.from_cost_matrix(cost, w, p=1, minutes=5, groups=groups, min_share={"B": 0.5})
    sol = shared.solve(method="exact")
    assert list(sol.sites) == [1] and sol.objective == 2
    assert sol.group_shares.set_index("group").loc["B", "share"] == 1.0
    heur = shared.solve(method="heuristic")
    assert list(heur.sites) == [1] and heur.shortfall is None
    with pytest.raises(InfeasibleError, match="p=1 is below the 2 new sites"):
        MaxCoverage.from_cost_matrix(cost, w, p=1, minutes=5, groups=groups, min_share=0.5).solve(
            method="exact"
        )
    cover = SetCover.from_cost_matrix(cost, w, minutes=5, groups=groups, min_share={"A": 0.85})
    for method in ("exact", "heuristic"):
        sol = cover.solve(method=method)
        assert list(sol.sites) == [0] and sol.objective == 1


def test_min_share_impossible_raises():
    cost = np.full((4, 2), np.inf)
    cost[:3, 0] = 60.0
    with pytest.raises(InfeasibleError, match=r"group 'all' needs 90% covered but only 75.0%"):
        SetCover.from_cost_matrix(cost, minutes=5, min_share=0.9).solve()


# ---------------------------------------------------------------------------------------------
# Reports, weights, bad input
# ---------------------------------------------------------------------------------------------
def test_set_cover_reports_unreachable_homes():
    cost = np.array([[60.0, 900.0], [900.0, 60.0], [900.0, 900.0], [np.inf, np.inf]])
    model = SetCover.from_cost_matrix(cost, [1, 2, 3, 4], minutes=5)
    np.testing.assert_array_equal(model.unreachable, [2, 3])
    assert model.unreachable_weight == 7
    sol = model.solve()
    assert sol.objective == 2 and list(sol.unreachable) == [2, 3]
    assert list(sol.assignment) == [0, 1, -1, -1]


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


def test_demand_weights():
    w = demand_weights([10, 20], elderly=[2, 0], children=[1, 1], priority={"elderly": 1.0, "children": 0.5})
    np.testing.assert_allclose(w, [12.5, 20.5])
    np.testing.assert_allclose(demand_weights([3, 4]), [3, 4])
    with pytest.raises(InputError):
        demand_weights([1, -1])


@pytest.mark.parametrize(
    ("cost", "match"),
    [
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.array([[1.0, -5.0]]), "negative"),
        (np.array([1.0, 2.0]), "2-D"),
    ],
)
def test_bad_cost_raises_input_error(cost, match):
    with pytest.raises(InputError, match=match):
        PMedian.from_cost_matrix(cost, p=1)


def test_bad_inputs_and_infeasible_models():
    cost = np.array([[60.0, 120.0], [120.0, 60.0]])
    with pytest.raises(InputError, match="weights: 3 values"):
        PMedian.from_cost_matrix(cost, [1, 2, 3], p=1)
    with pytest.raises(InputError, match="p=3 exceeds"):
        PMedian.from_cost_matrix(cost, p=3)
    with pytest.raises(InfeasibleError, match="no candidate"):
        PMedian.from_cost_matrix(np.zeros((3, 0)), p=0)
    with pytest.raises(InfeasibleError, match=r"capacities: the 0 fixed and 1 largest new sites hold 5"):
        PMedian.from_cost_matrix(cost, [4, 4], p=1, capacities=[5, 3]).solve()
    # Two homes 600 s apart: one site cannot serve both within 5 minutes.
    far = np.array([[60.0, 600.0], [600.0, 60.0]])
    with pytest.raises(
        InfeasibleError,
        match="p=1 is below the 2 new sites needed to cover every reachable home within 5 min; raise p to 2",
    ):
        PMedian.from_cost_matrix(far, p=1, minutes=5).solve()
    assert issubclass(InfeasibleError, InputError)


# ---------------------------------------------------------------------------------------------
# Published instances
# ---------------------------------------------------------------------------------------------
@pytest.mark.shared
@pytest.mark.parametrize("number", [1, 2, 3, 4, 5])
def test_orlib_pmedian(number):
    _needs_benchmarks()
    cost, p = read_orlib_pmed(BENCHMARKS / "orlib-pmed" / f"pmed{number}.txt")
    optimum = orlib_optima()[f"pmed{number}"]
    model = PMedian.from_cost_matrix(cost, p=p)
    exact = model.solve(method="exact", gap=0)
    assert exact.objective == optimum and exact.status == "optimal"
    heur = model.solve(method="heuristic", gap=0)
    assert heur.lower_bound <= optimum <= heur.objective
    assert heur.objective <= optimum * (1 + heur.gap) + 1e-9
    assert heur.objective == optimum  # greedy + interchange reaches these optima


@pytest.mark.shared
@pytest.mark.parametrize("number", [1, 5, 6, 11, 16])
def test_orlib_pcenter(number):
    _needs_benchmarks()
    cost, p = read_orlib_pmed(BENCHMARKS / "orlib-pmed" / f"pmed{number}.txt")
    optimum = orlib_optima("orlib-pcenter/kcenteropt.txt")[f"pmed{number}"]
    sol = PCenter.from_cost_matrix(cost, p=p).solve(method="exact")
    assert sol.objective == optimum and sol.bound == optimum
    assert len(sol.sites) == p
    heur = PCenter.from_cost_matrix(cost, p=p).solve(method="heuristic")
    assert heur.bound <= optimum <= heur.objective and len(heur.sites) == p


@pytest.mark.shared
def test_spopt_sf_all_models():
    _needs_benchmarks()
    cost, pop, _ = read_sf()
    assert pop.sum() == 955_113
    pmed = PMedian.from_cost_matrix(cost, pop, p=4).solve(gap=0)
    assert pmed.objective / pop.sum() == pytest.approx(2982.1268579890657, rel=1e-12)
    mclp = MaxCoverage.from_cost_matrix(cost, pop, p=4, minutes=5000 / 60).solve(gap=0)
    assert mclp.objective == 875_247
    lscp = SetCover.from_cost_matrix(cost, pop, minutes=5000 / 60).solve(gap=0)
    assert lscp.objective == 8 and lscp.bound == 8
    expected = [11577.279, 9130.759, 7529.986, 7403.064, 5985.500, 5903.667]
    for p, value in enumerate(expected, start=1):
        sol = PCenter.from_cost_matrix(cost, p=p).solve(method="exact")
        assert sol.objective == pytest.approx(value, abs=1e-3)


SJC_MCLP = [
    (324, 800, 2, 8790),
    (324, 800, 5, 12152),
    (402, 800, 5, 15970),
    (500, 1200, 2, 18070),
    (708, 1200, 5, 24142),
    (818, 800, 10, 28838),
]


@pytest.mark.shared
@pytest.mark.parametrize(("n", "radius", "p", "optimum"), SJC_MCLP)
def test_sjc_max_coverage(n, radius, p, optimum):
    _needs_benchmarks()
    xy, demand = read_sjc_mclp(n)
    model = MaxCoverage.from_cost_matrix(sjc_distance(xy), demand, p=p, minutes=radius / 60)
    sol = model.solve(method="auto", gap=0)
    assert sol.objective == optimum and sol.status == "optimal"
    heur = model.solve(method="heuristic", gap=0)
    assert heur.objective <= optimum <= heur.upper_bound


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.parametrize("radius", [300.0, 400.0])
def test_sjc1_capacitated_set_cover_equals_the_full_mip(radius):
    """SJC1's capacities and demands as a capacitated set cover (every point within
    ``radius`` of its one site): the split relaxation's sites, reassigned single-source,
    reach the optimum of the full single-source MIP (HiGHS, solved independently)."""
    _needs_benchmarks()
    cost, capacity, demand, _ = read_sjc_cpmp()
    model = SetCover.from_cost_matrix(cost, demand, minutes=radius / 60, capacities=capacity, loads=demand)
    sol = model.solve(method="exact")
    full = covering._cover_milp(model._inst, time_limit=None, gap=0.0)
    assert full.status == "optimal"
    assert sol.objective == round(full.objective) and sol.bound == sol.objective
    served = sol.assignment
    assert (served >= 0).all() and cost[np.arange(len(demand)), served].max() <= radius
    assert np.all(np.bincount(served, weights=demand, minlength=len(demand)) <= capacity + 1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_capacitated_set_cover_matches_brute_force(seed):
    """Fractional loads, sometimes a fixed site: exact and auto equal the fewest new sites
    over every site set and single-source assignment."""
    rng = np.random.default_rng(400 + seed)
    n, m = int(rng.integers(4, 8)), int(rng.integers(3, 6))
    cost = rng.integers(1, 20, (n, m)).astype(float) * 60
    loads = rng.integers(1, 5, n) * (1 + 0.1 * rng.random(n))
    caps = rng.integers(3, 10, m).astype(float)
    fixed = [int(rng.integers(m))] if seed % 2 else []
    rows = np.flatnonzero((cost <= 600).any(axis=1))
    optimum = None
    free = [j for j in range(m) if j not in fixed]
    for k in range(len(free) + 1):
        for new in itertools.combinations(free, k):
            options = [[j for j in list(new) + fixed if cost[i, j] <= 600] for i in rows]
            if any(
                np.all(np.bincount(choice, weights=loads[rows], minlength=m) <= caps)
                for choice in itertools.product(*options)
            ):
                optimum = k
                break
        if optimum is not None:
            break
    model = SetCover.from_cost_matrix(cost, loads, minutes=10, capacities=caps, loads=loads, fixed=fixed)
    _assert_capacitated_optimum(model, optimum, rows, loads, caps, cost, limit_s=600)


def test_sjc1_capacitated_pmedian():
    _needs_benchmarks()
    cost, capacity, demand, p = read_sjc_cpmp()
    model = PMedian.from_cost_matrix(cost, np.ones(len(demand)), p=p, capacities=capacity, loads=demand)
    sol = model.solve(method="exact", gap=0)
    assert sol.objective == pytest.approx(17288.99, abs=0.01)
    load = np.bincount(sol.assignment, weights=demand, minlength=len(demand))
    assert np.all(load <= capacity + 1e-9)
    heur = model.solve(method="heuristic")
    assert heur.lower_bound <= 17288.9931 <= heur.objective


def test_background_thread_reraises_in_join():
    def fail():
        raise ValueError("from the thread")

    task = _parallel._Background(fail)
    with pytest.raises(ValueError, match="from the thread"):
        task.join()


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
    terms = lagrangian._SmoothedEntries(row, col, w.astype(np.float32), tau_row)
    value, slope = terms.evaluate(lam)
    exp_value, exp_slope = lagrangian._smooth_min0(w - lam[row], tau_row[row])
    assert np.all(np.abs(value - exp_value) <= 1e-5 * np.abs(exp_value) + 1e-4 * tau_row[row])
    np.testing.assert_allclose(slope, exp_slope, atol=1e-5)
    x = rng.normal(size=900).astype(np.float32)
    np.testing.assert_allclose(
        terms.row_sums(x), np.bincount(row, weights=x, minlength=n), rtol=1e-6, atol=1e-5
    )
    assert (np.bincount(row, minlength=n) == 0).sum() == 3
