"""Rule packs: the provisions of the Chinese standards as data (``planner/rules/*.toml``).

One TOML file per source (a national standard, a policy, a province's or a city's rules).
:func:`load_rulepack` reads a bundled pack by id or a user's file by path and checks it;
:func:`list_rulepacks` names the bundled ones. The format is described at the top of
``gb50180-2018.toml`` and in ``the README's "Rule packs" section.

Every value in a bundled pack comes from ``../shared/standards/life_circle_facts.md`` with
its clause; values the facts file lists as "to confirm" carry ``confirmed = false`` so the
review report flags them. Every rule has a ``strength`` (:data:`STRENGTHS`): ``mandatory``
(应/必须) and ``local`` rules fail an estate, ``advisory`` (宜) rules only give advice. A rule
with a ``level`` is about that life-circle level's facilities and applies to estates at that
level or above (levels nest; see :mod:`planner.review.levels`).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner._errors import InputError

_HERE = Path(__file__).resolve().parent

#: Life-circle levels of GB 50180-2018 cl. 3.0.4, largest first.
LEVELS = ("15min", "10min", "5min", "block")

#: How binding a rule is. ``mandatory``: a 应/必须 clause of a national text, a shortfall
#: fails the estate. ``advisory``: a 宜 clause (GB 50180's appendix areas per facility, most
#: service radii) or a target, reported as advice and never failing the estate. ``local``: a
#: province's or city's own rule, binding where that pack is loaded: it fails the estate.
STRENGTHS = ("mandatory", "advisory", "local")

#: What a rule measures, and the unit its threshold must be given in.
MEASURES: dict[str, tuple[str, ...]] = {
    # count of planned facilities of ``category`` (≥ threshold, default 1)
    "facility_present": ("facilities",),
    # at least one planned facility of ``category`` has its ``area`` within the range(s)
    "facility_area_range": ("m²",),
    # Σ ``area`` of ``category`` (or ``categories``; all facilities when neither) per 100 households
    "area_per_100_households": ("m²/100 households",),
    # same per 1,000 residents, and per resident
    "area_per_1000_residents": ("m²/1000 residents",),
    "area_per_resident": ("m²/resident",),
    # Σ ``places`` of ``category`` per 1,000 residents
    "places_per_1000_residents": ("places/1000 residents",),
    # the share of dwellings within ``threshold`` metres (along the network) of ``category``
    # must be at least ``min_share``
    "service_radius_share": ("m",),
    # every planned facility of ``category`` has its ``area`` at least ``threshold``
    "facility_area_min_each": ("m²",),
    # Σ area of the plan's ``green_space`` features of the rule's level per resident
    "green_space_per_resident": ("m²/resident",),
    # at least one ``green_space`` park of the rule's level per life-circle area of that level,
    # each of at least ``threshold`` m²
    "green_space_park": ("m²",),
    # Σ activity_floor_area_m2 / Σ floor_area_m2 of ``category`` (the comprehensive service
    # facility's floor area used for residents' activities), in per cent
    "activity_share": ("%",),
    # Σ floor area of ``categories`` / the estate's ``total_floor_area_m2``, in per cent
    "floor_area_share": ("%",),
    # every planned ``category`` facility lies within ``threshold`` metres (outline to outline)
    # of a planned ``other_category`` facility (毗邻建设, built next to each other)
    "adjacent_to": ("m",),
}
_AREA_MEASURES = {
    "facility_area_range",
    "facility_area_min_each",
    "area_per_100_households",
    "area_per_1000_residents",
    "area_per_resident",
}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_RULE_KEYS = {
    "id",
    "title_zh",
    "title_en",
    "clause",
    "source",
    "confirmed",
    "note",
    "applies",
    "measure",
    "category",
    "categories",
    "area",
    "threshold",
    "unit",
    "min_share",
    "enforce_max",
    "strength",
    "level",
    "other_category",
}
_APPLIES_KEYS = {"level", "households", "population"}


@dataclass(frozen=True)
class Level:
    """One life-circle level and its scale (GB 50180-2018 cl. 3.0.4)."""

    id: str
    title_zh: str
    title_en: str
    households: tuple[float, float] | None
    population: tuple[float, float] | None
    clause: str
    confirmed: bool


@dataclass(frozen=True)
class Rule:
    """One checkable provision.

    ``threshold`` is normalised to a tuple of ``(min, max)`` ranges: a single number ``t``
    becomes ``((t, inf),)``; ``[a, b]`` becomes ``((a, b),)``; ``[[a, b], [c, d]]`` stays
    a choice of ranges. A value passes when it lies in any range (bounds included).
    """

    id: str
    pack: str
    title_zh: str
    title_en: str
    source: str
    clause: str
    confirmed: bool
    measure: str
    unit: str
    ranges: tuple[tuple[float, float], ...]
    category: str | None = None
    categories: tuple[str, ...] = ()
    area: str = "floor"
    min_share: float = 1.0
    enforce_max: bool = True
    applies_level: tuple[str, ...] = ()
    applies_households: tuple[float, float] | None = None
    applies_population: tuple[float, float] | None = None
    note: str = ""
    #: ``mandatory``, ``advisory`` or ``local`` (see :data:`STRENGTHS`).
    strength: str = "mandatory"
    #: The life-circle level whose facilities the rule is about. Levels nest (GB 50180-2018
    #: table 5.0.2 note): the rule applies to estates at this level and every larger one, in
    #: as many areas of this level as the estate holds, and counts facilities of this level only.
    level: str | None = None
    #: For ``adjacent_to``: the category the facilities must stand next to.
    other_category: str | None = None

    @property
    def threshold(self) -> Any:
        """The threshold as written in JSON: a number (minimum), a [min, max] pair or a list of pairs."""
        if len(self.ranges) == 1:
            lo, hi = self.ranges[0]
            return lo if math.isinf(hi) else [lo, hi]
        return [[lo, hi] for lo, hi in self.ranges]

    @property
    def target_categories(self) -> tuple[str, ...]:
        """Categories the rule sums or looks for; empty means every facility."""
        return (self.category,) if self.category else self.categories


@dataclass
class RulePack:
    """A parsed rule pack."""

    id: str
    title_zh: str
    title_en: str
    source: str
    scope: str
    path: Path
    province: str = ""
    city: str = ""
    note: str = ""
    levels: list[Level] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)


def list_rulepacks() -> list[str]:
    """Ids of the bundled rule packs (file stems in ``planner/rules``), sorted."""
    return sorted(p.stem for p in _HERE.glob("*.toml"))


def load_rulepack(name_or_path: str | os.PathLike, categories: dict | None = None) -> RulePack:
    """Read and check a rule pack.

    Parameters
    ----------
    name_or_path : str or path
        A bundled pack id (see :func:`list_rulepacks`, e.g. ``"gb50180-2018"``) or the path
        of a TOML file in the same format (e.g. a city's local rules).
    categories : dict, optional
        Category key → Category, to check the pack's category keys; defaults to
        :func:`planner.categories.load_categories`.

    Returns
    -------
    RulePack

    Raises
    ------
    InputError
        Unknown pack, unreadable TOML, or a rule with a missing or wrong field.
    """
    path = _resolve(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(
            f"{path}: not valid TOML ({err}); see planner/rules/gb50180-2018.toml for the format"
        ) from None
    if categories is None:
        from planner.categories import load_categories

        categories = load_categories()
    return _parse_pack(data, path, categories)


def _resolve(name_or_path: str | os.PathLike) -> Path:
    text = str(name_or_path).strip()
    path = Path(text).expanduser()
    if path.is_file():
        return path
    bundled = _HERE / f"{text}.toml"
    if _ID.match(text) and bundled.is_file():
        return bundled
    if text.lower().endswith(".toml") or os.sep in text or "/" in text:
        raise InputError(f"{text}: rule pack file not found; check the path")
    raise InputError(
        f"--rules: unknown rule pack {text!r}; bundled packs: {', '.join(list_rulepacks())} "
        "(or give the path of your own .toml pack)"
    )


def _parse_pack(data: dict, path: Path, categories: dict) -> RulePack:
    head = data.get("pack")
    if not isinstance(head, dict):
        raise InputError(
            f"{path}: no [pack] table; start the file with [pack] id = ..., title_zh, title_en, source"
        )
    missing = [k for k in ("id", "title_zh", "title_en", "source") if not head.get(k)]
    if missing:
        raise InputError(f"{path}: [pack] is missing {', '.join(missing)}")
    pack_id = str(head["id"])
    if not _ID.match(pack_id):
        raise InputError(f"{path}: pack id {pack_id!r} may only use letters, digits, '.', '_' and '-'")
    scope = str(head.get("scope", "user"))
    if scope == "provincial" and not head.get("province"):
        raise InputError(f'{path}: a provincial pack must name its province ([pack] province = "...")')
    pack = RulePack(
        id=pack_id,
        title_zh=str(head["title_zh"]),
        title_en=str(head["title_en"]),
        source=str(head["source"]),
        scope=scope,
        path=path,
        province=str(head.get("province", "")),
        city=str(head.get("city", "")),
        note=str(head.get("note", "")),
    )
    for i, entry in enumerate(data.get("level", [])):
        pack.levels.append(_parse_level(entry, f"{path}: level {i + 1}"))
    seen: set[str] = set()
    for i, entry in enumerate(data.get("rule", [])):
        rule = _parse_rule(entry, f"{path}: rule {i + 1}", pack, categories)
        if rule.id in seen:
            raise InputError(f"{path}: rule id {rule.id!r} appears twice; rule ids must be unique")
        seen.add(rule.id)
        pack.rules.append(rule)
    if not pack.rules:
        raise InputError(f"{path}: no [[rule]] entries")
    return pack


def _parse_level(entry: dict, where: str) -> Level:
    if entry.get("id") not in LEVELS:
        raise InputError(f"{where}: id {entry.get('id')!r} must be one of {', '.join(LEVELS)}")
    return Level(
        id=entry["id"],
        title_zh=str(entry.get("title_zh", "")),
        title_en=str(entry.get("title_en", "")),
        households=_pair(entry.get("households"), f"{where}: households"),
        population=_pair(entry.get("population"), f"{where}: population"),
        clause=str(entry.get("clause", "")),
        confirmed=bool(entry.get("confirmed", False)),
    )


def _parse_rule(entry: dict, where: str, pack: RulePack, categories: dict) -> Rule:
    rid = entry.get("id")
    if rid:
        where = f"{where} ({rid})"
    _check_fields(entry, where)
    measure, unit, category, cats, other = _measure_of(entry, where, categories)
    strength = entry["strength"]
    if strength not in STRENGTHS:
        raise InputError(
            f"{where}: strength {strength!r} must be one of {', '.join(STRENGTHS)} "
            "(mandatory: 应/必须, fails the estate; advisory: 宜, advice only; "
            "local: a local pack's own rule)"
        )
    level = entry.get("level")
    if level is not None and level not in LEVELS:
        raise InputError(f"{where}: level {level!r} must be one of {', '.join(LEVELS)}")
    if measure in ("green_space_per_resident", "green_space_park") and level is None:
        raise InputError(f'{where}: measure {measure} needs level = "15min" | "10min" | "5min"')
    _check_category_needs(measure, category, other, where, categories)
    area, ranges, min_share = _threshold_of(entry, measure, where)
    applies, levels = _applies_of(entry, where)
    return Rule(
        id=str(rid),
        pack=pack.id,
        title_zh=str(entry["title_zh"]),
        title_en=str(entry["title_en"]),
        source=str(entry.get("source", pack.source)),
        clause=str(entry["clause"]),
        confirmed=_bool(entry["confirmed"], f"{where}: confirmed"),
        measure=measure,
        unit=unit,
        ranges=ranges,
        category=category,
        categories=cats,
        area=area,
        min_share=min_share,
        enforce_max=_bool(entry.get("enforce_max", True), f"{where}: enforce_max"),
        applies_level=levels,
        applies_households=_pair(applies.get("households"), f"{where}: applies.households"),
        applies_population=_pair(applies.get("population"), f"{where}: applies.population"),
        note=str(entry.get("note", "")),
        strength=strength,
        level=level,
        other_category=other,
    )


def _check_fields(entry: dict, where: str) -> None:
    """Every required field, no unknown one, a clean id, names as text and categories as a list."""
    missing = [
        k
        for k in (
            "id",
            "title_zh",
            "title_en",
            "clause",
            "measure",
            "threshold",
            "unit",
            "confirmed",
            "strength",
        )
        if k not in entry
    ]
    if missing:
        raise InputError(
            f"{where}: missing {', '.join(missing)}; every rule needs id, titles, clause, measure, "
            "threshold, unit, confirmed and strength"
        )
    unknown = sorted(set(entry) - _RULE_KEYS)
    if unknown:
        raise InputError(
            f"{where}: unknown field {unknown[0]!r}; known fields: {', '.join(sorted(_RULE_KEYS))}"
        )
    if not _ID.match(str(entry.get("id"))):
        raise InputError(f"{where}: rule id may only use letters, digits, '.', '_' and '-'")
    for name in ("measure", "unit", "strength", "category", "level"):  # names, never tables or lists
        if name in entry and not isinstance(entry[name], str):
            raise InputError(f"{where}: {name} = {entry[name]!r} must be text in quotes")
    if not isinstance(entry.get("categories", []), list) or not all(
        isinstance(k, str) for k in entry.get("categories", [])
    ):
        raise InputError(f"{where}: categories = {entry['categories']!r} must be a list of category keys")


def _measure_of(
    entry: dict, where: str, categories: dict
) -> tuple[str, str, str | None, tuple[str, ...], str | None]:
    """(measure, unit, category, categories, other_category), each one known."""
    measure = entry["measure"]
    if measure not in MEASURES:
        raise InputError(f"{where}: unknown measure {measure!r}; use one of {', '.join(MEASURES)}")
    unit = str(entry["unit"])
    if unit not in MEASURES[measure]:
        raise InputError(
            f"{where}: unit {unit!r} does not fit measure {measure}; use {MEASURES[measure][0]!r}"
        )
    category = entry.get("category")
    cats = tuple(entry.get("categories", ()))
    for key in ([category] if category else []) + list(cats):
        if key not in categories:
            raise InputError(f"{where}: unknown category {key!r}; use one of: {', '.join(categories)}")
    return measure, unit, category, cats, entry.get("other_category")


def _check_category_needs(
    measure: str, category: str | None, other: str | None, where: str, categories: dict
) -> None:
    """Measures about a facility name its category; co-location names the other one too."""
    if (measure == "adjacent_to") != (other is not None):
        raise InputError(f"{where}: other_category is needed by measure adjacent_to and only by it")
    if other is not None and other not in categories:
        raise InputError(f"{where}: unknown other_category {other!r}; use one of: {', '.join(categories)}")
    needs_category = measure in (
        "facility_present",
        "facility_area_range",
        "facility_area_min_each",
        "service_radius_share",
        "places_per_1000_residents",
        "activity_share",
        "adjacent_to",
    )
    if needs_category and not category:
        raise InputError(f'{where}: measure {measure} needs category = "<key>"')


def _threshold_of(
    entry: dict, measure: str, where: str
) -> tuple[str, tuple[tuple[float, float], ...], float]:
    """(area, ranges, min_share) of a rule, each in the measure's terms."""
    area = str(entry.get("area", "floor"))
    if area not in ("floor", "land"):
        raise InputError(f'{where}: area {area!r}: use "floor" (building floor area) or "land"')
    if "area" in entry and measure not in _AREA_MEASURES:
        raise InputError(f"{where}: 'area' only applies to area measures, not {measure}")
    ranges = _ranges(entry["threshold"], where)
    min_share = float(entry.get("min_share", 1.0))
    if not 0 < min_share <= 1:
        raise InputError(f"{where}: min_share {min_share} must be in (0, 1]")
    if measure in ("service_radius_share", "adjacent_to") and (
        len(ranges) != 1 or not math.isinf(ranges[0][1])
    ):
        raise InputError(f"{where}: a distance threshold is one distance in metres, e.g. threshold = 300")
    if measure in ("activity_share", "floor_area_share") and any(
        (hi != math.inf and hi > 100) or lo > 100 for lo, hi in ranges
    ):
        raise InputError(f"{where}: a share is in per cent (0–100), e.g. threshold = 60")
    return area, ranges, min_share


def _applies_of(entry: dict, where: str) -> tuple[dict, tuple[str, ...]]:
    """The ``applies`` table and its levels."""
    applies = entry.get("applies", {})
    if not isinstance(applies, dict):
        raise InputError(f'{where}: applies must be a table, e.g. applies = {{ level = ["5min"] }}')
    bad = sorted(set(applies) - _APPLIES_KEYS)
    if bad:
        raise InputError(f"{where}: applies.{bad[0]} is not known; use level, households or population")
    levels = applies.get("level", [])
    levels = (levels,) if isinstance(levels, str) else tuple(levels)
    for lv in levels:
        if lv not in LEVELS:
            raise InputError(f"{where}: applies.level {lv!r} must be one of {', '.join(LEVELS)}")
    return applies, levels


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{where}: must be true or false, not {value!r}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise InputError(f"{where}: {value!r} is not a number")
    return float(value)


def _pair(value: Any, where: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise InputError(f"{where}: give [min, max] (use inf for no upper bound)")
    lo, hi = _number(value[0], where), _number(value[1], where)
    if lo > hi:
        raise InputError(f"{where}: min {lo:g} is above max {hi:g}")
    return (lo, hi)


def _ranges(value: Any, where: str) -> tuple[tuple[float, float], ...]:
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        out = tuple(_pair(v, f"{where}: threshold") for v in value)
    elif isinstance(value, list):
        out = (_pair(value, f"{where}: threshold"),)
    else:
        out = ((_number(value, f"{where}: threshold"), math.inf),)
    if any(lo < 0 for lo, _ in out):
        raise InputError(f"{where}: threshold must not be negative")
    return out
