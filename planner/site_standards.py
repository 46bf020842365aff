"""Siting by the standards: land candidates sized per category, capacities, minimum
catchment and minimum spacing, put together for ``planner site`` (its default;
``--no-standards`` runs the pure models).

:func:`prepare` takes the region's land (or the user's parcels), keeps what is big enough for
the category (:mod:`planner.candidates`, :mod:`planner.sizing`), gives existing facilities
their capacity from their mapped size, and lists the pairs closer than the minimum spacing;
:func:`standards_model` builds the constrained model of the siting's model on its cost matrix
with residents as loads: :class:`~planner.optimize.constrained.ConstrainedCoverage` (mclp,
lscp), :class:`~planner.optimize.constrained_median.ConstrainedPMedian` or
:class:`~planner.optimize.constrained_median.ConstrainedPCenter`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner._errors import InputError
from planner.candidates import STREET_FALLBACK, land_candidates, sized_candidates
from planner.categories import Category, check_places
from planner.network import Network
from planner.optimize.constrained import ConstrainedCoverage, conflict_pairs
from planner.optimize.constrained_median import ConstrainedPCenter, ConstrainedPMedian
from planner.sizing import Sizing, existing_capacity, sizing_for
from planner.sources import Region

#: Models the standards' constraints apply to.
STANDARD_MODELS = ("mclp", "lscp", "pmedian", "pcenter")
#: Category → the category it is built next to when co-location is asked (毗邻建设: the
#: community health centre next to elderly care, 国办发〔2021〕56号 (十一)).
COLOCATE = {"health_centre": "elderly_care"}


@dataclass
class StandardsPlan:
    """What the standards add to a siting run (see :func:`prepare`)."""

    sizing: Sizing
    candidates: gpd.GeoDataFrame
    existing_capacity: np.ndarray
    conflicts: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def street_fallback(self) -> bool:
        return bool(self.info.get("street_fallback"))

    def summary(self) -> dict:
        """JSON-ready: the sizing with its sources and the candidates kept."""
        return {
            "sizing": self.sizing.as_dict(),
            "candidates": dict(self.info),
            "conflict_pairs": len(self.conflicts),
            "existing_with_known_capacity": int(np.isfinite(self.existing_capacity).sum()),
        }


def prepare(
    region: Region,
    net: Network,
    category: Category,
    existing: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame | None,
    model: str,
    colocate: bool = False,
    extra: gpd.GeoDataFrame | None = None,
) -> StandardsPlan:
    """Candidates, capacities and conflicts of one category by the standards.

    ``candidates`` are the user's parcels (:func:`planner.candidates.parcels_from_file`);
    None: the region's land (:func:`planner.candidates.land_candidates`). ``colocate``: only
    candidates within ``settings.colocation_distance_m`` of an existing facility of the
    category :data:`COLOCATE` names, mapped or among the user's ``extra`` facilities (site
    both together with ``--category a,b``).
    """
    if model not in STANDARD_MODELS:
        raise InputError(f"--model {model!r}: use one of {', '.join(STANDARD_MODELS)}")
    sizing = sizing_for(category)
    if candidates is not None:
        check_places(candidates, "candidates")  # as the pure models do: a row without a place is refused
    given = land_candidates(region) if candidates is None else candidates.to_crs(region.crs)
    # The region's land falls back to street points; a user's parcels never do.
    kept, info = sized_candidates(given, sizing, net if candidates is None else None)
    if len(kept) == 0:
        raise InputError(
            f"--candidates: none of the {len(given)} sites is big enough for a {category.name_en} "
            f"({_need(sizing)}); give larger parcels or their max_floor_area_m2 / land_area_m2"
        )
    if colocate:
        kept, info = _next_to(region, category, kept, info, extra)
    ex = (
        existing.merge(
            region.features[["osm_id", "tags"]].rename(columns={"osm_id": "facility_id"}),
            on="facility_id",
            how="left",
        )
        if len(existing)
        else existing
    )
    ex_cap = existing_capacity(sizing, ex)
    xy = np.vstack(
        [
            shapely.get_coordinates(shapely.point_on_surface(existing.geometry.to_numpy())).reshape(-1, 2),
            shapely.get_coordinates(kept.geometry.to_numpy()).reshape(-1, 2),
        ]
    )
    pairs = conflict_pairs(xy, sizing.min_spacing_m, fixed=np.arange(len(existing)))
    return StandardsPlan(sizing=sizing, candidates=kept, existing_capacity=ex_cap, conflicts=pairs, info=info)


def with_capacity(plan: StandardsPlan, capacity) -> StandardsPlan:
    """The plan with one capacity (residents) for every candidate instead of the sizing's;
    None leaves it as it is."""
    if capacity is None:
        return plan
    if np.ndim(capacity) != 0:
        raise InputError(
            "capacities: by the standards give one number for every candidate (the candidates are "
            "kept by size), or a capacity column in the parcels file"
        )
    plan.candidates = plan.candidates.assign(capacity=float(capacity))
    plan.info["capacity_given"] = float(capacity)
    return plan


def _next_to(
    region: Region, category: Category, kept: gpd.GeoDataFrame, info: dict, extra: gpd.GeoDataFrame | None
):
    """Keep the candidates next to an existing facility of the category's partner."""
    from planner import settings
    from planner.categories import load_categories, region_facilities
    from planner.site_levels import existing_within

    partner = COLOCATE.get(category.key)
    if partner is None:
        raise InputError(
            f"--colocate: {category.key} has no co-location rule; it applies to "
            f"{', '.join(f'{a} next to {b}' for a, b in COLOCATE.items())}"
        )
    others = region_facilities(region.features, [load_categories()[partner]], extra)
    near = existing_within(
        shapely.get_coordinates(kept.geometry.to_numpy()), others, settings.colocation_distance_m
    )
    if not near.any():
        raise InputError(
            f"--colocate: no candidate site for {category.key} within "
            f"{settings.colocation_distance_m:g} m of an existing {partner}; site both together "
            f"(--category {category.key},{partner}) or leave --colocate out"
        )
    return kept[near].reset_index(drop=True), {
        **info,
        "kept": int(near.sum()),
        f"next_to_{partner}": int(near.sum()),
    }


def standards_model(
    plan: StandardsPlan,
    cost,
    weights: np.ndarray,
    people: np.ndarray,
    new: int | None,
    minutes: float,
    n_existing: int,
    model: str = "mclp",
):
    """The constrained model of ``model``: existing facilities first (open, their capacity
    where known), then the sized candidates (capacity, minimum catchment, spacing)."""
    caps = np.concatenate([plan.existing_capacity, plan.candidates["capacity"].to_numpy(float)])
    low = np.concatenate(
        [np.zeros(n_existing), np.full(len(plan.candidates), plan.sizing.min_catchment_residents)]
    )
    kw = {
        "fixed": np.arange(n_existing),
        "loads": people,
        "capacities": caps,
        "min_load": low,
        "conflicts": plan.conflicts,
    }
    if model == "pmedian":
        return ConstrainedPMedian.from_cost_matrix(cost, weights, p=new, **kw)
    if model == "pcenter":
        return ConstrainedPCenter.from_cost_matrix(cost, weights, p=new, **kw)
    return ConstrainedCoverage.from_cost_matrix(cost, weights, p=new, minutes=minutes, **kw)


def row_people(demand: pd.DataFrame, base_row: np.ndarray) -> np.ndarray:
    """Residents per model row: a base row's residents (less its elderly when they have a row
    of their own, :func:`planner.siting.elderly_rows`), an elderly row's elderly."""
    n = len(demand)
    pop = demand["population"].to_numpy(float)
    eld = demand["elderly"].to_numpy(float)
    split = np.zeros(n, bool)
    split[base_row[n:]] = True
    return np.concatenate([np.where(split, np.maximum(pop - eld, 0.0), pop), eld[base_row[n:]]])


def site_columns(proposed: gpd.GeoDataFrame, table: pd.DataFrame) -> gpd.GeoDataFrame:
    """Add to the proposed sites (rank order, as ``table``'s new rows) the residents each
    takes over in the model (``people_assigned``), its capacity and minimum catchment."""
    out = proposed.copy()
    out["people_assigned"] = table["load"].to_numpy(float)
    out["capacity"] = table["capacity"].to_numpy(float)
    out["min_catchment"] = table["min_load"].to_numpy(float)
    out["uses"] = [
        describe_use(s, land, floor)
        for s, land, floor in zip(
            out["source"], out.get("land_m2", np.nan), out.get("floor_m2", np.nan), strict=True
        )
    ]
    return out


def describe_use(source: str, land, floor) -> str:
    """The land or building a site uses, e.g. ``"building, land 935 m², floor 935 m²"``."""
    if source == STREET_FALLBACK:
        return STREET_FALLBACK
    parts = [source]
    if np.isfinite(land):
        parts.append(f"land {land:,.0f} m²")
    if np.isfinite(floor):
        parts.append(f"floor {floor:,.0f} m²")
    return ", ".join(parts)


def _need(s: Sizing) -> str:
    need = [
        f"land ≥ {s.land_m2:g} m²" if s.land_m2 else "",
        f"floor ≥ {s.floor_m2:g} m²" if s.floor_m2 else "",
    ]
    return " or ".join(n for n in need if n) or "no size"
