"""Manifest pins (series kept in sync because a .tcia manifest lists them) and series.sop_class_uid.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 05:46:38.873780

Both changes are additions (a new table, a nullable column): plain ALTER TABLE ADD
COLUMN on SQLite and Postgres, no table rewrite, fast on a large catalog.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('manifest_series',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('manifest', sa.String(length=1024), nullable=False),
    sa.Column('series_uid', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_manifest_series')),
    sa.UniqueConstraint('manifest', 'series_uid',
                        name=op.f('uq_manifest_series_manifest_series_uid'))
    )
    op.create_index('ix_manifest_series_series_uid', 'manifest_series', ['series_uid'])
    op.add_column('series', sa.Column('sop_class_uid', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('series') as batch_op:
        batch_op.drop_column('sop_class_uid')
    op.drop_index('ix_manifest_series_series_uid', table_name='manifest_series')
    op.drop_table('manifest_series')
