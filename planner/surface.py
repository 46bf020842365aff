"""Travel-time surfaces: values at points (times at network nodes) written as a GeoTIFF.

The grid is aligned to multiples of the cell size (so surfaces from separate runs line up), or
taken from a population raster (:mod:`planner.raster`) to compare the two cell by cell.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.errors
import rasterio.transform
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.crs import CRS as RasterioCRS
from rasterio.io import MemoryFile
from scipy.spatial import cKDTree

from planner._errors import InputError
from planner._io import atomic_file
from planner.raster import PopulationRaster, check_grid, first_line, geometries, is_metric, rowcol

__all__ = ["write_surface"]


def write_surface(
    path: str | os.PathLike,
    values: np.ndarray,
    points: np.ndarray | gpd.GeoDataFrame | gpd.GeoSeries,
    crs: Any = None,
    cell_size_m: float = 100.0,
    *,
    how: Literal["nearest", "min"] = "nearest",
    max_distance_m: float | None = 200.0,
    offnetwork_speed_mps: float | None = None,
    like: str | os.PathLike | PopulationRaster | None = None,
    units: str = "s",
) -> Path:
    """Write values at points (travel times at network nodes) as a float32 GeoTIFF surface.

    Parameters
    ----------
    path : str or os.PathLike
        Output .tif; written to a temporary file and moved into place when complete.
    values : array
        One value per point (e.g. seconds from the nearest facility); NaN or inf (unreached
        nodes) are ignored.
    points : (n, 2) array of x, y, or GeoDataFrame/GeoSeries of points
        Where the values are. An array is in ``crs``; a GeoDataFrame has its own CRS and is
        reprojected to ``crs`` when both are given.
    crs : optional
        CRS of the surface; must be metric because cells are ``cell_size_m`` wide.
        Default: the points' CRS.
    cell_size_m : float
        Cell width and height in metres; the grid is aligned to multiples of it.
    how : {"nearest", "min"}
        ``"nearest"``: each cell takes the value of the point nearest its centre within
        ``max_distance_m`` (a surface from network nodes). ``"min"``: each cell takes the
        minimum of the points falling inside it; cells without points are nodata.
    max_distance_m : float or None
        For ``"nearest"``: cells farther than this from every point are nodata (cells far
        from any street are not reachable on the network). None: no limit.
    offnetwork_speed_mps : float, optional
        For ``"nearest"``: add the straight walk from the cell centre to its point at this
        speed (e.g. 1.2 m/s), so a cell reads the time to its door rather than to its node.
    like : path or PopulationRaster, optional
        Use this raster's grid (CRS, transform, size) instead, e.g. to compare the surface
        with population cell by cell; ``crs`` and ``cell_size_m`` are then ignored.
    units : str
        Unit written to the band's metadata.

    Returns
    -------
    pathlib.Path
        The written file. Nodata is NaN; compression deflate.
    """
    out_path = Path(path)
    name = out_path.name
    if how not in ("nearest", "min"):
        raise InputError(f"{name}: how={how!r} is not 'nearest' or 'min'")
    values = np.asarray(values, dtype="float64").ravel()
    xy, points_crs = _xy_of(points, crs, name)
    if len(values) != len(xy):
        raise InputError(f"{name}: {len(values)} values for {len(xy)} points; give one value per point")
    ok = np.isfinite(values) & np.all(np.isfinite(xy), axis=1)
    values, xy = values[ok], xy[ok]
    if len(values) == 0:
        raise InputError(
            f"{name}: no point has a finite value; nothing to write (are all nodes unreachable?)"
        )
    if offnetwork_speed_mps is not None and not offnetwork_speed_mps > 0:
        raise InputError(f"{name}: offnetwork_speed_mps={offnetwork_speed_mps} must be > 0")

    grid_crs, transform, height, width = _surface_grid(
        name, xy, points_crs, crs, cell_size_m, how, max_distance_m, like
    )
    grid = np.full((height, width), np.nan, dtype="float64")
    if how == "min":
        _fill_min(grid, transform, values, xy, points_crs, grid_crs)
    else:
        _fill_nearest(grid, transform, values, xy, points_crs, grid_crs, max_distance_m, offnetwork_speed_mps)
    _write_tif(out_path, grid, grid_crs, transform, how, units)
    return out_path


def _surface_grid(
    name: str,
    xy: np.ndarray,
    points_crs: CRS,
    crs: Any,
    cell_size_m: float,
    how: str,
    max_distance_m: float | None,
    like: str | os.PathLike | PopulationRaster | None,
) -> tuple[CRS, Affine, int, int]:
    """The grid: a template raster's, or one aligned to ``cell_size_m`` around the points."""
    if like is not None:
        return _grid_of(like)
    grid_crs = CRS.from_user_input(crs) if crs is not None else points_crs
    if not is_metric(grid_crs):
        raise InputError(
            f"{name}: cell_size_m={cell_size_m} needs a metric CRS but the surface CRS is "
            f"{grid_crs.to_string()}; pass crs='EPSG:326NN' (the UTM zone) or points in UTM"
        )
    if not cell_size_m > 0:
        raise InputError(f"{name}: cell_size_m={cell_size_m} must be > 0")
    gx, gy = Transformer.from_crs(points_crs, grid_crs, always_xy=True).transform(xy[:, 0], xy[:, 1])
    pad = (max_distance_m or 0.0) if how == "nearest" else 0.0
    transform, height, width = _aligned_grid(gx, gy, float(cell_size_m), pad)
    return grid_crs, transform, height, width


def _fill_min(
    grid: np.ndarray, transform: Affine, values: np.ndarray, xy: np.ndarray, points_crs: CRS, grid_crs: CRS
) -> None:
    """Each cell takes the minimum of the points inside it (in place)."""
    height, width = grid.shape
    to_grid = Transformer.from_crs(points_crs, CRS.from_user_input(grid_crs), always_xy=True)
    gx, gy = to_grid.transform(xy[:, 0], xy[:, 1])
    prow, pcol = rowcol(transform, np.asarray(gx), np.asarray(gy))
    inside = (prow >= 0) & (prow < height) & (pcol >= 0) & (pcol < width)
    np.fmin.at(grid, (prow[inside], pcol[inside]), values[inside])


def _fill_nearest(
    grid: np.ndarray,
    transform: Affine,
    values: np.ndarray,
    xy: np.ndarray,
    points_crs: CRS,
    grid_crs: CRS,
    max_distance_m: float | None,
    offnetwork_speed_mps: float | None,
) -> None:
    """Each cell takes the value of the point nearest its centre within ``max_distance_m``, plus
    the straight walk to it at ``offnetwork_speed_mps`` if given (in place)."""
    height, width = grid.shape
    # Distances in metres: the points' CRS if metric, else their UTM zone.
    metric = points_crs if is_metric(points_crs) else _utm_of(xy, points_crs)
    to_metric_pts = Transformer.from_crs(points_crs, metric, always_xy=True)
    mx, my = to_metric_pts.transform(xy[:, 0], xy[:, 1])
    rows, cols = np.indices((height, width)).reshape(2, -1)
    cx, cy = rasterio.transform.xy(transform, rows, cols, offset="center")
    to_metric_grid = Transformer.from_crs(CRS.from_user_input(grid_crs), metric, always_xy=True)
    cx, cy = to_metric_grid.transform(np.asarray(cx, dtype="float64"), np.asarray(cy, dtype="float64"))
    tree = cKDTree(np.column_stack([mx, my]))
    bound = np.inf if max_distance_m is None else float(max_distance_m)
    dist_m, nearest = tree.query(np.column_stack([cx, cy]), k=1, distance_upper_bound=bound)
    hit = nearest < len(values)
    cell_values = values[nearest[hit]]
    if offnetwork_speed_mps is not None:
        cell_values = cell_values + dist_m[hit] / offnetwork_speed_mps
    grid[rows[hit], cols[hit]] = cell_values


def _write_tif(
    out_path: Path, grid: np.ndarray, grid_crs: CRS, transform: Affine, how: str, units: str
) -> None:
    """``grid`` as a float32 GeoTIFF (NaN nodata, deflate), written atomically."""
    height, width = grid.shape
    profile = {
        "driver": "GTiff",
        "dtype": "float32",
        "count": 1,
        "height": height,
        "width": width,
        "crs": RasterioCRS.from_user_input(grid_crs),
        "transform": transform,
        "nodata": np.nan,
        "compress": "deflate",
        "predictor": 3,  # floating-point predictor: travel times compress several times better
    }
    if height >= 256 and width >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    # GDAL writes to a path, so build the file in memory and hand its bytes to atomic_file.
    with MemoryFile() as memfile:
        with memfile.open(**profile) as dst:
            dst.write(grid.astype("float32"), 1)
            dst.set_band_unit(1, units)
            dst.update_tags(1, units=units, how=how)
        data = memfile.read()
    with atomic_file(out_path, "wb") as fh:
        fh.write(data)


def _xy_of(points: Any, crs: Any, name: str) -> tuple[np.ndarray, CRS]:
    """(n, 2) coordinates and their CRS from an array + crs or a GeoDataFrame/GeoSeries."""
    if isinstance(points, (gpd.GeoDataFrame, gpd.GeoSeries)):
        if points.crs is None:
            raise InputError(f"{name}: points have no CRS; set it with gdf.set_crs(...)")
        geoms = geometries(points, "points")
        present = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
        if np.any(shapely.get_type_id(geoms[present]) != 0):
            raise InputError(f"{name}: points must be Point geometries; pass gdf.representative_point()")
        xy = np.full((len(geoms), 2), np.nan)
        xy[present] = shapely.get_coordinates(geoms[present])[:, :2]
        return xy, CRS.from_user_input(points.crs)
    xy = np.asarray(points, dtype="float64")
    if xy.ndim != 2 or xy.shape[1] < 2:
        raise InputError(f"{name}: points must be an (n, 2) array of x, y or a GeoDataFrame of points")
    if crs is None:
        raise InputError(f"{name}: x, y points need crs=...; pass the CRS they are in (e.g. 'EPSG:32649')")
    return xy[:, :2], CRS.from_user_input(crs)


def _utm_of(xy: np.ndarray, crs: CRS) -> CRS:
    return gpd.GeoSeries(gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=crs).estimate_utm_crs()


def _aligned_grid(xs: np.ndarray, ys: np.ndarray, cell_m: float, pad_m: float) -> tuple[Affine, int, int]:
    # Snapping to multiples of the cell size lets surfaces from separate runs line up.
    left = np.floor((np.min(xs) - pad_m) / cell_m) * cell_m
    bottom = np.floor((np.min(ys) - pad_m) / cell_m) * cell_m
    right = np.ceil((np.max(xs) + pad_m) / cell_m) * cell_m
    top = np.ceil((np.max(ys) + pad_m) / cell_m) * cell_m
    # A point exactly on the right/top edge still needs a cell.
    width = max(int(np.round((right - left) / cell_m)), 1) + (1 if np.max(xs) + pad_m >= right else 0)
    height = max(int(np.round((top - bottom) / cell_m)), 1) + (1 if np.max(ys) + pad_m >= top else 0)
    top = bottom + height * cell_m
    return Affine(cell_m, 0.0, left, 0.0, -cell_m, top), height, width


def _grid_of(like: str | os.PathLike | PopulationRaster) -> tuple[CRS, Affine, int, int]:
    if isinstance(like, PopulationRaster):
        return CRS.from_user_input(like.crs), like.transform, like.shape[0], like.shape[1]
    path = Path(like)
    if not path.exists():
        raise InputError(f"{path.name}: no such file ({path}); check the path of the template raster (like=)")
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputError(
                    f"{path.name}: no CRS; set one with gdal_edit.py -a_srs EPSG:32649 {path.name}"
                )
            check_grid(src.transform, path.name)
            return CRS.from_user_input(src.crs), src.transform, src.height, src.width
    except rasterio.errors.RasterioIOError as error:
        raise InputError(
            f"{path.name}: not a raster GDAL can read ({first_line(error)}); give a GeoTIFF"
        ) from None
