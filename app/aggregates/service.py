"""Target versus actual for a unit, its children and the years: the rules of the dashboards.

- Counting: ``repository.count`` over the counters (see ``metrics.py`` for what each metric counts and
  ``counters.py`` for how a year is counted on its 31 December); ``through_time.py`` decides which units'
  counts make a (unit, year): the unit itself in the years it existed (``basis=as_was``), or with its
  predecessors for the years before it took them over (``basis=lineage``). Percentages are
  numerator / denominator of summed counts, never averages, rounded half up to 2 decimals.
- The effective target of a metric for a unit and a year: among the plans at the unit or above it that
  set a target for the metric in that year or later, the nearest one (fewest levels up; at one unit, the
  plan whose period covers the year, then the latest-starting one), and of that plan the target of the
  first year ≥ the year asked. The top-level ``plan_id`` is the nearest plan at or above the unit.
- Status: ``no_data`` when the unit did not exist that year, nobody in the subtree was evaluated that
  year, or the denominator is 0; else ``no_target`` when no target applies, else
  ``met`` when actual ≥ target, else ``behind``.
- Scope: ``AGGREGATE_READ`` on the unit (404 outside the caller's subtrees, 403 for a member).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import metrics, through_time
from app.aggregates import repository as repo
from app.aggregates.metrics import METRICS, Cells, Kind, Metric
from app.aggregates.schemas import (
    Basis,
    Breakdown,
    BreakdownRow,
    MetricProgress,
    MetricRead,
    Progress,
    ProgressStatus,
    Trend,
    TrendRow,
)
from app.auth.policy import Action
from app.auth.scope import Subject
from app.core.dates import today
from app.core.errors import ValidationFailed
from app.orgs.service import get_visible_life

CENT = Decimal("0.01")
MAX_TREND_YEARS = 50


def percent(numerator: int, denominator: int) -> Decimal | None:
    """100 × numerator / denominator, rounded half up to 2 decimals, in exact integer arithmetic."""
    if denominator == 0:
        return None
    cents = (20000 * numerator + denominator) // (2 * denominator)
    return (Decimal(cents) / 100).quantize(CENT)


def _plan_rank(row: repo.PlanRow, year: int) -> tuple[int, bool, int, int]:
    return (row.depth, not row.start_year <= year <= row.end_year, -row.start_year, -row.plan_id)


class Applicable:
    """The plans (and their targets) at or above one unit."""

    def __init__(self, rows: Iterable[repo.PlanRow]) -> None:
        self.rows = list(rows)
        self._targets: dict[tuple[str, int], repo.PlanRow | None] = {}

    def nearest_plan(self, year: int) -> int | None:
        if not self.rows:
            return None
        return min(self.rows, key=lambda r: _plan_rank(r, year)).plan_id

    def target(self, metric: str, year: int) -> repo.PlanRow | None:
        if (metric, year) not in self._targets:
            found = [r for r in self.rows if r.metric == metric and r.year is not None and r.year >= year]
            best = min(found, key=lambda r: (*_plan_rank(r, year), r.year)) if found else None
            self._targets[(metric, year)] = best
        return self._targets[(metric, year)]


def measure(
    metric: Metric, cells: dict[Kind, Cells], plans: Applicable, year: int, *, has_data: bool = True
) -> dict[str, Any]:
    """One metric's numbers from counted cells (see :func:`judge`)."""
    numerator = metrics.total(metric.count_numerator, cells, year)
    denominator = metrics.total(metric.count_denominator, cells, year)
    return judge(metric, numerator, denominator, plans, year, has_data=has_data)


def judge(
    metric: Metric, numerator: int, denominator: int, plans: Applicable, year: int, *, has_data: bool = True
) -> dict[str, Any]:
    """One metric's numbers against its target. ``has_data`` false (the unit did not exist that year, or
    nobody in its subtree was evaluated) makes it ``no_data`` whatever the counts: a lack of evaluations
    never reads as "behind"."""
    actual = percent(numerator, denominator) if has_data else None
    found = plans.target(metric.code, year)
    target = Decimal(found.value).quantize(CENT) if found is not None else None
    if denominator == 0 or not has_data:
        status = ProgressStatus.NO_DATA
    elif target is None:
        status = ProgressStatus.NO_TARGET
    elif actual is not None and actual >= target:
        status = ProgressStatus.MET
    else:
        status = ProgressStatus.BEHIND
    return {
        "numerator": numerator,
        "denominator": denominator,
        "actual": actual,
        "target": target,
        "target_year": found.year if found is not None else None,
        "plan_id": found.plan_id if found is not None else None,
        "gap": actual - target if actual is not None and target is not None else None,
        "status": status,
    }


def _metric(code: str) -> Metric:
    metric = metrics.get(code)
    if metric is None:
        raise ValidationFailed(
            f"Unknown metric {code!r}.",
            details={"field": "metric", "known": [m.code for m in METRICS]},
        )
    return metric


def registry() -> list[MetricRead]:
    return [MetricRead.model_validate(m, from_attributes=True) for m in METRICS]


async def progress(
    session: AsyncSession, subject: Subject, unit_id: int, year: int, basis: Basis = Basis.AS_WAS
) -> Progress:
    unit = await get_visible_life(session, subject, unit_id, Action.AGGREGATE_READ)
    kinds = frozenset().union(*(m.kinds for m in METRICS))
    sources = await through_time.sources(session, [unit], range(year, year + 1), basis)
    tally = await repo.count(session, sources.unit_ids(), year, year, kinds)
    rows = await repo.applicable_plans(session, [unit_id], [m.code for m in METRICS], year)
    plans = Applicable(rows)
    cells, has_data = sources.cells(tally, unit_id, year)
    return Progress(
        org_unit_id=unit_id,
        year=year,
        basis=basis,
        plan_id=plans.nearest_plan(year),
        metrics=[
            MetricProgress(metric=m.code, **measure(m, cells, plans, year, has_data=has_data))
            for m in METRICS
        ],
    )


async def breakdown(
    session: AsyncSession,
    subject: Subject,
    unit_id: int,
    year: int,
    metric_code: str,
    basis: Basis = Basis.AS_WAS,
) -> Breakdown:
    """The children as the tree stood on the unit's reference day of the year (``as_was``), or the
    children it has today, each re-based on its predecessors (``lineage``)."""
    metric = _metric(metric_code)
    unit = await get_visible_life(session, subject, unit_id, Action.AGGREGATE_READ)
    day = today() if basis == Basis.LINEAGE else through_time.reference_day(unit, year)
    children = await repo.children_on(session, unit_id, day) if day is not None else []
    # The ids themselves, not a subquery: PostgreSQL then reads each child's counters by primary key
    # instead of planning a (parallel) scan of org_units for them.
    child_ids = [child.id for child in children]
    # The plans at or above the unit apply to every child, one level further up; only the children's own
    # plans differ (two small reads instead of the whole chain once per child).
    above = [
        row._replace(depth=row.depth + 1)
        for row in await repo.applicable_plans(session, [unit_id], [metric.code], year)
    ]
    own: dict[int, list[repo.PlanRow]] = defaultdict(list)
    for row in await repo.plans_below(session, unit_id, [metric.code], year):
        own[row.unit_id].append(row)
    above_only = Applicable(above)  # most children have no plan of their own: one lookup serves them all
    if basis == Basis.AS_WAS:
        # Each child counts itself (it existed that day): numerator, denominator and evaluated people are
        # summed by the database, one row per child, whatever the number of children.
        totals = await repo.metric_totals(session, child_ids, year, metric)
        numbers = {c: (n, d, e > 0) for c, (n, d, e) in totals.items()}
    else:
        sources = await through_time.sources(session, children, range(year, year + 1), basis)
        tally = await repo.count(session, sources.unit_ids(), year, year, metric.kinds, metric.groups)
        numbers = {}
        for child_id in child_ids:
            cells, has_data = sources.cells(tally, child_id, year)
            numerator = metrics.total(metric.count_numerator, cells, year)
            numbers[child_id] = (numerator, metrics.total(metric.count_denominator, cells, year), has_data)
    items = []
    for child_id, name, kind, _, _ in children:
        numerator, denominator, has_data = numbers.get(child_id, (0, 0, False))
        plans = Applicable(own[child_id] + above) if child_id in own else above_only
        items.append(
            BreakdownRow(
                org_unit_id=child_id,
                name=name,
                kind=kind,
                metric=metric.code,
                **judge(metric, numerator, denominator, plans, year, has_data=has_data),
            )
        )
    return Breakdown(org_unit_id=unit_id, year=year, metric=metric.code, basis=basis, items=items)


async def trend(
    session: AsyncSession,
    subject: Subject,
    unit_id: int,
    metric_code: str,
    from_year: int,
    to_year: int,
    basis: Basis = Basis.AS_WAS,
) -> Trend:
    metric = _metric(metric_code)
    if from_year > to_year:
        raise ValidationFailed("from_year must not be after to_year.", details={"field": "from_year"})
    if to_year - from_year + 1 > MAX_TREND_YEARS:
        raise ValidationFailed(
            f"A trend spans at most {MAX_TREND_YEARS} years.", details={"field": "to_year"}
        )
    unit = await get_visible_life(session, subject, unit_id, Action.AGGREGATE_READ)
    years = range(from_year, to_year + 1)
    sources = await through_time.sources(session, [unit], years, basis)
    tally = await repo.count(session, sources.unit_ids(), from_year, to_year, metric.kinds, metric.groups)
    plans = Applicable(await repo.applicable_plans(session, [unit_id], [metric.code], from_year))
    items = []
    for year in years:
        cells, has_data = sources.cells(tally, unit_id, year)
        items.append(TrendRow(year=year, **measure(metric, cells, plans, year, has_data=has_data)))
    return Trend(
        org_unit_id=unit_id,
        metric=metric.code,
        from_year=from_year,
        to_year=to_year,
        basis=basis,
        items=items,
    )
