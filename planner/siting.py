"""Siting on a region: candidates, the homes × candidates cost matrix, the location model,
and before/after coverage — what ``planner site`` runs.

The models themselves are in :mod:`planner.optimize` (built from a cost matrix). Here the
matrix comes from the audit's network: homes leave gated compounds by their gates, existing
facilities of the category are fixed open sites, and homes that share a network node are one
demand row (for the p-median their legs averaged by population; for the threshold models
only homes with equal legs), so the model has about as many rows as occupied nodes. When
walking, each row's elderly are a second row at their slower pace (:func:`elderly_rows`).
Coverage before and after is then measured exactly, per home, by two sweeps.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings
from planner._errors import InfeasibleError, InputError
from planner._io import atomic_dir
from planner.access import homes_on_network, stack_access
from planner.candidates import candidates_from_file, candidates_from_region
from planner.categories import Category, facilities_from_file, load_categories, region_facilities, resolve_key
from planner.network import (
    Access,
    Network,
    TargetGraph,
    cost_matrix,
    geometry_access,
    point_access,
    sweep_limit_s,
    trip_costs,
)
from planner.options import check_mode, check_threshold
from planner.population import population_summary
from planner.reach import median_cutoff_s
from planner.siting_outputs import coverage_before_after, write_map
from planner.sources import Region

MODELS = ("pmedian", "mclp", "lscp", "pcenter")


@dataclass
class SitingResult:
    """Proposed sites and what they change.

    Attributes
    ----------
    proposed : GeoDataFrame
        New sites in rank order: ``rank``, ``candidate_id``, ``source``, ``name``,
        ``population_newly_covered`` (within ``minutes``), ``homes_newly_covered``,
        ``demand_assigned``; points in the region's CRS.
    existing : GeoDataFrame
        The category's existing facilities (fixed open sites).
    homes : GeoDataFrame
        Homes with ``time_before_s``, ``time_after_s``, ``covered_before``, ``covered_after``.
    before_after : DataFrame
        Coverage by threshold before and after: people, elderly, children, homes.
    solution : planner.optimize.Solution
    """

    region: str
    category: Category
    model: str
    minutes: float | None
    proposed: gpd.GeoDataFrame
    existing: gpd.GeoDataFrame
    homes: gpd.GeoDataFrame
    before_after: pd.DataFrame
    solution: object
    seconds: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    elderly_time_factor: float = 1.0
    roads: gpd.GeoDataFrame | None = None  # street segments of the network, for the map
    #: In a planner's units (:func:`planner.tradeoff.planner_units`), the standards' sizing
    #: (``--standards``) and the homes no candidate reaches, by id.
    report: dict = field(default_factory=dict)
    tradeoff: pd.DataFrame | None = None  # one row per number of new sites (``--new 1-12``)

    def summary(self) -> dict:
        s = self.solution
        return {
            "region": self.region,
            "category": self.category.key,
            "category_name_zh": self.category.name_zh,
            "category_name_en": self.category.name_en,
            "model": self.model,
            "minutes": self.minutes,
            "new_sites": len(self.proposed),
            "existing_sites": len(self.existing),
            "objective": float(s.objective),
            "objective_unit": {
                "pmedian": "weighted seconds",
                "mclp": "weighted demand covered",
                "lscp": "new sites",
                "pcenter": "seconds",
            }[self.model],
            "lower_bound": float(s.lower_bound),
            "upper_bound": float(s.upper_bound),
            "gap": float(s.gap),
            "solver": s.solver,
            "status": s.status,
            # > 1: the elderly were demand rows of their own at their slower walking pace
            "elderly_time_factor": round(self.elderly_time_factor, 4),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "counts": self.counts,
            "population_sources": population_summary(self.homes),
            **self.report,
        }

    def write(
        self,
        out_dir: str | Path,
        map_html: bool = True,
        out_coords: str | None = None,
        excel: bool | None = None,
    ) -> Path:
        """Write ``sites.gpkg``, ``existing_sites.gpkg``, ``before_after.csv``, ``summary.json``,
        ``map.html`` atomically;
        ``out_coords`` and ``excel`` (``site.xlsx``) as for :meth:`planner.audit.AuditResult.write`."""
        from planner.coords import frame_for_output
        from planner.tables import write_tables

        with atomic_dir(out_dir) as tmp:
            prop = self.proposed.to_crs(4326)
            frame_for_output(prop, out_coords).to_file(tmp / "sites.gpkg", layer="proposed", driver="GPKG")
            if len(self.existing):
                # A file of its own: one layer per GeoPackage reads with a plain read_file.
                frame_for_output(self.existing, out_coords).to_file(
                    tmp / "existing_sites.gpkg", layer="existing", driver="GPKG"
                )
            tables = {"before_after": self.before_after}
            if self.tradeoff is not None:
                tables["tradeoff"] = self.tradeoff
            write_tables(tmp, tables, excel=settings.excel if excel is None else excel, workbook="site.xlsx")
            chart = None
            if self.tradeoff is not None:
                from planner.tradeoff import chart_png

                chart = chart_png(self.tradeoff, f"{self.category.name_zh} {self.category.name_en}")
                (tmp / "tradeoff.png").write_bytes(chart)
            if map_html:
                write_map(self, tmp / "map.html", chart)
            (tmp / "summary.json").write_text(
                json.dumps(self.summary(), ensure_ascii=False, indent=2), encoding="utf-8"
            )
        return Path(out_dir)


def site(
    region: Region,
    category: str,
    model: str = "mclp",
    new: int | None = None,
    minutes: float | None = None,
    candidates: gpd.GeoDataFrame | None = None,
    homes: gpd.GeoDataFrame | None = None,
    extra_facilities: gpd.GeoDataFrame | None = None,
    capacities: np.ndarray | None = None,
    mode: str = "walk",
    method: str = "auto",
    time_limit: float | None = None,
    categories_file: str | Path | None = None,
    elderly_pace: bool = True,
    network: Network | None = None,
    boundary=None,
    standards: bool = True,
    colocate: bool = False,
) -> SitingResult:  # size: a numpy docstring of 17 parameters, then one line per step of the run
    """Propose sites for new facilities of one category.

    Parameters
    ----------
    region : Region
    category : str
        Category key (``planner categories`` lists them).
    model : {"pmedian", "mclp", "lscp", "pcenter"}
        p-median (total weighted time), maximal coverage within ``minutes``, set covering
        (fewest new sites so every reachable home is within ``minutes``), p-center (worst time).
    new : int
        Number of new sites (not for ``lscp``).
    minutes : float, optional
        Service standard; default the category's target circle.
    candidates : GeoDataFrame, optional
        By the standards: the user's parcels (:func:`planner.candidates.parcels_from_file`),
        default the region's land (:func:`planner.candidates.land_candidates`). Without:
        candidate points, default :func:`candidates_from_region`.
    capacities : array or float, optional
        Capacity per candidate (in weighted demand; one number: the same for every
        candidate), for capacitated models; existing facilities get unlimited capacity.
        By the standards: one number, residents, replacing the sizing's capacity of every
        candidate.
    elderly_pace : bool
        Walking: the elderly are demand rows of their own, at
        ``settings.elderly_walk_speed_mps`` (as the report counts them), so a coverage
        promise holds for them too. False: everyone at the adult pace.
    network : Network, optional
        A network built already (skips :func:`planner.network.build_network`).
    boundary : polygon, GeoDataFrame or path, optional
        Count only the homes inside it (load the region with the reach of ``minutes``
        beyond it, as :func:`run_site` does).
    standards : bool
        Site by the standards (the default, every model; :mod:`planner.site_standards`):
        candidates are land and buildings big enough for the category (``candidates``: the
        user's parcels), each with its capacity, and no new site takes fewer residents than
        the minimum catchment or stands closer than the minimum spacing to another of its
        kind; street points only as a labelled fallback when no mapped land fits. False:
        the pure mathematical model on candidate points (:mod:`planner.optimize`).
    colocate : bool
        With ``standards``: a community health centre only next to existing elderly care
        (:data:`planner.site_standards.COLOCATE`).

    Returns
    -------
    SitingResult
    """
    from planner.audit import roads_gdf

    t0 = time.perf_counter()
    if model not in MODELS:
        raise InputError(f"--model {model!r}: use one of {', '.join(MODELS)}")
    cats = load_categories(categories_file)
    category = resolve_key(category, cats, "--category")
    cat = cats[category]
    minutes = check_options(model, new, minutes if minutes is not None else cat.minutes, capacities)
    on_net = homes_on_network(region, mode, homes=homes, network=network, boundary=boundary)
    net, homes, h_access = on_net.network, on_net.homes, on_net.access

    existing = region_facilities(region.features, [cat], extra_facilities)
    plan = None
    if colocate and not standards:
        raise InputError(
            "--colocate: leave out --no-standards (co-location is a rule of siting by the standards)"
        )
    if standards:
        from planner.site_standards import prepare, with_capacity

        plan = prepare(
            region, net, cat, existing, candidates, model, colocate=colocate, extra=extra_facilities
        )
        plan = with_capacity(plan, capacities)
        candidates, capacities = plan.candidates, None
    else:
        candidates = _candidates(region, net, candidates)
    if capacities is not None and np.ndim(capacities) == 0:
        capacities = np.full(len(candidates), float(capacities))
    # Candidate columns: existing facilities first (fixed open), then the new candidates.
    all_acc = stack_access(
        geometry_access(net, existing.geometry.to_numpy()),
        point_access(net, shapely.get_coordinates(candidates.geometry.to_numpy())),
    )
    fixed = np.arange(len(existing))
    # By the standards --new is an upper bound (the console says when fewer are big enough);
    # more than the candidates mapped at all is a typo.
    n_given = len(candidates) if plan is None else max(len(candidates), plan.info.get("given", 0))
    if new is not None and new > n_given:
        raise InputError(f"--new {new}: only {n_given} candidate sites; lower --new or give --candidates")
    seconds = {"setup": time.perf_counter() - t0}

    t = time.perf_counter()
    # Coverage and worst-time models judge each home against a threshold: rows keep each
    # home's own leg (the p-median's total time is exact with the node's average leg).
    rows, row_of_home, demand = demand_rows(net, h_access, homes, split_legs=model != "pmedian")
    # The p-median's matrix stops where no answer can use it (median_cutoff_s: no home is served
    # farther than its nearest existing facility); the rest and the report use full times.
    report_limit = sweep_limit_s(*settings.minutes, minutes, full_times=True)
    limit = 60.0 * minutes if model in ("mclp", "lscp") else report_limit
    if model == "pmedian" and plan is None:
        limit = median_cutoff_s(net, rows, all_acc, fixed, report_limit)
    cost = cost_matrix(net, rows, all_acc, cutoff=limit)
    seconds["cost_matrix"] = time.perf_counter() - t

    t = time.perf_counter()
    slower = net.walk_speed_mps / settings.elderly_walk_speed_mps if net.mode == "walk" else 1.0
    cost, weights, base_row = elderly_rows(cost, demand, slower if elderly_pace else 1.0)
    caps = None
    if capacities is not None:
        caps = np.concatenate([np.full(len(existing), np.inf), np.asarray(capacities, float)])
    if plan is not None:
        from planner.site_standards import row_people, standards_model

        budget = time_limit
        if budget is None and model == "pcenter":
            budget = settings.standards_pcenter_time_limit_s
        solution = standards_model(
            plan, cost, weights, row_people(demand, base_row), new, minutes, len(existing), model
        ).solve(time_limit=budget)
    else:
        try:
            solution = _model(model, cost, weights, new, minutes, fixed, caps).solve(
                method=method, time_limit=time_limit
            )
        except InfeasibleError as err:
            if model != "pmedian" or len(fixed) or caps is not None:
                raise
            # With no facility of the category yet, the matrix stops at max_travel_time_s, so
            # every home needs a new site within it: say so, and the other way out.
            raise InfeasibleError(
                f"{err}; or give a larger max_travel_time_s with --config (slower, more memory): "
                f"with no existing {category}, each home needs a new site within {limit / 60:g} min, "
                "where travel times stop"
            ) from None
    seconds["solve"] = time.perf_counter() - t

    t = time.perf_counter()
    unreachable = np.asarray(solution.unreachable, dtype=np.int64)
    new_sites = solution.new_sites
    table = solution.table()
    table = table[table["kind"] == "new"].sort_values("rank")
    cand_idx = table["site"].to_numpy() - len(existing)
    proposed = candidates.iloc[cand_idx].reset_index(drop=True)
    proposed.insert(0, "rank", np.arange(1, len(proposed) + 1))
    proposed["demand_assigned"] = table["demand"].to_numpy()
    if plan is not None:
        from planner.site_standards import site_columns

        proposed = site_columns(proposed, table)

    homes, which_after = _times_before_after(
        net, h_access, all_acc, homes, fixed, new_sites, report_limit, minutes
    )
    newly = homes["covered_after"] & ~homes["covered_before"]
    # Credit each newly covered home to the new site that now serves it.
    pos = {int(s): i for i, s in enumerate(table["site"].to_numpy())}
    served_by = np.array([pos.get(int(w), -1) for w in which_after])
    pop = homes["population"].to_numpy()
    proposed["population_newly_covered"] = [
        float(pop[newly.to_numpy() & (served_by == i)].sum()) for i in range(len(proposed))
    ]
    proposed["homes_newly_covered"] = [
        int((newly.to_numpy() & (served_by == i)).sum()) for i in range(len(proposed))
    ]
    from planner.tradeoff import add_newly_served

    proposed = add_newly_served(proposed, homes, served_by, minutes, slower)
    before_after = coverage_before_after(
        homes,
        sorted(set(settings.minutes) | {int(minutes) if float(minutes).is_integer() else minutes}),
        elderly_time_factor=slower,
    )
    seconds["report"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    counts = {
        "homes": len(homes),
        "population": float(pop.sum()),
        "elderly": float(homes["elderly"].sum()),
        "demand_rows": len(demand),
        "model_rows": len(base_row),
        "candidates": len(candidates),
        "cost_matrix_entries": int(cost.nnz),
        "homes_no_candidate_within_reach": int(
            np.isin(row_of_home, unreachable[unreachable < len(demand)]).sum()
        ),
        "elderly_no_candidate_within_reach": float(
            homes["elderly"]
            .to_numpy()[np.isin(row_of_home, base_row[unreachable[unreachable >= len(demand)]])]
            .sum()
        ),
        "homes_newly_covered": int(newly.sum()),
        "population_newly_covered": float(pop[newly.to_numpy()].sum()),
    }
    from planner.tradeoff import planner_units

    beyond = np.isin(row_of_home, unreachable[unreachable < len(demand)])
    report = {
        "planner_units": planner_units(homes, minutes, slower),
        "homes_beyond_every_candidate": [str(h) for h in homes["home_id"].to_numpy()[beyond]],
    }
    if plan is not None:
        report["standards"] = {**plan.summary(), "new_sites_asked": new}
        if model in ("mclp", "lscp"):  # by the standards lscp covers the most it can with the fewest
            report["objective_unit"] = "weighted demand covered"
    return SitingResult(
        region=region.name,
        category=cat,
        model=model,
        minutes=minutes,
        proposed=proposed,
        existing=existing,
        homes=homes,
        before_after=before_after,
        solution=solution,
        seconds=seconds,
        counts=counts,
        elderly_time_factor=slower if len(base_row) > len(demand) else 1.0,
        roads=roads_gdf(net),
        report=report,
    )


def _candidates(region: Region, net: Network, candidates: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """The candidates given (checked, in the region's CRS), or those of the region."""
    if candidates is None:
        candidates = candidates_from_region(region, net)
    else:
        from planner.categories import check_places

        check_places(candidates, "candidates")
        candidates = candidates.to_crs(region.crs).reset_index(drop=True)
    if len(candidates) == 0:
        raise InputError("no candidate sites: give --candidates FILE")
    return candidates


def _model(model: str, cost, weights: np.ndarray, new: int | None, minutes: float, fixed: np.ndarray, caps):
    """The location model of :data:`MODELS` on the cost matrix."""
    from planner import optimize

    if model == "pmedian":
        return optimize.PMedian.from_cost_matrix(cost, weights, p=new, fixed=fixed, capacities=caps)
    if model == "mclp":
        return optimize.MaxCoverage.from_cost_matrix(
            cost, weights, p=new, minutes=minutes, fixed=fixed, capacities=caps
        )
    if model == "lscp":
        return optimize.SetCover.from_cost_matrix(
            cost, weights, minutes=minutes, fixed=fixed, capacities=caps
        )
    return optimize.PCenter.from_cost_matrix(cost, weights, p=new, fixed=fixed, capacities=caps)


def _times_before_after(
    net: Network,
    h_access: Access,
    sites: Access,
    homes: gpd.GeoDataFrame,
    fixed: np.ndarray,
    new_sites: np.ndarray,
    limit_s: float,
    minutes: float,
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Homes with ``time_before_s``, ``time_after_s``, ``covered_before``, ``covered_after``
    (exact, by two sweeps), and the site serving each home after."""
    targets = TargetGraph(net, sites, "time")
    before_node, before_which = targets.sweep(fixed, limit=limit_s)
    after_node, after_which = targets.sweep(np.concatenate([fixed, new_sites]), limit=limit_s)
    tb, _ = trip_costs(net, h_access, before_node, before_which)
    ta, which_after = trip_costs(net, h_access, after_node, after_which)
    homes = homes.copy()
    homes["time_before_s"] = np.where(np.isfinite(tb), tb, np.nan)
    homes["time_after_s"] = np.where(np.isfinite(ta), ta, np.nan)
    homes["covered_before"] = np.nan_to_num(tb, nan=np.inf) <= 60 * minutes
    homes["covered_after"] = np.nan_to_num(ta, nan=np.inf) <= 60 * minutes
    return homes, which_after


def check_options(model: str, new: int | None, minutes: float, capacities=None) -> float:
    """Check a siting request before any work; returns ``minutes`` as a float.

    ``new`` must be a whole number ≥ 1 (except for ``lscp``, which finds it), ``minutes``
    positive and at most ``settings.max_threshold_minutes``, capacities positive and finite.
    """
    if model not in MODELS:
        raise InputError(f"--model {model!r}: use one of {', '.join(MODELS)}")
    if model != "lscp" and (new is None or isinstance(new, bool) or int(new) != new or new < 1):
        raise InputError(f"--new {new}: give the number of new sites for {model}, a whole number ≥ 1")
    if model == "lscp" and new is not None:
        raise InputError(
            f"--new {new}: lscp finds the fewest new sites itself; leave --new out (or use mclp)"
        )
    try:
        minutes = float(minutes)
    except (TypeError, ValueError):
        raise InputError(f"--minutes {minutes!r}: give the service standard in minutes, e.g. 15") from None
    check_threshold(minutes)
    if capacities is not None:
        caps = np.atleast_1d(np.asarray(capacities, float))
        bad = np.flatnonzero(~(np.isfinite(caps) & (caps > 0)))
        if len(bad):
            raise InputError(
                f"capacity {caps[bad[0]]:g}: a site's capacity must be a positive number of weighted "
                "residents (leave --capacity out for sites without a limit)"
            )
    return minutes


def elderly_rows(cost, demand: pd.DataFrame, time_factor: float):
    """Demand rows with the elderly apart, at their own pace.

    Each row with elderly residents is split: the others (with the children's and disabled
    residents' priority weights) keep the row and its travel times; the elderly (with their
    priority weight) get a new row whose times are ``time_factor`` × longer (walking at
    ``settings.elderly_walk_speed_mps``). Total weight is unchanged. With ``time_factor``
    1 nothing is split.

    Returns
    -------
    cost : scipy.sparse.csr_matrix
        The rows given, then one row per demand row with elderly.
    weights : (n_rows,) float array
    base_row : (n_rows,) int array
        The demand row each row comes from.
    """
    from scipy import sparse

    from planner import optimize

    n = len(demand)
    elderly = demand["elderly"].to_numpy(float)
    has = np.flatnonzero(elderly > 0) if time_factor != 1.0 else np.empty(0, dtype=np.int64)
    if len(has) == 0:
        weights = optimize.demand_weights(
            demand["population"], demand["elderly"], demand["children"], demand["disabled"]
        )
        return cost, weights, np.arange(n)
    others = optimize.demand_weights(
        np.maximum(demand["population"].to_numpy(float) - elderly, 0.0),
        None,
        demand["children"],
        demand["disabled"],
    )
    elderly_w = optimize.demand_weights(elderly[has], elderly[has])  # each elderly resident: 1 + priority
    cost = sparse.csr_matrix(cost)
    slow = cost[has].multiply(time_factor).tocsr()
    return (
        sparse.vstack([cost, slow], format="csr"),
        np.concatenate([others, elderly_w]),
        np.concatenate([np.arange(n), has]),
    )


def demand_rows(
    net: Network, access: Access, homes: gpd.GeoDataFrame, split_legs: bool = False
) -> tuple[Access, np.ndarray, pd.DataFrame]:
    """Aggregate homes to the demand rows of a cost matrix.

    One row per network node of single-entry homes (their legs averaged by population:
    exact for total travel time), one row per home with several entries (gated compounds).
    With ``split_legs`` homes share a row only when their legs are equal too: a threshold
    (coverage, worst time) then holds for each home, not for the node's average.

    Returns
    -------
    rows : Access
        The rows' network entries, for :func:`planner.network.cost_matrix`.
    row_of_home : (n_homes,) int array
    demand : DataFrame
        ``population``, ``elderly``, ``children``, ``disabled`` per row.
    """
    n = access.n_owners
    counts = np.bincount(access.owner, minlength=n)
    single = counts == 1
    first_entry = np.full(n, -1)
    first_entry[access.owner[::-1]] = np.arange(len(access.owner))[::-1]
    pop = homes["population"].to_numpy(float)
    s_homes = np.nonzero(single)[0]
    s_node = access.node[first_entry[s_homes]]
    s_leg = access.leg_m[first_entry[s_homes]]
    if split_legs:
        pairs, s_row = np.unique(np.column_stack([s_node, s_leg]), axis=0, return_inverse=True)
        s_row = s_row.ravel()
        uniq_node, leg = pairs[:, 0].astype(np.int64), pairs[:, 1]
    else:
        uniq_node, s_row = np.unique(s_node, return_inverse=True)
        w = np.maximum(pop[s_homes], 1e-9)
        leg = np.bincount(s_row, weights=s_leg * w) / np.bincount(s_row, weights=w)
    m_homes = np.nonzero(~single)[0]
    row_of_home = np.empty(n, np.int64)
    row_of_home[s_homes] = s_row
    row_of_home[m_homes] = len(uniq_node) + np.arange(len(m_homes))
    m_entries = np.isin(access.owner, m_homes)
    rows = Access(
        owner=np.concatenate([np.arange(len(uniq_node)), row_of_home[access.owner[m_entries]]]),
        node=np.concatenate([uniq_node, access.node[m_entries]]),
        leg_m=np.concatenate([leg, access.leg_m[m_entries]]),
        n_owners=len(uniq_node) + len(m_homes),
    )
    cols = ["population", "elderly", "children", "disabled"]
    demand = pd.DataFrame(
        {c: np.bincount(row_of_home, weights=homes[c].to_numpy(float), minlength=rows.n_owners) for c in cols}
    )
    return rows, row_of_home, demand


def _candidates_file(path, crs, standards: bool, file_crs, coords) -> gpd.GeoDataFrame | None:
    """A candidates file: parcels by the standards, else candidate sites."""
    if not path:
        return None
    if standards:
        from planner.candidates import parcels_from_file

        return parcels_from_file(path, crs, file_crs, coords)
    return candidates_from_file(path, crs, file_crs, coords)


def _site_runs(region: Region, category: str, news: list[int] | None, kw: dict) -> SitingResult:
    """:func:`site` for one number of new sites, or for each of a range on one network (the
    last result, with its trade-off table)."""
    if news is None or len(news) == 1:
        return site(region, category, new=news[0] if news else None, **kw)
    from planner.network import build_network
    from planner.tradeoff import solve_range

    net = build_network(region, kw["mode"])
    return solve_range(lambda p: site(region, category, new=p, network=net, **kw), news)


def _check_run(capacity, mode: str, method: str, time_limit) -> float | None:
    """Check ``planner site``'s solver options before loading anything; returns the capacity."""
    if capacity is not None:
        capacity = float(capacity)
        if not (np.isfinite(capacity) and capacity > 0):
            raise InputError(
                f"--capacity {capacity:g}: give a positive number of residents per site "
                "(leave it out for the standards' capacity, or no limit with --no-standards)"
            )
    check_mode(mode)
    if method not in ("auto", "exact", "heuristic"):
        raise InputError(f"--method {method!r}: use auto, exact or heuristic")
    if time_limit is not None and not (np.isfinite(time_limit) and time_limit > 0):
        raise InputError(f"--time-limit {time_limit:g}: give a positive number of seconds")
    return capacity


def _home_table(region: Region, homes, boundary, crs, coords, population, population_table):
    """The user's homes (if given) with their population. Homes beyond the extract are refused;
    with a boundary those outside it are left out instead."""
    from planner.demand import homes_from_file
    from planner.population import homes_with_population

    table = (
        homes_from_file(
            homes, region.crs, region=None if boundary is not None else region, file_crs=crs, coords=coords
        )
        if homes
        else None
    )
    return homes_with_population(region, table, population, population_table, crs, coords)


def _run_capacities(cand: gpd.GeoDataFrame | None, capacity: float | None, standards: bool):
    """A candidates file's capacities, else ``--capacity`` for every candidate. By the
    standards the parcels' own column is read with them and ``--capacity`` replaces the
    sizing's capacity."""
    if cand is not None and "capacity" in cand:
        return None if standards else cand["capacity"].to_numpy(float)
    return capacity


def run_site(
    osm: str | os.PathLike,
    out_dir: str | os.PathLike,
    category: str,
    model: str = "mclp",
    new: int | str | None = None,
    minutes: float | None = None,
    candidates: str | os.PathLike | None = None,
    homes: str | os.PathLike | None = None,
    facilities: str | os.PathLike | None = None,
    capacity: float | None = None,
    mode: str = "walk",
    method: str = "auto",
    time_limit: float | None = None,
    boundary=None,
    map_html: bool = True,
    name: str | None = None,
    elderly_pace: bool = True,
    standards: bool = True,
    colocate: bool = False,
    crs=None,
    coords: str | None = None,
    population=None,
    population_table=None,
    out_coords: str | None = None,
) -> SitingResult:
    """What ``planner site`` does, from files: load, site, write ``out_dir`` atomically.

    ``new`` may be a range (``"1-12"``): each is solved, the largest written with ``tradeoff.csv``
    and its chart. ``standards`` (default True; False: the pure models), ``colocate``: see
    :func:`site` (the candidates file: parcels by the standards).

    With ``boundary``, only homes inside it count, and the region is loaded with the reach of
    ``minutes`` beyond it so facilities across it still serve them (as ``planner audit``).
    A candidates file's ``capacity`` column overrides ``capacity``. ``crs``, ``coords``,
    ``population``, ``population_table`` and ``out_coords`` are as for
    :func:`planner.audit.run_audit`.
    """
    from planner import coords as _coords
    from planner.categories import read_points_table
    from planner.sources import load_region, reach_m
    from planner.tradeoff import parse_new_range

    coords, out_coords = _coords.check_coords(coords), _coords.check_coords(out_coords, "--out-coords")
    cats = load_categories()
    category = resolve_key(category, cats, "--category")
    capacity = _check_run(capacity, mode, method, time_limit)
    news = parse_new_range(new)
    for p in sorted({news[0], news[-1]}) if news else [None]:  # the smallest and the largest of a range
        check_options(model, p, minutes if minutes is not None else cats[category].minutes)
    reach = reach_m([minutes or cats[category].minutes], mode) if boundary is not None else 0.0
    if isinstance(boundary, (str, os.PathLike)) and (crs is not None or coords != "wgs84"):
        boundary = read_points_table(boundary, crs=crs, coords=coords)
    region = load_region(osm, boundary=boundary, buffer_m=reach, name=name)
    home_table = _home_table(region, homes, boundary, crs, coords, population, population_table)
    cand = _candidates_file(candidates, region.crs, standards, crs, coords)
    extra = facilities_from_file(facilities, region.crs, cats, crs, coords) if facilities else None
    kw = {
        "model": model,
        "minutes": minutes,
        "candidates": cand,
        "homes": home_table,
        "extra_facilities": extra,
        "capacities": _run_capacities(cand, capacity, standards),
        "mode": mode,
        "method": method,
        "time_limit": time_limit,
        "elderly_pace": elderly_pace,
        "boundary": boundary,
        "standards": standards,
        "colocate": colocate,
    }
    result = _site_runs(region, category, news, kw)
    result.write(out_dir, map_html=map_html, out_coords=out_coords)
    return result
