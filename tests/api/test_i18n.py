"""Vietnamese throughout with ``Accept-Language: vi`` (issue #13, item 5): the catalogue is complete,
negotiation follows q-values, and validation details, domain errors and import row problems come back
in Vietnamese (English otherwise), with ``Content-Language``."""

from __future__ import annotations

import re
import string
import typing
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from pydantic_core import PydanticKnownError, core_schema

from app.core import i18n
from app.core.config import Settings
from app.core.errors import CODE_MESSAGES, VALIDATION_MESSAGES, RateLimited, error_body
from app.main import create_app
from tests.api.test_bad_input import _setup, bad_bodies, endpoints
from tests.api.test_imports import csv_file, send
from tests.api.test_plans import _plan
from tests.builders import Tree, build_country

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1"
VI = {"Accept-Language": "vi"}
VIETNAMESE_LETTER = re.compile(r"[àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ]", re.I)


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def code_msgids() -> set[str]:
    """What ``make i18n`` extracts: every msgid the code translates."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)  # type: ignore[no-untyped-call]
    found = extract_from_dir(ROOT / "app", method_map, options_map)
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


def catalogue(path: Path, locale: str | None = None) -> dict[str, Any]:
    with path.open("rb") as po:
        return {m.id: m for m in read_po(po, locale=locale) if isinstance(m.id, str) and m.id}


# --- the catalogue ---------------------------------------------------------------------------------------


def test_every_msgid_of_the_code_has_its_vietnamese() -> None:
    used = code_msgids()
    vi = catalogue(i18n.catalogue_path("vi"), "vi")
    assert len(used) > 150
    assert sorted(used - vi.keys()) == [], "run `make i18n` and translate the new entries"
    assert sorted(vi.keys() - used) == [], "entries no code uses: run `make i18n`"
    for msgid in sorted(used):
        entry = vi[msgid]
        assert entry.string and not entry.fuzzy, msgid
        assert entry.string != msgid, ("left in English", msgid)
        assert VIETNAMESE_LETTER.search(entry.string), ("not Vietnamese", msgid, entry.string)
        assert placeholders(entry.string) == placeholders(msgid), ("placeholders", msgid, entry.string)
        assert i18n.has_translation(msgid, "vi"), msgid
    template = catalogue(ROOT / "app" / "locale" / "cdht.pot")
    assert template.keys() == used, "app/locale/cdht.pot is stale: run `make i18n`"


def test_the_catalogue_ships_with_the_package() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"locale/*/LC_MESSAGES/*.po"' in pyproject
    assert "babel>=" in pyproject


def _template(error_type: str) -> str:
    """pydantic's own message template for an error type (its ctx keys are the placeholders we may use)."""
    context: dict[str, Any] = {}
    for _ in range(8):
        try:
            return PydanticKnownError(error_type, context or None).message_template  # type: ignore[arg-type]
        except (KeyError, TypeError) as exc:  # "'key' required in context" / "… must be a String"
            key = str(exc).split("'")[1]
            context[key] = "x" if context.get(key) == 1 else 1
    raise AssertionError(error_type)


def test_validation_messages_are_keyed_by_pydantic_types_with_their_ctx() -> None:
    known = set(typing.get_args(core_schema.ErrorType))
    for error_type, msgid in VALIDATION_MESSAGES.items():
        if error_type == "body_invalid":  # ours: a form body the framework could not parse
            continue
        assert error_type in known, error_type
        assert placeholders(msgid) <= placeholders(_template(error_type)), error_type
        assert i18n.has_translation(msgid, "vi"), error_type
    for code, msgid in CODE_MESSAGES.items():
        assert i18n.has_translation(msgid, "vi"), code


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("vi", "vi"),
        ("VI-vn", "vi"),
        ("vi-VN,vi;q=0.9,en-US;q=0.8,en;q=0.7", "vi"),
        ("en-US,en;q=0.9,vi;q=0.8", "en"),
        ("en;q=0.5, vi-VN;q=0.8", "vi"),
        ("fr-FR, de", "en"),
        ("fr, vi;q=0.2", "vi"),
        ("vi;q=0", "en"),
        ("vi;q=0, *", "en"),
        ("*", "en"),
        ("de;q=1, *;q=0.5", "en"),
        ("vi;q=abc", "en"),  # a malformed range is ignored
        ("vi;q=2", "en"),
        ("en, vi", "en"),
        ("vi, en", "vi"),
        ("en;q=0.9, vi;q=0.9", "en"),  # equal weights: the first named
        (" vi ; q=0.8 , en ; q=0.7", "vi"),
    ],
)
def test_accept_language_is_negotiated_by_q_values(header: str | None, language: str) -> None:
    assert i18n.negotiate(header) == language


def test_messages_keep_their_values_in_either_language() -> None:
    msgid = "Code '{code}' appears again (first on row {row})."
    assert i18n.gettext(msgid, code="X-1", row=7) == "Code 'X-1' appears again (first on row 7)."
    with i18n.using("vi"):
        said = i18n.gettext(msgid, code="X-1", row=7)
        assert said == "Mã 'X-1' bị trùng (đã có ở dòng 7)."
        assert i18n.is_translated(said)
        assert RateLimited().message == "Quá nhiều yêu cầu; vui lòng thử lại sau."
        # A message not put into words for the client reads as its code's general message.
        body = error_body(None, "rate_limited", "Too many failed logins for this account.")
        assert body["error"]["message"] == "Quá nhiều yêu cầu; vui lòng thử lại sau."
    assert i18n.current() == "en"
    assert error_body(None, "rate_limited", "Too many.")["error"]["message"] == "Too many."


# --- over HTTP -------------------------------------------------------------------------------------------


async def test_validation_details_in_vietnamese(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    h = tree.auth(await tree.admin())
    body = {"name": "", "parent_id": c.district_a.id, "colour": "red", "kind": "planet"}
    en = await client.post(f"{API}/org-units", json=body, headers=h)
    vi = await client.post(f"{API}/org-units", json=body, headers={**h, "Accept-Language": "vi-VN,vi;q=0.9"})
    assert en.status_code == vi.status_code == 422
    assert "content-language" not in en.headers
    assert vi.headers["content-language"] == "vi"
    assert "accept-language" in vi.headers["vary"].lower() and "accept-language" in en.headers["vary"].lower()
    assert en.json()["error"]["message"] == "The request is not valid."
    assert vi.json()["error"]["message"] == "Dữ liệu gửi lên không hợp lệ."
    english = {d["type"]: d for d in en.json()["error"]["details"]}
    vietnamese = {d["type"]: d for d in vi.json()["error"]["details"]}
    assert {t: d["loc"] for t, d in english.items()} == {t: d["loc"] for t, d in vietnamese.items()}
    assert english["string_too_short"]["msg"] == "String should have at least 1 character"
    assert vietnamese["string_too_short"]["msg"] == "Chuỗi phải có ít nhất 1 ký tự"
    assert english["extra_forbidden"]["msg"] == "Extra inputs are not permitted"
    assert vietnamese["extra_forbidden"]["msg"] == "Không được phép gửi trường này"
    assert vietnamese["enum"]["msg"].startswith("Giá trị phải là 'nation', 'province'")
    assert vietnamese["enum"]["msg"].endswith("hoặc 'unit'")
    missing = await client.post(f"{API}/org-units", json={"kind": "unit"}, headers={**h, **VI})
    assert {d["msg"] for d in missing.json()["error"]["details"]} == {"Thiếu trường bắt buộc"}
    query = await client.get(f"{API}/people", params={"org_unit": 6}, headers={**h, **VI})
    assert query.json()["error"]["details"] == [
        {"loc": ["query", "org_unit"], "msg": "Không được phép gửi trường này", "type": "extra_forbidden"}
    ]
    broken = await client.post(
        f"{API}/org-units", content=b'{"name": ', headers={**h, **VI, "Content-Type": "application/json"}
    )
    assert broken.json()["error"]["details"][0]["msg"] == "Nội dung gửi lên không phải JSON hợp lệ"


async def test_no_english_reaches_a_vietnamese_client_on_malformed_bodies(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    c, ids, h = await _setup(tree)
    seen = 0
    for e in endpoints(c, ids):
        for label, body in bad_bodies(e)[:12]:
            r = await client.request(e.method, e.path, json=body, headers={**h, **VI})
            assert r.status_code == 422, label
            error = r.json()["error"]
            assert VIETNAMESE_LETTER.search(error["message"]), (label, error)
            for issue in error["details"] if isinstance(error["details"], list) else []:
                assert VIETNAMESE_LETTER.search(issue["msg"]), (e.path, label, issue)
                seen += 1
    assert seen > 50


async def test_domain_errors_in_vietnamese(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    admin = tree.auth(await tree.admin())
    district = tree.auth(await tree.user(("org_admin", c.district_a)))
    viewer = tree.auth(await tree.user(("viewer", c.district_a)))

    r = await client.get(f"{API}/me", headers=VI)
    assert (r.status_code, r.headers["www-authenticate"]) == (401, "Bearer")
    assert r.json()["error"]["message"] == "Chưa đăng nhập hoặc phiên đăng nhập đã hết hạn."

    r = await client.get(f"{API}/plans/999999", headers={**admin, **VI})
    assert (r.status_code, r.json()["error"]["message"]) == (404, "Không tìm thấy kế hoạch 999999.")
    r = await client.get(f"{API}/plans/999999", headers=admin)
    assert r.json()["error"]["message"] == "Plan 999999 not found."
    # A service whose own message is not in the catalogue: its code's general message, never English.
    r = await client.get(f"{API}/people/999999", headers={**admin, **VI})
    assert (r.status_code, r.json()["error"]["message"]) == (404, "Không tìm thấy.")

    r = await client.post(f"{API}/plans", json=_plan(c.district_a.id), headers={**viewer, **VI})
    assert (r.status_code, r.json()["error"]["message"]) == (
        403,
        "Bạn không có quyền thực hiện thao tác này.",
    )

    plan = (await client.post(f"{API}/plans", json=_plan(c.district_a.id), headers=district)).json()
    url = f"{API}/plans/{plan['id']}"
    assert (await client.patch(url, json={"title": "Mới", "version": 1}, headers=district)).status_code == 200
    r = await client.patch(url, json={"title": "Cũ", "version": 1}, headers={**district, **VI})
    assert r.status_code == 409 and r.json()["error"]["details"] == {"current_version": 2}
    assert (
        r.json()["error"]["message"] == "Dữ liệu đã được người khác thay đổi; vui lòng tải lại rồi thử lại."
    )

    twice = [{"metric": "trained_pct", "year": 2025, "value": v} for v in (90, 100)]
    r = await client.put(f"{url}/targets", json={"version": 2, "targets": twice}, headers={**district, **VI})
    assert r.status_code == 422
    assert r.json()["error"]["message"] == "Một số chỉ tiêu không hợp lệ; chưa có thay đổi nào được lưu."
    assert [(d["loc"], d["type"]) for d in r.json()["error"]["details"]] == [
        (["body", "targets", 1], "value_error")
    ]
    assert VIETNAMESE_LETTER.search(r.json()["error"]["details"][0]["msg"])


async def test_an_unexpected_error_is_answered_in_the_language_asked(settings: Settings) -> None:
    async def boom() -> None:
        raise RuntimeError("disk on fire")

    app = create_app(settings)  # its own app: the tests' shared one keeps its routes
    app.add_api_route("/boom-for-test", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.get("/boom-for-test", headers={"Accept-Language": "vi"})
    finally:
        await app.state.engine.dispose()
    assert r.status_code == 500
    assert r.json()["error"] == {"code": "internal_error", "message": "Lỗi hệ thống.", "details": None}
    assert r.headers["content-language"] == "vi"


async def test_import_row_problems_in_vietnamese(client: httpx.AsyncClient, tree: Tree) -> None:
    c = await build_country(tree)
    await tree.unit("Thôn Thượng", "village", c.commune_a, code="TH-THUONG")
    h = tree.auth(await tree.user(("org_admin", c.district_a)))
    rows = [
        ["Họ và tên", "Mã đơn vị", "Nhóm", "Năm sinh", "Số CCCD", "Giới tính"],
        ["Nguyễn Văn A", "TH-THUONG", "Người ngoài hành tinh", "1990", "001090000001", "Nam"],
        ["Nguyễn Văn B", "KHONG-CO", "Người dân", "3000", "123", "Nam"],
        ["", "TH-THUONG", "Người dân", "", "001090000001", "Nữ"],
    ]
    en = await send(client, h, "people", csv_file(rows), dry_run=True)
    vi = await send(client, {**h, "Accept-Language": "vi, en;q=0.5"}, "people", csv_file(rows), dry_run=True)
    assert vi.headers["content-language"] == "vi"
    english = {(e["row"], e["column"]): e["message"] for e in en.json()["errors"]}
    vietnamese = {(e["row"], e["column"]): e["message"] for e in vi.json()["errors"]}
    assert english.keys() == vietnamese.keys()
    assert english[(2, "group")] == "Unknown group; one of: resident, staff, student, worker."
    assert vietnamese == {
        (
            2,
            "group",
        ): "Nhóm đối tượng không hợp lệ; phải là một trong các giá trị: resident, staff, student, worker.",
        (3, "birth_year"): "Năm sinh phải là một năm từ 1900 đến 2100.",
        (3, "citizen_id"): "Số định danh phải gồm từ 9 đến 12 chữ số.",
        (4, "full_name"): "Tên không hợp lệ: Chuỗi phải có ít nhất 1 ký tự.",
    }
    unknown = [["Họ và tên", "Mã đơn vị", "Nhóm"], ["Nguyễn Văn B", "KHONG-CO", "Người dân"]]
    r = await send(client, {**h, **VI}, "people", csv_file(unknown))
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"row": 2, "column": "unit_code", "message": "Không tìm thấy đơn vị có mã 'KHONG-CO'."}
    ]
    r = await send(client, {**h, **VI}, "people", b"%PDF-1.4\n\x00\x01binary")
    assert (r.status_code, r.json()["error"]["message"]) == (415, "Tệp không phải CSV hoặc XLSX.")
