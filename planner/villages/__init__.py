"""Rural life circles: hamlets and administrative villages, their services, the plan's indicator.

The 十四五 urban–rural community service plan (国办发〔2021〕56号) counts administrative villages
(行政村): 80 % of them should have a comprehensive service facility by 2025 (65.7 % in 2020).
This package

* finds the hamlets (自然村) in OSM (:func:`find_villages`, ``hamlets``): ``place=village|hamlet``
  nodes, named ``landuse=residential`` areas, village committees (村委会), and clusters of
  buildings where none of those is mapped, each with its homes and population (from buildings
  via :mod:`planner.demand` with the extract's rural or urban profile, or a population raster);
  on an urban extract (:mod:`planner.settlement`) only places and committees count;
* measures, per hamlet, which rural facility categories (``data/rural_categories.toml``,
  ``rural``: the village and township levels of TD/T 1062-2021) it has inside and within their
  target minutes, each level in its own travel mode, and the time to the township centre;
  groups the hamlets under their administrative villages (``admin``) and counts those with a
  comprehensive service facility (:func:`audit_villages`, ``audit``; the indicator table in
  ``indicator``);
* proposes the fewest new stations that reach the target, one per administrative village
  without one, where it serves most of its residents (:func:`propose_stations`, ``stations``);
* writes it all (:func:`run_villages`, ``run``; the results and their files in ``result``, the
  map in ``village_map``).

Everything is measured in the region's metric CRS; outputs are WGS84.
"""

from .audit import audit_villages
from .hamlets import (
    ATTACH_M,
    CLUSTER_BUFFER_M,
    EDGE_M,
    LINK_M,
    MIN_CLUSTER_HOMES,
    PLACE_RADIUS_M,
    NoVillagesError,
    find_villages,
)
from .indicator import (
    BASELINE_SHARE_2020,
    INDICATOR_COLUMNS,
    INDICATOR_SOURCE,
    TARGET_SHARE,
    coverage_indicators,
)
from .result import StationPlan, VillageAudit
from .run import run_villages
from .rural import RURAL_CATEGORIES_FILE, STATION_KEY, load_rural_categories
from .stations import propose_stations

__all__ = [
    "ATTACH_M",
    "BASELINE_SHARE_2020",
    "CLUSTER_BUFFER_M",
    "EDGE_M",
    "INDICATOR_COLUMNS",
    "INDICATOR_SOURCE",
    "LINK_M",
    "MIN_CLUSTER_HOMES",
    "PLACE_RADIUS_M",
    "RURAL_CATEGORIES_FILE",
    "STATION_KEY",
    "TARGET_SHARE",
    "NoVillagesError",
    "StationPlan",
    "VillageAudit",
    "audit_villages",
    "coverage_indicators",
    "find_villages",
    "load_rural_categories",
    "propose_stations",
    "run_villages",
]
