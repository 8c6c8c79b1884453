"""review queue: evaluations waiting for the committee, rolled up per unit subtree, year and day

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_queue_counts",
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("submitted_on", sa.Date(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_review_queue_counts_org_unit_id_org_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_unit_id", "year", "submitted_on", name=op.f("pk_review_queue_counts")),
    )
    # Fill it from the evaluations already waiting: each counts at its unit and every ancestor of today.
    day = (
        "CAST(timezone('UTC', e.submitted_at) AS DATE)"
        if op.get_bind().dialect.name == "postgresql"
        else "date(e.submitted_at)"
    )
    # No input reaches this SQL: the day expression is one of two constants.
    sql = (
        "INSERT INTO review_queue_counts (org_unit_id, year, submitted_on, n) "
        "SELECT c.ancestor_id, e.year, DAY, count(*) "
        "FROM evaluations e JOIN org_unit_closure c ON c.descendant_id = e.org_unit_id "
        "WHERE e.status IN ('submitted', 'in_review') AND e.submitted_at IS NOT NULL "
        "GROUP BY c.ancestor_id, e.year, DAY"
    )
    op.execute(sql.replace("DAY", day))


def downgrade() -> None:
    op.drop_table("review_queue_counts")
