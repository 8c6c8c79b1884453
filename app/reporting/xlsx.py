"""Workbooks: the one way the service makes an XLSX file (:class:`SafeBook`), and completeness as a
workbook for the association's clerk (headings and labels in the request's language).

Text never becomes a formula or a link. XlsxWriter's ``write()`` and ``write_row()`` turn a string that
starts with ``=`` into a formula and one that looks like a URL into a hyperlink (a unit named
``=HYPERLINK("http://…")`` would be live in the file); :class:`SafeBook` switches those conversions off for
the whole workbook, and :meth:`SafeBook.text` writes a string cell whose text a spreadsheet would take for
a formula (``app.core.csvout.FORMULA_TRIGGERS``) with Excel's quote prefix, so editing the cell keeps it
text. Unlike CSV, no ``'`` is added to the text itself: a string cell is never run.
"""

from __future__ import annotations

import io
from typing import Any

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from app.core import i18n
from app.core.csvout import FORMULA_TRIGGERS
from app.core.i18n import N_
from app.reporting.schemas import Completeness

WORKBOOK_OPTIONS: dict[str, Any] = {
    "in_memory": True,
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
}


class SafeBook:
    """An in-memory XlsxWriter workbook that writes text as text only."""

    def __init__(self) -> None:
        self._out = io.BytesIO()
        self.book = xlsxwriter.Workbook(self._out, WORKBOOK_OPTIONS)
        self._quoted = self.book.add_format({"quote_prefix": True})

    def add_format(self, properties: dict[str, Any]) -> Format:
        return self.book.add_format(properties)

    def add_worksheet(self, name: str) -> Worksheet:
        return self.book.add_worksheet(name)

    def text(
        self, sheet: Worksheet, row: int, col: int, value: str, cell_format: Format | None = None
    ) -> None:
        """A string cell; one that looks like a formula is quote-prefixed (unless it has a format)."""
        if cell_format is None and value and value[0] in FORMULA_TRIGGERS:
            cell_format = self._quoted
        sheet.write_string(row, col, value, cell_format)

    def close(self) -> bytes:
        self.book.close()
        return self._out.getvalue()


# Labels are msgids of the catalogue (app/core/i18n.py): the workbook is in the request's language.
STATUS_LABELS = {
    "not_submitted": N_("Not submitted"),
    "submitted": N_("Submitted"),
    "accepted": N_("Accepted"),
    "returned": N_("Returned"),
}
HEADINGS = (
    N_("Unit code"),
    N_("Unit name"),
    N_("Kind"),
    N_("Submission status"),
    N_("Submission no."),
    N_("Submitted at (UTC)"),
    N_("Due on"),
    N_("Late"),
    N_("Changed since submission"),
)
YES, NO = N_("Yes"), N_("No")


def completeness(result: Completeness, language: str | None = None) -> bytes:
    """The completeness table as a workbook, in ``language`` (default: the request's)."""
    language = language or i18n.current()

    def t(msgid: str, **params: object) -> str:
        return i18n.translate(language, msgid, **params)

    book = SafeBook()
    bold = book.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    day = book.add_format({"num_format": "dd/mm/yyyy"})
    stamp = book.add_format({"num_format": "dd/mm/yyyy hh:mm"})
    sheet = book.add_worksheet(t(N_("Report submissions")))
    heading = t(N_("Report submissions for {year} — unit {unit}"), year=result.year, unit=result.org_unit_id)
    sheet.write_string(0, 0, heading, bold)
    sheet.write_row(1, 0, [t(h) for h in HEADINGS], bold)
    for r, item in enumerate(result.items, start=2):
        book.text(sheet, r, 0, item.code or "")
        book.text(sheet, r, 1, item.name)
        book.text(sheet, r, 2, item.kind)
        status = STATUS_LABELS.get(item.status)
        sheet.write_string(r, 3, t(status) if status else item.status)
        if item.version is not None:
            sheet.write_number(r, 4, item.version)
        if item.submitted_at is not None:
            sheet.write_datetime(r, 5, item.submitted_at.replace(tzinfo=None), stamp)
        if item.due_on is not None:
            sheet.write_datetime(r, 6, item.due_on, day)
        sheet.write_string(r, 7, t(YES) if item.late else "")
        if item.changed_since_submission is not None:
            sheet.write_string(r, 8, t(YES) if item.changed_since_submission else t(NO))
    last = len(result.items) + 3
    sheet.write_string(last, 1, t(N_("Submitted on time (%)")), bold)
    if result.on_time_pct is not None:
        sheet.write_number(last, 3, float(result.on_time_pct))
    sheet.set_column(0, 0, 14)
    sheet.set_column(1, 1, 36)
    sheet.set_column(2, 8, 16)
    sheet.freeze_panes(2, 2)
    return book.close()
