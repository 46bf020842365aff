"""What a villages run found: the audit (:class:`VillageAudit`) and the new stations
(:class:`StationPlan`), as a summary and as files."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import Transformer

from planner import settings
from planner._io import atomic_dir
from planner.categories import Category
from planner.network import Network

from .admin import admin_summary
from .hamlets import ATTACH_M, EDGE_M, LINK_M, MIN_CLUSTER_HOMES
from .indicator import BASELINE_SHARE_2020, INDICATOR_SOURCE
from .rural import STATION_KEY


@dataclass
class StationPlan:
    """New comprehensive service stations that bring the plan's indicator up to a target share.

    Attributes
    ----------
    sites : GeoDataFrame
        One row per new station (metric CRS, points at the hamlet centre where it serves
        most residents of its administrative village): ``rank``, ``admin_id``,
        ``admin_village``, ``village_id`` and ``name`` (the hamlet), ``residents`` (of the
        administrative village), ``residents_served`` (within the walk), ``villages_added`` (1).
    covered_before, covered_after : ndarray of bool
        Per administrative village: a facility in its territory.
    hamlets_covered_after : ndarray of bool
        Per hamlet: a station inside or within ``minutes`` once the new ones are built.
    """

    sites: gpd.GeoDataFrame
    covered_before: np.ndarray
    covered_after: np.ndarray
    target_share: float
    minutes: float
    mode: str
    model: str
    solver: str
    status: str
    gap: float
    seconds: float
    hamlets_covered_after: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def share_before(self) -> float:
        return float(self.covered_before.mean()) if len(self.covered_before) else 0.0

    @property
    def share_after(self) -> float:
        return float(self.covered_after.mean()) if len(self.covered_after) else 0.0

    def summary(self) -> dict:
        return {
            "new_stations": len(self.sites),
            "model": self.model,
            "solver": self.solver,
            "status": self.status,
            "gap": self.gap,
            "target_share": self.target_share,
            "share_before": self.share_before,
            "share_after": self.share_after,
            "villages_covered_after": int(self.covered_after.sum()),
            "minutes": self.minutes,
            "hamlets_within_walk_after": (
                int(self.hamlets_covered_after.sum()) if self.hamlets_covered_after is not None else None
            ),
            "mode": self.mode,
            "seconds": round(self.seconds, 3),
            "sites": [
                {
                    "rank": int(r.rank),
                    "admin_id": r.admin_id,
                    "admin_village": r.admin_village if isinstance(r.admin_village, str) else None,
                    "village_id": r.village_id if isinstance(r.village_id, str) else None,
                    "name": r.name if isinstance(r.name, str) else None,  # unnamed clusters
                    "residents": round(float(r.residents), 1),
                    "residents_served": round(float(r.residents_served), 1),
                    "villages_added": int(r.villages_added),
                }
                for r in self.sites.itertuples()
            ],
            "notes": list(self.notes),
        }


@dataclass
class VillageAudit:
    """What :func:`audit_villages` found, in the region's metric CRS.

    Attributes
    ----------
    villages : GeoDataFrame
        The hamlets: :func:`find_villages`' columns plus, per category key, ``<key>_time_s``
        (from the hamlet's centre, in the category's mode; NaN beyond
        ``settings.max_travel_time_s``), ``<key>_inside`` and ``<key>_within`` (inside, or
        within the category's minutes); ``has_service_station``, ``service_covered`` (a
        station inside or within the village-level walk), ``town_time_s`` and
        ``admin_index`` (row of ``admin``, -1 for none).
    admin : GeoDataFrame
        The administrative villages (:func:`planner.villages.admin.audit_admin_villages`):
        the unit of the plan's indicator.
    settlement : dict
        :meth:`planner.settlement.Settlement.summary` of the extract (rural or urban).
    facilities : GeoDataFrame
        ``facility_id``, ``category``, ``name``, geometry.
    indicators : DataFrame
        See :func:`coverage_indicators`.
    town : dict or None
        ``name``, ``source`` (place/townhall/user), ``osm_id``, ``x``, ``y``, ``mode``.
    """

    region: str
    villages: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    categories: list[Category]
    minutes: dict[str, float]
    modes: dict[str, str]
    confirmed: dict[str, bool]
    networks: dict[str, Network]
    town: dict | None
    indicators: pd.DataFrame
    target_share: float
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    admin: gpd.GeoDataFrame | None = None
    settlement: dict | None = None

    @property
    def share(self) -> float:
        """The plan's indicator: share of administrative villages with a comprehensive service
        facility in their territory (NaN when there is none)."""
        if self.admin is None or len(self.admin) == 0:
            return float("nan")
        return float(self.admin["has_facility"].mean())

    def summary(self, stations: StationPlan | None = None) -> dict:
        """The facts of the run as a JSON-ready dict (what ``summary.json`` holds)."""
        v = self.villages
        fac_counts = self.facilities["category"].value_counts().to_dict()
        admin = admin_summary(self.admin if self.admin is not None else pd.DataFrame(), v, self.target_share)
        in_hamlets = float(v["population"].sum())
        homes_source = v.attrs.get("population_source", "homes") == "homes"
        out = {
            "region": self.region,
            "crs": v.crs.to_string(),
            "settlement": self.settlement,
            "administrative_villages": len(admin["administrative_villages"]),
            "villages": len(v),
            "villages_by_source": {s: int(n) for s, n in v["source"].value_counts().items()},
            "homes": int(v["homes"].sum()),
            "homes_estimated": int(v["homes_estimated"].sum()),
            "homes_outside_villages": int(v.attrs.get("homes_outside", 0)),
            # Every home of the extract (as audit counts them), not only those in hamlets.
            "population": (
                in_hamlets + float(v.attrs.get("population_outside", 0.0)) if homes_source else in_hamlets
            ),
            "population_in_hamlets": in_hamlets,
            "population_source": v.attrs.get("population_source", "homes"),
            "indicator": self._indicator_summary(admin["indicator"]),
            "hamlets": dict(
                admin["hamlets"], minutes=self.minutes[STATION_KEY], mode=self.modes[STATION_KEY]
            ),
            "administrative_village_list": admin["administrative_villages"],
            "categories": {
                c.key: {
                    "name_zh": c.name_zh,
                    "name_en": c.name_en,
                    "level": c.level,
                    "mode": self.modes[c.key],
                    "target_minutes": self.minutes[c.key],
                    "confirmed": self.confirmed.get(c.key, True),
                }
                for c in self.categories
            },
            "facilities": {c.key: int(fac_counts.get(c.key, 0)) for c in self.categories},
            "categories_without_facilities": [
                c.key for c in self.categories if fac_counts.get(c.key, 0) == 0
            ],
            "town": self._town_summary(),
            "networks": {
                m: {"nodes": int(n.n_nodes), "edges": int(n.n_edges)} for m, n in self.networks.items()
            },
            "parameters": {
                "link_m": LINK_M,
                "min_cluster_homes": MIN_CLUSTER_HOMES,
                "edge_m": EDGE_M,
                "attach_m": ATTACH_M,
                "max_travel_time_s": settings.max_travel_time_s,
            },
            "seconds": {k: round(s, 3) for k, s in self.seconds.items()},
            "notes": list(self.notes),
        }
        if stations is not None:
            out["proposed_stations"] = stations.summary()
        return out

    def _indicator_summary(self, ind: dict) -> dict:
        """The plan's indicator (``ind`` from :func:`admin_summary`) with its target and source."""
        return {
            "name_zh": "农村社区综合服务设施覆盖率",
            "name_en": "Administrative villages with a comprehensive service facility in their territory",
            "share": ind["share"],
            "villages_with_facility": ind["villages_with_facility"],
            "villages": ind["villages"],
            "new_needed": ind["new_needed"],
            "target_share": self.target_share,
            "target_met": ind["target_met"],
            "baseline_share_2020": BASELINE_SHARE_2020,
            "unit": "administrative village (行政村)",
            "rule": "an administrative village counts when a comprehensive service facility (category "
            f"{STATION_KEY} of the rural categories file) stands inside its territory",
            "source": INDICATOR_SOURCE,
        }

    def _town_summary(self) -> dict | None:
        """The township centre in WGS84 lon/lat, with its name and source (None when not found)."""
        if self.town is None:
            return None
        to_wgs = Transformer.from_crs(self.villages.crs, 4326, always_xy=True)
        lon, lat = to_wgs.transform(self.town["x"], self.town["y"])
        return {k: self.town[k] for k in ("name", "source", "osm_id", "mode")} | {
            "lon": round(lon, 6),
            "lat": round(lat, 6),
        }

    def write(
        self,
        out_dir: str | Path,
        stations: StationPlan | None = None,
        map_html: bool = True,
        out_coords: str | None = None,
        excel: bool | None = None,
    ) -> Path:
        """Write ``villages.gpkg``, ``indicators.csv``, ``summary.json``, ``map.html`` and, with
        ``stations``, ``proposed_stations.gpkg``, atomically; ``out_coords`` (``gcj02``,
        ``bd09``): the GeoPackages' lon/lat (:func:`planner.coords.frame_for_output`); with
        ``excel``, ``villages.xlsx`` (:mod:`planner.tables`)."""
        from planner.coords import frame_for_output
        from planner.tables import write_tables

        started = time.perf_counter()
        with atomic_dir(out_dir) as tmp:
            villages = self._villages_out(stations)
            frame_for_output(villages, out_coords).to_file(
                tmp / "villages.gpkg", layer="villages", driver="GPKG"
            )
            centres = gpd.GeoDataFrame(
                villages.drop(columns="geometry"),
                geometry=gpd.points_from_xy(
                    self.villages["centre_x"], self.villages["centre_y"], crs=self.villages.crs
                ).to_crs(4326),
            )
            # One layer per GeoPackage, so a plain geopandas.read_file gives it with no warning.
            frame_for_output(centres, out_coords).to_file(
                tmp / "village_centres.gpkg", layer="village_centres", driver="GPKG"
            )
            if self.admin is not None and len(self.admin):
                admin = self.admin.drop(columns="population_given")
                if stations is not None:
                    admin["has_facility_after"] = stations.covered_after
                frame_for_output(admin, out_coords).to_file(
                    tmp / "administrative_villages.gpkg", layer="administrative_villages", driver="GPKG"
                )
            if len(self.facilities):
                points = self.facilities.to_crs(4326)
                points = points.assign(geometry=points.geometry.representative_point())
                frame_for_output(points, out_coords).to_file(
                    tmp / "village_facilities.gpkg", layer="facilities", driver="GPKG"
                )
            write_tables(
                tmp,
                {"indicators": self.indicators},
                excel=settings.excel if excel is None else excel,
                workbook="villages.xlsx",
            )
            if stations is not None and len(stations.sites):
                frame_for_output(stations.sites, out_coords).to_file(
                    tmp / "proposed_stations.gpkg", layer="proposed_stations", driver="GPKG"
                )
            if map_html:
                from planner.maps import save_map

                save_map(self.map(stations), tmp / "map.html")
                from .village_map import village_print

                village_print(self, tmp, stations)
            self.seconds["write"] = time.perf_counter() - started
            (tmp / "summary.json").write_text(
                json.dumps(self.summary(stations), ensure_ascii=False, indent=2), encoding="utf-8"
            )
        return Path(out_dir)

    def _villages_out(self, stations: StationPlan | None) -> gpd.GeoDataFrame:
        v = self.villages.drop(columns=["centre_x", "centre_y"]).copy()
        if stations is not None and stations.hamlets_covered_after is not None:
            v["covered_after"] = stations.hamlets_covered_after
        return v.to_crs(4326)

    def map(self, stations: StationPlan | None = None):
        """An offline folium map: villages coloured by coverage, facilities, proposed stations."""
        from .village_map import village_map

        return village_map(self, stations)
