"""The life-circle audit: network travel time from every home to the nearest facility of
each category, coverage at each category's own target and within 5/10/15 minutes, the share
of homes whose whole basic life circle is complete, isochrones, and the audit's outputs.

One multi-source Dijkstra per category (``scipy.sparse.csgraph``) gives every network node
its time to the category's nearest facility; a home's time is its off-network leg plus the
time of the node it enters the network at (for homes in gated compounds: the best gate). A
facility inside a home's own compound is also reached by walking inside the compound.

Targets keep the unit of their source: a GB 50180 service radius is judged on the network
distance in metres, a minute target of the convenience-circle guide on the travel time.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from tqdm import tqdm  # plain bars: tqdm.auto warns in Jupyter without ipywidgets

from planner import settings
from planner._gc import settled
from planner._io import atomic_dir
from planner._parallel import in_background
from planner.access import (
    facility_access,
    homes_on_network,
    inside_compound_legs,
    roads_gdf,
    snap_distance_m,
    take_shorter,
)
from planner.categories import Category, load_categories, region_facilities
from planner.isochrones import (  # noqa: F401 (isochrone_polygons, facility_isochrones re-exported)
    category_isochrones,
    facility_isochrones,
    isochrone_polygons,
)
from planner.life_circle import (  # noqa: F401 (LEVELS, CIRCLE_LEVELS, COMPLETE_KEY re-exported)
    CIRCLE_LEVELS,
    COMPLETE_KEY,
    LEVELS,
    category_summary,
    co_location,
    complete_life_circle,
    complete_life_circle_summary,
    complete_rows,
    coverage_counts,
    coverage_table,
    covered_at_target,
)
from planner.network import Network, TargetGraph, sweep_many, trip_costs
from planner.options import check_mode, isochrone_option, parse_minutes
from planner.population import population_summary
from planner.reach import BEYOND, UNREACHABLE, reach_states, sweep_limit_s
from planner.sources import Region, segments_within


@dataclass
class AuditResult:
    """Everything an audit found, in the region's metric CRS.

    Attributes
    ----------
    homes : GeoDataFrame
        One row per home: ``home_id``, ``population``, groups, and per category key
        ``<key>_time_s`` (NaN past ``sweep_limit_s``: the largest threshold or target plus
        ``settings.sweep_margin_s``, see :func:`planner.network.sweep_limit_s`), ``<key>_reach``
        (``reached``; ``beyond`` the limit, or ``unreachable``: no path to any such facility),
        ``<key>_facility_id``,
        ``<key>_dist_m`` (network metres, for categories with a metre target) and
        ``<key>_within_target``; per level ``complete_<level>`` (every basic category of the
        level and those below within its target, see :func:`complete_life_circle`).
    facilities : GeoDataFrame
        ``facility_id``, ``category``, ``name``, geometry.
    coverage : DataFrame
        One row per category and threshold, one per category at its own target (see
        :func:`coverage_table`), and one ``complete_life_circle`` row per level.
    isochrones : GeoDataFrame or None
        ``category``, ``minutes``, polygon: the area within that many minutes of the
        category's nearest facility; for a metre target the area within ``target_m``
        network metres (``minutes``: its walking time). Drawn on ``settings.isochrone_cell_m``
        cells and simplified by half a cell (:mod:`planner.isochrones`).
    node_time_s : dict
        Category key → time from every network node to its nearest facility.
    """

    region: str
    network: Network
    categories: list[Category]
    minutes: tuple[int, ...]
    homes: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    coverage: pd.DataFrame
    isochrones: gpd.GeoDataFrame | None
    node_time_s: dict[str, np.ndarray]
    compounds: dict
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Category key → network distance (m) from every node to its nearest facility, for
    #: categories with a metre target.
    node_dist_m: dict[str, np.ndarray] = field(default_factory=dict)
    #: Community health centres next to (or not next to) elderly-care institutions.
    co_location: dict = field(default_factory=dict)
    #: Where the sweeps stopped (seconds) and whether full times were asked.
    sweep_limit_s: float | None = None
    full_times: bool = False
    #: What :func:`run_audit` was given (files as given and absolute), so that
    #: ``planner serve DIR`` can start the same session from the output folder.
    inputs: dict = field(default_factory=dict)
    #: What the summary's compound counts come from, kept for :func:`planner.batch` to split a
    #: shared audit per region: ``compounds`` (outlines, ``gate_ids``) and ``inside`` (walks
    #: inside a home's own compound: ``home``, ``facility``, ``walk_m``).
    details: dict = field(default_factory=dict, repr=False)

    def summary(self) -> dict:
        """The facts of the run as a JSON-ready dict (what ``summary.json`` holds)."""
        fac_counts = self.facilities["category"].value_counts().to_dict()
        missing = [c.key for c in self.categories if fac_counts.get(c.key, 0) == 0]
        return {
            "region": self.region,
            "crs": self.network.crs.to_string(),
            "mode": self.network.mode,
            "walk_speed_mps": self.network.walk_speed_mps,
            "elderly_walk_speed_mps": settings.elderly_walk_speed_mps,
            "minutes": list(self.minutes),
            "network": {"nodes": int(self.network.n_nodes), "edges": int(self.network.n_edges)},
            "homes": len(self.homes),
            "homes_estimated": int(self.homes["estimated"].sum()),
            "population": float(self.homes["population"].sum()),
            "facilities": {c.key: int(fac_counts.get(c.key, 0)) for c in self.categories},
            "categories": {c.key: category_summary(c) for c in self.categories},
            "categories_without_facilities": missing,
            "complete_life_circle": complete_life_circle_summary(self.coverage, self.categories, fac_counts),
            "co_location": self.co_location,
            "travel_times": self._reach_summary(),
            "compounds": self.compounds,
            "population_sources": population_summary(self.homes),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "notes": self.notes + self.network.notes,
            **({"inputs": self.inputs} if self.inputs else {}),
        }

    def _reach_summary(self) -> dict:
        """Where times stop, and per category the homes beyond that limit or with no path."""
        homes = self.homes.copy(deep=False)
        homes.attrs = {}  # pandas deep-copies attrs at every column read
        states = {c.key: homes.get(f"{c.key}_reach") for c in self.categories}
        return {
            "limit_s": self.sweep_limit_s,
            "full_times": self.full_times,
            "homes_beyond_limit": {k: int((v == BEYOND).sum()) for k, v in states.items() if v is not None},
            "homes_unreachable": {
                k: int((v == UNREACHABLE).sum()) for k, v in states.items() if v is not None
            },
        }

    def part(self, boundary, buffer_m: float, name: str) -> AuditResult:
        """The audit of one region cut from this one: the homes inside ``boundary``, the
        facilities, streets and isochrones within ``buffer_m`` of it, and their coverage.

        What :func:`planner.batch.run_batch` writes per region when regions share one audit.
        A home's time equals that of an audit loaded with ``load_region(..., boundary,
        buffer_m)`` wherever its path stays within the buffer (every time up to the
        threshold whose reach ``buffer_m`` is); longer times may be shorter here, where the
        network reaches further.

        Parameters
        ----------
        boundary : polygon (WGS84), GeoDataFrame or path
            The region, as :func:`planner.sources.load_region` takes it.
        buffer_m : float
            How far beyond the boundary facilities, streets and isochrones are kept.
        name : str
            The region's name.
        """
        import shapely

        from planner.sources import boundary_polygon

        crs = self.network.crs
        poly = boundary_polygon(boundary, crs)
        zone = poly.buffer(buffer_m) if buffer_m > 0 else poly  # as load_region clips
        mine = shapely.within(self.homes.geometry.to_numpy(), poly)  # as homes_on_network keeps
        homes = self.homes[mine].reset_index(drop=True)
        counted = homes.copy(deep=False)
        counted.attrs = {}  # pandas deep-copies attrs at every column read of the coverage
        extra_ids = self.details.get("extra_facility_ids", set())
        keep_fac = (
            shapely.intersects(self.facilities.geometry.to_numpy(), zone)
            | self.facilities["facility_id"].isin(extra_ids).to_numpy()
        )
        facilities = self.facilities[keep_fac].reset_index(drop=True)
        net, used = _network_part(self.network, zone)
        iso = self.isochrones
        if iso is not None:
            iso = iso.assign(geometry=_clipped(iso.geometry.to_numpy(), zone))
        return AuditResult(
            region=name,
            network=net,
            categories=self.categories,
            minutes=self.minutes,
            homes=homes,
            facilities=facilities,
            coverage=audit_coverage(counted, self.categories, self.minutes, _elderly_factor(self.network)),
            isochrones=iso,
            node_time_s={k: v[used] for k, v in self.node_time_s.items()},
            compounds=self._compounds_part(zone, homes, mine, keep_fac),
            seconds=dict(self.seconds),
            notes=_notes(homes, self.categories, facilities),
            node_dist_m={k: v[used] for k, v in self.node_dist_m.items()},
            co_location=co_location(facilities),
            sweep_limit_s=self.sweep_limit_s,
            full_times=self.full_times,
            inputs=dict(self.inputs),
        )

    def _compounds_part(self, zone, homes: gpd.GeoDataFrame, mine: np.ndarray, keep_fac: np.ndarray) -> dict:
        """The compounds' counts of :meth:`part`: compounds meeting ``zone``, the part's homes
        (``mine`` of this audit's) and its walks inside compounds to facilities ``keep_fac``."""
        import shapely

        compounds = dict(self.compounds)
        comps = self.details.get("compounds")
        if comps is not None:
            near = comps[shapely.intersects(comps.geometry.to_numpy(), zone)]
            gates = near["gate_ids"].map(len).to_numpy() if len(near) else np.zeros(0, int)
            ids = set(near["compound_id"])
            compounds.update(
                detected=len(near),
                with_gates=int((gates > 0).sum()),
                homes_routed_through_gates=int(
                    homes["compound_id"].isin(set(near["compound_id"][gates > 0])).sum()
                ),
                without_gates_fell_back_to_nearest_street=[
                    c
                    for c in self.compounds["without_gates_fell_back_to_nearest_street"]
                    if c["compound_id"] in ids
                ],
            )
        inside = self.details.get("inside")
        if inside is not None and "facility_trips_inside_compounds" in compounds:
            mine_at = np.nonzero(mine)[0]
            compounds["facility_trips_inside_compounds"] = int(
                (np.isin(inside["home"], mine_at) & keep_fac[inside["facility"].to_numpy()]).sum()
            )
        return compounds

    @settled
    def write(
        self,
        out_dir: str | Path,
        map_html: bool = True,
        out_coords: str | None = None,
        excel: bool | None = None,
    ) -> Path:
        """Write ``homes.gpkg``, ``facilities.gpkg``, ``isochrones.gpkg``, ``coverage.csv``,
        ``summary.json``, ``map.html``, ``map.png`` and ``map.pdf`` atomically
        (with ``excel``, ``audit.xlsx`` too: :mod:`planner.tables`). ``homes.gpkg`` holds the
        homes only; the isochrones are in ``isochrones.gpkg``, as drawn (see ``isochrones``).

        ``out_coords`` (``gcj02``, ``bd09``): the GeoPackage's lon/lat for overlaying on
        Gaode/Baidu maps (:func:`planner.coords.frame_for_output`); the map stays WGS84.
        """
        started = time.perf_counter()
        with atomic_dir(out_dir) as tmp:
            homes = self.homes.to_crs(4326)
            homes.attrs = {}  # not written; pandas deep-copies attrs at every column read
            points = self.facilities.to_crs(4326).assign(geometry=lambda d: d.geometry.representative_point())
            roads = self._map_roads() if map_html else None
            # A city's printable maps are drawn in a forked process while the rest is written.
            with in_background(
                self._write_printable if map_html else _nothing,
                tmp,
                homes,
                points,
                roads,
                fork=map_html and len(self.homes) > settings.map_detail_max_homes,
            ) as printed:
                self._write_tables(tmp, homes, points, out_coords, excel)
                if map_html:
                    map_started = time.perf_counter()
                    self._write_html_map(tmp, homes, points, roads)
                    printed()
                    self.seconds["map"] = time.perf_counter() - map_started
            self.seconds["write"] = time.perf_counter() - started
            summary = self.summary()
            (tmp / "summary.json").write_text(
                json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8"
            )
        return Path(out_dir)

    def _write_tables(
        self, folder: Path, homes: gpd.GeoDataFrame, points: gpd.GeoDataFrame, out_coords, excel
    ) -> None:
        """The GeoPackages (one layer each, so a plain geopandas.read_file gives it with no
        warning), ``coverage.csv`` and the optional workbook."""
        from planner.coords import frame_for_output
        from planner.tables import write_tables

        frame_for_output(homes, out_coords).to_file(folder / "homes.gpkg", layer="homes", driver="GPKG")
        frame_for_output(points, out_coords).to_file(
            folder / "facilities.gpkg", layer="facilities", driver="GPKG"
        )
        if self.isochrones is not None and len(self.isochrones):
            frame_for_output(self.isochrones, out_coords).to_file(
                folder / "isochrones.gpkg", layer="isochrones", driver="GPKG"
            )
        tables = {"coverage": coverage_counts(self.coverage, self.homes)}
        write_tables(folder, tables, excel=settings.excel if excel is None else excel, workbook="audit.xlsx")

    def _map_roads(self) -> gpd.GeoDataFrame:
        """The streets for both maps: merged into polylines and simplified, or for a city (drawn
        as images, where merging would change nothing visible) every segment as they are."""
        from planner.maps import light_lines

        if len(self.homes) <= settings.map_detail_max_homes:
            return light_lines(roads_gdf(self.network))
        return roads_gdf(self.network, one_feature=True)

    def _map_title(self) -> str:
        return f"{self.region} — 生活圈 life-circle audit"

    def _write_html_map(
        self, folder: Path, homes: gpd.GeoDataFrame, points: gpd.GeoDataFrame, roads: gpd.GeoDataFrame
    ) -> None:
        """``map.html`` of the homes and facility points (WGS84); isochrones in metres, as the
        map simplifies them in metres."""
        from planner.maps import map_audit, save_map

        categories = [
            {
                "key": c.key,
                "name_zh": c.name_zh,
                "name_en": c.name_en,
                "minutes": c.minutes,
                "target_label": c.target_label,
            }
            for c in self.categories
        ]
        m = map_audit(
            homes=homes,
            facilities=points,
            isochrones=self.isochrones,
            categories=categories,
            roads=roads,
            minutes=self.minutes,
            title=self._map_title(),
        )
        save_map(m, folder / "map.html")

    def _write_printable(
        self, folder: Path, homes: gpd.GeoDataFrame, points: gpd.GeoDataFrame, roads: gpd.GeoDataFrame
    ) -> list[Path]:
        """``map.png`` and ``map.pdf``."""
        from planner.maps.printable import print_audit

        keys = [c.key for c in self.categories]
        return print_audit(folder, self._map_title(), homes, points, keys, roads=roads)


def _nothing(*_args) -> None:
    return None


@settled
def audit(
    region: Region,
    categories: str | Iterable[str] | None = None,
    minutes: Sequence[int] | None = None,
    mode: str = "walk",
    homes: gpd.GeoDataFrame | None = None,
    extra_facilities: gpd.GeoDataFrame | None = None,
    categories_file: str | Path | None = None,
    with_isochrones: bool | str = True,
    network: Network | None = None,
    boundary=None,
    sweeper=None,
    progress: bool | None = None,
    full_times: bool = False,
) -> AuditResult:  # size: a numpy docstring of 13 parameters; the steps are helpers
    """Audit a region's life circles.

    Parameters
    ----------
    region : Region
        From :func:`planner.sources.load_region`.
    categories : str or list of str, optional
        Category keys (comma-separated or a list); all when None.
    minutes : sequence of int, optional
        Thresholds; default ``settings.minutes`` (5, 10, 15).
    mode : {"walk", "bike", "drive"}
    homes : GeoDataFrame, optional
        Homes to use instead of those found in OSM (``population`` column required).
    extra_facilities : GeoDataFrame, optional
        Facilities to add to those in OSM (``facility_id``, ``category``, ``name``).
    categories_file : path, optional
        A user's categories TOML, added to the bundled ones.
    with_isochrones : bool or "all"
        Draw each category's area within its target circle (True), within every threshold
        ("all"), or none (False).
    network : Network, optional
        A network built already (skips :func:`build_network`).
    boundary : polygon, GeoDataFrame or path, optional
        Count only homes inside it. Load the region with a buffer beyond it
        (``load_region(..., boundary, buffer_m=reach_m(minutes))``) so that facilities just
        across the boundary still serve homes near it.
    sweeper : callable, optional
        ``sweeper(targets, subsets, limit)`` → iterable of (cost, nearest) per subset, in
        order; default :func:`planner.network.sweep_many` (local processes). The batch
        engine passes one that runs the sweeps as tasks on a Dask cluster.
    full_times : bool
        Times up to ``settings.max_travel_time_s`` (60 minutes) for every home; by default
        sweeps stop ``settings.sweep_margin_s`` past the largest threshold or target, and
        homes farther are reported ``beyond`` (``<key>_reach``). Coverage is the same.

    Returns
    -------
    AuditResult
    """
    from planner.categories import select

    show = settings.progress if progress is None else progress
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    cats = select(load_categories(categories_file), categories)
    minutes = parse_minutes(minutes or settings.minutes)
    sweep_limit_s(*minutes, *(c.minutes for c in cats))  # a bad threshold fails before any work
    on_net = homes_on_network(region, mode, homes=homes, network=network, boundary=boundary)
    net, homes, comps, access = on_net.network, on_net.homes, on_net.compounds, on_net.access
    comp_info, home_comp = on_net.compound_info, on_net.home_compound
    seconds.update(on_net.seconds)
    homes["snap_m"] = snap_distance_m(net, homes)
    homes["compound_id"] = on_net.home_compound_id

    t = time.perf_counter()
    facilities = region_facilities(region.features, cats, extra_facilities)
    fac_access, fac_comp = facility_access(net, facilities, comps)
    inside = inside_compound_legs(homes, facilities, home_comp, fac_comp)
    comp_info["facility_trips_inside_compounds"] = len(inside)
    seconds["facilities"] = time.perf_counter() - t

    # Sweeps reach the largest threshold and target asked, plus the margin (with full_times past
    # max_travel_time_s if need be); further for the elderly only if set to walk faster.
    largest = max([*minutes, *(c.minutes for c in cats)])
    faster = max(1.0, 1.0 / _elderly_factor(net))
    limit_s = sweep_limit_s(largest, full_times=full_times) + 60.0 * largest * (faster - 1.0)
    t = time.perf_counter()
    node_time, node_dist = _nearest_facilities(
        net, access, homes, facilities, fac_access, cats, inside, limit_s, sweeper or sweep_many, show
    )
    seconds["sweeps"] = time.perf_counter() - t

    t = time.perf_counter()
    speed_ratio = _elderly_factor(net)
    for c in cats:
        homes[f"{c.key}_within_target"] = covered_at_target(homes, c)[0]
    for level, done in complete_life_circle(homes, cats, elderly_time_factor=speed_ratio).items():
        homes[f"complete_{level}"] = done["homes"]
    cov = audit_coverage(homes, cats, minutes, speed_ratio)
    seconds["coverage"] = time.perf_counter() - t
    t = time.perf_counter()
    iso = (
        category_isochrones(net, cats, minutes, node_time, node_dist, with_isochrones, show)
        if with_isochrones
        else None
    )
    seconds["isochrones"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    return AuditResult(
        region=region.name,
        network=net,
        categories=cats,
        minutes=minutes,
        homes=homes,
        facilities=facilities,
        coverage=cov,
        isochrones=iso,
        node_time_s=node_time,
        compounds=comp_info,
        seconds=seconds,
        notes=_notes(homes, cats, facilities),
        node_dist_m=node_dist,
        co_location=co_location(facilities),
        sweep_limit_s=limit_s,
        full_times=full_times,
        details={
            "compounds": comps,
            "inside": inside,
            "extra_facility_ids": set() if extra_facilities is None else set(extra_facilities["facility_id"]),
        },
    )


def _clipped(geoms: np.ndarray, zone) -> np.ndarray:
    """``geoms`` ∩ ``zone``, each first cut to the zone's box: that cut is linear in the
    vertices, while the overlay's cost grows with every vertex it is given (a group's
    isochrones span all its regions). A cut GEOS cannot guarantee valid is not used."""
    import shapely

    boxed = shapely.clip_by_rect(geoms, *zone.bounds)
    boxed = np.where(shapely.is_valid(boxed), boxed, geoms)
    return shapely.intersection(boxed, zone)


def audit_coverage(
    homes: gpd.GeoDataFrame, cats: Sequence[Category], minutes: Sequence[int], elderly_time_factor: float
) -> pd.DataFrame:
    """The coverage table of audited homes: per category and threshold, at each target, and
    the complete life circle per level (the rows of ``coverage.csv``)."""
    cov = coverage_table(homes, cats, minutes, elderly_time_factor=elderly_time_factor)
    rows = complete_rows(homes, cats, elderly_time_factor=elderly_time_factor)
    return pd.concat([cov, rows], ignore_index=True)


def _network_part(net: Network, zone) -> tuple[Network, np.ndarray]:
    """The streets with both ends inside ``zone`` (as :meth:`planner.sources.Region.clip`
    keeps them) and the indices of their nodes in ``net``."""
    keep, used, new_index = segments_within(zone, net.x, net.y, net.u, net.v)
    part = Network(
        mode=net.mode,
        crs=net.crs,
        node_id=net.node_id[used],
        x=net.x[used],
        y=net.y[used],
        u=new_index[net.u[keep]],
        v=new_index[net.v[keep]],
        length_m=net.length_m[keep],
        time_s=net.time_s[keep],
        walk_speed_mps=net.walk_speed_mps,
        notes=list(net.notes),
    )
    return part, np.nonzero(used)[0]


def _elderly_factor(net: Network) -> float:
    """How much longer the elderly take than the network's walking speed (walk networks)."""
    return net.walk_speed_mps / settings.elderly_walk_speed_mps if net.mode == "walk" else 1.0


def _nearest_facilities(
    net: Network,
    access,
    homes: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    fac_access,
    cats: Sequence[Category],
    inside: pd.DataFrame,
    limit_s: float,
    sweeper,
    show: bool,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One sweep per category: ``<key>_time_s``, ``<key>_facility_id`` (and ``<key>_dist_m`` for
    a metre target) added to ``homes``; returns the node times and node distances per key."""
    node_time: dict[str, np.ndarray] = {}
    node_dist: dict[str, np.ndarray] = {}
    fac_ids = facilities["facility_id"].to_numpy()
    cat_of = facilities["category"].to_numpy()
    subsets = [np.nonzero(cat_of == cat.key)[0] for cat in cats]
    swept = sweeper(TargetGraph(net, fac_access, "time"), subsets, limit=limit_s)
    # Network metres for metre targets: on a walk network every edge and leg is walked at one
    # speed, so distance = time × speed exactly; other modes need sweeps by length.
    proportional = _time_proportional_to_length(net)
    max_dist_m = limit_s * net.walk_speed_mps
    metre_cats = [i for i, c in enumerate(cats) if c.unit == "m"]
    dist_swept = {}
    if metre_cats and not proportional:
        by_length = TargetGraph(net, fac_access, "length")
        dist_swept = dict(
            zip(
                metre_cats,
                sweeper(by_length, [subsets[i] for i in metre_cats], limit=max_dist_m),
                strict=True,
            )
        )
    for i, (cat, (cost, which)) in enumerate(
        tqdm(
            zip(cats, swept, strict=True),
            total=len(cats),
            desc="nearest-facility sweeps",
            unit="category",
            disable=not show,
            leave=False,
        )
    ):
        node_time[cat.key] = cost
        home_cost, home_target = trip_costs(net, access, cost, which, "time")
        pairs = inside[cat_of[inside["facility"]] == cat.key] if len(inside) else inside
        if len(pairs):
            home_cost, home_target = take_shorter(
                home_cost, home_target, pairs, pairs["walk_m"] / net.walk_speed_mps
            )
        home_cost[home_cost > limit_s] = np.inf
        homes[f"{cat.key}_time_s"] = np.where(np.isfinite(home_cost), home_cost, np.nan)
        reach = reach_states(net, access, home_cost, fac_access.node[np.isin(fac_access.owner, subsets[i])])
        if len(pairs):  # a walk inside the home's own compound is a path too
            reach[(reach == UNREACHABLE) & np.isin(np.arange(len(reach)), pairs["home"])] = BEYOND
        homes[f"{cat.key}_reach"] = reach
        homes[f"{cat.key}_facility_id"] = np.where(
            np.isfinite(home_cost), fac_ids[np.clip(home_target, 0, None)] if len(fac_ids) else None, None
        )
        if cat.unit == "m":
            if proportional:
                node_dist[cat.key] = cost * net.walk_speed_mps
                home_dist = home_cost * net.walk_speed_mps
            else:
                node_dist[cat.key], dist_which = dist_swept[i]
                home_dist, _ = trip_costs(net, access, node_dist[cat.key], dist_which, "length")
                if len(pairs):
                    home_dist, _ = take_shorter(
                        home_dist, np.zeros(len(home_dist), np.int64), pairs, pairs["walk_m"]
                    )
            home_dist[home_dist > max_dist_m] = np.inf
            # Millimetres: float noise must not push a home exactly at the radius outside it.
            homes[f"{cat.key}_dist_m"] = np.where(np.isfinite(home_dist), np.round(home_dist, 3), np.nan)
    return node_time, node_dist


def _notes(homes: gpd.GeoDataFrame, cats: Sequence[Category], facilities: gpd.GeoDataFrame) -> list[str]:
    notes = []
    if homes["estimated"].any():
        notes.append(
            f"{int(homes['estimated'].sum())} homes are estimated on a {settings.grid_spacing_m:g} m grid "
            "over residential land without mapped buildings"
        )
    cat_of = facilities["category"].to_numpy()
    missing = [c.key for c in cats if not (cat_of == c.key).any()]
    if missing:
        notes.append(
            "no facility mapped for: "
            + ", ".join(missing)
            + " (their coverage is 0; add them with --facilities FILE)"
        )
    return notes


def run_audit(
    osm: str | os.PathLike,
    out_dir: str | os.PathLike | None,
    categories: str | Iterable[str] | None = "all",
    minutes: str | Sequence[int] | None = None,
    mode: str = "walk",
    homes: str | os.PathLike | None = None,
    facilities: str | os.PathLike | None = None,
    categories_file: str | os.PathLike | None = None,
    boundary=None,
    isochrones: str | bool = "target",
    map_html: bool = True,
    name: str | None = None,
    sweeper=None,
    progress: bool | None = None,
    crs=None,
    coords: str | None = None,
    population=None,
    population_table=None,
    out_coords: str | None = None,
    full_times: bool = False,
) -> AuditResult:  # size: a docstring of 20 parameters; the body is load, audit, write
    """What ``planner audit`` does, from files: load, audit, write ``out_dir`` atomically.

    Parameters
    ----------
    osm : path or str
        OSM extract, bundled sample name or place name (:func:`planner.sources.load_region`).
    out_dir : path or None
        Output folder (see :meth:`AuditResult.write`); None: nothing written.
    minutes : str or sequence of int, optional
        Thresholds, e.g. ``"5,10,15"``; default ``settings.minutes``.
    homes, facilities : path, optional
        Homes replacing OSM's; facilities added to OSM's.
    boundary : polygon, GeoDataFrame or path, optional
        Only homes inside count; the region is loaded with the reach of the largest
        threshold beyond it, so facilities across it still serve them.
    isochrones : {"target", "all", "none"}
    name : str, optional
        Region name (default the file's).
    crs, coords : optional
        The CRS of CSV coordinates (and of files that declare none), and ``"gcj02"`` or
        ``"bd09"`` for lon/lat from Gaode/Tencent or Baidu (:mod:`planner.coords`).
    population, population_table : path, optional
        A population raster, or counts per polygon, shared over homes by floor area
        (:func:`planner.population.homes_with_population`).
    out_coords : {"wgs84", "gcj02", "bd09"}, optional
        Coordinates of the written GeoPackage (the map stays WGS84, on OSM tiles).

    Other parameters (``sweeper``, ``progress``, ``full_times``...) are those of :func:`audit`.
    """
    from planner import coords as _coords

    coords, out_coords = _coords.check_coords(coords), _coords.check_coords(out_coords, "--out-coords")
    with_isochrones = isochrone_option(isochrones)
    files = {
        "homes": homes,
        "facilities": facilities,
        "categories_file": categories_file,
        "boundary": boundary,
        "population": population,
        "population_table": population_table,
    }
    region, mins, loaded = _load_inputs(osm, categories, minutes, mode, name, crs, coords, **files)
    result = audit(
        region,
        categories=categories,
        minutes=mins,
        mode=mode,
        categories_file=categories_file,
        with_isochrones=with_isochrones,
        sweeper=sweeper,
        progress=progress,
        full_times=full_times,
        **loaded,
    )
    del region, loaded  # the OSM objects are not written: their memory is free for the maps
    result.inputs = _recorded_inputs(osm, categories, mins, mode, coords, crs, **files)
    if out_dir is not None:
        result.write(out_dir, map_html=map_html, out_coords=out_coords)
    return result


def _load_inputs(osm, categories, minutes, mode, name, crs, coords, **files) -> tuple:
    """A run's options checked, then its region, thresholds and the :func:`audit` arguments read
    from files (``homes``, ``extra_facilities``, ``boundary``)."""
    from planner.categories import facilities_from_file, read_points_table, select
    from planner.demand import homes_from_file
    from planner.population import homes_with_population
    from planner.sources import load_region, reach_m

    mins = parse_minutes(minutes if minutes is not None else settings.minutes)
    check_mode(mode)
    known = load_categories(files["categories_file"])
    select(known, categories)  # a bad file or key fails before any heavy work
    boundary, homes, facilities = files["boundary"], files["homes"], files["facilities"]
    if isinstance(boundary, (str, os.PathLike)) and (crs is not None or coords != "wgs84"):
        boundary = read_points_table(boundary, crs=crs, coords=coords)
    region = load_region(
        osm, boundary=boundary, name=name, buffer_m=reach_m(mins, mode) if boundary is not None else 0.0
    )
    # Homes beyond the extract are refused; with a boundary those outside it are left out instead.
    home_table = (
        homes_from_file(
            homes, region.crs, region=None if boundary is not None else region, file_crs=crs, coords=coords
        )
        if homes
        else None
    )
    home_table = homes_with_population(
        region, home_table, files["population"], files["population_table"], crs, coords
    )
    extra = facilities_from_file(facilities, region.crs, known, crs, coords) if facilities else None
    return region, mins, {"homes": home_table, "extra_facilities": extra, "boundary": boundary}


def _recorded_inputs(osm, categories, mins, mode, coords, crs, **files) -> dict:
    """The inputs of a run as ``summary.json`` records them: each file as given and absolute
    (``osm_path`` is None for a sample or place name), so the run can be repeated from the folder."""

    def absolute(value):
        return str(Path(value).resolve()) if isinstance(value, (str, os.PathLike)) else None

    osm_is_file = isinstance(osm, os.PathLike) or Path(str(osm)).is_file()
    cats = categories if categories is None or isinstance(categories, str) else ",".join(categories)
    out = {
        "osm": str(osm),
        "osm_path": absolute(osm) if osm_is_file else None,
        "categories": cats,
        "minutes": list(mins),
        "mode": mode,
        "coords": coords,
        "crs": None if crs is None else str(crs),
    }
    for key, value in files.items():
        out[key] = absolute(value) if value is not None else None
        if value is not None and out[key] is None:
            out[key] = "given in Python, not a file"
    return out


# ----------------------------------------------------------------------------------------------
# inside gated compounds


def _time_proportional_to_length(net: Network) -> bool:
    """True when every edge is travelled at the walking speed (walk networks), so that a
    network distance is the time times the walking speed, legs included."""
    if net.mode != "walk" or net.n_edges == 0:
        return net.n_edges == 0
    return bool(np.allclose(net.time_s * net.walk_speed_mps, net.length_m, rtol=1e-9, atol=1e-6))
