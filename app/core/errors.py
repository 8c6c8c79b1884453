"""The one error hierarchy and the one error body: ``{"error": {"code", "message", "details"}}``.

Services raise these; :func:`install_error_handlers` turns them (and framework/database errors) into the
body of API.md. 422 is for malformed input only; business rules answer 403/404/409.
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

log = logging.getLogger("cdht.errors")

# Generic messages per code for clients that ask for Vietnamese (Accept-Language: vi).
VI_MESSAGES = {
    "validation_error": "Dữ liệu gửi lên không hợp lệ.",
    "not_authenticated": "Chưa đăng nhập hoặc phiên đăng nhập đã hết hạn.",
    "forbidden": "Bạn không có quyền thực hiện thao tác này.",
    "not_found": "Không tìm thấy đối tượng.",
    "conflict": "Dữ liệu đã bị thay đổi hoặc trùng lặp; hãy tải lại và thử lại.",
    "invalid_transition": "Không thể chuyển trạng thái từ trạng thái hiện tại.",
    "payload_too_large": "Tệp hoặc dữ liệu gửi lên quá lớn.",
    "unsupported_media_type": "Định dạng tệp không được hỗ trợ.",
    "rate_limited": "Quá nhiều yêu cầu; vui lòng thử lại sau.",
    "invalid_grant": "Tên đăng nhập, mật khẩu hoặc mã làm mới không đúng.",
    "service_unavailable": "Hệ thống tạm thời không sẵn sàng; vui lòng thử lại.",
    "internal_error": "Lỗi hệ thống.",
}


class AppError(Exception):
    """A domain error. ``keep_changes`` asks the request's unit of work to commit what was done before
    the error (e.g. revoking a refresh-token family on reuse) instead of rolling it back."""

    status_code = 500
    code = "internal_error"
    default_message = "Internal error."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
        keep_changes: bool = False,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.headers = headers
        self.keep_changes = keep_changes
        super().__init__(self.message)


class ValidationFailed(AppError):
    status_code, code, default_message = 422, "validation_error", "The request is not valid."


class NotAuthenticated(AppError):
    status_code, code, default_message = 401, "not_authenticated", "Authentication required."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class InvalidGrant(AppError):
    status_code, code, default_message = 400, "invalid_grant", "Invalid credentials."


class Forbidden(AppError):
    status_code, code, default_message = 403, "forbidden", "You may not do this here."


class NotFound(AppError):
    status_code, code, default_message = 404, "not_found", "Not found."


class Conflict(AppError):
    status_code, code, default_message = 409, "conflict", "Conflict with the current state."


class StaleVersion(Conflict):
    default_message = "The object was changed by someone else; reload it and try again."


class InvalidTransition(Conflict):
    code = "invalid_transition"


class PayloadTooLarge(AppError):
    status_code, code, default_message = 413, "payload_too_large", "The request body is too large."


class UnsupportedMediaType(AppError):
    status_code, code, default_message = 415, "unsupported_media_type", "Unsupported media type."


class RateLimited(AppError):
    status_code, code, default_message = 429, "rate_limited", "Too many requests; try again later."


class ServiceUnavailable(AppError):
    status_code, code, default_message = 503, "service_unavailable", "Service temporarily unavailable."


def error_body(request: Request | None, code: str, message: str, details: Any = None) -> dict[str, Any]:
    if request is not None and request.headers.get("accept-language", "").lower().startswith("vi"):
        message = VI_MESSAGES.get(code, message)
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    request: Request | None,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(request, code, message, details), status_code=status, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
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


def _clean_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Never echo the offending input back: it may be a password or a 10 MB string.
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return error_response(request, exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _clean_validation_errors(list(exc.errors()))
        return error_response(request, 422, "validation_error", "The request is not valid.", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        return error_response(request, exc.status_code, code, message, headers=exc.headers)

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        return error_response(request, 409, "conflict", StaleVersion.default_message)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        # A unique or foreign-key race that the service's own checks could not see coming.
        log.info("integrity error answered 409: %s", type(exc.orig).__name__)
        return error_response(request, 409, "conflict", "The change conflicts with existing data.")

    @app.exception_handler(OperationalError)
    async def _operational(request: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc.orig).__name__)
        return error_response(request, 503, "service_unavailable", ServiceUnavailable.default_message)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return error_response(request, 503, "service_unavailable", ServiceUnavailable.default_message)
        state = _sqlstate(exc)
        if state in _TIMED_OUT:
            log.warning("statement timed out: %s", request.url.path)
            return error_response(
                request, 503, "service_unavailable", "The request took too long; try again."
            )
        if state in _LOST_RACE:
            log.info("transaction lost a race (%s) answered 409", state)
            return error_response(request, 409, "conflict", StaleVersion.default_message)
        log.exception("database error")
        return error_response(request, 500, "internal_error", "Internal error.")

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError) -> JSONResponse:
        # The driver could not reach the database at all (refused, unresolvable, timed out): the pool
        # raises these bare, not wrapped in a DBAPIError. The next request may well succeed: 503.
        if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
            log.warning("database unreachable: %s", type(exc).__name__)
            return error_response(request, 503, "service_unavailable", ServiceUnavailable.default_message)
        log.exception("unhandled error")
        return error_response(request, 500, "internal_error", "Internal error.")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(request, 500, "internal_error", "Internal error.")
