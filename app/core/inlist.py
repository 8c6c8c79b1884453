"""``column IN (a list given at execution)`` for statements built once: one array parameter on PostgreSQL.

SQLAlchemy binds a list for ``IN`` as an *expanding* parameter: at every execution it rewrites the cached
SQL, one placeholder (with its cast) per value, by regular expression over the whole statement. On the
statements the hot reads run on every request (the scope checks, the dashboards' counters and plans, a
page's history) that rewriting cost more Python than building the statement did (``bench/RESULTS.md``,
"Lists bound as arrays"), and each length of list made another prepared statement for PostgreSQL.

:func:`in_list` renders ``column = ANY($1::INTEGER[])`` on PostgreSQL instead: one parameter whatever the
length, SQL that never changes, and the same index scan as ``IN``. Other databases (SQLite) keep the
expanding ``IN``. The list is always given at execution, by name (``session.execute(stmt, {name: [...]})``);
an empty list matches nothing on both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause
from sqlalchemy.sql.type_api import TypeEngine
from sqlalchemy.sql.visitors import InternalTraversal, _TraverseInternalsType


class InList(ColumnElement[bool]):
    """``column`` is one of the list bound as ``name`` (:func:`in_list`)."""

    __visit_name__ = "cdht_in_list"
    inherit_cache = True
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012 (SQLAlchemy's own declaration)
        ("column", InternalTraversal.dp_clauseelement),
        ("name", InternalTraversal.dp_string),
    ]
    type = Boolean()
    _is_implicitly_boolean = True  # a predicate: SQLite gets no "= 1" after it in a WHERE

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.name = name

    def item_type(self) -> TypeEngine[Any]:
        return self.column.type

    @property
    def _from_objects(self) -> list[FromClause]:
        return self.column._from_objects  # the column's table: a SELECT of nothing else has its FROM


def in_list(column: Any, name: str) -> ColumnElement[bool]:
    """``column IN (:name)``, the list bound at execution as ``name`` (its items of ``column``'s type)."""
    element = column.__clause_element__() if hasattr(column, "__clause_element__") else column
    return InList(element, name)


@compiles(InList)
def _expanding(element: InList, compiler: SQLCompiler, **kw: Any) -> str:
    values = bindparam(element.name, expanding=True, type_=element.item_type())
    return compiler.process(element.column.in_(values), **kw)


@compiles(InList, "postgresql")
def _array(element: InList, compiler: SQLCompiler, **kw: Any) -> str:
    values = bindparam(element.name, type_=ARRAY(element.item_type()))
    return compiler.process(element.column == any_(values), **kw)
