"""Evidence files: size limit, type by content, deletion while editable, who may download, and no orphan
file or row when a request fails after the file was written.

The app here has its own evidence directory (so "nothing left on disk" can be checked) and a 1 KiB limit."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, UploadFile
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.deps import load_subject
from app.core import audit
from app.core.config import Settings
from app.core.errors import ValidationFailed
from app.evaluations import evidence
from app.evaluations.models import Evidence
from app.evaluations.storage import EvidenceStore
from app.main import create_app
from tests.api.evaluation_flow import API, act, drive_to, get, make_school, open_evaluation
from tests.builders import MINIMAL_PDF, Tree

pytestmark = pytest.mark.anyio

LIMIT = 1024
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ODT = "application/vnd.oasis.opendocument.text"


@pytest.fixture
def evidence_dir(tmp_path: Path) -> Path:
    return tmp_path / "evidence"


@pytest.fixture
def app(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], evidence_dir: Path) -> FastAPI:
    overrides = {"evidence_dir": evidence_dir, "max_evidence_bytes": LIMIT}
    return create_app(settings.model_copy(update=overrides), sessionmaker=sessionmaker)


def files_on_disk(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def zipped(entries: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in entries.items():
            archive.writestr(name, text)
    return buffer.getvalue()


async def post_file(
    client: httpx.AsyncClient,
    h: dict[str, str],
    evaluation: dict[str, Any],
    content: bytes,
    name: str = "minh-chung.pdf",
    content_type: str = "application/pdf",
    **form: str,
) -> httpx.Response:
    return await client.post(
        f"{API}/evaluations/{evaluation['id']}/evidence",
        data={"indicator_id": str(evaluation["scores"][0]["indicator_id"]), **form},
        files={"file": (name, content, content_type)},
        headers=h,
    )


async def evidence_rows(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Evidence)) or 0)


async def test_a_file_over_the_limit_is_413_and_leaves_nothing(
    client: httpx.AsyncClient,
    tree: Tree,
    session: AsyncSession,
    criteria: dict[str | None, int],
    evidence_dir: Path,
) -> None:
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    too_big = MINIMAL_PDF + b"0" * (LIMIT + 1 - len(MINIMAL_PDF))
    r = await post_file(client, school.admin, ev, too_big)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert "1 KB" in r.json()["error"]["message"]  # the limit as a person reads it, not "0 MB"
    assert files_on_disk(evidence_dir) == []
    assert await evidence_rows(session) == 0
    assert (await get(client, school.admin, ev["id"]))["version"] == ev["version"]
    exactly = MINIMAL_PDF + b"0" * (LIMIT - len(MINIMAL_PDF))
    r = await post_file(client, school.admin, ev, exactly)
    assert r.status_code == 201
    assert r.json()["size"] == LIMIT
    assert len(files_on_disk(evidence_dir)) == 1


NOT_ACCEPTED = {
    "exe": ("setup.exe", "application/octet-stream", b"MZ\x90\x00\x03" + b"\x00" * 60),
    "text named pdf": ("bao-cao.pdf", "application/pdf", "Báo cáo tự học năm 2025\n".encode()),
    "gif named png": ("anh.png", "image/png", b"GIF89a\x01\x00\x01\x00"),
    "plain zip": ("ho-so.docx", DOCX, zipped({"readme.txt": "không phải Word"})),
    "broken zip": ("ho-so.docx", DOCX, b"PK\x03\x04" + b"\x00" * 40),
    "zip with a wrong mimetype": ("ho-so.odt", ODT, zipped({"mimetype": "application/x-evil"})),
    "html": ("trang.html", "text/html", b"<html><script>alert(1)</script></html>"),
    "empty": ("rong.pdf", "application/pdf", b""),
}


async def test_a_file_that_is_not_an_accepted_type_is_415_and_leaves_nothing(
    client: httpx.AsyncClient,
    tree: Tree,
    session: AsyncSession,
    criteria: dict[str | None, int],
    evidence_dir: Path,
) -> None:
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    for label, (name, content_type, content) in NOT_ACCEPTED.items():
        r = await post_file(client, school.admin, ev, content, name, content_type)
        assert r.status_code == 415, label
        assert r.json()["error"]["code"] == "unsupported_media_type", label
        assert files_on_disk(evidence_dir) == [], label
    assert await evidence_rows(session) == 0
    assert await get(client, school.admin, ev["id"]) == ev


ACCEPTED = {
    "docx": (zipped({"[Content_Types].xml": "<Types/>", "word/document.xml": "<w:document/>"}), DOCX),
    "xlsx": (zipped({"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<workbook/>"}), XLSX),
    "odt": (zipped({"mimetype": ODT, "content.xml": "<office:document-content/>"}), ODT),
    "jpeg": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20, "image/jpeg"),
    "webp": (b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 20, "image/webp"),
}


async def test_office_documents_and_images_are_recognised_by_content(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    for label, (content, expected) in ACCEPTED.items():
        # The client's name and header say "binary": only the bytes decide.
        r = await post_file(client, school.admin, ev, content, "tai-lieu", "application/octet-stream")
        assert r.status_code == 201, (label, r.text)
        assert r.json()["content_type"] == expected, label
        download = await client.get(f"{API}/evidence/{r.json()['id']}/content", headers=school.assessor)
        assert download.status_code == 200, label
        assert download.headers["content-type"].split(";")[0] == expected, label
        assert download.content == content, label


async def test_deleting_evidence_while_editable_removes_the_file(
    client: httpx.AsyncClient,
    tree: Tree,
    session: AsyncSession,
    criteria: dict[str | None, int],
    evidence_dir: Path,
) -> None:
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    piece = (await post_file(client, school.admin, ev, MINIMAL_PDF)).json()
    assert len(files_on_disk(evidence_dir)) == 1
    r = await client.delete(f"{API}/evidence/{piece['id']}", headers=school.admin)
    assert r.status_code == 204
    assert files_on_disk(evidence_dir) == []
    assert await evidence_rows(session) == 0
    assert (await get(client, school.admin, ev["id"]))["evidence"] == []
    assert (
        await client.get(f"{API}/evidence/{piece['id']}/content", headers=school.admin)
    ).status_code == 404
    assert (await client.delete(f"{API}/evidence/{piece['id']}", headers=school.admin)).status_code == 404
    history = (await client.get(f"{API}/evaluations/{ev['id']}/history", headers=school.admin)).json()
    assert history[-1]["action"] == "evidence_deleted"


@pytest.mark.parametrize("status", ["submitted", "in_review", "reviewed", "withdrawn"])
async def test_deleting_evidence_of_an_evaluation_that_is_not_editable_is_409(
    client: httpx.AsyncClient,
    tree: Tree,
    session: AsyncSession,
    criteria: dict[str | None, int],
    evidence_dir: Path,
    status: str,
) -> None:
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    piece = (await post_file(client, school.admin, ev, MINIMAL_PDF)).json()
    if status == "withdrawn":
        assert (await act(client, school.admin, ev["id"], "withdraw")).status_code == 200
    else:
        ev = await drive_to(client, tree, school, status, evidence=True)
        piece = ev["evidence"][0]
    on_disk = files_on_disk(evidence_dir)
    r = await client.delete(f"{API}/evidence/{piece['id']}", headers=school.admin)
    assert r.status_code == 409
    assert r.json()["error"]["details"]["status"] == status
    assert files_on_disk(evidence_dir) == on_disk
    download = await client.get(f"{API}/evidence/{piece['id']}/content", headers=school.admin)
    assert download.content == MINIMAL_PDF


async def test_download_only_for_callers_who_may_see_the_evaluation(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    commune = await tree.unit("Xã", "commune")
    school = await make_school(tree, commune)
    owner = await tree.user(("member", school.unit))
    ev = await open_evaluation(client, tree, school, await tree.person(school.unit, "staff", user=owner))
    piece = (await post_file(client, tree.auth(owner), ev, MINIMAL_PDF)).json()
    colleague = await tree.user(("member", school.unit))
    await tree.person(school.unit, "staff", user=colleague)
    sibling = await make_school(tree, commune, "Trường bên cạnh")
    expected = {
        "owner": (tree.auth(owner), 200),
        "assessor": (school.assessor, 200),
        "approver": (school.approver, 200),
        "org_admin": (school.admin, 200),
        "commune assessor": (tree.auth(await tree.user(("assessor", commune))), 200),
        "colleague": (tree.auth(colleague), 403),
        "viewer": (tree.auth(await tree.user(("viewer", school.unit))), 403),
        "sibling assessor": (sibling.assessor, 404),
        "nobody": (tree.auth(await tree.user()), 404),
    }
    answers = {}
    for who, (h, _) in expected.items():
        r = await client.get(f"{API}/evidence/{piece['id']}/content", headers=h)
        answers[who] = r.status_code
        if r.status_code == 200:
            assert r.content == MINIMAL_PDF
            assert r.headers["x-content-type-options"] == "nosniff"
            assert "private" in r.headers["cache-control"]
    assert answers == {who: status for who, (_, status) in expected.items()}
    assert (await client.get(f"{API}/evidence/{piece['id']}/content")).status_code == 401


async def test_a_control_character_in_the_description_is_422(
    client: httpx.AsyncClient,
    tree: Tree,
    session: AsyncSession,
    criteria: dict[str | None, int],
    evidence_dir: Path,
) -> None:
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    r = await post_file(client, school.admin, ev, MINIMAL_PDF, description="Giấy\x00khen")
    assert r.status_code == 422
    assert files_on_disk(evidence_dir) == []
    r = await post_file(client, school.admin, ev, MINIMAL_PDF, description="Giấy khen\nnăm 2025")
    assert r.status_code == 201
    assert r.json()["description"] == "Giấy khen\nnăm 2025"


@pytest.mark.parametrize("failure", [RuntimeError("disk full"), ValueError("bad audit")])
async def test_a_request_failing_after_the_file_was_written_leaves_no_orphan(
    app: FastAPI,
    tree: Tree,
    session: AsyncSession,
    criteria: dict[str | None, int],
    evidence_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    failure: Exception,
) -> None:
    school = await make_school(tree)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        ev = await open_evaluation(client, tree, school)

        async def failing_log(*args: object, **kwargs: object) -> None:
            assert len(files_on_disk(evidence_dir)) == 1  # the file is written when the audit row is
            raise failure

        monkeypatch.setattr("app.evaluations.evidence.audit_step", failing_log)
        r = await post_file(client, school.admin, ev, MINIMAL_PDF)
        assert r.status_code == 500
        assert r.json()["error"]["code"] == "internal_error"
        assert files_on_disk(evidence_dir) == []
        assert await evidence_rows(session) == 0
        monkeypatch.undo()
        after = await get(client, school.admin, ev["id"])
        assert (after["version"], after["evidence"]) == (ev["version"], [])


async def test_several_files_in_one_step_are_all_checked_before_any_is_stored(
    client: httpx.AsyncClient,
    tree: Tree,
    session: AsyncSession,
    criteria: dict[str | None, int],
    evidence_dir: Path,
) -> None:
    """``evidence.upload_many`` (the demo attaches an evaluation's files in one step): an indicator of
    another set anywhere in the batch refuses the whole batch before a file is written; a good batch gets
    a row, a stored file and an audit row each, as single uploads do."""
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    org_admin = await tree.user(("org_admin", school.unit))
    subject = await load_subject(session, org_admin.id)
    assert subject is not None
    store = EvidenceStore(evidence_dir)
    indicators = [s["indicator_id"] for s in ev["scores"]]

    def batch(*indicator_ids: int) -> list[evidence.NewEvidence]:
        return [
            evidence.NewEvidence(i, UploadFile(io.BytesIO(MINIMAL_PDF), filename=f"mc-{n}.pdf"))
            for n, i in enumerate(indicator_ids)
        ]

    with pytest.raises(ValidationFailed) as refused:
        await evidence.upload_many(session, subject, store, LIMIT, ev["id"], batch(indicators[0], 10**6))
    assert refused.value.details == {"indicator_id": 10**6}
    assert files_on_disk(evidence_dir) == []
    assert await evidence_rows(session) == 0

    added = await evidence.upload_many(session, subject, store, LIMIT, ev["id"], batch(*indicators[:3]))
    await session.commit()
    assert [a.indicator_id for a in added] == indicators[:3]
    assert len(files_on_disk(evidence_dir)) == 3
    assert await evidence_rows(session) == 3
    history = await audit.history(session, "evaluation", ev["id"])
    assert [h.after["evidence_id"] for h in history if h.action == "evidence_added"] == [a.id for a in added]
