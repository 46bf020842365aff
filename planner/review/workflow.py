"""The review of an estate plan, start to end: :func:`review` reads the plan and the rule
packs, measures the walks and judges every rule; :func:`run_review` (the ``planner review``
command) also writes the report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd

from planner._errors import InputError
from planner.review.distances import measure_distances
from planner.review.evaluate import STATUSES, RuleResult, evaluate_rules, not_applicable_reason
from planner.review.levels import level_areas, levels_of, with_levels
from planner.review.plan import Plan, read_plan
from planner.review.report import write_report
from planner.rules import RulePack, load_rulepack

#: Rule packs checked when none are named: the national ones. Provincial packs
#: (``elderly-care-<province>``) are added by name.
DEFAULT_RULES: tuple[str, ...] = ("gb50180-2018", "community-service", "elderly-childcare")


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
        return {s: sum(r.status == s for r in self.results) for s in STATUSES}

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
            {
                "rule_id": r.rule.id,
                "level": r.rule.level,
                "category": r.rule.category,
                "required": r.details.get("required"),
                "planned": int(r.value or 0),
                "strength": r.rule.strength,
            }
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
            "fails_by_strength": {
                s: sum(r.status == "fail" and r.rule.strength == s for r in self.results)
                for s in ("mandatory", "local")
            },
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
                {
                    "id": k.id,
                    "title_zh": k.title_zh,
                    "title_en": k.title_en,
                    "source": k.source,
                    "scope": k.scope,
                    "province": k.province,
                    "city": k.city,
                    "file": str(k.path),
                }
                for k in self.packs
            ],
            "notes": p.notes + self.notes,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def run_review(
    plan_path: str | os.PathLike,
    rules: Sequence[str | os.PathLike] | str | None = None,
    osm: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "review",
    categories_file: str | os.PathLike | None = None,
    coords: str | None = None,
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
    coords : {"wgs84", "gcj02", "bd09"}, optional
        Lon/lat of the plan (see :func:`planner.review.plan.read_plan`).

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

    result = review(
        plan_path, rules=rules, osm=osm, categories=load_categories(categories_file), coords=coords
    )
    with atomic_dir(out_dir) as tmp:
        write_report(result, tmp)
    return result.exit_code


def review(
    plan: str | os.PathLike | Plan,
    rules: Sequence[str | os.PathLike] | str | None = None,
    osm: str | os.PathLike | None = None,
    categories: dict | None = None,
    coords: str | None = None,
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
    coords : {"wgs84", "gcj02", "bd09"}, optional
        Lon/lat of a plan file (see :func:`planner.review.plan.read_plan`).

    Returns
    -------
    Review
    """
    start = time.perf_counter()
    if categories is None:
        from planner.categories import load_categories

        categories = load_categories()
    packs = load_packs(rules, categories)
    levels = levels_of(packs)
    if not isinstance(plan, Plan):
        plan = read_plan(plan, categories=categories, levels=levels, coords=coords)
    all_rules = [r for pack in packs for r in pack.rules]
    plan = with_levels(plan, all_rules, categories)
    areas = level_areas(plan.households, plan.population, plan.level, levels)
    reasons = {r.id: not_applicable_reason(r, plan) for r in all_rules}
    radius_rules = [r for r in all_rules if r.measure == "service_radius_share" and not reasons[r.id]]
    found = measure_distances(plan, radius_rules, osm, categories)
    results = evaluate_rules(all_rules, reasons, areas, found)
    return Review(
        plan=found.plan,
        packs=packs,
        results=results,
        dwellings=found.dwellings,
        dwelling_source=found.dwelling_source,
        existing=found.existing,
        distance_method=found.method,
        network=found.network,
        notes=found.notes,
        elapsed_s=time.perf_counter() - start,
        category_labels={k: f"{c.name_zh} {k}" for k, c in categories.items()},
        osm=None if osm is None else str(osm),
        level_areas=areas,
    )


def load_packs(
    rules: Sequence[str | os.PathLike] | str | None, categories: dict | None = None
) -> list[RulePack]:
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
