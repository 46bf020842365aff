"""Estate review: check a planned estate against the rules of the Chinese standards.

A reviewer gives an estate plan (GeoJSON or GeoPackage: one ``estate`` polygon with its
households, and ``facility`` features with category and areas) and rule packs
(:mod:`planner.rules`); :func:`review` says per rule pass, fail, advice or not applicable,
with the value, the threshold, the shortfall and the clause. A rule's strength decides what a
shortfall means: ``mandatory`` (应/必须) and ``local`` rules fail the estate (exit 1),
``advisory`` (宜) rules give advice (exit 0). Levels nest: an estate carries every lower
level's facilities too, once per area of that level it holds (:mod:`planner.review_levels`). :func:`run_review` does everything the
``planner review`` command does and writes ``review.json``, ``summary.json`` and a printable
``review.html`` atomically.

Service radii are measured along the walking network: streets from ``--osm`` (walls and
fences mapped in OSM cut them) plus the plan's own ``path`` lines. Dwellings are the plan's
``residential`` features, else OSM residential buildings inside the estate, else a regular
grid of points over the estate (:data:`DWELLING_GRID_M`). With no network at all, radii fall
back to straight lines, which never overstate distance: a fail is certain, a pass is
provisional, and the report says so.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from planner import review_levels, settings
from planner._errors import InputError
from planner.maps import escape_html
from planner.rules import LEVELS, Level, Rule, RulePack, load_rulepack

#: Rule packs checked when none are named: the national ones. Provincial packs
#: (``elderly-care-<province>``) are added by name.
DEFAULT_RULES: tuple[str, ...] = ("gb50180-2018", "community-service", "elderly-childcare")
#: Feature roles a plan may use.
ROLES = ("estate", "facility", "residential", "path", "green_space")
#: Spacing of the dwelling grid when neither the plan nor OSM has residential buildings.
DWELLING_GRID_M: float = 20.0
#: Bounds beyond which an input value is a mistake (wrong unit, wrong column) rather than a
#: plan: the largest facility of GB 50180 (a care home) is 17,500 m² of floor area.
MAX_FLOOR_AREA_M2: float = 200_000.0
MAX_LAND_AREA_M2: float = 1_000_000.0
#: A 15-minute life circle, the largest level, has 17,000–32,000 dwellings.
MAX_HOUSEHOLDS: int = 100_000
#: High-rise estates reach a few hundred dwellings per hectare; far above that the boundary
#: or the households are wrong.
MAX_HOUSEHOLDS_PER_HA: float = 1_500.0
#: A planned facility farther than this from the estate is in the wrong place (or CRS).
MAX_FACILITY_DISTANCE_M: float = 10_000.0
#: Persons per household outside this range: the population or the households are wrong.
_PERSONS_PER_HOUSEHOLD_RANGE = (0.5, 10.0)
#: Values within this relative tolerance of a threshold count as equal (floating point).
_REL_TOL = 1e-9
#: ``advice``: an advisory (宜) rule that is not met; it never fails the estate.
_STATUSES = ("pass", "fail", "advice", "not_applicable")
#: Measures evaluated by :mod:`planner.review_levels` (they look at the plan as a whole).
_PLAN_MEASURES = {"green_space_per_resident", "green_space_park", "activity_share", "floor_area_share",
                  "adjacent_to", "facility_area_min_each"}
#: Planned paths get a vertex at least this often (snapping goes to vertices).
_PATH_VERTEX_M = 10.0
#: A path end this close to another path joins it (drawings and lon/lat rounding leave
#: T-junctions a few millimetres apart).
_PATH_SNAP_M = 1.0


# --------------------------------------------------------------------------------------------
# data


@dataclass
class Plan:
    """An estate plan read and checked by :func:`read_plan`, in a metric CRS.

    Attributes
    ----------
    source : str
        File the plan came from.
    name : str
        The estate's ``name`` property, else the file stem.
    crs : pyproj.CRS
        Metric CRS of every geometry.
    estate : shapely Polygon or MultiPolygon
        The estate boundary.
    households : int
        Dwellings (户/套).
    population : float
        Residents: the plan's ``population`` or households × ``settings.persons_per_household``.
    population_given : bool
    level : str
        ``15min``, ``10min``, ``5min`` or ``block``.
    level_source : str
        ``"plan"`` or how it was derived.
    facilities : geopandas.GeoDataFrame
        ``facility_id``, ``category``, ``name``, ``floor_area_m2``, ``land_area_m2``,
        ``places`` (NaN when not given), ``feature`` (1-based feature number in the file).
    residential : geopandas.GeoDataFrame
        ``households`` (NaN when not given) and geometry of planned residential buildings.
    paths : geopandas.GeoDataFrame
        Planned walkways (lines).
    notes : list of str
    green : geopandas.GeoDataFrame
        Public green spaces (``green_space`` features): ``feature``, ``name``, ``area_m2``,
        ``level`` (given or None; :func:`review` fills in the derived one).
    total_floor_area_m2 : float or None
        The estate's total floor area above ground (estate property ``total_floor_area_m2``).
    """

    source: str
    name: str
    crs: CRS
    estate: Any
    households: int
    population: float
    population_given: bool
    level: str
    level_source: str
    facilities: gpd.GeoDataFrame
    residential: gpd.GeoDataFrame
    paths: gpd.GeoDataFrame
    notes: list[str] = field(default_factory=list)
    green: gpd.GeoDataFrame | None = None
    total_floor_area_m2: float | None = None

    def __post_init__(self):
        if self.green is None:
            self.green = gpd.GeoDataFrame({"feature": [], "name": [], "area_m2": [], "level": []},
                                          geometry=[], crs=self.crs)

    @property
    def area_m2(self) -> float:
        return float(self.estate.area)

    def to_crs(self, crs) -> "Plan":
        """The same plan in another (metric) CRS."""
        crs = CRS.from_user_input(crs)
        if crs == self.crs:
            return self
        estate = gpd.GeoSeries([self.estate], crs=self.crs).to_crs(crs).iloc[0]
        return replace(
            self, crs=crs, estate=estate, facilities=self.facilities.to_crs(crs),
            residential=self.residential.to_crs(crs), paths=self.paths.to_crs(crs),
            notes=list(self.notes), green=self.green.to_crs(crs),
        )


@dataclass
class RuleResult:
    """The outcome of one rule.

    ``value`` and ``shortfall`` are in the rule's unit; ``shortfall`` is how much is missing
    to reach the threshold (0 on pass; None when not applicable or when the value is above
    a range, see ``details["excess"]``).
    """

    rule: Rule
    status: str
    value: float | None
    shortfall: float | None
    note: str = ""
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """One JSON object: the keys of the issue first, then context."""
        r = self.rule
        out = {
            "rule_id": r.id,
            "status": self.status,
            "value": _json_number(self.value),
            "threshold": r.threshold,
            "unit": r.unit,
            "shortfall": _json_number(self.shortfall),
            "clause": r.clause,
            "pack": r.pack,
            "title_zh": r.title_zh,
            "title_en": r.title_en,
            "source": r.source,
            "confirmed": r.confirmed,
            "strength": r.strength,
            "level": r.level,
            "measure": r.measure,
            "category": r.category,
            "note": "; ".join(x for x in (self.note, r.note) if x),
        }
        if r.measure == "service_radius_share":
            out["min_share"] = r.min_share
        out.update({k: _json_value(v) for k, v in self.details.items()})
        return out


@dataclass
class Review:
    """Everything :func:`review` found: the results and what the report draws."""

    plan: Plan
    packs: list[RulePack]
    results: list[RuleResult]
    dwellings: gpd.GeoDataFrame
    dwelling_source: str
    existing: gpd.GeoDataFrame
    distance_method: str
    network: Any = None
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    category_labels: dict[str, str] = field(default_factory=dict)
    osm: str | None = None
    #: Per level the estate contains: (areas of that level, how it was worked out).
    level_areas: dict[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in _STATUSES}

    @property
    def passed(self) -> bool:
        """True when no mandatory or local rule fails (advice alone passes)."""
        return self.counts["fail"] == 0

    @property
    def exit_code(self) -> int:
        """0 when no mandatory or local rule fails (advice alone gives 0), 1 when any does."""
        return 0 if self.passed else 1

    def missing_facilities(self) -> list[dict]:
        """Facilities the estate lacks, per level: the presence rules not met."""
        return [
            {"rule_id": r.rule.id, "level": r.rule.level, "category": r.rule.category,
             "required": r.details.get("required"), "planned": int(r.value or 0), "strength": r.rule.strength}
            for r in self.results
            if r.rule.measure == "facility_present" and r.status in ("fail", "advice")
        ]

    def to_records(self) -> list[dict]:
        """One dict per rule, as written to ``review.json``."""
        return [r.to_dict() for r in self.results]

    def summary(self) -> dict:
        """Facts of the plan and of the review, as written to ``summary.json``."""
        p = self.plan
        unconfirmed = sum(1 for r in self.results if r.status != "not_applicable" and not r.rule.confirmed)
        return {
            "plan": p.source,
            "estate": p.name,
            "verdict": "pass" if self.passed else "fail",
            "counts": self.counts,
            "fails_by_strength": {s: sum(r.status == "fail" and r.rule.strength == s for r in self.results)
                                  for s in ("mandatory", "local")},
            "advice": [r.rule.id for r in self.results if r.status == "advice"],
            "missing_facilities": self.missing_facilities(),
            "level_areas": {k: {"areas": n, "how": how} for k, (n, how) in self.level_areas.items()},
            "applicable_rules_with_unconfirmed_values": unconfirmed,
            "households": p.households,
            "population": round(p.population, 1),
            "population_given": p.population_given,
            "level": p.level,
            "level_source": p.level_source,
            "estate_area_m2": round(p.area_m2, 1),
            "planned_facilities": len(p.facilities),
            "existing_facilities": len(self.existing),
            "dwelling_points": len(self.dwellings),
            "dwelling_source": self.dwelling_source,
            "distance_method": self.distance_method,
            "osm": self.osm,
            "packs": [
                {"id": k.id, "title_zh": k.title_zh, "title_en": k.title_en, "source": k.source,
                 "scope": k.scope, "province": k.province, "city": k.city, "file": str(k.path)}
                for k in self.packs
            ],
            "notes": p.notes + self.notes,
            "elapsed_s": round(self.elapsed_s, 3),
        }


# --------------------------------------------------------------------------------------------
# public API


def run_review(
    plan_path: str | os.PathLike,
    rules: Sequence[str | os.PathLike] | str | None = None,
    osm: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "review",
    categories_file: str | os.PathLike | None = None,
) -> int:
    """Review a plan and write ``out_dir/review.json``, ``summary.json`` and ``review.html``.

    Parameters
    ----------
    plan_path : path
        GeoJSON or GeoPackage plan (see ``README.md, "Plan schema"``).
    rules : list of pack ids or paths, or a comma-separated string, optional
        Default :data:`DEFAULT_RULES`.
    osm : path, optional
        OSM extract (.osm / .osm.pbf) around the estate: its streets carry the service-radius
        walks and its existing facilities count towards the radii.
    out_dir : path
        Output folder; written atomically (nothing is left behind on an error).
    categories_file : path, optional
        Extra categories (TOML, format of ``planner/data/categories.toml``) for plans and
        packs that use keys of their own.

    Returns
    -------
    int
        0 when every applicable rule passes, 1 when any fails.

    Raises
    ------
    InputError
        Bad plan, rule pack or OSM file (one line; the CLI prints it and exits 2).
    """
    from planner._io import atomic_dir
    from planner.categories import load_categories

    result = review(plan_path, rules=rules, osm=osm, categories=load_categories(categories_file))
    with atomic_dir(out_dir) as tmp:
        write_report(result, tmp)
    return result.exit_code


def review(
    plan: str | os.PathLike | Plan,
    rules: Sequence[str | os.PathLike] | str | None = None,
    osm: str | os.PathLike | None = None,
    categories: dict | None = None,
) -> Review:
    """Check a plan against rule packs.

    Parameters
    ----------
    plan : path or Plan
    rules : list of pack ids or paths, or a comma-separated string, optional
    osm : path, optional
        OSM extract for the walking network, existing facilities and residential buildings.
    categories : dict, optional
        Category key → Category (default :func:`planner.categories.load_categories`).

    Returns
    -------
    Review
    """
    start = time.perf_counter()
    if categories is None:
        from planner.categories import load_categories

        categories = load_categories()
    packs = load_packs(rules, categories)
    levels = _levels_of(packs)
    if not isinstance(plan, Plan):
        plan = read_plan(plan, categories=categories, levels=levels)
    all_rules = [r for pack in packs for r in pack.rules]
    plan = _with_levels(plan, all_rules, categories)
    areas = review_levels.level_areas(plan.households, plan.population, plan.level, levels)
    reasons = {r.id: _not_applicable_reason(r, plan) for r in all_rules}
    radius_rules = [r for r in all_rules if r.measure == "service_radius_share" and not reasons[r.id]]
    notes: list[str] = []

    region = None
    if osm is not None:
        reach_m = max([r.ranges[0][0] for r in radius_rules], default=500.0)
        region = _load_osm(osm, plan, reach_m)
        plan = plan.to_crs(region.crs)
        notes.extend(f"OSM: {n}" for n in region.notes)
    existing = _existing_facilities(region, categories, {r.category for r in radius_rules}, plan.crs)

    dwellings, dwelling_source = _dwellings(plan, region)
    distances: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    method, net = "none", None
    if radius_rules:
        net, method = _network(plan, region)
        keys = sorted({_radius_key(r) for r in radius_rules})
        distances = _category_distances(plan, existing, dwellings, keys, net)
        for key, (dist, _) in distances.items():
            dwellings[f"{key}_m"] = dist
        if method == "straight_line":
            notes.append(
                "No walking network (no --osm and no planned paths): service radii were measured as "
                "straight lines, which never exceed the walk. A fail is certain; a pass is provisional "
                "until checked with --osm or planned `path` features."
            )
        if net is not None:
            notes.extend(f"network: {n}" for n in net.notes)

    arrays = _Arrays.of(plan, existing, dwellings)
    results = []
    for rule in all_rules:
        if reasons[rule.id]:
            results.append(RuleResult(rule, "not_applicable", None, None, reasons[rule.id]))
            continue
        n_areas, how = areas.get(rule.level, (1, "")) if rule.level else (1, "")
        if rule.measure in _PLAN_MEASURES:
            ok, value, shortfall, note, details = review_levels.evaluate(rule, plan, n_areas)
            res = RuleResult(rule, "pass" if ok else "fail", value, shortfall, note, details)
        else:
            res = _evaluate(rule, plan, arrays, distances, method, region is not None, n_areas)
        if rule.level:
            res.details["areas"] = n_areas
            res.details["areas_how"] = how
        if res.status == "fail" and rule.strength == "advisory":
            res.status = "advice"  # a 宜 clause: reported, never fails the estate
        results.append(res)
    return Review(
        plan=plan, packs=packs, results=results, dwellings=dwellings, dwelling_source=dwelling_source,
        existing=existing, distance_method=method, network=net, notes=notes,
        elapsed_s=time.perf_counter() - start,
        category_labels={k: f"{c.name_zh} {k}" for k, c in categories.items()},
        osm=None if osm is None else str(osm), level_areas=areas,
    )


def _with_levels(plan: Plan, rules: list[Rule], categories: dict) -> Plan:
    """The plan with the level each facility and green space serves (see :mod:`planner.review_levels`)."""
    label = Path(plan.source).name
    facilities = plan.facilities.copy()
    if "level" not in facilities.columns:
        facilities["level"] = None
    lv, how = review_levels.assign_facility_levels(facilities, rules, categories, plan.level, label)
    facilities["level"], facilities["level_source"] = lv, how
    green = plan.green.copy()
    if "level" not in green.columns:
        green["level"] = None
    glv, ghow = review_levels.assign_green_levels(green, rules, plan.level)
    green["level"], green["level_source"] = glv, ghow
    return replace(plan, facilities=facilities, green=green, notes=list(plan.notes))


def load_packs(rules: Sequence[str | os.PathLike] | str | None, categories: dict | None = None) -> list[RulePack]:
    """Rule packs by id or path (a list or a comma-separated string); default :data:`DEFAULT_RULES`.

    Raises InputError when two packs define the same rule id.
    """
    if rules is None:
        names: list = list(DEFAULT_RULES)
    elif isinstance(rules, (str, os.PathLike)):
        names = [s.strip() for s in str(rules).split(",") if s.strip()]
    else:
        names = [r for r in rules if str(r).strip()]
    if not names:
        raise InputError("--rules: no rule pack named; e.g. --rules gb50180-2018,community-service")
    packs = [load_rulepack(n, categories) for n in names]
    seen: dict[str, str] = {}
    for pack in packs:
        for rule in pack.rules:
            if rule.id in seen:
                raise InputError(
                    f"--rules: rule id {rule.id!r} is in both {seen[rule.id]} and {pack.path}; "
                    "give each rule of a local pack its own id"
                )
            seen[rule.id] = str(pack.path)
    return packs


def estate_level(households: float, levels: Sequence[Level]) -> tuple[str, str]:
    """Life-circle level of an estate from its households (GB 50180-2018 cl. 3.0.4).

    The scale ranges leave gaps (1,000–1,500 dwellings lie between a block and a 5-minute
    circle); an estate in a gap, or above a range, takes the largest level whose lower bound
    it reaches, so it is never asked for facilities of a level it does not reach. Below
    every range it is a block.

    Returns
    -------
    (level, how) : how it was derived, for the report.
    """
    ranked = sorted((lv for lv in levels if lv.households), key=lambda lv: lv.households[0], reverse=True)
    if not ranked:
        raise InputError("rules: no pack defines life-circle levels; give `level` in the plan's estate feature")
    for k, lv in enumerate(ranked):
        lo, hi = lv.households
        if households >= lo:
            how = f"derived from {households:g} households by {lv.clause} ({lv.id}: {lo:g}–{hi:g})"
            if households > hi:
                how += ("; above every range" if k == 0 else
                        "; above that range and below the next level") + ": set `level` in the plan to choose"
            if not lv.confirmed:
                how += "; this level's range is to confirm"
            return lv.id, how
    smallest = ranked[-1]
    lo, hi = smallest.households
    return smallest.id, f"derived from {households:g} households by {smallest.clause} (below the {smallest.id} range {lo:g}–{hi:g})"


# --------------------------------------------------------------------------------------------
# reading the plan


def read_plan(
    path: str | os.PathLike,
    categories: dict | None = None,
    levels: Sequence[Level] | None = None,
) -> Plan:
    """Read and check an estate plan.

    Parameters
    ----------
    path : path
        GeoJSON or GeoPackage with a ``role`` property per feature (see the module doc and
        ``README.md, "Plan schema"``).
    categories : dict, optional
        Category key → Category (default :func:`planner.categories.load_categories`).
    levels : list of Level, optional
        For deriving the level; default the levels of ``gb50180-2018``.

    Raises
    ------
    InputError
        One line naming the file, the feature and the fix.
    """
    if categories is None:
        from planner.categories import load_categories

        categories = load_categories()
    p = Path(path)
    label = p.name
    frame = _read_frame(p)
    _check_geojson_members(p, frame)
    if frame.crs is None:
        raise InputError(f"{label}: no CRS; save the plan with one (e.g. EPSG:4326, or its CGCS2000 / UTM zone)")
    if len(frame) == 0:
        raise InputError(f"{label}: no features; add one estate and its facilities")
    if "role" not in frame.columns:
        raise InputError(f"{label}: no 'role' property; mark the boundary role=estate and each facility role=facility")
    frame = frame.reset_index(drop=True)
    geoms = frame.geometry.to_numpy()
    roles = [_text(v) for v in frame["role"]]
    for i, role in enumerate(roles):
        if role not in ROLES:
            raise InputError(f"{label}: feature {i + 1} has role {role!r}; use one of: {', '.join(ROLES)}")
        g = geoms[i]
        if g is None or g.is_empty:
            raise InputError(f"{label}: feature {i + 1} (role={role}) has no geometry; draw it or remove it")
    estate_idx = [i for i, r in enumerate(roles) if r == "estate"]
    if not estate_idx:
        raise InputError(f"{label}: no feature with role=estate; add the estate boundary polygon with its households")
    if len(estate_idx) > 1:
        raise InputError(
            f"{label}: {len(estate_idx)} features have role=estate (features {', '.join(str(i + 1) for i in estate_idx)}); "
            "review one estate per plan (merge the parts into one MultiPolygon)"
        )
    if frame.crs.is_geographic:
        x0, y0, x1, y1 = frame.total_bounds
        if x0 < -180 or x1 > 180 or y0 < -90 or y1 > 90:
            raise InputError(
                f"{label}: coordinates such as ({x1:.6g}, {y1:.6g}) are not longitude/latitude, but the file says "
                f"{frame.crs.to_string()}; save it with its real CRS (GeoJSON without a 'crs' member means EPSG:4326)"
            )
    _check_geometries(label, roles, geoms)

    crs = _working_crs(frame, estate_idx[0])
    metric = frame.to_crs(crs) if CRS.from_user_input(frame.crs) != crs else frame
    mgeoms = metric.geometry.to_numpy()
    ei = estate_idx[0]
    estate = mgeoms[ei]
    where = f"{label}: feature {ei + 1} (role=estate)"
    households = _number(frame, ei, "households", where)
    if households is None:
        raise InputError(f"{where} has no 'households'; add the number of dwellings (户/套) as a whole number")
    if households != int(households) or households <= 0:
        raise InputError(f"{where}: households {households:g} must be a positive whole number of dwellings")
    if households > MAX_HOUSEHOLDS:
        raise InputError(
            f"{where}: households {households:,.6g} is more than any life circle holds "
            f"(a 15-minute circle has 17,000–32,000); check the value or split the plan"
        )
    households = int(households)
    area_ha = estate.area / 10_000
    if area_ha < 0.01:
        raise InputError(f"{where}: the boundary covers only {estate.area:.1f} m²; check its coordinates and CRS")
    if households / area_ha > MAX_HOUSEHOLDS_PER_HA:
        raise InputError(
            f"{where}: {households:,} households on {area_ha:.2f} ha is {households / area_ha:,.0f} per ha "
            f"(limit {MAX_HOUSEHOLDS_PER_HA:,.0f}); check the boundary, its CRS or the households"
        )
    population = _number(frame, ei, "population", where)
    population_given = population is not None
    if population is None:
        population = households * settings.persons_per_household
    else:
        ratio = population / households
        lo, hi = _PERSONS_PER_HOUSEHOLD_RANGE
        if population <= 0 or not lo <= ratio <= hi:
            raise InputError(
                f"{where}: population {population:,.0f} for {households:,} households is {ratio:.2f} persons per "
                f"household (expected {lo:g}–{hi:g}; the national average is {settings.persons_per_household}); check both"
            )
    notes: list[str] = []
    level = _text(frame.at[ei, "level"]) if "level" in frame.columns else None
    if level:
        if level not in LEVELS:
            raise InputError(f"{where}: level {level!r} is not known; use one of: {', '.join(LEVELS)} (or leave it out)")
        level_source = "plan"
        lv = next((x for x in (levels or _default_levels()) if x.id == level), None)
        if lv is not None and lv.households and not lv.households[0] <= households <= lv.households[1]:
            notes.append(
                f"The plan gives level {level}, but {households:,} households lie outside that level's "
                f"range {lv.households[0]:g}–{lv.households[1]:g} ({lv.clause}); checked as {level} as given."
            )
    else:
        level, level_source = estate_level(households, levels or _default_levels())
    name = _text(frame.at[ei, "name"]) if "name" in frame.columns else None
    total_floor = _number(frame, ei, "total_floor_area_m2", where)
    if total_floor is not None and total_floor <= 0:
        raise InputError(f"{where}: total_floor_area_m2 {total_floor:g} must be positive (all buildings above ground, m²)")

    facilities = _facilities(label, frame, metric, roles, categories, estate)
    green = _green(label, frame, metric, roles)
    residential = _residential(label, frame, metric, roles, estate)
    path_idx = [i for i, r in enumerate(roles) if r == "path"]
    paths = gpd.GeoDataFrame({"feature": [i + 1 for i in path_idx]}, geometry=list(mgeoms[path_idx]), crs=crs)
    if not population_given:
        notes.append(
            f"Population {population:,.0f} = {households:,} households × {settings.persons_per_household} persons "
            "per household (7th census); give `population` on the estate to override."
        )
    return Plan(
        source=str(path), name=name or p.stem, crs=crs, estate=estate, households=households,
        population=float(population), population_given=population_given, level=level,
        level_source=level_source, facilities=facilities, residential=residential, paths=paths, notes=notes,
        green=green, total_floor_area_m2=total_floor,
    )


#: Plan properties read as numbers (a JSON true would be read as 1).
_NUMERIC_PROPERTIES = ("households", "population", "total_floor_area_m2", "floor_area_m2", "land_area_m2",
                       "places", "activity_floor_area_m2", "area_m2")


def _check_geojson_members(p: Path, frame: gpd.GeoDataFrame) -> None:
    """What GDAL reads silently otherwise: a ``crs`` member naming a CRS that does not exist
    (EPSG:99999: GDAL ignores it and reads the plan as WGS84, in the wrong place), and
    true/false where a number belongs (read as 1/0)."""
    if p.suffix.lower() not in (".geojson", ".json"):
        return
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return  # not JSON: the reader has said what it could read
    if not isinstance(data, dict):
        return
    for i, feature in enumerate(data.get("features") or []):
        props = feature.get("properties") if isinstance(feature, dict) else None
        for key in _NUMERIC_PROPERTIES if isinstance(props, dict) else ():
            if isinstance(props.get(key), bool):
                raise InputError(f"{p.name}: feature {i + 1}: {key} = {str(props[key]).lower()} is not a number; "
                                 "give the number")
    member = data.get("crs")
    if member is None:
        return
    name = member.get("properties", {}).get("name") if isinstance(member, dict) and isinstance(member.get("properties"), dict) else None
    try:
        declared = CRS.from_user_input(name)
    except Exception:  # noqa: BLE001 - pyproj raises CRSError, TypeError... for what is not a CRS
        declared = None
    if declared is None or frame.crs is None or not declared.equals(frame.crs, ignore_axis_order=True):
        raise InputError(f"{p.name}: its crs member {name if name is not None else member!r} is not a CRS that "
                         "pyproj knows; give a real one (e.g. EPSG:4326 or EPSG:4547) or remove it for WGS84")


def _read_frame(p: Path) -> gpd.GeoDataFrame:
    if not p.exists():
        raise InputError(f"{p}: file not found; give the plan as GeoJSON (.geojson) or GeoPackage (.gpkg)")
    if p.is_dir():
        raise InputError(f"{p}: is a folder; give the plan file (.geojson or .gpkg)")
    if p.suffix.lower() not in (".geojson", ".json", ".gpkg"):
        raise InputError(f"{p.name}: unsupported file type {p.suffix!r}; give the plan as .geojson or .gpkg")
    layer = None
    try:
        if p.suffix.lower() == ".gpkg":
            import pyogrio

            names = [str(n) for n in pyogrio.list_layers(p)[:, 0]]
            if len(names) > 1:
                if "plan" not in names:
                    raise InputError(f"{p.name}: {len(names)} layers ({', '.join(names)}); name the plan's layer 'plan' or keep one layer")
                layer = "plan"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reader warnings (mixed-type columns) would be extra lines
            return gpd.read_file(p, layer=layer)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - any reader failure is the user's file
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{p.name}: cannot read the plan ({text}); give a valid GeoJSON or GeoPackage") from None


def _check_geometries(label: str, roles: list[str], geoms: np.ndarray) -> None:
    """Types per role, then validity (self-intersections, bad rings)."""
    allowed = {
        "estate": ("Polygon", "MultiPolygon"),
        "facility": ("Point", "Polygon", "MultiPolygon"),
        "residential": ("Point", "Polygon", "MultiPolygon"),
        "path": ("LineString", "MultiLineString"),
        "green_space": ("Polygon", "MultiPolygon"),
    }
    names = [g.geom_type for g in geoms]
    valid = shapely.is_valid(geoms)
    for i, (role, g) in enumerate(zip(roles, geoms)):
        if names[i] not in allowed[role]:
            raise InputError(
                f"{label}: feature {i + 1} (role={role}) is a {names[i]}; a {role} must be "
                f"{' or '.join(allowed[role])}"
            )
        if not valid[i]:
            reason = shapely.is_valid_reason(g)
            raise InputError(
                f"{label}: feature {i + 1} (role={role}) has an invalid geometry ({reason}); "
                "fix it (QGIS 'Fix geometries' or shapely.make_valid) and check the outline"
            )
        if role in ("estate",) and g.area <= 0:
            raise InputError(f"{label}: feature {i + 1} (role=estate) has no area; draw the boundary polygon")


def _working_crs(frame: gpd.GeoDataFrame, estate_i: int) -> CRS:
    """The plan's own CRS when it is projected in metres, else the UTM zone of the estate."""
    crs = CRS.from_user_input(frame.crs)
    if crs.is_projected and all((a.unit_name or "").lower() in ("metre", "meter") for a in crs.axis_info):
        return crs
    from planner.sources import metric_crs

    centre = gpd.GeoSeries([frame.geometry.iloc[estate_i]], crs=crs).to_crs(4326).iloc[0].centroid
    return metric_crs(centre.x, centre.y)


def _facilities(label, frame, metric, roles, categories, estate) -> gpd.GeoDataFrame:
    idx = [i for i, r in enumerate(roles) if r == "facility"]
    rows = []
    mgeoms = metric.geometry.to_numpy()
    for i in idx:
        cat = _text(frame.at[i, "category"]) if "category" in frame.columns else None
        where = f"{label}: feature {i + 1} (role=facility"
        if not cat:
            raise InputError(f"{where}) has no 'category'; give a category key such as kindergarten (known: {', '.join(categories)})")
        if cat not in categories:
            hint = _closest(cat, categories)
            raise InputError(
                f"{where}) has unknown category {cat!r}; "
                + (f"did you mean {hint!r}? " if hint else "")
                + f"use one of: {', '.join(categories)}"
            )
        where = f"{where}, category={cat})"
        floor = _number(frame, i, "floor_area_m2", where)
        if floor is None:
            raise InputError(f"{where} has no floor_area_m2; give its building floor area in m² (0 for outdoor facilities such as sports grounds)")
        _check_area(where, "floor_area_m2", floor, MAX_FLOOR_AREA_M2)
        land = _number(frame, i, "land_area_m2", where)
        land_given = land is not None
        g = mgeoms[i]
        if land_given:
            _check_area(where, "land_area_m2", land, MAX_LAND_AREA_M2)
            drawn = g.area
            if drawn > 0 and land > 0 and not 0.1 <= land / drawn <= 10:
                raise InputError(
                    f"{where}: land_area_m2 {land:,.0f} is {land / drawn:.2g}× the area of its polygon ({drawn:,.0f} m²); "
                    "check the unit (m², not ha or mu) or the outline"
                )
        elif g.area > 0:
            land = float(g.area)  # a polygon facility's land is its drawn area
        else:
            land = 0.0  # a point with no land of its own (e.g. a room in a mixed-use building)
        places = _number(frame, i, "places", where)
        if places is not None and places < 0:
            raise InputError(f"{where}: places {places:g} is negative; give the number of childcare places (托位)")
        far = g.distance(estate)
        if far > MAX_FACILITY_DISTANCE_M:
            raise InputError(
                f"{where} is {far / 1000:,.1f} km from the estate; check its coordinates and the file's CRS"
            )
        flevel = _text(frame.at[i, "level"]) if "level" in frame.columns else None
        if flevel is not None and flevel not in LEVELS:
            raise InputError(f"{where}: level {flevel!r} is not known; use one of: {', '.join(LEVELS)} (or leave it out)")
        activity = _number(frame, i, "activity_floor_area_m2", where)
        if activity is not None and not 0 <= activity <= floor:
            raise InputError(f"{where}: activity_floor_area_m2 {activity:g} must lie between 0 and its floor_area_m2 {floor:g}")
        fid = None
        for key in ("facility_id", "id"):
            if key in frame.columns and _text(frame.at[i, key]):
                fid = _text(frame.at[i, key])
                break
        rows.append({
            "facility_id": fid or f"plan/{i + 1}",
            "category": cat,
            "name": _text(frame.at[i, "name"]) if "name" in frame.columns else None,
            "floor_area_m2": float(floor),
            "land_area_m2": float(land),
            "land_area_given": land_given,
            "places": np.nan if places is None else float(places),
            "feature": i + 1,
            "level": flevel,
            "activity_floor_area_m2": np.nan if activity is None else float(activity),
        })
    cols = ["facility_id", "category", "name", "floor_area_m2", "land_area_m2", "land_area_given", "places", "feature",
            "level", "activity_floor_area_m2"]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=cols), geometry=list(mgeoms[idx]), crs=metric.crs)


def _green(label, frame, metric, roles) -> gpd.GeoDataFrame:
    """Public green spaces: drawn polygons; ``area_m2`` overrides the drawn area (within 10 %)."""
    idx = [i for i, r in enumerate(roles) if r == "green_space"]
    rows = []
    mgeoms = metric.geometry.to_numpy()
    for i in idx:
        where = f"{label}: feature {i + 1} (role=green_space)"
        drawn = float(mgeoms[i].area)
        area = _number(frame, i, "area_m2", where)
        if area is None:
            area = drawn
        elif area <= 0 or not 0.9 <= area / drawn <= 1.1:
            raise InputError(f"{where}: area_m2 {area:,.0f} differs from its polygon's {drawn:,.0f} m² by more than 10 %; "
                             "check the unit (m², not ha) or the outline")
        level = _text(frame.at[i, "level"]) if "level" in frame.columns else None
        if level is not None and level not in LEVELS:
            raise InputError(f"{where}: level {level!r} is not known; use one of: {', '.join(LEVELS)} (or leave it out)")
        rows.append({"feature": i + 1, "name": _text(frame.at[i, "name"]) if "name" in frame.columns else None,
                     "area_m2": float(area), "level": level})
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=["feature", "name", "area_m2", "level"]),
                            geometry=list(mgeoms[idx]), crs=metric.crs)


def _residential(label, frame, metric, roles, estate) -> gpd.GeoDataFrame:
    idx = [i for i, r in enumerate(roles) if r == "residential"]
    hh = []
    for i in idx:
        v = _number(frame, i, "households", f"{label}: feature {i + 1} (role=residential)")
        if v is not None and v < 0:
            raise InputError(f"{label}: feature {i + 1} (role=residential): households {v:g} is negative")
        hh.append(np.nan if v is None else v)
    return gpd.GeoDataFrame({"households": hh, "feature": [i + 1 for i in idx]},
                            geometry=list(metric.geometry.to_numpy()[idx]), crs=metric.crs)


def _check_area(where: str, key: str, value: float, limit: float) -> None:
    if value < 0:
        raise InputError(f"{where}: {key} {value:g} is negative; give the area in m²")
    if value > limit:
        raise InputError(
            f"{where}: {key} {value:,.0f} m² is more than any community facility ({limit:,.0f} m²); "
            "check the unit (m²) and the value"
        )


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _number(frame: pd.DataFrame, i: int, key: str, where: str) -> float | None:
    """A numeric property, None when absent; a string that is not a number is an error."""
    if key not in frame.columns:
        return None
    value = frame.at[i, key]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{where}: {key} {value!r} is not a number")
    try:
        number = float(str(value).replace(",", "")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: {key} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise InputError(f"{where}: {key} {value!r} is not a finite number")
    return number


def _closest(word: str, options: Iterable[str]) -> str | None:
    import difflib

    hits = difflib.get_close_matches(word, list(options), n=1, cutoff=0.75)
    return hits[0] if hits else None


def _default_levels() -> list[Level]:
    return load_rulepack("gb50180-2018").levels


def _levels_of(packs: list[RulePack]) -> list[Level]:
    for pack in packs:
        if pack.levels:
            return pack.levels
    return _default_levels()


# --------------------------------------------------------------------------------------------
# rules


def _not_applicable_reason(rule: Rule, plan: Plan) -> str:
    if rule.level and not review_levels.is_at_or_above(plan.level, rule.level):
        return f"applies to estates at level {rule.level} or above (levels nest); the estate is {plan.level}"
    if rule.measure in ("adjacent_to", "facility_area_min_each") and not (plan.facilities["category"] == rule.category).any():
        return f"no {rule.category} planned"
    if rule.applies_level and plan.level not in rule.applies_level:
        return f"applies to level {', '.join(rule.applies_level)}; the estate is {plan.level}"
    if rule.applies_households:
        lo, hi = rule.applies_households
        if not lo <= plan.households <= hi:
            return f"applies to {lo:g}–{hi:g} households; the estate has {plan.households:,}"
    if rule.applies_population:
        lo, hi = rule.applies_population
        if not lo <= plan.population <= hi:
            return f"applies to {lo:g}–{hi:g} residents; the estate has {plan.population:,.0f}"
    return ""


@dataclass
class _Arrays:
    """Facility and dwelling columns as numpy arrays, pulled out once per review (pandas
    indexing per rule costs more than the checks themselves)."""

    ids: np.ndarray
    category: np.ndarray
    floor_m2: np.ndarray
    land_m2: np.ndarray
    no_land: np.ndarray  # points without land_area_m2: they count 0 m² of land
    places: np.ndarray
    existing_category: np.ndarray
    weight: np.ndarray
    level: np.ndarray

    @classmethod
    def of(cls, plan: Plan, existing: gpd.GeoDataFrame, dwellings: gpd.GeoDataFrame) -> "_Arrays":
        f = plan.facilities
        return cls(
            ids=f["facility_id"].to_numpy(object), category=f["category"].to_numpy(object),
            floor_m2=f["floor_area_m2"].to_numpy(float), land_m2=f["land_area_m2"].to_numpy(float),
            no_land=(~f["land_area_given"].to_numpy(bool)) & (shapely.area(f.geometry.to_numpy()) == 0),
            places=f["places"].to_numpy(float),
            existing_category=existing["category"].to_numpy(object) if len(existing) else np.zeros(0, object),
            weight=dwellings["weight"].to_numpy(float),
            level=f["level"].to_numpy(object) if "level" in f.columns else np.full(len(f), None, object),
        )

    def mask(self, rule: Rule) -> np.ndarray:
        """Facilities the rule counts: its categories (all when none), of its level when it has one."""
        cats = rule.target_categories
        if not cats:
            sel = np.ones(len(self.category), bool)
        else:
            sel = self.category == cats[0] if len(cats) == 1 else np.isin(self.category, cats)
        if rule.level:
            sel &= self.level == rule.level
        return sel


def _evaluate(rule: Rule, plan: Plan, arr: _Arrays, distances: dict, method: str, osm_used: bool,
              n_areas: int = 1) -> RuleResult:
    """One rule; ``n_areas``: areas of the rule's level in the estate (counts are per area)."""
    sel = arr.mask(rule)
    n = int(sel.sum())
    of_level = f" of the {rule.level} level" if rule.level else ""
    if rule.measure == "facility_present":
        need = rule.ranges[0][0] * n_areas
        scaled = replace(rule, ranges=tuple((lo * n_areas, hi * n_areas) for lo, hi in rule.ranges))
        note = ""
        if n < need:
            note = (f"missing {rule.category}{of_level}: {n} planned, {need:g} needed"
                    + (f" (one per {rule.level} area; the estate holds {n_areas})" if n_areas > 1 else ""))
        res = _check_value(scaled, float(n), {"facility_ids": arr.ids[sel].tolist(), "required": need}, note)
        res.rule = rule
        return res
    if rule.measure == "facility_area_range":
        return _check_area_range(rule, arr, sel, n_areas)
    if rule.measure == "service_radius_share":
        return _check_radius(rule, arr, distances, method, n, osm_used)
    if rule.measure == "places_per_1000_residents":
        places = arr.places[sel]
        missing = int(np.isnan(places).sum())
        total = float(np.nansum(places))
        value = total * 1000 / plan.population
        res = _check_value(rule, value, {"places": total, "residents": round(plan.population, 1)},
                           f"{missing} {rule.category} facilities give no `places` and count as 0" if missing else
                           ("" if n else f"no {rule.category} planned"))
        if res.shortfall:
            res.details["shortfall_places"] = math.ceil(res.shortfall * plan.population / 1000 - 1e-9)
        return res
    # area per households / residents
    area = arr.floor_m2 if rule.area == "floor" else arr.land_m2
    total = float(area[sel].sum())
    per, base, base_name = {
        "area_per_100_households": (100.0, plan.households, "households"),
        "area_per_1000_residents": (1000.0, plan.population, "residents"),
        "area_per_resident": (1.0, plan.population, "residents"),
    }[rule.measure]
    value = total * per / base
    what = ", ".join(rule.target_categories) or "facilities"
    note = "" if n else f"no {what}" + (f" of the {rule.level} level" if rule.level else "") + " planned"
    if rule.area == "land" and n:
        no_land = int((arr.no_land & sel).sum())
        if no_land:
            note = f"{no_land} facilities are points without land_area_m2 and count 0 m² of land"
    res = _check_value(rule, value, {f"{rule.area}_area_m2": round(total, 3), base_name: round(float(base), 1)}, note)
    if res.shortfall:
        res.details["shortfall_area_m2"] = round(res.shortfall * base / per, 2)
    return res


def _check_value(rule: Rule, value: float, details: dict, note: str = "") -> RuleResult:
    ok, shortfall, excess, extra = _judge(value, rule.ranges, rule.enforce_max)
    if excess is not None:
        details["excess"] = round(excess, 6)
    return RuleResult(rule, "pass" if ok else "fail", value, shortfall, "; ".join(x for x in (note, extra) if x), details)


def _judge(value: float, ranges: Sequence[tuple[float, float]], enforce_max: bool):
    """(passes, shortfall, excess, note) of a value against ranges; bounds included."""
    def tol(x: float) -> float:
        return _REL_TOL * max(1.0, abs(x)) if math.isfinite(x) else 0.0

    for lo, hi in ranges:
        if value >= lo - tol(lo) and value <= hi + tol(hi):
            return True, 0.0, None, ""
    above = [hi for lo, hi in ranges if value > hi + tol(hi)]
    below = [lo for lo, hi in ranges if value < lo - tol(lo)]
    if not enforce_max and above:
        return True, 0.0, None, f"above the range (≤ {max(above):g}): noted, not failed"
    if below:
        nxt = min(below)
        note = f"between ranges; {nxt - value:g} short of the next" if above else ""
        return False, nxt - value, (value - max(above)) if above else None, note
    return False, None, value - max(above), f"above the range by {value - max(above):g}"


def _check_area_range(rule: Rule, arr: _Arrays, sel: np.ndarray, need: int = 1) -> RuleResult:
    """At least ``need`` facilities (one per area of the rule's level) have their area in range."""
    lo_min = min(lo for lo, _ in rule.ranges)
    if not sel.any():
        return RuleResult(rule, "fail", 0.0, lo_min, f"no {rule.category}" + (f" of the {rule.level} level" if rule.level else "")
                          + " planned", {"facility_ids": []})
    areas = (arr.floor_m2 if rule.area == "floor" else arr.land_m2)[sel]
    ids = arr.ids[sel].tolist()
    no_land = arr.no_land[sel]
    judged = [_judge(a, rule.ranges, rule.enforce_max) for a in areas]
    details = {"facility_areas_m2": {fid: round(float(a), 3) for fid, a in zip(ids, areas)}}
    in_range = [j for j, (ok, *_r) in enumerate(judged) if ok]
    if len(in_range) >= need:
        j = in_range[0]
        details["facility_id"] = ids[j]
        return RuleResult(rule, "pass", float(areas[j]), 0.0, judged[j][3], details)
    if in_range:
        details["in_range"] = [ids[j] for j in in_range]
        return RuleResult(rule, "fail", float(areas[in_range[0]]), None,
                          f"{len(in_range)} of the {need} needed (one per {rule.level} area) have {rule.area} area in range",
                          details)
    # None in range: report the one closest to a range.
    def gap(j: int) -> float:
        _ok, s, e, _n = judged[j]
        return min(x for x in (s, e) if x is not None)

    best = min(range(len(areas)), key=gap)
    ok, shortfall, excess, extra = judged[best]
    details["facility_id"] = ids[best]
    if excess is not None:
        details["excess"] = round(excess, 6)
    note = f"no {rule.category} has {rule.area} area in range; closest is {ids[best]}"
    if rule.area == "land" and no_land[best]:
        note += " (a point without land_area_m2)"
    return RuleResult(rule, "fail", float(areas[best]), shortfall, "; ".join(x for x in (note, extra) if x), details)


def _check_radius(rule: Rule, arr: _Arrays, distances: dict, method: str, n_planned: int, osm_used: bool) -> RuleResult:
    radius = rule.ranges[0][0]
    dist, _nearest = distances[_radius_key(rule)]
    weight = arr.weight
    n_existing = int((arr.existing_category == rule.category).sum())
    details = {
        "radius_m": radius, "method": method, "dwellings": int(len(dist)),
        "planned_facilities": n_planned, "existing_facilities": n_existing,
    }
    if n_planned == 0 and n_existing == 0:
        details.update(share_within=0.0, dwellings_beyond=int(len(dist)))
        return RuleResult(rule, "fail", None, None,
                          f"no {rule.category}" + (f" of the {rule.level} level" if rule.level else "") + " planned"
                          + (" or mapped in the --osm extract" if osm_used else
                                                           "; give --osm to count existing ones"),
                          details)
    within = dist <= radius + _REL_TOL * radius
    share = float(weight[within].sum() / weight.sum())
    value = _share_distance(dist, weight, rule.min_share)
    details.update(share_within=round(share, 6), dwellings_beyond=int((~within).sum()),
                   farthest_m=_json_number(float(dist.max())) if len(dist) else None)
    unreachable = int((~np.isfinite(dist)).sum())
    note = f"{unreachable} dwellings have no walking path to any {rule.category}" if unreachable else ""
    if method == "straight_line":
        note = "; ".join(x for x in (note, "straight-line distance (no network)") if x)
    if not math.isfinite(value):
        return RuleResult(rule, "fail", None, None, note, details)
    ok = value <= radius + _REL_TOL * radius
    return RuleResult(rule, "pass" if ok else "fail", value, 0.0 if ok else value - radius, note, details)


def _share_distance(dist: np.ndarray, weight: np.ndarray, share: float) -> float:
    """Smallest distance within which ``share`` of the (weighted) dwellings lie."""
    if len(dist) == 0:
        return 0.0
    order = np.argsort(dist, kind="stable")
    cum = np.cumsum(weight[order])
    k = int(np.searchsorted(cum, share * cum[-1] * (1 - 1e-12), side="left"))
    return float(dist[order][min(k, len(dist) - 1)])


# --------------------------------------------------------------------------------------------
# OSM, dwellings and distances


def _load_osm(osm: str | os.PathLike, plan: Plan, reach_m: float):
    """The OSM region around the estate: far enough that walks to the radius fit inside."""
    from planner.sources import load_region

    pad = 1.5 * reach_m + 200.0
    area = gpd.GeoSeries([plan.estate.buffer(pad)], crs=plan.crs).to_crs(4326)
    return load_region(osm, boundary=area)


def _existing_facilities(region, categories: dict, keys: set, crs) -> gpd.GeoDataFrame:
    empty = gpd.GeoDataFrame({"facility_id": [], "category": [], "name": []}, geometry=[], crs=crs)
    if region is None or not keys:
        return empty
    facs = getattr(region, "facilities", None)
    if facs is None:
        from planner.categories import classify

        facs = classify(region.features, [categories[k] for k in keys if k in categories])
    facs = facs[facs["category"].isin(keys)]
    if len(facs) == 0:
        return empty
    out = facs[["facility_id", "category", "name", "geometry"]].reset_index(drop=True)
    return out.to_crs(crs) if CRS.from_user_input(out.crs) != CRS.from_user_input(crs) else out


def _dwellings(plan: Plan, region) -> tuple[gpd.GeoDataFrame, str]:
    """Points that stand for dwellings, with a ``weight`` (households where known)."""
    res = plan.residential
    if len(res):
        hh = res["households"].to_numpy(float)
        weighted = bool(np.isfinite(hh).all() and hh.sum() > 0)
        weight = hh if weighted else np.ones(len(res))
        pts = shapely.point_on_surface(res.geometry.to_numpy())
        how = "plan residential features" + (
            " (weighted by households)" if weighted else
            " (equal weights: give every residential feature `households` to weight them)")
        return gpd.GeoDataFrame({"weight": weight}, geometry=pts, crs=plan.crs), how
    if region is not None:
        from planner.demand import homes_from_region

        homes = homes_from_region(region)
        homes = homes[(homes["source"] == "building").to_numpy()]
        if len(homes):
            homes = homes.to_crs(plan.crs) if CRS.from_user_input(homes.crs) != plan.crs else homes
            inside = shapely.contains_xy(plan.estate, homes.geometry.x.to_numpy(), homes.geometry.y.to_numpy())
            homes = homes[inside]
        if len(homes):
            return (gpd.GeoDataFrame({"weight": homes["population"].to_numpy(float)},
                                     geometry=homes.geometry.to_numpy(), crs=plan.crs),
                    "OSM residential buildings inside the estate (weighted by estimated residents)")
    return _grid(plan.estate, DWELLING_GRID_M, plan.crs), f"grid of points every {DWELLING_GRID_M:g} m over the estate (equal weights)"


def _grid(poly, spacing: float, crs) -> gpd.GeoDataFrame:
    from planner.demand import grid_points

    gx, gy = grid_points(poly, spacing)
    return gpd.GeoDataFrame({"weight": np.ones(len(gx))}, geometry=gpd.points_from_xy(gx, gy), crs=crs)


def _network(plan: Plan, region):
    """Walking network from OSM streets and the plan's paths; (None, "straight_line") without either."""
    from planner.network import build_network

    net = None
    if region is not None:
        try:
            net = build_network(region, mode="walk")
        except InputError:
            if len(plan.paths) == 0:
                raise
    if len(plan.paths):
        net = _with_paths(net, plan.paths.geometry.to_numpy(), plan.crs)
    return (net, "network") if net is not None else (None, "straight_line")


def _with_paths(net, lines: np.ndarray, crs):
    """Add planned walkways to a network (or make one from them).

    Paths are noded where they cross or touch each other and get a vertex every
    :data:`_PATH_VERTEX_M`; each path end joins the nearest existing street node within
    ``settings.gate_tolerance_m``. A path end within :data:`_PATH_SNAP_M` of another path
    joins it.
    """
    from planner.network import from_arrays

    lines = _snap_path_ends(shapely.get_parts(lines))
    noded = shapely.union_all(lines)  # splits lines at every crossing, so crossings connect
    # Vertices every few metres, so homes and facilities snap next to the path, not to a
    # crossing far along it.
    parts = shapely.get_parts(shapely.segmentize(noded, _PATH_VERTEX_M))
    seg_a, seg_b = [], []
    for part in parts:
        xy = shapely.get_coordinates(part)
        seg_a.append(xy[:-1])
        seg_b.append(xy[1:])
    a, b = np.concatenate(seg_a), np.concatenate(seg_b)
    pts = np.round(np.concatenate([a, b]), 3)
    uniq, inv = np.unique(pts, axis=0, return_inverse=True)
    inv = inv.ravel()
    pu, pv = inv[: len(a)], inv[len(a):]
    keep = pu != pv
    pu, pv = pu[keep], pv[keep]
    base = 0 if net is None else net.n_nodes
    x = uniq[:, 0] if net is None else np.concatenate([net.x, uniq[:, 0]])
    y = uniq[:, 1] if net is None else np.concatenate([net.y, uniq[:, 1]])
    plen = np.hypot(uniq[pu, 0] - uniq[pv, 0], uniq[pu, 1] - uniq[pv, 1])
    us, vs, lens = [pu + base, pv + base], [pv + base, pu + base], [plen, plen]
    if net is not None:
        us.insert(0, net.u)
        vs.insert(0, net.v)
        lens.insert(0, net.length_m)
        ends = np.concatenate([shapely.get_coordinates(shapely.get_point(lines, 0)),
                               shapely.get_coordinates(shapely.get_point(lines, -1))])
        end_nodes = _row_index(uniq, np.round(ends, 3))
        d, node = net.tree.query(uniq[end_nodes])
        ok = d <= settings.gate_tolerance_m
        ju, jv = end_nodes[ok] + base, node[ok]
        us += [ju, jv]
        vs += [jv, ju]
        lens += [d[ok], d[ok]]
    return from_arrays(
        x, y, np.concatenate(us), np.concatenate(vs), crs, length_m=np.concatenate(lens), two_way=False,
        walk_speed_mps=None if net is None else net.walk_speed_mps,
    )


def _snap_path_ends(lines: np.ndarray) -> np.ndarray:
    """Move path ends that nearly touch another path onto it, as a vertex of both."""
    coords = [shapely.get_coordinates(g) for g in lines]
    tree = shapely.STRtree(lines)
    for i in range(len(coords)):
        for end in (0, -1):
            e = shapely.points(coords[i][end])
            near = [j for j in tree.query(e, predicate="dwithin", distance=_PATH_SNAP_M) if j != i]
            if not near:
                continue
            current = [shapely.linestrings(c) for c in coords]
            j = min(near, key=lambda k: shapely.distance(current[k], e))
            other = current[j]
            if shapely.distance(other, e) == 0 and any((coords[j] == coords[i][end]).all(axis=1)):
                continue  # already a shared vertex
            along = shapely.line_locate_point(other, e)
            p = shapely.get_coordinates(shapely.line_interpolate_point(other, along))[0]
            seg = np.hypot(*np.diff(coords[j], axis=0).T)
            k = int(np.searchsorted(np.concatenate([[0.0], np.cumsum(seg)]), along, side="right"))
            k = min(max(k, 1), len(coords[j]) - 1)
            coords[j] = np.insert(coords[j], k, p, axis=0)
            coords[i][end] = p
    return np.array([shapely.linestrings(c) for c in coords], dtype=object)


def _row_index(table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Index of each row of ``rows`` in ``table`` (rows present in ``table``)."""
    lookup = {tuple(r): i for i, r in enumerate(table.tolist())}
    return np.array([lookup[tuple(r)] for r in rows.tolist() if tuple(r) in lookup], np.int64)


def _radius_key(rule: Rule) -> str:
    """Distance key of a radius rule: its category, and its level when it has one (the tier
    rule: a higher level's facility does not stand in for a lower level's)."""
    return f"{rule.category}@{rule.level}" if rule.level else rule.category


def _category_distances(plan: Plan, existing: gpd.GeoDataFrame, dwellings: gpd.GeoDataFrame,
                        keys: list[str], net) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per key (``category`` or ``category@level``): distance in metres from each dwelling to
    its nearest facility and that facility's row in the combined table (-1 none). Planned
    facilities count for a ``category@level`` key when they serve that level; existing (OSM)
    ones, whose level is unknown, count for every key of their category."""
    planned = plan.facilities[["facility_id", "category", "geometry"]]
    targets = pd.concat([planned, existing[["facility_id", "category", "geometry"]]], ignore_index=True)
    geoms = targets.geometry.to_numpy()
    cats = targets["category"].to_numpy()
    levels = np.concatenate([plan.facilities["level"].to_numpy(object) if "level" in plan.facilities.columns
                             else np.full(len(planned), None, object), np.full(len(existing), None, object)])
    is_existing = np.arange(len(targets)) >= len(planned)
    xy = shapely.get_coordinates(dwellings.geometry.to_numpy())
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    n = len(xy)

    def chosen(key: str) -> np.ndarray:
        cat, _, lv = key.partition("@")
        sel = cats == cat
        return sel & ((levels == lv) | is_existing) if lv else sel

    if net is None:
        for key in keys:
            idx = np.nonzero(chosen(key))[0]
            if len(idx) == 0:
                out[key] = (np.full(n, np.inf), np.full(n, -1, np.int64))
                continue
            tree = shapely.STRtree(geoms[idx])
            (src, tgt), dist = tree.query_nearest(dwellings.geometry.to_numpy(), return_distance=True, all_matches=False)
            d = np.full(n, np.inf)
            t = np.full(n, -1, np.int64)
            d[src], t[src] = dist, idx[tgt]
            out[key] = (d, t)
        return out
    from planner.network import TargetGraph, geometry_access, point_access, trip_costs

    origins = point_access(net, xy)
    sel = {key: chosen(key) for key in keys}
    needed = np.logical_or.reduce(list(sel.values())) if sel else np.zeros(len(cats), bool)
    graph = TargetGraph(net, geometry_access(net, geoms[needed]), weight="length") if needed.any() else None
    sub_index = np.nonzero(needed)[0]
    for key in keys:
        local = np.nonzero(sel[key][needed])[0] if needed.any() else np.zeros(0, np.int64)
        if len(local) == 0:
            out[key] = (np.full(n, np.inf), np.full(n, -1, np.int64))
            continue
        cost, tgt = graph.sweep(local)
        d, t = trip_costs(net, origins, cost, tgt, "length")
        out[key] = (d, np.where(t >= 0, sub_index[np.maximum(t, 0)], -1))
    return out


# --------------------------------------------------------------------------------------------
# report


def write_report(rev: Review, out_dir: str | os.PathLike) -> list[Path]:
    """Write ``review.json`` (one object per rule), ``summary.json`` and ``review.html``
    (plus ``review_map.html``, an interactive offline map, when :mod:`planner.maps` exists).

    Writes into ``out_dir`` directly; :func:`run_review` wraps it in an atomic folder.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    p = out / "review.json"
    p.write_text(json.dumps(rev.to_records(), ensure_ascii=False, indent=2), encoding="utf-8")
    written.append(p)
    p = out / "summary.json"
    p.write_text(json.dumps(rev.summary(), ensure_ascii=False, indent=2), encoding="utf-8")
    written.append(p)
    interactive = _interactive_map(rev)
    if interactive:
        p = out / "review_map.html"
        p.write_text(interactive, encoding="utf-8")
        written.append(p)
    p = out / "review.html"
    p.write_text(_html(rev, "review_map.html" if interactive else None), encoding="utf-8")
    written.append(p)
    return written


_CSS = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei","PingFang SC",sans-serif;
 margin:24px;color:#222;font-size:13px;line-height:1.4}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:22px 0 6px;border-bottom:1px solid #bbb}
.meta{color:#555;margin:0 0 12px}
.verdict{font-size:18px;font-weight:bold;padding:8px 12px;border-radius:4px;display:inline-block}
.verdict.pass{background:#e6f4ea;color:#1a7f37;border:1px solid #1a7f37}
.verdict.fail{background:#fdecea;color:#b71c1c;border:1px solid #b71c1c}
table{border-collapse:collapse;width:100%;margin:4px 0 8px}
th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}
th{background:#f3f3f3} td.num{text-align:right;white-space:nowrap}
table.facts{width:auto} table.facts th{font-weight:normal;color:#444}
.s-pass{color:#1a7f37;font-weight:bold}.s-fail{color:#b71c1c;font-weight:bold}.s-na{color:#888}
.s-advice{color:#a15c00;font-weight:bold} tr.advice td{background:#fffaf0}
tr.fail td{background:#fff5f5} tr.na td{color:#888}
.unconf{color:#a15c00;font-size:11px} .small{font-size:11px;color:#555}
.map{border:1px solid #ccc;max-width:100%} table.rules{table-layout:fixed} td{overflow-wrap:anywhere}
table.na-list{font-size:10px} table.na-list td{padding:1px 4px} .legend span{display:inline-block;margin-right:12px}
.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:3px;vertical-align:middle}
@media print{body{margin:10mm;font-size:10.5px} .noprint{display:none} h2{page-break-after:avoid}
 tr{page-break-inside:avoid} .map{max-height:170mm} a{color:inherit;text-decoration:none}}
"""

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#6b6ecf", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d"]


def _html(rev: Review, map_file: str | None) -> str:
    e = escape_html
    p = rev.plan
    c = rev.counts
    applicable = c["pass"] + c["fail"] + c["advice"]
    advice = f"; {c['advice']} advisory (宜) rules give advice" if c["advice"] else ""
    verdict = (f'<div class="verdict pass">通过 PASS — no mandatory or local rule fails{advice}</div>' if rev.passed else
               f'<div class="verdict fail">不通过 FAIL — {c["fail"]} of {applicable} applicable rules fail{advice}</div>')
    facts = [
        ("规划文件 Plan", e(p.source)),
        ("居住区 Estate", e(p.name)),
        ("户数 Households", f"{p.households:,}"),
        ("人口 Residents", f"{p.population:,.0f}" + ("" if p.population_given else
                                                       f" (= households × {settings.persons_per_household})")),
        ("级别 Level", e(p.level) + ("" if p.level_source == "plan" else f' <span class="small">({e(p.level_source)})</span>')),
        ("层级 Nested levels", "; ".join(f"{e(k)}: {n} area{'s' if n > 1 else ''}" for k, (n, _h) in rev.level_areas.items())
         + ' <span class="small">(an estate carries every lower level\'s facilities, once per area: GB 50180-2018 table 5.0.2 note)</span>'),
        ("用地 Estate area", f"{p.area_m2 / 10_000:,.2f} ha"),
        ("设施 Planned facilities", f"{len(p.facilities)}" + (f"; {len(rev.existing)} existing from OSM" if len(rev.existing) else "")),
        ("住户点 Dwellings", f"{len(rev.dwellings):,} points: {e(rev.dwelling_source)}"),
        ("距离 Distances", {"network": "walking network (" + " and ".join(
                              x for x, on in ((f"OSM streets of {rev.osm}", rev.osm), ("planned paths", len(p.paths))) if on) + ")",
                           "straight_line": "straight line (no network given: fails are certain, passes provisional)",
                           "none": "no service-radius rule applies"}[rev.distance_method]),
        ("规则 Rule packs", "<br>".join(f"{e(k.id)}: {e(k.title_zh)} / {e(k.title_en)}"
                                        + (f" ({e(k.province)})" if k.province else "") for k in rev.packs)),
        ("结果 Results", (f'<span class="s-pass">{c["pass"]} pass</span>, <span class="s-fail">{c["fail"]} fail</span>, '
                        f'<span class="s-advice">{c["advice"]} advice</span>, '
                        f'<span class="s-na">{c["not_applicable"]} not applicable</span>')),
    ]
    parts = [
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">",
        f"<title>居住区配套设施审查 Estate review — {e(p.name)}</title><style>{_CSS}</style></head><body>",
        "<h1>居住区配套设施审查 Estate facility review</h1>",
        f'<p class="meta">{e(p.name)} · {datetime.now().strftime("%Y-%m-%d %H:%M")} · planner review</p>',
        verdict,
        "<h2>概要 Summary</h2><table class=\"facts\">",
        "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts),
        "</table>",
    ]
    unconfirmed = [r for r in rev.results if r.status != "not_applicable" and not r.rule.confirmed]
    if unconfirmed:
        parts.append(f'<p class="unconf">⚠ {len(unconfirmed)} applicable rules use values marked <b>to confirm</b> '
                     "(confirmed = false in the pack): check them against the standard's text before relying on them.</p>")
    for status, heading in (("fail", "未达标 Failures (mandatory 应/必须 and local rules)"),
                            ("advice", "建议 Advice (advisory 宜 rules: never fail the estate)")):
        listed = [r for r in rev.results if r.status == status]
        if not listed:
            continue
        parts.append(f"<h2>{heading}</h2><ul>")
        for r in listed:
            parts.append(f"<li><b>{e(r.rule.title_zh)}</b> — {e(r.rule.title_en)}: {_fmt_value(r)} vs "
                         f"{e(_fmt_target(r))}{_fmt_short(r)}" + (f" — {e(r.note)}" if r.note else "")
                         + f" <span class=\"small\">[{e(r.rule.strength)}; {e(r.rule.clause)}]</span></li>")
        parts.append("</ul>")
    parts.append("<h2>地图 Map</h2>")
    parts.append(_svg_map(rev))
    if map_file:
        parts.append(f'<iframe class="noprint" src="{map_file}" title="interactive map" '
                     'style="width:100%;height:520px;border:1px solid #ccc"></iframe>'
                     f'<p class="noprint small">Interactive map (works offline): <a href="{map_file}">{map_file}</a></p>')
    for pack in rev.packs:
        rows = [r for r in rev.results if r.rule.pack == pack.id]
        applicable = [r for r in rows if r.status != "not_applicable"]
        skipped = [r for r in rows if r.status == "not_applicable"]
        parts.append(f"<h2>{e(pack.title_zh)} {e(pack.title_en)}</h2>")
        parts.append(f'<p class="small">{e(pack.source)}' + (f" — {e(pack.province)}" if pack.province else "")
                     + (f" {e(pack.city)}" if pack.city else "") + "</p>")
        if applicable:
            parts.append('<table class="rules"><colgroup><col style="width:7%"><col style="width:27%">'
                         '<col style="width:17%"><col style="width:12%"><col style="width:12%"><col style="width:10%">'
                         '<col style="width:15%"></colgroup><tr><th>结果 Status</th><th>规则 Rule</th><th>条文 Clause</th>'
                         "<th>值 Value</th><th>要求 Threshold</th><th>差额 Shortfall</th><th>说明 Notes</th></tr>")
            for r in applicable:
                cls = r.status
                label = {"pass": "通过 pass", "fail": "不通过 fail", "advice": "建议 advice"}[r.status]
                note = "; ".join(x for x in (r.note, r.rule.note) if x)
                conf = "" if r.rule.confirmed else '<br><span class="unconf">value to confirm</span>'
                parts.append(
                    f'<tr class="{cls}"><td class="s-{cls}">{label}<br><span class="small">{e(r.rule.strength)}</span></td>'
                    f"<td>{e(r.rule.title_zh)}<br>{e(r.rule.title_en)}<br><span class=\"small\">{e(r.rule.id)}</span></td>"
                    f"<td>{e(r.rule.clause)}{conf}</td><td class=\"num\">{_fmt_value(r)}</td>"
                    f"<td class=\"num\">{e(_fmt_target(r))}</td><td class=\"num\">{_fmt_short(r, bare=True)}</td>"
                    f"<td class=\"small\">{e(note)}</td></tr>"
                )
            parts.append("</table>")
        if skipped:
            # A plain table, not <details>: a collapsed element would not print.
            parts.append(f'<p class="small"><b>不适用 Not applicable</b> to this estate (level {e(p.level)}): '
                         f"{len(skipped)} rules</p><table class=\"na-list\">")
            parts.append("".join(f'<tr class="na"><td>{e(r.rule.id)}</td><td>{e(r.rule.title_zh)} {e(r.rule.title_en)}</td>'
                                 f"<td>{e(r.note)}</td></tr>" for r in skipped))
            parts.append("</table>")
    notes = p.notes + rev.notes
    if notes:
        parts.append("<h2>说明 Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    parts.append('<p class="small">Shortfall: how much is missing to reach the threshold, in the rule\'s unit. '
                 "Service radius: the walking distance within which the required share of dwellings reach the "
                 "nearest facility of the category (off-street legs × "
                 f"{settings.off_network_detour}).</p></body></html>")
    return "\n".join(parts)


def _num(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "—"
    if not math.isfinite(x):
        return "∞"
    return f"{x:,.{digits}f}".rstrip("0").rstrip(".") if digits else f"{x:,.0f}"


def _fmt_value(r: RuleResult) -> str:
    if r.status == "not_applicable":
        return "—"
    if r.value is None:
        return "none" if r.rule.measure == "service_radius_share" else "—"
    text = f"{_num(r.value, 2)} {escape_html(r.rule.unit)}"
    if r.rule.measure == "service_radius_share":
        text += f"<br><span class=\"small\">{r.details.get('share_within', 0) * 100:.1f}% within</span>"
    return text


def _fmt_target(r: RuleResult) -> str:
    """The threshold as the estate must meet it: a count is per area of the rule's level."""
    areas = r.details.get("areas", 1)
    if r.rule.measure == "facility_present" and areas > 1:
        return f"≥ {r.details['required']:g} facilities (one per {r.rule.level} area × {areas})"
    return _fmt_threshold(r.rule)


def _fmt_threshold(rule: Rule) -> str:
    def one(lo: float, hi: float) -> str:
        if rule.measure == "service_radius_share":
            share = "every dwelling" if rule.min_share >= 1 else f"{rule.min_share:.0%} of dwellings"
            return f"≤ {lo:g} m for {share}"
        return f"≥ {lo:g}" if math.isinf(hi) else f"{lo:g}–{hi:g}"

    text = " or ".join(one(lo, hi) for lo, hi in rule.ranges)
    return text if rule.measure == "service_radius_share" else f"{text} {rule.unit}"


def _fmt_short(r: RuleResult, bare: bool = False) -> str:
    if r.status not in ("fail", "advice"):
        return "" if not bare else "—"
    if r.shortfall is None:
        ex = r.details.get("excess")
        if ex is not None:
            s = f"above by {_num(ex, 2)}"
        elif r.rule.measure == "service_radius_share":
            s = "no facility reachable" if r.details.get("planned_facilities") or r.details.get("existing_facilities") \
                else "no facility"
        else:
            s = "—"
    else:
        s = f"{_num(r.shortfall, 2)} {escape_html(r.rule.unit)}"
        if "shortfall_area_m2" in r.details:
            s += f" ({_num(r.details['shortfall_area_m2'], 1)} m²)"
    return s if bare else f" — short {s}"


def _svg_map(rev: Review, width_px: int = 900) -> str:
    """A static map (inline SVG, in metres of the plan's CRS): prints and needs no network."""
    e = escape_html
    p = rev.plan
    minx, miny, maxx, maxy = _map_bounds(rev)
    w, h = maxx - minx, maxy - miny
    height_px = int(width_px * h / w) if w > 0 else width_px
    unit = max(w, h) / 300  # symbol size in metres

    def pt(x, y) -> str:
        return f"{x - minx:.1f},{maxy - y:.1f}"

    def path_of(g) -> str:
        out = []
        for poly in shapely.get_parts(g):
            for ring in [poly.exterior, *poly.interiors]:
                xy = shapely.get_coordinates(ring)
                out.append("M" + " L".join(pt(x, y) for x, y in xy) + "Z")
        return " ".join(out)

    svg = [f'<svg class="map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.1f} {h:.1f}" '
           f'width="{width_px}" height="{height_px}" style="background:#fafafa">']
    streets = _network_near(rev)
    if streets is not None:
        d = " ".join("M" + " L".join(pt(x, y) for x, y in shapely.get_coordinates(line))
                     for line in shapely.get_parts(streets))
        svg.append(f'<path d="{d}" stroke="#b0b0b0" stroke-width="1" fill="none" vector-effect="non-scaling-stroke"/>')
    svg.append(f'<path d="{path_of(p.estate)}" fill="#dbe9f6" fill-opacity="0.5" stroke="#2b6cb0" stroke-width="2" '
               'stroke-dasharray="6 3" vector-effect="non-scaling-stroke"/>')
    failed_cats = sorted({rev.category_labels.get(r.rule.category, r.rule.category) for r in _located_radius_failures(rev)})
    dw = rev.dwellings
    if len(dw):
        beyond = _beyond_failed_radius(rev)
        xy = shapely.get_coordinates(dw.geometry.to_numpy())
        step = max(1, len(xy) // 4000)  # keep the file small on big estates
        for (x, y), bad in list(zip(xy, beyond))[::step]:
            svg.append(f'<circle cx="{x - minx:.1f}" cy="{maxy - y:.1f}" r="{unit * 0.6:.2f}" '
                       f'fill="{"#d32f2f" if bad else "#9e9e9e"}"/>')
    colour = _category_colours(rev)
    cats = list(colour)
    if len(rev.existing):
        for g, cat in zip(rev.existing.geometry, rev.existing["category"]):
            c = g.representative_point() if g.geom_type != "Point" else g
            if minx <= c.x <= maxx and miny <= c.y <= maxy:
                svg.append(f'<circle cx="{c.x - minx:.1f}" cy="{maxy - c.y:.1f}" r="{unit * 2:.2f}" fill="white" '
                           f'stroke="{colour[cat]}" stroke-width="2" vector-effect="non-scaling-stroke"/>')
    for g, cat, fid in zip(p.facilities.geometry, p.facilities["category"], p.facilities["facility_id"]):
        if g.geom_type == "Point":
            svg.append(f'<circle cx="{g.x - minx:.1f}" cy="{maxy - g.y:.1f}" r="{unit * 2.5:.2f}" fill="{colour[cat]}" '
                       f'stroke="black" stroke-width="0.5" vector-effect="non-scaling-stroke"><title>{e(fid)} {e(cat)}</title></circle>')
        else:
            svg.append(f'<path d="{path_of(g)}" fill="{colour[cat]}" fill-opacity="0.6" stroke="black" '
                       f'stroke-width="0.5" vector-effect="non-scaling-stroke"><title>{e(fid)} {e(cat)}</title></path>')
    # Scale bar: a round length near a fifth of the width.
    bar = next((b for b in (2000, 1000, 500, 200, 100, 50, 20, 10) if b <= w / 4), 10)
    y0 = h - unit * 6
    svg.append(f'<path d="M{unit * 5:.1f},{y0:.1f} h{bar}" stroke="black" stroke-width="3" vector-effect="non-scaling-stroke"/>')
    svg.append(f'<text x="{unit * 5:.1f}" y="{y0 - unit * 2:.1f}" font-size="{unit * 5:.1f}">{bar} m</text>')
    svg.append("</svg>")
    legend = ['<p class="legend small">']
    legend += [f'<span><i class="dot" style="background:{colour[c]}"></i>{e(rev.category_labels.get(c, c))}</span>' for c in cats]
    legend.append('<span><i class="dot" style="background:#9e9e9e"></i>dwelling</span>')
    if failed_cats or len(dw):
        legend.append('<span><i class="dot" style="background:#d32f2f"></i>dwelling beyond a failed radius '
                      f'({e(", ".join(failed_cats)) or "none"})</span>')
    if len(rev.existing):
        legend.append('<span><i class="dot" style="border:2px solid #555;width:7px;height:7px"></i>existing (OSM)</span>')
    legend.append("<span>filled: planned; dashed outline: estate; grey lines: walking network</span></p>")
    return "".join(svg) + "".join(legend)


def _interactive_map(rev: Review) -> str | None:
    """Offline interactive map (Leaflet inlined by :mod:`planner.maps`); None without that module."""
    try:
        from planner import maps
    except ImportError:
        return None
    p = rev.plan
    colour = _category_colours(rev)
    estate = gpd.GeoDataFrame({"name": [p.name]}, geometry=[p.estate], crs=p.crs)
    m = maps.base_map(tuple(estate.to_crs(4326).total_bounds))
    maps.add_title(m, f"居住区配套设施审查 Estate review — {p.name}",
                   f"{'PASS' if rev.passed else 'FAIL'}: {rev.counts['fail']} of "
                   f"{rev.counts['pass'] + rev.counts['fail'] + rev.counts['advice']} applicable rules fail, "
                   f"{rev.counts['advice']} give advice")
    streets = _network_near(rev)
    if streets is not None:
        # One MultiLineString: folium styles per feature, and an OSM extract has tens of thousands of edges.
        lines = gpd.GeoDataFrame(geometry=[streets], crs=p.crs)
        maps.add_lines(m, lines, name="步行网络 Walking network")
    maps.add_polygons(m, estate, colour="#2b6cb0", name="居住区 Estate", dash_array="6 4", fill_opacity=0.08)
    dw = rev.dwellings
    if len(dw):
        beyond = _beyond_failed_radius(rev)
        dots = dw[["geometry"]].copy()
        dots["colour"] = np.where(beyond, "#d32f2f", "#9e9e9e")
        maps.add_points(m, dots, colours="colour", radius=2.5, name="住户 Dwellings")
    facs = p.facilities.copy()
    if len(facs):
        facs["colour"] = facs["category"].map(colour)
        polys = facs[facs.geom_type != "Point"]
        if len(polys):
            maps.add_polygons(m, polys[["facility_id", "category", "colour", "geometry"]], colour="colour",
                              fill_opacity=0.4, name="规划设施用地 Planned facility land")
        pts = facs[["facility_id", "category", "name", "floor_area_m2", "land_area_m2", "colour"]].copy()
        pts = gpd.GeoDataFrame(pts, geometry=facs.geometry.representative_point(), crs=facs.crs)
        maps.add_points(m, pts, colours="colour", radius=7, outline="#000000", weight=1,
                        tooltip_columns=["facility_id", "category", "name", "floor_area_m2", "land_area_m2"],
                        name="规划设施 Planned facilities")
    if len(rev.existing):
        ex = rev.existing.copy()
        ex["colour"] = "#ffffff"
        ex = gpd.GeoDataFrame(ex.drop(columns="geometry"), geometry=ex.geometry.representative_point(), crs=ex.crs)
        maps.add_points(m, ex[["facility_id", "category", "name", "colour", "geometry"]], colours="colour",
                        radius=5, outline="#444444", weight=2, tooltip_columns=["facility_id", "category", "name"],
                        name="现状设施 Existing (OSM)")
    items = [(colour[c], rev.category_labels.get(c, c)) for c in colour]
    items += [("#9e9e9e", "dwelling"), ("#d32f2f", "dwelling beyond a failed radius")]
    if len(rev.existing):
        items.append(("#444444", "existing facility (OSM)", "ring"))
    items.append(("#2b6cb0", "estate boundary", "line"))
    maps.add_legend(m, "图例 Legend", items)
    import folium

    folium.LayerControl(collapsed=True).add_to(m)
    return maps.offline_html(m)


def _map_bounds(rev: Review) -> tuple[float, float, float, float]:
    """What the maps show: the estate and its planned facilities, with a margin."""
    p = rev.plan
    geoms = np.array([p.estate, *p.facilities.geometry], dtype=object)
    minx, miny, maxx, maxy = shapely.bounds(shapely.union_all(geoms))
    pad = max(maxx - minx, maxy - miny) * 0.08 + 30
    return minx - pad, miny - pad, maxx + pad, maxy + pad


def _network_near(rev: Review):
    """Network edges with an end inside the map bounds, as one MultiLineString (None without)."""
    net = rev.network
    if net is None:
        return None
    minx, miny, maxx, maxy = _map_bounds(rev)

    def inside(i: np.ndarray) -> np.ndarray:
        return (net.x[i] >= minx) & (net.x[i] <= maxx) & (net.y[i] >= miny) & (net.y[i] <= maxy)

    keep = (inside(net.u) | inside(net.v)) & (net.u < net.v)  # one direction of two-way edges
    if not keep.any():
        return None
    a = np.column_stack([net.x[net.u[keep]], net.y[net.u[keep]]])
    b = np.column_stack([net.x[net.v[keep]], net.y[net.v[keep]]])
    return shapely.multilinestrings(shapely.linestrings(np.stack([a, b], axis=1)))


def _category_colours(rev: Review) -> dict[str, str]:
    cats = sorted(set(rev.plan.facilities["category"]) | set(rev.existing["category"] if len(rev.existing) else []))
    return {c: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(cats)}


def _beyond_failed_radius(rev: Review) -> np.ndarray:
    """Dwellings farther than the radius of any failed radius rule: where the plan falls short."""
    dw = rev.dwellings
    beyond = np.zeros(len(dw), bool)
    for r in _located_radius_failures(rev):
            col = f"{_radius_key(r.rule)}_m"
            if col in dw.columns:
                beyond |= ~(dw[col].to_numpy(float) <= r.rule.ranges[0][0])
    return beyond


def _located_radius_failures(rev: Review) -> list[RuleResult]:
    """Failed radius rules of categories that have a facility (a missing one fails everywhere)."""
    return [r for r in rev.results if r.status == "fail" and r.rule.measure == "service_radius_share"
            and (r.details.get("planned_facilities") or r.details.get("existing_facilities"))]


def _json_number(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None
    return round(x, 6)


def _json_value(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return _json_number(float(v))
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    return v
