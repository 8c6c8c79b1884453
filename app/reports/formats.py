"""The annual report as a spreadsheet: XLSX (XlsxWriter) with Vietnamese headings, and CSV.

XLSX, two sheets, numbers stored as numbers (percentages as 0–100 with two decimals, like the API):

- "Báo cáo": row 1 a title, row 2 the headings (:data:`REPORT_HEADINGS`), then one row per unit and group:
  the totals of the unit asked for first (all groups, then each group), then each child unit the same way.
- "Chỉ tiêu": row 1 the headings (:data:`METRIC_HEADINGS`), then one row per unit and metric — exactly
  ``/aggregates/progress`` for the totals and ``/aggregates/breakdown`` for each child — the metric named
  in Vietnamese (the registry's ``title_vi``), its code in the last column;
- "Danh hiệu tập thể": row 1 the headings (:data:`COLLECTIVE_HEADINGS`), then one row per unit and
  collective title (learning families, clans, communities, units).

CSV is the first sheet without its title row: UTF-8 **with a BOM** (so Excel opens Vietnamese text correctly
on double-click), comma-separated, CRLF line ends, empty cells for "no value".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal

import xlsxwriter

from app.aggregates import metrics
from app.reports.schemas import AnnualReport, UnitReport

BOM = "\ufeff"

GROUP_LABELS = {
    "all": "Tất cả",
    "resident": "Người dân",
    "worker": "Người lao động",
    "staff": "Cán bộ, công nhân viên",
    "student": "Học sinh, sinh viên",
}
TITLE_LABELS = {
    "learning_family": "Gia đình học tập",
    "learning_clan": "Dòng họ học tập",
    "learning_community": "Cộng đồng học tập (thôn, tổ dân phố)",
    "learning_unit": "Đơn vị học tập",
}
STATUS_LABELS = {
    "met": "Đạt",
    "behind": "Chưa đạt",
    "no_target": "Không có chỉ tiêu",
    "no_data": "Không có dữ liệu",
}
# (heading, field of GroupRow)
REPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Số người đăng ký", "registered"),
    ("Đã tự đánh giá", "self_assessed"),
    ("Đã nộp", "submitted"),
    ("Đã thẩm định", "reviewed"),
    ("Đạt", "passed"),
    ("Được công nhận", "recognised"),
    ("Có kỹ năng số", "digital_skills"),
    ("Thành thạo kỹ năng số", "digital_proficient"),
    ("Tỷ lệ được công nhận (%)", "recognised_pct"),
    ("Chỉ tiêu được công nhận (%)", "recognised_target"),
    ("Tỷ lệ có kỹ năng số (%)", "digital_skills_pct"),
    ("Chỉ tiêu kỹ năng số (%)", "digital_skills_target"),
    ("Tỷ lệ thành thạo kỹ năng số (%)", "digital_proficient_pct"),
    ("Chỉ tiêu thành thạo kỹ năng số (%)", "digital_proficient_target"),
)
REPORT_HEADINGS = ("Mã đơn vị", "Đơn vị", "Nhóm", *(h for h, _ in REPORT_COLUMNS))
METRIC_HEADINGS = (
    "Mã đơn vị",
    "Đơn vị",
    "Chỉ số",
    "Tử số",
    "Mẫu số",
    "Thực hiện (%)",
    "Chỉ tiêu (%)",
    "Năm chỉ tiêu",
    "Chênh lệch (%)",
    "Trạng thái",
    "Mã chỉ số",
)
COLLECTIVE_HEADINGS = (
    "Mã đơn vị",
    "Đơn vị",
    "Danh hiệu",
    "Số lượng",
    "Được công nhận",
    "Tỷ lệ được công nhận (%)",
    "Chỉ tiêu (%)",
    "Trạng thái",
)

Cell = str | int | float | None


def _number(value: object) -> Cell:
    if isinstance(value, Decimal):
        return float(value)
    return value  # type: ignore[return-value]


def report_rows(report: AnnualReport) -> Iterator[list[Cell]]:
    for unit in (report.total, *report.items):
        for row in unit.groups:
            yield [
                unit.code,
                unit.name,
                GROUP_LABELS[row.group],
                *(_number(getattr(row, f)) for _, f in REPORT_COLUMNS),
            ]


def metric_rows(report: AnnualReport) -> Iterator[list[Cell]]:
    units: tuple[UnitReport, ...] = (report.total, *report.items)
    for unit in units:
        for m in unit.metrics:
            known = metrics.get(m.metric)
            yield [
                unit.code,
                unit.name,
                known.title_vi if known else m.metric,
                m.numerator,
                m.denominator,
                _number(m.actual),
                _number(m.target),
                m.target_year,
                _number(m.gap),
                STATUS_LABELS[m.status.value],
                m.metric,
            ]


def collective_rows(report: AnnualReport) -> Iterator[list[Cell]]:
    for unit in (report.total, *report.items):
        for row in unit.collectives:
            yield [
                unit.code,
                unit.name,
                TITLE_LABELS.get(row.title, row.title),
                row.subjects,
                row.recognised,
                _number(row.recognised_pct),
                _number(row.target),
                STATUS_LABELS[row.status.value],
            ]


def title(report: AnnualReport) -> str:
    return f"Báo cáo kết quả xây dựng mô hình Công dân học tập năm {report.year} — {report.total.name}"


def to_csv(report: AnnualReport) -> bytes:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out)
    writer.writerow(REPORT_HEADINGS)
    for row in report_rows(report):
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue().encode("utf-8")


def to_xlsx(report: AnnualReport) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    bold = book.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    pct = book.add_format({"num_format": "0.00"})
    count = book.add_format({"num_format": "0"})

    sheet = book.add_worksheet("Báo cáo")
    sheet.write_string(0, 0, title(report), book.add_format({"bold": True, "font_size": 13}))
    sheet.write_row(1, 0, REPORT_HEADINGS, bold)
    for r, row in enumerate(report_rows(report), start=2):
        for c, value in enumerate(row):
            _write(sheet, r, c, value, pct if c >= 3 + 8 else count)
    sheet.set_column(0, 0, 14)
    sheet.set_column(1, 1, 32)
    sheet.set_column(2, 2, 22)
    sheet.set_column(3, len(REPORT_HEADINGS) - 1, 13)
    sheet.freeze_panes(2, 3)

    targets = book.add_worksheet("Chỉ tiêu")
    targets.write_row(0, 0, METRIC_HEADINGS, bold)
    for r, row in enumerate(metric_rows(report), start=1):
        for c, value in enumerate(row):
            _write(targets, r, c, value, pct if c in (5, 6, 8) else count)
    targets.set_column(0, 0, 14)
    targets.set_column(1, 1, 32)
    targets.set_column(2, 2, 60)
    targets.set_column(3, len(METRIC_HEADINGS) - 1, 13)
    targets.freeze_panes(1, 3)

    titles = book.add_worksheet("Danh hiệu tập thể")
    titles.write_row(0, 0, COLLECTIVE_HEADINGS, bold)
    for r, row in enumerate(collective_rows(report), start=1):
        for c, value in enumerate(row):
            _write(titles, r, c, value, pct if c in (5, 6) else count)
    titles.set_column(0, 0, 14)
    titles.set_column(1, 1, 32)
    titles.set_column(2, 2, 34)
    titles.set_column(3, len(COLLECTIVE_HEADINGS) - 1, 13)
    titles.freeze_panes(1, 3)
    book.close()
    return out.getvalue()


def _write(sheet: object, row: int, col: int, value: Cell, number_format: object) -> None:
    if value is None:
        return
    if isinstance(value, int | float) and not isinstance(value, bool):
        sheet.write_number(row, col, value, number_format)  # type: ignore[attr-defined]
    else:
        sheet.write_string(row, col, str(value))  # type: ignore[attr-defined]
