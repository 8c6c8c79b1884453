"""JWT access tokens, and the only module that imports python-jose.

Every decode pins the algorithm, the audience and the issuer, and requires each registered claim the
service relies on; python-jose's defaults (any algorithm in the header, optional ``exp``/``aud``) are
never used. On top of python-jose, this module owns the checks it does not make (or makes by crashing):

- ``sub`` is a user id in canonical ASCII digits (``"42"``; never ``"+42"``, ``" 42"``, ``"042"`` or
  ``"٤٢"``, which ``int()`` and ``str.isdigit`` would both accept), so one user has one subject;
- ``iat`` and ``exp`` are integers (not strings, floats, booleans, NaN or numbers no clock reaches); the
  token is not expired, not issued in the future, and lives no longer than the configured lifetime
  (``exp - iat``), so a token signed with a longer lifetime — by an older configuration or a leaked key
  used carelessly — is refused;
- a header naming critical extensions (``crit``) is refused (RFC 7515 §4.1.11: none is understood).

A token that passed every check but the times is remembered (one LRU of :data:`VERIFIED_TOKENS` entries,
keyed by the codec — its key, issuer, audience and lifetime — and the token): a client sends the same token
for minutes, and python-jose's work is the same each time. The times are checked on every use.

Any malformed token is a 401, never a 500. See tests/core/test_tokens.py for the contract.
"""

from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jose import JWTError, jwt

from app.core.errors import NotAuthenticated

ALGORITHM = "HS256"
ACCESS_TYPE = "access"
REQUIRED_CLAIMS = ("sub", "exp", "iat", "iss", "aud", "jti", "typ")
# User ids are positive 32-bit integers (core.schemas.MAX_ID): at most ten digits, no leading zero.
_CANONICAL_SUBJECT = re.compile(r"[1-9][0-9]{0,9}")
MAX_SUBJECT = 2**31 - 1
# Servers behind one balancer may disagree about the time by a few seconds; iat may lie that far ahead.
CLOCK_SKEW = 30
_INVALID = "Invalid or expired token."
# Verified tokens remembered (:meth:`TokenCodec._verified`), all codecs together: a few hundred bytes each.
VERIFIED_TOKENS = 8192


def is_canonical_subject(value: object) -> bool:
    """``value`` is a user id written the one way this service writes it."""
    return (
        isinstance(value, str)
        and _CANONICAL_SUBJECT.fullmatch(value) is not None
        and int(value) <= MAX_SUBJECT
    )


@dataclass(frozen=True)
class AccessClaims:
    subject: str
    jti: str
    expires_at: datetime

    @property
    def user_id(self) -> int:
        """The subject as the user id it always is (checked canonical on decode)."""
        return int(self.subject)


@dataclass(frozen=True)
class TokenCodec:
    key: str
    issuer: str
    audience: str
    lifetime: timedelta

    def issue_access(self, subject: str, *, now: datetime | None = None) -> tuple[str, int]:
        if not is_canonical_subject(subject):
            raise ValueError(f"An access token's subject is a user id in ASCII digits, not {subject!r}.")
        now = now or datetime.now(UTC)
        claims = {
            "sub": subject,
            "iat": int(now.timestamp()),
            "exp": int((now + self.lifetime).timestamp()),
            "iss": self.issuer,
            "aud": self.audience,
            "jti": uuid.uuid4().hex,
            "typ": ACCESS_TYPE,
        }
        return jwt.encode(claims, self.key, algorithm=ALGORITHM), int(self.lifetime.total_seconds())

    def decode_access(self, token: str, *, now: datetime | None = None) -> AccessClaims:
        subject, jti, iat, exp = self._verified(token)
        expires_at = self._check_times(iat, exp, now or datetime.now(UTC))
        return AccessClaims(subject=subject, jti=jti, expires_at=expires_at)

    @functools.lru_cache(maxsize=VERIFIED_TOKENS)  # noqa: B019 (codecs live as long as the app)
    def _verified(self, token: str) -> tuple[str, str, Any, Any]:
        """What the signature and the claims (all but the times, which change with the clock) vouch for:
        the subject, the jti, iat and exp. A pure function of the token under this codec's key, issuer and
        audience, so a token seen again skips python-jose (a client sends the same one for minutes); a
        refused token raises, and is not remembered."""
        try:
            header = jwt.get_unverified_header(token)
            if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
                raise NotAuthenticated("Unsupported token algorithm.")
            if "crit" in header:
                raise NotAuthenticated(_INVALID)
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "verify_signature": True,
                    "verify_aud": True,
                    "verify_iss": True,
                    # exp and iat are checked below: python-jose crashes on an infinite or huge exp.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": True,
                    "verify_sub": True,
                    "verify_jti": True,
                    "require_exp": True,
                    "require_iat": True,
                    "require_aud": True,
                    "require_iss": True,
                    "require_sub": True,
                    "require_jti": True,
                    "leeway": 0,
                },
            )
        except (JWTError, ValueError, TypeError, OverflowError) as exc:
            raise NotAuthenticated(_INVALID) from exc
        if not isinstance(claims, dict) or any(c not in claims for c in REQUIRED_CLAIMS):
            raise NotAuthenticated(_INVALID)
        if claims["typ"] != ACCESS_TYPE:
            raise NotAuthenticated("Not an access token.")
        if not is_canonical_subject(claims["sub"]):
            raise NotAuthenticated(_INVALID)
        return claims["sub"], str(claims["jti"]), claims["iat"], claims["exp"]

    def _check_times(self, iat: Any, exp: Any, now: datetime) -> datetime:
        """``iat <= now < exp`` and ``exp - iat <= lifetime``, with both plain integers."""
        if type(iat) is not int or type(exp) is not int:  # bool is an int subclass: excluded too
            raise NotAuthenticated(_INVALID)
        current = int(now.timestamp())
        if iat > current + CLOCK_SKEW or exp <= iat or exp - iat > self.lifetime.total_seconds():
            raise NotAuthenticated(_INVALID)
        if exp <= current:
            raise NotAuthenticated(_INVALID)
        # Both are now within a lifetime of the present: no overflow.
        return datetime.fromtimestamp(exp, UTC)
