"""The p-median: ``p`` new sites minimising total weighted travel time."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Literal

import numpy as np
from scipy import sparse

from planner._errors import InfeasibleError, InputError
from planner.optimize import _tuning
from planner.optimize._arrays import row_entries
from planner.optimize._base import LocationModel, median_costs
from planner.optimize._deadline import auto_deadline, past_deadline, seconds_left
from planner.optimize._highs import Lp, site_bounds
from planner.optimize._parallel import ForkedCall, can_fork
from planner.optimize.covering import (
    add_links_and_capacity,
    assignment_from,
    cover_milp,
    min_new_to_cover,
    within_text,
)
from planner.optimize.instance import build_instance, cost_entries
from planner.optimize.interchange import SwapEngine
from planner.optimize.lagrangian import (
    lagrangian_pmedian,
    pmedian_branch_and_bound,
    pmedian_lagrangian_value,
    smoothed_dual_pmedian,
    truncation,
)
from planner.optimize.solution import Answer


@dataclasses.dataclass
class _PMedianAnswer(Answer):
    """The p-median heuristic's answer, with the multipliers of its bound (for fixing)."""

    lam: np.ndarray | None = None


class PMedian(LocationModel):
    """p-median: open ``p`` new sites minimising total weighted travel time.

    Every reachable home is assigned to one open site it can reach (within ``minutes`` when
    given); with capacities, to a site with room for its load (single sourcing).
    Objective: ``Σ_i w_i × cost_s[i, assigned(i)]``.
    """

    name = "p-median"
    sense = "min"
    _beyond_col: int | None = None  # the virtual "beyond" site of ``beyond_s`` (a fixed column)

    @classmethod
    def from_cost_matrix(
        cls,
        cost: Any,
        weights: Any = None,
        *,
        p: int,
        fixed: Any = None,
        capacities: Any = None,
        loads: Any = None,
        minutes: float | None = None,
        beyond_s: float | None = None,
    ) -> PMedian:
        """Build the model from a demand × candidate travel-time matrix (seconds).

        Parameters
        ----------
        cost : array-like or scipy.sparse matrix
            Travel time in seconds (see the module conventions for unreachable pairs).
        weights : array-like, optional
            Demand weight per row; default 1.
        p : int
            Number of NEW sites (``fixed`` sites come on top).
        fixed : array-like of int or bool mask, optional
            Candidates already open.
        capacities : array-like, optional
            Capacity per candidate (single-sourcing capacitated p-median).
        loads : array-like, optional
            Capacity used by each row; default the weights.
        minutes : float, optional
            Every home must be served within this many minutes.
        beyond_s : float, optional
            The matrix stops at this cost (a routing cut-off): a home with no open site
            within it counts ``beyond_s`` instead of forcing a site near it (the truncated
            p-median; Σ w_i min(cost, beyond_s)). Lets a large region's matrix keep only the
            pairs a planning question needs. Such homes are left unassigned in the answer
            (``assignment`` -1, not ``covered``); homes with no candidate at all within the
            cut-off are unreachable as usual.
        """
        beyond_col = None
        if beyond_s is not None:
            if minutes is not None:
                raise InputError("beyond_s: give either minutes (every home served within) or beyond_s")
            cost, fixed, capacities, beyond_col = _with_beyond_column(
                cost, float(beyond_s), fixed, capacities
            )
        inst = build_instance(cost, weights, fixed=fixed, capacities=capacities, loads=loads, minutes=minutes)
        model = cls(inst, p)
        model._beyond_col = beyond_col
        return model

    def _finish(self, raw, t0: float, gap: float):
        solution = super()._finish(raw, t0, gap)
        d = self._beyond_col
        if d is None:
            return solution
        # The virtual site is no site: its homes are beyond the cut-off, unassigned.
        beyond = solution.assignment == d
        solution.sites = solution.sites[solution.sites != d]
        solution.fixed_sites = solution.fixed_sites[solution.fixed_sites != d]
        solution.assignment = np.where(beyond, -1, solution.assignment)
        solution.covered = solution.covered & ~beyond
        solution.info["rows_beyond_cutoff"] = int(beyond.sum())
        table_fn = solution._table_fn

        def table():
            t = table_fn()
            t = t[t["site"] != d].reset_index(drop=True)
            t["rank"] = np.arange(1, len(t) + 1)
            return t

        solution._table_fn = table
        return solution

    def _entry_costs(self):
        return median_costs(self._inst)

    def _objective_of(self, sites, assignment):
        t = self._assigned_cost(assignment)
        return float(np.nansum(self._inst.weights * t))

    def _check_feasible(self) -> None:
        inst = self._inst
        if not inst.coverable.any():
            raise InfeasibleError(
                f"{self.name}: none of the {inst.n} homes can reach any candidate{within_text(inst)}"
            )
        if self.p + len(inst.fixed) == 0:
            raise InfeasibleError(
                f"{self.name}: p=0 and no fixed sites: no site to serve {int(inst.coverable.sum())} homes"
            )
        self._capacity_precheck(self.p, need_all=True)

    def _integral(self, W: np.ndarray) -> bool:
        return bool(np.all(np.round(W) == W))

    def _solve(self, method, deadline, gap) -> Answer:
        inst = self._inst
        if inst.capacities is not None:
            return self._solve_capacitated(method, deadline, gap)
        if method == "exact":
            return self._exact(deadline, gap)
        t0 = time.perf_counter()
        if method == "auto" and self._size() <= _tuning.EXACT_MAX_ENTRIES:
            # Small model: branch and bound (or HiGHS) finishes from the first local optimum
            # and the Lagrangian multipliers, which fix most variables; window search and
            # iterated local search cost more than they save it.
            raw = self._heuristic(deadline, gap, ils=False, windows=False)
            if raw.gap <= gap or past_deadline(deadline):
                return raw
            exact = self._finish_exactly(raw, auto_deadline(deadline, time.perf_counter() - t0), gap)
            if exact.objective - exact.bound <= gap * abs(exact.objective) + 1e-9 * abs(
                exact.objective
            ) or past_deadline(deadline):
                return exact
            full = self._heuristic(deadline, gap)  # out of time: improve the incumbent
            return full if full.objective < exact.objective else exact
        raw = self._heuristic(deadline, gap)
        if method == "heuristic" or raw.gap <= gap or past_deadline(deadline):
            return raw
        return self._finish_exactly(raw, auto_deadline(deadline, time.perf_counter() - t0), gap)

    def _finish_exactly(self, raw: _PMedianAnswer, deadline, gap: float) -> Answer:
        """Close the heuristic's gap on the model reduced by Lagrangian fixing: Lagrangian
        branch and bound, then HiGHS if that does not finish.

        With multipliers λ of Lagrangian value L and an incumbent of cost UB, a site whose
        opening adds ``ρ_j - ρ_(k)`` to L, or an assignment whose reduced cost
        ``W_ij - λ_i`` (plus its site's) brings L to UB, cannot be part of a better
        solution (Beasley 1993): they are left out. Sites whose closing costs as much are
        fixed open. The reduced MIP is usually a small fraction of the full one.
        """
        inst = self._inst
        W = inst.weights[inst.row] * inst.cost_s
        upper = raw.objective
        value, r, chosen = pmedian_lagrangian_value(inst, W, self.p, raw.lam)
        rho = np.bincount(inst.col, weights=r, minlength=inst.m)
        free = np.flatnonzero(~inst.is_fixed)
        in_chosen = np.zeros(inst.m, dtype=bool)
        in_chosen[chosen] = True
        ranked = np.sort(rho[free])
        rho_k = ranked[self.p - 1]
        rho_next = ranked[self.p] if self.p < len(free) else math.inf
        threshold = upper - max(gap * abs(upper), 1e-9 * abs(upper))
        extra = np.where(in_chosen | inst.is_fixed, 0.0, rho - rho_k)
        closed = ~inst.is_fixed & (value + extra >= threshold)
        forced = np.zeros(inst.m, dtype=bool)
        forced[free] = in_chosen[free] & (value + rho_next - rho[free] >= threshold)
        keep = (value + np.maximum(W - raw.lam[inst.row], 0.0) + extra[inst.col] < threshold) & ~closed[
            inst.col
        ]
        reduced = dataclasses.replace(inst.subset(keep), fixed=np.flatnonzero(inst.is_fixed | forced))
        k_left = self.p - int(forced[free].sum())
        if np.any(inst.coverable & ~reduced.coverable) or k_left < 0:
            # Some home has no assignment left that could beat UB: the incumbent is optimal
            # within the tolerance.
            return dataclasses.replace(
                raw, bound=max(raw.bound, threshold), solver="heuristic+lagrangian+fixing"
            )
        if reduced.nnz > _tuning.EXACT_MAX_ENTRIES:
            return raw
        # Lagrangian branch and bound first: on these reduced models it proves in tens of
        # nodes what HiGHS needs cuts and branching for (docs/optimize.md). HiGHS takes over
        # when it does not finish within BRANCH_MAX_NODES or half the time left, and when
        # many sites are left to choose.
        finished, found = False, None
        if k_left <= _tuning.BRANCH_MAX_SITES:
            half = None if deadline is None else time.perf_counter() + 0.5 * seconds_left(deadline)
            finished, found, proven, _ = pmedian_branch_and_bound(
                reduced,
                W[keep],
                k_left,
                raw.lam,
                closed,
                upper,
                gap,
                integral=self._integral(W),
                deadline=half,
                max_nodes=_tuning.BRANCH_MAX_NODES,
            )
        if found is not None:
            objective = self._objective_of(found, self._nearest_assignment(found))
            if objective < upper:
                raw, upper = dataclasses.replace(raw, sites=found, objective=objective), objective
        if finished:
            bound = min(max(raw.bound, min(proven, threshold)), upper)
            return dataclasses.replace(raw, bound=bound, solver="heuristic+lagrangian+branching")
        sub = PMedian(reduced, k_left)
        res = sub._exact(deadline, gap, closed=closed, raise_infeasible=False, cutoff=threshold)
        if res is None:  # time up before HiGHS found anything
            return raw
        if res == "infeasible":  # no better solution in the reduced model
            return dataclasses.replace(
                raw, bound=max(raw.bound, threshold), solver="heuristic+lagrangian+fixing"
            )
        sites = np.union1d(res.sites, np.flatnonzero(forced))
        objective = self._objective_of(sites, self._nearest_assignment(sites))
        bound = max(raw.bound, min(res.bound, threshold))
        if objective >= upper:
            return dataclasses.replace(raw, bound=bound, solver="heuristic+lagrangian+highs")
        return Answer(sites, bound, "heuristic+lagrangian+highs", objective=objective)

    def _heuristic(self, deadline, gap, ils: bool = True, windows: bool = True) -> _PMedianAnswer:
        """Greedy + interchange, Lagrangian bound, then (``windows``) window search and
        (``ils``) iterated local search."""
        inst = self._inst
        t0 = time.perf_counter()
        W, P = self._entry_costs()
        eng = self._first_solution(W, P, deadline)
        upper = eng.objective()
        info = {"first_objective": upper, "first_s": time.perf_counter() - t0}
        lam = eng.d1.copy()
        if self.p == 0 or self.p == inst.m - len(inst.fixed):
            bound = upper  # nothing to choose: the nearest-site assignment is optimal
        else:
            start = self._dual_start(eng)
            child = None
            if inst.nnz >= _tuning.PARALLEL_MIN_ENTRIES and can_fork():
                # Large instance: prove the bound in a forked process (a second core) while
                # this one improves the solution. Threads do not help here: the two loops
                # compete for the interpreter and memory bandwidth.
                child_info: dict = {}
                child = ForkedCall(
                    lambda: (self._dual(W, start, upper, gap, deadline, child_info), child_info)
                )
            if child is not None:
                self._improve(eng, deadline, lam=None)
                result = child.result()
                if result is None:  # the child failed: compute the bound here
                    result = (self._dual(W, start, upper, gap, None, info), {})
                (bound, lam), child_info = result
                info.update(child_info, parallel=True)
            elif inst.nnz >= _tuning.PARALLEL_MIN_ENTRIES:
                bound, lam = self._dual(W, start, upper, gap, deadline, info)
                self._improve(eng, deadline, lam=None)
            else:
                bound, lam = self._dual(W, start, upper, gap, deadline, info)
                if not self._closed(upper, bound, gap):
                    # The Lagrangian restart first: the solution it finds often closes the
                    # gap by itself, and then windows and ILS are not needed.
                    self._improve(eng, deadline, lam=lam, ils=False, windows=False)
                    if (ils or windows) and not self._closed(eng.objective(), bound, gap):
                        self._improve(eng, deadline, lam=None, ils=ils, bound=bound, gap=gap, windows=windows)
            if eng.objective() < upper:
                upper = eng.objective()
                if (
                    not self._closed(upper, bound, gap)
                    and inst.nnz < _tuning.PARALLEL_MIN_ENTRIES
                    and not past_deadline(deadline)
                ):
                    bound = max(bound, self._polish(W, upper, lam, gap, deadline)[0])
        sites = eng.open_sites()
        upper = self._objective_of(sites, self._nearest_assignment(sites))
        info.update(eng.stats)
        return _PMedianAnswer(
            sites,
            min(bound, upper),
            "heuristic+lagrangian",
            objective=upper,
            info=info,
            gap=(upper - bound) / upper if upper else 0.0,
            lam=lam,
        )

    def _first_solution(self, W: np.ndarray, P: np.ndarray, deadline) -> SwapEngine:
        """Greedy + fast interchange, serving every reachable home; raises when p is too small.

        The greedy first runs with a soft penalty (a home left out costs a share of its
        largest reachable cost), then the interchange enforces service of every reachable home
        (hard penalty): chasing coverage first starts the search far from the optimum. Small
        instances try several penalties (and the plain greedy) and keep the best.
        """
        inst = self._inst
        row_max = np.zeros(inst.n)
        np.maximum.at(row_max, inst.row, W)
        shares = (0.75,) if inst.nnz >= _tuning.PARALLEL_MIN_ENTRIES else _tuning.FIRST_SHARES
        best = None
        for share in shares:
            soft = P if share is None else np.where(inst.coverable, share * row_max, 0.0)
            eng = SwapEngine(inst, W, soft, self.p)
            eng.greedy()
            eng.local_search(deadline)
            if share is not None:
                eng.P = P
                eng._rebuild()
                eng.local_search(deadline)
            if np.any(eng.phi1[inst.coverable] < 0):
                continue
            if best is None or eng.objective() < best.objective():
                best = eng
        if best is None:
            # Some homes are left out: either p is too small (raise with the numbers) or the
            # greedy missed a cover; restart from a minimum cover then.
            lower, least, proven = min_new_to_cover(inst, seconds_left(deadline))
            if (proven and least > self.p) or lower > self.p:
                self._raise_too_few(self.p, "cover every reachable home", deadline)
            best = SwapEngine(inst, W, P, self.p)
            best.reset(self._cover_sites())
            best.greedy()
            best.local_search(deadline)
        return best

    def _improve(
        self,
        eng: SwapEngine,
        deadline,
        lam: np.ndarray | None,
        ils: bool = True,
        bound: float = -math.inf,
        gap: float = 0.0,
        windows: bool = True,
    ) -> None:
        """Improve the local optimum: Lagrangian restart, window re-optimisation (``windows``),
        then ILS (``ils``, unless the solution is by then within ``gap`` of ``bound``)."""
        inst = self._inst
        best_sites, best = eng.open_sites(), eng.objective()
        if lam is not None:
            # Lagrangian heuristic: the relaxation's open sites are a second start.
            _, _, lag_open = pmedian_lagrangian_value(inst, eng.W, self.p, lam)
            eng.reset(lag_open)
            eng.greedy()
            eng.local_search(deadline)
            if eng.objective() < best and not np.any(eng.phi1[inst.coverable] < 0):
                best_sites, best = eng.open_sites(), eng.objective()
            else:
                eng.set_open(best_sites)
        if past_deadline(deadline):
            return
        # Window re-optimisation until no window improves; with a time limit, iterated local
        # search for the rest of the time. Large instances with a time limit go straight to
        # the search, which improves them more in the same time than windows do.
        if windows and (deadline is None or inst.nnz < _tuning.PARALLEL_MIN_ENTRIES):
            eng.improve_windows(deadline)
        if not ils or self._closed(eng.objective(), bound, gap):
            return
        if deadline is not None:
            eng.iterated_local_search(deadline)
        else:
            # Without a time limit a fixed number of rounds keeps the answer reproducible.
            eng.iterated_local_search(
                None, rounds=_tuning.ILS_ROUNDS_PER_SITE * max(self.p, 1) + _tuning.ILS_ROUNDS_BASE
            )

    def _closed(self, upper: float, bound: float, gap: float) -> bool:
        return upper - bound <= gap * abs(upper) + 1e-9 * abs(upper)

    def _dual_start(self, eng: SwapEngine) -> tuple[np.ndarray, float, float]:
        """(λ0, μ0, time scale) for the dual, estimated from a local optimum."""
        inst = self._inst
        # Each open site's "price" μ (the best insertion gain) is shared by the homes it
        # serves, in proportion to their weight.
        mu0 = float(np.max(np.where(eng.is_open, 0.0, eng.gain)))
        phi = np.maximum(eng.phi1, 0)
        cluster_w = np.bincount(phi, weights=inst.weights, minlength=inst.m)
        share = np.divide(inst.weights, cluster_w[phi], out=np.zeros(inst.n), where=cluster_w[phi] > 0)
        lam0 = np.where(inst.coverable, eng.d1 + mu0 * share, 0.0)
        # Smoothing widths scale with a typical travel time to the assigned site.
        assigned_s = np.divide(eng.d1, inst.weights, out=np.zeros(inst.n), where=inst.weights > 0)
        time_scale_s = float(np.median(assigned_s[inst.coverable])) + 1e-6
        return lam0, mu0, time_scale_s

    def _dual(self, W, start, upper, gap, deadline, info: dict | None = None) -> tuple[float, np.ndarray]:
        """Lagrangian lower bound: smoothed dual by L-BFGS, then subgradient polish (small instances)."""
        t0 = time.perf_counter()
        try:
            return self._dual_steps(W, start, upper, gap, deadline)
        finally:
            if info is not None:
                info["bound_s"] = time.perf_counter() - t0

    def _dual_steps(self, W, start, upper, gap, deadline) -> tuple[float, np.ndarray]:
        inst = self._inst
        lam0, mu0, time_scale_s = start
        integral = bool(np.all(np.round(W) == W))
        stop_at = math.floor(upper) - 1 + 1e-7 if integral else upper * (1 - gap)
        bound, lam = smoothed_dual_pmedian(
            inst, W, self.p, lam0, mu0, time_scale_s, deadline=deadline, stop_at=stop_at
        )
        if integral:
            bound = math.ceil(bound - 1e-7)
        if (
            self._closed(upper, bound, gap)
            or past_deadline(deadline)
            or inst.nnz >= _tuning.PARALLEL_MIN_ENTRIES
        ):
            return bound, lam
        polished, lam2 = self._polish(W, upper, lam, gap, deadline)
        return (polished, lam2) if polished > bound else (bound, lam)

    def _polish(self, W, upper, lam, gap, deadline) -> tuple[float, np.ndarray]:
        """A short run of subgradient steps from a good λ (closes integral gaps exactly)."""
        integral = bool(np.all(np.round(W) == W))
        keep, cap = truncation(self._inst, W, lam)
        bound, lam2, _ = lagrangian_pmedian(
            self._inst.subset(keep),
            W[keep],
            self.p,
            upper,
            np.minimum(lam, cap),
            integral=integral,
            gap=gap,
            deadline=deadline,
            max_iter=150,
            mu0=0.25,
            cap=cap,
        )
        return bound, lam2

    def _cover_sites(self) -> np.ndarray:
        res = cover_milp(self._inst, time_limit=None, gap=0.0)
        return np.flatnonzero(res.x[: self._inst.m] > 0.5)

    def _exact(
        self,
        deadline,
        gap,
        start=None,
        closed=None,
        raise_infeasible: bool = True,
        cutoff: float | None = None,
    ) -> Answer | Literal["infeasible"] | None:
        inst = self._inst
        m, nx = inst.m, inst.nnz
        W = inst.weights[inst.row] * inst.cost_s
        lp = Lp(m + nx)
        rows_cov = np.flatnonzero(inst.coverable)
        r_local = np.searchsorted(rows_cov, inst.row)
        lp.add(r_local, m + np.arange(nx), 1.0, np.ones(len(rows_cov)), 1.0)
        add_links_and_capacity(lp, inst, m)
        free = np.flatnonzero(~inst.is_fixed)
        lp.add(np.zeros(len(free)), free, 1.0, [self.p], self.p)
        lb, ub = site_bounds(inst)
        if closed is not None:
            ub[closed] = 0.0
        integer = np.concatenate([np.ones(m, dtype=bool), np.full(nx, inst.capacities is not None)])
        res = lp.solve(
            np.concatenate([np.zeros(m), W]),
            np.concatenate([lb, np.zeros(nx)]),
            np.concatenate([ub, np.ones(nx)]),
            integer,
            time_limit=seconds_left(deadline),
            gap=gap,
            start=start,
            cutoff=cutoff,
        )
        if res.status == "infeasible":
            if not raise_infeasible:
                return "infeasible"
            self._raise_infeasible(deadline)
        if res.x is None:
            if not raise_infeasible:
                return None
            raise InfeasibleError(
                f"{self.name}: HiGHS found no feasible solution within the time limit "
                f"({inst.n} homes, {m} candidates); raise time_limit or use method='heuristic'"
            )
        sites = np.flatnonzero(res.x[:m] > 0.5)
        assignment = assignment_from(res.x[m:], inst)
        if inst.capacities is None:
            assignment = None  # nearest open site: the same cost, and ties resolved consistently
        bound = res.bound if np.isfinite(res.bound) else -math.inf
        return Answer(sites, bound, "highs", assignment=assignment)

    def _raise_infeasible(self, deadline) -> None:
        inst = self._inst
        # Too few sites to reach everyone is the usual cause; it raises with the numbers.
        self._raise_too_few(self.p, "cover every reachable home", deadline)
        raise InfeasibleError(
            f"{self.name}: no assignment of the {int(inst.coverable.sum())} reachable homes to "
            f"{self.p} new + {len(inst.fixed)} fixed sites respects the capacities{within_text(inst)}"
        )

    # -- capacitated ------------------------------------------------------------------------
    def _solve_capacitated(self, method, deadline, gap) -> Answer:
        if method == "exact" or (method == "auto" and self._auto_exact()):
            return self._exact(deadline, gap)
        return self._capacitated_heuristic(deadline, gap)

    def _capacitated_heuristic(self, deadline, gap) -> Answer:
        """Location–allocation (Mulvey & Beck 1984): assign by MIP, relocate medians, repeat."""
        inst = self._inst
        W, P = self._entry_costs()
        eng = SwapEngine(inst, W, P, self.p)
        eng.greedy()
        eng.local_search(deadline)
        sites = eng.open_sites()
        sites = self._ensure_capacity(sites)
        best = self._assign_capacitated(sites, deadline)
        for _ in range(20):
            if best is None or (deadline is not None and time.perf_counter() > deadline):
                break
            cost, assignment = best
            moved = self._relocate(sites, assignment, W)
            if moved is None:
                break
            trial = self._assign_capacitated(moved, deadline)
            if trial is None or trial[0] >= cost - 1e-9 * abs(cost):
                break
            sites, best = moved, trial
        if best is None:
            self._raise_infeasible(deadline)
        cost, assignment = best
        # Bound: the uncapacitated Lagrangian bound is valid (capacities only add constraints).
        bound, _, _ = lagrangian_pmedian(
            inst, W, self.p, cost, eng.d1.copy(), integral=self._integral(W), gap=gap, deadline=deadline
        )
        return Answer(
            sites,
            bound,
            "heuristic+lagrangian",
            objective=cost,
            assignment=assignment,
            gap=(cost - bound) / cost if cost else 0.0,
        )

    def _ensure_capacity(self, sites: np.ndarray) -> np.ndarray:
        """Swap small new sites for large ones until the open capacity covers the demand."""
        inst = self._inst
        caps = inst.capacities
        demand = float(inst.loads[inst.coverable].sum())
        sites = np.array(sites)
        new = [s for s in sites if not inst.is_fixed[s]]
        closed = [j for j in np.argsort(-caps) if j not in set(sites)]
        while caps[sites].sum() < demand and new and closed:
            small = min(new, key=lambda s: caps[s])
            big = closed.pop(0)
            if caps[big] <= caps[small]:
                break
            new.remove(small)
            new.append(big)
            sites = np.concatenate([inst.fixed, new]).astype(np.int64)
        return np.sort(sites)

    def _assign_capacitated(self, sites: np.ndarray, deadline) -> tuple[float, np.ndarray] | None:
        """Optimal single-source assignment to the given sites (a small MIP); None if none."""
        inst = self._inst
        is_open = np.zeros(inst.m, dtype=bool)
        is_open[sites] = True
        keep = is_open[inst.col]
        sub = inst.subset(keep)
        if np.any(inst.coverable & ~sub.coverable):
            return None
        rows_cov = np.flatnonzero(sub.coverable)
        nx = sub.nnz
        lp = Lp(nx)
        lp.add(np.searchsorted(rows_cov, sub.row), np.arange(nx), 1.0, np.ones(len(rows_cov)), 1.0)
        sel = np.flatnonzero(is_open)
        j_local = np.searchsorted(sel, sub.col)
        lp.add(j_local, np.arange(nx), sub.loads[sub.row], np.full(len(sel), -np.inf), inst.capacities[sel])
        W = sub.weights[sub.row] * sub.cost_s
        limit = seconds_left(deadline)
        res = lp.solve(
            W,
            np.zeros(nx),
            np.ones(nx),
            np.ones(nx, dtype=bool),
            time_limit=None if limit is None else max(limit * 0.5, 0.05),
            gap=1e-6,
        )
        if res.x is None:
            return None
        return float(W[res.x > 0.5].sum()), assignment_from(res.x, sub)

    def _relocate(self, sites, assignment, W) -> np.ndarray | None:
        """Move each new median to the candidate that serves its cluster cheapest (capacity allowing)."""
        inst = self._inst
        new_sites = list(sites)
        changed = False
        for s in sites:
            if inst.is_fixed[s]:
                continue
            members = np.flatnonzero(assignment == s)
            if len(members) == 0:
                continue
            pos, _ = row_entries(inst, members)
            j = inst.col[pos]
            total = np.bincount(j, weights=W[pos], minlength=inst.m)
            count = np.bincount(j, minlength=inst.m)
            ok = (count == len(members)) & (inst.capacities >= inst.loads[members].sum())
            ok[np.array(new_sites)] = False
            ok[s] = True
            cand = np.flatnonzero(ok)
            best = cand[np.argmin(total[cand])]
            if best != s and total[best] < total[s] - 1e-9:
                new_sites[new_sites.index(s)] = best
                changed = True
        return np.sort(np.array(new_sites, dtype=np.int64)) if changed else None


def _with_beyond_column(cost, beyond_s: float, fixed, capacities):
    """``cost`` with one more column at ``beyond_s`` for every row that reaches a candidate,
    open (fixed) and unlimited: the truncated p-median as a plain one."""
    if not (np.isfinite(beyond_s) and beyond_s >= 0):
        raise InputError(f"beyond_s: expected a non-negative number of seconds, got {beyond_s!r}")
    n, m, row, col, data, _ = cost_entries(cost)
    reached = np.unique(row)
    augmented = sparse.csr_array(
        (
            np.concatenate([data, np.full(len(reached), beyond_s)]),
            (np.concatenate([row, reached]), np.concatenate([col, np.full(len(reached), m)])),
        ),
        shape=(n, m + 1),
    )
    fixed = np.asarray(np.zeros(0, np.int64) if fixed is None else fixed)
    fixed = np.append(fixed, True) if fixed.dtype == bool else np.append(fixed.astype(np.int64), m)
    if capacities is not None:
        capacities = np.append(np.asarray(capacities, float), np.inf)
    return augmented, fixed, capacities, m
