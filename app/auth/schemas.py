"""Auth, user, role and service-account bodies. No response model has a password, hash or secret field
except the one-time ``client_secret`` of a new service account."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, EmailStr, Field, StringConstraints

from app.auth.models import Role
from app.core.schemas import Id, Name, ReadModel, StrictModel, Version

Username = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=64, pattern=r"^[A-Za-z0-9._@\-]+$")
]

# The password policy (NIST SP 800-63B: length, and no password from the lists attackers try first).
# It applies wherever a password is chosen: the users API and `cdht create-admin`.
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
COMMON_PASSWORDS = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456123456",
        "123123123123",
        "111111111111",
        "000000000000",
        "abcdefghijkl",
        "abcd1234abcd",
        "abc123abc123",
        "qwertyuiopas",
        "qwertyuiop12",
        "qwertyuiop123",
        "qwerty123456",
        "qwerty12345678",
        "1qaz2wsx3edc",
        "1q2w3e4r5t6y",
        "q1w2e3r4t5y6",
        "zaq12wsxcde3",
        "asdfghjkl123",
        "password1234",
        "password12345",
        "password123456",
        "password123!",
        "password@123",
        "passwordpassword",
        "p@ssw0rd1234",
        "p@ssword1234",
        "iloveyou1234",
        "administrator",
        "administrator1",
        "admin1234567",
        "admin@123456",
        "changeme1234",
        "changeme123!",
        "letmein12345",
        "welcome12345",
        "welcome@1234",
        "welcome123456",
        "trustno1trustno1",
        "football1234",
        "baseball1234",
        "superman1234",
        "sunshine1234",
        "princess1234",
        "dragon123456",
        "monkey123456",
        "starwars1234",
        "matkhau123456",
        "matkhau@1234",
        "matkhaumoi123",
        "vietnam123456",
        "vietnam@1234",
        "hanoi1234567",
        "congdanhoctap",
        "congdanhoctap1",
        "congdanhoctap123",
        "cdht12345678",
        "cdhtcdhtcdht",
    }
)
_SEQUENCES = ("0123456789", "abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm")


def _too_predictable(folded: str) -> bool:
    """One short pattern repeated (``abcabcabcabc``), or a run of digits, letters or keyboard keys."""
    n = len(folded)
    if any(n % size == 0 and folded == folded[:size] * (n // size) for size in range(1, 5)):
        return True
    return any(folded in seq or folded in seq[::-1] for seq in _SEQUENCES)


def check_password_policy(value: str) -> str:
    """Refuse blank, common and predictable passwords (the length is checked by the type)."""
    if not value.strip():
        raise ValueError("must not be blank")
    folded = value.strip().casefold()
    if folded in COMMON_PASSWORDS or _too_predictable(folded):
        raise ValueError("is too common or predictable; choose a longer passphrase of unrelated words")
    return value


Password = Annotated[
    str,
    Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH),
    AfterValidator(check_password_policy),
]
# The current password, given to change one's own: any string, checked against the stored hash.
CurrentPassword = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]


class TokenResponse(ReadModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str | None = None


class RevokeRequest(StrictModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512)]


class RoleAssignmentCreate(StrictModel):
    role: Role
    org_unit_id: Id | None = None


class RoleAssignmentRead(ReadModel):
    id: int
    role: Role
    org_unit_id: int | None


class UserCreate(StrictModel):
    username: Username
    password: Password
    full_name: Name
    org_unit_id: Id
    email: EmailStr | None = None
    person_id: Id | None = None


class UserUpdate(StrictModel):
    full_name: Name | None = None
    email: EmailStr | None = None
    password: Password | None = None
    # Required with ``password`` when users change their own (a stolen session must not be enough).
    current_password: CurrentPassword | None = None
    is_active: bool | None = None
    version: Version | None = None


class UserRead(ReadModel):
    id: int
    username: str
    full_name: str
    email: str | None
    org_unit_id: int | None
    is_active: bool
    is_service: bool
    person_id: int | None = None
    roles: list[RoleAssignmentRead] = Field(default_factory=list)
    version: int
    created_at: datetime


class ServiceAccountCreate(StrictModel):
    name: Name
    org_unit_id: Id
    roles: Annotated[list[Role], Field(min_length=1, max_length=7)]


class ServiceAccountRead(ReadModel):
    id: int
    name: str
    org_unit_id: int
    client_id: str
    roles: list[RoleAssignmentRead]
    is_active: bool


class ServiceAccountCreated(ServiceAccountRead):
    client_secret: str = Field(description="Shown once; store it now.")


class PersonBrief(ReadModel):
    id: int
    full_name: str
    org_unit_id: int
    group: str


class MeRead(ReadModel):
    user: UserRead
    person: PersonBrief | None
    roles: list[RoleAssignmentRead]
