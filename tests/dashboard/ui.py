"""What a user does on the dashboard, and how it writes numbers: shared by the dashboard tests."""

from __future__ import annotations

from typing import Any

from tests.dashboard.conftest import DEMO_PASSWORD

# The words beside each status icon (frontend/src/i18n.ts).
STATUS_WORDS = {
    "vi": {"met": "Đạt", "behind": "Chưa đạt", "no_target": "Chưa có chỉ tiêu", "no_data": "Chưa có số liệu"},
    "en": {"met": "Met", "behind": "Behind", "no_target": "No target", "no_data": "No data"},
}


def number(value: float | None, lang: str = "vi") -> str:
    """As frontend/src/format.ts writes it: at most two decimals, no trailing zeros, the language's marks."""
    if value is None:
        return "—"
    thousands, decimal = (".", ",") if lang == "vi" else (",", ".")
    whole, _, fraction = f"{abs(value):.2f}".rstrip("0").rstrip(".").partition(".")
    text = f"{int(whole):,}".replace(",", thousands) + (decimal + fraction if fraction else "")
    return f"−{text}" if value < 0 and text != "0" else text


def pct(value: float | None, lang: str = "vi") -> str:
    return "—" if value is None else f"{number(value, lang)} %"


def gap(value: float | None, lang: str = "vi") -> str:
    if value is None:
        return "—"
    return f"+{number(value, lang)}" if value > 0 else number(value, lang)


def log_in(page: Any, username: str) -> None:
    page.goto("/dashboard/")
    page.get_by_label("Tên đăng nhập", exact=True).fill(username)
    page.get_by_label("Mật khẩu", exact=True).fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Đăng nhập", exact=True).click()
    wait_loaded(page)


def wait_loaded(page: Any, unit: int | None = None, year: int | None = None) -> None:
    """Until every section of the view (that unit and year, if given) has its answer."""
    selector = "body[data-loaded]"
    if unit is not None:
        selector = f"body[data-loaded*='unit={unit}&']"
    if year is not None:
        selector += f"[data-loaded*='year={year}']"
    page.wait_for_selector(selector, state="attached", timeout=30_000)


def pick_unit(page: Any, search: str, name: str) -> None:
    """Type in the unit picker and choose the option named ``name``."""
    box = page.locator("#unit-search")
    box.fill(search)
    page.get_by_role("option", name=name).click()


def row_cells(row: Any) -> dict[str, str]:
    """The cells of a table row by their ``data-col``."""
    cells = row.locator("[data-col]")
    return {
        cells.nth(i).get_attribute("data-col"): " ".join(cells.nth(i).inner_text().split())
        for i in range(cells.count())
    }


def assert_row_shows(row: Any, expected: dict[str, Any], lang: str = "vi") -> None:
    """A progress or breakdown row shows the API's numbers, and its status in words and as data."""
    cells = row_cells(row)
    where = expected.get("metric") or expected.get("name")
    assert cells["actual"] == pct(expected["actual"], lang), where
    assert cells["target"].startswith(pct(expected["target"], lang)), where
    assert cells["gap"] == gap(expected["gap"], lang), where
    assert STATUS_WORDS[lang][expected["status"]] in cells["status"], where
    assert row.locator("[data-col=status] .status").get_attribute("data-status") == expected["status"]
    counts = f"{number(expected['numerator'], lang)} / {number(expected['denominator'], lang)}"
    assert cells["counts"] == counts, where
