"""aggregate counters: rolled-up counts per unit, year, kind, group and digital level

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "aggregate_counts",
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("grp", sa.String(length=20), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_aggregate_counts_org_unit_id_org_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "org_unit_id", "year", "kind", "grp", "level", name=op.f("pk_aggregate_counts")
        ),
    )
    # Existing data (people, decisions, attendance) is counted once here; from now on the services keep it.
    op.execute(
        """
        INSERT INTO aggregate_counts (org_unit_id, year, kind, grp, level, n)
        SELECT c.ancestor_id, 0, 'people', d.grp, '', SUM(d.n)
        FROM (SELECT org_unit_id, grp, COUNT(*) AS n FROM people GROUP BY org_unit_id, grp) d
        JOIN org_unit_closure c ON c.descendant_id = d.org_unit_id
        GROUP BY c.ancestor_id, d.grp
        """
    )
    op.execute(
        """
        INSERT INTO aggregate_counts (org_unit_id, year, kind, grp, level, n)
        SELECT c.ancestor_id, d.year, 'recognised', d.grp, d.level, SUM(d.n)
        FROM (
            SELECT p.org_unit_id, e.year, p.grp, COALESCE(e.digital_level, '') AS level, COUNT(*) AS n
            FROM evaluations e
            JOIN people p ON p.id = e.person_id
            JOIN recognition_decisions r ON r.id = e.decision_id
            WHERE e.status = 'recognised' AND r.status = 'active'
            GROUP BY p.org_unit_id, e.year, p.grp, COALESCE(e.digital_level, '')
        ) d
        JOIN org_unit_closure c ON c.descendant_id = d.org_unit_id
        GROUP BY c.ancestor_id, d.year, d.grp, d.level
        """
    )
    op.execute(
        """
        INSERT INTO aggregate_counts (org_unit_id, year, kind, grp, level, n)
        SELECT c.ancestor_id, d.year, 'trained', d.grp, '', SUM(d.n)
        FROM (
            SELECT p.org_unit_id, t.year, p.grp, COUNT(*) AS n
            FROM (SELECT DISTINCT a.person_id, s.year
                  FROM training_attendance a JOIN training_sessions s ON s.id = a.session_id) t
            JOIN people p ON p.id = t.person_id
            GROUP BY p.org_unit_id, t.year, p.grp
        ) d
        JOIN org_unit_closure c ON c.descendant_id = d.org_unit_id
        GROUP BY c.ancestor_id, d.year, d.grp
        """
    )


def downgrade() -> None:
    op.drop_table("aggregate_counts")
