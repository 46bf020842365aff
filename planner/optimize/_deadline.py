"""Deadlines (``time.perf_counter`` values, None for none) and the binary search under one."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from planner.optimize import _tuning


def bisect_with_deadline(
    lo: int, hi: int, test: Callable[[int], tuple[bool | None, Any]], deadline: float | None
):
    """Binary search for the smallest index below ``hi`` (an index known to pass, or one
    past the end) whose ``test`` passes; ``test(i)`` gives (answer, or None when
    undecided, and a payload). An undecided index sends the search upwards without proof.
    Returns (lowest index not proven to fail, smallest passing index, its payload or None
    when none passed, whether a test was undecided or time ran out)."""
    proven, found, undecided = lo, None, False
    while lo < hi:
        if past_deadline(deadline):
            return proven, hi, found, True
        mid = (lo + hi) // 2
        ok, payload = test(mid)
        if ok:
            hi, found = mid, payload
        elif ok is False:
            lo = proven = mid + 1
        else:
            undecided, lo = True, mid + 1
    return proven, hi, found, undecided


def past_deadline(deadline: float | None) -> bool:
    return deadline is not None and time.perf_counter() > deadline


def auto_deadline(deadline: float | None, heuristic_s: float) -> float:
    """Deadline of the exact phase of ``method="auto"``: the caller's, or a budget of
    ``AUTO_EXACT_FACTOR`` × the heuristic's time (at least ``AUTO_EXACT_MIN_S``)."""
    if deadline is not None:
        return deadline
    return time.perf_counter() + max(_tuning.AUTO_EXACT_MIN_S, _tuning.AUTO_EXACT_FACTOR * heuristic_s)


def seconds_left(deadline: float | None) -> float | None:
    return None if deadline is None else max(deadline - time.perf_counter(), 0.01)
