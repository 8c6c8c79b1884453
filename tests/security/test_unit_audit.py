"""Issue #14, item 7: creating, renaming, moving and deleting a unit writes audit rows (who, what changed
before and after): a move changes who can see what below the unit."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from app.core.audit import AuditEntry
from tests.builders import Tree

API = "/api/v1"


async def _rows(tree: Tree, unit_id: int) -> list[tuple[int | None, str, Any, Any]]:
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.entity_type == "org_unit", AuditEntry.entity_id == unit_id)
        .order_by(AuditEntry.id)
        .execution_options(populate_existing=True)
    )
    return [(e.actor_user_id, e.action, e.before, e.after) for e in (await tree.session.scalars(stmt)).all()]


async def test_unit_changes_are_audited(client: httpx.AsyncClient, tree: Tree) -> None:
    province = await tree.unit("Tỉnh", "province")
    district = await tree.unit("Huyện", "district", province)
    other = await tree.unit("Huyện khác", "district", province)
    admin = await tree.user(("org_admin", province))
    h = tree.auth(admin)

    r = await client.post(
        f"{API}/org-units", json={"name": "Xã A", "kind": "commune", "parent_id": district.id}, headers=h
    )
    assert r.status_code == 201, r.text
    unit = r.json()
    r = await client.patch(f"{API}/org-units/{unit['id']}", json={"name": "Xã Anh"}, headers=h)
    assert r.status_code == 200, r.text
    r = await client.post(f"{API}/org-units/{unit['id']}/move", json={"parent_id": other.id}, headers=h)
    assert r.status_code == 200, r.text
    r = await client.delete(
        f"{API}/org-units/{unit['id']}", headers={**h, "If-Match": str(r.json()["version"])}
    )
    assert r.status_code == 204, r.text

    rows = await _rows(tree, unit["id"])
    assert [(actor, action) for actor, action, _, _ in rows] == [
        (admin.id, "created"),
        (admin.id, "updated"),
        (admin.id, "moved"),
        (admin.id, "deleted"),
    ]
    assert rows[0][2] is None and rows[0][3]["name"] == "Xã A" and rows[0][3]["parent_id"] == district.id
    assert rows[1][2:] == ({"name": "Xã A"}, {"name": "Xã Anh"})
    assert rows[2][2:] == ({"parent_id": district.id}, {"parent_id": other.id})
    assert rows[3][2]["name"] == "Xã Anh" and rows[3][3] is None
