"""Nested life-circle levels and the plan-level indicators of an estate review.

GB 50180-2018 nests its levels: a 15-minute residential area is made of 10-minute areas,
those of 5-minute areas, and those of blocks (居住街坊). The per-1,000-resident indicators
of table 5.0.2 are not inclusive (非包含关系, the table's note): an estate at a level carries
its own level's facilities **and** every lower level's ("还需要对应配置本层级以下各层级的配套
设施"), and each level's indicator counts that level's facilities only.

How many areas of a level an estate holds (:func:`areas_of_level`): the scale ranges of
cl. 3.0.4 in the rule pack give each level's largest households and population, so an
estate of ``H`` households and ``P`` residents holds at least

    max(1, ceil(H / largest households of the level), ceil(P / largest population of the level))

areas of it: 6,000 households (15,720 residents at 2.62 per household) hold
ceil(6000 / 4000) = 2 five-minute areas and ceil(6000 / 1000) = 6 blocks, so the estate
needs two kindergartens, two health stations and six convenience stores.

Which level a planned facility serves (:func:`assign_facility_levels`): its ``level``
property; else the only level (at or below the estate's) whose presence rules name its
category; else the one of those levels whose area ranges its floor or land area fits; else
its category's level (``planner/data/categories.toml``). A facility that could serve several
levels and fits none or several of their ranges is an input error: the plan must say.

This module also evaluates the measures that look at the plan as a whole: green space per
resident and park size per level (cl. 4.0.4), the share of the comprehensive service
facility used for residents' activities, the commercial and service share of the estate's
floor area, a minimum area for each facility, and co-location (毗邻建设); and it derives the
estate's own level from its households (:func:`estate_level`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import shapely

from planner._errors import InputError
from planner.rules import LEVELS, Level, Rule, RulePack, load_rulepack

if TYPE_CHECKING:
    from planner.review.plan import Plan

#: Values within this relative tolerance of a threshold count as equal (floating point).
REL_TOL = 1e-9


def is_at_or_above(estate_level: str, level: str) -> bool:
    """True when an estate at ``estate_level`` contains areas of ``level`` (levels nest)."""
    return LEVELS.index(estate_level) <= LEVELS.index(level)


def areas_of_level(households: float, population: float, level: Level) -> tuple[int, str]:
    """How many areas of ``level`` an estate holds, and how that was worked out.

    ``max(1, ceil(households / largest households), ceil(population / largest population))``
    with the largest values of the level's scale ranges (GB 50180-2018 cl. 3.0.4).

    Returns
    -------
    (count, how)
    """
    n, parts = 1, []
    for value, rng, what in (
        (households, level.households, "households"),
        (population, level.population, "residents"),
    ):
        if rng and rng[1] > 0 and math.isfinite(rng[1]):
            k = max(1, math.ceil(value / rng[1] - REL_TOL))
            parts.append(f"ceil({value:,.0f} {what} / {rng[1]:,.0f}) = {k}")
            n = max(n, k)
    how = f"{n} {level.id} area{'s' if n > 1 else ''}" + (f" ({'; '.join(parts)})" if parts else "")
    return n, how


def level_areas(
    households: float, population: float, estate_level: str, levels: Sequence[Level]
) -> dict[str, tuple[int, str]]:
    """Per level the estate contains (its own and every lower one): (areas, how)."""
    out = {}
    for lv in levels:
        if lv.id in LEVELS and is_at_or_above(estate_level, lv.id):
            out[lv.id] = areas_of_level(households, population, lv)
    for lv_id in LEVELS:  # a pack without a level's scale: one area
        if is_at_or_above(estate_level, lv_id) and lv_id not in out:
            out[lv_id] = (1, f"1 {lv_id} area (no scale range for this level in the rule packs)")
    return out


def assign_facility_levels(
    facilities: gpd.GeoDataFrame,
    rules: Sequence[Rule],
    categories: dict,
    estate_level: str,
    label: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The level each planned facility serves and how it was found (see the module doc).

    ``facilities`` needs ``category``, ``level`` (given, or None), ``floor_area_m2``,
    ``land_area_m2`` and ``feature``.

    Raises
    ------
    InputError
        A facility that could serve several levels and whose areas do not tell which.
    """
    present: dict[str, set[str]] = {}
    ranges: dict[tuple[str, str], list[Rule]] = {}
    for r in rules:
        if r.level and r.category and r.measure == "facility_present":
            present.setdefault(r.category, set()).add(r.level)
        if r.level and r.category and r.measure == "facility_area_range":
            ranges.setdefault((r.category, r.level), []).append(r)
    n = len(facilities)
    out = np.full(n, None, dtype=object)
    how = np.full(n, "", dtype=object)
    given = (
        facilities["level"].to_numpy(object) if "level" in facilities.columns else np.full(n, None, object)
    )
    cats = facilities["category"].to_numpy(object)
    floor = facilities["floor_area_m2"].to_numpy(float)
    land = facilities["land_area_m2"].to_numpy(float)
    feature = facilities["feature"].to_numpy()
    for i in range(n):
        if isinstance(given[i], str) and given[i]:
            out[i], how[i] = given[i], "plan"
            continue
        cand = sorted(
            (lv for lv in present.get(cats[i], ()) if is_at_or_above(estate_level, lv)), key=LEVELS.index
        )
        if len(cand) == 1:
            out[i], how[i] = cand[0], "rules"
            continue
        if len(cand) > 1:
            fit = [
                lv for lv in cand if any(_fits(r, floor[i], land[i]) for r in ranges.get((cats[i], lv), ()))
            ]
            if len(fit) == 1:
                out[i], how[i] = fit[0], "area"
                continue
            raise InputError(
                f"{label}: feature {feature[i]} (category={cats[i]}) "
                f"could serve the {' or '.join(cand)} level "
                f"and its areas {'fit ' + ' and '.join(fit) if fit else 'fit neither'}; give it `level` "
                f"({' or '.join(repr(c) for c in cand)})"
            )
        cat = categories.get(cats[i])
        lv = getattr(cat, "level", None)
        if lv in LEVELS:
            out[i], how[i] = lv, "category"
    return out, how


def _fits(rule: Rule, floor_m2: float, land_m2: float) -> bool:
    value = floor_m2 if rule.area == "floor" else land_m2
    return any(lo - REL_TOL * max(1.0, lo) <= value <= hi + REL_TOL * max(1.0, hi) for lo, hi in rule.ranges)


def assign_green_levels(
    green: gpd.GeoDataFrame, rules: Sequence[Rule], estate_level: str
) -> tuple[np.ndarray, np.ndarray]:
    """Level of each green space: its ``level``, else the largest level (at or below the
    estate's) whose park size (``green_space_park`` rules) it reaches, else the smallest
    level with a green-space rule."""
    park_min = {}
    for r in rules:
        if r.measure == "green_space_park" and r.level:
            park_min[r.level] = min(park_min.get(r.level, math.inf), r.ranges[0][0])
    green_levels = sorted(
        {
            r.level
            for r in rules
            if r.measure.startswith("green_space") and r.level and is_at_or_above(estate_level, r.level)
        },
        key=LEVELS.index,
    )
    n = len(green)
    out = np.full(n, None, dtype=object)
    how = np.full(n, "", dtype=object)
    given = green["level"].to_numpy(object) if n else np.zeros(0, object)
    area = green["area_m2"].to_numpy(float) if n else np.zeros(0)
    for i in range(n):
        if isinstance(given[i], str) and given[i]:
            out[i], how[i] = given[i], "plan"
            continue
        big = [lv for lv in green_levels if lv in park_min and area[i] >= park_min[lv] * (1 - REL_TOL)]
        if big:
            out[i], how[i] = big[0], "park size"
        elif green_levels:
            out[i], how[i] = green_levels[-1], "below every park size"
    return out, how


# --------------------------------------------------------------------------------------------
# plan-level measures: each returns (passes, value, shortfall, note, details)


def evaluate(rule: Rule, plan: Plan, n_areas: int) -> tuple[bool, float | None, float | None, str, dict]:
    """Evaluate a plan-level measure (the ones :mod:`planner.review.evaluate` hands over)."""
    fn = {
        "green_space_per_resident": _green_per_resident,
        "green_space_park": _green_park,
        "activity_share": _activity_share,
        "floor_area_share": _floor_area_share,
        "adjacent_to": _adjacent,
        "facility_area_min_each": _min_each,
    }[rule.measure]
    return fn(rule, plan, n_areas)


def _at_least(value: float, threshold: float) -> bool:
    return value >= threshold - REL_TOL * max(1.0, abs(threshold))


def _green_of(plan: Plan, level: str) -> gpd.GeoDataFrame:
    g = plan.green
    return g[(g["level"] == level).to_numpy()] if len(g) else g


def _green_per_resident(rule: Rule, plan: Plan, n_areas: int):
    g = _green_of(plan, rule.level)
    total = float(g["area_m2"].sum()) if len(g) else 0.0
    value = total / plan.population
    need = rule.ranges[0][0]
    ok = _at_least(value, need)
    details: dict[str, Any] = {
        "green_area_m2": round(total, 1),
        "residents": round(plan.population, 1),
        "green_space_features": [int(x) for x in g["feature"]] if len(g) else [],
    }
    if not ok:
        details["shortfall_area_m2"] = round((need - value) * plan.population, 1)
    note = "" if len(g) else f"no green_space of the {rule.level} level in the plan"
    return ok, value, 0.0 if ok else need - value, note, details


def _green_park(rule: Rule, plan: Plan, n_areas: int):
    g = _green_of(plan, rule.level)
    need = rule.ranges[0][0]
    areas = g["area_m2"].to_numpy(float) if len(g) else np.zeros(0)
    big = int(np.sum(areas >= need * (1 - REL_TOL)))
    largest = float(areas.max()) if len(areas) else 0.0
    details = {
        "parks_required": n_areas,
        "parks_planned": big,
        "green_areas_m2": {str(f): round(float(a), 1) for f, a in zip(g["feature"], areas, strict=True)}
        if len(g)
        else {},
    }
    ok = big >= n_areas
    if ok:
        return True, largest, 0.0, "", details
    if largest < need:
        note = (
            f"no green_space of the {rule.level} level reaches {need:,.0f} m²"
            if len(areas)
            else f"no green_space of the {rule.level} level in the plan"
        )
        if n_areas > 1:
            note += f"; {n_areas} are needed ({n_areas} {rule.level} areas)"
        return False, largest, need - largest, note, details
    return (
        False,
        largest,
        None,
        f"{big} of the {n_areas} parks needed ({n_areas} {rule.level} areas)",
        details,
    )


def _activity_share(rule: Rule, plan: Plan, n_areas: int):
    f = plan.facilities
    sel = (f["category"] == rule.category).to_numpy()
    if not sel.any():
        return False, None, None, f"no {rule.category} planned", {}
    act = f["activity_floor_area_m2"].to_numpy(float)[sel]
    floor = f["floor_area_m2"].to_numpy(float)[sel]
    ids = f["facility_id"].to_numpy(object)[sel]
    missing = [str(i) for i, a in zip(ids, act, strict=True) if not np.isfinite(a)]
    if missing:
        return (
            False,
            None,
            None,
            f"give activity_floor_area_m2 (floor area for residents' activities) for {', '.join(missing)}",
            {},
        )
    if floor.sum() <= 0:
        return False, None, None, f"the {rule.category} facilities have no floor area", {}
    value = 100.0 * float(act.sum()) / float(floor.sum())
    need = rule.ranges[0][0]
    ok = _at_least(value, need)
    details = {
        "activity_floor_area_m2": round(float(act.sum()), 1),
        "floor_area_m2": round(float(floor.sum()), 1),
    }
    if not ok:
        details["shortfall_area_m2"] = round(need / 100 * float(floor.sum()) - float(act.sum()), 1)
    return ok, value, 0.0 if ok else need - value, "", details


def _floor_area_share(rule: Rule, plan: Plan, n_areas: int):
    total = plan.total_floor_area_m2
    if total is None:
        return False, None, None, "give the estate's total_floor_area_m2 (all buildings above ground)", {}
    f = plan.facilities
    sel = (
        np.isin(f["category"].to_numpy(object), list(rule.target_categories)) if len(f) else np.zeros(0, bool)
    )
    part = float(f["floor_area_m2"].to_numpy(float)[sel].sum())
    value = 100.0 * part / total
    need = rule.ranges[0][0]
    ok = _at_least(value, need)
    details = {"floor_area_m2": round(part, 1), "total_floor_area_m2": round(total, 1)}
    if not ok:
        details["shortfall_area_m2"] = round(need / 100 * total - part, 1)
    return ok, value, 0.0 if ok else need - value, "", details


def _adjacent(rule: Rule, plan: Plan, n_areas: int):
    f = plan.facilities
    cats = f["category"].to_numpy(object)
    geoms = f.geometry.to_numpy()
    ids = f["facility_id"].to_numpy(object)
    mine = np.nonzero(cats == rule.category)[0]
    other = np.nonzero(cats == rule.other_category)[0]
    if len(other) == 0:
        return False, None, None, f"no {rule.other_category} planned to stand next to the {rule.category}", {}
    dist = np.array([shapely.distance(geoms[i], geoms[other]).min() for i in mine])
    value = float(dist.max())
    limit = rule.ranges[0][0]
    ok = value <= limit + REL_TOL * max(1.0, limit)
    details = {"distances_m": {str(ids[i]): round(float(d), 1) for i, d in zip(mine, dist, strict=True)}}
    note = (
        ""
        if ok
        else f"{ids[mine[int(dist.argmax())]]} is {value:,.0f} m from the nearest {rule.other_category}"
    )
    return ok, value, 0.0 if ok else value - limit, note, details


def _min_each(rule: Rule, plan: Plan, n_areas: int):
    f = plan.facilities
    sel = (f["category"] == rule.category).to_numpy()
    area = f["floor_area_m2" if rule.area == "floor" else "land_area_m2"].to_numpy(float)[sel]
    ids = f["facility_id"].to_numpy(object)[sel]
    need = rule.ranges[0][0]
    small = [(str(i), float(a)) for i, a in zip(ids, area, strict=True) if not _at_least(float(a), need)]
    value = float(area.min())
    details = {"facility_areas_m2": {str(i): round(float(a), 1) for i, a in zip(ids, area, strict=True)}}
    if not small:
        return True, value, 0.0, "", details
    note = "below the minimum: " + ", ".join(f"{i} ({a:,.0f} m²)" for i, a in small)
    return False, value, need - value, note, details


# --------------------------------------------------------------------------------------------
# the estate's level


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
        raise InputError(
            "rules: no pack defines life-circle levels; give `level` in the plan's estate feature"
        )
    for k, lv in enumerate(ranked):
        lo, hi = lv.households
        if households >= lo:
            how = f"derived from {households:g} households by {lv.clause} ({lv.id}: {lo:g}–{hi:g})"
            if households > hi:
                how += (
                    "; above every range" if k == 0 else "; above that range and below the next level"
                ) + ": set `level` in the plan to choose"
            if not lv.confirmed:
                how += "; this level's range is to confirm"
            return lv.id, how
    smallest = ranked[-1]
    lo, hi = smallest.households
    return smallest.id, (
        f"derived from {households:g} households by {smallest.clause} "
        f"(below the {smallest.id} range {lo:g}–{hi:g})"
    )


def default_levels() -> list[Level]:
    """The life-circle levels of GB 50180-2018 (cl. 3.0.4)."""
    return load_rulepack("gb50180-2018").levels


def levels_of(packs: list[RulePack]) -> list[Level]:
    """The life-circle levels of the first pack that defines them (default: GB 50180-2018's)."""
    for pack in packs:
        if pack.levels:
            return pack.levels
    return default_levels()


def with_levels(plan: Plan, rules: list[Rule], categories: dict) -> Plan:
    """The plan with the level each facility and green space serves (see the module doc)."""
    label = Path(plan.source).name
    facilities = plan.facilities.copy()
    if "level" not in facilities.columns:
        facilities["level"] = None
    lv, how = assign_facility_levels(facilities, rules, categories, plan.level, label)
    facilities["level"], facilities["level_source"] = lv, how
    green = plan.green.copy()
    if "level" not in green.columns:
        green["level"] = None
    glv, ghow = assign_green_levels(green, rules, plan.level)
    green["level"], green["level_source"] = glv, ghow
    return replace(plan, facilities=facilities, green=green, notes=list(plan.notes))
