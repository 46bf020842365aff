"""Read and check an estate plan (GeoJSON or GeoPackage) into a :class:`Plan` in metres.

A plan has one ``estate`` polygon with its households, ``facility`` features with category
and areas, and optionally ``residential`` buildings, walking ``path`` lines and
``green_space`` polygons (:data:`ROLES`). Every value that cannot be a plan (wrong unit,
wrong CRS, a typo in a category) is refused with one line naming the file, the feature and
the fix (:class:`~planner._errors.InputError`).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from planner import settings
from planner._errors import InputError
from planner._text import clean_text
from planner.categories import resolve_key
from planner.review.levels import default_levels, estate_level
from planner.rules import LEVELS, Level

#: Feature roles a plan may use.
ROLES = ("estate", "facility", "residential", "path", "green_space")
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
#: An estate wider than this is not one plan (a 15-minute life circle is about 3 km across):
#: its coordinates, CRS or boundary are wrong.
MAX_ESTATE_EXTENT_M: float = 20_000.0
#: Persons per household outside this range: the population or the households are wrong.
_PERSONS_PER_HOUSEHOLD_RANGE = (0.5, 10.0)


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
            self.green = gpd.GeoDataFrame(
                {"feature": [], "name": [], "area_m2": [], "level": []}, geometry=[], crs=self.crs
            )

    @property
    def area_m2(self) -> float:
        return float(self.estate.area)

    def to_crs(self, crs) -> Plan:
        """The same plan in another (metric) CRS."""
        crs = CRS.from_user_input(crs)
        if crs == self.crs:
            return self
        estate = gpd.GeoSeries([self.estate], crs=self.crs).to_crs(crs).iloc[0]
        return replace(
            self,
            crs=crs,
            estate=estate,
            facilities=self.facilities.to_crs(crs),
            residential=self.residential.to_crs(crs),
            paths=self.paths.to_crs(crs),
            notes=list(self.notes),
            green=self.green.to_crs(crs),
        )


def read_plan(
    path: str | os.PathLike,
    categories: dict | None = None,
    levels: Sequence[Level] | None = None,
    coords: str | None = None,
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
    coords : {"wgs84", "gcj02", "bd09"}, optional
        The plan's lon/lat are GCJ-02 (drawn on Gaode) or BD-09 (Baidu): converted to WGS84.

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
    frame, roles = _read_features(p)
    frame = _to_wgs84(label, frame, coords)
    estate_i = _estate_index(label, roles)
    _check_lonlat(label, frame)
    _check_geometries(label, roles, frame.geometry.to_numpy())

    crs = _working_crs(frame, estate_i)
    metric = frame.to_crs(crs) if CRS.from_user_input(frame.crs) != crs else frame
    mgeoms = metric.geometry.to_numpy()
    estate = mgeoms[estate_i]
    where = f"{label}: feature {estate_i + 1} (role=estate)"
    _check_extent(estate, where)
    households = _households(frame, estate_i, where, estate.area)
    population, population_given = _population(frame, estate_i, where, households)
    notes: list[str] = []
    level, level_source = _estate_level(frame, estate_i, where, households, levels or default_levels(), notes)
    name = clean_text(frame.at[estate_i, "name"]) if "name" in frame.columns else None
    total_floor = _total_floor_area(frame, estate_i, where)
    facilities = _facilities(label, frame, metric, roles, categories, estate)
    green = _green(label, frame, metric, roles)
    residential = _residential(label, frame, metric, roles, estate)
    path_idx = [i for i, r in enumerate(roles) if r == "path"]
    paths = gpd.GeoDataFrame({"feature": [i + 1 for i in path_idx]}, geometry=list(mgeoms[path_idx]), crs=crs)
    if not population_given:
        notes.append(
            f"Population {population:,.0f} = {households:,} households × "
            f"{settings.persons_per_household} persons "
            "per household (7th census); give `population` on the estate to override."
        )
    return Plan(
        source=str(path),
        name=name or p.stem,
        crs=crs,
        estate=estate,
        households=households,
        population=float(population),
        population_given=population_given,
        level=level,
        level_source=level_source,
        facilities=facilities,
        residential=residential,
        paths=paths,
        notes=notes,
        green=green,
        total_floor_area_m2=total_floor,
    )


def _total_floor_area(frame: gpd.GeoDataFrame, estate_i: int, where: str) -> float | None:
    """The estate's ``total_floor_area_m2`` (all buildings above ground), if given: positive."""
    total_floor = _number(frame, estate_i, "total_floor_area_m2", where)
    if total_floor is not None and total_floor <= 0:
        raise InputError(
            f"{where}: total_floor_area_m2 {total_floor:g} must be positive (all buildings above ground, m²)"
        )
    return total_floor


def _read_features(p: Path) -> tuple[gpd.GeoDataFrame, list[str | None]]:
    """The file's features (with a CRS, a ``role`` each and a geometry each) and their roles."""
    label = p.name
    frame = _read_frame(p)
    _check_geojson_members(p, frame)
    if frame.crs is None:
        raise InputError(
            f"{label}: no CRS; save the plan with one (e.g. EPSG:4326, or its CGCS2000 / UTM zone)"
        )
    if len(frame) == 0:
        raise InputError(f"{label}: no features; add one estate and its facilities")
    if "role" not in frame.columns:
        raise InputError(
            f"{label}: no 'role' property; mark the boundary role=estate and each facility role=facility"
        )
    frame = frame.reset_index(drop=True)
    geoms = frame.geometry.to_numpy()
    roles = [clean_text(v) for v in frame["role"]]
    for i, role in enumerate(roles):
        if role not in ROLES:
            raise InputError(f"{label}: feature {i + 1} has role {role!r}; use one of: {', '.join(ROLES)}")
        g = geoms[i]
        if g is None or g.is_empty:
            raise InputError(f"{label}: feature {i + 1} (role={role}) has no geometry; draw it or remove it")
    return frame, roles


def _estate_index(label: str, roles: list[str | None]) -> int:
    """Row of the one ``estate`` feature."""
    estate_idx = [i for i, r in enumerate(roles) if r == "estate"]
    if not estate_idx:
        raise InputError(
            f"{label}: no feature with role=estate; add the estate boundary polygon with its households"
        )
    if len(estate_idx) > 1:
        raise InputError(
            f"{label}: {len(estate_idx)} features have role=estate "
            f"(features {', '.join(str(i + 1) for i in estate_idx)}); "
            "review one estate per plan (merge the parts into one MultiPolygon)"
        )
    return estate_idx[0]


def _check_lonlat(label: str, frame: gpd.GeoDataFrame) -> None:
    """Coordinates of a file that says lon/lat must be lon/lat (metres labelled as WGS84)."""
    if frame.crs.is_geographic:
        x0, y0, x1, y1 = frame.total_bounds
        if x0 < -180 or x1 > 180 or y0 < -90 or y1 > 90:
            raise InputError(
                f"{label}: coordinates such as ({x1:.6g}, {y1:.6g}) "
                "are not longitude/latitude, but the file says "
                f"{frame.crs.to_string()}; save it with its real CRS "
                "(GeoJSON without a 'crs' member means EPSG:4326)"
            )


def _check_extent(estate, where: str) -> None:
    """Refuse an estate boundary far wider than any life circle."""
    minx, miny, maxx, maxy = estate.bounds
    extent_m = max(maxx - minx, maxy - miny)
    if extent_m > MAX_ESTATE_EXTENT_M:
        raise InputError(
            f"{where}: the boundary spans {extent_m / 1000:,.1f} km "
            f"(limit {MAX_ESTATE_EXTENT_M / 1000:g} km; a 15-minute life circle is about 3 km across); "
            "check its coordinates and CRS"
        )


def _households(frame: gpd.GeoDataFrame, ei: int, where: str, estate_area_m2: float) -> int:
    """The estate's dwellings: a positive whole number that fits its boundary."""
    households = _number(frame, ei, "households", where)
    if households is None:
        raise InputError(
            f"{where} has no 'households'; add the number of dwellings (户/套) as a whole number"
        )
    if households != int(households) or households <= 0:
        raise InputError(f"{where}: households {households:g} must be a positive whole number of dwellings")
    if households > MAX_HOUSEHOLDS:
        raise InputError(
            f"{where}: households {households:,.6g} is more than any life circle holds "
            "(a 15-minute circle has 17,000–32,000); check the value or split the plan"
        )
    households = int(households)
    area_ha = estate_area_m2 / 10_000
    if area_ha < 0.01:
        raise InputError(
            f"{where}: the boundary covers only {estate_area_m2:.1f} m²; check its coordinates and CRS"
        )
    if households / area_ha > MAX_HOUSEHOLDS_PER_HA:
        raise InputError(
            f"{where}: {households:,} households on {area_ha:.2f} ha is {households / area_ha:,.0f} per ha "
            f"(limit {MAX_HOUSEHOLDS_PER_HA:,.0f}); check the boundary, its CRS or the households"
        )
    return households


def _population(frame: gpd.GeoDataFrame, ei: int, where: str, households: int) -> tuple[float, bool]:
    """(residents, given): the estate's ``population``, else households × persons per household."""
    population = _number(frame, ei, "population", where)
    if population is None:
        return households * settings.persons_per_household, False
    ratio = population / households
    lo, hi = _PERSONS_PER_HOUSEHOLD_RANGE
    if population <= 0 or not lo <= ratio <= hi:
        raise InputError(
            f"{where}: population {population:,.0f} for {households:,} households is {ratio:.2f} persons per "
            f"household (expected {lo:g}–{hi:g}; "
            f"the national average is {settings.persons_per_household}); check both"
        )
    return population, True


def _estate_level(
    frame: gpd.GeoDataFrame, ei: int, where: str, households: int, levels: Sequence[Level], notes: list[str]
) -> tuple[str, str]:
    """(level, how): the estate's ``level``, else derived from its households; a given level
    outside its household range is kept and noted."""
    level = clean_text(frame.at[ei, "level"]) if "level" in frame.columns else None
    if not level:
        return estate_level(households, levels)
    if level not in LEVELS:
        raise InputError(
            f"{where}: level {level!r} is not known; use one of: {', '.join(LEVELS)} (or leave it out)"
        )
    lv = next((x for x in levels if x.id == level), None)
    if lv is not None and lv.households and not lv.households[0] <= households <= lv.households[1]:
        notes.append(
            f"The plan gives level {level}, but {households:,} households lie outside that level's "
            f"range {lv.households[0]:g}–{lv.households[1]:g} ({lv.clause}); checked as {level} as given."
        )
    return level, "plan"


#: Plan properties read as numbers (a JSON true would be read as 1).
_NUMERIC_PROPERTIES = (
    "households",
    "population",
    "total_floor_area_m2",
    "floor_area_m2",
    "land_area_m2",
    "places",
    "activity_floor_area_m2",
    "area_m2",
)


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
                raise InputError(
                    f"{p.name}: feature {i + 1}: {key} = {str(props[key]).lower()} is not a number; "
                    "give the number"
                )
    member = data.get("crs")
    if member is None:
        return
    name = (
        member.get("properties", {}).get("name")
        if isinstance(member, dict) and isinstance(member.get("properties"), dict)
        else None
    )
    try:
        declared = CRS.from_user_input(name)
    except Exception:  # noqa: BLE001 - pyproj raises CRSError, TypeError... for what is not a CRS
        declared = None
    if declared is None or frame.crs is None or not declared.equals(frame.crs, ignore_axis_order=True):
        raise InputError(
            f"{p.name}: its crs member {name if name is not None else member!r} is not a CRS that "
            "pyproj knows; give a real one (e.g. EPSG:4326 or EPSG:4547) or remove it for WGS84"
        )


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
                    raise InputError(
                        f"{p.name}: {len(names)} layers ({', '.join(names)}); "
                        "name the plan's layer 'plan' or keep one layer"
                    )
                layer = "plan"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reader warnings (mixed-type columns) would be extra lines
            return gpd.read_file(p, layer=layer)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - any reader failure is the user's file
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(
            f"{p.name}: cannot read the plan ({text}); give a valid GeoJSON or GeoPackage"
        ) from None


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
    for i, (role, g) in enumerate(zip(roles, geoms, strict=True)):
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


_FACILITY_COLUMNS = [
    "facility_id",
    "category",
    "name",
    "floor_area_m2",
    "land_area_m2",
    "land_area_given",
    "places",
    "feature",
    "level",
    "activity_floor_area_m2",
]


def _facilities(label, frame, metric, roles, categories, estate) -> gpd.GeoDataFrame:
    """The plan's facilities (role=facility), one checked row each."""
    idx = [i for i, r in enumerate(roles) if r == "facility"]
    mgeoms = metric.geometry.to_numpy()
    rows = [_facility_row(label, frame, i, mgeoms[i], categories, estate) for i in idx]
    return gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=_FACILITY_COLUMNS), geometry=list(mgeoms[idx]), crs=metric.crs
    )


def _facility_category(frame, i: int, where: str, categories: dict) -> str:
    """The category key of facility feature ``i`` (a Chinese or English name stands for its key).
    ``where`` names the feature, its closing parenthesis still open."""
    cat = clean_text(frame.at[i, "category"]) if "category" in frame.columns else None
    if not cat:
        raise InputError(
            f"{where}) has no 'category'; "
            f"give a category key such as kindergarten (known: {', '.join(categories)})"
        )
    if cat not in categories:
        try:  # a Chinese or English name (幼儿园, Kindergarten) stands for its key
            cat = resolve_key(cat, categories)
        except InputError:
            hint = _closest(cat, categories)
            raise InputError(
                f"{where}) has unknown category {cat!r}; "
                + (f"did you mean {hint!r}? " if hint else "")
                + f"use one of: {', '.join(categories)}"
            ) from None
    return cat


def _facility_land(frame, i: int, where: str, g) -> tuple[float, bool]:
    """Land area of facility feature ``i`` (geometry ``g``, metric) and whether it was given."""
    land = _number(frame, i, "land_area_m2", where)
    if land is not None:
        _check_area(where, "land_area_m2", land, MAX_LAND_AREA_M2)
        drawn = g.area
        if drawn > 0 and land > 0 and not 0.1 <= land / drawn <= 10:
            raise InputError(
                f"{where}: land_area_m2 {land:,.0f} is {land / drawn:.2g}"
                f"× the area of its polygon ({drawn:,.0f} m²); "
                "check the unit (m², not ha or mu) or the outline"
            )
        return land, True
    if g.area > 0:
        return float(g.area), False  # a polygon facility's land is its drawn area
    return 0.0, False  # a point with no land of its own (e.g. a room in a mixed-use building)


def _facility_row(label, frame, i: int, g, categories: dict, estate) -> dict:
    """Facility feature ``i`` (geometry ``g``, metric) checked, as a row of :data:`_FACILITY_COLUMNS`."""
    where = f"{label}: feature {i + 1} (role=facility"
    cat = _facility_category(frame, i, where, categories)
    where = f"{where}, category={cat})"
    floor = _number(frame, i, "floor_area_m2", where)
    if floor is None:
        raise InputError(
            f"{where} has no floor_area_m2; give its building floor area in m² "
            "(0 for outdoor facilities such as sports grounds)"
        )
    _check_area(where, "floor_area_m2", floor, MAX_FLOOR_AREA_M2)
    land, land_given = _facility_land(frame, i, where, g)
    places = _number(frame, i, "places", where)
    if places is not None and places < 0:
        raise InputError(
            f"{where}: places {places:g} is negative; give the number of childcare places (托位)"
        )
    far = g.distance(estate)
    if far > MAX_FACILITY_DISTANCE_M:
        raise InputError(
            f"{where} is {far / 1000:,.1f} km from the estate; check its coordinates and the file's CRS"
        )
    flevel = clean_text(frame.at[i, "level"]) if "level" in frame.columns else None
    if flevel is not None and flevel not in LEVELS:
        raise InputError(
            f"{where}: level {flevel!r} is not known; use one of: {', '.join(LEVELS)} (or leave it out)"
        )
    activity = _number(frame, i, "activity_floor_area_m2", where)
    if activity is not None and not 0 <= activity <= floor:
        raise InputError(
            f"{where}: activity_floor_area_m2 {activity:g} must lie between 0 and its floor_area_m2 {floor:g}"
        )
    fid = None
    for key in ("facility_id", "id"):
        if key in frame.columns and clean_text(frame.at[i, key]):
            fid = clean_text(frame.at[i, key])
            break
    return {
        "facility_id": fid or f"plan/{i + 1}",
        "category": cat,
        "name": clean_text(frame.at[i, "name"]) if "name" in frame.columns else None,
        "floor_area_m2": float(floor),
        "land_area_m2": float(land),
        "land_area_given": land_given,
        "places": np.nan if places is None else float(places),
        "feature": i + 1,
        "level": flevel,
        "activity_floor_area_m2": np.nan if activity is None else float(activity),
    }


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
            raise InputError(
                f"{where}: area_m2 {area:,.0f} differs from its polygon's {drawn:,.0f} m² by more than 10 %; "
                "check the unit (m², not ha) or the outline"
            )
        level = clean_text(frame.at[i, "level"]) if "level" in frame.columns else None
        if level is not None and level not in LEVELS:
            raise InputError(
                f"{where}: level {level!r} is not known; use one of: {', '.join(LEVELS)} (or leave it out)"
            )
        rows.append(
            {
                "feature": i + 1,
                "name": clean_text(frame.at[i, "name"]) if "name" in frame.columns else None,
                "area_m2": float(area),
                "level": level,
            }
        )
    return gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=["feature", "name", "area_m2", "level"]),
        geometry=list(mgeoms[idx]),
        crs=metric.crs,
    )


def _residential(label, frame, metric, roles, estate) -> gpd.GeoDataFrame:
    idx = [i for i, r in enumerate(roles) if r == "residential"]
    hh = []
    for i in idx:
        v = _number(frame, i, "households", f"{label}: feature {i + 1} (role=residential)")
        if v is not None and v < 0:
            raise InputError(f"{label}: feature {i + 1} (role=residential): households {v:g} is negative")
        hh.append(np.nan if v is None else v)
    return gpd.GeoDataFrame(
        {"households": hh, "feature": [i + 1 for i in idx]},
        geometry=list(metric.geometry.to_numpy()[idx]),
        crs=metric.crs,
    )


def _check_area(where: str, key: str, value: float, limit: float) -> None:
    if value < 0:
        raise InputError(f"{where}: {key} {value:g} is negative; give the area in m²")
    if value > limit:
        raise InputError(
            f"{where}: {key} {value:,.0f} m² is more than any community facility ({limit:,.0f} m²); "
            "check the unit (m²) and the value"
        )


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


def _to_wgs84(label: str, frame: gpd.GeoDataFrame, coords: str | None) -> gpd.GeoDataFrame:
    """The plan with GCJ-02 / BD-09 lon/lat converted to WGS84 (:mod:`planner.coords`)."""
    from planner import coords as _coords

    coords = _coords.check_coords(coords)
    if coords == "wgs84" or frame.crs is None:
        return frame
    if not CRS.from_user_input(frame.crs).is_geographic:
        raise InputError(
            f"{label}: --coords {coords} needs lon/lat, but the plan's CRS is projected; leave out --coords"
        )
    out = frame.to_crs(4326)
    return out.set_geometry(_coords.geometries_to_wgs84(out.geometry.to_numpy(), coords), crs=4326)


def _closest(word: str, options: Iterable[str]) -> str | None:
    import difflib

    hits = difflib.get_close_matches(word, list(options), n=1, cutoff=0.75)
    return hits[0] if hits else None
