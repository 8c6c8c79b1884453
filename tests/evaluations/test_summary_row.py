"""A list's item is read from its row by position (``reads.summary_of``, in ``SUMMARY_COLUMNS``' order):
each field must come from the column of its name, whatever order the columns are listed in."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.evaluations import repository as repo
from app.evaluations.models import Title
from app.evaluations.reads import summary_of


def _row(**values: Any) -> tuple[Any, ...]:
    """A row of the list's columns (and the page's count after them), each its own value."""
    return (*(values[column.key] for column in repo.SUMMARY_COLUMNS), 99)


def test_each_field_comes_from_its_own_column() -> None:
    values = {
        "id": 1,
        "title": Title.LEARNING_FAMILY.value,
        "person_id": 3,
        "collective_id": 4,
        "org_unit_id": 5,
        "year": 2025,
        "criteria_set_id": 7,
        "status": "reviewed",
        "version": 9,
        "decision_id": 10,
        "updated_at": datetime(2025, 11, 12, tzinfo=UTC),
        "total_halves": 170,
        "passed": True,
        "failing_indicators": [3],
        "digital_level": "basic",
        "grade": "good",
    }
    assert {column.key for column in repo.SUMMARY_COLUMNS} == set(values)
    assert summary_of(_row(**values)) == {  # type: ignore[arg-type]
        "id": 1,
        "title": "learning_family",
        "person_id": 3,
        "household_id": 4,
        "clan_id": None,
        "org_unit_id": 5,
        "year": 2025,
        "criteria_set_id": 7,
        "status": "reviewed",
        "version": 9,
        "result": {
            "total": 85.0,
            "passed": True,
            "failing_indicators": [3],
            "digital_level": "basic",
            "level": "good",
        },
        "decision_id": 10,
        "updated_at": datetime(2025, 11, 12, tzinfo=UTC),
    }
    clan = summary_of(_row(**{**values, "title": Title.LEARNING_CLAN.value, "total_halves": None}))  # type: ignore[arg-type]
    assert (clan["household_id"], clan["clan_id"], clan["result"]) == (None, 4, None)
