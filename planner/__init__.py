"""planner: community-service planning for China on OpenStreetMap street networks.

Audit 15-minute life circles (一刻钟便民生活圈), propose sites for new facilities, and
review new estates against the facility rules of the Chinese standards.

    >>> from planner import audit, load_region
    >>> region = load_region("beijing_haidian_cau")          # a bundled real extract
    >>> result = audit.audit(region, categories="kindergarten,market")
    >>> result.coverage                                      # shares within 5/10/15 min
"""

from planner import audit, categories, demand, network, settings, sources
from planner._errors import InfeasibleError, InputError
from planner.audit import AuditResult
from planner.network import Network, build_network
from planner.sources import Region, load_region

__version__ = "0.1.0"

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
