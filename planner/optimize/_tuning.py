"""Tuning constants of the solvers, each with the reason for its value.

The code reads them as ``_tuning.NAME`` when it runs, so a test (or a user) can change one
by patching this module. Measurements behind some of them are in ``docs/optimize.md``.
"""

# -- method="auto" ---------------------------------------------------------------------------
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

# -- capacitated covering and p-center ---------------------------------------------------------
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

# -- p-median heuristic ------------------------------------------------------------------------
#: Iterated local search rounds per new site (plus ``ILS_ROUNDS_BASE``) when no time limit is
#: given: greedy + interchange + windows already reach the known optima of small instances,
#: so more rounds mostly cost time.
ILS_ROUNDS_PER_SITE = 1
ILS_ROUNDS_BASE = 5
#: The greedy recomputes all gains each step (entries × sites to open at most this) instead
#: of updating the interchange tables after every opening.
GREEDY_DIRECT_MAX_WORK = 20_000_000
#: Penalties tried for the p-median's first greedy: a home left out costs this share of its
#: largest reachable cost (None: the hard penalty); the best start is kept.
FIRST_SHARES = (0.75, 0.5, 1.0, None)
#: From this many entries the p-median heuristic proves its bound in a forked process while
#: the main process improves the solution.
PARALLEL_MIN_ENTRIES = 1_000_000
#: Branch and bound after fixing (small p-median models, ``method="auto"``): subgradient
#: steps per node (fewer need more nodes, more cost more than they save) and the nodes tried
#: before HiGHS takes over; only with at most ``BRANCH_MAX_SITES`` sites left to choose
#: (HiGHS is faster when many are).
BRANCH_ITERATIONS = 60
BRANCH_MAX_NODES = 400
BRANCH_MAX_SITES = 50
#: Window sub-problems keep candidates with at least this share of their homes inside the
#: window (others mostly serve homes elsewhere).
WINDOW_INSIDE_SHARE = 0.4

# -- p-median bound (smoothed Lagrangian dual) -------------------------------------------------
#: Smoothing widths of the dual's continuation stages, as fractions of a typical travel time.
SMOOTH_FRACS = (0.1, 0.025, 0.006, 0.0015)
#: A smoothing stage keeps the entries less than this many smoothing widths above a row's
#: multiplier (each one left out weighs under e^-20 in the smoothed dual).
SMOOTH_ACTIVE_WIDTHS = 20.0
#: With a deadline the last stage repeats until one repetition gains less than this share.
DUAL_REPEAT_MIN_GAIN = 1e-5
#: ... each repetition running this many L-BFGS iterations (fewer restart the curvature
#: pairs too often).
DUAL_REPEAT_ITERS = 150

# -- coverage models: dominance and bounds -----------------------------------------------------
#: Dominance reductions of the coverage models compare sets pairwise: a step is skipped
#: when the pairs sharing an element (the sum of squared element counts) are more than
#: this, which bounds its time and memory.
CORE_MAX_PAIRS = 30_000_000
#: Homes with the same candidates are merged by hashing (one column of max-coverage's bound
#: LP, one home of a coverage core) when at least this share of them can be; below it the
#: check costs more than it saves.
SAME_HOMES_MIN_SHARE = 0.15
#: The pairwise product is dense (float32 BLAS) when its multiply-adds are at most this many
#: times the sparse product's (a dense multiply-add costs about 1/300 of a sparse one).
CORE_DENSE_FLOPS_PER_PRODUCT = 300
#: ... and the dense incidence matrix has at most this many cells (16 MB in float32).
CORE_DENSE_MAX_CELLS = 4_000_000
#: The sparse dominance step looks set members up in a bit table up to this many sets ×
#: elements (128 MB), by binary search above.
SUBSET_BITS_MAX_CELLS = 2**30
#: ... and checks the pairs one element at a time until at most this many are left, then
#: each whole.
SUBSET_WHOLE_CHECK_PAIRS = 20_000
#: Entries grouped by candidate: a radix sort up to this many (no scipy fixed cost), scipy's
#: CSR → CSC above.
CSC_RADIX_MAX_ENTRIES = 20_000
#: Greedy covers recount every candidate's score after each pick up to this many entries
#: (one bincount; above it, only the scores of the newly covered rows' candidates change).
GREEDY_RECOUNT_MAX_ENTRIES = 8_192
#: Set covering's heuristic starts from the LP relaxation (HiGHS: its optimum is the best
#: Lagrangian bound, its duals the best multipliers) up to this many entries.
COVER_LP_MAX_ENTRIES = 50_000
#: Set covering's local search (``method="heuristic"``) stops after this many rounds per site
#: of the cover without a smaller cover. ``"auto"`` leaves it to HiGHS, which the search
#: would only delay.
COVER_ILS_STALL_PER_SITE = 5
#: Linear programmes up to this many rows × columns skip HiGHS's presolve, which costs more
#: than it saves on them.
LP_NO_PRESOLVE_MAX_CELLS = 1_000_000
#: Max-coverage's bound LP leaves out dominated candidates when finding them (a dense
#: candidates × candidates × homes product) takes at most this many multiply-adds.
COVERAGE_LP_DOMINANCE_MAX_FLOPS = 10_000_000
#: Max-coverage's bound comes from its LP (dual form, HiGHS) up to this many entries, and
#: from subgradient optimisation above.
COVERAGE_LP_MAX_ENTRIES = 500_000
#: Max-coverage's interchange works on the dense homes × candidates matrix, every swap
#: priced by one product, up to this many homes × candidates × open sites (the sparse
#: engine's bookkeeping costs more there).
DENSE_COVER_SWAP_MAX_FLOPS = 2_000_000
