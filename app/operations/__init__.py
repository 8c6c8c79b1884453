"""Operating a deployment: ``cdht backup`` and ``cdht restore`` (the database and the evidence files, with a
manifest of sha256s).

- ``manifest.py``: what a backup folder holds, its ``manifest.json``, and the check of every file's hash;
- ``postgres.py``: ``pg_dump`` / ``pg_restore`` (found, version-checked, given the password by the
  environment), the restore as one transaction;
- ``sqlite.py``: SQLite's online backup API, both ways;
- ``backup.py``: the two commands, in the order that keeps a backup consistent.
"""


class BackupError(Exception):
    """A backup or a restore cannot go on; the message says why and what to do."""
