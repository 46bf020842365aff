"""Is an extract rural or urban? The evidence, the verdict, and the population profile it picks.

China's basic units say it best: a rural area is organised in administrative villages (行政村,
each with a 村民委员会), a town or city in communities (社区, each with a 居民委员会). An
extract is judged **rural** when its village committees and village-level boundaries are
mapped and at least as many as its residents' committees; otherwise **urban** when anything
urban is mapped (residents' committees, gated compounds or apartment-style residential areas,
or mostly apartment floor space); with no evidence either way it stays urban, the profile
planner used before it knew villages (set ``settings.population_profile = "rural"`` to say
otherwise). The verdict picks the population profile of :mod:`planner.demand` (floor area per
person, farmhouse floors, household size and density from :mod:`planner.settings`), so audit,
site and villages give one extract one population.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import shapely

from planner import settings
from planner._errors import InputError
from planner.sources import Region

__all__ = [
    "VILLAGE_ADMIN_LEVELS",
    "Profile",
    "Settlement",
    "is_community_committee",
    "is_village_boundary",
    "is_village_committee",
    "judge_settlement",
    "population_profile",
]

#: ``admin_level`` of village-level (村级) ``boundary=administrative`` areas in China's OSM
#: tagging: 4 province, 5 prefecture, 6 county, 8 township/subdistrict (乡镇街道), 10 village or
#: community (村/社区); 9 is unused by the national scheme but seen on village outlines.
VILLAGE_ADMIN_LEVELS = ("9", "10")

_VILLAGE_COMMITTEE = re.compile(r"(村民委员会|村委会|村委)")
_COMMUNITY_COMMITTEE = re.compile(r"(居民委员会|居委会|社区服务中心|社区服务站|社区党群服务中心|社区工作站)")
_TOWN = re.compile(r"((镇|乡)(人民)?政府|街道办事处|街道办)")
_OFFICIAL = ("townhall", "government")
# Residential areas named or tagged as compounds (小区): multi-character words anywhere, single
# characters only at the end (景树园 is a hamlet, 静淑苑 a compound).
_COMPOUND_NAME = re.compile(
    r"(小区|花园|家园|嘉园|公寓|号院|大院|生活区|宿舍|大厦|公馆|别墅|新村|[苑居庭邸府])$|(小区|号院|生活区|公寓)"
)


def is_village_committee(tags: dict) -> bool:
    """A village committee (村民委员会): ``townhall:type=village``, or a name with 村委/村委会/
    村民委员会 (on an official building or not); never a township government or a community."""
    name = tags.get("name") or ""
    if _TOWN.search(name) or "社区" in name or "街道" in name:
        return False
    official = tags.get("amenity") == "townhall" or tags.get("office") == "government"
    if official and tags.get("townhall:type") == "village":
        return True
    return bool(name) and (bool(_VILLAGE_COMMITTEE.search(name)) or (official and name.endswith("村")))


def is_community_committee(tags: dict) -> bool:
    """A residents' committee (居民委员会) or community service centre of an urban 社区."""
    name = tags.get("name") or ""
    official = tags.get("amenity") in ("townhall", "community_centre") or tags.get("office") == "government"
    if official and tags.get("townhall:type") in ("community", "neighbourhood"):
        return True
    return bool(_COMMUNITY_COMMITTEE.search(name)) or (official and name.endswith("社区"))


def is_village_boundary(tags: dict) -> bool:
    """A village-level administrative boundary (``admin_level`` 9 or 10) that is not a 社区."""
    name = tags.get("name") or ""
    return (
        tags.get("boundary") == "administrative"
        and tags.get("admin_level") in VILLAGE_ADMIN_LEVELS
        and not name.endswith(("社区", "居委会", "街道"))
    )


@dataclass(frozen=True)
class Profile:
    """How homes become people: one set of values for urban, one for rural land."""

    name: str
    floor_area_per_person_m2: float
    persons_per_household: float
    default_levels: dict
    grid_density_per_ha: float


def population_profile(kind: str) -> Profile:
    """The ``"urban"`` or ``"rural"`` profile, read from :mod:`planner.settings` now."""
    if kind == "urban":
        return Profile(
            "urban",
            settings.floor_area_per_person_m2,
            settings.persons_per_household,
            dict(settings.default_levels),
            settings.grid_density_per_ha,
        )
    if kind == "rural":
        return Profile(
            "rural",
            settings.rural_floor_area_per_person_m2,
            settings.rural_persons_per_household,
            dict(settings.rural_default_levels),
            settings.rural_grid_density_per_ha,
        )
    raise InputError(f"population profile {kind!r}: use auto, urban or rural (settings.population_profile)")


@dataclass
class Settlement:
    """The verdict on an extract and the evidence for it.

    Attributes
    ----------
    kind : str
        ``"rural"`` or ``"urban"``.
    reason : str
        One sentence: which evidence decided.
    evidence : dict
        ``village_committees``, ``village_boundaries``, ``community_committees``,
        ``compounds`` (gated compounds and residential areas tagged or named as compounds),
        ``place_villages`` (``place=village|hamlet``), ``apartment_floor_share`` (share of home
        floor area in apartment-style buildings: ``apartments``/``dormitory`` or 4+ levels).
    """

    kind: str
    reason: str
    evidence: dict = field(default_factory=dict)
    given: bool = False
    by_default: bool = False

    @property
    def profile(self) -> Profile:
        return population_profile(self.kind)

    @property
    def notice(self) -> str:
        """One line for a user: what the extract was judged, and why."""
        if self.kind == "urban":
            return (
                f"this extract is urban ({self.reason}): residential compounds and building blocks are "
                "not counted as villages, only mapped villages and village committees (use audit for "
                "urban life circles)"
            )
        return f"this extract is rural ({self.reason})"

    def summary(self) -> dict:
        return {
            "kind": self.kind,
            "reason": self.reason,
            "given": self.given,
            "by_default": self.by_default,
            "notice": self.notice,
            "evidence": dict(self.evidence),
        }


def judge_settlement(region: Region, kind: str | None = None) -> Settlement:
    """Judge an extract rural or urban from its mapped basic units (see the module text).

    Parameters
    ----------
    region : Region
    kind : {"auto", "urban", "rural"}, optional
        Default ``settings.population_profile``; "urban" or "rural" skips the judgement (the
        evidence is still gathered and reported).

    Returns
    -------
    Settlement
    """
    kind = settings.population_profile if kind is None else kind
    if kind not in ("auto", "urban", "rural"):
        raise InputError(
            f"population profile {kind!r}: use auto, urban or rural (settings.population_profile)"
        )
    evidence = _evidence(region)
    if kind != "auto":
        return Settlement(kind, f"given as {kind}", evidence, given=True)
    villages = evidence["village_committees"] + evidence["village_boundaries"]
    communities = evidence["community_committees"]
    if villages and villages >= communities:
        reason = (
            f"{evidence['village_committees']} village committees and {evidence['village_boundaries']} "
            f"village boundaries against {communities} residents' committees"
        )
        return Settlement("rural", reason, evidence)
    urban = []
    if communities:
        urban.append(f"{communities} residents' committees")
    if evidence["compounds"]:
        urban.append(f"{evidence['compounds']} residential compounds")
    if evidence["apartment_floor_share"] >= 0.5:
        urban.append(f"{evidence['apartment_floor_share']:.0%} of home floor space in apartment buildings")
    if urban:
        if villages:
            urban.append(f"only {villages} village committees or boundaries")
        return Settlement("urban", ", ".join(urban), evidence)
    return Settlement(
        "urban",
        "no village committee, village boundary or residents' committee mapped: the "
        "urban profile, planner's default (settings.population_profile='rural' to "
        "change)",
        evidence,
        by_default=True,
    )


def _evidence(region: Region) -> dict:
    from planner.demand import compounds, home_buildings_of, residential_land

    feats = region.features
    tags = feats["tags"].tolist()
    polygonal = (
        np.isin(shapely.get_type_id(feats.geometry.to_numpy()), (3, 6)) if len(feats) else np.zeros(0, bool)
    )
    res = residential_land(feats)
    compound_ids = set(compounds(region)["compound_id"]) if len(res) else set()
    for osm_id, t in zip(res["osm_id"], res["tags"], strict=True):
        if t.get("residential") == "apartments" or _COMPOUND_NAME.search(t.get("name") or ""):
            compound_ids.add(osm_id)
    buildings = home_buildings_of(region)
    share = 0.0
    if len(buildings):
        area = shapely.area(buildings.geometry.to_numpy())
        levels = np.array([_levels_or_none(t) for t in buildings["tags"]], float)
        kind = buildings["tags"].map(lambda t: t.get("building")).to_numpy()
        tall = np.isin(kind, ["apartments", "dormitory"]) | (np.nan_to_num(levels, nan=0) >= 4)
        floor = area * np.where(np.isnan(levels), 1.0, levels)
        share = float(floor[tall].sum() / floor.sum()) if floor.sum() > 0 else 0.0
    # Each test needs one of these keys: most features (unnamed buildings) skip all four.
    named = [t for t in tags if "name" in t or "townhall:type" in t]
    return {
        "village_committees": sum(is_village_committee(t) for t in named),
        "village_boundaries": int(
            sum(
                bool(p) and "boundary" in t and is_village_boundary(t)
                for t, p in zip(tags, polygonal, strict=True)
            )
        ),
        "community_committees": sum(is_community_committee(t) for t in named),
        "compounds": len(compound_ids),
        "place_villages": sum(t.get("place") in ("village", "hamlet") for t in tags),
        "apartment_floor_share": round(share, 3),
    }


def _levels_or_none(tags: dict) -> float:
    from planner.demand import LEVELS_RE

    m = LEVELS_RE.match(str(tags.get("building:levels") or ""))
    return float(m.group(1)) if m and 0 < float(m.group(1)) < 200 else np.nan
