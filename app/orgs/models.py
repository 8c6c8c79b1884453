"""Org units and the closure table of the tree.

Why a closure table (and not a materialised path or recursive CTEs): every scope check ("is X inside
Y's subtree"), every subtree listing and every aggregate roll-up ("sum the counts of all units under each
child of Y") becomes a single indexed join on ``org_unit_closure`` — no recursion per request and no
string prefix matching. The tree is wide and shallow (about 70,000 units, depth ≤ 7), so the table holds
under half a million rows. A move rewrites the closure rows of the moved subtree in two statements
inside the request's transaction, so it is atomic.

Two trees are kept (see ``history.py``):

- ``org_unit_closure`` is the tree of **today**, used for scope. An ended unit (merged, dissolved) is
  re-hung under its successor there, so whoever now holds the successor also reads its predecessors'
  history; nothing alive ever sits under an ended unit.
- ``org_unit_links`` is the same closure **through time**: every (ancestor, descendant) pair with the
  dates it held (``valid_from``/``valid_to``, None = open). It is what the counting of a past year reads
  ("the tree as it stood on 31 December") and what ``?as_of=`` lists.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class OrgKind(StrEnum):
    NATION = "nation"
    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"
    SCHOOL = "school"
    AGENCY = "agency"
    ENTERPRISE = "enterprise"
    VILLAGE = "village"
    UNIT = "unit"


_KINDS_SQL = ", ".join(f"'{k.value}'" for k in OrgKind)


class OrgUnit(Base):
    """Đơn vị: a node of the organisation tree at any level."""

    __tablename__ = "org_units"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_KINDS_SQL})", name="kind_known"),
        CheckConstraint("depth >= 0", name="depth_non_negative"),
        Index("ix_org_units_parent_id_name", "parent_id", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(20), index=True)
    code: Mapped[str | None] = mapped_column(String(64), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id", ondelete="RESTRICT"))
    depth: Mapped[int] = mapped_column(Integer, default=0)
    # The unit's life: None = always existed / still exists. ``valid_to`` is the last day it existed.
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class OrgUnitClosure(Base):
    """One row per (ancestor, descendant) pair, including each unit with itself at depth 0."""

    __tablename__ = "org_unit_closure"
    __table_args__ = (Index("ix_org_unit_closure_descendant_id_ancestor_id", "descendant_id", "ancestor_id"),)

    ancestor_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True)
    descendant_id: Mapped[int] = mapped_column(
        ForeignKey("org_units.id", ondelete="CASCADE"), primary_key=True
    )
    depth: Mapped[int] = mapped_column(Integer)


class OrgUnitLink(Base):
    """The closure through time: ``ancestor_id`` was above ``descendant_id`` (``depth`` levels up) from
    ``valid_from`` to ``valid_to`` inclusive (None: since always / still). A pair may hold several
    periods (moved away and back)."""

    __tablename__ = "org_unit_links"
    __table_args__ = (
        Index("ix_org_unit_links_descendant_id_ancestor_id", "descendant_id", "ancestor_id"),
        Index("ix_org_unit_links_ancestor_id_depth", "ancestor_id", "depth"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ancestor_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"))
    descendant_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"))
    depth: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)


class Succession(Base):
    """Kế thừa: ``predecessor_id`` ended and its people, children and roles went to ``successor_id`` on
    ``effective_on`` (a merge or a dissolution)."""

    __tablename__ = "org_unit_successions"
    __table_args__ = (
        Index("ix_org_unit_successions_predecessor_id", "predecessor_id"),
        Index("ix_org_unit_successions_successor_id", "successor_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    predecessor_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"))
    successor_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"))
    effective_on: Mapped[date] = mapped_column(Date)
    reorganisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("reorganisations.id", ondelete="SET NULL")
    )


class FormerName(Base):
    """Tên cũ: the name and code a unit had until ``valid_to`` (its last day under them), so the tree
    reads as it stood on any day."""

    __tablename__ = "org_unit_former_names"
    __table_args__ = (Index("ix_org_unit_former_names_org_unit_id_valid_to", "org_unit_id", "valid_to"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    code: Mapped[str | None] = mapped_column(String(64))
    valid_to: Mapped[date] = mapped_column(Date)
