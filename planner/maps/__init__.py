"""Offline web maps: folium maps saved as one self-contained HTML file.

Planners often work on intranets where foreign CDNs are blocked, so every map planner writes
carries its own Leaflet and jQuery (from the ``xstatic-leaflet`` and ``xstatic-jquery``
packages) and loads nothing from the network. Base tiles are added only when
``settings.map_tiles`` is set; without them a light road layer gives context.

Vector data are drawn as one ``folium.GeoJson`` per layer on a canvas renderer, not one folium
object per feature (``layers``). The audit map goes further for its homes, which are many and
shown once per facility category: it embeds them once as compact arrays and builds each
category's markers in the browser when that category is shown (``audit_map``).

Modules: ``_render`` (offline, inert HTML), ``base`` (base map, title, legend, colours),
``layers`` (points, polygons, lines, labels), ``audit_map`` (``map_audit``), ``printable``
(``map.png`` and ``map.pdf`` with matplotlib, for print).
"""

from ._render import escape_html, offline_html, plain_text, save_map
from .audit_map import MAP_MANY_HOMES, map_audit
from .base import (
    BACKGROUND_COLOUR,
    BAND_COLOURS,
    FACILITY_COLOUR,
    NO_FACILITY_COLOUR,
    ROAD_COLOUR,
    add_legend,
    add_title,
    band_colours,
    base_map,
    time_colour,
    time_legend_items,
)
from .layers import (
    MAP_DECIMALS,
    MAP_SIMPLIFY_M,
    add_labels,
    add_lines,
    add_points,
    add_polygons,
    add_roads,
    light_lines,
    light_polygons,
    to_wgs84,
)

__all__ = [
    "BACKGROUND_COLOUR",
    "BAND_COLOURS",
    "FACILITY_COLOUR",
    "MAP_DECIMALS",
    "MAP_MANY_HOMES",
    "MAP_SIMPLIFY_M",
    "NO_FACILITY_COLOUR",
    "ROAD_COLOUR",
    "add_labels",
    "add_legend",
    "add_lines",
    "add_points",
    "add_polygons",
    "add_roads",
    "add_title",
    "band_colours",
    "base_map",
    "escape_html",
    "light_lines",
    "light_polygons",
    "map_audit",
    "offline_html",
    "plain_text",
    "save_map",
    "time_colour",
    "time_legend_items",
    "to_wgs84",
]
