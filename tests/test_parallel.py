"""planner._parallel: work in a forked process, its result or its error back in the parent,
and the same work in-process where forking is not allowed."""

from __future__ import annotations

import os

import numpy as np
import pytest

from planner import settings
from planner._parallel import can_fork, in_background

pytestmark = pytest.mark.skipif(not can_fork(), reason="needs two cores and the fork start method")


def _pid_and_sum(values: np.ndarray) -> tuple[int, float]:
    return os.getpid(), float(values.sum())


def _fail(message: str) -> None:
    raise ValueError(message)


def test_the_child_gets_its_arguments_by_fork_and_sends_the_result_back():
    values = np.arange(1_000_000, dtype=float)  # inherited, not pickled
    with in_background(_pid_and_sum, values) as result:
        pid, total = result()
    assert pid != os.getpid() and total == 499_999_500_000.0


def test_the_childs_error_is_raised_in_the_parent():
    with (
        pytest.raises(ValueError, match="bad input: 名称"),
        in_background(_fail, "bad input: 名称") as result,
    ):
        result()


def test_without_fork_the_work_runs_here_when_asked(monkeypatch):
    with in_background(_pid_and_sum, np.ones(3), fork=False) as result:
        assert result() == (os.getpid(), 3.0)
    monkeypatch.setattr(settings, "sweep_workers", 1)  # one process, as the user asked
    assert not can_fork()
    with in_background(_pid_and_sum, np.ones(2)) as result:
        assert result() == (os.getpid(), 2.0)


def _die_in_child(parent_pid: int) -> str:
    if os.getpid() != parent_pid:
        os._exit(9)  # as if killed (out of memory)
    return "done here"


def test_a_child_that_dies_has_its_work_done_here():
    with in_background(_die_in_child, os.getpid()) as result:
        assert result() == "done here"
