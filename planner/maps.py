"""Offline web maps: folium maps saved as one self-contained HTML file.

Planners often work on intranets where foreign CDNs are blocked, so every map planner writes
carries its own Leaflet and jQuery (from the ``xstatic-leaflet`` and ``xstatic-jquery``
packages) and loads nothing from the network. Base tiles are added only when
``settings.map_tiles`` is set; without them a light road layer gives context.

Vector data are drawn as one ``folium.GeoJson`` per layer on a canvas renderer, not one folium
object per feature, so a map of 20,000 homes stays light.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import warnings
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import branca.element
import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import settings
from ._io import atomic_file

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


# --- Self-contained HTML -----------------------------------------------------------------------
def offline_html(m: folium.Map) -> str:
    """Render a folium map to one HTML string that loads nothing from the network.

    Leaflet (JS, CSS and the CSS's images as ``data:`` URIs) and jQuery are inlined from the
    ``xstatic`` packages; bootstrap, font-awesome and awesome-markers, which planner's maps do
    not use, are removed.

    Parameters
    ----------
    m : folium.Map
        The map.

    Returns
    -------
    str
        The HTML document (declares UTF-8).

    Raises
    ------
    RuntimeError
        If the map uses a resource planner cannot inline (e.g. a new folium dependency, a
        plugin, or ``folium.Icon`` which needs awesome-markers): the message names it.
    """
    text = m.get_root().render()
    if "L.AwesomeMarkers" in text:
        raise RuntimeError(
            "the map uses folium.Icon (Leaflet.awesome-markers from a CDN), which offline maps "
            "cannot carry: draw points with CircleMarker or GeoJson instead"
        )
    # Replace from the end so earlier offsets stay valid.
    for start, end, tag, url in reversed(_external_resources(text)):
        if tag == "script":
            # Remove the matching end tag too: <script src=...></script>.
            close = re.compile(r"\s*</script\s*>", re.I).match(text, end)
            if close:
                end = close.end()
        text = text[:start] + _replacement(tag, url) + text[end:]
    remaining = _external_resources(text)
    if remaining:  # a resource that slipped past the replacement (should not happen)
        raise RuntimeError(f"offline map still loads {remaining[0][3]}")
    if not re.search(r"<meta[^>]+charset=[\"']?utf-8", text[:2000], re.I):
        text = text.replace("<head>", '<head>\n<meta charset="utf-8" />', 1)
    return text


def save_map(m: folium.Map, path: str | Path) -> Path:
    """Write ``offline_html(m)`` to ``path`` (UTF-8, atomically) and return the path."""
    text = offline_html(m)  # render first: a failure leaves no file behind
    with atomic_file(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


class _ResourceFinder(HTMLParser):
    """Collect tags that would load a resource: <script src>, <link href>, <img src>, …

    HTMLParser treats <script>/<style> content as raw text, so URLs inside inlined code
    (Leaflet's attribution link, popup HTML in JS strings) are not mistaken for tags.
    """

    _ATTR = {"script": "src", "link": "href", "img": "src", "iframe": "src", "embed": "src",
             "source": "src", "audio": "src", "video": "src", "object": "data"}

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self._line_starts = [0] + [mm.end() for mm in re.finditer("\n", text)]
        self.found: list[tuple[int, int, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        url = dict(attrs).get(self._ATTR.get(tag, ""))
        if not url or url.startswith(("data:", "#", "about:", "javascript:")):
            return
        line, col = self.getpos()
        start = self._line_starts[line - 1] + col
        self.found.append((start, start + len(self.get_starttag_text()), tag, url))


def _external_resources(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, tag, url) of every tag in ``text`` that loads a non-``data:`` URL."""
    finder = _ResourceFinder(text)
    finder.feed(text)
    finder.close()
    return finder.found


# folium's CDN links planner can inline or drop, by URL pattern.
_LEAFLET_JS = re.compile(r"leaflet(@[\d.]+)?(/dist)?/leaflet(-src)?\.js$", re.I)
_LEAFLET_CSS = re.compile(r"leaflet(@[\d.]+)?(/dist)?/leaflet\.css$", re.I)
_JQUERY = re.compile(r"/jquery(-[\d.]+)?(\.min)?\.js$", re.I)
# Bootstrap, glyphicons, font-awesome and awesome-markers style folium.Icon markers and
# folium's own plugins; planner draws CircleMarkers only, so they are not needed.
_DROP = re.compile(
    r"bootstrap|glyphicons|fontawesome|font-awesome|awesome-markers|awesome\.rotate", re.I
)


def _replacement(tag: str, url: str) -> str:
    """Inline HTML for a folium resource URL, "" to drop it, or raise RuntimeError."""
    path = url.split("?")[0].split("#")[0]
    if tag == "script" and _LEAFLET_JS.search(path):
        _check_leaflet_version(path)
        return _script(_read_xstatic("leaflet", "leaflet.js"))
    if tag == "link" and _LEAFLET_CSS.search(path):
        _check_leaflet_version(path)
        return _style(_leaflet_css())
    if tag == "script" and _JQUERY.search(path):
        return _script(_read_xstatic("jquery", "jquery.min.js"))
    if tag in ("script", "link") and _DROP.search(path):
        return ""
    raise RuntimeError(
        f"offline map: cannot inline {url!r} (a new folium dependency or plugin?); "
        "add it to planner.maps or avoid the feature that needs it"
    )


def _xstatic_dir(name: str) -> Path:
    if name == "leaflet":
        import xstatic.pkg.leaflet as pkg
    else:
        import xstatic.pkg.jquery as pkg
    return Path(pkg.BASE_DIR)


def _read_xstatic(name: str, filename: str) -> str:
    code = (_xstatic_dir(name) / filename).read_text(encoding="utf-8")
    # Source-map comments point at files that are not there.
    return re.sub(r"^\s*//# sourceMappingURL=.*$", "", code, flags=re.M)


def _leaflet_css() -> str:
    """Leaflet's CSS with its images (layer-control icon, default marker) as data: URIs."""
    folder = _xstatic_dir("leaflet")
    css = (folder / "leaflet.css").read_text(encoding="utf-8")

    def data_uri(match: re.Match) -> str:
        data = base64.b64encode((folder / "images" / match.group(1)).read_bytes()).decode()
        return f'url("data:image/png;base64,{data}")'

    return re.sub(r"url\(\s*['\"]?images/([\w.\-]+\.png)['\"]?\s*\)", data_uri, css)


def _check_leaflet_version(url: str) -> None:
    import xstatic.pkg.leaflet as pkg

    wanted = re.search(r"leaflet@([\d.]+)", url)
    have = str(pkg.VERSION)
    # folium writes its templates for its Leaflet version; a different minor may break them.
    if wanted and wanted.group(1).split(".")[:2] != have.split(".")[:2]:
        warnings.warn(
            f"folium expects Leaflet {wanted.group(1)} but xstatic-leaflet has {have}",
            stacklevel=3,
        )


def _script(code: str) -> str:
    # "</script" inside code would end the element early.
    return "<script>" + re.sub(r"</(script)", r"<\\/\1", code, flags=re.I) + "</script>"


def _style(css: str) -> str:
    return "<style>" + re.sub(r"</(style)", r"<\\/\1", css, flags=re.I) + "</style>"


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
    options: dict[str, Any] = dict(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        zoom_start=14,
        tiles=None,
        # One canvas instead of one SVG element per feature: fast with tens of thousands of
        # homes, and Leaflet's canvas hit-testing still gives tooltips and popups.
        prefer_canvas=True,
        control_scale=True,
        max_zoom=20,
    )
    options.update(kwargs)
    m = folium.Map(**options)
    if settings.map_tiles:
        tiles = settings.map_tiles
        attr = None if not tiles.startswith(("http:", "https:", "//")) else "map tiles"
        folium.TileLayer(tiles, attr=attr, control=False, max_zoom=20).add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]], padding_top_left=padding_top_left,
                 padding_bottom_right=padding_bottom_right)
    map_id = m.get_name()
    m.get_root().header.add_child(
        branca.element.Element(
            f"<style>#{map_id} {{ background: {BACKGROUND_COLOUR}; }}\n"
            f"#{map_id}, .planner-box {{ font-family: {_FONTS}; }}\n"
            ".leaflet-control-layers-expanded { font-size: 13px; line-height: 1.5; }\n"
            # folium's 1rem (16 px) makes popups and tooltips larger than the map needs.
            ".leaflet-popup-content, .leaflet-tooltip { font-size: 13px; }\n"
            ".leaflet-popup-content th { text-align: left; padding-right: 8px; }</style>"
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
            f"<span>{html.escape(label)}</span></div>"
        )
    body = (
        f'<div style="font-weight:bold; margin-bottom:4px;">{html.escape(title)}</div>'
        + "".join(rows)
    )
    vertical, horizontal = _corner(position)
    # Bottom: clear the attribution line (right) and the scale bar (left).
    offset = {"bottom": "30px" if horizontal == "right" else "48px", "top": "10px"}[vertical]
    css = _BOX_CSS + f"{vertical}: {offset}; {horizontal}: 10px; font-size: 13px; line-height: 1.4;"
    box = _Box(body, css)
    m.get_root().add_child(box)
    return box


def add_title(
    m: folium.Map, title: str, subtitle: str | None = None
) -> branca.element.MacroElement:
    """Add a title box at the top centre of ``m`` (``subtitle`` in smaller type)."""
    body = f'<div style="font-size:17px; font-weight:bold;">{html.escape(title)}</div>'
    if subtitle:
        body += f'<div style="font-size:12px; color:#555;">{html.escape(subtitle)}</div>'
    css = _BOX_CSS + "top: 10px; left: 50%; transform: translateX(-50%); text-align: center;"
    box = _Box(body, css)
    m.get_root().add_child(box)
    return box


def _corner(position: str) -> tuple[str, str]:
    corners = {"bottomright": ("bottom", "right"), "bottomleft": ("bottom", "left"),
               "topright": ("top", "right"), "topleft": ("top", "left")}
    if position not in corners:
        raise ValueError(f"position must be one of {sorted(corners)}, got {position!r}")
    return corners[position]


def _swatch_css(colour: str, symbol: str) -> str:
    base = "display:inline-block; flex:none; margin-right:7px; box-sizing:border-box; "
    if symbol == "circle":
        return base + f"width:12px; height:12px; border-radius:50%; background:{colour};"
    if symbol == "ring":
        return base + (
            "width:14px; height:14px; border-radius:50%; background:#fff; "
            f"border:3px solid {colour};"
        )
    if symbol == "area":
        return base + (
            f"width:16px; height:12px; background:{_rgba(colour, 0.3)}; "
            f"border:1.5px solid {colour};"
        )
    if symbol == "line":
        return base + f"width:18px; height:3px; background:{colour};"
    raise ValueError(f"unknown legend symbol {symbol!r}")


def _rgba(colour: str, alpha: float) -> str:
    r, g, b = (int(colour.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


# --- Time bands --------------------------------------------------------------------------------
def _band_colours(n: int) -> list[str]:
    """``n`` colours from green to red (the fixed palette when n == 4, else interpolated)."""
    if n == len(BAND_COLOURS):
        return list(BAND_COLOURS)
    anchors = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in BAND_COLOURS], float)
    pos = np.linspace(0, len(anchors) - 1, n)
    out = []
    for p in pos:
        i = min(int(p), len(anchors) - 2)
        rgb = anchors[i] + (anchors[i + 1] - anchors[i]) * (p - i)
        out.append("#" + "".join(f"{int(round(v)):02x}" for v in rgb))
    return out


def time_colour(
    seconds: np.ndarray | Sequence[float], minutes: Sequence[float] = (5, 10, 15)
) -> list[str]:
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
    palette = np.array(_band_colours(len(limits) + 1), dtype=object)
    colours = palette[np.minimum(band, len(limits))]
    colours[np.isnan(values)] = NO_FACILITY_COLOUR
    return colours.tolist()


def time_legend_items(minutes: Sequence[float] = (5, 10, 15)) -> list[tuple[str, str]]:
    """Legend rows ``(colour, label)`` for ``time_colour`` bands, in Chinese and English."""
    limits = sorted(minutes)
    palette = _band_colours(len(limits) + 1)
    items = [(palette[0], f"≤ {_fmt(limits[0])} 分钟 min")]
    for i in range(1, len(limits)):
        items.append((palette[i], f"{_fmt(limits[i - 1])}–{_fmt(limits[i])} 分钟 min"))
    items.append((palette[-1], f"> {_fmt(limits[-1])} 分钟 min"))
    items.append((NO_FACILITY_COLOUR, "不可达 Not reachable"))
    return items


def _fmt(value: float) -> str:
    return f"{value:g}"


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
        Points (EPSG:4326, or reprojected); other geometry types are drawn by their centroid.
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
    gdf = _to_wgs84(gdf)
    geoms = gdf.geometry.values
    not_point = ~shapely.is_empty(geoms) & (shapely.get_type_id(geoms) != 0)
    if not_point.any():
        geoms = geoms.copy()
        geoms[not_point] = shapely.centroid(geoms[not_point])
        gdf = gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=gdf.crs))

    def style(feature: dict) -> dict:
        colour = feature["properties"]["_c"]
        # folium's CircleMarker has fill off unless asked.
        return {"fillColor": colour, "color": outline or colour, "weight": weight,
                "fill": True, "fillOpacity": fill_opacity, "opacity": 1.0}

    return _add_geojson(
        target, gdf, colours, style, name=name, show=show, popup_columns=popup_columns,
        tooltip_columns=tooltip_columns, aliases=aliases,
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
        out = {"color": c, "fillColor": c, "weight": weight, "fillOpacity": fill_opacity,
               "opacity": 0.9}
        if dash_array:
            out["dashArray"] = dash_array
        return out

    return _add_geojson(
        target, _to_wgs84(gdf), colour, style, name=name, show=show,
        tooltip_columns=tooltip_columns, aliases=aliases,
        interactive=bool(tooltip_columns),
    )


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

    return _add_geojson(target, _to_wgs84(gdf), colour, style, name=name, show=show,
                        interactive=False)


def _to_wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
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
            fields=list(tooltip_columns), aliases=[aliases.get(c, c) for c in tooltip_columns],
            sticky=True,
        ) if tooltip_columns else None,
        popup=folium.GeoJsonPopup(
            fields=list(popup_columns), aliases=[aliases.get(c, c) for c in popup_columns],
        ) if popup_columns else None,
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
    geoms = gdf.geometry.values
    keep = ~(pd.isna(geoms) | shapely.is_empty(geoms))
    geoms = shapely.transform(geoms[keep], lambda xy: np.round(xy, 6))
    texts = {c: [_display(v) for v in gdf[c].to_numpy()[keep]] for c in columns}
    colours = [c for c, k in zip(colours, keep, strict=True) if k]
    features = []
    for i, geojson in enumerate(shapely.to_geojson(geoms)):
        props = {c: texts[c][i] for c in columns}
        props["_c"] = colours[i]
        # Integer ids keep folium's style lookup (a switch on feature.id) short.
        features.append({"type": "Feature", "id": i, "geometry": json.loads(geojson),
                         "properties": props})
    return {"type": "FeatureCollection", "features": features}


def _display(value: Any) -> str:
    """A value as popup text: "—" for missing, integers without ".0", floats to 1 decimal."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    if isinstance(value, (float, np.floating)):
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    return html.escape(str(value))


# --- Audit map ---------------------------------------------------------------------------------
def map_audit(
    homes: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    isochrones: gpd.GeoDataFrame | None,
    categories: list[dict],
    roads: gpd.GeoDataFrame | None = None,
    minutes: Sequence[float] = (5, 10, 15),
    *,
    title: str | None = None,
) -> folium.Map:
    """Map an accessibility audit: one layer per facility category.

    Parameters
    ----------
    homes : geopandas.GeoDataFrame
        Columns ``home_id``, ``population`` and, per category key ``k``, ``{k}_time_s``
        (seconds, NaN if no facility is reachable) and ``{k}_facility_id``.
    facilities : geopandas.GeoDataFrame
        Columns ``facility_id``, ``category``, ``name`` (may be None); points.
    isochrones : geopandas.GeoDataFrame or None
        Columns ``category``, ``minutes``; polygons of the area within that many minutes.
    categories : list of dict
        ``key``, ``name_zh``, ``name_en``, ``minutes`` (the category's target circle).
    roads : geopandas.GeoDataFrame, optional
        Lines drawn for context.
    minutes : sequence of float
        Time band limits for colours and legend.
    title : str, optional
        Title box text (e.g. the region name).

    Returns
    -------
    folium.Map
        Save it with ``save_map``. Only the first category is shown initially; the layer
        control switches categories and roads.
    """
    if not categories:
        raise ValueError("map_audit needs at least one category")
    homes, facilities = _to_wgs84(homes), _to_wgs84(facilities)
    isochrones = _to_wgs84(isochrones) if isochrones is not None else None
    roads = _to_wgs84(roads) if roads is not None else None
    minutes = sorted(minutes)

    frames = [g for g in (homes, facilities) if g is not None and len(g)]
    if not frames:
        raise ValueError("map_audit needs homes or facilities to map")
    bounds = np.array([g.total_bounds for g in frames])
    bounds = (bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max())
    # Keep the data clear of the legend (bottom right) and the title (top).
    m = base_map(bounds, padding_top_left=(20, 80 if title else 20),
                 padding_bottom_right=(200, 20))

    if roads is not None and len(roads):
        road_group = folium.FeatureGroup(name="道路 Roads", show=True)
        add_lines(road_group, roads, ROAD_COLOUR, weight=1.2)
        road_group.add_to(m)

    names = (dict(zip(facilities["facility_id"].astype(str), facilities["name"], strict=True))
             if "name" in facilities else {})
    # Homes stay readable from a few hundred to tens of thousands of points.
    radius = 5.0 if len(homes) < 2_000 else 3.5 if len(homes) < 10_000 else 2.5
    band_palette = _band_colours(len(minutes) + 1)

    for i, cat in enumerate(categories):
        key = cat["key"]
        group = folium.FeatureGroup(name=f"{cat['name_zh']} {cat['name_en']}", show=i == 0)
        target_min = cat.get("minutes")

        # Isochrones, largest first so the smaller ones are drawn (and tinted) on top.
        if isochrones is not None and len(isochrones):
            iso = isochrones[isochrones["category"] == key]
            for mins in sorted(iso["minutes"].unique(), reverse=True):
                part = iso[iso["minutes"] == mins]
                colour = time_colour([float(mins) * 60], minutes)[0]
                is_target = target_min is not None and float(mins) == float(target_min)
                add_polygons(group, part, colour, fill_opacity=0.08,
                             weight=2.5 if is_target else 1.2,
                             dash_array=None if is_target else "5 4")

        # Homes, worst on top so gaps stand out where points overlap.
        time_col, fac_col = f"{key}_time_s", f"{key}_facility_id"
        seconds = (homes[time_col].to_numpy(dtype=float) if time_col in homes
                   else np.full(len(homes), np.nan))
        order = np.argsort(np.where(np.isnan(seconds), np.inf, seconds), kind="stable")
        h = homes.iloc[order]
        sec = seconds[order]
        fac_ids = h[fac_col] if fac_col in h else pd.Series([None] * len(h), index=h.index)
        popup = gpd.GeoDataFrame(
            {
                "home_id": h["home_id"].to_numpy(),
                "population": h["population"].to_numpy() if "population" in h else np.nan,
                "minutes": sec / 60.0,
                "facility": [_facility_text(f, names) for f in fac_ids],
            },
            geometry=h.geometry.to_numpy(),
            crs=h.crs,
        )
        # The target goes in the label, not in every home's properties (file size).
        time_label = "时间 Time (分钟 min)"
        if target_min is not None:
            time_label += f", 目标 target ≤ {_fmt(float(target_min))}"
        add_points(
            group, popup, time_colour(sec, minutes), radius=radius,
            popup_columns=["home_id", "population", "minutes", "facility"],
            aliases={"home_id": "住宅 Home", "population": "人口 Population",
                     "minutes": time_label, "facility": "最近设施 Nearest facility"},
            outline="#ffffff", weight=0.6, fill_opacity=0.9,
        )

        # Facilities last, on top of homes.
        fac = facilities[facilities["category"] == key]
        if len(fac):
            fac_names = fac["name"] if "name" in fac else [None] * len(fac)
            unnamed = "(未命名 unnamed)"
            fac = gpd.GeoDataFrame(
                {"name": [n if isinstance(n, str) and n else unnamed for n in fac_names],
                 "facility_id": fac["facility_id"].astype(str).to_numpy()},
                geometry=fac.geometry.to_numpy(), crs=fac.crs,
            )
            add_points(
                group, fac, "#ffffff", radius=7, tooltip_columns=["name", "facility_id"],
                popup_columns=["name", "facility_id"],
                aliases={"name": f"{cat['name_zh']} {cat['name_en']}", "facility_id": "编号 ID"},
                outline=FACILITY_COLOUR, weight=3, fill_opacity=1.0,
            )
        group.add_to(m)

    legend = list(time_legend_items(minutes))
    legend.append((FACILITY_COLOUR, "设施 Facility", "ring"))
    legend.append((band_palette[0], "等时圈 Isochrone (实线=目标 solid = target)", "area"))
    if roads is not None and len(roads):
        legend.append((ROAD_COLOUR, "道路 Road", "line"))
    add_legend(m, "到最近设施的时间 Time to nearest facility", legend)
    if title:
        add_title(m, title, "生活圈设施可达性 Access to life-circle facilities")
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def _facility_text(facility_id: Any, names: dict) -> str | None:
    if facility_id is None or (not isinstance(facility_id, str) and pd.isna(facility_id)):
        return None
    # The name alone when there is one: ids are in the facility's own tooltip.
    name = names.get(str(facility_id))
    return name if isinstance(name, str) and name else str(facility_id)
