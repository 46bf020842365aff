"""Keep Python's cyclic garbage collector off the objects of a long step.

A city's region and results hold hundreds of thousands of GC-tracked objects (every shapely
geometry is one). Each full collection walks all of them, and the steps that create many
new objects (isochrones, tables, maps) trigger one again and again. Freezing what exists when
the step starts leaves those objects out of the passes (they are still freed by reference
counting); unfreezing at the end gives any cycle among them back to the collector
(:func:`settled`). A step that only builds (reading a file) runs with the collector off
(:func:`paused`).
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def settled(fn: F) -> F:
    """Run ``fn`` with the objects alive at its start frozen out of the garbage collector's
    passes; a no-op when the collector is off or someone (a caller, the user) froze already."""
    return _around(fn, _freeze, gc.unfreeze)


def paused(fn: F) -> F:
    """Run ``fn`` with the cyclic collector off: for a step that builds hundreds of thousands
    of objects and no reference cycles (reading a file into lists, dicts and arrays), whose
    every full collection would walk all it has built so far. The collector is back on when
    ``fn`` returns or fails (any cycle made meanwhile is collected then); a no-op when it is
    off already."""
    return _around(fn, _disable, gc.enable)


def _freeze() -> bool:
    if not gc.isenabled() or gc.get_freeze_count():
        return False
    gc.freeze()
    return True


def _disable() -> bool:
    if not gc.isenabled():
        return False
    gc.disable()
    return True


def _around(fn: F, begin: Callable[[], bool], end: Callable[[], object]) -> F:
    """``fn`` with ``begin()`` before each call and, when that acted (returned True), ``end()``
    after it, even when it fails."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not begin():
            return fn(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        finally:
            end()

    return wrapper  # type: ignore[return-value]
