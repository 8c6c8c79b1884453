"""Password and secret hashing: Argon2id (pwdlib), run off the event loop.

Login for an unknown user still verifies against a dummy hash so the answer takes as long as for a known
one (no user enumeration by timing). Opaque tokens (refresh tokens, client secrets' lookups) are stored
as SHA-256 digests only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from anyio import to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher


@lru_cache
def _hasher() -> PasswordHash:
    return PasswordHash((Argon2Hasher(),))


@lru_cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


def hash_password_sync(password: str) -> str:
    return _hasher().hash(password)


async def hash_password(password: str) -> str:
    return await to_thread.run_sync(hash_password_sync, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    """Verify in a worker thread; with no hash (unknown user) spend the same time and answer False."""
    return (await verify_and_update(password, password_hash))[0]


async def verify_and_update(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """:func:`verify_password`, and when the password matches a hash made with older parameters (or an
    older algorithm), the hash to store in its place (``None`` when the stored one is current)."""
    if password_hash is None:
        await to_thread.run_sync(_hasher().verify, password, _dummy_hash())
        return False, None
    try:
        return await to_thread.run_sync(_hasher().verify_and_update, password, password_hash)
    except ValueError:  # not a hash pwdlib knows: never a match
        return False, None


def new_opaque_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def digests_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
