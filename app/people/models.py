"""Person records."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class Group(StrEnum):
    """Population group; each has its own criteria set (DOMAIN.md §4)."""

    RESIDENT = "resident"
    WORKER = "worker"
    STAFF = "staff"
    STUDENT = "student"


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


_GROUPS_SQL = ", ".join(f"'{g.value}'" for g in Group)


class Person(Base):
    """Cá nhân: someone who self-assesses and may be recognised as a Công dân học tập.

    ``org_unit_id`` and ``group`` are where the person belongs **today**; where they belonged before is
    in :class:`Membership` (what past years count) and :class:`Transfer` (who moved them, when)."""

    __tablename__ = "people"
    __table_args__ = (
        CheckConstraint(f"grp IN ({_GROUPS_SQL})", name="group_known"),
        Index("ix_people_org_unit_id_grp", "org_unit_id", "grp"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    full_name: Mapped[str] = mapped_column(String(255), index=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"))
    group: Mapped[str] = mapped_column("grp", String(20))
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    gender: Mapped[str | None] = mapped_column(String(10))
    citizen_id: Mapped[str | None] = mapped_column(String(20), unique=True)
    # A citizen id this record was registered with while another record, which the registering user may
    # not edit, holds it: shown as the record's own, until the level that sees both decides (``claims.py``).
    claimed_citizen_id: Mapped[str | None] = mapped_column(String(20), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    @property
    def shown_citizen_id(self) -> str | None:
        """The citizen id as the record's readers see it (masked by the schema): its own or its claim."""
        return self.citizen_id or self.claimed_citizen_id


class Membership(Base):
    """Where a person belonged, with which group, from ``valid_from`` to ``valid_to`` inclusive (None:
    since always / still). A person's periods never overlap; the open one matches ``people``."""

    __tablename__ = "memberships"
    __table_args__ = (
        CheckConstraint(f"grp IN ({_GROUPS_SQL})", name="group_known"),
        Index("ix_memberships_person_id", "person_id"),
        Index("ix_memberships_org_unit_id", "org_unit_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"))
    group: Mapped[str] = mapped_column("grp", String(20))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)


class Transfer(Base):
    """Điều chuyển: a person changed unit and/or group on ``effective_on`` (by hand, or as part of a
    reorganisation)."""

    __tablename__ = "person_transfers"
    __table_args__ = (Index("ix_person_transfers_person_id", "person_id", "effective_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    effective_on: Mapped[date] = mapped_column(Date)
    from_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"))
    to_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"))
    from_group: Mapped[str] = mapped_column(String(20))
    to_group: Mapped[str] = mapped_column(String(20))
    reorganisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("reorganisations.id", ondelete="SET NULL")
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
