"""Import headers (issue #13, item 6): a column that is not known — a misspelling, or a Vietnamese heading
typed without its marks ("So CCCD") — is an error naming the heading it probably means, never silently
dropped or guessed; the dry run and the real run both report it, and nothing is written."""

from __future__ import annotations

import io
from collections.abc import Sequence

import httpx
import openpyxl

from app.imports.columns import PEOPLE, UNITS, heading_form
from app.imports.households import HOUSEHOLDS
from app.orgs.models import OrgUnit
from app.people.models import Person
from tests.api.test_imports import count, csv_file, send
from tests.builders import Tree, build_country


def xlsx_file(rows: Sequence[Sequence[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_unaccented_headings_are_suggestions_never_matches() -> None:
    assert PEOPLE.suggest("So CCCD") == ("Số CCCD", "citizen_id")
    assert PEOPLE.suggest("Nam sinh") == ("Năm sinh", "birth_year")
    assert PEOPLE.suggest("Ho ten") == ("Họ tên", "full_name")
    assert PEOPLE.suggest("HO VA TEN") == ("Họ và tên", "full_name")
    assert PEOPLE.suggest("Họ và tển") == ("Họ và tên", "full_name")  # a wrong mark: the closest heading
    assert PEOPLE.suggest("fullname") == ("full_name", "full_name")
    assert PEOPLE.suggest("Ghi chu") == ("Ghi chú", None)  # a column read and ignored
    assert PEOPLE.suggest("Quê quán") is None
    assert UNITS.suggest("Ma don vi") == ("Mã đơn vị", "code")
    assert HOUSEHOLDS.suggest("Ma ho") == ("Mã hộ", "household_code")
    exact = PEOPLE.exact()
    for accepted in ("Họ và tên", "HỌ VÀ TÊN", "Họ và tên *", "họ_và_tên", "Full Name", "full-name"):
        assert exact[heading_form(accepted)] == "full_name", accepted
    for refused in ("Ho va ten", "So CCCD", "Nam sinh", "Gioi tinh"):
        assert heading_form(refused) not in exact, refused


async def test_unaccented_headings_are_reported_with_their_accented_names(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await build_country(tree)
    school = await tree.unit("Trường THCS Tân Lập", "school", c.commune_a, code="TL-THCS")
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    rows = [
        ["Ho va ten", "Mã đơn vị", "Nhóm", "Nam sinh", "So CCCD", "Giới tính"],
        ["Nguyễn Thị Ánh", school.code or "", "Cán bộ", "1985", "062185001234", "Nữ"],
    ]
    expected = [
        {
            "row": 1,
            "column": "full_name",
            "message": 'Column "Ho va ten" is not known; did you mean "Họ và tên"?',
        },
        {
            "row": 1,
            "column": "birth_year",
            "message": 'Column "Nam sinh" is not known; did you mean "Năm sinh"?',
        },
        {
            "row": 1,
            "column": "citizen_id",
            "message": 'Column "So CCCD" is not known; did you mean "Số CCCD"?',
        },
    ]
    before = await tree.snapshot()
    dry = await send(client, h, "people", csv_file(rows), dry_run=True)
    assert dry.status_code == 200, dry.text
    # The required full_name is suggested, so it is not also reported missing; no row was read.
    assert (dry.json()["errors"], dry.json()["created"]) == (expected, 0)
    real = await send(client, h, "people", csv_file(rows))
    assert real.status_code == 422
    assert (real.json()["errors"], real.json()["created"], real.json()["error_count"]) == (expected, 0, 3)
    xlsx = await send(
        client, h, "people", xlsx_file(rows), filename="people.xlsx"
    )  # the same from a workbook
    assert (xlsx.status_code, xlsx.json()["errors"]) == (422, expected)
    after = await tree.snapshot()
    for table in ("people", "memberships", "audit_entries"):
        assert after.get(table) == before.get(table), table

    vi = await send(client, {**h, "Accept-Language": "vi"}, "people", csv_file(rows), dry_run=True)
    assert vi.headers["content-language"] == "vi"
    assert [e["message"] for e in vi.json()["errors"]] == [
        'Không xác định được cột "Ho va ten"; có phải là cột "Họ và tên" không?',
        'Không xác định được cột "Nam sinh"; có phải là cột "Năm sinh" không?',
        'Không xác định được cột "So CCCD"; có phải là cột "Số CCCD" không?',
    ]


async def test_an_unknown_column_is_an_error_not_dropped(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    code = c.school_a.code or ""
    people_before = await count(tree, Person)
    rows = [
        ["full_name", "unit_code", "group", "Quê quán", "gruop_name"],
        ["Lê Văn Tám", code, "resident", "Hà Nội", "x"],
    ]
    r = await send(client, h, "people", csv_file(rows))
    assert r.status_code == 422
    columns = "full_name, unit_code, group, birth_year, citizen_id, gender"
    assert r.json()["errors"] == [
        {
            "row": 1,
            "column": None,
            "message": f'Column "Quê quán" is not known; the columns are: {columns}.',
        },
        {
            "row": 1,
            "column": None,
            "message": f'Column "gruop_name" is not known; the columns are: {columns}.',
        },
    ]
    misspelt = await send(
        client, h, "people", csv_file([["full_name", "unit_code", "gruop"], ["A", code, "x"]])
    )
    assert misspelt.json()["errors"] == [
        {"row": 1, "column": "group", "message": 'Column "gruop" is not known; did you mean "group"?'}
    ]
    assert await count(tree, Person) == people_before


async def test_row_numbers_notes_and_accented_variants_are_accepted(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await build_country(tree)
    await tree.unit("Thôn Hạ", "village", c.commune_a, code="TH-HA")
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    code = "TH-HA"
    rows = [
        ["STT", "HỌ VÀ TÊN", "Mã đơn vị *", "nhóm đối tượng", "Ghi chú"],
        ["1", "Phạm Thị Hoa", code, "Người dân", "chuyển đến tháng 3"],
    ]
    r = await send(client, h, "people", csv_file(rows))
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["errors"]) == (1, [])


async def test_the_header_below_a_title_is_the_one_reported(client: httpx.AsyncClient, tree: Tree) -> None:
    """A title row above the header: the problems named are the header's (row 3), not the title's."""
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.province_a)))
    rows = [
        ["DANH SÁCH ĐƠN VỊ", "", "", ""],
        ["", "", "", ""],
        ["Ma don vi", "Tên đơn vị", "Loại", "Mã đơn vị cấp trên"],
        ["X-1", "Thôn X", "Thôn", c.commune_a.code or ""],
    ]
    r = await send(client, h, "org-units", xlsx_file(rows), filename="units.xlsx", dry_run=True)
    assert r.status_code == 200
    assert r.json()["errors"] == [
        {"row": 3, "column": "code", "message": 'Column "Ma don vi" is not known; did you mean "Mã đơn vị"?'}
    ]
    before = await count(tree, OrgUnit)
    assert (await send(client, h, "org-units", xlsx_file(rows), filename="units.xlsx")).status_code == 422
    assert await count(tree, OrgUnit) == before


async def test_household_and_duplicate_headings(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    code = c.commune_a.code or ""
    rows = [["Ma ho", "Tên hộ", "Mã đơn vị", "Số định danh thành viên"], ["H-1", "Hộ Lê", code, ""]]
    r = await send(client, h, "households", csv_file(rows), dry_run=True)
    assert r.status_code == 200
    assert r.json()["errors"] == [
        {
            "row": 1,
            "column": "household_code",
            "message": 'Column "Ma ho" is not known; did you mean "Mã hộ"?',
        }
    ]
    twice = [["full_name", "Họ và tên", "unit_code", "group"], ["A", "A", c.school_a.code or "", "resident"]]
    r = await send(client, h, "people", csv_file(twice), dry_run=True)
    assert r.json()["errors"] == [
        {"row": 1, "column": "full_name", "message": "Two columns mean 'full_name' (columns 1 and 2)."}
    ]
