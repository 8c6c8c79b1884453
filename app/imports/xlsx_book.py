"""The workbook around its first worksheet, as reading that sheet needs it (:class:`Book`): which part is
the sheet (through the package's relationships), the shared-string table (packed, capped), which cell
formats show numbers as dates or durations, and whether dates count from 1904. Every part is read with
expat over :mod:`app.core.zipsafe`, its parse time and size charged to the limits of ``xlsx_limits.py``."""

from __future__ import annotations

import contextlib
import posixpath
import time
from array import array
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from openpyxl.styles.numbers import (
    builtin_format_code,
    is_date_format,
    is_timedelta_format,
)
from openpyxl.utils.datetime import MAC_EPOCH, WINDOWS_EPOCH

from app.core.errors import UnsupportedMediaType
from app.core.zipsafe import SafeZip, parse_xml
from app.evaluations.storage import human_size
from app.imports import xlsx_limits as limits
from app.imports.xlsx_limits import Clock, capped, cell_too_long, too_large


class InvalidFile(Exception):
    """The file cannot be read at all (a broken workbook)."""


def _walk(archive: SafeZip, name: str, clock: Clock, **handlers: Any) -> None:
    started = time.thread_time()
    for _ in parse_xml(archive, name, **handlers):
        clock.charge(started)
        started = time.thread_time()


def _relationships(archive: SafeZip, part: str, clock: Clock) -> dict[str, tuple[str, str]]:
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
        capped(len(found), "relationships")

    _walk(archive, rels_name, clock, start=start)
    return found


def _of_type(rels: dict[str, tuple[str, str]], kind: str) -> str | None:
    return next((name for rel_type, name in rels.values() if rel_type.endswith("/" + kind)), None)


@dataclass
class Book:
    """What reading the first worksheet needs from the rest of the workbook."""

    sheet: str
    strings: _SharedStrings
    date_styles: set[str]  # cell format indexes as cells write them ("3")
    timedelta_styles: set[str]
    epoch: datetime

    @classmethod
    def read(cls, archive: SafeZip, clock: Clock) -> Book:
        main = _of_type(_relationships(archive, "", clock), "officeDocument") or "xl/workbook.xml"
        if archive.info(main) is None:
            raise UnsupportedMediaType("The file is not a readable XLSX workbook.")
        rels = _relationships(archive, main, clock)
        sheet_ids: list[str] = []
        date1904: list[bool] = []

        def start(tag: str, attrs: dict[str, str]) -> None:
            if tag == "sheet":
                sheet_ids.append(next((v for k, v in attrs.items() if k.endswith(" id")), ""))
                capped(len(sheet_ids), "sheets")
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

    def _read_styles(self, archive: SafeZip, name: str, clock: Clock) -> None:
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
                    capped(len(custom), "number formats")
                elif tag == "xf" and in_cell_formats[0]:
                    formats.append(int(attrs.get("numFmtId", "0")))
                    capped(len(formats), "cell formats")

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
            if len(self.blob) > limits.MAX_SHARED_BYTES or len(self.ends) > limits.MAX_SHARED_STRINGS:
                raise too_large(
                    f"The workbook's shared strings exceed {limits.MAX_SHARED_STRINGS:,} strings or "
                    f"{human_size(limits.MAX_SHARED_BYTES)}; split it into smaller files.",
                    "shared_strings",
                    limits.MAX_SHARED_BYTES,
                )

    def text(self, data: str) -> None:
        if self.collect:
            self.parts.append(data)
            self.chars += len(data)
            if self.chars > limits.MAX_CELL_CHARS:
                raise cell_too_long(None)
