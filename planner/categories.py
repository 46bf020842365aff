"""Facility categories of the life-circle standards, kept as data (``data/categories.toml``).

Each category has a stable key, Chinese and English names, the OSM tags that identify it
and its target circle in minutes. :func:`classify` turns OSM features into facilities.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import geopandas as gpd
import pandas as pd

from planner._errors import InputError

_DATA = Path(__file__).resolve().parent / "data"
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Category:
    """One daily-life facility category."""

    key: str
    name_zh: str
    name_en: str
    minutes: int
    level: str
    source: str
    match: tuple[dict, ...]
    exclude: tuple[dict, ...] = ()
    mode: str = "walk"
    #: False where the target comes from a value the standards' facts mark "to confirm".
    confirmed: bool = True

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
    for f in files or [_DATA / "categories.toml"]:
        cats.update(_read_file(str(f)))
    if extra_file is not None:
        cats.update(_read_file(str(extra_file)))
    return cats


def select(categories: dict[str, Category], keys: str | Iterable[str] | None) -> list[Category]:
    """The categories named by ``keys`` (comma-separated or a list); all when None.

    Raises InputError naming the unknown key and listing the known ones.
    """
    if keys is None or keys == "" or keys == "all":
        return list(categories.values())
    if isinstance(keys, str):
        keys = [k.strip() for k in keys.split(",") if k.strip()]
    chosen = []
    for key in keys:
        if key not in categories:
            raise InputError(
                f"--categories: unknown category {key!r}; known: {', '.join(categories)}"
                " (add your own with --categories-file)"
            )
        chosen.append(categories[key])
    return chosen


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
    rows_idx: list[int] = []
    rows_cat: list[str] = []
    tags_col = features["tags"].tolist() if len(features) else []
    geom_types = features.geom_type.tolist() if len(features) else []
    for i, tags in enumerate(tags_col):
        if not tags or geom_types[i] in ("LineString", "MultiLineString"):
            continue
        for cat in cats:
            if cat.matches(tags):
                rows_idx.append(i)
                rows_cat.append(cat.key)
    sub = features.iloc[rows_idx]
    return gpd.GeoDataFrame(
        {
            "facility_id": sub["osm_id"].to_numpy(),
            "category": rows_cat,
            "name": sub["name"].to_numpy(),
        },
        geometry=sub.geometry.to_numpy(),
        crs=features.crs,
    )


def region_facilities(features: gpd.GeoDataFrame, categories: Iterable[Category],
                      extra: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """Facilities of the categories found in OSM features, plus a user's extra ones (those of
    the same categories), in the features' CRS with a fresh index."""
    cats = list(categories)
    found = classify(features, cats)
    if extra is not None and len(extra):
        extra = extra[extra["category"].isin([c.key for c in cats])].to_crs(features.crs)
        found = pd.concat([found, extra[["facility_id", "category", "name", "geometry"]]], ignore_index=True)
    return found.reset_index(drop=True)


def facilities_from_file(path: str | os.PathLike, crs, categories: dict[str, Category]) -> gpd.GeoDataFrame:
    """Read a user's facility file (GeoPackage/GeoJSON with ``category``; CSV with lon/lat).

    Facilities from a file complement OSM, where Chinese POIs are sparse.
    """
    frame = _read_points_table(path)
    if "category" not in frame.columns:
        raise InputError(f"{path}: no 'category' column; add one with category keys such as kindergarten")
    unknown = sorted(set(frame["category"].astype(str)) - set(categories))
    if unknown:
        raise InputError(f"{path}: unknown category {unknown[0]!r}; known: {', '.join(categories)}")
    if "facility_id" not in frame.columns:
        frame["facility_id"] = [f"file/{i}" for i in range(len(frame))]
    if "name" not in frame.columns:
        frame["name"] = None
    out = frame[["facility_id", "category", "name", "geometry"]].to_crs(crs)
    out["facility_id"] = out["facility_id"].astype(str)
    return out


def _read_points_table(path: str | os.PathLike) -> gpd.GeoDataFrame:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: file not found")
    try:
        if p.suffix.lower() == ".csv":
            df = pd.read_csv(p)
            lon = next((c for c in df.columns if c.lower() in ("lon", "lng", "longitude", "x")), None)
            lat = next((c for c in df.columns if c.lower() in ("lat", "latitude", "y")), None)
            if lon is None or lat is None:
                raise InputError(f"{path}: a CSV needs lon and lat columns (WGS84)")
            return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df[lon], df[lat]), crs=4326)
        frame = gpd.read_file(p)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - any reader failure is the user's file
        raise InputError(f"{path}: cannot read ({str(err).splitlines()[0]}); give a GeoPackage, GeoJSON or CSV") from None
    if frame.crs is None:
        raise InputError(f"{path}: no CRS; save it with one (e.g. EPSG:4326)")
    return frame


@lru_cache(maxsize=32)
def _read_file(path: str) -> dict[str, Category]:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: categories file not found")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid TOML ({err}); see planner/data/categories.toml for the format") from None
    out: dict[str, Category] = {}
    for i, entry in enumerate(data.get("category", [])):
        where = f"{path}: category {i + 1}"
        missing = [k for k in ("key", "name_zh", "name_en", "minutes", "match") if k not in entry]
        if missing:
            raise InputError(f"{where}: missing {', '.join(missing)}; see planner/data/categories.toml")
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
            key=entry["key"], name_zh=entry["name_zh"], name_en=entry["name_en"],
            minutes=int(entry["minutes"]), level=entry.get("level", ""),
            source=entry.get("source", ""), match=tuple(entry["match"]),
            exclude=tuple(entry.get("exclude", ())) + exclude_all,
            mode=entry.get("mode", "walk"),
            confirmed=bool(entry.get("confirmed", True)),
        )
    if not out:
        raise InputError(f"{path}: no [[category]] entries")
    return out


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
