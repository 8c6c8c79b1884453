"""Evaluations, their per-indicator scores and evidence (recognition decisions: ``app/decisions/``).

Scores are integers of half-points (7.5 points is stored as 15): exact sums, no floats.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    RETURNED = "returned"
    REVIEWED = "reviewed"
    RECOGNISED = "recognised"
    WITHDRAWN = "withdrawn"


class Title(StrEnum):
    """What an evaluation may recognise: the personal title, or one of the collective titles of
    Decision 387/QĐ-TTg (DOMAIN.md §7)."""

    LEARNING_CITIZEN = "learning_citizen"
    LEARNING_FAMILY = "learning_family"
    LEARNING_CLAN = "learning_clan"
    LEARNING_COMMUNITY = "learning_community"
    LEARNING_UNIT = "learning_unit"


# Collective titles whose subject is a household or clan record, and those whose subject is an org unit.
COLLECTIVE_RECORD_TITLES = frozenset({Title.LEARNING_FAMILY, Title.LEARNING_CLAN})
UNIT_TITLES = frozenset({Title.LEARNING_COMMUNITY, Title.LEARNING_UNIT})
# The org-unit kinds each unit title may recognise: a community is a village or residential group (thôn,
# tổ dân phố); a learning unit an agency, school or enterprise (DOMAIN.md §7).
UNIT_TITLE_KINDS: dict[Title, frozenset[str]] = {
    Title.LEARNING_COMMUNITY: frozenset({"village"}),
    Title.LEARNING_UNIT: frozenset({"school", "agency", "enterprise"}),
}
UNIT_SUBJECT_KINDS = frozenset().union(*UNIT_TITLE_KINDS.values())


class DigitalLevel(StrEnum):
    NONE = "none"
    BASIC = "basic"
    PROFICIENT = "proficient"


_STATUS_SQL = ", ".join(f"'{s.value}'" for s in Status)
_TITLES_SQL = ", ".join(f"'{t.value}'" for t in Title)
_LEVELS_SQL = ", ".join(f"'{d.value}'" for d in DigitalLevel)
# Statuses in which an evaluation waits for the committee (submitted, being reviewed).
WAITING_SQL = "status IN ('submitted', 'in_review')"


def collective_as(title: Title, of_title: str, collective_id: int | None) -> int | None:
    """An evaluation's collective as ``title``'s kind of collective (its household for a learning family),
    or None for an evaluation of another title."""
    return collective_id if of_title == title else None


class Evaluation(Base):
    """One year's evaluation of one subject: a person (Công dân học tập), a household, a clan, or an org
    unit (a community or a learning unit). Exactly one of ``person_id``, ``collective_id``,
    ``subject_unit_id`` names the subject; ``org_unit_id`` is the unit the evaluation belongs to (the
    person's or the household's unit when it was made, or the evaluated unit itself)."""

    __tablename__ = "evaluations"
    __table_args__ = (
        UniqueConstraint("person_id", "year"),
        UniqueConstraint("collective_id", "year"),
        UniqueConstraint("subject_unit_id", "year"),
        CheckConstraint(f"status IN ({_STATUS_SQL})", name="status_known"),
        CheckConstraint(f"title IN ({_TITLES_SQL})", name="title_known"),
        CheckConstraint(
            "(CASE WHEN person_id IS NULL THEN 0 ELSE 1 END)"
            " + (CASE WHEN collective_id IS NULL THEN 0 ELSE 1 END)"
            " + (CASE WHEN subject_unit_id IS NULL THEN 0 ELSE 1 END) = 1",
            name="one_subject",
        ),
        CheckConstraint(
            f"declared_digital_level IS NULL OR declared_digital_level IN ({_LEVELS_SQL})",
            name="declared_digital_level_known",
        ),
        CheckConstraint(
            f"reviewed_digital_level IS NULL OR reviewed_digital_level IN ({_LEVELS_SQL})",
            name="reviewed_digital_level_known",
        ),
        Index("ix_evaluations_org_unit_id_year_status", "org_unit_id", "year", "status"),
        # The review queue (app/alerts, ``review_waiting``): the evaluations still waiting for the committee,
        # read per unit and year without the other ~85 % of the table's rows.
        Index(
            "ix_evaluations_waiting",
            "year",
            "org_unit_id",
            "submitted_at",
            postgresql_where=text(WAITING_SQL),
            sqlite_where=text(WAITING_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(30), default=Title.LEARNING_CITIZEN.value)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="RESTRICT"))
    collective_id: Mapped[int | None] = mapped_column(ForeignKey("collectives.id", ondelete="RESTRICT"))
    subject_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"))
    # The person's unit when the evaluation was made: history keeps its unit through restructuring.
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"))
    year: Mapped[int] = mapped_column(Integer)
    criteria_set_id: Mapped[int] = mapped_column(ForeignKey("criteria_sets.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(20), default=Status.DRAFT.value)
    total_halves: Mapped[int | None] = mapped_column(Integer)
    passed: Mapped[bool | None] = mapped_column(Boolean)
    failing_indicators: Mapped[list[int] | None] = mapped_column(JSON)
    # The person's own declaration (self-assessment) and the assessor's confirmation or change (review);
    # ``digital_level`` is the result fixed when the review is completed (API.md "Metrics as the plans
    # word them"). None for collective titles.
    declared_digital_level: Mapped[str | None] = mapped_column(String(20))
    reviewed_digital_level: Mapped[str | None] = mapped_column(String(20))
    digital_level: Mapped[str | None] = mapped_column(String(20))
    # The grade of a graded collective result (e.g. TT 22/2020: tot, kha, trung_binh).
    grade: Mapped[str | None] = mapped_column(String(30))
    decision_id: Mapped[int | None] = mapped_column(
        ForeignKey("recognition_decisions.id", ondelete="RESTRICT"), index=True
    )
    return_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    @property
    def household_id(self) -> int | None:
        return collective_as(Title.LEARNING_FAMILY, self.title, self.collective_id)

    @property
    def clan_id(self) -> int | None:
        return collective_as(Title.LEARNING_CLAN, self.title, self.collective_id)

    @property
    def personal(self) -> bool:
        return self.person_id is not None


class Score(Base):
    """One indicator's self score and review score, in half-points."""

    __tablename__ = "evaluation_scores"
    __table_args__ = (UniqueConstraint("evaluation_id", "indicator_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"))
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicators.id", ondelete="RESTRICT"))
    self_halves: Mapped[int | None] = mapped_column(Integer)
    review_halves: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    review_note: Mapped[str | None] = mapped_column(Text)


class Evidence(Base):
    """Minh chứng: a file stored under the evidence directory by a generated name."""

    __tablename__ = "evidence"
    __table_args__ = (Index("ix_evidence_evaluation_id_indicator_id", "evaluation_id", "indicator_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"))
    indicator_id: Mapped[int] = mapped_column(ForeignKey("indicators.id", ondelete="RESTRICT"))
    filename: Mapped[str] = mapped_column(String(255))
    storage_key: Mapped[str] = mapped_column(String(100), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    rejected: Mapped[bool] = mapped_column(Boolean, default=False)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
