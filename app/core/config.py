"""Settings, read from ``CDHT_*`` environment variables.

Database URLs are the plain ones a person types (``sqlite:///var/cdht.db``, ``postgresql://u:p@h/db``); the
async driver is chosen here so nobody has to know driver names.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_WEAK_KEYS = {"", "secret", "changeme", "change-me", "changethis", "dev", "development", "cdht"}
MIN_SECRET_LENGTH = 32


class ConfigurationError(RuntimeError):
    """The service cannot start with these settings."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDHT_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    var_dir: Path = Path("var")
    database_url: str = ""
    secret_key: str = ""
    evidence_dir: Path | None = None
    max_evidence_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    max_request_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    max_import_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    # Imports larger than this run as background jobs (202 + GET /imports/jobs/{id}); about 130,000 people
    # rows by default. 0 sends every import to a job.
    import_job_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    import_job_timeout_seconds: int = Field(default=30 * 60, gt=0)
    import_jobs_dir: Path | None = None
    # Whether this process runs queued import jobs (false where a separate `cdht import-worker` does).
    import_worker: bool = True
    import_worker_poll_seconds: float = Field(default=5.0, gt=0)

    # Webhooks (app/webhooks/deliverer.py). Whether this process delivers (false where a separate
    # `cdht worker` does); how often it looks for work nobody woke it for; the retry schedule: attempt n
    # waits min(cap, base * 2**(n-1)) seconds, with jitter, and after `max_attempts` the delivery is failed.
    # The defaults (5 s doubling to 1 h, 48 attempts) keep retrying for about a day and a half.
    webhook_worker: bool = True
    webhook_poll_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_cap_seconds: float = Field(default=3600.0, gt=0)
    webhook_max_attempts: int = Field(default=48, ge=1)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # Subscriptions sent to at once by one process, and deliveries taken from the database per batch.
    webhook_concurrency: int = Field(default=16, ge=1, le=256)
    webhook_batch_size: int = Field(default=100, ge=1, le=1000)
    # How often the worker looks for new alerts to announce (alert.raised); 0 switches the scan off.
    alert_scan_seconds: float = Field(default=900.0, ge=0)

    jwt_issuer: str = "cdht"
    jwt_audience: str = "cdht-api"
    access_token_minutes: int = Field(default=10, gt=0, le=15)
    refresh_token_days: int = Field(default=14, gt=0, le=90)

    login_max_failures: int = Field(default=5, gt=0)
    login_lockout_seconds: int = Field(default=300, gt=0)
    login_max_failures_per_address: int = Field(default=50, gt=0)

    statement_timeout_ms: int = Field(default=15_000, gt=0)
    # GET /alerts and the alert scan: an evaluation submitted longer ago than this waits too long for
    # review (``review_waiting``); the query parameter ``review_days`` overrides it per request.
    review_waiting_days: int = Field(default=14, ge=0, le=3650)
    cors_origins: list[str] = []

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgresql:", "postgres:")):
            raise ValueError("CDHT_DATABASE_URL must start with sqlite:/// or postgresql://")
        return value

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'cdht.db'}"

    @property
    def effective_evidence_dir(self) -> Path:
        return self.evidence_dir or self.var_dir / "evidence"

    @property
    def effective_import_jobs_dir(self) -> Path:
        return self.import_jobs_dir or self.var_dir / "import-jobs"

    @model_validator(mode="after")
    def _production_secret(self) -> Settings:
        """In production the signing key is given, long and not a placeholder: checked when the settings
        are read, so a process never starts (and no token is ever signed) with a weak one."""
        if self.env != "production":
            return self
        if not self.secret_key:
            raise ValueError("CDHT_SECRET_KEY must be set when CDHT_ENV=production.")
        if len(self.secret_key) < MIN_SECRET_LENGTH or self.secret_key.lower() in _WEAK_KEYS:
            raise ValueError(
                f"CDHT_SECRET_KEY is too weak for production: use at least {MIN_SECRET_LENGTH} random "
                "characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)."
            )
        return self

    def signing_key(self) -> str:
        """The JWT signing key; in development one is generated once and kept under ``var/``."""
        if self.secret_key:
            return self.secret_key
        if self.env == "production":  # unreachable: refused by the validator
            raise ConfigurationError("CDHT_SECRET_KEY must be set when CDHT_ENV=production.")
        key_file = self.var_dir / "secret_key"
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_urlsafe(48))
            key_file.chmod(0o600)
        return key_file.read_text().strip()


def to_async_url(url: str) -> str:
    """Map a plain database URL onto the async driver the app uses."""
    if url.startswith("sqlite:"):
        return "sqlite+aiosqlite:" + url[len("sqlite:") :]
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
