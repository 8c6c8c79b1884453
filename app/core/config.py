"""Settings, read from ``CDHT_*`` environment variables.

Database URLs are the plain ones a person types (``sqlite:///var/cdht.db``, ``postgresql://u:p@h/db``); the
async driver is chosen here so nobody has to know driver names.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_WEAK_KEYS = {"", "secret", "changeme", "change-me", "changethis", "dev", "development", "cdht"}
MIN_SECRET_LENGTH = 32
MIN_METRICS_TOKEN_LENGTH = 24


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
    # PostgreSQL connections kept per process, and how many more it may open under a burst. Sized above a
    # process's usual concurrency so connections are reused rather than opened and closed per request;
    # workers x (size + overflow) must stay below the server's max_connections (100 by default).
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    # What a process keeps between requests (the caller's identity, dashboards' ETags) is read again when any
    # process of this host changes it (app/core/generations.py), and at the latest after this many seconds
    # (a change the sessions cannot see: SQL typed by hand). 0 keeps nothing: the setting for an API served
    # from several hosts against one database.
    cache_max_age_seconds: float = Field(default=5.0, ge=0, le=3600)
    # The bodies a process keeps: the dashboards' (progress, breakdown, trend), by the change counters they
    # were computed from, and the pages of /org-units, by the tree's generation (orgs/pages.py): a read
    # whose key has not moved is answered without computing it again. 0: none.
    kept_bodies_mb: float = Field(default=32.0, ge=0, le=4096)
    # GET /alerts and the alert scan: an evaluation submitted longer ago than this waits too long for
    # review (``review_waiting``); the query parameter ``review_days`` overrides it per request.
    review_waiting_days: int = Field(default=14, ge=0, le=3650)
    cors_origins: list[str] = []

    # GET /metrics answers a bearer equal to this (and administrators' access tokens); unset: admins only.
    metrics_token: SecretStr | None = None
    # Log lines on stderr: `text` for people, `json` (one object a line, with the request id) for collectors.
    log_format: Literal["text", "json"] = "text"

    # Read replicas (app/core/replicas.py): PostgreSQL streaming replicas, comma-separated, that the
    # dashboards read from. A replica measured more than `replica_max_lag_seconds` behind (at most every
    # `replica_poll_seconds`) is skipped; one that fails is left alone for `replica_retry_seconds`. A user's
    # reads stay on the primary for `read_your_writes_seconds` after their last write: at least the lag
    # allowed plus the poll interval, so a replica chosen after that window has the write.
    read_database_url: str = ""
    replica_max_lag_seconds: float = Field(default=5.0, gt=0)
    replica_poll_seconds: float = Field(default=2.0, gt=0)
    replica_retry_seconds: float = Field(default=10.0, gt=0)
    replica_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    read_your_writes_seconds: float = Field(default=10.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgresql:", "postgres:")):
            raise ValueError("CDHT_DATABASE_URL must start with sqlite:/// or postgresql://")
        return value

    @property
    def read_database_urls(self) -> list[str]:
        return [url.strip() for url in self.read_database_url.split(",") if url.strip()]

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _metrics_token(cls, value: object) -> object:
        if value is None or value == "":
            return None  # `CDHT_METRICS_TOKEN=` means no token, not an empty one
        if isinstance(value, str | SecretStr):
            secret = value.get_secret_value() if isinstance(value, SecretStr) else value
            if len(secret) < MIN_METRICS_TOKEN_LENGTH:
                raise ValueError(
                    f"CDHT_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN_LENGTH} characters "
                    "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)."
                )
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

    @model_validator(mode="after")
    def _replicas(self) -> Settings:
        """Replicas only beside a PostgreSQL primary, and a read-your-writes window long enough to be safe."""
        urls = self.read_database_urls
        if not urls:
            return self
        if not self.effective_database_url.startswith(("postgresql:", "postgres:")):
            raise ValueError(
                "CDHT_READ_DATABASE_URL needs a PostgreSQL primary (CDHT_DATABASE_URL=postgresql://...): "
                "SQLite has no replicas. Unset CDHT_READ_DATABASE_URL."
            )
        for url in urls:
            if not url.startswith(("postgresql:", "postgres:")):
                raise ValueError("each URL of CDHT_READ_DATABASE_URL must start with postgresql://")
        if self.read_your_writes_seconds < self.replica_max_lag_seconds + self.replica_poll_seconds:
            raise ValueError(
                "CDHT_READ_YOUR_WRITES_SECONDS must be at least CDHT_REPLICA_MAX_LAG_SECONDS + "
                "CDHT_REPLICA_POLL_SECONDS: a writer's reads may go to a replica after that window, which "
                "must by then have replayed the write."
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
