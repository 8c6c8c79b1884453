"""JWT access tokens, and the only module that imports python-jose.

Every decode pins the algorithm, the audience and the issuer, and requires each registered claim the
service relies on; python-jose's defaults (any algorithm in the header, optional ``exp``/``aud``) are
never used. See tests/core/test_tokens.py for the contract.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from jose import JWTError, jwt

from app.core.errors import NotAuthenticated

ALGORITHM = "HS256"
ACCESS_TYPE = "access"
REQUIRED_CLAIMS = ("sub", "exp", "iat", "iss", "aud", "jti", "typ")


@dataclass(frozen=True)
class AccessClaims:
    subject: str
    jti: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenCodec:
    key: str
    issuer: str
    audience: str
    lifetime: timedelta

    def issue_access(self, subject: str, *, now: datetime | None = None) -> tuple[str, int]:
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

    def decode_access(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != ALGORITHM:
                raise NotAuthenticated("Unsupported token algorithm.")
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
                    "verify_exp": True,
                    "verify_iat": True,
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
        except JWTError as exc:
            raise NotAuthenticated("Invalid or expired token.") from exc
        missing = [c for c in REQUIRED_CLAIMS if c not in claims]
        if missing:
            raise NotAuthenticated("Invalid or expired token.")
        if claims["typ"] != ACCESS_TYPE or not isinstance(claims["sub"], str):
            raise NotAuthenticated("Not an access token.")
        return AccessClaims(
            subject=claims["sub"],
            jti=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
