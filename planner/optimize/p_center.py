"""The p-center: ``p`` new sites minimising the worst travel time."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from planner._errors import InfeasibleError
from planner.optimize import _tuning
from planner.optimize._base import LocationModel, median_costs
from planner.optimize._deadline import bisect_with_deadline, past_deadline, seconds_left
from planner.optimize._highs import MilpResult
from planner.optimize.coverage import SetCover
from planner.optimize.covering import (
    assignment_from,
    cover_milp,
    cover_start,
    flow_shortfall,
    single_source,
    split_cover,
    within_text,
)
from planner.optimize.dominance import cover_core
from planner.optimize.instance import build_instance
from planner.optimize.interchange import SwapEngine
from planner.optimize.solution import Answer


class PCenter(LocationModel):
    """p-center: ``p`` new sites minimising the worst travel time of any reachable home.

    Objective: ``max_i cost_s[i, assigned(i)]`` (unweighted: every home counts). Binary
    search over the distinct travel times, each a set-covering test "p new sites or fewer?"
    on the dominance core of the homes and sites within that time: the set cover's LP
    bound and greedy (and, in the heuristic, its Lagrangian and local search) decide most
    radii; exact solves send the rest to HiGHS with the cutoff p + ½. The heuristic counts
    an undecided radius as infeasible: its answer is then above its proven bound. With
    capacities, see :meth:`_solve_capacitated`.
    """

    name = "p-center"
    sense = "min"

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
    ) -> PCenter:
        """Build the model from a demand × candidate travel-time matrix (seconds).

        See :meth:`PMedian.from_cost_matrix` for the parameters. ``weights`` only enter the
        site table (and loads when capacities are given).
        """
        inst = build_instance(cost, weights, fixed=fixed, capacities=capacities, loads=loads, minutes=minutes)
        return cls(inst, p)

    def _entry_costs(self):
        inst = self._inst
        W = inst.weights[inst.row] * inst.cost_s
        return W, np.where(inst.coverable, float(W.sum()) + 1.0, 0.0)

    def _objective_of(self, sites, assignment):
        t = self._assigned_cost(assignment)
        t = t[self._inst.coverable]
        return float(np.nanmax(t)) if len(t) else 0.0

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

    def _feasible(self, radius: float, exact: bool, deadline) -> tuple[bool | None, np.ndarray | None, int]:
        """Can ``p`` new sites serve every reachable home within ``radius``?

        Returns (answer or None when undecided, sites when feasible, proven lower bound on
        the number of new sites needed).
        """
        inst = self._inst
        sub = inst.subset(inst.cost_s <= radius)
        if np.any(inst.coverable & ~sub.coverable):
            return False, None, self.p + 1
        # The covering test on the dominance core (often a tenth of the rows and columns).
        core = cover_core(sub, rows_are_constraints=True)
        if core.inst.n == 0:
            return True, np.empty(0, dtype=np.int64), 0
        cover = SetCover(core.inst, None)
        cover._is_core = True
        raw = cover._heuristic(deadline, lagrangian=not exact, target=self.p)
        lower = int(raw.bound)
        if raw.objective <= self.p:
            return True, core.cols[raw.sites], 0
        if lower > self.p:
            return False, None, lower
        if not exact:
            return None, None, lower
        res = cover_milp(
            core.inst,
            time_limit=seconds_left(deadline),
            gap=0.0,
            start=cover_start(core.inst, raw.sites),
            cutoff=self.p + 0.5,
        )
        return self._decided(res, core.inst.m, core.cols, lower)

    def _decided(self, res: MilpResult, m: int, cols: np.ndarray | None, lower: int):
        """The covering MIP's answer to "p new sites or fewer?" (``cutoff`` p + ½)."""
        if res.status == "infeasible":  # no cover with p sites or fewer
            return False, None, self.p + 1
        if res.x is not None and res.objective <= self.p + 0.5:
            sites = np.flatnonzero(res.x[:m] > 0.5)
            sites = sites if cols is None else cols[sites]
            return True, sites[~self._inst.is_fixed[sites]], 0
        if res.status == "optimal":  # its optimum needs more than p
            return False, None, max(lower, self.p + 1)
        if np.isfinite(res.bound) and res.bound > self.p + 1e-6:
            return False, None, max(lower, math.ceil(res.bound - 1e-6))
        return None, None, lower

    def _solve(self, method, deadline, gap) -> Answer:
        inst = self._inst
        if inst.capacities is not None:
            return self._solve_capacitated(method, deadline, gap)
        exact = method == "exact" or (method == "auto" and self._auto_exact())
        values = np.unique(inst.cost_s)
        lo = self._lowest_index(values)
        hi = len(values) - 1
        ok, best_sites, _ = self._feasible(values[hi], exact, deadline)
        if ok is False:
            self._raise_infeasible_all(deadline)
        # Values below index proven_lo are proven infeasible.
        proven_lo, _, found, undecided = bisect_with_deadline(
            lo, hi, lambda i: self._feasible(values[i], exact, deadline)[:2], deadline
        )
        if found is not None:
            best_sites = found
        if best_sites is None:
            self._raise_infeasible_all(deadline)
        sites = self._pad(best_sites)
        # The covering tests return new sites only: fixed sites serve homes too.
        assignment = self._nearest_assignment(np.union1d(sites, inst.fixed))
        objective = self._objective_of(sites, assignment)
        bound = float(values[min(proven_lo, len(values) - 1)])
        return Answer(
            sites,
            min(bound, objective),
            "highs" if exact else "heuristic+lagrangian",
            objective=objective,
            assignment=assignment,
            status="feasible" if undecided else None,
        )

    def _lowest_index(self, values: np.ndarray) -> int:
        """Every home must reach some site: the largest row minimum is a lower bound."""
        inst = self._inst
        row_min = inst.cost_s[inst.indptr[:-1][inst.coverable]]
        return int(np.searchsorted(values, row_min.max()))

    def _solve_capacitated(self, method, deadline, gap) -> Answer:
        """Capacitated p-center (single sourcing): bounds, then two binary searches.

        1. Start (:meth:`_capacitated_start`): the uncapacitated optimum bounds from below;
           an upper bound from reassigning known site sets.
        2. Split relaxation (:meth:`_split_feasible`): binary search for the smallest
           radius at which p new sites can serve every home when a home's load may be split
           between sites. It proves the lower bound; the site sets it finds are reassigned
           without splitting (:meth:`_bottleneck`) for the upper bound. Homes' loads are
           small next to a site's capacity in practice, so the two usually meet.
        3. When they do not, single-source covering MIPs on the radii between (each test
           half the time left; an undecided one sends the search upwards).

        ``auto`` and ``heuristic`` without a time limit get ``PCENTER_CAPACITATED_AUTO_S``.
        """
        # size: the split search's state (bounds, best sites, cut pool, undecided tests)
        # is where the single-source search starts; the steps are its two loops.
        inst = self._inst
        if method != "exact" and deadline is None:
            deadline = time.perf_counter() + _tuning.PCENTER_CAPACITATED_AUTO_S
        values = np.unique(inst.cost_s)
        lo, best, best_sites, best_assignment = self._capacitated_start(
            values, self._lowest_index(values), method, deadline, gap
        )
        info = {"start_upper_s": float(values[best]) if best_sites is not None else None}
        # Split search on [lo, hi]; hi is split-feasible (a single-source radius is) or,
        # without a start, the largest radius, tested last. Bisection by value: tests at
        # smaller radii have fewer entries and are faster.
        pool: list[np.ndarray] = []
        undecided, tests, proven_lo = False, 0, lo
        if best_sites is None:
            best = hi = len(values) - 1
            probe_top = True
        else:
            hi, probe_top = best, False
        while lo < hi or probe_top:
            if past_deadline(deadline):
                undecided = True
                break
            if lo < hi:
                mid = min(max(int(np.searchsorted(values, 0.5 * (values[lo] + values[hi]))), lo), hi - 1)
            else:
                mid, probe_top = hi, False
            ok, sites = self._split_feasible(values[mid], deadline, pool)
            tests += 1
            if ok is None:
                undecided = True
                if past_deadline(deadline) or mid == len(values) - 1:
                    break
                lo = mid + 1  # undecided (rounding): look above, the bound stays
                continue
            if not ok:
                if mid == len(values) - 1:
                    self._raise_infeasible_all(deadline)
                lo = proven_lo = mid + 1  # infeasible at mid: at every smaller radius too
                continue
            hi = mid
            found = self._bottleneck(np.union1d(sites, inst.fixed), values, lo, deadline)
            if found is not None and (best_sites is None or found[0] < best):
                best, best_sites, best_assignment = found[0], np.setdiff1d(sites, inst.fixed), found[1]
                hi, probe_top = min(hi, best), False
        if best_sites is None:
            best = len(values)  # none yet: split-feasible site sets may not fit single-sourced
        out_of_time = past_deadline(deadline)
        info.update(
            split_tests=tests,
            split_cuts=len(pool),
            split_bound_s=float(values[min(proven_lo, len(values) - 1)]),
        )
        # Single-source tests between the split bound and the best radius found.
        if not out_of_time and proven_lo < best:

            def test(index: int):
                test_deadline = (
                    None
                    if deadline is None
                    else (time.perf_counter() + max(0.5 * (deadline - time.perf_counter()), 0.2))
                )
                ok, sites, assignment = self._single_source_feasible(values[index], test_deadline)
                return ok, (sites, assignment)

            proven_lo, index, found, undecided_mip = bisect_with_deadline(proven_lo, best, test, deadline)
            undecided = undecided or undecided_mip
            if found is not None:
                best, (best_sites, best_assignment) = index, found
        if best_sites is None:
            if not undecided:
                self._raise_infeasible_all(deadline)
            raise InfeasibleError(
                f"{self.name}: no assignment of every reachable home to {self.p} new + "
                f"{len(inst.fixed)} fixed sites within the capacities found within the time limit; "
                "raise time_limit"
            )
        sites = self._pad(best_sites)
        objective = self._objective_of(sites, best_assignment)
        bound = float(values[min(proven_lo, len(values) - 1)])
        return Answer(
            sites,
            min(bound, objective),
            "highs+flow",
            objective=objective,
            assignment=best_assignment,
            status="feasible" if undecided and bound < objective else None,
            info=info,
        )

    def _single_source_feasible(self, radius: float, deadline):
        """(answer or None when undecided, new sites, assignment): the capacitated covering
        MIP with single sourcing, "p new sites or fewer?" (cutoff p + ½)."""
        inst = self._inst
        sub = inst.subset(inst.cost_s <= radius)
        if np.any(inst.coverable & ~sub.coverable):
            return False, None, None
        res = cover_milp(sub, time_limit=seconds_left(deadline), gap=0.0, cutoff=self.p + 0.5)
        ok, sites, _ = self._decided(res, inst.m, None, 0)
        if not ok:
            return ok, None, None
        # The MIP's own assignment: with capacities, homes are not all served by their
        # nearest open site, and the radius is that of this assignment.
        return True, sites, assignment_from(res.x[inst.m :], sub)

    def _split_feasible(self, radius: float, deadline, pool: list) -> tuple[bool | None, np.ndarray | None]:
        """Can ``p`` new sites serve every reachable home within ``radius`` when a home's
        load may be split between sites? (answer or None when undecided, the sites with the
        fixed ones). A relaxation of single sourcing: "no" proves the radius infeasible.
        ``pool`` carries the cut sets to the next radius (:func:`split_cover`)."""
        inst = self._inst
        sub = inst.subset(inst.cost_s <= radius)
        if np.any(inst.coverable & ~sub.coverable):
            return False, None
        status, is_open = split_cover(sub, self.p, deadline, pool)
        if status == "infeasible":
            return False, None
        if status == "undecided":
            return None, None
        return True, np.flatnonzero(is_open)

    def _capacitated_start(self, values: np.ndarray, lo: int, method, deadline, gap):
        """Bounds to start the capacitated search from.

        Capacities only restrict, so the uncapacitated optimum (fast, on the dominance core)
        is a lower bound; its sites with the homes reassigned within the capacities
        (:meth:`_bottleneck`) give the upper bound, or the largest radius when they cannot
        hold the demand. Returns (lowest index not proven infeasible, the upper index, its
        new sites or None, its assignment or None).
        """
        inst = self._inst
        free = PCenter(dataclasses.replace(inst, capacities=None), self.p)
        relaxed = free._solve("exact" if method == "exact" else "auto", deadline, gap)
        lo = max(lo, int(np.searchsorted(values, relaxed.bound)))
        # A short budget: the split search finds better site sets anyway.
        budget = 2 * _tuning.BOTTLENECK_TEST_S
        if deadline is not None:
            budget = min(budget, (deadline - time.perf_counter()) / 3)
        start_deadline = time.perf_counter() + budget
        found = self._bottleneck(np.union1d(relaxed.sites, inst.fixed), values, lo, start_deadline)
        if found is None:
            return lo, len(values) - 1, None, None
        return lo, found[0], np.setdiff1d(relaxed.sites, inst.fixed), found[1]

    def _bottleneck(self, sites: np.ndarray, values: np.ndarray, lo: int, deadline):
        """(index of the smallest radius, assignment) at which ``sites`` (fixed ones
        included) serve every reachable home within the capacities, or None.

        The radius at which a max flow (loads split) fits bounds it from below; single-source
        assignment MIPs with every site fixed open (small: homes × these sites) then test
        from there upwards, doubling the step, and bisect back once one fits.
        """
        inst = self._inst
        is_open = np.zeros(inst.m, dtype=bool)
        is_open[sites] = True
        mine = inst.subset(is_open[inst.col])
        if np.any(inst.coverable & ~mine.coverable):
            return None
        # Each home needs at least its nearest site of these; when the nearest assignment
        # fits the capacities (loose capacities), nothing shorter exists.
        nearest_s = mine.cost_s[mine.indptr[:-1][mine.coverable]].max()
        nearest = self._nearest_assignment(sites)
        has = nearest >= 0
        if np.all(
            np.bincount(nearest[has], weights=inst.loads[has], minlength=inst.m) <= inst.capacities + 1e-9
        ):
            return max(lo, int(np.searchsorted(values, nearest_s))), nearest
        loads = np.where(inst.coverable, inst.loads, 0.0)
        room = np.where(is_open, inst.capacities, 0.0)
        if not flow_shortfall(mine, loads, room)[0]:
            return None  # short of capacity even at the largest radius
        lo, hi = max(lo, int(np.searchsorted(values, nearest_s))), len(values) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if flow_shortfall(mine.subset(mine.cost_s <= values[mid]), loads, room)[0]:
                hi = mid
            else:
                lo = mid + 1

        def assign(index: int) -> np.ndarray | None:
            # A feasibility MIP (generalized assignment) can stall: a test that runs out of
            # its time counts as a misfit and the search moves up.
            limit = seconds_left(deadline)
            limit = _tuning.BOTTLENECK_TEST_S if limit is None else min(_tuning.BOTTLENECK_TEST_S, limit)
            return single_source(mine.subset(mine.cost_s <= values[index]), is_open, limit)

        failed, growth, index, found = lo - 1, 0.02, lo, None
        while found is None:
            if past_deadline(deadline):
                return None
            assignment = assign(index)
            if assignment is not None:
                found = (index, assignment)
            elif index == len(values) - 1:
                return None
            else:
                # Up by 2 %, 4 %, 8 %, ... of the radius (the values are dense).
                failed = index
                index = min(
                    max(int(np.searchsorted(values, values[lo] * (1 + growth))), index + 1), len(values) - 1
                )
                growth *= 2
        while found[0] - failed > 1 and not past_deadline(deadline):
            mid = (failed + found[0]) // 2
            assignment = assign(mid)
            if assignment is None:
                failed = mid
            else:
                found = (mid, assignment)
        return found

    def _pad(self, sites: np.ndarray) -> np.ndarray:
        """Fill up to p new sites, adding those that most reduce the weighted travel time."""
        inst = self._inst
        sites = np.asarray(sites, dtype=np.int64)
        k_left = self.p - len(sites)
        if k_left <= 0:
            return sites
        W, P = median_costs(inst)  # the p-median's costs: the padding minimises travel time
        inst_fixed = dataclasses.replace(inst, fixed=np.unique(np.concatenate([inst.fixed, sites])))
        eng = SwapEngine(inst_fixed, W, P, k_left)
        eng.greedy()
        return np.setdiff1d(eng.open_sites(), inst.fixed)

    def _raise_infeasible_all(self, deadline) -> None:
        inst = self._inst
        if inst.capacities is None:
            self._raise_too_few(self.p, "cover every reachable home", deadline)
        raise InfeasibleError(
            f"{self.name}: no choice of {self.p} new + {len(inst.fixed)} fixed sites serves the "
            f"{int(inst.coverable.sum())} reachable homes within the capacities"
        )
