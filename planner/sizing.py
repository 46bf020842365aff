"""How big a new facility is, how many residents it serves, how far apart two must be.

A category's :class:`Sizing` comes from the GB 50180-2018 rule pack (the appendix's floor
and land area ranges of the category's level, ``rules/gb50180-2018.toml``), from
``data/sizing.toml`` (capacities and per-1,000-resident indicators, each with its source and
whether it was read there) and from :mod:`planner.settings` (the minimum spacing and minimum
catchment, planner's assumptions derived from GB 50180-2018, each with the clause its number
is read from: :data:`CATCHMENT_CLAUSES`). :func:`candidate_capacity` turns a candidate's floor
area or places into the residents it can serve; :func:`existing_capacity` does the same for a mapped
facility whose size is known.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from planner import settings
from planner._errors import InputError
from planner.categories import DATA_DIR, Category

_FIELDS = {
    "category",
    "floor_m2",
    "floor_max_m2",
    "land_m2",
    "area_source",
    "area_confirmed",
    "residents_per_facility",
    "floor_m2_per_1000_residents",
    "places_per_1000_residents",
    "capacity_source",
    "capacity_confirmed",
    "min_catchment_residents",
    "min_spacing_m",
}


#: Each level's minimum catchment is the low end of the level below in GB 50180-2018 table
#: 3.0.4 (居住区分级控制规模): the row, and whether it was read (two independent reproductions:
#: ../shared/standards/life_circle_facts.md; the 10-minute row also in 中国大百科全书 "十分钟生活圈
#: 居住区"). No clause makes it a minimum catchment: that use stays a planner's assumption.
CATCHMENT_CLAUSES = {
    "5min": (1000.0, "GB 50180-2018 table 3.0.4: 居住街坊 block 1,000–3,000 residents", True),
    "10min": (
        5000.0,
        "GB 50180-2018 table 3.0.4: 五分钟生活圈居住区 5,000–12,000 residents (row to confirm)",
        False,
    ),
    "15min": (15000.0, "GB 50180-2018 table 3.0.4: 十分钟生活圈居住区 15,000–25,000 residents", True),
}


@dataclass(frozen=True)
class Sizing:
    """What one new facility of a category needs and serves.

    Attributes
    ----------
    category : str
    floor_m2, land_m2 : float or None
        Smallest standard building floor / land area (None: the standards give none).
    floor_max_m2 : float or None
        Top of the standard building range: a larger candidate is used at this size.
    residents_per_facility : float
        Capacity of a facility of the standard size, residents (``inf``: no size given).
    floor_m2_per_1000_residents, places_per_1000_residents : float or None
        Indicators that turn a candidate's floor area or places into its capacity.
    min_catchment_residents : float
        A new facility taking fewer residents is not proposed.
    min_spacing_m : float
        No two facilities of the category closer than this (straight line).
    sources : dict
        ``area``, ``capacity``, ``catchment``, ``spacing`` → (source text, confirmed);
        ``catchment_clause``, ``spacing_clause``: the clause the catchment's number or the
        spacing's radius is read from (confirmed: read there), where there is one.
    """

    category: str
    floor_m2: float | None
    floor_max_m2: float | None
    land_m2: float | None
    residents_per_facility: float
    floor_m2_per_1000_residents: float | None
    places_per_1000_residents: float | None
    min_catchment_residents: float
    min_spacing_m: float
    sources: dict

    def as_dict(self) -> dict:
        """JSON-ready, for ``summary.json``."""
        out = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in self.__dict__.items()
            if k != "sources"
        }
        out["sources"] = {k: {"source": s, "confirmed": c} for k, (s, c) in self.sources.items()}
        return out


def sizing_for(category: Category, level: str | None = None) -> Sizing:
    """The sizing of a category at ``level`` (default its own): the rule pack's area ranges,
    its entry of ``data/sizing.toml`` and the settings' spacing and catchment. A category
    without either needs no particular land, has no capacity limit and only the spacing and
    catchment of its level."""
    row = {**_table().get(category.key, {}), **_pack_areas(category.key, level or category.level)}
    spacing, spacing_src = _spacing(row, category)
    catchment, catch_src = _catchment(row, category)
    return Sizing(
        category=category.key,
        floor_m2=row.get("floor_m2"),
        floor_max_m2=row.get("floor_max_m2"),
        land_m2=row.get("land_m2"),
        residents_per_facility=float(row.get("residents_per_facility", math.inf)),
        floor_m2_per_1000_residents=row.get("floor_m2_per_1000_residents"),
        places_per_1000_residents=row.get("places_per_1000_residents"),
        min_catchment_residents=float(catchment),
        min_spacing_m=float(spacing),
        sources={
            "area": (
                row.get("area_source", "no standard size for this category"),
                bool(row.get("area_confirmed", False)),
            ),
            "capacity": (
                row.get("capacity_source", "no standard capacity: no limit"),
                bool(row.get("capacity_confirmed", False)),
            ),
            **catch_src,
            **spacing_src,
        },
    )


def _spacing(row: dict, category: Category) -> tuple[float, dict]:
    """The minimum spacing and its sources: no clause gives one; the default is a multiple
    of the category's service radius, which has its own source."""
    if row.get("min_spacing_m") is not None:
        return float(row["min_spacing_m"]), {
            "spacing": (f"min_spacing_m of data/sizing.toml for {category.key}", False)
        }
    return settings.min_spacing_factor * category.metres, {
        "spacing": (
            f"settings.min_spacing_factor ({settings.min_spacing_factor:g}) × the service radius "
            f"{category.metres:g} m: a planner's assumption (no clause sets a spacing)",
            False,
        ),
        "spacing_clause": (
            f"service radius {category.metres:g} m: {category.source}",
            bool(category.confirmed),
        ),
    }


def _catchment(row: dict, category: Category) -> tuple[float, dict]:
    """The minimum catchment and its sources (:data:`CATCHMENT_CLAUSES`)."""
    if row.get("min_catchment_residents") is not None:
        return float(row["min_catchment_residents"]), {
            "catchment": (f"min_catchment_residents of data/sizing.toml for {category.key}", False)
        }
    value = float(settings.min_catchment_residents.get(category.level, 0.0))
    out = {
        "catchment": (
            f"settings.min_catchment_residents[{category.level!r}] = {value:,.0f}: one area of the "
            "level below (GB 50180-2018 table 3.0.4); as a minimum catchment a planner's assumption",
            False,
        )
    }
    clause = CATCHMENT_CLAUSES.get(category.level)
    if clause is not None and clause[0] == value:  # not when the settings were changed
        out["catchment_clause"] = (f"{clause[1]} (its low end)", clause[2])
    return value, out


def fits(sizing: Sizing, land_m2: np.ndarray, floor_m2: np.ndarray) -> np.ndarray:
    """Which candidates are big enough: land at least ``land_m2`` where known and floor at
    least ``floor_m2`` where known (NaN: not known, so not refused)."""
    land = np.asarray(land_m2, float)
    floor = np.asarray(floor_m2, float)
    ok = np.ones(len(land), bool)
    if sizing.land_m2 is not None:
        ok &= ~(land < sizing.land_m2)
    if sizing.floor_m2 is not None:
        # A plot of land may host a new building: refuse on floor only where no land is known.
        ok &= ~((floor < sizing.floor_m2) & ~(land >= (sizing.land_m2 or sizing.floor_m2)))
    return ok


def candidate_capacity(
    sizing: Sizing, floor_m2: np.ndarray | None = None, places: np.ndarray | None = None
) -> np.ndarray:
    """Residents each candidate can serve.

    A candidate's ``places`` with a places indicator, else its floor area (capped at the
    standard range's top) with a floor indicator, else the standard facility's capacity.
    With a floor indicator and no known floor area, the standard size is assumed.
    """
    n = len(floor_m2) if floor_m2 is not None else len(places) if places is not None else 0
    cap = np.full(n, sizing.residents_per_facility, float)
    if sizing.floor_m2_per_1000_residents and floor_m2 is not None:
        floor = np.asarray(floor_m2, float)
        standard = sizing.floor_max_m2 or sizing.floor_m2 or np.nan
        used = np.where(np.isfinite(floor), np.minimum(floor, sizing.floor_max_m2 or np.inf), standard)
        cap = np.where(np.isfinite(used), used / sizing.floor_m2_per_1000_residents * 1000.0, cap)
    if sizing.places_per_1000_residents and places is not None:
        p = np.asarray(places, float)
        cap = np.where(np.isfinite(p), p / sizing.places_per_1000_residents * 1000.0, cap)
    return cap


def existing_capacity(sizing: Sizing, facilities: pd.DataFrame) -> np.ndarray:
    """Residents each existing facility serves, from its mapped size where known: a floor
    area (``floor_area_m2``, or a polygon's footprint × ``building:levels``) with a floor
    indicator, ``capacity`` places with a places indicator; else ``inf`` (unknown: no limit)."""
    n = len(facilities)
    cap = np.full(n, np.inf)
    if n == 0:
        return cap
    floor = _mapped_floor(facilities)
    if sizing.floor_m2_per_1000_residents:
        cap = np.where(np.isfinite(floor), floor / sizing.floor_m2_per_1000_residents * 1000.0, cap)
    if sizing.places_per_1000_residents and "tags" in facilities:
        places = facilities["tags"].map(lambda t: _number(_tags(t).get("capacity"))).to_numpy(float)
        cap = np.where(np.isfinite(places), places / sizing.places_per_1000_residents * 1000.0, cap)
    return cap


def _mapped_floor(facilities: pd.DataFrame) -> np.ndarray:
    """Floor area of each facility where its map says: ``floor_area_m2``, else a polygon's
    area × ``building:levels`` (a building polygon only)."""
    n = len(facilities)
    floor = np.full(n, np.nan)
    if "floor_area_m2" in facilities:
        floor = pd.to_numeric(facilities["floor_area_m2"], errors="coerce").to_numpy(float)
    if "tags" in facilities:
        tags = [_tags(t) for t in facilities["tags"]]
        geoms = facilities.geometry
        poly = geoms.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
        levels = np.array([_number(t.get("building:levels")) if t.get("building") else np.nan for t in tags])
        area = np.where(poly, geoms.area.to_numpy(), np.nan)
        floor = np.where(np.isfinite(floor), floor, area * levels)
    return floor


def _tags(value) -> dict:
    """A facility's OSM tags; none (NaN) for a facility from the user's file."""
    return value if isinstance(value, dict) else {}


def _number(value) -> float:
    try:
        v = float(str(value).strip())
    except (TypeError, ValueError):
        return np.nan
    return v if math.isfinite(v) and v > 0 else np.nan


@lru_cache(maxsize=64)
def _pack_areas(key: str, level: str) -> dict:
    """Floor and land area ranges of ``key`` at ``level`` in the GB 50180-2018 rule pack, as
    ``floor_m2``, ``floor_max_m2``, ``land_m2`` and the source of the first found."""
    from planner.rules import load_rulepack

    pack = load_rulepack("gb50180-2018")
    out: dict = {}
    sources = []
    for rule in pack.rules:
        if rule.measure != "facility_area_range" or rule.category != key or rule.level != level:
            continue
        low = min(lo for lo, _ in rule.ranges)
        high = max(hi for _, hi in rule.ranges)
        if rule.area == "floor":
            out.update(floor_m2=low, floor_max_m2=high)
        else:
            out["land_m2"] = low
        sources.append((f"{pack.id} {rule.id}: {rule.clause} {rule.threshold} m²", rule.confirmed))
    if sources:
        out["area_source"] = "; ".join(s for s, _ in sources)
        out["area_confirmed"] = all(c for _, c in sources)
    return out


@lru_cache(maxsize=1)
def _table() -> dict[str, dict]:
    path = DATA_DIR / "sizing.toml"
    with open(path, "rb") as f:
        rows = tomllib.load(f).get("sizing", [])
    out = {}
    for i, row in enumerate(rows, 1):
        unknown = set(row) - _FIELDS
        if unknown or "category" not in row:
            raise InputError(f"{path}: sizing entry {i}: unknown field {sorted(unknown)} or no category")
        out[row["category"]] = row
    return out
