"""The audit map: one layer per facility category, homes drawn in the browser from shared arrays.

The homes are many and shown once per facility category: the map embeds them once as compact
arrays and builds each category's markers in the browser when that category is shown, so a map
of 20,000 homes and 17 categories is about 5 MB rather than 90 MB. The facilities, isochrones
and roads come from the same data block, drawn by a few lines of JavaScript per layer rather
than a folium GeoJSON layer (with a template for each tooltip and popup) per category.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import branca.element
import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings

from ._render import plain_text
from .base import (
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
from .home_cells import add_home_cells, add_road_image, cell_homes
from .layers import (
    MAP_DECIMALS,
    MAP_SIMPLIFY_M,
    add_points,
    add_polygons,
    is_light,
    light_lines,
    light_polygons,
    to_wgs84,
)

#: Homes above which the audit map draws smaller markers without outlines (cheaper to draw on
#: a canvas; at city scale the outline is not visible anyway).
MAP_MANY_HOMES: int = 200_000


# size: over 80 lines by its numpy docstring only; the code itself is under 60.
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
    homes, facilities = to_wgs84(homes), to_wgs84(facilities)
    minutes = sorted(minutes)

    frames = [g for g in (homes, facilities) if g is not None and len(g)]
    if not frames:
        raise ValueError("map_audit needs homes or facilities to map")
    bounds = np.array([g.total_bounds for g in frames])
    bounds = (bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max())
    # Keep the data clear of the legend (bottom right) and the title (top).
    m = base_map(bounds, padding_top_left=(20, 80 if title else 20), padding_bottom_right=(200, 20))

    # A whole city: homes as cells, lighter outlines, facilities without names.
    city = homes is not None and len(homes) > settings.map_detail_max_homes
    simplify_m, decimals = (settings.map_city_simplify_m, 4) if city else (MAP_SIMPLIFY_M, MAP_DECIMALS)
    # Roads and isochrones simplified in metres (before reprojection), coordinates rounded;
    # a city's roads as an image.
    if city:
        has_roads = add_road_image(m, roads)
    else:
        if roads is not None and len(roads) and not is_light(roads, simplify_m, decimals):
            roads = light_lines(roads, simplify_m, decimals)
        roads = roads if roads is not None and len(roads) else None
        has_roads = roads is not None and len(roads) > 0
    if isochrones is not None and len(isochrones):
        # At least three quarters of an isochrone cell: the cells' staircase is not the
        # streets' shape, and it would double the outline's vertices.
        iso_simplify_m = max(simplify_m, 0.75 * settings.isochrone_cell_m)
        isochrones = light_polygons(isochrones, iso_simplify_m, decimals)
    else:
        isochrones = None
    if city:
        _add_city_layers(m, homes, facilities, isochrones, categories, minutes)
    else:
        _add_home_layers(m, homes, facilities, isochrones, categories, minutes, roads if has_roads else None)

    legend = list(time_legend_items(minutes))
    if city:
        legend.append(
            (
                NO_FACILITY_COLOUR,
                f"住宅按约 {settings.map_home_cell_m:g} 米网格汇总（取格内最差）"
                f" Homes in ~{settings.map_home_cell_m:g} m cells (worst in cell)",
                "area",
            )
        )
    legend.append((FACILITY_COLOUR, "设施 Facility", "ring"))
    legend.append((band_colours(len(minutes) + 1)[0], "等时圈 Isochrone (实线=目标 solid = target)", "area"))
    if has_roads:
        legend.append((ROAD_COLOUR, "道路 Road", "line"))
    add_legend(m, "到最近设施的时间 Time to nearest facility", legend)
    if title:
        add_title(m, title, "生活圈设施可达性 Access to life-circle facilities")
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def _add_home_layers(
    m: folium.Map,
    homes: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    isochrones: gpd.GeoDataFrame | None,
    categories: list[dict],
    minutes: Sequence[float],
    roads: gpd.GeoDataFrame | None,
) -> None:
    """The roads' layer (``roads``: light lines, or None), then one layer per category:
    isochrones, every home and the facilities, all drawn in the browser from one data block
    (roads, homes, facilities and isochrones once, read by every layer)."""
    # One data block for all layers (before the layers that read it).
    data = _HomesData(homes, facilities, categories, minutes, isochrones, roads)
    m.add_child(data)
    if roads is not None:
        group = folium.FeatureGroup(name="道路 Roads", show=True)
        group.add_child(_RoadLines(data))
        group.add_to(m)
    n_homes = data.count
    # Homes stay readable from a few hundred to a city's hundreds of thousands of points.
    style = {
        "radius": 5.0 if n_homes < 2_000 else 3.5 if n_homes < 10_000 else 2.5,
        "color": "#ffffff",
        "weight": 0.6,
        "fillOpacity": 0.9,
        "opacity": 1.0,
    }
    if n_homes >= MAP_MANY_HOMES:  # no outline: cheaper to draw, and invisible at city scale
        style.update(radius=2.0, stroke=False)

    for i, cat in enumerate(categories):
        group = folium.FeatureGroup(name=f"{cat['name_zh']} {cat['name_en']}", show=i == 0)
        # Isochrones, homes (worst on top), then the facilities on top of the homes.
        group.add_child(_CategoryLayers(data, cat, _time_label(cat), style))
        group.add_to(m)


def _add_city_layers(
    m: folium.Map,
    homes: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    isochrones: gpd.GeoDataFrame | None,
    categories: list[dict],
    minutes: Sequence[float],
) -> None:
    """One layer per category for a whole city: isochrones, the homes as an image of cells,
    the facilities as one multipoint (no names: they are in facilities.gpkg)."""
    home_points = cell_homes(homes, [cat["key"] for cat in categories])
    for i, cat in enumerate(categories):
        group = folium.FeatureGroup(name=f"{cat['name_zh']} {cat['name_en']}", show=i == 0)
        if isochrones is not None:
            _add_isochrones(group, isochrones, cat, minutes)
        add_home_cells(group, home_points, cat["key"], minutes, settings.map_home_cell_m)
        fac = facilities[facilities["category"] == cat["key"]]
        if len(fac):
            points = shapely.multipoints(np.round(shapely.get_coordinates(fac.geometry.to_numpy()), 5))
            add_points(
                group,
                gpd.GeoDataFrame(geometry=[points], crs=fac.crs),
                "#ffffff",
                radius=2.5,  # small: a whole city's facilities would hide its homes
                outline=FACILITY_COLOUR,
                weight=1,
                fill_opacity=1.0,
            )
        group.add_to(m)


def _add_isochrones(
    group: folium.FeatureGroup, isochrones: gpd.GeoDataFrame, cat: dict, minutes: Sequence[float]
) -> None:
    """A category's isochrones, largest first so the smaller ones are drawn (and tinted) on top."""
    iso = isochrones[isochrones["category"] == cat["key"]]
    for mins in sorted(iso["minutes"].unique(), reverse=True):
        colour, weight, dash = _isochrone_look(float(mins), cat, minutes)
        add_polygons(
            group, iso[iso["minutes"] == mins], colour, fill_opacity=0.08, weight=weight, dash_array=dash
        )


def _isochrone_look(mins: float, cat: dict, minutes: Sequence[float]) -> tuple[str, float, str | None]:
    """An isochrone's colour (its time band), line weight and dashes: solid and wider at the
    category's target, dashed at the other times."""
    target_min = cat.get("minutes")
    is_target = target_min is not None and mins == float(target_min)
    return time_colour([mins * 60], minutes)[0], 2.5 if is_target else 1.2, None if is_target else "5 4"


def _time_label(cat: dict) -> str:
    """The time row of a home's popup, with the category's target."""
    time_label = "时间 Time (分钟 min)"
    target_min = cat.get("minutes")
    if cat.get("target_label"):  # the target in its source's unit, e.g. "≤ 300 m"
        time_label += f", 目标 target {cat['target_label']}"
    elif target_min is not None:
        time_label += f", 目标 target ≤ {float(target_min):g}"
    return time_label


# The browser side of the audit map's homes, defined once per page.
# L.PlannerHomes is a FeatureGroup of L.circleMarkers (drawn on the map's canvas renderer,
# preferCanvas) for one category. It creates its markers when it is added to the map (its
# category ticked in the layer control) and drops them when removed, so a page holds the
# markers of the categories on show only. Colours are the bands of time_colour: the first
# limit (seconds) a time is ≤ to, beyond the last the last colour, -1 (unreachable) grey,
# -2 (beyond the run's limit, past the largest threshold: planner.reach) the last colour.
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
      if (seconds === -2) return d.palette[d.limits.length];
      if (seconds < 0) return d.none;
      for (var b = 0; b < d.limits.length; b++) if (seconds <= d.limits[b]) return d.palette[b];
      return d.palette[d.limits.length];
    },
    _build: function () {
      var d = this._data, t = d.cats[this._key].t, n = d.lon.length, order = new Array(n);
      for (var i = 0; i < n; i++) order[i] = i;
      // Worst on top: drawn last, unreachable (-1) after the longest times. Stable sort.
      function rank(s) { return s === -2 ? 1e15 : s < 0 ? Infinity : s; }
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
      var mins = s === -2 ? '> ' + d.limits[d.limits.length - 1] / 60 :
        s < 0 ? '—' : (s % 60 === 0 ? String(s / 60) : (s / 60).toFixed(1));
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
  // A category's isochrones: one non-interactive GeoJSON layer per time, largest first.
  L.PlannerHomes.isochrones = function (d, key, group) {
    d.cats[key].iso.forEach(function (layer) {
      var geoms = layer.g.map(function (i) { return d.iso_g[i]; });
      L.geoJson(geoms, {style: layer.s, interactive: false}).addTo(group);
    });
  };
  // A category's facilities: one GeoJSON layer of circle markers, with a table of the name
  // and id as tooltip and popup (folium's GeoJsonTooltip and GeoJsonPopup look).
  L.PlannerHomes.facilities = function (d, key, aliases, group) {
    var fac = d.fac, rows = d.cats[key].p;
    if (!rows.length) return;
    var features = rows.map(function (r, j) {
      var f = fac.f[r];
      return {type: 'Feature', id: j, geometry: {type: 'Point', coordinates: [fac.lon[r], fac.lat[r]]},
              properties: {name: d.fname[f] === null ? fac.unnamed : d.fname[f], facility_id: d.fid[f]}};
    });
    var layer = L.geoJson(features, {
      style: fac.style,
      pointToLayer: function (feature, latlng) {
        return new L.CircleMarker(latlng, L.extend({}, fac.marker));
      }
    });
    function table(marker) {
      var p = marker.feature.properties, div = L.DomUtil.create('div');
      div.innerHTML = '<table>' + [[aliases[0], p.name], [aliases[1], p.facility_id]].map(function (r) {
        return '<tr><th>' + L.PlannerHomes.escape(r[0]) + '</th><td>' +
          L.PlannerHomes.escape(r[1]) + '</td></tr>';
      }).join('') + '</table>';
      return div;
    }
    layer.bindTooltip(table, {sticky: true, className: 'foliumtooltip'});
    layer.bindPopup(table, {className: 'foliumpopup'});
    layer.addTo(group);
  };
}
"""

# The look of folium's GeoJsonTooltip and GeoJsonPopup tables, once per page.
_DETAIL_CSS = """<style>
.foliumtooltip table, .foliumpopup table { margin: auto; }
.foliumtooltip tr, .foliumpopup tr { text-align: left; }
.foliumtooltip th, .foliumpopup th { padding: 2px; padding-right: 8px; }
.foliumpopup { margin: auto; }
</style>"""


class _HomesData(branca.element.MacroElement):
    """The audit map's data, once for all categories, as one inline JSON block.

    The homes (:func:`homes_payload`): ``{"lon", "lat", "id", "pop", "fid", "fname", "cats":
    {key: {"t", "f"}}, "limits", "palette", "none"}``: coordinates to ``MAP_DECIMALS``
    decimals, population rounded (null if unknown), per category ``t`` the time in whole
    seconds (rounded up, so bands match ``time_colour``; -1 if unreachable, -2 if beyond the
    run's limit: past the largest threshold) and ``f`` an index into ``fid``/``fname``
    (-1 if none). Homes without a location are left out.

    For the map's layers also: the facilities drawn, ``"fac": {"lon", "lat", "f", ...}``
    (``f`` into ``fid``/``fname``) and per category ``p`` (their rows); the isochrones,
    ``iso_g`` (GeoJSON geometries) and per category ``iso`` (a style and rows of ``iso_g`` per
    time); the roads, ``roads_g`` (GeoJSON geometries).
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

    def __init__(
        self,
        homes: gpd.GeoDataFrame,
        facilities: gpd.GeoDataFrame,
        categories: list[dict],
        minutes: Sequence[float],
        isochrones: gpd.GeoDataFrame | None = None,
        roads: gpd.GeoDataFrame | None = None,
    ):
        super().__init__()
        self._name = "PlannerHomesData"
        self.js = _HOMES_JS
        texts = _FacilityTexts()
        rows, per_category = _facility_rows(facilities, categories, texts)
        payload = homes_payload(homes, facilities, categories, minutes, texts)
        payload["fac"] = rows
        layers, geoms = _isochrone_layers(isochrones, categories, minutes)
        for key, cat in payload["cats"].items():
            cat["p"], cat["iso"] = per_category[key], layers[key]
        self.count = len(payload["lon"])
        road_lines = _geojson(roads)
        # The isochrones' and roads' GeoJSON goes in as shapely writes it (numbers only), not
        # through Python objects: the same text, and most of the block.
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        text = text[:-1] + ',"iso_g":[' + ",".join(geoms) + '],"roads_g":[' + ",".join(road_lines) + "]}"
        self.json = _html_safe(text)

    def render(self, **kwargs: Any) -> None:
        # The data go into the page as they are, never through a macro: a macro's output is
        # inert text only when the page renders through _render_as_data.
        block = f'<script type="application/json" id="{self.get_name()}">{self.json}</script>'
        self.get_root().html.add_child(_Raw(block), name=self.get_name())
        # After Leaflet's CSS, which the map adds when it renders: these rules win over it.
        self.get_root().header.add_child(_Raw(_DETAIL_CSS), name="planner_facility_tables")
        super().render(**kwargs)


class _Raw(branca.element.Element):
    """Text added to a page as is (no Jinja)."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def render(self, **kwargs: Any) -> str:
        return self.text


class _RoadLines(branca.element.MacroElement):
    """The roads in their FeatureGroup, from the shared data (as ``layers.add_roads`` draws them)."""

    _template = branca.element.Template(
        """
        {% macro script(this, kwargs) %}
        L.geoJson({{ this.data.get_name() }}.roads_g, {style: {{ this.style|tojson }}, interactive: false})
            .addTo({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, data: _HomesData):
        super().__init__()
        self._name = "PlannerRoads"
        self.data = data
        self.style = {"color": ROAD_COLOUR, "weight": 1.2, "opacity": 0.8}


def _geojson(frame: gpd.GeoDataFrame | None) -> list[str]:
    """The GeoJSON text of a frame's geometries (EPSG:4326, rounded already), empty ones left out."""
    if frame is None or not len(frame):
        return []
    geoms = frame.geometry.to_numpy()
    return shapely.to_geojson(geoms[~(pd.isna(geoms) | shapely.is_empty(geoms))]).tolist()


class _CategoryLayers(branca.element.MacroElement):
    """One category's layers in its FeatureGroup, from the shared data: the isochrones, an
    ``L.PlannerHomes`` of the homes, and the facilities on top."""

    _template = branca.element.Template(
        """
        {% macro script(this, kwargs) %}
        L.PlannerHomes.isochrones({{ this.data.get_name() }}, {{ this.key|tojson }},
            {{ this._parent.get_name() }});
        var {{ this.get_name() }} = new L.PlannerHomes({{ this.data.get_name() }},
            {{ this.key|tojson }}, {{ this.label|tojson }}, {{ this.style|tojson }});
        {{ this._parent.get_name() }}.addLayer({{ this.get_name() }});
        L.PlannerHomes.facilities({{ this.data.get_name() }}, {{ this.key|tojson }},
            {{ this.aliases|tojson }}, {{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, data: _HomesData, cat: dict, label: str, style: dict):
        super().__init__()
        self._name = "PlannerHomes"
        self.data, self.key, self.label, self.style = data, cat["key"], label, style
        # Texts from data as plain_text: the browser escapes them when it builds a table.
        self.aliases = [plain_text(f"{cat['name_zh']} {cat['name_en']}"), "编号 ID"]


class _FacilityTexts:
    """The facility ids and names of a map's data, one entry per (id, name): the homes'
    nearest facilities and the facilities drawn share them."""

    def __init__(self):
        self.ids: list[str] = []
        self.names: list[str | None] = []
        self._at: dict[tuple[str, str | None], int] = {}

    def index(self, facility_id: str, name: Any) -> int:
        key = (facility_id, name if isinstance(name, str) and name else None)
        at = self._at.get(key)
        if at is None:
            at = self._at[key] = len(self.ids)
            self.ids.append(key[0])
            self.names.append(key[1])
        return at


#: Facilities on the audit map: white dots with a dark ring (folium's CircleMarker options,
#: then the layer's style, as ``layers.add_points`` draws them).
_FACILITY_STYLE = {
    "fillColor": "#ffffff",
    "color": FACILITY_COLOUR,
    "weight": 3,
    "fill": True,
    "fillOpacity": 1.0,
    "opacity": 1.0,
}


def _facility_rows(
    facilities: gpd.GeoDataFrame, categories: list[dict], texts: _FacilityTexts
) -> tuple[dict, dict[str, list[int]]]:
    """The facilities of the map's categories (EPSG:4326) as rows of one array, and each
    category's rows (in the frame's order): a multipoint gives a row per point, another
    shape its centroid; coordinates to 6 decimals."""
    keys = [cat["key"] for cat in categories]
    per_category: dict[str, list[int]] = {key: [] for key in keys}
    rows: dict[str, Any] = {
        "lon": [],
        "lat": [],
        "f": [],
        "unnamed": "(未命名 unnamed)",
        "style": _FACILITY_STYLE,
        "marker": {**folium.CircleMarker(radius=7, fill=True).options, **_FACILITY_STYLE},
    }
    if facilities is None or not len(facilities) or "category" not in facilities:
        return rows, per_category
    geoms = facilities.geometry.to_numpy()
    category = facilities["category"].astype(str).to_numpy()
    keep = ~(pd.isna(geoms) | shapely.is_empty(geoms)) & np.isin(category, keys)
    at = np.flatnonzero(keep)
    geoms = geoms[at]
    not_point = ~np.isin(shapely.get_type_id(geoms), (0, 4))
    if not_point.any():
        geoms = geoms.copy()
        geoms[not_point] = shapely.centroid(geoms[not_point])
    points, part_of = shapely.get_parts(geoms, return_index=True)
    xy = np.round(shapely.get_coordinates(points), 6)
    ids = facilities["facility_id"].astype(str).to_numpy()[at]
    names = facilities["name"].to_numpy()[at] if "name" in facilities else [None] * len(at)
    entry = [texts.index(i, n) for i, n in zip(ids, names, strict=True)]
    rows["lon"], rows["lat"] = xy[:, 0].tolist(), xy[:, 1].tolist()
    rows["f"] = [entry[j] for j in part_of.tolist()]
    for r, j in enumerate(part_of.tolist()):
        per_category[category[at[j]]].append(r)
    return rows, per_category


def _isochrone_layers(
    isochrones: gpd.GeoDataFrame | None, categories: list[dict], minutes: Sequence[float]
) -> tuple[dict[str, list[dict]], list[str]]:
    """Per category its isochrone layers, largest time first (so the smaller ones are drawn,
    and tinted, on top): the style (the band's colour; solid and wider at the category's
    target) and rows of the GeoJSON geometries (in lon/lat, rounded by ``light_polygons``)."""
    layers: dict[str, list[dict]] = {cat["key"]: [] for cat in categories}
    if isochrones is None or not len(isochrones):
        return layers, []
    geoms = isochrones.geometry.to_numpy()
    keep = ~(pd.isna(geoms) | shapely.is_empty(geoms))
    text = _geojson(isochrones)
    cat_of = isochrones["category"].to_numpy()[keep]
    mins_of = isochrones["minutes"].to_numpy(dtype=float)[keep]
    for cat in categories:
        mine = cat_of == cat["key"]
        for mins in sorted(np.unique(mins_of[mine]).tolist(), reverse=True):
            colour, weight, dash = _isochrone_look(mins, cat, minutes)
            style = {
                "color": colour,
                "fillColor": colour,
                "weight": weight,
                "fillOpacity": 0.08,
                "opacity": 0.9,
            }
            if dash is not None:
                style["dashArray"] = dash
            layers[cat["key"]].append({"s": style, "g": np.flatnonzero(mine & (mins_of == mins)).tolist()})
    return layers, text


def _home_points(homes: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Which homes have a finite location, and their lon/lat (a home drawn as a shape at its
    centroid), rounded to the map's decimals."""
    geoms = homes.geometry.to_numpy()
    keep = ~(pd.isna(geoms) | shapely.is_empty(geoms))
    geoms = geoms[keep]
    not_point = shapely.get_type_id(geoms) != 0
    if not_point.any():
        geoms = geoms.copy()
        geoms[not_point] = shapely.centroid(geoms[not_point])
    xy = shapely.get_coordinates(geoms)
    ok = np.isfinite(xy).all(axis=1)
    keep[np.flatnonzero(keep)[~ok]] = False
    return keep, np.round(xy[ok], MAP_DECIMALS)


def homes_payload(
    homes: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    categories: list[dict],
    minutes: Sequence[float],
    texts: _FacilityTexts | None = None,
) -> dict:
    """The homes' arrays of ``_HomesData`` (homes in EPSG:4326); ``texts``: facility ids and
    names the map's facilities share."""
    texts = _FacilityTexts() if texts is None else texts
    keep, xy = _home_points(homes)
    h = homes[keep]
    h.attrs = {}  # a copy: pandas would deep-copy the audit's attrs at every column read

    ids = h["home_id"].astype(str).tolist() if "home_id" in h else [str(v) for v in h.index]
    if "population" in h:
        pop = pd.to_numeric(h["population"], errors="coerce").to_numpy(dtype=float)
        population = [None if np.isnan(v) else int(v) for v in np.round(pop)]
    else:
        population = [None] * len(h)

    # Facility ids shared by all categories; names for the popups.
    names = (
        dict(zip(facilities["facility_id"].astype(str).tolist(), facilities["name"].tolist(), strict=True))
        if "name" in facilities and "facility_id" in facilities
        else {}
    )

    def index_of(value: Any) -> int:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return -1
        text = str(value)
        return texts.index(text, names.get(text))

    cats = {}
    for cat in categories:
        key = cat["key"]
        time_col, fac_col = f"{key}_time_s", f"{key}_facility_id"
        sec = (
            pd.to_numeric(h[time_col], errors="coerce").to_numpy(dtype=float)
            if time_col in h
            else np.full(len(h), np.nan)
        )
        reachable = np.isfinite(sec)
        # Whole seconds rounded up: a time t is ≤ a limit L (whole seconds) exactly when
        # ceil(t) ≤ L, so the browser's bands are those of time_colour.
        t = np.where(reachable, np.ceil(np.maximum(np.nan_to_num(sec), 0)), -1).astype(np.int64)
        if f"{key}_reach" in h:  # beyond the sweep's limit: past the largest threshold, not grey
            t[~reachable & (h[f"{key}_reach"] == "beyond").to_numpy(dtype=bool, na_value=False)] = -2
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
        "lon": xy[:, 0].tolist(),
        "lat": xy[:, 1].tolist(),
        "id": [plain_text(v) for v in ids],
        "pop": population,
        "fid": [plain_text(v) for v in texts.ids],
        "fname": [None if v is None else plain_text(v) for v in texts.names],
        "cats": cats,
        "limits": [float(v) * 60.0 for v in minutes],
        "palette": band_colours(len(minutes) + 1),
        "none": NO_FACILITY_COLOUR,
    }


def _inline_json(value: Any) -> str:
    """Compact JSON safe inside an HTML <script> element (no "<", ">" or "&" characters)."""
    return _html_safe(json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False))


def _html_safe(text: str) -> str:
    """JSON text without "<", ">" or "&" (escaped in its strings; JSON has none elsewhere)."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
