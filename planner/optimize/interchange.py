"""Greedy and fast vertex substitution (Whitaker 1983; Resende & Werneck 2004), vectorised."""

from __future__ import annotations

import time

import numpy as np

from planner.optimize import _tuning
from planner.optimize._arrays import csc_order, csr_ranges, row_entries
from planner.optimize._deadline import past_deadline
from planner.optimize.instance import Instance


class SwapEngine:
    """Greedy + fast interchange for ``min Σ_i min(P_i, min_{j open} W_ij)``.

    ``W`` are the weighted costs of the stored (reachable) entries and ``P_i`` the cost of
    leaving row i unserved: a large number for p-median (serve everyone), the row's weight
    with zero costs for max-coverage (minimise uncovered weight). The bookkeeping follows
    Resende & Werneck: ``gain[f]`` (saving of inserting f), ``loss[s]`` (increase when the
    site in slot s is removed) and ``extra[f, s]`` (correction when both happen), updated
    only for the rows whose nearest or second-nearest site changes.
    """

    def __init__(
        self,
        inst: Instance,
        w_entry: np.ndarray,
        penalty: np.ndarray,
        k_new: int,
    ):
        self.inst = inst
        self.W = w_entry
        self.P = penalty
        self.m, self.n = inst.m, inst.n
        self.k = len(inst.fixed) + k_new
        self.k_new = k_new
        self.stats: dict[str, int] = {}
        order, ptr = csc_order(inst)
        self.csc_ptr = ptr
        self.csc_row = inst.row[order]
        self.csc_W = w_entry[order]
        self._col32 = inst.col.astype(np.int32)
        # Sorted search key (row, cost) for the prefix of each row below a threshold.
        self._span = 2.0 * float(w_entry.max(initial=0.0)) + 1.0
        self._key = inst.row * self._span + w_entry
        # Per candidate, how many homes it would serve better than now (windows; lazy).
        self._improvers: np.ndarray | None = None
        # Integral costs (max-coverage with whole-number weights) keep every table sum
        # exact: no rounding for a final rebuild to correct.
        self._exact_sums = bool(
            np.all(w_entry == np.round(w_entry))
            and np.all(penalty == np.round(penalty))
            and float(np.abs(w_entry).sum() + np.abs(penalty).sum()) < 2.0**52
        )
        self.reset(inst.fixed)

    # -- state -----------------------------------------------------------------------------
    def reset(self, open_sites: np.ndarray) -> None:
        """Open ``fixed`` plus ``open_sites`` and rebuild every table from scratch."""
        m, k = self.m, self.k
        self.is_open = np.zeros(m, dtype=bool)
        self.slot_of = np.full(m, -1, dtype=np.int64)
        self.slots = np.full(k, -1, dtype=np.int64)
        self.removable = np.zeros(k, dtype=bool)
        fixed = self.inst.fixed
        sites = np.concatenate([fixed, np.setdiff1d(open_sites, fixed)])
        for s, f in enumerate(sites[:k]):
            self.is_open[f] = True
            self.slot_of[f] = s
            self.slots[s] = f
            self.removable[s] = s >= len(fixed)
        self.n_open = min(len(sites), k)
        self._rebuild(tables=False)

    _TABLES = ("gain", "loss", "extra")

    def _rebuild(self, tables: bool = True) -> None:
        """Nearest and second-nearest sites of every row, and the swap tables from scratch.

        With ``tables=False`` the tables are dropped and built on first use
        (:meth:`__getattr__`): a reset is often followed by another reset (a greedy
        rebuilds once at its end, a window search restarts) before any swap is evaluated.
        """
        self.phi1 = np.full(self.n, -1, dtype=np.int64)
        self.phi2 = np.full(self.n, -1, dtype=np.int64)
        self.d1 = self.P.copy()
        self.d2 = self.P.copy()
        self._top2(np.arange(self.n))
        for name in self._TABLES:
            self.__dict__.pop(name, None)
        if tables:
            self._build_tables()

    def _build_tables(self) -> None:
        self.gain = np.zeros(self.m)
        self.loss = np.zeros(self.k)
        self.extra = np.zeros((self.m, self.k))
        self._apply(np.arange(self.n), 1.0)

    def __getattr__(self, name: str):
        # Only called for attributes not set: the swap tables after a reset.
        if name in self._TABLES:
            self._build_tables()
            return self.__dict__[name]
        raise AttributeError(name)

    def objective(self) -> float:
        return float(self.d1.sum())

    def open_sites(self) -> np.ndarray:
        return np.flatnonzero(self.is_open)

    def _row_entries(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts = self.inst.indptr[rows]
        lengths = self.inst.indptr[rows + 1] - starts
        pos = csr_ranges(starts, lengths)
        local = np.repeat(np.arange(len(rows)), lengths)
        return pos, local

    def _top2(self, rows: np.ndarray) -> None:
        """Nearest and second-nearest open site of ``rows`` (entries are sorted by cost)."""
        pos, local = self._row_entries(rows)
        keep = self.is_open[self.inst.col[pos]]
        pos, local = pos[keep], local[keep]
        self.phi1[rows] = -1
        self.phi2[rows] = -1
        self.d1[rows] = self.P[rows]
        self.d2[rows] = self.P[rows]
        if len(pos) == 0:
            return
        first = np.ones(len(pos), dtype=bool)
        first[1:] = local[1:] != local[:-1]
        i1 = np.flatnonzero(first)
        r1 = rows[local[i1]]
        self.phi1[r1] = self.inst.col[pos[i1]]
        self.d1[r1] = np.minimum(self.W[pos[i1]], self.P[r1])
        i2 = i1 + 1
        i2 = i2[i2 < len(pos)]
        i2 = i2[~first[i2]]
        r2 = rows[local[i2]]
        self.phi2[r2] = self.inst.col[pos[i2]]
        self.d2[r2] = np.minimum(self.W[pos[i2]], self.P[r2])

    def _apply(self, rows: np.ndarray, sign: float) -> None:
        """Add (sign=+1) or remove (-1) the contributions of ``rows`` to gain, loss, extra."""
        if len(rows) == 0:
            return
        d1, d2 = self.d1[rows], self.d2[rows]
        slot1 = self.slot_of[self.phi1[rows]]  # phi1 = -1 reads slot_of[-1]: masked below
        slot1[self.phi1[rows] < 0] = -1
        has1 = slot1 >= 0
        self.loss += sign * np.bincount(slot1[has1], weights=(d2 - d1)[has1], minlength=self.k)
        # Only entries cheaper than the second-nearest site matter; rows are sorted by cost,
        # so they are a prefix of each row, found by one vectorised binary search.
        starts = self.inst.indptr[rows]
        target = rows * self._span + d2
        ends = np.searchsorted(self._key, target + 1e-9 * np.abs(target), side="right")
        ends = np.minimum(np.maximum(ends, starts), self.inst.indptr[rows + 1])
        lengths = ends - starts
        pos = csr_ranges(starts, lengths)
        local = np.repeat(np.arange(len(rows), dtype=np.int32), lengths)
        f = self._col32[pos]
        w = self.W[pos]
        keep = w < d2[local]
        keep &= ~self.is_open[f]
        sel = np.flatnonzero(keep)
        f, w, local = f[sel], w[sel], local[sel]
        d1e = d1[local]
        self.gain += sign * np.bincount(f, weights=np.maximum(d1e - w, 0.0), minlength=self.m)
        s1 = slot1[local]
        ok = s1 >= 0
        idx = f[ok].astype(np.int64) * self.k + s1[ok]
        val = d2[local[ok]] - np.maximum(d1e[ok], w[ok])
        np.add.at(self.extra.reshape(-1), idx, val if sign > 0 else -val)

    def open(self, f: int, slot: int | None = None, removable: bool = True) -> None:
        lo, hi = self.csc_ptr[f], self.csc_ptr[f + 1]
        rows = self.csc_row[lo:hi]
        rows = rows[self.csc_W[lo:hi] < self.d2[rows]]
        self._apply(rows, -1.0)
        if slot is None:
            slot = int(np.flatnonzero(self.slots < 0)[0])
        self.is_open[f] = True
        self.slot_of[f] = slot
        self.slots[slot] = f
        self.removable[slot] = removable
        self.n_open += 1
        self.gain[f] = 0.0
        self._top2(rows)
        self._apply(rows, 1.0)

    def close(self, r: int) -> int:
        slot = int(self.slot_of[r])
        rows = np.flatnonzero((self.phi1 == r) | (self.phi2 == r))
        self._apply(rows, -1.0)
        self.is_open[r] = False
        self.slot_of[r] = -1
        self.slots[slot] = -1
        self.n_open -= 1
        self.loss[slot] = 0.0
        self.extra[:, slot] = 0.0
        self._top2(rows)
        self._apply(rows, 1.0)
        return slot

    # -- search ----------------------------------------------------------------------------
    def greedy(self, allowed: np.ndarray | None = None) -> None:
        """Fill the empty slots, each time with the candidate of largest gain."""
        if self.n_open < self.k and self.inst.nnz * (self.k - self.n_open) <= _tuning.GREEDY_DIRECT_MAX_WORK:
            self._greedy_direct(allowed)
            return
        while self.n_open < self.k:
            g = np.where(self.is_open, -np.inf, self.gain)
            if allowed is not None:
                g[~allowed] = -np.inf
            self.open(int(np.argmax(g)))

    def _greedy_direct(self, allowed: np.ndarray | None) -> None:
        """The same greedy computed directly: each step one pass over all entries for the
        gains, then the tables rebuilt once. On small dense models this beats keeping the
        swap tables current after every opening (each opening touches most rows there)."""
        inst = self.inst
        d1 = self.d1.copy()
        is_open = self.is_open.copy()
        chosen = []
        for _ in range(self.k - self.n_open):
            # astype: bincount of no entries is an integer array, even with weights
            gain = np.bincount(
                inst.col, weights=np.maximum(d1[inst.row] - self.W, 0.0), minlength=self.m
            ).astype(float, copy=False)
            gain[is_open] = -np.inf
            if allowed is not None:
                gain[~allowed] = -np.inf
            f = int(np.argmax(gain))
            chosen.append(f)
            is_open[f] = True
            lo, hi = self.csc_ptr[f], self.csc_ptr[f + 1]
            rows = self.csc_row[lo:hi]
            np.minimum.at(d1, rows, self.csc_W[lo:hi])
        self.reset(np.concatenate([np.flatnonzero(self.is_open), chosen]).astype(np.int64))

    def best_swap(self) -> tuple[int, int, float]:
        profit = self.gain[:, None] - self.loss[None, :] + self.extra
        profit[self.is_open, :] = -np.inf
        profit[:, ~self.removable] = -np.inf
        flat = int(np.argmax(profit))
        f, s = divmod(flat, self.k)
        return f, s, float(profit[f, s])

    def set_open(self, sites: np.ndarray) -> None:
        """Move to the open set ``fixed ∪ sites`` by incremental swaps (cheap when close)."""
        target = np.zeros(self.m, dtype=bool)
        target[self.inst.fixed] = True
        target[sites] = True
        out = np.flatnonzero(self.is_open & ~target)
        into = np.flatnonzero(target & ~self.is_open)
        if len(out) != len(into) or len(out) > self.k // 2:
            self.reset(np.flatnonzero(target))
            return
        for r, f in zip(out, into, strict=True):
            slot = self.close(int(r))
            self.open(int(f), slot)

    def perturb(self, rng: np.random.Generator, q: int) -> None:
        """Replace ``q`` random new sites by random closed candidates near them."""
        for _ in range(q):
            removable = np.flatnonzero(self.removable & (self.slots >= 0))
            if len(removable) == 0:
                return
            r = int(self.slots[rng.choice(removable)])
            lo, hi = self.csc_ptr[r], self.csc_ptr[r + 1]
            if hi == lo:
                continue
            home = self.csc_row[rng.integers(lo, hi)]
            near = self.inst.col[self.inst.indptr[home] : self.inst.indptr[home + 1]]
            near = near[~self.is_open[near]]
            if len(near) == 0:
                continue
            slot = self.close(r)
            self.open(int(rng.choice(near)), slot)

    def iterated_local_search(
        self, deadline: float | None, rounds: int | None = None, seed: int = 0, q: int = 2
    ) -> None:
        """Perturb, re-optimise, keep if better (iterated local search) until the deadline
        or for ``rounds`` rounds."""
        rng = np.random.default_rng(seed)
        best_sites, best = self.open_sites(), self.objective()
        done = 0
        while (deadline is None or time.perf_counter() < deadline) and (rounds is None or done < rounds):
            done += 1
            self.stats["ils_rounds"] = self.stats.get("ils_rounds", 0) + 1
            self.perturb(rng, q)
            self.local_search(deadline, verify=False)
            value = self.objective()
            if value < best - 1e-9 * abs(best):
                best_sites, best = self.open_sites(), value
            else:
                self.set_open(best_sites)
        self.set_open(best_sites)
        self.local_search(None)

    def improve_windows(self, deadline: float | None, size: int = 6, starts: int = 3, seed: int = 0) -> int:
        """Re-optimise groups of neighbouring sites (POPMUSIC, Taillard 2003).

        A window is an open site and its ``size - 1`` neighbours (the sites most often
        second-nearest to its homes). The homes of the window form a sub-problem in which the
        other open sites are fixed; it is solved by greedy + interchange and random restarts,
        and a better placement is applied to the whole solution (kept only if the total cost
        falls). Single swaps cannot move several sites at once; this can. As in POPMUSIC,
        every site starts "unoptimised"; a window that brings nothing marks its seed
        optimised, an improvement marks all sites of the new window unoptimised again. Stops
        when all are optimised or at the deadline. Returns the number of improvements.
        """
        rng = np.random.default_rng(seed)
        improved = 0
        todo = self.is_open & ~self.inst.is_fixed
        self._improvers = None
        while todo.any():
            if deadline is not None and time.perf_counter() > deadline:
                break
            s = int(rng.choice(np.flatnonzero(todo)))
            second = self.phi2[self.phi1 == s]
            votes = np.bincount(second[second >= 0], minlength=self.m)
            votes[s] = 0
            votes[self.inst.fixed] = 0
            neighbours = np.argsort(-votes, kind="stable")[: size - 1]
            window = np.concatenate([[s], neighbours[votes[neighbours] > 0]])
            better = self._solve_window(window, starts, rng)
            self.stats["windows"] = self.stats.get("windows", 0) + 1
            todo[s] = False
            if better is None:
                continue
            before, keep = self.objective(), self.open_sites()
            self.set_open(np.concatenate([np.setdiff1d(keep, window), better]))
            self.local_search(deadline, verify=False)
            if self.objective() < before - 1e-9 * abs(before):
                improved += 1
                self._improvers = None
                self.stats["window_improvements"] = self.stats.get("window_improvements", 0) + 1
                changed = np.flatnonzero(self.is_open & ~self.inst.is_fixed)
                changed = changed[np.isin(changed, keep, invert=True) | np.isin(changed, window)]
                todo[changed] = True
                todo &= self.is_open
            else:
                self.set_open(keep)
        return improved

    def _solve_window(self, window: np.ndarray, starts: int, rng: np.random.Generator) -> np.ndarray | None:
        """Best placement of ``len(window)`` sites for the homes served by ``window``, or None."""
        inst = self.inst
        rows = np.flatnonzero(np.isin(self.phi1, window))
        if len(rows) == 0:
            return None
        pos, local = row_entries(inst, rows)
        # Candidates that would serve none of these homes better than now are left out, and
        # so are those that would mostly serve homes outside the window (counted among all
        # the homes each candidate would serve better: on a dense matrix every column has
        # every home). The open sites stay in.
        if self._improvers is None:
            self._improvers = np.bincount(inst.col[self.d1[inst.row] > self.W], minlength=inst.m)
        inside = np.bincount(inst.col[pos][self.W[pos] < self.d1[rows][local]], minlength=inst.m)
        useful = (inside > 0) & (inside >= _tuning.WINDOW_INSIDE_SHARE * self._improvers)
        useful |= self.is_open
        near = useful[inst.col[pos]]
        pos, local = pos[near], local[near]
        cols = np.unique(inst.col[pos])
        index = np.full(inst.m, -1, dtype=np.int64)
        index[cols] = np.arange(len(cols))
        outside = cols[self.is_open[cols] & ~np.isin(cols, window)]
        lengths = np.bincount(local, minlength=len(rows))
        sub = Instance(
            len(rows),
            len(cols),
            np.concatenate([[0], np.cumsum(lengths)]),
            local,
            index[inst.col[pos]],
            inst.cost_s[pos],
            inst.weights[rows],
            inst.loads[rows],
            np.sort(index[outside]),
            None,
            None,
        )
        current = float(self.d1[rows].sum())
        engine = SwapEngine(sub, self.W[pos], self.P[rows], len(window))
        free = np.flatnonzero(~sub.is_fixed)
        best, best_sites = current, None
        for start in range(starts):
            if start == 0:
                engine.greedy()
            else:
                engine.reset(rng.choice(free, min(len(window), len(free)), replace=False))
            engine.local_search(None, verify=False)
            if engine.objective() < best - 1e-9 * abs(best):
                best, best_sites = engine.objective(), cols[np.setdiff1d(engine.open_sites(), sub.fixed)]
        return best_sites

    def local_search(self, deadline: float | None = None, verify: bool = True) -> int:
        """Best-improvement swaps until none improves; returns the number of swaps.

        With ``verify`` the tables are rebuilt from scratch at the end (incremental updates
        accumulate rounding) and the search resumes if a swap still improves; integral
        costs need no check.
        """
        if not self.removable.any():
            return 0
        swaps = 0
        tol = 1e-9 * max(1.0, abs(self.objective()))
        exact = not verify or self._exact_sums
        verified = exact
        while True:
            f, s, profit = self.best_swap()
            if not profit > tol:
                if verified:
                    break
                # Incremental updates accumulate rounding: confirm on fresh tables.
                self._rebuild()
                verified = True
                continue
            verified = exact
            slot = self.close(int(self.slots[s]))
            self.open(f, slot)
            swaps += 1
            if deadline is not None and time.perf_counter() > deadline:
                break
        return swaps


class DenseCoverSwap:
    """Greedy + best-improvement interchange for max-coverage on a dense 0/1 matrix.

    The same search as :class:`SwapEngine` with ``W = 0`` and ``P = weight`` (same picks,
    same swaps, ties to the lowest index), each step priced from scratch by products:
    ``gain[f]`` is f's uncovered weight, ``loss[s]`` the weight only slot s covers, and
    ``extra[f, s]`` the part of that loss f covers too. For small models, where the
    engine's incremental tables touch most rows at every swap anyway.
    """

    def __init__(self, inst: Instance, k_new: int):
        self.inst = inst
        self.fixed = inst.fixed
        self.k = len(inst.fixed) + k_new
        self.cover = np.zeros((inst.n, inst.m))
        self.cover[inst.row, inst.col] = 1.0
        self.w = np.where(inst.coverable, inst.weights, 0.0)
        self.tol = 1e-9 * max(1.0, float(self.w.sum()))

    def uncovered(self, sites: np.ndarray) -> float:
        """Weight of the homes no site in ``sites`` covers."""
        return float(self.w[self.cover[:, sites].sum(axis=1) == 0].sum())

    def search(self, start: np.ndarray, deadline: float | None) -> np.ndarray:
        """Open ``fixed`` and ``start``, fill greedily to k sites, then swap until no swap
        gains. Returns the open sites (fixed included), sorted."""
        cover, w, m = self.cover, self.w, self.inst.m
        start = np.setdiff1d(np.asarray(start, dtype=np.int64), self.fixed)
        slots = np.concatenate([self.fixed, start])[: self.k]
        count = cover[:, slots].sum(axis=1)
        is_open = np.zeros(m, dtype=bool)
        is_open[slots] = True
        added = []
        for _ in range(self.k - len(slots)):
            gain = (w * (count == 0)) @ cover
            gain[is_open] = -np.inf
            f = int(np.argmax(gain))
            added.append(f)
            is_open[f] = True
            count += cover[:, f]
        # Slots as the engine numbers them after its greedy: fixed first, then ascending.
        slots = np.concatenate([self.fixed, np.setdiff1d(np.concatenate([start, added]), self.fixed)]).astype(
            np.int64
        )
        removable = np.arange(len(slots)) >= len(self.fixed)
        if not removable.any():
            return np.sort(slots)
        while not past_deadline(deadline):
            open_cols = cover[:, slots]
            only = w * (count == 1)
            profit = cover.T @ (only[:, None] * open_cols)  # extra[f, s]
            profit += ((w * (count == 0)) @ cover)[:, None]  # + gain[f]
            profit -= (only @ open_cols)[None, :]  # - loss[s]
            profit[is_open, :] = -np.inf
            profit[:, ~removable] = -np.inf
            f, s = divmod(int(np.argmax(profit)), len(slots))
            if not profit[f, s] > self.tol:
                break
            count += cover[:, f] - cover[:, slots[s]]
            is_open[slots[s]] = False
            is_open[f] = True
            slots[s] = f
        return np.sort(slots)
