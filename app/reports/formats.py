"""The annual report as a spreadsheet: XLSX (XlsxWriter) and CSV, with headings in the request's language.

XLSX, three sheets, numbers stored as numbers (percentages as 0–100 with two decimals, like the API):

- "Report" ("Báo cáo"): row 1 a title, row 2 the headings (:data:`REPORT_HEADINGS`), then one row per unit
  and group: the totals of the unit asked for first (all groups, then each group), then each child unit
  the same way.
- "Targets" ("Chỉ tiêu"): row 1 the headings (:data:`METRIC_HEADINGS`), then one row per unit and metric —
  exactly ``/aggregates/progress`` for the totals and ``/aggregates/breakdown`` for each child — the metric
  named in the language (the registry's ``title`` or ``title_vi``), its code in the last column;
- "Collective titles" ("Danh hiệu tập thể"): row 1 the headings (:data:`COLLECTIVE_HEADINGS`), then one row
  per unit and collective title (learning families, clans, communities, units).

Language: headings, sheet names, the title and the labels of groups, titles and statuses are msgids of
the catalogue (app/core/i18n.py), written in the ``language`` asked for: the request's for
``GET /reports/annual`` (English unless ``Accept-Language: vi``), Vietnamese — the programme's own — by
default (the workbook filed with a report submission). Codes (unit codes, metric codes) never change.

CSV is the first sheet without its title row, written by the service's one CSV writer (``app.core.csvout``):
UTF-8 **with a BOM** (so Excel opens Vietnamese text correctly on double-click), comma-separated, CRLF line
ends, empty cells for "no value", and text neutralised against formula injection (a unit named
``=HYPERLINK(…)`` or ``+cmd|…`` is written ``'=HYPERLINK(…)``). The workbook is a
``reporting.xlsx.SafeBook``: its text cells are strings, never formulas or links.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal

from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from app.aggregates import metrics
from app.core import csvout
from app.core.i18n import N_, translate
from app.reporting.xlsx import SafeBook
from app.reports.schemas import AnnualReport, UnitReport

OFFICIAL_LANGUAGE = "vi"  # the language of the documents the programme files

GROUP_LABELS = {
    "all": N_("All groups"),
    "resident": N_("Residents"),
    "worker": N_("Workers"),
    "staff": N_("Staff and employees"),
    "student": N_("Pupils and students"),
}
TITLE_LABELS = {
    "learning_family": N_("Learning families"),
    "learning_clan": N_("Learning clans"),
    "learning_community": N_("Learning communities (villages, residential groups)"),
    "learning_unit": N_("Learning units"),
}
STATUS_LABELS = {
    "met": N_("Met"),
    "behind": N_("Behind"),
    "no_target": N_("No target"),
    "no_data": N_("No data"),
}
# (heading, field of GroupRow)
REPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    (N_("Registered"), "registered"),
    (N_("Self-assessed"), "self_assessed"),
    (N_("Submitted"), "submitted"),
    (N_("Reviewed"), "reviewed"),
    (N_("Passed"), "passed"),
    (N_("Recognised"), "recognised"),
    (N_("With digital skills"), "digital_skills"),
    (N_("Digitally proficient"), "digital_proficient"),
    (N_("Recognised (%)"), "recognised_pct"),
    (N_("Recognition target (%)"), "recognised_target"),
    (N_("With digital skills (%)"), "digital_skills_pct"),
    (N_("Digital skills target (%)"), "digital_skills_target"),
    (N_("Digitally proficient (%)"), "digital_proficient_pct"),
    (N_("Digital proficiency target (%)"), "digital_proficient_target"),
)
UNIT_CODE, UNIT, STATUS, TARGET = N_("Unit code"), N_("Unit"), N_("Status"), N_("Target (%)")
REPORT_HEADINGS = (UNIT_CODE, UNIT, N_("Group"), *(h for h, _ in REPORT_COLUMNS))
METRIC_HEADINGS = (
    UNIT_CODE,
    UNIT,
    N_("Metric"),
    N_("Numerator"),
    N_("Denominator"),
    N_("Actual (%)"),
    TARGET,
    N_("Target year"),
    N_("Gap (%)"),
    STATUS,
    N_("Metric code"),
)
COLLECTIVE_HEADINGS = (
    UNIT_CODE,
    UNIT,
    N_("Title"),
    N_("Number"),
    N_("Recognised"),
    N_("Recognised (%)"),
    TARGET,
    STATUS,
)
SHEETS = (N_("Report"), N_("Targets"), N_("Collective titles"))
TITLE = N_("Results of building the Learning Citizen model in {year} — {unit}")


def labels(msgids: Iterable[str], language: str) -> tuple[str, ...]:
    """Headings (or labels) in ``language``."""
    return tuple(translate(language, msgid) for msgid in msgids)


Cell = str | int | float | None


def _number(value: Decimal | Cell) -> Cell:
    if isinstance(value, Decimal):
        return float(value)
    return value


def report_rows(report: AnnualReport, language: str = OFFICIAL_LANGUAGE) -> Iterator[list[Cell]]:
    for unit in (report.total, *report.items):
        for row in unit.groups:
            yield [
                unit.code,
                unit.name,
                translate(language, GROUP_LABELS[row.group]),
                *(_number(getattr(row, f)) for _, f in REPORT_COLUMNS),
            ]


def metric_rows(report: AnnualReport, language: str = OFFICIAL_LANGUAGE) -> Iterator[list[Cell]]:
    units: tuple[UnitReport, ...] = (report.total, *report.items)
    for unit in units:
        for m in unit.metrics:
            known = metrics.get(m.metric)
            yield [
                unit.code,
                unit.name,
                known.title_in(language) if known else m.metric,
                m.numerator,
                m.denominator,
                _number(m.actual),
                _number(m.target),
                m.target_year,
                _number(m.gap),
                translate(language, STATUS_LABELS[m.status.value]),
                m.metric,
            ]


def collective_rows(report: AnnualReport, language: str = OFFICIAL_LANGUAGE) -> Iterator[list[Cell]]:
    for unit in (report.total, *report.items):
        for row in unit.collectives:
            yield [
                unit.code,
                unit.name,
                translate(language, TITLE_LABELS[row.title]) if row.title in TITLE_LABELS else row.title,
                row.subjects,
                row.recognised,
                _number(row.recognised_pct),
                _number(row.target),
                translate(language, STATUS_LABELS[row.status.value]),
            ]


def title(report: AnnualReport, language: str = OFFICIAL_LANGUAGE) -> str:
    return translate(language, TITLE, year=report.year, unit=report.total.name)


def to_csv(report: AnnualReport, language: str = OFFICIAL_LANGUAGE) -> bytes:
    return csvout.document(labels(REPORT_HEADINGS, language), report_rows(report, language))


def to_xlsx(report: AnnualReport, language: str = OFFICIAL_LANGUAGE) -> bytes:
    book = SafeBook()
    bold = book.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    pct = book.add_format({"num_format": "0.00"})
    count = book.add_format({"num_format": "0"})

    report_sheet, targets_sheet, titles_sheet = labels(SHEETS, language)
    sheet = book.add_worksheet(report_sheet)
    book.text(sheet, 0, 0, title(report, language), book.add_format({"bold": True, "font_size": 13}))
    sheet.write_row(1, 0, labels(REPORT_HEADINGS, language), bold)
    for r, row in enumerate(report_rows(report, language), start=2):
        for c, value in enumerate(row):
            _write(book, sheet, r, c, value, pct if c >= 3 + 8 else count)
    sheet.set_column(0, 0, 14)
    sheet.set_column(1, 1, 32)
    sheet.set_column(2, 2, 22)
    sheet.set_column(3, len(REPORT_HEADINGS) - 1, 13)
    sheet.freeze_panes(2, 3)

    targets = book.add_worksheet(targets_sheet)
    targets.write_row(0, 0, labels(METRIC_HEADINGS, language), bold)
    for r, row in enumerate(metric_rows(report, language), start=1):
        for c, value in enumerate(row):
            _write(book, targets, r, c, value, pct if c in (5, 6, 8) else count)
    targets.set_column(0, 0, 14)
    targets.set_column(1, 1, 32)
    targets.set_column(2, 2, 60)
    targets.set_column(3, len(METRIC_HEADINGS) - 1, 13)
    targets.freeze_panes(1, 3)

    titles = book.add_worksheet(titles_sheet)
    titles.write_row(0, 0, labels(COLLECTIVE_HEADINGS, language), bold)
    for r, row in enumerate(collective_rows(report, language), start=1):
        for c, value in enumerate(row):
            _write(book, titles, r, c, value, pct if c in (5, 6) else count)
    titles.set_column(0, 0, 14)
    titles.set_column(1, 1, 32)
    titles.set_column(2, 2, 34)
    titles.set_column(3, len(COLLECTIVE_HEADINGS) - 1, 13)
    titles.freeze_panes(1, 3)
    return book.close()


def _write(book: SafeBook, sheet: Worksheet, row: int, col: int, value: Cell, number_format: Format) -> None:
    if value is None:
        return
    if isinstance(value, int | float) and not isinstance(value, bool):
        sheet.write_number(row, col, value, number_format)
    else:
        book.text(sheet, row, col, str(value))
