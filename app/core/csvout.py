"""The one CSV writer of the service: every CSV it emits (the annual report, the evaluations export, a
decision's people) goes through :func:`encode_rows`, so each has the same shape and the same protection.

- UTF-8 **with a BOM** at the start of a document (Excel then opens Vietnamese text correctly on
  double-click), comma-separated, CRLF line ends, quoting only where needed.
- Cells: ``None`` is empty, booleans are ``true``/``false``, numbers are written as numbers, and **text is
  neutralised** against formula injection (CSV injection, CWE-1236): text that a spreadsheet would run as
  a formula or command — starting with ``=``, ``+``, ``-``, ``@``, a tab, a carriage return or a line feed,
  or their full-width forms — gets a leading ``'``, so a unit named ``=HYPERLINK("http://…")`` or
  ``+cmd|' /C calc'!A0`` reads as the text it is. Numbers stay numbers (a negative gap is ``-3.5``, not
  ``'-3.5``), because they reach the writer as numbers, never as text.
- Streaming-friendly: :func:`encode_rows` turns any batch of rows into bytes on its own, so a generator
  yields the header (with the BOM) first and then one chunk per batch; :func:`document` does all at once.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from decimal import Decimal

BOM = "\ufeff"
# Leading characters that make a spreadsheet treat a cell as a formula or a DDE command (OWASP's list,
# with the line feed and the full-width forms some spreadsheet programs normalise to ASCII).
FORMULA_TRIGGERS = frozenset("=+-@\t\r\n＝＋－＠")
PREFIX = "'"

Cell = str | int | float | Decimal | bool | None


def neutralise(text: str) -> str:
    """``text`` as a spreadsheet will show it, never run it: a leading ``'`` before a formula trigger."""
    if text and text[0] in FORMULA_TRIGGERS:
        return PREFIX + text
    return text


def cell(value: Cell) -> str | int | float:
    """One cell as the CSV module should write it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        return str(value)
    return neutralise(str(value))


def encode_rows(rows: Iterable[Iterable[Cell]], *, bom: bool = False) -> bytes:
    """``rows`` as CSV bytes (UTF-8, CRLF); ``bom`` for the first chunk of a document."""
    out = io.StringIO()
    if bom:
        out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return out.getvalue().encode("utf-8")


def document(header: Iterable[str], rows: Iterable[Iterable[Cell]]) -> bytes:
    """A whole CSV document: the BOM, the header row, then ``rows``."""
    return encode_rows([list(header)], bom=True) + encode_rows(rows)


async def stream(
    header: Iterable[str], batches: AsyncIterable[Iterable[Iterable[Cell]]]
) -> AsyncIterator[bytes]:
    """A CSV document as chunks: the BOM and the header first (so the response starts at once), then one
    chunk per batch of rows."""
    yield encode_rows([list(header)], bom=True)
    async for batch in batches:
        chunk = encode_rows(batch)
        if chunk:
            yield chunk
