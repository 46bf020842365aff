"""Homes aggregated into square cells, and streets as an image, for maps of a whole city.

Beyond ``settings.map_detail_max_homes`` homes, an audit map does not embed every home: each
category's homes are drawn as one image of cells (an inlined PNG in a Leaflet ImageOverlay),
a cell coloured by the worst time band of the homes in it, as the point map draws the worst
home on top. The image is laid out in Web Mercator, the map's own projection, so its cells
line up with the tiles and the other layers at every zoom. The streets, for context, are one
image too: a city's hundreds of thousands of segments would weigh more than all the rest.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from PIL import Image
from pyproj import CRS, Transformer

from .base import NO_FACILITY_COLOUR, ROAD_COLOUR, band_colours, line_vertices

#: Largest side of a cell image in pixels: the cell grows for a larger city.
MAX_SIDE_PX: int = 2048
#: Smallest pixel of the streets' image (Web Mercator metres): a district needs no more.
ROAD_PIXEL_MIN_M: float = 10.0
#: The map's projection, in which the images are laid out.
MERCATOR = CRS.from_epsg(3857)
#: Opacity of a cell holding homes.
CELL_ALPHA: int = 220


def home_cell_image(
    homes: gpd.GeoDataFrame, key: str, minutes: Sequence[float], cell_m: float
) -> tuple[np.ndarray, list[list[float]], float] | None:
    """One category's homes as an RGBA image of cells.

    Parameters
    ----------
    homes : geopandas.GeoDataFrame
        Points with ``{key}_time_s`` (seconds; NaN: none within the sweep's limit) and
        optionally ``{key}_reach`` (``beyond``: the last band, as past the last limit).
    key : str
        Category key.
    minutes : sequence of float
        Time band limits, as for the point map's colours.
    cell_m : float
        Cell side on the ground in metres (larger when the image would exceed ``MAX_SIDE_PX``).

    Returns
    -------
    (rgba, bounds, cell_m) or None
        The image (rows north to south), its ``[[south, west], [north, east]]`` in degrees,
        and the cell side used; None when no home has a location.
    """
    # The geometry alone reprojected (not a copy of every column), as is when already Mercator.
    geoms = homes.geometry
    if geoms.crs is None or not geoms.crs.equals(MERCATOR):
        geoms = geoms.to_crs(MERCATOR)
    # A plain array: shapely's functions on a GeometryArray go through pandas' slow ufunc path.
    geoms = geoms.to_numpy()
    keep = ~(pd.isna(geoms) | shapely.is_empty(geoms))
    geoms = geoms[keep]
    if not (shapely.get_type_id(geoms) == 0).all():  # cell_homes gives points already
        geoms = shapely.centroid(geoms)
    xy = shapely.get_coordinates(geoms)
    ok = np.isfinite(xy).all(axis=1)
    if not ok.any():
        return None
    xy = xy[ok]
    col = f"{key}_time_s"
    sec = pd.to_numeric(homes[col], errors="coerce").to_numpy(float)[keep][ok] if col in homes else None
    if sec is None:
        sec = np.full(len(xy), np.nan)
    # Mercator metres per ground metre at the homes' mean latitude.
    lat = np.degrees(2 * np.arctan(np.exp(xy[:, 1].mean() / 6378137.0)) - np.pi / 2)
    scale = 1.0 / np.cos(np.radians(lat))
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    cell_m = max(cell_m, max(x1 - x0, y1 - y0) / scale / (MAX_SIDE_PX - 2))
    cell = cell_m * scale
    x0, y1 = np.floor(x0 / cell) * cell, np.ceil(y1 / cell) * cell
    width = int((x1 - x0) // cell) + 1
    height = int((y1 - y0) // cell) + 1
    cols = np.clip(((xy[:, 0] - x0) // cell).astype(np.int64), 0, width - 1)
    rows = np.clip(((y1 - xy[:, 1]) // cell).astype(np.int64), 0, height - 1)
    # Band of each home as time_colour gives it: the first limit its time is
    # within, past the last limit (or beyond the sweep's) the last band, no facility one more;
    # a cell takes its worst.
    limits = np.asarray(minutes, float) * 60.0
    reach = f"{key}_reach"  # beyond the sweep's limit (planner.reach): past the last limit
    beyond = (homes[reach] == "beyond").to_numpy(bool)[keep][ok] if reach in homes else False
    band = np.where(
        np.isfinite(sec),
        np.searchsorted(limits, np.nan_to_num(sec), side="left"),
        np.where(beyond, len(limits), len(limits) + 1),
    )
    worst = np.full(height * width, -1, np.int64)
    np.maximum.at(worst, rows * width + cols, band)
    palette = [*band_colours(len(limits) + 1), NO_FACILITY_COLOUR]
    rgba_of = np.array([[*_rgb(c), CELL_ALPHA] for c in palette] + [[0, 0, 0, 0]], dtype=np.uint8)
    image = np.zeros((height * width, 4), np.uint8)  # transparent where no home is
    filled = np.flatnonzero(worst >= 0)
    image[filled] = rgba_of[worst[filled]]
    image = image.reshape(height, width, 4)
    to_lonlat = Transformer.from_crs(3857, 4326, always_xy=True)
    west, north = to_lonlat.transform(x0, y1)
    east, south = to_lonlat.transform(x0 + width * cell, y1 - height * cell)
    return image, [[south, west], [north, east]], float(cell_m)


def cell_homes(homes: gpd.GeoDataFrame, keys: Sequence[str]) -> gpd.GeoDataFrame:
    """The homes' centroids in Web Mercator with only the columns the categories' images read
    (``{key}_time_s``, ``{key}_reach``), to draw every category from one projection."""
    cols = [c for k in keys for c in (f"{k}_time_s", f"{k}_reach") if c in homes]
    geoms = homes.geometry.to_numpy()
    geoms = np.where(pd.isna(geoms) | shapely.is_empty(geoms), None, shapely.centroid(geoms))
    xy = gpd.GeoSeries(geoms, index=homes.index, crs=homes.crs).to_crs(MERCATOR)
    return gpd.GeoDataFrame(homes[cols], geometry=xy.values, crs=MERCATOR)


def add_home_cells(
    group: folium.FeatureGroup,
    homes: gpd.GeoDataFrame,
    key: str,
    minutes: Sequence[float],
    cell_m: float,
) -> float | None:
    """Add a category's cell image to its layer group; returns the cell side used (m).
    ``homes`` from :func:`cell_homes` is projected once for every category."""
    made = home_cell_image(homes, key, minutes, cell_m)
    if made is None:
        return None
    image, bounds, used = made
    overlay = folium.raster_layers.ImageOverlay(
        png_url(image), bounds, pixelated=False, interactive=False, control=False
    )
    overlay.add_to(group)
    return used


def add_road_image(m: folium.Map, roads: gpd.GeoDataFrame | None, name: str = "道路 Roads") -> bool:
    """Streets as one image layer of at most ``MAX_SIDE_PX`` pixels a side (a pixel is set
    where a street passes); returns whether anything was drawn."""
    if roads is None or not len(roads):
        return False
    xy, index = line_vertices(roads.geometry.to_crs(MERCATOR).to_numpy())
    if len(xy) < 2:
        return False
    # Consecutive vertices of one line are a segment; points along it every half pixel.
    same = index[1:] == index[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    px = max(max(x1 - x0, y1 - y0) / (MAX_SIDE_PX - 1), ROAD_PIXEL_MIN_M)
    # (A whisker over the division: the far end falls in the last pixel, not one past it.)
    width, height = int((x1 - x0) / px + 1e-6) + 1, int((y1 - y0) / px + 1e-6) + 1
    n = np.ceil(np.hypot(*(b - a).T) / (px / 2)).astype(np.int64) + 1
    seg = np.repeat(np.arange(len(a)), n)
    t = (np.arange(len(seg)) - np.repeat(np.cumsum(n) - n, n)) / np.maximum(n[seg] - 1, 1)
    pts = a[seg] + (b - a)[seg] * t[:, None]
    cols = np.clip(((pts[:, 0] - x0) / px + 1e-6).astype(np.int64), 0, width - 1)
    rows = np.clip(((y1 - pts[:, 1]) / px + 1e-6).astype(np.int64), 0, height - 1)
    image = np.zeros((height, width, 4), np.uint8)
    image[rows, cols] = [*_rgb(ROAD_COLOUR), 200]
    to_lonlat = Transformer.from_crs(3857, 4326, always_xy=True)
    west, north = to_lonlat.transform(x0, y1)
    east, south = to_lonlat.transform(x0 + width * px, y1 - height * px)
    group = folium.FeatureGroup(name=name, show=True)
    folium.raster_layers.ImageOverlay(
        png_url(image), [[south, west], [north, east]], pixelated=False, interactive=False, control=False
    ).add_to(group)
    group.add_to(m)
    return True


def png_url(image: np.ndarray) -> str:
    """An RGBA image as a PNG data URL, at zlib's level 3: folium's own encoder compresses at
    the highest level, and the default level 6 takes about three times as long as level 3 on a
    city's sparse cell images for half the bytes, a small share of a city map."""
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), "RGBA").save(out, "PNG", compress_level=3)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _rgb(colour: str) -> tuple[int, int, int]:
    text = colour.lstrip("#")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
