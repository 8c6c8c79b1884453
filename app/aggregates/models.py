"""Rolled-up counters behind the dashboards."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class AggregateCount(Base):
    """How many people of a subtree are in one cell: the subtree of ``org_unit_id`` (the unit itself
    and everything below it), a year (0 for facts that do not depend on the year: registered people), a
    kind of fact (``people``, ``recognised``, ``trained``), a population group and, for the recognised,
    a digital level ('' when none applies). Maintained in the same transaction as the change it counts
    (see ``counters.py``), so it always equals a recount."""

    __tablename__ = "aggregate_counts"

    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    grp: Mapped[str] = mapped_column(String(20), primary_key=True)
    level: Mapped[str] = mapped_column(String(20), primary_key=True)
    # Birth year of the people counted when after ``counters.BORN_FLOOR`` (0: earlier, unknown, or not a
    # person): what "adults aged at least N in year Y" reads, for any N the metric registry names.
    born: Mapped[int] = mapped_column(Integer, primary_key=True, default=0)
    n: Mapped[int] = mapped_column(Integer, default=0)


class CounterState(Base):
    """Which definition of the counters ``aggregate_counts`` was built with: when the code's definition
    changes (``counters.DEFINITION``), ``cdht migrate`` recounts everything."""

    __tablename__ = "counter_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[str] = mapped_column(String(64))
    rebuilt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReviewQueueCount(Base):
    """How many evaluations of a subtree wait for the committee (``submitted`` or ``in_review``), by the
    year evaluated and the day (UTC) they were submitted: the subtree of ``org_unit_id`` in today's tree
    (the queue is a present fact). Kept by ``waiting.py`` whenever an evaluation's row or today's tree
    changes, so it always equals a recount."""

    __tablename__ = "review_queue_counts"

    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    submitted_on: Mapped[date] = mapped_column(Date, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class AggregateVersion(Base):
    """How many times the counters of ``org_unit_id`` at ``year`` have changed (a change counter, not a
    time): bumped by ``versions.py`` when a transaction that wrote any of the unit's cells of that year
    commits. A report submission keeps the sum over the years its numbers read; while that sum is the
    same, nothing the submission counted can have changed, so ``changed_since_submission`` needs no
    recount."""

    __tablename__ = "aggregate_versions"

    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class ChangeEpoch(Base):
    """A change counter for data the dashboards read outside the counters: ``reference`` (the tree, plans
    and targets, reporting calendars and submissions) and ``records`` (people, evaluations, decisions,
    households, trainings…). Bumped by ``freshness.py`` when a transaction that wrote such a table commits;
    with the units' ``aggregate_versions`` it makes the dashboards' ETags."""

    __tablename__ = "change_epochs"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
