"""The alert scan (``app/alerts/scan.py``): an ``alert.raised`` event once per alert, for the subtrees a
subscription listens to; cleared when the alert goes, raised again when it comes back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.models import RaisedAlert
from app.alerts.scan import scan
from app.evaluations.models import Evaluation
from app.orgs.models import OrgUnit
from app.webhooks.models import WebhookDelivery, WebhookEvent, WebhookSubscription
from tests.builders import Tree, build_country

YEAR = 2025


async def subscribe(tree: Tree, unit: OrgUnit, events: list[str], active: bool = True) -> WebhookSubscription:
    subscription = WebhookSubscription(
        org_unit_id=unit.id,
        url="https://hooks.example.vn/cdht",
        events=events,
        secret="whsec_dGVzdA==",
        active=active,
    )
    tree.session.add(subscription)
    await tree.session.commit()
    return subscription


async def waiting(tree: Tree, unit: OrgUnit) -> Evaluation:
    evaluation = await tree.evaluation(await tree.person(unit), YEAR, "submitted")
    evaluation.submitted_at = datetime.now(UTC) - timedelta(days=30)
    await tree.session.commit()
    return evaluation


async def events(session: AsyncSession) -> list[tuple[str, int, str]]:
    rows = await session.execute(
        select(WebhookEvent.type, WebhookEvent.org_unit_id, WebhookEvent.data).order_by(WebhookEvent.id)
    )
    return [(t, unit, data["kind"]) for t, unit, data in rows.all()]


async def rows(session: AsyncSession) -> dict[int, RaisedAlert]:
    found = (await session.scalars(select(RaisedAlert))).all()
    return {r.org_unit_id: r for r in found}


async def test_the_scan_raises_once_clears_and_raises_again(session: AsyncSession, tree: Tree) -> None:
    c = await build_country(tree)
    listening = await subscribe(tree, c.province_a, ["alert.raised", "report.submitted"])
    await subscribe(tree, c.province_b, ["report.submitted"])  # not listening to alerts
    await subscribe(tree, c.commune_b, ["alert.raised"], active=False)  # switched off
    evaluation = await waiting(tree, c.commune_a)
    await waiting(tree, c.commune_b)  # an alert nobody listens to

    # Province A and its district each have an evaluation waiting (the province lists its children).
    assert await scan(session, year=YEAR) == 2
    await session.commit()
    assert await events(session) == [
        ("alert.raised", c.province_a.id, "review_waiting"),
        ("alert.raised", c.district_a.id, "review_waiting"),
    ]
    event = (await session.scalars(select(WebhookEvent).order_by(WebhookEvent.id))).first()
    assert event is not None
    assert event.data["year"] == YEAR and event.data["details"]["count"] == 1
    assert event.data["org_unit_id"] == c.province_a.id and event.data["name"] == "Tỉnh A"
    deliveries = (await session.scalars(select(WebhookDelivery.subscription_id))).all()
    assert list(deliveries) == [listening.id, listening.id]
    raised = await rows(session)
    assert set(raised) == {c.province_a.id, c.district_a.id}
    assert raised[c.province_a.id].metric == "" and raised[c.province_a.id].cleared_at is None

    # Nothing new: no event.
    assert await scan(session, year=YEAR) == 0
    await session.commit()
    assert len(await events(session)) == 2

    # Reviewed: the alerts clear, silently.
    evaluation.status = "in_review"
    evaluation.submitted_at = datetime.now(UTC)
    await session.commit()
    assert await scan(session, year=YEAR) == 0
    await session.commit()
    assert all(r.cleared_at is not None for r in (await rows(session)).values())
    assert len(await events(session)) == 2

    # Waiting too long again: raised again, the same rows reset.
    evaluation.submitted_at = datetime.now(UTC) - timedelta(days=15)
    await session.commit()
    assert await scan(session, year=YEAR) == 2
    await session.commit()
    assert len(await events(session)) == 4
    again = await rows(session)
    assert set(again) == {c.province_a.id, c.district_a.id}
    assert all(r.cleared_at is None for r in again.values())
    # A subscription's unit is computed once, however many subscriptions share it.
    await subscribe(tree, c.province_a, ["alert.raised"])
    await waiting(tree, c.commune_a2)
    assert await scan(session, year=YEAR) == 0  # the same two alerts, their counts refreshed
    await session.commit()
    assert (await rows(session))[c.district_a.id].details["details"]["count"] == 2  # type: ignore[index]


async def test_no_subscription_no_scan(session: AsyncSession, tree: Tree) -> None:
    c = await build_country(tree)
    await waiting(tree, c.commune_a)
    assert await scan(session, year=YEAR) == 0
    assert await events(session) == [] and await rows(session) == {}
