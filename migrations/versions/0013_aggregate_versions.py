"""aggregate versions: a change counter per unit and year of the counters, kept by report submissions

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "aggregate_versions",
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_aggregate_versions_org_unit_id_org_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_unit_id", "year", name=op.f("pk_aggregate_versions")),
    )
    # Submissions made before have no counts_version (NULL): their changes are recounted on each read.
    with op.batch_alter_table("report_submissions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("counts_version", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("report_submissions", schema=None) as batch_op:
        batch_op.drop_column("counts_version")
    op.drop_table("aggregate_versions")
