"""planner.optimize.dominance: coverage cores by hand, and each dominance step against its pairwise
definition.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from planner.optimize import MaxCoverage, SetCover, _tuning, dominance


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
    core = dominance.cover_core(
        SetCover.from_cost_matrix(cost, w, minutes=5).instance, rows_are_constraints=True
    )
    assert list(core.cols) == [0, 3]
    assert core.inst.n == 2 and core.inst.nnz == 2
    core = dominance.cover_core(
        MaxCoverage.from_cost_matrix(cost, w, p=1, minutes=5).instance, rows_are_constraints=False
    )
    assert list(core.cols) == [0, 3]
    np.testing.assert_allclose(np.sort(core.inst.weights), [3.0, 12.0])
    # With c3 fixed open, homes 2-4 are covered whatever is chosen: they leave the core.
    core = dominance.cover_core(
        MaxCoverage.from_cost_matrix(cost, w, p=1, minutes=5, fixed=[3]).instance, rows_are_constraints=False
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
    inst = MaxCoverage.from_cost_matrix(cost, w, p=5, minutes=5, fixed=[7]).instance
    cores = []
    for flops in (0, 10**9):  # never dense, always dense
        monkeypatch.setattr(_tuning, "CORE_DENSE_FLOPS_PER_PRODUCT", flops)
        cores.append(dominance.cover_core(inst, rows_are_constraints=rows_are_constraints))
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
        np.testing.assert_array_equal(dominance.dominance_dense(mat, mode), expected)
        s, e = np.nonzero(mat)
        np.testing.assert_array_equal(dominance.dominance_sparse(s, e, n, k, mode), expected)
        by_elem = np.argsort(e, kind="stable")
        np.testing.assert_array_equal(
            dominance.dominance_sparse(s[by_elem], e[by_elem], n, k, mode), expected
        )
        shuffled = rng.permutation(len(s))
        np.testing.assert_array_equal(
            dominance.dominance_sparse(s[shuffled], e[shuffled], n, k, mode), expected
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
            np.testing.assert_array_equal(dominance.same_sets(s[order], e[order], n, k), expected)
        share = float(np.mean(expected != np.arange(n)))
        assert dominance.same_sets(s, e, n, k, min_share=share + 1e-9) is None
    # Two different pairs of elements with equal hashes (birthday search over the keys).
    key = dominance.element_keys(3000).astype(np.int64)
    assert len(np.unique(key)) == 3000 and key.min() >= 1 and key.max() < 2**31
    seen = {}
    for a, b in itertools.combinations(range(3000), 2):
        pair = seen.setdefault(int(key[a] + key[b]), (a, b))
        if pair != (a, b):
            break
    else:
        pytest.fail("no colliding pair found")
    sets_, elems = np.array([0, 0, 1, 1, 2, 2]), np.array([*pair, a, b, *pair])
    np.testing.assert_array_equal(dominance.same_sets(sets_, elems, 3, 3000), [0, 1, 0])
