"""login attempts: the login throttle's counters shared by every process; usernames unique whatever
their case

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _refuse_case_duplicates() -> None:
    """The unique index cannot be built while ``Alice`` and ``alice`` both exist: say which ones clash, so
    an administrator renames one (``UPDATE users SET username = ...``) and migrates again."""
    clashes = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT lower(username) FROM users GROUP BY lower(username) HAVING count(*) > 1 "
                "ORDER BY lower(username)"
            )
        )
        .scalars()
        .all()
    )
    if clashes:
        listed = ", ".join(repr(name) for name in clashes[:20])
        raise RuntimeError(
            f"Usernames must be unique whatever their case, but these exist in several cases: {listed}. "
            "Rename all but one of each, then run the migration again."
        )


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('user', 'address')", name=op.f("ck_login_attempts_kind_known")),
        sa.PrimaryKeyConstraint("kind", "key", name=op.f("pk_login_attempts")),
    )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_attempts_last_attempt_at"), ["last_attempt_at"], unique=False
        )

    # A unique index on lower(username), through a generated column: SQLite cannot reflect an index on an
    # expression, a column it can (VIRTUAL on SQLite, so no table rebuild; STORED on PostgreSQL).
    _refuse_case_duplicates()
    stored = op.get_bind().dialect.name == "postgresql"  # SQLite adds only VIRTUAL columns in place
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "username_lower",
                sa.String(length=64),
                sa.Computed("lower(username)", persisted=stored),
                nullable=False,
            )
        )
        batch_op.create_index(batch_op.f("ix_users_username_lower"), ["username_lower"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_username_lower"))
    # Not in batch mode: rebuilding ``users`` on SQLite would cascade deletes through the foreign keys.
    op.drop_column("users", "username_lower")

    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_attempts_last_attempt_at"))

    op.drop_table("login_attempts")
