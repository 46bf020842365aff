"""Defaults in one place. Change them here (``planner.settings.walk_speed_mps = 1.2``) or
with ``planner --config my.toml`` (top-level keys named as below).

Sources are named beside each value; "to confirm" follows ``../shared/standards``.
"""

from __future__ import annotations

# --- Travel speeds ------------------------------------------------------------------------
#: Adult walking speed. GB 50180-2018 cl. 3.0.4 equates the 15-minute circle with an
#: 800–1000 m walk (≈0.9–1.1 m/s); transport studies give 1.2–1.4 m/s. 1.1 m/s keeps
#: planner's minutes close to the standard's distances (15 min ≈ 990 m).
walk_speed_mps: float = 1.1
#: Older adults (60+): about 0.9–1.0 m/s in the gait literature (to confirm); the slower end.
elderly_walk_speed_mps: float = 0.9
#: Off-network legs (home → nearest node, gate → street) are walked straight at walking
#: speed times this detour factor (straight lines underestimate real paths).
off_network_detour: float = 1.2

#: Cycling/e-bike speed per OSM highway class, km/h. Cycling on China's roads: ~12–15 km/h
#: for bicycles, ~20 km/h for e-bikes; slower on tracks and paths.
bike_speed_kph: dict[str, float] = {
    "primary": 15,
    "secondary": 15,
    "tertiary": 15,
    "unclassified": 14,
    "residential": 14,
    "living_street": 10,
    "service": 12,
    "cycleway": 16,
    "track": 10,
    "path": 10,
    "footway": 8,
    "pedestrian": 8,
    "primary_link": 15,
    "secondary_link": 15,
    "tertiary_link": 15,
    "trunk": 15,
    "trunk_link": 15,
    "road": 12,
    "bridleway": 8,
    "steps": 2,
    "corridor": 5,
}
#: Driving speed per class, km/h, used when ``maxspeed`` is absent (urban free-flow
#: defaults in the spirit of osmnx's ``add_edge_speeds``; rural tracks slow).
drive_speed_kph: dict[str, float] = {
    "motorway": 90,
    "motorway_link": 50,
    "trunk": 70,
    "trunk_link": 40,
    "primary": 50,
    "primary_link": 35,
    "secondary": 40,
    "secondary_link": 30,
    "tertiary": 35,
    "tertiary_link": 25,
    "unclassified": 30,
    "residential": 25,
    "living_street": 10,
    "service": 15,
    "track": 15,
    "road": 25,
}

# --- Life-circle thresholds ------------------------------------------------------------------
#: Minutes reported by the audit (GB 50180-2018 levels: 5, 10, 15-minute circles).
minutes: tuple[int, ...] = (5, 10, 15)
#: Sweeps and cost matrices stop this many seconds past the largest threshold or target
#: asked: a question about 15-minute circles needs times up to 15 minutes, not the whole city
#: (a sweep's work grows with the area it covers, so with the square of its limit). One
#: minute keeps the near misses a planner reads as "at the standard" (a 15.5-minute walk) and
#: absorbs float noise at the threshold; homes farther have no time (NaN) and are reported
#: "beyond" the limit, not "unreachable". ``--full-times`` sweeps to max_travel_time_s.
sweep_margin_s: float = 60.0
#: How far sweeps go when full times are asked (``--full-times``): homes farther than that
#: have no time (NaN). 60 minutes walk is far past any life circle but keeps the report of
#: "how far". A threshold asked above it (``--minutes 90``) raises the limit of that run.
max_travel_time_s: float = 3600.0
#: Thresholds above this (``--minutes``, a category's ``minutes``) are refused as typos: a
#: day of travel is past any service standard.
max_threshold_minutes: float = 1440.0

#: Processes for per-category sweeps and isochrones on large networks (0 = one per CPU core;
#: 1 keeps the whole run in one process: no forked reader or printable maps either). Small
#: networks sweep in-process: forking costs more than it saves below this many node-sweeps.
sweep_workers: int = 0
parallel_min_node_sweeps: int = 2_000_000
#: Bytes of libosmium's OPL text read back at a time (planner.osm_text; the batch cut pass
#: reads its text in lines of about this much): memory holds a batch or two of text beside
#: the arrays built from them.
opl_batch_chars: int = 16_000_000
#: Temporary space a compressed extract's OPL text may take, per byte of the file (2.4-6.5 on
#: the bundled samples, 4 on a city), where it goes through a file (a process that cannot
#: fork, e.g. a Dask worker); an uncompressed XML file's is taken as its own size (at most
#: 0.6 of it on the shared extracts).
opl_space_factor: float = 10.0
#: Coordinates projected per thread at least (planner.osm_file.project_lonlat): fewer are
#: projected in one thread, where starting threads would cost more than it saves.
project_min_per_thread: int = 500_000
#: Sweeps contract chain nodes (shape points with two neighbours, ~80% of an OSM street
#: network) out of the graph when at least this share of nodes may be such; on a grid with
#: none the contraction would cost more than it saves.
contract_min_share: float = 0.2

# --- Homes and population ----------------------------------------------------------------------
#: Living floor area per person: 7th national census (2020), urban households' floor area per
#: person 36.52 m² (国家统计局《中国人口普查年鉴-2020》). Population = footprint × levels / this.
floor_area_per_person_m2: float = 36.52
#: Levels assumed when a building has no ``building:levels``: by ``building`` tag.
default_levels: dict[str, int] = {
    "apartments": 6,
    "residential": 6,
    "dormitory": 5,
    "house": 2,
    "detached": 2,
    "semidetached_house": 2,
    "terrace": 2,
    "farm": 2,
    "yes": 3,
}
#: Persons per household: 7th national census (2020) average household size 2.62.
persons_per_household: float = 2.62
#: Grid spacing for estimated homes where buildings are not mapped.
grid_spacing_m: float = 100.0
#: Residents per hectare of residential land for grid homes (an assumption; override it).
grid_density_per_ha: float = 150.0

# --- Rural population profile (乡村) ---------------------------------------------------------
#: Which profile homes are estimated with: "auto" (judged from the extract by
#: :func:`planner.settlement.judge_settlement`: rural when its village committees or village
#: boundaries outnumber residents' committees), "urban" (the values above) or "rural" (below).
#: audit, site and villages all use it, so one extract gives one population.
population_profile: str = "auto"
#: Rural households' housing floor area per person: 7th national census (2020), 乡村家庭户人均
#: 住房建筑面积 46.8 m² (《中国人口普查年鉴-2020》; to confirm against the yearbook table; the
#: urban 36.52 m² and national 41.76 m² of the same yearbook are confirmed).
rural_floor_area_per_person_m2: float = 46.8
#: Persons per rural family household: 7th national census (2020), 乡村家庭户平均规模 about 2.8
#: (《中国人口普查年鉴-2020》; to confirm; the national 2.62 is confirmed).
rural_persons_per_household: float = 2.8
#: Levels of a rural building with no ``building:levels``: farmhouses (自建房) of 2 storeys;
#: provincial rules cap new farmhouses at 3 (e.g. 浙江省农村住房建设管理办法; to confirm).
#: A generic ``building=yes|residential`` in a village is a farmhouse, not an apartment block.
rural_default_levels: dict[str, int] = {
    "apartments": 4,
    "residential": 2,
    "dormitory": 3,
    "house": 2,
    "detached": 2,
    "semidetached_house": 2,
    "terrace": 2,
    "farm": 2,
    "yes": 2,
}
#: Residents per hectare of village land for grid homes where farmhouses are not mapped: the
#: third national land survey's 村庄用地 (21.94 million ha, 2019) over the 7th census rural
#: population (509.79 million, 2020) is 23 per ha (both national figures; to confirm).
rural_grid_density_per_ha: float = 23.0

# --- Vulnerable groups -------------------------------------------------------------------------
#: 7th national census (2020) bulletin no. 5: 60+ = 18.70 %, 0–14 = 17.95 % of the population.
elderly_share: float = 0.1870
children_share: float = 0.1795
#: Second national sample survey on disability (2006): 6.34 % of the population.
disabled_share: float = 0.0634

# --- Siting priority weights (十四五 plan (十一): elderly, minors, disabled first) ----------------
#: Demand weight = population + Σ extra weight × group count (so an older person counts 1 + 1).
priority_weights: dict[str, float] = {"elderly": 1.0, "children": 1.0, "disabled": 1.0}

# --- Snapping and geometry ----------------------------------------------------------------------
#: A home farther than this from any network node is still snapped, but flagged.
max_snap_m: float = 500.0
#: Polygon facilities (parks, markets) are reached at network nodes within this distance
#: of their outline, not only at their centre.
polygon_access_m: float = 30.0
#: Gates and entrances farther than this from a compound's outline are not its gates.
gate_tolerance_m: float = 25.0
#: A community health centre and an elderly-care institution are "built next to each other"
#: (毗邻建设, 国办发〔2021〕56号 (十一)) when their outlines are within this straight distance.
#: The plan gives no distance: an assumption (across a lane, not across a block); override it.
colocation_distance_m: float = 50.0
#: planner serve: a new path's ends, a closed street and a new gate are taken at the street
#: node, street or compound wall within this distance of where the user clicked.
serve_snap_m: float = 50.0

# --- Siting with the standards (planner.sizing) -------------------------------------------------
#: Minimum spacing of two facilities of a kind = this × the category's target metres (unless
#: data/sizing.toml gives min_spacing_m). A planner's assumption, not a clause: a second
#: facility inside the first's service radius serves mostly the same homes.
min_spacing_factor: float = 1.0
#: Smallest catchment (residents) worth a new facility, by level: one area of the level below
#: at the low end of GB 50180-2018 table 3.0.4 (block 1,000 and ten-minute 15,000 residents read
#: there; five-minute 5,000 to confirm: planner.sizing.CATCHMENT_CLAUSES). Using them as a
#: minimum catchment is a planner's assumption (no clause says so); override it.
min_catchment_residents: dict[str, float] = {"block": 0.0, "5min": 1000.0, "10min": 5000.0, "15min": 15000.0}
#: Seconds for a p-center by the standards when --time-limit is not given: each threshold of
#: its bisection is a search over site sets, exact but without a bound on its branches; past
#: the limit the answer says "feasible" with its proven lower bound.
standards_pcenter_time_limit_s: float = 60.0
#: Isochrone polygons: buffer around reachable street segments.
isochrone_buffer_m: float = 40.0
#: Isochrones are drawn on a raster of this cell size (planner.isochrones): a cell is in when
#: its centre is within the buffer of a reached segment, and outlines are simplified by half a
#: cell, so they stay within about 1.2 cells of the exact buffer (18 m at 15 m cells; the sample
#: regions' isochrones are within 0.8 % of the exact area), at half the cells of 10 m.
isochrone_cell_m: float = 15.0

# --- Outputs ---------------------------------------------------------------------------------------
#: Show progress bars (tqdm) on long steps.
progress: bool = True
#: Base tiles for maps (``--tiles``): an XYZ URL template such as
#: "https://t0.tianditu.gov.cn/vec_w/wmts?...&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=KEY" or an
#: intranet server's "http://tiles.example/{z}/{x}/{y}.png"; "OpenStreetMap" for OSM's tiles
#: in map.html. None keeps every map offline (no tiles are fetched).
map_tiles: str | None = None
#: Homes above which map.html is drawn for a whole city: each category's homes as one image
#: of map_home_cell_m cells (the worst time band in each) instead of a marker per home,
#: isochrones simplified by map_city_simplify_m, roads as an image, facilities without names; so the
#: file stays tens of MB and opens in seconds. homes.gpkg keeps every home.
map_detail_max_homes: int = 20_000
#: Cell side (m) of the homes' image on a city's map (larger if the image would be too big).
map_home_cell_m: float = 50.0
#: Douglas–Peucker tolerance (m) of isochrones on a city's map (a city is seen whole at zoom
#: 10-11, where a screen pixel is 100 m or more).
map_city_simplify_m: float = 30.0
#: Paper of the printable maps map.png and map.pdf (``--paper``): "a4" or "a3", landscape.
map_paper: str = "a4"
#: Write the printable maps map.png and map.pdf beside map.html (``planner batch`` turns this
#: off in its regions unless ``--printable``: drawing them costs more than a small region's audit).
map_printable: bool = True
#: ``planner batch``: neighbouring regions cut from one extract share one audit while the
#: street-way nodes of their union, as the cut pass counts them (2.4 per walk-network node
#: in the tiled city), stay at most this, so that a group's audit fits a worker's memory:
#: about 1.1 GB at its peak (docs/batch.md, Shared audits). 0 audits every region alone.
batch_share_max_nodes: int = 300_000
#: Write an Excel workbook (.xlsx) beside the CSVs (``--excel``; planner/tables.py).
excel: bool = False
#: Show the solver's own log (HiGHS) on the console (``-v/--verbose``).
solver_log: bool = False


#: Numeric settings with bounds other than "positive": (lowest, highest), inclusive; None = open.
_BOUNDS = {
    "elderly_share": (0.0, 1.0),
    "children_share": (0.0, 1.0),
    "disabled_share": (0.0, 1.0),
    "contract_min_share": (0.0, 1.0),
    "off_network_detour": (1.0, None),
    "sweep_workers": (0, None),
    "parallel_min_node_sweeps": (0, None),
    "opl_batch_chars": (1, None),
    "opl_space_factor": (0.0, None),
    "project_min_per_thread": (1, None),
    "batch_share_max_nodes": (0, None),
    "polygon_access_m": (0.0, None),
    "sweep_margin_s": (0.0, None),
    "gate_tolerance_m": (0.0, None),
    "priority_weights": (0.0, None),
    "grid_spacing_m": (10.0, None),
    "min_catchment_residents": (0.0, None),
}
#: Text settings with a fixed set of values.
_CHOICES = {"population_profile": ("auto", "urban", "rural"), "map_paper": ("a4", "a3")}


def update(values: dict) -> None:
    """Override defaults from a mapping, e.g. a parsed ``--config`` TOML file.

    Every value is checked against the setting's type and range before any is applied; a
    table (``bike_speed_kph = {primary = 18}``) updates the entries it names.

    Raises
    ------
    InputError
        Naming the key, the value and what it should be.
    """
    g = globals()
    checked = {}
    for key, value in values.items():
        if key.startswith("_") or key not in __annotations__:
            raise _error(
                f"unknown setting {key!r}; the settings are the names in planner/settings.py, "
                "e.g. walk_speed_mps = 1.2"
            )
        checked[key] = _checked(key, value, g[key])
    limit = checked.get("max_threshold_minutes", max_threshold_minutes)
    if max(checked.get("minutes", minutes)) > limit:
        raise _error(
            f"minutes {list(checked.get('minutes', minutes))} go past max_threshold_minutes = {limit:g}; "
            "raise max_threshold_minutes or give smaller minutes"
        )
    g.update(checked)


def _error(text: str):
    import re

    from planner._errors import InputError

    # Keys of a config table are the user's text: a newline in one must not break the one line.
    text = re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], text)
    return InputError(f"config: {text}")


def _checked(key: str, value, current):
    """``value`` converted to the type of the setting's ``current`` value, or InputError."""
    import math
    import numbers

    def number(name: str, v, integral: bool):
        ok = isinstance(v, numbers.Integral if integral else numbers.Real) and not isinstance(v, bool)
        if not ok or not math.isfinite(v):
            kind = "a whole number" if integral else "a finite number"
            raise _error(f"{name} = {v!r} must be {kind}")
        low, high = _BOUNDS.get(key, (None, None))
        if (low is None and not v > 0) or (low is not None and v < low) or (high is not None and v > high):
            where = (
                "positive"
                if low is None
                else f"at least {low:g}" + (f" and at most {high:g}" if high is not None else "")
            )
            raise _error(f"{name} = {v!r} must be {where}")
        return int(v) if integral else float(v)

    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise _error(f"{key} = {value!r} must be true or false")
        return value
    if isinstance(current, (int, float)):
        return number(key, value, isinstance(current, int))
    if isinstance(current, dict):
        if not isinstance(value, dict):
            raise _error(
                f"{key} = {value!r} must be a table, e.g. {key} = {{{next(iter(current))} = "
                f"{next(iter(current.values()))}}}"
            )
        if key == "priority_weights" and set(value) - set(current):
            raise _error(f"{key}: unknown group {min(set(value) - set(current))!r}; use {', '.join(current)}")
        integral = all(isinstance(v, int) for v in current.values())
        return {**current, **{str(k): number(f"{key}.{k}", v, integral) for k, v in value.items()}}
    if isinstance(current, tuple):
        if not isinstance(value, list) or not value:
            raise _error(f"{key} = {value!r} must be a list of whole minutes, e.g. [5, 10, 15]")
        return tuple(number(key, v, True) for v in value)  # their bound: max_threshold_minutes, in update()
    if not isinstance(value, str) or not value.strip():
        raise _error(f"{key} = {value!r} must be a text value")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise _error(f"{key} = {value!r}: use one of {', '.join(_CHOICES[key])}")
    return value
