"""The three stories of the evaluation issue, end to end over HTTP."""

from __future__ import annotations

import httpx

from tests.builders import MINIMAL_PDF, MINIMAL_PNG, Tree

API = "/api/v1"


async def _school(tree: Tree):  # type: ignore[no-untyped-def]
    district = await tree.unit("Huyện Thanh Oai", "district")
    school = await tree.unit("Trường MN Tam Hưng A", "school", district)
    teacher_user = await tree.user(("member", school))
    teacher = await tree.person(school, "staff", user=teacher_user)
    assessor = await tree.user(("assessor", school))
    approver_user = await tree.user(("approver", school))
    await tree.person(school, "staff", user=approver_user)
    return school, teacher, teacher_user, assessor, approver_user


async def _score_all(
    client: httpx.AsyncClient,
    h: dict[str, str],
    evaluation: dict,
    scores: dict[int, float],
    digital_level: str | None = None,
) -> dict:
    body = {
        "version": evaluation["version"],
        "scores": [
            {"indicator_id": s["indicator_id"], "score": scores[s["number"]]} for s in evaluation["scores"]
        ],
    }
    if digital_level is not None:
        body["digital_level"] = digital_level
    r = await client.put(f"{API}/evaluations/{evaluation['id']}/self-assessment", json=body, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


async def _evidence_for_all(client: httpx.AsyncClient, h: dict[str, str], evaluation: dict) -> list[dict]:
    uploaded = []
    for s in evaluation["scores"]:
        content = MINIMAL_PDF if s["number"] % 2 else MINIMAL_PNG
        r = await client.post(
            f"{API}/evaluations/{evaluation['id']}/evidence",
            data={"indicator_id": str(s["indicator_id"])},
            files={"file": (f"minh-chung-{s['number']}.bin", content, "application/octet-stream")},
            headers=h,
        )
        assert r.status_code == 201, r.text
        uploaded.append(r.json())
    return uploaded


async def test_teacher_committee_and_headmistress(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school, teacher, teacher_user, assessor, approver = await _school(tree)
    th, ah, ph = tree.auth(teacher_user), tree.auth(assessor), tree.auth(approver)

    # Story 1: she opens her 2025 evaluation, scores, declares her digital level, uploads evidence, sees the
    # running total, submits.
    r = await client.post(f"{API}/evaluations", json={"person_id": teacher.id, "year": 2025}, headers=th)
    assert r.status_code == 201, r.text
    evaluation = r.json()
    assert evaluation["status"] == "draft"
    assert evaluation["criteria_set_id"] == criteria["staff"]
    assert len(evaluation["scores"]) == 10
    # A personal evaluation: the learning_citizen title, no household or clan, nothing declared yet.
    assert (evaluation["title"], evaluation["household_id"], evaluation["clan_id"]) == (
        "learning_citizen",
        None,
        None,
    )
    assert (evaluation["declared_digital_level"], evaluation["reviewed_digital_level"]) == (None, None)
    evaluation = await _score_all(client, th, evaluation, {n: 9 for n in range(1, 11)}, "proficient")
    assert evaluation["declared_digital_level"] == "proficient"
    assert evaluation["running_result"]["total"] == 0  # no evidence yet: every indicator counts 0
    # ...and without accepted evidence on the digital indicator 5 the declared level counts as none.
    assert evaluation["running_result"]["digital_level"] == "none"
    evidence = await _evidence_for_all(client, th, evaluation)
    assert {e["content_type"] for e in evidence} == {"application/pdf", "image/png"}
    evaluation = (await client.get(f"{API}/evaluations/{evaluation['id']}", headers=th)).json()
    assert evaluation["running_result"] == {
        "total": 90.0,
        "passed": True,
        "failing_indicators": [],
        "digital_level": "proficient",  # as she declared, now backed by evidence on indicator 5
        "level": None,  # a personal set is not graded
    }
    r = await client.post(f"{API}/evaluations/{evaluation['id']}/submit", headers=th)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "submitted"

    # Story 2: the assessor lowers indicator 5 and her digital level to basic, rejects indicator 3's
    # evidence, returns it.
    evaluation = (await client.get(f"{API}/evaluations/{evaluation['id']}", headers=ah)).json()
    by_number = {s["number"]: s for s in evaluation["scores"]}
    third = next(e for e in evaluation["evidence"] if e["indicator_id"] == by_number[3]["indicator_id"])
    r = await client.put(
        f"{API}/evaluations/{evaluation['id']}/review",
        json={
            "version": evaluation["version"],
            "scores": [
                {"indicator_id": by_number[5]["indicator_id"], "score": 6.5, "note": "Chưa có chứng chỉ"}
            ],
            "digital_level": "basic",
            "rejected_evidence_ids": [third["id"]],
        },
        headers=ah,
    )
    assert r.status_code == 200, r.text
    reviewed = r.json()
    assert reviewed["status"] == "in_review"
    assert reviewed["running_result"]["failing_indicators"] == [3]
    assert reviewed["running_result"]["digital_level"] == "basic"  # the assessor's word wins
    assert (reviewed["declared_digital_level"], reviewed["reviewed_digital_level"]) == ("proficient", "basic")
    scores = {s["number"]: s for s in reviewed["scores"]}
    assert (
        scores[5]["self_score"] == 9
        and scores[5]["review_score"] == 6.5
        and scores[5]["effective_score"] == 6.5
    )
    r = await client.post(
        f"{API}/evaluations/{evaluation['id']}/return",
        json={"reason": "Bổ sung minh chứng chỉ tiêu 3"},
        headers=ah,
    )
    assert r.json()["status"] == "returned"

    # She adds new evidence for indicator 3 and resubmits; the assessor completes the review.
    r = await client.post(
        f"{API}/evaluations/{evaluation['id']}/evidence",
        data={"indicator_id": str(by_number[3]["indicator_id"])},
        files={"file": ("the-thu-vien.pdf", MINIMAL_PDF, "application/pdf")},
        headers=th,
    )
    assert r.status_code == 201
    assert (await client.post(f"{API}/evaluations/{evaluation['id']}/submit", headers=th)).status_code == 200
    r = await client.post(f"{API}/evaluations/{evaluation['id']}/complete-review", headers=ah)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "reviewed"
    assert done["result"] == {
        "total": 87.5,
        "passed": True,
        "failing_indicators": [],
        "digital_level": "basic",  # the assessor's level, not derived from the 6.5 on indicator 5
        "level": None,
    }

    # Story 3: the headmistress signs a decision; later it is revoked.
    r = await client.post(
        f"{API}/recognition-decisions",
        json={
            "org_unit_id": school.id,
            "year": 2025,
            "number": "15/QĐ-MNTHA",
            "signed_on": "2025-12-20",
            "evaluation_ids": [evaluation["id"]],
        },
        headers=ph,
    )
    assert r.status_code == 201, r.text
    decision = r.json()
    assert (await client.get(f"{API}/evaluations/{evaluation['id']}", headers=th)).json()[
        "status"
    ] == "recognised"
    r = await client.post(
        f"{API}/recognition-decisions/{decision['id']}/revoke", json={"reason": "Sai sót hồ sơ"}, headers=ph
    )
    assert r.status_code == 200
    assert r.json()["status"] == "revoked"
    assert (await client.get(f"{API}/evaluations/{evaluation['id']}", headers=th)).json()[
        "status"
    ] == "reviewed"

    # Story 4: the history shows every step with who did it.
    history = (await client.get(f"{API}/evaluations/{evaluation['id']}/history", headers=ah)).json()
    actions = [h["action"] for h in history]
    assert actions[:2] == ["created", "self_assessed"]
    for expected in ("evidence_added", "submitted", "reviewed", "returned", "review_completed", "recognised"):
        assert expected in actions
    assert actions[-1] == "recognition_revoked"
    review_entry = next(h for h in history if h["action"] == "reviewed")
    assert review_entry["actor_user_id"] == assessor.id
    assert review_entry["before"]["5"] == {"score": None, "note": None}
    assert review_entry["after"]["rejected_evidence_ids"] == [third["id"]]
    assert (
        review_entry["before"]["reviewed_digital_level"],
        review_entry["after"]["reviewed_digital_level"],
    ) == (
        None,
        "basic",
    )


async def test_evidence_download_is_the_uploaded_file(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    _, teacher, teacher_user, assessor, _ = await _school(tree)
    th = tree.auth(teacher_user)
    evaluation = (
        await client.post(f"{API}/evaluations", json={"person_id": teacher.id, "year": 2025}, headers=th)
    ).json()
    indicator_id = evaluation["scores"][0]["indicator_id"]
    r = await client.post(
        f"{API}/evaluations/{evaluation['id']}/evidence",
        data={"indicator_id": str(indicator_id)},
        files={"file": ("../../etc/giấy chứng nhận.pdf", MINIMAL_PDF, "image/png")},
        headers=th,
    )
    assert r.status_code == 201
    assert r.json()["filename"] == "giấy chứng nhận.pdf"
    assert r.json()["content_type"] == "application/pdf"
    download = await client.get(f"{API}/evidence/{r.json()['id']}/content", headers=tree.auth(assessor))
    assert download.status_code == 200
    assert download.content == MINIMAL_PDF
    assert download.headers["content-type"] == "application/pdf"
