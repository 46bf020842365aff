"""The map frame: an empty offline base map, its title and legend boxes, and time-band colours."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import branca.element
import folium
import numpy as np

from .. import settings
from ._render import DataFigure, escape_html

# --- Colours -----------------------------------------------------------------------------------
#: Colours of the time bands: ≤ 5, ≤ 10, ≤ 15, > 15 minutes (ColorBrewer RdYlGn, readable on
#: a light background and for most colour-blind readers thanks to the lightness steps).
BAND_COLOURS: tuple[str, ...] = ("#1a9850", "#91cf60", "#fc8d59", "#d73027")
#: Homes with no reachable facility (NaN time).
NO_FACILITY_COLOUR: str = "#969696"
#: Facility symbol: white dot with a dark outline, distinct from every band colour.
FACILITY_COLOUR: str = "#1f1f1f"
#: Road lines drawn for context when there are no base tiles.
ROAD_COLOUR: str = "#9a9a9a"
#: Map background where there are no tiles.
BACKGROUND_COLOUR: str = "#f4f3ef"

# Fonts with CJK glyphs first on Windows/macOS/Linux, so Chinese labels never show as boxes
# where one of them is installed (Debian: fonts-noto-cjk).
_FONTS = (
    '"Helvetica Neue", Arial, "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", '
    '"Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif'
)
_ATTRIBUTION = "数据 Data © OpenStreetMap contributors (ODbL)"


# --- Base map, legend, title -------------------------------------------------------------------
def base_map(
    bounds_wgs84: tuple[float, float, float, float],
    *,
    padding_top_left: tuple[int, int] = (20, 20),
    padding_bottom_right: tuple[int, int] = (20, 20),
    **kwargs: Any,
) -> folium.Map:
    """Return an empty map fitted to ``bounds_wgs84`` with a light background.

    Tiles are added only when ``settings.map_tiles`` is set (e.g. ``"OpenStreetMap"``); the
    map works without them, they are simply left blank offline.

    Parameters
    ----------
    bounds_wgs84 : tuple
        ``(minx, miny, maxx, maxy)`` in longitude/latitude.
    padding_top_left, padding_bottom_right : tuple of int
        Pixels ``(x, y)`` kept free around the bounds (e.g. for a legend or title).
    **kwargs
        Passed to ``folium.Map``.

    Returns
    -------
    folium.Map
    """
    minx, miny, maxx, maxy = (float(v) for v in bounds_wgs84)
    if not all(map(math.isfinite, (minx, miny, maxx, maxy))):
        raise ValueError(f"bounds must be finite numbers, got {bounds_wgs84}")
    options: dict[str, Any] = {
        "location": [(miny + maxy) / 2, (minx + maxx) / 2],
        "zoom_start": 14,
        "tiles": None,
        # One canvas instead of one SVG element per feature: fast with tens of thousands of
        # homes, and Leaflet's canvas hit-testing still gives tooltips and popups.
        "prefer_canvas": True,
        "control_scale": True,
        "max_zoom": 20,
    }
    options.update(kwargs)
    m = folium.Map(**options)
    DataFigure().add_child(m)  # instead of folium's plain Figure
    if settings.map_tiles:
        tiles = settings.map_tiles
        attr = None if not tiles.startswith(("http:", "https:", "//")) else "map tiles"
        folium.TileLayer(tiles, attr=attr, control=False, max_zoom=20).add_to(m)
    m.fit_bounds(
        [[miny, minx], [maxy, maxx]],
        padding_top_left=padding_top_left,
        padding_bottom_right=padding_bottom_right,
    )
    map_id = m.get_name()
    m.get_root().header.add_child(
        branca.element.Element(
            f"<style>#{map_id} {{ background: {BACKGROUND_COLOUR}; }}\n"
            f"#{map_id}, .planner-box {{ font-family: {_FONTS}; }}\n"
            ".leaflet-control-layers-expanded { font-size: 13px; line-height: 1.5; }\n"
            # folium's 1rem (16 px) makes popups and tooltips larger than the map needs.
            ".leaflet-popup-content, .leaflet-tooltip { font-size: 13px; }\n"
            ".leaflet-popup-content th { text-align: left; padding-right: 8px; }\n"
            # Permanent labels (village names, site ranks): small text on a light box.
            ".planner-label { font-size: 12px; padding: 1px 4px; background: rgba(255,255,255,0.8); "
            "border: none; box-shadow: none; font-weight: bold; }\n"
            ".planner-label::before { display: none; }</style>"
        ),
        name="planner_map_style",
    )
    # The data come from OpenStreetMap (ODbL needs attribution), unless OSM tiles credit it.
    if "openstreetmap" not in (settings.map_tiles or "").lower():
        m.add_child(_Attribution(_ATTRIBUTION))
    return m


class _Attribution(branca.element.MacroElement):
    """Add a text to the map's attribution control (a child of the map, so it runs after it)."""

    _template = branca.element.Template(
        """
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.text|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, text: str):
        super().__init__()
        self._name = "Attribution"
        self.text = text


class _Box(branca.element.MacroElement):
    """A fixed-position HTML box over the map (legend, title) with inline CSS."""

    _template = branca.element.Template(
        """
        {% macro html(this, kwargs) %}
        <div class="planner-box" style="{{ this.css }}">{{ this.body }}</div>
        {% endmacro %}
        """
    )

    def __init__(self, body: str, css: str):
        super().__init__()
        self._name = "PlannerBox"
        self.body = body
        self.css = css


_BOX_CSS = (
    "position: fixed; z-index: 1000; background: rgba(255,255,255,0.93); "
    "border: 1px solid #bbb; border-radius: 6px; box-shadow: 0 1px 5px rgba(0,0,0,0.25); "
    "padding: 8px 10px; color: #222; "
)


def add_legend(
    m: folium.Map,
    title: str,
    items: Sequence[tuple[str, str] | tuple[str, str, str]],
    position: str = "bottomright",
) -> branca.element.MacroElement:
    """Add a fixed legend box to ``m``.

    Parameters
    ----------
    m : folium.Map
        The map.
    title : str
        Legend heading (e.g. Chinese and English).
    items : list of tuple
        ``(colour, label)`` or ``(colour, label, symbol)`` with symbol ``"circle"``
        (default), ``"ring"`` (white dot, coloured outline), ``"area"`` or ``"line"``.
    position : str
        ``"bottomright"``, ``"bottomleft"``, ``"topright"`` or ``"topleft"``.

    Returns
    -------
    branca.element.MacroElement
        The legend element.
    """
    rows = []
    for item in items:
        colour, label = item[0], item[1]
        symbol = item[2] if len(item) > 2 else "circle"
        rows.append(
            '<div style="display:flex; align-items:center; margin:3px 0;">'
            f'<span style="{_swatch_css(colour, symbol)}"></span>'
            f"<span>{escape_html(label)}</span></div>"
        )
    body = f'<div style="font-weight:bold; margin-bottom:4px;">{escape_html(title)}</div>' + "".join(rows)
    vertical, horizontal = _corner(position)
    # Bottom: clear the attribution line (right) and the scale bar (left).
    offset = {"bottom": "30px" if horizontal == "right" else "48px", "top": "10px"}[vertical]
    css = _BOX_CSS + f"{vertical}: {offset}; {horizontal}: 10px; font-size: 13px; line-height: 1.4;"
    box = _Box(body, css)
    m.get_root().add_child(box)
    return box


#: The title box's left edge (right of Leaflet's zoom buttons) and the width kept free for the
#: expanded layer control at the top right, in pixels.
_TITLE_LEFT_PX = 56
_CONTROL_PX = 330


def add_title(m: folium.Map, title: str, subtitle: str | None = None) -> branca.element.MacroElement:
    """Add a title box at the top left of ``m``, beside the zoom buttons and clear of the layer
    control at the top right (``subtitle`` in smaller type)."""
    body = f'<div style="font-size:17px; font-weight:bold;">{escape_html(title)}</div>'
    if subtitle:
        body += f'<div style="font-size:12px; color:#555;">{escape_html(subtitle)}</div>'
    free_px = _TITLE_LEFT_PX + _CONTROL_PX
    css = _BOX_CSS + f"top: 10px; left: {_TITLE_LEFT_PX}px; max-width: calc(100% - {free_px}px);"
    box = _Box(body, css)
    m.get_root().add_child(box)
    return box


def _corner(position: str) -> tuple[str, str]:
    corners = {
        "bottomright": ("bottom", "right"),
        "bottomleft": ("bottom", "left"),
        "topright": ("top", "right"),
        "topleft": ("top", "left"),
    }
    if position not in corners:
        raise ValueError(f"position must be one of {sorted(corners)}, got {position!r}")
    return corners[position]


def _swatch_css(colour: str, symbol: str) -> str:
    base = "display:inline-block; flex:none; margin-right:7px; box-sizing:border-box; "
    if symbol == "circle":
        return base + f"width:12px; height:12px; border-radius:50%; background:{colour};"
    if symbol == "ring":
        return base + (
            f"width:14px; height:14px; border-radius:50%; background:#fff; border:3px solid {colour};"
        )
    if symbol == "area":
        return base + (
            f"width:16px; height:12px; background:{_rgba(colour, 0.3)}; border:1.5px solid {colour};"
        )
    if symbol == "line":
        return base + f"width:18px; height:3px; background:{colour};"
    raise ValueError(f"unknown legend symbol {symbol!r}")


def _rgba(colour: str, alpha: float) -> str:
    r, g, b = (int(colour.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


# --- Time bands --------------------------------------------------------------------------------
def band_colours(n: int) -> list[str]:
    """``n`` colours from green to red (the fixed palette when n == 4, else interpolated)."""
    if n == len(BAND_COLOURS):
        return list(BAND_COLOURS)
    anchors = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in BAND_COLOURS], float)
    pos = np.linspace(0, len(anchors) - 1, n)
    out = []
    for p in pos:
        i = min(int(p), len(anchors) - 2)
        rgb = anchors[i] + (anchors[i + 1] - anchors[i]) * (p - i)
        out.append("#" + "".join(f"{round(v):02x}" for v in rgb))
    return out


def time_colour(seconds: np.ndarray | Sequence[float], minutes: Sequence[float] = (5, 10, 15)) -> list[str]:
    """Colour of each travel time by life-circle band.

    Parameters
    ----------
    seconds : array-like
        Travel times in seconds; NaN means no facility reachable.
    minutes : sequence of float
        Band limits, ascending (a time equal to a limit is in that band).

    Returns
    -------
    list of str
        ``BAND_COLOURS`` for ≤ 5, ≤ 10, ≤ 15 and > 15 minutes (with the default limits);
        ``NO_FACILITY_COLOUR`` for NaN.
    """
    limits = np.asarray(sorted(minutes), dtype=float) * 60.0
    values = np.asarray(seconds, dtype=float)
    band = np.searchsorted(limits, values, side="left")
    palette = np.array(band_colours(len(limits) + 1), dtype=object)
    colours = palette[np.minimum(band, len(limits))]
    colours[np.isnan(values)] = NO_FACILITY_COLOUR
    return colours.tolist()


def time_legend_items(minutes: Sequence[float] = (5, 10, 15)) -> list[tuple[str, str]]:
    """Legend rows ``(colour, label)`` for ``time_colour`` bands, in Chinese and English."""
    limits = sorted(minutes)
    palette = band_colours(len(limits) + 1)
    items = [(palette[0], f"≤ {_fmt(limits[0])} 分钟 min")]
    items.extend(
        (palette[i], f"{_fmt(limits[i - 1])}–{_fmt(limits[i])} 分钟 min") for i in range(1, len(limits))
    )
    items.append((palette[-1], f"> {_fmt(limits[-1])} 分钟 min"))
    items.append((NO_FACILITY_COLOUR, "不可达 Not reachable"))
    return items


def _fmt(value: float) -> str:
    return f"{value:g}"


# --- Geometry ----------------------------------------------------------------------------------
def line_vertices(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every vertex of the lines and polygon rings in ``geoms`` and the index of the line or
    ring it belongs to, read as ragged arrays (no Python object per line: a city's streets
    are one MultiLineString of hundreds of thousands of segments). Points are ignored."""
    import shapely

    geoms = np.asarray(geoms, object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    rings = shapely.get_type_id(geoms) == 2  # a bare LinearRing: ragged arrays do not take it
    if rings.any():
        as_lines = [shapely.LineString(shapely.get_coordinates(g)) for g in geoms[rings]]
        geoms = np.concatenate([geoms[~rings], np.array(as_lines, object)])
    kinds = shapely.get_type_id(geoms)
    xy, index, first = [np.zeros((0, 2))], [np.zeros(0, np.int64)], 0
    for family in ((1, 5), (3, 6)):  # (multi)lines, (multi)polygons
        part = geoms[np.isin(kinds, family)]
        if not len(part):
            continue
        _, coords, offsets = shapely.to_ragged_array(part, include_z=False)
        line_start = offsets[0]  # where each line's or ring's vertices start
        xy.append(coords)
        index.append(np.repeat(np.arange(first, first + len(line_start) - 1), np.diff(line_start)))
        first += len(line_start) - 1
    return np.concatenate(xy), np.concatenate(index)
