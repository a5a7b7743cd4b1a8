"""charge returns: a charge an invoice could not take is given back to the card as a durable
attempt (a refund attempt of kind RETURN, once per charge)

Revision ID: 0007_charge_returns
Revises: 0006_invitations
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_charge_returns"
down_revision: str | None = "0006_invitations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RETURNS = "kind = 'RETURN'"


def upgrade() -> None:
    with op.batch_alter_table("refund_attempts", schema=None) as batch_op:
        # Every attempt so far refunds a recorded payment.
        batch_op.add_column(
            sa.Column("kind", sa.String(length=32), nullable=False, server_default="REFUND")
        )
        batch_op.alter_column("payment_id", existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table("refund_attempts", schema=None) as batch_op:
        batch_op.alter_column("kind", existing_type=sa.String(length=32), server_default=None)
        batch_op.create_index(
            "uq_refund_attempts_returned_charge",
            ["payment_reference"],
            unique=True,
            sqlite_where=sa.text(_RETURNS),
            postgresql_where=sa.text(_RETURNS),
        )


def downgrade() -> None:
    # The old schema cannot hold returns: they go (their money moves stay at the processor).
    op.execute(f"DELETE FROM refund_attempts WHERE {_RETURNS}")
    with op.batch_alter_table("refund_attempts", schema=None) as batch_op:
        batch_op.drop_index("uq_refund_attempts_returned_charge")
        batch_op.alter_column("payment_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("kind")
