"""The answer of a location model."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pandas as pd


@dataclasses.dataclass
class Solution:
    """The answer of a location model.

    Attributes
    ----------
    model : str
        ``"p-median"``, ``"max-coverage"``, ``"set-cover"`` or ``"p-center"``.
    sites : numpy.ndarray
        Open candidate indices (fixed and new), ascending.
    fixed_sites : numpy.ndarray
        The fixed (existing) sites among them.
    assignment : numpy.ndarray
        Candidate index serving each demand row; -1 when unassigned (unreachable, or not
        covered in a coverage model).
    objective : float
        p-median: total weighted travel time (s); max-coverage: weighted demand covered;
        set-cover: number of new sites; p-center: worst travel time (s).
    bound : float
        Proven bound on the optimum: a lower bound when minimising, an upper bound for
        max-coverage. ``lower_bound``/``upper_bound`` name it by direction.
    sense : str
        ``"min"`` or ``"max"``.
    solver : str
        e.g. ``"highs"``, ``"heuristic+lagrangian"``, ``"heuristic+lagrangian+highs"``.
    status : str
        ``"optimal"`` (proven within the requested gap) or ``"feasible"`` (a larger gap:
        time limit or heuristic); ``"min_share not met"`` when the heuristic could not
        reach a minimum share (see ``shortfall``).
    seconds : float
        Wall-clock time of ``solve``.
    unreachable : numpy.ndarray
        Demand rows no candidate reaches (within ``minutes``): excluded from the model.
    covered : numpy.ndarray
        Per demand row: served within ``minutes`` (or served at all when no ``minutes``).
    group_shares : pandas.DataFrame or None
        With ``groups``: weight, covered weight and share per group.
    shortfall : dict or None
        Groups whose share the heuristic could not reach: label → missing share.
    info : dict
        Solver details (phase times, number of improvements), for diagnostics.
    """

    model: str
    sites: np.ndarray
    fixed_sites: np.ndarray
    assignment: np.ndarray
    objective: float
    bound: float
    sense: str
    solver: str
    status: str
    seconds: float
    unreachable: np.ndarray
    covered: np.ndarray
    group_shares: pd.DataFrame | None = None
    shortfall: dict | None = None
    info: dict = dataclasses.field(default_factory=dict)
    _table: pd.DataFrame | None = dataclasses.field(default=None, repr=False)
    # Ranking the sites costs more than solving a small model: built on first use.
    _table_fn: Callable[[], pd.DataFrame] | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def new_sites(self) -> np.ndarray:
        """Open sites that are not fixed."""
        return np.setdiff1d(self.sites, self.fixed_sites)

    @property
    def gap(self) -> float:
        """Relative gap ``|objective - bound| / |objective|`` (0 when proven optimal)."""
        diff = abs(self.objective - self.bound)
        if diff <= 1e-9 * max(1.0, abs(self.objective)):
            return 0.0
        return diff / abs(self.objective) if self.objective else math.inf

    @property
    def lower_bound(self) -> float:
        """A proven lower bound on the optimal objective."""
        return self.bound if self.sense == "min" else self.objective

    @property
    def upper_bound(self) -> float:
        """A proven upper bound on the optimal objective."""
        return self.objective if self.sense == "min" else self.bound

    def table(self) -> pd.DataFrame:
        """One row per open site.

        Columns: ``site`` (candidate index), ``kind`` ("fixed"/"new"), ``rank`` (order of
        contribution: fixed sites first, then new ones, each time the site that most
        improves the objective), ``homes`` and ``demand`` assigned (count, weight),
        ``demand_covered`` (weight assigned within ``minutes``), ``coverage_added``
        (weighted demand newly covered when sites are added in rank order),
        ``mean_time_s`` (weighted mean travel time of the demand assigned), and with
        capacities ``load`` and ``capacity``.
        """
        if self._table is None and self._table_fn is not None:
            self._table, self._table_fn = self._table_fn(), None
        return self._table.copy()

    def __getstate__(self) -> dict:
        if self._table_fn is not None:
            self.table()  # the builder holds the model: pickle the table instead
        return self.__dict__.copy()

    def __repr__(self) -> str:
        return (
            f"Solution({self.model}: {len(self.new_sites)} new + {len(self.fixed_sites)} fixed sites, "
            f"objective={self.objective:.6g}, bound={self.bound:.6g}, gap={self.gap:.2%}, "
            f"solver={self.solver!r}, status={self.status!r}, {self.seconds:.2f} s)"
        )


@dataclasses.dataclass
class Answer:
    """A solver stage's answer, passed between stages until the model reports it as a
    :class:`Solution`.

    ``sites`` are new sites (fixed ones may be included); ``objective`` None: the model
    evaluates the sites; ``assignment`` None: every home goes to its nearest open site;
    ``status`` None: "optimal" or "feasible" from the gap.
    """

    sites: np.ndarray
    bound: float
    solver: str
    objective: float | None = None
    assignment: np.ndarray | None = None
    status: str | None = None
    info: dict | None = None
    gap: float = math.nan  # a heuristic's relative gap, which decides whether a next stage runs
