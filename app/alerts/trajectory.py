"""The trajectory rule: where a unit should be in a year on its way to the plan's targets.

The path of a (unit, metric) starts at the plan's base year — the plan's ``start_year`` — at the unit's own
actual that year, and runs straight to each of the plan's later targets for the metric in year order
(piecewise linear). In a year between two points it is interpolated, and rounded half up to 2 decimals
like every percentage (``aggregates.service.percent``); after the last target it stays at the last
target; in the base year or before it there is no path (nothing to be behind yet).

Which plan: the one giving the metric's effective target for the year, exactly as the dashboards resolve
it (``Applicable.target``); for a year after every target of the plans that apply, the nearest plan that
set the metric a target at all, so that a plan's last target keeps counting after its year instead of
the alert going silent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from typing import NamedTuple

from app.aggregates.repository import PlanRow
from app.aggregates.service import CENT, Applicable
from app.aggregates.service import _plan_rank as plan_rank  # the dashboards' order of plans, not a copy


class Route(NamedTuple):
    """The plan a unit's metric is measured against and its targets for the metric, in year order."""

    plan_id: int
    base_year: int
    targets: tuple[tuple[int, Decimal], ...]
    # The target the dashboards show for the year (None after the plan's last target).
    target: PlanRow | None


def route(plans: Applicable, metric: str, year: int) -> Route | None:
    """The plan giving ``metric``'s target in ``year`` (or the nearest one that ever set it one)."""
    found = plans.target(metric, year)
    if found is None:
        earlier = [(r, r.year) for r in plans.rows if r.metric == metric and r.year is not None]
        if not earlier:
            return None
        chosen, _ = min(earlier, key=lambda pair: (*plan_rank(pair[0], year), -pair[1]))
    else:
        chosen = found
    targets = sorted(
        (r.year, Decimal(r.value))
        for r in plans.rows
        # A row naming a metric is one of the plan's targets: it has a year.
        if r.plan_id == chosen.plan_id and r.metric == metric and r.year is not None
    )
    return Route(chosen.plan_id, chosen.start_year, tuple(targets), found)


def _half_up(value: Fraction) -> Decimal:
    """Exact rounding half up to 2 decimals (the values are never negative)."""
    cents = math.floor(value * 100 + Fraction(1, 2))
    return (Decimal(cents) / 100).quantize(CENT)


def expected(
    base_year: int, base_actual: Decimal, targets: Sequence[tuple[int, Decimal]], year: int
) -> Decimal | None:
    """Where the path from (``base_year``, ``base_actual``) through ``targets`` stands in ``year``; None
    in the base year or before it, or when no target lies after the base year."""
    points = [(base_year, Fraction(base_actual))]
    points += [(y, Fraction(v)) for y, v in sorted(targets) if y > base_year]
    if year <= base_year or len(points) == 1:
        return None
    for (y0, v0), (y1, v1) in pairwise(points):
        if year <= y1:
            return _half_up(v0 + (v1 - v0) * (year - y0) / (y1 - y0))
    return _half_up(points[-1][1])


def behind(actual: Decimal, expected_value: Decimal, tolerance: Decimal) -> bool:
    """Strictly more than ``tolerance`` percentage points below the path (exactly at it is on track)."""
    return actual < expected_value - tolerance
