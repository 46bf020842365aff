"""p-median and p-center with a planner's constraints: minimum spacing, minimum catchment,
capacities.

The same constraints as :class:`~planner.optimize.constrained.ConstrainedCoverage`, on the
models that judge travel time rather than coverage:

- :class:`ConstrainedPMedian` minimises the total weighted travel time;
- :class:`ConstrainedPCenter` minimises the worst travel time, then (among the answers that
  reach it) the total weighted time.

A demand row (the homes at one network node, or a compound) may be shared between open
sites, its residents split by the capacities; ``assignment`` names the site taking the largest
share and the site table counts the loads as shared. A row, or the part of it, left without a
site (every site it reaches full, or none allowed to take it) counts ``penalty_s`` seconds, so
the model always has an answer and prefers serving every row it can. A row goes to a new site
only when that site is nearer than its nearest existing site without a capacity limit:
nobody walks past an open facility with room to a new one, and a new site's catchment is made
of homes it is actually nearest to. The programmes are solved by HiGHS, started from the
answer with no new site; only the sites are integer variables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from planner._errors import InputError
from planner.optimize._highs import solve_milp
from planner.optimize.constrained import (
    MIP_OPTIONS,
    blocked_by_fixed,
    checked_constraints,
    column_rows,
    site_table,
    spacing_rows,
)
from planner.optimize.solution import Solution


@dataclass
class _Programme:
    """Entries ``y`` (``row``, ``col``, ``sec``), then one ``u`` per served row (left
    without a site), then one ``x`` per new column; constraint triplets and bounds."""

    row: np.ndarray
    col: np.ndarray
    sec: np.ndarray
    rows_used: np.ndarray
    new_cols: np.ndarray
    A: sparse.csr_matrix
    lo: np.ndarray
    hi: np.ndarray
    unreachable: np.ndarray
    blocked: int

    @property
    def n_var(self) -> int:
        return len(self.row) + len(self.rows_used) + len(self.new_cols)


class ConstrainedPMedian:
    """p-median with spacing, minimum catchment and capacities (see module doc).

    Build with :meth:`from_cost_matrix`, then :meth:`solve`.
    """

    name = "p-median"

    def __init__(self, cost, weights, loads, p, fixed, capacities, min_load, conflicts, penalty_s):
        self.cost, self.weights, self.loads = cost, weights, loads
        self.p, self.fixed = p, fixed
        self.capacities, self.min_load, self.conflicts = capacities, min_load, conflicts
        self.penalty_s = penalty_s

    @classmethod
    def from_cost_matrix(
        cls,
        cost: Any,
        weights: Any = None,
        *,
        p: int,
        fixed: Any = None,
        loads: Any = None,
        capacities: Any = None,
        min_load: Any = None,
        conflicts: Any = None,
        penalty_s: float | None = None,
    ):
        """Build the model.

        Parameters
        ----------
        cost : array or scipy.sparse matrix
            Demand × candidate travel times in seconds (sparse: a missing entry is unreachable).
        weights : array, optional
            Objective weight per demand row (default 1).
        p : int
            At most this many NEW sites.
        fixed, loads, capacities, min_load, conflicts
            As for :meth:`planner.optimize.constrained.ConstrainedCoverage.from_cost_matrix`.
        penalty_s : float, optional
            Seconds counted for a row left without a site; default twice the longest time
            in ``cost``.
        """
        c, w, ld, fx, cap, low, pairs = checked_constraints(
            cost, weights, loads, fixed, capacities, min_load, conflicts
        )
        if p is None or int(p) != p or p < 0:
            raise InputError(f"p {p}: give a whole number of new sites ≥ 0")
        longest = float(c.data.max()) if c.nnz else 0.0
        penalty = 2.0 * longest + 1.0 if penalty_s is None else float(penalty_s)
        if not np.isfinite(penalty) or penalty < longest:
            raise InputError(f"penalty_s {penalty_s}: give seconds at least the longest time ({longest:g})")
        return cls(c, w, ld, int(p), fx, cap, low, pairs, penalty)

    def programme(self, max_s: float = np.inf) -> _Programme:
        """The constraints over ``[y, u, x]``, with the entries within ``max_s`` seconds."""
        n, m = self.cost.shape
        c = self.cost.tocoo()
        is_fixed = np.zeros(m, bool)
        is_fixed[self.fixed] = True
        free = is_fixed & ~np.isfinite(self.capacities)
        blocked = blocked_by_fixed(self.conflicts, is_fixed, m)
        row, col, sec = _useful_entries(c, free, blocked, n)
        within = sec <= max_s
        # A new candidate whose rows hold less than its minimum catchment never opens.
        reach_load = np.bincount(col[within], weights=self.loads[row[within]], minlength=m)
        starved = ~is_fixed & (self.min_load > 0) & (reach_load < self.min_load - 1e-9)
        use = within & ~starved[col]
        # A row reached only by such candidates stays in the model, left without a site.
        rows_used = np.unique(row[within])
        row, col, sec = row[use], col[use], sec[use]
        reach = np.zeros(n, bool)
        reach[rows_used] = True
        new_cols = np.unique(col[~is_fixed[col]])
        xpos = np.full(m, -1, np.int64)
        xpos[new_cols] = np.arange(len(new_cols))
        n_e, n_u, n_x = len(row), len(rows_used), len(new_cols)
        n_var = n_e + n_u + n_x
        r_of = np.searchsorted(rows_used, row)
        e = np.arange(n_e)
        # Each served row: its entries and its "no site" variable add up to one.
        blocks = [
            sparse.csr_matrix(
                (np.ones(n_e + n_u), (np.r_[r_of, np.arange(n_u)], np.r_[e, n_e + np.arange(n_u)])),
                shape=(n_u, n_var),
            )
        ]
        lo, hi = [np.ones(n_u)], [np.ones(n_u)]
        # y_e ≤ x_j for the entries of new columns.
        new_e = np.flatnonzero(xpos[col] >= 0)
        k = len(new_e)
        blocks.append(
            sparse.csr_matrix(
                (
                    np.r_[np.ones(k), -np.ones(k)],
                    (np.r_[np.arange(k), np.arange(k)], np.r_[new_e, n_e + n_u + xpos[col[new_e]]]),
                ),
                shape=(k, n_var),
            )
        )
        lo.append(np.full(k, -np.inf))
        hi.append(np.zeros(k))
        self._load_rows(row, col, xpos, n_e + n_u, n_var, blocks, lo, hi)
        pairs = self.conflicts[(xpos[self.conflicts[:, 0]] >= 0) & (xpos[self.conflicts[:, 1]] >= 0)]
        if len(pairs):
            blocks.append(spacing_rows(pairs, xpos, n_e + n_u, n_var))
            lo.append(np.full(len(pairs), -np.inf))
            hi.append(np.ones(len(pairs)))
        x_cols = n_e + n_u + np.arange(n_x)
        blocks.append(sparse.csr_matrix((np.ones(n_x), (np.zeros(n_x, int), x_cols)), shape=(1, n_var)))
        lo.append([0.0])
        hi.append([float(self.p)])
        return _Programme(
            row=row,
            col=col,
            sec=sec,
            rows_used=rows_used,
            new_cols=new_cols,
            A=sparse.vstack(blocks, format="csr"),
            lo=np.concatenate(lo),
            hi=np.concatenate(hi),
            unreachable=np.flatnonzero(~reach),
            blocked=int(blocked.sum()),
        )

    def _load_rows(self, row, col, xpos, x_offset, n_var, blocks, lo, hi) -> None:
        """Capacity rows (Σ load·y ≤ cap·x new, ≤ cap fixed) and catchment rows
        (Σ load·y ≥ min·x, new)."""
        ucol, c_of = np.unique(col, return_inverse=True)
        load = self.loads[row]
        cap, low, xi = self.capacities[ucol], self.min_load[ucol], xpos[ucol]
        e = np.arange(len(row))
        for which, coef, is_cap in (
            (np.flatnonzero(np.isfinite(cap)), -cap, True),
            (np.flatnonzero((low > 0) & (xi >= 0)), -low, False),
        ):
            if not len(which):
                continue
            rows = column_rows(c_of, e, load, which, xi, coef, len(row), n_var - len(row), x_offset=x_offset)
            blocks.append(rows)
            if is_cap:
                lo.append(np.full(len(which), -np.inf))
                hi.append(np.where(xi[which] >= 0, 0.0, cap[which]))
            else:
                lo.append(np.zeros(len(which)))
                hi.append(np.full(len(which), np.inf))

    def _start(self, b: _Programme, n_var: int) -> np.ndarray:
        """The answer with no new site: each row at its nearest existing site without a
        limit (the only fixed entry kept for it), else left without a site."""
        start = np.zeros(n_var)
        n_e, n_u = len(b.row), len(b.rows_used)
        fixed_e = np.flatnonzero(np.isin(b.col, self.fixed) & ~np.isfinite(self.capacities[b.col]))
        start[fixed_e] = 1.0
        has = np.zeros(n_u, bool)
        has[np.searchsorted(b.rows_used, b.row[fixed_e])] = True
        start[n_e + np.flatnonzero(~has)] = 1.0
        return start

    def _objective(self, b: _Programme, n_var: int) -> np.ndarray:
        w = self.weights
        obj = np.zeros(n_var)
        obj[: len(b.row)] = w[b.row] * b.sec
        obj[len(b.row) : len(b.row) + len(b.rows_used)] = w[b.rows_used] * self.penalty_s
        return obj

    def solve(self, time_limit: float | None = None, gap: float = 1e-4) -> Solution:
        """Solve with HiGHS; ``objective``: total weighted seconds (rows without a site at
        ``penalty_s``), ``bound``: HiGHS's dual bound."""
        t0 = time.perf_counter()
        b = self.programme()
        res = _run(b, self._objective(b, b.n_var), self._start(b, b.n_var), time_limit, gap)
        return self._solution(b, res.x, res.status, res.bound, "p-median", t0)

    def _solution(self, b: _Programme, xv, status, bound, model, t0) -> Solution:
        n_e, n_u = len(b.row), len(b.rows_used)
        y = np.clip(xv[:n_e], 0.0, 1.0)
        y[y < 1e-7] = 0.0
        x_open = np.round(xv[n_e + n_u : n_e + n_u + len(b.new_cols)]) > 0.5
        # Each row's site: the one taking the largest share of it (the nearest among equals).
        order = np.lexsort((b.sec, -y, b.row))
        first = order[np.r_[True, b.row[order][1:] != b.row[order][:-1]]] if n_e else order
        first = first[y[first] > 0]
        assignment = np.full(self.cost.shape[0], -1, np.int64)
        assignment[b.row[first]] = b.col[first]
        sites = np.union1d(self.fixed, b.new_cols[x_open])
        objective = self._value(b, y, model)
        share = np.bincount(b.row, weights=y, minlength=self.cost.shape[0])
        ok = status == "optimal"
        return Solution(
            model=model,
            sites=sites,
            fixed_sites=self.fixed,
            assignment=assignment,
            objective=objective,
            bound=objective if ok or not np.isfinite(bound) else min(objective, bound),
            sense="min",
            solver="highs-milp",
            status="optimal" if ok else "feasible",
            seconds=time.perf_counter() - t0,
            unreachable=b.unreachable,
            covered=assignment >= 0,
            info={
                "blocked_by_fixed": b.blocked,
                "model_entries": n_e,
                "penalty_s": self.penalty_s,
                "total_weighted_s": self._value(b, y, "p-median"),
                "worst_s": float(b.sec[y > 0].max()) if (y > 0).any() else 0.0,
                "rows_left": int((share[b.rows_used] < 1 - 1e-7).sum()),
                "rows_split": int((np.bincount(b.row[y > 0], minlength=self.cost.shape[0]) > 1).sum()),
            },
            _table=site_table(
                sites,
                self.fixed,
                assignment,
                self.cost,
                self.weights,
                self.loads,
                self.capacities,
                self.min_load,
                loads_taken=self.site_loads(b, y),
            ),
        )

    def _value(self, b: _Programme, y: np.ndarray, model: str) -> float:
        """The objective of the shares ``y``: total weighted seconds, or the worst time."""
        share = np.bincount(b.row, weights=y, minlength=self.cost.shape[0])[b.rows_used]
        left = np.clip(1.0 - share, 0.0, 1.0)
        left[left < 1e-7] = 0.0
        if model == "p-center":
            worst = b.sec[y > 0].max() if (y > 0).any() else 0.0
            return float(max(worst, self.penalty_s if (left > 0).any() else 0.0))
        w = self.weights
        return float((w[b.row] * b.sec * y).sum() + (w[b.rows_used] * left).sum() * self.penalty_s)

    def site_loads(self, b: _Programme, y: np.ndarray) -> np.ndarray:
        """The load each candidate takes from the shares ``y``."""
        return np.bincount(b.col, weights=self.loads[b.row] * y, minlength=self.cost.shape[1])


class ConstrainedPCenter(ConstrainedPMedian):
    """p-center with spacing, minimum catchment and capacities (see module doc): the least
    worst time of a served row, then the least total weighted time at that worst time. When
    the constraints leave some row without a site whatever the sites, the worst time is
    ``penalty_s`` and the answer is the p-median's."""

    name = "p-center"

    def solve(self, time_limit: float | None = None, gap: float = 1e-4) -> Solution:
        """The least threshold at which every served row can be served, then the least total
        time at it: a bisection over the matrix's times, each threshold decided by
        :class:`_ServeAllSearch`, then a HiGHS run for the least total time within the
        threshold found, started from the search's answer there. With ``time_limit`` a
        search that neither finds an answer nor proves there is none in its share of the
        time leaves its threshold undecided: the answer is then "feasible", its bound the
        largest threshold proven too short."""
        t0 = time.perf_counter()
        full = self.programme()
        if not len(full.row):
            return self._solution(full, np.zeros(full.n_var), "optimal", 0.0, "p-center", t0)
        # No threshold below the time of a row's nearest usable site can serve it.
        first = np.full(self.cost.shape[0], np.inf)
        np.minimum.at(first, full.row, full.sec)
        times = np.unique(full.sec)
        sure = not np.isfinite(first[full.rows_used]).all() or not self._room_for_all(full)
        n_rows = len(full.rows_used)
        top, none = (None, True) if sure else self._serve_all(times[-1], n_rows, _share(time_limit, t0, 3))
        if top is None:
            # Not every row can be served (or no answer serving all was found in time): the
            # p-median's answer, at the penalty.
            median = ConstrainedPMedian.solve(self, _share(time_limit, t0, 1), gap)
            median.model, median.objective, median.bound = "p-center", self.penalty_s, self.penalty_s
            if not none:
                median.bound = float(np.nanmin([first[full.rows_used].max(), self.penalty_s]))
                median.status = "feasible"
            return median
        high, bound, seed = self._bisect(full, times, first, (len(times) - 1, top), time_limit, t0)
        b = self.programme(max_s=times[high])
        res = _run(b, self._objective(b, b.n_var), seed, _share(time_limit, t0, 1), gap, serve_all=True)
        proven = bound >= times[high] - 1e-9
        sol = self._solution(b, res.x, "optimal" if proven else "feasible", bound, "p-center", t0)
        sol.unreachable = full.unreachable
        sol.info["lower_bound_s"] = float(bound)
        return sol

    def _bisect(self, full: _Programme, times, first, top: tuple, time_limit, t0) -> tuple:
        """Bisection between the largest nearest-site time of a row and ``top`` (an index of
        ``times`` known to serve every row, and its answer): the smallest threshold found to
        serve every row, the largest lower bound proven (seconds), and the answer found there."""
        low = int(np.searchsorted(times, first[full.rows_used].max() - 1e-9))
        bound = float(times[low])
        n_rows = len(full.rows_used)
        high, seed = top
        steps = max(int(np.ceil(np.log2(max(high - low + 1, 2)))), 1) + 1  # and the final run
        while low < high:
            mid = (low + high) // 2
            found, proven_none = self._serve_all(times[mid], n_rows, _share(time_limit, t0, steps))
            steps = max(steps - 1, 1)
            if found is not None:
                high, seed = mid, found
            else:
                low = mid + 1
                if proven_none:
                    bound = max(bound, float(times[mid + 1]))
        return high, bound, seed

    def _room_for_all(self, b: _Programme) -> bool:
        """Whether the fixed sites and the ``p`` largest new ones could hold every served row
        (a quick necessary test before any run)."""
        is_fixed = np.isin(b.col, self.fixed)
        if (is_fixed & ~np.isfinite(self.capacities[b.col])).any():
            return True  # a site without a limit may take any row it reaches
        caps = np.sort(self.capacities[b.new_cols])[::-1][: self.p]
        room = caps.sum() + self.capacities[np.unique(b.col[is_fixed])].sum()
        return bool(room >= self.loads[b.rows_used].sum() - 1e-9)

    def _serve_all(self, max_s: float, n_rows: int, time_limit) -> tuple:
        """An answer serving each of the ``n_rows`` served rows within ``max_s`` seconds (or
        None), and whether none is proven to exist."""
        b = self.programme(max_s=max_s)
        if len(b.rows_used) < n_rows or not np.isin(b.rows_used, b.row).all():
            return None, True
        deadline = np.inf if time_limit is None else time.perf_counter() + time_limit
        try:
            x = _ServeAllSearch(self, b, deadline).run()
        except _Undecided:
            return None, False
        return (None, True) if x is None else (x, False)


class _Undecided(Exception):
    """The time allowed for a threshold check ran out."""


class _ServeAllSearch:
    """Whether some ``p`` new sites serve every served row of a programme built within one
    threshold: a depth-first search that branches on the uncovered row with the fewest
    candidates left (each branch opens one of them, the earlier ones closed), as p-center
    searches do, and prunes by rows no two of which share a candidate (each needs a site of
    its own) and by capacity. Once the sites cover every row, a linear programme splits the
    rows among them (capacities, minimum catchments); when it cannot, a further site is
    opened in turn, up to ``p``. Every site set that could serve is reached, so the search
    is exact."""

    def __init__(self, model: ConstrainedPMedian, b: _Programme, deadline: float):
        self.model, self.b, self.p, self.deadline = model, b, model.p, deadline
        n_u, n_x = len(b.rows_used), len(b.new_cols)
        m = model.cost.shape[1]
        self.xpos = xpos = np.full(m, -1, np.int64)
        xpos[b.new_cols] = np.arange(n_x)
        self.r_of = r_of = np.searchsorted(b.rows_used, b.row)
        new_e = xpos[b.col] >= 0
        # reach[r, k]: row r may use new site k; rows an existing site may take are covered.
        self.reach = sparse.csr_matrix(
            (np.ones(int(new_e.sum()), bool), (r_of[new_e], xpos[b.col[new_e]])), shape=(n_u, n_x)
        )
        self.reach.sum_duplicates()
        self.by_fixed = np.zeros(n_u, bool)
        self.by_fixed[r_of[~new_e]] = True
        self.conflict = np.zeros((n_x, n_x), bool)
        pairs = model.conflicts[(xpos[model.conflicts[:, 0]] >= 0) & (xpos[model.conflicts[:, 1]] >= 0)]
        self.conflict[xpos[pairs[:, 0]], xpos[pairs[:, 1]]] = True
        self.conflict |= self.conflict.T
        # Capacity: rows without an existing site of unlimited room need room somewhere.
        free = np.isin(b.col, model.fixed) & ~np.isfinite(model.capacities[b.col])
        unlimited = np.zeros(n_u, bool)
        unlimited[r_of[free]] = True
        self.need = float(model.loads[b.rows_used][~unlimited].sum())
        self.room_fixed = float(model.capacities[np.unique(b.col[~new_e])].sum())
        self.cap = model.capacities[b.new_cols]
        self.found: np.ndarray | None = None

    def run(self) -> np.ndarray | None:
        """The programme's answer (shares ``y``, ``u`` = 0, sites ``x``), or None when there
        is none; raises :class:`_Undecided` past the deadline."""
        n_x = len(self.b.new_cols)
        self._node(np.zeros(n_x, bool), np.ones(n_x, bool))
        return self.found

    def _node(self, chosen: np.ndarray, allowed: np.ndarray) -> bool:
        if time.perf_counter() > self.deadline:
            raise _Undecided
        left = self.p - int(chosen.sum())
        room = np.sort(self.cap[allowed])[::-1][: max(left, 0)].sum() + self.cap[chosen].sum()
        if room + self.room_fixed < self.need - 1e-9:
            return False
        uncovered = np.flatnonzero(~(self.by_fixed | (self.reach @ chosen)))
        if len(uncovered):
            options = self.reach[uncovered] @ allowed.astype(np.int64)
            if left <= 0 or options.min() == 0 or self._packing(uncovered, options, allowed) > left:
                return False
            r = uncovered[np.argmin(options)]
            opts = self.reach.indices[self.reach.indptr[r] : self.reach.indptr[r + 1]]
        else:
            if self._split(chosen):
                return True
            if left <= 0 or not self._split(chosen, allowed, left):
                return False
            opts = np.flatnonzero(allowed)
        rest = allowed.copy()
        for k in opts[allowed[opts]]:
            rest[k] = False
            if self._node(_with(chosen, k), rest & ~self.conflict[k]):
                return True
        return False

    def _packing(self, uncovered: np.ndarray, options: np.ndarray, allowed: np.ndarray) -> int:
        """How many uncovered rows, taken greedily fewest options first, share no candidate."""
        used = np.zeros(len(allowed), bool)
        count = 0
        for r in uncovered[np.argsort(options, kind="stable")]:
            opts = self.reach.indices[self.reach.indptr[r] : self.reach.indptr[r + 1]]
            opts = opts[allowed[opts]]
            if not used[opts].any():
                used[opts] = True
                count += 1
        return count

    def _split(self, chosen: np.ndarray, allowed: np.ndarray | None = None, left: int = 0) -> bool:
        """Whether the existing sites and the ``chosen`` new ones serve every row (a linear
        programme over their entries); if so the answer is kept in ``found``. With
        ``allowed``: whether they could with up to ``left`` of the ``allowed`` sites opened
        in part (a relaxation: capacity and catchment in proportion to the part opened)."""
        b, model = self.b, self.model
        # Existing sites index one slot past the new ones (never chosen, never allowed), so
        # the lookups hold when no new candidate is in reach at all.
        n_x = len(chosen)
        k_of = self.xpos[b.col]
        k = np.where(k_of < 0, n_x, k_of)
        chosen_x = np.r_[chosen, False]
        is_open = (k_of < 0) | chosen_x[k]
        use = np.flatnonzero(is_open | np.r_[allowed, False][k] if allowed is not None else is_open)
        col, load = b.col[use], model.loads[b.row[use]]
        n_u, n_y = len(b.rows_used), len(use)
        ucol, c_of = np.unique(col, return_inverse=True)
        k_u = self.xpos[ucol]
        shut = (k_u >= 0) & ~chosen_x[np.where(k_u < 0, n_x, k_u)]
        n_a = int(shut.sum())
        a_of = np.cumsum(shut) - 1
        cap = np.minimum(model.capacities[ucol], float(model.loads[b.rows_used].sum()))
        low = np.where(k_u >= 0, model.min_load[ucol], 0.0)
        rows, cols, vals = [self.r_of[use]], [np.arange(n_y)], [np.ones(n_y)]
        lo, hi = [np.ones(n_u)], [np.ones(n_u)]
        n_row = n_u
        capped = np.isfinite(model.capacities[ucol]) | shut
        for which, limit, is_cap in ((capped, cap, True), (low > 0, low, False)):
            row_of = n_row + np.cumsum(which) - 1
            on = which[c_of]
            part = np.flatnonzero(which & shut)
            rows += [row_of[c_of[on]], row_of[part]]
            cols += [np.flatnonzero(on), n_y + a_of[part]]
            vals += [load[on], -limit[part]]
            given = np.where(shut[which], 0.0, limit[which])
            lo.append(np.full(len(given), -np.inf) if is_cap else given)
            hi.append(given if is_cap else np.full(len(given), np.inf))
            n_row += len(given)
        if n_a:
            rows.append(np.full(n_a, n_row))
            cols.append(n_y + np.arange(n_a))
            vals.append(np.ones(n_a))
            lo.append([-np.inf])
            hi.append([float(left)])
        n = n_y + n_a
        res = solve_milp(
            np.zeros(n),
            *(np.concatenate(v) for v in (rows, cols, vals, lo, hi)),
            np.zeros(n),
            np.ones(n),
            np.zeros(n, np.int32),
            time_limit=max(self.deadline - time.perf_counter(), 0.01) if np.isfinite(self.deadline) else None,
        )
        if res.status == "time limit":
            raise _Undecided
        if res.x is None:
            return False
        if allowed is None:
            found = np.zeros(b.n_var)
            found[use] = np.clip(res.x, 0.0, 1.0)
            found[len(b.row) + len(b.rows_used) + np.flatnonzero(chosen)] = 1.0
            self.found = found
        return True


def _with(mask: np.ndarray, k: int) -> np.ndarray:
    out = mask.copy()
    out[k] = True
    return out


def _share(time_limit: float | None, t0: float, parts: int) -> float | None:
    """The time left of ``time_limit`` (from ``t0``) shared among ``parts`` runs."""
    if time_limit is None:
        return None
    return max((time_limit - (time.perf_counter() - t0)) / max(parts, 1), 0.05)


def _useful_entries(c: sparse.coo_matrix, free: np.ndarray, blocked: np.ndarray, n: int):
    """The entries a row may use: its nearest existing site without a limit, and the other
    sites (not blocked) nearer than it."""
    keep = ~blocked[c.col]
    row, col, sec = c.row[keep], c.col[keep], c.data[keep]
    nearest_free = np.full(n, np.inf)
    is_free = free[col]
    np.minimum.at(nearest_free, row[is_free], sec[is_free])
    order = np.lexsort((col, sec, row))
    row, col, sec = row[order], col[order], sec[order]
    # One free entry per row (the nearest: ties to the lowest column), and the rest nearer.
    first_free = is_free[order] & (sec == nearest_free[row])
    seen = np.zeros(n, bool)
    keep_free = np.zeros(len(row), bool)
    for i in np.flatnonzero(first_free):
        if not seen[row[i]]:
            seen[row[i]] = keep_free[i] = True
    use = keep_free | (~is_free[order] & (sec < nearest_free[row]))
    return row[use], col[use], sec[use]


def _run(b: _Programme, obj, start, time_limit, gap, serve_all: bool = False, strict: bool = True):
    """Solve over ``[y, u, x]``: shares ``y`` and ``u`` continuous, ``x`` binary;
    ``serve_all``: no row left without a site (u = 0). ``strict``: no answer is an error,
    else the result has ``x`` None."""
    n = len(obj)
    n_e, n_u = len(b.row), len(b.rows_used)
    integer = np.zeros(n, dtype=np.int32)
    integer[n_e + n_u :] = 1
    upper = np.ones(n)
    if serve_all:
        upper[n_e : n_e + n_u] = 0.0
    a = b.A.tocsc()
    res = solve_milp(
        obj,
        *_triplets(a),
        b.lo,
        b.hi,
        np.zeros(n),
        upper,
        integer,
        time_limit=time_limit,
        gap=gap,
        start=start,
        options=MIP_OPTIONS,
    )
    if res.x is None and strict:
        raise InputError(
            "constrained siting: HiGHS found no answer; loosen the constraints or give a longer --time-limit"
        )
    return res


def _triplets(a: sparse.csc_matrix):
    c = a.tocoo()
    return c.row, c.col, c.data
