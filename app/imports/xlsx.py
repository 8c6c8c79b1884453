"""The XLSX reader of the imports: our own streaming reader (expat over :mod:`app.core.zipsafe`), first
worksheet, stored values only, as openpyxl's read-only mode read them (numbers, dates by their cell format,
1904 dates, booleans, errors, shared, inline and rich-text strings). This module turns the sheet into
records (:func:`xlsx_records`); the rest of the workbook (which sheet, shared strings, date formats) is
read by ``xlsx_book.py``, and what one workbook may cost is bounded by ``xlsx_limits.py`` (issue #14)."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Generator
from datetime import date, datetime
from typing import IO, Any

from openpyxl.utils.datetime import from_excel, from_ISO8601

from app.core.errors import UnsupportedMediaType
from app.core.zipsafe import DamagedEntry, SafeZip, parse_xml
from app.imports import xlsx_limits as limits
from app.imports.xlsx_book import Book, InvalidFile
from app.imports.xlsx_limits import XLSX_LIMITS, Clock, cell_too_long, too_large

# One row as read: (row number, cell texts, columns holding a formula, columns holding a number).
Record = tuple[int, list[str], set[int], set[int]]

# types-openpyxl leaves from_ISO8601 unannotated; it takes the cell's text and returns a datetime, date,
# time or timedelta, which ``_Sheet._value`` hands on as ``Any`` like every other cell value.
_from_iso8601: Callable[[str], Any] = from_ISO8601


def clean(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


EXCEL_COLUMNS = 16_384  # Excel's own limit (XFD): a cell beyond it is a damaged sheet


def xlsx_records(binary: IO[bytes]) -> Generator[Record]:
    """The first worksheet's rows that hold something (row numbers as the sheet gives them)."""
    clock = Clock()
    archive = SafeZip(binary, XLSX_LIMITS, "The workbook")
    try:
        try:
            book = Book.read(archive, clock)
        except DamagedEntry as exc:
            raise UnsupportedMediaType(f"The file is not a readable XLSX workbook: {exc.message}") from exc
        sheet = _Sheet(book)
        started = time.thread_time()
        try:
            for _ in parse_xml(archive, book.sheet, sheet.start, sheet.end, sheet.text):
                clock.charge(started)
                yield from sheet.ready
                sheet.ready.clear()
                started = time.thread_time()
        except DamagedEntry as exc:
            raise InvalidFile(
                f"The workbook is damaged and cannot be read to the end: {exc.message}"
            ) from exc
        yield from sheet.ready
    finally:
        archive.close()


class _Sheet:
    """Expat handlers turning a worksheet into records; rows with no value are counted, not kept."""

    def __init__(self, book: Book) -> None:
        self.book = book
        self.ready: list[Record] = []
        self.row = self.column = self.empty_run = 0
        self.cells: dict[int, str] = {}
        self.formulas: set[int] = set()
        self.numeric: set[int] = set()
        self.in_cell = self.in_inline = False
        self.kind, self.style = "n", "0"  # the cell's type and format index, as written
        self.value: list[str] = []
        self.formula: list[str] | None = None
        self.inline: list[str] | None = None
        self.target: list[str] | None = None  # where text goes now
        self.phonetic = self.chars = 0

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if tag == "c":
            ref = attrs.get("r")
            self.column = _column(ref) if ref else self.column + 1
            if self.column > EXCEL_COLUMNS:
                raise InvalidFile(f"Row {self.row} has a cell beyond column XFD, the last a sheet has.")
            self.in_cell, self.kind, self.style = True, attrs.get("t", "n"), attrs.get("s", "0")
            self.value, self.formula, self.inline, self.chars = [], None, None, 0
        elif not self.in_cell:
            if tag == "row":
                self._start_row(attrs.get("r"))
        elif tag == "v":
            self.target = self.value
        elif tag == "f":
            self.target = self.formula = []
        elif tag == "is":
            self.in_inline, self.inline = True, []
        elif tag == "t" and self.in_inline and not self.phonetic:
            self.target = self.inline
        elif tag == "rPh":
            self.phonetic += 1

    def end(self, tag: str) -> None:
        if tag == "c":
            self._end_cell()
        elif tag == "row":
            self._end_row()
        elif tag in ("v", "f", "t"):
            self.target = None
        elif tag == "is":
            self.in_inline = False
        elif tag == "rPh":
            self.phonetic -= 1

    def text(self, data: str) -> None:
        if self.target is not None:
            self.target.append(data)
            self.chars += len(data)
            if self.chars > limits.MAX_CELL_CHARS:
                raise cell_too_long(self.row)

    def _start_row(self, ref: str | None) -> None:
        number = _int(ref) if ref else self.row + 1
        if number <= self.row:
            raise InvalidFile(f"Row {number} comes after row {self.row}: the sheet's rows are out of order.")
        if number > limits.MAX_ROWS:
            raise too_large(
                f"The sheet goes past row {limits.MAX_ROWS:,}, the most a sheet has.", "rows", limits.MAX_ROWS
            )
        self.row, self.column = number, 0
        self.cells, self.formulas, self.numeric = {}, set(), set()

    def _end_row(self) -> None:
        if not self.cells:
            self.empty_run += 1
            if self.empty_run > limits.MAX_EMPTY_ROWS:
                raise too_large(
                    f"The sheet has more than {limits.MAX_EMPTY_ROWS:,} empty rows in a row (up to row "
                    f"{self.row:,}); delete the empty rows below the data.",
                    "empty_rows",
                    limits.MAX_EMPTY_ROWS,
                )
            return
        self.empty_run = 0
        cells = [""] * (max(self.cells) + 1)
        for index, text in self.cells.items():
            cells[index] = text
        self.ready.append((self.row, cells, self.formulas, self.numeric))

    def _end_cell(self) -> None:
        self.in_cell, self.target = False, None
        value: Any = None
        if self.formula is not None:
            formula, text = True, "=" + "".join(self.formula)
        else:
            value = self._value()
            formula, text = isinstance(value, str) and value.startswith("="), cell_text(value)
        if not text:
            return
        if self.column > limits.MAX_COLUMNS:
            raise too_large(
                f"Row {self.row} has a value in column {self.column:,}; at most {limits.MAX_COLUMNS:,} "
                "columns are read.",
                "columns",
                limits.MAX_COLUMNS,
            )
        index = self.column - 1
        self.cells[index] = text
        if formula:
            self.formulas.add(index)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self.numeric.add(index)

    def _value(self) -> Any:
        """The cell's value as openpyxl read it (numbers, dates by their style, booleans, text)."""
        kind = self.kind
        if kind == "inlineStr":
            return "".join(self.inline) if self.inline is not None else None
        raw = "".join(self.value)
        if not raw:
            return None
        try:
            if kind == "n":
                number = float(raw) if "." in raw or "e" in raw or "E" in raw else int(raw)
                if self.style in self.book.date_styles:
                    try:
                        timedelta = self.style in self.book.timedelta_styles
                        return from_excel(number, self.book.epoch, timedelta=timedelta)
                    except (OverflowError, ValueError):
                        return "#VALUE!"
                return number
            if kind == "s":
                return self.book.strings[int(raw)]
            if kind == "b":
                return bool(int(raw))
            if kind == "d":
                return _from_iso8601(raw)
        except ValueError as exc:
            raise InvalidFile(f"Row {self.row} has a cell the workbook cannot hold ({raw[:40]!r}).") from exc
        return raw  # "str" (a formula's text result), "e" (an error such as #N/A), anything else


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise InvalidFile(
            f"The sheet has a row or style number that is not a number ({text[:20]!r})."
        ) from exc


_COLUMNS: dict[str, int] = {}  # "B" → 2, filled as met (bounded below)


def _column(ref: str) -> int:
    """The column number of a cell reference ("B7" → 2)."""
    letters = ref.rstrip("0123456789")
    number = _COLUMNS.get(letters)
    if number is None:
        if not (
            1 <= len(letters) <= 3 and len(ref) > len(letters) and letters.isascii() and letters.isalpha()
        ):
            raise InvalidFile(f"The sheet has a cell reference that is not one ({ref[:20]!r}).")
        number = 0
        for ch in letters.upper():
            number = number * 26 + ord(ch) - 64
        if len(_COLUMNS) < 20_000:
            _COLUMNS[letters] = number
    return number


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return clean(str(value))
