"""Which receiver URLs a webhook may send to — the one place of these rules (server-side request forgery).

- When subscribing (:func:`check_url`): ``http`` or ``https``; **only https with ``CDHT_ENV=production``**;
  never credentials in the URL (``user:pass@``: they would be stored and shown in clear). In production the
  host must not be an IP address that is loopback, private, link-local, multicast, reserved, unspecified or
  otherwise not global (IPv4 and IPv6, an IPv4 address inside an IPv6 one included), nor ``localhost``, a
  name ending in ``.localhost``, ``.local`` or ``.internal``, a single-label name (``intranet``) or a
  number in disguise (``2130706433``, ``0x7f.1``). Outside production any host will do (``http://127.0.0.1``
  in development and tests).
- When delivering (:class:`GuardedBackend`, production only): the name is resolved and the connection is
  made to an address that was checked, so a name that resolves — or later re-resolves (DNS rebinding) —
  to an internal address is refused at connect time, not only when subscribing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from app.core.errors import ValidationFailed

MAX_URL_LENGTH = 2000
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, details={"field": "url"})


def address_refused(address: IPAddress) -> bool:
    """True for every address a production webhook must not reach: anything not globally routable, and
    multicast; an IPv6 address that carries an IPv4 one (mapped, 6to4, Teredo, NAT64) is judged by it."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded: list[IPAddress] = []
        if address.ipv4_mapped is not None:
            embedded.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            embedded.append(address.sixtofour)
        if address.teredo is not None:
            embedded.extend(address.teredo)
        if address in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if any(address_refused(inner) for inner in embedded):
            return True
    return (
        not address.is_global
        or address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is link-local
    except ValueError:
        return None


def _check_host(host: str) -> None:
    address = _ip_literal(host)
    if address is not None:
        if address_refused(address):
            raise _refuse(f"The address {host} is not reachable from the internet; webhooks may not use it.")
        return
    if host == "localhost" or host.endswith(_INTERNAL_SUFFIXES):
        raise _refuse(f"The host {host!r} is an internal name; webhooks need a public host name.")
    labels = host.split(".")
    if len(labels) < 2:
        raise _refuse(f"The host {host!r} is not a fully qualified domain name.")
    last = labels[-1]
    if last.isdigit() or last.startswith("0x"):
        # What a resolver reads as an IPv4 address in another spelling (decimal, octal, hexadecimal).
        raise _refuse(f"The host {host!r} looks like an IP address; write a public host name.")


def check_url(url: str, *, production: bool) -> str:
    """The URL to store, or a 422 ``validation_error`` (``details.field = "url"``) saying what is wrong."""
    if len(url) > MAX_URL_LENGTH:
        raise _refuse(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise _refuse("The URL must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse("The URL is not valid.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _refuse("The URL must start with https:// (or http:// outside production).")
    if production and scheme != "https":
        raise _refuse("Webhook URLs must use https.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _refuse("The URL must not contain a user name or password; authenticate with the signature.")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise _refuse("The URL has no host.")
    if port == 0:
        raise _refuse("The URL's port must not be 0.")
    if production:
        _check_host(host)
    return url


def _addresses(infos: Iterable[tuple[Any, ...]]) -> list[str]:
    return [str(info[4][0]) for info in infos]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving names itself and connecting only to addresses that
    :func:`address_refused` allows (TLS still checks the certificate against the original host name)."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = _ip_literal(host)
        if address is not None:
            candidates = [str(address)]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
            candidates = list(dict.fromkeys(_addresses(infos)))
        refused = [a for a in candidates if address_refused(ipaddress.ip_address(a.split("%", 1)[0]))]
        if refused or not candidates:
            raise httpcore.ConnectError(f"refused: {host} resolves to a non-public address")
        return await self._inner.connect_tcp(
            candidates[0], port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks never connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's transport with its connection pool on :class:`GuardedBackend` (httpx does not take a
    network backend itself, so the pool it built is replaced by the same pool on ours)."""
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(),
    )
    return transport
