"""The incremental life-circle engine behind ``planner serve``.

The region is loaded once, through the functions :func:`planner.audit.audit` uses (network,
homes and compounds by :func:`planner.access.homes_on_network`, facilities by
:func:`planner.categories.region_facilities`). Per category the engine keeps every network
node's time to its nearest facility. An edit then costs:

- a new facility: one sweep from it, bounded by the largest threshold, merged with the
  current minimum (a minimum over sources is the minimum of the minima);
- a moved or deleted facility: one sweep of its category's remaining facilities;
- a new path: two sweeps from its ends, merged with every category's times;
- a closed street: a sweep of only the categories whose best paths may cross it (and,
  when the street was the only way between its ends, every category's reach states);
- a new gate: the network and the compounds are rebuilt and every category swept again;
- a home's or compound's population: no sweep, only the tables.

The homes' times, the coverage table, the complete life circle and the vulnerable groups are
computed by the audit's own functions (:mod:`planner.life_circle`), so they equal a full
audit of the edited scenario.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.sparse.csgraph import breadth_first_order, dijkstra

from planner import settings
from planner._errors import InputError
from planner.access import (
    facility_access,
    home_access,
    homes_on_network,
    inside_compound_legs,
    snap_distance_m,
    stack_access,
    take_shorter,
)
from planner.categories import Category, load_categories, region_facilities, resolve_key, select
from planner.demand import compounds
from planner.life_circle import complete_life_circle, complete_rows, coverage_table, covered_at_target
from planner.network import (
    BEYOND,
    UNREACHABLE,
    Access,
    Network,
    TargetGraph,
    build_network,
    edge_lines,
    reach_states,
    snap,
    sweep_limit_s,
    sweep_many,
    trip_costs,
)
from planner.options import check_mode, parse_minutes
from planner.serve.state import check_edit
from planner.sources import Region

#: Edits that change the network (or the compounds' gates): every category is swept again.
GRAPH_EDITS = ("add_path", "close_path", "add_gate")
#: How far beyond the streets' bounding box a facility may be placed (m): a click off the map.
_REGION_MARGIN_M = 1000.0


class Engine:
    """A region's life-circle audit kept current under edits.

    Parameters
    ----------
    region : Region
        From :func:`planner.sources.load_region`.
    categories : str or list of str, optional
        Category keys; all when None.
    minutes : sequence of int, optional
        Thresholds; default ``settings.minutes``.
    mode : {"walk", "bike", "drive"}
    homes : GeoDataFrame, optional
        Homes replacing those found in OSM (as ``planner audit --homes``).
    extra_facilities : GeoDataFrame, optional
        Facilities added to OSM's (as ``planner audit --facilities``).
    categories_file : path, optional
        A user's categories TOML.
    """

    def __init__(
        self,
        region: Region,
        categories: str | Sequence[str] | None = None,
        minutes: Sequence[int] | None = None,
        mode: str = "walk",
        homes: gpd.GeoDataFrame | None = None,
        extra_facilities: gpd.GeoDataFrame | None = None,
        categories_file=None,
    ):
        check_mode(mode)
        self.region, self.mode = region, mode
        self.categories: list[Category] = select(load_categories(categories_file), categories)
        self.by_key = {c.key: c for c in self.categories}
        self.minutes = parse_minutes(minutes or settings.minutes)
        sweep_limit_s(*self.minutes, *(c.minutes for c in self.categories))  # bad thresholds fail first
        on_net = homes_on_network(region, mode, homes=homes)
        # Where the audit's sweeps stop: the largest threshold or target plus the margin, further
        # for the elderly only when they are set to walk faster.
        largest = max([*self.minutes, *(c.minutes for c in self.categories)])
        factor = _elderly_factor(on_net.network)
        self.limit_s = sweep_limit_s(largest) + 60.0 * largest * (max(1.0, 1.0 / factor) - 1.0)
        self._base_net, self._base_comps = on_net.network, on_net.compounds
        base = on_net.homes
        base["snap_m"] = snap_distance_m(on_net.network, base)
        base["compound_id"] = on_net.home_compound_id
        self._base_homes = base
        self._base_facilities = region_facilities(region.features, self.categories, extra_facilities)
        self._to_metric = Transformer.from_crs(4326, region.crs, always_xy=True)
        self._to_wgs = Transformer.from_crs(region.crs, 4326, always_xy=True)
        self.reset()

    # --------------------------------------------------------------------------------------
    # state

    def reset(self, edits: Sequence[dict] = ()) -> None:
        """Back to the loaded region, then apply ``edits`` in order."""
        self.edits: list[dict] = []
        self.homes = self._base_homes.copy()
        self.facilities = self._base_facilities.copy()
        self.active = np.ones(len(self.facilities), bool)
        #: Changes whenever the scenario's facilities do (for caches of what is shown of them).
        self.facility_version = getattr(self, "facility_version", 0) + 1
        self._graph_edits: list[dict] = []
        self._added = 0
        self._edge_tree = None
        self._rebuild_graph()
        self._sweep_all()
        for edit in edits:
            self.apply(edit)

    @property
    def elderly_time_factor(self) -> float:
        """Walking speed over the elderly's (1 for bike and drive: a vehicle's speed)."""
        return _elderly_factor(self.net)

    @property
    def coverage(self) -> pd.DataFrame:
        """The audit's coverage table of the current scenario (see :func:`planner.audit.audit`)."""
        parts = [self._rows[c.key] for c in self.categories] + [self._complete]
        return pd.concat(parts, ignore_index=True)

    def current_facilities(self) -> gpd.GeoDataFrame:
        """Facilities of the scenario (``facility_id``, ``category``, ``name``, geometry)."""
        return self.facilities[self.active].reset_index(drop=True)

    # --------------------------------------------------------------------------------------
    # edits

    def apply(self, edit: dict) -> dict:
        """Apply one edit (see :mod:`planner.serve.state`); returns it as resolved and stored.

        The edit is checked against the region first; a refused edit changes nothing.

        Returns
        -------
        dict
            The edit with what it was resolved to (a new facility's id, the street nodes a
            path joins), and ``changed``: the category keys whose times changed.

        Raises
        ------
        InputError
            One line naming the edit and the fix.
        """
        edit = self._resolve(check_edit(edit))
        before = list(self.edits)
        try:
            changed = self._commit(edit)
        except BaseException:
            self.reset(before)  # checked above, so a failure here is a bug: leave no half edit
            raise
        self.edits.append(edit)
        return {**edit, "changed": changed}

    def undo(self) -> dict | None:
        """Remove the last edit (the scenario is rebuilt from the others)."""
        if not self.edits:
            return None
        last = self.edits[-1]
        self.reset(self.edits[:-1])
        return last

    def _resolve(self, edit: dict) -> dict:
        kind = edit["kind"]
        where = f"edit {kind}"
        if "lon" in edit:
            edit["_xy"] = self._metric(edit["lon"], edit["lat"], where)
        if kind == "add_facility":
            edit["category"] = resolve_key(edit["category"], self.by_key, f"{where}: 'category'")
            if "facility_id" not in edit:
                edit["facility_id"] = self._new_id()
            elif (self.facilities["facility_id"] == edit["facility_id"]).any():
                raise InputError(
                    f"{where}: facility_id {edit['facility_id']!r} exists already; give a new one"
                )
        elif kind in ("move_facility", "delete_facility"):
            rows = self._rows_of(edit, where)
            edit["category"] = (
                str(self.facilities["category"].iloc[rows[0]]) if len(rows) == 1 else edit.get("category")
            )
        elif kind == "add_path":
            self._resolve_path(edit, where)
        elif kind == "close_path":
            self._resolve_closure(edit, where)
        elif kind == "add_gate":
            self._resolve_gate(edit, where)
        elif kind == "set_population":
            self._homes_of(edit, where)
        return edit

    def _commit(self, edit: dict) -> list[str]:
        kind = edit["kind"]
        xy = edit.pop("_xy", None)
        if kind == "add_facility":
            key = edit["category"]
            self._add_rows(
                pd.DataFrame(
                    {"facility_id": [edit["facility_id"]], "category": [key], "name": [edit.get("name")]}
                ),
                [shapely.Point(xy)],
            )
            self._sweep_new(key, len(self.facilities) - 1)
            return self._refresh([key])
        if kind in ("move_facility", "delete_facility"):
            rows = self._rows_of(edit, f"edit {kind}")
            keys = list(dict.fromkeys(self.facilities["category"].iloc[rows]))
            self.active[rows] = False
            self.facility_version += 1
            if kind == "move_facility":
                moved = self.facilities.iloc[rows][["facility_id", "category", "name"]].reset_index(drop=True)
                self._add_rows(moved, [shapely.Point(xy)] * len(rows))
            for key in keys:
                self._sweep_category(key)
            return self._refresh(keys)
        if kind in GRAPH_EDITS:
            self._graph_edits.append(edit)
            if kind == "add_gate":  # the compounds' exits and the walls' cuts change: rebuild all
                self._rebuild_graph()
                self._sweep_all()
            else:  # the nodes stay, so every access does too
                old, self.net = self.net, edited_network(self.net, [edit], self._positions())
                if kind == "add_path" and not self._length:
                    self._merge_path(edit)
                elif kind == "close_path":
                    return self._close_street(old, edit)
                else:
                    self._sweep_all()
            return [c.key for c in self.categories]
        self._set_population(edit)
        return self._refresh([])

    def _new_id(self) -> str:
        while True:
            self._added += 1
            fid = f"scenario/{self._added}"
            if not (self.facilities["facility_id"] == fid).any():
                return fid

    def _rows_of(self, edit: dict, where: str) -> np.ndarray:
        hit = (self.facilities["facility_id"].astype(str) == edit["facility_id"]).to_numpy() & self.active
        if edit.get("category") is not None:
            hit &= (self.facilities["category"] == edit["category"]).to_numpy()
        if not hit.any():
            raise InputError(
                f"{where}: no facility {edit['facility_id']!r} in the scenario; pick one on the map"
            )
        return np.nonzero(hit)[0]

    def _homes_of(self, edit: dict, where: str) -> np.ndarray:
        col = "home_id" if "home_id" in edit else "compound_id"
        value = edit[col]
        hit = (self.homes[col].astype(str) == value).to_numpy()
        if not hit.any():
            raise InputError(f"{where}: no home with {col} {value!r}; pick a home on the map")
        return np.nonzero(hit)[0]

    def _metric(self, lon: float, lat: float, where: str) -> tuple[float, float]:
        x, y = self._to_metric.transform(lon, lat)
        net = self._base_net
        m = _REGION_MARGIN_M
        if not (net.x.min() - m <= x <= net.x.max() + m and net.y.min() - m <= y <= net.y.max() + m):
            raise InputError(
                f"{where}: lon/lat ({lon:.6f}, {lat:.6f}) is outside the region's streets; click on the map"
            )
        return float(x), float(y)

    def _add_rows(self, rows: pd.DataFrame, geoms: list) -> None:
        new = gpd.GeoDataFrame(rows, geometry=geoms, crs=self.facilities.crs)
        acc, comp = facility_access(self.net, new, self.comps)
        self.facilities = pd.concat([self.facilities, new], ignore_index=True)
        self.active = np.r_[self.active, np.ones(len(new), bool)]
        self.fac_access = stack_access(self.fac_access, acc)
        self.fac_comp = np.r_[self.fac_comp, comp]
        self.facility_version += 1

    def _set_population(self, edit: dict) -> None:
        """A home's population, or a compound's spread over its homes as they were (equally
        when they had none); the groups follow in proportion (from the shares when none)."""
        rows = self._homes_of(edit, "edit set_population")
        old = self.homes["population"].to_numpy(float)[rows]
        total = old.sum()
        want = edit["population"]
        new = old * (want / total) if total > 0 else np.full(len(rows), want / len(rows))
        shares = {
            "elderly": settings.elderly_share,
            "children": settings.children_share,
            "disabled": settings.disabled_share,
            "households": 1.0 / settings.persons_per_household,
        }
        for col, share in shares.items():
            if col in self.homes.columns:
                cur = self.homes[col].to_numpy(float)[rows]
                ratio = np.divide(new, old, out=np.full(len(rows), np.nan), where=old > 0)
                self.homes.loc[rows, col] = np.where(old > 0, cur * np.nan_to_num(ratio), new * share)
        self.homes.loc[rows, "population"] = new

    # --------------------------------------------------------------------------------------
    # graph edits

    def _resolve_path(self, edit: dict, where: str) -> None:
        if self.mode != "walk":
            raise InputError(f"{where}: paths are walking routes; start planner serve with --mode walk")
        xy = np.array([self._metric(lon, lat, where) for lon, lat in edit["coordinates"]])
        net = self.net
        if "nodes" in edit and "length_m" in edit:
            self._node_index(edit["nodes"], where)
            if edit["length_m"] <= 0:
                raise InputError(f"{where}: 'length_m' {edit['length_m']:g} must be positive")
            return
        node, dist = snap(net, xy[[0, -1]])
        if (dist > settings.serve_snap_m).any():
            raise InputError(
                f"{where}: the path must start and end within {settings.serve_snap_m:g} m of a street "
                "(settings.serve_snap_m); start and end it on the streets"
            )
        if node[0] == node[1]:
            raise InputError(f"{where}: the path starts and ends at the same street corner; draw it longer")
        xy[0], xy[-1] = (net.x[node[0]], net.y[node[0]]), (net.x[node[1]], net.y[node[1]])
        edit["nodes"] = [str(net.node_id[node[0]]), str(net.node_id[node[1]])]
        edit["length_m"] = round(float(shapely.length(shapely.linestrings(xy))), 3)

    def _resolve_closure(self, edit: dict, where: str) -> None:
        net = self.net
        if "nodes" in edit:
            a, b = self._node_index(edit["nodes"], where)
            if not (((net.u == a) & (net.v == b)) | ((net.u == b) & (net.v == a))).any():
                raise InputError(f"{where}: no street joins nodes {edit['nodes'][0]} and {edit['nodes'][1]}")
            return
        point = shapely.Point(edit["_xy"])
        # Paths and closures keep the nodes: the streets of the graph edits' base network
        # (indexed once), less those closed, plus the paths added, are the current streets.
        base = self._graph_base
        if self._edge_tree is None or self._edge_tree[0] is not base:
            self._edge_tree = (base, shapely.STRtree(edge_lines(base)))
        cand = self._edge_tree[1].query(point, predicate="dwithin", distance=settings.serve_snap_m)
        added = [self._node_index(e["nodes"], where) for e in self._graph_edits if e["kind"] == "add_path"]
        pairs = [(int(base.u[c]), int(base.v[c])) for c in cand] + added
        pairs = [(a, b) for a, b in pairs if ((net.u == a) & (net.v == b)).any()]
        if pairs:
            ends = np.array(pairs)
            lines = shapely.linestrings(np.stack([net.x[ends], net.y[ends]], axis=-1))
            dist = shapely.distance(lines, point)
            pairs = [pairs[i] for i in np.argsort(dist, kind="stable") if dist[i] <= settings.serve_snap_m]
        if not pairs:
            raise InputError(
                f"{where}: no street within {settings.serve_snap_m:g} m of the point; click on a street"
            )
        a, b = pairs[0]
        edit["nodes"] = [str(net.node_id[a]), str(net.node_id[b])]

    def _resolve_gate(self, edit: dict, where: str) -> None:
        comps = self.comps
        pt = shapely.Point(edit["_xy"])
        outline = shapely.boundary(comps.geometry.to_numpy()) if len(comps) else np.zeros(0, object)
        dist = shapely.distance(outline, pt) if len(comps) else np.zeros(0)
        if len(dist) == 0 or dist.min() > settings.serve_snap_m:
            raise InputError(
                f"{where}: no gated compound's wall within {settings.serve_snap_m:g} m; "
                "click on a compound's outline"
            )
        wall = outline[int(np.argmin(dist))]
        on_wall = shapely.line_interpolate_point(wall, shapely.line_locate_point(wall, pt))
        edit["_xy"] = (on_wall.x, on_wall.y)
        edit["lon"], edit["lat"] = (round(v, 7) for v in self._to_wgs.transform(on_wall.x, on_wall.y))
        near = shapely.distance(outline, on_wall) <= settings.gate_tolerance_m
        edit["compound_ids"] = [str(c) for c in comps["compound_id"].to_numpy()[near]]

    def _positions(self) -> dict[str, int]:
        """Street node id → index (the nodes stay under paths and closures)."""
        if self._node_pos is None:
            self._node_pos = node_positions(self.net)
        return self._node_pos

    def _node_index(self, ids: list[str], where: str) -> tuple[int, int]:
        pos = self._positions()
        for nid in ids:
            if nid not in pos:
                raise InputError(f"{where}: street node {nid} is not in this region's network")
        return pos[ids[0]], pos[ids[1]]

    def _rebuild_graph(self) -> None:
        """Network, compounds and every access of the current graph edits."""
        gates = [e for e in self._graph_edits if e["kind"] == "add_gate"]
        if gates:
            region = with_gates(self.region, [(e["lon"], e["lat"]) for e in gates])
            net, comps = build_network(region, self.mode), compounds(region)
        else:
            net, comps = self._base_net, self._base_comps
        self._graph_base, self._node_pos = net, None
        self.net = net = edited_network(net, [e for e in self._graph_edits if e["kind"] != "add_gate"])
        self.comps = comps
        self.access, info = home_access(net, self.homes, comps)
        info.pop("_home_compound")
        self.home_comp = info.pop("_home_compound_index")
        self.compound_info = info
        self.homes["snap_m"] = snap_distance_m(net, self.homes)
        self.fac_access, self.fac_comp = facility_access(net, self.facilities, comps)

    # --------------------------------------------------------------------------------------
    # sweeps and tables

    @property
    def _proportional(self) -> bool:
        """Network metres = time × walking speed (walk networks): no sweeps by length."""
        net = self.net
        return net.mode == "walk" and bool(
            np.allclose(net.time_s * net.walk_speed_mps, net.length_m, rtol=1e-9, atol=1e-6)
        )

    def _subset(self, key: str) -> np.ndarray:
        return np.nonzero(self.active & (self.facilities["category"] == key).to_numpy())[0]

    def _sweep_all(self) -> None:
        self.node_time: dict[str, np.ndarray] = {}
        self.node_near: dict[str, np.ndarray] = {}
        self._length: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        subsets = [self._subset(c.key) for c in self.categories]
        swept = sweep_many(TargetGraph(self.net, self.fac_access, "time"), subsets, limit=self.limit_s)
        by_length = not self._proportional
        for cat, (cost, near) in zip(self.categories, swept, strict=True):
            self.node_time[cat.key], self.node_near[cat.key] = cost, near
            if cat.unit == "m" and by_length:
                self._length[cat.key] = self._sweep(self._subset(cat.key), "length")
        self._rows: dict[str, pd.DataFrame] = {}
        for cat in self.categories:
            self._home_columns(cat)
        for cat in self.categories:
            self.homes[f"{cat.key}_within_target"] = covered_at_target(self.homes, cat)[0]
        self._refresh([])

    def _sweep(self, rows: np.ndarray, weight: str) -> tuple[np.ndarray, np.ndarray]:
        """Sweep from the facilities at table positions ``rows``; nearest as table positions."""
        limit = self.limit_s if weight == "time" else self.limit_s * self.net.walk_speed_mps
        if len(rows) == 0:
            return np.full(self.net.n_nodes, np.inf), np.full(self.net.n_nodes, -1, np.int64)
        cost, near = TargetGraph(self.net, subset_access(self.fac_access, rows), weight).sweep(None, limit)
        return cost, np.where(near >= 0, rows[np.clip(near, 0, None)], -1)

    def _sweep_category(self, key: str) -> None:
        rows = self._subset(key)
        self.node_time[key], self.node_near[key] = self._sweep(rows, "time")
        if key in self._length:
            self._length[key] = self._sweep(rows, "length")
        self._home_columns(self.by_key[key])

    def _sweep_new(self, key: str, row: int) -> None:
        """One sweep from a new facility, merged with the category's current minimum."""
        rows = np.array([row])
        for weight in ("time", "length") if key in self._length else ("time",):
            cost, near = self._sweep(rows, weight)
            old_cost, old_near = (
                (self.node_time[key], self.node_near[key]) if weight == "time" else self._length[key]
            )
            better = cost < old_cost
            merged = (np.where(better, cost, old_cost), np.where(better, near, old_near))
            if weight == "time":
                self.node_time[key], self.node_near[key] = merged
            else:
                self._length[key] = merged
        self._home_columns(self.by_key[key])

    def _merge_path(self, edit: dict) -> None:
        """A new path a–b only shortens trips: a node's new time is the smaller of its old one
        and its way to one end, the path, and the other end's old time (a shortest trip uses
        the path at most once). Two sweeps bounded by the limit serve every category."""
        net = self.net
        a, b = self._node_index(edit["nodes"], "edit add_path")
        walk_s = edit["length_m"] / net.walk_speed_mps
        reverse = net.graph("time", reverse=True)  # node → end trips, as sweeps go
        to_a, to_b = dijkstra(reverse, directed=True, indices=[a, b], limit=self.limit_s)
        for cat in self.categories:
            cost, near = self.node_time[cat.key].copy(), self.node_near[cat.key].copy()
            via_a, via_b = to_a + walk_s + cost[b], to_b + walk_s + cost[a]
            best = np.minimum(via_a, via_b)
            better = (best < cost) & (best <= self.limit_s)
            near[better] = np.where(via_a <= via_b, near[b], near[a])[better]
            cost[better] = best[better]
            self.node_time[cat.key], self.node_near[cat.key] = cost, near
            self._home_columns(cat)
        self._refresh([])

    def _close_street(self, old: Network, edit: dict) -> list[str]:
        """A closed street a–b only lengthens the trips whose best path crosses it. A best path
        crosses an edge only if the edge is tight (the time at one end equals the edge plus the
        time at the other), so only the categories where a removed edge is tight are swept
        again; the others keep their times. While its ends still reach each other, every path
        still exists, so no home becomes unreachable and the other categories' homes stay as
        they are; else every category's homes are recomputed. Returns the changed keys
        (:attr:`last_swept`: those swept again)."""
        a, b = self._node_index(edit["nodes"], "edit close_path")
        gone = ((old.u == a) & (old.v == b)) | ((old.u == b) & (old.v == a))
        eu, ev = old.u[gone], old.v[gone]
        graph = self.net.graph("time")
        joined = all(
            v in breadth_first_order(graph, u, directed=True, return_predecessors=False)
            for u, v in {(int(u), int(v)) for u, v in zip(eu, ev, strict=True)}
        )
        swept = []
        for cat in self.categories:
            key = cat.key
            used = tight_edges(self.node_time[key], eu, ev, old.time_s[gone])
            if key in self._length:
                used |= tight_edges(self._length[key][0], eu, ev, old.length_m[gone])
            if used:
                swept.append(key)
            elif not joined:
                self._home_columns(cat)
        # One target graph for all the categories swept again; in this process (no fork
        # under the server's threads for an edit's few sweeps).
        subsets = [self._subset(key) for key in swept]
        graph = TargetGraph(self.net, self.fac_access, "time") if swept else None
        again = sweep_many(graph, subsets, limit=self.limit_s, workers=1) if swept else []
        for key, rows, (cost, near) in zip(swept, subsets, again, strict=True):
            self.node_time[key], self.node_near[key] = cost, near
            if key in self._length:
                self._length[key] = self._sweep(rows, "length")
            self._home_columns(self.by_key[key])
        self.last_swept = swept
        if not joined:
            self._refresh([])
            return [c.key for c in self.categories]
        return self._refresh(swept) if swept else []

    def _home_columns(self, cat: Category) -> None:
        """``<key>_time_s``, ``<key>_facility_id`` (and ``<key>_dist_m``) of every home, as
        :func:`planner.audit.audit` computes them, and the category's coverage rows."""
        net, key, homes = self.net, cat.key, self.homes
        fac_ids = self.facilities["facility_id"].to_numpy()
        cost, target = trip_costs(net, self.access, self.node_time[key], self.node_near[key], "time")
        rows = self._subset(key)
        pairs = inside_compound_legs(homes, self.facilities.iloc[rows], self.home_comp, self.fac_comp[rows])
        if len(pairs):
            pairs = pairs.assign(facility=rows[pairs["facility"].to_numpy()])
            cost, target = take_shorter(cost, target, pairs, pairs["walk_m"] / net.walk_speed_mps)
        cost[cost > self.limit_s] = np.inf
        found = np.isfinite(cost)
        homes[f"{key}_time_s"] = np.where(found, cost, np.nan)
        entry_nodes = self.fac_access.node[np.isin(self.fac_access.owner, rows)]
        reach = reach_states(net, self.access, cost, entry_nodes)
        if len(pairs):  # a walk inside the home's own compound is a path too
            reach[(reach == UNREACHABLE) & np.isin(np.arange(len(reach)), pairs["home"])] = BEYOND
        homes[f"{key}_reach"] = reach
        nearest_id = fac_ids[np.clip(target, 0, None)] if len(fac_ids) else None
        homes[f"{key}_facility_id"] = np.where(found, nearest_id, None)
        if cat.unit == "m":
            max_dist_m = self.limit_s * net.walk_speed_mps
            if key not in self._length:
                dist = cost * net.walk_speed_mps
            else:
                dist, _ = trip_costs(net, self.access, *self._length[key], "length")
                if len(pairs):
                    dist, _ = take_shorter(dist, np.zeros(len(dist), np.int64), pairs, pairs["walk_m"])
            dist[dist > max_dist_m] = np.inf
            homes[f"{key}_dist_m"] = np.where(np.isfinite(dist), np.round(dist, 3), np.nan)
        if f"{key}_within_target" in homes.columns:
            homes[f"{key}_within_target"] = covered_at_target(homes, cat)[0]

    def _refresh(self, keys: Sequence[str]) -> list[str]:
        """Coverage rows of ``keys`` (of every category when empty) and the complete circle."""
        factor = self.elderly_time_factor
        cats = [self.by_key[k] for k in keys] if keys else self.categories
        for cat in cats:
            self._rows[cat.key] = coverage_table(self.homes, [cat], self.minutes, elderly_time_factor=factor)
        complete = complete_life_circle(self.homes, self.categories, elderly_time_factor=factor)
        for level, done in complete.items():
            self.homes[f"complete_{level}"] = done["homes"]
        self._complete = complete_rows(self.homes, self.categories, elderly_time_factor=factor)
        return list(keys)

    def node_dist_m(self) -> dict[str, np.ndarray]:
        """Network metres from every node to each metre-target category's nearest facility."""
        return {
            c.key: self._length[c.key][0]
            if c.key in self._length
            else self.node_time[c.key] * self.net.walk_speed_mps
            for c in self.categories
            if c.unit == "m"
        }

    def scenario_inputs(self) -> tuple[Region, gpd.GeoDataFrame, gpd.GeoDataFrame]:
        """(region, extra facilities, homes) that give the current scenario to another command
        (:func:`planner.siting.site`): OSM facilities deleted or moved are left out of the
        region, new and moved ones are extra facilities, gates are added to the region. Paths
        are not in the region: pass :attr:`net` as the network."""
        n_base = len(self._base_facilities)
        fac = self.facilities
        gone = set(fac["facility_id"].iloc[:n_base][~self.active[:n_base]].astype(str))
        feats = self.region.features
        region = dataclasses.replace(self.region, features=feats[~feats["osm_id"].astype(str).isin(gone)])
        gates = [(e["lon"], e["lat"]) for e in self.edits if e["kind"] == "add_gate"]
        if gates:
            region = with_gates(region, gates)
        pos = np.arange(len(fac))
        keep = self.active & ((pos >= n_base) | fac["facility_id"].astype(str).isin(gone).to_numpy())
        extra = fac[keep][["facility_id", "category", "name", "geometry"]].reset_index(drop=True)
        cols = [c for c in self._base_homes.columns if c not in ("snap_m", "compound_id")]
        homes = gpd.GeoDataFrame(self.homes[cols].copy(), geometry="geometry", crs=self.homes.crs)
        return region, extra, homes

    def within(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per category (and ``complete_<level>``): homes within the target, for everyone and
        for the elderly (the elderly at their own pace)."""
        factor = self.elderly_time_factor
        out = {c.key: covered_at_target(self.homes, c, factor) for c in self.categories}
        complete = complete_life_circle(self.homes, self.categories, elderly_time_factor=factor)
        for level, done in complete.items():
            out[f"complete_{level}"] = (done["homes"], done["elderly"])
        return out


# ------------------------------------------------------------------------------------------
# helpers shared with the tests and the export


def _elderly_factor(net: Network) -> float:
    return net.walk_speed_mps / settings.elderly_walk_speed_mps if net.mode == "walk" else 1.0


def subset_access(acc: Access, rows: np.ndarray) -> Access:
    """The entries of the owners at ``rows`` (sorted), renumbered 0..len(rows)-1."""
    keep = np.isin(acc.owner, rows)
    return Access(
        owner=np.searchsorted(rows, acc.owner[keep]),
        node=acc.node[keep],
        leg_m=acc.leg_m[keep],
        n_owners=len(rows),
    )


def tight_edges(cost: np.ndarray, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> bool:
    """True when a best path to the sources of ``cost`` may cross an edge u–v of weight ``w``
    in either direction (up to rounding: a tie counts as crossing)."""
    cu, cv = cost[u], cost[v]
    uv = np.isfinite(cu) & np.isclose(cu, w + cv, rtol=1e-9, atol=1e-6)
    vu = np.isfinite(cv) & np.isclose(cv, w + cu, rtol=1e-9, atol=1e-6)
    return bool((uv | vu).any())


def node_positions(net: Network) -> dict[str, int]:
    """Street node id (as text) → its index; the first of any repeated id."""
    ids = net.node_id.astype(str)
    return dict(zip(ids[::-1].tolist(), range(len(ids) - 1, -1, -1), strict=True))


def edited_network(net: Network, edits: Sequence[dict], pos: dict[str, int] | None = None) -> Network:
    """``net`` with the paths added (two-way, walked) and closed, in order; nodes unchanged.

    Each edit names its two street nodes by OSM id (``nodes``); a new path has ``length_m``.
    ``pos``: :func:`node_positions` of ``net``, when known.
    """
    if not edits:
        return net
    pos = node_positions(net) if pos is None else pos
    u, v, length = net.u, net.v, net.length_m
    time_s = net.time_s
    for e in edits:
        a, b = pos[e["nodes"][0]], pos[e["nodes"][1]]
        if e["kind"] == "add_path":
            t = e["length_m"] / net.walk_speed_mps
            u, v = np.r_[u, a, b], np.r_[v, b, a]
            length, time_s = np.r_[length, e["length_m"], e["length_m"]], np.r_[time_s, t, t]
        else:
            keep = ~(((u == a) & (v == b)) | ((u == b) & (v == a)))
            u, v, length, time_s = u[keep], v[keep], length[keep], time_s[keep]
    return dataclasses.replace(
        net, u=u, v=v, length_m=length, time_s=time_s, notes=list(net.notes), _tree=net._tree, _graphs={}
    )


def with_gates(region: Region, lonlat: Sequence[tuple[float, float]]) -> Region:
    """The region with gates (``barrier=gate`` nodes) added at the points, so the compounds
    and the network are found with them as with a mapped gate."""
    x, y = Transformer.from_crs(4326, region.crs, always_xy=True).transform(
        [p[0] for p in lonlat], [p[1] for p in lonlat]
    )
    gates = gpd.GeoDataFrame(
        {
            "osm_id": [f"scenario/gate-{i + 1}" for i in range(len(lonlat))],
            "osm_type": "node",
            "name": None,
            "tags": [{"barrier": "gate"} for _ in lonlat],
        },
        geometry=shapely.points(np.column_stack([x, y])),
        crs=region.crs,
    )
    return dataclasses.replace(region, features=pd.concat([region.features, gates], ignore_index=True))
