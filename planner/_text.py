"""Text from data files: one reading of a cell or property shared by every reader."""

from __future__ import annotations

import math
from typing import Any


def text_or_none(value: Any) -> str | None:
    """A cell or property as stripped text; None when absent, NaN or blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None
