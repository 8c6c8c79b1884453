"""Contract tests for the JWT module: every unsafe default of python-jose stays closed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
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


def test_a_remembered_token_still_expires_and_binds_no_other_token_or_key() -> None:
    """The verified-token cache (``TokenCodec._verified``) skips python-jose for a token seen before, never
    the time checks, and only under the key, issuer and audience that verified it."""
    issued = datetime(2030, 1, 1, tzinfo=UTC)
    token, _ = CODEC.issue_access("7", now=issued)
    for _ in range(2):  # the second decode is answered from the cache
        assert CODEC.decode_access(token, now=issued + timedelta(minutes=1)).user_id == 7
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(token, now=issued + timedelta(minutes=10))
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(token, now=issued - timedelta(minutes=1))  # issued in the future
    header, payload, signature = token.split(".")
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(f"{header}.{payload}.{signature[:-2]}AA")
    for other in (
        TokenCodec(key="x" * 48, issuer="cdht", audience="cdht-api", lifetime=CODEC.lifetime),
        TokenCodec(key=KEY, issuer="evil", audience="cdht-api", lifetime=CODEC.lifetime),
        TokenCodec(key=KEY, issuer="cdht", audience="someone-else", lifetime=CODEC.lifetime),
    ):
        with pytest.raises(NotAuthenticated):
            other.decode_access(token, now=issued + timedelta(minutes=1))
    shorter = TokenCodec(key=KEY, issuer="cdht", audience="cdht-api", lifetime=timedelta(minutes=5))
    with pytest.raises(NotAuthenticated):  # a lifetime longer than this codec's: refused, cached or not
        shorter.decode_access(token, now=issued + timedelta(minutes=1))


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


# --- What python-jose leaves to us: the subject's spelling, the times' types and the lifetime. ---------


def _signed(claims_json: str, header: dict[str, object] | None = None) -> str:
    """A token over exactly ``claims_json`` (JSON as written, NaN and all), correctly signed with KEY."""
    head = _b64(header or {"alg": ALGORITHM, "typ": "JWT"})
    body = base64.urlsafe_b64encode(claims_json.encode()).rstrip(b"=").decode()
    signature = hmac.new(KEY.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _claims_json(**raw: str) -> str:
    """The claims of :func:`_claims` as JSON, with ``raw`` values spliced in verbatim."""
    claims = {k: json.dumps(v) for k, v in _claims().items()}
    claims.update(raw)
    return "{" + ",".join(f'"{k}":{v}' for k, v in claims.items()) + "}"


@pytest.mark.parametrize("sub", ["+42", " 42", "42 ", "042", "0", "٤٢", "４２", "42\n", "4_2", "", "1e3"])
def test_a_subject_not_in_canonical_ascii_digits_is_rejected(sub: str) -> None:
    token = jwt.encode(_claims(sub=sub), KEY, algorithm=ALGORITHM)
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(token)


@pytest.mark.parametrize("sub", ["42", "2147483647"])
def test_a_canonical_subject_is_the_user_id(sub: str) -> None:
    claims = CODEC.decode_access(jwt.encode(_claims(sub=sub), KEY, algorithm=ALGORITHM))
    assert claims.subject == sub and claims.user_id == int(sub)


@pytest.mark.parametrize("sub", ["2147483648", "99999999999999999999"])
def test_a_subject_beyond_any_user_id_is_rejected(sub: str) -> None:
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(jwt.encode(_claims(sub=sub), KEY, algorithm=ALGORITHM))


@pytest.mark.parametrize("sub", ["42", "١"])
def test_a_numeric_subject_in_json_is_rejected(sub: str) -> None:
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(_signed(_claims_json(sub=sub if sub.isascii() else f'"{sub}"')))


@pytest.mark.parametrize("sub", ["+1", "01", "١", "x"])
def test_tokens_are_never_issued_for_a_non_canonical_subject(sub: str) -> None:
    with pytest.raises(ValueError, match="ASCII digits"):
        CODEC.issue_access(sub)


def test_a_lifetime_longer_than_configured_is_rejected() -> None:
    now = int(datetime.now(UTC).timestamp())
    limit = int(CODEC.lifetime.total_seconds())
    at_limit = jwt.encode(_claims(iat=now - 1, exp=now - 1 + limit), KEY, algorithm=ALGORITHM)
    assert CODEC.decode_access(at_limit).subject == "42"
    beyond = jwt.encode(_claims(iat=now - 1, exp=now + limit), KEY, algorithm=ALGORITHM)
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(beyond)
    a_year = jwt.encode(_claims(iat=now, exp=now + 365 * 86400), KEY, algorithm=ALGORITHM)
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(a_year)


def test_a_token_issued_in_the_future_is_rejected() -> None:
    later = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
    token = jwt.encode(_claims(iat=later, exp=later + 60), KEY, algorithm=ALGORITHM)
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(token)


def test_exp_not_after_iat_is_rejected() -> None:
    now = int(datetime.now(UTC).timestamp())
    token = jwt.encode(_claims(iat=now, exp=now), KEY, algorithm=ALGORITHM)
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(token)


def test_decoding_at_a_given_time() -> None:
    issued = datetime(2030, 1, 1, tzinfo=UTC)
    token, _ = CODEC.issue_access("7", now=issued)
    assert CODEC.decode_access(token, now=issued + timedelta(minutes=9)).user_id == 7
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(token, now=issued + timedelta(minutes=10))


MALFORMED_TIMES = [
    '"abc"',
    '"1893456000"',
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "1" + "0" * 30,
    "-1" + "0" * 30,
    "1893456000.5",
    "true",
    "null",
    "[1893456000]",
    '{"t": 1893456000}',
]


@pytest.mark.parametrize("value", MALFORMED_TIMES)
@pytest.mark.parametrize("claim", ["exp", "iat"])
def test_malformed_times_are_401_not_a_crash(claim: str, value: str) -> None:
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(_signed(_claims_json(**{claim: value})))


def test_the_signed_helper_makes_valid_tokens() -> None:
    """The malformed-time tests fail for the value, not for a bad signature."""
    assert CODEC.decode_access(_signed(_claims_json())).subject == "42"


def test_a_critical_header_extension_is_rejected() -> None:
    token = _signed(_claims_json(), {"alg": ALGORITHM, "typ": "JWT", "crit": ["exp"], "exp": 1})
    with pytest.raises(NotAuthenticated):
        CODEC.decode_access(token)


async def test_over_http_a_malformed_exp_is_401_with_the_error_body(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    codec: TokenCodec = app.state.auth.codec
    claims = {**_claims(), "iss": codec.issuer, "aud": codec.audience}
    raw = "{" + ",".join(f'"{k}":{json.dumps(v)}' for k, v in claims.items() if k != "exp")
    head = _b64({"alg": ALGORITHM, "typ": "JWT"})
    for exp_json in ("1e400", "NaN", "1" + "0" * 30, '"soon"'):
        body = base64.urlsafe_b64encode(f'{raw},"exp":{exp_json}}}'.encode()).rstrip(b"=").decode()
        mac = hmac.new(codec.key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        token = f"{head}.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
        r = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (exp_json, r.text)
        assert r.json()["error"]["code"] == "not_authenticated"
        assert r.headers["www-authenticate"] == "Bearer"
