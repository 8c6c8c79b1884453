"""change epochs: change counters for what the dashboards read besides the counters (their ETags)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "change_epochs",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_change_epochs")),
    )
    op.bulk_insert(table, [{"kind": "reference", "epoch": 0}, {"kind": "records", "epoch": 0}])


def downgrade() -> None:
    op.drop_table("change_epochs")
