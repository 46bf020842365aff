"""Text cells of user files (CSV, GeoPackage, plan properties): one reading for every reader."""

from __future__ import annotations

import math
from typing import Any


def clean_text(value: Any) -> str | None:
    """A cell as stripped text, or None when it is missing (None, NaN) or blank.

    >>> clean_text("  东区 "), clean_text(float("nan")), clean_text("   ")
    ('东区', None, None)
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None
