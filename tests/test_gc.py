"""planner._gc.settled: what exists when a long step starts is left out of the collector's
passes during the step, and given back after it, even when the step fails."""

from __future__ import annotations

import gc

import pytest

from planner._gc import settled


def test_objects_alive_at_the_start_are_frozen_during_the_call_only():
    seen = {}

    @settled
    def step():
        seen["frozen"] = gc.get_freeze_count()
        return "done"

    before = [[i] for i in range(1000)]  # tracked objects alive at the start
    assert gc.get_freeze_count() == 0
    assert step() == "done"
    assert seen["frozen"] >= len(before)
    assert gc.get_freeze_count() == 0


def test_a_failing_step_unfreezes_too():
    @settled
    def step():
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        step()
    assert gc.get_freeze_count() == 0


def test_nested_or_user_frozen_calls_leave_the_freeze_alone():
    @settled
    def inner():
        return gc.get_freeze_count()

    @settled
    def outer():
        return inner(), gc.get_freeze_count()

    inside, after_inner = outer()
    assert inside == after_inner > 0  # the inner call neither froze again nor unfroze
    gc.freeze()  # the user's own freeze survives a planner call
    try:
        frozen = gc.get_freeze_count()
        young = [[] for _ in range(1000)]  # tracked and not frozen: a second freeze takes them
        inner()
        # Neither unfrozen (the count would be 0) nor frozen again (it would grow by the young
        # lists); a few frozen objects may be freed meanwhile, which lowers it.
        assert frozen - 100 <= gc.get_freeze_count() < frozen + len(young)
    finally:
        gc.unfreeze()


def test_cyclic_garbage_made_during_the_step_is_still_collected():
    @settled
    def step():
        a, b = [], []
        a.append(b)
        b.append(a)
        del a, b
        return gc.collect()

    assert step() >= 2


def test_paused_turns_the_collector_off_during_the_call_and_on_after_even_on_error():
    from planner._gc import paused

    @paused
    def step(fail: bool = False):
        if fail:
            raise ValueError("bad file")
        return gc.isenabled()

    assert gc.isenabled()
    assert step() is False
    assert gc.isenabled()
    with pytest.raises(ValueError, match="bad file"):
        step(fail=True)
    assert gc.isenabled()


def test_paused_leaves_a_collector_the_user_turned_off_alone():
    from planner._gc import paused

    @paused
    def step():
        return gc.isenabled()

    gc.disable()
    try:
        assert step() is False
        assert not gc.isenabled()  # not turned on behind the user's back
    finally:
        gc.enable()


def test_load_region_reads_with_the_collector_off(monkeypatch):
    """load_region builds hundreds of thousands of lists and geometries: every full collection
    during it walked all of them."""
    from planner import load_region, sources

    seen = []
    original = sources._load_file

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        return original(*args, **kwargs)

    monkeypatch.setattr(sources, "_load_file", spy)
    load_region("beijing_haidian_cau")
    assert seen == [False] and gc.isenabled()
