"""Chain contraction: a street graph with its shape-point nodes contracted out, for faster sweeps.

Most nodes of an OSM network are shape points along a street (two distinct neighbours).
:func:`contract_chains` replaces each chain of them between two junctions by one edge each way,
so a Dijkstra visits a fraction of the nodes; :meth:`Chains.expand` gives the chain nodes their
costs back from the junctions' (as osmnx's ``simplify_graph`` does for its graphs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from planner import settings


@dataclass
class Chains:
    """A graph with its chain nodes contracted out (as osmnx's ``simplify_graph`` does).

    A *chain node* has exactly two distinct neighbours; most nodes of an OSM network are
    such shape points along a street. Between two *core* nodes (junctions, dead ends) a
    chain becomes one edge each way, so a Dijkstra visits a fraction of the nodes; a chain
    node's cost is then the cheaper of its two ends plus the way along the chain. One-way
    chains keep their direction (a blocked direction costs ``inf``).

    Chain nodes are stored walk by walk, in order from end ``a`` to end ``b``; the running
    sums along the walk give the cost between any two points of one chain.
    """

    core: np.ndarray  # original ids of the core nodes, ascending
    is_core: np.ndarray  # (n,) bool
    node_index: np.ndarray  # (n,) index among core nodes, or among chain nodes
    graph: sp.csr_matrix  # forward (row = from) graph between core indices
    inner: np.ndarray  # original ids of the chain nodes, walk by walk
    walk: np.ndarray  # per chain node: its walk (chain)
    end_a: np.ndarray  # per chain node: core index of its walk's start ...
    end_b: np.ndarray  # ... and end
    f_sum: np.ndarray  # cost a → chain node, summed over the finite steps ...
    f_inf: np.ndarray  # ... and the number of missing (one-way) steps
    b_sum: np.ndarray  # cost chain node → a, likewise
    b_inf: np.ndarray
    f_total: np.ndarray  # per walk: the same sums up to b
    f_total_inf: np.ndarray
    b_total: np.ndarray
    b_total_inf: np.ndarray
    walk_first: np.ndarray  # per walk: index of its first chain node

    def to_a(self, i=slice(None)) -> np.ndarray:
        return np.where(self.b_inf[i] == 0, self.b_sum[i], np.inf)

    def from_a(self, i=slice(None)) -> np.ndarray:
        return np.where(self.f_inf[i] == 0, self.f_sum[i], np.inf)

    def to_b(self, i=slice(None)) -> np.ndarray:
        w = self.walk[i]
        return np.where(self.f_total_inf[w] == self.f_inf[i], self.f_total[w] - self.f_sum[i], np.inf)

    def from_b(self, i=slice(None)) -> np.ndarray:
        w = self.walk[i]
        return np.where(self.b_total_inf[w] == self.b_inf[i], self.b_total[w] - self.b_sum[i], np.inf)

    def expand(self, core_cost, core_near, limit: float, same_chain=None) -> tuple[np.ndarray, np.ndarray]:
        """Costs of all nodes from the core nodes' (and targets on chains, if any)."""
        via_a = self.to_a() + core_cost[self.end_a]
        via_b = self.to_b() + core_cost[self.end_b]
        use_b = via_b < via_a
        inner_cost = np.where(use_b, via_b, via_a)
        inner_near = np.where(use_b, core_near[self.end_b], core_near[self.end_a])
        if same_chain is not None:
            self._direct(inner_cost, inner_near, *same_chain)
        lost = ~(inner_cost <= limit) | ~np.isfinite(inner_cost)
        inner_cost[lost] = np.inf
        inner_near[lost] = -1
        n = len(self.is_core)
        cost = np.empty(n)
        near = np.empty(n, np.int64)
        cost[self.core], near[self.core] = core_cost, core_near
        cost[self.inner], near[self.inner] = inner_cost, inner_near
        return cost, near

    def _direct(self, inner_cost, inner_near, owner, at, leg) -> None:
        """Improve chain nodes by the direct way to a target on their own chain (in place)."""
        w = self.walk[at]
        length = np.r_[self.walk_first[1:], len(self.inner)][w] - self.walk_first[w]
        pair = np.repeat(np.arange(len(at)), length)
        j = self.walk_first[w][pair] + (np.arange(len(pair)) - np.repeat(np.cumsum(length) - length, length))
        i = at[pair]
        # Before the target (j < i): forward steps j → i; after it: backward steps.
        fwd = np.where(self.f_inf[i] == self.f_inf[j], self.f_sum[i] - self.f_sum[j], np.inf)
        bwd = np.where(self.b_inf[j] == self.b_inf[i], self.b_sum[j] - self.b_sum[i], np.inf)
        total = leg[pair] + np.where(j < i, fwd, np.where(j > i, bwd, 0.0))
        order = np.lexsort((total, j))
        j, total, who = j[order], total[order], owner[pair][order]
        first = np.r_[True, j[1:] != j[:-1]]
        j, total, who = j[first], total[first], who[first]
        better = total < inner_cost[j]
        inner_cost[j[better]] = total[better]
        inner_near[j[better]] = who[better]


def contract_chains(g: sp.csr_matrix) -> Chains | None:
    """Contract the chain nodes of ``g`` (forward CSR); ``None`` when too few to pay."""
    n = g.shape[0]
    if g.nnz == 0:
        return None
    in_out = np.diff(g.indptr) + np.bincount(g.indices, minlength=n)
    if np.count_nonzero(in_out <= 4) < settings.contract_min_share * n:
        return None  # e.g. a grid: hardly any chain nodes, contraction costs more than it saves
    g = g if g.has_sorted_indices else g.sorted_indices()
    from_node = np.repeat(np.arange(n), np.diff(g.indptr))
    proper = from_node != g.indices
    walks = _walk_chains(g, from_node, proper)
    if walks is None:
        return None
    return _contract(g, from_node, proper, walks)


@dataclass
class _Walks:
    """Every chain walked once from core end ``start`` to core end ``end``: one record per
    step (``trace``: its walk; ``prev`` → ``node``), walk by walk in walking order."""

    start: np.ndarray
    end: np.ndarray
    trace: np.ndarray
    prev: np.ndarray
    node: np.ndarray
    first: np.ndarray  # per walk: its first record
    last: np.ndarray  # per walk: its last record (the core node at its end)


def _walk_chains(g: sp.csr_matrix, from_node: np.ndarray, proper: np.ndarray) -> _Walks | None:
    """Walk the chains of ``g``; ``None`` when it has none."""
    n = g.shape[0]
    # Distinct neighbours either way (sorted per node): the pattern of g + gᵀ, no loops.
    ones = np.ones(int(proper.sum()), np.int8)
    pattern = sp.csr_matrix((ones, (from_node[proper], g.indices[proper])), shape=(n, n))
    both = (pattern + pattern.T).tocsr()
    deg = np.diff(both.indptr)
    chain = deg == 2
    nbr0 = both.indices[np.minimum(both.indptr[:-1], both.nnz - 1)]
    nbr1 = both.indices[np.minimum(both.indptr[:-1] + 1, both.nnz - 1)]
    na = np.repeat(np.arange(n), deg)
    nb = both.indices

    # Walk every chain from both of its ends at once, one step per loop.
    walk = ~chain[na] & chain[nb]
    n_walk = int(walk.sum())
    start = na[walk]
    prev, cur, trace = na[walk], nb[walk], np.arange(n_walk)
    rec_trace, rec_prev, rec_node = [], [], []
    end = np.full(n_walk, -1, np.int64)
    while len(trace):
        rec_trace.append(trace)
        rec_prev.append(prev)
        rec_node.append(cur)
        going = chain[cur]
        end[trace[~going]] = cur[~going]
        trace, came_from, prev = trace[going], prev[going], cur[going]
        cur = np.where(nbr0[prev] == came_from, nbr1[prev], nbr0[prev])
    if n_walk == 0:
        return None
    rec_trace = np.concatenate(rec_trace)
    order = np.argsort(rec_trace, kind="stable")  # each walk's records stay in walking order
    rec_trace = rec_trace[order]
    rec_prev = np.concatenate(rec_prev)[order]
    rec_node = np.concatenate(rec_node)[order]
    first = np.searchsorted(rec_trace, np.arange(n_walk))
    last = np.r_[first[1:], len(rec_trace)] - 1
    # Each chain was walked from both ends: keep one walk of each.
    keep = start * n + rec_node[first] < end * n + rec_prev[last]
    keep_rec = keep[rec_trace]
    rec_trace = (np.cumsum(keep) - 1)[rec_trace[keep_rec]]
    rec_prev, rec_node = rec_prev[keep_rec], rec_node[keep_rec]
    start, end = start[keep], end[keep]
    n_walk = len(start)
    first = np.searchsorted(rec_trace, np.arange(n_walk))
    last = np.r_[first[1:], len(rec_trace)] - 1
    return _Walks(start, end, rec_trace, rec_prev, rec_node, first, last)


def _contract(g: sp.csr_matrix, from_node: np.ndarray, proper: np.ndarray, walks: _Walks) -> Chains:
    """The contracted graph and the running costs along each walk."""
    n = g.shape[0]
    start, end, rec_trace, rec_prev, rec_node = walks.start, walks.end, walks.trace, walks.prev, walks.node
    first, last, n_walk = walks.first, walks.last, len(walks.start)

    # Position + 1 of each edge in g (0: no edge), looked up by scipy's C fancy indexing.
    edge_pos = sp.csr_matrix((np.arange(1, g.nnz + 1, dtype=np.int64), g.indices, g.indptr), shape=g.shape)

    def cost(a, b):
        """Weight of edge a → b, ``inf`` where there is none."""
        pos = np.asarray(edge_pos[a, b]).ravel()
        return np.where(pos > 0, g.data[pos - 1], np.inf)

    def walk_cumsum(x):
        """Cumulative sum of the finite steps within each walk, and the count of the others."""
        bad = ~np.isfinite(x)
        fin = np.where(bad, 0.0, x)
        cs, ci = np.cumsum(fin), np.cumsum(bad)
        base = first[rec_trace]
        return cs - (cs[base] - fin[base]), ci - (ci[base] - bad[base])

    f_sum, f_inf = walk_cumsum(cost(rec_prev, rec_node))  # start → this record's node
    b_sum, b_inf = walk_cumsum(cost(rec_node, rec_prev))  # this record's node → start
    is_inner = np.ones(len(rec_trace), bool)
    is_inner[last] = False  # the last record of a walk is its end, a core node
    s_to_e = np.where(f_inf[last] == 0, f_sum[last], np.inf)
    e_to_s = np.where(b_inf[last] == 0, b_sum[last], np.inf)

    # Chain nodes on a loop with no junction were never walked: they stay core.
    inner = rec_node[is_inner]
    is_core = np.ones(n, bool)
    is_core[inner] = False
    core = np.flatnonzero(is_core)
    node_index = np.full(n, -1, np.int64)
    node_index[core] = np.arange(len(core))
    node_index[inner] = np.arange(len(inner))
    direct = proper & is_core[from_node] & is_core[g.indices]
    ea = np.concatenate([from_node[direct], start, end])
    eb = np.concatenate([g.indices[direct], end, start])
    ew = np.concatenate([g.data[direct], s_to_e, e_to_s])
    ok = np.isfinite(ew) & (ea != eb)
    graph = csr_min(ew[ok], node_index[ea[ok]], node_index[eb[ok]], (len(core), len(core)))
    walk_of = rec_trace[is_inner]
    return Chains(
        core=core,
        is_core=is_core,
        node_index=node_index,
        graph=graph,
        inner=inner,
        walk=walk_of,
        end_a=node_index[start[walk_of]],
        end_b=node_index[end[walk_of]],
        f_sum=f_sum[is_inner],
        f_inf=f_inf[is_inner],
        b_sum=b_sum[is_inner],
        b_inf=b_inf[is_inner],
        f_total=f_sum[last],
        f_total_inf=f_inf[last],
        b_total=b_sum[last],
        b_total_inf=b_inf[last],
        walk_first=first - np.arange(n_walk),  # records before a walk's start, less the ends before it
    )


def csr_min(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, shape) -> sp.csr_matrix:
    """CSR matrix keeping the minimum of duplicate entries (scipy would sum them)."""
    values, rows, cols = np.asarray(values, float), np.asarray(rows), np.asarray(cols)
    key = rows.astype(np.int64) * shape[1] + cols
    order = np.lexsort((values, key))
    key = key[order]
    first = np.ones(len(key), bool)
    first[1:] = key[1:] != key[:-1]
    rows, cols, values = rows[order][first], cols[order][first], values[order][first]
    indptr = np.zeros(shape[0] + 1, np.int32 if len(rows) < 2**31 else np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    return sp.csr_matrix((values, cols.astype(np.int32), indptr), shape=shape)
