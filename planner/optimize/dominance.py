"""Dominance reductions of the coverage models (Toregas & ReVelle 1973)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from scipy import sparse

from planner.optimize import _tuning
from planner.optimize._arrays import csr_ranges, flat_cells, rows_by_fixed
from planner.optimize.instance import Instance


@dataclasses.dataclass
class _Core:
    """The part of a coverage instance that decides the answer.

    ``inst`` has one row per kept demand row (no fixed sites, no rows they cover) and one
    column per kept candidate; ``rows``/``cols`` give their original indices.
    ``outside_weight`` is the weight covered whatever is chosen (by fixed sites).
    """

    inst: Instance
    rows: np.ndarray
    cols: np.ndarray
    outside_weight: float


def dominance_dense(mat: np.ndarray, mode: str) -> np.ndarray:
    """One dominance step among the rows of a dense 0/1 float32 matrix (sets × elements).

    ``mode``: ``"subset"`` drops every set contained in another (smaller, or equal with a
    higher index); ``"superset"`` drops every set containing another (larger, or equal with
    a higher index); ``"same"`` maps every set to the lowest index of an equal set.
    Returns the drop mask (``"subset"``/``"superset"``) or the representative per set
    (``"same"``).
    """
    size = mat.sum(axis=1)  # float32 counts: exact below 2**24
    if mode == "same":
        inside = (mat @ mat.T) == size[:, None]  # [a, b]: S_a ⊆ S_b
        inside &= size[:, None] == size[None, :]
        return inside.argmax(axis=0)  # the diagonal is true: some a <= b always matches
    # Sets ordered so that "a may drop b" means "a comes first": (size, index) for
    # superset, (-size, index) for subset. The first set containing (subset) or contained in
    # (superset) each set is then found by one argmax; it is the set itself when none
    # comes before it (the diagonal is true).
    order = np.argsort(size if mode == "superset" else -size, kind="stable")
    sub = mat[order]
    # (sub @ sub.T)[a, b] = |S_a ∩ S_b| is symmetric: compare with the size of the set
    # searched for along each row, so that argmax runs along contiguous rows.
    searched = size[order][:, None] if mode == "subset" else size[order][None, :]
    first = ((sub @ sub.T) == searched).argmax(axis=1)
    drop = np.empty(len(size), dtype=bool)
    drop[order] = first < np.arange(len(size))
    return drop


def _grouped(keys: np.ndarray, values: np.ndarray, n_keys: int) -> tuple[np.ndarray | None, np.ndarray]:
    """(pointers, values) grouped by ``keys`` when they are already non-decreasing; else
    (None, values), or a stable sort when ``values`` are not grouped either."""
    if len(keys) < 2 or bool(np.all(keys[1:] >= keys[:-1])):
        return np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=n_keys))]), values
    if len(values) < 2 or bool(np.all(values[1:] >= values[:-1])):
        return None, values
    order = np.argsort(keys, kind="stable")
    return np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=n_keys))]), values[order]


def _regrouped(ptr: np.ndarray, index: np.ndarray, n_index: int) -> tuple[np.ndarray, np.ndarray]:
    """The transpose of a grouping: for each ``index`` value, the groups holding it."""
    n_groups = len(ptr) - 1
    csr = sparse.csr_array((np.ones(len(index), dtype=np.int8), index, ptr), shape=(n_groups, n_index))
    csc = csr.tocsc()
    return csc.indptr.astype(np.int64), csc.indices.astype(np.int64)


def _membership(
    sets: np.ndarray, elems: np.ndarray, n_sets: int, n_elems: int
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``holds(s, e)``: whether set s holds element e (arrays), for sets given as
    (set, element) pairs. A boolean table up to ``CORE_DENSE_MAX_CELLS`` cells, a bit table
    up to ``SUBSET_BITS_MAX_CELLS``, binary search in the sorted pairs above."""
    cells = n_sets * n_elems
    if cells <= _tuning.CORE_DENSE_MAX_CELLS:
        member = np.zeros(cells, dtype=bool)
        member[sets * n_elems + elems] = True

        def holds(s, e):
            return member[s * n_elems + e]
    elif cells <= _tuning.SUBSET_BITS_MAX_CELLS:
        # One bit per (set, element): the bits of each byte OR-ed together by reduceat.
        codes = np.sort(sets * n_elems + elems)
        byte = codes >> 3
        first = np.flatnonzero(np.concatenate([[True], byte[1:] != byte[:-1]]))
        bits = np.zeros((cells + 7) // 8, dtype=np.uint8)
        bits[byte[first]] = np.bitwise_or.reduceat(np.left_shift(1, codes & 7).astype(np.uint8), first)

        def holds(s, e):
            q = s * n_elems + e
            return ((bits[q >> 3] >> (q & 7).astype(np.uint8)) & 1) == 1
    else:
        codes = np.sort(sets * n_elems + elems)

        def holds(s, e):
            q = s * n_elems + e
            return codes[np.minimum(np.searchsorted(codes, q), len(codes) - 1)] == q

    return holds


def subset_pairs(
    sets: np.ndarray, elems: np.ndarray, n_sets: int, n_elems: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (a, b), a != b, with non-empty set a contained in set b, for sets given as
    distinct (set, element) pairs.

    S_a ⊆ S_b needs b to hold a's rarest element, so only those pairs are tried (at most
    the sum of squared element counts, usually far fewer). Single-element lookups then drop
    most of them, and the rest are checked whole: faster and smaller in memory than a
    sparse product S·Sᵀ, which computes every intersection.
    """
    sets = np.asarray(sets, dtype=np.int64)
    elems = np.asarray(elems, dtype=np.int64)
    # Each set's elements and each element's sets. The callers pass the pairs grouped by one
    # side; scipy's CSR → CSC conversion (a counting sort, O(entries)) groups the other.
    start, elem_of = _grouped(sets, elems, n_sets)
    if start is None:
        held_from, holders = _grouped(elems, sets, n_elems)
        start, elem_of = _regrouped(held_from, holders, n_sets)
    else:
        held_from, holders = _regrouped(start, elem_of, n_elems)
    size, freq = np.diff(start), np.diff(held_from)
    nonempty = np.flatnonzero(size)
    if len(nonempty) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    rarest = np.minimum.reduceat(freq[elem_of] * n_elems + elem_of, start[nonempty]) % n_elems
    a = np.repeat(nonempty, freq[rarest])
    b = holders[csr_ranges(held_from[rarest], freq[rarest])]
    keep = (a != b) & (size[b] >= size[a])
    a, b = a[keep], b[keep]
    holds = _membership(sets, elems, n_sets, n_elems)
    # a's elements one at a time (one of them is the rarest: it passes) while that drops
    # many pairs; the few left are checked whole.
    found_a, found_b = [], []
    t = 0
    while len(a) > _tuning.SUBSET_WHOLE_CHECK_PAIRS:
        done = size[a] <= t
        found_a.append(a[done])
        found_b.append(b[done])
        a, b = a[~done], b[~done]
        inside = holds(b, elem_of[start[a] + t])
        a, b = a[inside], b[inside]
        t += 1
    rest = np.maximum(size[a] - t, 0)
    pair = np.repeat(np.arange(len(a)), rest)
    missing = ~holds(b[pair], elem_of[csr_ranges(start[a] + t, rest)])
    whole = np.bincount(pair[missing], minlength=len(a)) == 0
    return np.concatenate([*found_a, a[whole]]), np.concatenate([*found_b, b[whole]])


def dominance_sparse(sets: np.ndarray, elems: np.ndarray, n_sets: int, n_elems: int, mode: str) -> np.ndarray:
    """:func:`dominance_dense` for sets given as (set, element) pairs (see
    :func:`subset_pairs`)."""
    size = np.bincount(sets, minlength=n_sets)
    a, b = subset_pairs(sets, elems, n_sets, n_elems)
    # The empty set is inside every set (:func:`subset_pairs` lists non-empty sets only).
    empty = np.flatnonzero(size == 0)
    if mode == "same":
        same = size[a] == size[b]
        rep = np.arange(n_sets)
        np.minimum.at(rep, b[same], a[same])
        if len(empty):
            rep[empty] = empty[0]
        return rep
    drop = np.zeros(n_sets, dtype=bool)
    if mode == "subset":
        drop[a[(size[a] < size[b]) | (a > b)]] = True
        if len(empty):
            drop[empty] = True
            drop[empty[0]] = len(empty) < n_sets
    else:
        drop[b[(size[a] < size[b]) | (a < b)]] = True
        if len(empty):
            drop[:] = True
            drop[empty[0]] = False
    return drop


def element_keys(n: int) -> np.ndarray:
    """Pseudo-random keys in [1, 2**31) for elements 0..n-1 (splitmix64's finaliser, which
    a seeded generator would cost more than all the rest): sums over up to 2**22 elements
    stay exact in float64. A linear key (e·φ mod P) would make {0, 3} and {1, 2} collide."""
    # Array arithmetic wraps modulo 2**64 without warnings (only numpy scalars warn).
    z = np.arange(n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return ((z >> np.uint64(33)) | np.uint64(1)).astype(float)


def same_sets(
    sets: np.ndarray, elems: np.ndarray, n_sets: int, n_elems: int, min_share: float = 0.0
) -> np.ndarray | None:
    """The lowest index of an equal set, per set (sets as distinct (set, element) pairs);
    None when fewer than ``min_share`` of them could merge with another.

    Sets are grouped by the sum of their elements' keys (positive, exact in float64), then
    each is checked against its group's first set element by element: with equal sums, a
    set inside the other is equal to it, and a collision only leaves a set unmerged. Far
    cheaper than :func:`dominance_sparse`'s ``"same"``, which lists every subset pair.
    """
    key = element_keys(n_elems)
    hashed = np.bincount(sets, weights=key[elems], minlength=n_sets)
    order = np.argsort(hashed, kind="stable")  # each group's lowest index first
    new_group = np.ones(n_sets, dtype=bool)
    new_group[1:] = hashed[order][1:] != hashed[order][:-1]
    if n_sets - int(new_group.sum()) < min_share * n_sets:
        return None
    rep = np.empty(n_sets, dtype=np.int64)
    rep[order] = order[np.flatnonzero(new_group)[np.cumsum(new_group) - 1]]
    merged = rep[sets] != sets
    if merged.any():
        holds = _membership(sets, elems, n_sets, n_elems)
        wrong = sets[merged][~holds(rep[sets[merged]], elems[merged])]
        rep[wrong] = wrong
    return rep


def renumbered_unsorted(index: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(index, return_inverse=True)`` for indices below ``size``, without sorting."""
    present = np.bincount(index, minlength=size) > 0
    return np.flatnonzero(present), (np.cumsum(present) - 1)[index]


def cover_core(inst: Instance, *, rows_are_constraints: bool) -> _Core:
    """Reduce a coverage instance by dominance until nothing changes.

    - A candidate whose homes are a subset of another's is never needed (ties: the lower
      index stays). This holds for set covering and for max-coverage alike.
    - Set covering (``rows_are_constraints``): a home whose candidates include all of
      another home's candidates is covered whenever that one is (Toregas & ReVelle 1973).
    - Max-coverage: homes with the same candidates become one row with their summed weight.

    Each step is one pairwise product of the sets (dense when small); a step whose sparse
    product would take more than ``CORE_MAX_PAIRS`` multiply-adds is skipped (the reduction
    is then partial, never wrong).
    """
    # size: one fixed-point loop whose two steps share the incidence (a dense slice or
    # sparse pairs) and its renumbering; split, each step would take and return six arrays.
    by_fixed = rows_by_fixed(inst)
    keep = (~by_fixed[inst.row]) & ~inst.is_fixed[inst.col]
    row, col = renumbered_unsorted(inst.row[keep], inst.n), renumbered_unsorted(inst.col[keep], inst.m)
    (rows_u, row), (cols_u, col) = row, col
    weight = inst.weights[rows_u].astype(float)
    n, m = len(rows_u), len(cols_u)
    # Homes with the same candidates first, by hashing (what the home step below would do
    # for them, at a fraction of the cost of its pairwise product, which then compares
    # fewer sets).
    rep = same_sets(row, col, n, m, min_share=_tuning.SAME_HOMES_MIN_SHARE) if n and m else None
    if rep is not None:
        kept = rep == np.arange(n)
        if not rows_are_constraints:
            weight = np.bincount(rep, weights=weight, minlength=n)
        rows_u, weight, n = rows_u[kept], weight[kept], int(kept.sum())
        keep = kept[row]
        row, col = (np.cumsum(kept) - 1)[row[keep]], col[keep]
    # Alternate the two steps (each is idempotent): stop at the first that changes nothing,
    # once both have run. While the products are cheaper dense, the incidence matrix itself
    # is kept dense and sliced (small cores: most steps cost a few numpy calls).
    dense = None
    step = 0
    while n and m:
        on_cols = step % 2 == 0
        step += 1
        n_sets, n_elems = (m, n) if on_cols else (n, m)
        if dense is not None:
            size_of_elems = dense.sum(axis=1 if on_cols else 0).astype(float)
        else:
            size_of_elems = np.bincount(row if on_cols else col, minlength=n_elems).astype(float)
        products = float(size_of_elems @ size_of_elems)
        if products > _tuning.CORE_MAX_PAIRS:
            if step >= 2:
                break
            continue
        mode = "subset" if on_cols else "superset" if rows_are_constraints else "same"
        if (
            n_sets * n_sets * n_elems <= _tuning.CORE_DENSE_FLOPS_PER_PRODUCT * products
            and n_sets <= 4096
            and n * m <= _tuning.CORE_DENSE_MAX_CELLS
        ):
            if dense is None:
                dense = np.zeros((n, m), dtype=np.float32)
                dense[row, col] = 1.0
            found = dominance_dense(dense.T if on_cols else dense, mode)
        else:
            if dense is not None:
                row, col = flat_cells(np.flatnonzero(dense), m)
                dense = None
            found = dominance_sparse(col if on_cols else row, row if on_cols else col, n_sets, n_elems, mode)
        if mode == "same":
            drop = found < np.arange(n)
            weight = np.bincount(found, weights=weight, minlength=n)
        else:
            drop = found
        if not drop.any():
            if step >= 2:
                break
            continue
        kept = ~drop
        if on_cols:
            cols_u, m = cols_u[kept], int(kept.sum())
        else:
            rows_u, weight, n = rows_u[kept], weight[kept], int(kept.sum())
        if dense is not None:
            dense = dense[:, kept] if on_cols else dense[kept]
            continue
        keep = kept[col if on_cols else row]
        row, col = row[keep], col[keep]
        renumber = np.cumsum(kept) - 1  # kept sets keep their order
        if on_cols:
            col = renumber[col]
        else:
            row = renumber[row]
    if dense is not None:
        row, col = flat_cells(np.flatnonzero(dense), m)  # row-major: sorted by row, then column
    else:
        order = np.lexsort((col, row))
        row, col = row[order], col[order]
    core = Instance(
        n,
        m,
        np.concatenate([[0], np.cumsum(np.bincount(row, minlength=n))]),
        row,
        col,
        np.zeros(len(row)),
        weight,
        weight.copy(),
        np.empty(0, dtype=np.int64),
        None,
        inst.limit_s,
    )
    return _Core(core, rows_u, cols_u, float(inst.weights[by_fixed].sum()))
