"""A list's item is read from its row by position (``reads.summary_of``, in ``SUMMARY_COLUMNS``' order):
each field must come from the column of its name, whatever order the columns are listed in; and the page
written from those items without validating them (``core/pagination.page_json``) is byte for byte what
``Page[EvaluationSummary]`` would write."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from pydantic import TypeAdapter

from app.core.pagination import Page, PageParams, page_json
from app.evaluations import repository as repo
from app.evaluations.models import Title
from app.evaluations.reads import summary_of
from app.evaluations.schemas import EvaluationSummary


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
        "title": "learning_family",
        "person_id": 3,
        "household_id": 4,
        "clan_id": None,
        "id": 1,
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


def test_a_page_is_written_as_its_model_would_write_it() -> None:
    base = {
        "id": 1,
        "title": Title.LEARNING_CITIZEN.value,
        "person_id": 3,
        "collective_id": None,
        "org_unit_id": 5,
        "year": 2025,
        "criteria_set_id": 7,
        "status": "recognised",
        "version": 2,
        "decision_id": 10,
        "updated_at": datetime(2025, 11, 12, 8, 30, 15, 123456, tzinfo=UTC),
        "total_halves": 171,
        "passed": True,
        "failing_indicators": [],
        "digital_level": "proficient",
        "grade": None,
    }
    rows = [
        base,
        {**base, "id": 2, "total_halves": 120, "passed": False, "failing_indicators": [2, 7], "grade": "kha"},
        {**base, "id": 3, "status": "draft", "total_halves": None, "passed": None, "decision_id": None},
        {**base, "id": 4, "title": Title.LEARNING_FAMILY.value, "person_id": None, "collective_id": 8},
        {**base, "id": 5, "title": Title.LEARNING_CLAN.value, "person_id": None, "collective_id": 9},
        {**base, "id": 6, "title": Title.LEARNING_UNIT.value, "person_id": None, "digital_level": None},
        {**base, "id": 7, "updated_at": datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=7)))},
    ]
    items = [summary_of(_row(**row)) for row in rows]  # type: ignore[arg-type]
    body = page_json(items, 321, PageParams(limit=7, offset=14)).body
    model = TypeAdapter(Page[EvaluationSummary])
    assert body == model.dump_json(model.validate_python(json.loads(body)), by_alias=True)
    given = {"items": items, "total": 321, "limit": 7, "offset": 14}
    assert body == model.dump_json(model.validate_python(given))
