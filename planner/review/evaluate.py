"""Rules and measures: what each rule of a pack says about an estate plan.

A rule's strength decides what a shortfall means: ``mandatory`` (应/必须) and ``local`` rules
fail the estate, ``advisory`` (宜) rules give advice. Counts are per area of the rule's level
(levels nest, :mod:`planner.review.levels`); measures that look at the plan as a whole are
evaluated there too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from planner.review.distances import Distances, radius_key
from planner.review.levels import REL_TOL, is_at_or_above
from planner.review.levels import evaluate as evaluate_plan_measure
from planner.review.plan import Plan
from planner.rules import Rule

#: ``advice``: an advisory (宜) rule that is not met; it never fails the estate.
STATUSES = ("pass", "fail", "advice", "not_applicable")
#: Measures evaluated by :mod:`planner.review.levels` (they look at the plan as a whole).
_PLAN_MEASURES = {
    "green_space_per_resident",
    "green_space_park",
    "activity_share",
    "floor_area_share",
    "adjacent_to",
    "facility_area_min_each",
}


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


def evaluate_rules(
    rules: Sequence[Rule], reasons: dict[str, str], level_areas: dict[str, tuple[int, str]], found: Distances
) -> list[RuleResult]:
    """One result per rule, in order: not applicable with its reason (``reasons``, see
    :func:`not_applicable_reason`), else judged; a failed advisory rule is advice."""
    plan = found.plan
    arrays = _Arrays.of(plan, found.existing, found.dwellings)
    results = []
    for rule in rules:
        if reasons[rule.id]:
            results.append(RuleResult(rule, "not_applicable", None, None, reasons[rule.id]))
            continue
        n_areas, how = level_areas.get(rule.level, (1, "")) if rule.level else (1, "")
        if rule.measure in _PLAN_MEASURES:
            ok, value, shortfall, note, details = evaluate_plan_measure(rule, plan, n_areas)
            res = RuleResult(rule, "pass" if ok else "fail", value, shortfall, note, details)
        else:
            res = _evaluate(rule, plan, arrays, found.by_key, found.method, found.osm_used, n_areas)
        if rule.level:
            res.details["areas"] = n_areas
            res.details["areas_how"] = how
        if res.status == "fail" and rule.strength == "advisory":
            res.status = "advice"  # a 宜 clause: reported, never fails the estate
        results.append(res)
    return results


def not_applicable_reason(rule: Rule, plan: Plan) -> str:
    """Why ``rule`` does not apply to the estate (its level, scale or a missing facility); "" when it does."""
    if rule.level and not is_at_or_above(plan.level, rule.level):
        return f"applies to estates at level {rule.level} or above (levels nest); the estate is {plan.level}"
    if (
        rule.measure in ("adjacent_to", "facility_area_min_each")
        and not (plan.facilities["category"] == rule.category).any()
    ):
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
    def of(cls, plan: Plan, existing: gpd.GeoDataFrame, dwellings: gpd.GeoDataFrame) -> _Arrays:
        f = plan.facilities
        return cls(
            ids=f["facility_id"].to_numpy(object),
            category=f["category"].to_numpy(object),
            floor_m2=f["floor_area_m2"].to_numpy(float),
            land_m2=f["land_area_m2"].to_numpy(float),
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


def _evaluate(
    rule: Rule, plan: Plan, arr: _Arrays, distances: dict, method: str, osm_used: bool, n_areas: int = 1
) -> RuleResult:
    """One rule; ``n_areas``: areas of the rule's level in the estate (counts are per area)."""
    sel = arr.mask(rule)
    if rule.measure == "facility_present":
        return _check_present(rule, arr, sel, n_areas)
    if rule.measure == "facility_area_range":
        return _check_area_range(rule, arr, sel, n_areas)
    if rule.measure == "service_radius_share":
        return _check_radius(rule, arr, distances, method, int(sel.sum()), osm_used)
    if rule.measure == "places_per_1000_residents":
        return _check_places(rule, plan, arr, sel)
    return _check_area_per(rule, plan, arr, sel)


def _check_present(rule: Rule, arr: _Arrays, sel: np.ndarray, n_areas: int) -> RuleResult:
    """At least the threshold's count of facilities per area of the rule's level."""
    n = int(sel.sum())
    of_level = f" of the {rule.level} level" if rule.level else ""
    need = rule.ranges[0][0] * n_areas
    scaled = replace(rule, ranges=tuple((lo * n_areas, hi * n_areas) for lo, hi in rule.ranges))
    note = ""
    if n < need:
        note = f"missing {rule.category}{of_level}: {n} planned, {need:g} needed" + (
            f" (one per {rule.level} area; the estate holds {n_areas})" if n_areas > 1 else ""
        )
    res = _check_value(scaled, float(n), {"facility_ids": arr.ids[sel].tolist(), "required": need}, note)
    res.rule = rule
    return res


def _check_places(rule: Rule, plan: Plan, arr: _Arrays, sel: np.ndarray) -> RuleResult:
    """Childcare places per 1,000 residents; a facility without ``places`` counts 0."""
    n = int(sel.sum())
    places = arr.places[sel]
    missing = int(np.isnan(places).sum())
    total = float(np.nansum(places))
    value = total * 1000 / plan.population
    res = _check_value(
        rule,
        value,
        {"places": total, "residents": round(plan.population, 1)},
        f"{missing} {rule.category} facilities give no `places` and count as 0"
        if missing
        else ("" if n else f"no {rule.category} planned"),
    )
    if res.shortfall:
        res.details["shortfall_places"] = math.ceil(res.shortfall * plan.population / 1000 - 1e-9)
    return res


def _check_area_per(rule: Rule, plan: Plan, arr: _Arrays, sel: np.ndarray) -> RuleResult:
    """Floor or land area per 100 households, per 1,000 residents or per resident."""
    n = int(sel.sum())
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
    res = _check_value(
        rule, value, {f"{rule.area}_area_m2": round(total, 3), base_name: round(float(base), 1)}, note
    )
    if res.shortfall:
        res.details["shortfall_area_m2"] = round(res.shortfall * base / per, 2)
    return res


def _check_value(rule: Rule, value: float, details: dict, note: str = "") -> RuleResult:
    ok, shortfall, excess, extra = _judge(value, rule.ranges, rule.enforce_max)
    if excess is not None:
        details["excess"] = round(excess, 6)
    return RuleResult(
        rule, "pass" if ok else "fail", value, shortfall, "; ".join(x for x in (note, extra) if x), details
    )


def _judge(value: float, ranges: Sequence[tuple[float, float]], enforce_max: bool):
    """(passes, shortfall, excess, note) of a value against ranges; bounds included."""

    def tol(x: float) -> float:
        return REL_TOL * max(1.0, abs(x)) if math.isfinite(x) else 0.0

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
        return RuleResult(
            rule,
            "fail",
            0.0,
            lo_min,
            f"no {rule.category}" + (f" of the {rule.level} level" if rule.level else "") + " planned",
            {"facility_ids": []},
        )
    areas = (arr.floor_m2 if rule.area == "floor" else arr.land_m2)[sel]
    ids = arr.ids[sel].tolist()
    no_land = arr.no_land[sel]
    judged = [_judge(a, rule.ranges, rule.enforce_max) for a in areas]
    details = {"facility_areas_m2": {fid: round(float(a), 3) for fid, a in zip(ids, areas, strict=True)}}
    in_range = [j for j, (ok, *_r) in enumerate(judged) if ok]
    if len(in_range) >= need:
        j = in_range[0]
        details["facility_id"] = ids[j]
        return RuleResult(rule, "pass", float(areas[j]), 0.0, judged[j][3], details)
    if in_range:
        details["in_range"] = [ids[j] for j in in_range]
        return RuleResult(
            rule,
            "fail",
            float(areas[in_range[0]]),
            None,
            f"{len(in_range)} of the {need} needed (one per {rule.level} area) "
            f"have {rule.area} area in range",
            details,
        )

    # None in range: report the one closest to a range.
    def gap(j: int) -> float:
        _ok, s, e, _n = judged[j]
        return min(x for x in (s, e) if x is not None)

    best = min(range(len(areas)), key=gap)
    _ok, shortfall, excess, extra = judged[best]
    details["facility_id"] = ids[best]
    if excess is not None:
        details["excess"] = round(excess, 6)
    note = f"no {rule.category} has {rule.area} area in range; closest is {ids[best]}"
    if rule.area == "land" and no_land[best]:
        note += " (a point without land_area_m2)"
    return RuleResult(
        rule, "fail", float(areas[best]), shortfall, "; ".join(x for x in (note, extra) if x), details
    )


def _check_radius(
    rule: Rule, arr: _Arrays, distances: dict, method: str, n_planned: int, osm_used: bool
) -> RuleResult:
    radius = rule.ranges[0][0]
    dist, _nearest = distances[radius_key(rule)]
    weight = arr.weight
    n_existing = int((arr.existing_category == rule.category).sum())
    details = {
        "radius_m": radius,
        "method": method,
        "dwellings": len(dist),
        "planned_facilities": n_planned,
        "existing_facilities": n_existing,
    }
    if n_planned == 0 and n_existing == 0:
        details.update(share_within=0.0, dwellings_beyond=len(dist))
        return RuleResult(
            rule,
            "fail",
            None,
            None,
            f"no {rule.category}"
            + (f" of the {rule.level} level" if rule.level else "")
            + " planned"
            + (" or mapped in the --osm extract" if osm_used else "; give --osm to count existing ones"),
            details,
        )
    within = dist <= radius + REL_TOL * radius
    share = float(weight[within].sum() / weight.sum())
    value = _share_distance(dist, weight, rule.min_share)
    details.update(
        share_within=round(share, 6),
        dwellings_beyond=int((~within).sum()),
        farthest_m=_json_number(float(dist.max())) if len(dist) else None,
    )
    unreachable = int((~np.isfinite(dist)).sum())
    note = f"{unreachable} dwellings have no walking path to any {rule.category}" if unreachable else ""
    if method == "straight_line":
        note = "; ".join(x for x in (note, "straight-line distance (no network)") if x)
    if not math.isfinite(value):
        return RuleResult(rule, "fail", None, None, note, details)
    ok = value <= radius + REL_TOL * radius
    return RuleResult(rule, "pass" if ok else "fail", value, 0.0 if ok else value - radius, note, details)


def _share_distance(dist: np.ndarray, weight: np.ndarray, share: float) -> float:
    """Smallest distance within which ``share`` of the (weighted) dwellings lie."""
    if len(dist) == 0:
        return 0.0
    order = np.argsort(dist, kind="stable")
    cum = np.cumsum(weight[order])
    k = int(np.searchsorted(cum, share * cum[-1] * (1 - 1e-12), side="left"))
    return float(dist[order][min(k, len(dist) - 1)])
