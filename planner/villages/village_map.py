"""The villages map: hamlets coloured by coverage, administrative territories, facilities, stations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import folium
import geopandas as gpd
import numpy as np
from pyproj import Transformer

from planner.access import roads_gdf
from planner.maps import add_labels, add_legend, add_lines, add_points, add_polygons, add_title, base_map

from .rural import STATION_KEY

if TYPE_CHECKING:
    from .result import StationPlan, VillageAudit


# Hamlet colours by coverage, and their legend labels.
_COLOURS = {"inside": "#1a9850", "within": "#91cf60", "not covered": "#d73027"}
_LABEL = {
    "inside": "有站 station in the village",
    "within": "可达 station within reach",
    "not covered": "未覆盖 not covered",
}
_TOWN_NAME = "镇中心 Township centre"


def village_map(audit: VillageAudit, stations: StationPlan | None = None) -> folium.Map:
    """An offline folium map: villages coloured by coverage, facilities, proposed stations."""
    v = audit.villages.to_crs(4326)
    status = np.where(
        v["has_service_station"], "inside", np.where(v["service_covered"], "within", "not covered")
    )
    show = v.assign(
        label=[n if isinstance(n, str) and n else i for n, i in zip(v["name"], v["village_id"], strict=True)],
        status=[_LABEL[s] for s in status],
        station_min=np.round(v[f"{STATION_KEY}_time_s"] / 60.0, 1),
    )
    west, south, east, north = show.total_bounds
    m = base_map((west, south, east, north), padding_top_left=(20, 80), padding_bottom_right=(260, 20))
    if audit.networks:
        # One network's streets for context (the walk network has the most of them).
        net = audit.networks.get("walk") or next(iter(audit.networks.values()))
        group = folium.FeatureGroup(name="道路 Roads")
        add_lines(group, roads_gdf(net).to_crs(4326), weight=1.2)
        group.add_to(m)
    if audit.admin is not None and len(audit.admin):
        _add_admin(m, audit.admin)
    aliases = {
        "label": "村庄 Village",
        "source": "来源 Source",
        "population": "人口 Population",
        "status": "覆盖 Coverage",
        "station_min": "到综合服务站 Minutes to station",
        "admin_village": "行政村 Admin. village",
    }
    add_polygons(
        m,
        show,
        [_COLOURS[s] for s in status],
        name="村庄 Villages",
        fill_opacity=0.35,
        tooltip_columns=["label", "admin_village", "source", "population", "status", "station_min"],
        aliases=aliases,
    )
    add_labels(m, show, "label", name="村名 Village names")
    _add_facilities(m, audit)
    if audit.town is not None:
        _add_town(m, audit)
    n_sites = _add_stations(m, stations) if stations is not None and len(stations.sites) else 0
    add_legend(
        m,
        "村级综合服务设施覆盖 Village service coverage",
        _legend(audit.minutes[STATION_KEY], n_sites, audit.town is not None),
    )
    add_title(
        m,
        f"{audit.region} — 乡村生活圈 rural life circles",
        (
            f"行政村综合服务设施覆盖率 coverage {audit.share:.0%} of {len(audit.admin)} "
            f"administrative villages (目标 target {audit.target_share:.0%})"
        )
        if np.isfinite(audit.share)
        else "no administrative village found 未找到行政村",
    )
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def village_print(audit: VillageAudit, folder, stations: StationPlan | None = None) -> None:
    """``map.png`` and ``map.pdf`` (:mod:`planner.maps.printable`): villages by coverage and
    labelled by name, administrative villages, facilities, proposed stations by rank."""
    from planner.maps.printable import print_villages

    v = audit.villages
    status = np.where(
        v["has_service_station"], "inside", np.where(v["service_covered"], "within", "not covered")
    )
    colours = {k: (_COLOURS[k], _LABEL[k]) for k in _COLOURS}
    minutes = audit.minutes[STATION_KEY]
    colours["within"] = (_COLOURS["within"], f"{_LABEL['within']} (≤ {minutes:g} 分钟 min)")
    roads = None
    if audit.networks:
        net = audit.networks.get("walk") or next(iter(audit.networks.values()))
        roads = roads_gdf(net)
    fac = audit.facilities
    fac = fac.assign(geometry=fac.geometry.representative_point()) if len(fac) else fac
    subtitle = (
        (
            f"行政村综合服务设施覆盖率 coverage {audit.share:.0%} of {len(audit.admin)} administrative "
            f"villages (目标 target {audit.target_share:.0%})"
        )
        if np.isfinite(audit.share)
        else ""
    )
    print_villages(
        folder,
        f"{audit.region} — 乡村生活圈 rural life circles",
        subtitle,
        v,
        status,
        colours,
        fac,
        admin=audit.admin,
        stations=stations.sites if stations is not None else None,
        roads=roads,
    )


def _add_admin(m: folium.Map, admin: gpd.GeoDataFrame) -> None:
    """The indicator's unit: territories outlined, green with a facility, red without."""
    shown = admin.to_crs(4326).assign(
        label=[n or i for n, i in zip(admin["name"], admin["admin_id"], strict=True)],
        facility=np.where(admin["has_facility"], "有 yes", "无 no"),
    )
    add_polygons(
        m,
        shown,
        np.where(admin["has_facility"], "#1a9850", "#d73027").tolist(),
        name="行政村 Administrative villages",
        fill_opacity=0.04,
        weight=3,
        dash_array="8 6",
        tooltip_columns=["label", "hamlets", "population", "facility"],
        aliases={
            "label": "行政村 Admin. village",
            "hamlets": "自然村 Hamlets",
            "population": "人口 Population",
            "facility": "综合服务设施 Service facility",
        },
    )


def _add_facilities(m: folium.Map, audit: VillageAudit) -> None:
    """Service stations as large rings, other rural facilities as small ones."""
    fac = audit.facilities.to_crs(4326)
    if not len(fac):
        return
    names = {c.key: f"{c.name_zh} {c.name_en}" for c in audit.categories}
    fac = gpd.GeoDataFrame(
        {
            "name": [n if isinstance(n, str) and n else "(未命名 unnamed)" for n in fac["name"]],
            "kind": [names.get(c, c) for c in fac["category"]],
            "is_station": fac["category"] == STATION_KEY,
        },
        geometry=fac.geometry.representative_point().to_numpy(),
        crs=4326,
    ).drop_duplicates(subset=["name", "kind", "geometry"])
    other = fac[~fac["is_station"]]
    add_points(
        m,
        other,
        "#ffffff",
        radius=4,
        outline="#555555",
        weight=1.5,
        name="其他设施 Other facilities",
        tooltip_columns=["name", "kind"],
        aliases={"name": "设施 Facility", "kind": "类别 Category"},
    )
    add_points(
        m,
        fac[fac["is_station"]],
        "#ffffff",
        radius=7,
        outline="#1f1f1f",
        weight=3,
        name="综合服务站 Service stations",
        tooltip_columns=["name"],
        aliases={"name": "综合服务站 Service station"},
        fill_opacity=1.0,
    )


def _add_town(m: folium.Map, audit: VillageAudit) -> None:
    """The township centre."""
    to_wgs = Transformer.from_crs(audit.villages.crs, 4326, always_xy=True)
    lon, lat = to_wgs.transform(audit.town["x"], audit.town["y"])
    add_points(
        m,
        gpd.GeoDataFrame(
            {"name": [audit.town["name"] or _TOWN_NAME]}, geometry=gpd.points_from_xy([lon], [lat]), crs=4326
        ),
        "#762a83",
        radius=8,
        name=_TOWN_NAME,
        tooltip_columns=["name"],
        aliases={"name": _TOWN_NAME},
    )


def _add_stations(m: folium.Map, stations: StationPlan) -> int:
    """The proposed stations, labelled by rank; returns how many."""
    sites = stations.sites.to_crs(4326).assign(
        label=[
            f"{r}. {n or i}"
            for r, n, i in zip(
                stations.sites["rank"], stations.sites["name"], stations.sites["village_id"], strict=True
            )
        ]
    )
    add_points(
        m,
        sites,
        "#2166ac",
        radius=9,
        outline="#ffffff",
        weight=2,
        name="拟建站点 Proposed stations",
        tooltip_columns=["label", "villages_added"],
        aliases={"label": "拟建 Proposed", "villages_added": "新增覆盖村庄 Villages added"},
        fill_opacity=1.0,
    )
    add_labels(m, sites.assign(rank_label=[f"#{r}" for r in stations.sites["rank"]]), "rank_label")
    return len(sites)


def _legend(minutes: float, n_sites: int, has_town: bool) -> list[tuple]:
    legend = [
        (_COLOURS["inside"], _LABEL["inside"], "area"),
        (_COLOURS["within"], f"{_LABEL['within']} (≤ {minutes:g} 分钟 min)", "area"),
        (_COLOURS["not covered"], _LABEL["not covered"], "area"),
        ("#1f1f1f", "综合服务站 Service station", "ring"),
        ("#555555", "其他设施 Other facility", "ring"),
    ]
    if n_sites:
        legend.append(("#2166ac", f"拟建站点 Proposed station ({n_sites})"))
    if has_town:
        legend.append(("#762a83", _TOWN_NAME))
    legend.append(("#9a9a9a", "道路 Road", "line"))
    return legend
