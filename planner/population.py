"""Population from the data planners hold, spread over homes by floor area (dasymetric mapping).

Homes found in OSM carry an estimate (floor area over floor area per person, or an assumed
density on residential land, :func:`planner.demand.homes_from_region`). Planners usually hold
better counts: a population raster (WorldPop, GHS-POP: people per cell) or census / 街道 /
社区 counts per polygon. :func:`distribute` replaces the estimate with such counts:

* each home falls in one cell of the raster (or one polygon of the table);
* the cell's (polygon's) count is shared among its homes in proportion to residential floor
  area (``floor_area_m2``; homes without it share by their estimated population, which is
  proportional to floor area within one extract), so the homes inside a cell sum exactly to
  its count;
* homes outside the source's extent (beyond the raster, on nodata cells, in no polygon) keep
  their estimate, and are counted in the report; people in cells or polygons without homes
  are reported too, never moved elsewhere.

Every home's ``population_source`` says where its count came from (``raster``, ``table`` or
``estimate``); households and the elderly, children and disabled scale with it.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner._errors import InputError

__all__ = [
    "POPULATION_COLUMNS",
    "distribute",
    "homes_with_population",
    "population_summary",
    "read_population_table",
]

#: Column names a population table's count may have (first found is used).
POPULATION_COLUMNS = ("population", "pop", "人口", "常住人口", "总人口", "户籍人口")
#: Columns that scale with a home's population when it is replaced.
_SCALED = ("households", "elderly", "children", "disabled")


def read_population_table(path: str | os.PathLike, crs=None, coords: str | None = None) -> gpd.GeoDataFrame:
    """Population counts per polygon: a GeoPackage/GeoJSON, or a CSV with a WKT column.

    Parameters
    ----------
    path : path
        Polygons with a count column (:data:`POPULATION_COLUMNS`, e.g. ``population`` or
        ``常住人口``); a CSV (UTF-8 or GBK) has the polygon in a ``wkt`` column.
    crs : optional
        The CRS of a CSV's WKT (default WGS84) or of a file that declares none.
    coords : {"wgs84", "gcj02", "bd09"}, optional
        Lon/lat that are GCJ-02 or BD-09 (converted to WGS84).

    Returns
    -------
    GeoDataFrame
        ``population`` (float, ≥ 0), ``name`` (or None), polygon geometry.
    """
    from planner import coords as _coords

    coords = _coords.check_coords(coords)
    label = f"--population-table {path}"
    frame = _read_table(Path(path), label, crs)
    if frame.crs is None:
        raise InputError(f"{label}: no CRS; save it with one or give --crs (e.g. EPSG:4326)")
    column = next((c for c in POPULATION_COLUMNS for col in frame.columns if str(col).strip() == c), None)
    if column is None:
        raise InputError(f"{label}: no population column; name the count column population or 常住人口")
    geoms = frame.geometry.to_numpy()
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    bad |= ~np.isin(shapely.get_type_id(np.where(bad, shapely.Point(0, 0), geoms)), [3, 6])
    if bad.any():
        from planner.categories import row_numbers

        raise InputError(f"{label}: {row_numbers(bad)}: no polygon; give each row its area as a polygon")
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(float)
    wrong = ~(np.isfinite(values) & (values >= 0))
    if wrong.any():
        from planner.categories import row_numbers

        raise InputError(
            f"{label}: {row_numbers(wrong)}: {column} is missing, not a number or negative; "
            "give the count of people"
        )
    name = next((c for c in ("name", "名称", "街道", "社区") if c in frame.columns), None)
    out = gpd.GeoDataFrame(
        {"population": values, "name": frame[name].to_numpy() if name else None},
        geometry=geoms,
        crs=frame.crs,
    )
    if coords != "wgs84":
        if not out.crs.is_geographic:
            raise InputError(f"{label}: --coords {coords} needs lon/lat, but the file's CRS is projected")
        out = out.to_crs(4326)
        out = out.set_geometry(_coords.geometries_to_wgs84(out.geometry.to_numpy(), coords), crs=4326)
    return out


def _read_table(p: Path, label: str, crs) -> gpd.GeoDataFrame:
    from planner.categories import parse_crs, single_layer

    if not p.is_file():
        raise InputError(
            f"{label}: {'a folder' if p.is_dir() else 'file not found'}; "
            "give a GeoPackage, GeoJSON or CSV with a wkt column"
        )
    crs = parse_crs(crs, p) if crs is not None else None
    if p.suffix.lower() in (".csv", ".txt"):
        from planner._csv import read_wkt_csv

        return read_wkt_csv(p, label, crs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            single_layer(p)
            frame = gpd.read_file(p)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - any reader failure is the user's file
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(
            f"{label}: cannot read ({text}); give a GeoPackage, GeoJSON or CSV with a wkt column"
        ) from None
    if crs is not None and frame.crs is None:
        frame = frame.set_crs(crs)
    return frame


def distribute(
    homes: gpd.GeoDataFrame,
    raster=None,
    table=None,
    *,
    weight: str = "floor_area_m2",
) -> gpd.GeoDataFrame:
    """Replace homes' population with a raster's or a table's counts, shared by floor area.

    Parameters
    ----------
    homes : GeoDataFrame
        Home points with ``population`` (and optionally ``floor_area_m2``), any CRS.
    raster : path or planner.raster.PopulationRaster, optional
        People per cell, any CRS (only the window around the homes is read).
    table : path or GeoDataFrame, optional
        Polygons with ``population`` (see :func:`read_population_table`). Give one of
        ``raster`` and ``table``.
    weight : str
        Column of residential floor area; where absent, ``population`` is the weight.

    Returns
    -------
    GeoDataFrame
        ``homes`` with ``population`` replaced inside the source's extent, households and
        groups scaled with it, ``population_source`` per home, and ``attrs["population"]``:
        the source, its file, homes from it and kept, and the people it holds.
    """
    if (raster is None) == (table is None):
        raise InputError("population: give one source, --population (raster) or --population-table")
    if "population" not in homes.columns:
        raise InputError("homes: a 'population' column is needed to share a population source by floor area")
    homes = homes.copy()
    old = homes["population"].to_numpy(float)
    weights = _weights(homes, weight)
    if raster is not None:
        zone, zone_people, info = _raster_zones(homes, raster)
    else:
        zone, zone_people, info = _table_zones(homes, table)
    inside = zone >= 0
    wsum = np.bincount(zone[inside], weights=weights[inside], minlength=len(zone_people))
    counts = np.bincount(zone[inside], minlength=len(zone_people))
    # A zone whose homes all have zero weight shares its people equally among them.
    equal = (wsum <= 0) & (counts > 0)
    w = np.where(inside & equal[np.maximum(zone, 0)], 1.0, weights)
    wsum = np.bincount(zone[inside], weights=w[inside], minlength=len(zone_people))
    new = old.copy()
    share = np.zeros(len(homes))
    share[inside] = w[inside] / wsum[zone[inside]]
    new[inside] = zone_people[zone[inside]] * share[inside]
    homes["population"] = new
    _scale_groups(homes, old, new, inside)
    source = np.where(inside, info["source"], "estimate")
    if "population_source" in homes.columns:  # homes from a file say "file" where no source reaches
        source = np.where(inside, source, homes["population_source"].astype(str).to_numpy())
    homes["population_source"] = source
    covered = np.zeros(len(zone_people), bool)
    covered[np.unique(zone[inside])] = True
    if info["source"] == "table":  # a raster's zones are the cells holding homes: none is without
        info["source_people_in_polygons_without_homes"] = float(zone_people[~covered].sum())
    info.update(
        {
            "homes_from_source": int(inside.sum()),
            "homes_kept_estimate": int((~inside).sum()),
            "people_from_source": float(new[inside].sum()),
            "people_kept_estimate": float(new[~inside].sum()),
            "source_people_in_zones_with_homes": float(zone_people[covered].sum()),
            "weight": weight if weight in homes.columns else "population",
        }
    )
    homes.attrs["population"] = info
    return homes


def _scale_groups(homes: gpd.GeoDataFrame, old: np.ndarray, new: np.ndarray, inside: np.ndarray) -> None:
    """Scale households and the elderly, children and disabled of the homes ``inside`` the
    source with their population (``old`` → ``new``), in place."""
    from planner import settings

    ratio = np.divide(new, old, out=np.full(len(new), np.nan), where=old > 0)
    per_person = {
        "households": 1 / settings.persons_per_household,
        "elderly": settings.elderly_share,
        "children": settings.children_share,
        "disabled": settings.disabled_share,
    }
    for col in _SCALED:
        if col in homes.columns:
            values = homes[col].to_numpy(float)
            # A home that had no people gets the default shares of its new ones.
            scaled = np.where(np.isfinite(ratio), values * ratio, new * per_person[col])
            homes[col] = np.where(inside, scaled, values)


def _weights(homes: gpd.GeoDataFrame, weight: str) -> np.ndarray:
    values = homes[weight] if weight in homes.columns else homes["population"]
    w = pd.to_numeric(values, errors="coerce").to_numpy(float)
    return np.where(np.isfinite(w) & (w > 0), w, 0.0)


def _raster_zones(homes: gpd.GeoDataFrame, raster) -> tuple[np.ndarray, np.ndarray, dict]:
    """Each home's cell (−1 outside the raster or on nodata), and people per cell."""
    from planner.raster import PopulationRaster, read_population, rowcol

    if isinstance(raster, PopulationRaster):
        pop = raster
    else:
        hull = gpd.GeoSeries([shapely.box(*homes.total_bounds)], crs=homes.crs)
        pop = read_population(raster, within=hull)
    pts = homes.geometry.to_crs(pop.crs).to_numpy()
    rows, cols = rowcol(pop.transform, shapely.get_x(pts), shapely.get_y(pts))
    height, width = pop.shape
    on = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    flat = np.where(on, rows * width + cols, 0)
    values = pop.values.ravel()
    valid = on & np.isfinite(values[flat]) & (values[flat] >= 0)
    cells, zone = np.unique(flat[valid], return_inverse=True)
    home_zone = np.full(len(homes), -1)
    home_zone[valid] = zone
    info = {
        "source": "raster",
        "file": getattr(pop, "name", str(raster)),
        "crs": pop.crs.to_string(),
        "cell_size": abs(pop.transform.a),
        "source_total_in_window": pop.total,
    }
    return home_zone, values[cells], info


def _table_zones(homes: gpd.GeoDataFrame, table) -> tuple[np.ndarray, np.ndarray, dict]:
    """Each home's polygon (−1 in none; the first where polygons overlap), and people per polygon."""
    name = "table"
    if not isinstance(table, gpd.GeoDataFrame):
        name = Path(table).name
        table = read_population_table(table)
    polys = table.to_crs(homes.crs).geometry.to_numpy()
    pts = homes.geometry.to_numpy()
    home_idx, poly_idx = shapely.STRtree(polys).query(pts, predicate="within")
    zone = np.full(len(homes), -1)
    order = np.lexsort((poly_idx, home_idx))
    home_idx, poly_idx = home_idx[order], poly_idx[order]
    first = np.r_[True, home_idx[1:] != home_idx[:-1]] if len(home_idx) else np.zeros(0, bool)
    zone[home_idx[first]] = poly_idx[first]
    people = table["population"].to_numpy(float)
    info = {"source": "table", "file": name, "polygons": len(table), "source_total": float(people.sum())}
    return zone, people, info


def homes_with_population(
    region,
    homes: gpd.GeoDataFrame | None = None,
    population=None,
    population_table=None,
    crs=None,
    coords: str | None = None,
) -> gpd.GeoDataFrame | None:
    """The homes a command uses, with a raster's or a table's population when one is given.

    Parameters
    ----------
    region : planner.sources.Region
        Where homes come from when ``homes`` is None (:func:`planner.demand.homes_from_region`).
    homes : GeoDataFrame, optional
        Homes from a user's file (those outside the source keep their count, ``"file"``).
    population : path, optional
        ``--population``: a raster of people per cell.
    population_table : path, optional
        ``--population-table``: polygons with counts; ``crs`` and ``coords`` describe a CSV's
        WKT or a file without a CRS (see :func:`read_population_table`).

    Returns
    -------
    GeoDataFrame or None
        ``homes`` unchanged (None stays None) when no source is given; else the homes in
        ``region.crs`` with :func:`distribute`'s columns.
    """
    if population is None and population_table is None:
        return homes
    if population is not None and population_table is not None:
        raise InputError("--population and --population-table: give one population source")
    from planner.demand import homes_from_region

    if homes is None:
        homes = homes_from_region(region)
    else:
        homes = homes.to_crs(region.crs).assign(population_source="file")
    if len(homes) == 0:
        return homes
    table = read_population_table(population_table, crs, coords) if population_table is not None else None
    out = distribute(homes, raster=population, table=table)
    if table is not None:
        out.attrs["population"]["file"] = Path(population_table).name
    return out


def population_summary(homes: pd.DataFrame) -> dict:
    """Where the homes' population came from: homes and people per source (``raster``,
    ``table``, ``file``, ``estimate``), and the source's details when one was used."""
    if "population_source" in homes.columns:
        source = homes["population_source"].astype(str)
    elif "source" in homes.columns:
        source = homes["source"].map(lambda s: "file" if s in ("file", "given") else "estimate")
    else:
        source = pd.Series("estimate", index=homes.index)
    people = homes["population"].astype(float)
    out = {
        name: {"homes": int((source == name).sum()), "people": float(people[source == name].sum())}
        for name in sorted(source.unique())
    }
    details = homes.attrs.get("population")
    return {"by_source": out, **({"source": details} if details else {})}
