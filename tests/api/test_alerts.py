"""``GET /alerts`` over HTTP: the trajectory rule at its boundaries, evaluations waiting for review, reports
overdue, scope and bad input (the rules: ``app/alerts/service.py``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from app.alerts import trajectory
from app.core.dates import today
from app.evaluations.models import Evaluation
from app.orgs.models import OrgUnit
from app.people.models import Person
from app.plans.models import Plan, Target
from app.reporting.models import ReportingCalendar, ReportSubmission
from tests.builders import Country, Tree, build_country

API = "/api/v1"
STAFF = "staff_recognised_pct"


async def plan(tree: Tree, unit: OrgUnit, start: int, end: int, targets: dict[int, float]) -> Plan:
    """A plan at ``unit`` with ``staff_recognised_pct`` targets by year."""
    made = Plan(org_unit_id=unit.id, title="Kế hoạch thử", start_year=start, end_year=end)
    tree.session.add(made)
    await tree.session.flush()
    for year, value in targets.items():
        tree.session.add(Target(plan_id=made.id, metric=STAFF, year=year, value=Decimal(str(value))))
    await tree.session.commit()
    return made


async def staff(tree: Tree, unit: OrgUnit, n: int) -> list[Person]:
    return [await tree.person(unit, "staff") for _ in range(n)]


async def year_of(tree: Tree, people: list[Person], year: int, recognised: int) -> None:
    """Everyone evaluated in ``year``; the first ``recognised`` of them recognised."""
    for i, person in enumerate(people):
        await tree.evaluation(person, year, "recognised" if i < recognised else "reviewed")


async def alerts(
    client: httpx.AsyncClient, h: dict[str, str], unit: OrgUnit, year: int, **params: Any
) -> dict:
    r = await client.get(f"{API}/alerts", params={"org_unit_id": unit.id, "year": year, **params}, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def behind(body: dict) -> dict[int, dict]:
    return {a["org_unit_id"]: a for a in body["items"] if a["kind"] == "behind_trajectory"}


def test_the_path_is_interpolated_rounded_half_up_and_stays_at_the_last_target() -> None:
    targets = [(2024, Decimal("21.01")), (2026, Decimal("80"))]
    assert trajectory.expected(2022, Decimal(20), targets, 2022) is None  # the base year: no path yet
    assert trajectory.expected(2022, Decimal(20), targets, 2021) is None
    assert trajectory.expected(2022, Decimal(20), targets, 2023) == Decimal("20.51")  # 20.505, half up
    assert trajectory.expected(2022, Decimal(20), targets, 2024) == Decimal("21.01")
    assert trajectory.expected(2022, Decimal(20), targets, 2025) == Decimal("50.51")  # 50.505
    assert trajectory.expected(2022, Decimal(20), targets, 2030) == Decimal("80.00")
    # Targets in or before the base year are not on the path; with none after it there is no path.
    assert trajectory.expected(2024, Decimal(20), targets[:1], 2025) is None
    assert trajectory.behind(Decimal("65.00"), Decimal("70.00"), Decimal(5)) is False
    assert trajectory.behind(Decimal("64.99"), Decimal("70.00"), Decimal(5)) is True


async def test_behind_trajectory_at_its_boundaries(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    made = await plan(tree, c.province_a, 2022, 2026, {2024: 60, 2026: 80})
    people = await staff(tree, c.commune_a, 10)
    await year_of(tree, people, 2022, 2)  # base year: 20 %
    await year_of(tree, people, 2025, 6)  # 60 %, the path says 70 (halfway from 60 in 2024 to 80 in 2026)
    h = tree.auth(await tree.user(("viewer", c.province_a)))

    # Exactly 10 points below the path with a tolerance of 10: on track; 0.01 more and it is behind.
    assert behind(await alerts(client, h, c.district_a, 2025, tolerance=10)) == {}
    found = behind(await alerts(client, h, c.district_a, 2025, tolerance="9.99"))
    assert set(found) == {c.district_a.id, c.commune_a.id}  # the district counts the same ten people
    assert found[c.commune_a.id] == {
        "kind": "behind_trajectory",
        "org_unit_id": c.commune_a.id,
        "name": "Xã A",
        "metric": STAFF,
        "actual": 60.0,
        "expected": 70.0,
        "since": None,
        "details": {
            "target": 80.0,
            "target_year": 2026,
            "plan_id": made.id,
            "base_year": 2022,
            "base_actual": 20.0,
            "tolerance": 9.99,
            "numerator": 6,
            "denominator": 10,
        },
    }
    # Default tolerance 5: behind. The commune A2 and the school (not listed at depth 1) have no alert.
    assert set(behind(await alerts(client, h, c.district_a, 2025))) == {c.district_a.id, c.commune_a.id}
    # Depth 0 lists the unit alone; depth 2 reaches the school below the commune (nobody there: no data).
    assert set(behind(await alerts(client, h, c.district_a, 2025, depth=0))) == {c.district_a.id}
    # In the base year there is no path to be behind (20 % against a 60 % target is not an alert).
    assert behind(await alerts(client, h, c.district_a, 2022, tolerance=0)) == {}
    # A year nobody was evaluated is no_data, not behind.
    assert behind(await alerts(client, h, c.district_a, 2024, tolerance=0)) == {}


async def test_after_the_last_target_the_path_stays_there(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    made = await plan(tree, c.province_a, 2022, 2026, {2023: 50, 2024: 60})
    people = await staff(tree, c.commune_a, 10)
    await year_of(tree, people, 2022, 2)
    await year_of(tree, people, 2025, 5)  # 50 % against the last target, 60 (2024)
    h = tree.auth(await tree.user(("viewer", c.province_a)))

    found = behind(await alerts(client, h, c.district_a, 2025, depth=0))
    assert found[c.district_a.id]["expected"] == 60.0 and found[c.district_a.id]["actual"] == 50.0
    details = found[c.district_a.id]["details"]
    assert (details["target"], details["target_year"], details["plan_id"]) == (60.0, 2024, made.id)
    assert behind(await alerts(client, h, c.district_a, 2025, depth=0, tolerance=10)) == {}


async def test_between_two_points_the_path_is_interpolated(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    await plan(tree, c.commune_a, 2022, 2025, {2025: 50})
    people = await staff(tree, c.commune_a, 3)
    await year_of(tree, people, 2022, 1)  # 33.33
    await year_of(tree, people, 2023, 2)  # 66.67: ahead of 38.89
    await year_of(tree, people, 2024, 1)  # 33.33: more than 5 points below 44.44
    h = tree.auth(await tree.user(("viewer", c.commune_a)))

    assert behind(await alerts(client, h, c.commune_a, 2023, depth=0)) == {}
    row = behind(await alerts(client, h, c.commune_a, 2024, depth=0))[c.commune_a.id]
    assert (row["actual"], row["expected"], row["details"]["base_actual"]) == (33.33, 44.44, 33.33)
    # The commune's own plan applies to it, not to the district above (no plan there: no alert).
    assert behind(await alerts(client, h, c.commune_a, 2024, depth=0, tolerance=0)).keys() == {c.commune_a.id}


async def test_no_base_year_actual_no_alert(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    await plan(tree, c.province_a, 2023, 2026, {2026: 90})
    people = await staff(tree, c.commune_a, 4)
    await year_of(tree, people, 2022, 4)  # before the plan: not its base year
    await year_of(tree, people, 2025, 0)  # 0 %, far below any path, but there is no base actual
    h = tree.auth(await tree.user(("viewer", c.nation)))

    assert behind(await alerts(client, h, c.province_a, 2025, tolerance=0, depth=3)) == {}


async def waiting(tree: Tree, unit: OrgUnit, submitted: timedelta, year: int = 2025) -> Evaluation:
    evaluation = await tree.evaluation(await tree.person(unit), year, "submitted")
    evaluation.submitted_at = datetime.now(UTC) - submitted
    await tree.session.commit()
    return evaluation


def of_kind(body: dict, kind: str) -> dict[int, dict]:
    return {a["org_unit_id"]: a for a in body["items"] if a["kind"] == kind}


async def test_evaluations_waiting_longer_than_the_review_days(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    old = await waiting(tree, c.school_a, timedelta(days=14))  # 14 calendar days: waiting too long
    await waiting(tree, c.commune_a2, timedelta(days=13))  # 13 days: not yet
    in_review = await waiting(tree, c.commune_a, timedelta(days=20))
    in_review.status = "in_review"
    done = await waiting(tree, c.commune_a2, timedelta(days=40))
    done.status = "reviewed"  # reviewed: no longer waiting
    await waiting(tree, c.commune_b, timedelta(days=40))  # another province
    await tree.session.commit()
    h = tree.auth(await tree.user(("assessor", c.province_a)))

    found = of_kind(await alerts(client, h, c.district_a, 2025), "review_waiting")
    assert set(found) == {c.district_a.id, c.commune_a.id}
    commune = found[c.commune_a.id]
    assert commune["details"]["count"] == 2 and commune["details"]["review_days"] == 14
    assert commune["since"] == in_review.submitted_at.date().isoformat()
    assert commune["details"]["oldest_submitted_on"] == commune["since"]
    assert found[c.district_a.id]["details"]["count"] == 2
    # review_days overrides the setting: 15 days leaves only the one submitted 20 days ago.
    found = of_kind(await alerts(client, h, c.district_a, 2025, review_days=15), "review_waiting")
    assert {u: a["details"]["count"] for u, a in found.items()} == {c.district_a.id: 1, c.commune_a.id: 1}
    found = of_kind(await alerts(client, h, c.district_a, 2025, review_days=13), "review_waiting")
    # 13 days: the one submitted 13 days ago waits too long as well.
    counts = {c.district_a.id: 3, c.commune_a.id: 2, c.commune_a2.id: 1}
    assert {u: a["details"]["count"] for u, a in found.items()} == counts
    # The school's evaluation counts in its commune; at depth 2 the school is listed with its own.
    found = of_kind(await alerts(client, h, c.district_a, 2025, depth=2), "review_waiting")
    assert found[c.school_a.id]["details"]["count"] == 1
    assert found[c.school_a.id]["since"] == old.submitted_at.date().isoformat()
    # Another year has none.
    assert of_kind(await alerts(client, h, c.district_a, 2024), "review_waiting") == {}


async def submission(tree: Tree, unit: OrgUnit, year: int, status: str, version: int = 1) -> None:
    tree.session.add(
        ReportSubmission(
            org_unit_id=unit.id,
            year=year,
            version=version,
            status=status,
            sha256="0" * 64,
            counts_sha256="0" * 64,
            snapshot={},
            xlsx=b"",
        )
    )
    await tree.session.commit()


async def test_reports_overdue(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    year, yesterday = today().year, today() - timedelta(days=1)
    # The district's communes report by yesterday; the district itself reports to the province tomorrow.
    tree.session.add(ReportingCalendar(org_unit_id=c.district_a.id, year=year, kind="", due_on=yesterday))
    tree.session.add(
        ReportingCalendar(org_unit_id=c.province_a.id, year=year, kind="", due_on=today() + timedelta(days=1))
    )
    await tree.session.commit()
    h = tree.auth(await tree.user(("viewer", c.province_a)))

    found = of_kind(await alerts(client, h, c.district_a, year), "report_overdue")
    assert set(found) == {c.commune_a.id, c.commune_a2.id}  # the district is not due yet
    assert found[c.commune_a.id]["since"] == today().isoformat()
    assert found[c.commune_a.id]["details"] == {
        "due_on": yesterday.isoformat(),
        "status": "not_submitted",
        "days_late": 1,
        "set_by": c.district_a.id,
    }
    await submission(tree, c.commune_a, year, "submitted")  # late, but made: not overdue
    await submission(tree, c.commune_a2, year, "superseded")
    await submission(tree, c.commune_a2, year, "returned", version=2)  # sent back: overdue again
    found = of_kind(await alerts(client, h, c.district_a, year), "report_overdue")
    assert set(found) == {c.commune_a2.id} and found[c.commune_a2.id]["details"]["status"] == "returned"
    # kind= keeps one kind only.
    body = await alerts(client, h, c.district_a, year, kind="report_overdue")
    assert {a["kind"] for a in body["items"]} == {"report_overdue"} and body["total"] == 1


async def test_pages_and_order(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    for unit in (c.commune_a2, c.commune_a, c.district_a):
        await waiting(tree, unit, timedelta(days=30))
    h = tree.auth(await tree.user(("viewer", c.district_a)))

    body = await alerts(client, h, c.district_a, 2025)
    assert (body["total"], body["limit"], body["offset"], body["depth"]) == (3, 50, 0, 1)
    assert [a["name"] for a in body["items"]] == ["Huyện A", "Xã A", "Xã A2"]
    page = await alerts(client, h, c.district_a, 2025, limit=1, offset=1)
    assert page["total"] == 3 and [a["name"] for a in page["items"]] == ["Xã A"]


async def test_scope_and_roles(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    params = {"org_unit_id": c.province_a.id, "year": 2025}
    sibling = tree.auth(await tree.user(("org_admin", c.province_b)))
    r = await client.get(f"{API}/alerts", params=params, headers=sibling)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    member = tree.auth(await tree.user(("member", c.province_a)))
    assert (await client.get(f"{API}/alerts", params=params, headers=member)).status_code == 403
    for role in ("viewer", "integration", "org_admin", "assessor", "approver"):
        h = tree.auth(await tree.user((role, c.nation)))
        assert (await client.get(f"{API}/alerts", params=params, headers=h)).status_code == 200, role
    assert (await client.get(f"{API}/alerts", params=params)).status_code == 401


async def test_bad_input_is_422(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.admin())
    good = {"org_unit_id": c.nation.id, "year": 2025}
    for bad in (
        {"depth": 4},
        {"depth": -1},
        {"tolerance": -1},
        {"tolerance": 100.01},
        {"tolerance": "abc"},
        {"kind": "late"},
        {"review_days": -1},
        {"limit": 201},
        {"offset": -1},
        {"year": 1999},
        {"org_unit_id": 0},
    ):
        r = await client.get(f"{API}/alerts", params={**good, **bad}, headers=h)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["code"] == "validation_error"
    r = await client.get(f"{API}/alerts", params={"org_unit_id": c.nation.id}, headers=h)
    assert r.status_code == 422
    r = await client.get(f"{API}/alerts", params={**good, "org_unit_id": 2**31 - 2}, headers=h)
    assert r.status_code == 404


async def test_an_ended_unit_lists_its_year_as_it_was(client: httpx.AsyncClient, tree: Tree) -> None:
    """A unit that did not exist in the year asked lists itself only, with no trajectory alert."""
    c: Country = await build_country(tree)
    c.commune_a2.valid_from = date(2026, 1, 1)
    await tree.session.commit()
    h = tree.auth(await tree.user(("viewer", c.commune_a2)))
    body = await alerts(client, h, c.commune_a2, 2025, tolerance=0)
    assert body["items"] == [] and body["total"] == 0
