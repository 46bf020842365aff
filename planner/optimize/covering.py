"""Set covering: greedy, local search, the covering MIP (also the feasibility test of other
models) and the split relaxation of capacitated covering (max flow, Benders cuts)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import sparse

from planner.optimize import _tuning
from planner.optimize._arrays import csc_order, row_entries, rows_by_fixed
from planner.optimize._deadline import past_deadline, seconds_left
from planner.optimize._highs import (
    Compressed,
    HighsRun,
    Lp,
    MilpResult,
    site_bounds,
)
from planner.optimize.dominance import subset_pairs
from planner.optimize.instance import Instance


def greedy_cover(
    inst: Instance,
    start: np.ndarray | None = None,
    row_weight: np.ndarray | None = None,
    order: np.ndarray | None = None,
    ptr: np.ndarray | None = None,
) -> np.ndarray:
    """New sites covering every coverable row: greedy + redundancy removal.

    Starts from ``start`` (new sites already chosen) and each time adds the candidate that
    covers the largest weight of uncovered rows (``row_weight``, default 1 per row; the
    Lagrangian heuristic passes the multipliers, with a small count term to break ties).
    """
    is_fixed = inst.is_fixed
    is_open = is_fixed.copy()
    chosen: list[int] = []
    if start is not None and len(start):
        is_open[start] = True
        chosen = [int(j) for j in np.setdiff1d(start, inst.fixed)]
    need = inst.coverable.copy()
    need[inst.row[is_open[inst.col]]] = False
    rw = np.ones(inst.n) if row_weight is None else np.asarray(row_weight, dtype=float) + 1e-6
    score = np.bincount(inst.col[need[inst.row]], weights=rw[inst.row[need[inst.row]]], minlength=inst.m)
    score = score.astype(float)
    score[is_open] = -np.inf
    if order is None:
        order, ptr = csc_order(inst)
    csc_row = inst.row[order]
    left = int(need.sum())
    # Small models: recounting every score is cheaper than finding the entries to update.
    recount = inst.nnz <= _tuning.GREEDY_RECOUNT_MAX_ENTRIES
    while left > 0:
        j = int(np.argmax(score))
        rows = csc_row[ptr[j] : ptr[j + 1]]
        rows = rows[need[rows]]
        need[rows] = False
        left -= len(rows)
        is_open[j] = True
        chosen.append(j)
        if recount:
            e = need[inst.row]
            score = np.bincount(inst.col[e], weights=rw[inst.row[e]], minlength=inst.m).astype(
                float, copy=False
            )
            score[is_open] = -np.inf
            continue
        pos, local = row_entries(inst, rows)
        score -= np.bincount(inst.col[pos], weights=rw[rows][local], minlength=inst.m)
        score[j] = -np.inf
    return _drop_redundant(inst, np.array(chosen, dtype=np.int64), order, ptr)


def cover_local_search(
    inst: Instance,
    cover: np.ndarray,
    row_weight: np.ndarray | None,
    *,
    deadline: float | None,
    stall_rounds: int,
    target: int = 0,
    q: int = 4,
    seed: int = 0,
) -> np.ndarray:
    """Iterated local search for set covering: take a site out of the cover together with
    the ``q - 1`` sites sharing the most homes with it, cover again greedily (homes priced
    by count and by ``row_weight``, e.g. the LP duals, in turn) and drop redundant sites;
    keep the new cover when it is no larger (equal covers let the search drift). Stops after
    ``stall_rounds`` rounds without a smaller cover, at the deadline, or at ``target``.
    It finds the smaller covers that greedy and Lagrangian heuristics miss on large models.
    """
    rng = np.random.default_rng(seed)
    cur = best = np.asarray(cover, dtype=np.int64)
    overlap = None
    row_len = np.diff(inst.indptr).astype(float)
    if float(row_len @ row_len) <= _tuning.CORE_MAX_PAIRS:
        a_mat = sparse.csr_array(
            (np.ones(inst.nnz, dtype=np.int32), inst.col, inst.indptr), shape=(inst.n, inst.m)
        )
        overlap = (a_mat.T @ a_mat).tocsr()
    order, ptr = csc_order(inst)
    stall = 0
    it = 0
    while stall < stall_rounds and len(best) > target and not past_deadline(deadline) and len(cur):
        it += 1
        j = int(rng.choice(cur))
        if overlap is not None:
            nb = overlap.indices[overlap.indptr[j] : overlap.indptr[j + 1]]
            share = overlap.data[overlap.indptr[j] : overlap.indptr[j + 1]]
            inside = np.isin(nb, cur)
            out = nb[inside][np.argsort(-share[inside], kind="stable")[:q]]
        else:
            out = rng.choice(cur, min(q, len(cur)), replace=False)
        new = greedy_cover(
            inst,
            start=np.setdiff1d(cur, out),
            row_weight=row_weight if it % 2 else None,
            order=order,
            ptr=ptr,
        )
        stall += 1
        if len(new) <= len(cur):
            cur = new
            if len(new) < len(best):
                best, stall = new, 0
    return best


def _drop_redundant(inst: Instance, chosen: np.ndarray, order=None, ptr=None) -> np.ndarray:
    """Remove new sites whose rows are all covered twice (smallest sites first)."""
    if order is None:
        order, ptr = csc_order(inst)
    csc_row = inst.row[order]
    is_open = inst.is_fixed.copy()
    is_open[chosen] = True
    times = np.bincount(inst.row[is_open[inst.col]], minlength=inst.n)
    keep = list(chosen)
    chosen = np.asarray(chosen, dtype=np.int64)
    # Only sites redundant now can become redundant (removals lower the counts): test
    # those, the ones covering the fewest rows first (the likeliest to go).
    short = np.bincount(inst.col[times[inst.row] < 2], minlength=inst.m)
    chosen = chosen[short[chosen] == 0]
    size = ptr[chosen + 1] - ptr[chosen]
    for j in chosen[np.argsort(size, kind="stable")]:
        rows = csc_row[ptr[j] : ptr[j + 1]]
        if np.all(times[rows] >= 2):
            times[rows] -= 1
            keep.remove(j)
    return np.sort(np.array(keep, dtype=np.int64))


def cover_milp(
    inst: Instance,
    *,
    time_limit: float | None,
    gap: float,
    start: np.ndarray | None = None,
    relax: bool = False,
    cutoff: float | None = None,
    min_new: int = 0,
) -> MilpResult:
    """Fewest new sites so every coverable row is covered (and served within capacity).

    ``cutoff``: only covers with fewer sites are wanted; "infeasible" then means none exists.
    ``min_new``: a proven lower bound on the new sites (a cut that helps HiGHS prove).

    With groups and shares, only the required share of each group's weight must be covered.
    Variables: y (sites), then z (rows, when shares) or x (entries, when capacities).
    """
    m, n = inst.m, inst.n
    lp_cost = np.where(inst.is_fixed, 0.0, 1.0)
    lb, ub = site_bounds(inst)
    partial = inst.group_codes is not None
    cap = inst.capacities is not None
    rows_need = np.flatnonzero(inst.coverable)
    if cap:
        nx = inst.nnz
        lp = Lp(m + nx)
        e = np.arange(nx)
        # Each row served once (or at most once when only a share is required).
        r_local = np.searchsorted(rows_need, inst.row)
        lp.add(r_local, m + e, 1.0, np.zeros(len(rows_need)) if partial else np.ones(len(rows_need)), 1.0)
        add_links_and_capacity(lp, inst, m)
        served = (m + e, inst.weights[inst.row], inst.row)
        col_lb = np.concatenate([lb, np.zeros(nx)])
        col_ub = np.concatenate([ub, np.ones(nx)])
        integer = np.ones(m + nx, dtype=bool)
        cost = np.concatenate([lp_cost, np.zeros(nx)])
    elif partial:
        nz = len(rows_need)
        lp = Lp(m + nz)
        z_of_row = np.full(n, -1)
        z_of_row[rows_need] = np.arange(nz)
        keep = inst.coverable[inst.row]
        zr = z_of_row[inst.row[keep]]
        lp.add(
            np.concatenate([np.arange(nz), zr]),
            np.concatenate([m + np.arange(nz), inst.col[keep]]),
            np.concatenate([np.ones(nz), -np.ones(len(zr))]),
            np.full(nz, -np.inf),
            0.0,
        )
        served = (m + np.arange(nz), inst.weights[rows_need], rows_need)
        col_lb = np.concatenate([lb, np.zeros(nz)])
        col_ub = np.concatenate([ub, np.ones(nz)])
        integer = np.concatenate([np.ones(m, dtype=bool), np.zeros(nz, dtype=bool)])
        cost = np.concatenate([lp_cost, np.zeros(nz)])
    else:
        return _plain_cover_milp(
            inst,
            lp_cost,
            lb,
            ub,
            min_new,
            time_limit=time_limit,
            gap=gap,
            start=start,
            relax=relax,
            cutoff=cutoff,
        )
    if partial:
        add_share_rows(lp, inst, *served)
    if min_new > 0:
        free = np.flatnonzero(~inst.is_fixed)
        lp.add(np.zeros(len(free), dtype=np.int64), free, 1.0, [float(min_new)], np.inf)
    return lp.solve(
        cost, col_lb, col_ub, integer, time_limit=time_limit, gap=gap, start=start, relax=relax, cutoff=cutoff
    )


def _plain_cover_milp(
    inst: Instance, lp_cost: np.ndarray, lb: np.ndarray, ub: np.ndarray, min_new: int, **kwargs
) -> MilpResult:
    """:func:`cover_milp` without capacities or shares (keywords: see :class:`HighsRun`)."""
    # Rows: the homes not covered by fixed sites, each a row of the instance: its CSR
    # is the constraint matrix (no triplets to sort: most of the time on small cores).
    need = inst.coverable & ~rows_by_fixed(inst)
    lengths = np.diff(inst.indptr)[need]
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = inst.col[need[inst.row]]
    row_lb = np.ones(len(lengths))
    if min_new > 0:
        free = np.flatnonzero(~inst.is_fixed)
        indptr = np.append(indptr, indptr[-1] + len(free))
        indices = np.concatenate([indices, free])
        row_lb = np.append(row_lb, float(min_new))
    a = Compressed("csr", indptr, indices, np.ones(len(indices)))  # len(row_lb) rows, m columns
    run = HighsRun(
        lp_cost, a, row_lb, np.full(len(row_lb), np.inf), lb, ub, np.ones(inst.m, dtype=bool), **kwargs
    )
    run.run()
    return run.result()


def add_links_and_capacity(lp: Lp, inst: Instance, x0: int) -> None:
    """x_e <= y_j for every entry e = (i, j), and Σ_i load_i x_ij <= Q_j y_j."""
    nx = inst.nnz
    e = np.arange(nx)
    lp.add(
        np.concatenate([e, e]),
        np.concatenate([x0 + e, inst.col]),
        np.concatenate([np.ones(nx), -np.ones(nx)]),
        np.full(nx, -np.inf),
        0.0,
    )
    if inst.capacities is not None:
        j = np.arange(inst.m)
        lp.add(
            np.concatenate([inst.col, j]),
            np.concatenate([x0 + e, j]),
            np.concatenate([inst.loads[inst.row], -inst.capacities]),
            np.full(inst.m, -np.inf),
            0.0,
        )


def assignment_from(x: np.ndarray, inst: Instance) -> np.ndarray:
    """The site of each row from a MIP's entry variables ``x`` (one per entry of ``inst``;
    -1 where a row has none at 1)."""
    chosen = x > 0.5
    assignment = np.full(inst.n, -1, dtype=np.int64)
    assignment[inst.row[chosen]] = inst.col[chosen]
    return assignment


def add_share_rows(lp: Lp, inst: Instance, var: np.ndarray, w: np.ndarray, var_row: np.ndarray) -> None:
    """Σ_{i in g} w_i served_i >= share_g × (total weight of g), for each group with a share.

    ``var`` are the columns counting as "served" (z_i or x_ij), ``w`` their weights and
    ``var_row`` the demand row of each.
    """
    codes = inst.group_codes
    ok_rows = codes >= 0
    total = np.bincount(codes[ok_rows], weights=inst.weights[ok_rows], minlength=len(inst.group_labels))
    active = np.flatnonzero(~np.isnan(inst.group_share) & (total > 0))
    if len(active) == 0:
        return
    local = np.full(len(inst.group_labels), -1)
    local[active] = np.arange(len(active))
    g = codes[var_row]
    ok = (g >= 0) & (local[np.maximum(g, 0)] >= 0)
    # A relative slack of 1e-9 so that float rounding in the weights cannot cut off a cover
    # that meets the share exactly.
    need = inst.group_share[active] * total[active] * (1 - 1e-9)
    lp.add(local[g[ok]], var[ok], w[ok], need, np.inf)


def min_new_to_cover(inst: Instance, time_limit: float | None) -> tuple[int, int, bool]:
    """(lower bound, best count, proven) of new sites needed to cover every coverable row."""
    greedy = greedy_cover(inst) if inst.capacities is None else None
    res = cover_milp(
        inst, time_limit=time_limit, gap=0.0, start=None if greedy is None else cover_start(inst, greedy)
    )
    if res.status == "infeasible":
        return -1, -1, True
    best = round(res.objective) if res.x is not None else -1
    lower = math.ceil(res.bound - 1e-6) if np.isfinite(res.bound) else 0
    return lower, best, res.status == "optimal"


def cover_start(inst: Instance, sites: np.ndarray) -> np.ndarray | None:
    if inst.group_codes is not None or inst.capacities is not None:
        return None
    y = inst.is_fixed.astype(float)
    y[sites] = 1.0
    return y


def complete_cover_start(inst: Instance, sites: np.ndarray, k: int) -> np.ndarray:
    """``sites`` filled up to ``k`` greedily (most weight newly covered first): a known
    solution mapped to a core loses the sites the core left out (dominated), and HiGHS
    ignores a start that does not open exactly k."""
    sites = list(sites)
    covered = np.zeros(inst.n, dtype=bool)
    covered[inst.row[np.isin(inst.col, sites)]] = True
    while len(sites) < k:
        gain = np.bincount(
            inst.col, weights=np.where(covered[inst.row], 0.0, inst.weights[inst.row]), minlength=inst.m
        )
        gain[sites] = -1.0
        j = int(np.argmax(gain))
        sites.append(j)
        covered[inst.row[inst.col == j]] = True
    return np.asarray(sites, dtype=np.int64)


def flow_shortfall(inst: Instance, loads: np.ndarray, supply: np.ndarray) -> tuple[bool, np.ndarray | None]:
    """Can the sites absorb every home's load along the instance's entries, loads split at
    will, with ``supply[j]`` room at site j (0: closed)? (yes, None) or (no, the homes of a
    violated cut).

    Max flow source → home (its load) → site it reaches → sink (the site's room), by
    scipy's Dinic on integers: loads rounded up and room down, so a full integer flow is a
    true one. When it falls short, the homes the source still reaches in the residual
    graph form the min cut's set H, whose load exceeds the room within reach of H. That is
    re-checked in floating point; (no, None) means the shortfall came from rounding alone
    (undecided).
    """
    from scipy.sparse import csgraph

    n, m = inst.n, inst.m
    total = float(loads.sum())
    if total <= 0:
        return True, None
    # A power of two: whole-number loads and capacities stay exact (no rounding shortfall
    # when a cut is tight); every value and the flow fit in 32 bits.
    scale = 2.0 ** min(math.floor(math.log2(2.0**28 / total)), 1000)
    load_int = np.ceil(loads * scale).astype(np.int64)
    room_int = np.floor(np.minimum(supply, total) * scale).astype(np.int64)
    open_sites = np.flatnonzero(room_int > 0)
    use = room_int[inst.col] > 0
    row, col = inst.row[use], inst.col[use]
    source, sink = n + m, n + m + 1
    graph = sparse.csr_array(
        (
            np.concatenate([load_int, load_int[row], room_int[open_sites]]).astype(np.int32),
            (
                np.concatenate([np.full(n, source), row, n + open_sites]),
                np.concatenate([np.arange(n), n + col, np.full(len(open_sites), sink)]),
            ),
        ),
        shape=(n + m + 2, n + m + 2),
    )
    flow = csgraph.maximum_flow(graph, source, sink)
    if flow.flow_value >= load_int.sum():
        return True, None
    residual = graph - flow.flow  # forward edges: capacity - flow; reverse edges: + flow
    residual.data = np.maximum(residual.data, 0)
    residual.eliminate_zeros()
    reached = csgraph.breadth_first_order(residual, source, directed=True, return_predecessors=False)
    members = np.zeros(n, dtype=bool)
    members[reached[reached < n]] = True
    near = np.zeros(m, dtype=bool)
    near[inst.col[members[inst.row]]] = True
    if not float(loads[members].sum()) > float(supply[near].sum()) * (1 + 1e-9) + 1e-9:
        return False, None
    return False, members


def split_cover(
    inst: Instance,
    max_new: int | None,
    deadline: float | None,
    pool: list[np.ndarray] | None = None,
    exclude: list[np.ndarray] | tuple = (),
) -> tuple[str, np.ndarray | None]:
    """Sites serving every coverable row within capacity when a row's load may be split
    between sites: the split relaxation of capacitated covering.

    ``max_new``: any solution with at most that many new sites ("feasible"); None: the
    fewest new sites ("optimal"). Returns (status, open-site mask), status also
    "infeasible" (proven, even split) or "undecided" (time up, or a rounding tie).

    Benders decomposition: a master MIP over the sites alone (each row within reach of an
    open site, capacity cuts) proposes sites; a max flow checks them
    (:func:`flow_shortfall`). A flow short of the demand yields homes H whose load exceeds
    the capacity open within reach of them, and the cut ``Σ_{j within reach of H} Q_j y_j
    >= load(H)`` joins the master, first for its LP relaxation (fast; a fractional y gives
    each site room Q_j y_j), then for its integer proposals. The master starts with one
    such cut per row i, for H = the rows whose reachable sites all reach i too. Cut sets
    hold for any reach (with that reach's sites): ``pool`` carries them between calls.
    ``exclude``: open-site masks not to propose again.
    """
    n, m = inst.n, inst.m
    pool = [] if pool is None else pool
    loads = np.where(inst.coverable, inst.loads, 0.0)
    caps = inst.capacities
    need = np.flatnonzero(inst.coverable)
    rows_of_need = np.searchsorted(need, inst.row)  # every entry's row is coverable
    lp = Lp(m)
    lp.add(rows_of_need, inst.col, 1.0, np.ones(len(need)), np.inf)
    load_near = loads[need].copy()
    per_site = np.bincount(inst.col, minlength=m).astype(float)
    if float(per_site @ per_site) <= _tuning.CORE_MAX_PAIRS:  # else only each row's own load
        a, b = subset_pairs(inst.row, inst.col, n, m)
        load_near += np.bincount(b, weights=loads[a], minlength=n)[need]
    lp.add(rows_of_need, inst.col, caps[inst.col], load_near, np.inf)
    for members in pool:
        _add_flow_cut(lp, inst, members, loads)
    free = np.flatnonzero(~inst.is_fixed)
    for mask in exclude:
        chosen = np.flatnonzero(mask & ~inst.is_fixed)
        lp.add(np.zeros(len(chosen), dtype=np.int64), chosen, 1.0, [-np.inf], len(chosen) - 1.0)
    if max_new is not None:
        lp.add(np.zeros(len(free), dtype=np.int64), free, 1.0, [-np.inf], float(max_new))
        cost = np.zeros(m)
    else:
        cost = np.where(inst.is_fixed, 0.0, 1.0)
    lb, ub = site_bounds(inst)
    integer = np.ones(m, dtype=bool)
    rounds, relax = 0, True
    while True:
        if past_deadline(deadline):
            return "undecided", None
        res = lp.solve(cost, lb, ub, integer, time_limit=seconds_left(deadline), gap=0.0, relax=relax)
        rounds += 1
        if res.status == "infeasible":
            return "infeasible", None
        if res.x is None or (not relax and res.status != "optimal" and max_new is None):
            return "undecided", None
        y = np.clip(res.x, 0.0, 1.0) if relax else (res.x > 0.5).astype(float)
        full, members = flow_shortfall(inst, loads, caps * y)
        if full and not relax:
            return ("feasible" if max_new is not None else "optimal"), y > 0.5
        if full or members is None or (relax and rounds >= _tuning.SPLIT_LP_ROUNDS):
            if not relax:
                return "undecided", None  # short only by rounding: cannot tell
            relax = False
            continue
        for part in _violated_parts(inst, members, loads, caps * y):
            pool.append(part)
            _add_flow_cut(lp, inst, part, loads)


def _violated_parts(
    inst: Instance, members: np.ndarray, loads: np.ndarray, room: np.ndarray
) -> list[np.ndarray]:
    """The cut set split into its clusters (rows linked through sites they reach): their
    reaches are disjoint, so at least one is violated on its own; each violated one is a
    separate, stronger cut (the whole set when none is smaller)."""
    from scipy.sparse import csgraph

    e = members[inst.row]
    rows, cols = inst.row[e], inst.col[e]
    graph = sparse.csr_array(
        (np.ones(len(rows)), (rows, inst.n + cols)), shape=(inst.n + inst.m, inst.n + inst.m)
    )
    _, label = csgraph.connected_components(graph, directed=False)
    label_rows = label[: inst.n]
    parts = []
    for lab in np.unique(label_rows[members]):
        part = members & (label_rows == lab)
        near = np.zeros(inst.m, dtype=bool)
        near[inst.col[part[inst.row]]] = True
        if float(loads[part].sum()) > float(room[near].sum()) * (1 + 1e-9) + 1e-9:
            parts.append(part)
    return parts or [members]


def _add_flow_cut(lp: Lp, inst: Instance, members: np.ndarray, loads: np.ndarray) -> None:
    """``Σ_{j within reach of H} Q_j y_j >= load(H)`` for the rows H in ``members``."""
    near = np.zeros(inst.m, dtype=bool)
    near[inst.col[members[inst.row]]] = True
    sites = np.flatnonzero(near)
    lp.add(
        np.zeros(len(sites), dtype=np.int64),
        sites,
        inst.capacities[sites],
        [float(loads[members].sum())],
        np.inf,
    )


def single_source(inst: Instance, is_open: np.ndarray, time_limit: float | None) -> np.ndarray | None:
    """An assignment of every coverable row to one open site it reaches, within the
    capacities (a feasibility MIP, generalized assignment), or None when none is found."""
    sub = dataclasses.replace(inst.subset(is_open[inst.col]), fixed=np.flatnonzero(is_open))
    if np.any(inst.coverable & ~sub.coverable):
        return None
    res = cover_milp(sub, time_limit=time_limit, gap=0.0)
    if res.x is None or res.status == "infeasible":
        return None
    return assignment_from(res.x[inst.m :], sub)


def within_text(inst: Instance) -> str:
    return f" within {inst.limit_s / 60:g} min" if inst.limit_s is not None else ""
