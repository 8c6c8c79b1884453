"""``/dashboard/``: the built page and its assets, from the package (no CDN: it works on an intranet).

The page reads only the public API, as any client would. Assets are sent gzip-compressed when the browser
accepts it (compressed once per process), and the page links them with a content hash so browsers keep them
until they change; the page itself is revalidated on every visit.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from app.core.routing import ScopedRouter

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/dashboard"
# Every file the page may load; nothing else under /dashboard/ is served.
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "THIRD-PARTY-LICENSES.txt": "text/plain; charset=utf-8",
}
# The page runs its own script and style only and talks to its own origin only.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
NOT_BUILT = (
    "The dashboard is not built: run `make dashboard` (Node.js and npm), or install a package that ships "
    "app/dashboard/static/."
)

router = ScopedRouter(include_in_schema=False)


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str


@cache
def _asset(name: str) -> Asset | None:
    path = STATIC / name
    if not path.is_file():
        return None
    body = path.read_bytes()
    if name == "index.html":
        body = _versioned(body)
    digest = hashlib.sha256(body).hexdigest()[:16]
    return Asset(body=body, gzipped=gzip.compress(body, compresslevel=9, mtime=0), etag=f'"{digest}"')


def _versioned(page: bytes) -> bytes:
    """``app.js`` → ``app.js?v=<hash of its content>``: a new build is fetched at once, an old one cached."""
    text = page.decode()
    for name in ASSETS:
        asset = _asset(name)
        if asset is not None:
            text = text.replace(f'"{name}"', f'"{name}?v={asset.etag.strip(chr(34))}"')
    return text.encode()


def _send(request: Request, asset: Asset, media_type: str, cache_control: str) -> Response:
    compressed = "gzip" in request.headers.get("accept-encoding", "")
    etag = asset.etag[:-1] + '-gz"' if compressed else asset.etag  # one tag per encoding
    headers = {"ETag": etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    if compressed:
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=media_type, headers=headers)
    return Response(asset.body, media_type=media_type, headers=headers)


@router.get(PREFIX)
async def dashboard_redirect() -> RedirectResponse:
    # The page links its assets relatively: it must be read from /dashboard/.
    return RedirectResponse(f"{PREFIX}/", status_code=308)


@router.get(f"{PREFIX}/")
async def dashboard_page(request: Request) -> Response:
    page = _asset("index.html")
    if page is None:
        return Response(NOT_BUILT, status_code=503, media_type="text/plain; charset=utf-8")
    response = _send(request, page, "text/html; charset=utf-8", "no-cache")
    response.headers.update(SECURITY_HEADERS)
    return response


@router.get(PREFIX + "/{name}")
async def dashboard_asset(request: Request, name: str) -> Response:
    media_type = ASSETS.get(name)
    asset = _asset(name) if media_type else None
    if media_type is None or asset is None:
        return Response("Not found.", status_code=404, media_type="text/plain; charset=utf-8")
    versioned = request.query_params.get("v") == asset.etag.strip('"')
    cache_control = "public, max-age=31536000, immutable" if versioned else "no-cache"
    response = _send(request, asset, media_type, cache_control)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
