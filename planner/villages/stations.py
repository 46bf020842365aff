"""New comprehensive service stations: the fewest that bring the plan's indicator to its target."""

from __future__ import annotations

import time

import geopandas as gpd
import numpy as np
import shapely

from planner._errors import InputError
from planner.network import cost_matrix

from .admin import admin_indicator, place_stations
from .indicator import check_share
from .result import StationPlan, VillageAudit
from .rural import STATION_KEY


def propose_stations(
    result: VillageAudit,
    target_share: float | None = None,
    minutes: float | None = None,
) -> StationPlan:
    """The fewest new comprehensive service stations that bring the plan's indicator to
    ``target_share``, each where it serves most residents of its administrative village.

    The indicator counts administrative villages with a facility in their territory, so each
    new station adds exactly one village: the fewest is ``ceil(target × villages) − with``,
    chosen among the villages without one, those with most residents first. Inside its
    village a station goes to the hamlet centre whose walk of ``minutes`` (the station's
    own, 10 by default) reaches most of the village's residents
    (:func:`planner.villages.admin.place_stations`; hamlets with no population are not demand).

    Returns
    -------
    StationPlan
        Empty ``sites`` when the indicator already meets the target (or there is no
        administrative village).
    """
    started = time.perf_counter()
    share = result.target_share if target_share is None else target_share
    check_share(share)
    mode = result.modes[STATION_KEY]
    mins = float(minutes) if minutes is not None else result.minutes[STATION_KEY]
    if not (np.isfinite(mins) and mins > 0):
        raise InputError(f"minutes={minutes!r}: give a positive number of minutes")
    admin = result.admin if result.admin is not None else gpd.GeoDataFrame()
    before = admin["has_facility"].to_numpy(bool) if len(admin) else np.zeros(0, bool)
    ind = admin_indicator(admin, share) if len(admin) else {"new_needed": 0}
    net = result.networks[mode]
    placed = (
        place_stations(admin, result.villages, net, mins * 60.0, ind["new_needed"]) if len(admin) else None
    )
    after = before.copy()
    hamlets_after = result.villages["service_covered"].to_numpy(bool).copy()
    if placed is not None and len(placed.sites):
        after[placed.chosen] = True
        xy = result.villages[["centre_x", "centre_y"]].to_numpy(float)
        site_xy = shapely.get_coordinates(placed.sites.geometry.to_numpy())
        cost = cost_matrix(net, xy, site_xy, cutoff=mins * 60.0)
        hamlets_after |= np.asarray(cost.getnnz(axis=1) > 0).ravel()
        at_site = result.villages["village_id"].isin(placed.sites["village_id"].dropna()).to_numpy()
        hamlets_after[at_site] = True
    sites = (
        placed.sites
        if placed is not None
        else gpd.GeoDataFrame(
            {
                "rank": [],
                "admin_id": [],
                "admin_village": [],
                "village_id": [],
                "name": [],
                "residents": [],
                "residents_served": [],
                "villages_added": [],
            },
            geometry=gpd.GeoSeries([], crs=result.villages.crs),
        )
    )
    status = "no administrative villages" if not len(admin) else "optimal" if len(sites) else "target met"
    return StationPlan(
        sites=sites,
        covered_before=before,
        covered_after=after,
        target_share=share,
        minutes=mins,
        mode=mode,
        model="one station per administrative village without one",
        solver="ranking by residents",
        status=status,
        gap=0.0,
        seconds=time.perf_counter() - started,
        hamlets_covered_after=hamlets_after,
        notes=placed.notes if placed is not None else [],
    )
