"""Several categories sited together: nested levels, shared complexes, co-location.

One model places the facilities of several categories, of one level or of nested levels (a
15-minute health centre with the 10- and 5-minute facilities of its district), on a shared
set of candidate sites:

- a site may host several categories: a comprehensive service complex (综合服务设施 /
  邻里中心), which serves every category it hosts, as long as their floor areas together fit
  the site's space;
- ``max_sites`` bounds the number of sites (parcels) used, so one complex can beat separate
  sites;
- co-location: a category opens only where another is within ``colocation_distance_m``
  (the community health centre next to elderly care, 毗邻建设, 国办发〔2021〕56号 (十一)), a
  constraint the user switches on; an existing facility of the other category nearby counts;
- each category keeps its own target, capacity, minimum catchment and spacing
  (:class:`~planner.optimize.constrained.ConstrainedCoverage`).

:class:`DistrictModel` is the programme (HiGHS via :func:`scipy.optimize.milp`);
:func:`site_district` builds it on a region.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import optimize as sopt
from scipy import sparse

from planner._errors import InputError
from planner.optimize.constrained import ConstrainedCoverage, CoverageBlock


@dataclass
class CategoryPart:
    """One category of a district model.

    ``model`` is built on a cost matrix whose columns are the category's existing facilities
    (``n_existing``, fixed) then the shared candidates; ``floor_m2``: the space one facility
    takes on a site; ``max_new``: at most this many new facilities of the category (None: no
    limit but the sites')."""

    key: str
    model: ConstrainedCoverage
    n_existing: int
    floor_m2: float = 0.0
    max_new: int | None = None


@dataclass
class DistrictPlan:
    """The answer: per category the shared candidates it opens at and its covered weight."""

    sites: dict[str, np.ndarray]
    covered: dict[str, float]
    assignment: dict[str, np.ndarray]
    objective: float
    status: str
    seconds: float
    info: dict = field(default_factory=dict)

    @property
    def used_sites(self) -> np.ndarray:
        """Candidates hosting at least one new facility."""
        return np.unique(np.concatenate([s for s in self.sites.values()] or [np.zeros(0, np.int64)]))

    @property
    def complexes(self) -> dict[int, list[str]]:
        """Candidates hosting two or more categories → the categories they host."""
        hosts: dict[int, list[str]] = {}
        for key, s in self.sites.items():
            for j in s:
                hosts.setdefault(int(j), []).append(key)
        return {j: keys for j, keys in hosts.items() if len(keys) > 1}


class DistrictModel:
    """Several categories on shared candidate sites (see the module doc).

    Parameters
    ----------
    parts : list of CategoryPart
    site_space_m2 : array, optional
        Space of each shared candidate (``inf``: no limit); the hosted categories'
        ``floor_m2`` must fit in it.
    max_sites : int, optional
        At most this many candidate sites used.
    colocate : list of (str, str), optional
        ``(a, b)``: a new facility of ``a`` opens only with one of ``b`` within reach
        (``adjacent``), new or existing (``existing_near[b]``).
    adjacent : (m, m) bool array, optional
        Which candidates are next to which (a candidate is next to itself).
    existing_near : dict, optional
        Category → (m,) bool: candidates with an existing facility of it within reach.
    """

    def __init__(self, parts: list[CategoryPart], site_space_m2=None, max_sites: int | None = None,
                 colocate=(), adjacent=None, existing_near=None):
        if not parts:
            raise InputError("district siting: give at least one category")
        self.parts = parts
        self.m = parts[0].model.cost.shape[1] - parts[0].n_existing
        for part in parts:
            if part.model.cost.shape[1] - part.n_existing != self.m:
                raise InputError(f"{part.key}: every category needs the same candidate sites")
        self.space = np.full(self.m, np.inf) if site_space_m2 is None else np.asarray(site_space_m2, float)
        self.max_sites = max_sites
        keys = [p.key for p in parts]
        for a, b in colocate:
            if a not in keys:
                raise InputError(f"co-location: {a!r} is not among the categories sited ({', '.join(keys)})")
        self.colocate = list(colocate)
        self.adjacent = np.eye(self.m, dtype=bool) if adjacent is None else np.asarray(adjacent, bool)
        self.existing_near = existing_near or {}

    def solve(self, time_limit: float | None = None, gap: float = 1e-6) -> DistrictPlan:
        """Solve with HiGHS."""
        t0 = time.perf_counter()
        blocks = [p.model.block() for p in self.parts]
        sizes = [len(b.row) + len(b.new_cols) for b in blocks]
        start = np.concatenate([[0], np.cumsum(sizes)])
        n_var = int(start[-1]) + self.m
        s0 = int(start[-1])
        rows, lo, hi = [_pad(sparse.block_diag([b.A for b in blocks], format="csr"), n_var)], [], []
        lo += [np.concatenate([b.lo for b in blocks])]
        hi += [np.concatenate([b.hi for b in blocks])]
        xcol = {}  # category → (shared candidate → variable index)
        for part, b, st in zip(self.parts, blocks, start[:-1], strict=True):
            var = np.full(self.m, -1, np.int64)
            var[b.new_cols - part.n_existing] = st + len(b.row) + np.arange(len(b.new_cols))
            xcol[part.key] = var
            if part.max_new is not None and len(b.new_cols):
                rows.append(_row_of(var[var >= 0], np.ones((var >= 0).sum()), n_var))
                lo.append([0.0])
                hi.append([float(part.max_new)])
        self._site_rows(xcol, s0, n_var, rows, lo, hi)
        self._colocation_rows(xcol, n_var, rows, lo, hi)
        obj = np.zeros(n_var)
        for b, st in zip(blocks, start[:-1], strict=True):
            obj[st:st + len(b.row)] = -(b.weight - b.tie_cost)
        # A site is used only when it hosts something (a tiny cost on each).
        w_min = min((float(b.weight[b.weight > 0].min()) for b in blocks if (b.weight > 0).any()), default=1.0)
        obj[s0:] = 1e-5 * w_min
        options = {"mip_rel_gap": gap, "disp": False}
        if time_limit is not None:
            options["time_limit"] = float(time_limit)
        res = sopt.milp(obj, constraints=sopt.LinearConstraint(sparse.vstack(rows, format="csr"),
                                                               np.concatenate(lo), np.concatenate(hi)),
                        integrality=np.ones(n_var), bounds=sopt.Bounds(0, 1), options=options)
        if res.x is None:
            raise InputError(f"district siting: HiGHS found no solution ({res.message}); "
                             "loosen the constraints or give a longer --time-limit")
        return self._answer(np.round(res.x), blocks, start, xcol, res.status, t0)

    def _site_rows(self, xcol, s0, n_var, rows, lo, hi) -> None:
        """x ≤ s (a facility needs its site), the hosted floor areas within the site's space,
        and the number of sites."""
        for part in self.parts:
            var = xcol[part.key]
            j = np.flatnonzero(var >= 0)
            if len(j):
                rows.append(sparse.csr_matrix((np.r_[np.ones(len(j)), -np.ones(len(j))],
                                               (np.r_[np.arange(len(j)), np.arange(len(j))], np.r_[var[j], s0 + j])),
                                              shape=(len(j), n_var)))
                lo.append(np.full(len(j), -np.inf))
                hi.append(np.zeros(len(j)))
        finite = np.flatnonzero(np.isfinite(self.space))
        for j in finite:
            idx = [(xcol[p.key][j], p.floor_m2) for p in self.parts if xcol[p.key][j] >= 0 and p.floor_m2 > 0]
            if idx:
                rows.append(_row_of([i for i, _ in idx], [f for _, f in idx], n_var))
                lo.append([-np.inf])
                hi.append([float(self.space[j])])
        if self.max_sites is not None:
            rows.append(_row_of(s0 + np.arange(self.m), np.ones(self.m), n_var))
            lo.append([0.0])
            hi.append([float(self.max_sites)])

    def _colocation_rows(self, xcol, n_var, rows, lo, hi) -> None:
        """x_a[j] ≤ Σ x_b[j'] over j' next to j, unless an existing b is next to j."""
        for a, b in self.colocate:
            va = xcol[a]
            vb = xcol.get(b, np.full(self.m, -1, np.int64))
            near = np.asarray(self.existing_near.get(b, np.zeros(self.m, bool)), bool)
            for j in np.flatnonzero((va >= 0) & ~near):
                partners = vb[self.adjacent[j] & (vb >= 0)]
                rows.append(_row_of(np.r_[va[j], partners], np.r_[1.0, -np.ones(len(partners))], n_var))
                lo.append([-np.inf])
                hi.append([0.0])

    def _answer(self, xv, blocks: list[CoverageBlock], start, xcol, status_code, t0) -> DistrictPlan:
        sites, covered, assignment = {}, {}, {}
        for part, b, st in zip(self.parts, blocks, start[:-1], strict=True):
            var = xcol[part.key]
            sites[part.key] = np.flatnonzero((var >= 0) & (xv[np.maximum(var, 0)] > 0.5))
            used = np.flatnonzero(xv[st:st + len(b.row)] > 0.5)
            a = b.fixed_assignment.copy()
            a[b.row[used]] = b.col[used]
            assignment[part.key] = a
            covered[part.key] = float(part.model.weights[a >= 0].sum())
        return DistrictPlan(sites=sites, covered=covered, assignment=assignment, objective=sum(covered.values()),
                            status="optimal" if status_code == 0 else "feasible",
                            seconds=time.perf_counter() - t0)


def adjacency(xy: np.ndarray, distance_m: float) -> np.ndarray:
    """Which candidates are within ``distance_m`` of each other (straight line; each of
    itself), as an (m, m) bool array."""
    xy = np.asarray(xy, float)
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    return d <= distance_m


def existing_within(candidates_xy: np.ndarray, facilities: gpd.GeoDataFrame, distance_m: float) -> np.ndarray:
    """Candidates with one of ``facilities`` within ``distance_m`` (straight line to its outline)."""
    if len(facilities) == 0:
        return np.zeros(len(candidates_xy), bool)
    points = shapely.points(np.asarray(candidates_xy, float))
    tree = shapely.STRtree(facilities.geometry.to_numpy())
    hit = tree.query(points, predicate="dwithin", distance=distance_m)
    out = np.zeros(len(candidates_xy), bool)
    out[hit[0]] = True
    return out


def plan_table(plan: DistrictPlan, candidates: pd.DataFrame) -> pd.DataFrame:
    """One row per candidate used: ``candidate_id``, ``categories`` hosted (``;``-joined) and
    whether it is a complex (two or more)."""
    rows = []
    for j in plan.used_sites:
        hosted = [k for k, s in plan.sites.items() if j in s]
        rows.append({"candidate_id": candidates["candidate_id"].iloc[j], "categories": ";".join(hosted),
                     "complex": len(hosted) > 1})
    return pd.DataFrame(rows, columns=["candidate_id", "categories", "complex"])


def _row_of(cols, values, n_var) -> sparse.csr_matrix:
    cols = np.asarray(cols, np.int64)
    return sparse.csr_matrix((np.asarray(values, float), (np.zeros(len(cols), np.int64), cols)), shape=(1, n_var))


def _pad(a: sparse.csr_matrix, n_var: int) -> sparse.csr_matrix:
    a = sparse.csr_matrix(a)
    return sparse.hstack([a, sparse.csr_matrix((a.shape[0], n_var - a.shape[1]))], format="csr")
