"""Completeness as a workbook, for the association's clerk."""

from __future__ import annotations

import io

import xlsxwriter

from app.reporting.schemas import Completeness

STATUS_VI = {
    "not_submitted": "Chưa nộp",
    "submitted": "Đã nộp",
    "accepted": "Đã tiếp nhận",
    "returned": "Trả lại",
}
HEADINGS = [
    "Mã đơn vị",
    "Tên đơn vị",
    "Loại",
    "Tình trạng",
    "Lần nộp",
    "Thời điểm nộp (UTC)",
    "Hạn nộp",
    "Trễ hạn",
    "Số liệu thay đổi sau khi nộp",
]


def completeness(result: Completeness) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    bold = book.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    day = book.add_format({"num_format": "dd/mm/yyyy"})
    stamp = book.add_format({"num_format": "dd/mm/yyyy hh:mm"})
    sheet = book.add_worksheet("Tình hình nộp báo cáo")
    sheet.write_string(0, 0, f"Tình hình nộp báo cáo năm {result.year} — đơn vị {result.org_unit_id}", bold)
    sheet.write_row(1, 0, HEADINGS, bold)
    for r, item in enumerate(result.items, start=2):
        sheet.write_string(r, 0, item.code or "")
        sheet.write_string(r, 1, item.name)
        sheet.write_string(r, 2, item.kind)
        sheet.write_string(r, 3, STATUS_VI.get(item.status, item.status))
        if item.version is not None:
            sheet.write_number(r, 4, item.version)
        if item.submitted_at is not None:
            sheet.write_datetime(r, 5, item.submitted_at.replace(tzinfo=None), stamp)
        if item.due_on is not None:
            sheet.write_datetime(r, 6, item.due_on, day)
        sheet.write_string(r, 7, "Có" if item.late else "")
        if item.changed_since_submission is not None:
            sheet.write_string(r, 8, "Có" if item.changed_since_submission else "Không")
    last = len(result.items) + 3
    sheet.write_string(last, 1, "Nộp đúng hạn (%)", bold)
    if result.on_time_pct is not None:
        sheet.write_number(last, 3, float(result.on_time_pct))
    sheet.set_column(0, 0, 14)
    sheet.set_column(1, 1, 36)
    sheet.set_column(2, 8, 16)
    sheet.freeze_panes(2, 2)
    book.close()
    return out.getvalue()
