"""Contract tests for the JWT module: every unsafe default of python-jose stays closed."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from jose import jwt

from app.core.errors import NotAuthenticated
from app.core.tokens import ALGORITHM, TokenCodec

KEY = "k" * 48
CODEC = TokenCodec(key=KEY, issuer="cdht", audience="cdht-api", lifetime=timedelta(minutes=10))


def _claims(**overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": "42",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "iss": "cdht",
        "aud": "cdht-api",
        "jti": "abc",
        "typ": "access",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_round_trip() -> None:
    token, expires_in = CODEC.issue_access("7")
    claims = CODEC.decode_access(token)
    assert claims.subject == "7"
    assert 0 < expires_in <= 15 * 60


def test_alg_none_is_rejected() -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(token)


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_algorithm_with_same_key_is_rejected(alg: str) -> None:
    token = jwt.encode(_claims(), KEY, algorithm=alg)
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(token)


def test_expired_is_rejected() -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    token = jwt.encode(_claims(exp=int(past.timestamp())), KEY, algorithm=ALGORITHM)
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(token)


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub", "jti", "typ"])
def test_missing_claim_is_rejected(claim: str) -> None:
    claims = _claims()
    del claims[claim]
    token = jwt.encode(claims, KEY, algorithm=ALGORITHM)
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(token)


@pytest.mark.parametrize(("claim", "value"), [("aud", "someone-else"), ("iss", "evil")])
def test_wrong_audience_or_issuer_is_rejected(claim: str, value: str) -> None:
    token = jwt.encode(_claims(**{claim: value}), KEY, algorithm=ALGORITHM)
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(token)


def test_tampered_signature_is_rejected() -> None:
    token, _ = CODEC.issue_access("7")
    header, payload, signature = token.split(".")
    forged_payload = _b64({**json.loads(base64.urlsafe_b64decode(payload + "==")), "sub": "1"})
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(f"{header}.{forged_payload}.{signature}")
    flipped = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(f"{header}.{payload}.{flipped}")


def test_other_key_is_rejected() -> None:
    token = jwt.encode(_claims(), "x" * 48, algorithm=ALGORITHM)
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(token)


def test_refresh_type_token_is_not_an_access_token() -> None:
    token = jwt.encode(_claims(typ="refresh"), KEY, algorithm=ALGORITHM)
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(token)


def test_opaque_refresh_token_is_not_an_access_token() -> None:
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access("J3s0n-opaque-refresh-token-value")
