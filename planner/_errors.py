"""Exceptions for user mistakes: one type, caught once by the CLI."""

from __future__ import annotations


class InputError(ValueError):
    """A problem with what the user gave: the message names the input and the fix.

    The CLI prints ``str(error)`` as one line and exits with code 2.
    """


class InfeasibleError(InputError):
    """A model that cannot be satisfied (too few sites, capacity below demand, ...)."""
