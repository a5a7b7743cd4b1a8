"""idempotency keys belong to a practice

Revision ID: 0004_idempotency_per_practice
Revises: 0003_refund_attempts
Create Date: 2026-12-01 23:59:00

A key was unique per (user, operation, key): one person working in two practices who sent the
same key and input in the second got the first practice's invoice back. Keys now carry the
practice they were used in; existing keys take the practice of the invoice they answered with.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004_idempotency_per_practice'
down_revision: str | None = '0003_refund_attempts'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('practice_id', sa.Integer(), nullable=True))
    op.execute(
        'UPDATE idempotency_keys SET practice_id = '
        '(SELECT invoices.practice_id FROM invoices WHERE invoices.id = idempotency_keys.invoice_id)'
    )
    # A key that answered with no invoice cannot be placed: it is dropped (its request is
    # then treated as new, which only a retry older than this migration can notice).
    op.execute('DELETE FROM idempotency_keys WHERE practice_id IS NULL')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.alter_column('practice_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint('uq_idempotency_keys_user_id_operation_key', type_='unique')
        batch_op.create_unique_constraint(
            batch_op.f('uq_idempotency_keys_practice_id_user_id_operation_key'),
            ['practice_id', 'user_id', 'operation', 'key'],
        )
        batch_op.create_foreign_key(
            batch_op.f('fk_idempotency_keys_practice_id_practices'),
            'practices',
            ['practice_id'],
            ['id'],
            ondelete='CASCADE',
        )


def downgrade() -> None:
    # Two practices may now hold the same (user, operation, key): the older one is kept.
    op.execute(
        'DELETE FROM idempotency_keys WHERE id NOT IN '
        '(SELECT MIN(id) FROM idempotency_keys GROUP BY user_id, operation, key)'
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_idempotency_keys_practice_id_practices'), type_='foreignkey'
        )
        batch_op.drop_constraint(
            batch_op.f('uq_idempotency_keys_practice_id_user_id_operation_key'), type_='unique'
        )
        batch_op.create_unique_constraint(
            'uq_idempotency_keys_user_id_operation_key', ['user_id', 'operation', 'key']
        )
        batch_op.drop_column('practice_id')
