"""Reading an uploaded import file: spooled to a temporary file, then read row by row (never whole).

- The upload is copied to a temporary file in 1 MB chunks while its SHA-256 and size are taken; more than
  ``CDHT_MAX_IMPORT_BYTES`` is 413. The type comes from the bytes: a ZIP container is XLSX, an old binary
  ``.xls`` or anything with NUL bytes is 415, the rest is CSV.
- CSV: UTF-8 with or without a BOM; when the file is not valid UTF-8, Windows-1258 (CP1258, the legacy
  Vietnamese code page). Every cell is NFC-normalised, which also joins CP1258's separate tone marks to
  their letters. The delimiter (``,`` ``;`` or tab) is the one that splits the header row into the most
  known columns (``csv.Sniffer`` breaks ties).
- XLSX: read by :mod:`app.imports.xlsx` (our own streaming reader, bounded in what one workbook may cost;
  a cell holding a formula is refused: the file must carry values, not a computation we would have to
  trust). The ZIP container is checked when spooling too, so a bomb is refused before it is queued as a
  job. A limit is 413, a DTD in any part 415, a workbook that breaks off part-way a row problem.
- The header is the first row, among the first ten, that holds every required column and nothing else
  (title rows above it are skipped). When none does, the problems of the row meant as the header are
  reported — a column that is not known (with the heading it probably means: "So CCCD" → "Số CCCD"), one
  given twice, one missing — or else those of the first non-empty row; no row is read. Headings are
  matched by :mod:`app.imports.columns`. Row numbers are
  those a spreadsheet shows (the header is usually row 1). Empty rows are skipped. CSV cells that start
  with ``=`` are refused like formulas.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import IO

from fastapi import UploadFile

from app.core.errors import PayloadTooLarge, UnsupportedMediaType
from app.core.i18n import gettext  # not _: open_table's loop uses _ as a throwaway name
from app.core.zipsafe import SafeZip
from app.evaluations.storage import human_size
from app.imports.columns import Spec, fold
from app.imports.schemas import Problems
from app.imports.xlsx import Record, clean, xlsx_records
from app.imports.xlsx_book import InvalidFile
from app.imports.xlsx_limits import XLSX_LIMITS

CHUNK = 1024 * 1024
SAMPLE = 64 * 1024
DELIMITERS = (",", ";", "\t")
HEADER_SEARCH_ROWS = 10  # a title or a blank line or two may stand above the header


@dataclass
class Spooled:
    """The upload on disk, with what was learnt while copying it."""

    file: IO[bytes]
    filename: str
    size: int
    sha256: str
    kind: str  # "csv" | "xlsx"
    encoding: str | None  # CSV only; None when neither UTF-8 nor CP1258 decodes it

    def close(self) -> None:
        self.file.close()


def spool(upload: UploadFile, max_bytes: int) -> Spooled:
    """Copy the upload to a temporary file (blocking: run it in a worker thread)."""
    temp = tempfile.TemporaryFile()  # noqa: SIM115 - closed by Spooled.close()
    try:
        return _spool(upload, temp, max_bytes)
    except BaseException:
        temp.close()
        raise


def _spool(upload: UploadFile, temp: IO[bytes], max_bytes: int) -> Spooled:
    digest, size = hashlib.sha256(), 0
    utf8 = codecs.getincrementaldecoder("utf-8")()
    is_utf8 = is_cp1258 = True
    head = b""
    upload.file.seek(0)
    while chunk := upload.file.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(
                gettext("An import file may be at most {size}.", size=human_size(max_bytes))
            )
        digest.update(chunk)
        temp.write(chunk)
        if len(head) < SAMPLE:
            head += chunk[: SAMPLE - len(head)]
        if is_utf8:
            try:
                utf8.decode(chunk)
            except UnicodeDecodeError:
                is_utf8 = False
        if not is_utf8 and is_cp1258:
            is_cp1258 = _decodes(chunk, "cp1258")
    if is_utf8:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            is_utf8 = False
    if not is_utf8 and is_cp1258:
        # The chunks before the one that broke UTF-8 were not checked against CP1258 yet.
        temp.seek(0)
        is_cp1258 = all(_decodes(c, "cp1258") for c in iter(lambda: temp.read(CHUNK), b""))
    temp.seek(0)
    kind = _kind(head)
    if kind == "xlsx":
        # The container's directory, before anything inflates: a bomb is refused here, not in a queued job.
        SafeZip(temp, XLSX_LIMITS, "The workbook").close()
        temp.seek(0)
    encoding = "utf-8-sig" if is_utf8 else "cp1258" if is_cp1258 else None
    return Spooled(temp, upload.filename or "", size, digest.hexdigest(), kind, encoding)


def _decodes(chunk: bytes, encoding: str) -> bool:
    try:
        chunk.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _kind(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise UnsupportedMediaType(
            gettext("Old .xls workbooks are not read: save the sheet as .xlsx or CSV.")
        )
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UnsupportedMediaType(gettext("The file is neither CSV nor XLSX."))
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UnsupportedMediaType(gettext("UTF-16 text is not read: save the CSV as UTF-8."))
    return "csv"


@dataclass(frozen=True)
class Row:
    """One data row: ``values`` maps each known field to its text ('' when empty); ``formulas`` and
    ``numeric`` name the fields whose cell held a formula or a number."""

    number: int
    values: dict[str, str]
    formulas: frozenset[str] = frozenset()
    numeric: frozenset[str] = frozenset()


@dataclass
class Table:
    """The rows of a file whose header was understood (``rows`` is a lazy iterator)."""

    fields: set[str]
    rows: Iterator[Row] = field(default_factory=lambda: iter(()))


# A raw record: row number, cell texts, indexes of formula cells, indexes of numeric cells.


def open_table(spooled: Spooled, spec: Spec, problems: Problems) -> Table | None:
    """Read the header and return the table, or None (with the reasons in ``problems``)."""
    if spooled.kind == "xlsx":
        records = xlsx_records(spooled.file)
    elif spooled.encoding is None:
        problems.add(None, None, gettext("The file is neither UTF-8 nor Windows-1258 (CP1258) text."))
        return None
    else:
        records = _csv_records(spooled.file, spooled.encoding, spec)
    try:
        first: tuple[int, list[str]] | None = None
        for number, cells, _, _ in records:
            if not any(c for c in cells):
                continue
            first = first or (number, cells)
            mapping = _header(number, cells, spec, Problems())
            if mapping is not None:
                return Table(set(mapping), _rows(records, mapping, problems))
            if spec.read_header(cells).meant:
                first = (number, cells)  # the header, with an unknown, misspelt or doubled column
                break
            if number - first[0] >= HEADER_SEARCH_ROWS:
                break
    except InvalidFile as exc:
        problems.add(None, None, str(exc))
        return None
    records.close()
    if first is None:
        problems.add(None, None, gettext("The file holds no header row and no data."))
    else:
        _header(*first, spec, problems)  # report what is wrong with the header (or the first row)
    return None


def _header(number: int, cells: list[str], spec: Spec, problems: Problems) -> dict[str, int] | None:
    """The columns of a header row (field → index), or None with its problems reported."""
    header = spec.read_header(cells)
    for unknown in header.unknown:
        if unknown.suggestion is not None:
            message = gettext(
                'Column "{heading}" is not known; did you mean "{suggestion}"?',
                heading=unknown.heading,
                suggestion=unknown.suggestion,
            )
        else:
            message = gettext(
                'Column "{heading}" is not known; the columns are: {columns}.',
                heading=unknown.heading,
                columns=spec.field_names(),
            )
        problems.add(number, unknown.field, message)
    for found, first, second in header.duplicates:
        message = gettext(
            "Two columns mean '{field}' (columns {first} and {second}).",
            field=found,
            first=first + 1,
            second=second + 1,
        )
        problems.add(number, found, message)
    for column in header.missing:
        also = ", ".join(column.aliases)
        problems.add(
            number,
            column.field,
            gettext(
                "Missing column '{column}' (also accepted: {aliases}).", column=column.field, aliases=also
            ),
        )
    return header.fields if header.ok else None


def _rows(records: Iterator[Record], mapping: dict[str, int], problems: Problems) -> Iterator[Row]:
    try:
        for number, cells, formulas, numeric in records:
            if not any(c for c in cells):
                continue
            values = {f: cells[i] if i < len(cells) else "" for f, i in mapping.items()}
            yield Row(
                number,
                values,
                frozenset(f for f, i in mapping.items() if i in formulas),
                frozenset(f for f, i in mapping.items() if i in numeric),
            )
    except InvalidFile as exc:
        problems.add(None, None, str(exc))


def _csv_records(binary: IO[bytes], encoding: str, spec: Spec) -> Generator[Record]:
    text = io.TextIOWrapper(binary, encoding=encoding, newline="")
    sample = text.read(SAMPLE)
    text.seek(0)
    delimiter = _delimiter(sample, spec)
    reader = csv.reader(text, delimiter=delimiter)
    try:
        for number, record in enumerate(reader, start=1):
            cells = [clean(c) for c in record]
            formulas = {i for i, c in enumerate(cells) if c.startswith("=")}
            yield number, cells, formulas, set()
    except csv.Error as exc:
        raise InvalidFile(
            gettext("The CSV cannot be read near row {row}: {error}.", row=reader.line_num, error=exc)
        ) from exc
    finally:
        with contextlib.suppress(ValueError):  # the spooled file may be closed first
            text.detach()


def _delimiter(sample: str, spec: Spec) -> str:
    """The delimiter that splits one of the first lines (the header, below any title) into the most
    known headings."""
    lines = [line for line in sample.splitlines() if line.strip()][:HEADER_SEARCH_ROWS]
    if not lines:
        return ","
    lookup = spec.lookup()
    scores = {
        d: max(
            sum(1 for cell in next(csv.reader([line], delimiter=d)) if fold(cell) in lookup) for line in lines
        )
        for d in DELIMITERS
    }
    best = max(scores.values())
    tied = [d for d in DELIMITERS if scores[d] == best]
    if len(tied) == 1:
        return tied[0]
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        return tied[0]
    return sniffed if sniffed in tied else tied[0]
