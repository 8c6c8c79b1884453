"""Issue 14: upload bombs. Evidence (ODT, DOCX, XLSX) and XLSX imports whose parts inflate to a gigabyte are
refused from the ZIP directory before anything inflates; a directory that lies is caught at the first chunk
past what it declares; an XLSX import is bounded in rows, columns, cell length, shared strings, empty rows
and parse time; a DTD is 415; real documents and workbooks still go through; an evidence file's name
carries the extension of what it holds.

The bombs are built here at run time (about 1 MB each, up to 1 GB inflated). "Fast and small" is asserted
deterministically — the Python heap's peak during the request (tracemalloc) and the bytes zlib actually
inflated — never as wall time.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import openpyxl  # type: ignore[import-untyped]
import pytest
import xlsxwriter  # type: ignore[import-untyped]
from fastapi import FastAPI

from app.core import zipsafe
from app.core.errors import PayloadTooLarge
from app.core.zipsafe import ArchiveTooLarge, DamagedEntry, SafeZip, UnreadableArchive, ZipLimits
from app.imports import xlsx, xlsx_limits
from tests.api.evaluation_flow import API, make_school, open_evaluation
from tests.builders import MINIMAL_PDF, Tree, build_country

pytestmark = pytest.mark.anyio

MIB, GIB = 1024**2, 1024**3
HEAP_LIMIT = 32 * MIB  # the peak of the Python heap during one refused upload (the old code: 2 GB and more)
INFLATE_LIMIT = MIB  # bytes zlib may inflate while refusing a bomb (the old code: the whole gigabyte)
ODT = "application/vnd.oasis.opendocument.text"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
SHEET_NS = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


# ------------------------------------------------------------------------------------- building archives


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    payload: bytes  # as stored in the archive
    method: int  # 0 stored, 8 deflated
    crc: int
    size: int  # what the payload really inflates to
    declared: int | None = None  # what the headers claim (default: the truth)
    flags: int = 0
    same_offset_as: int | None = None  # the index of an earlier entry whose local header this one reuses


def stored(name: str, data: bytes) -> Entry:
    return Entry(name, data, 0, zlib.crc32(data), len(data))


def deflated(name: str, data: bytes) -> Entry:
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return Entry(name, packer.compress(data) + packer.flush(), 8, zlib.crc32(data), len(data))


@functools.cache
def inflating(name: str, prefix: bytes, unit: bytes, mebibytes: int, suffix: bytes) -> Entry:
    """``prefix``, then ``unit`` repeated for about ``mebibytes`` MiB, then ``suffix``, as one deflate
    stream built from a single compressed block repeated (a full flush makes the copies independent)."""
    chunk = unit * (MIB // len(unit))
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = packer.compress(prefix) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    tail = packer.compress(suffix) + packer.flush()
    crc = zlib.crc32(prefix)
    for _ in range(mebibytes):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(suffix, crc)
    size = len(prefix) + mebibytes * len(chunk) + len(suffix)
    return Entry(name, head + block * mebibytes + tail, 8, crc, size)


def archive(*entries: Entry) -> bytes:
    """A ZIP file written by hand, so that its headers can say what we like."""
    out, directory = bytearray(), bytearray()
    offsets: list[int] = []
    for e in entries:
        name, declared = e.name.encode(), e.size if e.declared is None else e.declared
        offsets.append(len(out) if e.same_offset_as is None else offsets[e.same_offset_as])
        header = (
            b"PK\x03\x04",
            20,
            e.flags,
            e.method,
            0,
            0x21,
            e.crc,
            len(e.payload),
            declared,
            len(name),
            0,
        )
        if e.same_offset_as is None:
            out += struct.pack("<4s5H3L2H", *header) + name + e.payload
        fields = (e.flags, e.method, 0, 0x21, e.crc, len(e.payload), declared, len(name), 0, 0, 0, 0, 0)
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, *fields, offsets[-1]) + name
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(directory), len(out), 0
    )
    return bytes(out + directory + end)


def docx_parts(document: Entry | None = None, main_type: str = DOCX_MAIN) -> list[Entry]:
    types = (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/'
        '2006/content-types"><Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/word/document.xml" ContentType="{main_type}"/></Types>'
    )
    body = b'<?xml version="1.0"?><w:document xmlns:w="urn:w"><w:body/></w:document>'
    return [deflated("[Content_Types].xml", types.encode()), document or deflated("word/document.xml", body)]


def odt_parts(mimetype: Entry | None = None, first: bool = True) -> list[Entry]:
    parts = [
        mimetype or stored("mimetype", ODT.encode()),
        deflated("content.xml", b"<office:document-content/>"),
    ]
    return parts if first else parts[::-1]


def workbook(sheet: Entry | bytes, shared: Entry | bytes | None = None) -> bytes:
    """A minimal XLSX: a first worksheet (``sheet``: its <sheetData> content, or the whole entry) and
    optionally a shared-string table."""
    main = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    types = (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{main}.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{main}.worksheet+xml"/>'
        + (
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{main}.sharedStrings+xml"/>'
            if shared
            else ""
        )
        + "</Types>"
    ).encode()
    root = f'<Relationships xmlns="x"><Relationship Id="r1" Type="{REL}/officeDocument" '
    root += 'Target="xl/workbook.xml"/>'
    book = (
        f'<workbook {SHEET_NS.decode()} xmlns:r="{REL}"><sheets><sheet name="S" sheetId="1" r:id="r1"/>'
        "</sheets></workbook>"
    )
    rels = (
        f'<Relationships xmlns="x"><Relationship Id="r1" Type="{REL}/worksheet" '
        'Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="r2" Type="{REL}/sharedStrings" Target="/xl/sharedStrings.xml"/></Relationships>'
    )
    if isinstance(sheet, bytes):
        sheet = deflated(
            "xl/worksheets/sheet1.xml",
            b"<worksheet %s><sheetData>%s</sheetData></worksheet>" % (SHEET_NS, sheet),
        )
    entries = [
        deflated("[Content_Types].xml", types),
        deflated("_rels/.rels", (root + "</Relationships>").encode()),
        deflated("xl/workbook.xml", book.encode()),
        deflated("xl/_rels/workbook.xml.rels", rels.encode()),
        sheet,
    ]
    if shared is not None:
        entries.append(shared if isinstance(shared, Entry) else deflated("xl/sharedStrings.xml", shared))
    return archive(*entries)


def row(number: int, *values: str) -> bytes:
    cells = "".join(f'<c t="inlineStr"><is><t>{v}</t></is></c>' for v in values)
    return f'<row r="{number}">{cells}</row>'.encode()


PEOPLE_HEADER = row(1, "full_name", "unit_code", "group")


# -------------------------------------------------------------------------------------------- measuring


@dataclasses.dataclass
class Meter:
    inflated: int = 0  # bytes out of zlib (zipfile's and ours alike)
    heap_peak: int = 0  # bytes above the heap at the start


@contextmanager
def measured(monkeypatch: pytest.MonkeyPatch) -> Iterator[Meter]:
    meter, real = Meter(), zlib.decompressobj

    class Counting:
        def __init__(self, *args: Any) -> None:
            self._inner = real(*args)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            out = self._inner.decompress(data, max_length)
            meter.inflated += len(out)
            return out

        def flush(self, *args: Any) -> bytes:
            out = self._inner.flush(*args)
            meter.inflated += len(out)
            return out

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    monkeypatch.setattr(zlib, "decompressobj", Counting)
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        yield meter
    finally:
        meter.heap_peak = tracemalloc.get_traced_memory()[1] - base
        if started:
            tracemalloc.stop()
        monkeypatch.setattr(zlib, "decompressobj", real)


def assert_cheap(meter: Meter) -> None:
    assert meter.inflated < INFLATE_LIMIT, f"inflated {meter.inflated:,} bytes to refuse it"
    assert meter.heap_peak < HEAP_LIMIT, f"the heap peaked {meter.heap_peak / MIB:.1f} MB above its start"


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


async def post_evidence(
    client: httpx.AsyncClient, h: dict[str, str], ev: dict[str, Any], content: bytes, name: str
) -> httpx.Response:
    return await client.post(
        f"{API}/evaluations/{ev['id']}/evidence",
        data={"indicator_id": str(ev["scores"][0]["indicator_id"])},
        files={"file": (name, content, "application/octet-stream")},
        headers=h,
    )


async def post_import(client: httpx.AsyncClient, h: dict[str, str], content: bytes) -> httpx.Response:
    return await client.post(
        f"{API}/imports/people",
        params={"dry_run": "false"},
        files={"file": ("people.xlsx", content, "application/octet-stream")},
        headers=h,
    )


async def importer(tree: Tree) -> dict[str, str]:
    country = await build_country(tree)
    await tree.unit("Trường Kon Rẫy", "school", country.commune_a, code="KR-1")
    return tree.auth(await tree.user(("org_admin", country.district_a)))


# ----------------------------------------------------------------------------------------------- evidence

FILLER = b" " * 64


def evidence_bomb(kind: str) -> tuple[str, str, list[Entry]]:
    """(file name, the part that inflates to 1 GB, the entries)."""
    if kind == "odt":  # ODF's mimetype entry inflating to 1 GB: the attack of issue 14
        return "bomb.odt", "mimetype", odt_parts(inflating("mimetype", ODT.encode(), FILLER, 1024, b""))
    if kind == "docx":
        part = inflating("word/document.xml", b"<w:document>", FILLER, 1024, b"</w:document>")
        return "bomb.docx", part.name, docx_parts(part)
    part = inflating("xl/workbook.xml", b"<workbook>", FILLER, 1024, b"</workbook>")
    return "bomb.xlsx", part.name, [deflated("[Content_Types].xml", b"<Types/>"), part]


@pytest.mark.parametrize("kind", ["odt", "docx", "xlsx"])
async def test_an_evidence_zip_bomb_is_413_before_anything_inflates(
    client: httpx.AsyncClient,
    app: FastAPI,
    tree: Tree,
    criteria: dict[str | None, int],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    name, part, entries = evidence_bomb(kind)
    content = archive(*entries)
    assert len(content) < 2 * MIB and max(e.size for e in entries) >= GIB
    on_disk = files(app.state.settings.effective_evidence_dir)
    with measured(monkeypatch) as meter:
        r = await post_evidence(client, school.admin, ev, content, name)
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert error["code"] == "payload_too_large"
    assert part in error["message"] and "1 GB" in error["message"]
    assert error["details"]["entry"] == part
    assert_cheap(meter)
    assert files(app.state.settings.effective_evidence_dir) == on_disk


async def test_an_entry_that_inflates_past_what_its_directory_declares_is_stopped_there(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    honest = inflating("mimetype", ODT.encode(), FILLER, 1024, b"")
    lying = dataclasses.replace(honest, declared=len(ODT))  # "39 bytes", and the ratio check sees nothing
    with measured(monkeypatch) as meter:
        r = await post_evidence(client, school.admin, ev, archive(*odt_parts(lying)), "bomb.odt")
    assert r.status_code == 413, r.text
    assert "inflates past the 39 bytes it declares" in r.json()["error"]["message"]
    assert_cheap(meter)


def real_xlsx() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Giấy khen", date(2025, 5, 1)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_real_documents_are_accepted_and_named_for_what_they_hold(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    cases = [
        ("giay-khen.docx", archive(*docx_parts()), DOCX, "giay-khen.docx"),
        ("bang-diem.xlsx", real_xlsx(), XLSX, "bang-diem.xlsx"),
        ("bao-cao.odt", archive(*odt_parts()), ODT, "bao-cao.odt"),
        ("bao-cao.docx", archive(*odt_parts()), ODT, "bao-cao.odt"),  # the content decides
        ("anh-chup.pdf", png, "image/png", "anh-chup.png"),
        ("scan", MINIMAL_PDF, "application/pdf", "scan.pdf"),
        ("ANH.JPEG", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20, "image/jpeg", "ANH.JPEG"),
        ("nam.2025", MINIMAL_PDF, "application/pdf", "nam.2025.pdf"),
    ]
    for sent, content, content_type, kept in cases:
        r = await post_evidence(client, school.admin, ev, content, sent)
        assert r.status_code == 201, (sent, r.text)
        assert (r.json()["content_type"], r.json()["filename"]) == (content_type, kept), sent
        download = await client.get(f"{API}/evidence/{r.json()['id']}/content", headers=school.admin)
        assert download.headers["content-type"].split(";")[0] == content_type
        assert kept in download.headers["content-disposition"], sent
        assert download.content == content


async def test_a_zip_that_only_looks_like_a_document_is_415(
    client: httpx.AsyncClient, tree: Tree, criteria: dict[str | None, int]
) -> None:
    school = await make_school(tree)
    ev = await open_evaluation(client, tree, school)
    doctype = b'<?xml version="1.0"?><!DOCTYPE Types [<!ENTITY a "aaaaaaaaaa">]><Types>&a;</Types>'
    body = deflated("word/document.xml", b"<?xml version='1.0'?><w:document/>")
    fakes = {
        "macro-enabled (.docm)": archive(
            *docx_parts(main_type="application/vnd.ms-word.document.macroEnabled.main+xml")
        ),
        "main part not XML": archive(*docx_parts(stored("word/document.xml", b"MZ\x90\x00 not xml"))),
        "content types with a DTD": archive(deflated("[Content_Types].xml", doctype), body),
        "content types not a Types": archive(deflated("[Content_Types].xml", b"<html/>"), body),
        "odt mimetype not first": archive(*odt_parts(first=False)),
        "odt without content.xml": archive(stored("mimetype", ODT.encode())),
        "encrypted entry": archive(*[dataclasses.replace(e, flags=1) for e in docx_parts()]),
        "bzip2 entry": archive(*[dataclasses.replace(e, method=12) for e in docx_parts()]),
        "two names, one entry": archive(
            *docx_parts(), dataclasses.replace(body, name="x.xml", same_offset_as=1)
        ),
        "checksum wrong": archive(*odt_parts(dataclasses.replace(stored("mimetype", ODT.encode()), crc=1))),
    }
    for label, content in fakes.items():
        r = await post_evidence(client, school.admin, ev, content, "tai-lieu.docx")
        assert r.status_code == 415, (label, r.text)
        assert r.json()["error"]["code"] == "unsupported_media_type", label


# ------------------------------------------------------------------------------------------------ imports


def import_bomb(kind: str) -> tuple[str, bytes]:
    """(the part that inflates, the workbook)."""
    if kind == "shared string":  # one shared string of 1 GB (2.2 GB of memory before)
        table = inflating(
            "xl/sharedStrings.xml", b"<sst %s><si><t>" % SHEET_NS, b"A" * 64, 1024, b"</t></si></sst>"
        )
        return table.name, workbook(PEOPLE_HEADER, table)
    # half a gigabyte of empty <row/> elements in half a megabyte (455 s of CPU before)
    start, end = b"<worksheet %s><sheetData>" % SHEET_NS, b"</sheetData></worksheet>"
    sheet = inflating("xl/worksheets/sheet1.xml", start, b"<row/>", 512, end)
    return sheet.name, workbook(sheet)


@pytest.mark.parametrize("kind", ["shared string", "empty rows"])
async def test_an_xlsx_import_bomb_is_413_before_anything_inflates(
    client: httpx.AsyncClient, tree: Tree, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    h = await importer(tree)
    part, content = import_bomb(kind)
    assert len(content) < 2 * MIB
    before = await tree.snapshot()
    with measured(monkeypatch) as meter:
        r = await post_import(client, h, content)
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert error["code"] == "payload_too_large" and error["details"]["entry"] == part
    assert "times over" in error["message"] or "inflates to" in error["message"]
    assert_cheap(meter)
    assert await tree.snapshot() == before


async def test_a_workbook_whose_sheet_lies_about_its_size_is_stopped_at_the_first_chunk(
    client: httpx.AsyncClient, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await importer(tree)
    sheet = inflating(
        "xl/worksheets/sheet1.xml", b"<worksheet %s><sheetData>" % SHEET_NS, b"<row/>", 512, b""
    )
    with measured(monkeypatch) as meter:
        r = await post_import(client, h, workbook(dataclasses.replace(sheet, declared=4096)))
    assert r.status_code == 413, r.text
    assert "inflates past the 4 KB it declares" in r.json()["error"]["message"]
    assert_cheap(meter)


@pytest.mark.parametrize("where", ["sheet", "shared strings", "workbook rels", "external entity"])
async def test_an_xlsx_with_a_dtd_is_415(client: httpx.AsyncClient, tree: Tree, where: str) -> None:
    h = await importer(tree)
    laughs = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    if where == "external entity":  # answered 500 before
        outside = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        content = workbook(PEOPLE_HEADER, outside + b"<sst><si><t>&e;</t></si></sst>")
    elif where == "sheet":
        content = workbook(
            deflated("xl/worksheets/sheet1.xml", laughs + b"<worksheet><sheetData/></worksheet>")
        )
    elif where == "shared strings":
        content = workbook(PEOPLE_HEADER, laughs + b"<sst><si><t>&b;</t></si></sst>")
    else:
        entries = [e for e in parts_of(workbook(PEOPLE_HEADER)) if e.name != "xl/_rels/workbook.xml.rels"]
        content = archive(*entries, deflated("xl/_rels/workbook.xml.rels", laughs + b"<Relationships/>"))
    r = await post_import(client, h, content)
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"
    assert "DTD" in r.json()["error"]["message"]


def parts_of(content: bytes) -> list[Entry]:
    """The entries of a workbook built by :func:`workbook`, to rebuild it with one part changed."""
    with zipfile.ZipFile(io.BytesIO(content)) as z:
        return [deflated(i.filename, z.read(i)) for i in z.infolist()]


# Each limit, lowered so that a small honest workbook reaches it (the defaults are Excel's own or above).
LIMITS = {
    "rows": ("MAX_ROWS", 50, PEOPLE_HEADER + row(51, "A", "KR-1", "staff")),
    "columns": ("MAX_COLUMNS", 5, PEOPLE_HEADER + row(2, "A", "KR-1", "staff", "", "", "extra")),
    "empty_rows": ("MAX_EMPTY_ROWS", 10, PEOPLE_HEADER + b"<row/>" * 11 + row(13, "A", "KR-1", "staff")),
    "cell_characters": ("MAX_CELL_CHARS", 100, PEOPLE_HEADER + row(2, "A" * 101, "KR-1", "staff")),
    "parse_seconds": ("MAX_PARSE_SECONDS", -1.0, PEOPLE_HEADER),
}


@pytest.mark.parametrize("limit", list(LIMITS))
async def test_each_xlsx_limit_is_413_naming_it(
    client: httpx.AsyncClient, tree: Tree, monkeypatch: pytest.MonkeyPatch, limit: str
) -> None:
    h = await importer(tree)
    constant, value, sheet = LIMITS[limit]
    before = await tree.snapshot()
    monkeypatch.setattr(xlsx_limits, constant, value)
    r = await post_import(client, h, workbook(sheet))
    assert r.status_code == 413, r.text
    assert r.json()["error"]["details"]["limit"] == limit
    assert await tree.snapshot() == before


async def test_the_default_limits_stop_an_honest_looking_row_flood(
    client: httpx.AsyncClient, tree: Tree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ratio trick: 150,000 numbered empty rows compress only ~20 times; the empty-row cap stops them."""
    h = await importer(tree)
    flood = b"".join(b'<row r="%d" spans="1:3"/>' % n for n in range(2, 150_002))
    content = workbook(PEOPLE_HEADER + flood + row(150_002, "A", "KR-1", "staff"))
    with measured(monkeypatch) as meter:
        r = await post_import(client, h, content)
    assert r.status_code == 413, r.text
    assert r.json()["error"]["details"]["limit"] == "empty_rows"
    assert meter.heap_peak < HEAP_LIMIT


def test_the_shared_string_table_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsx_limits, "MAX_SHARED_BYTES", 1000)
    table = b"<sst>" + b"<si><t>%s</t></si>" % (b"x" * 600) * 2 + b"</sst>"
    with pytest.raises(PayloadTooLarge) as refused:
        list(xlsx.xlsx_records(io.BytesIO(workbook(PEOPLE_HEADER, table))))
    assert refused.value.details["limit"] == "shared_strings"


async def test_real_workbooks_still_import(client: httpx.AsyncClient, tree: Tree) -> None:
    """Shared strings, rich text, a styled empty region and a gap, as Excel-like writers make them."""
    h = await importer(tree)
    for constant_memory in (False, True):  # shared strings / inline strings
        out = io.BytesIO()
        book = xlsxwriter.Workbook(out, {"constant_memory": constant_memory})
        sheet = book.add_worksheet()
        bold = book.add_format({"bold": True, "border": 1})
        sheet.write_row(0, 0, ["Họ và tên", "Mã đơn vị", "Nhóm", "Năm sinh", "Số CCCD"])
        sheet.write_rich_string(1, 0, "Nguyễn ", bold, "Văn", " An")
        sheet.write_row(1, 1, ["KR-1", "staff", 1990, f"00109000{int(constant_memory)}001"])
        sheet.write_row(2, 0, ["Trần Thị Bình", "KR-1", "staff", 1991, f"00109100{int(constant_memory)}002"])
        for empty in range(3, 40):
            sheet.write_blank(empty, 0, None, bold)
        sheet.write_row(500, 0, ["Lê Văn Cường", "KR-1", "staff", 1992, f"00109200{int(constant_memory)}003"])
        book.close()
        r = await post_import(client, h, out.getvalue())
        assert r.status_code == 200, r.text
        assert (r.json()["created"], r.json()["errors"]) == (3, [])


# ------------------------------------------------------------------------------------------------ zipsafe


def test_the_directory_is_bounded_before_zipfile_reads_it() -> None:
    many = archive(*(stored(f"{n}.xml", b"<a/>") for n in range(20)))
    with pytest.raises(ArchiveTooLarge) as refused:
        SafeZip(io.BytesIO(many), ZipLimits(max_entries=10, max_entry_bytes=MIB, max_total_bytes=MIB), "It")
    assert refused.value.details["limit"] == "entries"
    with pytest.raises(ArchiveTooLarge) as refused:
        SafeZip(io.BytesIO(many), ZipLimits(max_entries=99, max_entry_bytes=MIB, max_total_bytes=50), "It")
    assert refused.value.details["limit"] == "total_bytes"
    with pytest.raises(ArchiveTooLarge) as refused:  # stored: a ratio of 1, but too big all the same
        SafeZip(io.BytesIO(archive(stored("big.xml", b" " * 4096))), ZipLimits(9, 4000, MIB), "It")
    assert refused.value.details == {"limit": "entry_bytes", "max": 4000, "entry": "big.xml"}
    with pytest.raises(UnreadableArchive):
        SafeZip(io.BytesIO(b"PK\x03\x04" + b"\x00" * 100), ZipLimits(9, MIB, MIB), "It")


@pytest.mark.parametrize(
    ("constant", "value", "xml", "limit"),
    [
        ("MAX_DEPTH", 8, b"<a>" * 9 + b"</a>" * 9, "xml_depth"),
        ("MAX_TOKEN_BYTES", 1024, b"<a><!--" + b"x" * 200_000 + b"--></a>", "xml_token_bytes"),
        ("MAX_TOKEN_BYTES", 1024, b'<a b="' + b"y" * 200_000 + b'"/>', "xml_token_bytes"),
    ],
)
def test_xml_parts_are_bounded_in_depth_and_in_the_size_of_one_tag(
    monkeypatch: pytest.MonkeyPatch, constant: str, value: int, xml: bytes, limit: str
) -> None:
    monkeypatch.setattr(zipsafe, constant, value)
    content = io.BytesIO(archive(deflated("p.xml", xml)))
    with SafeZip(content, ZipLimits(9, MIB, MIB), "It") as z, pytest.raises(ArchiveTooLarge) as refused:
        list(zipsafe.parse_xml(z, "p.xml"))
    assert refused.value.details["limit"] == limit


def test_damaged_entries_are_told_apart_from_bombs() -> None:
    cut = deflated("p.xml", b"<a>" + b"x" * 10_000 + b"</a>")
    cases = [
        dataclasses.replace(cut, payload=cut.payload[: len(cut.payload) // 2]),  # the stream breaks off
        dataclasses.replace(cut, crc=cut.crc ^ 1),  # the checksum is wrong
        dataclasses.replace(cut, declared=cut.size + 1),  # the data is shorter than declared
        deflated("p.xml", b"<a><b></a>"),  # not well-formed
    ]
    for entry in cases:
        content = io.BytesIO(archive(entry))
        with SafeZip(content, ZipLimits(9, MIB, MIB), "It") as z, pytest.raises(DamagedEntry):
            list(zipsafe.parse_xml(z, "p.xml"))
