"""Indexes for status at NLST scale: per-collection totals index-only, commits by time.

``ix_series_status`` replaces ``ix_series_collection_state`` (its two columns stay its
prefix, so every lookup by collection and state keeps its index) and adds the local
totals, so ``status`` sums 200,000 series from the index instead of reading every
series row. ``ix_series_verified_at`` lets the status page's throughput chart read the
last day's commits instead of scanning every series.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_series_status', 'series',
                    ['collection_id', 'state', 'local_bytes', 'local_instance_count'])
    op.drop_index('ix_series_collection_state', table_name='series')
    op.create_index('ix_series_verified_at', 'series', ['verified_at'])


def downgrade() -> None:
    op.drop_index('ix_series_verified_at', table_name='series')
    op.create_index('ix_series_collection_state', 'series', ['collection_id', 'state'])
    op.drop_index('ix_series_status', table_name='series')
