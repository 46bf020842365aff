"""Vectorised helpers on the instance's sparse entries."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from planner.optimize import _tuning

if TYPE_CHECKING:
    from planner.optimize.instance import Instance


def flat_cells(flat: np.ndarray, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of flat row-major indices: ``np.nonzero`` of a 2-D mask, which numpy does
    several times slower than ``flatnonzero`` and a division."""
    return np.divmod(flat.astype(np.int64, copy=False), n_cols)


def csr_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for each (s, l): the entries of some CSR rows."""
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, lengths)


def row_entries(inst: Instance, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = inst.indptr[rows]
    lengths = inst.indptr[rows + 1] - starts
    return csr_ranges(starts, lengths), np.repeat(np.arange(len(rows)), lengths)


def first_open(inst: Instance, is_open: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest open candidate of each row and its entry index (-1 when none)."""
    pos = np.flatnonzero(is_open[inst.col])  # entries are sorted by cost within rows
    rows = inst.row[pos]
    first = np.ones(len(pos), dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    nearest = np.full(inst.n, -1, dtype=np.int64)
    entry = np.full(inst.n, -1, dtype=np.int64)
    nearest[rows[first]] = inst.col[pos[first]]
    entry[rows[first]] = pos[first]
    return nearest, entry


def rows_by_fixed(inst: Instance) -> np.ndarray:
    """Rows that a fixed (already open) candidate reaches."""
    covered = np.zeros(inst.n, dtype=bool)
    covered[inst.row[inst.is_fixed[inst.col]]] = True
    return covered


def csc_order(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
    """Entry order grouped by candidate (rows ascending within each), and the column pointers.

    scipy's CSR → CSC conversion is a counting sort, O(entries), far faster than a stable
    argsort on large instances. Small ones (most coverage cores) sort int16 columns instead:
    numpy's radix sort, without scipy's fixed cost, which dominates there.
    """
    nnz = inst.nnz
    if nnz <= _tuning.CSC_RADIX_MAX_ENTRIES and inst.m <= np.iinfo(np.int16).max:
        order = np.argsort(inst.col.astype(np.int16), kind="stable")
        return order, np.concatenate([[0], np.cumsum(np.bincount(inst.col, minlength=inst.m))])
    index_dtype = np.int32 if nnz < 2**31 else np.int64
    csr = sparse.csr_array((np.arange(nnz, dtype=index_dtype), inst.col, inst.indptr), shape=(inst.n, inst.m))
    csc = csr.tocsc()
    return np.asarray(csc.data, dtype=np.int64), np.asarray(csc.indptr, dtype=np.int64)
