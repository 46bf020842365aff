"""A forked process, a background thread and numpy's BLAS threads."""

from __future__ import annotations

import functools
import multiprocessing
import threading
import time
from collections.abc import Callable
from typing import Any

from threadpoolctl import ThreadpoolController


def can_fork() -> bool:
    """A child process can be forked safely: POSIX fork and no other thread running."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


class ForkedCall:
    """Run ``fn(*args)`` in a forked child process; ``result()`` waits for its return value.

    Fork shares the parent's arrays copy-on-write, so nothing large is pickled on the way in;
    only the (small) return value comes back through a pipe. Any failure in the child
    gives ``None`` and the caller computes the value itself.
    """

    def __init__(self, fn, *args):
        ctx = multiprocessing.get_context("fork")
        self._recv, send = ctx.Pipe(duplex=False)

        def target() -> None:
            try:
                send.send(fn(*args))
            except BaseException:  # noqa: BLE001 - reported to the parent as "no result"
                send.send(None)

        self._process = ctx.Process(target=target, daemon=True)
        self._process.start()
        send.close()

    def result(self):
        try:
            value = self._recv.recv()
        except EOFError:
            value = None
        self._process.join()
        return value


@functools.cache
def blas_threads() -> ThreadpoolController:
    """The BLAS libraries numpy and scipy loaded (found once: about 1 ms)."""
    return ThreadpoolController()


class Background:
    """Run ``fn()`` in a thread (for calls that release the GIL, like HiGHS's run);
    :meth:`join` waits and re-raises what it raised.

    The caller typically goes on with numpy work that holds the GIL; without the
    ``sleep(0)`` the new thread would wait up to the interpreter's switch interval (5 ms)
    to get as far as the call.
    """

    def __init__(self, fn: Callable[[], Any]):
        self._error: BaseException | None = None

        def target() -> None:
            try:
                fn()
            except BaseException as error:  # noqa: BLE001 - re-raised in join()
                self._error = error

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()
        time.sleep(0)

    def join(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error
