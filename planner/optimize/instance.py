"""The validated instance: demand weights and the cost matrix as sorted CSR arrays."""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from planner import settings
from planner._errors import InfeasibleError, InputError
from planner.optimize._arrays import flat_cells


def demand_weights(
    population: Any,
    elderly: Any = None,
    children: Any = None,
    disabled: Any = None,
    priority: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Demand weight per home: population plus the plan's priority groups.

    ``weight = population + Σ_g priority[g] × count_g`` over the groups given
    (elderly, children, disabled), so a priority weight of 1.0 counts each member of a
    group twice.

    Parameters
    ----------
    population : array-like
        Residents per demand point.
    elderly, children, disabled : array-like, optional
        Group counts per demand point (same length).
    priority : mapping, optional
        Extra weight per group; default ``planner.settings.priority_weights``.

    Returns
    -------
    numpy.ndarray
        Float weights, one per demand point.
    """
    priority = settings.priority_weights if priority is None else priority
    weights = _as_vector(population, "population")
    for group, counts in (("elderly", elderly), ("children", children), ("disabled", disabled)):
        if counts is None:
            continue
        if group not in priority:
            raise InputError(f"priority: no weight for group {group!r}; add it to priority")
        weights = weights + float(priority[group]) * _as_vector(counts, group, len(weights))
    return weights


def _as_vector(values: Any, name: str, n: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: not numeric ({exc})") from None
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise InputError(f"{name}: {len(arr)} values for {n} demand points")
    if not np.isfinite(arr).all():
        raise InputError(f"{name}: {int((~np.isfinite(arr)).sum())} NaN/infinite values")
    if (arr < 0).any():
        raise InputError(f"{name}: {int((arr < 0).sum())} negative values (min {arr.min():g})")
    return arr


@dataclasses.dataclass
class Instance:
    """A validated instance. Entries are CSR-ordered, each row sorted by cost."""

    n: int
    m: int
    indptr: np.ndarray  # (n + 1,) row pointers
    row: np.ndarray  # (nnz,) row of each entry
    col: np.ndarray  # (nnz,) candidate of each entry
    cost_s: np.ndarray  # (nnz,) travel time, ascending within each row
    weights: np.ndarray  # (n,)
    loads: np.ndarray  # (n,)
    fixed: np.ndarray  # sorted candidate indices forced open
    capacities: np.ndarray | None  # (m,)
    limit_s: float | None
    group_codes: np.ndarray | None = None  # (n,) code of each row's group, -1 for none
    group_labels: list | None = None
    group_share: np.ndarray | None = None  # (n_groups,) required share, NaN for none

    @property
    def nnz(self) -> int:
        return len(self.col)

    @property
    def row_len(self) -> np.ndarray:
        return np.diff(self.indptr)

    @property
    def coverable(self) -> np.ndarray:
        """Rows with at least one usable candidate."""
        return self.row_len > 0

    @property
    def is_fixed(self) -> np.ndarray:
        mask = np.zeros(self.m, dtype=bool)
        mask[self.fixed] = True
        return mask

    def subset(self, keep: np.ndarray) -> Instance:
        """The same instance with only the entries where ``keep`` is true."""
        counts = np.bincount(self.row[keep], minlength=self.n)
        return dataclasses.replace(
            self,
            indptr=np.concatenate([[0], np.cumsum(counts)]),
            row=self.row[keep],
            col=self.col[keep],
            cost_s=self.cost_s[keep],
        )


def cost_entries(
    cost: Any, limit_s: float | None = None
) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray, bool]:
    """(n, m, row, col, cost_s, canonical) of the reachable pairs of a dense or sparse cost
    matrix; ``canonical``: the pairs are in CSR order (see :func:`_is_canonical`).

    With ``limit_s`` only the pairs within it (coverage models): on a dense matrix the
    filter comes before the nonzero scan, which is most of the build time.
    """
    # A tiny tolerance so that 900.0000000001 s (float noise in routed times) counts as 15 min.
    within = np.inf if limit_s is None else limit_s * (1 + 1e-12)
    if sparse.issparse(cost):
        coo = sparse.coo_array(cost)
        if coo.ndim != 2:
            raise InputError(f"cost: expected a 2-D matrix, got shape {coo.shape}")
        n, m = coo.shape
        row = np.asarray(coo.row, dtype=np.int64)
        col = np.asarray(coo.col, dtype=np.int64)
        data = np.asarray(coo.data, dtype=float)
        canonical = _is_canonical(row, col)
        if not canonical:
            key = np.sort(row * m + col)
            if np.any(key[1:] == key[:-1]):
                raise InputError("cost: the sparse matrix stores some pairs twice; sum or drop duplicates")
    else:
        try:
            dense = np.asarray(cost, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InputError(f"cost: not a numeric matrix ({exc})") from None
        if dense.ndim != 2:
            raise InputError(f"cost: expected a 2-D matrix (demand × candidate), got shape {dense.shape}")
        n, m = dense.shape
        if np.isnan(dense).any():
            raise InputError(
                f"cost: {int(np.isnan(dense).sum())} NaN travel times; mark unreachable pairs with np.inf"
            )
        # -inf stays and is rejected as negative below
        flat = np.flatnonzero(dense != np.inf if limit_s is None else dense <= within)
        row, col = flat_cells(flat, m)
        data = dense.reshape(-1)[flat]
        canonical = True  # row-major scan
    if np.isnan(data).any():
        raise InputError(f"cost: {int(np.isnan(data).sum())} NaN travel times; leave unreachable pairs out")
    if (data < 0).any():
        raise InputError(f"cost: {int((data < 0).sum())} negative travel times (min {data.min():g} s)")
    if n == 0:
        raise InputError("cost: no demand rows")
    # +inf stored in a sparse matrix also means unreachable
    keep = np.isfinite(data) if limit_s is None else data <= within
    return n, m, row[keep], col[keep], data[keep], canonical


def _is_canonical(row: np.ndarray, col: np.ndarray) -> bool:
    """Entries ordered by row, then by strictly increasing column (CSR order, no duplicates)."""
    if len(row) < 2:
        return True
    dr = np.diff(row)
    return bool(np.all(dr >= 0) and np.all(np.diff(col)[dr == 0] > 0))


def _row_cost_order(row: np.ndarray, col: np.ndarray, cost_s: np.ndarray, canonical: bool) -> np.ndarray:
    """Entry order by row, then cost, then column.

    ``np.lexsort`` on three keys is slow for millions of entries; when the entries are in
    CSR order (``canonical``) a single stable sort of ``row × span + cost`` gives the same
    order, checked afterwards (rounding could merge two nearly equal costs) with lexsort as
    the fallback.
    """
    if len(row) > 1 and canonical:
        span = 2.0 * float(cost_s.max()) + 1.0
        order = np.argsort(row * span + cost_s, kind="stable")
        r, c = row[order], cost_s[order]
        if not np.any((r[1:] == r[:-1]) & (c[1:] < c[:-1])):
            return order
    return np.lexsort((col, cost_s, row))


def build_instance(
    cost: Any,
    weights: Any,
    *,
    fixed: Any,
    capacities: Any,
    loads: Any,
    minutes: float | None,
    groups: Any = None,
    min_share: float | Mapping[Hashable, float] | None = None,
) -> Instance:
    limit_s = None
    if minutes is not None:
        if not (np.isfinite(minutes) and minutes > 0):
            raise InputError(f"minutes: expected a positive number, got {minutes!r}")
        limit_s = 60.0 * float(minutes)
    n, m, row, col, cost_s, canonical = cost_entries(cost, limit_s)
    if m == 0:
        raise InfeasibleError(f"no candidate sites: the cost matrix has {n} rows and 0 columns")
    order = _row_cost_order(row, col, cost_s, canonical)
    row, col, cost_s = row[order], col[order], cost_s[order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=n))])

    w = np.ones(n) if weights is None else _as_vector(weights, "weights", n)
    ld = w.copy() if loads is None else _as_vector(loads, "loads", n)
    fixed_idx = _as_fixed(fixed, m)
    caps = None
    if capacities is not None:
        try:
            caps = np.asarray(capacities, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InputError(f"capacities: not numeric ({exc})") from None
        if caps.shape != (m,):
            raise InputError(f"capacities: {caps.size} values for {m} candidates")
        if np.isnan(caps).any() or (caps < 0).any():
            raise InputError("capacities: NaN or negative values")
        # Unlimited capacity (inf) is any capacity above the total load.
        caps = np.minimum(caps, ld.sum() + 1.0)
    inst = Instance(n, m, indptr, row, col, cost_s, w, ld, fixed_idx, caps, limit_s)
    if groups is not None or min_share is not None:
        _attach_groups(inst, groups, min_share)
    return inst


def _as_fixed(fixed: Any, m: int) -> np.ndarray:
    if fixed is None:
        return np.empty(0, dtype=np.int64)
    arr = np.asarray(fixed)
    if arr.dtype == bool:
        if arr.shape != (m,):
            raise InputError(f"fixed: boolean mask of length {arr.size} for {m} candidates")
        return np.flatnonzero(arr)
    arr = np.atleast_1d(arr)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InputError("fixed: expected candidate indices (integers) or a boolean mask")
    arr = arr.astype(np.int64).ravel()
    if arr.size and (arr.min() < 0 or arr.max() >= m):
        raise InputError(f"fixed: index out of range 0..{m - 1}")
    return np.unique(arr)


def _attach_groups(inst: Instance, groups: Any, min_share: Any) -> None:
    if min_share is None:
        raise InputError("groups given without min_share; give the minimum covered share")
    if groups is None:
        codes, labels = np.zeros(inst.n, dtype=np.int64), ["all"]
    else:
        values = pd.Series(np.asarray(groups, dtype=object))
        if len(values) != inst.n:
            raise InputError(f"groups: {len(values)} labels for {inst.n} demand points")
        codes_, uniques = pd.factorize(values, use_na_sentinel=True)
        codes, labels = codes_.astype(np.int64), list(uniques)
    share = np.full(len(labels), np.nan)
    if isinstance(min_share, Mapping):
        for label, value in min_share.items():
            if label not in labels:
                raise InputError(f"min_share: group {label!r} is not in groups")
            share[labels.index(label)] = float(value)
    else:
        share[:] = float(min_share)
    ok = np.isnan(share) | ((share >= 0) & (share <= 1))
    if not ok.all():
        raise InputError("min_share: shares must be between 0 and 1")
    inst.group_codes, inst.group_labels, inst.group_share = codes, labels, share
