"""Batch runs over many regions on Dask ``distributed``: a laptop or a cluster, one argument apart.

A regions file lists one region per row: a ``name`` and either its own OSM extract (``osm``)
or a boundary polygon (GeoPackage geometry, or a CSV ``wkt`` column in WGS84) cut from one
large extract given once (``osm=`` / ``--osm province.osm.pbf``). Each region is loaded with a
buffer of the largest threshold's reach (:func:`planner.sources.reach_m`) and audited with
``boundary=``, so homes near the boundary still reach facilities just across it while only
homes inside count — exactly what ``planner audit --boundary`` does for one region.

Work split
    One task per region, or per group of neighbouring regions cut from one extract with the
    same options: the group is audited once and split per region (:mod:`planner.batch.shared`;
    times and coverage within the thresholds as each region alone; ``share=False`` for one
    audit per region). Inside a large region the per-category sweeps run as tasks of their
    own on the shared network arrays (:func:`dask_sweeper`), which are scattered to the cluster
    once, not pickled per sweep.
Outputs
    ``DIR/regions/<name>/`` holds what the single-region command writes, moved into place
    only when complete; ``DIR/indicators.csv`` rolls coverage up per region and for the whole
    set; ``DIR/map.html`` colours regions by one indicator; ``DIR/failures.csv`` lists the
    regions that failed with their one-line error; ``DIR/summary.json`` has counts, seconds,
    workers and peak memory per worker.
Faults
    A region with bad input fails alone; tasks of a worker that dies are rescheduled by Dask
    (and raised errors retried ``retries`` times). A region that fails keeps the folder an
    earlier run wrote for it. ``resume=True`` continues the run recorded in ``summary.json``
    (written when a run starts, completed when it ends): it refuses other options than that
    run's and skips the regions that run finished. Leftovers of killed workers
    (``.<name>.partial-…``) are removed by the next run once their process is gone.

    >>> from planner.batch import run_batch
    >>> run_batch("counties.gpkg", osm="zhejiang.osm.pbf", out_dir="out/zj",
    ...           task_options={"categories": "kindergarten,clinic,market"})     # doctest: +SKIP
"""

from planner.batch.cluster import dask_sweeper, min_worker_memory_bytes
from planner.batch.extracts import cut_extracts, cut_min_bytes, task_reach_m
from planner.batch.regions import ALL_REGIONS, RegionSpec, read_regions
from planner.batch.rollup import batch_map, indicators_table, parse_indicator, region_indicators
from planner.batch.run import run_batch
from planner.batch.tasks import TASKS, check_options, run_audit_region, task_function

__all__ = [
    "ALL_REGIONS",
    "TASKS",
    "RegionSpec",
    "batch_map",
    "check_options",
    "cut_extracts",
    "cut_min_bytes",
    "dask_sweeper",
    "indicators_table",
    "min_worker_memory_bytes",
    "parse_indicator",
    "read_regions",
    "region_indicators",
    "run_audit_region",
    "run_batch",
    "task_function",
    "task_reach_m",
]
