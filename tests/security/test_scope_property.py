"""Issue 6, group 1 (property): for random trees, random role assignments and random objects, every list
endpoint returns exactly the objects inside the caller's subtrees — computed here independently, by
walking parent links in Python and reading the allowed roles from ``POLICY``, not through the closure
table or :mod:`app.auth.scope`.

Each example builds a new disjoint tree inside the test's transaction, named by a tag of its own.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from datetime import date

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from app.auth.models import Role
from app.auth.policy import POLICY, Action
from app.decisions.models import RecognitionDecision
from app.orgs.models import OrgUnit
from app.plans.models import Plan
from app.trainings.models import TrainingSession
from tests.builders import Tree

pytestmark = pytest.mark.anyio  # before collection: @given hides the coroutine from conftest's marker

API = "/api/v1"
MAX_DEPTH = 4
STATUSES = ["none", "draft", "submitted", "reviewed", "recognised"]
_tags = itertools.count(1)

unit_ref = st.integers(0, 30)  # folded into the number of units
world_st = st.fixed_dictionaries(
    {
        "parents": st.lists(st.integers(0, 30), max_size=9),
        "grants": st.lists(st.tuples(st.sampled_from(list(Role)), unit_ref), min_size=1, max_size=3),
        "people": st.lists(st.tuples(unit_ref, st.sampled_from(STATUSES)), max_size=8),
        "own": st.one_of(st.none(), st.integers(0, 30)),  # the caller is linked to that person
        "users": st.lists(unit_ref, max_size=4),
        "plans": st.lists(unit_ref, max_size=3),
        "trainings": st.lists(unit_ref, max_size=3),
        "decisions": st.lists(unit_ref, max_size=2),
        "descend": unit_ref,
    }
)


@dataclass
class Built:
    """What one example made: ids by kind, and each object's unit."""

    tag: str
    parent: dict[int, int | None] = field(default_factory=dict)
    units: list[int] = field(default_factory=list)
    objects: dict[str, dict[int, int]] = field(default_factory=dict)  # kind -> id -> unit id
    evaluated: dict[int, int] = field(default_factory=dict)  # evaluation id -> person id
    own_person: int | None = None  # the person the caller is linked to

    def chain(self, unit_id: int) -> list[int]:
        """The unit and its ancestors, by parent links."""
        found: list[int] = []
        at: int | None = unit_id
        while at is not None:
            found.append(at)
            at = self.parent[at]
        return found


async def _build(tree: Tree, w: dict) -> tuple[Built, dict[str, str], list[tuple[Role, int | None]]]:  # type: ignore[type-arg]
    b = Built(tag=f"Scp{next(_tags)}x")
    units: list[OrgUnit] = [await tree.unit(f"Gốc {b.tag}", "province")]
    for i, p in enumerate(w["parents"]):
        parent = units[p % len(units)]
        while parent.depth >= MAX_DEPTH:
            parent = next(u for u in units if u.id == parent.parent_id)
        units.append(await tree.unit(f"Đơn vị {b.tag}-{i}", "unit", parent))
    b.parent = {u.id: u.parent_id for u in units}
    b.units = [u.id for u in units]
    pick = lambda i: units[i % len(units)]  # noqa: E731
    objects: dict[str, dict[int, int]] = {k: {} for k in ("person", "evaluation", "user")}
    objects |= {k: {} for k in ("plan", "training", "decision")}
    people = []
    for ref, status in w["people"]:
        person = await tree.person(pick(ref), "staff")
        people.append(person)
        objects["person"][person.id] = person.org_unit_id
        if status != "none":
            evaluation = await tree.evaluation(person, 2025, status)
            objects["evaluation"][evaluation.id] = evaluation.org_unit_id
            b.evaluated[evaluation.id] = person.id
            if evaluation.decision_id is not None:
                objects["decision"][evaluation.decision_id] = person.org_unit_id
    for ref in w["users"]:
        user = await tree.user(("member", pick(ref)))
        objects["user"][user.id] = pick(ref).id
    session = tree.session
    for kind, refs in (("plan", w["plans"]), ("training", w["trainings"]), ("decision", w["decisions"])):
        for n, ref in enumerate(refs):
            unit_id = pick(ref).id
            row: Plan | TrainingSession | RecognitionDecision
            if kind == "plan":
                row = Plan(org_unit_id=unit_id, title="Kế hoạch", start_year=2021, end_year=2030)
            elif kind == "training":
                row = TrainingSession(
                    org_unit_id=unit_id, title="Tập huấn", held_on=date(2025, 3, 1), year=2025
                )
            else:
                row = RecognitionDecision(
                    org_unit_id=unit_id, year=2025, number=f"{b.tag}-{n}", signed_on=date(2025, 12, 20)
                )
            session.add(row)
            await session.flush()
            objects[kind][row.id] = unit_id
    grants = list(
        dict.fromkeys((role, None if role == Role.ADMIN else pick(ref).id) for role, ref in w["grants"])
    )
    by_id = {u.id: u for u in units}
    caller = await tree.user(*[(role, by_id[u] if u else None) for role, u in grants])
    objects["user"][caller.id] = next((u for _, u in grants if u is not None), None)  # type: ignore[assignment]
    if w["own"] is not None and people:
        person = people[w["own"] % len(people)]
        person.user_id = caller.id
        b.own_person = person.id
    await session.commit()
    b.objects = objects
    return b, tree.auth(caller), grants


def _expected(b: Built, grants: list[tuple[Role, int | None]], action: Action, kind: str) -> set[int] | None:
    """Ids of ``kind`` the caller may list for ``action`` (None: a 403, no role allows it anywhere)."""
    # A user linked to a person always lists their own record and evaluations (the ``own`` rule), so
    # those two lists are never a 403 for them, even when empty.
    linked = b.own_person is not None and kind in ("person", "evaluation")
    own_ids: set[int] = set()
    if kind == "person" and b.own_person is not None:
        own_ids = {b.own_person}
    if kind == "evaluation":
        own_ids = {e for e, p in b.evaluated.items() if p == b.own_person}
    admin = any(role == Role.ADMIN for role, _ in grants)
    roots = {u for role, u in grants if u is not None and role in POLICY[action]}
    if not (admin or roots or linked):
        return None
    found = set(own_ids)
    for object_id, unit_id in b.objects[kind].items():
        chain = b.chain(unit_id) if unit_id is not None else []
        inside = (admin and b.units[0] in chain) or bool(roots & set(chain))  # admin: narrowed to root
        # A plan applies below its unit, so it is also readable from under it.
        applies = kind == "plan" and any(unit_id in b.chain(r) for r in roots)
        if inside or applies:
            found.add(object_id)
    return found


LISTS: list[tuple[str, Action, str]] = [
    ("/people", Action.PERSON_READ, "person"),
    ("/users", Action.USER_READ, "user"),
    ("/evaluations", Action.EVALUATION_READ, "evaluation"),
    ("/recognition-decisions", Action.DECISION_READ, "decision"),
    ("/plans", Action.PLAN_READ, "plan"),
    ("/training-sessions", Action.TRAINING_READ, "training"),
]


async def _ids(client: httpx.AsyncClient, path: str, h: dict[str, str], **params: object) -> set[int] | int:
    r = await client.get(API + path, params={"limit": 200, **params}, headers=h)
    if r.status_code != 200:
        assert r.status_code == 403, (path, r.text)
        return 403
    body = r.json()
    assert body["total"] == len(body["items"]), path
    return {item["id"] for item in body["items"]}


@settings(
    max_examples=int(os.environ.get("CDHT_PROPERTY_EXAMPLES", "30")),
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],  # no "explain": it reruns every example
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(w=world_st)
async def test_every_list_returns_only_the_callers_subtrees(
    client: httpx.AsyncClient,
    tree: Tree,
    w: dict,  # type: ignore[type-arg]
) -> None:
    b, h, grants = await _build(tree, w)
    admin = any(role == Role.ADMIN for role, _ in grants)
    root = b.units[0]
    for path, action, kind in LISTS:
        expected = _expected(b, grants, action, kind)
        # An admin sees every tree the suite made so far: narrow to this one (and check the filter too).
        got = await _ids(client, path, h, **({"org_unit_id": root} if admin else {}))
        if expected is None:
            assert got == 403, (path, got)
            continue
        assert got == expected, (path, grants, b.objects[kind])

    # Units: a search (q) over everything visible, and the descendants of a visible unit.
    unit_expected = {u for u in b.units if admin or _sees(b, grants, u)}
    got_units = await _ids(client, "/org-units", h, q=b.tag)
    assert got_units == unit_expected, grants
    visible = sorted(unit_expected)
    if visible:
        top = visible[w["descend"] % len(visible)]
        below = {u for u in b.units if u != top and top in b.chain(u)}
        got_below = await _ids(client, f"/org-units/{top}/descendants", h)
        assert got_below == below & unit_expected, (top, grants)


def _sees(b: Built, grants: list[tuple[Role, int | None]], unit_id: int) -> bool:
    roots = {u for role, u in grants if u is not None and role in POLICY[Action.UNIT_READ]}
    return bool(roots & set(b.chain(unit_id)))
