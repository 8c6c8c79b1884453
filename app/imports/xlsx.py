"""The XLSX reader of the imports: our own streaming reader (expat over :mod:`app.core.zipsafe`), first
worksheet, stored values only, as openpyxl's read-only mode read them (numbers, dates by their cell format,
1904 dates, booleans, errors, shared, inline and rich-text strings). What one workbook may cost is bounded
(issue #14: a 1 MB workbook used to take 2 GB or 455 s): the ZIP container is checked before anything
inflates (:data:`XLSX_LIMITS`), then rows, columns, cell length, the shared-string table, consecutive empty
rows and parse time (the ``MAX_*`` constants) while the sheet streams past."""

from __future__ import annotations

import contextlib
import posixpath
import time
import unicodedata
from array import array
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from openpyxl.styles.numbers import (
    builtin_format_code,
    is_date_format,
    is_timedelta_format,
)
from openpyxl.utils.datetime import (
    MAC_EPOCH,
    WINDOWS_EPOCH,
    from_excel,
    from_ISO8601,
)

from app.core.errors import PayloadTooLarge, UnsupportedMediaType
from app.core.zipsafe import DamagedEntry, SafeZip, ZipLimits, parse_xml
from app.evaluations.storage import human_size

# One row as read: (row number, cell texts, columns holding a formula, columns holding a number).
Record = tuple[int, list[str], set[int], set[int]]

# types-openpyxl leaves from_ISO8601 unannotated; it takes the cell's text and returns a datetime, date,
# time or timedelta, which ``_Sheet._value`` hands on as ``Any`` like every other cell value.
_from_iso8601: Callable[[str], Any] = from_ISO8601


class InvalidFile(Exception):
    """The file cannot be read at all (a broken workbook)."""


def clean(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


# What reading one XLSX may cost (issue #14: a 1 MB workbook used to take 2 GB or 455 s). The container
# is checked before anything inflates (app.core.zipsafe); the rest while the sheet streams past.
XLSX_LIMITS = ZipLimits(max_entries=10_000, max_entry_bytes=1024**3, max_total_bytes=1024**3)
MAX_ROWS = 1_048_576  # Excel's own limit
EXCEL_COLUMNS = 16_384  # Excel's own limit (XFD): a cell beyond it is a damaged sheet
MAX_COLUMNS = 1_024  # columns that may hold a value (empty formatted cells further right are ignored)
MAX_EMPTY_ROWS = 100_000  # consecutive <row> elements without a value
MAX_CELL_CHARS = 32_767  # Excel's own limit for one cell
MAX_SHARED_STRINGS = 4_194_304  # a million rows of four distinct texts each
MAX_SHARED_BYTES = 64 * 1024 * 1024  # UTF-8, packed: the table's memory
MAX_PARTS = 65_536  # sheets, relationships, number formats, cell formats (Excel allows 64,000 formats)
MAX_PARSE_SECONDS = 120.0  # CPU time reading one workbook; a safety net under the caps above


def xlsx_records(binary: IO[bytes]) -> Generator[Record]:
    """The first worksheet's rows that hold something (row numbers as the sheet gives them)."""
    clock = _Clock()
    archive = SafeZip(binary, XLSX_LIMITS, "The workbook")
    try:
        try:
            book = _Book.read(archive, clock)
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


class _Clock:
    """CPU time spent reading one workbook (only while parsing: not while the rows are being applied)."""

    def __init__(self) -> None:
        self.spent = 0.0

    def charge(self, started: float) -> None:
        self.spent += time.thread_time() - started
        if self.spent > MAX_PARSE_SECONDS:
            raise _too_large(
                f"The workbook took more than {MAX_PARSE_SECONDS:.0f} s to read; split it into smaller "
                "files.",
                "parse_seconds",
                MAX_PARSE_SECONDS,
            )


def _too_large(message: str, limit: str, maximum: float) -> PayloadTooLarge:
    return PayloadTooLarge(message, details={"limit": limit, "max": maximum})


def _capped(count: int, what: str) -> None:
    if count > MAX_PARTS:
        raise _too_large(f"The workbook lists more than {MAX_PARTS:,} {what}.", what, MAX_PARTS)


def _walk(archive: SafeZip, name: str, clock: _Clock, **handlers: Any) -> None:
    started = time.thread_time()
    for _ in parse_xml(archive, name, **handlers):
        clock.charge(started)
        started = time.thread_time()


def _relationships(archive: SafeZip, part: str, clock: _Clock) -> dict[str, tuple[str, str]]:
    """The part's relationships ("" for the package's own): id → (type, the target's entry name);
    external targets left out."""
    folder, _, base = part.rpartition("/")
    rels_name = f"{folder}/_rels/{base}.rels" if folder else f"_rels/{base}.rels"
    found: dict[str, tuple[str, str]] = {}
    if archive.info(rels_name) is None:
        return found

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag != "Relationship" or attrs.get("TargetMode") == "External":
            return
        target = attrs.get("Target", "")
        name = target[1:] if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
        found[attrs.get("Id", "")] = (attrs.get("Type", ""), name)
        _capped(len(found), "relationships")

    _walk(archive, rels_name, clock, start=start)
    return found


def _of_type(rels: dict[str, tuple[str, str]], kind: str) -> str | None:
    return next((name for rel_type, name in rels.values() if rel_type.endswith("/" + kind)), None)


@dataclass
class _Book:
    """What reading the first worksheet needs from the rest of the workbook."""

    sheet: str
    strings: _SharedStrings
    date_styles: set[str]  # cell format indexes as cells write them ("3")
    timedelta_styles: set[str]
    epoch: datetime

    @classmethod
    def read(cls, archive: SafeZip, clock: _Clock) -> _Book:
        main = _of_type(_relationships(archive, "", clock), "officeDocument") or "xl/workbook.xml"
        if archive.info(main) is None:
            raise UnsupportedMediaType("The file is not a readable XLSX workbook.")
        rels = _relationships(archive, main, clock)
        sheet_ids: list[str] = []
        date1904: list[bool] = []

        def start(tag: str, attrs: dict[str, str]) -> None:
            if tag == "sheet":
                sheet_ids.append(next((v for k, v in attrs.items() if k.endswith(" id")), ""))
                _capped(len(sheet_ids), "sheets")
            elif tag == "workbookPr":
                date1904.append(attrs.get("date1904", "").lower() in ("1", "true"))

        _walk(archive, main, clock, start=start)
        sheets = [rels[i][1] for i in sheet_ids if i in rels and rels[i][0].endswith("/worksheet")]
        if not sheets or archive.info(sheets[0]) is None:
            raise UnsupportedMediaType("The file is not a readable XLSX workbook: it holds no worksheet.")
        strings = _SharedStrings()
        shared = _of_type(rels, "sharedStrings")
        if shared is not None and archive.info(shared) is not None:
            _walk(archive, shared, clock, start=strings.start, end=strings.end, text=strings.text)
        book = cls(sheets[0], strings, set(), set(), MAC_EPOCH if any(date1904) else WINDOWS_EPOCH)
        styles = _of_type(rels, "styles")
        if styles is not None and archive.info(styles) is not None:
            book._read_styles(archive, styles, clock)
        return book

    def _read_styles(self, archive: SafeZip, name: str, clock: _Clock) -> None:
        """Which cell formats show numbers as dates or durations (read as such, like openpyxl did)."""
        custom: dict[int, str] = {}
        formats: list[int] = []
        in_cell_formats = [False]  # inside <cellXfs> (not <cellStyleXfs>)

        def start(tag: str, attrs: dict[str, str]) -> None:
            if tag == "cellXfs":
                in_cell_formats[0] = True
            with contextlib.suppress(ValueError):
                if tag == "numFmt":
                    custom[int(attrs.get("numFmtId", "-1"))] = attrs.get("formatCode", "")
                    _capped(len(custom), "number formats")
                elif tag == "xf" and in_cell_formats[0]:
                    formats.append(int(attrs.get("numFmtId", "0")))
                    _capped(len(formats), "cell formats")

        def end(tag: str) -> None:
            if tag == "cellXfs":
                in_cell_formats[0] = False

        _walk(archive, name, clock, start=start, end=end)
        for index, number_format in enumerate(formats):
            code = custom[number_format] if number_format in custom else builtin_format_code(number_format)
            if is_date_format(code):
                self.date_styles.add(str(index))
            if is_timedelta_format(code):
                self.timedelta_styles.add(str(index))


class _SharedStrings:
    """The shared-string table, packed (UTF-8 in one buffer, an end offset per string): a million
    names cost their bytes, not a million Python objects."""

    def __init__(self) -> None:
        self.blob = bytearray()
        self.ends = array("I")  # offsets stay under 4 GB: the table is capped far below
        self.parts: list[str] = []
        self.collect = False
        self.phonetic = 0  # inside <rPh> (a reading guide, not the text)
        self.chars = 0

    def __getitem__(self, index: int) -> str:
        if not 0 <= index < len(self.ends):
            raise InvalidFile(f"A cell names shared string {index}, which the workbook does not have.")
        return self.blob[self.ends[index - 1] if index else 0 : self.ends[index]].decode()

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if tag == "si":
            self.parts, self.chars = [], 0
        elif tag == "t":
            self.collect = not self.phonetic
        elif tag == "rPh":
            self.phonetic += 1

    def end(self, tag: str) -> None:
        if tag == "t":
            self.collect = False
        elif tag == "rPh":
            self.phonetic -= 1
        elif tag == "si":
            self.blob += "".join(self.parts).replace("x005F_", "").encode()
            self.ends.append(len(self.blob))
            if len(self.blob) > MAX_SHARED_BYTES or len(self.ends) > MAX_SHARED_STRINGS:
                raise _too_large(
                    f"The workbook's shared strings exceed {MAX_SHARED_STRINGS:,} strings or "
                    f"{human_size(MAX_SHARED_BYTES)}; split it into smaller files.",
                    "shared_strings",
                    MAX_SHARED_BYTES,
                )

    def text(self, data: str) -> None:
        if self.collect:
            self.parts.append(data)
            self.chars += len(data)
            if self.chars > MAX_CELL_CHARS:
                raise _cell_too_long(None)


def _cell_too_long(row: int | None) -> PayloadTooLarge:
    where = f"Row {row} has a cell" if row else "The workbook has a text"
    return _too_large(
        f"{where} longer than {MAX_CELL_CHARS:,} characters (the most a cell holds).",
        "cell_characters",
        MAX_CELL_CHARS,
    )


class _Sheet:
    """Expat handlers turning a worksheet into records; rows with no value are counted, not kept."""

    def __init__(self, book: _Book) -> None:
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
            if self.chars > MAX_CELL_CHARS:
                raise _cell_too_long(self.row)

    def _start_row(self, ref: str | None) -> None:
        number = _int(ref) if ref else self.row + 1
        if number <= self.row:
            raise InvalidFile(f"Row {number} comes after row {self.row}: the sheet's rows are out of order.")
        if number > MAX_ROWS:
            raise _too_large(f"The sheet goes past row {MAX_ROWS:,}, the most a sheet has.", "rows", MAX_ROWS)
        self.row, self.column = number, 0
        self.cells, self.formulas, self.numeric = {}, set(), set()

    def _end_row(self) -> None:
        if not self.cells:
            self.empty_run += 1
            if self.empty_run > MAX_EMPTY_ROWS:
                raise _too_large(
                    f"The sheet has more than {MAX_EMPTY_ROWS:,} empty rows in a row (up to row "
                    f"{self.row:,}); delete the empty rows below the data.",
                    "empty_rows",
                    MAX_EMPTY_ROWS,
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
        if self.column > MAX_COLUMNS:
            raise _too_large(
                f"Row {self.row} has a value in column {self.column:,}; at most {MAX_COLUMNS:,} columns "
                "are read.",
                "columns",
                MAX_COLUMNS,
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
