"""A ``planner serve`` scenario as an :class:`~planner.audit.AuditResult`, so it is written by
the audit's own writer (homes.gpkg, facilities.gpkg, isochrones.gpkg, coverage.csv,
summary.json, map.html, map.png, map.pdf) and everything else in planner reads it."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from planner.audit import AuditResult, isochrone_polygons
from planner.life_circle import co_location
from planner.serve.engine import Engine


def audit_result(engine: Engine, scenario: str) -> AuditResult:
    """The engine's current scenario as an audit's result (isochrones of each target circle)."""
    e = engine
    facilities = e.current_facilities()
    counts = facilities["category"].value_counts()
    missing = [c.key for c in e.categories if counts.get(c.key, 0) == 0]
    notes = [f"scenario {scenario} of planner serve: {len(e.edits)} edits to the region"]
    if missing:
        notes.append(
            "no facility mapped for: "
            + ", ".join(missing)
            + " (their coverage is 0; add them with --facilities FILE)"
        )
    result = AuditResult(
        region=f"{e.region.name} — {scenario}",
        network=e.net,
        categories=e.categories,
        minutes=e.minutes,
        homes=e.homes.copy(),
        facilities=facilities,
        coverage=e.coverage,
        isochrones=_isochrones(e),
        node_time_s=dict(e.node_time),
        compounds=dict(e.compound_info),
        notes=notes,
        node_dist_m=e.node_dist_m(),
        co_location=co_location(facilities),
    )
    if hasattr(result, "sweep_limit_s"):  # where the sweeps stopped, when the audit reports it
        result.sweep_limit_s = e.limit_s
    return result


def _isochrones(e: Engine) -> gpd.GeoDataFrame | None:
    """Each category's target circle, as ``planner audit`` draws it by default; a metre
    target on a walk network is its walking time (distance = time × speed there)."""
    parts = []
    for c in e.categories:
        if c.unit == "min":
            parts.append(isochrone_polygons(e.net, e.node_time[c.key], [c.minutes], category=c.key))
        elif e.mode == "walk":
            reach_min = c.target_m / e.net.walk_speed_mps / 60.0
            part = isochrone_polygons(e.net, e.node_time[c.key], [reach_min], category=c.key)
            parts.append(part.assign(minutes=c.minutes, target_m=c.target_m))
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else None
