"""Alerts (cảnh báo), computed from the data on every request — never entered by hand.

- **Which units**: the requested unit and its descendants down to ``depth`` levels below it (default 1:
  the unit and its direct children; at most 3) as the tree stood on the unit's reference day of the year
  (``through_time.reference_day``: 31 December, or its last day), like ``/aggregates/breakdown``. The
  national tree has ~98,000 units: a whole subtree would be a different endpoint, not a default.
- ``behind_trajectory``, per listed unit and metric (``basis=as_was``): the path of ``trajectory.py`` —
  from the plan's base year (its ``start_year``) at the unit's own actual that year, straight through the
  plan's later targets for the metric; the plan is the one giving the metric's effective target
  (``Applicable.target``, as the dashboards resolve it), or after its last target the nearest plan that set
  one. An alert when the actual is **strictly more** than ``tolerance`` percentage points (default 5) below
  the path. No alert in the base year or before it, when the unit did not exist or nobody was evaluated in
  the base year or in the year (``no_data``), or the denominator is 0. The counters of every listed unit,
  every metric and both years are read in one query (per 5,000 units).
- ``review_waiting``, per listed unit: the evaluations of the year in its subtree (today's tree: the queue
  is a present fact) still ``submitted`` or ``in_review`` that were submitted ``review_days`` or more
  calendar days ago (UTC days: on or before today − ``review_days``; default ``CDHT_REVIEW_WAITING_DAYS``,
  14); ``since`` is the day the oldest of them was submitted. Read from the rolled-up queue
  (``aggregates.waiting``): a few hundred rows per request whatever the number waiting.
- ``report_overdue``, per listed unit that has a due date for the year (``reporting.repository.due_dates``;
  the requested unit too when one applies to it): today is after the due date and its current submission
  is missing or ``returned``; a report submitted late is not overdue. ``since`` is the first day late.
- Scope: ``AGGREGATE_READ`` on the requested unit (404 outside the caller's subtrees, 403 for a member),
  like the aggregates: alerts carry counts and dates, never person-level data.
- Order: by unit (the requested unit, then by level and name), then kind, then the metric registry's order;
  ``limit``/``offset`` page that list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import repository as aggregates_repo
from app.aggregates import waiting
from app.aggregates.metrics import METRICS, Metric
from app.aggregates.service import Applicable, percent
from app.aggregates.through_time import reference_day
from app.alerts import repository as repo
from app.alerts import trajectory
from app.alerts.repository import Listed
from app.alerts.schemas import Alert, AlertKind, AlertPage
from app.auth.policy import Action
from app.auth.scope import Subject
from app.core.dates import ONE_DAY, today
from app.core.pagination import PageParams
from app.orgs.models import OrgUnit
from app.orgs.service import get_visible as get_visible_unit
from app.reporting import repository as reporting_repo
from app.reporting.models import SubmissionStatus

MAX_DEPTH = 3
DEFAULT_TOLERANCE = Decimal(5)
_KIND_ORDER = {kind: i for i, kind in enumerate(AlertKind)}
_METRIC_ORDER = {m.code: i for i, m in enumerate(METRICS)}


@dataclass(frozen=True)
class Options:
    depth: int = 1
    tolerance: Decimal = DEFAULT_TOLERANCE
    review_days: int = 14
    kinds: frozenset[AlertKind] = field(default_factory=lambda: frozenset(AlertKind))


async def list_alerts(
    session: AsyncSession, subject: Subject, unit_id: int, year: int, options: Options, page: PageParams
) -> AlertPage:
    unit = await get_visible_unit(session, subject, unit_id, Action.AGGREGATE_READ)
    alerts = await compute(session, unit, year, options)
    return AlertPage(
        org_unit_id=unit.id,
        year=year,
        depth=options.depth,
        items=alerts[page.offset : page.offset + page.limit],
        total=len(alerts),
        limit=page.limit,
        offset=page.offset,
    )


async def compute(session: AsyncSession, unit: OrgUnit, year: int, options: Options) -> list[Alert]:
    """Every alert of ``unit`` and its listed descendants for ``year``, in list order. No scope check:
    the caller has made it (the request), or has none to make (the scan, for a subscription's unit)."""
    day = reference_day(unit, year)
    root = Listed(unit.id, unit.name, unit.kind, unit.valid_from, unit.valid_to, 0, None)
    below = await repo.units_below(session, unit.id, day, options.depth) if day and options.depth else []
    listed = [root, *below]
    alerts: list[Alert] = []
    if AlertKind.BEHIND_TRAJECTORY in options.kinds:
        alerts += await _behind(session, listed, year, options)
    if AlertKind.REPORT_OVERDUE in options.kinds:
        alerts += await _overdue(session, listed, year)
    if AlertKind.REVIEW_WAITING in options.kinds:
        alerts += await _waiting(session, listed, year, options.review_days)
    position = {u.id: i for i, u in enumerate(listed)}
    alerts.sort(
        key=lambda a: (position[a.org_unit_id], _KIND_ORDER[a.kind], _METRIC_ORDER.get(a.metric or "", -1))
    )
    return alerts


# ------------------------------------------------------------------------------------ behind_trajectory


async def _plans(session: AsyncSession, listed: list[Listed], year: int, depth: int) -> dict[int, Applicable]:
    """The plans applying to each listed unit: those at or above the requested unit (one read, shifted
    one level per level down) and those of the listed units between (few; one read)."""
    root = listed[0]
    codes = [m.code for m in METRICS]
    above = await aggregates_repo.applicable_plans(session, [root.id], codes, 0)
    own: dict[int, list[aggregates_repo.PlanRow]] = {}
    day = reference_day(root, year)
    if len(listed) > 1 and day is not None:
        own = repo.group_rows(await repo.plans_below(session, root.id, day, depth, codes))
    parents = {u.id: u.parent_id for u in listed}
    shared: dict[int, Applicable] = {}  # per level, for the units with no plan of their own in between
    found: dict[int, Applicable] = {}
    for unit in listed:
        rows = []
        node: int | None = unit.id
        distance = 0
        while node is not None and node != root.id:
            rows += [r._replace(depth=distance) for r in own.get(node, [])]
            node, distance = parents.get(node), distance + 1
        if rows:
            found[unit.id] = Applicable(rows + [r._replace(depth=r.depth + unit.level) for r in above])
        else:
            if unit.level not in shared:
                shared[unit.level] = Applicable([r._replace(depth=r.depth + unit.level) for r in above])
            found[unit.id] = shared[unit.level]
    return found


async def _behind(session: AsyncSession, listed: list[Listed], year: int, options: Options) -> list[Alert]:
    plans = await _plans(session, listed, year, options.depth)
    routes: list[tuple[Listed, Metric, trajectory.Route]] = []
    known: dict[tuple[int, str], trajectory.Route | None] = {}  # most units share their plans
    for unit in listed:
        if reference_day(unit, year) is None:
            continue
        for metric in METRICS:
            key = (id(plans[unit.id]), metric.code)
            if key not in known:
                known[key] = trajectory.route(plans[unit.id], metric.code, year)
            route = known[key]
            if route is not None and route.base_year < year and reference_day(unit, route.base_year):
                routes.append((unit, metric, route))
    # Nobody evaluated in the year or in the base year: no data, no alert; the metrics' counters are read
    # only for the units that have both.
    evaluated = await repo.evaluated(
        session, sorted({u.id for u, _, _ in routes}), {year} | {r.base_year for _, _, r in routes}
    )
    routes = [
        (u, m, r) for u, m, r in routes if evaluated[u.id].get(year) and evaluated[u.id].get(r.base_year)
    ]
    asked = {(m, y) for _, m, r in routes for y in (year, r.base_year)}
    totals = await repo.metric_totals(session, sorted({u.id for u, _, _ in routes}), asked)

    def actual(unit_id: int, metric: Metric, at: int) -> tuple[Decimal | None, int, int]:
        numerator, denominator = totals.get(unit_id, {}).get((metric.code, at), (0, 0))
        return percent(numerator, denominator), numerator, denominator

    alerts = []
    for unit, metric, route in routes:
        now, numerator, denominator = actual(unit.id, metric, year)
        base, _, _ = actual(unit.id, metric, route.base_year)
        if now is None or base is None:
            continue
        expected = trajectory.expected(route.base_year, base, route.targets, year)
        if expected is None or not trajectory.behind(now, expected, options.tolerance):
            continue
        target_year, target = (
            (route.target.year, Decimal(route.target.value)) if route.target else route.targets[-1]
        )
        alerts.append(
            Alert(
                kind=AlertKind.BEHIND_TRAJECTORY,
                org_unit_id=unit.id,
                name=unit.name,
                metric=metric.code,
                actual=now,
                expected=expected,
                details={
                    "target": float(target),
                    "target_year": target_year,
                    "plan_id": route.plan_id,
                    "base_year": route.base_year,
                    "base_actual": float(base),
                    "tolerance": float(options.tolerance),
                    "numerator": numerator,
                    "denominator": denominator,
                },
            )
        )
    return alerts


# ------------------------------------------------------------------------ report_overdue, review_waiting


async def _overdue(session: AsyncSession, listed: list[Listed], year: int) -> list[Alert]:
    on = today()
    due = {}
    for ids in repo.chunks([u.id for u in listed]):
        due.update(await reporting_repo.due_dates(session, ids, year))
    late = [u for u in listed if u.id in due and on > due[u.id].due_on]
    current = {}
    for ids in repo.chunks([u.id for u in late]):
        current.update(await reporting_repo.current_submissions(session, ids, year))
    alerts = []
    for unit in late:
        submission = current.get(unit.id)
        if submission is not None and submission.status != SubmissionStatus.RETURNED.value:
            continue
        due_on = due[unit.id].due_on
        alerts.append(
            Alert(
                kind=AlertKind.REPORT_OVERDUE,
                org_unit_id=unit.id,
                name=unit.name,
                since=due_on + ONE_DAY,
                details={
                    "due_on": due_on.isoformat(),
                    "status": "not_submitted" if submission is None else submission.status,
                    "days_late": (on - due_on).days,
                    "set_by": due[unit.id].set_by,
                },
            )
        )
    return alerts


async def _waiting(session: AsyncSession, listed: list[Listed], year: int, review_days: int) -> list[Alert]:
    last_day = today() - timedelta(days=review_days)
    queue = await waiting.totals(session, [u.id for u in listed], year, last_day)
    return [
        Alert(
            kind=AlertKind.REVIEW_WAITING,
            org_unit_id=unit.id,
            name=unit.name,
            since=queue[unit.id].oldest,
            details={
                "count": queue[unit.id].count,
                "oldest_submitted_on": queue[unit.id].oldest.isoformat(),
                "review_days": review_days,
            },
        )
        for unit in listed
        if unit.id in queue
    ]
