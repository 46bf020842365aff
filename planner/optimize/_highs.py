"""HiGHS (``highspy``) wrappers: a model passed as arrays, run in any thread, decoded."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import threading
from typing import TYPE_CHECKING, NamedTuple

import highspy
import numpy as np
from scipy import sparse

from planner import settings
from planner.optimize import _tuning

if TYPE_CHECKING:
    from planner.optimize.instance import Instance


_banner_lock = threading.Lock()
_banner_shown = False


def _new_highs() -> highspy.Highs:
    """A ``highspy.Highs``; unless ``settings.solver_log`` (``-v``), with the copyright banner
    HiGHS prints on stdout at its first construction in a process silenced: it is printed
    by the C++ constructor, before any option can turn output off."""
    global _banner_shown
    if settings.solver_log or _banner_shown:
        return highspy.Highs()
    with _banner_lock:
        if _banner_shown:
            return highspy.Highs()
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 1)
            try:
                h = highspy.Highs()
            finally:
                os.dup2(saved, 1)
        finally:
            os.close(saved)
        _banner_shown = True
        return h


@dataclasses.dataclass
class MilpResult:
    status: str  # "optimal", "time limit", "infeasible"
    x: np.ndarray | None
    objective: float
    bound: float
    row_dual: np.ndarray | None = None  # linear programmes only


def solve_milp(
    cost: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
    row_lb: np.ndarray,
    row_ub: np.ndarray,
    col_lb: np.ndarray,
    col_ub: np.ndarray,
    integer: np.ndarray,
    **kwargs,
) -> MilpResult:
    """Solve ``min/max cost·x, row_lb <= A x <= row_ub, col_lb <= x <= col_ub`` with HiGHS
    (keywords: see :class:`HighsRun`)."""
    a = sparse.csc_array((vals, (rows, cols)), shape=(len(row_lb), len(cost)))
    a.sum_duplicates()
    run = HighsRun(cost, a, row_lb, row_ub, col_lb, col_ub, integer, **kwargs)
    run.run()
    return run.result()


class Compressed(NamedTuple):
    """A CSC or CSR matrix built in the right form by the caller, for :class:`HighsRun`
    without scipy's format checks (a tenth of a small LP's build)."""

    format: str  # "csc" or "csr"
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    @property
    def nnz(self) -> int:
        return len(self.data)


class HighsRun:
    """A HiGHS model, passed and ready: :meth:`run` may go to another thread (it releases
    the GIL), :meth:`result` decodes.

    ``a`` is the constraint matrix, CSC or CSR (scipy's or :class:`Compressed`).
    ``cutoff`` (minimisation): only solutions cheaper than it are wanted (a known
    incumbent's cost); HiGHS prunes every node that cannot beat it, and reports
    "infeasible" when nothing does. ``options``: further HiGHS options by name.
    """

    def __init__(
        self,
        cost: np.ndarray,
        a: sparse.csc_array | sparse.csr_array | Compressed,
        row_lb: np.ndarray,
        row_ub: np.ndarray,
        col_lb: np.ndarray,
        col_ub: np.ndarray,
        integer: np.ndarray,
        *,
        maximize: bool = False,
        time_limit: float | None = None,
        gap: float = 1e-4,
        start: np.ndarray | None = None,
        relax: bool = False,
        cutoff: float | None = None,
        options: dict | None = None,
    ):
        n_col, n_row = len(cost), len(row_lb)
        self.is_mip = is_mip = bool(np.any(integer)) and not relax
        # The array form of passModel: HighsLp's vector fields copy element by element,
        # which on small LPs takes longer than HiGHS needs to solve them.
        kinds = np.asarray(integer, dtype=np.int32) if is_mip else np.zeros(n_col, dtype=np.int32)
        fmt = highspy.MatrixFormat.kRowwise if a.format == "csr" else highspy.MatrixFormat.kColwise
        model = (
            n_col,
            n_row,
            a.nnz,
            int(fmt),
            int(highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize),
            0.0,
            *(np.ascontiguousarray(v, dtype=float) for v in (cost, col_lb, col_ub, row_lb, row_ub)),
            a.indptr.astype(np.int32),
            a.indices.astype(np.int32),
            np.ascontiguousarray(a.data, dtype=float),
            kinds,
        )
        self.h = h = _new_highs()
        # highspy's Python callback hook calls into Python (taking the GIL) during a run even
        # with no callback subscribed: on a thread beside busy Python code each call waits
        # for the interpreter's switch interval, which multiplies a short LP's time.
        h.disableCallbacks()
        h.setOptionValue("output_flag", bool(settings.solver_log))  # the solver's log only with -v
        h.setOptionValue("mip_rel_gap", float(gap))
        h.setOptionValue("mip_abs_gap", 1e-9)
        if time_limit is not None:
            h.setOptionValue("time_limit", max(float(time_limit), 0.01))
        if not is_mip and n_col * n_row <= _tuning.LP_NO_PRESOLVE_MAX_CELLS:
            h.setOptionValue("presolve", "off")  # on small LPs presolve costs more than it saves
        if cutoff is not None and is_mip and not maximize:
            h.setOptionValue("objective_bound", float(cutoff))
        for key, value in (options or {}).items():  # HiGHS options of one model's kind
            h.setOptionValue(key, value)
        h.passModel(*model)
        if start is not None and is_mip:
            sol = highspy.HighsSolution()
            sol.col_value = np.asarray(start, dtype=float)
            sol.value_valid = True
            h.setSolution(sol)

    def run(self) -> None:
        self.h.run()

    def result(self) -> MilpResult:
        h = self.h
        status = h.getModelStatus()
        info = h.getInfo()
        ms = highspy.HighsModelStatus
        if status == ms.kInfeasible:
            return MilpResult("infeasible", None, math.nan, math.nan)
        has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
        solution = h.getSolution() if has_solution else None
        x = np.asarray(solution.col_value) if has_solution else None
        obj = info.objective_function_value if has_solution else math.nan
        if status == ms.kOptimal:
            if self.is_mip:
                return MilpResult("optimal", x, obj, info.mip_dual_bound)
            return MilpResult("optimal", x, obj, obj, np.asarray(solution.row_dual))
        if status in (ms.kTimeLimit, ms.kInterrupt, ms.kIterationLimit, ms.kSolutionLimit):
            bound = info.mip_dual_bound if self.is_mip else math.nan
            return MilpResult("time limit", x, obj, bound)
        raise RuntimeError(f"HiGHS stopped with status {h.modelStatusToString(status)}")


class Lp:
    """Accumulates a sparse linear programme row by row (triplets), then hands it to HiGHS."""

    def __init__(self, n_col: int):
        self.n_col = n_col
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lb: list[np.ndarray] = []
        self.ub: list[np.ndarray] = []
        self.n_row = 0

    def add(self, rows, cols, vals, lb, ub) -> None:
        """Add ``len(lb)`` rows; ``rows`` are local row numbers 0..len(lb)-1."""
        lb = np.atleast_1d(np.asarray(lb, dtype=float))
        ub = np.broadcast_to(np.asarray(ub, dtype=float), lb.shape)
        self.rows.append(np.asarray(rows, dtype=np.int64) + self.n_row)
        self.cols.append(np.asarray(cols, dtype=np.int64))
        self.vals.append(np.broadcast_to(np.asarray(vals, dtype=float), np.shape(rows)))
        self.lb.append(lb)
        self.ub.append(np.array(ub))
        self.n_row += len(lb)

    def solve(self, cost, col_lb, col_ub, integer, **kwargs) -> MilpResult:
        def cat(parts, dt):
            return np.concatenate(parts).astype(dt) if parts else np.empty(0, dt)

        return solve_milp(
            cost,
            cat(self.rows, np.int64),
            cat(self.cols, np.int64),
            cat(self.vals, float),
            cat(self.lb, float),
            cat(self.ub, float),
            col_lb,
            col_ub,
            integer,
            **kwargs,
        )


def site_bounds(inst: Instance) -> tuple[np.ndarray, np.ndarray]:
    lb = np.zeros(inst.m)
    lb[inst.fixed] = 1.0
    return lb, np.ones(inst.m)
