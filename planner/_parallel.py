"""Work in a forked process beside the main one, where the machine and the process allow it.

A forked child inherits the parent's memory (the network, the homes, the map layers) without
copying or pickling it; only its result comes back. Forking needs a second core to pay off,
the ``fork`` start method (Linux, macOS), and a process allowed to have children (a Dask
worker's daemonic process is not); ``settings.sweep_workers = 1`` keeps everything in one
process.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator
from typing import Any

from planner import settings


def can_fork() -> bool:
    """Whether work may go to a forked process: two cores or more, ``sweep_workers`` not 1,
    the fork start method, and a process allowed to start children."""
    return (
        (os.cpu_count() or 1) > 1
        and settings.sweep_workers != 1
        and "fork" in mp.get_all_start_methods()
        and not mp.current_process().daemon
    )


@contextlib.contextmanager
def in_background(fn: Callable[..., Any], *args: Any, fork: bool = True) -> Iterator[Callable[[], Any]]:
    """Run ``fn(*args)`` in a forked process while the ``with`` block runs; the block gets a
    function that waits for the result (raising the child's error). Without ``fork`` (or where
    :func:`can_fork` says no), ``fn`` runs in this process when the result is asked for.

    The arguments reach the child by the fork itself, not pickled: a city's layers cost
    nothing to hand over. A child that dies (killed, out of memory) has its work done again
    here, so the error, if any, is the work's own.
    """
    if not (fork and can_fork()):
        yield lambda: fn(*args)
        return
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    context = mp.get_context("fork")
    with ProcessPoolExecutor(1, mp_context=context, initializer=_keep, initargs=(fn, args)) as pool:
        future = pool.submit(_run_kept)

        def result() -> Any:
            try:
                return future.result()
            except BrokenProcessPool:
                return fn(*args)

        yield result


_KEPT: tuple | None = None


def _keep(fn: Callable[..., Any], args: tuple) -> None:
    global _KEPT
    _KEPT = (fn, args)


def _run_kept() -> Any:
    fn, args = _KEPT  # type: ignore[misc]
    return fn(*args)
