"""``GET /evaluations`` writes its page without validating each item again (``core/pagination.page_json``):
what it sends, read back by ``Page[EvaluationSummary]``, is written again byte for byte, whatever the
database (values as the rows hold them: dates, JSON lists, grades, collective subjects); and the OpenAPI
document still describes the page."""

from __future__ import annotations

import httpx
from pydantic import TypeAdapter

from app.core.pagination import Page
from app.evaluations.schemas import EvaluationSummary
from tests.builders import Tree

API = "/api/v1"


async def test_the_page_is_what_its_model_writes(client: httpx.AsyncClient, tree: Tree) -> None:
    province = await tree.unit("Tỉnh", "province")
    commune = await tree.unit("Xã", "commune", province)
    village = await tree.unit("Thôn", "village", commune)
    people = [await tree.person(village, "resident", birth_year=1980 + i) for i in range(4)]
    await tree.evaluation(people[0], 2025, "recognised")
    await tree.evaluation(people[1], 2025, "reviewed", passed=False, digital_level=None)
    await tree.evaluation(people[2], 2024, "draft")
    household = await tree.household(village, [people[3]])
    await tree.collective_evaluation("learning_family", household, 2025, "reviewed")
    await tree.collective_evaluation("learning_community", village, 2025, "submitted")
    admin = tree.auth(await tree.user(("org_admin", province)))

    r = await client.get(f"{API}/evaluations", params={"org_unit_id": province.id}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    model = TypeAdapter(Page[EvaluationSummary])
    page = model.validate_json(r.content)
    assert (page.total, page.limit, page.offset, len(page.items)) == (5, 50, 0, 5)
    assert r.content == model.dump_json(page, by_alias=True)
    titles = {item.title for item in page.items}
    assert titles == {"learning_citizen", "learning_family", "learning_community"}

    schema = (await client.get("/openapi.json")).json()
    answer = schema["paths"][f"{API}/evaluations"]["get"]["responses"]["200"]["content"]["application/json"]
    assert answer["schema"]["$ref"].endswith("Page_EvaluationSummary_")
