"""Life-circle coverage: the share of homes (and people, elderly, children, disabled) within
each category's target and within 5/10/15 minutes, the complete basic life circle per level,
and the co-location of community health centres with elderly care (the audit's tables).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings
from planner.categories import Category
from planner.demand import weighted_share

#: Life-circle levels of GB 50180-2018, smallest first; a level's circle includes the lower ones.
LEVELS = ("block", "5min", "10min", "15min")
#: Levels whose complete basic circle the audit reports (a block has no walking distance).
CIRCLE_LEVELS = {"5min": 5, "10min": 10, "15min": 15}
COMPLETE_KEY = "complete_life_circle"
#: Times within this of a threshold count as at it (float noise of sums of edge times).
_EPS_S = 1e-6
_COVERAGE_COLUMNS = [
    "category",
    "name_zh",
    "name_en",
    "level",
    "basic",
    "threshold",
    "minutes",
    "target_m",
    "target_minutes",
    "target_unit",
    "target_source",
    "confirmed",
    "homes_share",
    "population_share",
    "elderly_share",
    "children_share",
    "disabled_share",
    "population_outside",
]


def coverage_counts(coverage: pd.DataFrame, homes: pd.DataFrame) -> pd.DataFrame:
    """The coverage table with the people behind each share: ``homes_within``,
    ``population_within``, ``elderly_within``, ``children_within``, ``disabled_within``, whole
    numbers (:func:`planner.tables.whole_people`) as ``coverage.csv`` holds them and
    :func:`planner.batch.indicator_rows` rolls them up."""
    from planner.tables import whole_people

    out = coverage.copy()
    out["homes_within"] = whole_people(coverage["homes_share"].to_numpy(float) * len(homes)).astype(int)
    total = float(homes["population"].sum()) if len(homes) else 0.0
    out["population_within"] = whole_people(total - coverage["population_outside"].to_numpy(float))
    for g in ("elderly", "children", "disabled"):
        g_total = float(homes[g].sum()) if g in homes.columns else 0.0
        out[f"{g}_within"] = whole_people(coverage[f"{g}_share"].to_numpy(float) * g_total)
    return out[[c for c in out.columns if c != "population_outside"] + ["population_outside"]]


def covered_at_target(
    homes: pd.DataFrame, cat: Category, elderly_time_factor: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Homes within the category's target, in the target's own unit: for everyone and for the
    elderly.

    A metre target is judged on ``<key>_dist_m`` (network metres, the same for every walker);
    a minute target on ``<key>_time_s`` (for the elderly scaled by ``elderly_time_factor``).
    """
    if cat.unit == "m":
        col = f"{cat.key}_dist_m"
        if col not in homes.columns:
            raise KeyError(f"homes have no {col} column for the metre target of {cat.key}")
        inside = np.nan_to_num(homes[col].to_numpy(float), nan=np.inf) <= cat.target_m
        return inside, inside
    t = np.nan_to_num(homes[f"{cat.key}_time_s"].to_numpy(float), nan=np.inf)
    limit = cat.target_minutes * 60.0 + _EPS_S
    return t <= limit, t * elderly_time_factor <= limit


def coverage_table(
    homes: pd.DataFrame,
    categories: Sequence[Category],
    minutes: Sequence[int],
    elderly_time_factor: float = 1.0,
) -> pd.DataFrame:
    """Shares of homes, people, elderly and children within each threshold of each category,
    and at the category's own target.

    ``elderly_time_factor`` scales times for the elderly (walking speed / elderly walking
    speed): on a walk network every edge is walked at one speed, so a slower walker's time
    is exactly proportional. A metre target is a distance, the same for every walker. Homes
    with no reachable facility count as outside.

    Returns
    -------
    pandas.DataFrame
        One row per category and threshold (``threshold`` "minutes", ``minutes`` the
        threshold) and one at its target (``threshold`` "target"; ``minutes`` empty for a
        metre target). Columns ``category``, ``name_zh``, ``name_en``, ``level``, ``basic``,
        ``threshold``, ``minutes``, ``target_m``, ``target_minutes`` (the one of the source's
        unit; the other empty), ``target_unit``, ``target_source``, ``confirmed``,
        ``homes_share``, ``population_share``, ``elderly_share``, ``children_share``,
        ``disabled_share``, ``population_outside``.
    """
    rows = []
    weights = _weights(homes)
    for cat in categories:
        t = np.nan_to_num(homes[f"{cat.key}_time_s"].to_numpy(float), nan=np.inf)
        head = {
            "category": cat.key,
            "name_zh": cat.name_zh,
            "name_en": cat.name_en,
            "level": cat.level,
            "basic": cat.basic,
            "target_m": cat.target_m if cat.target_m is not None else np.nan,
            "target_minutes": cat.target_minutes if cat.target_minutes is not None else np.nan,
            "target_unit": cat.unit,
            "target_source": cat.source,
            "confirmed": cat.confirmed,
        }
        for m in minutes:
            limit = m * 60.0 + _EPS_S
            rows.append(
                {
                    **head,
                    "threshold": "minutes",
                    "minutes": m,
                    **_shares(weights, t <= limit, t * elderly_time_factor <= limit),
                }
            )
        inside, inside_elderly = covered_at_target(homes, cat, elderly_time_factor)
        rows.append(
            {
                **head,
                "threshold": "target",
                "minutes": cat.target_minutes if cat.unit == "min" else np.nan,
                **_shares(weights, inside, inside_elderly),
            }
        )
    return pd.DataFrame(rows, columns=_COVERAGE_COLUMNS)


def complete_life_circle(
    homes: pd.DataFrame, categories: Sequence[Category], elderly_time_factor: float = 1.0
) -> dict[str, dict]:
    """Homes whose whole basic life circle of each level is complete.

    A level's basic circle is every ``basic`` category of that level and of the levels
    below it (GB 50180-2018: the levels nest; the block's basics count in the 5-minute
    circle), each within its own target.

    Returns
    -------
    dict
        Level ("5min", "10min", "15min") → ``{"categories": keys, "homes": bool array,
        "elderly": bool array}``; levels with no basic category among ``categories`` are left out.
    """
    out = {}
    for level in CIRCLE_LEVELS:
        rank = LEVELS.index(level)
        members = [c for c in categories if c.basic and c.level in LEVELS and LEVELS.index(c.level) <= rank]
        if not members:
            continue
        done = np.ones(len(homes), bool)
        done_elderly = np.ones(len(homes), bool)
        for cat in members:
            inside, inside_elderly = covered_at_target(homes, cat, elderly_time_factor)
            done &= inside
            done_elderly &= inside_elderly
        out[level] = {"categories": [c.key for c in members], "homes": done, "elderly": done_elderly}
    return out


def complete_rows(
    homes: pd.DataFrame, categories: Sequence[Category], elderly_time_factor: float = 1.0
) -> pd.DataFrame:
    """``complete_life_circle`` rows of the coverage table, one per level (see
    :func:`complete_life_circle`)."""
    by_key = {c.key: c for c in categories}
    rows = []
    for level, done in complete_life_circle(homes, categories, elderly_time_factor).items():
        rows.append(
            {
                "category": COMPLETE_KEY,
                "name_zh": "完整基本生活圈",
                "name_en": "Complete basic life circle",
                "level": level,
                "basic": True,
                "threshold": "target",
                "minutes": CIRCLE_LEVELS[level],
                "target_m": np.nan,
                "target_minutes": np.nan,
                "target_unit": "",
                "target_source": "every basic category of the level and the levels below within its own "
                "target: " + ", ".join(f"{k} {by_key[k].target_label}" for k in done["categories"]),
                "confirmed": all(by_key[k].confirmed for k in done["categories"]),
                **_shares(_weights(homes), done["homes"], done["elderly"]),
            }
        )
    return pd.DataFrame(rows, columns=_COVERAGE_COLUMNS)


def complete_life_circle_summary(
    coverage: pd.DataFrame, categories: Sequence[Category], facility_counts: dict | None = None
) -> dict:
    """The complete-circle rows of a coverage table as a JSON-ready dict, per level, with the
    basic categories counted, those with no facility mapped (no home can complete the
    circle: often a gap of the map, not of the city) and those of the level not audited."""
    from planner.categories import load_categories

    audited = {c.key for c in categories}
    every = [c for c in load_categories().values() if c.basic and c.level in LEVELS]
    out = {}
    for row in coverage[coverage["category"] == COMPLETE_KEY].itertuples():
        rank = LEVELS.index(row.level)
        members = [c for c in categories if c.basic and c.level in LEVELS and LEVELS.index(c.level) <= rank]
        out[row.level] = {
            "homes_share": float(row.homes_share),
            "population_share": float(row.population_share),
            "elderly_share": float(row.elderly_share),
            "children_share": float(row.children_share),
            "categories": {c.key: c.target_label for c in members},
            "basic_categories_without_facilities": [
                c.key for c in members if facility_counts is not None and facility_counts.get(c.key, 0) == 0
            ],
            "basic_categories_not_audited": [
                c.key for c in every if c.key not in audited and LEVELS.index(c.level) <= rank
            ],
        }
    return out


def _weights(homes: pd.DataFrame) -> dict[str, np.ndarray]:
    """The homes' people per group, read once for all the shares of a table."""
    return {g: homes[g].to_numpy(float) for g in ("population", "elderly", "children", "disabled")}


def _shares(weights: dict[str, np.ndarray], inside: np.ndarray, inside_elderly: np.ndarray) -> dict:
    pop, groups = weights["population"], weights
    return {
        "homes_share": weighted_share(inside, np.ones_like(pop)),
        "population_share": weighted_share(inside, pop),
        "elderly_share": weighted_share(inside_elderly, groups["elderly"]),
        "children_share": weighted_share(inside, groups["children"]),
        "disabled_share": weighted_share(inside, groups["disabled"]),
        "population_outside": float(pop[~inside].sum()),
    }


def category_summary(c: Category) -> dict:
    return {
        "name_zh": c.name_zh,
        "name_en": c.name_en,
        "level": c.level,
        "target_m": c.target_m,
        "target_minutes": c.target_minutes,
        "target_unit": c.unit,
        "target_source": c.source,
        "confirmed": c.confirmed,
        "basic": c.basic,
        "basic_source": c.basic_source,
    }


# ----------------------------------------------------------------------------------------------
# co-location of health centres and elderly care

_HEALTH_CENTRE_NAME = re.compile(r"社区卫生服务中心|卫生服务中心|卫生院")


def co_location(facilities: gpd.GeoDataFrame, distance_m: float | None = None) -> dict:
    """Community health centres next to, or not next to, an elderly-care institution.

    国办发〔2021〕56号 (十一) asks for the community health service centre to be built next to
    the community elderly-care institution (毗邻建设). The plan gives no distance: two
    facilities count as adjacent when their outlines are within ``distance_m``
    (``settings.colocation_distance_m``, an assumption) in a straight line. Health centres
    are the ``health_centre`` facilities named as community health centres or township
    health centres (hospitals are not asked to co-locate).
    """
    dist = settings.colocation_distance_m if distance_m is None else float(distance_m)
    out = {
        "rule": "社区卫生服务中心与社区养老服务机构毗邻建设 "
        "(community health centre next to the elderly-care institution)",
        "source": "国办发〔2021〕56号《“十四五”城乡社区服务体系建设规划》(十一)",
        "distance_m": dist,
        "distance_source": "assumption (the plan gives no distance): outlines within "
        "settings.colocation_distance_m, straight line",
    }
    cats = set(facilities["category"])
    if not {"health_centre", "elderly_care"} <= cats:
        missing = sorted({"health_centre", "elderly_care"} - cats)
        return {**out, "checked": False, "reason": "no facility of " + ", ".join(missing) + " in the audit"}
    names = facilities["name"].fillna("").astype(str)
    hc = facilities[
        (facilities["category"] == "health_centre").to_numpy()
        & names.str.contains(_HEALTH_CENTRE_NAME).to_numpy()
    ]
    ec = facilities[(facilities["category"] == "elderly_care").to_numpy()].drop_duplicates("facility_id")
    hc = hc.drop_duplicates("facility_id")
    detail = []
    ec_adjacent = np.zeros(len(ec), bool)
    if len(hc):
        tree = shapely.STRtree(ec.geometry.to_numpy())
        near_idx, near_d = tree.query_nearest(hc.geometry.to_numpy(), return_distance=True, all_matches=False)
        ec_adjacent[np.unique(tree.query(hc.geometry.to_numpy(), predicate="dwithin", distance=dist)[1])] = (
            True
        )
        for (i, j), d in zip(near_idx.T, near_d, strict=True):
            row, other = hc.iloc[i], ec.iloc[j]
            detail.append(
                {
                    "facility_id": str(row["facility_id"]),
                    "name": row["name"],
                    "nearest_elderly_care_id": str(other["facility_id"]),
                    "nearest_elderly_care_name": other["name"],
                    "distance_m": round(float(d), 1),
                    "adjacent": bool(d <= dist),
                }
            )
    n_adj = sum(d["adjacent"] for d in detail)
    return {
        **out,
        "checked": True,
        "health_centres": len(detail),
        "adjacent": n_adj,
        "not_adjacent": len(detail) - n_adj,
        "elderly_care_facilities": len(ec),
        "elderly_care_next_to_a_health_centre": int(ec_adjacent.sum()),
        "health_centres_detail": detail,
    }
