"""criteria sets, evaluations, evidence, recognition decisions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 10:00:34.443997
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "criteria_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("grp", sa.String(length=20), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("needs_verification", sa.Boolean(), nullable=False),
        sa.Column("max_total", sa.Integer(), nullable=False),
        sa.Column("pass_total", sa.Integer(), nullable=False),
        sa.Column("min_indicator", sa.Integer(), nullable=False),
        sa.Column("digital_basic_halves", sa.Integer(), nullable=False),
        sa.Column("digital_proficient_halves", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("org_unit_id", sa.Integer(), nullable=True),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("content_digest", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('active', 'retired')", name=op.f("ck_criteria_sets_status_known")),
        sa.CheckConstraint("pass_total <= max_total", name=op.f("ck_criteria_sets_pass_within_max")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_criteria_sets_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_criteria_sets_org_unit_id_org_units"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["criteria_sets.id"],
            name=op.f("fk_criteria_sets_parent_id_criteria_sets"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_criteria_sets")),
        sa.UniqueConstraint("code", "version", name=op.f("uq_criteria_sets_code_version")),
    )
    with op.batch_alter_table("criteria_sets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_criteria_sets_grp"), ["grp"], unique=False)
        batch_op.create_index(batch_op.f("ix_criteria_sets_org_unit_id"), ["org_unit_id"], unique=False)

    op.create_table(
        "recognition_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.Column("signed_by", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Integer(), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'revoked')", name=op.f("ck_recognition_decisions_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_recognition_decisions_org_unit_id_org_units"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["revoked_by"],
            ["users.id"],
            name=op.f("fk_recognition_decisions_revoked_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["signed_by"],
            ["users.id"],
            name=op.f("fk_recognition_decisions_signed_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recognition_decisions")),
        sa.UniqueConstraint(
            "org_unit_id", "year", "number", name=op.f("uq_recognition_decisions_org_unit_id_year_number")
        ),
    )
    with op.batch_alter_table("recognition_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recognition_decisions_org_unit_id"), ["org_unit_id"], unique=False
        )

    op.create_table(
        "criteria",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["criteria_sets.id"],
            name=op.f("fk_criteria_set_id_criteria_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_criteria")),
        sa.UniqueConstraint("set_id", "number", name=op.f("uq_criteria_set_id_number")),
    )
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("org_unit_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("criteria_set_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("total_halves", sa.Integer(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("failing_indicators", sa.JSON(), nullable=True),
        sa.Column("digital_level", sa.String(length=20), nullable=True),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("return_reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'submitted', 'in_review', 'returned', 'reviewed', 'recognised', 'withdrawn')",
            name=op.f("ck_evaluations_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_evaluations_created_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["criteria_set_id"],
            ["criteria_sets.id"],
            name=op.f("fk_evaluations_criteria_set_id_criteria_sets"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["recognition_decisions.id"],
            name=op.f("fk_evaluations_decision_id_recognition_decisions"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["org_unit_id"],
            ["org_units.id"],
            name=op.f("fk_evaluations_org_unit_id_org_units"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_evaluations_person_id_people"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
        sa.UniqueConstraint("person_id", "year", name=op.f("uq_evaluations_person_id_year")),
    )
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evaluations_decision_id"), ["decision_id"], unique=False)
        batch_op.create_index(
            "ix_evaluations_org_unit_id_year_status", ["org_unit_id", "year", "status"], unique=False
        )

    op.create_table(
        "indicators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("set_id", sa.Integer(), nullable=False),
        sa.Column("criterion_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("max_points", sa.Integer(), nullable=False),
        sa.Column("evidence_hint", sa.Text(), nullable=True),
        sa.Column("digital", sa.Boolean(), nullable=False),
        sa.CheckConstraint("max_points > 0", name=op.f("ck_indicators_max_points_positive")),
        sa.ForeignKeyConstraint(
            ["criterion_id"],
            ["criteria.id"],
            name=op.f("fk_indicators_criterion_id_criteria"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["set_id"],
            ["criteria_sets.id"],
            name=op.f("fk_indicators_set_id_criteria_sets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indicators")),
        sa.UniqueConstraint("set_id", "number", name=op.f("uq_indicators_set_id_number")),
    )
    with op.batch_alter_table("indicators", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_indicators_set_id"), ["set_id"], unique=False)

    op.create_table(
        "recognition_decision_items",
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["recognition_decisions.id"],
            name=op.f("fk_recognition_decision_items_decision_id_recognition_decisions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_recognition_decision_items_evaluation_id_evaluations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("decision_id", "evaluation_id", name=op.f("pk_recognition_decision_items")),
    )
    with op.batch_alter_table("recognition_decision_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recognition_decision_items_evaluation_id"), ["evaluation_id"], unique=False
        )

    op.create_table(
        "evaluation_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("indicator_id", sa.Integer(), nullable=False),
        sa.Column("self_halves", sa.Integer(), nullable=True),
        sa.Column("review_halves", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_evaluation_scores_evaluation_id_evaluations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["indicator_id"],
            ["indicators.id"],
            name=op.f("fk_evaluation_scores_indicator_id_indicators"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_scores")),
        sa.UniqueConstraint(
            "evaluation_id", "indicator_id", name=op.f("uq_evaluation_scores_evaluation_id_indicator_id")
        ),
    )
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), nullable=False),
        sa.Column("indicator_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("storage_key", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("rejected", sa.Boolean(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["evaluation_id"],
            ["evaluations.id"],
            name=op.f("fk_evidence_evaluation_id_evaluations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["indicator_id"],
            ["indicators.id"],
            name=op.f("fk_evidence_indicator_id_indicators"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"], ["users.id"], name=op.f("fk_evidence_uploaded_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_evidence_storage_key")),
    )
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.create_index(
            "ix_evidence_evaluation_id_indicator_id", ["evaluation_id", "indicator_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_index("ix_evidence_evaluation_id_indicator_id")

    op.drop_table("evidence")
    op.drop_table("evaluation_scores")
    with op.batch_alter_table("recognition_decision_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recognition_decision_items_evaluation_id"))

    op.drop_table("recognition_decision_items")
    with op.batch_alter_table("indicators", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_indicators_set_id"))

    op.drop_table("indicators")
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.drop_index("ix_evaluations_org_unit_id_year_status")
        batch_op.drop_index(batch_op.f("ix_evaluations_decision_id"))

    op.drop_table("evaluations")
    op.drop_table("criteria")
    with op.batch_alter_table("recognition_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recognition_decisions_org_unit_id"))

    op.drop_table("recognition_decisions")
    with op.batch_alter_table("criteria_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_criteria_sets_org_unit_id"))
        batch_op.drop_index(batch_op.f("ix_criteria_sets_grp"))

    op.drop_table("criteria_sets")
