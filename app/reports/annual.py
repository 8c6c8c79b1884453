"""The annual report (báo cáo năm) of a unit: for the unit's whole subtree (the totals, first) and for each
direct child unit, per population group and for all groups, the funnel of the year's evaluations and the
shares that plans set targets for.

Definitions (people count where they belonged on the unit's reference day of the year — 31 December, or
its last day if it ended that year — with the group they had then, as in the aggregates; the children are
those the unit had that day):

- ``registered``: people who belonged to the subtree that day (the aggregates' denominator);
- ``self_assessed``: people whose evaluation of the year has been handed in at least once — status
  ``submitted``, ``in_review``, ``returned``, ``reviewed`` or ``recognised`` (submitting needs a self score
  on every indicator, so this is "completed the self-assessment"). ``draft`` and ``withdrawn`` do not count;
- ``submitted``: with the committee or past it — ``submitted``, ``in_review``, ``reviewed``, ``recognised``
  (a ``returned`` evaluation is back with the person);
- ``reviewed``: ``reviewed`` or ``recognised``; ``passed``: of those, the ones whose result passed;
- ``recognised``, ``digital_skills``, ``digital_proficient``: exactly the aggregates' counts (recognised under
  a decision that is not revoked; of them, digital level basic or proficient, and proficient).

Percentages: ``recognised_pct`` = recognised / registered of the row's group(s), against the target of the
metric that covers that group (``resident`` → ``adults_recognised_pct``, ``staff`` and ``worker`` →
``staff_recognised_pct``, ``student`` → ``students_recognised_pct``; the ``all`` row has none);
``digital_*_pct`` = digital / recognised against the digital metrics' targets. ``metrics`` repeats, per
unit, exactly what ``/aggregates/progress`` (the totals) and ``/aggregates/breakdown`` (the children) say:
the counts, targets and statuses come from ``app.aggregates`` (``repository.count``,
``repository.applicable_plans``, ``service.measure``), never counted twice. ``collectives`` gives, per
collective title (learning families, clans, communities, units), how many of its subjects the subtree
has and how many were recognised that year — the numbers of the matching ``learning_*_pct`` metric.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import metrics, through_time
from app.aggregates import repository as aggregates_repo
from app.aggregates.metrics import METRICS, Cells, Kind
from app.aggregates.schemas import Basis, MetricProgress
from app.aggregates.service import Applicable, measure, percent
from app.auth.policy import Action
from app.auth.scope import Subject
from app.evaluations.models import DigitalLevel, Status
from app.orgs import past
from app.orgs.models import OrgUnit
from app.orgs.service import get_visible as get_visible_unit
from app.people.models import Group
from app.reports import repository as repo
from app.reports.schemas import AnnualReport, CollectiveRow, GroupRow, UnitReport

ALL = "all"
GROUPS = (Group.RESIDENT.value, Group.WORKER.value, Group.STAFF.value, Group.STUDENT.value)
PERSON_GROUPS = frozenset(GROUPS)
# The collective titles, each with the metric whose numbers its row repeats.
COLLECTIVE_METRICS = {
    "learning_family": "learning_families_pct",
    "learning_clan": "learning_clans_pct",
    "learning_community": "learning_communities_pct",
    "learning_unit": "learning_units_pct",
}
GROUP_METRIC = {
    Group.RESIDENT.value: "adults_recognised_pct",
    Group.WORKER.value: "staff_recognised_pct",
    Group.STAFF.value: "staff_recognised_pct",
    Group.STUDENT.value: "students_recognised_pct",
}
S = Status
SELF_ASSESSED = frozenset({S.SUBMITTED, S.IN_REVIEW, S.RETURNED, S.REVIEWED, S.RECOGNISED})
SUBMITTED = frozenset({S.SUBMITTED, S.IN_REVIEW, S.REVIEWED, S.RECOGNISED})
REVIEWED = frozenset({S.REVIEWED, S.RECOGNISED})
_DIGITAL = frozenset({DigitalLevel.BASIC.value, DigitalLevel.PROFICIENT.value})


def _funnel(cells: repo.FunnelCells, root: int, groups: frozenset[str]) -> dict[str, int]:
    counts = dict.fromkeys(("self_assessed", "submitted", "reviewed", "passed"), 0)
    for (unit, group, status, passed), n in cells.items():
        if unit != root or group not in groups:
            continue
        counts["self_assessed"] += n if status in SELF_ASSESSED else 0
        counts["submitted"] += n if status in SUBMITTED else 0
        counts["reviewed"] += n if status in REVIEWED else 0
        counts["passed"] += n if status in REVIEWED and passed else 0
    return counts


def _group_row(
    group: str,
    cells: dict[Kind, Cells],
    funnel: dict[str, int],
    measures: dict[str, MetricProgress],
    year: int,
) -> GroupRow:
    groups = PERSON_GROUPS if group == ALL else frozenset({group})

    def total(kind: Kind, levels: frozenset[str] | None = None) -> int:
        return metrics.total(metrics.Count(kind, groups, levels), cells, year)

    registered = total(Kind.PEOPLE)
    recognised = total(Kind.RECOGNISED)
    digital = total(Kind.RECOGNISED, _DIGITAL)
    proficient = total(Kind.RECOGNISED, frozenset({DigitalLevel.PROFICIENT.value}))
    target_metric = GROUP_METRIC.get(group)
    return GroupRow(
        group=group,
        registered=registered,
        **funnel,
        recognised=recognised,
        digital_skills=digital,
        digital_proficient=proficient,
        recognised_pct=percent(recognised, registered),
        recognised_target=measures[target_metric].target if target_metric else None,
        digital_skills_pct=percent(digital, recognised),
        digital_skills_target=measures["digital_skills_pct"].target,
        digital_proficient_pct=percent(proficient, recognised),
        digital_proficient_target=measures["digital_proficient_pct"].target,
    )


async def annual(session: AsyncSession, subject: Subject, unit_id: int, year: int) -> AnnualReport:
    unit = await get_visible_unit(session, subject, unit_id, Action.REPORT_READ)
    return await build(session, unit, year)


async def build(session: AsyncSession, unit: OrgUnit, year: int) -> AnnualReport:
    """The report of a unit the caller was already allowed to read (or to submit, app/reporting)."""
    unit_id = unit.id
    day = through_time.reference_day(unit, year)
    children = [c.id for c in await aggregates_repo.children_on(session, unit_id, day)] if day else []
    roots = [unit_id, *children]
    units = await repo.unit_rows(session, roots)
    sources = await through_time.sources(session, [units[r] for r in roots], [year], Basis.AS_WAS)
    kinds = frozenset().union(*(m.kinds for m in METRICS))
    tally = await aggregates_repo.count(session, roots, year, year, kinds)
    plan_rows: dict[int, list[aggregates_repo.PlanRow]] = defaultdict(list)
    for row in await aggregates_repo.applicable_plans(session, roots, [m.code for m in METRICS], year):
        plan_rows[row.unit_id].append(row)
    days = {r: d for r in roots if (d := through_time.reference_day(units[r], year)) is not None}
    funnel = await repo.funnel(session, days, year)
    then = (await past.as_of(session, days)).names  # a past year's report names units as they were

    def unit_report(root: int) -> UnitReport:
        cells, has_data = sources.cells(tally, root, year)
        plans = Applicable(plan_rows.get(root, []))
        measures = {
            m.code: MetricProgress(metric=m.code, **measure(m, cells, plans, year, has_data=has_data))
            for m in METRICS
        }
        unit = units[root]
        name, code = then.get(root, (unit.name, unit.code))
        return UnitReport(
            org_unit_id=root,
            code=code,
            name=name,
            kind=unit.kind,
            groups=[
                _group_row(
                    g,
                    cells,
                    _funnel(funnel, root, PERSON_GROUPS if g == ALL else frozenset({g})),
                    measures,
                    year,
                )
                for g in (ALL, *GROUPS)
            ],
            collectives=[
                CollectiveRow(
                    title=title,
                    metric=code,
                    subjects=measures[code].denominator,
                    recognised=measures[code].numerator,
                    recognised_pct=measures[code].actual,
                    target=measures[code].target,
                    status=measures[code].status,
                )
                for title, code in COLLECTIVE_METRICS.items()
                if code in measures
            ],
            metrics=list(measures.values()),
        )

    return AnnualReport(
        org_unit_id=unit_id,
        year=year,
        plan_id=Applicable(plan_rows.get(unit_id, [])).nearest_plan(year),
        total=unit_report(unit_id),
        items=[unit_report(child) for child in children],
    )
