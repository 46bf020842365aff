"""How homes and facilities enter the street network: the step every command shares.

:func:`homes_on_network` builds the network, takes the homes (found in OSM or given), keeps
those inside a boundary, finds the gated compounds and where each home enters the network
(:func:`home_access`). :func:`facility_access` does the same for facilities, and
:func:`inside_compound_legs` gives the walks that stay inside a home's own compound.
:func:`point_access` and :func:`geometry_access` are the plain entries of points (their
nearest node) and of polygons (the nodes along their outline); :func:`roads_gdf` draws the
network's streets for the maps.

Homes in a gated compound (小区) leave it through its gates: their compound's internal paths
are private and not in the network. A compound with walls but no mapped gate falls back to
the nearest street node.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings
from planner._errors import InputError
from planner.demand import add_groups, assign_compounds, compounds, homes_from_region
from planner.network import Access, Network, build_network, snap
from planner.sources import Region


@dataclass
class HomesOnNetwork:
    """The network, the homes and where they enter it (see :func:`homes_on_network`).

    Attributes
    ----------
    network : Network
    homes : GeoDataFrame
        The homes counted, index 0..n-1, with ``population`` and the groups
        (:func:`planner.demand.add_groups`).
    compounds : GeoDataFrame
        Gated compounds of the region (:func:`planner.demand.compounds`).
    access : Access
        Where each home enters the network (:func:`home_access`).
    compound_info : dict
        JSON-ready counts of compounds and gates (what ``summary.json`` reports).
    home_compound : ndarray
        Per home, the index of its compound in ``compounds`` (-1 for none).
    home_compound_id : ndarray
        Per home, its compound's ``compound_id`` (None for none).
    seconds : dict
        ``network`` and ``homes``: seconds spent building each.
    """

    network: Network
    homes: gpd.GeoDataFrame
    compounds: gpd.GeoDataFrame
    access: Access
    compound_info: dict
    home_compound: np.ndarray
    home_compound_id: np.ndarray
    seconds: dict


def homes_on_network(
    region: Region,
    mode: str = "walk",
    homes: gpd.GeoDataFrame | None = None,
    network: Network | None = None,
    boundary=None,
) -> HomesOnNetwork:
    """Build the network and bring the homes onto it.

    Parameters
    ----------
    region : Region
    mode : {"walk", "bike", "drive"}
    homes : GeoDataFrame, optional
        Homes to use instead of those found in OSM (``population`` column required).
    network : Network, optional
        A network built already (skips :func:`planner.network.build_network`).
    boundary : polygon, GeoDataFrame or path, optional
        Count only the homes inside it.

    Returns
    -------
    HomesOnNetwork

    Raises
    ------
    InputError
        No homes in the region, or none inside the boundary.
    """
    t = time.perf_counter()
    net = network if network is not None else build_network(region, mode)
    seconds = {"network": time.perf_counter() - t}
    t = time.perf_counter()
    if homes is None:
        homes = homes_from_region(region)
    else:
        homes = add_groups(homes.to_crs(region.crs).reset_index(drop=True))
    if len(homes) == 0:
        raise InputError(
            f"{region.source}: no homes found (no residential buildings or residential land use); "
            "give homes with --homes FILE (households or population per point)"
        )
    if boundary is not None:
        from planner.sources import boundary_polygon

        poly = boundary_polygon(boundary, region.crs)
        homes = homes[shapely.within(homes.geometry.to_numpy(), poly)]
        if len(homes) == 0:
            raise InputError(
                f"{region.source}: no homes inside the boundary; check the boundary or give --homes"
            )
    homes = homes.reset_index(drop=True)
    comps = compounds(region)
    access, info = home_access(net, homes, comps)
    home_compound_id = info.pop("_home_compound")
    home_compound = info.pop("_home_compound_index")
    seconds["homes"] = time.perf_counter() - t
    return HomesOnNetwork(
        network=net,
        homes=homes,
        compounds=comps,
        access=access,
        compound_info=info,
        home_compound=home_compound,
        home_compound_id=home_compound_id,
        seconds=seconds,
    )


def home_access(net: Network, homes: gpd.GeoDataFrame, comps: gpd.GeoDataFrame) -> tuple[Access, dict]:
    """Where each home enters the street network.

    Homes inside a gated compound leave through one of its gates (the straight walk to the
    gate plus the gate's snap to the street); a compound with walls but no mapped gate falls
    back to the nearest street node, and the returned summary says so. Facilities inside the
    home's own compound are reached without leaving it (:func:`inside_compound_legs`).

    Returns
    -------
    (Access, dict)
        The entries, and the compounds' counts; the dict's ``_home_compound`` (compound id
        per home) and ``_home_compound_index`` (index in ``comps``, -1 for none) are per home.
    """
    xy = shapely.get_coordinates(homes.geometry.to_numpy())
    base = point_access(net, xy)
    comp_of = assign_compounds(homes, comps)
    n_gates = np.array([len(g) for g in comps["gate_ids"]], np.int64) if len(comps) else np.zeros(0, np.int64)
    gated_home = (comp_of >= 0) & (n_gates[np.clip(comp_of, 0, None)] > 0 if len(comps) else False)
    comp_ids = comps["compound_id"].to_numpy() if len(comps) else None
    info = {
        "detected": len(comps),
        "with_gates": int((n_gates > 0).sum()),
        "homes_routed_through_gates": int(gated_home.sum()),
        "without_gates_fell_back_to_nearest_street": [
            {"compound_id": cid, "name": name}
            for cid, name, k in zip(comps["compound_id"], comps["name"], n_gates, strict=True)
            if k == 0
        ]
        if len(comps)
        else [],
        "_home_compound": np.where(
            comp_of >= 0, comp_ids[np.clip(comp_of, 0, None)] if len(comps) else None, None
        ),
        "_home_compound_index": comp_of,
    }
    if not gated_home.any():
        return base, info
    h = np.nonzero(gated_home)[0]
    counts = n_gates[comp_of[h]]
    owner = np.repeat(h, counts)
    gate_xy = np.concatenate([comps["gate_xy"].iloc[c] for c in comp_of[h]])
    gate_node, gate_snap = snap(net, gate_xy)
    leg = np.hypot(xy[owner, 0] - gate_xy[:, 0], xy[owner, 1] - gate_xy[:, 1]) + gate_snap
    keep = ~gated_home
    return Access(
        owner=np.concatenate([base.owner[keep], owner]),
        node=np.concatenate([base.node[keep], gate_node]),
        leg_m=np.concatenate([base.leg_m[keep], leg]),
        n_owners=base.n_owners,
    ), info


def facility_access(
    net: Network, facilities: gpd.GeoDataFrame, comps: gpd.GeoDataFrame
) -> tuple[Access, np.ndarray]:
    """Where facilities are reached from the network, and the compound each stands in.

    A facility inside a gated compound is reached through the compound's gates, as its homes
    leave through them (the straight walk from the gate to the facility's outline, plus the
    gate's snap); other facilities at their point or along their outline
    (:func:`geometry_access`).

    Returns
    -------
    (Access, numpy.ndarray)
        The entries, and per facility the index of its compound in ``comps`` (-1 for none).
    """
    geoms = facilities.geometry.to_numpy()
    base = geometry_access(net, geoms)
    if len(comps) == 0 or len(facilities) == 0:
        return base, np.full(len(facilities), -1, np.int64)
    points = gpd.GeoDataFrame(geometry=shapely.point_on_surface(geoms), crs=facilities.crs)
    fac_comp = assign_compounds(points, comps)
    n_gates = np.array([len(g) for g in comps["gate_ids"]], np.int64)
    gated = (fac_comp >= 0) & (n_gates[np.clip(fac_comp, 0, None)] > 0)
    if not gated.any():
        return base, fac_comp
    f = np.nonzero(gated)[0]
    owner = np.repeat(f, n_gates[fac_comp[f]])
    gate_xy = np.concatenate([comps["gate_xy"].iloc[c] for c in fac_comp[f]])
    gate_node, gate_snap = snap(net, gate_xy)
    leg = shapely.distance(geoms[owner], shapely.points(gate_xy)) + gate_snap
    keep = ~gated[base.owner]
    return Access(
        owner=np.concatenate([base.owner[keep], owner]),
        node=np.concatenate([base.node[keep], gate_node]),
        leg_m=np.concatenate([base.leg_m[keep], leg]),
        n_owners=base.n_owners,
    ), fac_comp


def inside_compound_legs(
    homes: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, home_comp: np.ndarray, fac_comp: np.ndarray
) -> pd.DataFrame:
    """Walks from homes to the facilities inside their own compound, without leaving it.

    A compound's internal paths are private and so not in the network (homes leave by the
    gates); a facility in the same compound is reached by a straight walk instead, times
    ``settings.off_network_detour`` (0 m from inside the facility's outline).

    Returns
    -------
    pandas.DataFrame
        ``home``, ``facility`` (positions in ``homes`` and ``facilities``) and ``walk_m``.
    """
    none = np.zeros(0, np.int64)
    empty = pd.DataFrame({"home": none, "facility": none, "walk_m": np.zeros(0)})
    if len(facilities) == 0 or not (home_comp >= 0).any():
        return empty
    geoms = facilities.geometry.to_numpy()
    h = np.nonzero(home_comp >= 0)[0]
    f = np.nonzero(fac_comp >= 0)[0]
    if len(f) == 0:
        return empty
    pairs = pd.DataFrame({"home": h, "c": home_comp[h]}).merge(
        pd.DataFrame({"facility": f, "c": fac_comp[f]}), on="c"
    )
    if len(pairs) == 0:
        return empty
    hp, fp = pairs["home"].to_numpy(), pairs["facility"].to_numpy()
    walk = shapely.distance(homes.geometry.to_numpy()[hp], geoms[fp]) * settings.off_network_detour
    return pd.DataFrame({"home": hp, "facility": fp, "walk_m": walk})


def stack_access(first: Access, second: Access) -> Access:
    """One :class:`~planner.network.Access` of ``first``'s owners, then ``second``'s (numbered
    after them): e.g. existing facilities, then candidate sites."""
    return Access(
        owner=np.concatenate([first.owner, second.owner + first.n_owners]),
        node=np.concatenate([first.node, second.node]),
        leg_m=np.concatenate([first.leg_m, second.leg_m]),
        n_owners=first.n_owners + second.n_owners,
    )


def snap_distance_m(net: Network, homes: gpd.GeoDataFrame) -> np.ndarray:
    """Straight distance (m) from each home to its nearest network node."""
    _, dist = snap(net, shapely.get_coordinates(homes.geometry.to_numpy()))
    return dist


def point_access(net: Network, xy: np.ndarray) -> Access:
    """One entry per point (``xy`` in ``net.crs``): its nearest node."""
    node, dist = snap(net, xy)
    return Access(owner=np.arange(len(node)), node=node, leg_m=dist, n_owners=len(node))


def geometry_access(net: Network, geoms: np.ndarray, reach_m: float | None = None) -> Access:
    """Entries for points and polygons: polygons are entered at every node within
    ``reach_m`` of their outline (0 m leg inside), else at the node nearest their centre."""
    reach = settings.polygon_access_m if reach_m is None else reach_m
    geoms = np.asarray(geoms)
    reps = shapely.point_on_surface(geoms)
    rep_xy = shapely.get_coordinates(reps)
    base = point_access(net, rep_xy)
    is_area = shapely.area(geoms) > 0
    if not is_area.any():
        return base
    area_idx = np.nonzero(is_area)[0]
    # Candidate nodes near each polygon via a KD-tree ball around its bounding circle.
    owners, nodes, legs = [base.owner], [base.node], [base.leg_m]
    node_pts = None
    for i in area_idx:
        g = geoms[i]
        minx, miny, maxx, maxy = g.bounds
        centre = ((minx + maxx) / 2, (miny + maxy) / 2)
        radius = np.hypot(maxx - minx, maxy - miny) / 2 + reach
        cand = np.asarray(net.tree.query_ball_point(centre, radius), np.int64)
        if len(cand) == 0:
            continue
        if node_pts is None:
            node_pts = shapely.points(net.xy())
        d = shapely.distance(g, node_pts[cand])
        ok = d <= reach
        if ok.any():
            owners.append(np.full(int(ok.sum()), i))
            nodes.append(cand[ok])
            legs.append(d[ok])
    return Access(
        owner=np.concatenate(owners),
        node=np.concatenate(nodes),
        leg_m=np.concatenate(legs),
        n_owners=len(geoms),
    )


def roads_gdf(net: Network, one_feature: bool = False) -> gpd.GeoDataFrame:
    """One line per street segment (either direction once), for maps; with ``one_feature``,
    every segment in one MultiLineString (no Python object per segment: a city's streets
    drawn as an image need no more)."""
    a, b = np.minimum(net.u, net.v).astype(np.int64), np.maximum(net.u, net.v).astype(np.int64)
    key = np.unique(a * max(int(net.n_nodes), 1) + b)  # one int per pair: a 1-D unique
    pairs = np.column_stack(np.divmod(key, max(int(net.n_nodes), 1)))
    if one_feature:
        coords = np.column_stack([net.x[pairs].ravel(), net.y[pairs].ravel()])
        line_offsets = np.arange(0, len(coords) + 1, 2, dtype=np.int64)
        geom_offsets = np.array([0, len(pairs)], np.int64)
        multi = shapely.from_ragged_array(
            shapely.GeometryType.MULTILINESTRING, coords, (line_offsets, geom_offsets)
        )
        return gpd.GeoDataFrame(geometry=multi if len(pairs) else [], crs=net.crs)
    lines = shapely.linestrings(
        np.stack(
            [
                np.column_stack([net.x[pairs[:, 0]], net.y[pairs[:, 0]]]),
                np.column_stack([net.x[pairs[:, 1]], net.y[pairs[:, 1]]]),
            ],
            axis=1,
        )
    )
    return gpd.GeoDataFrame(geometry=lines, crs=net.crs)


def take_shorter(
    cost: np.ndarray, target: np.ndarray, pairs: pd.DataFrame, pair_cost
) -> tuple[np.ndarray, np.ndarray]:
    """Per home, the smaller of its network cost and its walks inside its own compound
    (``pairs``: ``home``, ``facility``)."""
    pair_cost = np.asarray(pair_cost, float)
    order = np.lexsort((pair_cost, pairs["home"].to_numpy()))
    h, f, c = pairs["home"].to_numpy()[order], pairs["facility"].to_numpy()[order], pair_cost[order]
    first = np.r_[True, h[1:] != h[:-1]]
    h, f, c = h[first], f[first], c[first]
    better = c < cost[h]
    cost, target = cost.copy(), target.copy()
    cost[h[better]] = c[better]
    target[h[better]] = f[better]
    return cost, target
