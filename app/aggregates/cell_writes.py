"""How the counters' statements write ``aggregate_counts`` (the cells ``counters.py`` keeps): one upsert that
adds the summed rows of a change to the cells it touches, in key order (concurrent writers queue on the
ancestors' rows rather than deadlock), noting the (unit, year) pairs it wrote so that their versions move
at commit (``versions.py``). The hot write paths' statements are built once per dialect and sign
(:func:`apply_built`); large changes go in chunks of :data:`CHUNK` subjects."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import BindParameter, Select, bindparam, func, literal, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.aggregates import versions
from app.aggregates.models import AggregateCount

COLUMNS = ["org_unit_id", "year", "kind", "grp", "level", "born", "n"]
KEYS = COLUMNS[:-1]
CHUNK = 5000  # subjects per statement: well under the drivers' bound-parameter limits


def upsert(session: AsyncSession, rows: Select[Any], *, follow: bool = True) -> Any:
    """``rows`` added to the cells; with ``follow``, the statement returns the (unit, year) pairs it
    wrote, for :func:`write` to note in ``versions``."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(AggregateCount).from_select(COLUMNS, rows)
    stmt = stmt.on_conflict_do_update(index_elements=KEYS, set_={"n": AggregateCount.n + stmt.excluded.n})
    return stmt.returning(AggregateCount.org_unit_id, AggregateCount.year) if follow else stmt


async def write(
    session: AsyncSession, stmt: Any, params: dict[str, Any] | None = None, *, follow: bool = True
) -> None:
    """Run a statement of :func:`upsert` and, with ``follow``, note the (unit, year) pairs it returns
    (their versions move at commit)."""
    if params is None:
        result = await session.execute(stmt)
    else:
        # On the connection: the session would read a parameter dictionary as the rows of a bulk insert.
        result = await (await session.connection()).execute(stmt, params)
    if follow:
        versions.touched(session, result.all())


def statement(
    session: AsyncSession, parts: Sequence[list[Select[Any]]], sign: int, *, follow: bool = True
) -> Any:
    """One upsert adding ``sign`` times the rows of every select in ``parts``, summed per cell."""
    selects = [part for group in parts for part in group]
    rows = union_all(*selects).subquery("cells")
    keys = (rows.c.unit, rows.c.year, rows.c.kind, rows.c.grp, rows.c.level, rows.c.born)
    grouped = select(*keys, func.sum(rows.c.n) * sign).where(literal(True)).group_by(*keys).order_by(*keys)
    return upsert(session, grouped, follow=follow)


async def apply_rows(
    session: AsyncSession, parts: Sequence[list[Select[Any]]], sign: int, *, follow: bool = True
) -> None:
    """Add (``sign`` +1) or remove (−1) the cell rows of ``parts`` (nothing to do when they are empty)."""
    if any(parts):
        await write(session, statement(session, parts, sign, follow=follow), follow=follow)


# The statements of the hot write paths (a decision, a collective's recognition), built once per dialect
# and sign with the ids as an expanding parameter: building these unions costs more than running them.
IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
_BUILT: dict[tuple[str, str, int], Any] = {}


async def apply_built(
    session: AsyncSession,
    name: str,
    build: Callable[[], Sequence[list[Select[Any]]]],
    sign: int,
    ids: Sequence[int],
) -> None:
    """:func:`apply_rows` of the parts ``build`` makes (naming :data:`IDS`), built once under ``name``."""
    key = (session.get_bind().dialect.name, name, sign)
    if key not in _BUILT:
        _BUILT[key] = statement(session, build(), sign)
    await write(session, _BUILT[key], {"ids": list(ids)})


def chunks(ids: Sequence[int]) -> list[list[int]]:
    """``ids`` sorted, without repeats, in lists of at most :data:`CHUNK`."""
    everyone = sorted(set(ids))
    return [everyone[start : start + CHUNK] for start in range(0, len(everyone), CHUNK)]
