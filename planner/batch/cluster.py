"""The Dask cluster of a batch: a LocalCluster or a running scheduler, worker memory, and the
per-category sweeps of a large region as tasks of their own."""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from planner import settings
from planner._errors import InputError

#: Least memory a local worker may be given: below it a worker is restarted on any region.
min_worker_memory_bytes: int = 256 * 2**20


@contextlib.contextmanager
def connect(scheduler, workers, memory_limit, dashboard: bool = True) -> Iterator:
    """A client on the given scheduler or on a new LocalCluster (closed again at the end),
    with Dask's dashboard (when bokeh is installed) if ``dashboard``: a web server in this
    process whose start alone costs about half a CPU second, for a link the batch prints only
    with its progress bar."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None and hasattr(scheduler, "submit"):  # a Client the caller owns
        if workers:
            scheduler.wait_for_workers(workers)
        yield scheduler
        return
    if scheduler is not None:
        try:
            client = Client(str(scheduler), timeout="30s")
        except OSError as err:
            raise InputError(
                f"--scheduler {scheduler}: cannot connect ({one_line(err)}); "
                "start one with `dask scheduler` or leave it out for a local cluster"
            ) from None
        try:
            if workers:
                client.wait_for_workers(workers)
            yield client
        finally:
            client.close()
        return
    n = int(workers) if workers is not None else int(os.cpu_count() or 1)
    if n < 1:
        raise InputError(f"--workers {workers}: give at least 1")
    with worker_start_method(), dask.config.set(_quieter_monitors()):
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            memory_limit=memory_limit,
            # Any free port (for the dashboard or the bare health and metrics pages): several
            # batches (or users) on one machine.
            dashboard_address=":0",
            scheduler_kwargs={"dashboard": bool(dashboard)},
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()


#: Dask's monitoring intervals on a local cluster (key: (Dask's default, ours)). The scheduler,
#: nannies and workers wake at each to measure their event loop, sample the machine and
#: profile the running task, for the dashboard; at the defaults that costs CPU in proportion
#: to the run's wall time. Memory limits are watched by
#: ``distributed.worker.memory.monitor-interval``, left as it is.
LOCAL_MONITOR_INTERVALS: dict[str, tuple[str, str]] = {
    "distributed.admin.tick.interval": ("20ms", "1s"),
    "distributed.admin.system-monitor.interval": ("500ms", "2s"),
    "distributed.worker.profile.interval": ("10ms", "100ms"),
}


def _quieter_monitors() -> dict[str, str]:
    """The intervals of :data:`LOCAL_MONITOR_INTERVALS` still at Dask's default (a value the
    user set in their Dask config is kept)."""
    import dask
    import distributed  # noqa: F401 - registers these keys' defaults

    return {
        k: ours for k, (default, ours) in LOCAL_MONITOR_INTERVALS.items() if dask.config.get(k) == default
    }


#: Modules a local worker process starts with (imported once, in the fork server): what the
#: batch's tasks use, so that no worker imports them again.
WORKER_PRELOAD: tuple[str, ...] = (
    "distributed",
    "planner.batch",
    "planner.maps",
    "osmium",
    "pyogrio",
)


@contextlib.contextmanager
def worker_start_method() -> Iterator[str]:
    """How the local cluster's nannies start their worker processes, for the cluster's life.

    Dask's default, ``spawn``, starts each worker as a new interpreter that imports Dask,
    planner and the scientific stack again. Where the platform has ``forkserver``, workers are
    forked instead from one server process that imported :data:`WORKER_PRELOAD` once: the
    server is started before the cluster, and each worker, restarted ones too, begins with
    those modules loaded. On Linux, in a process running no other thread yet, the server is a
    fork of this process (:func:`_fork_server`), which has imported most of them already; else
    a fresh interpreter (never a fork of a process whose threads may hold locks, as the
    cluster's scheduler and client run threads). A ``distributed.worker.multiprocessing-method``
    other than ``spawn`` in the user's Dask config is kept, and platforms without
    ``forkserver`` (Windows) spawn.

    Yields the method used.
    """
    import multiprocessing

    import dask
    from distributed.utils import get_mp_context

    key = "distributed.worker.multiprocessing-method"
    if dask.config.get(key) != "spawn" or "forkserver" not in multiprocessing.get_all_start_methods():
        yield dask.config.get(key)
        return
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)  # the process's one fork server
    started_here = getattr(server, "_forkserver_pid", 0) is None
    try:
        with dask.config.set({key: "forkserver"}):
            # Replaces Dask's own preload list (which it sets on its first forkserver context,
            # hence the call first); a server already running keeps the modules it started with.
            get_mp_context().set_forkserver_preload(list(WORKER_PRELOAD))
            if started_here:
                _fork_server(server, list(WORKER_PRELOAD))
            yield "forkserver"
    finally:
        # A server this run started stops with its cluster (as spawned workers end with
        # it), waited for: no process is left behind, and its CPU counts as this process's
        # children's. The standard library only stops it from its own tests, hence the
        # private call; another use starts a new server when it needs one.
        if started_here:
            with contextlib.suppress(AttributeError, OSError, ChildProcessError):
                server._stop()


def _fork_server(server, preload: list[str]) -> bool:
    """Start this process's fork server (``multiprocessing.forkserver``) as a fork of this
    process rather than a fresh interpreter that imports the modules again: Linux, Python
    3.11-3.13 (whose server's start this mirrors), and only while this process runs no other
    thread (a fork copies no thread, so no lock a thread holds). ``preload`` is imported
    first, in this process; the server then serves as
    the standard library's own does (its ``main``, on the listening socket and the pipe
    whose closing stops it); it exits without running this process's exit handlers.

    Returns whether it started one (else the standard library starts its own when needed).
    """
    import importlib
    import signal
    import socket
    import threading
    from multiprocessing import connection, forkserver, resource_tracker, util

    # Python 3.14 authenticates the server's socket (a key the standard start passes it): its
    # own start keeps that, so this one is for the versions whose server it mirrors.
    if (
        sys.platform != "linux"
        or sys.version_info >= (3, 14)
        or threading.active_count() > 1
        or not hasattr(server, "_forkserver_pid")
    ):
        return False
    # Imported here, before the fork, so that both processes have them once: this one needs
    # planner.maps (folium) for the batch's map anyway.
    for module in preload:
        importlib.import_module(module)
    if threading.active_count() > 1:  # an import started one
        return False
    resource_tracker.ensure_running()  # shared with the server and workers, as ensure_running does
    for stream in (sys.stdout, sys.stderr):  # else a child would write their buffered text again
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    with socket.socket(socket.AF_UNIX) as listener:
        address = connection.arbitrary_address("AF_UNIX")
        listener.bind(address)
        if not util.is_abstract_socket_namespace(address):
            os.chmod(address, 0o600)
        listener.listen()
        alive_r, alive_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the server
            code = 1
            try:
                os.close(alive_w)
                # As a fresh interpreter's: this process may turn SIGTERM into SystemExit.
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                forkserver.main(listener.fileno(), alive_r, preload)
            except SystemExit:  # the pipe closed: the server's way to stop
                code = 0
            finally:
                os._exit(code)
        os.close(alive_r)
    server._forkserver_address = address
    server._forkserver_alive_fd = alive_w
    server._forkserver_pid = pid
    return True


def check_memory_limit(value: Any) -> None:
    """Memory per local worker as Dask reads it (bytes, "4GiB", a fraction ≤ 1, 0 = none, auto)."""
    from dask.utils import format_bytes, parse_bytes
    from distributed.system import MEMORY_LIMIT

    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return
    hint = (
        "give memory per worker such as 4GiB or 4000MB, a fraction of this machine's memory such as 0.5, "
        "or auto"
    )
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or (number is not None and not math.isfinite(number)):
        raise InputError(f"--memory-limit {value!r}: {hint}")
    if number is not None and 0 <= number <= 1:
        nbytes = number * MEMORY_LIMIT  # 0: no limit, as Dask reads it
        if number == 0:
            return
    elif number is not None:
        nbytes = number
    else:
        try:
            nbytes = parse_bytes(str(value))
        except (ValueError, TypeError):
            raise InputError(f"--memory-limit {value!r}: {hint}") from None
    if nbytes < min_worker_memory_bytes:
        raise InputError(
            f"--memory-limit {value!r}: below {format_bytes(min_worker_memory_bytes)} per worker; {hint}"
        )
    if nbytes > MEMORY_LIMIT:
        raise InputError(
            f"--memory-limit {value!r}: above this machine's memory ({format_bytes(MEMORY_LIMIT)}); {hint}"
        )


def worker_memory(client, results: dict) -> tuple[dict, dict]:
    """Peak resident memory (MB) and memory limit (MB) per worker address."""
    peaks: dict[str, float] = {}
    for r in results.values():  # workers that died since still count
        if r.get("worker") and r.get("peak_rss_mb"):
            peaks[r["worker"]] = max(peaks.get(r["worker"], 0.0), r["peak_rss_mb"])
    with contextlib.suppress(Exception):
        for addr, mb in client.run(peak_rss_mb).items():
            peaks[addr] = max(peaks.get(addr, 0.0), mb)
    limits = {}
    for addr, w in client.scheduler_info(n_workers=-1)["workers"].items():
        limits[addr] = round(w["memory_limit"] / 2**20, 1) if w.get("memory_limit") else None
    return dict(sorted(peaks.items())), limits


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(
            peak / 1024 ** (2 if sys.platform == "darwin" else 1), 1
        )  # bytes on macOS, KiB elsewhere
    except ImportError:  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return round(getattr(info, "peak_wset", info.rss) / 2**20, 1)


def worker_address() -> str | None:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


def one_line(err: BaseException) -> str:
    text = str(err).strip()
    line = text.splitlines()[0] if text else ""
    return line if isinstance(err, InputError) else f"{type(err).__name__}: {line}".rstrip(": ")


def failure_text(err: BaseException) -> str:
    from distributed import KilledWorker

    if isinstance(err, KilledWorker):
        return (
            "its worker died on every attempt (out of memory? give workers more memory with "
            "memory_limit, or fewer workers per machine)"
        )
    return one_line(err)


def _sweep_task(targets, subset: np.ndarray, limit: float | None):
    return targets.sweep(subset, limit)


def dask_sweeper(
    targets, subsets: list, limit: float | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per-category sweeps as Dask tasks: a ``sweeper`` for :func:`planner.audit.audit`.

    On a large network (``n_nodes × len(subsets) ≥ settings.parallel_min_node_sweeps``) the
    target graph is scattered once (``broadcast=False``: a worker fetches it once when it first
    runs one of the sweeps) and each subset becomes a task. Called inside a Dask task it uses
    :func:`distributed.worker_client`, which secedes from the worker's thread pool while
    waiting, so the sweeps can run on the same worker; called in a process with a Dask client
    it uses that client. Elsewhere, and on small networks where a task costs more than a sweep,
    it sweeps in this process.

    Yields (cost, nearest) per subset, in order, like :func:`planner.network.sweep_many`.
    """
    small = targets.n_nodes * len(subsets) < settings.parallel_min_node_sweeps
    with contextlib.nullcontext() if small or len(subsets) < 2 else _cluster_client() as client:
        if client is None:
            for subset in subsets:
                yield targets.sweep(subset, limit)
            return
        shared = client.scatter(targets, broadcast=False, hash=False)
        futures = [client.submit(_sweep_task, shared, np.asarray(s), limit, pure=False) for s in subsets]
        for fut in futures:
            yield fut.result()
            fut.release()  # a node-sized pair of arrays: free it on the worker at once


@contextlib.contextmanager
def _cluster_client():
    """The Dask client to submit sub-tasks with: a worker client inside a task, this process's
    client otherwise, or None when there is no cluster."""
    try:
        from distributed import get_client, get_worker, worker_client
    except ImportError:  # pragma: no cover - distributed is a dependency
        yield None
        return
    try:
        get_worker()
    except ValueError:
        try:
            yield get_client()
        except ValueError:
            yield None
        return
    with worker_client() as client:
        yield client
