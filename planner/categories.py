"""Facility categories of the life-circle standards, kept as data (``data/categories.toml``).

Each category has a stable key, Chinese and English names, the OSM tags that identify it
and its target in the unit of its source: metres along the network (GB 50180-2018 service
radii) or minutes (the 2021 convenience-circle guide's ladder). :func:`classify` turns OSM
features into facilities.
"""

from __future__ import annotations

import os
import re
import tomllib
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings
from planner._errors import InputError

DATA_DIR = Path(__file__).resolve().parent / "data"
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Category:
    """One daily-life facility category."""

    key: str
    name_zh: str
    name_en: str
    level: str
    source: str
    match: tuple[dict, ...]
    exclude: tuple[dict, ...] = ()
    mode: str = "walk"
    #: False where the target comes from a value the standards' facts mark "to confirm".
    confirmed: bool = True
    #: The target in its source's unit: exactly one of the two is set.
    target_m: float | None = None
    target_minutes: float | None = None
    #: Part of the basic life circle of its level (the audit's complete-circle headline).
    basic: bool = False
    basic_source: str = ""

    def __post_init__(self):
        if (self.target_m is None) == (self.target_minutes is None):
            raise ValueError(f"category {self.key}: give exactly one of target_m and target_minutes")

    @property
    def unit(self) -> str:
        """``"m"`` for a distance along the network, ``"min"`` for a travel time."""
        return "m" if self.target_m is not None else "min"

    @property
    def minutes(self) -> float:
        """The target as minutes, for models that need a time (siting, villages, isochrones).

        A metre target converts at ``settings.walk_speed_mps`` (300 m ≈ 4.5 min at 1.1 m/s);
        the audit itself judges a metre target by network metres, not by this time.
        """
        if self.target_minutes is not None:
            return float(self.target_minutes)
        return float(self.target_m) / settings.walk_speed_mps / 60.0

    @property
    def metres(self) -> float:
        """The target as metres along the network (a minute target at the walking speed)."""
        if self.target_m is not None:
            return float(self.target_m)
        return float(self.target_minutes) * 60.0 * settings.walk_speed_mps

    @property
    def target_label(self) -> str:
        """The target as its source states it, e.g. ``"≤ 300 m"`` or ``"≤ 8 min"``."""
        value = self.target_m if self.target_m is not None else self.target_minutes
        return f"≤ {value:g} {self.unit}"

    @property
    def label(self) -> str:
        """Chinese and English name together, e.g. ``"幼儿园 Kindergarten"``."""
        return f"{self.name_zh} {self.name_en}"

    def matches(self, tags: dict) -> bool:
        """True if the OSM tags identify this category."""
        return any(_table_matches(t, tags) for t in self.match) and not any(
            _table_matches(t, tags) for t in self.exclude
        )


def load_categories(
    extra_file: str | os.PathLike | None = None,
    files: Iterable[str | os.PathLike] | None = None,
) -> dict[str, Category]:
    """Categories from the bundled file, updated by a user's file.

    Parameters
    ----------
    extra_file : path, optional
        A TOML file in the same format; its categories are added, and a key that exists
        already replaces the bundled one.
    files : iterable of paths, optional
        Bundled data files to start from (default: ``categories.toml``).

    Returns
    -------
    dict
        key → :class:`Category`, in file order.
    """
    cats: dict[str, Category] = {}
    for f in files or [DATA_DIR / "categories.toml"]:
        cats.update(_read_file(str(f), _stamp(f)))
    if extra_file is not None:
        cats.update(_read_file(str(extra_file), _stamp(extra_file)))
    return cats


def select(categories: dict[str, Category], keys: str | Iterable[str] | None) -> list[Category]:
    """The categories named by ``keys`` (comma-separated or a list); all when None.

    Raises InputError naming the unknown key and listing the known ones.
    """
    if keys is None or keys == "all":
        return list(categories.values())
    if isinstance(keys, str):
        keys = [k.strip() for k in keys.split(",") if k.strip()]
    keys = list(keys)
    if not keys:
        raise InputError(
            "--categories: no category named; give keys such as kindergarten,clinic or all "
            "(see `planner categories`)"
        )
    chosen = []
    for key in keys:
        cat = categories[resolve_key(key, categories, "--categories")]
        if cat not in chosen:
            chosen.append(cat)
    return chosen


def resolve_key(name: str, categories: dict[str, Category], what: str = "category") -> str:
    """The key of a category named by its key, Chinese name or English name.

    Keys and English names are matched without regard to case or surrounding spaces
    (``幼儿园``, ``Kindergarten`` and ``kindergarten`` all give ``"kindergarten"``).

    Raises
    ------
    InputError
        One line naming ``what`` and the closest known names, for a name no category has.
    """
    text = str(name).strip()
    if text in categories:
        return text
    folded = text.casefold()
    for cat in categories.values():
        if folded in _names(cat):
            return cat.key
    raise InputError(
        f"{what}: unknown category {text!r}; {_suggest(text, categories)} "
        "(see `planner categories`, or add your own with --categories-file)"
    )


def _names(cat: Category) -> set[str]:
    """The names a category answers to, case-folded: its key, English name, Chinese name and
    each part of a name that lists several or adds a note (``老年人日间照料中心/养老院``,
    ``幼儿园(乡镇中心幼儿园)``)."""
    parts = re.split(r"[/／、()（）]", cat.name_zh) + re.split(r"[/()]", cat.name_en)
    return {n.strip().casefold() for n in [cat.key, cat.name_zh, cat.name_en, *parts] if n.strip()}


def _suggest(text: str, categories: dict[str, Category]) -> str:
    """'did you mean 幼儿园 (kindergarten)?' for the close names, else the known keys."""
    import difflib

    names = {}
    for cat in categories.values():
        for n in _names(cat):
            names.setdefault(n, cat)
    hits = difflib.get_close_matches(text.casefold(), list(names), n=3, cutoff=0.6)
    # A Chinese name that shares a character with the text (养老 → 养老院) is a close match too.
    shared = [n for n in names if any(ch in n for ch in text if ord(ch) > 0x2E80) and n not in hits]
    hits += shared[: 3 - len(hits)]
    keys = list(dict.fromkeys(names[h].key for h in hits))
    if keys:
        return "did you mean " + ", ".join(f"{categories[k].name_zh} ({k})" for k in keys) + "?"
    return f"known: {', '.join(categories)}"


def classify(features: gpd.GeoDataFrame, categories: Iterable[Category]) -> gpd.GeoDataFrame:
    """Facilities among OSM features: one row per (feature, category) that matches.

    An object can serve several categories (a community centre is both a community service
    station and a cultural room). Buildings with no service tag are never facilities.

    Returns
    -------
    geopandas.GeoDataFrame
        ``facility_id`` (OSM id), ``category``, ``name``, geometry (point or polygon, the
        features' CRS).
    """
    cats = list(categories)
    hits = np.zeros((0, len(cats)), bool)
    if len(features):
        hits = match_matrix(features["tags"].tolist(), cats)
        hits &= ~features.geom_type.isin(["LineString", "MultiLineString"]).to_numpy()[:, None]
    # Row-major order: feature by feature, categories in the order given.
    rows_idx, rows_cat = np.nonzero(hits)
    sub = features.iloc[rows_idx]
    return gpd.GeoDataFrame(
        {
            "facility_id": sub["osm_id"].to_numpy(),
            "category": np.array([c.key for c in cats], dtype=object)[rows_cat],
            "name": sub["name"].to_numpy(),
        },
        geometry=sub.geometry.to_numpy(),
        crs=features.crs,
    )


def match_matrix(tags: Sequence[dict | None], categories: Iterable[Category]) -> np.ndarray:
    """Which objects each category matches, evaluated tag column by tag column.

    The same answer as ``categories[j].matches(tags[i])`` for every pair, at the cost of one
    pass per tag key the categories use plus one test per distinct value of that key (a
    regular expression runs once per distinct name, not once per object and category).

    Parameters
    ----------
    tags : sequence of dict
        OSM tags of each object (None or ``{}`` for an object without tags).
    categories : iterable of Category

    Returns
    -------
    numpy.ndarray
        Boolean, objects × categories.
    """
    cats = list(categories)
    tables = {id(t): t for cat in cats for t in (*cat.match, *cat.exclude)}.values()
    keys = dict.fromkeys(key for t in tables for key in t)
    columns = {key: pd.factorize(values) for key, values in _tag_columns(tags, keys).items()}
    conditions: dict[tuple[str, str], np.ndarray] = {}

    def condition(key: str, want) -> np.ndarray:
        """Objects whose ``key`` satisfies ``want``, cached across the categories' tables."""
        cache_key = (key, repr(want))
        if cache_key not in conditions:
            codes, uniques = columns[key]
            ok = np.array([_value_matches(want, v) for v in uniques] + [False], bool)
            conditions[cache_key] = ok[codes]  # code -1 (key absent) takes the trailing False
        return conditions[cache_key]

    def any_table(table_list) -> np.ndarray:
        hit = np.zeros(len(tags), bool)
        for table in table_list:
            both = np.ones(len(tags), bool)
            for key, want in table.items():
                both &= condition(key, want)
            hit |= both
        return hit

    out = np.zeros((len(tags), len(cats)), bool)
    for j, cat in enumerate(cats):
        out[:, j] = any_table(cat.match) & ~any_table(cat.exclude)
    return out


def _tag_columns(tags: Sequence[dict | None], keys: Iterable[str]) -> dict[str, np.ndarray]:
    """One column per key: each object's value of that tag, None where it has none."""
    columns = {key: np.full(len(tags), None, dtype=object) for key in keys}
    wanted = set(columns)
    for i, d in enumerate(tags):
        if d:
            for key in wanted.intersection(d):  # a few keys per object, not every key
                columns[key][i] = d[key]
    return columns


def region_facilities(
    features: gpd.GeoDataFrame, categories: Iterable[Category], extra: gpd.GeoDataFrame | None = None
) -> gpd.GeoDataFrame:
    """Facilities of the categories found in OSM features, plus a user's extra ones (those of
    the same categories), in the features' CRS with a fresh index."""
    cats = list(categories)
    found = classify(features, cats)
    if extra is not None and len(extra):
        check_places(extra, "extra facilities")
        extra = extra[extra["category"].isin([c.key for c in cats])].to_crs(features.crs)
        found = pd.concat([found, extra[["facility_id", "category", "name", "geometry"]]], ignore_index=True)
    return found.reset_index(drop=True)


def facilities_from_file(
    path: str | os.PathLike, crs, categories: dict[str, Category], file_crs=None, coords: str | None = None
) -> gpd.GeoDataFrame:
    """Read a user's facility file (GeoPackage/GeoJSON with ``category``; CSV with lon/lat).

    Facilities from a file complement OSM, where Chinese POIs are sparse. ``category`` holds
    keys or Chinese/English names (``幼儿园``); ``file_crs`` and ``coords`` are
    :func:`read_points_table`'s ``crs`` and ``coords``.
    """
    frame = read_points_table(path, crs=file_crs, coords=coords)
    if "category" not in frame.columns:
        raise InputError(f"{path}: no 'category' column; add one with category keys such as kindergarten")
    keys = {
        name: resolve_key(name, categories, f"{path}: column category")
        for name in dict.fromkeys(frame["category"].astype(str))
    }
    frame["category"] = frame["category"].astype(str).map(keys)
    if "facility_id" not in frame.columns:
        frame["facility_id"] = [f"file/{i}" for i in range(len(frame))]
    if "name" not in frame.columns:
        frame["name"] = None
    out = frame[["facility_id", "category", "name", "geometry"]].to_crs(crs)
    out["facility_id"] = out["facility_id"].astype(str)
    return out


def read_points_table(path: str | os.PathLike, crs=None, coords: str | None = None) -> gpd.GeoDataFrame:
    """A user's table of places: GeoPackage/GeoJSON (any CRS) or CSV with lon, lat (WGS84).

    Every row must have a geometry with finite coordinates inside -180..180, -90..90 once in
    WGS84; the error names the rows that do not (they are never placed at (0, 0) or dropped).

    Parameters
    ----------
    path : path
        A CSV (UTF-8, UTF-8 with BOM or GBK/GB18030; lon/lat columns, or x/y with ``crs``),
        GeoPackage or GeoJSON.
    crs : optional
        The CRS of a CSV's coordinates (anything pyproj accepts, e.g. ``"EPSG:4547"``; default
        WGS84 lon/lat), or of a GeoPackage/GeoJSON that declares none (one that declares a CRS
        keeps it).
    coords : {"wgs84", "gcj02", "bd09"}, optional
        The lon/lat are GCJ-02 (Gaode/Amap, Tencent) or BD-09 (Baidu) and are converted to
        WGS84 (:mod:`planner.coords`); the file's CRS must then be geographic.
    """
    from planner import coords as _coords

    coords = _coords.check_coords(coords)
    frame = _read_points(path, crs)
    if coords != "wgs84":
        if not frame.crs.is_geographic:
            raise InputError(
                f"{path}: --coords {coords} needs lon/lat, but the file's CRS is "
                f"{frame.crs.to_string()} (projected); give the lon/lat export "
                "or leave out --coords"
            )
        frame = frame.to_crs(4326)
        frame = frame.set_geometry(_coords.geometries_to_wgs84(frame.geometry.to_numpy(), coords), crs=4326)
    return frame


def _read_points(path: str | os.PathLike, crs=None) -> gpd.GeoDataFrame:
    from planner._csv import read_csv

    if crs is not None:
        crs = parse_crs(crs, path)
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: file not found")
    if not p.is_file():
        raise InputError(f"{path}: not a file; give a GeoPackage, GeoJSON or CSV file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reader warnings would be extra lines; errors are raised below
            if p.suffix.lower() == ".csv":
                return _csv_points(read_csv(p, str(path)), path, crs)
            single_layer(p)
            frame = gpd.read_file(p)
            has_geometry = isinstance(frame, gpd.GeoDataFrame) and frame._geometry_column_name in frame
            if crs is not None and has_geometry and frame.crs is None:
                frame = frame.set_crs(crs)
    except InputError:
        raise
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text (saved as GBK?); save the CSV as UTF-8") from None
    except Exception as err:  # noqa: BLE001 - any reader failure is the user's file
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{path}: cannot read ({text}); give a GeoPackage, GeoJSON or CSV") from None
    if not isinstance(frame, gpd.GeoDataFrame) or frame._geometry_column_name not in frame:
        raise InputError(
            f"{path}: no geometry; give a GeoPackage/GeoJSON of points or polygons, or a CSV with lon, lat"
        )
    if frame.crs is None:
        raise InputError(f"{path}: no CRS; save it with one (e.g. EPSG:4326)")
    _check_coordinates(frame, path)
    return frame


#: Column names of a CSV's coordinates (lower case), in order of preference.
LON_COLUMNS = ("lon", "lng", "longitude", "x", "经度")
LAT_COLUMNS = ("lat", "latitude", "y", "纬度")


def _csv_points(df: pd.DataFrame, path, crs) -> gpd.GeoDataFrame:
    """Points of a CSV's lon/lat (or x/y) columns, in ``crs`` (default WGS84)."""
    lon = next((c for name in LON_COLUMNS for c in df.columns if str(c).lower() == name), None)
    lat = next((c for name in LAT_COLUMNS for c in df.columns if str(c).lower() == name), None)
    if lon is None or lat is None:
        from planner._csv import WKT_COLUMNS

        wkt = next((c for c in WKT_COLUMNS if c in df.columns), None)
        if wkt is not None:  # polygons (boundaries, compounds) as WKT
            try:
                geoms = shapely.from_wkt(df[wkt].fillna("").astype(str).to_numpy(), on_invalid="raise")
            except shapely.errors.GEOSException as err:
                raise InputError(
                    f"{path}: a {wkt} value is not WKT ({str(err).splitlines()[0]}); "
                    "write them as POLYGON ((lon lat, ...))"
                ) from None
            return gpd.GeoDataFrame(
                df.drop(columns=[wkt]), geometry=geoms, crs=crs if crs is not None else 4326
            )
        raise InputError(
            f"{path}: a CSV needs lon and lat columns, or a wkt column (WGS84, or give --coords / --crs)"
        )
    x = pd.to_numeric(df[lon], errors="coerce").to_numpy(float)
    y = pd.to_numeric(df[lat], errors="coerce").to_numpy(float)
    finite = np.isfinite(x) & np.isfinite(y)
    geographic = crs is None or crs.is_geographic
    bad = ~(finite & (np.abs(x) <= 180) & (np.abs(y) <= 90)) if geographic else ~finite
    if bad.any():
        what = "outside -180..180 / -90..90 (degrees)" if geographic else "not finite"
        raise InputError(
            f"{path}: {row_numbers(bad)}: {lon}/{lat} missing, not a number or {what}; fix or remove them"
        )
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(x, y), crs=crs if crs is not None else 4326)


def parse_crs(crs, path):
    """A pyproj CRS from what a user gave with --crs."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return CRS.from_user_input(crs)
    except CRSError:
        raise InputError(
            f"--crs {crs!r} (for {path}): not a CRS pyproj knows; give e.g. EPSG:4326, EPSG:4490 or EPSG:4547"
        ) from None


def single_layer(path: str | os.PathLike) -> None:
    """Refuse a file with several layers (a GeoPackage): reading only the first would be a guess."""
    import pyogrio

    try:
        layers = pyogrio.list_layers(path)
    except Exception:  # noqa: BLE001 - the reader itself reports what it cannot read
        return
    if len(layers) > 1:
        names = ", ".join(str(n) for n in layers[:, 0])
        raise InputError(f"{path}: {len(layers)} layers ({names}); keep one layer in the file")


def check_places(frame: gpd.GeoDataFrame, what: str) -> None:
    """Refuse rows of a GeoDataFrame given from Python (homes, facilities, candidates) that
    have no geometry or coordinates that are not finite: they cannot be placed on a network."""
    geoms = frame.geometry.to_numpy()
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    with np.errstate(invalid="ignore"):
        bounds = shapely.bounds(np.where(missing, None, geoms))
    bad = missing | ~np.isfinite(bounds).all(axis=1)
    if bad.any():
        raise InputError(
            f"{what}: {row_numbers(bad)}: no geometry or coordinates that are not finite; fix or drop them"
        )


def row_numbers(mask: np.ndarray) -> str:
    """'row 3' or 'rows 2, 5, 9 and 4 more' (1 = the first data row)."""
    idx = np.flatnonzero(mask) + 1
    head = ", ".join(str(i) for i in idx[:5])
    more = f" and {len(idx) - 5} more" if len(idx) > 5 else ""
    return f"row {head}" if len(idx) == 1 else f"rows {head}{more}"


def _check_coordinates(frame: gpd.GeoDataFrame, path) -> None:
    """Refuse rows without a geometry, or whose coordinates are not finite WGS84 degrees."""
    geoms = frame.geometry.to_numpy()
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        raise InputError(f"{path}: {row_numbers(missing)}: no geometry; draw it or remove the row")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        b = (
            frame.geometry.to_crs(4326).bounds.to_numpy(float)
            if frame.crs != "EPSG:4326"
            else frame.geometry.bounds.to_numpy(float)
        )
    bad = ~(
        np.isfinite(b).all(axis=1)
        & (np.abs(b[:, [0, 2]]) <= 180).all(axis=1)
        & (np.abs(b[:, [1, 3]]) <= 90).all(axis=1)
    )
    if bad.any():
        raise InputError(
            f"{path}: {row_numbers(bad)}: coordinates not finite or outside -180..180 / -90..90 "
            f"once in WGS84 (the file says {frame.crs.to_string()}); fix them or the file's CRS"
        )


def _stamp(path: str | os.PathLike) -> tuple[int, int] | None:
    """(modification time, size) of a file, so an edited file is read again, not taken from the cache."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=32)
def _read_file(path: str, stamp: tuple[int, int] | None = None) -> dict[str, Category]:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: categories file not found")
    if not p.is_file():
        raise InputError(
            f"{path}: not a file; give a categories TOML file (see planner/data/categories.toml)"
        )
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(
            f"{path}: not valid TOML ({err}); see planner/data/categories.toml for the format"
        ) from None
    except OSError as err:
        raise InputError(f"{path}: cannot read the categories file ({err.strerror})") from None
    _check_tables(data, path)
    out: dict[str, Category] = {}
    for i, entry in enumerate(data.get("category", [])):
        where = f"{path}: category {i + 1}"
        missing = [k for k in ("key", "name_zh", "name_en", "match") if k not in entry]
        if missing:
            raise InputError(f"{where}: missing {', '.join(missing)}; see planner/data/categories.toml")
        _check_entry(entry, where)
        if entry["key"] in out:
            raise InputError(f"{where}: key {entry['key']!r} appears twice in the file; keep one")
        target_m, target_min = _target(entry, where)
        if entry.get("mode", "walk") not in ("walk", "bike", "drive"):
            raise InputError(f"{where}: mode {entry['mode']!r} must be walk, bike or drive")
        if not _KEY.match(str(entry["key"])):
            raise InputError(f"{where}: key {entry['key']!r} must be lower_snake English")
        for table in list(entry["match"]) + list(entry.get("exclude", [])):
            for value in table.values():
                for v in value if isinstance(value, list) else [value]:
                    if isinstance(v, str) and v.startswith("~"):
                        try:
                            re.compile(v[1:])
                        except re.error as err:
                            raise InputError(f"{where}: bad regex {v!r} ({err})") from None
        exclude_all = tuple(data.get("exclude_all", ()))
        out[entry["key"]] = Category(
            key=entry["key"],
            name_zh=entry["name_zh"],
            name_en=entry["name_en"],
            level=entry.get("level", ""),
            source=entry.get("source", ""),
            match=tuple(entry["match"]),
            exclude=tuple(entry.get("exclude", ())) + exclude_all,
            mode=entry.get("mode", "walk"),
            confirmed=bool(entry.get("confirmed", True)),
            target_m=target_m,
            target_minutes=target_min,
            basic=bool(entry.get("basic", False)),
            basic_source=str(entry.get("basic_source", "")),
        )
    if not out:
        raise InputError(f"{path}: no [[category]] entries")
    return out


#: Fields of a [[category]] entry (see data/categories.toml).
_FIELDS = frozenset(
    {
        "key",
        "name_zh",
        "name_en",
        "minutes",
        "target_m",
        "level",
        "source",
        "match",
        "exclude",
        "mode",
        "confirmed",
        "basic",
        "basic_source",
    }
)


def _check_tables(data: dict, path: str) -> None:
    """The file's top level: ``[[category]]`` entries and an optional ``exclude_all`` list of tag tables."""
    unknown = sorted(set(data) - {"category", "exclude_all"})
    if unknown:
        raise InputError(
            f"{path}: unknown top-level key {unknown[0]!r}; a categories file holds [[category]] "
            "entries and exclude_all (see planner/data/categories.toml)"
        )
    cats = data.get("category", [])
    if not isinstance(cats, list) or not all(isinstance(c, dict) for c in cats):
        raise InputError(f"{path}: 'category' must be [[category]] tables; see planner/data/categories.toml")
    _check_tag_tables(data.get("exclude_all", []), f"{path}: exclude_all", allow_empty=True)


def _check_entry(entry: dict, where: str) -> None:
    """Types of one [[category]] entry's fields (the target is checked by :func:`_target`)."""
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise InputError(
            f"{where}: unknown field {unknown[0]!r}; the fields are {', '.join(sorted(_FIELDS))}"
        )
    for name in ("key", "name_zh", "name_en", "level", "source", "mode", "basic_source"):
        if name in entry and not isinstance(entry[name], str):
            raise InputError(f"{where}: {name} = {entry[name]!r} must be text in quotes")
    for name in ("name_zh", "name_en"):
        if not entry[name].strip():
            raise InputError(f"{where}: {name} is empty; give the category's name")
    for name in ("confirmed", "basic"):
        if name in entry and not isinstance(entry[name], bool):
            raise InputError(f"{where}: {name} = {entry[name]!r} must be true or false")
    _check_tag_tables(entry["match"], f"{where}: match", allow_empty=False)
    _check_tag_tables(entry.get("exclude", []), f"{where}: exclude", allow_empty=True)
    value = entry.get("minutes", entry.get("target_m"))
    if "minutes" in entry and isinstance(value, (int, float)) and value > settings.max_threshold_minutes:
        raise InputError(
            f"{where}: minutes = {value!r} is above {settings.max_threshold_minutes:g} "
            "(settings.max_threshold_minutes); give the target circle in minutes, e.g. 15"
        )


def _check_tag_tables(tables, where: str, allow_empty: bool) -> None:
    """A list of OSM tag conditions: tables of key = "value" | ["a", "b"] | "*" | "~regex"."""
    example = 'e.g. [{ amenity = "kindergarten" }]'
    if not isinstance(tables, list) or not all(isinstance(t, dict) and t for t in tables):
        raise InputError(f"{where} must be a list of tag tables, {example}")
    if not tables and not allow_empty:
        raise InputError(f"{where} is empty: nothing would match; give tag tables, {example}")
    for table in tables:
        for key, value in table.items():
            values = value if isinstance(value, list) else [value]
            if not values or not all(isinstance(v, str) for v in values):
                raise InputError(f"{where}: {key} = {value!r} must be text or a list of texts, {example}")


def _target(entry: dict, where: str) -> tuple[float | None, float | None]:
    """(target_m, target_minutes) of a TOML entry: exactly one, positive."""
    has_m, has_min = "target_m" in entry, "minutes" in entry
    if has_m == has_min:
        raise InputError(
            f"{where}: give exactly one target, target_m (metres along the network) "
            "or minutes; see planner/data/categories.toml"
        )
    key = "target_m" if has_m else "minutes"
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InputError(f"{where}: {key} = {value!r} must be a positive number")
    return (float(value), None) if has_m else (None, float(value))


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _value_matches(want, have: str | None) -> bool:
    if have is None:
        return False
    if isinstance(want, list):
        return any(_value_matches(w, have) for w in want)
    if want == "*":
        return True
    if isinstance(want, str) and want.startswith("~"):
        return _regex(want[1:]).search(have) is not None
    return have == want


def _table_matches(table: dict, tags: dict) -> bool:
    return all(_value_matches(want, tags.get(key)) for key, want in table.items())
