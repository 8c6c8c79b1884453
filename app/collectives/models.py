"""Households and clans, where they were placed, and who (or which households) belonged to them when.

Every relation is dated like a person's membership (``valid_from``/``valid_to`` inclusive, None = since
always / still), so a past year reads as it was: a household counts in the unit it was placed in on the
year's reference day, its members are those of that day. A person belongs to at most one household at a
time, and a household to at most one clan; the open period of each is unique in the database too.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class CollectiveKind(StrEnum):
    HOUSEHOLD = "household"
    CLAN = "clan"


class Collective(Base):
    """Hộ gia đình or dòng họ. ``org_unit_id`` is where it is placed today (the commune or village);
    :class:`CollectivePlace` keeps where it was placed before."""

    __tablename__ = "collectives"
    __table_args__ = (
        CheckConstraint("kind IN ('household', 'clan')", name="kind_known"),
        UniqueConstraint("kind", "code"),
        Index("ix_collectives_org_unit_id_kind", "org_unit_id", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    code: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class CollectivePlace(Base):
    """Where a household or clan was placed from ``valid_from`` to ``valid_to``."""

    __tablename__ = "collective_places"
    __table_args__ = (
        Index("ix_collective_places_collective_id", "collective_id"),
        Index("ix_collective_places_org_unit_id", "org_unit_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collective_id: Mapped[int] = mapped_column(ForeignKey("collectives.id", ondelete="CASCADE"))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)


_OPEN = text("valid_to IS NULL")


class HouseholdMember(Base):
    """A person belonged to a household from ``valid_from`` to ``valid_to``."""

    __tablename__ = "household_members"
    __table_args__ = (
        Index("ix_household_members_household_id", "household_id"),
        Index("ix_household_members_person_id", "person_id"),
        # One household at a time: the open periods, at least, are unique in the database.
        Index(
            "uq_household_members_person_id_open",
            "person_id",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("collectives.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)


class ClanHousehold(Base):
    """A household belonged to a clan from ``valid_from`` to ``valid_to``."""

    __tablename__ = "clan_households"
    __table_args__ = (
        Index("ix_clan_households_clan_id", "clan_id"),
        Index("ix_clan_households_household_id", "household_id"),
        Index(
            "uq_clan_households_household_id_open",
            "household_id",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    clan_id: Mapped[int] = mapped_column(ForeignKey("collectives.id", ondelete="CASCADE"))
    household_id: Mapped[int] = mapped_column(ForeignKey("collectives.id", ondelete="CASCADE"))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
