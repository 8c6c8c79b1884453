"""The metric registry: every percentage the dashboards show, declared as data.

A metric is a ratio of two counts of people in a subtree. Each count is a :class:`Count`: which kind of
fact it counts (everyone, the recognised, the trained), over which population groups, and — for the
recognised — which digital levels. The aggregate queries count every kind once per unit, broken down by
group and digital level; each metric then sums the cells its counts select. Adding a metric is adding an
entry to ``METRICS`` (and, for a new kind of fact, one counting query in ``repository.py``).

Definitions (DOMAIN.md §6, API.md "Plans and targets" and "Counting through time"):

- *people*: people who belonged to a unit of the subtree on the year's reference day (31 December, or the
  unit's last day if it ended that year), with the group they had that day, whatever their evaluation.
- *recognised*: of those, the ones whose evaluation of the year is ``recognised`` under a recognition
  decision that is not revoked.
- *digital level*: ``evaluations.digital_level`` of that recognised evaluation (``none``/``basic``/
  ``proficient``), fixed when the review was completed.
- *trained* (``trained_pct``): of the people in the subtree (all groups), the ones who attended at least
  one training session on the criteria (tập huấn / quán triệt) held in the year; the session may be held
  by any unit (a district conference trains commune staff).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.evaluations.models import DigitalLevel
from app.people.models import Group


class Kind(StrEnum):
    """What a count counts."""

    PEOPLE = "people"
    RECOGNISED = "recognised"
    TRAINED = "trained"
    # People with an evaluation of the year, any status: no metric has data in a year without one.
    EVALUATED = "evaluated"


ALL_GROUPS = frozenset(g.value for g in Group)


@dataclass(frozen=True)
class Count:
    kind: Kind
    groups: frozenset[str] = ALL_GROUPS
    # Only for ``Kind.RECOGNISED``: the digital levels counted (None: any level, or none recorded).
    digital_levels: frozenset[str] | None = None


@dataclass(frozen=True)
class Metric:
    code: str
    title: str
    numerator: str
    denominator: str
    count_numerator: Count
    count_denominator: Count
    unit: str = "percent"

    @property
    def kinds(self) -> frozenset[Kind]:
        return frozenset({self.count_numerator.kind, self.count_denominator.kind})

    @property
    def groups(self) -> frozenset[str]:
        """The population groups either count reads (the others' cells need not be read)."""
        return self.count_numerator.groups | self.count_denominator.groups


_ADULTS = frozenset({Group.RESIDENT.value})
_STAFF = frozenset({Group.STAFF.value, Group.WORKER.value})
_STUDENTS = frozenset({Group.STUDENT.value})
_DIGITAL = frozenset({DigitalLevel.BASIC.value, DigitalLevel.PROFICIENT.value})
_PROFICIENT = frozenset({DigitalLevel.PROFICIENT.value})

METRICS: tuple[Metric, ...] = (
    Metric(
        code="adults_recognised_pct",
        title="Người lớn được công nhận Công dân học tập (adults recognised as Learning Citizens)",
        numerator="recognised people of group resident",
        denominator="people of group resident",
        count_numerator=Count(Kind.RECOGNISED, _ADULTS),
        count_denominator=Count(Kind.PEOPLE, _ADULTS),
    ),
    Metric(
        code="staff_recognised_pct",
        title="Cán bộ, công nhân viên, người lao động được công nhận (staff and workers recognised)",
        numerator="recognised people of groups staff, worker",
        denominator="people of groups staff, worker",
        count_numerator=Count(Kind.RECOGNISED, _STAFF),
        count_denominator=Count(Kind.PEOPLE, _STAFF),
    ),
    Metric(
        code="students_recognised_pct",
        title="Học sinh, sinh viên, người học được công nhận (pupils and students recognised)",
        numerator="recognised people of group student",
        denominator="people of group student",
        count_numerator=Count(Kind.RECOGNISED, _STUDENTS),
        count_denominator=Count(Kind.PEOPLE, _STUDENTS),
    ),
    Metric(
        code="digital_skills_pct",
        title="Người được công nhận có kỹ năng số (recognised people with digital skills)",
        numerator="recognised with digital_level basic or proficient",
        denominator="recognised",
        count_numerator=Count(Kind.RECOGNISED, digital_levels=_DIGITAL),
        count_denominator=Count(Kind.RECOGNISED),
    ),
    Metric(
        code="digital_proficient_pct",
        title="Người được công nhận thành thạo kỹ năng số (recognised people proficient in digital skills)",
        numerator="recognised with digital_level proficient",
        denominator="recognised",
        count_numerator=Count(Kind.RECOGNISED, digital_levels=_PROFICIENT),
        count_denominator=Count(Kind.RECOGNISED),
    ),
    Metric(
        code="trained_pct",
        title="Được học tập, quán triệt tiêu chí (people trained on the criteria)",
        numerator="people who attended at least one training session held in the year",
        denominator="people (all groups)",
        count_numerator=Count(Kind.TRAINED),
        count_denominator=Count(Kind.PEOPLE),
    ),
)

BY_CODE: dict[str, Metric] = {m.code: m for m in METRICS}


def get(code: str) -> Metric | None:
    return BY_CODE.get(code)


def is_known(code: str) -> bool:
    return code in BY_CODE


# One cell of a count: (group, digital level or None) → number of people.
Cells = dict[tuple[str, str | None], int]


def total(count: Count, cells_by_kind: dict[Kind, Cells]) -> int:
    """Sum the cells of ``count.kind`` that ``count`` selects."""
    cells = cells_by_kind.get(count.kind, {})
    return sum(
        n
        for (group, level), n in cells.items()
        if group in count.groups and (count.digital_levels is None or level in count.digital_levels)
    )
