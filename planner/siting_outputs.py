"""The outputs of ``planner site`` beyond its tables: the before/after coverage table and
the interactive site map (with its printable page).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from planner.siting import SitingResult


def coverage_before_after(homes: pd.DataFrame, minutes, elderly_time_factor: float = 1.0) -> pd.DataFrame:
    """Coverage shares before and after; the elderly at their slower walking speed, as in
    :func:`planner.life_circle.coverage_table`."""
    out = []
    for m in minutes:
        lim = 60.0 * m
        for when, col in (("before", "time_before_s"), ("after", "time_after_s")):
            t = np.nan_to_num(homes[col].to_numpy(float), nan=np.inf)
            inside = t <= lim
            row = {"minutes": m, "when": when}
            for g in ("population", "elderly", "children"):
                w = homes[g].to_numpy(float)
                mask = t * elderly_time_factor <= lim if g == "elderly" else inside
                row[f"{g}_share"] = float(w[mask].sum() / w.sum()) if w.sum() > 0 else 0.0
            row["homes_share"] = float(inside.mean()) if len(inside) else 0.0
            out.append(row)
    frame = pd.DataFrame(out)
    wide = frame.pivot(index="minutes", columns="when")
    wide.columns = [f"{a}_{b}" for a, b in wide.columns]
    order = ["minutes"]
    for g in ("population", "elderly", "children", "homes"):
        wide[f"{g}_share_change"] = wide[f"{g}_share_after"] - wide[f"{g}_share_before"]
        order += [f"{g}_share_before", f"{g}_share_after", f"{g}_share_change"]
    return wide.reset_index()[order]  # before → after → change, per group


#: Proposed sites' columns shown in the map's popups, where the result has them.
_PROPOSED_POPUP = (
    "rank",
    "candidate_id",
    "name",
    "uses",
    "capacity",
    "people_assigned",
    "population_newly_covered",
    "elderly_newly_covered",
    "homes_newly_covered",
)


def _homes_by_status(homes) -> tuple:
    """Homes in WGS 84 with ``status`` (covered before, newly covered, still outside), their
    minutes before and after and a colour; and the status array."""
    homes = homes.to_crs(4326)
    status = np.where(
        homes["covered_before"], "covered", np.where(homes["covered_after"], "newly", "outside")
    )
    colours = {"covered": "#1a9850", "newly": "#2c7bb6", "outside": "#d73027"}
    homes = homes.assign(
        status=status,
        minutes_before=(homes["time_before_s"] / 60).round(1),
        minutes_after=(homes["time_after_s"] / 60).round(1),
    )
    homes["colour"] = [colours[s] for s in status]
    return homes, status


def _add_proposed(m, prop, label: str) -> None:
    """The proposed sites (WGS 84) with their popups and rank labels."""
    from planner import maps

    if not len(prop):
        return
    shown = [c for c in _PROPOSED_POPUP if c in prop]
    if "uses" not in prop:
        shown.insert(2, "source")
    maps.add_points(
        m,
        prop[[*shown, "geometry"]],
        "#7b3294",
        radius=9,
        popup_columns=shown,
        name=f"建议新址 Proposed {label}",
    )
    maps.add_labels(m, prop.assign(rank_label=[f"#{r}" for r in prop["rank"]]), "rank_label")


def write_map(result: SitingResult, path: Path, chart: bytes | None = None) -> None:
    """Write the site map (homes by coverage, existing and proposed sites) to ``path``, and
    its printable page beside it; ``chart`` is an optional trade-off chart (PNG) to embed."""
    from planner import maps

    homes, status = _homes_by_status(result.homes)
    b = homes.total_bounds
    # Keep the data clear of the legend (bottom right) and the title (top), as the audit map.
    m = maps.base_map((b[0], b[1], b[2], b[3]), padding_top_left=(20, 80), padding_bottom_right=(200, 20))
    label = f"{result.category.name_zh} {result.category.name_en}"
    has_roads = maps.add_roads(m, result.roads)
    maps.add_points(
        m,
        homes[["home_id", "population", "status", "minutes_before", "minutes_after", "colour", "geometry"]],
        "colour",
        radius=4,
        popup_columns=["home_id", "population", "status", "minutes_before", "minutes_after"],
        name="住宅 Homes",
    )
    if len(result.existing):
        ex = result.existing.to_crs(4326).assign(geometry=lambda d: d.geometry.representative_point())
        maps.add_points(
            m,
            ex[["facility_id", "name", "geometry"]],
            "#444444",
            radius=7,
            popup_columns=["facility_id", "name"],
            name=f"现有设施 Existing {label}",
        )
    prop = result.proposed.to_crs(4326)
    _add_proposed(m, prop, label)
    maps.add_legend(
        m,
        f"{label}: {result.minutes:g} 分钟 min",
        [
            ("#1a9850", "已覆盖 Covered before"),
            ("#2c7bb6", "新增覆盖 Newly covered"),
            ("#d73027", "仍未覆盖 Still outside"),
            ("#444444", "现有设施 Existing"),
            ("#7b3294", "建议新址 Proposed"),
        ]
        + ([(maps.ROAD_COLOUR, "道路 Road", "line")] if has_roads else []),
    )
    model = {"pmedian": "p-median", "mclp": "MCLP 最大覆盖", "lscp": "LSCP 集合覆盖", "pcenter": "p-center"}[
        result.model
    ]
    maps.add_title(
        m,
        f"{result.region} — {label} 选址 siting",
        f"{model}: {len(prop)} 处建议新址 proposed sites, {len(result.existing)} 处现有 existing",
    )
    import folium

    if chart is not None:
        from planner.tradeoff import add_chart

        add_chart(m, chart)
    folium.LayerControl(collapsed=False).add_to(m)
    maps.save_map(m, path)
    from planner.maps.printable import print_site

    print_site(
        path.parent,
        f"{result.region} — {label} 选址 siting",
        homes,
        status,
        result.existing.to_crs(4326),
        prop,
        result.minutes,
        roads=result.roads,
        subtitle=f"{model}: {len(prop)} 处建议新址 proposed sites, {len(result.existing)} 处现有 existing",
    )
