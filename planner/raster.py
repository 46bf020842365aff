"""Population rasters: read them and sum them to polygons and points.

Population rasters (WorldPop, LandScan, GHS-POP, ...) hold a head count per cell. This module
turns them into the demand the planner works with:

* :func:`read_population` reads one band as float64 with nodata as NaN;
* :func:`sum_to_polygons` sums it inside polygons (districts, villages, compounds), weighting
  each cell by the fraction of its area the polygon covers;
* :func:`sum_to_points` gives every cell's population to points (homes, villages) so the
  total is conserved;
* :func:`cells_as_points` turns each populated cell into a demand point at its centre.

Travel-time surfaces on such grids are written by :mod:`planner.surface`.

Inputs may be in any CRS: vectors are reprojected to the raster's CRS (or to a metric CRS
where distances are measured), never the raster itself, so cell values are never resampled.
Population is a count, so cells that are nodata, NaN or negative count as no population.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.errors
import rasterio.features
import rasterio.transform
import rasterio.warp
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.crs import CRS as RasterioCRS
from rasterio.windows import Window
from scipy import ndimage
from scipy.spatial import cKDTree

from planner._errors import InputError

__all__ = [
    "PopulationRaster",
    "cells_as_points",
    "read_population",
    "sum_to_points",
    "sum_to_polygons",
]

_METRE_NAMES = ("metre", "meter", "metres", "meters")
#: Cover fractions closer than this to 0 or 1 are floating-point noise, not geography.
_SLIVER = 1e-9
#: Windows up to this many cells are handled by shapely alone (no GDAL rasterize calls).
_SMALL_WINDOW_CELLS = 4096
#: Polygons with more vertices are cut into row strips before cells are intersected.
_DETAILED_VERTICES = 500


@dataclass(frozen=True, eq=False)
class PopulationRaster:
    """One band of a population raster held in memory.

    Attributes
    ----------
    values : numpy.ndarray
        float64 array (rows, cols) of people per cell; NaN where the file has nodata.
    transform : affine.Affine
        Maps (col, row) of ``values`` to x, y in ``crs`` (the window's transform if only a
        window of the file was read).
    crs : rasterio.crs.CRS
        The raster's CRS.
    nodata : float or None
        The file's nodata value (already replaced by NaN in ``values``).
    name : str
        File name, used in error messages.
    window : rasterio.windows.Window
        The part of the file ``values`` came from (the whole file unless read ``within``).
    file_width : int
        Columns in the whole file; with ``window`` it gives every cell a stable id.
    """

    values: np.ndarray
    transform: Affine
    crs: RasterioCRS
    nodata: float | None
    name: str = "raster"
    window: Window | None = None
    file_width: int | None = None

    def __post_init__(self) -> None:
        # Built by hand too (tests, other modules): normalise what the helpers rely on.
        values = np.asarray(self.values, dtype="float64")
        if values.ndim != 2:
            raise InputError(f"{self.name}: population values must be a 2-D array, got shape {values.shape}")
        if self.crs is None:
            raise InputError(f"{self.name}: no CRS; pass crs='EPSG:32649' (the CRS of the transform)")
        check_grid(self.transform, self.name)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "crs", RasterioCRS.from_user_input(self.crs))

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of ``values``."""
        return self.values.shape

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) of ``values`` in ``crs``."""
        west, south, east, north = rasterio.transform.array_bounds(*self.shape, self.transform)
        return (west, south, east, north)

    @property
    def cell_area(self) -> float:
        """Area of one cell in squared CRS units (m² for a metric CRS)."""
        return abs(self.transform.a * self.transform.e)

    @property
    def valid(self) -> np.ndarray:
        """Boolean mask of cells that hold people (finite and > 0)."""
        return _valid(self.values)

    @property
    def total(self) -> float:
        """People in all valid cells."""
        return float(self.values[self.valid].sum())


def read_population(
    path: str | os.PathLike,
    *,
    band: int = 1,
    within: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
) -> PopulationRaster:
    """Read one band of a population raster as float64 with nodata as NaN.

    Parameters
    ----------
    path : str or os.PathLike
        A raster GDAL can read (GeoTIFF, ...), with a CRS, whose cells are head counts.
    band : int
        Band to read (1-based).
    within : GeoDataFrame or GeoSeries, optional
        Read only the window covering these geometries (any CRS), plus one cell of margin;
        this keeps national 100 m rasters out of memory when only a city is needed.

    Returns
    -------
    PopulationRaster

    Raises
    ------
    InputError
        Missing file, not a raster, no CRS, a rotated grid, a missing band, or ``within``
        does not overlap the raster.
    """
    path = Path(path)
    name = path.name
    if not path.exists():
        raise InputError(f"{name}: no such file ({path}); check the path to the population raster")
    if path.is_dir():
        raise InputError(f"{name}: is a folder, not a raster; give the .tif file inside it")
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as error:
        raise InputError(
            f"{name}: not a raster GDAL can read ({first_line(error)}); give a GeoTIFF such as a "
            "WorldPop .tif"
        ) from None
    with src:
        if src.crs is None:
            raise InputError(
                f"{name}: no CRS; set one with gdal_edit.py -a_srs EPSG:32649 {name} (use the raster's "
                "real CRS)"
            )
        check_grid(src.transform, name)
        if not 1 <= band <= src.count:
            raise InputError(f"{name}: has {src.count} band(s), no band {band}; pass band=1..{src.count}")
        full = Window(0, 0, src.width, src.height)
        window = full
        if within is not None:
            bounds = _bounds_in(within, src.crs, "within")
            window = _window_of(bounds, src.transform, src.height, src.width, margin_cells=1)
            if window is None:
                raise InputError(
                    f"{name}: does not overlap the area given (raster bounds "
                    f"{tuple(round(b) for b in src.bounds)} in {src.crs.to_string()}); check that the area "
                    "and the raster cover the same place and CRS"
                )
        # A masked read honours nodata, NaN and internal masks alike; NaN is simpler downstream.
        data = src.read(band, window=window, masked=True)
        values = np.ma.filled(data.astype("float64"), np.nan)
        transform = _window_transform(window, src.transform)
        nodata = src.nodata
        crs = src.crs
        width = src.width
    negative = int(np.count_nonzero(values < 0))
    if negative:
        warnings.warn(
            f"{name}: {negative} cell(s) are negative and count as no population; "
            f"if they mark nodata, set it with gdal_edit.py -a_nodata VALUE {name}",
            stacklevel=2,
        )
    return PopulationRaster(
        values=values, transform=transform, crs=crs, nodata=nodata, name=name, window=window, file_width=width
    )


def sum_to_polygons(
    raster: str | os.PathLike | PopulationRaster,
    polygons: gpd.GeoDataFrame | gpd.GeoSeries,
    *,
    method: Literal["area", "centre"] = "area",
) -> np.ndarray:
    """Sum the population inside each polygon.

    Polygons are reprojected to the raster's CRS. With ``method="area"`` (default) each cell
    counts in proportion to the fraction of its area inside the polygon, computed exactly with
    shapely for cells on the polygon's edge; this matters when polygons (villages, compounds)
    are not much larger than the cells (100 m to 1 km). With ``method="centre"`` a cell counts
    wholly if its centre is inside (GDAL's rasterize rule), as zonal-statistics tools do.
    For a raster in degrees the fractions are taken in degrees, which is accurate because a
    cell is small enough for its scale to be uniform.

    Parameters
    ----------
    raster : path or PopulationRaster
        Population raster; from a path only the window covering the polygons is read.
    polygons : GeoDataFrame or GeoSeries
        Polygons or multipolygons with a CRS; empty or missing geometries get 0.
    method : {"area", "centre"}
        How cells on a polygon's edge are counted.

    Returns
    -------
    numpy.ndarray
        float64 people per polygon, in the order of ``polygons``. Cells outside the raster
        or nodata add nothing. Overlapping polygons each count the shared people.
    """
    if method not in ("area", "centre"):
        raise InputError(f"sum_to_polygons: method={method!r} is not 'area' or 'centre'")
    geoms = geometries(polygons, "polygons")
    kinds = set(shapely.get_type_id(geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)]).tolist())
    if kinds - {3, 6}:  # 3 Polygon, 6 MultiPolygon
        raise InputError(
            "polygons: sum_to_polygons needs Polygon/MultiPolygon geometries; "
            "for points use sum_to_points, for lines buffer them first"
        )
    _require_crs(polygons, "polygons")
    if not np.any(~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)):
        return np.zeros(len(geoms), dtype="float64")
    pop = raster if isinstance(raster, PopulationRaster) else read_population(raster, within=polygons)
    geoms = geometries(_to_crs(polygons, pop.crs, "polygons"), "polygons")
    _check_overlap(geoms, pop, "polygons")
    values = np.where(pop.valid, pop.values, 0.0)
    out = np.zeros(len(geoms), dtype="float64")
    for i, geom in enumerate(geoms):
        if geom is None or geom.is_empty:
            continue
        rows, cols, frac = _cover_fractions(geom, pop.transform, pop.shape, method)
        out[i] = float(np.dot(values[rows, cols], frac))
    return out


# size: over 80 lines by its numpy docstring only; the code itself is under 60.
def sum_to_points(
    raster: str | os.PathLike | PopulationRaster,
    points: gpd.GeoDataFrame | gpd.GeoSeries,
    *,
    method: Literal["share", "nearest"] = "share",
    max_distance_m: float | None = None,
    weights: str | np.ndarray | None = None,
    return_unallocated: bool = False,
) -> np.ndarray | tuple[np.ndarray, float]:
    """Give each cell's population to points so that the total is conserved.

    With ``method="nearest"`` every cell goes wholly to the point nearest its centre
    (Voronoi allocation, with a k-d tree in metres). With ``method="share"`` (default) a cell
    that contains points is split among them (in proportion to ``weights``, else equally) and
    only cells without a point go to the nearest point; use it for homes, which are much
    denser than 100 m - 1 km cells (nearest would give one home a whole cell). For sparse
    points such as villages both give nearly the same answer.

    Without ``max_distance_m`` every cell of the raster goes to some point: when the raster
    extends beyond the points' area (a national raster, a city's homes), pass
    ``read_population(path, within=study_area)`` or set ``max_distance_m``.

    Parameters
    ----------
    raster : path or PopulationRaster
        Population raster (any CRS).
    points : GeoDataFrame or GeoSeries
        Point geometries with a CRS; empty or missing geometries get 0.
    method : {"share", "nearest"}
        See above.
    max_distance_m : float, optional
        Cells whose centre is farther than this from every point are left unallocated
        (e.g. population on the far side of a county boundary). Default: no limit.
    weights : str or array, optional
        Column name or array of non-negative weights (dwelling units, floor area): how a
        cell is shared among the points inside it. Points with weight 0 get nothing.
    return_unallocated : bool
        Also return the people left unallocated.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, float)
        float64 people per point, in the order of ``points``; with ``return_unallocated``
        also the people not given to any point. ``people.sum() + unallocated`` equals the
        raster's total.
    """
    if method not in ("share", "nearest"):
        raise InputError(f"sum_to_points: method={method!r} is not 'share' or 'nearest'")
    if max_distance_m is not None and not max_distance_m > 0:
        raise InputError(f"sum_to_points: max_distance_m={max_distance_m} must be > 0 (or None for no limit)")
    geoms = geometries(points, "points")
    present = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    if np.any(shapely.get_type_id(geoms[present]) != 0):
        raise InputError(
            "points: sum_to_points needs Point geometries; pass gdf.representative_point() "
            "for polygons, or use sum_to_polygons"
        )
    weight = _weights(points, weights, len(geoms))
    # Points that can receive people (weights default to 1, so all present points).
    takes = present & (weight > 0)

    _require_crs(points, "points")
    # The whole raster, so that "unallocated" means people in the raster given to no point.
    pop = raster if isinstance(raster, PopulationRaster) else read_population(raster)
    rows, cols = np.nonzero(pop.valid)
    cell_people = pop.values[rows, cols]
    out = np.zeros(len(geoms), dtype="float64")
    if not takes.any() or len(rows) == 0:
        unallocated = float(cell_people.sum())
        return (out, unallocated) if return_unallocated else out

    taker_idx = np.flatnonzero(takes)
    raster_geoms = geometries(_to_crs(points, pop.crs, "points"), "points")[taker_idx]
    px, py = shapely.get_x(raster_geoms), shapely.get_y(raster_geoms)

    todo = np.ones(len(rows), dtype=bool)  # cells still to allocate
    if method == "share":
        todo = ~_share_within_cells(pop, rows, cols, cell_people, px, py, weight[taker_idx], taker_idx, out)
    if todo.any():
        unallocated = _to_nearest(
            pop, rows[todo], cols[todo], cell_people[todo], points, px, py, taker_idx, max_distance_m, out
        )
    else:
        unallocated = 0.0
    return (out, unallocated) if return_unallocated else out


def _share_within_cells(
    pop: PopulationRaster,
    rows: np.ndarray,
    cols: np.ndarray,
    cell_people: np.ndarray,
    px: np.ndarray,
    py: np.ndarray,
    weight: np.ndarray,
    taker_idx: np.ndarray,
    out: np.ndarray,
) -> np.ndarray:
    """Give each cell holding points its people, in proportion to the points' weights (added to
    ``out``); returns which cells had points."""
    prow, pcol = rowcol(pop.transform, px, py)
    height, width = pop.shape
    inside = (prow >= 0) & (prow < height) & (pcol >= 0) & (pcol < width)
    # Flat cell index of each point, and of each valid cell, to join the two.
    pflat = np.where(inside, prow * width + pcol, -1)
    cflat = rows * width + cols
    wsum = np.bincount(pflat[inside], weights=weight[inside], minlength=height * width)
    has_points = wsum[cflat] > 0
    # People of each cell go to its points in proportion to weight.
    people_per_weight = np.zeros(height * width)
    people_per_weight[cflat[has_points]] = cell_people[has_points] / wsum[cflat[has_points]]
    share = np.zeros(len(taker_idx))
    share[inside] = people_per_weight[pflat[inside]] * weight[inside]
    out[taker_idx] += share
    return has_points


def _to_nearest(
    pop: PopulationRaster,
    rows: np.ndarray,
    cols: np.ndarray,
    cell_people: np.ndarray,
    points: gpd.GeoDataFrame | gpd.GeoSeries,
    px: np.ndarray,
    py: np.ndarray,
    taker_idx: np.ndarray,
    max_distance_m: float | None,
    out: np.ndarray,
) -> float:
    """Give each cell's people to the point nearest its centre (in metres, within
    ``max_distance_m``), added to ``out``; returns the people left unallocated."""
    metric = _metric_crs(pop.crs, points)
    to_metric = Transformer.from_crs(CRS.from_user_input(pop.crs), metric, always_xy=True)
    cx, cy = rasterio.transform.xy(pop.transform, rows, cols, offset="center")
    cx, cy = to_metric.transform(np.asarray(cx, dtype="float64"), np.asarray(cy, dtype="float64"))
    mx, my = to_metric.transform(px, py)
    tree = cKDTree(np.column_stack([mx, my]))
    bound = np.inf if max_distance_m is None else float(max_distance_m)
    _, nearest = tree.query(np.column_stack([cx, cy]), k=1, distance_upper_bound=bound)
    hit = nearest < len(taker_idx)  # cKDTree returns n for "none within bound"
    out += np.bincount(taker_idx[nearest[hit]], weights=cell_people[hit], minlength=len(out))
    return float(cell_people[~hit].sum())


def cells_as_points(
    raster: str | os.PathLike | PopulationRaster,
    boundary: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
    crs: Any = None,
    *,
    method: Literal["area", "centre"] = "area",
) -> gpd.GeoDataFrame:
    """Turn each populated cell into a demand point at the cell's centre.

    Parameters
    ----------
    raster : path or PopulationRaster
        Population raster (any CRS); from a path only the window covering ``boundary`` is read.
    boundary : GeoDataFrame or GeoSeries, optional
        Keep only cells inside the union of these polygons (any CRS). With ``method="area"``
        a cell on the edge keeps the fraction of its people inside, so the points sum to
        :func:`sum_to_polygons` of the boundary; with ``"centre"`` it is kept whole if its
        centre is inside.
    crs : optional
        CRS of the output (anything pyproj accepts); default the raster's.
    method : {"area", "centre"}
        How cells on the boundary are counted.

    Returns
    -------
    GeoDataFrame
        Columns ``cell_id`` (row-major index of the cell in the file: stable across calls),
        ``population`` (float64, > 0) and point ``geometry``; one row per cell with people.
    """
    if method not in ("area", "centre"):
        raise InputError(f"cells_as_points: method={method!r} is not 'area' or 'centre'")
    if boundary is not None:
        _require_crs(boundary, "boundary")
    pop = raster if isinstance(raster, PopulationRaster) else read_population(raster, within=boundary)
    values = np.where(pop.valid, pop.values, 0.0)
    if boundary is None:
        rows, cols = np.nonzero(values > 0)
        people = values[rows, cols]
    else:
        geoms = geometries(_to_crs(boundary, pop.crs, "boundary"), "boundary")
        _check_overlap(geoms, pop, "boundary")
        area = shapely.union_all(shapely.make_valid(geoms[~shapely.is_missing(geoms)]))
        area = _polygonal(area)
        if area is None:
            rows = cols = np.empty(0, dtype="int64")
            people = np.empty(0)
        else:
            rows, cols, frac = _cover_fractions(area, pop.transform, pop.shape, method)
            people = values[rows, cols] * frac
            keep = people > 0
            rows, cols, people = rows[keep], cols[keep], people[keep]
    xs, ys = rasterio.transform.xy(pop.transform, rows, cols, offset="center")
    window = pop.window or Window(0, 0, pop.shape[1], pop.shape[0])
    file_width = pop.file_width or pop.shape[1]
    cell_id = (rows.astype("int64") + int(window.row_off)) * file_width + cols + int(window.col_off)
    gdf = gpd.GeoDataFrame(
        {"cell_id": cell_id.astype("int64"), "population": people.astype("float64")},
        geometry=gpd.points_from_xy(np.asarray(xs, dtype="float64"), np.asarray(ys, dtype="float64")),
        crs=pop.crs,
    )
    if crs is not None:
        gdf = gdf.to_crs(crs)
    return gdf


# --- helpers -----------------------------------------------------------------------------


def _valid(values: np.ndarray) -> np.ndarray:
    # Population is a count: NaN (nodata) and negative fill values are no people.
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values > 0)


def first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def check_grid(transform: Affine, name: str) -> None:
    if transform.b != 0 or transform.d != 0:
        raise InputError(
            f"{name}: rotated or sheared grid is not supported; make it north-up with "
            f"gdalwarp -overwrite {name} northup_{name}"
        )


def geometries(gdf: gpd.GeoDataFrame | gpd.GeoSeries, what: str) -> np.ndarray:
    if isinstance(gdf, gpd.GeoDataFrame):
        return np.asarray(gdf.geometry.values, dtype=object)
    if isinstance(gdf, gpd.GeoSeries):
        return np.asarray(gdf.values, dtype=object)
    raise InputError(f"{what}: expected a GeoDataFrame or GeoSeries, got {type(gdf).__name__}")


def _require_crs(gdf: Any, what: str) -> None:
    if not isinstance(gdf, (gpd.GeoDataFrame, gpd.GeoSeries)):
        raise InputError(f"{what}: expected a GeoDataFrame or GeoSeries, got {type(gdf).__name__}")
    if gdf.crs is None:
        raise InputError(
            f"{what}: no CRS; set it with gdf.set_crs('EPSG:4326') (or the CRS the coordinates are in)"
        )


def _to_crs(gdf: gpd.GeoDataFrame | gpd.GeoSeries, crs: Any, what: str) -> gpd.GeoDataFrame | gpd.GeoSeries:
    _require_crs(gdf, what)
    return gdf.to_crs(crs)


def _bounds_in(
    gdf: gpd.GeoDataFrame | gpd.GeoSeries, crs: Any, what: str
) -> tuple[float, float, float, float]:
    _require_crs(gdf, what)
    minx, miny, maxx, maxy = gdf.total_bounds
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        raise InputError(f"{what}: has no geometries with coordinates")
    # Densified so curved edges of the reprojected box are covered.
    return rasterio.warp.transform_bounds(gdf.crs, crs, minx, miny, maxx, maxy, densify_pts=21)


def _window_of(
    bounds: tuple[float, float, float, float],
    transform: Affine,
    height: int,
    width: int,
    margin_cells: int = 0,
) -> Window | None:
    """Smallest window covering ``bounds`` (clipped to the raster), or None if they miss it."""
    minx, miny, maxx, maxy = bounds
    cols, rows = ~transform @ (np.array([minx, maxx, minx, maxx]), np.array([miny, miny, maxy, maxy]))
    c0 = max(int(np.floor(cols.min())) - margin_cells, 0)
    c1 = min(int(np.ceil(cols.max())) + margin_cells, width)
    r0 = max(int(np.floor(rows.min())) - margin_cells, 0)
    r1 = min(int(np.ceil(rows.max())) + margin_cells, height)
    if c1 <= c0 or r1 <= r0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


def _check_overlap(geoms: np.ndarray, pop: PopulationRaster, what: str) -> None:
    # Nothing overlapping is almost always a CRS mix-up, not an answer of zero people.
    present = geoms[~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)]
    if len(present) == 0:
        return
    if not shapely.intersects(shapely.box(*pop.bounds), present).any():
        raise InputError(
            f"{pop.name}: none of the {what} overlap the raster; check that they cover the same "
            f"place and that their CRS is right (raster CRS {pop.crs.to_string()})"
        )


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry | None:
    """The polygon part of ``geom`` (make_valid can return collections), or None."""
    if geom is None or geom.is_empty:
        return None
    if shapely.get_type_id(geom) in (3, 6):
        return geom
    parts = [g for g in shapely.get_parts(geom) if shapely.get_type_id(g) in (3, 6)]
    return shapely.union_all(parts) if parts else None


def _cover_fractions(
    geom: shapely.Geometry, transform: Affine, shape: tuple[int, int], method: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, cols and covered fraction (0-1] of the cells ``geom`` covers.

    Only the polygon's window is examined. ``method="centre"``: cells whose centre is inside
    (GDAL rasterize), fraction 1. ``method="area"``: cells wholly inside count 1 and cells on
    the polygon's edge get the exact fraction from shapely intersection.
    """
    empty = (np.empty(0, dtype="int64"), np.empty(0, dtype="int64"), np.empty(0))
    if not geom.is_valid:
        geom = _polygonal(shapely.make_valid(geom))
        if geom is None:
            return empty
    height, width = shape
    window = _window_of(geom.bounds, transform, height, width)
    if window is None:
        return empty
    r0, c0, wh, ww = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
    wtransform = _window_transform(window, transform)
    if method == "centre":
        inside = rasterio.features.rasterize(
            [(geom, 1)], out_shape=(wh, ww), transform=wtransform, fill=0, all_touched=False, dtype="uint8"
        )
        rows, cols = np.nonzero(inside)
        return rows + r0, cols + c0, np.ones(len(rows))

    shapely.prepare(geom)
    if wh * ww <= _SMALL_WINDOW_CELLS:
        # Villages and compounds: prepared predicates on every cell of a small window cost
        # less than two GDAL rasterize calls.
        rows, cols = (a.ravel() for a in np.indices((wh, ww)))
        boxes = _cell_boxes(wtransform, rows, cols)
        whole = shapely.contains_properly(geom, boxes)
        edge = ~whole & shapely.intersects(geom, boxes)
        whole_r, whole_c = rows[whole], cols[whole]
        edge_r, edge_c, boxes = rows[edge], cols[edge], boxes[edge]
    else:
        # Districts and cities: rasterize the interior (cell centres) and the boundary (every
        # cell it touches, widened by one cell as a margin for GDAL's line drawing); only the
        # boundary cells need geometry.
        inside = rasterio.features.rasterize(
            [(geom, 1)], out_shape=(wh, ww), transform=wtransform, fill=0, all_touched=False, dtype="uint8"
        ).astype(bool)
        edge = rasterio.features.rasterize(
            [(geom.boundary, 1)],
            out_shape=(wh, ww),
            transform=wtransform,
            fill=0,
            all_touched=True,
            dtype="uint8",
        ).astype(bool)
        edge = ndimage.binary_dilation(edge, structure=np.ones((3, 3), dtype=bool))
        whole_r, whole_c = np.nonzero(inside & ~edge)
        edge_r, edge_c = np.nonzero(edge)
        boxes = _cell_boxes(wtransform, edge_r, edge_c)
        touching = shapely.intersects(geom, boxes)
        edge_r, edge_c, boxes = edge_r[touching], edge_c[touching], boxes[touching]

    area = _clipped_areas(geom, shapely.bounds(boxes), edge_r)
    frac = area / abs(wtransform.a * wtransform.e)
    # Reprojection round trips leave slivers of ~1e-11 of a cell beside shared edges: snap them.
    frac[frac < _SLIVER] = 0.0
    frac[frac > 1.0 - _SLIVER] = 1.0
    keep = frac > 0
    rows = np.concatenate([whole_r, edge_r[keep]]) + r0
    cols = np.concatenate([whole_c, edge_c[keep]]) + c0
    return rows, cols, np.concatenate([np.ones(len(whole_r)), frac[keep]])


def _clipped_areas(geom: shapely.Geometry, bounds: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Area of ``geom`` inside each rectangle (xmin, ymin, xmax, ymax) of ``bounds``.

    GEOS's rectangle clipping is several times faster than a general overlay (checked equal
    to ``shapely.intersection`` to 1e-12 in the tests' brute-force comparison).
    """
    area = np.zeros(len(bounds))
    if shapely.get_num_coordinates(geom) <= _DETAILED_VERTICES:
        for i, (x0, y0, x1, y1) in enumerate(bounds):
            area[i] = shapely.clip_by_rect(geom, x0, y0, x1, y1).area
        return area
    # A detailed boundary (thousands of vertices) would be walked whole for every cell:
    # clip it to one strip per row first so each cell sees only nearby vertices.
    for row in np.unique(rows):
        in_row = np.flatnonzero(rows == row)
        strip = shapely.clip_by_rect(
            geom,
            bounds[in_row, 0].min(),
            bounds[in_row, 1].min(),
            bounds[in_row, 2].max(),
            bounds[in_row, 3].max(),
        )
        for i in in_row:
            area[i] = shapely.clip_by_rect(strip, *bounds[i]).area
    return area


def _cell_boxes(transform: Affine, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Polygons of cells (rows, cols) of a north-up grid (either axis may be flipped)."""
    x_left = transform.c + transform.a * cols
    y_top = transform.f + transform.e * rows
    return shapely.box(
        np.minimum(x_left, x_left + transform.a),
        np.minimum(y_top, y_top + transform.e),
        np.maximum(x_left, x_left + transform.a),
        np.maximum(y_top, y_top + transform.e),
    )


def _window_transform(window: Window, transform: Affine) -> Affine:
    # What rasterio.windows.transform computes, with affine 3's ``@`` (``*`` is deprecated).
    return transform @ Affine.translation(window.col_off, window.row_off)


def rowcol(transform: Affine, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer (row, col) of the cells holding x, y (may be outside the raster)."""
    cols, rows = ~transform @ (np.asarray(xs, dtype="float64"), np.asarray(ys, dtype="float64"))
    return np.floor(rows).astype("int64"), np.floor(cols).astype("int64")


def is_metric(crs: Any) -> bool:
    crs = CRS.from_user_input(crs)
    return crs.is_projected and all(axis.unit_name in _METRE_NAMES for axis in crs.axis_info[:2])


def _metric_crs(raster_crs: Any, points: gpd.GeoDataFrame | gpd.GeoSeries) -> CRS:
    # Distances must be metres: the raster's CRS if metric, else the points' UTM zone.
    if is_metric(raster_crs):
        return CRS.from_user_input(raster_crs)
    return points.estimate_utm_crs()


def _weights(
    points: gpd.GeoDataFrame | gpd.GeoSeries, weights: str | np.ndarray | None, n: int
) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    if isinstance(weights, str):
        if not isinstance(points, gpd.GeoDataFrame) or weights not in points.columns:
            raise InputError(
                f"points: no column {weights!r} for weights; pass an existing column or an array"
            )
        w = points[weights].to_numpy(dtype="float64", na_value=0.0)
    else:
        w = np.asarray(weights, dtype="float64").ravel()
    if len(w) != n:
        raise InputError(f"points: {len(w)} weights for {n} points; give one weight per point")
    if np.any(~np.isfinite(w)) or np.any(w < 0):
        raise InputError("points: weights must be finite and >= 0 (0 means the point gets no people)")
    return w
