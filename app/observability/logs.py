"""Log lines on standard error, as text or as JSON (``CDHT_LOG_FORMAT=text|json``).

A JSON line carries ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``request_id`` (the
``X-Request-ID`` of the request being answered, else null), ``pid`` (which worker) and, for an error,
``exception`` (the traceback). The messages themselves never hold headers, tokens or bodies
(``app/core/middleware.py`` logs method, path, status and duration only).

:func:`configure_logging` sets up the service's loggers (``cdht.*``) for the ``cdht`` commands
(``app/cli.py``); ``cdht serve`` hands uvicorn a ``log_config`` passed through :func:`with_log_format`, which
uvicorn applies again in every worker process it starts (spawned workers inherit no handlers).
"""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any, Literal

from app.core.middleware import current_request_id

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": current_request_id(),
            "pid": record.process,
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def logging_config(log_format: LogFormat) -> dict[str, Any]:
    """The ``dictConfig`` of the service's loggers (``cdht.*``): ``log_format`` lines on stderr. uvicorn
    configures only its own loggers, so without this the access log would be dropped."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"cdht": formatter(log_format)},
        "handlers": {
            "cdht": {"class": "logging.StreamHandler", "formatter": "cdht", "stream": "ext://sys.stderr"}
        },
        "loggers": {"cdht": {"handlers": ["cdht"], "level": "INFO", "propagate": False}},
    }


def formatter(log_format: LogFormat) -> dict[str, Any]:
    """A ``dictConfig`` formatter writing ``log_format``."""
    if log_format == "json":
        return {"()": f"{__name__}.JsonFormatter"}
    return {"format": TEXT_FORMAT}


def with_log_format(config: dict[str, Any], log_format: LogFormat) -> dict[str, Any]:
    """``config`` (a ``dictConfig``, e.g. uvicorn's with the service's loggers added) with every formatter
    writing JSON when ``log_format`` is ``json``: uvicorn's own lines too, so a collector reads one format."""
    if log_format != "json":
        return config
    return {**config, "formatters": {name: formatter("json") for name in config.get("formatters", {})}}


def configure_logging(log_format: LogFormat) -> None:
    """Apply :func:`logging_config` (again: the handler is replaced, never added twice)."""
    logging.config.dictConfig(logging_config(log_format))
