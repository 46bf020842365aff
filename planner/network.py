"""Street networks as CSR arrays, snapping, and shortest-path sweeps.

A :class:`Network` is plain numpy: node coordinates and directed edges with length and
travel time. Shortest paths run on ``scipy.sparse.csgraph``; networkx appears only in
:func:`to_networkx` for interop and independent checks.

Facilities (or any targets) enter a sweep as *virtual source nodes*: one extra node per
target, joined to the network nodes where it is reached (its snapped node, or every node
near a park's outline) by edges that carry the off-network leg. One multi-source Dijkstra
with ``min_only=True`` then gives, for every network node, the cost to the nearest target
and which target it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
from pyproj import CRS
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from planner import settings
from planner._errors import InputError
from planner.chains import Chains, contract_chains, csr_min
from planner.options import MODES
from planner.sources import Region

# Highway values each mode never uses (after osmnx's network_type filters; drive keeps
# `track` because rural China drives on them).
_EXCLUDE = {
    "walk": (
        "abandoned|bus_guideway|construction|cycleway|motorway|motorway_link|no|planned|platform|"
        "proposed|raceway|razed|disused"
    ),
    "bike": (
        "abandoned|bus_guideway|construction|corridor|elevator|escalator|footway|motorway|motorway_link|"
        "no|planned|platform|proposed|raceway|razed|steps|disused"
    ),
    "drive": (
        "abandoned|bridleway|bus_guideway|construction|corridor|cycleway|elevator|escalator|footway|no|"
        "path|pedestrian|planned|platform|proposed|raceway|razed|steps|disused"
    ),
}
_MODE_ACCESS_TAG = {"walk": ("foot",), "bike": ("bicycle",), "drive": ("motor_vehicle", "motorcar")}
_YES = {"yes", "designated", "permissive", "destination"}
WALL_BARRIERS = {"wall", "fence", "city_wall", "hedge"}


@dataclass
class Network:
    """A directed street network in a metric CRS.

    Attributes
    ----------
    mode : str
        ``walk``, ``bike`` or ``drive``.
    crs : pyproj.CRS
        Metric CRS of ``x`` and ``y``.
    node_id : np.ndarray
        OSM node id of each node.
    x, y : np.ndarray
        Node coordinates in metres.
    u, v : np.ndarray
        Directed edges (node indices); two-way streets appear in both directions.
    length_m, time_s : np.ndarray
        Edge length and travel time.
    walk_speed_mps : float
        Speed of off-network legs (always walked).
    """

    mode: str
    crs: CRS
    node_id: np.ndarray
    x: np.ndarray
    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length_m: np.ndarray
    time_s: np.ndarray
    walk_speed_mps: float
    notes: list[str] = field(default_factory=list)
    _tree: cKDTree | None = field(default=None, repr=False)
    _graphs: dict = field(default_factory=dict, repr=False)

    @property
    def n_nodes(self) -> int:
        return len(self.x)

    @property
    def n_edges(self) -> int:
        return len(self.u)

    def xy(self) -> np.ndarray:
        """Node coordinates as an (n, 2) array."""
        return np.column_stack([self.x, self.y])

    def edge_weight(self, weight: str) -> np.ndarray:
        if weight in ("time", "time_s"):
            return self.time_s
        if weight in ("length", "length_m"):
            return self.length_m
        raise InputError(f"weight {weight!r}: use 'time' or 'length'")

    def graph(self, weight: str = "time", reverse: bool = False) -> sp.csr_matrix:
        """CSR adjacency (row = from) with the edge weight; ``reverse`` gives the transpose."""
        key = (weight, reverse)
        if key not in self._graphs:
            a, b = (self.v, self.u) if reverse else (self.u, self.v)
            w = self.edge_weight(weight)
            shape = (self.n_nodes, self.n_nodes)
            g = sp.csr_matrix((w, (a, b)), shape=shape)  # fast, but sums parallel edges
            if g.nnz < len(w):
                g = csr_min(w, a, b, shape)  # parallel edges: keep the fastest instead
            self._graphs[key] = g
        return self._graphs[key]

    def chains(self, weight: str = "time") -> Chains | None:
        """The graph with its chain nodes contracted out (cached); ``None`` on a network with
        too few of them to pay (see :func:`planner.chains.contract_chains`)."""
        key = ("chains", weight)
        if key not in self._graphs:
            self._graphs[key] = contract_chains(self.graph(weight))
        return self._graphs[key]

    @property
    def tree(self) -> cKDTree:
        if self._tree is None:
            self._tree = cKDTree(self.xy())
        return self._tree


@dataclass
class Access:
    """Where points enter the network: owner point, network node and the leg's cost.

    A point may have several entries (a home in a gated compound leaves by any of its gates;
    a park is entered anywhere along its outline); the cost of a trip is the minimum over them.
    """

    owner: np.ndarray
    node: np.ndarray
    leg_m: np.ndarray
    n_owners: int
    _groups: tuple | None = field(default=None, repr=False)
    _by_node: tuple | None = field(default=None, repr=False)

    def groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(order by owner, run starts, run owners), or None when every owner has exactly one
        entry in owner order (the common case, which needs no grouping)."""
        if self._groups is None:
            if len(self.owner) == self.n_owners and np.array_equal(self.owner, np.arange(self.n_owners)):
                self._groups = (None,)
            else:
                order = np.argsort(self.owner, kind="stable")
                owner_sorted = self.owner[order]
                starts = np.flatnonzero(np.r_[True, owner_sorted[1:] != owner_sorted[:-1]])
                self._groups = (order, starts, owner_sorted)
        return None if self._groups[0] is None else self._groups

    def leg(self, net: Network, weight: str, entries: np.ndarray | None = None) -> np.ndarray:
        """Leg cost in the unit of ``weight`` (legs are walked, with a detour factor), of every
        entry or of ``entries``."""
        metres = (self.leg_m if entries is None else self.leg_m[entries]) * settings.off_network_detour
        return metres / net.walk_speed_mps if weight in ("time", "time_s") else metres

    def entries_at(self, nodes: np.ndarray, n_nodes: int) -> np.ndarray:
        """The entries at ``nodes`` (distinct network nodes), ascending; the index by node is
        built once per Access."""
        if self._by_node is None:
            order = np.argsort(self.node, kind="stable")
            ptr = np.zeros(n_nodes + 1, np.int64)
            np.cumsum(np.bincount(self.node, minlength=n_nodes), out=ptr[1:])
            self._by_node = (order, ptr)
        order, ptr = self._by_node
        counts = ptr[nodes + 1] - ptr[nodes]
        ends = np.cumsum(counts)
        pos = np.repeat(ptr[nodes] - (ends - counts), counts) + np.arange(int(ends[-1]) if len(ends) else 0)
        return np.sort(order[pos])


# --------------------------------------------------------------------------------------------
# building


def build_network(region: Region, mode: str = "walk", walk_speed_mps: float | None = None) -> Network:
    """Build the street network of a region for one travel mode.

    Parameters
    ----------
    region : Region
        From :func:`planner.sources.load_region`.
    mode : {"walk", "bike", "drive"}
        Walk is two-way at ``settings.walk_speed_mps``; bike and drive use speeds per road
        class (``settings.bike_speed_kph``, ``settings.drive_speed_kph``, OSM ``maxspeed``)
        and respect one-way streets.
    walk_speed_mps : float, optional
        Overrides ``settings.walk_speed_mps``.

    Returns
    -------
    Network
        The largest connected part of the streets usable by the mode.
    """
    if mode not in MODES:
        raise InputError(f"--mode {mode!r}: use one of {', '.join(MODES)}")
    walk_speed = float(walk_speed_mps or settings.walk_speed_mps)
    if walk_speed <= 0:
        raise InputError(f"walk speed {walk_speed}: must be positive (m/s)")
    ways = region.ways
    usable = _usable_ways(ways, mode)
    seg_ok = usable[region.seg_way]
    u, v, w_idx = region.seg_u[seg_ok], region.seg_v[seg_ok], region.seg_way[seg_ok]
    if len(u) == 0:
        raise InputError(
            f"{region.source}: no roads usable for {mode} in this region; "
            "give an extract with highway=* ways that allow this mode (or another --mode)"
        )
    length = np.hypot(region.node_x[u] - region.node_x[v], region.node_y[u] - region.node_y[v])
    speed = speeds_mps(ways, mode, walk_speed)[w_idx]
    forward, backward = _directions(ways, mode)
    fw, bw = forward[w_idx], backward[w_idx]
    eu = np.concatenate([u[fw], v[bw]])
    ev = np.concatenate([v[fw], u[bw]])
    elen = np.concatenate([length[fw], length[bw]])
    espeed = np.concatenate([speed[fw], speed[bw]])
    notes: list[str] = []
    if mode in ("walk", "bike"):
        keep = _not_through_walls(region, eu, ev)
        if not keep.all():
            notes.append(f"{int((~keep).sum())} street segments crossing mapped walls/fences were cut")
        eu, ev, elen, espeed = eu[keep], ev[keep], elen[keep], espeed[keep]
    # Parallel ways between the same two nodes: keep the fastest.
    etime = elen / espeed
    order = np.lexsort((etime, ev, eu))
    eu, ev, elen, etime = eu[order], ev[order], elen[order], etime[order]
    first = np.ones(len(eu), bool)
    first[1:] = (eu[1:] != eu[:-1]) | (ev[1:] != ev[:-1])
    eu, ev, elen, etime = eu[first], ev[first], elen[first], etime[first]
    # Zero-length segments (duplicate nodes) still join their ends.
    etime = np.maximum(etime, 0.0)
    nodes, new_u, new_v, kept, dropped = _largest_component(len(region.node_id), eu, ev)
    if dropped:
        notes.append(f"{dropped} nodes in small disconnected pieces were left out")
    return Network(
        mode=mode,
        crs=region.crs,
        node_id=region.node_id[nodes],
        x=region.node_x[nodes],
        y=region.node_y[nodes],
        u=new_u,
        v=new_v,
        length_m=elen[kept],
        time_s=etime[kept],
        walk_speed_mps=walk_speed,
        notes=notes,
    )


def from_arrays(
    x: np.ndarray,
    y: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    crs,
    *,
    length_m: np.ndarray | None = None,
    time_s: np.ndarray | None = None,
    two_way: bool = True,
    mode: str = "walk",
    walk_speed_mps: float | None = None,
) -> Network:
    """A network from plain arrays (synthetic grids, benchmarks, other sources).

    Lengths default to straight distances; times to length / walking speed.
    """
    walk_speed = float(walk_speed_mps or settings.walk_speed_mps)
    x, y = np.asarray(x, float), np.asarray(y, float)
    u, v = np.asarray(u, np.int64), np.asarray(v, np.int64)
    length = np.hypot(x[u] - x[v], y[u] - y[v]) if length_m is None else np.asarray(length_m, float)
    time = length / walk_speed if time_s is None else np.asarray(time_s, float)
    if two_way:
        u, v = np.concatenate([u, v]), np.concatenate([v, u])
        length, time = np.concatenate([length, length]), np.concatenate([time, time])
    return Network(
        mode=mode,
        crs=CRS.from_user_input(crs),
        node_id=np.arange(len(x), dtype=np.int64),
        x=x,
        y=y,
        u=u,
        v=v,
        length_m=length,
        time_s=time,
        walk_speed_mps=walk_speed,
    )


def _usable_ways(ways: pd.DataFrame, mode: str) -> np.ndarray:
    hw = ways["highway"].fillna("").astype(str)
    ok = ~hw.str.fullmatch(_EXCLUDE[mode]) & (hw != "")
    access = ways["access"].fillna("").astype(str)
    mode_ok = np.zeros(len(ways), bool)
    mode_no = np.zeros(len(ways), bool)
    for tag in _MODE_ACCESS_TAG[mode]:
        col = ways[tag].fillna("").astype(str)
        mode_ok |= col.isin(_YES).to_numpy()
        mode_no |= (col == "no").to_numpy()
    # Private ways (compound internals) are not public through-routes; homes inside a
    # gated compound reach the street through its gates instead (see planner.demand).
    private = access.isin(["private", "no"]).to_numpy() | (ways["service"].fillna("") == "private").to_numpy()
    ok = ok.to_numpy() & ~mode_no & (~private | mode_ok)
    if mode == "walk":
        # Walking on a cycleway is normal where it is the only path; keep those marked foot=yes.
        ok |= (hw == "cycleway").to_numpy() & mode_ok
    if mode == "drive":
        svc = ways["service"].fillna("").astype(str)
        ok &= ~svc.isin(["parking_aisle", "driveway", "emergency_access", "alley"]).to_numpy()
    return ok


def _directions(ways: pd.DataFrame, mode: str) -> tuple[np.ndarray, np.ndarray]:
    n = len(ways)
    if mode == "walk":
        return np.ones(n, bool), np.ones(n, bool)
    oneway = ways["oneway"].fillna("").astype(str).str.lower()
    roundabout = ways["junction"].fillna("").isin(["roundabout", "circular"])
    fwd_only = oneway.isin(["yes", "true", "1"]) | (roundabout & ~oneway.isin(["no", "-1"]))
    rev_only = oneway == "-1"
    if mode == "bike":
        exempt = ways["oneway:bicycle"].fillna("").astype(str).str.lower() == "no"
        fwd_only &= ~exempt
        rev_only &= ~exempt
    return (~rev_only).to_numpy(), (~fwd_only).to_numpy()


#: Highest ``maxspeed`` taken from OSM (China's expressway limit is 120 km/h).
MAX_POSTED_KPH = 150.0
_SPEED_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?\s*$")


def speeds_mps(ways: pd.DataFrame, mode: str, walk_speed: float) -> np.ndarray:
    if mode == "walk":
        return np.full(len(ways), walk_speed)
    hw = ways["highway"].fillna("").astype(str)
    if mode == "bike":
        kph = hw.map(settings.bike_speed_kph).fillna(12.0).to_numpy(float)
        return kph / 3.6
    kph = hw.map(settings.drive_speed_kph).fillna(25.0).to_numpy(float)
    posted = ways["maxspeed"].fillna("").astype(str).map(_parse_maxspeed).to_numpy(float)
    # A posted speed of 0 (a mapping error, or "closed") or past any road's limit would make
    # an edge impassable or instant: such a tag counts as absent, like one that is not a number.
    kph = np.where(np.isfinite(posted) & (posted > 0) & (posted <= MAX_POSTED_KPH), posted, kph)
    return kph / 3.6


def _parse_maxspeed(text: str) -> float:
    m = _SPEED_RE.match(text.split(";")[0])
    if not m:
        return np.nan
    value = float(m.group(1))
    return value * 1.609344 if m.group(2) == "mph" else value


def _not_through_walls(region: Region, eu: np.ndarray, ev: np.ndarray) -> np.ndarray:
    """Edges that do not cross a mapped wall/fence (away from its gates)."""
    feats = region.features
    if len(feats) == 0 or len(eu) == 0:
        return np.ones(len(eu), bool)
    tags = feats["tags"]
    is_wall = tags.map(lambda t: t.get("barrier") in WALL_BARRIERS).to_numpy()
    if not is_wall.any():
        return np.ones(len(eu), bool)
    walls = shapely.boundary(feats.geometry.to_numpy()[is_wall])
    wall_geoms = feats.geometry.to_numpy()[is_wall]
    walls = np.where(shapely.get_type_id(wall_geoms) <= 2, wall_geoms, walls)
    gate_barriers = ("gate", "lift_gate", "entrance", "turnstile", "swing_gate")
    gates = feats[tags.map(lambda t: "entrance" in t or t.get("barrier") in gate_barriers)]
    lines = shapely.linestrings(
        np.stack(
            [
                np.column_stack([region.node_x[eu], region.node_y[eu]]),
                np.column_stack([region.node_x[ev], region.node_y[ev]]),
            ],
            axis=1,
        )
    )
    tree = shapely.STRtree(walls)
    edge_idx, _ = tree.query(lines, predicate="crosses")
    keep = np.ones(len(eu), bool)
    if len(edge_idx):
        bad = np.unique(edge_idx)
        if len(gates):
            near_gate = shapely.STRtree(gates.geometry.to_numpy()).query(
                lines[bad], predicate="dwithin", distance=settings.gate_tolerance_m
            )[0]
            bad = np.setdiff1d(bad, bad[np.unique(near_gate)])
        keep[bad] = False
    return keep


def _largest_component(n_nodes: int, eu: np.ndarray, ev: np.ndarray):
    """Keep the largest weakly connected piece.

    Returns (old indices of kept nodes, new u, new v, indices of kept edges, nodes dropped).
    """
    graph = sp.csr_matrix((np.ones(len(eu)), (eu, ev)), shape=(n_nodes, n_nodes))
    n_comp, labels = connected_components(graph, directed=True, connection="weak")
    used = np.zeros(n_nodes, bool)
    used[eu] = True
    used[ev] = True
    counts = np.bincount(labels[used], minlength=n_comp)
    main = int(np.argmax(counts))
    keep_node = used & (labels == main)
    new_index = np.cumsum(keep_node) - 1
    keep_edge = keep_node[eu] & keep_node[ev]
    edge_pos = np.nonzero(keep_edge)[0]
    dropped = int(used.sum() - keep_node.sum())
    return np.nonzero(keep_node)[0], new_index[eu[keep_edge]], new_index[ev[keep_edge]], edge_pos, dropped


# --------------------------------------------------------------------------------------------
# snapping and sweeps


def snap(net: Network, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest network node of each point (``xy`` in ``net.crs``) and the distance in metres."""
    xy = np.asarray(xy, float).reshape(-1, 2)
    if len(xy) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    # Threads pay off from a few thousand points (measured: 17k points, 2 cores: 8 → 4 ms).
    dist, idx = net.tree.query(xy, workers=-1 if len(xy) > 4_000 else 1)
    return idx.astype(np.int64), dist


_REACH_NAMES = (
    "sweep_limit_s",
    "reach_states",
    "reaches",
    "REACHED",
    "BEYOND",
    "UNREACHABLE",
    "REACH_STATES",
)


def __getattr__(name: str):
    # point_access and geometry_access live in planner.access, which imports this module: they
    # stay importable from here (public API), looked up on first use to keep imports acyclic.
    if name in ("point_access", "geometry_access"):
        from planner import access

        return getattr(access, name)
    # Where sweeps stop and what an empty time means live in planner.reach, which imports this.
    if name in _REACH_NAMES:
        from planner import reach

        return getattr(reach, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class TargetGraph:
    """The network plus one virtual node per target, ready for repeated sweeps.

    Built once per target set (e.g. all facilities of all categories); :meth:`sweep` then
    runs one multi-source Dijkstra over any subset (one category). Virtual nodes have only
    outgoing edges, so targets outside the subset never carry a path.

    The Dijkstra runs on the network's contracted graph (:meth:`Network.chains`: on OSM
    streets a fifth of the nodes). A target entered at a chain node is joined to both ends
    of its chain, and the chain's own nodes also get the direct way along the chain.

    Pickles without its :class:`Network` (a sweep reads only arrays), so it ships to Dask
    workers cheaply.
    """

    def __init__(self, net: Network, targets: Access, weight: str = "time"):
        self.net, self.weight = net, weight
        self.n_nodes = net.n_nodes
        leg = targets.leg(net, weight)
        self.virt_owner, virt_index = np.unique(targets.owner, return_inverse=True)
        self.n_virt = len(self.virt_owner)
        self.chains = ch = net.chains(weight)
        self.on_chain = None
        if ch is None:
            # Reverse graph: a path target → node in it is a trip node → target on the streets.
            base, rows, cols, vals = net.graph(weight, reverse=True), virt_index, targets.node, leg
        else:
            base = ch.graph.T.tocsr()
            at = ch.node_index[targets.node]
            is_core = ch.is_core[targets.node]
            i = at[~is_core]  # entries at chain nodes: join both ends of the chain
            rows = np.concatenate([virt_index[is_core], virt_index[~is_core], virt_index[~is_core]])
            cols = np.concatenate([at[is_core], ch.end_a[i], ch.end_b[i]])
            vals = np.concatenate([leg[is_core], leg[~is_core] + ch.from_a(i), leg[~is_core] + ch.from_b(i)])
            ok = np.isfinite(vals)
            rows, cols, vals = rows[ok], cols[ok], vals[ok]
            self.on_chain = (virt_index[~is_core], i, leg[~is_core])
        self.n_core = m = base.shape[0]
        legs = csr_min(vals, rows, cols, (self.n_virt, m))
        # Stack rows by concatenating CSR arrays (cheaper than sp.vstack on a big graph, and
        # explicit zero legs stay edges).
        self.graph = sp.csr_matrix(
            (
                np.concatenate([base.data, legs.data]),
                np.concatenate([base.indices, legs.indices]),
                np.concatenate([base.indptr, legs.indptr[1:] + base.nnz]),
            ),
            shape=(m + self.n_virt, m + self.n_virt),
        )
        self._virt_of_owner = {int(o): i for i, o in enumerate(self.virt_owner)}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "net": None}

    def sweep(
        self, subset: np.ndarray | None = None, limit: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cost from every node to its nearest target (of ``subset``) and which target.

        Returns
        -------
        cost : (n_nodes,) float array, ``inf`` beyond ``limit`` or with no target
        nearest : (n_nodes,) int array of target indices, -1 where none
        """
        n, m = self.n_nodes, self.n_core
        if subset is None:
            virt = np.arange(self.n_virt)
        else:
            virt = np.array(
                [self._virt_of_owner[int(o)] for o in subset if int(o) in self._virt_of_owner], np.int64
            )
        if len(virt) == 0:
            return np.full(n, np.inf), np.full(n, -1, np.int64)
        limit = np.inf if limit is None else float(limit)
        dist, _pred, src = dijkstra(
            self.graph,
            directed=True,
            indices=m + virt,
            min_only=True,
            return_predecessors=True,
            limit=limit,
        )
        cost = dist[:m]
        # Only the virtual nodes are sources: every reached node's source is one. A bounded
        # sweep reaches a fraction of a large network, so work on those indices alone.
        reached = np.flatnonzero(np.isfinite(cost))
        nearest = np.full(m, -1, np.int64)
        nearest[reached] = self.virt_owner[src[reached] - m]
        if self.chains is None:
            return cost, nearest
        return self.chains.expand(cost, nearest, limit, self._same_chain(virt))

    def _same_chain(self, virt: np.ndarray):
        """The swept targets entered at chain nodes: (owner, chain node index, leg)."""
        if self.on_chain is None or len(self.on_chain[0]) == 0:
            return None
        entry_virt, inner, leg = self.on_chain
        take = np.isin(entry_virt, virt)
        if not take.any():
            return None
        return self.virt_owner[entry_virt[take]], inner[take], leg[take]


_WORKER_TARGETS: TargetGraph | None = None  # set in forked sweep workers only


def _init_worker(targets: TargetGraph) -> None:
    global _WORKER_TARGETS
    _WORKER_TARGETS = targets


def _worker_sweep(args):
    """One sweep in a worker, sent back as the reached nodes only: bounded sweeps reach a
    fraction of a large network, and pickling two dense arrays per category would cost more
    than the sweep."""
    subset, limit = args
    cost, nearest = _WORKER_TARGETS.sweep(subset, limit)
    at = np.flatnonzero(np.isfinite(cost))
    return len(cost), at, cost[at], nearest[at]


def _dense(n: int, at: np.ndarray, cost: np.ndarray, nearest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    full_cost, full_nearest = np.full(n, np.inf), np.full(n, -1, np.int64)
    full_cost[at], full_nearest[at] = cost, nearest
    return full_cost, full_nearest


def sweep_many(targets: TargetGraph, subsets: list, limit: float | None = None, workers: int | None = None):
    """Sweep several subsets (one per category); in parallel processes on large networks.

    The graph reaches forked workers by inheritance, not pickling; each returns two arrays.
    Yields (cost, nearest) per subset, in order.
    """
    import multiprocessing as mp
    import os

    workers = workers if workers is not None else (settings.sweep_workers or os.cpu_count() or 1)
    workers = min(workers, len(subsets))
    big = targets.n_nodes * len(subsets) >= settings.parallel_min_node_sweeps
    if workers <= 1 or not big or "fork" not in mp.get_all_start_methods():
        for subset in subsets:
            yield targets.sweep(subset, limit)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(
        workers, mp_context=mp.get_context("fork"), initializer=_init_worker, initargs=(targets,)
    ) as pool:
        for reached in pool.map(_worker_sweep, [(s, limit) for s in subsets]):
            yield _dense(*reached)


def sweep(
    net: Network,
    targets: Access,
    weight: str = "time",
    limit: float | None = None,
    subset: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cost from every node to its nearest target, and which target: one Dijkstra.

    See :class:`TargetGraph` to sweep several subsets of one target set.
    """
    return TargetGraph(net, targets, weight).sweep(subset, limit)


def trip_costs(
    net: Network, origins: Access, node_cost: np.ndarray, node_target: np.ndarray, weight: str = "time"
) -> tuple[np.ndarray, np.ndarray]:
    """Per origin: min over its entries of (leg + node cost), and the target reached."""
    reached = np.flatnonzero(np.isfinite(node_cost))
    if len(reached) * 4 < len(node_cost):  # a bounded sweep: work only where it reached
        return _reached_trip_costs(net, origins, node_cost, node_target, weight, reached)
    total = origins.leg(net, weight) + node_cost[origins.node]
    target_of_entry = node_target[origins.node]
    grouping = origins.groups()
    if grouping is None:
        cost, target = total, target_of_entry.copy()
    else:
        order, starts, owner_sorted = grouping
        tot = total[order]
        best = np.minimum.reduceat(tot, starts)
        counts = np.diff(np.r_[starts, len(tot)])
        is_best = np.flatnonzero(tot == np.repeat(best, counts))
        first = is_best[np.r_[True, owner_sorted[is_best[1:]] != owner_sorted[is_best[:-1]]]]
        cost = np.full(origins.n_owners, np.inf)
        target = np.full(origins.n_owners, -1, np.int64)
        cost[owner_sorted[starts]] = best
        target[owner_sorted[first]] = target_of_entry[order][first]
    target[~np.isfinite(cost)] = -1
    return cost, target


def _reached_trip_costs(net, origins: Access, node_cost, node_target, weight: str, reached: np.ndarray):
    """:func:`trip_costs` from the entries at the ``reached`` nodes only (same ties: the first
    entry of an origin at its best cost)."""
    cost = np.full(origins.n_owners, np.inf)
    target = np.full(origins.n_owners, -1, np.int64)
    e = origins.entries_at(reached, len(node_cost))
    at = origins.node[e]
    total = origins.leg(net, weight, e) + node_cost[at]
    own = origins.owner[e]
    if origins.groups() is None:  # one entry per origin
        cost[own], target[own] = total, node_target[at]
        return cost, target
    np.minimum.at(cost, own, total)
    best = np.flatnonzero(total == cost[own])
    _, first = np.unique(own[best], return_index=True)
    target[own[best[first]]] = node_target[at[best[first]]]
    return cost, target


def nearest(
    net: Network,
    origins_xy: np.ndarray,
    targets_xy: np.ndarray,
    weight: str = "time",
    limit: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Network cost from each origin point to its nearest target point.

    Both point sets are (n, 2) arrays in ``net.crs``; off-network legs at both ends are
    included. Returns (cost, target index); ``inf`` and -1 where no target is within
    ``limit``.
    """
    from planner.access import point_access

    node_cost, node_target = sweep(net, point_access(net, targets_xy), weight, limit)
    return trip_costs(net, point_access(net, origins_xy), node_cost, node_target, weight)


def cost_matrix(
    net: Network,
    origins: np.ndarray | Access,
    targets: np.ndarray | Access,
    cutoff: float,
    weight: str = "time",
    chunk: int = 64,
) -> sp.csr_matrix:
    """Sparse origins × targets cost matrix, keeping only pairs within ``cutoff``.

    Parameters
    ----------
    origins, targets : (n, 2) arrays in ``net.crs`` or :class:`Access`
        Points are snapped to their nearest node; an Access lets a home leave by its
        compound's gates or a park be entered along its outline (the cost of a pair is the
        minimum over both sides' entries).
    cutoff : float
        Largest cost kept (seconds or metres); farther pairs are absent from the matrix.

    Notes
    -----
    Entries are aggregated to network nodes first, so there is one Dijkstra per distinct
    target node, run in chunks of ``chunk`` (each chunk holds ``chunk × n_nodes`` floats).
    A stored 0 is a real zero cost (origin and target at one node).
    """
    from planner.access import point_access

    o = origins if isinstance(origins, Access) else point_access(net, origins)
    t = targets if isinstance(targets, Access) else point_access(net, targets)
    o_leg, t_leg = o.leg(net, weight), t.leg(net, weight)
    uniq_t, t_inv = np.unique(t.node, return_inverse=True)
    uniq_o, o_inv = np.unique(o.node, return_inverse=True)
    graph = net.graph(weight, reverse=True)
    rows, cols, vals = [], [], []
    for start in range(0, len(uniq_t), chunk):
        block = uniq_t[start : start + chunk]
        d = dijkstra(graph, directed=True, indices=block, limit=cutoff)[:, uniq_o]  # (chunk, n_o_nodes)
        tb, ob = np.nonzero(np.isfinite(d))
        rows.append(ob)
        cols.append(tb + start)
        vals.append(d[tb, ob] + 1.0)  # shifted so a zero cost survives sparse indexing
    empty = np.zeros(0, np.int64)
    node_mat = sp.csr_matrix(
        (
            np.concatenate(vals) if vals else np.zeros(0),
            (np.concatenate(rows) if rows else empty, np.concatenate(cols) if cols else empty),
        ),
        shape=(len(uniq_o), len(uniq_t)),
    )
    # Expand node pairs to entry pairs, add both legs, keep the best entry pair per owner pair.
    full = node_mat[o_inv][:, t_inv].tocoo()
    cost = full.data - 1.0 + o_leg[full.row] + t_leg[full.col]
    ok = cost <= cutoff
    r, c, cost = o.owner[full.row[ok]], t.owner[full.col[ok]], cost[ok]
    return csr_min(cost, r, c, (o.n_owners, t.n_owners)).tocsr()


def to_networkx(net: Network, weight: str = "time"):
    """The same directed graph as a networkx DiGraph (for interop and independent checks)."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(range(net.n_nodes))
    weights = net.edge_weight(weight).tolist()
    g.add_weighted_edges_from(zip(net.u.tolist(), net.v.tolist(), weights, strict=True))
    return g


def edge_lines(net: Network) -> np.ndarray:
    """Shapely linestrings of the edges (one per direction)."""
    a = np.column_stack([net.x[net.u], net.y[net.u]])
    b = np.column_stack([net.x[net.v], net.y[net.v]])
    return shapely.linestrings(np.stack([a, b], axis=1))
