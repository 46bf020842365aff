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


def target_isochrone(e: Engine, key: str) -> gpd.GeoDataFrame | None:
    """The area within the category's target circle, as ``planner audit`` draws it by default;
    a metre target on a walk network is its walking time (distance = time × speed there).
    None for a metre target on other modes."""
    c = e.by_key[key]
    if c.unit == "min":
        return isochrone_polygons(e.net, e.node_time[key], [c.minutes], category=key)
    if e.mode != "walk":
        return None
    reach_min = c.target_m / e.net.walk_speed_mps / 60.0
    part = isochrone_polygons(e.net, e.node_time[key], [reach_min], category=key)
    return part.assign(minutes=c.minutes, target_m=c.target_m)


def _isochrones(e: Engine) -> gpd.GeoDataFrame | None:
    parts = [target_isochrone(e, c.key) for c in e.categories]
    parts = [p for p in parts if p is not None and len(p)]
    return pd.concat(parts, ignore_index=True) if parts else None
