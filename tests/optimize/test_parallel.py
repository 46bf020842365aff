"""planner.optimize._parallel: the background thread."""

from __future__ import annotations

import pytest

from planner.optimize import _parallel


def test_background_thread_reraises_in_join():
    def fail():
        raise ValueError("from the thread")

    task = _parallel.Background(fail)
    with pytest.raises(ValueError, match="from the thread"):
        task.join()
