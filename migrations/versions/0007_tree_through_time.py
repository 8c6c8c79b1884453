"""the tree through time: unit lifetimes, the dated closure, memberships, transfers, reorganisations

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 15:40:00

Existing data keeps its numbers: every unit, closure pair and person gets an open period (since always,
still), which counts exactly as the counters did before. ``org_units.dissolved_on`` was a label that moved
nothing; it is dropped (apply a reorganisation to end a unit). The counters gain the ``evaluated`` cells
(people of the subtree with an evaluation of the year), rolled up here with the closure.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("org_units") as batch:
        batch.add_column(sa.Column("valid_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("valid_to", sa.Date(), nullable=True))
        batch.drop_column("dissolved_on")

    op.create_table(
        "org_unit_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ancestor_id", sa.Integer(), nullable=False),
        sa.Column("descendant_id", sa.Integer(), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ancestor_id"],
            ["org_units.id"],
            name=op.f("fk_org_unit_links_ancestor_id_org_units"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["descendant_id"],
            ["org_units.id"],
            name=op.f("fk_org_unit_links_descendant_id_org_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_unit_links")),
    )
    op.create_index(
        "ix_org_unit_links_descendant_id_ancestor_id", "org_unit_links", ["descendant_id", "ancestor_id"]
    )
    op.create_index("ix_org_unit_links_ancestor_id_depth", "org_unit_links", ["ancestor_id", "depth"])
    op.execute(
        "INSERT INTO org_unit_links (ancestor_id, descendant_id, depth) "
        "SELECT ancestor_id, descendant_id, depth FROM org_unit_closure"
    )

    op.create_table(
        "org_unit_former_names",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_org_unit_former_names_org_unit_id_org_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_unit_former_names")),
    )
    op.create_index(
        "ix_org_unit_former_names_org_unit_id_valid_to", "org_unit_former_names", ["org_unit_id", "valid_to"]
    )

    op.create_table(
        "reorganisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("document_no", sa.String(length=64), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("created", sa.JSON(), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_reorganisations_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_reorganisations_org_unit_id_org_units"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reorganisations")),
    )
    op.create_index(op.f("ix_reorganisations_effective_on"), "reorganisations", ["effective_on"])
    op.create_index(op.f("ix_reorganisations_org_unit_id"), "reorganisations", ["org_unit_id"])

    op.create_table(
        "reorganisation_units",
        sa.Column("reorganisation_id", sa.Integer(), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reorganisation_id"],
            ["reorganisations.id"],
            name=op.f("fk_reorganisation_units_reorganisation_id_reorganisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_reorganisation_units_org_unit_id_org_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("reorganisation_id", "org_unit_id", name=op.f("pk_reorganisation_units")),
    )
    op.create_index(op.f("ix_reorganisation_units_org_unit_id"), "reorganisation_units", ["org_unit_id"])

    op.create_table(
        "org_unit_successions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("predecessor_id", sa.Integer(), nullable=False),
        sa.Column("successor_id", sa.Integer(), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("reorganisation_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["predecessor_id"],
            ["org_units.id"],
            name=op.f("fk_org_unit_successions_predecessor_id_org_units"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["successor_id"],
            ["org_units.id"],
            name=op.f("fk_org_unit_successions_successor_id_org_units"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reorganisation_id"],
            ["reorganisations.id"],
            name=op.f("fk_org_unit_successions_reorganisation_id_reorganisations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_unit_successions")),
    )
    op.create_index("ix_org_unit_successions_predecessor_id", "org_unit_successions", ["predecessor_id"])
    op.create_index("ix_org_unit_successions_successor_id", "org_unit_successions", ["successor_id"])

    op.create_table(
        "memberships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("grp", sa.String(length=20), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "grp IN ('resident', 'worker', 'staff', 'student')", name=op.f("ck_memberships_group_known")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_memberships_person_id_people"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_memberships_org_unit_id_org_units"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
    )
    op.create_index("ix_memberships_person_id", "memberships", ["person_id"])
    op.create_index("ix_memberships_org_unit_id", "memberships", ["org_unit_id"])
    op.execute(
        "INSERT INTO memberships (person_id, org_unit_id, grp) SELECT id, org_unit_id, grp FROM people"
    )

    op.create_table(
        "person_transfers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("from_unit_id", sa.Integer(), nullable=False),
        sa.Column("to_unit_id", sa.Integer(), nullable=False),
        sa.Column("from_group", sa.String(length=20), nullable=False),
        sa.Column("to_group", sa.String(length=20), nullable=False),
        sa.Column("reorganisation_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_person_transfers_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["from_unit_id"],
            ["org_units.id"],
            name=op.f("fk_person_transfers_from_unit_id_org_units"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["to_unit_id"],
            ["org_units.id"],
            name=op.f("fk_person_transfers_to_unit_id_org_units"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["reorganisation_id"],
            ["reorganisations.id"],
            name=op.f("fk_person_transfers_reorganisation_id_reorganisations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_person_transfers_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_transfers")),
    )
    op.create_index("ix_person_transfers_person_id", "person_transfers", ["person_id", "effective_on"])

    # People of each subtree with an evaluation of the year (any status): "no evaluation → no_data".
    op.execute(
        "INSERT INTO aggregate_counts (org_unit_id, year, kind, grp, level, n) "
        "SELECT c.ancestor_id, e.year, 'evaluated', p.grp, '', COUNT(*) "
        "FROM evaluations e JOIN people p ON p.id = e.person_id "
        "JOIN org_unit_closure c ON c.descendant_id = p.org_unit_id "
        "GROUP BY c.ancestor_id, e.year, p.grp"
    )


def downgrade() -> None:
    op.execute("DELETE FROM aggregate_counts WHERE kind = 'evaluated'")
    op.drop_index("ix_person_transfers_person_id", table_name="person_transfers")
    op.drop_table("person_transfers")
    op.drop_index("ix_memberships_org_unit_id", table_name="memberships")
    op.drop_index("ix_memberships_person_id", table_name="memberships")
    op.drop_table("memberships")
    op.drop_index(op.f("ix_reorganisation_units_org_unit_id"), table_name="reorganisation_units")
    op.drop_table("reorganisation_units")
    op.drop_index("ix_org_unit_successions_successor_id", table_name="org_unit_successions")
    op.drop_index("ix_org_unit_successions_predecessor_id", table_name="org_unit_successions")
    op.drop_table("org_unit_successions")
    op.drop_index(op.f("ix_reorganisations_org_unit_id"), table_name="reorganisations")
    op.drop_index(op.f("ix_reorganisations_effective_on"), table_name="reorganisations")
    op.drop_table("reorganisations")
    op.drop_index("ix_org_unit_former_names_org_unit_id_valid_to", table_name="org_unit_former_names")
    op.drop_table("org_unit_former_names")
    op.drop_index("ix_org_unit_links_ancestor_id_depth", table_name="org_unit_links")
    op.drop_index("ix_org_unit_links_descendant_id_ancestor_id", table_name="org_unit_links")
    op.drop_table("org_unit_links")
    with op.batch_alter_table("org_units") as batch:
        batch.add_column(sa.Column("dissolved_on", sa.Date(), nullable=True))
        batch.drop_column("valid_to")
        batch.drop_column("valid_from")
