# CDHT API image: `cdht serve` on port 8000 (it migrates the database on start).
# Needs CDHT_SECRET_KEY (≥ 32 random characters) and usually CDHT_DATABASE_URL; see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CDHT_ENV=production \
    CDHT_VAR_DIR=/srv/cdht/var \
    CDHT_EVIDENCE_DIR=/srv/cdht/var/evidence \
    CDHT_IMPORT_JOBS_DIR=/srv/cdht/var/import-jobs

# `cdht backup` / `cdht restore` run pg_dump, pg_restore and psql: the client of the server's major version
# (Debian bookworm's postgresql-client is 15, like docker-compose.yml's server).
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 cdht \
    && useradd --system --uid 10001 --gid cdht --home-dir /srv/cdht --no-create-home \
       --shell /usr/sbin/nologin cdht

# The app finds migrations/ and criteria_seeds/ beside its app/ package (app/cli.py, app/seeds.py), so the
# package is installed in editable mode from /srv/cdht and keeps the repository's layout.
WORKDIR /srv/cdht

# Dependencies first, in a layer that is rebuilt only when pyproject.toml changes: an editable install of
# a placeholder package pulls every dependency and the `cdht` script; the real app/ replaces it below.
COPY pyproject.toml README.md ./
RUN mkdir app && touch app/__init__.py && pip install -e .

COPY alembic.ini ./
COPY migrations ./migrations
COPY criteria_seeds ./criteria_seeds
COPY app ./app

# Code stays root-owned and read-only for the service; only var/ (SQLite fallback, evidence, queued import
# uploads) is writable. A named volume mounted on var/evidence or var/import-jobs starts with this ownership.
RUN mkdir -p /srv/cdht/var/evidence /srv/cdht/var/import-jobs && chown -R cdht:cdht /srv/cdht/var

USER cdht
EXPOSE 8000

# No curl in the slim image: ask /healthz with the standard library (urlopen raises on non-2xx).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["cdht", "serve", "--host", "0.0.0.0", "--port", "8000"]
