"""Facility-location models: p-median, maximal covering, set covering and p-center.

Four classic models share one small interface in the style of PySAL spopt::

    model = PMedian.from_cost_matrix(cost_s, weights, p=5, fixed=existing)
    result = model.solve()            # method="auto" | "exact" | "heuristic"
    result.sites, result.objective, result.gap, result.table()

- :class:`PMedian` minimises total weighted travel time with ``p`` new sites;
- :class:`MaxCoverage` (MCLP) maximises the weighted demand within ``minutes`` of a site;
- :class:`SetCover` (LSCP) finds the fewest new sites so that every reachable home (or a
  minimum share of every sub-area) is within ``minutes``;
- :class:`PCenter` minimises the worst travel time.

Conventions, the same in every model
------------------------------------
``cost``
    Demand × candidate travel times in **seconds**, a dense numpy array or a scipy.sparse
    matrix. Dense: ``np.inf`` marks an unreachable pair. Sparse: a missing entry means
    unreachable (beyond the routing cut-off); an explicitly stored zero is a real zero cost.
    NaN, negative times or a wrong shape raise :class:`~planner._errors.InputError`.
``weights``
    Demand weight per row (default 1), e.g. :func:`demand_weights` (population plus the
    plan's priority groups). Used in the objective and in coverage shares.
``fixed``
    Candidate indices that are already open (existing facilities). They stay open, serve
    demand and count towards coverage. **``p`` counts NEW sites only**: the answer opens
    ``p + len(fixed)`` sites (:class:`SetCover` minimises the number of new sites).
``capacities``, ``loads``
    Optional capacity per candidate and load per demand row (default: the weights). With
    capacities every home is served by exactly one site (single sourcing) and no site serves
    more than its capacity.
``minutes``
    Service standard in minutes; a pair is "within" it when ``cost_s <= 60 * minutes``.
    Pairs beyond it are not used: coverage models only count covered homes, and
    :class:`PMedian`/:class:`PCenter` then require every reachable home to be served within it.
Unreachable homes
    Homes that no candidate reaches (within ``minutes`` when given) are excluded from the
    model, not an error; they are reported in ``model.unreachable`` and
    ``result.unreachable``.

Solvers
-------
Coverage models without capacities or shares are first reduced by dominance (Toregas &
ReVelle 1973): a candidate whose homes are a subset of another's is dropped, and so is a
home implied by another (set covering) or merged with homes of the same candidates
(max-coverage, weights summed). On the benchmarks this leaves a tenth of the set-covering
model (:func:`_cover_core`). The pairs tested are those sharing a set's rarest element
(:func:`_subset_pairs`).

``method="exact"`` builds the mixed-integer programme and solves it with HiGHS
(``highspy``); stopped by ``time_limit`` it reports HiGHS's dual bound and gap.

``method="heuristic"`` works on the sparse matrix with numpy array operations:

- p-median and max-coverage: greedy start and fast vertex substitution (Whitaker 1983;
  Resende & Werneck 2004), restarted from the relaxation's sites; the p-median then
  re-optimises windows of neighbouring sites (POPMUSIC, Taillard 2003) and runs iterated
  local search (large instances with a time limit: the search alone); small max-coverage
  models price every swap by dense products instead (:class:`_DenseCoverSwap`, the same
  moves); set covering:
  greedy from the LP's sites at 1, Beasley's (1990) Lagrangian heuristic, then a local
  search that takes out a few neighbouring sites and covers their homes again
  (:func:`_cover_local_search`);
- a bound: for the p-median by Lagrangian relaxation, the dual smoothed and maximised by
  L-BFGS (continuation on the smoothing width), then polished by subgradient steps; for
  max-coverage the LP bound, from the Lagrangian dual written as an LP with one row per
  candidate (HiGHS solves it in milliseconds, the primal relaxation in hundreds), and
  subgradient optimisation on large models (while HiGHS runs, numpy's BLAS keeps to one
  thread: on two cores its spinning workers would take HiGHS's); for set covering the LP
  relaxation of the core.
  Every bound reported is re-evaluated as the exact Lagrangian value of some multipliers,
  hence valid, so every answer carries its gap.
  On large p-median instances (``PARALLEL_MIN_ENTRIES``) the bound is computed in a forked
  process on a second core while the main process improves the solution.

``method="auto"`` runs the heuristic and, when its gap is above ``gap`` and the model is
small (``EXACT_MAX_ENTRIES``), closes it exactly within a time budget
(``AUTO_EXACT_FACTOR``) unless ``time_limit`` is given. For the p-median and max-coverage
Lagrangian fixing comes first (Beasley 1993: the sites and assignments that cannot be part
of a better solution are left out); the p-median's rest goes to a Lagrangian branch and
bound (:func:`_pmedian_branch_and_bound`; small models skip the window search before it),
then to HiGHS if that does not finish; max-coverage's to HiGHS on its core, started from
the heuristic's sites; the other models' to HiGHS warm-started from the heuristic.

The p-center is solved by binary search over the distinct travel times, each step a
set-covering feasibility test (HiGHS; greedy and Lagrangian bounds decide most steps first).
With capacities each step tests the split relaxation (loads may be divided between sites):
a master MIP over the sites, a max flow to check its proposal, Benders cuts from the flow's
min cut (the classical decomposition of capacitated covering); the site sets found are then
reassigned without splitting for the upper bound.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import multiprocessing
import threading
import time
from typing import Any, Callable, ClassVar, Hashable, Literal, Mapping, NamedTuple

import highspy
import numpy as np
import pandas as pd
from scipy import sparse
from threadpoolctl import ThreadpoolController

from planner import settings
from planner._errors import InfeasibleError, InputError

__all__ = [
    "MaxCoverage",
    "PCenter",
    "PMedian",
    "SetCover",
    "Solution",
    "demand_weights",
]

Method = Literal["auto", "exact", "heuristic"]

#: ``method="auto"`` solves exactly (after the heuristic) when the sparse cost matrix has at
#: most this many usable entries; above it the heuristic's answer and proven gap are final.
EXACT_MAX_ENTRIES = 250_000
#: The same for models with capacities (binary assignment variables: harder MIPs).
EXACT_MAX_ENTRIES_CAPACITATED = 60_000
#: Without a time limit, ``method="auto"`` gives its exact phase (after the heuristic) this
#: many times the heuristic's time, and at least ``AUTO_EXACT_MIN_S`` seconds; when it runs
#: out, the heuristic's answer comes back with the best proven bound.
AUTO_EXACT_FACTOR = 2.0
AUTO_EXACT_MIN_S = 10.0
#: Capacitated p-center's searches are MIP-based in every mode: without a time limit,
#: ``method="auto"`` (and ``"heuristic"``) give it this many seconds, then return the best
#: radius found with the proven bound.
PCENTER_CAPACITATED_AUTO_S = 30.0
#: Split relaxation of capacitated covering (p-center tests, set cover): rounds of cuts on
#: the LP relaxation before the MIP's (more rounds tail off: each adds one cut to an ever
#: larger LP).
SPLIT_LP_ROUNDS = 20
#: Capacitated set cover: seconds for the single-source assignment of the split
#: relaxation's sites before the full MIP takes over.
COVER_SINGLE_SOURCE_S = 10.0
#: Capacitated set cover: split-optimal site sets tried single-sourced before the full MIP.
COVER_SPLIT_TRIES = 3
#: Seconds for each single-source assignment test of a fixed site set (capacitated p-center).
BOTTLENECK_TEST_S = 2.0
#: Iterated local search rounds per new site (plus ``ILS_ROUNDS_BASE``) when no time limit is
#: given. On OR-Library pmed1–25 greedy + interchange + windows already reach every optimum;
#: more rounds cost time for nothing there.
ILS_ROUNDS_PER_SITE = 1
ILS_ROUNDS_BASE = 5
#: The greedy recomputes all gains each step (entries × sites to open at most this) instead
#: of updating the interchange tables after every opening.
GREEDY_DIRECT_MAX_WORK = 20_000_000
FIRST_SHARES = (0.75, 0.5, 1.0, None)
#: From this many entries the p-median heuristic proves its bound in a forked process while
#: the main process improves the solution.
PARALLEL_MIN_ENTRIES = 1_000_000
#: Branch and bound after fixing (small p-median models, ``method="auto"``): subgradient
#: steps per node and the nodes tried before HiGHS takes over. On the 500 × 100 benchmark
#: and the OR-Library instances it reaches: 30 steps need twice the nodes, 100 cost more
#: time than they save (3-61 nodes at 60). Only up to ``BRANCH_MAX_SITES`` sites left to
#: choose: OR-Library pmed20 (131 of 305 left) needs 449 nodes, 0.8 s, HiGHS 0.05 s.
BRANCH_ITERATIONS = 60
BRANCH_MAX_NODES = 400
BRANCH_MAX_SITES = 50
#: Window sub-problems keep candidates with at least this share of their homes inside the
#: window (others mostly serve homes elsewhere).
WINDOW_INSIDE_SHARE = 0.4
#: Smoothing widths of the dual's continuation stages, as fractions of a typical travel time.
SMOOTH_FRACS = (0.1, 0.025, 0.006, 0.0015)
#: A smoothing stage keeps the entries less than this many smoothing widths above a row's
#: multiplier (each one left out weighs under e^-20 in the smoothed dual). On the 50,000 ×
#: 5,000 benchmark the fine stages then see 55 % of the entries, and the bound after 50 s
#: went from 0.86 % to 0.83 % below the best known objective (10 widths gave 0.80 % but
#: cost the heuristic its OR-Library pmed2 optimum).
SMOOTH_ACTIVE_WIDTHS = 20.0
#: With a deadline the last stage repeats until one repetition gains less than this share.
DUAL_REPEAT_MIN_GAIN = 1e-5
#: ... each repetition running this many L-BFGS iterations (40 restarted the curvature
#: pairs too often: on the large benchmark 150 gave a slightly better bound in 50 s, 4.2767e9
#: against 4.2762e9; a Huber smoothing of the entries gained as much again there but cost
#: the small instances' heuristic its OR-Library pmed2 optimum).
DUAL_REPEAT_ITERS = 150
#: Dominance reductions of the coverage models compare sets pairwise: a step is skipped
#: when the pairs sharing an element (the sum of squared element counts) are more than
#: this (a 20,000 × 2,000 set cover has 3 M for its candidates and 28 M for its homes; the
#: reduction takes 0.25 s there and shrinks the LP from 17 s to 2 s).
CORE_MAX_PAIRS = 30_000_000
#: Homes with the same candidates are merged by hashing (one column of max-coverage's bound
#: LP, one home of a coverage core) when at least this share of them can be: 29 % on the
#: 500 × 100 benchmark (max-coverage 4.8 → 4.4 ms end to end), 36 % on 2,000 × 300 (set
#: cover 20.1 → 18.9 ms); 7 % in the Nanjing region, whose homes are network nodes, where
#: the check would cost more than it saves.
SAME_HOMES_MIN_SHARE = 0.15
#: The pairwise product is dense (float32 BLAS) when its multiply-adds are at most this many
#: times the sparse product's (measured: ~30 ps per dense multiply-add, ~9 ns per sparse one).
CORE_DENSE_FLOPS_PER_PRODUCT = 300
#: ... and the dense incidence matrix has at most this many cells (16 MB in float32).
CORE_DENSE_MAX_CELLS = 4_000_000
#: The sparse dominance step looks set members up in a bit table up to this many sets ×
#: elements (128 MB), by binary search above.
SUBSET_BITS_MAX_CELLS = 2**30
#: ... and checks the pairs one element at a time until at most this many are left, then
#: each whole.
SUBSET_WHOLE_CHECK_PAIRS = 20_000
#: Entries grouped by candidate: a radix sort up to this many, scipy's CSR → CSC above.
CSC_RADIX_MAX_ENTRIES = 20_000
#: Greedy covers recount every candidate's score after each pick up to this many entries
#: (one bincount; above it, only the scores of the newly covered rows' candidates change).
GREEDY_RECOUNT_MAX_ENTRIES = 8_192
#: Set covering's heuristic starts from the LP relaxation (HiGHS: its optimum is the best
#: Lagrangian bound, its duals the best multipliers) up to this many entries.
COVER_LP_MAX_ENTRIES = 50_000
#: Set covering's local search (``method="heuristic"``) stops after this many rounds per site
#: of the cover without a smaller cover. ``"auto"`` leaves it to HiGHS: on the benchmarks
#: the search only delayed it (2,000 × 300: 34 → 55 ms) and on a 20,000 × 2,000 cover both
#: end at 253 sites.
COVER_ILS_STALL_PER_SITE = 5
#: Linear programmes up to this many rows × columns skip HiGHS's presolve, which costs more
#: than it saves on them (the reduced coverage models: 0.4 instead of 0.7 ms).
LP_NO_PRESOLVE_MAX_CELLS = 1_000_000
#: Max-coverage's bound LP leaves out dominated candidates when finding them (a dense
#: candidates × candidates × homes product) takes at most this many multiply-adds.
COVERAGE_LP_DOMINANCE_MAX_FLOPS = 10_000_000
#: Max-coverage's bound comes from its LP (dual form, HiGHS) up to this many entries, and
#: from subgradient optimisation above.
COVERAGE_LP_MAX_ENTRIES = 500_000
#: Max-coverage's interchange works on the dense homes × candidates matrix, every swap
#: priced by one product, up to this many homes × candidates × open sites (the sparse
#: engine's bookkeeping costs more there: 500 × 100, p = 10: about 3 → 0.9 ms).
DENSE_COVER_SWAP_MAX_FLOPS = 2_000_000


# ------------------------------------------------------------------------------------------
# Demand weights
# ------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------
# Validated instance: the cost matrix as sorted CSR arrays
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Instance:
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

    def subset(self, keep: np.ndarray) -> "_Instance":
        """The same instance with only the entries where ``keep`` is true."""
        counts = np.bincount(self.row[keep], minlength=self.n)
        return dataclasses.replace(
            self,
            indptr=np.concatenate([[0], np.cumsum(counts)]),
            row=self.row[keep],
            col=self.col[keep],
            cost_s=self.cost_s[keep],
        )


def _cost_entries(cost: Any, limit_s: float | None = None) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray, bool]:
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
        row, col = _cells(flat, m)
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


def _cells(flat: np.ndarray, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of flat row-major indices: ``np.nonzero`` of a 2-D mask, which numpy does
    4× slower than ``flatnonzero`` and a division (500 × 100: 145 against 33 µs)."""
    return np.divmod(flat.astype(np.int64, copy=False), n_cols)


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


def _build_instance(
    cost: Any,
    weights: Any,
    *,
    fixed: Any,
    capacities: Any,
    loads: Any,
    minutes: float | None,
    groups: Any = None,
    min_share: float | Mapping[Hashable, float] | None = None,
) -> _Instance:
    limit_s = None
    if minutes is not None:
        if not (np.isfinite(minutes) and minutes > 0):
            raise InputError(f"minutes: expected a positive number, got {minutes!r}")
        limit_s = 60.0 * float(minutes)
    n, m, row, col, cost_s, canonical = _cost_entries(cost, limit_s)
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
    inst = _Instance(n, m, indptr, row, col, cost_s, w, ld, fixed_idx, caps, limit_s)
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


def _attach_groups(inst: _Instance, groups: Any, min_share: Any) -> None:
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


# ------------------------------------------------------------------------------------------
# Result
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Solution:
    """The answer of a location model.

    Attributes
    ----------
    model : str
        ``"p-median"``, ``"max-coverage"``, ``"set-cover"`` or ``"p-center"``.
    sites : numpy.ndarray
        Open candidate indices (fixed and new), ascending.
    fixed_sites : numpy.ndarray
        The fixed (existing) sites among them.
    assignment : numpy.ndarray
        Candidate index serving each demand row; -1 when unassigned (unreachable, or not
        covered in a coverage model).
    objective : float
        p-median: total weighted travel time (s); max-coverage: weighted demand covered;
        set-cover: number of new sites; p-center: worst travel time (s).
    bound : float
        Proven bound on the optimum: a lower bound when minimising, an upper bound for
        max-coverage. ``lower_bound``/``upper_bound`` name it by direction.
    sense : str
        ``"min"`` or ``"max"``.
    solver : str
        e.g. ``"highs"``, ``"heuristic+lagrangian"``, ``"heuristic+lagrangian+highs"``.
    status : str
        ``"optimal"`` (proven within the requested gap) or ``"feasible"`` (a larger gap:
        time limit or heuristic); ``"min_share not met"`` when the heuristic could not
        reach a minimum share (see ``shortfall``).
    seconds : float
        Wall-clock time of ``solve``.
    unreachable : numpy.ndarray
        Demand rows no candidate reaches (within ``minutes``): excluded from the model.
    covered : numpy.ndarray
        Per demand row: served within ``minutes`` (or served at all when no ``minutes``).
    group_shares : pandas.DataFrame or None
        With ``groups``: weight, covered weight and share per group.
    shortfall : dict or None
        Groups whose share the heuristic could not reach: label → missing share.
    info : dict
        Solver details (phase times, number of improvements), for diagnostics.
    """

    model: str
    sites: np.ndarray
    fixed_sites: np.ndarray
    assignment: np.ndarray
    objective: float
    bound: float
    sense: str
    solver: str
    status: str
    seconds: float
    unreachable: np.ndarray
    covered: np.ndarray
    group_shares: pd.DataFrame | None = None
    shortfall: dict | None = None
    info: dict = dataclasses.field(default_factory=dict)
    _table: pd.DataFrame | None = dataclasses.field(default=None, repr=False)
    # Ranking the sites costs more than solving a small model: built on first use.
    _table_fn: Callable[[], pd.DataFrame] | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def new_sites(self) -> np.ndarray:
        """Open sites that are not fixed."""
        return np.setdiff1d(self.sites, self.fixed_sites)

    @property
    def gap(self) -> float:
        """Relative gap ``|objective - bound| / |objective|`` (0 when proven optimal)."""
        diff = abs(self.objective - self.bound)
        if diff <= 1e-9 * max(1.0, abs(self.objective)):
            return 0.0
        return diff / abs(self.objective) if self.objective else math.inf

    @property
    def lower_bound(self) -> float:
        """A proven lower bound on the optimal objective."""
        return self.bound if self.sense == "min" else self.objective

    @property
    def upper_bound(self) -> float:
        """A proven upper bound on the optimal objective."""
        return self.objective if self.sense == "min" else self.bound

    def table(self) -> pd.DataFrame:
        """One row per open site.

        Columns: ``site`` (candidate index), ``kind`` ("fixed"/"new"), ``rank`` (order of
        contribution: fixed sites first, then new ones, each time the site that most
        improves the objective), ``homes`` and ``demand`` assigned (count, weight),
        ``demand_covered`` (weight assigned within ``minutes``), ``coverage_added``
        (weighted demand newly covered when sites are added in rank order),
        ``mean_time_s`` (weighted mean travel time of the demand assigned), and with
        capacities ``load`` and ``capacity``.
        """
        if self._table is None and self._table_fn is not None:
            self._table, self._table_fn = self._table_fn(), None
        return self._table.copy()

    def __getstate__(self) -> dict:
        if self._table_fn is not None:
            self.table()  # the builder holds the model: pickle the table instead
        return self.__dict__.copy()

    def __repr__(self) -> str:
        return (
            f"Solution({self.model}: {len(self.new_sites)} new + {len(self.fixed_sites)} fixed sites, "
            f"objective={self.objective:.6g}, bound={self.bound:.6g}, gap={self.gap:.2%}, "
            f"solver={self.solver!r}, status={self.status!r}, {self.seconds:.2f} s)"
        )


# ------------------------------------------------------------------------------------------
# Vectorised sparse helpers
# ------------------------------------------------------------------------------------------
def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for each (s, l): the entries of some CSR rows."""
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, lengths)


def _first_open(inst: _Instance, is_open: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _csc_order(inst: _Instance) -> tuple[np.ndarray, np.ndarray]:
    """Entry order grouped by candidate (rows ascending within each), and the column pointers.

    scipy's CSR → CSC conversion is a counting sort, O(entries): 10× a stable argsort on
    large instances. Small ones (most coverage cores) sort int16 columns instead: numpy's
    radix sort, without scipy's fixed cost (2,000 entries: 11 instead of 65 µs).
    """
    nnz = inst.nnz
    if nnz <= CSC_RADIX_MAX_ENTRIES and inst.m <= np.iinfo(np.int16).max:
        order = np.argsort(inst.col.astype(np.int16), kind="stable")
        return order, np.concatenate([[0], np.cumsum(np.bincount(inst.col, minlength=inst.m))])
    index_dtype = np.int32 if nnz < 2**31 else np.int64
    csr = sparse.csr_array((np.arange(nnz, dtype=index_dtype), inst.col, inst.indptr), shape=(inst.n, inst.m))
    csc = csr.tocsc()
    return np.asarray(csc.data, dtype=np.int64), np.asarray(csc.indptr, dtype=np.int64)


def _can_fork() -> bool:
    """A child process can be forked safely: POSIX fork and no other thread running."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


class _ForkedCall:
    """Run ``fn(*args)`` in a forked child process; ``result()`` waits for its return value.

    Fork shares the parent's arrays copy-on-write, so nothing large is pickled on the way in;
    only the (small) return value comes back through a pipe. Any failure in the child
    gives ``None`` and the caller computes the value itself.
    """

    def __init__(self, fn, *args):
        ctx = multiprocessing.get_context("fork")
        self._recv, send = ctx.Pipe(duplex=False)

        def target() -> None:
            try:
                send.send(fn(*args))
            except BaseException:  # noqa: BLE001 - reported to the parent as "no result"
                send.send(None)

        self._process = ctx.Process(target=target, daemon=True)
        self._process.start()
        send.close()

    def result(self):
        try:
            value = self._recv.recv()
        except EOFError:
            value = None
        self._process.join()
        return value


@functools.cache
def _blas_threads() -> ThreadpoolController:
    """The BLAS libraries numpy and scipy loaded (found once: about 1 ms)."""
    return ThreadpoolController()


class _Background:
    """Run ``fn()`` in a thread (for calls that release the GIL, like HiGHS's run);
    :meth:`join` waits and re-raises what it raised.

    The caller typically goes on with numpy work that holds the GIL; without the
    ``sleep(0)`` the new thread would wait up to the interpreter's switch interval (5 ms)
    to get as far as the call.
    """

    def __init__(self, fn: Callable[[], Any]):
        self._error: BaseException | None = None

        def target() -> None:
            try:
                fn()
            except BaseException as error:  # noqa: BLE001 - re-raised in join()
                self._error = error

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()
        time.sleep(0)

    def join(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error


# ------------------------------------------------------------------------------------------
# HiGHS
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _MilpResult:
    status: str  # "optimal", "time limit", "infeasible"
    x: np.ndarray | None
    objective: float
    bound: float
    row_dual: np.ndarray | None = None  # linear programmes only


def _solve_milp(
    cost: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
    row_lb: np.ndarray,
    row_ub: np.ndarray,
    col_lb: np.ndarray,
    col_ub: np.ndarray,
    integer: np.ndarray,
    **kwargs,
) -> _MilpResult:
    """Solve ``min/max cost·x, row_lb <= A x <= row_ub, col_lb <= x <= col_ub`` with HiGHS
    (keywords: see :class:`_HighsRun`)."""
    a = sparse.csc_array((vals, (rows, cols)), shape=(len(row_lb), len(cost)))
    a.sum_duplicates()
    run = _HighsRun(cost, a, row_lb, row_ub, col_lb, col_ub, integer, **kwargs)
    run.run()
    return run.result()


class _Compressed(NamedTuple):
    """A CSC or CSR matrix built in the right form by the caller, for :class:`_HighsRun`
    without scipy's format checks (about 0.1 ms, a tenth of a small LP's build)."""

    format: str  # "csc" or "csr"
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    @property
    def nnz(self) -> int:
        return len(self.data)


class _HighsRun:
    """A HiGHS model, passed and ready: :meth:`run` may go to another thread (it releases
    the GIL), :meth:`result` decodes.

    ``a`` is the constraint matrix, CSC or CSR (scipy's or :class:`_Compressed`).
    ``cutoff`` (minimisation): only solutions cheaper than it are wanted (a known
    incumbent's cost); HiGHS prunes every node that cannot beat it, and reports
    "infeasible" when nothing does.
    """

    def __init__(
        self,
        cost: np.ndarray,
        a: sparse.csc_array | sparse.csr_array | _Compressed,
        row_lb: np.ndarray,
        row_ub: np.ndarray,
        col_lb: np.ndarray,
        col_ub: np.ndarray,
        integer: np.ndarray,
        *,
        maximize: bool = False,
        time_limit: float | None = None,
        gap: float = 1e-4,
        start: np.ndarray | None = None,
        relax: bool = False,
        cutoff: float | None = None,
    ):
        n_col, n_row = len(cost), len(row_lb)
        self.is_mip = is_mip = bool(np.any(integer)) and not relax
        # The array form of passModel: HighsLp's vector fields copy element by element
        # (about 1 ms on a 5,000-entry LP, more than HiGHS needs to solve it).
        kinds = (np.asarray(integer, dtype=np.int32) if is_mip else np.zeros(n_col, dtype=np.int32))
        fmt = highspy.MatrixFormat.kRowwise if a.format == "csr" else highspy.MatrixFormat.kColwise
        model = (
            n_col, n_row, a.nnz, int(fmt),
            int(highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize), 0.0,
            *(np.ascontiguousarray(v, dtype=float) for v in (cost, col_lb, col_ub, row_lb, row_ub)),
            a.indptr.astype(np.int32), a.indices.astype(np.int32), np.ascontiguousarray(a.data, dtype=float), kinds,
        )
        self.h = h = highspy.Highs()
        # highspy's Python callback hook calls into Python (taking the GIL) during a run even
        # with no callback subscribed: on a thread beside busy Python code each call waits
        # for the interpreter's switch interval (max-coverage's 4 ms LP took 40-50 ms).
        h.disableCallbacks()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("mip_rel_gap", float(gap))
        h.setOptionValue("mip_abs_gap", 1e-9)
        if time_limit is not None:
            h.setOptionValue("time_limit", max(float(time_limit), 0.01))
        if not is_mip and n_col * n_row <= LP_NO_PRESOLVE_MAX_CELLS:
            h.setOptionValue("presolve", "off")  # on small LPs presolve costs more than it saves
        if cutoff is not None and is_mip and not maximize:
            h.setOptionValue("objective_bound", float(cutoff))
        h.passModel(*model)
        if start is not None and is_mip:
            sol = highspy.HighsSolution()
            sol.col_value = np.asarray(start, dtype=float)
            sol.value_valid = True
            h.setSolution(sol)

    def run(self) -> None:
        self.h.run()

    def result(self) -> _MilpResult:
        h = self.h
        status = h.getModelStatus()
        info = h.getInfo()
        ms = highspy.HighsModelStatus
        if status == ms.kInfeasible:
            return _MilpResult("infeasible", None, math.nan, math.nan)
        has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
        solution = h.getSolution() if has_solution else None
        x = np.asarray(solution.col_value) if has_solution else None
        obj = info.objective_function_value if has_solution else math.nan
        if status == ms.kOptimal:
            if self.is_mip:
                return _MilpResult("optimal", x, obj, info.mip_dual_bound)
            return _MilpResult("optimal", x, obj, obj, np.asarray(solution.row_dual))
        if status in (ms.kTimeLimit, ms.kInterrupt, ms.kIterationLimit, ms.kSolutionLimit):
            bound = info.mip_dual_bound if self.is_mip else math.nan
            return _MilpResult("time limit", x, obj, bound)
        raise RuntimeError(f"HiGHS stopped with status {h.modelStatusToString(status)}")


class _Lp:
    """Accumulates a sparse linear programme row by row (triplets), then hands it to HiGHS."""

    def __init__(self, n_col: int):
        self.n_col = n_col
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lb: list[np.ndarray] = []
        self.ub: list[np.ndarray] = []
        self.n_row = 0

    def add(self, rows, cols, vals, lb, ub) -> None:
        """Add ``len(lb)`` rows; ``rows`` are local row numbers 0..len(lb)-1."""
        lb = np.atleast_1d(np.asarray(lb, dtype=float))
        ub = np.broadcast_to(np.asarray(ub, dtype=float), lb.shape)
        self.rows.append(np.asarray(rows, dtype=np.int64) + self.n_row)
        self.cols.append(np.asarray(cols, dtype=np.int64))
        self.vals.append(np.broadcast_to(np.asarray(vals, dtype=float), np.shape(rows)))
        self.lb.append(lb)
        self.ub.append(np.array(ub))
        self.n_row += len(lb)

    def solve(self, cost, col_lb, col_ub, integer, **kwargs) -> _MilpResult:
        cat = lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.empty(0, dt)  # noqa: E731
        return _solve_milp(
            cost,
            cat(self.rows, np.int64),
            cat(self.cols, np.int64),
            cat(self.vals, float),
            cat(self.lb, float),
            cat(self.ub, float),
            col_lb,
            col_ub,
            integer,
            **kwargs,
        )


def _site_bounds(inst: _Instance) -> tuple[np.ndarray, np.ndarray]:
    lb = np.zeros(inst.m)
    lb[inst.fixed] = 1.0
    return lb, np.ones(inst.m)


def _bisect(lo: int, hi: int, test: Callable[[int], tuple[bool | None, Any]], deadline: float | None):
    """Binary search for the smallest index below ``hi`` (an index known to pass, or one
    past the end) whose ``test`` passes; ``test(i)`` gives (answer, or None when
    undecided, and a payload). An undecided index sends the search upwards without proof.
    Returns (lowest index not proven to fail, smallest passing index, its payload or None
    when none passed, whether a test was undecided or time ran out)."""
    proven, found, undecided = lo, None, False
    while lo < hi:
        if _past(deadline):
            return proven, hi, found, True
        mid = (lo + hi) // 2
        ok, payload = test(mid)
        if ok:
            hi, found = mid, payload
        elif ok is False:
            lo = proven = mid + 1
        else:
            undecided, lo = True, mid + 1
    return proven, hi, found, undecided


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.perf_counter() > deadline


def _auto_deadline(deadline: float | None, heuristic_s: float) -> float:
    """Deadline of the exact phase of ``method="auto"``: the caller's, or a budget of
    ``AUTO_EXACT_FACTOR`` × the heuristic's time (at least ``AUTO_EXACT_MIN_S``)."""
    if deadline is not None:
        return deadline
    return time.perf_counter() + max(AUTO_EXACT_MIN_S, AUTO_EXACT_FACTOR * heuristic_s)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(deadline - time.perf_counter(), 0.01)


# ------------------------------------------------------------------------------------------
# Fast vertex substitution (Whitaker 1983; Resende & Werneck 2004), vectorised
# ------------------------------------------------------------------------------------------
class _SwapEngine:
    """Greedy + fast interchange for ``min Σ_i min(P_i, min_{j open} W_ij)``.

    ``W`` are the weighted costs of the stored (reachable) entries and ``P_i`` the cost of
    leaving row i unserved: a large number for p-median (serve everyone), the row's weight
    with zero costs for max-coverage (minimise uncovered weight). The bookkeeping follows
    Resende & Werneck: ``gain[f]`` (saving of inserting f), ``loss[s]`` (increase when the
    site in slot s is removed) and ``extra[f, s]`` (correction when both happen), updated
    only for the rows whose nearest or second-nearest site changes.
    """

    def __init__(
        self,
        inst: _Instance,
        w_entry: np.ndarray,
        penalty: np.ndarray,
        k_new: int,
    ):
        self.inst = inst
        self.W = w_entry
        self.P = penalty
        self.m, self.n = inst.m, inst.n
        self.k = len(inst.fixed) + k_new
        self.k_new = k_new
        self.stats: dict[str, int] = {}
        order, ptr = _csc_order(inst)
        self.csc_ptr = ptr
        self.csc_row = inst.row[order]
        self.csc_W = w_entry[order]
        self._col32 = inst.col.astype(np.int32)
        # Sorted search key (row, cost) for the prefix of each row below a threshold.
        self._span = 2.0 * float(w_entry.max(initial=0.0)) + 1.0
        self._key = inst.row * self._span + w_entry
        # Per candidate, how many homes it would serve better than now (windows; lazy).
        self._improvers: np.ndarray | None = None
        # Integral costs (max-coverage with whole-number weights) keep every table sum
        # exact: no rounding for a final rebuild to correct.
        self._exact_sums = bool(
            np.all(w_entry == np.round(w_entry)) and np.all(penalty == np.round(penalty))
            and float(np.abs(w_entry).sum() + np.abs(penalty).sum()) < 2.0**52
        )
        self.reset(inst.fixed)

    # -- state -----------------------------------------------------------------------------
    def reset(self, open_sites: np.ndarray) -> None:
        """Open ``fixed`` plus ``open_sites`` and rebuild every table from scratch."""
        m, k = self.m, self.k
        self.is_open = np.zeros(m, dtype=bool)
        self.slot_of = np.full(m, -1, dtype=np.int64)
        self.slots = np.full(k, -1, dtype=np.int64)
        self.removable = np.zeros(k, dtype=bool)
        fixed = self.inst.fixed
        sites = np.concatenate([fixed, np.setdiff1d(open_sites, fixed)])
        for s, f in enumerate(sites[:k]):
            self.is_open[f] = True
            self.slot_of[f] = s
            self.slots[s] = f
            self.removable[s] = s >= len(fixed)
        self.n_open = min(len(sites), k)
        self._rebuild(tables=False)

    _TABLES = ("gain", "loss", "extra")

    def _rebuild(self, tables: bool = True) -> None:
        """Nearest and second-nearest sites of every row, and the swap tables from scratch.

        With ``tables=False`` the tables are dropped and built on first use
        (:meth:`__getattr__`): a reset is often followed by another reset (a greedy
        rebuilds once at its end, a window search restarts) before any swap is evaluated.
        """
        self.phi1 = np.full(self.n, -1, dtype=np.int64)
        self.phi2 = np.full(self.n, -1, dtype=np.int64)
        self.d1 = self.P.copy()
        self.d2 = self.P.copy()
        self._top2(np.arange(self.n))
        for name in self._TABLES:
            self.__dict__.pop(name, None)
        if tables:
            self._build_tables()

    def _build_tables(self) -> None:
        self.gain = np.zeros(self.m)
        self.loss = np.zeros(self.k)
        self.extra = np.zeros((self.m, self.k))
        self._apply(np.arange(self.n), 1.0)

    def __getattr__(self, name: str):
        # Only called for attributes not set: the swap tables after a reset.
        if name in self._TABLES:
            self._build_tables()
            return self.__dict__[name]
        raise AttributeError(name)

    def objective(self) -> float:
        return float(self.d1.sum())

    def open_sites(self) -> np.ndarray:
        return np.flatnonzero(self.is_open)

    def _row_entries(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts = self.inst.indptr[rows]
        lengths = self.inst.indptr[rows + 1] - starts
        pos = _ranges(starts, lengths)
        local = np.repeat(np.arange(len(rows)), lengths)
        return pos, local

    def _top2(self, rows: np.ndarray) -> None:
        """Nearest and second-nearest open site of ``rows`` (entries are sorted by cost)."""
        pos, local = self._row_entries(rows)
        keep = self.is_open[self.inst.col[pos]]
        pos, local = pos[keep], local[keep]
        self.phi1[rows] = -1
        self.phi2[rows] = -1
        self.d1[rows] = self.P[rows]
        self.d2[rows] = self.P[rows]
        if len(pos) == 0:
            return
        first = np.ones(len(pos), dtype=bool)
        first[1:] = local[1:] != local[:-1]
        i1 = np.flatnonzero(first)
        r1 = rows[local[i1]]
        self.phi1[r1] = self.inst.col[pos[i1]]
        self.d1[r1] = np.minimum(self.W[pos[i1]], self.P[r1])
        i2 = i1 + 1
        i2 = i2[i2 < len(pos)]
        i2 = i2[~first[i2]]
        r2 = rows[local[i2]]
        self.phi2[r2] = self.inst.col[pos[i2]]
        self.d2[r2] = np.minimum(self.W[pos[i2]], self.P[r2])

    def _apply(self, rows: np.ndarray, sign: float) -> None:
        """Add (sign=+1) or remove (-1) the contributions of ``rows`` to gain, loss, extra."""
        if len(rows) == 0:
            return
        d1, d2 = self.d1[rows], self.d2[rows]
        slot1 = self.slot_of[self.phi1[rows]]  # phi1 = -1 reads slot_of[-1]: masked below
        slot1[self.phi1[rows] < 0] = -1
        has1 = slot1 >= 0
        self.loss += sign * np.bincount(slot1[has1], weights=(d2 - d1)[has1], minlength=self.k)
        # Only entries cheaper than the second-nearest site matter; rows are sorted by cost,
        # so they are a prefix of each row, found by one vectorised binary search.
        starts = self.inst.indptr[rows]
        target = rows * self._span + d2
        ends = np.searchsorted(self._key, target + 1e-9 * np.abs(target), side="right")
        ends = np.minimum(np.maximum(ends, starts), self.inst.indptr[rows + 1])
        lengths = ends - starts
        pos = _ranges(starts, lengths)
        local = np.repeat(np.arange(len(rows), dtype=np.int32), lengths)
        f = self._col32[pos]
        w = self.W[pos]
        keep = w < d2[local]
        keep &= ~self.is_open[f]
        sel = np.flatnonzero(keep)
        f, w, local = f[sel], w[sel], local[sel]
        d1e = d1[local]
        self.gain += sign * np.bincount(f, weights=np.maximum(d1e - w, 0.0), minlength=self.m)
        s1 = slot1[local]
        ok = s1 >= 0
        idx = f[ok].astype(np.int64) * self.k + s1[ok]
        val = d2[local[ok]] - np.maximum(d1e[ok], w[ok])
        np.add.at(self.extra.reshape(-1), idx, val if sign > 0 else -val)

    def open(self, f: int, slot: int | None = None, removable: bool = True) -> None:
        lo, hi = self.csc_ptr[f], self.csc_ptr[f + 1]
        rows = self.csc_row[lo:hi]
        rows = rows[self.csc_W[lo:hi] < self.d2[rows]]
        self._apply(rows, -1.0)
        if slot is None:
            slot = int(np.flatnonzero(self.slots < 0)[0])
        self.is_open[f] = True
        self.slot_of[f] = slot
        self.slots[slot] = f
        self.removable[slot] = removable
        self.n_open += 1
        self.gain[f] = 0.0
        self._top2(rows)
        self._apply(rows, 1.0)

    def close(self, r: int) -> int:
        slot = int(self.slot_of[r])
        rows = np.flatnonzero((self.phi1 == r) | (self.phi2 == r))
        self._apply(rows, -1.0)
        self.is_open[r] = False
        self.slot_of[r] = -1
        self.slots[slot] = -1
        self.n_open -= 1
        self.loss[slot] = 0.0
        self.extra[:, slot] = 0.0
        self._top2(rows)
        self._apply(rows, 1.0)
        return slot

    # -- search ----------------------------------------------------------------------------
    def greedy(self, allowed: np.ndarray | None = None) -> None:
        """Fill the empty slots, each time with the candidate of largest gain."""
        if self.n_open < self.k and self.inst.nnz * (self.k - self.n_open) <= GREEDY_DIRECT_MAX_WORK:
            self._greedy_direct(allowed)
            return
        while self.n_open < self.k:
            g = np.where(self.is_open, -np.inf, self.gain)
            if allowed is not None:
                g[~allowed] = -np.inf
            self.open(int(np.argmax(g)))

    def _greedy_direct(self, allowed: np.ndarray | None) -> None:
        """The same greedy computed directly: each step one pass over all entries for the
        gains, then the tables rebuilt once. On small dense models this beats keeping the
        swap tables current after every opening (each opening touches most rows there)."""
        inst = self.inst
        d1 = self.d1.copy()
        is_open = self.is_open.copy()
        chosen = []
        for _ in range(self.k - self.n_open):
            # astype: bincount of no entries is an integer array, even with weights
            gain = np.bincount(inst.col, weights=np.maximum(d1[inst.row] - self.W, 0.0),
                               minlength=self.m).astype(float, copy=False)
            gain[is_open] = -np.inf
            if allowed is not None:
                gain[~allowed] = -np.inf
            f = int(np.argmax(gain))
            chosen.append(f)
            is_open[f] = True
            lo, hi = self.csc_ptr[f], self.csc_ptr[f + 1]
            rows = self.csc_row[lo:hi]
            np.minimum.at(d1, rows, self.csc_W[lo:hi])
        self.reset(np.concatenate([np.flatnonzero(self.is_open), chosen]).astype(np.int64))

    def best_swap(self) -> tuple[int, int, float]:
        profit = self.gain[:, None] - self.loss[None, :] + self.extra
        profit[self.is_open, :] = -np.inf
        profit[:, ~self.removable] = -np.inf
        flat = int(np.argmax(profit))
        f, s = divmod(flat, self.k)
        return f, s, float(profit[f, s])

    def set_open(self, sites: np.ndarray) -> None:
        """Move to the open set ``fixed ∪ sites`` by incremental swaps (cheap when close)."""
        target = np.zeros(self.m, dtype=bool)
        target[self.inst.fixed] = True
        target[sites] = True
        out = np.flatnonzero(self.is_open & ~target)
        into = np.flatnonzero(target & ~self.is_open)
        if len(out) != len(into) or len(out) > self.k // 2:
            self.reset(np.flatnonzero(target))
            return
        for r, f in zip(out, into):
            slot = self.close(int(r))
            self.open(int(f), slot)

    def perturb(self, rng: np.random.Generator, q: int) -> None:
        """Replace ``q`` random new sites by random closed candidates near them."""
        for _ in range(q):
            removable = np.flatnonzero(self.removable & (self.slots >= 0))
            if len(removable) == 0:
                return
            r = int(self.slots[rng.choice(removable)])
            lo, hi = self.csc_ptr[r], self.csc_ptr[r + 1]
            if hi == lo:
                continue
            home = self.csc_row[rng.integers(lo, hi)]
            near = self.inst.col[self.inst.indptr[home] : self.inst.indptr[home + 1]]
            near = near[~self.is_open[near]]
            if len(near) == 0:
                continue
            slot = self.close(r)
            self.open(int(rng.choice(near)), slot)

    def iterated_local_search(self, deadline: float | None, rounds: int | None = None, seed: int = 0,
                              q: int = 2) -> None:
        """Perturb, re-optimise, keep if better (iterated local search) until the deadline
        or for ``rounds`` rounds."""
        rng = np.random.default_rng(seed)
        best_sites, best = self.open_sites(), self.objective()
        done = 0
        while (deadline is None or time.perf_counter() < deadline) and (rounds is None or done < rounds):
            done += 1
            self.stats["ils_rounds"] = self.stats.get("ils_rounds", 0) + 1
            self.perturb(rng, q)
            self.local_search(deadline, verify=False)
            value = self.objective()
            if value < best - 1e-9 * abs(best):
                best_sites, best = self.open_sites(), value
            else:
                self.set_open(best_sites)
        self.set_open(best_sites)
        self.local_search(None)

    def improve_windows(self, deadline: float | None, size: int = 6, starts: int = 3, seed: int = 0) -> int:
        """Re-optimise groups of neighbouring sites (POPMUSIC, Taillard 2003).

        A window is an open site and its ``size - 1`` neighbours (the sites most often
        second-nearest to its homes). The homes of the window form a sub-problem in which the
        other open sites are fixed; it is solved by greedy + interchange and random restarts,
        and a better placement is applied to the whole solution (kept only if the total cost
        falls). Single swaps cannot move several sites at once; this can. As in POPMUSIC,
        every site starts "unoptimised"; a window that brings nothing marks its seed
        optimised, an improvement marks all sites of the new window unoptimised again. Stops
        when all are optimised or at the deadline. Returns the number of improvements.
        """
        rng = np.random.default_rng(seed)
        improved = 0
        todo = self.is_open & ~self.inst.is_fixed
        self._improvers = None
        while todo.any():
            if deadline is not None and time.perf_counter() > deadline:
                break
            s = int(rng.choice(np.flatnonzero(todo)))
            second = self.phi2[self.phi1 == s]
            votes = np.bincount(second[second >= 0], minlength=self.m)
            votes[s] = 0
            votes[self.inst.fixed] = 0
            neighbours = np.argsort(-votes, kind="stable")[: size - 1]
            window = np.concatenate([[s], neighbours[votes[neighbours] > 0]])
            better = self._solve_window(window, starts, rng)
            self.stats["windows"] = self.stats.get("windows", 0) + 1
            todo[s] = False
            if better is None:
                continue
            before, keep = self.objective(), self.open_sites()
            self.set_open(np.concatenate([np.setdiff1d(keep, window), better]))
            self.local_search(deadline, verify=False)
            if self.objective() < before - 1e-9 * abs(before):
                improved += 1
                self._improvers = None
                self.stats["window_improvements"] = self.stats.get("window_improvements", 0) + 1
                changed = np.flatnonzero(self.is_open & ~self.inst.is_fixed)
                changed = changed[np.isin(changed, keep, invert=True) | np.isin(changed, window)]
                todo[changed] = True
                todo &= self.is_open
            else:
                self.set_open(keep)
        return improved

    def _solve_window(self, window: np.ndarray, starts: int, rng: np.random.Generator) -> np.ndarray | None:
        """Best placement of ``len(window)`` sites for the homes served by ``window``, or None."""
        inst = self.inst
        rows = np.flatnonzero(np.isin(self.phi1, window))
        if len(rows) == 0:
            return None
        pos, local = _row_entries(inst, rows)
        # Candidates that would serve none of these homes better than now are left out, and
        # so are those that would mostly serve homes outside the window (counted among all
        # the homes each candidate would serve better: on a dense matrix every column has
        # every home). The open sites stay in.
        if self._improvers is None:
            self._improvers = np.bincount(inst.col[self.W < self.d1[inst.row]], minlength=inst.m)
        inside = np.bincount(inst.col[pos][self.W[pos] < self.d1[rows][local]], minlength=inst.m)
        useful = (inside > 0) & (inside >= WINDOW_INSIDE_SHARE * self._improvers)
        useful |= self.is_open
        near = useful[inst.col[pos]]
        pos, local = pos[near], local[near]
        cols = np.unique(inst.col[pos])
        index = np.full(inst.m, -1, dtype=np.int64)
        index[cols] = np.arange(len(cols))
        outside = cols[self.is_open[cols] & ~np.isin(cols, window)]
        lengths = np.bincount(local, minlength=len(rows))
        sub = _Instance(
            len(rows), len(cols), np.concatenate([[0], np.cumsum(lengths)]), local, index[inst.col[pos]],
            inst.cost_s[pos], inst.weights[rows], inst.loads[rows], np.sort(index[outside]), None, None,
        )
        current = float(self.d1[rows].sum())
        engine = _SwapEngine(sub, self.W[pos], self.P[rows], len(window))
        free = np.flatnonzero(~sub.is_fixed)
        best, best_sites = current, None
        for start in range(starts):
            if start == 0:
                engine.greedy()
            else:
                engine.reset(rng.choice(free, min(len(window), len(free)), replace=False))
            engine.local_search(None, verify=False)
            if engine.objective() < best - 1e-9 * abs(best):
                best, best_sites = engine.objective(), cols[np.setdiff1d(engine.open_sites(), sub.fixed)]
        return best_sites

    def local_search(self, deadline: float | None = None, verify: bool = True) -> int:
        """Best-improvement swaps until none improves; returns the number of swaps.

        With ``verify`` the tables are rebuilt from scratch at the end (incremental updates
        accumulate rounding) and the search resumes if a swap still improves; integral
        costs need no check.
        """
        if not self.removable.any():
            return 0
        swaps = 0
        tol = 1e-9 * max(1.0, abs(self.objective()))
        exact = not verify or self._exact_sums
        verified = exact
        while True:
            f, s, profit = self.best_swap()
            if not profit > tol:
                if verified:
                    break
                # Incremental updates accumulate rounding: confirm on fresh tables.
                self._rebuild()
                verified = True
                continue
            verified = exact
            slot = self.close(int(self.slots[s]))
            self.open(f, slot)
            swaps += 1
            if deadline is not None and time.perf_counter() > deadline:
                break
        return swaps


class _DenseCoverSwap:
    """Greedy + best-improvement interchange for max-coverage on a dense 0/1 matrix.

    The same search as :class:`_SwapEngine` with ``W = 0`` and ``P = weight`` (same picks,
    same swaps, ties to the lowest index), each step priced from scratch by products:
    ``gain[f]`` is f's uncovered weight, ``loss[s]`` the weight only slot s covers, and
    ``extra[f, s]`` the part of that loss f covers too. For small models, where the
    engine's incremental tables touch most rows at every swap anyway.
    """

    def __init__(self, inst: _Instance, k_new: int):
        self.inst = inst
        self.fixed = inst.fixed
        self.k = len(inst.fixed) + k_new
        self.cover = np.zeros((inst.n, inst.m))
        self.cover[inst.row, inst.col] = 1.0
        self.w = np.where(inst.coverable, inst.weights, 0.0)
        self.tol = 1e-9 * max(1.0, float(self.w.sum()))

    def uncovered(self, sites: np.ndarray) -> float:
        """Weight of the homes no site in ``sites`` covers."""
        return float(self.w[self.cover[:, sites].sum(axis=1) == 0].sum())

    def search(self, start: np.ndarray, deadline: float | None) -> np.ndarray:
        """Open ``fixed`` and ``start``, fill greedily to k sites, then swap until no swap
        gains. Returns the open sites (fixed included), sorted."""
        cover, w, m = self.cover, self.w, self.inst.m
        start = np.setdiff1d(np.asarray(start, dtype=np.int64), self.fixed)
        slots = np.concatenate([self.fixed, start])[: self.k]
        count = cover[:, slots].sum(axis=1)
        is_open = np.zeros(m, dtype=bool)
        is_open[slots] = True
        added = []
        for _ in range(self.k - len(slots)):
            gain = (w * (count == 0)) @ cover
            gain[is_open] = -np.inf
            f = int(np.argmax(gain))
            added.append(f)
            is_open[f] = True
            count += cover[:, f]
        # Slots as the engine numbers them after its greedy: fixed first, then ascending.
        slots = np.concatenate([self.fixed, np.setdiff1d(np.concatenate([start, added]), self.fixed)]).astype(np.int64)
        removable = np.arange(len(slots)) >= len(self.fixed)
        if not removable.any():
            return np.sort(slots)
        while not _past(deadline):
            open_cols = cover[:, slots]
            only = w * (count == 1)
            profit = cover.T @ (only[:, None] * open_cols)  # extra[f, s]
            profit += ((w * (count == 0)) @ cover)[:, None]  # + gain[f]
            profit -= (only @ open_cols)[None, :]  # - loss[s]
            profit[is_open, :] = -np.inf
            profit[:, ~removable] = -np.inf
            f, s = divmod(int(np.argmax(profit)), len(slots))
            if not profit[f, s] > self.tol:
                break
            count += cover[:, f] - cover[:, slots[s]]
            is_open[slots[s]] = False
            is_open[f] = True
            slots[s] = f
        return np.sort(slots)


# ------------------------------------------------------------------------------------------
# Lagrangian bounds (subgradient optimisation)
# ------------------------------------------------------------------------------------------
def _lagrangian_pmedian(
    inst: _Instance,
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


def _smooth_min0(x: np.ndarray, tau: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """``-τ log(1 + exp(-x/τ))``, a smooth lower approximation of ``min(0, x)``, and its slope."""
    u = x / tau
    e = np.exp(-np.abs(u))
    value = -tau * (np.maximum(-u, 0) + np.log1p(e))
    slope = np.where(u < 0, 1, e) / (1 + e)
    return value, slope


class _SmoothedEntries:
    """The entry terms ``-τ_i log(1 + exp(-(W_ij - λ_i)/τ_i))`` of the smoothed p-median dual
    and their slopes, for one stage's entries (grouped by row).

    The large benchmark's dual spends most of its time here. Each evaluation runs in place
    in float32 buffers made once per stage: fresh temporaries of this size cost a page fault
    per 4 KB, and log1p, np.where and a weighted bincount by row are each 3-8x slower than
    log, a maximum and reduceat (the whole evaluation: 95 → 60 ms on 2.5 M entries).
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
        # enough to change the heuristic's path on the 500 × 100 benchmark).
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


def _smoothed_dual_pmedian(
    inst: _Instance,
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
    from scipy import optimize  # local: only the large-instance path needs it

    n, m = inst.n, inst.m
    row, col = inst.row, inst.col
    w_full = w_entry
    cov = inst.coverable
    is_fixed = inst.is_fixed
    w = inst.weights
    w_pos = np.maximum(w, 1e-3 * max(float(w[cov].mean()) if cov.any() else 1.0, 1e-12))
    best_val, best_lam = _pmedian_lagrangian_value(inst, w_entry, k_new, lam0)[0], lam0.copy()

    def negative(z: np.ndarray, terms: _SmoothedEntries, tau_c: float) -> tuple[float, np.ndarray]:
        lam, mu = z[:n], z[n]
        s, ds = terms.evaluate(lam)
        rho = np.bincount(terms.col, weights=s, minlength=m)
        c, b = _smooth_min0(mu + rho, tau_c)
        c[is_fixed] = rho[is_fixed]
        b[is_fixed] = 1.0
        value = lam[cov].sum() + c.sum() - k_new * mu
        grad_lam = np.where(cov, 1.0 - terms.row_sums(b.astype(np.float32)[terms.col] * ds), 0.0)
        grad_mu = float(b[~is_fixed].sum()) - k_new
        return -value, -np.concatenate([grad_lam, [grad_mu]])

    keep, cap = _truncation(inst, w_entry, lam0)
    row_all, col_all, w_all = row[keep], col[keep], w_entry[keep]
    # Single precision halves the memory traffic of the smoothed terms; every bound that is
    # reported is evaluated exactly, in double precision, on all entries.
    w32_all = w_all.astype(np.float32)
    start_all = np.concatenate([[0], np.cumsum(np.bincount(row_all, minlength=n))])
    z = np.concatenate([np.where(cov, np.minimum(lam0, cap), 0.0), [max(mu0, 0.0)]])
    # With a deadline, the finest stage repeats while it still gains (large instances run
    # out of stages before their time is up; the bound is then the weak side of the gap).
    stages = list(SMOOTH_FRACS) + ([SMOOTH_FRACS[-1]] * 1000 if deadline is not None else [])
    for stage, frac in enumerate(stages):
        if deadline is not None and time.perf_counter() > deadline:
            break
        tau_row = frac * time_scale_s * w_pos
        # Each stage works on the entries within SMOOTH_ACTIVE_WIDTHS widths above the
        # current λ (the others add under e^-width each: at the fine stages most entries
        # drop out); λ may not pass a row's first entry left out (rows ascend by cost, so
        # the active entries are a prefix of each row).
        active = w_all <= z[:n][row_all] + SMOOTH_ACTIVE_WIDTHS * tau_row[row_all]
        active[start_all[:-1][start_all[:-1] < start_all[1:]]] = True
        terms = _SmoothedEntries(row_all[active], col_all[active], w32_all[active], tau_row)
        first_out = start_all[:-1] + terms.row_len
        stage_cap = np.where(first_out < start_all[1:], w_all[np.minimum(first_out, len(w_all) - 1)], np.inf)
        bounds = optimize.Bounds(np.concatenate([np.full(n, -np.inf), [0.0]]),
                                 np.concatenate([np.minimum(cap, stage_cap), [np.inf]]))
        tau_c = 0.1 * frac * max(mu0, 1e-9)
        iters = iters_per_stage if stage < len(SMOOTH_FRACS) else DUAL_REPEAT_ITERS
        res = optimize.minimize(negative, z, args=(terms, tau_c), jac=True, method="L-BFGS-B",
                                bounds=bounds, options={"maxiter": iters, "maxcor": 10},
                                callback=_stop_at_deadline(deadline))
        z = res.x
        value = _pmedian_lagrangian_value(inst, w_full, k_new, z[:n])[0]
        gained = value - best_val
        if value > best_val:
            best_val, best_lam = value, z[:n].copy()
        if best_val >= stop_at:
            break
        if stage >= len(SMOOTH_FRACS) and gained <= DUAL_REPEAT_MIN_GAIN * abs(best_val):
            break
    return best_val, best_lam


def _truncation(inst: _Instance, w_entry: np.ndarray, lam: np.ndarray, factor: float = 3.0):
    """Entries far above a row's multiplier contribute nothing to the Lagrangian: keep those
    below ``factor`` × λ (and each row's cheapest), and cap λ below the first one left out.
    Dense matrices shrink a lot. Returns (kept entries mask, cap per row)."""
    keep = w_entry <= factor * lam[inst.row] + 1e-9
    keep[inst.indptr[:-1][inst.coverable]] = True
    cap = np.full(inst.n, np.inf)
    np.minimum.at(cap, inst.row[~keep], w_entry[~keep])
    return keep, cap


def _pmedian_lagrangian_value(
    inst: _Instance, w_entry: np.ndarray, k_new: int, lam: np.ndarray, usable: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """Exact Lagrangian value L(λ), the reduced costs and the open sites of the relaxation
    (new sites chosen among ``usable``, default all)."""
    r = np.minimum(w_entry - lam[inst.row], 0.0)
    rho = np.bincount(inst.col, weights=r, minlength=inst.m)
    free = np.flatnonzero(~inst.is_fixed if usable is None else usable & ~inst.is_fixed)
    pick = free[np.argpartition(rho[free], k_new - 1)[:k_new]] if 0 < k_new < len(free) else free[: max(k_new, 0)]
    chosen = np.concatenate([inst.fixed, pick])
    value = float(lam[inst.coverable].sum() + rho[chosen].sum())
    return value, r, chosen


def _pmedian_branch_and_bound(
    inst: _Instance,
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
) -> tuple[bool, np.ndarray | None, float, int]:
    """Lagrangian branch and bound (Beasley 1993) for a p-median reduced by fixing.

    Proves that no choice of ``k_new`` sites (besides the fixed ones, none of the
    ``closed``) serves every coverable row for less than ``upper·(1 - gap)``, or finds one.
    Each node is a subproblem with some sites forced open or shut; its bound is the
    Lagrangian dual re-optimised by subgradient steps from its parent's λ. A node whose
    bound reaches the target is pruned; otherwise the sites whose forcing would cost
    more than the margin are fixed (as at the root), the relaxation's sites are tried as
    a solution, and the node branches on its most attractive free site (open first).

    Returns (finished, the cheapest open-site set found below ``upper`` or None, the proven
    lower bound when finished, nodes). Stops unfinished after ``max_nodes`` or the deadline.
    """
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
        if nodes >= max_nodes or _past(deadline):
            return False, best_open, -math.inf, nodes
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
        bound, lam, _ = _lagrangian_pmedian(node, w_node, k, best_cost, lam, integral=integral, gap=gap,
                                            deadline=deadline, max_iter=BRANCH_ITERATIONS, usable=avail)
        if bound >= target:
            proven = min(proven, bound)
            continue
        value, r, chosen = _pmedian_lagrangian_value(node, w_node, k, lam, usable=avail)
        is_open = np.zeros(m, dtype=bool)
        is_open[chosen] = True
        cost = _open_cost(node, w_node, is_open)
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
    return True, best_open, min(proven, best_cost), nodes


def _open_cost(inst: _Instance, w_entry: np.ndarray, is_open: np.ndarray) -> float:
    """Cost of serving every coverable row from its nearest open site (inf if one can't be)."""
    _, entry = _first_open(inst, is_open)
    if np.any(inst.coverable & (entry < 0)):
        return math.inf
    return float(w_entry[entry[inst.coverable]].sum())


def _lagrangian_coverage(
    inst: _Instance,
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


class _CoverageDualLp:
    """Max-coverage's LP bound, from its Lagrangian dual solved as a linear programme.

    ``min Σ_i (w_i - λ_i) + k·v + Σ_j β_j`` s.t. ``β_j + v >= Σ_{i∈N_j} λ_i``,
    ``0 <= λ_i <= w_i``, ``β >= 0``: the same optimum as the primal relaxation, but one row
    per candidate instead of one per home, and far less degenerate (HiGHS: 6 ms instead of
    200 ms on the 2,000 × 300 benchmark). Built here, :meth:`run` in any thread (HiGHS
    releases the GIL; building there would hold it against the caller's interchange),
    then :meth:`result`.
    """

    def __init__(self, inst: _Instance, weights: np.ndarray, k_new: int, *, integral: bool,
                 deadline: float | None):
        self.inst, self.k_new, self.integral = inst, k_new, integral
        is_fixed = inst.is_fixed
        by_fixed = _rows_by_fixed(inst)
        self.const = float(weights[by_fixed].sum())
        rows_free = inst.coverable & ~by_fixed
        self.free = np.flatnonzero(~is_fixed)
        self.highs = None
        if k_new <= 0 or not rows_free.any():
            return
        keep = rows_free[inst.row] & ~is_fixed[inst.col]
        rows_u, row = _renumbered(inst.row[keep], inst.n)
        col_all = inst.col[keep]
        # Homes with the same candidates share one λ (their weights summed): the same LP,
        # fewer columns (500 × 100 benchmark: 500 → 356 columns, 2.9 → 2.7 ms; 2,000 × 300:
        # 1,997 → 1,272, 3.6 → 2.9 ms). entry_col keeps the candidates left out of the LP
        # below: σ is evaluated on every free candidate.
        rep = _same_sets(row, col_all, len(rows_u), inst.m, min_share=SAME_HOMES_MIN_SHARE)
        if rep is None:
            self.row, self.entry_col, self.w = row, col_all, weights[rows_u]
        else:
            _, group = _renumbered(rep, len(rows_u))
            first = rep[row] == row
            self.row, self.entry_col = group[row[first]], col_all[first]
            self.w = np.bincount(group, weights=weights[rows_u])
        w = self.w
        n = len(w)
        m_all = len(self.free)
        if m_all * m_all * n <= COVERAGE_LP_DOMINANCE_MAX_FLOPS:
            # A candidate whose homes another's include is never needed, in the LP too;
            # it only adds degenerate ties (500 × 100 benchmark: 5.6 → 4.7 ms, for 0.2).
            dense = np.zeros((inst.m, n), dtype=np.float32)
            dense[self.entry_col, self.row] = 1.0
            useful = np.zeros(inst.m, dtype=bool)
            useful[self.free[~_dominance_dense(dense[self.free], "subset")]] = True
            keep_lp = useful[self.entry_col]
        else:
            keep_lp = np.ones(len(self.row), dtype=bool)
        self.cols_u, col = _renumbered(self.entry_col[keep_lp], inst.m)
        row = self.row[keep_lp]
        m = len(self.cols_u)
        # Columns λ (entries: the candidates of each row; the instance is stored by row,
        # so this is its CSR), v (every row), β (one each); built directly, not from triplets.
        indptr = np.concatenate([[0], np.cumsum(np.bincount(row, minlength=n)), len(row) + m + np.arange(m + 1)])
        indices = np.concatenate([col, np.arange(m), np.arange(m)])
        data = np.concatenate([-np.ones(len(row)), np.ones(2 * m)])
        a = _Compressed("csc", indptr, indices, data)  # m rows, n + 1 + m columns
        self.highs = _HighsRun(
            np.concatenate([-np.ones(n), [k_new], np.ones(m)]), a, np.zeros(m), np.full(m, np.inf),
            np.zeros(n + 1 + m),  # v >= 0: the top k of σ >= 0, empty candidates count 0
            np.concatenate([w, [np.inf], np.full(m, np.inf)]),
            np.zeros(n + 1 + m, dtype=bool), time_limit=_remaining(deadline))

    def run(self) -> None:
        if self.highs is not None:
            self.highs.run()

    def result(self) -> tuple[float, np.ndarray, float, np.ndarray] | None:
        """(bound, the sites at 1 in the primal LP solution, L(λ) and Σ_{i∈N_j} λ_i per
        candidate for Lagrangian fixing), or None when HiGHS stopped early. The bound is
        re-evaluated from λ (any λ gives a valid bound, so solver tolerances cannot make it
        wrong)."""
        inst = self.inst
        if self.highs is None:
            return self.const, self.free[:0], self.const, np.zeros(inst.m)
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
        # Lagrangian heuristic, which completes them greedily (more robust than the top k of
        # a fractional y on the benchmarks).
        y = np.abs(res.row_dual) if res.row_dual is not None else np.zeros(m)
        pick = self.cols_u[y > 1 - 1e-6][: self.k_new]
        return bound, pick, value, sigma


def _lagrangian_setcover(
    inst: _Instance,
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
            cover = _greedy_cover(inst, start=np.flatnonzero(reduced < 0), row_weight=lam)
            if len(cover) < len(best_cover):
                best_cover = cover
        if math.ceil(best - 1e-6) >= len(best_cover) or mu < 1e-4 or _past(deadline):
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


# ------------------------------------------------------------------------------------------
# Coverage models: dominance reductions
# ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Core:
    """The part of a coverage instance that decides the answer.

    ``inst`` has one row per kept demand row (no fixed sites, no rows they cover) and one
    column per kept candidate; ``rows``/``cols`` give their original indices.
    ``outside_weight`` is the weight covered whatever is chosen (by fixed sites).
    """

    inst: _Instance
    rows: np.ndarray
    cols: np.ndarray
    outside_weight: float


def _dominance_dense(mat: np.ndarray, mode: str) -> np.ndarray:
    """One dominance step among the rows of a dense 0/1 float32 matrix (sets × elements).

    ``mode``: ``"subset"`` drops every set contained in another (smaller, or equal with a
    higher index); ``"superset"`` drops every set containing another (larger, or equal with
    a higher index); ``"same"`` maps every set to the lowest index of an equal set.
    Returns the drop mask (``"subset"``/``"superset"``) or the representative per set
    (``"same"``).
    """
    size = mat.sum(axis=1)  # float32 counts: exact below 2**24
    if mode == "same":
        inside = (mat @ mat.T) == size[:, None]  # [a, b]: S_a ⊆ S_b
        inside &= size[:, None] == size[None, :]
        return inside.argmax(axis=0)  # the diagonal is true: some a <= b always matches
    # Sets ordered so that "a may drop b" means "a comes first": (size, index) for
    # superset, (-size, index) for subset. The first set containing (subset) or contained in
    # (superset) each set is then found by one argmax; it is the set itself when none
    # comes before it (the diagonal is true).
    order = np.argsort(size if mode == "superset" else -size, kind="stable")
    sub = mat[order]
    # (sub @ sub.T)[a, b] = |S_a ∩ S_b| is symmetric: compare with the size of the set
    # searched for along each row, so that argmax runs along contiguous rows.
    searched = size[order][:, None] if mode == "subset" else size[order][None, :]
    first = ((sub @ sub.T) == searched).argmax(axis=1)
    drop = np.empty(len(size), dtype=bool)
    drop[order] = first < np.arange(len(size))
    return drop


def _grouped(keys: np.ndarray, values: np.ndarray, n_keys: int) -> tuple[np.ndarray | None, np.ndarray]:
    """(pointers, values) grouped by ``keys`` when they are already non-decreasing; else
    (None, values), or a stable sort when ``values`` are not grouped either."""
    if len(keys) < 2 or bool(np.all(keys[1:] >= keys[:-1])):
        return np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=n_keys))]), values
    if len(values) < 2 or bool(np.all(values[1:] >= values[:-1])):
        return None, values
    order = np.argsort(keys, kind="stable")
    return np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=n_keys))]), values[order]


def _regrouped(ptr: np.ndarray, index: np.ndarray, n_index: int) -> tuple[np.ndarray, np.ndarray]:
    """The transpose of a grouping: for each ``index`` value, the groups holding it."""
    n_groups = len(ptr) - 1
    csr = sparse.csr_array((np.ones(len(index), dtype=np.int8), index, ptr), shape=(n_groups, n_index))
    csc = csr.tocsc()
    return csc.indptr.astype(np.int64), csc.indices.astype(np.int64)


def _membership(sets: np.ndarray, elems: np.ndarray, n_sets: int, n_elems: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``holds(s, e)``: whether set s holds element e (arrays), for sets given as
    (set, element) pairs. A boolean table up to ``CORE_DENSE_MAX_CELLS`` cells, a bit table
    up to ``SUBSET_BITS_MAX_CELLS``, binary search in the sorted pairs above."""
    cells = n_sets * n_elems
    if cells <= CORE_DENSE_MAX_CELLS:
        member = np.zeros(cells, dtype=bool)
        member[sets * n_elems + elems] = True
        holds = lambda s, e: member[s * n_elems + e]  # noqa: E731
    elif cells <= SUBSET_BITS_MAX_CELLS:
        # One bit per (set, element): the bits of each byte OR-ed together by reduceat.
        codes = np.sort(sets * n_elems + elems)
        byte = codes >> 3
        first = np.flatnonzero(np.concatenate([[True], byte[1:] != byte[:-1]]))
        bits = np.zeros((cells + 7) // 8, dtype=np.uint8)
        bits[byte[first]] = np.bitwise_or.reduceat(np.left_shift(1, codes & 7).astype(np.uint8), first)

        def holds(s, e):
            q = s * n_elems + e
            return ((bits[q >> 3] >> (q & 7).astype(np.uint8)) & 1) == 1
    else:
        codes = np.sort(sets * n_elems + elems)

        def holds(s, e):
            q = s * n_elems + e
            return codes[np.minimum(np.searchsorted(codes, q), len(codes) - 1)] == q
    return holds


def _subset_pairs(sets: np.ndarray, elems: np.ndarray, n_sets: int, n_elems: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (a, b), a != b, with non-empty set a contained in set b, for sets given as
    distinct (set, element) pairs.

    S_a ⊆ S_b needs b to hold a's rarest element, so only those pairs are tried (at most
    the sum of squared element counts, usually far fewer). Single-element lookups then drop
    most of them, and the rest are checked whole. A sparse product S·Sᵀ did the same in
    1.5-4× the time (2,000 × 300 set-cover core: 14 → 10 ms; 20,000 × 2,000: 0.50 → 0.25 s
    and 295 → 221 MB peak).
    """
    sets = np.asarray(sets, dtype=np.int64)
    elems = np.asarray(elems, dtype=np.int64)
    # Each set's elements and each element's sets. The callers pass the pairs grouped by one
    # side; scipy's CSR → CSC conversion (a counting sort, O(entries)) groups the other.
    start, elem_of = _grouped(sets, elems, n_sets)
    if start is None:
        held_from, holders = _grouped(elems, sets, n_elems)
        start, elem_of = _regrouped(held_from, holders, n_sets)
    else:
        held_from, holders = _regrouped(start, elem_of, n_elems)
    size, freq = np.diff(start), np.diff(held_from)
    nonempty = np.flatnonzero(size)
    if len(nonempty) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    rarest = np.minimum.reduceat(freq[elem_of] * n_elems + elem_of, start[nonempty]) % n_elems
    a = np.repeat(nonempty, freq[rarest])
    b = holders[_ranges(held_from[rarest], freq[rarest])]
    keep = (a != b) & (size[b] >= size[a])
    a, b = a[keep], b[keep]
    holds = _membership(sets, elems, n_sets, n_elems)
    # a's elements one at a time (one of them is the rarest: it passes) while that drops
    # many pairs; the few left are checked whole.
    found_a, found_b = [], []
    t = 0
    while len(a) > SUBSET_WHOLE_CHECK_PAIRS:
        done = size[a] <= t
        found_a.append(a[done])
        found_b.append(b[done])
        a, b = a[~done], b[~done]
        inside = holds(b, elem_of[start[a] + t])
        a, b = a[inside], b[inside]
        t += 1
    rest = np.maximum(size[a] - t, 0)
    pair = np.repeat(np.arange(len(a)), rest)
    missing = ~holds(b[pair], elem_of[_ranges(start[a] + t, rest)])
    whole = np.bincount(pair[missing], minlength=len(a)) == 0
    return np.concatenate([*found_a, a[whole]]), np.concatenate([*found_b, b[whole]])


def _dominance_sparse(sets: np.ndarray, elems: np.ndarray, n_sets: int, n_elems: int, mode: str) -> np.ndarray:
    """:func:`_dominance_dense` for sets given as (set, element) pairs (see
    :func:`_subset_pairs`)."""
    size = np.bincount(sets, minlength=n_sets)
    a, b = _subset_pairs(sets, elems, n_sets, n_elems)
    # The empty set is inside every set (:func:`_subset_pairs` lists non-empty sets only).
    empty = np.flatnonzero(size == 0)
    if mode == "same":
        same = size[a] == size[b]
        rep = np.arange(n_sets)
        np.minimum.at(rep, b[same], a[same])
        if len(empty):
            rep[empty] = empty[0]
        return rep
    drop = np.zeros(n_sets, dtype=bool)
    if mode == "subset":
        drop[a[(size[a] < size[b]) | (a > b)]] = True
        if len(empty):
            drop[empty] = True
            drop[empty[0]] = len(empty) < n_sets
    else:
        drop[b[(size[a] < size[b]) | (a < b)]] = True
        if len(empty):
            drop[:] = True
            drop[empty[0]] = False
    return drop


def _element_keys(n: int) -> np.ndarray:
    """Pseudo-random keys in [1, 2**31) for elements 0..n-1 (splitmix64's finaliser, which
    a seeded generator would cost more than all the rest): sums over up to 2**22 elements
    stay exact in float64. A linear key (e·φ mod P) would make {0, 3} and {1, 2} collide."""
    # Array arithmetic wraps modulo 2**64 without warnings (only numpy scalars warn).
    z = np.arange(n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return ((z >> np.uint64(33)) | np.uint64(1)).astype(float)


def _same_sets(sets: np.ndarray, elems: np.ndarray, n_sets: int, n_elems: int,
               min_share: float = 0.0) -> np.ndarray | None:
    """The lowest index of an equal set, per set (sets as distinct (set, element) pairs);
    None when fewer than ``min_share`` of them could merge with another.

    Sets are grouped by the sum of their elements' keys (positive, exact in float64), then
    each is checked against its group's first set element by element: with equal sums, a
    set inside the other is equal to it, and a collision only leaves a set unmerged. Far
    cheaper than :func:`_dominance_sparse`'s ``"same"``, which lists every subset pair.
    """
    key = _element_keys(n_elems)
    hashed = np.bincount(sets, weights=key[elems], minlength=n_sets)
    order = np.argsort(hashed, kind="stable")  # each group's lowest index first
    new_group = np.ones(n_sets, dtype=bool)
    new_group[1:] = hashed[order][1:] != hashed[order][:-1]
    if n_sets - int(new_group.sum()) < min_share * n_sets:
        return None
    rep = np.empty(n_sets, dtype=np.int64)
    rep[order] = order[np.flatnonzero(new_group)[np.cumsum(new_group) - 1]]
    merged = rep[sets] != sets
    if merged.any():
        holds = _membership(sets, elems, n_sets, n_elems)
        wrong = sets[merged][~holds(rep[sets[merged]], elems[merged])]
        rep[wrong] = wrong
    return rep


def _renumbered(index: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(index, return_inverse=True)`` for indices below ``size``, without sorting."""
    present = np.bincount(index, minlength=size) > 0
    return np.flatnonzero(present), (np.cumsum(present) - 1)[index]


def _cover_core(inst: _Instance, *, rows_are_constraints: bool) -> _Core:
    """Reduce a coverage instance by dominance until nothing changes.

    - A candidate whose homes are a subset of another's is never needed (ties: the lower
      index stays). This holds for set covering and for max-coverage alike.
    - Set covering (``rows_are_constraints``): a home whose candidates include all of
      another home's candidates is covered whenever that one is (Toregas & ReVelle 1973).
    - Max-coverage: homes with the same candidates become one row with their summed weight.

    Each step is one pairwise product of the sets (dense when small); a step whose sparse
    product would take more than ``CORE_MAX_PAIRS`` multiply-adds is skipped (the reduction
    is then partial, never wrong).
    """
    by_fixed = _rows_by_fixed(inst)
    keep = (~by_fixed[inst.row]) & ~inst.is_fixed[inst.col]
    row, col = _renumbered(inst.row[keep], inst.n), _renumbered(inst.col[keep], inst.m)
    (rows_u, row), (cols_u, col) = row, col
    weight = inst.weights[rows_u].astype(float)
    n, m = len(rows_u), len(cols_u)
    # Homes with the same candidates first, by hashing (what the home step below would do
    # for them, at a fraction of the cost of its pairwise product; 500 × 100 set cover: the
    # first home step shrinks from 500 to 356 sets).
    rep = _same_sets(row, col, n, m, min_share=SAME_HOMES_MIN_SHARE) if n and m else None
    if rep is not None:
        kept = rep == np.arange(n)
        if not rows_are_constraints:
            weight = np.bincount(rep, weights=weight, minlength=n)
        rows_u, weight, n = rows_u[kept], weight[kept], int(kept.sum())
        keep = kept[row]
        row, col = (np.cumsum(kept) - 1)[row[keep]], col[keep]
    # Alternate the two steps (each is idempotent): stop at the first that changes nothing,
    # once both have run. While the products are cheaper dense, the incidence matrix itself
    # is kept dense and sliced (small cores: most steps cost a few numpy calls).
    dense = None
    step = 0
    while n and m:
        on_cols = step % 2 == 0
        step += 1
        n_sets, n_elems = (m, n) if on_cols else (n, m)
        if dense is not None:
            size_of_elems = dense.sum(axis=1 if on_cols else 0).astype(float)
        else:
            size_of_elems = np.bincount(row if on_cols else col, minlength=n_elems).astype(float)
        products = float(size_of_elems @ size_of_elems)
        if products > CORE_MAX_PAIRS:
            if step >= 2:
                break
            continue
        mode = "subset" if on_cols else "superset" if rows_are_constraints else "same"
        if (n_sets * n_sets * n_elems <= CORE_DENSE_FLOPS_PER_PRODUCT * products and n_sets <= 4096
                and n * m <= CORE_DENSE_MAX_CELLS):
            if dense is None:
                dense = np.zeros((n, m), dtype=np.float32)
                dense[row, col] = 1.0
            found = _dominance_dense(dense.T if on_cols else dense, mode)
        else:
            if dense is not None:
                row, col = _cells(np.flatnonzero(dense), m)
                dense = None
            found = _dominance_sparse(col if on_cols else row, row if on_cols else col, n_sets, n_elems, mode)
        if mode == "same":
            drop = found < np.arange(n)
            weight = np.bincount(found, weights=weight, minlength=n)
        else:
            drop = found
        if not drop.any():
            if step >= 2:
                break
            continue
        kept = ~drop
        if on_cols:
            cols_u, m = cols_u[kept], int(kept.sum())
        else:
            rows_u, weight, n = rows_u[kept], weight[kept], int(kept.sum())
        if dense is not None:
            dense = dense[:, kept] if on_cols else dense[kept]
            continue
        keep = kept[col if on_cols else row]
        row, col = row[keep], col[keep]
        renumber = np.cumsum(kept) - 1  # kept sets keep their order
        if on_cols:
            col = renumber[col]
        else:
            row = renumber[row]
    if dense is not None:
        row, col = _cells(np.flatnonzero(dense), m)  # row-major: sorted by row, then column
    else:
        order = np.lexsort((col, row))
        row, col = row[order], col[order]
    core = _Instance(
        n, m, np.concatenate([[0], np.cumsum(np.bincount(row, minlength=n))]), row, col, np.zeros(len(row)),
        weight, weight.copy(), np.empty(0, dtype=np.int64), None, inst.limit_s,
    )
    return _Core(core, rows_u, cols_u, float(inst.weights[by_fixed].sum()))


# ------------------------------------------------------------------------------------------
# Set covering: greedy, exact, minimum count (also the feasibility test of other models)
# ------------------------------------------------------------------------------------------
def _rows_by_fixed(inst: _Instance) -> np.ndarray:
    covered = np.zeros(inst.n, dtype=bool)
    covered[inst.row[inst.is_fixed[inst.col]]] = True
    return covered


def _greedy_cover(inst: _Instance, start: np.ndarray | None = None, row_weight: np.ndarray | None = None,
                  order: np.ndarray | None = None, ptr: np.ndarray | None = None) -> np.ndarray:
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
        order, ptr = _csc_order(inst)
    csc_row = inst.row[order]
    left = int(need.sum())
    # Small models: recounting every score is cheaper than finding the entries to update.
    recount = inst.nnz <= GREEDY_RECOUNT_MAX_ENTRIES
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
            score = np.bincount(inst.col[e], weights=rw[inst.row[e]], minlength=inst.m).astype(float, copy=False)
            score[is_open] = -np.inf
            continue
        pos, local = _row_entries(inst, rows)
        score -= np.bincount(inst.col[pos], weights=rw[rows][local], minlength=inst.m)
        score[j] = -np.inf
    return _drop_redundant(inst, np.array(chosen, dtype=np.int64), order, ptr)


def _cover_local_search(
    inst: _Instance,
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

    On a 20,000 × 2,000 set cover (homes within 10 minutes of random candidates) the greedy
    and the Lagrangian heuristic give 277 sites; with this search the heuristic ends at 255
    in 10 s, where HiGHS reaches 253 in 60 s (LP bound 222).
    """
    rng = np.random.default_rng(seed)
    cur = best = np.asarray(cover, dtype=np.int64)
    overlap = None
    row_len = np.diff(inst.indptr).astype(float)
    if float(row_len @ row_len) <= CORE_MAX_PAIRS:
        a_mat = sparse.csr_array((np.ones(inst.nnz, dtype=np.int32), inst.col, inst.indptr), shape=(inst.n, inst.m))
        overlap = (a_mat.T @ a_mat).tocsr()
    order, ptr = _csc_order(inst)
    stall = 0
    it = 0
    while stall < stall_rounds and len(best) > target and not _past(deadline) and len(cur):
        it += 1
        j = int(rng.choice(cur))
        if overlap is not None:
            nb = overlap.indices[overlap.indptr[j] : overlap.indptr[j + 1]]
            share = overlap.data[overlap.indptr[j] : overlap.indptr[j + 1]]
            inside = np.isin(nb, cur)
            out = nb[inside][np.argsort(-share[inside], kind="stable")[:q]]
        else:
            out = rng.choice(cur, min(q, len(cur)), replace=False)
        new = _greedy_cover(inst, start=np.setdiff1d(cur, out), row_weight=row_weight if it % 2 else None,
                            order=order, ptr=ptr)
        stall += 1
        if len(new) <= len(cur):
            cur = new
            if len(new) < len(best):
                best, stall = new, 0
    return best


def _drop_redundant(inst: _Instance, chosen: np.ndarray, order=None, ptr=None) -> np.ndarray:
    """Remove new sites whose rows are all covered twice (smallest sites first)."""
    if order is None:
        order, ptr = _csc_order(inst)
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


def _row_entries(inst: _Instance, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    starts = inst.indptr[rows]
    lengths = inst.indptr[rows + 1] - starts
    return _ranges(starts, lengths), np.repeat(np.arange(len(rows)), lengths)


def _cover_milp(
    inst: _Instance,
    *,
    time_limit: float | None,
    gap: float,
    start: np.ndarray | None = None,
    relax: bool = False,
    cutoff: float | None = None,
    min_new: int = 0,
) -> _MilpResult:
    """Fewest new sites so every coverable row is covered (and served within capacity).

    ``cutoff``: only covers with fewer sites are wanted; "infeasible" then means none exists.
    ``min_new``: a proven lower bound on the new sites (a cut that helps HiGHS prove).

    With groups and shares, only the required share of each group's weight must be covered.
    Variables: y (sites), then z (rows, when shares) or x (entries, when capacities).
    """
    m, n = inst.m, inst.n
    lp_cost = np.where(inst.is_fixed, 0.0, 1.0)
    lb, ub = _site_bounds(inst)
    partial = inst.group_codes is not None
    cap = inst.capacities is not None
    rows_need = np.flatnonzero(inst.coverable)
    if cap:
        nx = inst.nnz
        lp = _Lp(m + nx)
        e = np.arange(nx)
        # Each row served once (or at most once when only a share is required).
        r_local = np.searchsorted(rows_need, inst.row)
        lp.add(r_local, m + e, 1.0, np.zeros(len(rows_need)) if partial else np.ones(len(rows_need)), 1.0)
        _add_links_and_capacity(lp, inst, m)
        served = (m + e, inst.weights[inst.row], inst.row)
        col_lb = np.concatenate([lb, np.zeros(nx)])
        col_ub = np.concatenate([ub, np.ones(nx)])
        integer = np.ones(m + nx, dtype=bool)
        cost = np.concatenate([lp_cost, np.zeros(nx)])
    elif partial:
        nz = len(rows_need)
        lp = _Lp(m + nz)
        z_of_row = np.full(n, -1)
        z_of_row[rows_need] = np.arange(nz)
        keep = inst.coverable[inst.row]
        zr = z_of_row[inst.row[keep]]
        lp.add(np.concatenate([np.arange(nz), zr]), np.concatenate([m + np.arange(nz), inst.col[keep]]),
               np.concatenate([np.ones(nz), -np.ones(len(zr))]), np.full(nz, -np.inf), 0.0)
        served = (m + np.arange(nz), inst.weights[rows_need], rows_need)
        col_lb = np.concatenate([lb, np.zeros(nz)])
        col_ub = np.concatenate([ub, np.ones(nz)])
        integer = np.concatenate([np.ones(m, dtype=bool), np.zeros(nz, dtype=bool)])
        cost = np.concatenate([lp_cost, np.zeros(nz)])
    else:
        # Rows: the homes not covered by fixed sites, each a row of the instance: its CSR
        # is the constraint matrix (no triplets to sort: most of the time on small cores).
        need = inst.coverable & ~_rows_by_fixed(inst)
        lengths = np.diff(inst.indptr)[need]
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        indices = inst.col[need[inst.row]]
        row_lb = np.ones(len(lengths))
        if min_new > 0:
            free = np.flatnonzero(~inst.is_fixed)
            indptr = np.append(indptr, indptr[-1] + len(free))
            indices = np.concatenate([indices, free])
            row_lb = np.append(row_lb, float(min_new))
        a = _Compressed("csr", indptr, indices, np.ones(len(indices)))  # len(row_lb) rows, m columns
        run = _HighsRun(lp_cost, a, row_lb, np.full(len(row_lb), np.inf), lb, ub, np.ones(m, dtype=bool),
                        time_limit=time_limit, gap=gap, start=start, relax=relax, cutoff=cutoff)
        run.run()
        return run.result()
    if partial:
        _add_share_rows(lp, inst, *served)
    if min_new > 0:
        free = np.flatnonzero(~inst.is_fixed)
        lp.add(np.zeros(len(free), dtype=np.int64), free, 1.0, [float(min_new)], np.inf)
    return lp.solve(cost, col_lb, col_ub, integer, time_limit=time_limit, gap=gap, start=start, relax=relax,
                    cutoff=cutoff)


def _add_links_and_capacity(lp: _Lp, inst: _Instance, x0: int) -> None:
    """x_e <= y_j for every entry e = (i, j), and Σ_i load_i x_ij <= Q_j y_j."""
    nx = inst.nnz
    e = np.arange(nx)
    lp.add(np.concatenate([e, e]), np.concatenate([x0 + e, inst.col]),
           np.concatenate([np.ones(nx), -np.ones(nx)]), np.full(nx, -np.inf), 0.0)
    if inst.capacities is not None:
        j = np.arange(inst.m)
        lp.add(np.concatenate([inst.col, j]), np.concatenate([x0 + e, j]),
               np.concatenate([inst.loads[inst.row], -inst.capacities]), np.full(inst.m, -np.inf), 0.0)


def _assignment_from(x: np.ndarray, inst: _Instance) -> np.ndarray:
    """The site of each row from a MIP's entry variables ``x`` (one per entry of ``inst``;
    -1 where a row has none at 1)."""
    chosen = x > 0.5
    assignment = np.full(inst.n, -1, dtype=np.int64)
    assignment[inst.row[chosen]] = inst.col[chosen]
    return assignment


def _flow_shortfall(inst: _Instance, loads: np.ndarray, supply: np.ndarray) -> tuple[bool, np.ndarray | None]:
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
        (np.concatenate([load_int, load_int[row], room_int[open_sites]]).astype(np.int32),
         (np.concatenate([np.full(n, source), row, n + open_sites]),
          np.concatenate([np.arange(n), n + col, np.full(len(open_sites), sink)]))),
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


def _split_cover(
    inst: _Instance, max_new: int | None, deadline: float | None, pool: list[np.ndarray] | None = None,
    exclude: list[np.ndarray] | tuple = (),
) -> tuple[str, np.ndarray | None]:
    """Sites serving every coverable row within capacity when a row's load may be split
    between sites: the split relaxation of capacitated covering.

    ``max_new``: any solution with at most that many new sites ("feasible"); None: the
    fewest new sites ("optimal"). Returns (status, open-site mask), status also
    "infeasible" (proven, even split) or "undecided" (time up, or a rounding tie).

    Benders decomposition: a master MIP over the sites alone (each row within reach of an
    open site, capacity cuts) proposes sites; a max flow checks them
    (:func:`_flow_shortfall`). A flow short of the demand yields homes H whose load exceeds
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
    lp = _Lp(m)
    lp.add(rows_of_need, inst.col, 1.0, np.ones(len(need)), np.inf)
    load_near = loads[need].copy()
    per_site = np.bincount(inst.col, minlength=m).astype(float)
    if float(per_site @ per_site) <= CORE_MAX_PAIRS:  # else only each row's own load
        a, b = _subset_pairs(inst.row, inst.col, n, m)
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
    lb, ub = _site_bounds(inst)
    integer = np.ones(m, dtype=bool)
    rounds, relax = 0, True
    while True:
        if _past(deadline):
            return "undecided", None
        res = lp.solve(cost, lb, ub, integer, time_limit=_remaining(deadline), gap=0.0, relax=relax)
        rounds += 1
        if res.status == "infeasible":
            return "infeasible", None
        if res.x is None or (not relax and res.status != "optimal" and max_new is None):
            return "undecided", None
        y = np.clip(res.x, 0.0, 1.0) if relax else (res.x > 0.5).astype(float)
        full, members = _flow_shortfall(inst, loads, caps * y)
        if full and not relax:
            return ("feasible" if max_new is not None else "optimal"), y > 0.5
        if full or members is None or (relax and rounds >= SPLIT_LP_ROUNDS):
            if not relax:
                return "undecided", None  # short only by rounding: cannot tell
            relax = False
            continue
        for part in _violated_parts(inst, members, loads, caps * y):
            pool.append(part)
            _add_flow_cut(lp, inst, part, loads)


def _violated_parts(inst: _Instance, members: np.ndarray, loads: np.ndarray, room: np.ndarray) -> list[np.ndarray]:
    """The cut set split into its clusters (rows linked through sites they reach): their
    reaches are disjoint, so at least one is violated on its own; each violated one is a
    separate, stronger cut (the whole set when none is smaller)."""
    from scipy.sparse import csgraph

    e = members[inst.row]
    rows, cols = inst.row[e], inst.col[e]
    graph = sparse.csr_array((np.ones(len(rows)), (rows, inst.n + cols)), shape=(inst.n + inst.m, inst.n + inst.m))
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


def _add_flow_cut(lp: _Lp, inst: _Instance, members: np.ndarray, loads: np.ndarray) -> None:
    """``Σ_{j within reach of H} Q_j y_j >= load(H)`` for the rows H in ``members``."""
    near = np.zeros(inst.m, dtype=bool)
    near[inst.col[members[inst.row]]] = True
    sites = np.flatnonzero(near)
    lp.add(np.zeros(len(sites), dtype=np.int64), sites, inst.capacities[sites], [float(loads[members].sum())], np.inf)


def _single_source(inst: _Instance, is_open: np.ndarray, time_limit: float | None) -> np.ndarray | None:
    """An assignment of every coverable row to one open site it reaches, within the
    capacities (a feasibility MIP, generalized assignment), or None when none is found."""
    sub = dataclasses.replace(inst.subset(is_open[inst.col]), fixed=np.flatnonzero(is_open))
    if np.any(inst.coverable & ~sub.coverable):
        return None
    res = _cover_milp(sub, time_limit=time_limit, gap=0.0)
    if res.x is None or res.status == "infeasible":
        return None
    return _assignment_from(res.x[inst.m :], sub)


def _add_share_rows(lp: _Lp, inst: _Instance, var: np.ndarray, w: np.ndarray, var_row: np.ndarray) -> None:
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


def _min_new_to_cover(inst: _Instance, time_limit: float | None) -> tuple[int, int, bool]:
    """(lower bound, best count, proven) of new sites needed to cover every coverable row."""
    greedy = _greedy_cover(inst) if inst.capacities is None else None
    res = _cover_milp(inst, time_limit=time_limit, gap=0.0,
                      start=None if greedy is None else _cover_start(inst, greedy))
    if res.status == "infeasible":
        return -1, -1, True
    best = int(round(res.objective)) if res.x is not None else -1
    lower = math.ceil(res.bound - 1e-6) if np.isfinite(res.bound) else 0
    return lower, best, res.status == "optimal"


def _cover_start(inst: _Instance, sites: np.ndarray) -> np.ndarray | None:
    if inst.group_codes is not None or inst.capacities is not None:
        return None
    y = inst.is_fixed.astype(float)
    y[sites] = 1.0
    return y


def _complete_cover_start(inst: _Instance, sites: np.ndarray, k: int) -> np.ndarray:
    """``sites`` filled up to ``k`` greedily (most weight newly covered first): a known
    solution mapped to a core loses the sites the core left out (dominated), and HiGHS
    ignores a start that does not open exactly k."""
    sites = list(sites)
    covered = np.zeros(inst.n, dtype=bool)
    covered[inst.row[np.isin(inst.col, sites)]] = True
    while len(sites) < k:
        gain = np.bincount(inst.col, weights=np.where(covered[inst.row], 0.0, inst.weights[inst.row]),
                           minlength=inst.m)
        gain[sites] = -1.0
        j = int(np.argmax(gain))
        sites.append(j)
        covered[inst.row[inst.col == j]] = True
    return np.asarray(sites, dtype=np.int64)


def _within_text(inst: _Instance) -> str:
    return f" within {inst.limit_s / 60:g} min" if inst.limit_s is not None else ""


# ------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------
class _LocationModel:
    """Shared construction, checks and reporting; subclasses define the solvers."""

    name: ClassVar[str] = ""
    sense: ClassVar[str] = "min"

    def __init__(self, instance: _Instance, p: int | None):
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

    def _solve(self, method: str, deadline: float | None, gap: float) -> dict:
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
        limit = EXACT_MAX_ENTRIES if self._inst.capacities is None else EXACT_MAX_ENTRIES_CAPACITATED
        return self._size() <= limit

    def _nearest_assignment(self, sites: np.ndarray) -> np.ndarray:
        is_open = np.zeros(self._inst.m, dtype=bool)
        is_open[sites] = True
        nearest, _ = _first_open(self._inst, is_open)
        return nearest

    def _finish(self, raw: dict, t0: float, gap: float) -> Solution:
        inst = self._inst
        sites = np.unique(np.concatenate([inst.fixed, np.asarray(raw["sites"], dtype=np.int64)]))
        assignment = raw.get("assignment")
        if assignment is None:
            assignment = self._nearest_assignment(sites)
        objective = self._objective_of(sites, assignment) if raw.get("objective") is None else raw["objective"]
        bound = raw["bound"]
        if self.sense == "min":
            bound = min(bound, objective)
        else:
            bound = max(bound, objective)
        covered = self._covered(assignment)
        solution = Solution(
            model=self.name,
            sites=sites,
            fixed_sites=inst.fixed.copy(),
            assignment=assignment,
            objective=float(objective),
            bound=float(bound),
            sense=self.sense,
            solver=raw["solver"],
            status="",
            seconds=0.0,
            unreachable=self.unreachable,
            covered=covered,
        )
        solution.status = raw.get("status") or ("optimal" if solution.gap <= gap + 1e-12 else "feasible")
        solution.info = dict(raw.get("info") or {})
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
        table = pd.DataFrame({"group": inst.group_labels, "weight": total, "weight_covered": cov,
                              "share": share, "min_share": inst.group_share})
        short = {inst.group_labels[g]: float(inst.group_share[g] - share[g]) for g in range(k)
                 if not np.isnan(inst.group_share[g]) and total[g] > 0
                 and share[g] < inst.group_share[g] - 1e-9}
        return table, short or None

    def _site_table(self, sites: np.ndarray, assignment: np.ndarray, covered: np.ndarray) -> pd.DataFrame:
        inst = self._inst
        W, P = self._entry_costs()
        order, ptr = _csc_order(inst)
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
        table = pd.DataFrame({
            "site": ranked_arr,
            "kind": np.where(inst.is_fixed[ranked_arr], "fixed", "new"),
            "rank": np.arange(1, len(ranked_arr) + 1),
            "homes": cnt[ranked_arr],
            "demand": dem[ranked_arr],
            "demand_covered": dcov[ranked_arr],
            "coverage_added": np.array(added),
            "mean_time_s": np.divide(tsum[ranked_arr], dem[ranked_arr],
                                     out=np.full(len(ranked_arr), np.nan), where=dem[ranked_arr] > 0),
        })
        if inst.capacities is not None:
            table["load"] = np.bincount(assignment[has], weights=inst.loads[has], minlength=inst.m)[ranked_arr]
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
                    f"capacities: {int(bad.sum())} homes (e.g. row {i}, load {inst.loads[i]:,.0f}) exceed the "
                    f"capacity of every candidate that reaches them (largest {reach_cap[i]:,.0f})"
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
                    f"{_within_text(inst)} of any candidate"
                )

    def _raise_too_few(self, k_new: int, what: str, deadline: float | None) -> None:
        """Raise the InfeasibleError for a p below the set-covering minimum, with the numbers."""
        inst = self._inst
        lower, best, proven = _min_new_to_cover(inst, _remaining(deadline))
        if lower < 0:
            raise InfeasibleError(f"{self.name}: no choice of sites can {what}{_within_text(inst)}")
        need = best if proven else lower
        if need > k_new:
            approx = "" if proven else " at least"
            raise InfeasibleError(
                f"p={k_new} is below the{approx} {need} new sites needed to {what}{_within_text(inst)}; "
                f"raise p to {need}"
            )


class PMedian(_LocationModel):
    """p-median: open ``p`` new sites minimising total weighted travel time.

    Every reachable home is assigned to one open site it can reach (within ``minutes`` when
    given); with capacities, to a site with room for its load (single sourcing).
    Objective: ``Σ_i w_i × cost_s[i, assigned(i)]``.
    """

    name = "p-median"
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
    ) -> "PMedian":
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
        """
        inst = _build_instance(cost, weights, fixed=fixed, capacities=capacities, loads=loads, minutes=minutes)
        return cls(inst, p)

    def _entry_costs(self):
        inst = self._inst
        W = inst.weights[inst.row] * inst.cost_s
        row_max = np.zeros(inst.n)
        np.maximum.at(row_max, inst.row, W)
        big = float(row_max.sum()) + 1.0
        return W, np.where(inst.coverable, big, 0.0)

    def _objective_of(self, sites, assignment):
        t = self._assigned_cost(assignment)
        return float(np.nansum(self._inst.weights * t))

    def _check_feasible(self) -> None:
        inst = self._inst
        if not inst.coverable.any():
            raise InfeasibleError(f"{self.name}: none of the {inst.n} homes can reach any candidate{_within_text(inst)}")
        if self.p + len(inst.fixed) == 0:
            raise InfeasibleError(f"{self.name}: p=0 and no fixed sites: no site to serve {int(inst.coverable.sum())} homes")
        self._capacity_precheck(self.p, need_all=True)

    def _integral(self, W: np.ndarray) -> bool:
        return bool(np.all(W == np.round(W)))

    def _solve(self, method, deadline, gap):
        inst = self._inst
        if inst.capacities is not None:
            return self._solve_capacitated(method, deadline, gap)
        if method == "exact":
            return self._exact(deadline, gap)
        t0 = time.perf_counter()
        if method == "auto" and self._size() <= EXACT_MAX_ENTRIES:
            # Small model: branch and bound (or HiGHS) finishes from the first local optimum
            # and the Lagrangian multipliers, which fix most variables; window search and
            # iterated local search cost more than they save it (six random 200-500-home
            # instances: 2.2 s with windows, 1.2 s without, the same optima).
            raw = self._heuristic(deadline, gap, ils=False, windows=False)
            if raw["gap"] <= gap or _past(deadline):
                return raw
            exact = self._finish_exactly(raw, _auto_deadline(deadline, time.perf_counter() - t0), gap)
            if exact["objective"] - exact["bound"] <= gap * abs(exact["objective"]) + 1e-9 * abs(exact["objective"]) \
                    or _past(deadline):
                return exact
            full = self._heuristic(deadline, gap)  # out of time: improve the incumbent
            return full if full["objective"] < exact["objective"] else exact
        raw = self._heuristic(deadline, gap)
        if method == "heuristic" or raw["gap"] <= gap or _past(deadline):
            return raw
        return self._finish_exactly(raw, _auto_deadline(deadline, time.perf_counter() - t0), gap)

    def _finish_exactly(self, raw: dict, deadline, gap: float) -> dict:
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
        upper = raw["objective"]
        value, r, chosen = _pmedian_lagrangian_value(inst, W, self.p, raw["lam"])
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
        keep = (value + np.maximum(W - raw["lam"][inst.row], 0.0) + extra[inst.col] < threshold) & ~closed[inst.col]
        reduced = dataclasses.replace(inst.subset(keep), fixed=np.flatnonzero(inst.is_fixed | forced))
        k_left = self.p - int(forced[free].sum())
        if np.any(inst.coverable & ~reduced.coverable) or k_left < 0:
            # Some home has no assignment left that could beat UB: the incumbent is optimal
            # within the tolerance.
            return {**raw, "bound": max(raw["bound"], threshold), "solver": "heuristic+lagrangian+fixing"}
        if reduced.nnz > EXACT_MAX_ENTRIES:
            return raw
        # Lagrangian branch and bound first: on these reduced models it proves in tens of
        # nodes what HiGHS needs cuts and branching for. 500 × 100 benchmark: 13 nodes,
        # 0.05 s (HiGHS 0.55-1.2 s); OR-Library pmed16/17: 0.13/0.43 s (HiGHS 32/28 s);
        # 2,000 × 300: 119 nodes, 2.9 s (HiGHS had not closed the gap in auto's 10 s).
        # HiGHS takes over when it does not finish within BRANCH_MAX_NODES or half the time
        # left, and when many sites are left to choose.
        finished, found = False, None
        if k_left <= BRANCH_MAX_SITES:
            half = None if deadline is None else time.perf_counter() + 0.5 * _remaining(deadline)
            finished, found, proven, _ = _pmedian_branch_and_bound(
                reduced, W[keep], k_left, raw["lam"], closed, upper, gap, integral=self._integral(W),
                deadline=half, max_nodes=BRANCH_MAX_NODES)
        if found is not None:
            objective = self._objective_of(found, self._nearest_assignment(found))
            if objective < upper:
                raw, upper = {**raw, "sites": found, "objective": objective}, objective
        if finished:
            bound = min(max(raw["bound"], min(proven, threshold)), upper)
            return {**raw, "bound": bound, "solver": "heuristic+lagrangian+branching"}
        sub = PMedian(reduced, k_left)
        res = sub._exact(deadline, gap, closed=closed, raise_infeasible=False, cutoff=threshold)
        if res is None:  # time up before HiGHS found anything
            return raw
        if res.get("infeasible"):  # no better solution in the reduced model
            return {**raw, "bound": max(raw["bound"], threshold), "solver": "heuristic+lagrangian+fixing"}
        sites = np.union1d(res["sites"], np.flatnonzero(forced))
        objective = self._objective_of(sites, self._nearest_assignment(sites))
        bound = max(raw["bound"], min(res["bound"], threshold))
        if objective >= upper:
            return {**raw, "bound": bound, "solver": "heuristic+lagrangian+highs"}
        return {"sites": sites, "objective": objective, "bound": bound, "solver": "heuristic+lagrangian+highs"}

    def _heuristic(self, deadline, gap, ils: bool = True, windows: bool = True) -> dict:
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
            if inst.nnz >= PARALLEL_MIN_ENTRIES and _can_fork():
                # Large instance: prove the bound in a forked process (a second core) while
                # this one improves the solution. Threads do not help here: the two loops
                # compete for the interpreter and memory bandwidth.
                child_info: dict = {}
                child = _ForkedCall(lambda: (self._dual(W, start, upper, gap, deadline, child_info), child_info))
            if child is not None:
                self._improve(eng, deadline, lam=None)
                result = child.result()
                if result is None:  # the child failed: compute the bound here
                    result = (self._dual(W, start, upper, gap, None, info), {})
                (bound, lam), child_info = result
                info.update(child_info, parallel=True)
            elif inst.nnz >= PARALLEL_MIN_ENTRIES:
                bound, lam = self._dual(W, start, upper, gap, deadline, info)
                self._improve(eng, deadline, lam=None)
            else:
                bound, lam = self._dual(W, start, upper, gap, deadline, info)
                if not self._closed(upper, bound, gap):
                    # The Lagrangian restart first: the solution it finds often closes the
                    # gap by itself, and then windows and ILS are not needed (Nanjing
                    # benchmark: 169 → 110 ms).
                    self._improve(eng, deadline, lam=lam, ils=False, windows=False)
                    if (ils or windows) and not self._closed(eng.objective(), bound, gap):
                        self._improve(eng, deadline, lam=None, ils=ils, bound=bound, gap=gap, windows=windows)
            if eng.objective() < upper:
                upper = eng.objective()
                if not self._closed(upper, bound, gap) and inst.nnz < PARALLEL_MIN_ENTRIES and not _past(deadline):
                    bound = max(bound, self._polish(W, upper, lam, gap, deadline)[0])
        sites = eng.open_sites()
        upper = self._objective_of(sites, self._nearest_assignment(sites))
        info.update(eng.stats)
        return {"sites": sites, "objective": upper, "bound": min(bound, upper), "solver": "heuristic+lagrangian",
                "gap": (upper - bound) / upper if upper else 0.0, "info": info, "lam": lam}

    def _first_solution(self, W: np.ndarray, P: np.ndarray, deadline) -> _SwapEngine:
        """Greedy + fast interchange, serving every reachable home; raises when p is too small.

        The greedy first runs with a soft penalty (a home left out costs a share of its
        largest reachable cost), then the interchange enforces service of every reachable home
        (hard penalty): chasing coverage first starts the search far from the optimum. Small
        instances try several penalties (and the plain greedy) and keep the best.
        """
        inst = self._inst
        row_max = np.zeros(inst.n)
        np.maximum.at(row_max, inst.row, W)
        shares = (0.75,) if inst.nnz >= PARALLEL_MIN_ENTRIES else FIRST_SHARES
        best = None
        for share in shares:
            soft = P if share is None else np.where(inst.coverable, share * row_max, 0.0)
            eng = _SwapEngine(inst, W, soft, self.p)
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
            lower, least, proven = _min_new_to_cover(inst, _remaining(deadline))
            if (proven and least > self.p) or lower > self.p:
                self._raise_too_few(self.p, "cover every reachable home", deadline)
            best = _SwapEngine(inst, W, P, self.p)
            best.reset(self._cover_sites())
            best.greedy()
            best.local_search(deadline)
        return best

    def _improve(self, eng: _SwapEngine, deadline, lam: np.ndarray | None, ils: bool = True,
                 bound: float = -math.inf, gap: float = 0.0, windows: bool = True) -> None:
        """Improve the local optimum: Lagrangian restart, window re-optimisation (``windows``),
        then ILS (``ils``, unless the solution is by then within ``gap`` of ``bound``)."""
        inst = self._inst
        best_sites, best = eng.open_sites(), eng.objective()
        if lam is not None:
            # Lagrangian heuristic: the relaxation's open sites are a second start.
            _, _, lag_open = _pmedian_lagrangian_value(inst, eng.W, self.p, lam)
            eng.reset(lag_open)
            eng.greedy()
            eng.local_search(deadline)
            if eng.objective() < best and not np.any(eng.phi1[inst.coverable] < 0):
                best_sites, best = eng.open_sites(), eng.objective()
            else:
                eng.set_open(best_sites)
        if _past(deadline):
            return
        # Window re-optimisation until no window improves; with a time limit, iterated local
        # search for the rest of the time. Large instances with a time limit go straight to
        # the search: 50,000 × 5,000, p = 100, 50 s on one core, windows (36 s, until none
        # improved) then the search ended at 4.3096e9, the search alone at 4.3019e9. (Moving
        # 4-6 sites a round instead of 2 did better alone, 4.299e9, but worse beside the
        # bound's process, which slows each round: 4.306e9 against 4.3053e9.)
        if windows and (deadline is None or inst.nnz < PARALLEL_MIN_ENTRIES):
            eng.improve_windows(deadline)
        if not ils or self._closed(eng.objective(), bound, gap):
            return
        if deadline is not None:
            eng.iterated_local_search(deadline)
        else:
            # Without a time limit a fixed number of rounds keeps the answer reproducible.
            eng.iterated_local_search(None, rounds=ILS_ROUNDS_PER_SITE * max(self.p, 1) + ILS_ROUNDS_BASE)

    def _closed(self, upper: float, bound: float, gap: float) -> bool:
        return upper - bound <= gap * abs(upper) + 1e-9 * abs(upper)

    def _dual_start(self, eng: _SwapEngine) -> tuple[np.ndarray, float, float]:
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
        integral = bool(np.all(W == np.round(W)))
        stop_at = math.floor(upper) - 1 + 1e-7 if integral else upper * (1 - gap)
        bound, lam = _smoothed_dual_pmedian(inst, W, self.p, lam0, mu0, time_scale_s,
                                            deadline=deadline, stop_at=stop_at)
        if integral:
            bound = math.ceil(bound - 1e-7)
        if self._closed(upper, bound, gap) or _past(deadline) or inst.nnz >= PARALLEL_MIN_ENTRIES:
            return bound, lam
        polished, lam2 = self._polish(W, upper, lam, gap, deadline)
        return (polished, lam2) if polished > bound else (bound, lam)

    def _polish(self, W, upper, lam, gap, deadline) -> tuple[float, np.ndarray]:
        """A short run of subgradient steps from a good λ (closes integral gaps exactly)."""
        integral = bool(np.all(W == np.round(W)))
        keep, cap = _truncation(self._inst, W, lam)
        bound, lam2, _ = _lagrangian_pmedian(self._inst.subset(keep), W[keep], self.p, upper, np.minimum(lam, cap),
                                             integral=integral, gap=gap, deadline=deadline, max_iter=150, mu0=0.25,
                                             cap=cap)
        return bound, lam2

    def _cover_sites(self) -> np.ndarray:
        res = _cover_milp(self._inst, time_limit=None, gap=0.0)
        return np.flatnonzero(res.x[: self._inst.m] > 0.5)

    def _exact(self, deadline, gap, start=None, closed=None, raise_infeasible: bool = True,
               cutoff: float | None = None) -> dict | None:
        inst = self._inst
        m, nx = inst.m, inst.nnz
        W = inst.weights[inst.row] * inst.cost_s
        lp = _Lp(m + nx)
        rows_cov = np.flatnonzero(inst.coverable)
        r_local = np.searchsorted(rows_cov, inst.row)
        lp.add(r_local, m + np.arange(nx), 1.0, np.ones(len(rows_cov)), 1.0)
        _add_links_and_capacity(lp, inst, m)
        free = np.flatnonzero(~inst.is_fixed)
        lp.add(np.zeros(len(free)), free, 1.0, [self.p], self.p)
        lb, ub = _site_bounds(inst)
        if closed is not None:
            ub[closed] = 0.0
        integer = np.concatenate([np.ones(m, dtype=bool), np.full(nx, inst.capacities is not None)])
        res = lp.solve(np.concatenate([np.zeros(m), W]), np.concatenate([lb, np.zeros(nx)]),
                       np.concatenate([ub, np.ones(nx)]), integer, time_limit=_remaining(deadline),
                       gap=gap, start=start, cutoff=cutoff)
        if res.status == "infeasible":
            if not raise_infeasible:
                return {"infeasible": True}
            self._raise_infeasible(deadline)
        if res.x is None:
            if not raise_infeasible:
                return None
            raise InfeasibleError(
                f"{self.name}: HiGHS found no feasible solution within the time limit "
                f"({inst.n} homes, {m} candidates); raise time_limit or use method='heuristic'"
            )
        sites = np.flatnonzero(res.x[:m] > 0.5)
        assignment = _assignment_from(res.x[m:], inst)
        if inst.capacities is None:
            assignment = None  # nearest open site: the same cost, and ties resolved consistently
        bound = res.bound if np.isfinite(res.bound) else -math.inf
        return {"sites": sites, "assignment": assignment, "bound": bound, "solver": "highs"}

    def _raise_infeasible(self, deadline) -> None:
        inst = self._inst
        # Too few sites to reach everyone is the usual cause; it raises with the numbers.
        self._raise_too_few(self.p, "cover every reachable home", deadline)
        raise InfeasibleError(
            f"{self.name}: no assignment of the {int(inst.coverable.sum())} reachable homes to {self.p} new + "
            f"{len(inst.fixed)} fixed sites respects the capacities{_within_text(inst)}"
        )

    # -- capacitated ------------------------------------------------------------------------
    def _solve_capacitated(self, method, deadline, gap) -> dict:
        if method == "exact" or (method == "auto" and self._auto_exact()):
            return self._exact(deadline, gap)
        return self._capacitated_heuristic(deadline, gap)

    def _capacitated_heuristic(self, deadline, gap) -> dict:
        """Location–allocation (Mulvey & Beck 1984): assign by MIP, relocate medians, repeat."""
        inst = self._inst
        W, P = self._entry_costs()
        eng = _SwapEngine(inst, W, P, self.p)
        eng.greedy()
        eng.local_search(deadline)
        sites = eng.open_sites()
        sites = self._ensure_capacity(sites)
        best = self._assign_capacitated(sites, deadline)
        order, ptr = _csc_order(inst)
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
        bound, _, _ = _lagrangian_pmedian(inst, W, self.p, cost, eng.d1.copy(),
                                          integral=self._integral(W), gap=gap, deadline=deadline)
        return {"sites": sites, "assignment": assignment, "objective": cost, "bound": bound,
                "solver": "heuristic+lagrangian", "gap": (cost - bound) / cost if cost else 0.0}

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
        lp = _Lp(nx)
        lp.add(np.searchsorted(rows_cov, sub.row), np.arange(nx), 1.0, np.ones(len(rows_cov)), 1.0)
        sel = np.flatnonzero(is_open)
        j_local = np.searchsorted(sel, sub.col)
        lp.add(j_local, np.arange(nx), sub.loads[sub.row], np.full(len(sel), -np.inf), inst.capacities[sel])
        W = sub.weights[sub.row] * sub.cost_s
        limit = _remaining(deadline)
        res = lp.solve(W, np.zeros(nx), np.ones(nx), np.ones(nx, dtype=bool),
                       time_limit=None if limit is None else max(limit * 0.5, 0.05), gap=1e-6)
        if res.x is None:
            return None
        return float(W[res.x > 0.5].sum()), _assignment_from(res.x, sub)

    def _relocate(self, sites, assignment, W) -> np.ndarray | None:
        """Move each new median to the candidate that serves its cluster cheapest (capacity allowing)."""
        inst = self._inst
        order, ptr = _csc_order(inst)
        new_sites = list(sites)
        changed = False
        for s in sites:
            if inst.is_fixed[s]:
                continue
            members = np.flatnonzero(assignment == s)
            if len(members) == 0:
                continue
            pos, local = _row_entries(inst, members)
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


class MaxCoverage(_LocationModel):
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
    ) -> "MaxCoverage":
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
        inst = _build_instance(cost, weights, fixed=fixed, capacities=capacities, loads=loads,
                               minutes=minutes, groups=groups, min_share=min_share)
        return cls(inst, p)

    def _entry_costs(self):
        inst = self._inst
        return np.zeros(inst.nnz), np.where(inst.coverable, inst.weights, 0.0)

    def _objective_of(self, sites, assignment):
        return float(self._inst.weights[assignment >= 0].sum())

    def _check_feasible(self) -> None:
        self._share_precheck()

    def _solve(self, method, deadline, gap):
        inst = self._inst
        plain = inst.capacities is None and inst.group_codes is None
        if method == "exact":
            return self._solve_core(method, deadline, gap) if plain and not self._is_core else self._exact(deadline, gap)
        t0 = time.perf_counter()
        # The heuristic runs on the full instance: its dual LP and interchange are as fast
        # there as on the core, and the core costs time (measured on the benchmarks).
        raw = self._heuristic(deadline, gap)
        if method == "heuristic" or (raw["gap"] <= gap and not raw.get("shortfall")) or not self._auto_exact():
            return raw
        if plain and raw["dual"] is not None:
            return self._finish_exactly(raw, _auto_deadline(deadline, time.perf_counter() - t0), gap)
        exact = self._exact(_auto_deadline(deadline, time.perf_counter() - t0), gap,
                            None if inst.capacities is not None else raw["sites"], allow_none=not raw.get("shortfall"))
        if exact is None:
            return raw
        exact["solver"] = raw["solver"] + "+highs"
        if inst.group_codes is None and inst.capacities is None:
            exact["bound"] = min(exact["bound"], raw["bound"])
        if exact.get("objective_value", -math.inf) < raw["objective"] and not raw.get("shortfall"):
            return {**raw, "bound": exact["bound"], "solver": exact["solver"]}
        return exact

    def _solve_core(self, method, deadline, gap, start_sites: np.ndarray | None = None) -> dict:
        """Solve on the dominance-reduced core, then map back (see :func:`_cover_core`).
        ``start_sites`` (exact only): a known solution's new sites, HiGHS's starting point."""
        inst = self._inst
        core = _cover_core(inst, rows_are_constraints=False)
        k = min(self.p, core.inst.m)
        if core.inst.n == 0 or k == 0:
            raw = {"sites": np.empty(0, dtype=np.int64), "bound": 0.0, "solver": "reduction"}
        else:
            sub = MaxCoverage(core.inst, k)
            sub._is_core = True
            if method == "exact" and start_sites is not None:
                index = np.full(inst.m, -1, dtype=np.int64)
                index[core.cols] = np.arange(len(core.cols))
                start = index[start_sites]
                start = _complete_cover_start(core.inst, start[start >= 0][:k], k)
                raw = sub._exact(deadline, gap, start_sites=start)
            else:
                raw = sub._solve(method, deadline, gap)
        return {**raw, "sites": self._fill(core.cols[raw["sites"]], self.p), "assignment": None,
                "objective": None, "bound": raw["bound"] + core.outside_weight}

    def _fill(self, new_sites: np.ndarray, k: int) -> np.ndarray:
        """``k`` new sites: when fewer than k add anything, the others largest first."""
        inst = self._inst
        new_sites = np.asarray(new_sites, dtype=np.int64)
        if len(new_sites) < k:
            others = np.flatnonzero(~inst.is_fixed & ~np.isin(np.arange(inst.m), new_sites))
            size = np.bincount(inst.col, weights=inst.weights[inst.row], minlength=inst.m)[others]
            new_sites = np.concatenate([new_sites, others[np.argsort(-size, kind="stable")[: k - len(new_sites)]]])
        return np.sort(new_sites)

    def _finish_exactly(self, raw: dict, deadline, gap: float) -> dict:
        """Close the heuristic's gap with HiGHS on the model reduced by Lagrangian fixing.

        With the LP's multipliers λ (value L, ``σ_j = Σ_{i∈N_j} λ_i``) and the incumbent's
        covered weight LB, opening a site outside the LP's top k changes L by at most
        ``σ_j - σ_(k)``; when that brings L below what a better solution needs, the site
        is left out (closing one of the top k the same way fixes it open). The rest goes to
        HiGHS on its dominance core (the p-median's ``_finish_exactly`` is the same idea).
        """
        inst = self._inst
        _, _, value, sigma = raw["dual"]
        lower = raw["objective"]
        # A better solution covers at least this much (weights integral: one unit more).
        need = lower + 1.0 if raw["integral"] else lower + max(gap * abs(lower), 1e-9 * abs(lower))
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
        outside = lower if raw["integral"] else need
        k_left = k - int(forced.sum())
        usable = int((~inst.is_fixed & ~closed & ~forced).sum())
        if k_left == 0 or usable == 0:
            return {**raw, "bound": min(raw["bound"], max(outside, lower)), "solver": raw["solver"] + "+fixing"}
        reduced = dataclasses.replace(inst.subset(~closed[inst.col]), fixed=np.flatnonzero(inst.is_fixed | forced))
        sub = MaxCoverage(reduced, min(k_left, usable))
        try:
            # The incumbent as HiGHS's start: 2,000 × 300 benchmark, 29 → 11 ms.
            res = sub._solve_core("exact", deadline, gap,
                                  start_sites=np.setdiff1d(raw["sites"], reduced.fixed))
        except InfeasibleError:  # time up before HiGHS found a solution
            return raw
        sites = np.union1d(self._fill(np.union1d(res["sites"], np.flatnonzero(forced)), k), inst.fixed)
        objective = self._objective_of(sites, self._nearest_assignment(sites))
        bound = min(raw["bound"], max(res["bound"], outside))
        solver = raw["solver"] + "+fixing+highs"
        if objective <= lower:
            return {**raw, "bound": max(bound, lower), "solver": solver}
        return {"sites": np.setdiff1d(sites, inst.fixed), "assignment": None, "objective": objective,
                "bound": max(bound, objective), "solver": solver}

    def _heuristic(self, deadline, gap) -> dict:
        # One BLAS thread while HiGHS runs beside: OpenBLAS's workers spin between calls,
        # and on two cores they take HiGHS's (500 × 100: 5.9 → 4.8 ms end to end). The
        # limit is process-wide and restored on exit, so only the main thread sets it: two
        # threads setting and restoring it in turn could leave it at one for good.
        if threading.current_thread() is not threading.main_thread():
            return self._heuristic_search(deadline, gap)
        with _blas_threads().limit(limits=1, user_api="blas"):
            return self._heuristic_search(deadline, gap)

    def _heuristic_search(self, deadline, gap) -> dict:
        inst = self._inst
        integral = bool(np.all(inst.weights == np.round(inst.weights)))
        # The bound's LP solves in a second thread while the interchange runs here.
        lp = thread = None
        if inst.nnz <= COVERAGE_LP_MAX_ENTRIES:
            lp = _CoverageDualLp(inst, inst.weights, self.p, integral=integral, deadline=deadline)
            thread = _Background(lp.run)
        W, P = self._entry_costs()
        total_cov = float(P.sum())
        if inst.group_codes is None and inst.n * inst.m * (len(inst.fixed) + self.p) <= DENSE_COVER_SWAP_MAX_FLOPS:
            eng = None
            dense = _DenseCoverSwap(inst, self.p)
            sites = dense.search(inst.fixed, deadline)
            value = total_cov - dense.uncovered(sites)
        else:
            eng = _SwapEngine(inst, W, P, self.p)
            eng.greedy()
            eng.local_search(deadline)
            sites = eng.open_sites()
            value = total_cov - eng.objective()
        dual = None
        if lp is not None:
            thread.join()
            dual = lp.result()
        if dual is None:
            bound, lag_pick = _lagrangian_coverage(inst, inst.weights, self.p, value, integral=integral, gap=gap,
                                                   deadline=deadline)
            solver = "heuristic+lagrangian"
        else:
            bound, lag_pick, _, _ = dual
            solver = "heuristic+lp"
        if bound - value > gap * abs(value) and not _past(deadline):
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
        return {"sites": sites, "assignment": assignment, "objective": value, "bound": bound,
                "solver": solver, "gap": (bound - value) / value if value else 0.0,
                "shortfall": shortfall, "dual": dual, "integral": integral}

    def _reweight_for_shares(self, eng: _SwapEngine, deadline) -> tuple[np.ndarray, dict | None]:
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
        lp = _Lp(nx)
        lp.add(np.searchsorted(rows_cov, sub.row), np.arange(nx), 1.0, np.zeros(len(rows_cov)), 1.0)
        sel = np.flatnonzero(is_open)
        lp.add(np.searchsorted(sel, sub.col), np.arange(nx), sub.loads[sub.row], np.full(len(sel), -np.inf),
               inst.capacities[sel])
        w = sub.weights[sub.row]
        limit = _remaining(deadline)
        res = lp.solve(w, np.zeros(nx), np.ones(nx), np.ones(nx, dtype=bool), maximize=True,
                       time_limit=None if limit is None else max(0.5 * limit, 0.05), gap=1e-6)
        if res.x is None:
            return 0.0, np.full(inst.n, -1, dtype=np.int64)
        return float(w[res.x > 0.5].sum()), _assignment_from(res.x, sub)

    def _exact(self, deadline, gap, start_sites=None, allow_none: bool = False) -> dict | None:
        inst = self._inst
        m, n = inst.m, inst.n
        lb, ub = _site_bounds(inst)
        free = np.flatnonzero(~inst.is_fixed)
        rows_cov = np.flatnonzero(inst.coverable)
        if inst.capacities is not None:
            nx = inst.nnz
            lp = _Lp(m + nx)
            lp.add(np.searchsorted(rows_cov, inst.row), m + np.arange(nx), 1.0, np.zeros(len(rows_cov)), 1.0)
            _add_links_and_capacity(lp, inst, m)
            w = inst.weights[inst.row]
            var, cost_v = m + np.arange(nx), w
            nv = nx
        else:
            nz = len(rows_cov)
            lp = _Lp(m + nz)
            zr = np.searchsorted(rows_cov, inst.row)
            lp.add(np.concatenate([np.arange(nz), zr]), np.concatenate([m + np.arange(nz), inst.col]),
                   np.concatenate([np.ones(nz), -np.ones(inst.nnz)]), np.full(nz, -np.inf), 0.0)
            var, cost_v = m + np.arange(nz), inst.weights[rows_cov]
            nv = nz
        lp.add(np.zeros(len(free)), free, 1.0, [self.p], self.p)
        if inst.group_codes is not None:
            _add_share_rows(lp, inst, var, cost_v, inst.row if inst.capacities is not None else rows_cov)
        integer = np.concatenate([np.ones(m, dtype=bool), np.full(nv, inst.capacities is not None)])
        start = None
        if start_sites is not None:
            y = np.zeros(m)
            y[start_sites] = 1.0
            y[inst.fixed] = 1.0
            covered = np.zeros(n, dtype=bool)
            covered[inst.row[y[inst.col] > 0]] = True
            start = np.concatenate([y, covered[rows_cov].astype(float)])
        res = lp.solve(np.concatenate([np.zeros(m), cost_v]), np.concatenate([lb, np.zeros(nv)]),
                       np.concatenate([ub, np.ones(nv)]), integer, maximize=True,
                       time_limit=_remaining(deadline), gap=gap, start=start)
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
            assignment = _assignment_from(res.x[m:], inst)
        bound = res.bound if np.isfinite(res.bound) else math.inf
        return {"sites": sites, "assignment": assignment, "bound": bound, "solver": "highs",
                "objective_value": res.objective}

    def _raise_share_infeasible(self, deadline) -> None:
        inst = self._inst
        shares = "" if inst.group_codes is None else " the minimum share of every group"
        lower, best, proven = _min_new_to_cover(inst, _remaining(deadline))
        need = best if proven else lower
        if need > self.p:
            raise InfeasibleError(
                f"p={self.p} is below the {'' if proven else 'at least '}{need} new sites needed to cover"
                f"{shares}{_within_text(inst)}; raise p to {need}"
            )
        raise InfeasibleError(f"{self.name}: no choice of {self.p} new sites meets{shares}{_within_text(inst)}")


class SetCover(_LocationModel):
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
    ) -> "SetCover":
        """Build the model from a demand × candidate travel-time matrix (seconds).

        See :meth:`MaxCoverage.from_cost_matrix` for the parameters (no ``p`` here).
        """
        if minutes is None:
            raise InputError("minutes: the coverage standard is required for set covering")
        inst = _build_instance(cost, weights, fixed=fixed, capacities=capacities, loads=loads,
                               minutes=minutes, groups=groups, min_share=min_share)
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

    def _solve(self, method, deadline, gap):
        inst = self._inst
        if inst.capacities is not None:
            # No dedicated heuristic for capacitated covering: HiGHS in every mode.
            if inst.group_codes is None:
                return self._solve_capacitated(deadline, gap)
            return self._exact(deadline, gap, None)
        if inst.group_codes is None and not self._is_core:
            core = _cover_core(inst, rows_are_constraints=True)
            if core.inst.n == 0:
                return {"sites": np.empty(0, dtype=np.int64), "objective": 0.0, "bound": 0.0, "solver": "reduction"}
            sub = SetCover(core.inst, None)
            sub._is_core = True
            raw = sub._solve(method, deadline, gap)
            return {**raw, "sites": core.cols[raw["sites"]], "assignment": None}
        if method == "exact":
            return self._exact(deadline, gap, None)
        t0 = time.perf_counter()
        then_exact = method == "auto" and self._auto_exact()
        raw = self._heuristic(deadline, lagrangian=not then_exact)
        if not then_exact or raw["bound"] >= raw["objective"]:
            return raw
        exact = self._exact(_auto_deadline(deadline, time.perf_counter() - t0), gap, raw["sites"], allow_none=True)
        if exact is None:
            return raw
        exact["solver"] = raw["solver"] + "+highs"
        exact["bound"] = max(exact["bound"], raw["bound"])
        return exact

    def _heuristic(self, deadline, lagrangian: bool = True, target: int = 0) -> dict:
        """Greedy cover and a bound. Small models start from the LP relaxation; the Lagrangian
        heuristic and the local search then look for a smaller cover (unless ``lagrangian``
        is false: HiGHS comes next; the Lagrangian still runs when there is no LP bound).
        The local search stops at a cover of ``target`` new sites (p-center's tests)."""
        inst = self._inst
        if inst.group_codes is not None:
            sites = self._greedy_partial()
            res = _cover_milp(inst, time_limit=_remaining(deadline), gap=0.0, relax=True)
            bound = math.ceil(res.objective - 1e-6) if res.x is not None else 0
            solver = "heuristic+lp"
        else:
            need = inst.coverable & ~_rows_by_fixed(inst)
            sites, lam, bound = None, None, 0
            solver = "heuristic+lagrangian"
            if inst.nnz <= COVER_LP_MAX_ENTRIES:
                res = _cover_milp(inst, time_limit=_remaining(deadline), gap=0.0, relax=True)
                if res.x is not None:
                    # The sites at 1 in the LP, completed greedily.
                    sites = _greedy_cover(inst, start=np.flatnonzero(res.x > 1 - 1e-6))
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
                sites = _greedy_cover(inst)
            if (lagrangian or lam is None) and bound < len(sites):
                lag_bound, sites = _lagrangian_setcover(inst, need, sites, deadline=deadline, start=lam)
                bound = max(bound, lag_bound)
            if lagrangian and bound < len(sites):
                sites = _cover_local_search(inst, sites, lam, deadline=deadline, target=max(bound, target),
                                            stall_rounds=COVER_ILS_STALL_PER_SITE * len(sites))
        value = float(len(sites))
        return {"sites": sites, "objective": value, "bound": float(bound), "solver": solver}

    def _solve_capacitated(self, deadline, gap) -> dict:
        """Capacitated covering (single sourcing). The split relaxation's fewest sites
        (:func:`_split_cover`: a master MIP over the sites, max-flow checks, Benders cuts)
        bound the count from below; when those sites also serve every home single-sourced
        (a small assignment MIP), that is optimal. Otherwise HiGHS solves the full model,
        with the bound as a cut."""
        inst = self._inst
        pool: list[np.ndarray] = []
        tried: list[np.ndarray] = []
        lower = 0
        for _ in range(COVER_SPLIT_TRIES):
            status, is_open = _split_cover(inst, None, deadline, pool, exclude=tried)
            if status == "infeasible" and not tried:
                self._raise_cover_infeasible()
            if status != "optimal":
                break
            count = int(np.count_nonzero(is_open & ~inst.is_fixed))
            if not tried:
                lower = count  # the first optimum bounds every single-source cover
            elif count > lower:
                break  # the other split optima are used up; HiGHS decides
            limit = _remaining(deadline)
            limit = COVER_SINGLE_SOURCE_S if limit is None else min(COVER_SINGLE_SOURCE_S, 0.5 * limit)
            assignment = _single_source(inst, is_open, limit)
            if assignment is not None:
                return {"sites": np.flatnonzero(is_open & ~inst.is_fixed), "assignment": assignment,
                        "bound": float(lower), "solver": "highs+flow"}
            tried.append(is_open)  # fits only split: ask for another set of the same size
        exact = self._exact(deadline, gap, None, min_new=lower)
        exact["bound"] = max(exact["bound"], float(lower))
        exact["solver"] = "highs+flow"
        return exact

    def _raise_cover_infeasible(self) -> None:
        inst = self._inst
        raise InfeasibleError(
            f"{self.name}: no choice of sites covers{' the minimum shares' if inst.group_codes is not None else ' every reachable home'}"
            f"{_within_text(inst)} within the capacities"
        )

    def _greedy_partial(self) -> np.ndarray:
        """Greedy for shares: add the site covering most still-missing group weight."""
        inst = self._inst
        k = len(inst.group_labels)
        codes = inst.group_codes
        ok = codes >= 0
        total = np.bincount(codes[ok], weights=inst.weights[ok], minlength=k)
        need = np.where(np.isnan(inst.group_share), 0.0, inst.group_share * total * (1 - 1e-9))
        covered = _rows_by_fixed(inst) & inst.coverable
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

    def _exact(self, deadline, gap, start_sites, allow_none: bool = False, min_new: int = 0) -> dict | None:
        inst = self._inst
        start = None if start_sites is None else _cover_start(inst, start_sites)
        res = _cover_milp(inst, time_limit=_remaining(deadline), gap=gap, start=start, min_new=min_new)
        if res.status == "infeasible":
            self._raise_cover_infeasible()
        if res.x is None:
            if allow_none:
                return None
            raise InfeasibleError(f"{self.name}: HiGHS found no cover within the time limit; raise time_limit")
        m = inst.m
        sites = np.flatnonzero(res.x[:m] > 0.5)
        assignment = None
        if inst.capacities is not None:
            assignment = _assignment_from(res.x[m:], inst)
        bound = math.ceil(res.bound - 1e-6) if np.isfinite(res.bound) else 0.0
        return {"sites": sites, "assignment": assignment, "bound": float(bound), "solver": "highs"}


class PCenter(_LocationModel):
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
    ) -> "PCenter":
        """Build the model from a demand × candidate travel-time matrix (seconds).

        See :meth:`PMedian.from_cost_matrix` for the parameters. ``weights`` only enter the
        site table (and loads when capacities are given).
        """
        inst = _build_instance(cost, weights, fixed=fixed, capacities=capacities, loads=loads, minutes=minutes)
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
            raise InfeasibleError(f"{self.name}: none of the {inst.n} homes can reach any candidate{_within_text(inst)}")
        if self.p + len(inst.fixed) == 0:
            raise InfeasibleError(f"{self.name}: p=0 and no fixed sites: no site to serve {int(inst.coverable.sum())} homes")
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
        core = _cover_core(sub, rows_are_constraints=True)
        if core.inst.n == 0:
            return True, np.empty(0, dtype=np.int64), 0
        cover = SetCover(core.inst, None)
        cover._is_core = True
        raw = cover._heuristic(deadline, lagrangian=not exact, target=self.p)
        lower = int(raw["bound"])
        if raw["objective"] <= self.p:
            return True, core.cols[raw["sites"]], 0
        if lower > self.p:
            return False, None, lower
        if not exact:
            return None, None, lower
        res = _cover_milp(core.inst, time_limit=_remaining(deadline), gap=0.0,
                          start=_cover_start(core.inst, raw["sites"]), cutoff=self.p + 0.5)
        return self._decided(res, core.inst.m, core.cols, lower)

    def _decided(self, res: _MilpResult, m: int, cols: np.ndarray | None, lower: int):
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

    def _solve(self, method, deadline, gap):
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
        proven_lo, _, found, undecided = _bisect(
            lo, hi, lambda i: self._feasible(values[i], exact, deadline)[:2], deadline)
        if found is not None:
            best_sites = found
        if best_sites is None:
            self._raise_infeasible_all(deadline)
        sites = self._pad(best_sites)
        # The covering tests return new sites only: fixed sites serve homes too.
        assignment = self._nearest_assignment(np.union1d(sites, inst.fixed))
        objective = self._objective_of(sites, assignment)
        bound = float(values[min(proven_lo, len(values) - 1)])
        return {"sites": sites, "objective": objective, "bound": min(bound, objective),
                "solver": "highs" if exact else "heuristic+lagrangian",
                "status": "feasible" if undecided else None, "assignment": assignment}

    def _lowest_index(self, values: np.ndarray) -> int:
        """Every home must reach some site: the largest row minimum is a lower bound."""
        inst = self._inst
        row_min = inst.cost_s[inst.indptr[:-1][inst.coverable]]
        return int(np.searchsorted(values, row_min.max()))

    def _solve_capacitated(self, method, deadline, gap):
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
        inst = self._inst
        if method != "exact" and deadline is None:
            deadline = time.perf_counter() + PCENTER_CAPACITATED_AUTO_S
        values = np.unique(inst.cost_s)
        lo, best, best_sites, best_assignment = self._capacitated_start(
            values, self._lowest_index(values), method, deadline, gap)
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
            if _past(deadline):
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
                if _past(deadline) or mid == len(values) - 1:
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
        out_of_time = _past(deadline)
        info.update(split_tests=tests, split_cuts=len(pool), split_bound_s=float(values[min(proven_lo, len(values) - 1)]))
        # Single-source tests between the split bound and the best radius found.
        if not out_of_time and proven_lo < best:
            def test(index: int):
                test_deadline = None if deadline is None else (
                    time.perf_counter() + max(0.5 * (deadline - time.perf_counter()), 0.2))
                ok, sites, assignment = self._single_source_feasible(values[index], test_deadline)
                return ok, (sites, assignment)

            proven_lo, index, found, undecided_mip = _bisect(proven_lo, best, test, deadline)
            undecided = undecided or undecided_mip
            if found is not None:
                best, (best_sites, best_assignment) = index, found
        if best_sites is None:
            if not undecided:
                self._raise_infeasible_all(deadline)
            raise InfeasibleError(f"{self.name}: no assignment of every reachable home to {self.p} new + "
                                  f"{len(inst.fixed)} fixed sites within the capacities found within the time limit; "
                                  "raise time_limit")
        sites = self._pad(best_sites)
        objective = self._objective_of(sites, best_assignment)
        bound = float(values[min(proven_lo, len(values) - 1)])
        return {"sites": sites, "objective": objective, "bound": min(bound, objective), "solver": "highs+flow",
                "status": "feasible" if undecided and bound < objective else None,
                "assignment": best_assignment, "info": info}

    def _single_source_feasible(self, radius: float, deadline):
        """(answer or None when undecided, new sites, assignment): the capacitated covering
        MIP with single sourcing, "p new sites or fewer?" (cutoff p + ½)."""
        inst = self._inst
        sub = inst.subset(inst.cost_s <= radius)
        if np.any(inst.coverable & ~sub.coverable):
            return False, None, None
        res = _cover_milp(sub, time_limit=_remaining(deadline), gap=0.0, cutoff=self.p + 0.5)
        ok, sites, _ = self._decided(res, inst.m, None, 0)
        if not ok:
            return ok, None, None
        # The MIP's own assignment: with capacities, homes are not all served by their
        # nearest open site, and the radius is that of this assignment.
        return True, sites, _assignment_from(res.x[inst.m :], sub)

    def _split_feasible(self, radius: float, deadline, pool: list) -> tuple[bool | None, np.ndarray | None]:
        """Can ``p`` new sites serve every reachable home within ``radius`` when a home's
        load may be split between sites? (answer or None when undecided, the sites with the
        fixed ones). A relaxation of single sourcing: "no" proves the radius infeasible.
        ``pool`` carries the cut sets to the next radius (:func:`_split_cover`)."""
        inst = self._inst
        sub = inst.subset(inst.cost_s <= radius)
        if np.any(inst.coverable & ~sub.coverable):
            return False, None
        status, is_open = _split_cover(sub, self.p, deadline, pool)
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
        lo = max(lo, int(np.searchsorted(values, relaxed["bound"])))
        # A short budget: the split search finds better site sets anyway.
        budget = 2 * BOTTLENECK_TEST_S
        if deadline is not None:
            budget = min(budget, (deadline - time.perf_counter()) / 3)
        start_deadline = time.perf_counter() + budget
        found = self._bottleneck(np.union1d(relaxed["sites"], inst.fixed), values, lo, start_deadline)
        if found is None:
            return lo, len(values) - 1, None, None
        return lo, found[0], np.setdiff1d(relaxed["sites"], inst.fixed), found[1]

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
        if np.all(np.bincount(nearest[has], weights=inst.loads[has], minlength=inst.m) <= inst.capacities + 1e-9):
            return max(lo, int(np.searchsorted(values, nearest_s))), nearest
        loads = np.where(inst.coverable, inst.loads, 0.0)
        room = np.where(is_open, inst.capacities, 0.0)
        if not _flow_shortfall(mine, loads, room)[0]:
            return None  # short of capacity even at the largest radius
        lo, hi = max(lo, int(np.searchsorted(values, nearest_s))), len(values) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if _flow_shortfall(mine.subset(mine.cost_s <= values[mid]), loads, room)[0]:
                hi = mid
            else:
                lo = mid + 1
        def assign(index: int) -> np.ndarray | None:
            # A feasibility MIP (generalized assignment) can stall: a test that runs out of
            # its time counts as a misfit and the search moves up.
            limit = _remaining(deadline)
            limit = BOTTLENECK_TEST_S if limit is None else min(BOTTLENECK_TEST_S, limit)
            return _single_source(mine.subset(mine.cost_s <= values[index]), is_open, limit)

        failed, growth, index, found = lo - 1, 0.02, lo, None
        while found is None:
            if _past(deadline):
                return None
            assignment = assign(index)
            if assignment is not None:
                found = (index, assignment)
            elif index == len(values) - 1:
                return None
            else:
                # Up by 2 %, 4 %, 8 %, ... of the radius (the values are dense).
                failed = index
                index = min(max(int(np.searchsorted(values, values[lo] * (1 + growth))), index + 1), len(values) - 1)
                growth *= 2
        while found[0] - failed > 1 and not _past(deadline):
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
        W, P = PMedian._entry_costs(self)
        inst_fixed = dataclasses.replace(inst, fixed=np.unique(np.concatenate([inst.fixed, sites])))
        eng = _SwapEngine(inst_fixed, W, P, k_left)
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
