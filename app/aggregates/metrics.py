"""The metric registry: every percentage the dashboards show, declared as data in
``criteria_seeds/metrics.yaml`` (read once, when the service starts; the file documents its keys).

A metric is a ratio of two counts of a subtree in a year. Each count is a :class:`Count`: which kind of
fact it counts (a :class:`Kind`), over which groups (people's population groups; households, clans, or
org-unit kinds for collectives), which levels (digital levels of the recognised; titles of recognised
collectives) and, for adults, from which age. The counters (``counters.py``) hold every kind broken down
by group, level and birth year; each metric sums the cells its counts select. Adding a metric over the
existing kinds is adding an entry to the file; a new kind of fact needs its counting query in
``counters.py`` (its query in ``cells.py``) and its hand-written recount in ``naive.naive_counts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.seedfiles import read_seed

REGISTRY_FILE = Path(__file__).resolve().parent.parent.parent / "criteria_seeds" / "metrics.yaml"

# Birth years up to this one are stored as 0 in the counters (everyone born then is an adult in every
# year the programme counts, for any adult age up to MAX_ADULT_AGE): fewer counter rows.
BORN_FLOOR = 1990
FIRST_COUNTED_YEAR = 2022
MAX_ADULT_AGE = FIRST_COUNTED_YEAR - BORN_FLOOR


class Kind(StrEnum):
    """What a count counts (the registry names them by the member name in lower case)."""

    PEOPLE = "people"
    RECOGNISED = "recognised"
    TRAINED = "trained"
    # People with an evaluation of the year, any status: no metric has data in a year without one.
    EVALUATED = "evaluated"
    IN_COLLECTIVE = "in_collective"
    IN_COLLECTIVE_RECOGNISED = "in_collective_rec"
    IN_LEARNING_UNIT = "in_lu"
    IN_LEARNING_UNIT_RECOGNISED = "in_lu_rec"
    COLLECTIVES = "collectives"
    COLLECTIVES_RECOGNISED = "collectives_rec"


# Kinds stored as changes (a year's count is the sum of every year up to it); the others per year.
CHANGE_KINDS = frozenset({Kind.PEOPLE, Kind.COLLECTIVES})


@dataclass(frozen=True)
class Count:
    kind: Kind
    groups: frozenset[str] | None = None  # None: every group
    levels: frozenset[str] | None = None  # None: any level (or none recorded)
    adult_age: int | None = None  # only those at least this old in the year (unknown birth year counts)

    def selects(self, group: str, level: str | None, born: int, year: int) -> bool:
        return (
            (self.groups is None or group in self.groups)
            and (self.levels is None or level in self.levels)
            and (self.adult_age is None or born == 0 or born <= year - self.adult_age)
        )


@dataclass(frozen=True)
class Metric:
    code: str
    subject: str
    title: str
    title_vi: str
    numerator: str
    numerator_vi: str
    denominator: str
    denominator_vi: str
    count_numerator: Count
    count_denominator: Count
    unit: str = "percent"

    @property
    def kinds(self) -> frozenset[Kind]:
        return frozenset({self.count_numerator.kind, self.count_denominator.kind})

    @property
    def groups(self) -> frozenset[str] | None:
        """The groups either count reads (the others' cells need not be read); None: all."""
        if self.count_numerator.groups is None or self.count_denominator.groups is None:
            return None
        return self.count_numerator.groups | self.count_denominator.groups

    def title_in(self, language: str) -> str:
        return self.title_vi if language == "vi" else self.title


# --- the registry file ------------------------------------------------------------------------------


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")


KindName = Literal[
    "people",
    "recognised",
    "trained",
    "in_collective",
    "in_collective_recognised",
    "in_learning_unit",
    "in_learning_unit_recognised",
    "collectives",
    "collectives_recognised",
]
Label = Annotated[str, Field(min_length=1, max_length=64)]


class CountEntry(_Entry):
    kind: KindName
    groups: Annotated[list[Label], Field(min_length=1)] | None = None
    levels: Annotated[list[Label], Field(min_length=1)] | None = None
    adult_age: Annotated[int, Field(ge=1, le=MAX_ADULT_AGE)] | None = None

    def to_count(self) -> Count:
        return Count(
            kind=Kind[self.kind.upper()],
            groups=frozenset(self.groups) if self.groups else None,
            levels=frozenset(self.levels) if self.levels else None,
            adult_age=self.adult_age,
        )


class MetricEntry(_Entry):
    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
    subject: Literal["person", "household", "clan", "community", "learning_unit"]
    title: Annotated[str, Field(min_length=1)]
    title_vi: Annotated[str, Field(min_length=1)]
    numerator: Annotated[str, Field(min_length=1)]
    numerator_vi: Annotated[str, Field(min_length=1)]
    denominator: Annotated[str, Field(min_length=1)]
    denominator_vi: Annotated[str, Field(min_length=1)]
    count_numerator: CountEntry
    count_denominator: CountEntry


class Registry(_Entry):
    metrics: Annotated[list[MetricEntry], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> Registry:
        codes = [m.code for m in self.metrics]
        if len(set(codes)) != len(codes):
            raise ValueError("metric codes must be unique")
        return self


def load_registry(path: Path = REGISTRY_FILE) -> tuple[Metric, ...]:
    """The metrics of ``path``; a malformed file stops start-up with its file, line and reason."""
    registry = read_seed(path, Registry).data
    return tuple(
        Metric(
            **entry.model_dump(exclude={"count_numerator", "count_denominator"}),
            count_numerator=entry.count_numerator.to_count(),
            count_denominator=entry.count_denominator.to_count(),
        )
        for entry in registry.metrics
    )


METRICS: tuple[Metric, ...] = load_registry()
BY_CODE: dict[str, Metric] = {m.code: m for m in METRICS}


def get(code: str) -> Metric | None:
    return BY_CODE.get(code)


def is_known(code: str) -> bool:
    return code in BY_CODE


# One cell of a count: (group, level or None, birth year or 0) → number counted.
Cells = dict[tuple[str, str | None, int], int]


def total(count: Count, cells_by_kind: dict[Kind, Cells], year: int) -> int:
    """Sum the cells of ``count.kind`` that ``count`` selects in ``year`` (:meth:`Count.selects`, spelled
    out here: a dashboard sums a few hundred cells for each of its counts on every request, and a call per
    cell was most of that)."""
    cells = cells_by_kind.get(count.kind)
    if not cells:
        return 0
    groups, levels, adult_age = count.groups, count.levels, count.adult_age
    if groups is None and levels is None and adult_age is None:
        return sum(cells.values())
    latest = year - adult_age if adult_age is not None else None  # the latest birth year counted
    return sum(
        n
        for (group, level, born), n in cells.items()
        if (groups is None or group in groups)
        and (levels is None or level in levels)
        and (latest is None or born == 0 or born <= latest)
    )
