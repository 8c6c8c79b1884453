"""user write marks: when each user last changed something, so their reads stay on the primary for a while
(read replicas' read-your-writes)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_write_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Not in batch mode: rebuilding ``users`` on SQLite would cascade deletes through the foreign keys
    # (and cannot copy its generated column); SQLite drops a plain column in place.
    op.drop_column("users", "last_write_at")
