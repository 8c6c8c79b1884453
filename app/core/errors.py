"""The one error hierarchy and the one error body: ``{"error": {"code", "message", "details"}}``.

Services raise these; :func:`install_error_handlers` turns them (and framework/database errors) into the
body of API.md (its schema, ``ErrorBody``, is in app/core/openapi.py). 422 is for malformed input only;
business rules answer 403/404/409.

Language (app/core/i18n.py): a message made with ``_()`` is in the request's language; any other message
is replaced, for a client that asked for Vietnamese, by its code's general message from the catalogue
(:data:`CODE_MESSAGES`), so no English reaches it. The ``msg`` of each validation issue is translated by
its pydantic ``type`` (:data:`VALIDATION_MESSAGES`), with pydantic's ``ctx`` values in the placeholders.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core import i18n
from app.core.i18n import N_, gettext

log = logging.getLogger("cdht.errors")

# Each code's general message: the default of its class, and what a Vietnamese client reads when the
# message raised was not put into words for it.
CODE_MESSAGES: dict[str, str] = {
    "validation_error": N_("The request is not valid."),
    "not_authenticated": N_("Authentication required."),
    "invalid_grant": N_("Invalid credentials."),
    "forbidden": N_("You may not do this here."),
    "not_found": N_("Not found."),
    "method_not_allowed": N_("This method is not allowed here."),
    "conflict": N_("Conflict with the current state."),
    "invalid_transition": N_("The object's status does not allow this."),
    "payload_too_large": N_("The request body is too large."),
    "unsupported_media_type": N_("Unsupported media type."),
    "rate_limited": N_("Too many requests; try again later."),
    "service_unavailable": N_("Service temporarily unavailable."),
    "internal_error": N_("Internal error."),
}
OTHER_CODE_MESSAGE = N_("The request could not be carried out.")
STALE_MESSAGE = N_("The object was changed by someone else; reload it and try again.")


class AppError(Exception):
    """A domain error. ``keep_changes`` asks the request's unit of work to commit what was done before
    the error (e.g. revoking a refresh-token family on reuse) instead of rolling it back. A message made
    with ``_()`` reaches Vietnamese clients as it is; any other, as the code's general message."""

    status_code = 500
    code = "internal_error"
    default_message = CODE_MESSAGES["internal_error"]

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
        keep_changes: bool = False,
    ) -> None:
        self.message: str = message or gettext(self.default_message)
        self.details = details
        self.headers = headers
        self.keep_changes = keep_changes
        super().__init__(self.message)


class ValidationFailed(AppError):
    status_code, code, default_message = 422, "validation_error", CODE_MESSAGES["validation_error"]


class NotAuthenticated(AppError):
    status_code, code, default_message = 401, "not_authenticated", CODE_MESSAGES["not_authenticated"]

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class InvalidGrant(AppError):
    status_code, code, default_message = 400, "invalid_grant", CODE_MESSAGES["invalid_grant"]


class Forbidden(AppError):
    status_code, code, default_message = 403, "forbidden", CODE_MESSAGES["forbidden"]


class NotFound(AppError):
    status_code, code, default_message = 404, "not_found", CODE_MESSAGES["not_found"]


class Conflict(AppError):
    status_code, code, default_message = 409, "conflict", CODE_MESSAGES["conflict"]


class StaleVersion(Conflict):
    default_message = STALE_MESSAGE


class InvalidTransition(Conflict):
    code, default_message = "invalid_transition", CODE_MESSAGES["invalid_transition"]


class PayloadTooLarge(AppError):
    status_code, code, default_message = 413, "payload_too_large", CODE_MESSAGES["payload_too_large"]


class UnsupportedMediaType(AppError):
    status_code, code = 415, "unsupported_media_type"
    default_message = CODE_MESSAGES["unsupported_media_type"]


class RateLimited(AppError):
    status_code, code, default_message = 429, "rate_limited", CODE_MESSAGES["rate_limited"]


class ServiceUnavailable(AppError):
    status_code, code = 503, "service_unavailable"
    default_message = CODE_MESSAGES["service_unavailable"]


# --- validation messages ---------------------------------------------------------------------------------

# pydantic's error ``type`` → the msgid of its message; placeholders are keys of pydantic's ``ctx``. English
# answers keep pydantic's own ``msg``; a type missing here reads as "Invalid value." in Vietnamese.
VALIDATION_MESSAGES: dict[str, str] = {
    "missing": N_("Field required"),
    "extra_forbidden": N_("Extra inputs are not permitted"),
    "json_invalid": N_("The body is not valid JSON"),
    "body_invalid": N_("The body cannot be read as form data"),
    "json_type": N_("JSON input should be string, bytes or bytearray"),
    "model_type": N_("Input should be an object"),
    "model_attributes_type": N_("Input should be an object"),
    "dict_type": N_("Input should be an object"),
    "none_required": N_("Input should be null"),
    "string_type": N_("Input should be a valid string"),
    "string_unicode": N_("Input should be a valid string"),
    "string_too_short": N_("String should have at least {min_length} characters"),
    "string_too_long": N_("String should have at most {max_length} characters"),
    "string_pattern_mismatch": N_("String should match pattern '{pattern}'"),
    "string_not_ascii": N_("String should contain only ASCII characters"),
    "bool_type": N_("Input should be a valid boolean"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "int_type": N_("Input should be a valid integer"),
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_parsing_size": N_("Unable to parse input string as an integer, exceeded maximum size"),
    "int_from_float": N_("Input should be a valid integer, got a number with a fractional part"),
    "float_type": N_("Input should be a valid number"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "finite_number": N_("Input should be a finite number"),
    "decimal_type": N_("Input should be a valid decimal"),
    "decimal_parsing": N_("Input should be a valid decimal"),
    "decimal_max_digits": N_("Decimal input should have no more than {max_digits} digits in total"),
    "decimal_max_places": N_("Decimal input should have no more than {decimal_places} decimal places"),
    "decimal_whole_digits": N_(
        "Decimal input should have no more than {whole_digits} digits before the decimal point"
    ),
    "greater_than": N_("Input should be greater than {gt}"),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "less_than": N_("Input should be less than {lt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
    "multiple_of": N_("Input should be a multiple of {multiple_of}"),
    "enum": N_("Input should be {expected}"),
    "literal_error": N_("Input should be {expected}"),
    "list_type": N_("Input should be a valid list"),
    "tuple_type": N_("Input should be a valid list"),
    "set_type": N_("Input should be a valid list"),
    "frozen_set_type": N_("Input should be a valid list"),
    "iterable_type": N_("Input should be a valid list"),
    "set_item_not_hashable": N_("Set items should be hashable"),
    "too_short": N_("The list should have at least {min_length} items, not {actual_length}"),
    "too_long": N_("The list should have at most {max_length} items, not {actual_length}"),
    "date_type": N_("Input should be a valid date"),
    "date_parsing": N_("Input should be a valid date in the format YYYY-MM-DD"),
    "date_from_datetime_parsing": N_("Input should be a valid date in the format YYYY-MM-DD"),
    "date_from_datetime_inexact": N_("Datetimes provided to dates should have zero time"),
    "date_past": N_("Date should be in the past"),
    "date_future": N_("Date should be in the future"),
    "datetime_type": N_("Input should be a valid datetime"),
    "datetime_parsing": N_("Input should be a valid datetime in ISO 8601 format"),
    "datetime_from_date_parsing": N_("Input should be a valid datetime in ISO 8601 format"),
    "datetime_object_invalid": N_("Input should be a valid datetime"),
    "datetime_past": N_("Input should be in the past"),
    "datetime_future": N_("Input should be in the future"),
    "timezone_naive": N_("Input should not have timezone info"),
    "timezone_aware": N_("Input should have timezone info"),
    "time_type": N_("Input should be a valid time"),
    "time_parsing": N_("Input should be a valid time"),
    "time_delta_type": N_("Input should be a valid duration"),
    "time_delta_parsing": N_("Input should be a valid duration"),
    "bytes_type": N_("Input should be valid bytes"),
    "bytes_too_short": N_("Data should have at least {min_length} bytes"),
    "bytes_too_long": N_("Data should have at most {max_length} bytes"),
    "url_type": N_("URL input should be a string or URL"),
    "url_parsing": N_("Input should be a valid URL"),
    "url_syntax_violation": N_("Input should be a valid URL"),
    "url_too_long": N_("URL should have at most {max_length} characters"),
    "url_scheme": N_("URL scheme should be {expected_schemes}"),
    "uuid_type": N_("Input should be a valid UUID"),
    "uuid_parsing": N_("Input should be a valid UUID"),
    "union_tag_invalid": N_("Input tag '{tag}' does not match any of the expected tags: {expected_tags}"),
    "union_tag_not_found": N_("Unable to extract tag using discriminator {discriminator}"),
    "value_error": N_("Value error, {error}"),
    "assertion_error": N_("Assertion failed, {error}"),
}
INVALID_VALUE = N_("Invalid value.")
# pydantic lists the values an enum or literal expects as "'a', 'b' or 'c'"
EXPECTED_OR = N_("{choices} or {last}")


def _context(error: dict[str, Any], msgid: str) -> dict[str, str] | None:
    """The placeholders' values for ``msgid``, from the error's ``ctx`` (None: say only "Invalid value.")."""
    given = error.get("ctx") or {}
    context = {key: str(value) for key, value in given.items()}
    if "expected" in context and " or " in context["expected"]:
        choices, last = context["expected"].rsplit(" or ", 1)
        context["expected"] = gettext(EXPECTED_OR, choices=choices, last=last)
    if "{error}" in msgid:
        # A validator's own words (``ValueError(...)``) reach the client only when put into its language.
        cause = given.get("error")
        said = cause.args[0] if isinstance(cause, Exception) and cause.args else cause
        if not isinstance(said, str) or not i18n.is_translated(said):
            return None
    return context


def validation_message(error: dict[str, Any]) -> str:
    """The ``msg`` of a validation issue in the current language."""
    if i18n.current() == i18n.DEFAULT:
        return str(error.get("msg", ""))
    msgid = VALIDATION_MESSAGES.get(str(error.get("type", "")))
    context = _context(error, msgid) if msgid is not None else None
    if msgid is None or context is None:
        return gettext(INVALID_VALUE)
    try:
        return gettext(msgid, **context)
    except (KeyError, IndexError, ValueError):  # a pydantic release that renamed a ctx key
        return gettext(INVALID_VALUE)


def validation_issues(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Never echo the offending input back: it may be a password or a 10 MB string.
    return [
        {"loc": list(e.get("loc", ())), "msg": validation_message(e), "type": e.get("type", "")}
        for e in errors
    ]


def _language(request: Request | None) -> str:
    # From the request itself where there is one: a 500 is answered outside the language middleware.
    if request is None:
        return i18n.current()
    return i18n.negotiate(request.headers.get("accept-language"))


def error_body(request: Request | None, code: str, message: str, details: Any = None) -> dict[str, Any]:
    language = _language(request)
    if not i18n.is_translated(message, language) and language != i18n.DEFAULT:
        with i18n.using(language):
            message = gettext(CODE_MESSAGES.get(code, OTHER_CODE_MESSAGE))
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    request: Request | None,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = error_body(request, code, message, details)
    if request is not None and request.headers.get("accept-language"):
        headers = {**(headers or {}), "Content-Language": _language(request)}
    return JSONResponse(body, status_code=status, headers=headers)


_HTTP_CODES = {
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


# SQLSTATEs that mean "not now" rather than "a bug": a statement cut short by ``statement_timeout``
# (57014) is 503 like an unreachable database; a serialization failure or a deadlock victim (40001, 40P01)
# lost a race with another writer and is answered like any other lost race, 409.
_TIMED_OUT = frozenset({"57014"})
_LOST_RACE = frozenset({"40001", "40P01"})


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)


def _unreadable_body(request: Request) -> list[dict[str, Any]]:
    """The one issue of a body the framework could not parse at all (bytes that are not UTF-8 JSON, a
    multipart body without its boundary): FastAPI raises a bare 400 for those."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    kind = "json_invalid" if media == "application/json" or media.endswith("+json") else "body_invalid"
    return [{"loc": ["body"], "msg": gettext(VALIDATION_MESSAGES[kind]), "type": kind}]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return error_response(request, exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        with i18n.using(_language(request)):
            details = validation_issues(list(exc.errors()))
            message = gettext(CODE_MESSAGES["validation_error"])
        return error_response(request, 422, "validation_error", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message: str
        with i18n.using(_language(request)):
            if exc.status_code == 400:  # a body that cannot be parsed: malformed input, like any other
                message = gettext(CODE_MESSAGES["validation_error"])
                return error_response(request, 422, "validation_error", message, _unreadable_body(request))
            code = _HTTP_CODES.get(exc.status_code, "error")
            message = exc.detail if isinstance(exc.detail, str) else gettext(OTHER_CODE_MESSAGE)
        headers = dict(exc.headers) if exc.headers else None
        return error_response(request, exc.status_code, code, message, headers=headers)

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        return error_response(request, 409, "conflict", _in(request, STALE_MESSAGE))

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # A unique or foreign-key race that the service's own checks could not see coming.
        log.info("integrity error answered 409: %s", type(exc.orig).__name__)
        message = _in(request, N_("The change conflicts with existing data."))
        return error_response(request, 409, "conflict", message)

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc.orig).__name__)
        return _unavailable(request)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return _unavailable(request)
        state = _sqlstate(exc)
        if state in _TIMED_OUT:
            log.warning("statement timed out: %s", request.url.path)
            message = _in(request, N_("The request took too long; try again."))
            return error_response(request, 503, "service_unavailable", message)
        if state in _LOST_RACE:
            log.info("transaction lost a race (%s) answered 409", state)
            return error_response(request, 409, "conflict", _in(request, STALE_MESSAGE))
        log.exception("database error")
        return _internal(request)

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> JSONResponse:
        # The driver could not reach the database at all (refused, unresolvable, timed out): the pool
        # raises these bare, not wrapped in a DBAPIError. The next request may well succeed: 503.
        if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
            log.warning("database unreachable: %s", type(exc).__name__)
            return _unavailable(request)
        log.exception("unhandled error")
        return _internal(request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _internal(request)


def _in(request: Request, msgid: str) -> str:
    with i18n.using(_language(request)):
        return gettext(msgid)


def _unavailable(request: Request) -> JSONResponse:
    message = _in(request, CODE_MESSAGES["service_unavailable"])
    return error_response(request, 503, "service_unavailable", message)


def _internal(request: Request) -> JSONResponse:
    return error_response(request, 500, "internal_error", _in(request, CODE_MESSAGES["internal_error"]))
