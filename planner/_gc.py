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

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not gc.isenabled() or gc.get_freeze_count():
            return fn(*args, **kwargs)
        gc.freeze()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.unfreeze()

    return wrapper  # type: ignore[return-value]


def paused(fn: F) -> F:
    """Run ``fn`` with the cyclic collector off: for a step that builds hundreds of thousands
    of objects and no reference cycles (reading a file into lists, dicts and arrays), whose
    every full collection would walk all it has built so far. The collector is back on when
    ``fn`` returns or fails; any cycle made meanwhile is collected then."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return wrapper  # type: ignore[return-value]
