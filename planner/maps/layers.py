"""Vector layers on a map: points, polygons and lines as one GeoJSON layer each, and the
light (merged, simplified, rounded) geometries that keep a map file small."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.utilities import JsCode

from ._render import escape_html
from .base import ROAD_COLOUR

#: Douglas–Peucker tolerance in metres for roads and isochrones on maps: about a pixel at
#: zoom 17; it drops the inner vertices of straight streets and most of a buffer's outline.
MAP_SIMPLIFY_M: float = 1.0
#: Decimal places of longitude/latitude in maps' embedded data (5 ≈ 1.1 m).
MAP_DECIMALS: int = 5


# --- Layers ------------------------------------------------------------------------------------
def add_points(
    target: folium.Map | folium.FeatureGroup,
    gdf: gpd.GeoDataFrame,
    colours: str | Sequence[str] = "#3182bd",
    radius: float = 4.0,
    popup_columns: Sequence[str] | None = None,
    name: str | None = None,
    *,
    tooltip_columns: Sequence[str] | None = None,
    aliases: dict[str, str] | None = None,
    outline: str | None = None,
    weight: float = 0.5,
    fill_opacity: float = 0.85,
    show: bool = True,
) -> folium.GeoJson | None:
    """Draw points as one GeoJson layer of CircleMarkers.

    Parameters
    ----------
    target : folium.Map or folium.FeatureGroup
        Where to add the layer. On a map, a ``name`` puts the layer in the layer control.
    gdf : geopandas.GeoDataFrame
        Points or multipoints (EPSG:4326, or reprojected); other geometry types are drawn by
        their centroid.
    colours : str or sequence of str
        A column of ``gdf`` holding colours, one colour for all, or one colour per row.
    radius : float
        Marker radius in pixels.
    popup_columns, tooltip_columns : list of str, optional
        Columns shown on click / hover.
    name : str, optional
        Layer name.
    aliases : dict, optional
        Labels for the columns (default: the column names).
    outline : str, optional
        Outline colour (default: the fill colour).
    weight, fill_opacity : float
        Outline width in pixels and fill opacity.
    show : bool
        Whether the layer is shown initially (maps only).

    Returns
    -------
    folium.GeoJson or None
        The layer, or None if ``gdf`` is empty.
    """
    gdf = to_wgs84(gdf)
    geoms = gdf.geometry.to_numpy()
    not_point = ~shapely.is_empty(geoms) & ~np.isin(shapely.get_type_id(geoms), (0, 4))  # (multi)points
    if not_point.any():
        geoms = geoms.copy()
        geoms[not_point] = shapely.centroid(geoms[not_point])
        gdf = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs))

    def style(feature: dict) -> dict:
        colour = feature["properties"]["_c"]
        # folium's CircleMarker has fill off unless asked.
        return {
            "fillColor": colour,
            "color": outline or colour,
            "weight": weight,
            "fill": True,
            "fillOpacity": fill_opacity,
            "opacity": 1.0,
        }

    return _add_geojson(
        target,
        gdf,
        colours,
        style,
        name=name,
        show=show,
        popup_columns=popup_columns,
        tooltip_columns=tooltip_columns,
        aliases=aliases,
        marker=folium.CircleMarker(radius=radius, fill=True),
    )


def add_polygons(
    target: folium.Map | folium.FeatureGroup,
    gdf: gpd.GeoDataFrame,
    colour: str | Sequence[str] = "#3182bd",
    name: str | None = None,
    tooltip_columns: Sequence[str] | None = None,
    *,
    aliases: dict[str, str] | None = None,
    fill_opacity: float = 0.15,
    weight: float = 1.5,
    dash_array: str | None = None,
    show: bool = True,
) -> folium.GeoJson | None:
    """Draw polygons (e.g. isochrones) as one GeoJson layer.

    ``colour`` is a column, one colour, or one colour per row, as in ``add_points``. Without
    ``tooltip_columns`` the polygons ignore the mouse, so homes under them stay clickable.
    Returns the layer, or None if ``gdf`` is empty.
    """

    def style(feature: dict) -> dict:
        c = feature["properties"]["_c"]
        out = {"color": c, "fillColor": c, "weight": weight, "fillOpacity": fill_opacity, "opacity": 0.9}
        if dash_array:
            out["dashArray"] = dash_array
        return out

    return _add_geojson(
        target,
        to_wgs84(gdf),
        colour,
        style,
        name=name,
        show=show,
        tooltip_columns=tooltip_columns,
        aliases=aliases,
        interactive=bool(tooltip_columns),
    )


def add_roads(
    m: folium.Map,
    roads: gpd.GeoDataFrame | None,
    name: str = "道路 Roads",
    simplify_m: float = MAP_SIMPLIFY_M,
    decimals: int = MAP_DECIMALS,
) -> bool:
    """Streets for context: one line layer, merged and simplified by ``simplify_m``.

    Returns whether anything was drawn (for the legend).
    """
    roads = light_lines(roads, simplify_m, decimals) if roads is not None and len(roads) else None
    if roads is None or not len(roads):
        return False
    group = folium.FeatureGroup(name=name, show=True)
    add_lines(group, roads, ROAD_COLOUR, weight=1.2)
    group.add_to(m)
    return True


def add_labels(
    target: folium.Map | folium.FeatureGroup,
    gdf: gpd.GeoDataFrame,
    column: str,
    name: str | None = None,
    show: bool = True,
) -> folium.GeoJson | None:
    """Permanent text labels (village names, site ranks) beside points, as one GeoJson layer.

    The text is a property like any other: HTML-escaped (:func:`_feature_collection`) and
    shown in a permanent Leaflet tooltip, so a name's "<" or "&" shows as text. Polygons are
    labelled at a point inside them.
    """
    pts = gdf.assign(geometry=gdf.geometry.representative_point())
    data = _feature_collection(pts, [column], [""] * len(pts))
    if not data["features"]:
        return None
    layer = folium.GeoJson(
        data,
        name=name,
        control=isinstance(target, folium.Map) and name is not None,
        show=show,
        # An invisible anchor: the point's own marker is drawn by its layer.
        marker=folium.CircleMarker(radius=1, opacity=0, fill_opacity=0),
        style_function=lambda f: {"opacity": 0, "fillOpacity": 0},
        # One permanent tooltip per feature; the column's name is code, its values are data.
        on_each_feature=JsCode(
            "function (feature, layer) { layer.bindTooltip(String(feature.properties["
            + json.dumps(column)
            + "]), {permanent: true, direction: 'right', offset: [6, 0], className: 'planner-label'}); }"
        ),
    )
    layer.add_to(target)
    return layer


def add_lines(
    target: folium.Map | folium.FeatureGroup,
    gdf: gpd.GeoDataFrame,
    colour: str | Sequence[str] = ROAD_COLOUR,
    weight: float = 1.0,
    name: str | None = None,
    *,
    opacity: float = 0.8,
    show: bool = True,
) -> folium.GeoJson | None:
    """Draw lines (e.g. a light road network) as one non-interactive GeoJson layer.

    Returns the layer, or None if ``gdf`` is empty.
    """

    def style(feature: dict) -> dict:
        return {"color": feature["properties"]["_c"], "weight": weight, "opacity": opacity}

    return _add_geojson(target, to_wgs84(gdf), colour, style, name=name, show=show, interactive=False)


def to_wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
        return gdf.to_crs("EPSG:4326")
    return gdf


def _add_geojson(
    target: folium.Map | folium.FeatureGroup,
    gdf: gpd.GeoDataFrame,
    colours: str | Sequence[str],
    style_function: Any,
    name: str | None,
    show: bool,
    popup_columns: Sequence[str] | None = None,
    tooltip_columns: Sequence[str] | None = None,
    aliases: dict[str, str] | None = None,
    **kwargs: Any,
) -> folium.GeoJson | None:
    columns = list(dict.fromkeys([*(popup_columns or []), *(tooltip_columns or [])]))
    data = _feature_collection(gdf, columns, _colour_list(gdf, colours))
    if not data["features"]:
        return None
    aliases = aliases or {}
    on_map = isinstance(target, folium.Map)
    layer = folium.GeoJson(
        data,
        style_function=style_function,
        name=name,
        # Inside a FeatureGroup the group is the entry in the layer control.
        control=on_map and name is not None,
        show=show,
        tooltip=folium.GeoJsonTooltip(
            fields=list(tooltip_columns),
            aliases=[aliases.get(c, c) for c in tooltip_columns],
            sticky=True,
        )
        if tooltip_columns
        else None,
        popup=folium.GeoJsonPopup(
            fields=list(popup_columns),
            aliases=[aliases.get(c, c) for c in popup_columns],
        )
        if popup_columns
        else None,
        **kwargs,
    )
    layer.add_to(target)
    return layer


def _colour_list(gdf: gpd.GeoDataFrame, colours: str | Sequence[str]) -> list[str]:
    if isinstance(colours, str):
        if colours in gdf.columns:
            return [str(c) for c in gdf[colours]]
        return [colours] * len(gdf)
    colours = list(colours)
    if len(colours) != len(gdf):
        raise ValueError(f"{len(colours)} colours for {len(gdf)} features")
    return [str(c) for c in colours]


def _feature_collection(gdf: gpd.GeoDataFrame, columns: Sequence[str], colours: list[str]) -> dict:
    """A compact GeoJSON dict: coordinates to 6 decimals (~0.1 m), only the needed properties.

    Property values are display strings, HTML-escaped because folium's popups and tooltips
    insert them as HTML (an OSM name with "<" or "&" must show as text).
    """
    missing = [c for c in columns if c not in gdf.columns]
    if missing:
        raise KeyError(f"columns not in the data: {missing}")
    geoms = gdf.geometry.to_numpy()
    keep = ~(pd.isna(geoms) | shapely.is_empty(geoms))
    geoms = shapely.transform(geoms[keep], lambda xy: np.round(xy, 6))
    texts = {c: [_display(v) for v in gdf[c].to_numpy()[keep]] for c in columns}
    colours = [c for c, k in zip(colours, keep, strict=True) if k]
    features = []
    for i, geojson in enumerate(shapely.to_geojson(geoms)):
        props = {c: texts[c][i] for c in columns}
        props["_c"] = colours[i]
        # Integer ids keep folium's style lookup (a switch on feature.id) short.
        features.append({"type": "Feature", "id": i, "geometry": json.loads(geojson), "properties": props})
    return {"type": "FeatureCollection", "features": features}


def _display(value: Any) -> str:
    """A value as popup text: "—" for missing, integers without ".0", floats to 1 decimal."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    if isinstance(value, (float, np.floating)):
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    return escape_html(value)


def _metric(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``gdf`` in metres: as is if projected, else in its UTM zone (no CRS: lon/lat)."""
    if gdf.crs is None:
        gdf = gdf.set_crs("EPSG:4326")
    if gdf.crs.is_projected:
        return gdf
    from planner.sources import metric_crs_of

    return gdf.to_crs(metric_crs_of(gdf))


#: Lines merged at once by light_lines (a city's streets go through the merge in tiles).
MERGE_BLOCK_LINES: int = 100_000


def _round_wgs84(geoms: np.ndarray, crs: Any, decimals: int = MAP_DECIMALS) -> np.ndarray:
    """Geometries from ``crs`` to lon/lat rounded to ``decimals`` decimals."""
    geoms = gpd.GeoSeries(geoms, crs=crs).to_crs("EPSG:4326").to_numpy()
    geoms = shapely.transform(geoms, lambda xy: np.round(xy, decimals))
    try:
        return shapely.remove_repeated_points(geoms)
    except shapely.errors.GEOSException:  # a ring collapsed to < 3 points: keep duplicates
        return geoms


def light_lines(
    lines: gpd.GeoDataFrame, simplify_m: float = MAP_SIMPLIFY_M, decimals: int = MAP_DECIMALS
) -> gpd.GeoDataFrame:
    """Lines as one simplified feature: segments merged into polylines, then simplified.

    A street network arrives as one 2-point segment per edge; merged into polylines and
    simplified by ``simplify_m`` it needs far fewer vertices, and one MultiLineString
    feature avoids the per-feature overhead of GeoJSON. Non-line geometries are ignored.
    """
    metric = _metric(lines)
    parts = metric.geometry.to_numpy()[~pd.isna(metric.geometry.to_numpy())]
    if not (shapely.get_type_id(parts) == 1).all():  # a network's segments need no copy
        parts = shapely.get_parts(parts)
    parts = parts[np.isin(shapely.get_type_id(parts), (1, 2)) & ~shapely.is_empty(parts)]
    if len(parts):
        parts = _merge_simplify(parts, simplify_m)
        parts = _round_wgs84(parts, metric.crs, decimals)
        parts = parts[~shapely.is_empty(parts) & (shapely.length(parts) > 0)]
    out = gpd.GeoDataFrame(geometry=[shapely.multilinestrings(parts)] if len(parts) else [], crs="EPSG:4326")
    out.attrs[LIGHT_ATTR] = (simplify_m, decimals)
    return out


#: ``attrs`` key of :func:`light_lines` output: its ``(simplify_m, decimals)``, so that lines
#: drawn by two maps are merged and simplified once (again would only move them further).
LIGHT_ATTR = "planner_light_lines"


def is_light(lines: gpd.GeoDataFrame | None, simplify_m: float, decimals: int) -> bool:
    """Whether ``lines`` came from :func:`light_lines` with this simplification and rounding
    (and are still in lon/lat: pandas carries ``attrs`` through a reprojection)."""
    return (
        lines is not None
        and lines.attrs.get(LIGHT_ATTR) == (simplify_m, decimals)
        and lines.crs is not None
        and lines.crs.equals("EPSG:4326")
    )


def _merge_simplify(parts: np.ndarray, simplify_m: float, block: int | None = None) -> np.ndarray:
    """Lines merged into polylines and simplified, a block of the map at a time when there are
    more than ``block``: the merge holds copies of every line it is given, so a city's
    streets go through it in square tiles of about ``block`` lines (a polyline then breaks
    at a tile's edge, which nothing drawn shows)."""
    block = MERGE_BLOCK_LINES if block is None else block
    if len(parts) <= block:
        merged = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(parts)))
        return shapely.simplify(merged, simplify_m, preserve_topology=False)
    start = shapely.get_coordinates(shapely.get_point(parts, 0))
    side = int(np.ceil(np.sqrt(len(parts) / block)))
    lo, span = start.min(axis=0), np.maximum(np.ptp(start, axis=0), 1e-9)
    cell = np.clip((start - lo) / span * side, 0, side - 1).astype(np.int64)
    tile = cell[:, 0] * side + cell[:, 1]
    order = np.argsort(tile, kind="stable")
    edges = np.searchsorted(tile[order], np.arange(side * side + 1))
    out = [
        _merge_simplify(parts[order[a:b]], simplify_m, block=len(parts))
        for a, b in pairwise(edges.tolist())
        if b > a
    ]
    return np.concatenate(out)


def light_polygons(
    polygons: gpd.GeoDataFrame, simplify_m: float = MAP_SIMPLIFY_M, decimals: int = MAP_DECIMALS
) -> gpd.GeoDataFrame:
    """Polygons simplified by ``simplify_m`` for display, in lon/lat, rounded.

    Each ring is simplified on its own (no topology checks, whose cost grows faster than the
    outline): a ring may touch another where they come within the tolerance, which a
    browser draws all the same.
    """
    metric = _metric(polygons)
    geoms = shapely.simplify(metric.geometry.to_numpy(), simplify_m, preserve_topology=False)
    out = polygons.drop(columns=polygons.geometry.name).copy()
    out = gpd.GeoDataFrame(out, geometry=_round_wgs84(geoms, metric.crs, decimals), crs="EPSG:4326")
    return out
