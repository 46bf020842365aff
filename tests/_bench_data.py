"""Readers for the published location instances in ``../shared/benchmarks`` (tests and bench).

Formats and gotchas are described in ``../shared/benchmarks/README.md``; the instances are
read in place, never copied into the repository.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial.distance import cdist

#: ``<repo>/../shared/benchmarks``
BENCHMARKS = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks"


def read_orlib_pmed(path: str | Path) -> tuple[np.ndarray, int]:
    """Shortest-path cost matrix (n × n) and p of an OR-Library ``pmedN.txt`` instance.

    An edge listed more than once (in either orientation) takes its LAST listed cost.
    """
    tokens = Path(path).read_text().split()
    n, m, p = (int(t) for t in tokens[:3])
    edges = np.array(tokens[3 : 3 + 3 * m], dtype=np.int64).reshape(m, 3)
    i, j = edges[:, 0] - 1, edges[:, 1] - 1
    a, b = np.minimum(i, j), np.maximum(i, j)
    key = a * n + b
    # Keep the last occurrence of each undirected edge.
    _, last_rev = np.unique(key[::-1], return_index=True)
    last = m - 1 - last_rev
    graph = sparse.coo_array((edges[last, 2].astype(float), (a[last], b[last])), shape=(n, n))
    dist = csgraph.shortest_path(graph.tocsr(), method="D", directed=False)
    return dist, p


def orlib_optima(name: str = "orlib-pmed/optima.txt") -> dict[str, float]:
    """``{"pmed1": 5819.0, ...}`` from ``optima.txt`` or ``kcenteropt.txt``."""
    out = {}
    for line in (BENCHMARKS / name).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out[parts[0]] = float(parts[1])
    return out


def read_sf() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """spopt's San Francisco instance: (tracts × stores network distance, POP2000, store names)."""
    folder = BENCHMARKS / "spopt-sf"
    long = pd.read_csv(folder / "SF_network_distance_candidateStore_16_censusTract_205_new.csv")
    demand = pd.read_csv(folder / "SF_demand_205_centroid_uniform_weight.csv")
    wide = long.pivot_table(index="DestinationName", columns="name", values="distance", aggfunc="first")
    stores = sorted(wide.columns, key=lambda s: int(s.split("_")[1]))
    # Tract order of the demand file (its NAME is the DestinationName of the long table).
    tracts = demand["NAME"].astype(str).str.strip()
    wide.index = wide.index.astype(str).str.strip()
    cost = wide.loc[tracts, stores].to_numpy(dtype=float)
    return cost, demand["POP2000"].to_numpy(dtype=float), stores


def read_sjc_mclp(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (metres) and demand of ``sjc-mclp/SJC{n}.txt``."""
    lines = (BENCHMARKS / "sjc-mclp" / f"SJC{n}.txt").read_text().splitlines()[1:]
    rows = [line.split() for line in lines if line.strip()]
    data = np.array([[float(v) for v in r[:3]] for r in rows])
    return data[:, :2], data[:, 2]


def sjc_distance(xy: np.ndarray) -> np.ndarray:
    """Euclidean distance matrix of SJC points (every point is demand and candidate)."""
    return cdist(xy, xy)


def read_sjc_cpmp() -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``sjc-cpmp/SJC1.dat``: (Euclidean cost, capacity, demand, p)."""
    lines = (BENCHMARKS / "sjc-cpmp" / "SJC1.dat").read_text().split("\n")
    n, p = (int(v) for v in lines[0].split()[:2])
    data = np.array([[float(v) for v in line.split()[:4]] for line in lines[1 : 1 + n]])
    xy, capacity, demand = data[:, :2], data[:, 2], data[:, 3]
    return cdist(xy, xy), capacity, demand, p
