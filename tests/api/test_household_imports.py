"""Households from a file (``POST /imports/households``): one row per member, keyed by household code;
dry run first, all or nothing, scoped like every import, one household per person — and the counters
kept exact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import httpx
from sqlalchemy import func, select

from app.collectives.models import Collective
from app.core.audit import AuditEntry
from app.core.dates import today
from app.orgs.models import OrgUnit
from app.people.models import Person
from tests.api.test_households import assert_counts, household
from tests.api.test_imports import csv_file, send, xlsx_file
from tests.builders import Tree

API = "/api/v1"
HEADER = ["household_code", "household_name", "unit_code", "member_citizen_id"]
VI_HEADER = ["Mã hộ", "Tên hộ", "Mã đơn vị", "Số định danh thành viên"]
JAN_1 = date(today().year, 1, 1).isoformat()
NO_PERSON = "No person with this citizen id was found."


@dataclass
class Place:
    nation: OrgUnit
    province: OrgUnit
    district: OrgUnit
    commune_a: OrgUnit  # code XA-A
    commune_b: OrgUnit  # code XA-B
    commune_c: OrgUnit  # code XA-C, in another province
    people: list[Person]  # citizen ids 001090000001…6: 1–4 in commune A, 5–6 in commune B
    outsider: Person  # 001090000009, in commune C
    admin: dict[str, str]  # org_admin of the district
    root: dict[str, str]

    @property
    def units(self) -> list[OrgUnit]:
        return [self.nation, self.province, self.district, self.commune_a, self.commune_b, self.commune_c]


def cid(n: int) -> str:
    return f"00109000000{n}"


async def place(tree: Tree) -> Place:
    nation = await tree.unit("Việt Nam", "nation")
    province = await tree.unit("Tỉnh Ninh Bình", "province", nation)
    district = await tree.unit("Huyện Yên Mô", "district", province)
    a = await tree.unit("Xã Yên Thành", "commune", district, code="XA-A")
    b = await tree.unit("Xã Yên Phong", "commune", district, code="XA-B")
    other = await tree.unit("Tỉnh Thanh Hoá", "province", nation)
    c = await tree.unit("Xã Hoằng Phụ", "commune", other, code="XA-C")
    people = [await tree.person(a if n <= 4 else b, "resident", citizen_id=cid(n)) for n in range(1, 7)]
    outsider = await tree.person(c, "resident", citizen_id=cid(9))
    admin = tree.auth(await tree.user(("org_admin", district)))
    root = tree.auth(await tree.admin())
    return Place(nation, province, district, a, b, c, people, outsider, admin, root)


async def households(tree: Tree) -> int:
    return int(await tree.session.scalar(select(func.count()).select_from(Collective)) or 0)


async def by_code(client: httpx.AsyncClient, h: dict[str, str], code: str) -> dict[str, object]:
    r = await client.get(f"{API}/households", params={"q": code}, headers=h)
    assert r.status_code == 200, r.text
    (found,) = [x for x in r.json()["items"] if x["code"] == code]
    return found


async def test_households_dry_run_then_real_then_again_then_updated(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    p = await place(tree)
    h = p.admin
    ids = [person.id for person in p.people]
    rows = [
        VI_HEADER,
        ["HGD-01", "Hộ ông Phạm Văn An", "XA-A", cid(1)],
        ["HGD-02", "Hộ bà Vũ Thị Bình", "XA-B", cid(5)],
        ["HGD-01", "", "", cid(2)],  # the household's name and unit are given once
        ["HGD-02", "Hộ bà Vũ Thị Bình", "XA-B", ""],
    ]
    r = await send(client, h, "households", csv_file(rows, bom=True), dry_run=True)
    assert r.status_code == 200, r.text
    summary = r.json()
    assert {k: summary[k] for k in ("dry_run", "created", "updated", "unchanged", "errors")} == {
        "dry_run": True,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "errors": [],
    }
    assert await households(tree) == 0

    r = await send(client, h, "households", csv_file(rows, bom=True))
    assert r.status_code == 200, r.text
    assert (r.json()["dry_run"], r.json()["created"]) == (False, 2)
    first = await by_code(client, h, "HGD-01")
    assert (first["name"], first["org_unit_id"], first["valid_from"]) == (
        "Hộ ông Phạm Văn An",
        p.commune_a.id,
        JAN_1,
    )
    assert first["member_ids"] == sorted(ids[:2])
    assert [m["valid_from"] for m in first["members"]] == [JAN_1, JAN_1]  # type: ignore[union-attr]
    second = await by_code(client, h, "HGD-02")
    assert (second["org_unit_id"], second["member_ids"]) == (p.commune_b.id, [ids[4]])
    audit = await tree.session.scalars(
        select(AuditEntry.action).where(
            AuditEntry.entity_type == "household", AuditEntry.entity_id == first["id"]
        )
    )
    assert list(audit) == ["imported"]
    await assert_counts(client, tree, p.root, p.units)

    r = await send(client, h, "households", csv_file(rows, bom=True))
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["updated"], r.json()["unchanged"]) == (0, 0, 2)

    # Renamed, moved, members added (from today; nobody is removed by an import); English headings.
    update = [
        HEADER,
        ["HGD-01", "Hộ ông Phạm Văn Anh", "XA-A", cid(3)],
        ["HGD-02", "Hộ bà Vũ Thị Bình", "XA-A", cid(5)],
    ]
    r = await send(client, h, "households", csv_file(update))
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["updated"], r.json()["unchanged"]) == (0, 2, 0)
    first = await by_code(client, h, "HGD-01")
    assert (first["name"], first["member_ids"], first["version"]) == (
        "Hộ ông Phạm Văn Anh",
        sorted(ids[:3]),
        2,
    )
    joined = next(m for m in first["members"] if m["person_id"] == ids[2])  # type: ignore[union-attr]
    assert joined["valid_from"] == today().isoformat()
    assert (await by_code(client, h, "HGD-02"))["org_unit_id"] == p.commune_a.id
    await assert_counts(client, tree, p.root, p.units)


async def test_row_errors_write_nothing_and_answer_422(client: httpx.AsyncClient, tree: Tree) -> None:
    p = await place(tree)
    h = p.admin
    taken = await household(client, h, p.commune_a, [p.people[3]])
    assert taken.status_code == 201, taken.text
    rows = [
        HEADER,
        ["HGD-01", "Hộ một", "XA-A", cid(1)],
        ["HGD-02", "Hộ hai", "XA-C", cid(5)],  # a unit outside the caller's scope…
        ["HGD-03", "Hộ ba", "XA-Z", ""],  # …reads as an unknown one
        ["HGD-04", "Hộ bốn", "XA-B", cid(9)],  # a person outside the scope…
        ["HGD-04", "", "", "001090000888"],  # …reads as an unknown one
        ["HGD-05", "Hộ năm", "XA-B", cid(1)],  # listed for HGD-01 already
        ["HGD-05", "", "", cid(4)],  # already in a household in the database
        ["HGD-06", "", "", cid(6)],  # a new household without a name or a unit
        ["HGD-01", "Hộ khác", "XA-A", "12345"],  # another name; a malformed citizen id
    ]
    before = await tree.snapshot()
    dry = await send(client, h, "households", csv_file(rows), dry_run=True)
    real = await send(client, h, "households", csv_file(rows))
    assert (dry.status_code, real.status_code) == (200, 422), real.text
    assert real.json()["dry_run"] is False
    assert {k: v for k, v in real.json().items() if k != "dry_run"} == {
        k: v for k, v in dry.json().items() if k != "dry_run"
    }
    errors = {(e["row"], e["column"]): e["message"] for e in real.json()["errors"]}
    assert errors[(3, "unit_code")] == "Unknown unit code 'XA-C'."
    assert errors[(4, "unit_code")] == "Unknown unit code 'XA-Z'."
    assert errors[(5, "member_citizen_id")] == errors[(6, "member_citizen_id")] == NO_PERSON
    assert "HGD-01" in errors[(7, "member_citizen_id")] and "row 2" in errors[(7, "member_citizen_id")]
    assert f"household {taken.json()['id']}" in errors[(8, "member_citizen_id")]
    assert errors[(9, "household_name")] == "A new household needs a name."
    assert errors[(10, "household_name")] == "Row 2 gives this household another household_name."
    assert (10, "member_citizen_id") in errors
    assert await tree.snapshot() == before
    assert await households(tree) == 1

    # The caller needs an import role.
    viewer = tree.auth(await tree.user(("viewer", p.district)))
    r = await send(client, viewer, "households", csv_file(rows[:2]))
    assert r.status_code == 403, r.text


async def test_households_from_xlsx_with_numbers_and_a_formula(client: httpx.AsyncClient, tree: Tree) -> None:
    p = await place(tree)
    h = p.admin
    rows: list[list[object]] = [
        ["DANH SÁCH HỘ GIA ĐÌNH NĂM 2025"],
        [None],
        VI_HEADER,
        ["HGD-01", "Hộ ông Đinh Văn Cường", "XA-A", 1090000001],  # 001090000001 typed as a number
        ["HGD-01", None, None, "=1090000002"],
    ]
    r = await send(client, h, "households", xlsx_file(rows), filename="ho.xlsx")
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [
        {"row": 5, "column": "member_citizen_id", "message": "The cell holds a formula; paste values only."}
    ]
    rows[4][3] = 1090000002
    r = await send(client, h, "households", xlsx_file(rows), filename="ho.xlsx")
    assert r.status_code == 200, r.text
    made = await by_code(client, h, "HGD-01")
    assert made["member_ids"] == sorted(person.id for person in p.people[:2])
    await assert_counts(client, tree, p.root, p.units)
