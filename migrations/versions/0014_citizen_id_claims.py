"""citizen id claims: a person registered with an id held by a record the registering user may not edit

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_citizen_id", sa.String(length=20), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_people_claimed_citizen_id"), ["claimed_citizen_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_people_claimed_citizen_id"))
        batch_op.drop_column("claimed_citizen_id")
