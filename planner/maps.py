"""Offline web maps: folium maps saved as one self-contained HTML file.

Planners often work on intranets where foreign CDNs are blocked, so every map planner writes
carries its own Leaflet and jQuery (from the ``xstatic-leaflet`` and ``xstatic-jquery``
packages) and loads nothing from the network. Base tiles are added only when
``settings.map_tiles`` is set; without them a light road layer gives context.

Vector data are drawn as one ``folium.GeoJson`` per layer on a canvas renderer, not one folium
object per feature. The audit map goes further for its homes, which are many and shown once per
facility category: it embeds them once as compact arrays and builds each category's markers in
the browser when that category is shown (``map_audit``), so a map of 20,000 homes and 17
categories is about 5 MB rather than 90 MB.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import html
import json
import math
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
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


# --- Data is never code ------------------------------------------------------------------------
# Bidirectional controls (embeddings, overrides, isolates) that could reorder the text around a
# name, and C0/C1 control characters other than tab and newline (NUL, escape...).
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain_text(value: Any) -> str:
    """``value`` as display text that cannot disturb the text around it.

    Control characters become U+FFFD (visible, unlike a NUL a browser drops), and text with
    bidirectional controls is wrapped in a first-strong isolate (U+2068 … U+2069), so an
    RTL override in a name reverses that name only, never the labels after it.
    """
    text = _CONTROL.sub("\ufffd", str(value))
    return f"\u2068{text}\u2069" if _BIDI.search(text) else text


def escape_html(value: Any) -> str:
    """``value`` as HTML text (``plain_text``, then ``& < > " '`` escaped).

    Every string from data (OSM names and tags, plan properties, file columns, category and
    region names) that planner puts into HTML goes through this function.
    """
    return html.escape(plain_text(value), quote=True)


# Set while offline_html renders a map: see _render_as_data.
_RENDERING = contextvars.ContextVar("planner_maps_rendering", default=False)
_HOOK_LOCK = threading.Lock()
_branca_element_init = None


class _Text:
    """Stands in for a compiled Jinja template: renders to its text, unchanged."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def render(self, *args: Any, **kwargs: Any) -> str:
        return self.text


def _element_init(self: branca.element.Element, template: str | None = None,
                  template_name: str | None = None) -> None:
    # While a map renders, a string given to Element() is always rendered output: branca's
    # MacroElement.render and folium's Popup, GeoJsonTooltip/Popup and include statements
    # pass the macro's text to Element(text), which would compile it as a template again.
    if template is not None and _RENDERING.get():
        _branca_element_init(self)
        self._template = _Text(template)
    else:
        _branca_element_init(self, template, template_name)


def _install_hook() -> None:
    """Route ``branca.element.Element.__init__`` through ``_element_init`` (once per process).

    Outside ``_render_as_data`` (another thread, a user's own folium map) the hook calls
    branca's constructor unchanged: the flag is a context variable, so it is per thread.
    """
    global _branca_element_init
    with _HOOK_LOCK:
        if _branca_element_init is None:
            _branca_element_init = branca.element.Element.__init__
            branca.element.Element.__init__ = _element_init


@contextlib.contextmanager
def _render_as_data(root: branca.element.Element) -> Iterator[None]:
    """Render ``root``'s tree with every data string kept inert.

    branca renders a ``MacroElement``'s macros and hands the output, which already holds the
    data (names in a GeoJSON, a legend's text), to ``Element(output)``, and that compiles it
    as a Jinja template: ``{{7*7}}`` in a name would print 49 and ``{{ lipsum... }}`` run
    code. Here that output is kept as text. Leaflet also inserts layer-control names and
    folium's tooltip and popup labels as HTML, so they are escaped for the render (and put
    back afterwards, so a map can be rendered again).
    """
    if _RENDERING.get():  # already inside (offline_html of a _DataFigure): escape once
        yield
        return
    _install_hook()
    saved: list[tuple[Any, str, Any]] = []
    for element in _walk(root):
        if isinstance(element, folium.map.Layer) and isinstance(element.layer_name, str):
            saved.append((element, "layer_name", element.layer_name))
            element.layer_name = escape_html(element.layer_name)
        if isinstance(element, folium.features.GeoJsonDetail) and element.aliases is not None:
            saved.append((element, "aliases", element.aliases))
            element.aliases = [escape_html(a) for a in element.aliases]
    token = _RENDERING.set(True)
    try:
        yield
    finally:
        _RENDERING.reset(token)
        for element, attr, value in reversed(saved):
            setattr(element, attr, value)


class _DataFigure(branca.element.Figure):
    """The page of a map made by ``base_map``: rendered with ``_render_as_data`` however it
    is rendered (``save_map``, folium's ``save``, a notebook's display)."""

    def render(self, **kwargs: Any) -> str:
        with _render_as_data(self):
            return super().render(**kwargs)


def _walk(element: branca.element.Element) -> Iterator[branca.element.Element]:
    """``element`` and everything below it (children, and a figure's header/html/script)."""
    stack = [element]
    seen: set[int] = set()
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack.extend(e._children.values())
        for part in ("header", "html", "script"):
            sub = getattr(e, part, None)
            if isinstance(sub, branca.element.Element):
                stack.append(sub)


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
    root = m.get_root()
    with _render_as_data(root):
        text = root.render()
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
    _DataFigure().add_child(m)  # instead of folium's plain Figure
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
            f"<span>{escape_html(label)}</span></div>"
        )
    body = (
        f'<div style="font-weight:bold; margin-bottom:4px;">{escape_html(title)}</div>'
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
    body = f'<div style="font-size:17px; font-weight:bold;">{escape_html(title)}</div>'
    if subtitle:
        body += f'<div style="font-size:12px; color:#555;">{escape_html(subtitle)}</div>'
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


def add_roads(m: folium.Map, roads: gpd.GeoDataFrame | None, name: str = "道路 Roads") -> bool:
    """Streets for context: one line layer, merged and simplified by ``MAP_SIMPLIFY_M``.

    Returns whether anything was drawn (for the legend).
    """
    roads = _light_lines(roads) if roads is not None and len(roads) else None
    if roads is None or not len(roads):
        return False
    group = folium.FeatureGroup(name=name, show=True)
    add_lines(group, roads, ROAD_COLOUR, weight=1.2)
    group.add_to(m)
    return True


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
    return escape_html(value)


# --- Audit map ---------------------------------------------------------------------------------
#: Homes above which the audit map draws smaller markers without outlines (cheaper to draw on
#: a canvas; at city scale the outline is not visible anyway).
MAP_MANY_HOMES: int = 200_000
#: Douglas–Peucker tolerance in metres for roads and isochrones on maps: about a pixel at
#: zoom 17; it drops the inner vertices of straight streets and most of a buffer's outline.
MAP_SIMPLIFY_M: float = 1.0
#: Decimal places of longitude/latitude in maps' embedded data (5 ≈ 1.1 m).
MAP_DECIMALS: int = 5


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

    The homes are embedded once, as compact arrays (coordinates, population, and per category
    the time in whole seconds and an index of the nearest facility); each category's layer
    draws them in the browser when it is shown, so the file grows by about 10 bytes per home
    and category instead of a GeoJSON feature each.

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
        ``key``, ``name_zh``, ``name_en``, ``minutes`` (the category's target as a time) and
        optionally ``target_label`` (the target as its source states it, e.g. "≤ 300 m").
    roads : geopandas.GeoDataFrame, optional
        Lines drawn for context (merged and simplified by ``MAP_SIMPLIFY_M``).
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
    minutes = sorted(minutes)

    frames = [g for g in (homes, facilities) if g is not None and len(g)]
    if not frames:
        raise ValueError("map_audit needs homes or facilities to map")
    bounds = np.array([g.total_bounds for g in frames])
    bounds = (bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max())
    # Keep the data clear of the legend (bottom right) and the title (top).
    m = base_map(bounds, padding_top_left=(20, 80 if title else 20),
                 padding_bottom_right=(200, 20))

    # Roads and isochrones simplified in metres (before reprojection), coordinates rounded.
    has_roads = add_roads(m, roads)
    isochrones = (_light_polygons(isochrones) if isochrones is not None and len(isochrones)
                  else None)

    # Homes: one data block for all categories (before the layers that read it).
    data = _HomesData(homes, facilities, categories, minutes)
    m.add_child(data)
    n_homes = data.count
    # Homes stay readable from a few hundred to a city's hundreds of thousands of points.
    style = {"radius": 5.0 if n_homes < 2_000 else 3.5 if n_homes < 10_000 else 2.5,
             "color": "#ffffff", "weight": 0.6, "fillOpacity": 0.9, "opacity": 1.0}
    if n_homes >= MAP_MANY_HOMES:  # no outline: cheaper to draw, and invisible at city scale
        style.update(radius=2.0, stroke=False)

    for i, cat in enumerate(categories):
        key = cat["key"]
        group = folium.FeatureGroup(name=f"{cat['name_zh']} {cat['name_en']}", show=i == 0)
        target_min = cat.get("minutes")

        # Isochrones, largest first so the smaller ones are drawn (and tinted) on top.
        if isochrones is not None:
            iso = isochrones[isochrones["category"] == key]
            for mins in sorted(iso["minutes"].unique(), reverse=True):
                part = iso[iso["minutes"] == mins]
                colour = time_colour([float(mins) * 60], minutes)[0]
                is_target = target_min is not None and float(mins) == float(target_min)
                add_polygons(group, part, colour, fill_opacity=0.08,
                             weight=2.5 if is_target else 1.2,
                             dash_array=None if is_target else "5 4")

        # Homes, drawn in the browser from the shared arrays (worst on top).
        time_label = "时间 Time (分钟 min)"
        if cat.get("target_label"):  # the target in its source's unit, e.g. "≤ 300 m"
            time_label += f", 目标 target {cat['target_label']}"
        elif target_min is not None:
            time_label += f", 目标 target ≤ {_fmt(float(target_min))}"
        group.add_child(_CategoryHomes(data, key, time_label, style))

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
    legend.append((_band_colours(len(minutes) + 1)[0],
                   "等时圈 Isochrone (实线=目标 solid = target)", "area"))
    if has_roads:
        legend.append((ROAD_COLOUR, "道路 Road", "line"))
    add_legend(m, "到最近设施的时间 Time to nearest facility", legend)
    if title:
        add_title(m, title, "生活圈设施可达性 Access to life-circle facilities")
    folium.LayerControl(collapsed=False).add_to(m)
    return m


# The browser side of the audit map's homes, defined once per page.
# L.PlannerHomes is a FeatureGroup of L.circleMarkers (drawn on the map's canvas renderer,
# preferCanvas) for one category. It creates its markers when it is added to the map (its
# category ticked in the layer control) and drops them when removed, so a page holds the
# markers of the categories on show only. Colours are the bands of time_colour: the first
# limit (seconds) a time is ≤ to, beyond the last the last colour, -1 (unreachable) grey.
# Popups are built on click from the arrays.
_HOMES_JS = """
if (!L.PlannerHomes) {
  L.PlannerHomes = L.FeatureGroup.extend({
    initialize: function (data, key, label, style) {
      L.FeatureGroup.prototype.initialize.call(this, []);
      this._data = data;
      this._key = key;
      this._label = label;
      this._style = style;
      this.bindPopup(this._popupHtml.bind(this), {maxWidth: 360});
    },
    onAdd: function (map) {
      this._build();
      L.FeatureGroup.prototype.onAdd.call(this, map);
    },
    onRemove: function (map) {
      L.FeatureGroup.prototype.onRemove.call(this, map);
      this.clearLayers();  // rebuilt when shown again: memory for the categories on show only
    },
    colour: function (seconds) {
      var d = this._data;
      if (seconds < 0) return d.none;
      for (var b = 0; b < d.limits.length; b++) if (seconds <= d.limits[b]) return d.palette[b];
      return d.palette[d.limits.length];
    },
    _build: function () {
      var d = this._data, t = d.cats[this._key].t, n = d.lon.length, order = new Array(n);
      for (var i = 0; i < n; i++) order[i] = i;
      // Worst on top: drawn last, unreachable (-1) after the longest times. Stable sort.
      function rank(s) { return s < 0 ? Infinity : s; }
      order.sort(function (a, b) { return rank(t[a]) - rank(t[b]); });
      // One marker class per colour: options shared through the prototype, not copied into
      // every marker (a third of the build time with 100,000 homes).
      var classes = {}, style = this._style;
      for (var j = 0; j < n; j++) {
        var k = order[j], colour = this.colour(t[k]);
        var Marker = classes[colour] || (classes[colour] = L.CircleMarker.extend({
          options: L.extend({}, style, {fillColor: colour})
        }));
        var marker = new Marker([d.lat[k], d.lon[k]]);
        marker._plannerHome = k;
        this.addLayer(marker);
      }
    },
    _popupHtml: function (marker) {
      var d = this._data, c = d.cats[this._key], k = marker._plannerHome;
      var s = c.t[k], f = c.f[k], fac = '—';
      if (f >= 0) {
        fac = d.fname[f] ? d.fname[f] + ' (' + d.fid[f] + ')' : d.fid[f];
      }
      var mins = s < 0 ? '—' : (s % 60 === 0 ? String(s / 60) : (s / 60).toFixed(1));
      var pop = d.pop[k] === null ? '—' : String(d.pop[k]);
      var rows = [['住宅 Home', d.id[k]], ['人口 Population', pop], [this._label, mins],
                  ['最近设施 Nearest facility', fac]];
      return '<table>' + rows.map(function (r) {
        return '<tr><th>' + L.PlannerHomes.escape(r[0]) + '</th><td>' +
          L.PlannerHomes.escape(r[1]) + '</td></tr>';
      }).join('') + '</table>';
    }
  });
  L.PlannerHomes.escape = function (text) {
    return String(text).replace(/[&<>"']/g, function (ch) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[ch];
    });
  };
}
"""


class _HomesData(branca.element.MacroElement):
    """The audit map's homes, once for all categories, as one inline JSON block.

    ``{"lon", "lat", "id", "pop", "fid", "fname", "cats": {key: {"t", "f"}}, "limits",
    "palette", "none"}``: coordinates to ``MAP_DECIMALS`` decimals, population rounded
    (null if unknown), per category ``t`` the time in whole seconds (rounded up, so bands
    match ``time_colour``; -1 if unreachable) and ``f`` an index into ``fid``/``fname``
    (-1 if none). Homes without a location are left out.
    """

    _template = branca.element.Template(
        """
        {% macro script(this, kwargs) %}
        {{ this.js }}
        var {{ this.get_name() }} = JSON.parse(
            document.getElementById({{ this.get_name()|tojson }}).textContent);
        {% endmacro %}
        """
    )

    def __init__(self, homes: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame,
                 categories: list[dict], minutes: Sequence[float]):
        super().__init__()
        self._name = "PlannerHomesData"
        self.js = _HOMES_JS
        payload = _homes_payload(homes, facilities, categories, minutes)
        self.count = len(payload["lon"])
        self.json = _inline_json(payload)

    def render(self, **kwargs: Any) -> None:
        # The data go into the page as they are, never through a macro: a macro's output is
        # inert text only when the page renders through _render_as_data.
        block = (f'<script type="application/json" id="{self.get_name()}">'
                 f"{self.json}</script>")
        self.get_root().html.add_child(_Raw(block), name=self.get_name())
        super().render(**kwargs)


class _Raw(branca.element.Element):
    """Text added to a page as is (no Jinja)."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def render(self, **kwargs: Any) -> str:
        return self.text


class _CategoryHomes(branca.element.MacroElement):
    """One category's homes: an ``L.PlannerHomes`` in the category's FeatureGroup."""

    _template = branca.element.Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = new L.PlannerHomes({{ this.data.get_name() }},
            {{ this.key|tojson }}, {{ this.label|tojson }}, {{ this.style|tojson }});
        {{ this._parent.get_name() }}.addLayer({{ this.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, data: _HomesData, key: str, label: str, style: dict):
        super().__init__()
        self._name = "PlannerHomes"
        self.data, self.key, self.label, self.style = data, key, label, style


def _homes_payload(homes: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame,
                   categories: list[dict], minutes: Sequence[float]) -> dict:
    """The arrays of ``_HomesData`` (homes in EPSG:4326)."""
    geoms = homes.geometry.values
    keep = ~(pd.isna(geoms) | shapely.is_empty(geoms))
    geoms = geoms[keep]
    not_point = shapely.get_type_id(geoms) != 0
    if not_point.any():
        geoms = geoms.copy()
        geoms[not_point] = shapely.centroid(geoms[not_point])
    xy = shapely.get_coordinates(geoms)
    ok = np.isfinite(xy).all(axis=1)
    keep[np.flatnonzero(keep)[~ok]] = False
    xy = np.round(xy[ok], MAP_DECIMALS)
    h = homes[keep]

    ids = (h["home_id"].astype(str).tolist() if "home_id" in h
           else [str(v) for v in h.index])
    if "population" in h:
        pop = pd.to_numeric(h["population"], errors="coerce").to_numpy(dtype=float)
        population = [None if np.isnan(v) else int(v) for v in np.round(pop)]
    else:
        population = [None] * len(h)

    # Facility ids shared by all categories; names for the popups.
    fac_ids: dict[str, int] = {}
    fac_names: list[str | None] = []
    names = (dict(zip(facilities["facility_id"].astype(str), facilities["name"], strict=True))
             if "name" in facilities and "facility_id" in facilities else {})

    def index_of(value: Any) -> int:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return -1
        text = str(value)
        if text not in fac_ids:
            fac_ids[text] = len(fac_ids)
            name = names.get(text)
            fac_names.append(name if isinstance(name, str) and name else None)
        return fac_ids[text]

    cats = {}
    for cat in categories:
        key = cat["key"]
        time_col, fac_col = f"{key}_time_s", f"{key}_facility_id"
        sec = (pd.to_numeric(h[time_col], errors="coerce").to_numpy(dtype=float)
               if time_col in h else np.full(len(h), np.nan))
        reachable = np.isfinite(sec)
        # Whole seconds rounded up: a time t is ≤ a limit L (whole seconds) exactly when
        # ceil(t) ≤ L, so the browser's bands are those of time_colour.
        t = np.where(reachable, np.ceil(np.maximum(np.nan_to_num(sec), 0)), -1).astype(np.int64)
        if fac_col in h:
            codes, uniques = pd.factorize(h[fac_col], use_na_sentinel=True)
            lookup = np.array([index_of(u) for u in uniques] + [-1], dtype=np.int64)
            f = lookup[codes]  # code -1 (missing) takes the trailing -1
            f[~reachable] = -1
        else:
            f = np.full(len(h), -1, dtype=np.int64)
        cats[key] = {"t": t.tolist(), "f": f.tolist()}

    return {
        # Texts from data as plain_text: the browser escapes them when it builds a popup.
        "lon": xy[:, 0].tolist(), "lat": xy[:, 1].tolist(), "id": [plain_text(v) for v in ids],
        "pop": population, "fid": [plain_text(v) for v in fac_ids],
        "fname": [None if v is None else plain_text(v) for v in fac_names], "cats": cats,
        "limits": [float(v) * 60.0 for v in minutes],
        "palette": _band_colours(len(minutes) + 1), "none": NO_FACILITY_COLOUR,
    }


def _inline_json(value: Any) -> str:
    """Compact JSON safe inside an HTML <script> element (no "<", ">" or "&" characters)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _metric(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``gdf`` in metres: as is if projected, else in its UTM zone (no CRS: lon/lat)."""
    if gdf.crs is None:
        gdf = gdf.set_crs("EPSG:4326")
    if gdf.crs.is_projected:
        return gdf
    return gdf.to_crs(gdf.estimate_utm_crs())


def _round_wgs84(geoms: np.ndarray, crs: Any) -> np.ndarray:
    """Geometries from ``crs`` to lon/lat rounded to ``MAP_DECIMALS`` decimals."""
    geoms = gpd.GeoSeries(geoms, crs=crs).to_crs("EPSG:4326").to_numpy()
    geoms = shapely.transform(geoms, lambda xy: np.round(xy, MAP_DECIMALS))
    try:
        return shapely.remove_repeated_points(geoms)
    except shapely.errors.GEOSException:  # a ring collapsed to < 3 points: keep duplicates
        return geoms


def _light_lines(lines: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Lines as one simplified feature: segments merged into polylines, then simplified.

    A street network arrives as one 2-point segment per edge; merged into polylines and
    simplified by ``MAP_SIMPLIFY_M`` it needs far fewer vertices, and one MultiLineString
    feature avoids the per-feature overhead of GeoJSON. Non-line geometries are ignored.
    """
    metric = _metric(lines)
    parts = shapely.get_parts(metric.geometry.values[~pd.isna(metric.geometry.values)])
    parts = parts[np.isin(shapely.get_type_id(parts), (1, 2)) & ~shapely.is_empty(parts)]
    if len(parts):
        parts = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(parts)))
        parts = shapely.simplify(parts, MAP_SIMPLIFY_M, preserve_topology=False)
        parts = _round_wgs84(parts, metric.crs)
        parts = parts[~shapely.is_empty(parts) & (shapely.length(parts) > 0)]
    if not len(parts):
        return gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")
    return gpd.GeoDataFrame(geometry=[shapely.multilinestrings(parts)], crs="EPSG:4326")


def _light_polygons(polygons: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Polygons simplified by ``MAP_SIMPLIFY_M`` (topology kept), in lon/lat, rounded."""
    metric = _metric(polygons)
    geoms = shapely.simplify(metric.geometry.values, MAP_SIMPLIFY_M, preserve_topology=True)
    out = polygons.drop(columns=polygons.geometry.name).copy()
    out = gpd.GeoDataFrame(out, geometry=_round_wgs84(geoms, metric.crs), crs="EPSG:4326")
    return out
