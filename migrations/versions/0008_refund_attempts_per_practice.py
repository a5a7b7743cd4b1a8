"""refund attempts belong to a practice: a caller's idempotency key is looked up in the
practice it was used in

Revision ID: 0008_refund_attempts_practice
Revises: 0007_charge_returns

A refund attempt's caller key was unique per (user, key): one person working in two practices
who refunded with the same key in the second got CONFLICT. Attempts now carry the practice of
their invoice, and the key is unique per (practice, user, key), as idempotency keys are (0004).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_refund_attempts_practice"
down_revision: str | None = "0007_charge_returns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("refund_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("practice_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE refund_attempts SET practice_id = "
        "(SELECT invoices.practice_id FROM invoices WHERE invoices.id = refund_attempts.invoice_id)"
    )
    with op.batch_alter_table("refund_attempts", schema=None) as batch_op:
        batch_op.alter_column("practice_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(
            "uq_refund_attempts_requested_by_id_request_key", type_="unique"
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_refund_attempts_practice_id_requested_by_id_request_key"),
            ["practice_id", "requested_by_id", "request_key"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_refund_attempts_practice_id_practices"),
            "practices",
            ["practice_id"],
            ["id"],
        )


def downgrade() -> None:
    # Two practices may now hold the same (user, key): the older attempt keeps its key.
    op.execute(
        "UPDATE refund_attempts SET request_key = NULL, request_hash = NULL "
        "WHERE request_key IS NOT NULL AND id NOT IN "
        "(SELECT MIN(id) FROM refund_attempts WHERE request_key IS NOT NULL "
        "GROUP BY requested_by_id, request_key)"
    )
    with op.batch_alter_table("refund_attempts", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_refund_attempts_practice_id_practices"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("uq_refund_attempts_practice_id_requested_by_id_request_key"),
            type_="unique",
        )
        batch_op.create_unique_constraint(
            "uq_refund_attempts_requested_by_id_request_key", ["requested_by_id", "request_key"]
        )
        batch_op.drop_column("practice_id")
