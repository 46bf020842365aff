"""Estate review: check a planned estate against the rules of the Chinese standards.

A reviewer gives an estate plan (GeoJSON or GeoPackage: one ``estate`` polygon with its
households, and ``facility`` features with category and areas) and rule packs
(:mod:`planner.rules`); :func:`review` says per rule pass, fail, advice or not applicable,
with the value, the threshold, the shortfall and the clause. A rule's strength decides what a
shortfall means: ``mandatory`` (应/必须) and ``local`` rules fail the estate (exit 1),
``advisory`` (宜) rules give advice (exit 0). Levels nest: an estate carries every lower
level's facilities too, once per area of that level it holds (:mod:`planner.review.levels`).
:func:`run_review` does everything the ``planner review`` command does and writes
``review.json``, ``summary.json`` and a printable ``review.html`` atomically.

Service radii are measured along the walking network: streets from ``--osm`` (walls and
fences mapped in OSM cut them) plus the plan's own ``path`` lines. Dwellings are the plan's
``residential`` features, else OSM residential buildings inside the estate, else a regular
grid of points over the estate (:data:`DWELLING_GRID_M`). With no network at all, radii fall
back to straight lines, which never overstate distance: a fail is certain, a pass is
provisional, and the report says so.

The package's modules, one job each: :mod:`~planner.review.plan` reads and checks the plan,
:mod:`~planner.review.levels` nests the life-circle levels, :mod:`~planner.review.distances`
measures the walks, :mod:`~planner.review.evaluate` judges the rules,
:mod:`~planner.review.report` writes the outputs and :mod:`~planner.review.workflow` runs
them in order.
"""

from planner.review.distances import DWELLING_GRID_M
from planner.review.evaluate import RuleResult
from planner.review.levels import estate_level
from planner.review.plan import (
    MAX_FACILITY_DISTANCE_M,
    MAX_FLOOR_AREA_M2,
    MAX_HOUSEHOLDS,
    MAX_HOUSEHOLDS_PER_HA,
    MAX_LAND_AREA_M2,
    ROLES,
    Plan,
    read_plan,
)
from planner.review.report import write_report
from planner.review.workflow import DEFAULT_RULES, Review, load_packs, review, run_review

__all__ = [
    "DEFAULT_RULES",
    "DWELLING_GRID_M",
    "MAX_FACILITY_DISTANCE_M",
    "MAX_FLOOR_AREA_M2",
    "MAX_HOUSEHOLDS",
    "MAX_HOUSEHOLDS_PER_HA",
    "MAX_LAND_AREA_M2",
    "ROLES",
    "Plan",
    "Review",
    "RuleResult",
    "estate_level",
    "load_packs",
    "read_plan",
    "review",
    "run_review",
    "write_report",
]
