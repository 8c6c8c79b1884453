"""The language of a request and the message catalogue: English by default, Vietnamese on request.

- **Negotiation**: :func:`negotiate` reads ``Accept-Language`` (``vi``, ``vi-VN``, q-values, ``*``) and picks
  one of :data:`LANGUAGES` — the one the client weighs highest; English when it names neither, or sends
  nothing. :class:`LanguageMiddleware` (pure ASGI) puts the choice in a context variable for the whole
  request (worker threads started with ``anyio.to_thread`` see it too) and answers with
  ``Content-Language`` and ``Vary: Accept-Language``.
- **Messages**: code writes English msgids and translates them where they are made, in the request's
  language: ``_("Row {row}: {column} is required", row=2, column="name")``. Values go in named
  placeholders, so a translation keeps them (and may put them elsewhere in its sentence). A msgid kept in
  a table for later (a class attribute, a constant) is marked with :func:`N_` and translated when used.
- **The catalogue**: ``app/locale/vi/LC_MESSAGES/cdht.po`` (msgids in English), read with Babel when this
  module is imported; no compile step, so a plain ``pip install`` has everything. ``make i18n`` extracts
  the msgids from the code (``babel.cfg``) into ``app/locale/cdht.pot`` and merges them into the ``.po``;
  ``tests/api/test_i18n.py`` fails while any msgid lacks its Vietnamese.

Work outside a request (import jobs run by the runner, the CLI) is in English.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT = "en"
LANGUAGES = ("en", "vi")
DOMAIN = "cdht"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
MAX_RANGES = 32  # language ranges read from one header; browsers send a handful

_language: ContextVar[str] = ContextVar("cdht_language", default=DEFAULT)


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def load_catalogue(language: str) -> dict[str, str]:
    """msgid → translation of the language's ``.po`` (fuzzy and empty entries left out: English shows)."""
    with catalogue_path(language).open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    return {
        message.id: message.string
        for message in catalog
        if isinstance(message.id, str) and message.id and isinstance(message.string, str)
        if message.string and not message.fuzzy
    }


_CATALOGUES: dict[str, dict[str, str]] = {lang: load_catalogue(lang) for lang in LANGUAGES if lang != DEFAULT}


# --- negotiation ----------------------------------------------------------------------------------------


def _quality(params: str) -> float | None:
    """The ``q`` of a range's parameters (1 when absent); None when it is malformed (the range is ignored)."""
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return None
            return q if 0 <= q <= 1 else None
    return 1.0


def negotiate(header: str | None) -> str:
    """The language to answer in, from an ``Accept-Language`` header (RFC 9110 §12.5.4): the supported
    language with the highest q (``vi-VN`` counts for ``vi``; ``*`` for every language not named);
    between equals, the one named first. Ranges with q=0 refuse a language. Default: English."""
    if not header:
        return DEFAULT
    named: dict[str, tuple[float, int]] = {}
    wildcard: tuple[float, int] | None = None
    for position, part in enumerate(header.split(",")[:MAX_RANGES]):
        tag, _, params = part.partition(";")
        q = _quality(params)
        primary = tag.strip().lower().split("-", 1)[0]
        if q is None or not primary:
            continue
        if primary == "*":
            wildcard = wildcard or (q, position)
        elif primary in LANGUAGES and (primary not in named or q > named[primary][0]):
            named[primary] = (q, position)  # "vi-VN;q=0.2, vi": a language counts with its best range
    chosen, best = DEFAULT, (0.0, MAX_RANGES)
    for language in LANGUAGES:
        q, position = named.get(language) or wildcard or (0.0, MAX_RANGES)
        if q > best[0] or (q == best[0] and q > 0 and position < best[1]):
            chosen, best = language, (q, position)
    return chosen


def current() -> str:
    """The language of the request being served (English outside one)."""
    return _language.get()


@contextlib.contextmanager
def using(language: str) -> Iterator[None]:
    """Translate into ``language`` inside the block (tests; work done on a request's behalf later)."""
    token = _language.set(language if language in LANGUAGES else DEFAULT)
    try:
        yield
    finally:
        _language.reset(token)


# --- messages -------------------------------------------------------------------------------------------


class Translated(str):
    """A message put into words by :func:`gettext`; ``language`` is the one it is written in."""

    language: str

    def __new__(cls, text: str, language: str) -> Translated:
        made = super().__new__(cls, text)
        made.language = language
        return made


def N_(msgid: str) -> str:
    """Mark a msgid kept for later (a class attribute, a table): extracted, translated where it is used."""
    return msgid


def has_translation(msgid: str, language: str) -> bool:
    return language == DEFAULT or msgid in _CATALOGUES.get(language, {})


def gettext(msgid: str, /, **params: Any) -> Translated:
    """``msgid`` in the current language, its ``{placeholders}`` filled from ``params``. A msgid without a
    translation stays English (and says so in ``language``)."""
    return translate(_language.get(), msgid, **params)


def translate(language: str, msgid: str, /, **params: Any) -> Translated:
    """``msgid`` in ``language`` (a document whose language is chosen by its caller)."""
    text = _CATALOGUES.get(language, {}).get(msgid) if language != DEFAULT else None
    if text is None:
        text, language = msgid, DEFAULT
    if params:
        text = text.format_map({key: _shown(value) for key, value in params.items()})
    return Translated(text, language)


_ = gettext


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def is_translated(text: str, language: str | None = None) -> bool:
    """Whether ``text`` was put into words for ``language`` (default: the current one)."""
    return isinstance(text, Translated) and text.language == (language or _language.get())


# --- the middleware -------------------------------------------------------------------------------------


class LanguageMiddleware:
    """Sets the request's language (from ``Accept-Language``) for everything inside it and marks the
    answer: ``Vary: Accept-Language`` always, ``Content-Language`` when the client asked for a language
    (a response that set its own keeps it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        asked = Headers(scope=scope).get("accept-language")
        language = negotiate(asked)

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.add_vary_header("Accept-Language")
                if asked and "content-language" not in headers:
                    headers["Content-Language"] = language
            await send(message)

        token = _language.set(language)
        try:
            await self.app(scope, receive, marked)
        finally:
            _language.reset(token)
