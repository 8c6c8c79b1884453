"""The bare FastAPI baseline of ``bench/run_http.py``: one route answering every path with a small JSON,
served by the same uvicorn with the same options as ``cdht serve`` (access log off). A catch-all, so the
baseline takes the very request the service is measured with (path, query string, headers, body).

    .venv/bin/uvicorn bare_app:app --app-dir bench --host 127.0.0.1 --port 8790 --no-access-log
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.api_route("/{path:path}", methods=["GET", "POST", "PUT"])
async def anything(path: str) -> dict[str, str]:
    return {"status": "ok"}
