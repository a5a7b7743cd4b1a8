"""refund attempts: every refund at the processor is committed before the call; removed
payment processors are kept (marked removed) for the payments taken through them

Revision ID: 0003_refund_attempts
Revises: 0002_notifications
Create Date: 2026-12-01 23:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_refund_attempts"
down_revision: str | None = "0002_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payment_processors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint("uq_payment_processors_practice_id_type", type_="unique")
        batch_op.create_index(
            "uq_payment_processors_live_type",
            ["practice_id", "type"],
            unique=True,
            sqlite_where=sa.text("removed_at IS NULL"),
            postgresql_where=sa.text("removed_at IS NULL"),
        )
    op.create_table(
        "refund_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("processor_id", sa.Integer(), nullable=True),
        sa.Column("payment_reference", sa.String(length=255), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("card_amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("request_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("processor_reference", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_refund_attempts_invoice_id_invoices")
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name=op.f("fk_refund_attempts_payment_id_payments")
        ),
        sa.ForeignKeyConstraint(
            ["processor_id"],
            ["payment_processors.id"],
            name=op.f("fk_refund_attempts_processor_id_payment_processors"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["users.id"], name=op.f("fk_refund_attempts_requested_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_attempts")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_refund_attempts_idempotency_key")),
        sa.UniqueConstraint(
            "processor_reference", name=op.f("uq_refund_attempts_processor_reference")
        ),
        sa.UniqueConstraint(
            "requested_by_id",
            "request_key",
            name=op.f("uq_refund_attempts_requested_by_id_request_key"),
        ),
    )
    with op.batch_alter_table("refund_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_refund_attempts_invoice_id"), ["invoice_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("refund_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refund_attempts_invoice_id"))
    op.drop_table("refund_attempts")
    # Removed processors go: the old schema holds one row per type per practice.
    op.execute("DELETE FROM payment_processors WHERE removed_at IS NOT NULL")
    with op.batch_alter_table("payment_processors", schema=None) as batch_op:
        batch_op.drop_index("uq_payment_processors_live_type")
        batch_op.create_unique_constraint(
            "uq_payment_processors_practice_id_type", ["practice_id", "type"]
        )
        batch_op.drop_column("removed_at")
