"""The reporting cycle over HTTP: submissions freeze the annual report and go to the level above, which
accepts or returns them; calendars set due dates; completeness tells the parent who reported, who is late
and whose numbers moved since."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import openpyxl
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import counters, versions
from app.orgs.models import OrgUnit
from app.reporting.models import ReportSubmission
from app.webhooks.models import WebhookEvent
from tests.builders import Tree

API = "/api/v1"


@dataclass
class World:
    province: OrgUnit
    commune: OrgUnit
    school: OrgUnit
    school2: OrgUnit
    village: OrgUnit
    village2: OrgUnit
    other: OrgUnit  # a sibling commune's school (outside the commune's subtree)
    head: dict[str, str]  # approver of the school: submits
    commune_admin: dict[str, str]  # org_admin of the commune: sets dates, accepts, returns
    commune_viewer: dict[str, str]
    outsider: dict[str, str]  # org_admin of the sibling commune


async def world(tree: Tree) -> World:
    province = await tree.unit("Tỉnh", "province")
    commune = await tree.unit("Xã Tam Hưng", "commune", province, code="TH")
    school = await tree.unit("Trường MN Tam Hưng A", "school", commune, code="TH-MN-A")
    school2 = await tree.unit("Trường TH Tam Hưng", "school", commune, code="TH-TH")
    village = await tree.unit("Thôn 1", "village", commune, code="TH-T1")
    village2 = await tree.unit("Thôn 2", "village", commune, code="TH-T2")
    sibling = await tree.unit("Xã Bên", "commune", province)
    other = await tree.unit("Trường xã bên", "school", sibling)
    for unit in (school, village, village2, other):
        await tree.evaluation(await tree.person(unit, "staff"), 2025, "recognised")
    return World(
        province,
        commune,
        school,
        school2,
        village,
        village2,
        other,
        tree.auth(await tree.user(("approver", school))),
        tree.auth(await tree.user(("org_admin", commune))),
        tree.auth(await tree.user(("viewer", commune))),
        tree.auth(await tree.user(("org_admin", sibling))),
    )


async def submit(
    client: httpx.AsyncClient, h: dict[str, str], unit: OrgUnit, year: int = 2025
) -> httpx.Response:
    return await client.post(
        f"{API}/report-submissions", json={"org_unit_id": unit.id, "year": year}, headers=h
    )


def canonical(snapshot: dict[str, Any]) -> str:
    text = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


async def test_a_submission_freezes_the_report_while_live_numbers_move(
    client: httpx.AsyncClient, tree: Tree, session: AsyncSession
) -> None:
    w = await world(tree)
    r = await submit(client, w.head, w.school)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["status"], body["version"], body["org_unit_id"], body["year"]) == (
        "submitted",
        1,
        w.school.id,
        2025,
    )
    assert body["sha256"] == canonical(body["snapshot"])
    live = (
        await client.get(
            f"{API}/reports/annual",
            params={"org_unit_id": w.school.id, "year": 2025},
            headers=w.commune_admin,
        )
    ).json()
    assert body["snapshot"] == live
    assert body["snapshot"]["total"]["groups"][0]["recognised"] == 1

    # Two more people recognised after the submission: the live report moves, the snapshot does not.
    for _ in range(2):
        await tree.evaluation(await tree.person(w.school, "staff"), 2025, "recognised")
    got = (await client.get(f"{API}/report-submissions/{body['id']}", headers=w.commune_viewer)).json()
    assert got["snapshot"] == body["snapshot"] and got["sha256"] == body["sha256"]
    assert got["changed_since_submission"] is True
    live = (
        await client.get(
            f"{API}/reports/annual",
            params={"org_unit_id": w.school.id, "year": 2025},
            headers=w.commune_admin,
        )
    ).json()
    assert live["total"]["groups"][0]["recognised"] == 3

    f = await client.get(f"{API}/report-submissions/{body['id']}/file", headers=w.commune_admin)
    assert f.status_code == 200
    assert f.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(f.content))["Báo cáo"]
    values = [c.value for row in sheet.iter_rows() for c in row]
    assert 1 in values and 3 not in values  # the recognised count as submitted

    events = (
        await session.scalars(select(WebhookEvent).where(WebhookEvent.type == "report.submitted"))
    ).all()
    assert [(e.org_unit_id, e.data["submission_id"], e.data["sha256"]) for e in events] == [
        (w.school.id, body["id"], body["sha256"])
    ]


async def test_changed_since_submission_is_exact_when_numbers_move_and_move_back(
    client: httpx.AsyncClient, tree: Tree, session: AsyncSession
) -> None:
    """The counter versions only spare the recount while nothing was written: numbers that move and
    move back, or a full rebuild, move the versions but not the answer."""
    w = await world(tree)
    person = await tree.person(w.school, "staff", birth_year=1990)
    r = await submit(client, w.head, w.school)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]

    async def changed() -> tuple[bool, bool]:
        one = (await client.get(f"{API}/report-submissions/{sid}", headers=w.commune_viewer)).json()
        rows = (
            await client.get(
                f"{API}/reporting/completeness",
                params={"org_unit_id": w.commune.id, "year": 2025},
                headers=w.commune_viewer,
            )
        ).json()["items"]
        row = next(i for i in rows if i["org_unit_id"] == w.school.id)
        return one["changed_since_submission"], row["changed_since_submission"]

    async def born(year: int) -> None:
        # The birth year is a fact of every year (past ones too): the submitted numbers move.
        got = await client.patch(
            f"{API}/people/{person.id}", json={"birth_year": year}, headers=w.commune_admin
        )
        assert got.status_code == 200, got.text

    assert await changed() == (False, False)
    stored = await session.scalar(select(ReportSubmission.counts_version).where(ReportSubmission.id == sid))
    assert stored is not None and stored > 0
    await born(1991)
    assert await changed() == (True, True)
    await born(1990)
    assert await changed() == (False, False)
    # The versions moved: the answer came from a recount of the numbers, not from the versions.
    assert (await versions.totals(session, [w.school.id], 2025))[w.school.id] > stored

    await counters.rebuild(session)
    await session.commit()
    assert (await versions.totals(session, [w.school.id], 2025))[w.school.id] > stored
    assert await changed() == (False, False)


async def test_the_level_above_accepts_or_returns_and_a_resubmission_is_a_new_version(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    w = await world(tree)
    first = (await submit(client, w.head, w.school)).json()
    # The unit cannot accept its own report; a viewer above may not either.
    assert (
        await client.post(f"{API}/report-submissions/{first['id']}/accept", headers=w.head)
    ).status_code == 403
    assert (
        await client.post(f"{API}/report-submissions/{first['id']}/accept", headers=w.commune_viewer)
    ).status_code == 403
    accepted = await client.post(f"{API}/report-submissions/{first['id']}/accept", headers=w.commune_admin)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    again = await client.post(f"{API}/report-submissions/{first['id']}/accept", headers=w.commune_admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"

    bad = await client.post(
        f"{API}/report-submissions/{first['id']}/return", json={"reason": "  "}, headers=w.commune_admin
    )
    assert bad.status_code == 422
    returned = await client.post(
        f"{API}/report-submissions/{first['id']}/return",
        json={"reason": "Thiếu số liệu thôn 2"},
        headers=w.commune_admin,
    )
    assert returned.status_code == 200
    assert (returned.json()["status"], returned.json()["return_reason"]) == (
        "returned",
        "Thiếu số liệu thôn 2",
    )

    second = await submit(client, w.head, w.school)
    assert second.status_code == 201 and second.json()["version"] == 2
    listed = (
        await client.get(f"{API}/report-submissions", params={"org_unit_id": w.school.id}, headers=w.head)
    ).json()
    assert [(i["version"], i["status"]) for i in listed["items"]] == [(2, "submitted"), (1, "superseded")]
    assert listed["total"] == 2 and "snapshot" not in listed["items"][0]
    # An old version can no longer be accepted.
    old = await client.post(f"{API}/report-submissions/{first['id']}/accept", headers=w.commune_admin)
    assert old.status_code == 409
    children = (
        await client.get(
            f"{API}/report-submissions", params={"parent_id": w.commune.id}, headers=w.commune_viewer
        )
    ).json()
    assert {i["org_unit_id"] for i in children["items"]} == {w.school.id}


async def test_bad_submissions_are_refused_clearly(client: httpx.AsyncClient, tree: Tree) -> None:
    w = await world(tree)
    head2 = tree.auth(await tree.user(("org_admin", w.school2)))
    empty = await submit(client, head2, w.school2)
    assert empty.status_code == 409 and "nothing to report" in empty.json()["error"]["message"]
    future = await submit(client, w.head, w.school, datetime.now(UTC).year + 1)
    assert future.status_code == 409
    assert (await submit(client, w.head, w.school, 1999)).status_code == 422
    extra = await client.post(
        f"{API}/report-submissions",
        json={"org_unit_id": w.school.id, "year": 2025, "status": "accepted"},
        headers=w.head,
    )
    assert extra.status_code == 422
    # Outside the caller's subtree: 404, as if it did not exist; a viewer cannot submit: 403.
    assert (await submit(client, w.outsider, w.school)).status_code == 404
    assert (await submit(client, w.commune_viewer, w.school)).status_code == 403
    sub = (await submit(client, w.head, w.school)).json()
    for path in ("", "/file"):
        assert (
            await client.get(f"{API}/report-submissions/{sub['id']}{path}", headers=w.outsider)
        ).status_code == 404
    assert (
        await client.post(f"{API}/report-submissions/{sub['id']}/accept", headers=w.outsider)
    ).status_code == 404
    assert (await client.get(f"{API}/report-submissions/999999", headers=w.head)).status_code == 404


async def test_calendars_resolve_to_the_nearest_setter_and_validate(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    w = await world(tree)
    province_admin = tree.auth(await tree.user(("org_admin", w.province)))
    put = await client.put(
        f"{API}/reporting-calendars/{w.province.id}/2025",
        json={"due_on": "2026-01-10", "kind": "school"},
        headers=province_admin,
    )
    assert put.status_code == 201 and put.json()["kind"] == "school" and put.json()["version"] == 1
    put = await client.put(
        f"{API}/reporting-calendars/{w.commune.id}/2025",
        json={"due_on": "2025-12-05"},
        headers=w.commune_admin,
    )
    assert put.status_code == 201 and put.json()["kind"] is None
    # Replacing: the current version, or 409.
    stale = await client.put(
        f"{API}/reporting-calendars/{w.commune.id}/2025",
        json={"due_on": "2025-12-06", "version": 7},
        headers=w.commune_admin,
    )
    assert stale.status_code == 409
    ok = await client.put(
        f"{API}/reporting-calendars/{w.commune.id}/2025",
        json={"due_on": "2025-12-06", "version": 1},
        headers=w.commune_admin,
    )
    assert ok.status_code == 200 and ok.json()["version"] == 2
    before = await client.put(
        f"{API}/reporting-calendars/{w.commune.id}/2025",
        json={"due_on": "2024-12-31"},
        headers=w.commune_admin,
    )
    assert before.status_code == 422 and before.json()["error"]["details"]["field"] == "due_on"
    assert (
        await client.put(
            f"{API}/reporting-calendars/{w.commune.id}/2025",
            json={"due_on": "2025-12-06", "kind": "castle"},
            headers=w.commune_admin,
        )
    ).status_code == 422
    assert (
        await client.put(
            f"{API}/reporting-calendars/{w.commune.id}/2025",
            json={"due_on": "2025-12-06"},
            headers=w.commune_viewer,
        )
    ).status_code == 403
    assert (
        await client.put(
            f"{API}/reporting-calendars/{w.commune.id}/2025",
            json={"due_on": "2025-12-06"},
            headers=w.outsider,
        )
    ).status_code == 404

    # The commune's school: the commune's date (nearest setter); the sibling commune's school: the
    # province's date for schools.
    mine = (
        await client.get(
            f"{API}/reporting/completeness",
            params={"org_unit_id": w.commune.id, "year": 2025},
            headers=w.commune_viewer,
        )
    ).json()
    assert {i["due_on"] for i in mine["items"]} == {"2025-12-06"}
    province = (
        await client.get(
            f"{API}/reporting/completeness",
            params={"org_unit_id": w.province.id, "year": 2025},
            headers=province_admin,
        )
    ).json()
    assert [i["due_on"] for i in province["items"]] == [None, None]  # communes: no date set for them
    assert mine["due_on"] is None
    listed = (await client.get(f"{API}/reporting-calendars/{w.province.id}", headers=province_admin)).json()
    assert [(e["year"], e["kind"], e["due_on"]) for e in listed] == [(2025, "school", "2026-01-10")]
    gone = await client.delete(f"{API}/reporting-calendars/{w.commune.id}/2025", headers=w.commune_admin)
    assert gone.status_code == 204
    mine = (
        await client.get(
            f"{API}/reporting/completeness",
            params={"org_unit_id": w.commune.id, "year": 2025},
            headers=w.commune_viewer,
        )
    ).json()
    by_id = {i["org_unit_id"]: i["due_on"] for i in mine["items"]}
    assert by_id[w.school.id] == "2026-01-10" and by_id[w.village.id] is None


async def test_completeness_against_a_hand_built_commune(
    client: httpx.AsyncClient, tree: Tree, session: AsyncSession
) -> None:
    """Children of the commune on 2025: two schools due 10 January 2026 (the schools' date), two
    villages due 5 December 2025. School A submitted on its due day (on time); school B never (late);
    village 1 the day after its date (late); village 2 was returned (late, it must send again)."""
    w = await world(tree)
    for body in ({"due_on": "2025-12-05"}, {"due_on": "2026-01-10", "kind": "school"}):
        assert (
            await client.put(
                f"{API}/reporting-calendars/{w.commune.id}/2025", json=body, headers=w.commune_admin
            )
        ).status_code == 201
    commune_head = tree.auth(await tree.user(("approver", w.commune)))
    ids = {}
    for unit in (w.school, w.village, w.village2):
        ids[unit.id] = (await submit(client, commune_head, unit)).json()["id"]
    stamps = {
        w.school.id: datetime(2026, 1, 10, 23, 59, tzinfo=UTC),
        w.village.id: datetime(2025, 12, 6, 0, 0, tzinfo=UTC),
    }
    for unit_id, at in stamps.items():
        await session.execute(
            update(ReportSubmission).where(ReportSubmission.id == ids[unit_id]).values(submitted_at=at)
        )
    await session.commit()
    r = await client.post(
        f"{API}/report-submissions/{ids[w.village2.id]}/return",
        json={"reason": "Sai số liệu"},
        headers=w.commune_admin,
    )
    assert r.status_code == 200
    await tree.evaluation(await tree.person(w.village, "staff"), 2025, "recognised")  # village 1 moves

    got = await client.get(
        f"{API}/reporting/completeness",
        params={"org_unit_id": w.commune.id, "year": 2025},
        headers=w.commune_viewer,
    )
    assert got.status_code == 200
    rows = {i["name"]: i for i in got.json()["items"]}
    expected = {
        "Trường MN Tam Hưng A": ("submitted", "2026-01-10", False, False),
        "Trường TH Tam Hưng": ("not_submitted", "2026-01-10", True, None),
        "Thôn 1": ("submitted", "2025-12-05", True, True),
        "Thôn 2": ("returned", "2025-12-05", True, False),
    }
    assert {
        n: (r["status"], r["due_on"], r["late"], r["changed_since_submission"]) for n, r in rows.items()
    } == expected
    assert rows["Trường MN Tam Hưng A"]["submitted_at"].startswith("2026-01-10T23:59")
    assert got.json()["on_time_pct"] == 25.0 and got.json()["submitted"] == 2 and got.json()["expected"] == 4

    x = await client.get(
        f"{API}/reporting/completeness",
        params={"org_unit_id": w.commune.id, "year": 2025, "format": "xlsx"},
        headers={**w.commune_viewer, "Accept-Language": "vi"},
    )
    assert x.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(x.content)).active
    assert sheet.title == "Tình hình nộp báo cáo" and sheet["D2"].value == "Tình trạng"
    table = [[c.value for c in row] for row in sheet.iter_rows(min_row=3, max_row=6)]
    assert sorted(row[1] for row in table) == sorted(expected)
    assert {row[1]: row[3] for row in table}["Thôn 2"] == "Trả lại"
    english = await client.get(
        f"{API}/reporting/completeness",
        params={"org_unit_id": w.commune.id, "year": 2025, "format": "xlsx"},
        headers=w.commune_viewer,
    )
    sheet = openpyxl.load_workbook(io.BytesIO(english.content)).active
    assert sheet.title == "Report submissions" and sheet["D2"].value == "Submission status"
    table = [[c.value for c in row] for row in sheet.iter_rows(min_row=3, max_row=6)]
    assert {row[1]: row[3] for row in table}["Thôn 2"] == "Returned"

    assert (
        await client.get(
            f"{API}/reporting/completeness",
            params={"org_unit_id": w.commune.id, "year": 2025},
            headers=w.outsider,
        )
    ).status_code == 404
    member = tree.auth(await tree.user(("member", w.commune)))
    assert (
        await client.get(
            f"{API}/reporting/completeness",
            params={"org_unit_id": w.commune.id, "year": 2025},
            headers=member,
        )
    ).status_code == 403
    assert date.today().year >= 2026


async def test_a_unit_moved_since_still_reports_its_past_year_to_its_old_parent(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    """The school moves to the sibling commune today: its 2025 report stays due to, listed by, and
    visible in the completeness of the commune it belonged to in 2025."""
    w = await world(tree)
    admin = tree.auth(await tree.admin())
    put = await client.put(
        f"{API}/reporting-calendars/{w.commune.id}/2025",
        json={"due_on": "2025-12-05"},
        headers=w.commune_admin,
    )
    assert put.status_code == 201
    sub = (await submit(client, w.head, w.school)).json()
    sibling = (await client.get(f"{API}/org-units/{w.other.id}", headers=admin)).json()["parent_id"]
    moved = await client.post(
        f"{API}/reorganisations",
        json={
            "effective_on": date.today().isoformat(),
            "title": "Chuyển trường",
            "steps": [{"op": "move", "unit": w.school.id, "parent": sibling}],
        },
        headers=admin,
    )
    assert moved.status_code == 201, moved.text
    rows = (
        await client.get(
            f"{API}/reporting/completeness", params={"org_unit_id": w.commune.id, "year": 2025}, headers=admin
        )
    ).json()["items"]
    school = next(r for r in rows if r["org_unit_id"] == w.school.id)
    assert (school["status"], school["due_on"], school["submission_id"]) == (
        "submitted",
        "2025-12-05",
        sub["id"],
    )
    listed = (
        await client.get(f"{API}/report-submissions", params={"parent_id": w.commune.id}, headers=admin)
    ).json()
    assert [i["id"] for i in listed["items"]] == [sub["id"]]


async def test_completeness_of_every_unit_of_a_kind_in_the_subtree(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    """The province's "all our schools" view: its date for schools applies to each, wherever it sits."""
    w = await world(tree)
    province_admin = tree.auth(await tree.user(("org_admin", w.province)))
    put = await client.put(
        f"{API}/reporting-calendars/{w.province.id}/2025",
        json={"due_on": "2026-01-10", "kind": "school"},
        headers=province_admin,
    )
    assert put.status_code == 201
    assert (await submit(client, province_admin, w.other)).status_code == 201
    got = await client.get(
        f"{API}/reporting/completeness",
        params={"org_unit_id": w.province.id, "year": 2025, "kind": "school"},
        headers=province_admin,
    )
    assert got.status_code == 200
    rows = {r["org_unit_id"]: (r["status"], r["due_on"]) for r in got.json()["items"]}
    assert rows == {
        w.school.id: ("not_submitted", "2026-01-10"),
        w.school2.id: ("not_submitted", "2026-01-10"),
        w.other.id: ("submitted", "2026-01-10"),
    }
    bad = await client.get(
        f"{API}/reporting/completeness",
        params={"org_unit_id": w.province.id, "year": 2025, "kind": "castle"},
        headers=province_admin,
    )
    assert bad.status_code == 422
