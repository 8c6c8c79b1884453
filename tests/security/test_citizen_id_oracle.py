"""Issue #14, item 4: a citizen id held outside the caller's reach answers exactly as a new one — on
``POST /people``, ``PATCH /people/{id}`` and in an import (dry run or not) — without showing or copying the
other record; the level that sees both records decides whether they are one person (``people/claims.py``).
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from app.aggregates.models import AggregateCount
from app.core.audit import AuditEntry
from app.core.dates import today
from app.people.models import Person
from tests.api.test_imports import csv_file, send
from tests.builders import Country, Tree, build_country

API = "/api/v1"
HELD = "001085001234"  # held by a person of province A
NEW = "001085005678"  # held by nobody


def body(unit_id: int, citizen_id: str, name: str = "Trần Văn Nam") -> dict[str, Any]:
    return {"full_name": name, "org_unit_id": unit_id, "group": "resident", "citizen_id": citizen_id}


def shape(r: httpx.Response) -> tuple[int, list[str], str | None]:
    """What a caller can compare between two answers (ids and times aside)."""
    got = r.json()
    return r.status_code, sorted(got), got.get("citizen_id", "")[-4:] if got.get("citizen_id") else None


async def people_counted(tree: Tree, unit_id: int) -> int:
    stmt = select(func.coalesce(func.sum(AggregateCount.n), 0)).where(
        AggregateCount.org_unit_id == unit_id,
        AggregateCount.kind == "people",
        AggregateCount.year <= today().year,
    )
    return int(await tree.session.scalar(stmt) or 0)


async def setup(tree: Tree) -> tuple[Country, Person, dict[str, str], dict[str, str]]:
    c = await build_country(tree)
    holder = await tree.person(c.school_a, "staff", citizen_id=HELD, birth_year=1985)
    admin_b = tree.auth(await tree.user(("org_admin", c.province_b)))
    nation_admin = tree.auth(await tree.user(("org_admin", c.nation)))
    return c, holder, admin_b, nation_admin


async def test_post_patch_and_import_answer_a_foreign_id_as_a_new_one(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c, holder, admin_b, _ = await setup(tree)
    foreign = await client.post(f"{API}/people", json=body(c.school_b.id, HELD), headers=admin_b)
    fresh = await client.post(f"{API}/people", json=body(c.school_b.id, NEW, "Lê Thị Mai"), headers=admin_b)
    assert foreign.status_code == 201, foreign.text
    assert (shape(foreign)[:2], foreign.json()["citizen_id"]) == (shape(fresh)[:2], "********1234")
    assert HELD not in foreign.text and str(holder.id) != str(foreign.json()["id"])
    # Nothing of the holder's record came along: the caller's values only.
    got = (await client.get(f"{API}/people/{foreign.json()['id']}", headers=admin_b)).json()
    assert (got["full_name"], got["birth_year"], got["group"]) == ("Trần Văn Nam", None, "resident")
    # Its audit row reads as any registration's: the masked id, no word of a claim.
    entries = (
        await tree.session.scalars(
            select(AuditEntry).where(AuditEntry.entity_type == "person", AuditEntry.entity_id == got["id"])
        )
    ).all()
    assert [(e.action, e.after["citizen_id"]) for e in entries] == [("created", "********1234")]  # type: ignore[index]

    # PATCH to a held id: as to a new one.
    await tree.person(c.school_a, "staff", citizen_id="001085001111")
    other = await client.post(f"{API}/people", json=body(c.school_b.id, "001085009999"), headers=admin_b)
    r = await client.patch(
        f"{API}/people/{other.json()['id']}", json={"citizen_id": "001085001111"}, headers=admin_b
    )
    assert r.status_code == 200 and r.json()["citizen_id"] == "********1111", r.text
    # ...but the caller's own second record with it is their duplicate: 409 as always.
    dup = await client.post(f"{API}/people", json=body(c.school_b.id, HELD), headers=admin_b)
    assert dup.status_code == 409

    # An import of 3 rows (dry run, then for real): the held id reads as "created" like the new one.
    await tree.unit("Trường B2", "school", c.commune_b, code="B2")
    rows = [
        ["full_name", "unit_code", "group", "citizen_id"],
        ["Người Một", "B2", "resident", "001085004321"],  # held in province A
        ["Người Hai", "B2", "resident", "001085008765"],  # new
    ]
    await tree.person(c.school_a, "staff", citizen_id="001085004321")
    dry = (await send(client, admin_b, "people", csv_file(rows), dry_run=True)).json()
    assert (dry["created"], dry["updated"], dry["errors"]) == (2, 0, [])
    real = (await send(client, admin_b, "people", csv_file(rows))).json()
    assert (real["created"], real["errors"]) == (2, [])
    # The same file again updates the caller's own records: nothing created twice.
    again = (await send(client, admin_b, "people", csv_file(rows))).json()
    assert (again["created"], again["unchanged"]) == (0, 2)
    assert (await tree.session.get(Person, holder.id)).org_unit_id == c.school_a.id  # type: ignore[union-attr]


async def test_the_level_that_sees_both_decides(client: httpx.AsyncClient, tree: Tree) -> None:
    c, holder, admin_b, nation_admin = await setup(tree)
    admin_a = tree.auth(await tree.user(("org_admin", c.province_a)))
    claimant = (await client.post(f"{API}/people", json=body(c.school_b.id, HELD), headers=admin_b)).json()
    assert await people_counted(tree, c.nation.id) == 2  # counted in both places until decided

    # Neither province sees a claim: each sees one ordinary person.
    for h in (admin_a, admin_b):
        listed = await client.get(f"{API}/people/citizen-id-claims", headers=h)
        assert listed.status_code == 200 and listed.json()["total"] == 0
    plain = (await client.post(f"{API}/people", json=body(c.school_b.id, NEW), headers=admin_b)).json()
    for pid in (claimant["id"], plain["id"]):
        r = await client.post(
            f"{API}/people/{pid}/citizen-id-claim", json={"same_person": True}, headers=admin_b
        )
        assert (r.status_code, r.json()["error"]["message"]) == (
            409,
            "This person has no citizen id claim that you can resolve.",
        )

    # The nation's admin sees the pair, and decides: one person.
    listed = (await client.get(f"{API}/people/citizen-id-claims", headers=nation_admin)).json()
    assert [(i["claimant"]["id"], i["holder"]["id"]) for i in listed["items"]] == [
        (claimant["id"], holder.id)
    ]
    assert listed["items"][0]["holder"]["citizen_id"] == "********1234"
    r = await client.post(
        f"{API}/people/{claimant['id']}/citizen-id-claim", json={"same_person": True}, headers=nation_admin
    )
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["org_unit_id"], r.json()["group"]) == (
        holder.id,
        c.school_b.id,
        "resident",
    )
    assert (await client.get(f"{API}/people/{claimant['id']}", headers=admin_b)).status_code == 404
    assert (await client.get(f"{API}/people/{holder.id}", headers=admin_b)).status_code == 200
    assert await people_counted(tree, c.nation.id) == 2  # the holder and the plain one: counted once each
    moves = (await client.get(f"{API}/people/{holder.id}/transfers", headers=nation_admin)).json()
    assert [(t["from_unit_id"], t["to_unit_id"]) for t in moves["items"]] == [(c.school_a.id, c.school_b.id)]


async def test_a_refused_claim_leaves_no_id_and_a_freed_id_goes_to_its_claimant(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c, holder, admin_b, nation_admin = await setup(tree)
    admin_a = tree.auth(await tree.user(("org_admin", c.province_a)))
    first = (await client.post(f"{API}/people", json=body(c.school_b.id, HELD), headers=admin_b)).json()
    r = await client.post(
        f"{API}/people/{first['id']}/citizen-id-claim", json={"same_person": False}, headers=nation_admin
    )
    assert r.status_code == 200 and r.json()["citizen_id"] is None

    # Another claim; then the holder's id is corrected in province A: the claimant receives it.
    second = (await client.post(f"{API}/people", json=body(c.commune_b.id, HELD), headers=admin_b)).json()
    fixed = await client.patch(f"{API}/people/{holder.id}", json={"citizen_id": NEW}, headers=admin_a)
    assert fixed.status_code == 200, fixed.text
    stored = await tree.session.scalar(select(Person).where(Person.id == second["id"]))
    await tree.session.refresh(stored)
    assert stored is not None and (stored.citizen_id, stored.claimed_citizen_id) == (HELD, None)
    assert (await client.get(f"{API}/people/citizen-id-claims", headers=nation_admin)).json()["total"] == 0


async def test_a_claimant_with_evaluations_is_not_merged_away(client: httpx.AsyncClient, tree: Tree) -> None:
    c, _, admin_b, nation_admin = await setup(tree)
    claimant = (await client.post(f"{API}/people", json=body(c.school_b.id, HELD), headers=admin_b)).json()
    person = await tree.session.get(Person, claimant["id"])
    assert person is not None
    await tree.evaluation(person, today().year - 1 if today().month < 2 else today().year, "draft")
    r = await client.post(
        f"{API}/people/{claimant['id']}/citizen-id-claim", json={"same_person": True}, headers=nation_admin
    )
    assert r.status_code == 409 and r.json()["error"]["details"] == {"held": ["evaluations"]}, r.text
