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
(max-coverage, weights summed; :mod:`~planner.optimize.dominance`). The pairs tested are
those sharing a set's rarest element.

``method="exact"`` builds the mixed-integer programme and solves it with HiGHS
(``highspy``); stopped by ``time_limit`` it reports HiGHS's dual bound and gap.

``method="heuristic"`` works on the sparse matrix with numpy array operations:

- p-median and max-coverage: greedy start and fast vertex substitution (Whitaker 1983;
  Resende & Werneck 2004), restarted from the relaxation's sites; the p-median then
  re-optimises windows of neighbouring sites (POPMUSIC, Taillard 2003) and runs iterated
  local search (large instances with a time limit: the search alone); small max-coverage
  models price every swap by dense products instead (:class:`DenseCoverSwap`, the same
  moves); set covering:
  greedy from the LP's sites at 1, Beasley's (1990) Lagrangian heuristic, then a local
  search that takes out a few neighbouring sites and covers their homes again
  (:func:`cover_local_search`);
- a bound: for the p-median by Lagrangian relaxation, the dual smoothed and maximised by
  L-BFGS (continuation on the smoothing width), then polished by subgradient steps; for
  max-coverage the LP bound, from the Lagrangian dual written as an LP with one row per
  candidate (HiGHS solves it in milliseconds, the primal relaxation in hundreds), and
  subgradient optimisation on large models (while HiGHS runs, numpy's BLAS keeps to one
  thread: on two cores its spinning workers would take HiGHS's); for set covering the LP
  relaxation of the core.
  Every bound reported is re-evaluated as the exact Lagrangian value of some multipliers,
  hence valid, so every answer carries its gap.
  On large p-median instances (``_tuning.PARALLEL_MIN_ENTRIES``) the bound is computed in a
  forked process on a second core while the main process improves the solution.

``method="auto"`` runs the heuristic and, when its gap is above ``gap`` and the model is
small (``_tuning.EXACT_MAX_ENTRIES``), closes it exactly within a time budget
(``_tuning.AUTO_EXACT_FACTOR``) unless ``time_limit`` is given. For the p-median and
max-coverage Lagrangian fixing comes first (Beasley 1993: the sites and assignments that
cannot be part of a better solution are left out); the p-median's rest goes to a Lagrangian
branch and bound (:func:`pmedian_branch_and_bound`; small models skip the window search
before it), then to HiGHS if that does not finish; max-coverage's to HiGHS on its core,
started from the heuristic's sites; the other models' to HiGHS warm-started from the
heuristic.

The p-center is solved by binary search over the distinct travel times, each step a
set-covering feasibility test (HiGHS; greedy and Lagrangian bounds decide most steps first).
With capacities each step tests the split relaxation (loads may be divided between sites):
a master MIP over the sites, a max flow to check its proposal, Benders cuts from the flow's
min cut (the classical decomposition of capacitated covering); the site sets found are then
reassigned without splitting for the upper bound.

Modules
-------
``instance`` (the validated cost matrix, :func:`demand_weights`), ``solution``
(:class:`Solution` and the answers passed between solver stages), ``_base`` (what the models
share), one module per model family (``p_median``, ``coverage``, ``p_center``), and the
solvers they use: ``interchange`` (greedy and swaps), ``lagrangian`` (bounds and the
p-median's branch and bound), ``dominance`` (coverage cores), ``covering`` (set-cover
heuristics, the covering MIP, Benders cuts), ``_highs`` (HiGHS), ``_tuning`` (constants).
"""

from planner.optimize.coverage import MaxCoverage, SetCover
from planner.optimize.instance import demand_weights
from planner.optimize.p_center import PCenter
from planner.optimize.p_median import PMedian
from planner.optimize.solution import Solution

__all__ = [
    "MaxCoverage",
    "PCenter",
    "PMedian",
    "SetCover",
    "Solution",
    "demand_weights",
]
