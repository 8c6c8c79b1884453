"""Shared request/response building blocks: strict bodies, safe text, ids, versions."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from fastapi import Header, Path
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from app.core.errors import StaleVersion, ValidationFailed

MAX_ID = 2**31 - 1


def _refuse_control_chars(value: str, allowed: str) -> str:
    # NUL and other control characters are never meaningful in text and break PostgreSQL text columns.
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in value):
        raise ValueError("must not contain control characters")
    return unicodedata.normalize("NFC", value)


def _no_control_chars(value: str) -> str:
    return _refuse_control_chars(value, "\t")


def multiline_text(value: str) -> str:
    return _refuse_control_chars(value, "\t\n\r")


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    AfterValidator(_no_control_chars),
]
ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(_no_control_chars),
]
# Notes and reasons typed on a phone: several lines are fine, other control characters are not.
LongText = Annotated[str, StringConstraints(max_length=4000), AfterValidator(multiline_text)]
Code = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$"
    ),
]
# Free text in query strings and forms (search terms, codes, usernames): PostgreSQL text cannot hold NUL,
# so control characters are refused here instead of failing in the database.
QueryText = Annotated[str, AfterValidator(_no_control_chars)]


def _not_bool(value: object) -> object:
    # Pydantic's lax mode reads JSON true as 1: an id or version of `true` would silently name object 1.
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    return value


# The bounds come before the validator: after it, pydantic writes them into the OpenAPI document as the
# non-standard keys ``ge``/``le`` instead of ``minimum``/``maximum``, and clients' generators lose them.
Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_not_bool)]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
Version = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_not_bool)]


class StrictModel(BaseModel):
    """Request bodies: unknown fields are a 422, never silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def json_of(model: BaseModel) -> bytes:
    """``model`` written as FastAPI writes a route's response model (pydantic's own JSON, by alias): the
    bytes of an answer a process keeps (``core/conditional.KeptBodies``, ``auth/subjects.py``)."""
    return model.__pydantic_serializer__.to_json(model, by_alias=True)


async def if_match(
    if_match: Annotated[str | None, Header(alias="If-Match", description="Expected version")] = None,
) -> int | None:
    if if_match is None:
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not (raw.isascii() and raw.isdigit()):
        raise ValidationFailed("If-Match must be the object's integer version.")
    return int(raw)


def check_version(current: int, *sent: int | None) -> None:
    """409 when the client's version (body field or If-Match) is not the stored one."""
    for version in sent:
        if version is not None and version != current:
            raise StaleVersion(details={"current_version": current})
