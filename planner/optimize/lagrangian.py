"""Lagrangian bounds (subgradient optimisation, a smoothed dual, a dual LP) and the
p-median's Lagrangian branch and bound."""

from __future__ import annotations

import dataclasses
import math
import time
from typing import NamedTuple

import numpy as np

from planner.optimize import _tuning
from planner.optimize._arrays import first_open, rows_by_fixed
from planner.optimize._deadline import past_deadline, seconds_left
from planner.optimize._highs import Compressed, HighsRun
from planner.optimize.covering import greedy_cover
from planner.optimize.dominance import dominance_dense, renumbered_unsorted, same_sets
from planner.optimize.instance import Instance


def lagrangian_pmedian(
    inst: Instance,
    w_entry: np.ndarray,
    k_new: int,
    upper: float,
    lam0: np.ndarray,
    *,
    integral: bool,
    gap: float,
    deadline: float | None,
    max_iter: int = 600,
    mu0: float = 2.0,
    cap: np.ndarray | None = None,
    usable: np.ndarray | None = None,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Lower bound for the p-median by relaxing the assignment constraints.

    ``L(λ) = Σ_i λ_i + Σ_{j open} Σ_i min(0, W_ij - λ_i)``, the open sites being the fixed ones
    plus the ``k_new`` most negative columns. Any λ gives a valid bound; subgradient steps
    (Held–Karp with Beasley's step halving) move λ towards the LP bound. With ``cap`` (the
    cheapest entry left out of a truncated instance, per row) λ stays below it, where the
    truncated L equals the full one. ``usable`` limits the choice of new sites.
    Returns (bound, best λ, open sites of the best relaxation).
    """
    rows_cov = inst.coverable
    is_fixed = inst.is_fixed
    free = np.flatnonzero(~is_fixed if usable is None else usable & ~is_fixed)
    lam = np.where(rows_cov, lam0, 0.0)
    row, col, m = inst.row, inst.col, inst.m
    best, best_lam, best_open = -math.inf, lam.copy(), inst.fixed
    mu, stall = mu0, 0
    r = np.empty_like(w_entry)
    for _ in range(max_iter):
        np.subtract(w_entry, lam[row], out=r)
        np.minimum(r, 0.0, out=r)
        rho = np.bincount(col, weights=r, minlength=m)
        pick = free[np.argpartition(rho[free], k_new - 1)[:k_new]] if k_new > 0 else free[:0]
        chosen = np.concatenate([inst.fixed, pick])
        value = float(lam.sum() + rho[chosen].sum())
        if value > best + 1e-12 * abs(best if np.isfinite(best) else 1.0):
            best, best_lam, best_open, stall = value, lam.copy(), chosen, 0
        else:
            stall += 1
            if stall >= 15:
                mu, stall = mu / 2, 0
        proven = math.ceil(best - 1e-7) if integral else best
        if upper - proven <= gap * abs(upper) or mu < 1e-5:
            break
        if deadline is not None and time.perf_counter() > deadline:
            break
        is_open = np.zeros(m, dtype=bool)
        is_open[chosen] = True
        served = np.bincount(row[(r < 0) & is_open[col]], minlength=inst.n)
        g = np.where(rows_cov, 1.0 - served, 0.0)
        norm = float(g @ g)
        if norm == 0:  # the relaxation's solution is feasible, hence optimal for this λ
            break
        lam = lam + mu * max(upper - value, 1e-9 * abs(upper)) / norm * g
        if cap is not None:
            np.minimum(lam, cap, out=lam)
    bound = math.ceil(best - 1e-7) if integral else best
    return min(bound, upper), best_lam, best_open


def smooth_min0(x: np.ndarray, tau: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """``-τ log(1 + exp(-x/τ))``, a smooth lower approximation of ``min(0, x)``, and its slope."""
    u = x / tau
    e = np.exp(-np.abs(u))
    value = -tau * (np.maximum(-u, 0) + np.log1p(e))
    slope = np.where(u < 0, 1, e) / (1 + e)
    return value, slope


class SmoothedEntries:
    """The entry terms ``-τ_i log(1 + exp(-(W_ij - λ_i)/τ_i))`` of the smoothed p-median dual
    and their slopes, for one stage's entries (grouped by row).

    Large instances' duals spend most of their time here. Each evaluation runs in place in
    float32 buffers made once per stage: fresh temporaries of this size cost a page fault per
    4 KB, and log1p, np.where and a weighted bincount by row are each several times slower
    than log, a maximum and reduceat.
    """

    def __init__(self, row: np.ndarray, col: np.ndarray, w32: np.ndarray, tau_row: np.ndarray):
        self.row, self.col, self.w32 = row, col, w32
        self.tau = tau_row.astype(np.float32)[row]
        self.inv_tau = 1.0 / self.tau
        self.row_len = np.bincount(row, minlength=len(tau_row))
        self._rows_with = np.flatnonzero(self.row_len)
        self._row_starts = (np.cumsum(self.row_len) - self.row_len)[self._rows_with]
        k = len(row)
        self._u, self._e = np.empty(k, np.float32), np.empty(k, np.float32)
        self._value, self._slope = np.empty(k, np.float32), np.empty(k, np.float32)
        self._below = np.empty(k, dtype=bool)

    def evaluate(self, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(terms, slopes) at ``lam``, in buffers the next call overwrites."""
        u, e, value, slope = self._u, self._e, self._value, self._slope
        # u = (W - λ)/τ; the difference first (W/τ - λ/τ loses more precision in float32,
        # enough to change the multipliers the heuristic restarts from).
        np.take(lam.astype(np.float32), self.row, out=u)
        np.subtract(self.w32, u, out=u)
        np.multiply(u, self.inv_tau, out=u)
        np.abs(u, out=e)
        np.negative(e, out=e)
        np.exp(e, out=e)  # exp(-|u|), in (0, 1]
        np.add(e, 1.0, out=value)
        # The slope 1 / (1 + exp(u)): 1/(1+e) where u < 0, e/(1+e) elsewhere.
        np.less(u, 0.0, out=self._below)
        np.maximum(e, self._below, out=slope)
        np.divide(slope, value, out=slope)
        # -τ (max(-u, 0) + log(1 + e)); e <= 1 keeps log(1 + e) within 1e-7 τ of log1p.
        np.log(value, out=value)
        np.negative(u, out=e)
        np.maximum(e, 0.0, out=e)
        np.add(value, e, out=value)
        np.multiply(value, self.tau, out=value)
        np.negative(value, out=value)
        return value, slope

    def row_sums(self, x: np.ndarray) -> np.ndarray:
        """Per-row sums of an entry array, in double precision (zero for rows without entries)."""
        out = np.zeros(len(self.row_len))
        out[self._rows_with] = np.add.reduceat(x, self._row_starts, dtype=np.float64)
        return out


def _stop_at_deadline(deadline: float | None):
    """An ``optimize.minimize`` callback that ends the run once the deadline has passed."""

    def callback(intermediate_result) -> None:
        if deadline is not None and time.perf_counter() > deadline:
            raise StopIteration

    return callback


def smoothed_dual_pmedian(
    inst: Instance,
    w_entry: np.ndarray,
    k_new: int,
    lam0: np.ndarray,
    mu0: float,
    time_scale_s: float,
    *,
    deadline: float | None,
    stop_at: float = math.inf,
    iters_per_stage: int = 40,
) -> tuple[float, np.ndarray]:
    """Approach the p-median LP bound with L-BFGS on a smoothed Lagrangian dual.

    With the cardinality constraint priced at μ, the Lagrangian dual is
    ``max Σ_i λ_i + Σ_{j fixed} ρ_j + Σ_{j free} min(0, μ + ρ_j) - kμ`` with
    ``ρ_j = Σ_i min(0, W_ij - λ_i)``. Plain subgradient steps converge slowly on large
    instances (one step length for 10⁵ multipliers); replacing each ``min(0, ·)`` by a
    softplus of width τ makes the function smooth, so a quasi-Newton method converges in a
    few hundred evaluations. τ shrinks in stages (continuation). Every λ met is scored by the
    exact, unsmoothed Lagrangian, so the returned value is a valid lower bound.
    Returns (best exact bound, its λ).
    """
    # size: the smoothed objective (a closure) and the continuation stages share the
    # truncated entries, the caps on λ and the stage's terms.
    from scipy import optimize  # local: only the large-instance path needs it

    n, m = inst.n, inst.m
    row, col = inst.row, inst.col
    w_full = w_entry
    cov = inst.coverable
    is_fixed = inst.is_fixed
    w = inst.weights
    w_pos = np.maximum(w, 1e-3 * max(float(w[cov].mean()) if cov.any() else 1.0, 1e-12))
    best_val, best_lam = pmedian_lagrangian_value(inst, w_entry, k_new, lam0)[0], lam0.copy()

    def negative(z: np.ndarray, terms: SmoothedEntries, tau_c: float) -> tuple[float, np.ndarray]:
        lam, mu = z[:n], z[n]
        s, ds = terms.evaluate(lam)
        rho = np.bincount(terms.col, weights=s, minlength=m)
        c, b = smooth_min0(mu + rho, tau_c)
        c[is_fixed] = rho[is_fixed]
        b[is_fixed] = 1.0
        value = lam[cov].sum() + c.sum() - k_new * mu
        grad_lam = np.where(cov, 1.0 - terms.row_sums(b.astype(np.float32)[terms.col] * ds), 0.0)
        grad_mu = float(b[~is_fixed].sum()) - k_new
        return -value, -np.concatenate([grad_lam, [grad_mu]])

    keep, cap = truncation(inst, w_entry, lam0)
    row_all, col_all, w_all = row[keep], col[keep], w_entry[keep]
    # Single precision halves the memory traffic of the smoothed terms; every bound that is
    # reported is evaluated exactly, in double precision, on all entries.
    w32_all = w_all.astype(np.float32)
    start_all = np.concatenate([[0], np.cumsum(np.bincount(row_all, minlength=n))])
    z = np.concatenate([np.where(cov, np.minimum(lam0, cap), 0.0), [max(mu0, 0.0)]])
    # With a deadline, the finest stage repeats while it still gains (large instances run
    # out of stages before their time is up; the bound is then the weak side of the gap).
    stages = list(_tuning.SMOOTH_FRACS) + ([_tuning.SMOOTH_FRACS[-1]] * 1000 if deadline is not None else [])
    for stage, frac in enumerate(stages):
        if deadline is not None and time.perf_counter() > deadline:
            break
        tau_row = frac * time_scale_s * w_pos
        # Each stage works on the entries within SMOOTH_ACTIVE_WIDTHS widths above the
        # current λ (the others add under e^-width each: at the fine stages most entries
        # drop out); λ may not pass a row's first entry left out (rows ascend by cost, so
        # the active entries are a prefix of each row).
        active = w_all <= z[:n][row_all] + _tuning.SMOOTH_ACTIVE_WIDTHS * tau_row[row_all]
        active[start_all[:-1][start_all[:-1] < start_all[1:]]] = True
        terms = SmoothedEntries(row_all[active], col_all[active], w32_all[active], tau_row)
        first_out = start_all[:-1] + terms.row_len
        stage_cap = np.where(first_out < start_all[1:], w_all[np.minimum(first_out, len(w_all) - 1)], np.inf)
        bounds = optimize.Bounds(
            np.concatenate([np.full(n, -np.inf), [0.0]]),
            np.concatenate([np.minimum(cap, stage_cap), [np.inf]]),
        )
        tau_c = 0.1 * frac * max(mu0, 1e-9)
        iters = iters_per_stage if stage < len(_tuning.SMOOTH_FRACS) else _tuning.DUAL_REPEAT_ITERS
        res = optimize.minimize(
            negative,
            z,
            args=(terms, tau_c),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": iters, "maxcor": 10},
            callback=_stop_at_deadline(deadline),
        )
        z = res.x
        value = pmedian_lagrangian_value(inst, w_full, k_new, z[:n])[0]
        gained = value - best_val
        if value > best_val:
            best_val, best_lam = value, z[:n].copy()
        if best_val >= stop_at:
            break
        if stage >= len(_tuning.SMOOTH_FRACS) and gained <= _tuning.DUAL_REPEAT_MIN_GAIN * abs(best_val):
            break
    return best_val, best_lam


def truncation(inst: Instance, w_entry: np.ndarray, lam: np.ndarray, factor: float = 3.0):
    """Entries far above a row's multiplier contribute nothing to the Lagrangian: keep those
    below ``factor`` × λ (and each row's cheapest), and cap λ below the first one left out.
    Dense matrices shrink a lot. Returns (kept entries mask, cap per row)."""
    keep = w_entry <= factor * lam[inst.row] + 1e-9
    keep[inst.indptr[:-1][inst.coverable]] = True
    cap = np.full(inst.n, np.inf)
    np.minimum.at(cap, inst.row[~keep], w_entry[~keep])
    return keep, cap


def pmedian_lagrangian_value(
    inst: Instance, w_entry: np.ndarray, k_new: int, lam: np.ndarray, usable: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """Exact Lagrangian value L(λ), the reduced costs and the open sites of the relaxation
    (new sites chosen among ``usable``, default all)."""
    r = np.minimum(w_entry - lam[inst.row], 0.0)
    rho = np.bincount(inst.col, weights=r, minlength=inst.m)
    free = np.flatnonzero(~inst.is_fixed if usable is None else usable & ~inst.is_fixed)
    pick = (
        free[np.argpartition(rho[free], k_new - 1)[:k_new]]
        if 0 < k_new < len(free)
        else free[: max(k_new, 0)]
    )
    chosen = np.concatenate([inst.fixed, pick])
    value = float(lam[inst.coverable].sum() + rho[chosen].sum())
    return value, r, chosen


class _BranchResult(NamedTuple):
    """What :func:`pmedian_branch_and_bound` found."""

    finished: bool  # every node was pruned or explored
    found: np.ndarray | None  # the cheapest open-site set below the incumbent, if any
    proven: float  # lower bound on the optimum (-inf when not finished)
    nodes: int


def pmedian_branch_and_bound(
    inst: Instance,
    w_entry: np.ndarray,
    k_new: int,
    lam: np.ndarray,
    closed: np.ndarray,
    upper: float,
    gap: float,
    *,
    integral: bool,
    deadline: float | None,
    max_nodes: int,
) -> _BranchResult:
    """Lagrangian branch and bound (Beasley 1993) for a p-median reduced by fixing.

    Proves that no choice of ``k_new`` sites (besides the fixed ones, none of the
    ``closed``) serves every coverable row for less than ``upper·(1 - gap)``, or finds one.
    Each node is a subproblem with some sites forced open or shut; its bound is the
    Lagrangian dual re-optimised by subgradient steps from its parent's λ. A node whose
    bound reaches the target is pruned; otherwise the sites whose forcing would cost
    more than the margin are fixed (as at the root), the relaxation's sites are tried as
    a solution, and the node branches on its most attractive free site (open first).

    Returns a :class:`_BranchResult`: (finished, the cheapest open-site set found below
    ``upper`` or None, the proven lower bound when finished, nodes). Stops unfinished after
    ``max_nodes`` or the deadline.
    """
    # size: one depth-first search whose node step (bound, penalty tests, branching) shares
    # the incumbent and the stack; its docstring is a fifth of it.
    m = inst.m
    is_fixed = inst.is_fixed
    usable = ~closed & ~is_fixed
    rows_cov = inst.coverable
    best_cost, best_open = upper, None
    proven = math.inf  # the least bound over the pruned nodes
    # Depth first: (sites shut by branching, sites opened by branching, λ to start from).
    stack = [(np.zeros(m, dtype=bool), np.zeros(m, dtype=bool), lam)]
    nodes = 0
    while stack:
        if nodes >= max_nodes or past_deadline(deadline):
            return _BranchResult(False, best_open, -math.inf, nodes)
        shut, opened, lam = stack.pop()
        nodes += 1
        target = best_cost - max(gap * abs(best_cost), 1e-9 * abs(best_cost))
        k = k_new - int(opened.sum())
        avail = usable & ~shut & ~opened
        allowed = (avail | opened | is_fixed)[inst.col]
        node = dataclasses.replace(inst.subset(allowed), fixed=np.flatnonzero(is_fixed | opened))
        if k < 0 or k > int(avail.sum()) or np.any(rows_cov & ~node.coverable):
            continue  # no such choice, or a home nobody can serve: nothing in this branch
        w_node = w_entry[allowed]
        bound, lam, _ = lagrangian_pmedian(
            node,
            w_node,
            k,
            best_cost,
            lam,
            integral=integral,
            gap=gap,
            deadline=deadline,
            max_iter=_tuning.BRANCH_ITERATIONS,
            usable=avail,
        )
        if bound >= target:
            proven = min(proven, bound)
            continue
        value, r, chosen = pmedian_lagrangian_value(node, w_node, k, lam, usable=avail)
        is_open = np.zeros(m, dtype=bool)
        is_open[chosen] = True
        cost = open_cost(node, w_node, is_open)
        if cost < best_cost:
            best_cost, best_open = cost, np.flatnonzero(is_open)
            target = best_cost - max(gap * abs(best_cost), 1e-9 * abs(best_cost))
        # Penalty tests: opening an unchosen site or shutting a chosen one raises L by at
        # least the difference of its ρ to the k-th (or (k+1)-th) best.
        rho = np.bincount(node.col, weights=r, minlength=m)
        ranked = np.sort(rho[avail])
        rho_k = ranked[k - 1] if k > 0 else -math.inf
        rho_next = ranked[k] if k < len(ranked) else math.inf
        new_shut = shut | (avail & ~is_open & (value + rho - rho_k >= target))
        new_open = opened | (avail & is_open & (value + rho_next - rho >= target))
        branch = np.flatnonzero(avail & is_open & ~new_open)
        if len(branch) == 0:
            if np.array_equal(new_open, opened):
                proven = min(proven, cost)  # k = 0: this node's one solution, evaluated above
            else:
                stack.append((new_shut, new_open, lam))  # the penalties decided every site
            continue
        j = branch[np.argmin(rho[branch])]
        with_j, without_j = new_open.copy(), new_shut.copy()
        with_j[j] = True
        without_j[j] = True
        stack.append((without_j, new_open, lam))
        stack.append((new_shut, with_j, lam))
    return _BranchResult(True, best_open, min(proven, best_cost), nodes)


def open_cost(inst: Instance, w_entry: np.ndarray, is_open: np.ndarray) -> float:
    """Cost of serving every coverable row from its nearest open site (inf if one can't be)."""
    _, entry = first_open(inst, is_open)
    if np.any(inst.coverable & (entry < 0)):
        return math.inf
    return float(w_entry[entry[inst.coverable]].sum())


def lagrangian_coverage(
    inst: Instance,
    weights: np.ndarray,
    k_new: int,
    lower: float,
    *,
    integral: bool,
    gap: float,
    deadline: float | None,
    max_iter: int = 600,
) -> tuple[float, np.ndarray]:
    """Upper bound for max-coverage by relaxing ``z_i <= Σ_{j covers i} y_j`` (λ >= 0).

    ``L(λ) = C_fixed + Σ_i max(0, w_i - λ_i) + (sum of the k_new largest Σ_{i∈N_j} λ_i)``.
    """
    is_fixed = inst.is_fixed
    by_fixed = np.zeros(inst.n, dtype=bool)
    by_fixed[inst.row[is_fixed[inst.col]]] = True
    const = float(weights[by_fixed].sum())
    rows_free = inst.coverable & ~by_fixed
    keep = rows_free[inst.row] & ~is_fixed[inst.col]
    row, col = inst.row[keep], inst.col[keep]
    free = np.flatnonzero(~is_fixed)
    w = np.where(rows_free, weights, 0.0)
    lam = w.copy()  # start at the trivial bound: the k largest column totals
    best, mu, stall = math.inf, 2.0, 0
    best_pick = free[:0]
    for _ in range(max_iter):
        sigma = np.bincount(col, weights=lam[row], minlength=inst.m)
        pick = free[np.argpartition(-sigma[free], k_new - 1)[:k_new]] if k_new > 0 else free[:0]
        z = w > lam
        value = const + float(np.maximum(w - lam, 0.0).sum() + sigma[pick].sum())
        if value < best - 1e-12 * abs(best if np.isfinite(best) else 1.0):
            best, stall, best_pick = value, 0, pick
        else:
            stall += 1
            if stall >= 15:
                mu, stall = mu / 2, 0
        proven = math.floor(best + 1e-7) if integral else best
        if proven - lower <= gap * abs(lower) or mu < 1e-5:
            break
        if deadline is not None and time.perf_counter() > deadline:
            break
        y = np.zeros(inst.m, dtype=bool)
        y[pick] = True
        cov = np.bincount(row[y[col]], minlength=inst.n)
        g = np.where(rows_free, cov - z, 0.0)
        # Projection: components at λ=0 that would go negative do not count in the step.
        g[(lam <= 0) & (g > 0)] = 0.0
        norm = float(g @ g)
        if norm == 0:
            break
        lam = np.maximum(lam - mu * max(value - lower, 1e-9 * abs(value)) / norm * g, 0.0)
    bound = math.floor(best + 1e-7) if integral else best
    return max(bound, lower), best_pick


class CoverageDual(NamedTuple):
    """Max-coverage's LP bound and what Lagrangian fixing needs from it."""

    bound: float  # upper bound on the covered weight
    pick: np.ndarray  # the sites at 1 in the primal LP solution
    value: float  # L(λ), unrounded
    sigma: np.ndarray  # Σ_{i∈N_j} λ_i per candidate


class CoverageDualLp:
    """Max-coverage's LP bound, from its Lagrangian dual solved as a linear programme.

    ``min Σ_i (w_i - λ_i) + k·v + Σ_j β_j`` s.t. ``β_j + v >= Σ_{i∈N_j} λ_i``,
    ``0 <= λ_i <= w_i``, ``β >= 0``: the same optimum as the primal relaxation, but one row
    per candidate instead of one per home, and far less degenerate (HiGHS solves it tens of
    times faster). Built here, :meth:`run` in any thread (HiGHS
    releases the GIL; building there would hold it against the caller's interchange),
    then :meth:`result`.
    """

    def __init__(
        self, inst: Instance, weights: np.ndarray, k_new: int, *, integral: bool, deadline: float | None
    ):
        self.inst, self.k_new, self.integral = inst, k_new, integral
        is_fixed = inst.is_fixed
        by_fixed = rows_by_fixed(inst)
        self.const = float(weights[by_fixed].sum())
        rows_free = inst.coverable & ~by_fixed
        self.free = np.flatnonzero(~is_fixed)
        self.highs = None
        if k_new <= 0 or not rows_free.any():
            return
        keep = rows_free[inst.row] & ~is_fixed[inst.col]
        rows_u, row = renumbered_unsorted(inst.row[keep], inst.n)
        col_all = inst.col[keep]
        # Homes with the same candidates share one λ (their weights summed): the same LP,
        # fewer columns. entry_col keeps the candidates left out of the LP below: σ is
        # evaluated on every free candidate.
        rep = same_sets(row, col_all, len(rows_u), inst.m, min_share=_tuning.SAME_HOMES_MIN_SHARE)
        if rep is None:
            self.row, self.entry_col, self.w = row, col_all, weights[rows_u]
        else:
            _, group = renumbered_unsorted(rep, len(rows_u))
            first = rep[row] == row
            self.row, self.entry_col = group[row[first]], col_all[first]
            self.w = np.bincount(group, weights=weights[rows_u])
        w = self.w
        n = len(w)
        m_all = len(self.free)
        if m_all * m_all * n <= _tuning.COVERAGE_LP_DOMINANCE_MAX_FLOPS:
            # A candidate whose homes another's include is never needed, in the LP too;
            # it only adds degenerate ties, which slow HiGHS more than finding them costs.
            dense = np.zeros((inst.m, n), dtype=np.float32)
            dense[self.entry_col, self.row] = 1.0
            useful = np.zeros(inst.m, dtype=bool)
            useful[self.free[~dominance_dense(dense[self.free], "subset")]] = True
            keep_lp = useful[self.entry_col]
        else:
            keep_lp = np.ones(len(self.row), dtype=bool)
        self.cols_u, col = renumbered_unsorted(self.entry_col[keep_lp], inst.m)
        row = self.row[keep_lp]
        m = len(self.cols_u)
        # Columns λ (entries: the candidates of each row; the instance is stored by row,
        # so this is its CSR), v (every row), β (one each); built directly, not from triplets.
        indptr = np.concatenate(
            [[0], np.cumsum(np.bincount(row, minlength=n)), len(row) + m + np.arange(m + 1)]
        )
        indices = np.concatenate([col, np.arange(m), np.arange(m)])
        data = np.concatenate([-np.ones(len(row)), np.ones(2 * m)])
        a = Compressed("csc", indptr, indices, data)  # m rows, n + 1 + m columns
        self.highs = HighsRun(
            np.concatenate([-np.ones(n), [k_new], np.ones(m)]),
            a,
            np.zeros(m),
            np.full(m, np.inf),
            np.zeros(n + 1 + m),  # v >= 0: the top k of σ >= 0, empty candidates count 0
            np.concatenate([w, [np.inf], np.full(m, np.inf)]),
            np.zeros(n + 1 + m, dtype=bool),
            time_limit=seconds_left(deadline),
        )

    def run(self) -> None:
        if self.highs is not None:
            self.highs.run()

    def result(self) -> CoverageDual | None:
        """(bound, the sites at 1 in the primal LP solution, L(λ) and Σ_{i∈N_j} λ_i per
        candidate for Lagrangian fixing), or None when HiGHS stopped early. The bound is
        re-evaluated from λ (any λ gives a valid bound, so solver tolerances cannot make it
        wrong)."""
        inst = self.inst
        if self.highs is None:
            return CoverageDual(self.const, self.free[:0], self.const, np.zeros(inst.m))
        res = self.highs.result()
        if res.status != "optimal" or res.x is None:
            return None
        n, m = len(self.w), len(self.cols_u)
        lam = np.clip(res.x[:n], 0.0, self.w)
        sigma = np.bincount(self.entry_col, weights=lam[self.row], minlength=inst.m)
        top = np.sort(sigma[self.free])[::-1][: self.k_new].sum()
        value = self.const + float((self.w - lam).sum() + top)
        bound = math.floor(value + 1e-7) if self.integral else value
        # The primal LP solution y (the duals of these rows): its sites at 1 start the
        # Lagrangian heuristic, which completes them greedily (the top k of a fractional y
        # is a worse start).
        y = np.abs(res.row_dual) if res.row_dual is not None else np.zeros(m)
        pick = self.cols_u[y > 1 - 1e-6][: self.k_new]
        return CoverageDual(bound, pick, value, sigma)


def lagrangian_setcover(
    inst: Instance,
    rows_needed: np.ndarray,
    upper: np.ndarray,
    *,
    deadline: float | None,
    max_iter: int = 400,
    heuristic_every: int = 10,
    start: np.ndarray | None = None,
) -> tuple[int, np.ndarray]:
    """Lower bound on the number of new sites covering ``rows_needed``, and a better cover.

    Beasley (1990): ``L(λ) = Σ_i λ_i + Σ_{j free} min(0, 1 - Σ_{i∈N_j} λ_i)``, λ >= 0,
    rounded up; every few steps the sites of negative reduced cost are completed greedily
    (rows priced by λ) into a cover, keeping the smallest. ``upper`` is a known cover,
    ``start`` optional first multipliers (e.g. the LP relaxation's duals).
    Returns (bound, best cover).
    """
    best_cover = np.asarray(upper, dtype=np.int64)
    if not rows_needed.any():
        return 0, best_cover
    is_fixed = inst.is_fixed
    keep = rows_needed[inst.row] & ~is_fixed[inst.col]
    row, col = inst.row[keep], inst.col[keep]
    size = np.bincount(col, minlength=inst.m).astype(float)
    # Beasley's start: λ_i = min over covering columns of 1/|column|.
    if start is not None:
        lam = np.where(rows_needed, start, 0.0)
    else:
        lam = np.full(inst.n, np.inf)
        np.minimum.at(lam, row, 1.0 / np.maximum(size[col], 1.0))
        lam[~rows_needed | ~np.isfinite(lam)] = 0.0
    best, mu, stall = -math.inf, 2.0, 0
    for it in range(max_iter):
        sigma = np.bincount(col, weights=lam[row], minlength=inst.m)
        reduced = 1.0 - sigma
        reduced[is_fixed] = 0.0
        value = float(lam.sum() + np.minimum(reduced, 0.0).sum())
        if value > best + 1e-12:
            best, stall = value, 0
        else:
            stall += 1
            if stall >= 15:
                mu, stall = mu / 2, 0
        if it % heuristic_every == 0:
            cover = greedy_cover(inst, start=np.flatnonzero(reduced < 0), row_weight=lam)
            if len(cover) < len(best_cover):
                best_cover = cover
        if math.ceil(best - 1e-6) >= len(best_cover) or mu < 1e-4 or past_deadline(deadline):
            break
        y = reduced < 0
        cov = np.bincount(row[y[col]], minlength=inst.n)
        g = np.where(rows_needed, 1.0 - cov, 0.0)
        g[(lam <= 0) & (g < 0)] = 0.0
        norm = float(g @ g)
        if norm == 0:
            break
        lam = np.maximum(lam + mu * max(len(best_cover) - value, 1e-3) / norm * g, 0.0)
    return min(max(math.ceil(best - 1e-6), 0), len(best_cover)), best_cover
