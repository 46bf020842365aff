"""planner.batch.cluster: a large region's per-category sweeps run as tasks on the cluster."""

from __future__ import annotations

import json

from planner import batch, settings
from planner.cli import main

from .helpers import (
    FEW,
    SAMPLES,
    assert_same_region,
    regions_csv,
)


def test_large_regions_sweep_categories_as_tasks_on_the_cluster(client, tmp_path):
    from distributed import get_task_stream

    settings.parallel_min_node_sweeps = 0  # reaches the workers with the batch's settings
    regions = regions_csv(
        tmp_path / "r.csv", [{"name": "cau", "osm": str(SAMPLES / "beijing_haidian_cau.osm.pbf")}]
    )
    with get_task_stream(client) as stream:
        batch.run_batch(
            regions,
            out_dir=tmp_path / "batch",
            scheduler=client,
            progress=False,
            task_options={"categories": FEW, "map_html": False},
        )
    sweeps = [t for t in stream.data if str(t["key"]).startswith("_sweep_task")]
    assert len(sweeps) == len(FEW.split(","))
    settings.parallel_min_node_sweeps = 2_000_000
    assert (
        main(
            [
                "audit",
                "--osm",
                str(SAMPLES / "beijing_haidian_cau.osm.pbf"),
                "--categories",
                FEW,
                "--no-map",
                "--out",
                str(tmp_path / "single" / "cau"),
            ]
        )
        == 0
    )
    single = tmp_path / "single" / "cau"
    s = json.loads((single / "summary.json").read_text(encoding="utf-8"))
    (single / "summary.json").write_text(json.dumps({**s, "region": "cau"}), encoding="utf-8")
    assert_same_region(single, tmp_path / "batch" / "regions" / "cau")
