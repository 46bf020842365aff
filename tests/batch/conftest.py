"""The Dask LocalCluster of 2 workers the batch tests share (started once for tests/batch)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="package")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit="3GiB",
        dashboard_address=":0",
        silence_logs=40,
    )
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()
