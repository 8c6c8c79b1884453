"""Stories 2 and 3 of the integration issue over HTTP: the annual report (JSON, CSV, XLSX) equals the
aggregates endpoints cell by cell; the evaluation and decision exports stream person-level CSV, masked,
to the roles allowed."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import openpyxl

from app.aggregates.metrics import METRICS
from app.core.i18n import translate
from app.reports.formats import (
    COLLECTIVE_HEADINGS,
    GROUP_LABELS,
    METRIC_HEADINGS,
    REPORT_COLUMNS,
    REPORT_HEADINGS,
    STATUS_LABELS,
    TITLE_LABELS,
    labels,
)
from tests.api.evaluation_flow import by_number, drive_to, make_school, self_assess
from tests.api.test_aggregates import Seeded, by_metric, progress, seeded, staff
from tests.builders import Tree, build_country

API = "/api/v1"
UNIT_KEYS = {"org_unit_id", "name", "kind"}
# The collective titles in report order, each with the metric whose numbers its row repeats.
COLLECTIVE_METRICS = {
    "learning_family": "learning_families_pct",
    "learning_clan": "learning_clans_pct",
    "learning_community": "learning_communities_pct",
    "learning_unit": "learning_units_pct",
}


async def populate(tree: Tree, s: Seeded) -> None:
    """Staff of the school in every status; residents of the commune, one recognised."""
    await staff(tree, s.dept, 2, 0, "proficient")
    await staff(tree, s.school, 3, 1, "basic")
    for status in ("draft", "withdrawn", "submitted", "returned", "in_review"):
        await tree.evaluation(await tree.person(s.school, "staff"), 2025, status)
    await tree.evaluation(await tree.person(s.school, "staff"), 2025, "reviewed", passed=False)
    await tree.evaluation(await tree.person(s.school, "worker"), 2025, "reviewed")
    await tree.evaluation(await tree.person(s.tam_hung, "resident"), 2025, "recognised", digital_level="none")
    await tree.person(s.tam_hung, "resident")
    await tree.person(s.tam_hung, "student")


async def report(
    client: httpx.AsyncClient, h: dict[str, str], unit_id: int, fmt: str = "json"
) -> httpx.Response:
    return await client.get(
        f"{API}/reports/annual", params={"org_unit_id": unit_id, "year": 2025, "format": fmt}, headers=h
    )


async def breakdowns(client: httpx.AsyncClient, h: dict[str, str], unit_id: int) -> dict[int, dict[str, Any]]:
    """child unit id → metric → the breakdown row (without the unit's own keys)."""
    rows: dict[int, dict[str, Any]] = {}
    for metric in METRICS:
        r = await client.get(
            f"{API}/aggregates/breakdown",
            params={"org_unit_id": unit_id, "year": 2025, "metric": metric.code},
            headers=h,
        )
        for item in r.json()["items"]:
            rows.setdefault(item["org_unit_id"], {})[metric.code] = {
                k: v for k, v in item.items() if k not in UNIT_KEYS
            }
    return rows


async def test_annual_report_json_equals_the_aggregates(client: httpx.AsyncClient, tree: Tree) -> None:
    s = await seeded(tree)
    await populate(tree, s)
    # A household of Tam Hưng (no members recorded), recognised as a learning family: a collective title
    # counts in its own row, never among the people.
    household = await tree.household(s.tam_hung, [])
    await tree.collective_evaluation("learning_family", household, 2025, "recognised")
    h = tree.auth(await tree.user(("viewer", s.thanh_oai)))

    r = await report(client, h, s.thanh_oai.id)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"]["name"] == "Huyện Thanh Oai" and body["plan_id"] == s.plans["qd-677-ttg"]
    assert body["total"]["metrics"] == (await progress(client, h, s.thanh_oai))["metrics"]
    children = await breakdowns(client, h, s.thanh_oai.id)
    assert [i["name"] for i in body["items"]] == ["Trường MN Tam Hưng A", "Xã Tam Hưng"]
    for item in body["items"]:
        assert by_metric(item) == children[item["org_unit_id"]]

    school = {g["group"]: g for g in body["items"][0]["groups"]}
    staff_row = school["staff"]
    # 5 recognised (2 of them in the school's department), 1 without an evaluation, 5 in draft,
    # withdrawn, submitted, returned and in_review, 1 reviewed who failed.
    assert [staff_row[k] for k in ("registered", "self_assessed", "submitted", "reviewed", "passed")] == [
        12,
        9,  # not draft, withdrawn, nor the one without an evaluation
        8,  # returned is back with the person
        6,
        5,
    ]
    assert (staff_row["recognised"], staff_row["digital_skills"], staff_row["digital_proficient"]) == (
        5,
        5,
        2,
    )
    assert (staff_row["recognised_pct"], staff_row["recognised_target"]) == (41.67, 100.0)
    assert (staff_row["digital_proficient_pct"], staff_row["digital_proficient_target"]) == (40.0, 70.0)
    everyone = {g["group"]: g for g in body["total"]["groups"]}["all"]
    assert (everyone["recognised"], everyone["passed"], everyone["reviewed"]) == (6, 7, 8)
    assert everyone["recognised_target"] is None
    residents = {g["group"]: g for g in body["total"]["groups"]}["resident"]
    assert (residents["registered"], residents["recognised"], residents["recognised_pct"]) == (2, 1, 50.0)
    # Thanh Oai has no plan, and the national one now sets its adults target on adults in learning
    # collectives (not on adults_recognised_pct, the metric of this row): no target.
    assert residents["recognised_target"] is None

    # One row per collective title, repeating its learning_*_pct metric.
    for unit in (body["total"], *body["items"]):
        measures = by_metric(unit)
        assert [
            (
                c["title"],
                c["metric"],
                c["subjects"],
                c["recognised"],
                c["recognised_pct"],
                c["target"],
                c["status"],
            )
            for c in unit["collectives"]
        ] == [
            (
                title,
                code,
                measures[code]["denominator"],
                measures[code]["numerator"],
                measures[code]["actual"],
                measures[code]["target"],
                measures[code]["status"],
            )
            for title, code in COLLECTIVE_METRICS.items()
        ], unit["name"]
    # By hand: one household in Thanh Oai (in Tam Hưng), recognised; no clan or village; one school (the
    # department is not a school, agency or enterprise), not recognised as a learning unit. No seed plan
    # targets a collective title.
    total = {c["title"]: c for c in body["total"]["collectives"]}
    assert [
        (t, total[t]["subjects"], total[t]["recognised"], total[t]["recognised_pct"], total[t]["status"])
        for t in COLLECTIVE_METRICS
    ] == [
        ("learning_family", 1, 1, 100.0, "no_target"),
        ("learning_clan", 0, 0, None, "no_data"),
        ("learning_community", 0, 0, None, "no_data"),
        ("learning_unit", 1, 0, 0.0, "no_target"),
    ]
    school_row, commune_row = ({c["title"]: c for c in i["collectives"]} for i in body["items"])
    assert (school_row["learning_family"]["subjects"], commune_row["learning_family"]["recognised"]) == (0, 1)
    assert (school_row["learning_unit"]["subjects"], commune_row["learning_unit"]["subjects"]) == (1, 0)


async def test_xlsx_report_read_back_cell_by_cell(client: httpx.AsyncClient, tree: Tree) -> None:
    s = await seeded(tree)
    await populate(tree, s)
    h = tree.auth(await tree.user(("org_admin", s.thanh_oai)))
    body = (await report(client, h, s.thanh_oai.id)).json()

    r = await report(client, {**h, "Accept-Language": "vi-VN,vi;q=0.9,en;q=0.5"}, s.thanh_oai.id, "xlsx")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    assert r.headers["content-language"] == "vi"
    assert "bao-cao-cdht-2025-01-278.xlsx" in r.headers["content-disposition"]
    book = openpyxl.load_workbook(io.BytesIO(r.content), data_only=True)
    assert book.sheetnames == ["Báo cáo", "Chỉ tiêu", "Danh hiệu tập thể"]

    def vi(msgid: str) -> str:
        return translate("vi", msgid)

    sheet = [list(row) for row in book["Báo cáo"].iter_rows(values_only=True)]
    assert sheet[0][0] == "Báo cáo kết quả xây dựng mô hình Công dân học tập năm 2025 — Huyện Thanh Oai"
    assert tuple(sheet[1]) == labels(REPORT_HEADINGS, "vi")
    assert sheet[1][:4] == ["Mã đơn vị", "Đơn vị", "Nhóm", "Số người đăng ký"]
    expected = [
        [unit["code"], unit["name"], vi(GROUP_LABELS[g["group"]]), *(g[f] for _, f in REPORT_COLUMNS)]
        for unit in (body["total"], *body["items"])
        for g in unit["groups"]
    ]
    assert sheet[2:] == expected
    assert sheet[2][:3] == ["01-278", "Huyện Thanh Oai", "Tất cả"]  # totals at the top
    assert all(isinstance(v, int | float) for row in sheet[2:] for v in row[3:11])

    targets = [list(row) for row in book["Chỉ tiêu"].iter_rows(values_only=True)]
    assert tuple(targets[0]) == labels(METRIC_HEADINGS, "vi")
    national = (await progress(client, h, s.thanh_oai))["metrics"]
    children = await breakdowns(client, h, s.thanh_oai.id)
    units = [(s.thanh_oai.id, "01-278", "Huyện Thanh Oai", {m["metric"]: m for m in national})]
    units += [(i["org_unit_id"], i["code"], i["name"], children[i["org_unit_id"]]) for i in body["items"]]
    row = 1
    for _, code, name, measures in units:
        for metric in METRICS:
            m = measures[metric.code]
            assert targets[row] == [
                code,
                name,
                metric.title_vi,  # the metric named in Vietnamese; its code in the last column
                m["numerator"],
                m["denominator"],
                m["actual"],
                m["target"],
                m["target_year"],
                m["gap"],
                vi(STATUS_LABELS[m["status"]]),
                metric.code,
            ], (code, metric.code)
            row += 1
    assert row == len(targets)
    assert targets[1][2] == "Tỷ lệ người lớn được công nhận Công dân học tập"  # adults_recognised_pct

    titles = [list(row) for row in book["Danh hiệu tập thể"].iter_rows(values_only=True)]
    assert tuple(titles[0]) == labels(COLLECTIVE_HEADINGS, "vi")
    expected_titles = [
        [
            unit["code"],
            unit["name"],
            vi(TITLE_LABELS[c["title"]]),
            c["subjects"],
            c["recognised"],
            c["recognised_pct"],
            c["target"],
            vi(STATUS_LABELS[c["status"]]),
        ]
        for unit in (body["total"], *body["items"])
        for c in unit["collectives"]
    ]
    assert titles[1:] == expected_titles
    assert len(expected_titles) == 3 * 4  # Thanh Oai and its two children, four titles each
    assert titles[4][:6] == [
        "01-278",
        "Huyện Thanh Oai",
        "Đơn vị học tập",
        1,
        0,
        0,
    ]  # one school, none recognised


async def test_csv_report_is_utf8_with_bom(client: httpx.AsyncClient, tree: Tree) -> None:
    s = await seeded(tree)
    await populate(tree, s)
    h = tree.auth(await tree.user(("viewer", s.vn)))
    r = await report(client, h, s.thanh_oai.id, "csv")
    assert r.status_code == 200 and r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert tuple(rows[0]) == REPORT_HEADINGS  # no Accept-Language: English headings and labels
    assert rows[0][:4] == ["Unit code", "Unit", "Group", "Registered"]
    assert rows[1][:3] == ["01-278", "Huyện Thanh Oai", "All groups"]
    assert len(rows) == 1 + 3 * 5
    vi = await report(client, {**h, "Accept-Language": "vi"}, s.thanh_oai.id, "csv")
    assert vi.headers["content-language"] == "vi"
    rows_vi = list(csv.reader(io.StringIO(vi.content.decode("utf-8-sig"))))
    assert tuple(rows_vi[0]) == labels(REPORT_HEADINGS, "vi")
    assert rows_vi[0][:4] == ["Mã đơn vị", "Đơn vị", "Nhóm", "Số người đăng ký"]
    assert rows_vi[1][:3] == ["01-278", "Huyện Thanh Oai", "Tất cả"]
    assert [row[3:] for row in rows_vi[1:]] == [row[3:] for row in rows[1:]]  # the same numbers


async def test_xlsx_report_in_english_names_metrics_by_their_english_titles(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    s = await seeded(tree)
    h = tree.auth(await tree.user(("org_admin", s.thanh_oai)))
    r = await report(client, {**h, "Accept-Language": "en-GB,vi;q=0.3"}, s.thanh_oai.id, "xlsx")
    assert r.status_code == 200 and r.headers["content-language"] == "en"
    book = openpyxl.load_workbook(io.BytesIO(r.content), data_only=True)
    assert book.sheetnames == ["Report", "Targets", "Collective titles"]
    assert (
        book["Report"]["A1"].value
        == "Results of building the Learning Citizen model in 2025 — Huyện Thanh Oai"
    )
    targets = [list(row) for row in book["Targets"].iter_rows(values_only=True)]
    assert tuple(targets[0]) == METRIC_HEADINGS
    assert [row[2] for row in targets[1 : 1 + len(METRICS)]] == [m.title for m in METRICS]
    assert targets[1][2] == "Adults recognised as Learning Citizens"
    assert {row[9] for row in targets[1:]} <= {"Met", "Behind", "No target", "No data"}
    titles = [list(row) for row in book["Collective titles"].iter_rows(values_only=True)]
    assert tuple(titles[0]) == COLLECTIVE_HEADINGS
    assert [row[2] for row in titles[1:5]] == [
        "Learning families",
        "Learning clans",
        "Learning communities (villages, residential groups)",
        "Learning units",
    ]


async def test_report_scope(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.user(("viewer", c.province_a)))
    assert (await report(client, h, c.province_b.id)).status_code == 404
    member = tree.auth(await tree.user(("member", c.province_a)))
    assert (await report(client, member, c.province_a.id)).status_code == 403
    assert (await report(client, h, c.province_a.id, "pdf")).status_code == 422


def read_csv(r: httpx.Response) -> list[dict[str, str]]:
    assert r.content.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))


async def test_evaluation_export_streams_scores_masked_ids_and_decisions(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    c = await build_country(tree)
    school = await make_school(tree, c.commune_a, "Trường A")
    person = await tree.person(school.unit, "staff", citizen_id="062185001234")
    recognised = await drive_to(client, tree, school, "recognised", person=person)
    draft = await drive_to(client, tree, school, "draft")
    draft = await self_assess(client, school.admin, draft, [7.5] * 10)  # no evidence yet: scores 0
    other = await tree.person(c.school_b, "staff", citizen_id="079000000001")
    await tree.evaluation(other, 2025, "reviewed")
    h = tree.auth(await tree.user(("integration", c.district_a), service=True))

    r = await client.get(
        f"{API}/exports/evaluations", params={"org_unit_id": c.district_a.id, "year": 2025}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    rows = {int(row["evaluation_id"]): row for row in read_csv(r)}
    assert set(rows) == {recognised["id"], draft["id"]}  # nothing of province B
    row = rows[recognised["id"]]
    assert (row["citizen_id"], row["full_name"], row["group"], row["status"]) == (
        "********1234",
        person.full_name,
        "staff",
        "recognised",
    )
    assert "062185001234" not in r.text
    scores = by_number(recognised)
    assert [row[f"indicator_{n}"] for n in range(1, 11)] == [
        f"{scores[n]['effective_score']:g}" for n in range(1, 11)
    ]
    assert (row["total"], row["passed"], row["digital_level"]) == (
        "90",
        "true",
        recognised["result"]["digital_level"],
    )
    decision = (await client.get(f"{API}/recognition-decisions", headers=school.approver)).json()["items"][0]
    assert row["decision_number"] == decision["number"]
    assert [rows[draft["id"]][f"indicator_{n}"] for n in (1, 10)] == ["0", "0"]
    assert rows[draft["id"]]["total"] == "" and rows[draft["id"]]["passed"] == ""

    people = await client.get(f"{API}/exports/recognised", params={"decision_id": decision["id"]}, headers=h)
    assert people.status_code == 200
    listed = read_csv(people)
    assert [(p["person_id"], p["citizen_id"], p["decision_number"]) for p in listed] == [
        (str(person.id), "********1234", decision["number"])
    ]


async def test_exports_are_person_level_data(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    viewer = tree.auth(await tree.user(("viewer", c.province_a)))
    params = {"org_unit_id": c.province_a.id, "year": 2025}
    assert (await client.get(f"{API}/exports/evaluations", params=params, headers=viewer)).status_code == 403
    outsider = tree.auth(await tree.user(("org_admin", c.province_b)))
    r = await client.get(f"{API}/exports/evaluations", params=params, headers=outsider)
    assert r.status_code == 404 and r.json()["error"]["message"] == f"Org unit {c.province_a.id} not found."
    evaluation = await tree.evaluation(await tree.person(c.school_a), 2025, "recognised")
    decision_id = evaluation.decision_id
    r = await client.get(f"{API}/exports/recognised", params={"decision_id": decision_id}, headers=outsider)
    assert r.status_code == 404
    r = await client.get(f"{API}/exports/recognised", params={"decision_id": decision_id}, headers=viewer)
    assert r.status_code == 403
    empty = await client.get(
        f"{API}/exports/evaluations", params={"org_unit_id": c.province_b.id, "year": 2025}, headers=outsider
    )
    assert read_csv(empty) == []
