"""Auth, user, role and service-account bodies. No response model has a password, hash or secret field
except the one-time ``client_secret`` of a new service account."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import EmailStr, Field, StringConstraints, field_validator

from app.auth.models import Role
from app.core.schemas import Id, Name, ReadModel, StrictModel, Version
from app.core.security import MIN_PASSWORD_LENGTH

Username = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=64, pattern=r"^[A-Za-z0-9._@\-]+$")
]
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=128)]


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

    @field_validator("password")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class UserUpdate(StrictModel):
    full_name: Name | None = None
    email: EmailStr | None = None
    password: Password | None = None
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
