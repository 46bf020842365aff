"""What every location model shares: construction checks, ``solve``, the report."""

from __future__ import annotations

import functools
import time
from typing import ClassVar, Literal

import numpy as np
import pandas as pd

from planner._errors import InfeasibleError, InputError
from planner.optimize import _tuning
from planner.optimize._arrays import csc_order, first_open
from planner.optimize._deadline import seconds_left
from planner.optimize.covering import min_new_to_cover, within_text
from planner.optimize.instance import Instance
from planner.optimize.solution import Answer, Solution

Method = Literal["auto", "exact", "heuristic"]


def median_costs(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
    """(W, P) of the p-median in the interchange's form: weighted travel time of every
    entry, and for a reachable home left unserved a cost above any assignment's."""
    W = inst.weights[inst.row] * inst.cost_s
    row_max = np.zeros(inst.n)
    np.maximum.at(row_max, inst.row, W)
    big = float(row_max.sum()) + 1.0
    return W, np.where(inst.coverable, big, 0.0)


class LocationModel:
    """Shared construction, checks and reporting; subclasses define the solvers."""

    name: ClassVar[str] = ""
    sense: ClassVar[str] = "min"

    def __init__(self, instance: Instance, p: int | None):
        self._inst = instance
        self._is_core = False  # already reduced (coverage models): solve as it is
        if p is not None:
            if isinstance(p, bool) or not float(p).is_integer() or p < 0:
                raise InputError(f"p: expected a non-negative whole number of new sites, got {p!r}")
            p = int(p)
            free = instance.m - len(instance.fixed)
            if p > free:
                raise InputError(f"p={p} exceeds the {free} candidates that are not already open (fixed)")
        self.p = p

    # -- public ----------------------------------------------------------------------------
    @property
    def unreachable(self) -> np.ndarray:
        """Demand rows that no candidate reaches (within ``minutes`` when given)."""
        return np.flatnonzero(~self._inst.coverable)

    @property
    def instance(self) -> Instance:
        """The validated sparse instance the solvers work on (read it, do not change it)."""
        return self._inst

    @property
    def n_demand(self) -> int:
        return self._inst.n

    @property
    def n_candidates(self) -> int:
        return self._inst.m

    @property
    def fixed(self) -> np.ndarray:
        """Fixed (already open) candidate indices."""
        return self._inst.fixed.copy()

    def solve(
        self,
        method: Method = "auto",
        time_limit: float | None = None,
        gap: float = 1e-4,
    ) -> Solution:
        """Solve the model.

        Parameters
        ----------
        method : {"auto", "exact", "heuristic"}
            ``"exact"``: HiGHS MIP. ``"heuristic"``: greedy + fast vertex substitution with a
            Lagrangian bound. ``"auto"``: the heuristic, then HiGHS (warm-started) when the
            gap is above ``gap`` and the matrix has at most ``EXACT_MAX_ENTRIES`` entries.
        time_limit : float, optional
            Seconds; on expiry the best solution so far is returned with its proven bound.
        gap : float
            Relative optimality tolerance; 0 asks for a proven optimum.

        Returns
        -------
        Solution
        """
        if method not in ("auto", "exact", "heuristic"):
            raise InputError(f"method: expected 'auto', 'exact' or 'heuristic', got {method!r}")
        if time_limit is not None and not time_limit > 0:
            raise InputError(f"time_limit: expected a positive number of seconds, got {time_limit!r}")
        t0 = time.perf_counter()
        deadline = None if time_limit is None else t0 + float(time_limit)
        self._check_feasible()
        raw = self._solve(method, deadline, float(gap))
        return self._finish(raw, t0, float(gap))

    # -- to override -----------------------------------------------------------------------
    def _check_feasible(self) -> None:
        pass

    def _solve(self, method: str, deadline: float | None, gap: float) -> Answer:
        raise NotImplementedError

    def _entry_costs(self) -> tuple[np.ndarray, np.ndarray]:
        """(W, P) of the engine/rank form: weighted entry costs and cost of leaving a row out."""
        raise NotImplementedError

    def _objective_of(self, sites: np.ndarray, assignment: np.ndarray) -> float:
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------
    def _size(self) -> int:
        return self._inst.nnz

    def _auto_exact(self) -> bool:
        limit = (
            _tuning.EXACT_MAX_ENTRIES
            if self._inst.capacities is None
            else _tuning.EXACT_MAX_ENTRIES_CAPACITATED
        )
        return self._size() <= limit

    def _nearest_assignment(self, sites: np.ndarray) -> np.ndarray:
        is_open = np.zeros(self._inst.m, dtype=bool)
        is_open[sites] = True
        nearest, _ = first_open(self._inst, is_open)
        return nearest

    def _finish(self, raw: Answer, t0: float, gap: float) -> Solution:
        inst = self._inst
        sites = np.unique(np.concatenate([inst.fixed, np.asarray(raw.sites, dtype=np.int64)]))
        assignment = raw.assignment
        if assignment is None:
            assignment = self._nearest_assignment(sites)
        objective = self._objective_of(sites, assignment) if raw.objective is None else raw.objective
        bound = min(raw.bound, objective) if self.sense == "min" else max(raw.bound, objective)
        covered = self._covered(assignment)
        solution = Solution(
            model=self.name,
            sites=sites,
            fixed_sites=inst.fixed.copy(),
            assignment=assignment,
            objective=float(objective),
            bound=float(bound),
            sense=self.sense,
            solver=raw.solver,
            status="",
            seconds=0.0,
            unreachable=self.unreachable,
            covered=covered,
        )
        solution.status = raw.status or ("optimal" if solution.gap <= gap + 1e-12 else "feasible")
        solution.info = dict(raw.info or {})
        solution.group_shares, shortfall = self._group_report(covered)
        if shortfall:
            solution.shortfall = shortfall
            solution.status = "min_share not met"
        solution._table_fn = functools.partial(self._site_table, sites, assignment, covered)
        solution.seconds = time.perf_counter() - t0
        return solution

    def _assigned_cost(self, assignment: np.ndarray) -> np.ndarray:
        """Travel time of each row to its assigned site (NaN when unassigned)."""
        inst = self._inst
        out = np.full(inst.n, np.nan)
        has = assignment >= 0
        if has.any():
            key = inst.row * inst.m + inst.col
            order = np.argsort(key)
            want = np.flatnonzero(has) * inst.m + assignment[has]
            pos = order[np.searchsorted(key[order], want)]
            out[has] = inst.cost_s[pos]
        return out

    def _covered(self, assignment: np.ndarray) -> np.ndarray:
        return assignment >= 0

    def _group_report(self, covered: np.ndarray) -> tuple[pd.DataFrame | None, dict | None]:
        inst = self._inst
        if inst.group_codes is None:
            return None, None
        codes, w = inst.group_codes, inst.weights
        k = len(inst.group_labels)
        ok = codes >= 0
        total = np.bincount(codes[ok], weights=w[ok], minlength=k)
        cov = np.bincount(codes[ok & covered], weights=w[ok & covered], minlength=k)
        share = np.divide(cov, total, out=np.full(k, np.nan), where=total > 0)
        table = pd.DataFrame(
            {
                "group": inst.group_labels,
                "weight": total,
                "weight_covered": cov,
                "share": share,
                "min_share": inst.group_share,
            }
        )
        short = {
            inst.group_labels[g]: float(inst.group_share[g] - share[g])
            for g in range(k)
            if not np.isnan(inst.group_share[g]) and total[g] > 0 and share[g] < inst.group_share[g] - 1e-9
        }
        return table, short or None

    def _site_table(self, sites: np.ndarray, assignment: np.ndarray, covered: np.ndarray) -> pd.DataFrame:
        inst = self._inst
        W, P = self._entry_costs()
        order, ptr = csc_order(inst)
        # Rank: fixed sites first, then new ones, each time the site that most reduces the
        # model's objective (in its engine form) given those already ranked.
        current = P.copy()
        reach = np.zeros(inst.n, dtype=bool)
        ranked: list[int] = []
        added: list[float] = []
        for group in (inst.fixed, np.setdiff1d(sites, inst.fixed)):
            left = list(group)
            while left:
                best_j, best_gain = left[0], -np.inf
                for j in left:  # loops over sites, never over demand rows
                    e = order[ptr[j] : ptr[j + 1]]
                    g = float(np.maximum(current[inst.row[e]] - W[e], 0.0).sum())
                    if g > best_gain:
                        best_j, best_gain = j, g
                e = order[ptr[best_j] : ptr[best_j + 1]]
                rows = inst.row[e]
                np.minimum.at(current, rows, W[e])
                new = rows[~reach[rows]]
                added.append(float(inst.weights[new].sum()))
                reach[rows] = True
                ranked.append(best_j)
                left.remove(best_j)
        ranked_arr = np.array(ranked, dtype=np.int64)
        has = assignment >= 0
        t = self._assigned_cost(assignment)
        cnt = np.bincount(assignment[has], minlength=inst.m)
        dem = np.bincount(assignment[has], weights=inst.weights[has], minlength=inst.m)
        cov_ok = has & covered
        dcov = np.bincount(assignment[cov_ok], weights=inst.weights[cov_ok], minlength=inst.m)
        tsum = np.bincount(assignment[has], weights=(inst.weights * np.nan_to_num(t))[has], minlength=inst.m)
        table = pd.DataFrame(
            {
                "site": ranked_arr,
                "kind": np.where(inst.is_fixed[ranked_arr], "fixed", "new"),
                "rank": np.arange(1, len(ranked_arr) + 1),
                "homes": cnt[ranked_arr],
                "demand": dem[ranked_arr],
                "demand_covered": dcov[ranked_arr],
                "coverage_added": np.array(added),
                "mean_time_s": np.divide(
                    tsum[ranked_arr],
                    dem[ranked_arr],
                    out=np.full(len(ranked_arr), np.nan),
                    where=dem[ranked_arr] > 0,
                ),
            }
        )
        if inst.capacities is not None:
            table["load"] = np.bincount(assignment[has], weights=inst.loads[has], minlength=inst.m)[
                ranked_arr
            ]
            table["capacity"] = inst.capacities[ranked_arr]
        return table

    def _capacity_precheck(self, k_new: int, need_all: bool) -> None:
        """Raise when the largest sites cannot hold the demand that must be served."""
        inst = self._inst
        if inst.capacities is None:
            return
        cov = inst.coverable
        # One home larger than every site that reaches it can never be placed.
        reach_cap = np.full(inst.n, -1.0)
        np.maximum.at(reach_cap, inst.row, inst.capacities[inst.col])
        if need_all:
            bad = cov & (inst.loads > reach_cap + 1e-9)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InfeasibleError(
                    f"capacities: {int(bad.sum())} homes (e.g. row {i}, load {inst.loads[i]:,.0f}) "
                    f"exceed the capacity of every candidate that reaches them (largest {reach_cap[i]:,.0f})"
                )
            demand = float(inst.loads[cov].sum())
            free = np.sort(np.delete(inst.capacities, inst.fixed))[::-1]
            top = float(inst.capacities[inst.fixed].sum() + free[:k_new].sum())
            if top + 1e-9 < demand:
                raise InfeasibleError(
                    f"capacities: the {len(inst.fixed)} fixed and {k_new} largest new sites hold {top:,.0f} "
                    f"but reachable demand totals {demand:,.0f}"
                )

    def _share_precheck(self) -> None:
        """Raise when a group's minimum share exceeds what all candidates together reach."""
        inst = self._inst
        if inst.group_codes is None:
            return
        codes, w, k = inst.group_codes, inst.weights, len(inst.group_labels)
        ok = codes >= 0
        total = np.bincount(codes[ok], weights=w[ok], minlength=k)
        reach = ok & inst.coverable
        reachable = np.bincount(codes[reach], weights=w[reach], minlength=k)
        for g in range(k):
            share = inst.group_share[g]
            if np.isnan(share) or total[g] <= 0:
                continue
            if reachable[g] < share * total[g] * (1 - 1e-9):
                raise InfeasibleError(
                    f"min_share: group {inst.group_labels[g]!r} needs {share:.0%} covered but only "
                    f"{reachable[g] / total[g]:.1%} (weight {reachable[g]:,.0f} of {total[g]:,.0f}) is"
                    f"{within_text(inst)} of any candidate"
                )

    def _raise_too_few(self, k_new: int, what: str, deadline: float | None) -> None:
        """Raise the InfeasibleError for a p below the set-covering minimum, with the numbers."""
        inst = self._inst
        lower, best, proven = min_new_to_cover(inst, seconds_left(deadline))
        if lower < 0:
            raise InfeasibleError(f"{self.name}: no choice of sites can {what}{within_text(inst)}")
        need = best if proven else lower
        if need > k_new:
            approx = "" if proven else " at least"
            raise InfeasibleError(
                f"p={k_new} is below the{approx} {need} new sites needed to {what}{within_text(inst)}; "
                f"raise p to {need}"
            )
