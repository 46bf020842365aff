"""How far sweeps go, and what a travel time left empty means.

A question about 15-minute circles needs times up to 15 minutes: :func:`sweep_limit_s` stops
sweeps and cost matrices a margin past the largest threshold asked (full times on request).
A home with no time is then either *beyond* that limit (a path exists) or *unreachable* (no
path at all): :func:`reach_states` tells which, from the network's strongly connected
components (:func:`reaches`), without an unbounded sweep.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, dijkstra

from planner import settings
from planner._errors import InputError
from planner.network import Access, Network, TargetGraph, trip_costs


def sweep_limit_s(*minutes: float, full_times: bool = False) -> float:
    """Where sweeps stop: the largest threshold asked plus ``settings.sweep_margin_s``.

    Homes farther than that are *beyond* the limit (see :func:`reach_states`). With
    ``full_times`` sweeps go to ``settings.max_travel_time_s`` (60 minutes) instead, or past it
    when the largest threshold asked needs it (a 90-minute threshold is never cut at 60).

    Raises InputError for a threshold that is not positive and finite or is above
    ``settings.max_threshold_minutes``.
    """
    largest = max((float(m) for m in minutes), default=0.0)
    if not all(np.isfinite(float(m)) and float(m) > 0 for m in minutes):
        raise InputError(
            f"minutes {', '.join(f'{m:g}' for m in minutes)}: thresholds must be positive numbers of minutes"
        )
    if largest > settings.max_threshold_minutes:
        raise InputError(
            f"minutes {largest:g}: above {settings.max_threshold_minutes:g} minutes "
            "(settings.max_threshold_minutes); give the service standard in minutes, e.g. 15"
        )
    bounded = 60.0 * largest + float(settings.sweep_margin_s)
    return max(float(settings.max_travel_time_s), bounded) if full_times else bounded


#: What a travel time left empty (NaN) means: ``beyond`` the sweep's limit (a path exists, but
#: longer than the question needs), or ``unreachable`` (no path at all, or no such facility).
REACHED, BEYOND, UNREACHABLE = "reached", "beyond", "unreachable"
REACH_STATES = (REACHED, BEYOND, UNREACHABLE)


def reaches(net: Network, nodes: np.ndarray) -> np.ndarray:
    """Which network nodes have a path (of any length) to at least one of ``nodes``.

    Reachability is decided on the strongly connected components of the network, computed
    once per network (cached): a node reaches a target when its component reaches the
    target's in the components' graph, which on a street network is tiny (one big
    component and a few one-way traps). This costs far less than an unbounded sweep.
    """
    labels, comp_graph = _components(net)
    nodes = np.unique(np.asarray(nodes, np.int64))
    if len(nodes) == 0:
        return np.zeros(net.n_nodes, bool)
    if comp_graph.shape[0] == 1:  # strongly connected (every walk network): all reach all
        return np.ones(net.n_nodes, bool)
    sources = np.unique(labels[nodes])
    if comp_graph.nnz == 0:  # no edge between components: only the targets' own reach them
        ok = np.zeros(comp_graph.shape[0], bool)
        ok[sources] = True
    else:
        hops = dijkstra(comp_graph, directed=True, indices=sources, min_only=True, unweighted=True)
        ok = np.isfinite(hops)
    return ok[labels]


def _components(net: Network) -> tuple[np.ndarray, sp.csr_matrix]:
    """Strong component of each node, and the reversed graph between components (cached)."""
    if "components" not in net._graphs:
        n_comp, labels = connected_components(net.graph("time"), directed=True, connection="strong")
        a, b = labels[net.u], labels[net.v]
        cross = a != b
        # Reversed (b → a for a street a → b): walking it from the targets' components finds
        # every component with a path to them.
        comp_graph = sp.csr_matrix((np.ones(int(cross.sum())), (b[cross], a[cross])), shape=(n_comp, n_comp))
        net._graphs["components"] = (labels, comp_graph)
    return net._graphs["components"]


def reach_states(net: Network, origins: Access, cost: np.ndarray, target_nodes: np.ndarray) -> pd.Categorical:
    """Per origin, one of :data:`REACH_STATES`: ``reached`` where ``cost`` is finite, else
    ``beyond`` when one of its entries has a path to one of ``target_nodes`` (the targets'
    entry nodes), else ``unreachable``."""
    codes = (~np.isfinite(np.asarray(cost, float))).view(np.int8)  # 0 reached, 1 beyond ...
    strongly_connected = _components(net)[1].shape[0] == 1
    missed = np.zeros(0, np.int64) if strongly_connected and len(target_nodes) else np.flatnonzero(codes)
    if len(missed):  # ... unless no entry has a path to a target
        ok_node = reaches(net, target_nodes)
        entry = np.flatnonzero(np.isin(origins.owner, missed))
        has_path = np.zeros(origins.n_owners, bool)
        has_path[origins.owner[entry[ok_node[origins.node[entry]]]]] = True
        codes[missed[~has_path[missed]]] = 2
    return pd.Categorical.from_codes(codes, categories=list(REACH_STATES), validate=False)


def median_cutoff_s(net: Network, rows: Access, sites: Access, fixed: np.ndarray, limit_s: float) -> float:
    """Where a p-median's demand × site matrix can stop without changing its answer.

    The ``fixed`` sites (existing facilities, unlimited) stay open, so no row is ever served
    farther than its nearest one: pairs beyond the worst such time are never used. That time
    (a hair over, for float noise), or ``limit_s`` when some row has no fixed site within it.
    """
    if len(fixed) == 0:
        return float(limit_s)
    cost, nearest = TargetGraph(net, sites, "time").sweep(np.asarray(fixed), limit=limit_s)
    worst = float(np.max(trip_costs(net, rows, cost, nearest)[0], initial=0.0))
    return min(float(limit_s), worst * (1 + 1e-9) + 1e-6) if np.isfinite(worst) else float(limit_s)
