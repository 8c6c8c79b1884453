"""Story 1 of the integration issue over HTTP: bulk imports of org units and people from CSV and XLSX,
dry run first, all or nothing, scoped, recorded; and the bad files education offices really send."""

from __future__ import annotations

import io
import unicodedata

import httpx
import openpyxl
from sqlalchemy import func, select

from app.core.audit import AuditEntry
from app.imports.models import ImportRecord
from app.orgs.models import OrgUnit, OrgUnitClosure
from app.people.models import Person
from tests.builders import Tree, build_country

API = "/api/v1"
TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"  # grave, acute, tilde, hook above, dot below


def csv_file(
    rows: list[list[str]], delimiter: str = ",", *, bom: bool = False, encoding: str = "utf-8"
) -> bytes:
    text = "\r\n".join(delimiter.join(row) for row in rows) + "\r\n"
    data = to_cp1258(text) if encoding == "cp1258" else text.encode(encoding)
    return (b"\xef\xbb\xbf" if bom else b"") + data


def to_cp1258(text: str) -> bytes:
    """Vietnamese as Windows-1258 writes it: precomposed where the code page has the letter, else the
    base letter followed by a separate tone mark."""
    out = b""
    for ch in text:
        try:
            out += ch.encode("cp1258")
        except UnicodeEncodeError:
            decomposed = unicodedata.normalize("NFD", ch)
            tone = next(c for c in decomposed if c in TONE_MARKS)
            base = unicodedata.normalize("NFC", decomposed.replace(tone, "", 1))
            out += base.encode("cp1258") + tone.encode("cp1258")
    return out


async def send(
    client: httpx.AsyncClient,
    h: dict[str, str],
    kind: str,
    content: bytes,
    *,
    dry_run: bool = False,
    filename: str = "data.csv",
) -> httpx.Response:
    return await client.post(
        f"{API}/imports/{kind}",
        params={"dry_run": "true" if dry_run else "false"},
        files={"file": (filename, content, "application/octet-stream")},
        headers=h,
    )


async def count(tree: Tree, model: type) -> int:
    return int(await tree.session.scalar(select(func.count()).select_from(model)) or 0)


UNITS_HEADER = ["code", "name", "kind", "parent_code"]


async def test_units_dry_run_then_real_then_again_changes_nothing(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await build_country(tree)
    province = await tree.unit("Tỉnh Kon Tum", "province", c.nation, code="62")
    h = tree.auth(await tree.user(("org_admin", province)))
    rows = [
        UNITS_HEADER,
        ["62-614-DR", "Xã Đăk Ruồng", "commune", "62-614"],  # its parent comes two rows later
        ["62-614-DR-T1", "Thôn 1", "Thôn", "62-614-DR"],
        ["62-614", "Huyện Kon Rẫy", "district", "62"],
    ]
    before = await count(tree, OrgUnit)

    dry = await send(client, h, "org-units", csv_file(rows), dry_run=True)
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert (body["dry_run"], body["created"], body["updated"], body["unchanged"], body["errors"]) == (
        True,
        3,
        0,
        0,
        [],
    )
    assert await count(tree, OrgUnit) == before

    real = await send(client, h, "org-units", csv_file(rows))
    assert real.status_code == 200, real.text
    assert (real.json()["created"], real.json()["dry_run"]) == (3, False)
    desc = await client.get(f"{API}/org-units/{province.id}/descendants", headers=h)
    by_code = {u["code"]: u for u in desc.json()["items"]}
    assert set(by_code) == {"62-614", "62-614-DR", "62-614-DR-T1"}
    assert by_code["62-614-DR-T1"]["kind"] == "village" and by_code["62-614-DR-T1"]["depth"] == 4
    assert by_code["62-614-DR"]["parent_id"] == by_code["62-614"]["id"]
    # The closure table knows the new chain: the village lies under the nation, four levels down.
    link = await tree.session.scalar(
        select(OrgUnitClosure.depth).where(
            OrgUnitClosure.ancestor_id == c.nation.id,
            OrgUnitClosure.descendant_id == by_code["62-614-DR-T1"]["id"],
        )
    )
    assert link == 4

    again = await send(client, h, "org-units", csv_file(rows))
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 3)
    assert await count(tree, OrgUnit) == before + 3

    renamed = [*rows[:3], ["62-614", "Huyện Kon Rẫy (cũ)", "district", "62"]]
    r = await send(client, h, "org-units", csv_file(renamed))
    assert (r.json()["updated"], r.json()["unchanged"]) == (1, 2)
    district = await client.get(f"{API}/org-units/{by_code['62-614']['id']}", headers=h)
    assert district.json()["name"] == "Huyện Kon Rẫy (cũ)" and district.json()["version"] == 2

    records = (await tree.session.scalars(select(ImportRecord).order_by(ImportRecord.id))).all()
    assert [(r.dry_run, r.applied, r.created) for r in records[-4:]] == [
        (True, False, 3),
        (False, True, 3),
        (False, True, 0),
        (False, True, 0),
    ]
    entry = await tree.session.scalar(
        select(AuditEntry).where(AuditEntry.entity_type == "import", AuditEntry.entity_id == records[-3].id)
    )
    assert entry is not None and entry.action == "org_units_imported"
    assert entry.after is not None and sorted(entry.after["created_ids"]) == sorted(
        u["id"] for u in by_code.values()
    )


async def test_cycles_duplicates_and_bad_rows_write_nothing(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.province_a)))
    province_code = "PA"
    tree.session.add(c.province_a)
    c.province_a.code = province_code
    await tree.session.commit()
    rows = [
        UNITS_HEADER,
        ["OK-1", "Xã Tốt", "commune", province_code],
        ["A", "Xã A", "commune", "B"],
        ["B", "Xã B", "commune", "A"],
        ["OK-1", "Xã Tốt lần hai", "commune", province_code],
        ["BAD", "Xã Sai", "planet", province_code],
        ["KID", "Thôn con", "village", "BAD"],
        ["GRAND", "Tổ", "unit", "A"],
    ]
    before = await tree.snapshot()
    r = await send(client, h, "org-units", csv_file(rows))
    assert r.status_code == 422, r.text
    errors = {(e["row"], e["column"]) for e in r.json()["errors"]}
    assert {(3, "parent_code"), (4, "parent_code")} <= errors  # the circle A → B → A
    assert (5, "code") in errors  # OK-1 again
    assert (6, "kind") in errors
    assert (7, "parent_code") in errors  # its parent's row is wrong
    assert (8, "parent_code") in errors  # its parent is in the circle
    assert (2, "code") not in errors and (2, "parent_code") not in errors
    circle = next(e["message"] for e in r.json()["errors"] if e["row"] == 3)
    assert "A → B → A" in circle
    after = await tree.snapshot()
    for table in ("org_units", "org_unit_closure", "people", "audit_entries"):
        assert after[table] == before[table], table


async def test_header_problems_are_reported_for_the_file(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.province_a)))
    missing = await send(client, h, "org-units", csv_file([["code", "name"], ["X", "Xã X"]]), dry_run=True)
    assert missing.status_code == 200
    assert missing.json()["errors"][0] == {
        "row": 1,
        "column": "kind",
        "message": "Missing column 'kind' (also accepted: Loại, Loại đơn vị, Cấp).",
    }
    pipes = csv_file([UNITS_HEADER, ["X", "Xã X", "commune", "Y"]], delimiter="|")
    wrong = await send(client, h, "org-units", pipes)
    assert wrong.status_code == 422
    # The one "heading" the wrong delimiter leaves is not a known column, and the three required are missing.
    assert {e["column"] for e in wrong.json()["errors"]} == {None, "code", "name", "kind"}
    unknown = next(e for e in wrong.json()["errors"] if e["column"] is None)
    assert unknown["message"].startswith('Column "code|name|kind|parent_code" is not known')
    empty = await send(client, h, "people", b"\r\n\r\n", dry_run=True)
    assert empty.json()["errors"][0]["row"] is None
    pdf = await send(client, h, "people", b"%PDF-1.4\n\x00\x01binary", filename="x.csv")
    assert pdf.status_code == 415 and pdf.json()["error"]["code"] == "unsupported_media_type"


async def test_people_with_bom_semicolons_and_vietnamese_headers(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await build_country(tree)
    school = await tree.unit("Trường THCS Tân Lập", "school", c.commune_a, code="TL-THCS")
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    rows = [
        ["STT", "Họ và tên", "Mã đơn vị", "Nhóm", "Năm sinh", "Số CCCD", "Giới tính"],
        ["1", "Nguyễn Thị Ánh", "TL-THCS", "Cán bộ", "1985", "062185001234", "Nữ"],
        ["", "", "", "", "", "", ""],  # an empty row in the middle
        ["2", "Y Bình", "TL-THCS", "student", "2010", "", "nam"],
    ]
    r = await send(client, h, "people", csv_file(rows, ";", bom=True))
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["errors"]) == (2, [])
    listed = (await client.get(f"{API}/people", params={"org_unit_id": school.id}, headers=h)).json()
    people = {p["full_name"]: p for p in listed["items"]}
    assert set(people) == {"Nguyễn Thị Ánh", "Y Bình"}
    anh = people["Nguyễn Thị Ánh"]
    assert (anh["group"], anh["gender"], anh["birth_year"], anh["citizen_id"]) == (
        "staff",
        "female",
        1985,
        "********1234",
    )
    # The same file again: the person with a citizen id is matched, the one without is created again.
    again = await send(client, h, "people", csv_file(rows, ";", bom=True))
    assert (again.json()["created"], again.json()["unchanged"]) == (1, 1)


async def test_people_from_a_windows_1258_file(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    await tree.unit("Trường Đăk Ruồng", "school", c.commune_a, code="DR-1")
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    rows = [
        ["Họ và tên", "Mã đơn vị", "Nhóm", "Số CCCD"],
        ["Trần Văn Đức", "DR-1", "Người dân", "001090000001"],
        ["Lê Thị Huệ", "DR-1", "Người lao động", "001090000002"],
    ]
    content = csv_file(rows, "\t", encoding="cp1258")
    assert b"\xd2" in content or b"\xde" in content or b"\xf2" in content  # separate tone marks
    r = await send(client, h, "people", content)
    assert r.status_code == 200, r.text
    names = await tree.session.scalars(select(Person.full_name).where(Person.citizen_id.like("0010900000%")))
    assert sorted(names.all()) == ["Lê Thị Huệ", "Trần Văn Đức"]  # NFC, as if typed in UTF-8


def xlsx_file(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_people_from_xlsx_with_numbers_empty_rows_and_a_formula(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await build_country(tree)
    await tree.unit("Trường Kon Rẫy", "school", c.commune_a, code="KR-1")
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    rows: list[list[object]] = [
        ["DANH SÁCH CÁN BỘ, GIÁO VIÊN NĂM 2025"],  # a title and a blank row above the header
        [None],
        ["Họ và tên", "Mã đơn vị", "Nhóm", "Năm sinh", "Số CCCD", "Giới tính"],
        ["Phạm Minh Châu", "KR-1", "staff", 1990, 1090000123, "Nam"],  # 001090000123 typed as a number
        [None, None, None, None, None, None],
        ["Đỗ Thị Hoa", "KR-1", "staff", "=1980+5", "001085000999", "Nữ"],
    ]
    r = await send(client, h, "people", xlsx_file(rows), filename="people.xlsx")
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"row": 6, "column": "birth_year", "message": "The cell holds a formula; paste values only."}
    ]
    assert r.json()["created"] == 1  # what the valid rows would have done

    rows[5][3] = 1985
    r = await send(client, h, "people", xlsx_file(rows), filename="people.xlsx")
    assert r.status_code == 200, r.text
    chau = await tree.session.scalar(select(Person).where(Person.full_name == "Phạm Minh Châu"))
    assert chau is not None and (chau.citizen_id, chau.birth_year, chau.gender) == (
        "001090000123",
        1990,
        "male",
    )


async def test_rows_outside_scope_read_like_unknown_codes(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    await tree.unit("Trường B", "school", c.commune_b, code="B-SCHOOL")
    await tree.unit("Trường A", "school", c.commune_a, code="A-SCHOOL")
    h = tree.auth(await tree.user(("org_admin", c.province_a)))
    rows = [
        ["full_name", "unit_code", "group"],
        ["Người A", "A-SCHOOL", "resident"],
        ["Người B", "B-SCHOOL", "resident"],  # exists, but in province B
        ["Người C", "NO-SUCH", "resident"],
    ]
    r = await send(client, h, "people", csv_file(rows), dry_run=True)
    errors = r.json()["errors"]
    assert [(e["row"], e["column"]) for e in errors] == [(3, "unit_code"), (4, "unit_code")]
    assert errors[0]["message"] == "Unknown unit code 'B-SCHOOL'."
    assert errors[1]["message"] == "Unknown unit code 'NO-SUCH'."
    units = await send(
        client, h, "org-units", csv_file([UNITS_HEADER, ["NEW", "Xã mới", "commune", "B-SCHOOL"]])
    )
    assert units.json()["errors"][0]["message"] == "Unknown unit code 'B-SCHOOL'."


async def test_an_integration_account_imports_with_client_credentials(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await build_country(tree)
    await tree.unit("Trường A1", "school", c.commune_a, code="A1")
    admin = tree.auth(await tree.user(("org_admin", c.province_a)))
    created = await client.post(
        f"{API}/service-accounts",
        json={"name": "Sở GD&ĐT script", "org_unit_id": c.province_a.id, "roles": ["integration"]},
        headers=admin,
    )
    sa = created.json()
    token = await client.post(
        f"{API}/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sa["client_id"],
            "client_secret": sa["client_secret"],
        },
    )
    h = {"Authorization": f"Bearer {token.json()['access_token']}"}
    rows = [["full_name", "unit_code", "group", "citizen_id"], ["Hà Văn Sơn", "A1", "worker", "038099001122"]]
    assert (await send(client, h, "people", csv_file(rows), dry_run=True)).json()["created"] == 1
    r = await send(client, h, "people", csv_file(rows))
    assert r.status_code == 200 and r.json()["created"] == 1
    moved = [["full_name", "unit_code", "group", "citizen_id"], ["Hà Văn Sơn", "A1", "staff", "038099001122"]]
    assert (await send(client, h, "people", csv_file(moved))).json()["updated"] == 1
    viewer = tree.auth(await tree.user(("viewer", c.province_a)))
    assert (await send(client, viewer, "people", csv_file(rows))).status_code == 403


async def test_an_error_late_in_a_large_file_leaves_nothing_behind(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c = await build_country(tree)
    await tree.unit("Trường lớn", "school", c.commune_a, code="BIG")
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    rows = [["full_name", "unit_code", "group", "citizen_id"]]
    rows += [[f"Người {i}", "BIG", "student", f"{100000000000 + i}"] for i in range(2500)]
    rows[2400][2] = "teacher"  # row 2401 of the file: an unknown group, after two chunks were written
    rows.append(rows[5][:])  # and a duplicate citizen id at the end
    people_before, units_before = await count(tree, Person), await count(tree, OrgUnit)
    r = await send(client, h, "people", csv_file(rows))
    assert r.status_code == 422
    assert [(e["row"], e["column"]) for e in r.json()["errors"]] == [(2401, "group"), (2502, "citizen_id")]
    assert (await count(tree, Person), await count(tree, OrgUnit)) == (people_before, units_before)
    record = await tree.session.scalar(select(ImportRecord).order_by(ImportRecord.id.desc()))
    assert record is not None and (record.applied, record.error_count) == (False, 2)


async def test_upload_caps(client: httpx.AsyncClient, tree: Tree, app) -> None:  # type: ignore[no-untyped-def]
    c = await build_country(tree)
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    app.state.settings = app.state.settings.model_copy(update={"max_import_bytes": 1000})
    r = await send(client, h, "people", b"full_name,unit_code,group\r\n" + b"x,y,resident\r\n" * 100)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


async def test_imports_keep_the_aggregates_equal_to_a_recount(client: httpx.AsyncClient, tree: Tree) -> None:
    """Created, moved and regrouped people (with a recognition that must follow them) are counted
    at once, in the right units, by the dashboards."""
    from app.aggregates.naive import naive_recount

    c = await build_country(tree)
    await tree.unit("Trường A1", "school", c.commune_a, code="A1")
    await tree.unit("Trường A2", "school", c.commune_a2, code="A2")
    h = tree.auth(await tree.user(("org_admin", c.province_a)))
    header = ["full_name", "unit_code", "group", "citizen_id"]
    first = [
        header,
        ["Hà Văn Sơn", "A1", "resident", "038099001122"],
        ["Lê Thị Hoa", "A1", "staff", "038099001133"],
    ]
    assert (await send(client, h, "people", csv_file(first))).status_code == 200
    hoa = await tree.session.scalar(select(Person).where(Person.citizen_id == "038099001133"))
    assert hoa is not None
    await tree.evaluation(hoa, 2025, "recognised", digital_level="proficient")
    moved = [
        header,
        ["Hà Văn Sơn", "A1", "student", "038099001122"],
        ["Lê Thị Hoa", "A2", "worker", "038099001133"],
    ]
    assert (await send(client, h, "people", csv_file(moved))).json()["updated"] == 2
    viewer = tree.auth(await tree.user(("viewer", c.province_a)))
    for unit in (c.province_a, c.district_a, c.commune_a, c.commune_a2):
        r = await client.get(
            f"{API}/aggregates/progress", params={"org_unit_id": unit.id, "year": 2025}, headers=viewer
        )
        got = {m["metric"]: (m["numerator"], m["denominator"]) for m in r.json()["metrics"]}
        assert got == await naive_recount(tree.session, unit.id, 2025), unit.name
