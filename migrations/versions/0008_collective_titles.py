"""collective titles: households and clans, collective evaluations, digital level assessed for real

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 18:40:00

- ``collectives`` (households and clans), where they were placed (``collective_places``), their members
  (``household_members``: people; ``clan_households``: households), all dated.
- ``evaluations`` gain a ``title`` (the personal one for every existing row) and a subject other than a
  person (``collective_id``, ``subject_unit_id``); the digital level is declared by the person and
  confirmed by the assessor (``declared_digital_level``, ``reviewed_digital_level``); graded results keep
  their ``grade``.
- ``criteria_sets`` say what they recognise and may carry grades; digital thresholds become optional.
- ``aggregate_counts`` gain ``born`` (adults are counted by age) and are recreated empty: the counters'
  definition changed, so ``cdht migrate`` recounts them (``counter_state`` records which definition they
  were built with). Existing evaluations keep the digital level they were given.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("valid_to IS NULL")
_LEVELS = "'none', 'basic', 'proficient'"
_TITLES = "'learning_citizen', 'learning_family', 'learning_clan', 'learning_community', 'learning_unit'"


def _dated(name: str, *columns: sa.Column, fks: Sequence[tuple[str, str, str]]) -> None:
    """A table of dated rows: ``id``, ``columns``, ``valid_from``, ``valid_to``, and foreign keys
    (column, target table, on delete)."""
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        *columns,
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        *(
            sa.ForeignKeyConstraint(
                [column], [f"{target}.id"], name=op.f(f"fk_{name}_{column}_{target}"), ondelete=ondelete
            )
            for column, target, ondelete in fks
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    )


def _aggregate_counts(with_born: bool) -> None:
    keys = ["org_unit_id", "year", "kind", "grp", "level", *(["born"] if with_born else [])]
    op.create_table(
        "aggregate_counts",
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("grp", sa.String(length=20), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        *([sa.Column("born", sa.Integer(), nullable=False)] if with_born else []),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_aggregate_counts_org_unit_id_org_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(*keys, name=op.f("pk_aggregate_counts")),
    )


def upgrade() -> None:
    op.create_table(
        "counter_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("definition", sa.String(length=64), nullable=False),
        sa.Column("rebuilt_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counter_state")),
    )
    op.create_table(
        "collectives",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('household', 'clan')", name=op.f("ck_collectives_kind_known")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_collectives_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_collectives_org_unit_id_org_units"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collectives")),
        sa.UniqueConstraint("kind", "code", name=op.f("uq_collectives_kind_code")),
    )
    op.create_index("ix_collectives_org_unit_id_kind", "collectives", ["org_unit_id", "kind"])

    _dated(
        "collective_places",
        sa.Column("collective_id", sa.Integer(), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        fks=[("collective_id", "collectives", "CASCADE"), ("org_unit_id", "org_units", "RESTRICT")],
    )
    op.create_index("ix_collective_places_collective_id", "collective_places", ["collective_id"])
    op.create_index("ix_collective_places_org_unit_id", "collective_places", ["org_unit_id"])

    # Who (or which household) belonged to a household (or clan) when; one open period per member.
    for table, owner, member, target in (
        ("household_members", "household_id", "person_id", "people"),
        ("clan_households", "clan_id", "household_id", "collectives"),
    ):
        _dated(
            table,
            sa.Column(owner, sa.Integer(), nullable=False),
            sa.Column(member, sa.Integer(), nullable=False),
            fks=[(owner, "collectives", "CASCADE"), (member, target, "CASCADE")],
        )
        op.create_index(f"ix_{table}_{owner}", table, [owner])
        op.create_index(f"ix_{table}_{member}", table, [member])
        op.create_index(
            f"uq_{table}_{member}_open",
            table,
            [member],
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        )

    with op.batch_alter_table("criteria_sets") as batch:
        batch.add_column(
            sa.Column("recognises", sa.String(length=30), nullable=False, server_default="learning_citizen")
        )
        batch.add_column(sa.Column("grades", sa.JSON(), nullable=True))
        batch.alter_column("digital_basic_halves", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("digital_proficient_halves", existing_type=sa.Integer(), nullable=True)
        batch.create_index(batch.f("ix_criteria_sets_recognises"), ["recognises"])

    with op.batch_alter_table("evaluations") as batch:
        batch.add_column(
            sa.Column("title", sa.String(length=30), nullable=False, server_default="learning_citizen")
        )
        batch.add_column(sa.Column("collective_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("subject_unit_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("declared_digital_level", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("reviewed_digital_level", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("grade", sa.String(length=30), nullable=True))
        batch.alter_column("person_id", existing_type=sa.Integer(), nullable=True)
        batch.create_unique_constraint(
            batch.f("uq_evaluations_collective_id_year"), ["collective_id", "year"]
        )
        batch.create_unique_constraint(
            batch.f("uq_evaluations_subject_unit_id_year"), ["subject_unit_id", "year"]
        )
        batch.create_foreign_key(
            batch.f("fk_evaluations_subject_unit_id_org_units"),
            "org_units",
            ["subject_unit_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch.create_foreign_key(
            batch.f("fk_evaluations_collective_id_collectives"),
            "collectives",
            ["collective_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch.create_check_constraint("title_known", f"title IN ({_TITLES})")
        batch.create_check_constraint(
            "one_subject",
            "(CASE WHEN person_id IS NULL THEN 0 ELSE 1 END)"
            " + (CASE WHEN collective_id IS NULL THEN 0 ELSE 1 END)"
            " + (CASE WHEN subject_unit_id IS NULL THEN 0 ELSE 1 END) = 1",
        )
        batch.create_check_constraint(
            "declared_digital_level_known",
            f"declared_digital_level IS NULL OR declared_digital_level IN ({_LEVELS})",
        )
        batch.create_check_constraint(
            "reviewed_digital_level_known",
            f"reviewed_digital_level IS NULL OR reviewed_digital_level IN ({_LEVELS})",
        )

    op.drop_table("aggregate_counts")
    _aggregate_counts(with_born=True)


def downgrade() -> None:
    op.drop_table("aggregate_counts")
    _aggregate_counts(with_born=False)
    op.execute("DELETE FROM counter_state")
    op.execute("DELETE FROM evaluations WHERE person_id IS NULL")
    with op.batch_alter_table("evaluations") as batch:
        for name in (
            "reviewed_digital_level_known",
            "declared_digital_level_known",
            "one_subject",
            "title_known",
        ):
            batch.drop_constraint(batch.f(f"ck_evaluations_{name}"), type_="check")
        batch.drop_constraint(batch.f("fk_evaluations_collective_id_collectives"), type_="foreignkey")
        batch.drop_constraint(batch.f("fk_evaluations_subject_unit_id_org_units"), type_="foreignkey")
        batch.drop_constraint(batch.f("uq_evaluations_subject_unit_id_year"), type_="unique")
        batch.drop_constraint(batch.f("uq_evaluations_collective_id_year"), type_="unique")
        batch.alter_column("person_id", existing_type=sa.Integer(), nullable=False)
        for column in ("grade", "reviewed_digital_level", "declared_digital_level", "subject_unit_id"):
            batch.drop_column(column)
        batch.drop_column("collective_id")
        batch.drop_column("title")
    op.execute("DELETE FROM criteria_sets WHERE recognises <> 'learning_citizen'")
    op.execute("UPDATE criteria_sets SET digital_basic_halves = 10 WHERE digital_basic_halves IS NULL")
    op.execute(
        "UPDATE criteria_sets SET digital_proficient_halves = 16 WHERE digital_proficient_halves IS NULL"
    )
    with op.batch_alter_table("criteria_sets") as batch:
        batch.drop_index(batch.f("ix_criteria_sets_recognises"))
        batch.alter_column("digital_proficient_halves", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("digital_basic_halves", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("grades")
        batch.drop_column("recognises")
    for table in ("clan_households", "household_members", "collective_places"):
        op.drop_table(table)
    op.drop_index("ix_collectives_org_unit_id_kind", table_name="collectives")
    op.drop_table("collectives")
    op.drop_table("counter_state")
