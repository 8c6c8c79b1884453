"""Issue #17: the dashboard, used as a district's education office would — in Chromium, on the demo.

Each test logs in through the page, so what it sees is what the API lets that login see; the numbers on
screen are compared with the API's own answers. A screenshot of each view is saved (conftest.py says where).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import openpyxl

from tests.clients.conftest import LiveServer
from tests.dashboard.conftest import Api
from tests.dashboard.ui import assert_row_shows, log_in, pct, pick_unit, row_cells, wait_loaded

# One `cdht serve` with the demo for the whole directory: one xdist worker runs these, one after another.

VIEWER = "quangngai.viewer"  # viewer of Tỉnh Quảng Ngãi, which took in Kon Tum's Huyện Kon Rẫy in 2025
# Huyện Kon Rẫy and its Xã Đăk Ruồng, in the last year before the reform.
DISTRICT, COMMUNE, YEAR = 9, 10, 2024
METRIC = "adults_recognised_pct"


def open_district(page: Any) -> None:
    """Log in as the viewer, choose 2024, then find the (since abolished) district in that year's tree."""
    log_in(page, VIEWER)
    page.get_by_label("Năm", exact=True).select_option(str(YEAR))
    wait_loaded(page, year=YEAR)
    pick_unit(page, "Kon Rẫy", "Huyện Kon Rẫy")
    wait_loaded(page, unit=DISTRICT, year=YEAR)


def test_a_viewer_picks_a_district_and_sees_the_apis_progress(page: Any, api: Api, screenshots: Path) -> None:
    open_district(page)
    assert page.locator("#unit-title").inner_text() == f"Huyện Kon Rẫy — {YEAR}"
    expected = api.get(VIEWER, "/aggregates/progress", org_unit_id=DISTRICT, year=YEAR)["metrics"]
    rows = page.locator("#progress-table tbody tr")
    assert rows.count() == len(expected)
    for i, metric in enumerate(expected):
        row = rows.nth(i)
        assert row.get_attribute("data-metric") == metric["metric"]
        assert_row_shows(row, metric)
    # Statuses never by colour alone: an icon and a word in every badge.
    for badge in page.locator("#progress-table .status").all():
        assert badge.locator(".status-icon").inner_text().strip()
        assert len(badge.inner_text().strip()) > 2
    page.screenshot(path=screenshots / "01-progress.png", full_page=True)
    page.locator("#progress").screenshot(path=screenshots / "02-progress-table.png")


def test_a_viewer_drills_down_into_a_commune_and_back_up(page: Any, api: Api, screenshots: Path) -> None:
    open_district(page)
    page.get_by_label("Chỉ số", exact=True).select_option(METRIC)
    wait_loaded(page, unit=DISTRICT, year=YEAR)
    page.wait_for_selector(f"body[data-loaded*='metric={METRIC}']", state="attached")

    children = api.get(VIEWER, "/aggregates/breakdown", org_unit_id=DISTRICT, year=YEAR, metric=METRIC)
    by_id = {str(row["org_unit_id"]): row for row in children["items"]}
    rows = page.locator("#breakdown-table tbody tr")
    shown = [rows.nth(i).get_attribute("data-unit") for i in range(rows.count())]
    assert sorted(shown) == sorted(by_id), "one row per child unit"
    for i, unit in enumerate(shown):
        assert_row_shows(rows.nth(i), by_id[unit])
    shares = [-1 if by_id[unit]["actual"] is None else by_id[unit]["actual"] for unit in shown]
    assert shares == sorted(shares, reverse=True), "the children, highest share first"
    assert page.locator("#breakdown-chart").is_visible()
    page.locator("#breakdown").screenshot(path=screenshots / "03-breakdown.png")
    page.locator("#trend").screenshot(path=screenshots / "04-trend.png")
    span = {"from_year": 2021, "to_year": 2030}
    trend = api.get(VIEWER, "/aggregates/trend", org_unit_id=DISTRICT, metric=METRIC, **span)
    page.locator("#trend summary").click()
    for item in trend["items"]:
        cells = row_cells(page.locator(f"#trend-table tr[data-year='{item['year']}']"))
        assert cells["actual"] == pct(item["actual"]) and cells["target"] == pct(item["target"]), item

    commune = by_id[str(COMMUNE)]
    page.locator("#breakdown-table").get_by_role("button", name=commune["name"]).click()
    wait_loaded(page, unit=COMMUNE, year=YEAR)
    assert page.locator("#unit-title").inner_text() == f"{commune['name']} — {YEAR}"
    expected = api.get(VIEWER, "/aggregates/progress", org_unit_id=COMMUNE, year=YEAR)["metrics"]
    for metric in expected:
        assert_row_shows(page.locator(f"#progress-table tr[data-metric='{metric['metric']}']"), metric)
    crumbs = page.get_by_role("navigation", name="Vị trí trong cây đơn vị")
    assert "Huyện Kon Rẫy" in crumbs.inner_text()
    page.locator("#reporting").screenshot(path=screenshots / "05-reporting.png")
    page.screenshot(path=screenshots / "06-commune.png", full_page=True)

    crumbs.get_by_role("link", name="Huyện Kon Rẫy").click()
    wait_loaded(page, unit=DISTRICT, year=YEAR)
    assert page.locator("#unit-title").inner_text() == f"Huyện Kon Rẫy — {YEAR}"


def test_the_page_speaks_vietnamese_then_english_on_request(page: Any, api: Api, screenshots: Path) -> None:
    open_district(page)
    titles = {m["code"]: m for m in api.get(VIEWER, "/metrics")}
    row = page.locator(f"#progress-table tr[data-metric='{METRIC}']")
    assert page.locator("html").get_attribute("lang") == "vi"
    assert page.locator("#progress-title").inner_text() == "Tiến độ các chỉ số"
    assert row_cells(row)["metric"] == titles[METRIC]["title_vi"]

    page.get_by_role("button", name="Switch to English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#progress-title").inner_text() == "Progress of the metrics"
    assert row_cells(row)["metric"] == titles[METRIC]["title"]
    progress = api.get(VIEWER, "/aggregates/progress", org_unit_id=DISTRICT, year=YEAR)["metrics"]
    for metric in progress:
        assert_row_shows(page.locator(f"#progress-table tr[data-metric='{metric['metric']}']"), metric, "en")
    page.screenshot(path=screenshots / "07-english.png", full_page=True)

    page.reload()  # the choice and the session outlive a reload
    wait_loaded(page, unit=DISTRICT, year=YEAR)
    assert page.locator("#progress-title").inner_text() == "Progress of the metrics"
    page.get_by_role("button", name="Chuyển sang tiếng Việt").click()
    assert page.locator("html").get_attribute("lang") == "vi"
    assert page.locator("#progress-title").inner_text() == "Tiến độ các chỉ số"


def download(page: Any, label: str) -> Any:
    with page.expect_download() as info:
        page.get_by_role("button", name=label).click()
    return info.value


def test_downloads_are_what_the_role_allows(page: Any, screenshots: Path, tmp_path: Path) -> None:
    open_district(page)
    report = download(page, "Báo cáo năm (XLSX)")
    assert report.suggested_filename.endswith(".xlsx")
    saved = tmp_path / report.suggested_filename
    report.save_as(saved)
    sheet = openpyxl.load_workbook(saved).active
    assert any("Huyện Kon Rẫy" in str(cell) for row in sheet.iter_rows(values_only=True) for cell in row)

    # A viewer sees no person-level data: the API refuses the evaluations export, the page says so.
    page.get_by_role("button", name="Danh sách đánh giá (CSV)").click()
    refused = page.locator("#downloads .download-status.refused")
    refused.wait_for()
    assert "không cho phép" in refused.inner_text()
    page.locator("#downloads").screenshot(path=screenshots / "08-downloads.png")


def test_an_org_admin_downloads_the_evaluations_export(page: Any) -> None:
    log_in(page, "konbraih.admin")
    page.get_by_label("Năm", exact=True).select_option("2025")
    wait_loaded(page, year=2025)
    export = download(page, "Danh sách đánh giá (CSV)")
    text = Path(export.path()).read_text(encoding="utf-8-sig")
    header = next(csv.reader(io.StringIO(text)))
    assert header[:2] == ["evaluation_id", "person_id"]
    assert len(text.splitlines()) > 1


def test_the_session_is_refreshed_in_the_background_and_revoked_at_logout(
    page: Any, demo_server: LiveServer
) -> None:
    log_in(page, VIEWER)
    key = "cdht.dashboard.session"
    first = page.evaluate(f"JSON.parse(sessionStorage.getItem('{key}'))")
    # An access token about to expire: the page rotates the refresh token before its next request.
    page.evaluate(
        f"sessionStorage.setItem('{key}', JSON.stringify({{...JSON.parse(sessionStorage.getItem('{key}')),"
        " expiresAt: Date.now() + 5000}))"
    )
    page.reload()
    wait_loaded(page)
    second = page.evaluate(f"JSON.parse(sessionStorage.getItem('{key}'))")
    assert second["refresh"] != first["refresh"] and second["access"] != first["access"]
    assert second["expiresAt"] > first["expiresAt"]

    page.get_by_role("button", name="Đăng xuất").click()
    page.get_by_text("Bạn đã đăng xuất.").wait_for()
    assert page.locator("#login-view").is_visible()
    assert page.evaluate(f"sessionStorage.getItem('{key}')") is None
    form = {"grant_type": "refresh_token", "refresh_token": second["refresh"]}
    r = httpx.post(f"{demo_server.base_url}/api/v1/auth/token", data=form, timeout=30)
    assert r.status_code in (400, 401) and r.json()["error"]["code"] == "invalid_grant", r.text


def test_a_wrong_password_is_said_in_words(page: Any, screenshots: Path) -> None:
    page.goto("/dashboard/")
    page.get_by_label("Tên đăng nhập", exact=True).fill(VIEWER)
    page.get_by_label("Mật khẩu", exact=True).fill("not-the-password")
    page.get_by_role("button", name="Đăng nhập", exact=True).click()
    page.get_by_text("Tên đăng nhập hoặc mật khẩu không đúng.").wait_for()
    page.screenshot(path=screenshots / "00-login.png")
