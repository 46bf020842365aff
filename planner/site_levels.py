"""Several categories sited together: nested levels, shared complexes, co-location.

One model places the facilities of several categories, of one level or of nested levels (a
15-minute health centre with the 10- and 5-minute facilities of its district), on a shared
set of candidate sites:

- a site may host several categories: a comprehensive service complex (综合服务设施 /
  邻里中心), which serves every category it hosts, as long as their floor areas together fit
  the site's space;
- ``max_sites`` bounds the number of sites (parcels) used, so one complex can beat separate
  sites;
- co-location: a category opens only where another is within ``colocation_distance_m``
  (the community health centre next to elderly care, 毗邻建设, 国办发〔2021〕56号 (十一)), a
  constraint the user switches on; an existing facility of the other category nearby counts;
- each category keeps its own target, capacity, minimum catchment and spacing
  (:class:`~planner.optimize.constrained.ConstrainedCoverage`).

:class:`DistrictModel` is the programme (HiGHS via :func:`scipy.optimize.milp`);
:func:`site_district` builds it on a region (``planner site --category a,b,c``).

Nested levels are sited in this one model rather than in sequence: each category keeps its
level's target (a 15-minute centre 1000 m, its 5-minute facilities 300 m), so the centre's
site hosts the lower-level facilities where that serves their homes (a complex), and they
spread to sites of their own where it does not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import optimize as sopt
from scipy import sparse

from planner._errors import InputError
from planner.optimize.constrained import ConstrainedCoverage, CoverageBlock


@dataclass
class CategoryPart:
    """One category of a district model.

    ``model`` is built on a cost matrix whose columns are the category's existing facilities
    (``n_existing``, fixed) then the shared candidates; ``floor_m2``: the space one facility
    takes on a site; ``max_new``: at most this many new facilities of the category (None: no
    limit but the sites')."""

    key: str
    model: ConstrainedCoverage
    n_existing: int
    floor_m2: float = 0.0
    max_new: int | None = None


@dataclass
class DistrictPlan:
    """The answer: per category the shared candidates it opens at and its covered weight."""

    sites: dict[str, np.ndarray]
    covered: dict[str, float]
    assignment: dict[str, np.ndarray]
    objective: float
    status: str
    seconds: float
    #: Category → {candidate: residents (loads) it takes}, for each new facility.
    site_loads: dict = field(default_factory=dict)

    @property
    def used_sites(self) -> np.ndarray:
        """Candidates hosting at least one new facility."""
        return np.unique(np.concatenate([*self.sites.values(), np.zeros(0, np.int64)]).astype(np.int64))

    @property
    def complexes(self) -> dict[int, list[str]]:
        """Candidates hosting two or more categories → the categories they host."""
        hosts: dict[int, list[str]] = {}
        for key, s in self.sites.items():
            for j in s:
                hosts.setdefault(int(j), []).append(key)
        return {j: keys for j, keys in hosts.items() if len(keys) > 1}


class DistrictModel:
    """Several categories on shared candidate sites (see the module doc).

    Parameters
    ----------
    parts : list of CategoryPart
    site_space_m2 : array, optional
        Space of each shared candidate (``inf``: no limit); the hosted categories'
        ``floor_m2`` must fit in it.
    max_sites : int, optional
        At most this many candidate sites used.
    colocate : list of (str, str), optional
        ``(a, b)``: a new facility of ``a`` opens only with one of ``b`` within reach
        (``adjacent``), new or existing (``existing_near[b]``).
    adjacent : (m, m) bool array, optional
        Which candidates are next to which (a candidate is next to itself).
    existing_near : dict, optional
        Category → (m,) bool: candidates with an existing facility of it within reach.
    """

    def __init__(
        self,
        parts: list[CategoryPart],
        site_space_m2=None,
        max_sites: int | None = None,
        colocate=(),
        adjacent=None,
        existing_near=None,
    ):
        if not parts:
            raise InputError("district siting: give at least one category")
        self.parts = parts
        self.m = parts[0].model.cost.shape[1] - parts[0].n_existing
        for part in parts:
            if part.model.cost.shape[1] - part.n_existing != self.m:
                raise InputError(f"{part.key}: every category needs the same candidate sites")
        self.space = np.full(self.m, np.inf) if site_space_m2 is None else np.asarray(site_space_m2, float)
        self.max_sites = max_sites
        keys = [p.key for p in parts]
        for a, _ in colocate:
            if a not in keys:
                raise InputError(f"co-location: {a!r} is not among the categories sited ({', '.join(keys)})")
        self.colocate = list(colocate)
        self.adjacent = np.eye(self.m, dtype=bool) if adjacent is None else np.asarray(adjacent, bool)
        self.existing_near = existing_near or {}

    def solve(self, time_limit: float | None = None, gap: float = 1e-6) -> DistrictPlan:
        """Solve with HiGHS."""
        t0 = time.perf_counter()
        blocks = [p.model.block() for p in self.parts]
        sizes = [len(b.row) + len(b.new_cols) for b in blocks]
        start = np.concatenate([[0], np.cumsum(sizes)])
        n_var = int(start[-1]) + self.m
        s0 = int(start[-1])
        rows, lo, hi = [_pad(sparse.block_diag([b.A for b in blocks], format="csr"), n_var)], [], []
        lo += [np.concatenate([b.lo for b in blocks])]
        hi += [np.concatenate([b.hi for b in blocks])]
        xcol = {}  # category → (shared candidate → variable index)
        for part, b, st in zip(self.parts, blocks, start[:-1], strict=True):
            var = np.full(self.m, -1, np.int64)
            var[b.new_cols - part.n_existing] = st + len(b.row) + np.arange(len(b.new_cols))
            xcol[part.key] = var
            if part.max_new is not None and len(b.new_cols):
                rows.append(_row_of(var[var >= 0], np.ones((var >= 0).sum()), n_var))
                lo.append([0.0])
                hi.append([float(part.max_new)])
        self._site_rows(xcol, s0, n_var, rows, lo, hi)
        self._colocation_rows(xcol, n_var, rows, lo, hi)
        obj = np.zeros(n_var)
        for b, st in zip(blocks, start[:-1], strict=True):
            obj[st : st + len(b.row)] = -(b.weight - b.tie_cost)
        # A site is used only when it hosts something (a tiny cost on each).
        w_min = min(
            (float(b.weight[b.weight > 0].min()) for b in blocks if (b.weight > 0).any()), default=1.0
        )
        obj[s0:] = 1e-5 * w_min
        options = {"mip_rel_gap": gap, "disp": False}
        if time_limit is not None:
            options["time_limit"] = float(time_limit)
        res = sopt.milp(
            obj,
            constraints=sopt.LinearConstraint(
                sparse.vstack(rows, format="csr"), np.concatenate(lo), np.concatenate(hi)
            ),
            integrality=np.ones(n_var),
            bounds=sopt.Bounds(0, 1),
            options=options,
        )
        if res.x is None:
            raise InputError(
                f"district siting: HiGHS found no solution ({res.message}); "
                "loosen the constraints or give a longer --time-limit"
            )
        return self._answer(np.round(res.x), blocks, start, xcol, res.status, t0)

    def _site_rows(self, xcol, s0, n_var, rows, lo, hi) -> None:
        """x ≤ s (a facility needs its site), the hosted floor areas within the site's space,
        and the number of sites."""
        for part in self.parts:
            var = xcol[part.key]
            j = np.flatnonzero(var >= 0)
            if len(j):
                rows.append(
                    sparse.csr_matrix(
                        (
                            np.r_[np.ones(len(j)), -np.ones(len(j))],
                            (np.r_[np.arange(len(j)), np.arange(len(j))], np.r_[var[j], s0 + j]),
                        ),
                        shape=(len(j), n_var),
                    )
                )
                lo.append(np.full(len(j), -np.inf))
                hi.append(np.zeros(len(j)))
        finite = np.flatnonzero(np.isfinite(self.space))
        for j in finite:
            idx = [(xcol[p.key][j], p.floor_m2) for p in self.parts if xcol[p.key][j] >= 0 and p.floor_m2 > 0]
            if idx:
                rows.append(_row_of([i for i, _ in idx], [f for _, f in idx], n_var))
                lo.append([-np.inf])
                hi.append([float(self.space[j])])
        if self.max_sites is not None:
            rows.append(_row_of(s0 + np.arange(self.m), np.ones(self.m), n_var))
            lo.append([0.0])
            hi.append([float(self.max_sites)])

    def _colocation_rows(self, xcol, n_var, rows, lo, hi) -> None:
        """x_a[j] ≤ Σ x_b[j'] over j' next to j, unless an existing b is next to j."""
        for a, b in self.colocate:
            va = xcol[a]
            vb = xcol.get(b, np.full(self.m, -1, np.int64))
            near = np.asarray(self.existing_near.get(b, np.zeros(self.m, bool)), bool)
            for j in np.flatnonzero((va >= 0) & ~near):
                partners = vb[self.adjacent[j] & (vb >= 0)]
                rows.append(_row_of(np.r_[va[j], partners], np.r_[1.0, -np.ones(len(partners))], n_var))
                lo.append([-np.inf])
                hi.append([0.0])

    def _answer(self, xv, blocks: list[CoverageBlock], start, xcol, status_code, t0) -> DistrictPlan:
        sites, covered, assignment, site_loads = {}, {}, {}, {}
        for part, b, st in zip(self.parts, blocks, start[:-1], strict=True):
            var = xcol[part.key]
            sites[part.key] = np.flatnonzero((var >= 0) & (xv[np.maximum(var, 0)] > 0.5))
            used = np.flatnonzero(xv[st : st + len(b.row)] > 0.5)
            a = b.fixed_assignment.copy()
            a[b.row[used]] = b.col[used]
            assignment[part.key] = a
            covered[part.key] = float(part.model.weights[a >= 0].sum())
            site_loads[part.key] = {
                int(j): float(part.model.loads[a == j + part.n_existing].sum()) for j in sites[part.key]
            }
        return DistrictPlan(
            sites=sites,
            covered=covered,
            assignment=assignment,
            objective=sum(covered.values()),
            status="optimal" if status_code == 0 else "feasible",
            seconds=time.perf_counter() - t0,
            site_loads=site_loads,
        )


@dataclass
class DistrictResult:
    """A district siting: the sites used and what each category gains.

    ``sites``: one row per candidate used (``candidate_id``, ``source``, ``name``, ``uses``,
    ``categories`` hosted, ``complex``, ``people_assigned`` per category as text), points in
    the region's CRS; ``coverage``: per category, people and elderly within its target before
    and after, and its new sites."""

    region: str
    sites: gpd.GeoDataFrame
    coverage: pd.DataFrame
    plan: DistrictPlan
    settings: dict
    #: The region's extent (WGS84 west, south, east, north), for a map with no site.
    bounds: tuple = (0.0, 0.0, 0.0, 0.0)

    def summary(self) -> dict:
        return {
            "region": self.region,
            "sites_used": len(self.sites),
            "complexes": int(self.sites["complex"].sum()),
            "objective": self.plan.objective,
            "objective_unit": "weighted demand covered",
            "status": self.plan.status,
            "coverage": self.coverage.to_dict(orient="records"),
            **self.settings,
        }

    def write(self, out_dir, map_html: bool = True) -> None:
        """``district_sites.gpkg``, ``district_coverage.csv``, ``summary.json`` and
        ``map.html`` (the sites used, complexes apart), atomically."""
        import json

        from planner._io import atomic_dir

        with atomic_dir(out_dir) as tmp:
            if map_html:
                self.write_map(tmp / "map.html")
            if len(self.sites):
                self.sites.to_crs(4326).to_file(tmp / "district_sites.gpkg", layer="sites", driver="GPKG")
            from planner import settings
            from planner.tables import write_tables

            # Excel-ready like every table planner writes (BOM, whole people; --excel: site.xlsx).
            write_tables(
                tmp, {"district_coverage": self.coverage}, excel=settings.excel, workbook="site.xlsx"
            )
            (tmp / "summary.json").write_text(
                json.dumps(self.summary(), ensure_ascii=False, indent=2, default=float), encoding="utf-8"
            )

    def write_map(self, path) -> None:
        """The sites on a map: complexes in purple, single-use sites in blue; each popup
        names the categories hosted and the residents each takes over."""
        import folium

        from planner import maps

        sites = self.sites.to_crs(4326)
        sites["colour"] = np.where(sites["complex"], "#7b3294", "#2c7bb6")
        if len(sites):
            b = sites.total_bounds
            bounds = (b[0] - 0.005, b[1] - 0.005, b[2] + 0.005, b[3] + 0.005)
        else:
            bounds = (self.bounds[0], self.bounds[1], self.bounds[2], self.bounds[3])
        m = maps.base_map(bounds, padding_top_left=(20, 80), padding_bottom_right=(200, 20))
        shown = ["candidate_id", "name", "uses", "categories", "people_assigned"]
        if len(sites):
            maps.add_points(
                m,
                sites[[*shown, "colour", "geometry"]],
                "colour",
                radius=9,
                popup_columns=shown,
                name="建议场地 Sites",
            )
        maps.add_legend(
            m,
            "场地 Sites",
            [("#7b3294", "综合服务设施 Shared complex"), ("#2c7bb6", "单项设施 One category")],
        )
        maps.add_title(
            m,
            f"{self.region} — 多类设施选址 district siting",
            ", ".join(f"{r.category} +{r.new_sites}" for r in self.coverage.itertuples()),
        )
        folium.LayerControl(collapsed=False).add_to(m)
        maps.save_map(m, path)

    def console_lines(self) -> list[str]:
        complexes = int(self.sites["complex"].sum()) if len(self.sites) else 0
        lines = [
            f"{len(self.sites)} sites used, {complexes} shared complexes (综合服务设施); "
            f"status {self.plan.status}"
        ]
        lines += [
            f"  {row.category}: {row.new_sites} new; people within target {row.people_before:,.0f} → "
            f"{row.people_after:,.0f}, elderly {row.elderly_before:,.0f} → {row.elderly_after:,.0f}"
            for row in self.coverage.itertuples()
        ]
        lines += [f"  {row.candidate_id} ({row.uses}): {row.categories}" for row in self.sites.itertuples()]
        return lines


def site_district(
    region,
    categories: list[str],
    max_sites: int | None = None,
    colocate: bool = False,
    candidates: gpd.GeoDataFrame | None = None,
    mode: str = "walk",
    time_limit: float | None = None,
    categories_file=None,
) -> DistrictResult:
    """Site several categories together on the region's land (or the user's parcels).

    Each category by the standards (:mod:`planner.site_standards`: sized candidates,
    capacities, minimum catchment and spacing); a candidate may host several (a complex, within
    its floor space, else its land area); at most ``max_sites`` sites; ``colocate``: a new
    community health centre only with elderly care within ``settings.colocation_distance_m``.
    """
    from planner import settings
    from planner.access import homes_on_network, stack_access
    from planner.candidates import land_candidates
    from planner.categories import load_categories, region_facilities, resolve_key
    from planner.network import cost_matrix, geometry_access, point_access
    from planner.site_standards import row_people
    from planner.siting import demand_rows, elderly_rows

    cats = load_categories(categories_file)
    keys = list(dict.fromkeys(resolve_key(k, cats, "--category") for k in categories))
    if len(keys) < 2:
        raise InputError("--category: give two or more categories, comma-separated, to site them together")
    on_net = homes_on_network(region, mode)
    net, homes, h_access = on_net.network, on_net.homes, on_net.access
    cand = (land_candidates(region) if candidates is None else candidates.to_crs(region.crs)).reset_index(
        drop=True
    )
    if len(cand) == 0:
        raise InputError(f"{region.source}: no land or building candidates mapped; give --candidates FILE")
    cxy = shapely.get_coordinates(cand.geometry.to_numpy())
    rows, _, demand = demand_rows(net, h_access, homes, split_legs=True)
    slower = net.walk_speed_mps / settings.elderly_walk_speed_mps if net.mode == "walk" else 1.0
    fns = (
        stack_access,
        geometry_access,
        point_access,
        cost_matrix,
        region_facilities,
        row_people,
        elderly_rows,
    )
    parts, existing, info = [], {}, {}
    for key in keys:
        part, existing[key], info[key] = _district_part(
            cats[key], region, net, rows, demand, cand, cxy, slower, fns
        )
        parts.append(part)
    space = _site_space(cand)
    pairs, near = _colocation_rule(keys, colocate, cxy, existing, cand)
    model = DistrictModel(
        parts,
        site_space_m2=space,
        max_sites=max_sites,
        colocate=pairs,
        adjacent=adjacency(cxy, settings.colocation_distance_m) if pairs else None,
        existing_near=near,
    )
    plan = model.solve(time_limit=time_limit)
    return DistrictResult(
        region=region.name,
        sites=_district_sites(plan, parts, cand),
        coverage=_district_coverage(plan, parts, demand, slower),
        plan=plan,
        bounds=tuple(
            gpd.GeoSeries([shapely.box(*homes.total_bounds)], crs=homes.crs).to_crs(4326).total_bounds
        ),
        settings={
            "colocate": bool(pairs),
            "max_sites": max_sites,
            "colocation_distance_m": settings.colocation_distance_m,
            "categories": info,
        },
    )


def _colocation_rule(keys: list[str], colocate: bool, cxy: np.ndarray, existing: dict, cand) -> tuple:
    """The pairs of categories built next to each other (``colocate``) and, per partner
    category, the candidates next to one of its existing facilities."""
    from planner import settings

    if not colocate:
        return [], {}
    if not {"health_centre", "elderly_care"} <= set(keys):
        raise InputError(
            "--colocate: site health_centre and elderly_care together (--category "
            "health_centre,elderly_care,...) for the health centre to stand next to elderly care"
        )
    ex = existing.get("elderly_care", cand.iloc[:0])
    return [("health_centre", "elderly_care")], {
        "elderly_care": existing_within(cxy, ex, settings.colocation_distance_m)
    }


def run_district(
    osm,
    out_dir,
    categories: str,
    new: int | str | None = None,
    colocate: bool = False,
    candidates=None,
    mode: str = "walk",
    time_limit: float | None = None,
    name: str | None = None,
    standards: bool = True,
    map_html: bool = True,
) -> DistrictResult:
    """What ``planner site --category a,b,c`` does: load, :func:`site_district`, write.

    ``new``: at most this many sites (parcels) in all; ``candidates``: a parcels file.
    """
    from planner.candidates import parcels_from_file
    from planner.options import check_mode
    from planner.sources import load_region
    from planner.tradeoff import parse_new_range

    if not standards:
        raise InputError(
            "--category a,b,c sites several categories by the standards: leave out --no-standards"
        )
    check_mode(mode)
    news = parse_new_range(new)
    if news is not None and len(news) > 1:
        raise InputError(f"--new {new}: with several categories give one number, the most sites to use")
    region = load_region(osm, name=name)
    parcels = parcels_from_file(candidates, region.crs) if candidates else None
    keys = [k.strip() for k in categories.split(",") if k.strip()]
    result = site_district(
        region,
        keys,
        max_sites=news[0] if news else None,
        colocate=colocate,
        candidates=parcels,
        mode=mode,
        time_limit=time_limit,
    )
    result.write(out_dir, map_html=map_html)
    return result


def _district_part(cat, region, net, rows, demand, cand, cxy, slower, fns):
    """One category's part: its existing facilities first, the shared candidates after (those
    too small for it left without entries)."""
    from planner.candidates import sized_candidates
    from planner.optimize.constrained import conflict_pairs
    from planner.sizing import existing_capacity, fits, sizing_for

    stack_access, geometry_access, point_access, cost_matrix, region_facilities, row_people, elderly_rows = (
        fns
    )
    sizing = sizing_for(cat)
    ex = region_facilities(region.features, [cat])
    ok = fits(sizing, cand["land_m2"].to_numpy(float), cand["floor_m2"].to_numpy(float))
    sized, _ = sized_candidates(cand, sizing)  # capacities of those that fit, in order
    cap = np.zeros(len(cand))
    cap[ok] = sized["capacity"].to_numpy(float)
    acc = stack_access(geometry_access(net, ex.geometry.to_numpy()), point_access(net, cxy))
    cost = cost_matrix(net, rows, acc, cutoff=60.0 * cat.minutes).tocsc()
    # Candidates too small for the category lose their entries (a stored zero is a real time).
    keep_col = np.r_[np.ones(len(ex), bool), ok]
    coo = cost.tocoo()
    k = keep_col[coo.col]
    cost = sparse.csr_matrix((coo.data[k], (coo.row[k], coo.col[k])), shape=coo.shape)
    cost, weights, base_row = elderly_rows(cost, demand, slower)
    tags = region.features[["osm_id", "tags"]].rename(columns={"osm_id": "facility_id"})
    ex_cap = (
        existing_capacity(sizing, ex.merge(tags, on="facility_id", how="left")) if len(ex) else np.zeros(0)
    )
    xy = np.vstack(
        [shapely.get_coordinates(shapely.point_on_surface(ex.geometry.to_numpy())).reshape(-1, 2), cxy]
    )
    model = ConstrainedCoverage.from_cost_matrix(
        cost,
        weights,
        p=None,
        minutes=cat.minutes,
        fixed=np.arange(len(ex)),
        loads=row_people(demand, base_row),
        capacities=np.r_[ex_cap, cap],
        min_load=np.r_[np.zeros(len(ex)), np.full(len(cand), sizing.min_catchment_residents)],
        conflicts=conflict_pairs(xy, sizing.min_spacing_m, fixed=np.arange(len(ex))),
    )
    need = sizing.floor_m2 or sizing.land_m2 or 0.0
    part = CategoryPart(cat.key, model, len(ex), floor_m2=float(need))
    part.base_row = base_row
    return (
        part,
        ex,
        {
            "fits": int(ok.sum()),
            "existing": len(ex),
            "space_m2": need,
            "min_catchment_residents": sizing.min_catchment_residents,
            "min_spacing_m": sizing.min_spacing_m,
        },
    )


def _site_space(cand: pd.DataFrame) -> np.ndarray:
    """Space a site offers its facilities: its floor area where known, else its land."""
    floor = cand["floor_m2"].to_numpy(float)
    land = cand["land_m2"].to_numpy(float)
    space = np.where(np.isfinite(floor), floor, land)
    return np.where(np.isfinite(space), space, np.inf)


def _district_sites(
    plan: DistrictPlan, parts: list[CategoryPart], cand: gpd.GeoDataFrame
) -> gpd.GeoDataFrame:
    from planner.site_standards import describe_use

    table = plan_table(plan, cand)
    used = plan.used_sites
    sub = cand.iloc[used].reset_index(drop=True)
    people = [
        "; ".join(
            f"{part.key} {plan.site_loads[part.key][int(j)]:,.0f}"
            for part in parts
            if j in plan.sites[part.key]
        )
        for j in used
    ]
    return gpd.GeoDataFrame(
        {
            "candidate_id": sub["candidate_id"].to_numpy(),
            "source": sub["source"].to_numpy(),
            "name": sub["name"].to_numpy(),
            "uses": [
                describe_use(s, a, f)
                for s, a, f in zip(sub["source"], sub["land_m2"], sub["floor_m2"], strict=True)
            ],
            "categories": table["categories"].to_numpy(),
            "complex": table["complex"].to_numpy(bool),
            "people_assigned": people,
        },
        geometry=sub.geometry.to_numpy(),
        crs=cand.crs,
    )


def _district_coverage(
    plan: DistrictPlan, parts: list[CategoryPart], demand: pd.DataFrame, slower: float
) -> pd.DataFrame:
    """People and elderly within each category's target before (existing facilities) and after."""
    out = []
    n = len(demand)
    for part in parts:
        base_row = part.base_row
        loads = part.model.loads
        cost = part.model.cost
        within = cost.copy()
        within.data = (within.data <= 60.0 * part.model.minutes + 1e-9).astype(float)
        before = (
            np.asarray(within[:, : part.n_existing].sum(axis=1)).ravel() > 0
            if part.n_existing
            else np.zeros(cost.shape[0], bool)
        )
        after = before | (plan.assignment[part.key] >= 0)
        is_eld = np.arange(len(base_row)) >= n
        eld_split = np.zeros(n, bool)
        eld_split[base_row[n:]] = True
        eld_base = np.where(eld_split, 0.0, demand["elderly"].to_numpy(float))  # elderly left in base rows
        eld = np.r_[eld_base, loads[n:]]
        out.append(
            {
                "category": part.key,
                "new_sites": len(plan.sites[part.key]),
                "people_before": float(loads[before].sum()),
                "people_after": float(loads[after].sum()),
                "elderly_before": float(eld[before].sum()),
                "elderly_after": float(eld[after].sum()),
                "elderly_rows_apart": bool(is_eld.any()),
            }
        )
    return pd.DataFrame(out)


def adjacency(xy: np.ndarray, distance_m: float) -> np.ndarray:
    """Which candidates are within ``distance_m`` of each other (straight line; each of
    itself), as an (m, m) bool array."""
    xy = np.asarray(xy, float)
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    return d <= distance_m


def existing_within(candidates_xy: np.ndarray, facilities: gpd.GeoDataFrame, distance_m: float) -> np.ndarray:
    """Candidates with one of ``facilities`` within ``distance_m`` (straight line to its outline)."""
    if len(facilities) == 0:
        return np.zeros(len(candidates_xy), bool)
    points = shapely.points(np.asarray(candidates_xy, float))
    tree = shapely.STRtree(facilities.geometry.to_numpy())
    hit = tree.query(points, predicate="dwithin", distance=distance_m)
    out = np.zeros(len(candidates_xy), bool)
    out[hit[0]] = True
    return out


def plan_table(plan: DistrictPlan, candidates: pd.DataFrame) -> pd.DataFrame:
    """One row per candidate used: ``candidate_id``, ``categories`` hosted (``;``-joined) and
    whether it is a complex (two or more)."""
    rows = []
    for j in plan.used_sites:
        hosted = [k for k, s in plan.sites.items() if j in s]
        rows.append(
            {
                "candidate_id": candidates["candidate_id"].iloc[j],
                "categories": ";".join(hosted),
                "complex": len(hosted) > 1,
            }
        )
    return pd.DataFrame(rows, columns=["candidate_id", "categories", "complex"])


def _row_of(cols, values, n_var) -> sparse.csr_matrix:
    cols = np.asarray(cols, np.int64)
    return sparse.csr_matrix(
        (np.asarray(values, float), (np.zeros(len(cols), np.int64), cols)), shape=(1, n_var)
    )


def _pad(a: sparse.csr_matrix, n_var: int) -> sparse.csr_matrix:
    a = sparse.csr_matrix(a)
    return sparse.hstack([a, sparse.csr_matrix((a.shape[0], n_var - a.shape[1]))], format="csr")
