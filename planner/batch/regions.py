"""The regions file of a batch: one region per row, with its extract or its boundary."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from planner._csv import read_csv
from planner._errors import InputError
from planner._text import clean_text

#: Name of the whole-set rows in ``indicators.csv``.
ALL_REGIONS = "(all)"


@dataclass(frozen=True)
class RegionSpec:
    """One row of a regions file, with paths resolved.

    Attributes
    ----------
    name : str
        Region name; also its output folder ``DIR/regions/<name>``.
    osm : str or None
        Absolute path of the region's extract (its own, or the shared large one).
    boundary : shapely geometry or None
        Polygon in WGS84: only homes inside count; the region is loaded with a buffer around it.
    homes, facilities : str or None
        Region's own homes / extra facilities file (absolute paths), overriding the batch's.
    error : str or None
        A problem found while reading the row (e.g. a bad ``wkt``): the region fails with it.
    row : int
        Row in the regions file (1 = first region).
    cut_osm : str or None
        This region's cut of a large extract (see :func:`cut_extracts`), when the batch made one.
    """

    name: str
    osm: str | None
    boundary: Any = None
    homes: str | None = None
    facilities: str | None = None
    error: str | None = None
    row: int = 0
    cut_osm: str | None = None

    @property
    def source(self) -> str | None:
        """The file the task reads: the region's cut of a large extract, or ``osm``."""
        return self.cut_osm or self.osm


def read_regions(
    regions: str | os.PathLike | pd.DataFrame,
    osm: str | os.PathLike | None = None,
    coords: str | None = None,
    crs=None,
) -> list[RegionSpec]:
    """Read a regions file (CSV or GeoPackage/GeoJSON) into :class:`RegionSpec` rows.

    Parameters
    ----------
    regions : path or DataFrame
        One row per region: ``name``, and ``osm`` (a path, relative to the file's folder) or a
        boundary (the GeoPackage geometry, or a CSV ``wkt`` polygon in WGS84), or both.
        Optional ``homes`` and ``facilities`` paths per region.
    osm : path, optional
        The large extract that boundary rows without their own ``osm`` are cut from.
    coords : {"wgs84", "gcj02", "bd09"}, optional
        The boundaries' lon/lat are GCJ-02 or BD-09 (:mod:`planner.coords`): converted to WGS84.
    crs : optional
        The CRS of a CSV's ``wkt`` boundaries and of a boundary file that declares none
        (``--crs``); default WGS84 lon/lat.

    Returns
    -------
    list of RegionSpec
        In file order. Problems of the whole file (no ``name``, duplicate names) raise
        :class:`InputError`; a bad row (unreadable ``wkt``) carries its ``error`` and fails alone.
    """
    from planner.coords import check_coords

    coords = check_coords(coords)
    if isinstance(regions, pd.DataFrame):
        frame, base, label = regions.copy(), Path.cwd(), "regions"
    else:
        path = Path(regions).expanduser()
        frame, base, label = _read_regions_file(path), path.resolve().parent, str(regions)
    frame.columns = [
        str(c).strip().lower() if c != getattr(frame, "_geometry_column_name", None) else c
        for c in frame.columns
    ]
    if "name" not in frame.columns:
        raise InputError(
            f"{label}: no 'name' column; give one row per region with name and osm or a boundary"
        )
    if len(frame) == 0:
        raise InputError(f"{label}: no regions; give one row per region")
    geoms = _geometries_wgs84(frame, crs, label)
    big = Path(osm).expanduser().resolve() if osm else None
    specs, seen = [], {}
    for i, row in enumerate(frame.to_dict("records")):
        name = _region_name(row.get("name"), label, i + 1)
        if name in seen:
            raise InputError(
                f"{label}: region name {name!r} appears twice (rows {seen[name]} and {i + 1}); "
                "names must be unique"
            )
        seen[name] = i + 1
        boundary, error = _row_boundary(row, None if geoms is None else geoms[i], i + 1, crs, coords)
        own = clean_text(row.get("osm"))
        source = _row_source(own, base, big, f"{label}: region {name!r}")
        if boundary is None and not own and error is None:
            error = (
                f"row {i + 1}: no osm file and no boundary; give its own osm or a boundary to cut from --osm"
            )
        specs.append(
            RegionSpec(
                name=name,
                osm=source,
                boundary=boundary,
                homes=_optional_path(row, "homes", base),
                facilities=_optional_path(row, "facilities", base),
                error=error,
                row=i + 1,
            )
        )
    return specs


def _geometries_wgs84(frame: pd.DataFrame, crs, label: str):
    """The boundaries of a GeoPackage/GeoJSON regions file in WGS84, or None for a table."""
    if not (isinstance(frame, gpd.GeoDataFrame) and frame.geometry.notna().any()):
        return None
    if frame.crs is None and crs is not None:
        frame = frame.set_crs(crs)
    if frame.crs is None:
        raise InputError(f"{label}: the boundaries have no CRS; save the file with one (e.g. EPSG:4326)")
    return frame.geometry.to_crs(4326).to_numpy()


def _row_source(own: str | None, base: Path, big: Path | None, where: str) -> str:
    """The extract a row reads: its own ``osm``, else the large one (``--osm``)."""
    if own:
        return str(_resolve(own, base))
    if big is None:
        raise InputError(
            f"{where} has no osm file; give an osm column or --osm EXTRACT to cut boundaries from"
        )
    return str(big)


def _optional_path(row: dict, key: str, base: Path) -> str | None:
    text = clean_text(row.get(key))
    return str(_resolve(text, base)) if text else None


def _row_boundary(row: dict, geom, row_number: int, crs, coords: str) -> tuple[Any, str | None]:
    """A row's boundary in WGS84 (its ``wkt``, else its geometry) and the problem with it, if any."""
    from planner.coords import geometries_to_wgs84

    boundary, error = None, None
    if geom is not None and not geom.is_empty:
        boundary = geom
    text = clean_text(row.get("wkt"))
    if text:
        try:
            boundary = shapely.from_wkt(text)
            if crs is not None:
                boundary = gpd.GeoSeries([boundary], crs=crs).to_crs(4326).iloc[0]
        except shapely.errors.GEOSException as err:
            error = (
                f"row {row_number}: wkt is not a readable polygon ({str(err).splitlines()[0]}); "
                "give WGS84 WKT like POLYGON((lon lat, ...))"
            )
    if boundary is not None and error is None:
        error = _polygon_problem(boundary, row_number)
    if boundary is not None and error is None and coords != "wgs84":
        boundary = geometries_to_wgs84([boundary], coords)[0]
    return boundary, error


def _read_regions_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputError(
            f"--regions {path}: file not found; give a CSV or GeoPackage with one row per region"
        )
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):  # UTF-8 (BOM or none) or GBK, as Excel on Chinese Windows saves it
            return read_csv(path, f"--regions {path}", dtype=str, keep_default_na=False)
        if suffix in (".gpkg", ".geojson", ".json", ".shp", ".fgb"):
            return gpd.read_file(path)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - any reader failure is the user's file
        raise InputError(f"--regions {path}: cannot read it ({str(err).strip().splitlines()[0]})") from None
    raise InputError(
        f"--regions {path}: use a .csv (name, osm or wkt) or a .gpkg (name, geometry, optional osm)"
    )


def _region_name(value: Any, label: str, row: int) -> str:
    name = clean_text(value) or ""
    # The name is a folder: no separators, no hidden or relative names.
    if (
        not name
        or name in (".", "..", ALL_REGIONS)
        or name.startswith(".")
        or re.search(r"[/\\\x00-\x1f]", name)
    ):
        raise InputError(
            f"{label}: row {row} has name {name!r}; give a non-empty name without / or \\ "
            f"that does not start with '.' (it names the region's output folder)"
        )
    return name


def _resolve(text: str, base: Path) -> Path:
    p = Path(text).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def _polygon_problem(geom, row: int) -> str | None:
    if geom.geom_type not in ("Polygon", "MultiPolygon") or geom.is_empty:
        return f"row {row}: boundary is a {geom.geom_type}, not a polygon; give a polygon in WGS84"
    if not geom.is_valid:
        return (
            f"row {row}: boundary polygon is invalid ({shapely.is_valid_reason(geom)}); "
            "fix it (e.g. shapely.make_valid)"
        )
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        return f"row {row}: boundary coordinates are not longitude/latitude; give WGS84 (EPSG:4326)"
    return None


def size_guess(spec: RegionSpec) -> float:
    if spec.boundary is not None:
        return float(shapely.area(spec.boundary))  # deg² is fine for ranking
    try:
        return float(os.path.getsize(spec.osm))
    except OSError:
        return 0.0
