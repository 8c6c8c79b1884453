"""The import summary (API.md "Integration") and the collector of row problems behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

# The one error model (app/core/openapi.py): ``ErrorBody`` answers a malformed request; ``Error`` is what a
# failed job keeps.
from app.core.openapi import Error
from app.core.openapi import ErrorBody as ErrorBody

MAX_REPORTED_ERRORS = 1000
AUDIT_ID_CAP = 1000  # ids created and updated kept in an import's audit entry


class RowError(BaseModel):
    row: int | None = Field(description="The spreadsheet row (the header is row 1); null for the file.")
    column: str | None = Field(description="The field (code, full_name, …); null for the whole row.")
    message: str


class ImportSummary(BaseModel):
    """``created``/``updated``/``unchanged`` count the rows that would be (dry run) or were written; with
    any error nothing is written. ``errors`` lists at most 1000 problems; ``error_count`` counts all."""

    import_id: int
    dry_run: bool
    created: int
    updated: int
    unchanged: int
    errors: list[RowError]
    error_count: int
    sha256: str


@dataclass
class Problems:
    """Row problems, in file order; keeps the first :data:`MAX_REPORTED_ERRORS` and counts the rest."""

    items: list[RowError] = field(default_factory=list)
    count: int = 0

    def add(self, row: int | None, column: str | None, message: str) -> None:
        self.count += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append(RowError(row=row, column=column, message=message))

    def __bool__(self) -> bool:
        return self.count > 0


@dataclass
class Tally:
    """What the rows do (or would do), and the ids written, for the audit entry."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    created_ids: list[int] = field(default_factory=list)
    updated_ids: list[int] = field(default_factory=list)


ErrorDetail = Error  # its former name here (app/imports/jobs.py)


class ImportJobRead(BaseModel):
    """An import running as a background job. ``status``: ``queued`` → ``running`` → ``done`` (``summary``
    is what the request would have answered: nothing was written when it lists errors) or ``failed``
    (``error``: the file could not be imported at all, e.g. the account lost its role)."""

    job_id: int
    status: Literal["queued", "running", "done", "failed"]
    kind: Literal["org_units", "people"]
    dry_run: bool
    filename: str
    size: int = Field(description="Bytes uploaded.")
    sha256: str
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int = Field(description="Runs started; a run lost with its process is started again.")
    summary: ImportSummary | None
    error: Error | None
    status_url: str = Field(description="Where to ask again (also the 202's Location).")
