"""Coverage with a planner's constraints: minimum spacing, minimum catchment, capacities.

:class:`ConstrainedCoverage` is the maximal-covering (and, with ``p=None``, the set-covering)
model with what makes a proposal buildable:

- **spacing**: pairs of candidates that may not both open (``conflicts``: two facilities of a
  kind closer than a minimum spacing);
- **minimum catchment**: a new site opens only if the demand assigned to it reaches its
  minimum (``min_load``, e.g. residents), so no facility is proposed for a handful of homes;
- **capacities**: what a site (new or existing) can take (``capacities`` in ``loads``).

Every home is assigned to at most one open site within ``minutes`` (single sourcing), so the
catchment and capacity hold for the homes each site actually takes over. The model is a
mixed-integer programme solved by HiGHS (:func:`scipy.optimize.milp`); the plain models of
:mod:`planner.optimize.coverage` stay as they are (their fast paths know nothing of these
constraints). Homes within ``minutes`` of a fixed site without a capacity are covered
already and leave the model.

``p=None`` asks for the fewest new sites that reach the best coverage the constraints allow
(set covering, in two stages: the most coverage with any number of sites, then the fewest
sites reaching it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from planner._errors import InputError
from planner.optimize.solution import Solution

#: Relative weight of the tie-break that sends a home to its nearest open site.
_TIE = 1e-4


@dataclass
class CoverageBlock:
    """One category's programme over ``[y, x]`` (see :meth:`ConstrainedCoverage.block`).

    ``row``, ``col``: the demand row and candidate of each assignment entry ``y``;
    ``new_cols``: the candidate of each ``x``; ``A``, ``lo``, ``hi``: the constraints;
    ``weight``, ``tie_cost``: each entry's objective weight and its nearest-site tie-break;
    ``fixed_assignment``: per demand row, the unlimited fixed site covering it outright (-1).
    """

    row: np.ndarray
    col: np.ndarray
    new_cols: np.ndarray
    A: sparse.csr_matrix
    lo: np.ndarray
    hi: np.ndarray
    weight: np.ndarray
    tie_cost: np.ndarray
    fixed_assignment: np.ndarray
    unreachable: np.ndarray
    blocked: int


class ConstrainedCoverage:
    """Maximal covering with spacing, minimum catchment and capacities (see module doc).

    Build with :meth:`from_cost_matrix`, then :meth:`solve`.
    """

    name = "max-coverage"

    def __init__(self, cost, weights, loads, minutes, p, fixed, capacities, min_load, conflicts):
        self.cost, self.weights, self.loads = cost, weights, loads
        self.minutes, self.p, self.fixed = minutes, p, fixed
        self.capacities, self.min_load, self.conflicts = capacities, min_load, conflicts

    @classmethod
    def from_cost_matrix(
        cls,
        cost: Any,
        weights: Any = None,
        *,
        p: int | None,
        minutes: float,
        fixed: Any = None,
        loads: Any = None,
        capacities: Any = None,
        min_load: Any = None,
        conflicts: Any = None,
    ) -> ConstrainedCoverage:
        """Build the model.

        Parameters
        ----------
        cost : array or scipy.sparse matrix
            Demand × candidate travel times in seconds (sparse: a missing entry is unreachable).
        weights : array, optional
            Objective weight per demand row (default 1).
        p : int or None
            At most this many NEW sites; None: the fewest new sites reaching the most coverage.
        minutes : float
            Covered when ``cost_s <= 60 * minutes``.
        fixed : array of int, optional
            Open candidates (existing facilities).
        loads : array, optional
            Load per demand row for capacities and catchments (default: the weights).
        capacities : array, optional
            Per candidate; ``inf`` for none. A fixed site without a limit covers its homes outright.
        min_load : array or float, optional
            Minimum load a NEW site must take to open (its minimum catchment).
        conflicts : (k, 2) int array, optional
            Candidate pairs that may not both be open (fixed sites count as open).
        """
        c, w, ld, fx, cap, low, pairs = checked_constraints(
            cost, weights, loads, fixed, capacities, min_load, conflicts
        )
        if not np.isfinite(minutes) or minutes <= 0:
            raise InputError(f"minutes {minutes}: give a positive service standard")
        if p is not None and (int(p) != p or p < 0):
            raise InputError(f"p {p}: give a whole number of new sites ≥ 0")
        return cls(c, w, ld, float(minutes), p, fx, cap, low, pairs)

    def block(self) -> CoverageBlock:
        """The programme's pieces, over variables ``[y (one per entry), x (one per new
        column)]``: what :meth:`solve` solves, and what a model of several categories
        (:mod:`planner.site_levels`) stacks (every constraint but the number of sites)."""
        n, m = self.cost.shape
        c = self.cost.tocoo()
        within = c.data <= 60.0 * self.minutes + 1e-9
        row, col, sec = c.row[within], c.col[within], c.data[within]
        is_fixed = np.zeros(m, bool)
        is_fixed[self.fixed] = True
        # Homes a fixed site without a limit reaches are covered already.
        free_fixed = is_fixed & ~np.isfinite(self.capacities)
        done = np.zeros(n, bool)
        done[row[free_fixed[col]]] = True
        # Candidates in conflict with an open fixed site cannot open.
        by_fixed = blocked_by_fixed(self.conflicts, is_fixed, m)
        # A new candidate whose homes within reach hold less than its minimum catchment can
        # never open: dropped with its entries (exact, and often half the candidates).
        free_rows = ~done[row]
        reach_load = np.bincount(col[free_rows], weights=self.loads[row[free_rows]], minlength=m)
        starved = ~is_fixed & (self.min_load > 0) & (reach_load < self.min_load - 1e-9)
        blocked = by_fixed | starved
        keep = ~done[row] & ~blocked[col] & ~free_fixed[col]
        reach = np.zeros(n, bool)
        reach[row] = True
        first = _assign_done(np.full(n, -1, np.int64), c, within, free_fixed, done)
        row, col, sec = row[keep], col[keep], sec[keep]
        new_cols = np.flatnonzero(~is_fixed & ~blocked)
        new_cols = new_cols[np.isin(new_cols, col)]
        xpos = np.full(m, -1, np.int64)
        xpos[new_cols] = np.arange(len(new_cols))
        w = self.weights[row]
        tie = _TIE * max(float(w[w > 0].min()), 1e-9) if (w > 0).any() else 0.0
        A, lo, hi = self._rows(row, col, xpos, len(row), len(new_cols), is_fixed)
        return CoverageBlock(
            row=row,
            col=col,
            new_cols=new_cols,
            A=A,
            lo=lo,
            hi=hi,
            weight=w,
            tie_cost=tie * sec / (60.0 * self.minutes),
            fixed_assignment=first,
            unreachable=np.flatnonzero(~reach),
            blocked=int(by_fixed.sum()),
        )

    def solve(self, time_limit: float | None = None, gap: float = 1e-4) -> Solution:
        """Solve with HiGHS; returns a :class:`~planner.optimize.Solution` (``objective``:
        weight covered, fixed sites' homes included; ``bound``: HiGHS's dual bound)."""
        t0 = time.perf_counter()
        found = self._from_relaxation(time_limit, gap) if self.p else None
        if found is not None:
            found.seconds = time.perf_counter() - t0
            return found
        if self._spacing_only():
            return self._solve_spacing_only(t0, time_limit, gap)
        return self._solve_block(self.block(), t0, time_limit, gap)

    def _spacing_only(self) -> bool:
        """No capacity and no catchment: a home needs no assignment variable of its own."""
        return not np.isfinite(self.capacities).any() and not (self.min_load > 0).any()

    def _solve_spacing_only(self, t0: float, time_limit, gap) -> Solution:
        """Max coverage with conflicts in the classical form (Church & ReVelle 1974): one
        covered-variable per group of homes reached by the same new candidates (weights
        summed), at most 1 and at most the open candidates that reach it."""
        b = self.block()
        w, A, lo, hi = self._spacing_programme(b)
        n_g, n_x = len(w), len(b.new_cols)
        if n_g == 0:
            # No home a new candidate can reach: opening none is optimal (HiGHS refuses an empty model).
            x_open, status, res_bound = np.zeros(n_x, bool), "optimal", np.nan
        else:
            res = self._spacing_mip(w, A, lo, hi, n_x, time_limit, gap)
            x_open = np.round(res.x[n_g:]) > 0.5
            status, res_bound = ("optimal" if res.status == "optimal" else "feasible"), res.bound
        sites = np.union1d(self.fixed, b.new_cols[x_open])
        assignment = _nearest_open(b, b.new_cols[x_open], self.cost)
        covered = assignment >= 0
        objective = float(self.weights[covered].sum())
        done_weight = float(self.weights[b.fixed_assignment >= 0].sum())
        bound = (
            objective
            if status == "optimal" or not np.isfinite(res_bound) or self.p is None
            else max(objective, -float(res_bound) + done_weight)
        )
        return self._solution(b, sites, assignment, bound, status, t0, {"model_rows": n_g})

    def _solution(
        self, b: CoverageBlock, sites, assignment, bound: float, status: str, t0: float, info: dict
    ):
        """The answer: homes covered by the sites they are assigned to, weights summed."""
        covered = assignment >= 0
        return Solution(
            model="max-coverage" if self.p is not None else "set-cover",
            sites=sites,
            fixed_sites=self.fixed,
            assignment=assignment,
            objective=float(self.weights[covered].sum()),
            bound=bound,
            sense="max",
            solver="highs-milp",
            status=status,
            seconds=time.perf_counter() - t0,
            unreachable=b.unreachable,
            covered=covered,
            info={"blocked_by_fixed": b.blocked, **info},
            _table=self._table(sites, assignment, self.cost),
        )

    def _spacing_mip(self, w, A, lo, hi, n_x: int, time_limit, gap):
        """Solve the spacing-only programme; with no ``p``, then the fewest sites covering as much."""
        n_g = len(w)
        integer = np.r_[np.zeros(n_g), np.ones(n_x)]
        res = solve_binary(np.r_[-w, np.zeros(n_x)], A, lo, hi, time_limit, gap, integer)
        if self.p is None:
            best = float(w @ res.x[:n_g])
            A = sparse.vstack([A, sparse.csr_matrix(np.r_[w, np.zeros(n_x)][None, :])], format="csr")
            lo, hi = np.r_[lo, best - 1e-6 * max(1.0, best)], np.r_[hi, np.inf]
            res = solve_binary(np.r_[np.zeros(n_g), np.ones(n_x)], A, lo, hi, time_limit, gap, integer)
        return res

    def _spacing_programme(self, b: CoverageBlock):
        """The groups' weights and the rows over ``[covered per group, x]``: a group is
        covered only by an open candidate reaching it; conflicts; the number of sites."""
        keys, urow, g_row = _coverage_groups(b.row, b.col)
        n_g, n_x = len(keys), len(b.new_cols)
        xpos = np.full(self.cost.shape[1], -1, np.int64)
        xpos[b.new_cols] = np.arange(n_x)
        w = np.bincount(g_row, weights=self.weights[urow], minlength=n_g)
        gi = np.repeat(np.arange(n_g), [len(k) for k in keys])
        xi = xpos[np.concatenate([np.asarray(k, np.int64) for k in keys])] if n_g else np.zeros(0, np.int64)
        link = sparse.csr_matrix(
            (
                np.r_[np.ones(n_g), -np.ones(len(gi))],
                (np.r_[np.arange(n_g), gi], np.r_[np.arange(n_g), n_g + xi]),
            ),
            shape=(n_g, n_g + n_x),
        )
        blocks, lo, hi = [link], [np.full(n_g, -np.inf)], [np.zeros(n_g)]
        pairs = self.conflicts[(xpos[self.conflicts[:, 0]] >= 0) & (xpos[self.conflicts[:, 1]] >= 0)]
        if len(pairs):
            blocks.append(spacing_rows(pairs, xpos, n_g, n_g + n_x))
            lo.append(np.full(len(pairs), -np.inf))
            hi.append(np.ones(len(pairs)))
        if self.p is not None:
            blocks.append(
                sparse.csr_matrix(
                    (np.ones(n_x), (np.zeros(n_x, int), n_g + np.arange(n_x))), shape=(1, n_g + n_x)
                )
            )
            lo.append([0.0])
            hi.append([float(self.p)])
        return w, sparse.vstack(blocks, format="csr"), np.concatenate(lo), np.concatenate(hi)

    def _from_relaxation(self, time_limit: float | None, gap: float) -> Solution | None:
        """The plain max-coverage (:class:`~planner.optimize.MaxCoverage`, without spacing,
        catchment or capacity) bounds this model. When its sites keep the spacing and an
        assignment to them within the capacities and catchments covers as much, they are
        optimal here too, and the fast plain solvers did the work; else None."""
        from planner.optimize.coverage import MaxCoverage

        m = self.cost.shape[1]
        if self.p > m - len(self.fixed):
            return None
        plain = MaxCoverage.from_cost_matrix(
            self.cost,
            self.weights,
            p=self.p,
            minutes=self.minutes,
            fixed=self.fixed if len(self.fixed) else None,
        ).solve(time_limit=time_limit, gap=gap)
        is_open = np.zeros(m, bool)
        is_open[plain.sites] = True
        if len(self.conflicts) and (is_open[self.conflicts[:, 0]] & is_open[self.conflicts[:, 1]]).any():
            return None
        if self._spacing_only():
            plain._table, plain._table_fn = self._table(plain.sites, plain.assignment, self.cost), None
            return plain
        c = self.cost.tocoo()
        k = is_open[c.col]
        only = ConstrainedCoverage(
            sparse.csr_matrix((c.data[k], (c.row[k], c.col[k])), shape=c.shape),
            self.weights,
            self.loads,
            self.minutes,
            self.p,
            self.fixed,
            self.capacities,
            self.min_load,
            self.conflicts[:0],
        )
        sol = only._solve_block(only.block(), time.perf_counter(), time_limit, gap)
        if sol.objective < plain.objective - 1e-9 * max(1.0, abs(plain.objective)):
            return None
        sol.bound = max(sol.objective, plain.bound)
        sol.status = "optimal" if sol.gap <= gap else "feasible"
        sol.solver = f"{plain.solver}+highs-milp"
        sol.unreachable = self.block_unreachable()
        sol.info["from_relaxation"] = True
        return sol

    def block_unreachable(self) -> np.ndarray:
        """Demand rows no candidate reaches within ``minutes``."""
        c = self.cost.tocoo()
        reach = np.zeros(self.cost.shape[0], bool)
        reach[c.row[c.data <= 60.0 * self.minutes + 1e-9]] = True
        return np.flatnonzero(~reach)

    def _solve_block(self, b: CoverageBlock, t0: float, time_limit, gap) -> Solution:
        x_open, assign_entry, status, bound = self._milp(b, time_limit, gap)
        sites = np.union1d(self.fixed, b.new_cols[x_open])
        assignment = b.fixed_assignment.copy()
        assignment[b.row[assign_entry]] = b.col[assign_entry]
        covered = assignment >= 0
        objective = float(self.weights[covered].sum())
        done_weight = float(self.weights[b.fixed_assignment >= 0].sum())
        bound = objective if status == "optimal" else max(objective, bound + done_weight)
        return self._solution(b, sites, assignment, bound, status, t0, {"model_entries": len(b.row)})

    def _milp(self, b: CoverageBlock, time_limit, gap):
        """Solve the block with the number of sites; returns the open new columns (mask over
        ``new_cols``), the entries used, the status and the dual bound."""
        n_e, n_x = len(b.row), len(b.new_cols)
        if n_e == 0:
            return np.zeros(n_x, bool), np.zeros(0, np.int64), "optimal", 0.0
        w, A, lo, hi = b.weight, b.A, b.lo, b.hi
        obj = np.concatenate([-(w - b.tie_cost), np.zeros(n_x)])
        if self.p is None:
            # Stage 1: the most coverage with any number of sites; stage 2: the fewest sites reaching it.
            res = solve_binary(obj, A, lo, hi, time_limit, gap)
            best = float(w @ np.round(res.x[:n_e]))
            cover_row = sparse.csr_matrix(np.concatenate([w, np.zeros(n_x)])[None, :])
            A = sparse.vstack([A, cover_row])
            lo = np.append(lo, best - 1e-6 * max(1.0, best))
            hi = np.append(hi, np.inf)
            obj = np.concatenate([np.zeros(n_e), np.ones(n_x)])
        else:
            card = sparse.csr_matrix(
                (np.ones(n_x), (np.zeros(n_x, int), n_e + np.arange(n_x))), shape=(1, n_e + n_x)
            )
            A = sparse.vstack([A, card])
            lo, hi = np.append(lo, 0), np.append(hi, self.p)
        res = solve_binary(obj, A, lo, hi, time_limit, gap)
        xv = np.round(res.x)
        status = "optimal" if res.status == "optimal" else "feasible"
        bound = float(w @ xv[:n_e]) if not np.isfinite(res.bound) or self.p is None else -float(res.bound)
        return xv[n_e:] > 0.5, np.flatnonzero(xv[:n_e] > 0.5), status, bound

    def _rows(self, row, col, xpos, n_e, n_x, is_fixed):
        """Constraint rows: one site per home, links, capacities, catchments, conflicts."""
        e = np.arange(n_e)
        blocks, lo, hi = [], [], []
        # Each home at most once.
        urow, r_of = np.unique(row, return_inverse=True)
        blocks.append(sparse.csr_matrix((np.ones(n_e), (r_of, e)), shape=(len(urow), n_e + n_x)))
        lo.append(np.zeros(len(urow)))
        hi.append(np.ones(len(urow)))
        # y_e ≤ x_j for new columns.
        new_e = np.flatnonzero(xpos[col] >= 0)
        k = len(new_e)
        link = sparse.csr_matrix(
            (
                np.r_[np.ones(k), -np.ones(k)],
                (np.r_[np.arange(k), np.arange(k)], np.r_[new_e, n_e + xpos[col[new_e]]]),
            ),
            shape=(k, n_e + n_x),
        )
        blocks.append(link)
        lo.append(np.full(k, -np.inf))
        hi.append(np.zeros(k))
        # Capacity and catchment per column: Σ load·y − cap·x ≤ 0 (new), Σ load·y ≤ cap (fixed);
        # Σ load·y − min·x ≥ 0 (new).
        ucol, c_of = np.unique(col, return_inverse=True)
        load = self.loads[row]
        cap = self.capacities[ucol]
        low = self.min_load[ucol]
        xi = xpos[ucol]
        # A capacity binds only where the homes a site reaches hold more than it.
        cap_rows = np.flatnonzero(np.isfinite(cap) & (np.bincount(c_of, weights=load) > cap + 1e-9))
        if len(cap_rows):
            blocks.append(column_rows(c_of, e, load, cap_rows, xi, -cap, n_e, n_x))
            lo.append(np.full(len(cap_rows), -np.inf))
            hi.append(np.where(xi[cap_rows] >= 0, 0.0, cap[cap_rows]))
        low_rows = np.flatnonzero((low > 0) & (xi >= 0))
        if len(low_rows):
            blocks.append(column_rows(c_of, e, load, low_rows, xi, -low, n_e, n_x))
            lo.append(np.zeros(len(low_rows)))
            hi.append(np.full(len(low_rows), np.inf))
        pairs = (
            self.conflicts[(xpos[self.conflicts[:, 0]] >= 0) & (xpos[self.conflicts[:, 1]] >= 0)]
            if len(self.conflicts)
            else self.conflicts
        )
        if len(pairs):
            blocks.append(spacing_rows(pairs, xpos, n_e, n_e + n_x))
            lo.append(np.full(len(pairs), -np.inf))
            hi.append(np.ones(len(pairs)))
        return sparse.vstack(blocks, format="csr"), np.concatenate(lo), np.concatenate(hi)

    def _table(self, sites: np.ndarray, assignment: np.ndarray, cost) -> pd.DataFrame:
        return site_table(
            sites, self.fixed, assignment, cost, self.weights, self.loads, self.capacities, self.min_load
        )


def site_table(
    sites: np.ndarray,
    fixed: np.ndarray,
    assignment: np.ndarray,
    cost,
    weights: np.ndarray,
    loads: np.ndarray,
    capacities: np.ndarray,
    min_load: np.ndarray,
    loads_taken: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per open site, in the columns of :meth:`Solution.table` with ``load``,
    ``capacity`` and ``min_load``; new sites ranked by the weight they take. ``loads_taken``:
    each candidate's load when rows are shared between sites (default: from ``assignment``)."""
    rows = []
    for s in sites:
        mine = assignment == s
        t = np.asarray(cost[np.flatnonzero(mine), s].todense()).ravel() if mine.any() else np.zeros(0)
        wt = weights[mine]
        rows.append(
            {
                "site": int(s),
                "kind": "fixed" if s in fixed else "new",
                "homes": int(mine.sum()),
                "demand": float(wt.sum()),
                "demand_covered": float(wt.sum()),
                "mean_time_s": float((t * wt).sum() / wt.sum()) if wt.sum() > 0 else np.nan,
                "load": float(loads[mine].sum() if loads_taken is None else loads_taken[s]),
                "capacity": float(capacities[s]),
                "min_load": float(min_load[s]),
            }
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "site",
            "kind",
            "homes",
            "demand",
            "demand_covered",
            "mean_time_s",
            "load",
            "capacity",
            "min_load",
        ],
    )
    table["_k"] = table["kind"] == "new"
    table = table.sort_values(["_k", "demand"], ascending=[True, False]).drop(columns="_k")
    table.insert(2, "rank", np.arange(1, len(table) + 1))
    table["coverage_added"] = table["demand"]
    return table.reset_index(drop=True)


def checked_constraints(cost, weights, loads, fixed, capacities, min_load, conflicts) -> tuple:
    """The inputs of a constrained model, checked: the cost as CSR, weights, loads, fixed
    sites, capacities, minimum loads and conflict pairs (see
    :meth:`ConstrainedCoverage.from_cost_matrix`)."""
    c = sparse.csr_matrix(cost, dtype=float) if sparse.issparse(cost) else _dense_to_sparse(cost)
    n, m = c.shape
    w = np.ones(n) if weights is None else np.asarray(weights, float)
    ld = w.copy() if loads is None else np.asarray(loads, float)
    if len(w) != n or len(ld) != n:
        raise InputError(f"weights/loads: give one value per demand row ({n})")
    fx = np.unique(np.asarray([] if fixed is None else fixed, dtype=np.int64))
    cap = np.full(m, np.inf) if capacities is None else _per_column(capacities, m)
    low = np.zeros(m) if min_load is None else _per_column(min_load, m)
    pairs = (
        np.zeros((0, 2), np.int64) if conflicts is None else np.asarray(conflicts, np.int64).reshape(-1, 2)
    )
    if (cap < 0).any() or np.isnan(cap).any() or (low < 0).any() or np.isnan(low).any():
        raise InputError("capacities/min_load: give numbers ≥ 0")
    return c, w, ld, fx, cap, low, pairs


def _per_column(values, m: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(values, float), (m,)).copy()


def blocked_by_fixed(conflicts: np.ndarray, is_fixed: np.ndarray, m: int) -> np.ndarray:
    """Candidates in conflict with an open fixed site: they cannot open."""
    blocked = np.zeros(m, bool)
    for a, b in conflicts:
        if is_fixed[a] and not is_fixed[b]:
            blocked[b] = True
        elif is_fixed[b] and not is_fixed[a]:
            blocked[a] = True
    return blocked


def conflict_pairs(
    xy: np.ndarray, min_spacing_m: float | np.ndarray, fixed: np.ndarray | None = None
) -> np.ndarray:
    """Candidate pairs closer than the minimum spacing (straight-line metres), as ``(k, 2)``
    indices into ``xy``; pairs of two fixed sites are left out (both are open already)."""
    from scipy.spatial import cKDTree

    xy = np.asarray(xy, float)
    if len(xy) < 2:
        return np.zeros((0, 2), np.int64)
    spacing = np.broadcast_to(np.asarray(min_spacing_m, float), (len(xy),))
    tree = cKDTree(xy)
    pairs = (
        tree.query_pairs(r=float(spacing.max()) - 1e-9, output_type="ndarray")
        if spacing.max() > 0
        else np.zeros((0, 2), np.int64)
    )
    if len(pairs):
        d = np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T)
        pairs = pairs[d < np.maximum(spacing[pairs[:, 0]], spacing[pairs[:, 1]])]
    if fixed is not None and len(pairs):
        f = np.zeros(len(xy), bool)
        f[np.asarray(fixed, np.int64)] = True
        pairs = pairs[~(f[pairs[:, 0]] & f[pairs[:, 1]])]
    return pairs.astype(np.int64).reshape(-1, 2)


def _coverage_groups(row: np.ndarray, col: np.ndarray) -> tuple[list[tuple], np.ndarray, np.ndarray]:
    """Demand rows grouped by the candidates reaching them: the groups' candidate tuples,
    the rows with entries, and each such row's group."""
    groups: dict[tuple, int] = {}
    order = np.lexsort((col, row))
    row, col = row[order], col[order]
    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]]) if len(row) else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(row)] if len(starts) else np.zeros(0, np.int64)
    g_row = np.empty(len(starts), np.int64)
    for k, (a, e) in enumerate(zip(starts, ends, strict=True)):
        g_row[k] = groups.setdefault(tuple(col[a:e]), len(groups))
    return list(groups), row[starts], g_row


def _nearest_open(b: CoverageBlock, open_cols: np.ndarray, cost) -> np.ndarray:
    """Each row covered outright keeps its fixed site; each other row goes to its nearest
    open new site within reach (-1: none)."""
    assignment = b.fixed_assignment.copy()
    is_open = np.zeros(cost.shape[1], bool)
    is_open[open_cols] = True
    sec = np.asarray(cost[b.row, b.col]).ravel()
    use = is_open[b.col]
    near = np.lexsort((sec[use], b.row[use]))
    r, cl = b.row[use][near], b.col[use][near]
    first = np.r_[True, r[1:] != r[:-1]] if len(r) else np.zeros(0, bool)
    assignment[r[first]] = cl[first]
    return assignment


def column_rows(c_of, e, load, which, xi, coef, n_e, n_x, x_offset: int | None = None):
    """Rows Σ load·y_e (entries of each column in ``which``) + coef·x_column; the ``x``
    variables start at ``x_offset`` (default ``n_e``), of ``n_e + n_x`` variables in all."""
    x_offset = n_e if x_offset is None else x_offset
    sel = np.isin(c_of, which)
    pos = np.full(c_of.max() + 1, -1, np.int64)
    pos[which] = np.arange(len(which))
    r = pos[c_of[sel]]
    has_x = xi[which] >= 0
    xr = np.flatnonzero(has_x)
    return sparse.csr_matrix(
        (np.r_[load[sel], coef[which][has_x]], (np.r_[r, xr], np.r_[e[sel], x_offset + xi[which][has_x]])),
        shape=(len(which), n_e + n_x),
    )


def _assign_done(assignment, c, within, free_fixed, done):
    """Rows covered outright by a fixed site get their nearest such site."""
    rows = c.row[within]
    m = free_fixed[c.col[within]] & done[rows]
    if not m.any():
        return assignment
    order = np.lexsort((c.data[within][m], rows[m]))
    r, cl = rows[m][order], c.col[within][m][order]
    first = np.r_[True, r[1:] != r[:-1]]
    assignment[r[first]] = cl[first]
    return assignment


def _dense_to_sparse(cost) -> sparse.csr_matrix:
    a = np.asarray(cost, float)
    if a.ndim != 2 or np.isnan(a).any() or (a < 0).any():
        raise InputError("cost: give a 2-D matrix of travel times ≥ 0 (inf for unreachable)")
    r, c = np.nonzero(np.isfinite(a))
    return sparse.csr_matrix((a[r, c], (r, c)), shape=a.shape)


#: HiGHS options for the assignment programmes: the candidates have no symmetry worth the
#: search for it, and the optimum is usually found by the sub-MIP heuristics at the root, so
#: more effort there ends the search sooner.
MIP_OPTIONS = {"mip_detect_symmetry": False, "mip_heuristic_effort": 0.3}


def solve_binary(obj, A, lo, hi, time_limit, gap, integer=None, start=None):
    """``min obj·v`` over ``v`` in [0, 1] (binary where ``integer``, default all) with
    ``lo <= A v <= hi``, by HiGHS with :data:`MIP_OPTIONS`; no answer is an InputError."""
    from planner.optimize._highs import solve_milp

    a = sparse.coo_matrix(A)
    n = len(obj)
    res = solve_milp(
        np.asarray(obj, float),
        a.row,
        a.col,
        a.data,
        np.asarray(lo, float),
        np.asarray(hi, float),
        np.zeros(n),
        np.ones(n),
        np.ones(n, np.int32) if integer is None else np.asarray(integer, np.int32),
        time_limit=time_limit,
        gap=gap,
        start=start,
        options=MIP_OPTIONS,
    )
    if res.x is None:
        raise InputError(
            "constrained siting: HiGHS found no solution; loosen the constraints or give a longer "
            "--time-limit"
        )
    return res


def spacing_rows(pairs: np.ndarray, xpos: np.ndarray, offset: int, n_cols: int) -> sparse.csr_matrix:
    """One row ``x_a + x_b <= 1`` per conflicting pair of sites (closer than the spacing);
    ``xpos`` maps a site to its column among the ``x`` variables, which start at ``offset``."""
    q = len(pairs)
    rows = np.r_[np.arange(q), np.arange(q)]
    cols = offset + np.r_[xpos[pairs[:, 0]], xpos[pairs[:, 1]]]
    return sparse.csr_matrix((np.ones(2 * q), (rows, cols)), shape=(q, n_cols))
