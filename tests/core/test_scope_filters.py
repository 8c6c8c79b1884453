"""The scope filters are built once per column and units (``auth/scope._FILTERS``): a subject with other
units, another column or a column that only shares a freed one's id never gets a filter built for
something else."""

from __future__ import annotations

from sqlalchemy import ColumnElement, true
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import aliased

from app.auth.models import Role
from app.auth.policy import Action
from app.auth.scope import _FILTERS, Grant, Subject, unit_filter
from app.evaluations.models import Evaluation


def subject(*units: int) -> Subject:
    grants = tuple(Grant(role=Role.ASSESSOR, org_unit_id=u, assignment_id=i) for i, u in enumerate(units, 1))
    return Subject(user_id=1, username="u", grants=grants)


def sql(clause: ColumnElement[bool]) -> str:
    return str(clause.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))


def test_a_filter_is_reused_for_the_same_column_and_units_only() -> None:
    first = unit_filter(subject(7, 9), Action.EVALUATION_READ, Evaluation.org_unit_id)
    assert unit_filter(subject(9, 7), Action.EVALUATION_READ, Evaluation.org_unit_id) is first
    other_units = unit_filter(subject(7), Action.EVALUATION_READ, Evaluation.org_unit_id)
    assert other_units is not first
    assert "IN (7, 9)" in sql(first)
    assert "IN (7)" in sql(other_units)
    other_column = unit_filter(subject(7, 9), Action.EVALUATION_READ, Evaluation.person_id)
    assert "person_id" in sql(other_column) and "person_id" not in sql(first)
    alias = aliased(Evaluation, name="e2")
    assert "e2.org_unit_id" in sql(unit_filter(subject(7, 9), Action.EVALUATION_READ, alias.org_unit_id))


def test_an_entry_is_not_lent_to_another_column_with_the_same_id() -> None:
    """A column made for one call and freed may give its id to the next one: the entry names the column
    it was built for, and any other object rebuilds."""
    column = aliased(Evaluation, name="fresh").org_unit_id
    stale = true()
    _FILTERS._built[("in", id(column), (5,))] = (object(), stale)  # as left by a freed column
    built = unit_filter(subject(5), Action.EVALUATION_READ, column)
    assert built is not stale
    assert "fresh.org_unit_id IN" in sql(built)
