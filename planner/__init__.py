"""planner: community-service planning for China on OpenStreetMap street networks.

Audit 15-minute life circles (一刻钟便民生活圈), propose sites for new facilities, and
review new estates against the facility rules of the Chinese standards.

    >>> from planner import audit, load_region
    >>> region = load_region("beijing_haidian_cau")          # a bundled real extract
    >>> result = audit.audit(region, categories="kindergarten,market")
    >>> result.coverage                                      # shares within 5/10/15 min
"""

import importlib
from typing import Any

from planner import settings
from planner._errors import InfeasibleError, InputError

__version__ = "0.1.0"

#: Imported when first used (PEP 562), so that a command or a submodule that needs none of
#: them (``planner --help``, ``planner categories``) does not import the scientific stack.
_SUBMODULES = ("audit", "categories", "demand", "network", "sources")
_NAMES = {
    "AuditResult": "planner.audit",
    "Network": "planner.network",
    "build_network": "planner.network",
    "Region": "planner.sources",
    "load_region": "planner.sources",
}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"planner.{name}")
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'planner' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "AuditResult",
    "InfeasibleError",
    "InputError",
    "Network",
    "Region",
    "audit",
    "build_network",
    "categories",
    "demand",
    "load_region",
    "network",
    "settings",
    "sources",
]
