"""Hash check state per collection, the source a collection comes from, server MD5 strings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLLECTION_COLUMNS = (
    ('source', sa.String(length=64)),
    ('hash_checked_at', sa.DateTime(timezone=True)),
    ('hash_changed', sa.Integer()),
    ('hash_pass_started_at', sa.DateTime(timezone=True)),
    ('hash_cursor', sa.String(length=256)),
    ('hash_pass_changed', sa.Integer()),
)


def upgrade() -> None:
    with op.batch_alter_table('collections') as batch:
        for name, kind in _COLLECTION_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    with op.batch_alter_table('instances') as batch:
        batch.add_column(sa.Column('server_md5', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('instances') as batch:
        batch.drop_column('server_md5')
    with op.batch_alter_table('collections') as batch:
        for name, _ in reversed(_COLLECTION_COLUMNS):
            batch.drop_column(name)
