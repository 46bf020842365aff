"""Coverage models: maximal covering (MCLP) and location set covering (LSCP)."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

from planner._errors import InfeasibleError, InputError
from planner.optimize import _tuning
from planner.optimize._arrays import rows_by_fixed
from planner.optimize._base import LocationModel
from planner.optimize._deadline import auto_deadline, past_deadline, seconds_left
from planner.optimize._highs import Lp, site_bounds
from planner.optimize._parallel import Background, blas_threads
from planner.optimize.covering import (
    add_links_and_capacity,
    add_share_rows,
    assignment_from,
    complete_cover_start,
    cover_local_search,
    cover_milp,
    cover_start,
    greedy_cover,
    min_new_to_cover,
    single_source,
    split_cover,
    within_text,
)
from planner.optimize.dominance import cover_core
from planner.optimize.instance import build_instance
from planner.optimize.interchange import DenseCoverSwap, SwapEngine
from planner.optimize.lagrangian import (
    CoverageDual,
    CoverageDualLp,
    lagrangian_coverage,
    lagrangian_setcover,
)
from planner.optimize.solution import Answer


@dataclasses.dataclass
class _CoverageAnswer(Answer):
    """Max-coverage's answer, with what its exact phase needs: the groups short of their
    share, the dual LP's bound and multipliers, whether the weights are whole numbers, and
    HiGHS's own objective (exact answers)."""

    shortfall: dict | None = None
    dual: CoverageDual | None = None
    integral: bool = False
    highs_objective: float = -math.inf


class MaxCoverage(LocationModel):
    """Maximal covering location problem (MCLP): ``p`` new sites maximising covered weight.

    A home is covered when an open site is within ``minutes``. Objective: total weight of
    covered homes (including those covered by fixed sites). With capacities, covered homes
    are assigned to one site each within its capacity. With ``groups`` and ``min_share``,
    each group must have at least that share of its total weight covered.
    """

    name = "max-coverage"
    sense = "max"

    @classmethod
    def from_cost_matrix(
        cls,
        cost: Any,
        weights: Any = None,
        *,
        p: int,
        minutes: float,
        fixed: Any = None,
        capacities: Any = None,
        loads: Any = None,
        groups: Any = None,
        min_share: float | Mapping[Hashable, float] | None = None,
    ) -> MaxCoverage:
        """Build the model from a demand × candidate travel-time matrix (seconds).

        Parameters
        ----------
        cost, weights, fixed, capacities, loads
            As in :meth:`PMedian.from_cost_matrix`.
        p : int
            Number of NEW sites.
        minutes : float
            Service standard: covered when ``cost_s <= 60 * minutes``.
        groups : array-like, optional
            Sub-area label per demand row (e.g. 街道).
        min_share : float or dict, optional
            Minimum covered share of each group's total weight (one value for all groups, or
            per label); without ``groups`` it applies to all demand.
        """
        if minutes is None:
            raise InputError("minutes: the coverage standard is required for max-coverage")
        inst = build_instance(
            cost,
            weights,
            fixed=fixed,
            capacities=capacities,
            loads=loads,
            minutes=minutes,
            groups=groups,
            min_share=min_share,
        )
        return cls(inst, p)

    def _entry_costs(self):
        inst = self._inst
        return np.zeros(inst.nnz), np.where(inst.coverable, inst.weights, 0.0)

    def _objective_of(self, sites, assignment):
        return float(self._inst.weights[assignment >= 0].sum())

    def _check_feasible(self) -> None:
        self._share_precheck()

    def _solve(self, method, deadline, gap) -> Answer:
        inst = self._inst
        plain = inst.capacities is None and inst.group_codes is None
        if method == "exact":
            return (
                self._solve_core(method, deadline, gap)
                if plain and not self._is_core
                else self._exact(deadline, gap)
            )
        t0 = time.perf_counter()
        # The heuristic runs on the full instance: its dual LP and interchange are as fast
        # there as on the core, and building the core costs time.
        raw = self._heuristic(deadline, gap)
        if method == "heuristic" or (raw.gap <= gap and not raw.shortfall) or not self._auto_exact():
            return raw
        if plain and raw.dual is not None:
            return self._finish_exactly(raw, auto_deadline(deadline, time.perf_counter() - t0), gap)
        exact = self._exact(
            auto_deadline(deadline, time.perf_counter() - t0),
            gap,
            None if inst.capacities is not None else raw.sites,
            allow_none=not raw.shortfall,
        )
        if exact is None:
            return raw
        exact.solver = raw.solver + "+highs"
        if inst.group_codes is None and inst.capacities is None:
            exact.bound = min(exact.bound, raw.bound)
        if exact.highs_objective < raw.objective and not raw.shortfall:
            return dataclasses.replace(raw, bound=exact.bound, solver=exact.solver)
        return exact

    def _solve_core(self, method, deadline, gap, start_sites: np.ndarray | None = None) -> Answer:
        """Solve on the dominance-reduced core, then map back (see :func:`cover_core`).
        ``start_sites`` (exact only): a known solution's new sites, HiGHS's starting point."""
        inst = self._inst
        core = cover_core(inst, rows_are_constraints=False)
        k = min(self.p, core.inst.m)
        if core.inst.n == 0 or k == 0:
            raw = Answer(np.empty(0, dtype=np.int64), 0.0, "reduction")
        else:
            sub = MaxCoverage(core.inst, k)
            sub._is_core = True
            if method == "exact" and start_sites is not None:
                index = np.full(inst.m, -1, dtype=np.int64)
                index[core.cols] = np.arange(len(core.cols))
                start = index[start_sites]
                start = complete_cover_start(core.inst, start[start >= 0][:k], k)
                raw = sub._exact(deadline, gap, start_sites=start)
            else:
                raw = sub._solve(method, deadline, gap)
        return dataclasses.replace(
            raw,
            sites=self._fill(core.cols[raw.sites], self.p),
            assignment=None,
            objective=None,
            bound=raw.bound + core.outside_weight,
        )

    def _fill(self, new_sites: np.ndarray, k: int) -> np.ndarray:
        """``k`` new sites: when fewer than k add anything, the others largest first."""
        inst = self._inst
        new_sites = np.asarray(new_sites, dtype=np.int64)
        if len(new_sites) < k:
            others = np.flatnonzero(~inst.is_fixed & ~np.isin(np.arange(inst.m), new_sites))
            size = np.bincount(inst.col, weights=inst.weights[inst.row], minlength=inst.m)[others]
            new_sites = np.concatenate(
                [new_sites, others[np.argsort(-size, kind="stable")[: k - len(new_sites)]]]
            )
        return np.sort(new_sites)

    def _finish_exactly(self, raw: _CoverageAnswer, deadline, gap: float) -> Answer:
        """Close the heuristic's gap with HiGHS on the model reduced by Lagrangian fixing.

        With the LP's multipliers λ (value L, ``σ_j = Σ_{i∈N_j} λ_i``) and the incumbent's
        covered weight LB, opening a site outside the LP's top k changes L by at most
        ``σ_j - σ_(k)``; when that brings L below what a better solution needs, the site
        is left out (closing one of the top k the same way fixes it open). The rest goes to
        HiGHS on its dominance core (the p-median's ``_finish_exactly`` is the same idea).
        """
        inst = self._inst
        value, sigma = raw.dual.value, raw.dual.sigma
        lower = raw.objective
        # A better solution covers at least this much (weights integral: one unit more).
        need = lower + 1.0 if raw.integral else lower + max(gap * abs(lower), 1e-9 * abs(lower))
        free = np.flatnonzero(~inst.is_fixed)
        k = self.p
        order = free[np.argsort(-sigma[free], kind="stable")]
        top = np.zeros(inst.m, dtype=bool)
        top[order[:k]] = True
        s_k = sigma[order[k - 1]]
        s_next = sigma[order[k]] if k < len(order) else -math.inf
        closed = ~inst.is_fixed & ~top & (value - (s_k - sigma) < need)
        forced = top & (value - (sigma - s_next) < need)
        # What no site left out can beat: the incumbent itself (integral) or ``need``.
        outside = lower if raw.integral else need
        k_left = k - int(forced.sum())
        usable = int((~inst.is_fixed & ~closed & ~forced).sum())
        if k_left == 0 or usable == 0:
            return dataclasses.replace(
                raw, bound=min(raw.bound, max(outside, lower)), solver=raw.solver + "+fixing"
            )
        reduced = dataclasses.replace(
            inst.subset(~closed[inst.col]), fixed=np.flatnonzero(inst.is_fixed | forced)
        )
        sub = MaxCoverage(reduced, min(k_left, usable))
        try:
            # The incumbent as HiGHS's start: it prunes from the first node.
            res = sub._solve_core("exact", deadline, gap, start_sites=np.setdiff1d(raw.sites, reduced.fixed))
        except InfeasibleError:  # time up before HiGHS found a solution
            return raw
        sites = np.union1d(self._fill(np.union1d(res.sites, np.flatnonzero(forced)), k), inst.fixed)
        objective = self._objective_of(sites, self._nearest_assignment(sites))
        bound = min(raw.bound, max(res.bound, outside))
        solver = raw.solver + "+fixing+highs"
        if objective <= lower:
            return dataclasses.replace(raw, bound=max(bound, lower), solver=solver)
        return Answer(np.setdiff1d(sites, inst.fixed), max(bound, objective), solver, objective=objective)

    def _heuristic(self, deadline, gap) -> _CoverageAnswer:
        # One BLAS thread while HiGHS runs beside: OpenBLAS's workers spin between calls,
        # and on two cores they take HiGHS's. The
        # limit is process-wide and restored on exit, so only the main thread sets it: two
        # threads setting and restoring it in turn could leave it at one for good.
        if threading.current_thread() is not threading.main_thread():
            return self._heuristic_search(deadline, gap)
        with blas_threads().limit(limits=1, user_api="blas"):
            return self._heuristic_search(deadline, gap)

    def _heuristic_search(self, deadline, gap) -> _CoverageAnswer:
        inst = self._inst
        integral = bool(np.all(inst.weights == np.round(inst.weights)))
        # The bound's LP solves in a second thread while the interchange runs here.
        lp = thread = None
        if inst.nnz <= _tuning.COVERAGE_LP_MAX_ENTRIES:
            lp = CoverageDualLp(inst, inst.weights, self.p, integral=integral, deadline=deadline)
            thread = Background(lp.run)
        W, P = self._entry_costs()
        total_cov = float(P.sum())
        if (
            inst.group_codes is None
            and inst.n * inst.m * (len(inst.fixed) + self.p) <= _tuning.DENSE_COVER_SWAP_MAX_FLOPS
        ):
            eng = None
            dense = DenseCoverSwap(inst, self.p)
            sites = dense.search(inst.fixed, deadline)
            value = total_cov - dense.uncovered(sites)
        else:
            eng = SwapEngine(inst, W, P, self.p)
            eng.greedy()
            eng.local_search(deadline)
            sites = eng.open_sites()
            value = total_cov - eng.objective()
        dual = None
        if lp is not None:
            thread.join()
            dual = lp.result()
        if dual is None:
            bound, lag_pick = lagrangian_coverage(
                inst, inst.weights, self.p, value, integral=integral, gap=gap, deadline=deadline
            )
            solver = "heuristic+lagrangian"
        else:
            bound, lag_pick, _, _ = dual
            solver = "heuristic+lp"
        if bound - value > gap * abs(value) and not past_deadline(deadline):
            # Lagrangian heuristic: restart the interchange from the relaxation's sites.
            if eng is None:
                again = dense.search(lag_pick, deadline)
                if dense.uncovered(again) < total_cov - value - 1e-9:
                    sites = again
            else:
                eng.reset(lag_pick)
                eng.greedy()
                eng.local_search(deadline)
                if eng.objective() < total_cov - value - 1e-9:
                    sites = eng.open_sites()
                else:
                    eng.reset(sites)
        shortfall = None
        if inst.group_codes is not None:
            sites, shortfall = self._reweight_for_shares(eng, deadline)
        if inst.capacities is not None:
            value, assignment = self._assign_capacitated(sites, deadline)
        else:
            assignment = self._nearest_assignment(sites)
            value = self._objective_of(sites, assignment)
        # Relaxing shares and capacities only raises the maximum: the bound stays valid.
        bound = max(min(bound, total_cov), value)
        return _CoverageAnswer(
            sites,
            bound,
            solver,
            objective=value,
            assignment=assignment,
            gap=(bound - value) / value if value else 0.0,
            shortfall=shortfall,
            dual=dual,
            integral=integral,
        )

    def _reweight_for_shares(self, eng: SwapEngine, deadline) -> tuple[np.ndarray, dict | None]:
        """Raise the weight of groups below their share and search again (a few rounds)."""
        inst = self._inst
        factor = np.ones(len(inst.group_labels))
        sites = eng.open_sites()
        for _ in range(8):
            covered = self._nearest_assignment(sites) >= 0
            _, short = self._group_report(covered)
            if not short:
                return sites, None
            for label in short:
                factor[inst.group_labels.index(label)] *= 2.0
            scale = np.where(inst.group_codes >= 0, factor[np.maximum(inst.group_codes, 0)], 1.0)
            eng.P = np.where(inst.coverable, inst.weights * scale, 0.0)
            eng._rebuild()
            eng.local_search(deadline)
            sites = eng.open_sites()
        covered = self._nearest_assignment(sites) >= 0
        return sites, self._group_report(covered)[1]

    def _assign_capacitated(self, sites, deadline) -> tuple[float, np.ndarray]:
        """Best single-source assignment of homes to the given sites within capacity (MIP)."""
        inst = self._inst
        is_open = np.zeros(inst.m, dtype=bool)
        is_open[sites] = True
        sub = inst.subset(is_open[inst.col])
        nx = sub.nnz
        if nx == 0:
            return 0.0, np.full(inst.n, -1, dtype=np.int64)
        rows_cov = np.flatnonzero(sub.coverable)
        lp = Lp(nx)
        lp.add(np.searchsorted(rows_cov, sub.row), np.arange(nx), 1.0, np.zeros(len(rows_cov)), 1.0)
        sel = np.flatnonzero(is_open)
        lp.add(
            np.searchsorted(sel, sub.col),
            np.arange(nx),
            sub.loads[sub.row],
            np.full(len(sel), -np.inf),
            inst.capacities[sel],
        )
        w = sub.weights[sub.row]
        limit = seconds_left(deadline)
        res = lp.solve(
            w,
            np.zeros(nx),
            np.ones(nx),
            np.ones(nx, dtype=bool),
            maximize=True,
            time_limit=None if limit is None else max(0.5 * limit, 0.05),
            gap=1e-6,
        )
        if res.x is None:
            return 0.0, np.full(inst.n, -1, dtype=np.int64)
        return float(w[res.x > 0.5].sum()), assignment_from(res.x, sub)

    def _exact(self, deadline, gap, start_sites=None, allow_none: bool = False) -> _CoverageAnswer | None:
        inst = self._inst
        m, n = inst.m, inst.n
        lb, ub = site_bounds(inst)
        free = np.flatnonzero(~inst.is_fixed)
        rows_cov = np.flatnonzero(inst.coverable)
        if inst.capacities is not None:
            nx = inst.nnz
            lp = Lp(m + nx)
            lp.add(np.searchsorted(rows_cov, inst.row), m + np.arange(nx), 1.0, np.zeros(len(rows_cov)), 1.0)
            add_links_and_capacity(lp, inst, m)
            w = inst.weights[inst.row]
            var, cost_v = m + np.arange(nx), w
            nv = nx
        else:
            nz = len(rows_cov)
            lp = Lp(m + nz)
            zr = np.searchsorted(rows_cov, inst.row)
            lp.add(
                np.concatenate([np.arange(nz), zr]),
                np.concatenate([m + np.arange(nz), inst.col]),
                np.concatenate([np.ones(nz), -np.ones(inst.nnz)]),
                np.full(nz, -np.inf),
                0.0,
            )
            var, cost_v = m + np.arange(nz), inst.weights[rows_cov]
            nv = nz
        lp.add(np.zeros(len(free)), free, 1.0, [self.p], self.p)
        if inst.group_codes is not None:
            add_share_rows(lp, inst, var, cost_v, inst.row if inst.capacities is not None else rows_cov)
        integer = np.concatenate([np.ones(m, dtype=bool), np.full(nv, inst.capacities is not None)])
        start = None
        if start_sites is not None:
            y = np.zeros(m)
            y[start_sites] = 1.0
            y[inst.fixed] = 1.0
            covered = np.zeros(n, dtype=bool)
            covered[inst.row[y[inst.col] > 0]] = True
            start = np.concatenate([y, covered[rows_cov].astype(float)])
        res = lp.solve(
            np.concatenate([np.zeros(m), cost_v]),
            np.concatenate([lb, np.zeros(nv)]),
            np.concatenate([ub, np.ones(nv)]),
            integer,
            maximize=True,
            time_limit=seconds_left(deadline),
            gap=gap,
            start=start,
        )
        if res.status == "infeasible":
            self._raise_share_infeasible(deadline)
        if res.x is None:
            if allow_none:
                return None
            raise InfeasibleError(
                f"{self.name}: HiGHS found no feasible solution within the time limit; raise time_limit"
            )
        sites = np.flatnonzero(res.x[:m] > 0.5)
        assignment = None
        if inst.capacities is not None:
            assignment = assignment_from(res.x[m:], inst)
        bound = res.bound if np.isfinite(res.bound) else math.inf
        return _CoverageAnswer(sites, bound, "highs", assignment=assignment, highs_objective=res.objective)

    def _raise_share_infeasible(self, deadline) -> None:
        inst = self._inst
        shares = "" if inst.group_codes is None else " the minimum share of every group"
        lower, best, proven = min_new_to_cover(inst, seconds_left(deadline))
        need = best if proven else lower
        if need > self.p:
            raise InfeasibleError(
                f"p={self.p} is below the {'' if proven else 'at least '}{need} new sites needed to cover"
                f"{shares}{within_text(inst)}; raise p to {need}"
            )
        raise InfeasibleError(
            f"{self.name}: no choice of {self.p} new sites meets{shares}{within_text(inst)}"
        )


class SetCover(LocationModel):
    """Location set covering (LSCP): fewest new sites covering every reachable home.

    Homes no candidate reaches within ``minutes`` are excluded and reported in
    :attr:`unreachable`. Objective: the number of NEW sites (fixed sites are free). With
    ``groups``/``min_share`` only that share of each group's weight must be covered; with
    capacities every covered home is served by one site within its capacity.
    """

    name = "set-cover"
    sense = "min"

    @classmethod
    def from_cost_matrix(
        cls,
        cost: Any,
        weights: Any = None,
        *,
        minutes: float,
        fixed: Any = None,
        capacities: Any = None,
        loads: Any = None,
        groups: Any = None,
        min_share: float | Mapping[Hashable, float] | None = None,
    ) -> SetCover:
        """Build the model from a demand × candidate travel-time matrix (seconds).

        See :meth:`MaxCoverage.from_cost_matrix` for the parameters (no ``p`` here).
        """
        if minutes is None:
            raise InputError("minutes: the coverage standard is required for set covering")
        inst = build_instance(
            cost,
            weights,
            fixed=fixed,
            capacities=capacities,
            loads=loads,
            minutes=minutes,
            groups=groups,
            min_share=min_share,
        )
        return cls(inst, None)

    @property
    def unreachable_weight(self) -> float:
        """Total weight of the homes no candidate reaches."""
        return float(self._inst.weights[~self._inst.coverable].sum())

    def _entry_costs(self):
        inst = self._inst
        return np.zeros(inst.nnz), np.where(inst.coverable, inst.weights, 0.0)

    def _objective_of(self, sites, assignment):
        return float(len(np.setdiff1d(sites, self._inst.fixed)))

    def _check_feasible(self) -> None:
        inst = self._inst
        self._share_precheck()
        if inst.capacities is not None and inst.group_codes is None:
            self._capacity_precheck(inst.m - len(inst.fixed), need_all=True)

    def _solve(self, method, deadline, gap) -> Answer:
        inst = self._inst
        if inst.capacities is not None:
            # No dedicated heuristic for capacitated covering: HiGHS in every mode.
            if inst.group_codes is None:
                return self._solve_capacitated(deadline, gap)
            return self._exact(deadline, gap, None)
        if inst.group_codes is None and not self._is_core:
            core = cover_core(inst, rows_are_constraints=True)
            if core.inst.n == 0:
                return Answer(np.empty(0, dtype=np.int64), 0.0, "reduction", objective=0.0)
            sub = SetCover(core.inst, None)
            sub._is_core = True
            raw = sub._solve(method, deadline, gap)
            return dataclasses.replace(raw, sites=core.cols[raw.sites], assignment=None)
        if method == "exact":
            return self._exact(deadline, gap, None)
        t0 = time.perf_counter()
        then_exact = method == "auto" and self._auto_exact()
        raw = self._heuristic(deadline, lagrangian=not then_exact)
        if not then_exact or raw.bound >= raw.objective:
            return raw
        exact = self._exact(
            auto_deadline(deadline, time.perf_counter() - t0), gap, raw.sites, allow_none=True
        )
        if exact is None:
            return raw
        exact.solver = raw.solver + "+highs"
        exact.bound = max(exact.bound, raw.bound)
        return exact

    def _heuristic(self, deadline, lagrangian: bool = True, target: int = 0) -> Answer:
        """Greedy cover and a bound. Small models start from the LP relaxation; the Lagrangian
        heuristic and the local search then look for a smaller cover (unless ``lagrangian``
        is false: HiGHS comes next; the Lagrangian still runs when there is no LP bound).
        The local search stops at a cover of ``target`` new sites (p-center's tests)."""
        inst = self._inst
        if inst.group_codes is not None:
            sites = self._greedy_partial()
            res = cover_milp(inst, time_limit=seconds_left(deadline), gap=0.0, relax=True)
            bound = math.ceil(res.objective - 1e-6) if res.x is not None else 0
            solver = "heuristic+lp"
        else:
            need = inst.coverable & ~rows_by_fixed(inst)
            sites, lam, bound = None, None, 0
            solver = "heuristic+lagrangian"
            if inst.nnz <= _tuning.COVER_LP_MAX_ENTRIES:
                res = cover_milp(inst, time_limit=seconds_left(deadline), gap=0.0, relax=True)
                if res.x is not None:
                    # The sites at 1 in the LP, completed greedily.
                    sites = greedy_cover(inst, start=np.flatnonzero(res.x > 1 - 1e-6))
                    lam = np.zeros(inst.n)
                    lam[need] = np.maximum(res.row_dual, 0.0)
                    # The bound is the Lagrangian value of the LP's duals (valid for any λ >= 0,
                    # whatever the solver's tolerances), which equals the LP optimum.
                    e = need[inst.row] & ~inst.is_fixed[inst.col]
                    sigma = np.bincount(inst.col[e], weights=lam[inst.row[e]], minlength=inst.m)
                    value = lam.sum() + np.minimum(1.0 - sigma[~inst.is_fixed], 0.0).sum()
                    bound = max(math.ceil(value - 1e-6), 0)
                    solver = "heuristic+lp"
            if sites is None:
                sites = greedy_cover(inst)
            if (lagrangian or lam is None) and bound < len(sites):
                lag_bound, sites = lagrangian_setcover(inst, need, sites, deadline=deadline, start=lam)
                bound = max(bound, lag_bound)
            if lagrangian and bound < len(sites):
                sites = cover_local_search(
                    inst,
                    sites,
                    lam,
                    deadline=deadline,
                    target=max(bound, target),
                    stall_rounds=_tuning.COVER_ILS_STALL_PER_SITE * len(sites),
                )
        value = float(len(sites))
        return Answer(sites, float(bound), solver, objective=value)

    def _solve_capacitated(self, deadline, gap) -> Answer:
        """Capacitated covering (single sourcing). The split relaxation's fewest sites
        (:func:`split_cover`: a master MIP over the sites, max-flow checks, Benders cuts)
        bound the count from below; when those sites also serve every home single-sourced
        (a small assignment MIP), that is optimal. Otherwise HiGHS solves the full model,
        with the bound as a cut."""
        inst = self._inst
        pool: list[np.ndarray] = []
        tried: list[np.ndarray] = []
        lower = 0
        for _ in range(_tuning.COVER_SPLIT_TRIES):
            status, is_open = split_cover(inst, None, deadline, pool, exclude=tried)
            if status == "infeasible" and not tried:
                self._raise_cover_infeasible()
            if status != "optimal":
                break
            count = int(np.count_nonzero(is_open & ~inst.is_fixed))
            if not tried:
                lower = count  # the first optimum bounds every single-source cover
            elif count > lower:
                break  # the other split optima are used up; HiGHS decides
            limit = seconds_left(deadline)
            limit = (
                _tuning.COVER_SINGLE_SOURCE_S
                if limit is None
                else min(_tuning.COVER_SINGLE_SOURCE_S, 0.5 * limit)
            )
            assignment = single_source(inst, is_open, limit)
            if assignment is not None:
                return Answer(
                    np.flatnonzero(is_open & ~inst.is_fixed),
                    float(lower),
                    "highs+flow",
                    assignment=assignment,
                )
            tried.append(is_open)  # fits only split: ask for another set of the same size
        exact = self._exact(deadline, gap, None, min_new=lower)
        exact.bound = max(exact.bound, float(lower))
        exact.solver = "highs+flow"
        return exact

    def _raise_cover_infeasible(self) -> None:
        inst = self._inst
        what = " the minimum shares" if inst.group_codes is not None else " every reachable home"
        raise InfeasibleError(
            f"{self.name}: no choice of sites covers{what}{within_text(inst)} within the capacities"
        )

    def _greedy_partial(self) -> np.ndarray:
        """Greedy for shares: add the site covering most still-missing group weight."""
        inst = self._inst
        k = len(inst.group_labels)
        codes = inst.group_codes
        ok = codes >= 0
        total = np.bincount(codes[ok], weights=inst.weights[ok], minlength=k)
        need = np.where(np.isnan(inst.group_share), 0.0, inst.group_share * total * (1 - 1e-9))
        covered = rows_by_fixed(inst) & inst.coverable
        is_open = inst.is_fixed.copy()
        chosen: list[int] = []
        while True:
            have = np.bincount(codes[ok & covered], weights=inst.weights[ok & covered], minlength=k)
            deficit = np.maximum(need - have, 0.0)
            if not (deficit > 0).any():
                break
            e = ~covered[inst.row] & (codes[inst.row] >= 0) & ~is_open[inst.col]
            g = codes[inst.row[e]]
            per = np.bincount(inst.col[e] * k + g, weights=inst.weights[inst.row[e]], minlength=inst.m * k)
            gain = np.minimum(per.reshape(inst.m, k), deficit[None, :]).sum(axis=1)
            gain[is_open] = -1
            j = int(np.argmax(gain))
            if gain[j] <= 0:
                break
            chosen.append(j)
            is_open[j] = True
            covered[inst.row[inst.col == j]] = True
        # Drop sites the shares do not need (last chosen first).
        keep = list(chosen)
        for j in chosen[::-1]:
            trial = np.setdiff1d(np.array(keep), [j])
            cov = np.zeros(inst.n, dtype=bool)
            op = inst.is_fixed.copy()
            op[trial] = True
            cov[inst.row[op[inst.col]]] = True
            have = np.bincount(codes[ok & cov], weights=inst.weights[ok & cov], minlength=k)
            if np.all(have >= need):
                keep = list(trial)
        return np.sort(np.array(keep, dtype=np.int64))

    def _exact(self, deadline, gap, start_sites, allow_none: bool = False, min_new: int = 0) -> Answer | None:
        inst = self._inst
        start = None if start_sites is None else cover_start(inst, start_sites)
        res = cover_milp(inst, time_limit=seconds_left(deadline), gap=gap, start=start, min_new=min_new)
        if res.status == "infeasible":
            self._raise_cover_infeasible()
        if res.x is None:
            if allow_none:
                return None
            raise InfeasibleError(
                f"{self.name}: HiGHS found no cover within the time limit; raise time_limit"
            )
        m = inst.m
        sites = np.flatnonzero(res.x[:m] > 0.5)
        assignment = None
        if inst.capacities is not None:
            assignment = assignment_from(res.x[m:], inst)
        bound = math.ceil(res.bound - 1e-6) if np.isfinite(res.bound) else 0.0
        return Answer(sites, float(bound), "highs", assignment=assignment)
