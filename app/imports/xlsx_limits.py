"""What reading one XLSX workbook may cost (issue #14: a 1 MB workbook used to take 2 GB or 455 s), and the
413 that says which limit a workbook reached. The container is checked before anything inflates
(:data:`XLSX_LIMITS`, :mod:`app.core.zipsafe`); the rest while the sheet streams past. The readers
(``xlsx.py``, ``xlsx_book.py``) read each ``MAX_*`` through this module when they check it, so a test may
lower one."""

from __future__ import annotations

import time

from app.core.errors import PayloadTooLarge
from app.core.zipsafe import ZipLimits

XLSX_LIMITS = ZipLimits(max_entries=10_000, max_entry_bytes=1024**3, max_total_bytes=1024**3)
MAX_ROWS = 1_048_576  # Excel's own limit
MAX_COLUMNS = 1_024  # columns that may hold a value (empty formatted cells further right are ignored)
MAX_EMPTY_ROWS = 100_000  # consecutive <row> elements without a value
MAX_CELL_CHARS = 32_767  # Excel's own limit for one cell
MAX_SHARED_STRINGS = 4_194_304  # a million rows of four distinct texts each
MAX_SHARED_BYTES = 64 * 1024 * 1024  # UTF-8, packed: the table's memory
MAX_PARTS = 65_536  # sheets, relationships, number formats, cell formats (Excel allows 64,000 formats)
MAX_PARSE_SECONDS = 120.0  # CPU time reading one workbook; a safety net under the caps above


class Clock:
    """CPU time spent reading one workbook (only while parsing: not while the rows are being applied)."""

    def __init__(self) -> None:
        self.spent = 0.0

    def charge(self, started: float) -> None:
        self.spent += time.thread_time() - started
        if self.spent > MAX_PARSE_SECONDS:
            raise too_large(
                f"The workbook took more than {MAX_PARSE_SECONDS:.0f} s to read; split it into smaller "
                "files.",
                "parse_seconds",
                MAX_PARSE_SECONDS,
            )


def too_large(message: str, limit: str, maximum: float) -> PayloadTooLarge:
    return PayloadTooLarge(message, details={"limit": limit, "max": maximum})


def capped(count: int, what: str) -> None:
    """413 once the workbook lists more than :data:`MAX_PARTS` of ``what``."""
    if count > MAX_PARTS:
        raise too_large(f"The workbook lists more than {MAX_PARTS:,} {what}.", what, MAX_PARTS)


def cell_too_long(row: int | None) -> PayloadTooLarge:
    where = f"Row {row} has a cell" if row else "The workbook has a text"
    return too_large(
        f"{where} longer than {MAX_CELL_CHARS:,} characters (the most a cell holds).",
        "cell_characters",
        MAX_CELL_CHARS,
    )
