"""JSON logs (``CDHT_LOG_FORMAT=json``, issue #18): every line parses, and a request's lines carry the
``X-Request-ID`` its response had; errors carry their traceback; uvicorn's own lines follow the format."""

from __future__ import annotations

import copy
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.cli import _log_to_stderr
from app.core.config import Settings
from app.observability.logs import with_log_format
from tests.builders import Tree

LOGGERS = ("cdht", "uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """The tests configure the process's loggers as a command would; put them back afterwards."""
    saved = {name: logging.getLogger(name) for name in LOGGERS}
    state = {name: (lg.handlers[:], lg.level, lg.propagate) for name, lg in saved.items()}
    yield
    for name, logger in saved.items():
        logger.handlers, logger.level, logger.propagate = list(state[name][0]), *state[name][1:]


def json_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


async def test_json_lines_carry_the_request_id_of_the_response(
    client: httpx.AsyncClient, tree: Tree, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = tree.auth(await tree.admin())
    _log_to_stderr(settings.model_copy(update={"log_format": "json"}))  # what every `cdht` command does
    capsys.readouterr()
    first = await client.get("/api/v1/me", headers=admin)
    second = await client.get("/api/v1/me", headers={**admin, "X-Request-ID": "from-the-proxy-42"})
    lines = json_lines(capsys.readouterr().err)  # every line is JSON

    access = [line for line in lines if line["logger"] == "cdht.access"]
    assert [line["request_id"] for line in access] == [first.headers["x-request-id"], "from-the-proxy-42"]
    assert second.headers["x-request-id"] == "from-the-proxy-42"
    for line in access:
        assert line["level"] == "INFO"
        assert line["message"].startswith("GET /api/v1/me 200 ")
        assert line["timestamp"].endswith("+00:00")
        assert "Bearer" not in json.dumps(line)  # credentials never reach the log
    # Outside a request there is no id.
    logging.getLogger("cdht.test").info("between requests")
    (outside,) = json_lines(capsys.readouterr().err)
    assert outside["request_id"] is None
    assert outside["message"] == "between requests"


def test_an_error_line_carries_its_traceback(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    _log_to_stderr(settings.model_copy(update={"log_format": "json"}))
    try:
        raise ValueError("the import file is not CSV")
    except ValueError:
        logging.getLogger("cdht.imports").exception("job failed")
    (line,) = json_lines(capsys.readouterr().err)
    assert (line["level"], line["logger"], line["message"]) == ("ERROR", "cdht.imports", "job failed")
    assert "Traceback" in line["exception"]
    assert "ValueError: the import file is not CSV" in line["exception"]


def test_text_stays_the_default_and_configuring_twice_logs_once(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert Settings().log_format == "text"
    _log_to_stderr(settings)
    _log_to_stderr(settings)  # a command may set up logging more than once: no line twice
    logging.getLogger("cdht.test").warning("disk almost full")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(" WARNING cdht.test: disk almost full")


def test_uvicorns_own_lines_follow_the_format(capsys: pytest.CaptureFixture[str]) -> None:
    """What `cdht serve` hands uvicorn (which applies it in every worker process)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    assert with_log_format(config, "text") == config
    logging.config.dictConfig(with_log_format(config, "json"))
    logging.getLogger("uvicorn.error").info("Started server process")
    (line,) = json_lines(capsys.readouterr().err)
    assert (line["logger"], line["message"]) == ("uvicorn.error", "Started server process")
