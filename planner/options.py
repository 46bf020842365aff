"""Options every command shares (thresholds in minutes, travel mode, isochrones), checked in
one place, so the command line, the Python functions and the batch accept and refuse the same
values with the same one-line :class:`~planner._errors.InputError`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from planner import settings
from planner._errors import InputError

#: Travel modes the network is built for (:mod:`planner.network`); here so that the command
#: line checks them without importing the network's stack.
MODES = ("walk", "bike", "drive")

#: ``--isochrones`` choices → what :func:`planner.audit.audit` takes as ``with_isochrones``.
ISOCHRONES = {"target": True, "all": "all", "none": False}


def parse_minutes(value: str | Iterable[Any], option: str = "--minutes") -> tuple[int, ...]:
    """Thresholds in whole minutes, from ``"5,10,15"`` or a sequence, sorted and without repeats.

    Each must be a positive whole number at most ``settings.max_threshold_minutes``.

    >>> parse_minutes("15, 5,10,5")
    (5, 10, 15)
    """
    parts = [v for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)
    try:
        values = {_whole(v) for v in parts}
    except (TypeError, ValueError):
        raise InputError(
            f"{option} {value!r}: give whole minutes separated by commas, e.g. 5,10,15"
        ) from None
    if not values or min(values) <= 0:
        raise InputError(f"{option} {value!r}: give positive whole minutes, e.g. 5,10,15")
    check_threshold(max(values), option)
    return tuple(sorted(values))


def _whole(value: Any) -> int:
    if isinstance(value, str):
        return int(value)
    if isinstance(value, bool) or not (isinstance(value, (int, float)) or hasattr(value, "__index__")):
        raise TypeError(value)
    if not (math.isfinite(value) and value == int(value)):
        raise ValueError(value)
    return int(value)


def check_threshold(minutes: float | None, option: str = "--minutes") -> float | None:
    """One service threshold in minutes: positive, finite, at most
    ``settings.max_threshold_minutes`` (None passes: the category's own target)."""
    if minutes is None:
        return None
    if not (math.isfinite(minutes) and minutes > 0):
        raise InputError(f"{option} {minutes:g}: give a positive number of minutes, e.g. 15")
    if minutes > settings.max_threshold_minutes:
        raise InputError(
            f"{option} {minutes:g}: above {settings.max_threshold_minutes:g} minutes "
            "(settings.max_threshold_minutes); give the service standard in minutes, e.g. 15"
        )
    return float(minutes)


def check_mode(mode: str) -> str:
    """``mode`` when it is a travel mode of :mod:`planner.network` (walk, bike, drive)."""
    if mode not in MODES:
        raise InputError(f"--mode {mode!r}: use walk, bike or drive")
    return mode


def isochrone_option(value: str | bool) -> bool | str:
    """``--isochrones`` target / all / none (or True / False) → ``with_isochrones`` of the audit."""
    if isinstance(value, bool):
        return value
    if value not in ISOCHRONES:
        raise InputError(f"--isochrones {value!r}: use target, all or none")
    return ISOCHRONES[value]
