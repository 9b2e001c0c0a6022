"""Initial schema: collections, patients, studies, series (the queue), instances, sync runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 19:30:58.091293
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('collections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('watermark', sa.Date(), nullable=True),
    sa.Column('last_poll_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_poll_ok', sa.Boolean(), nullable=True),
    sa.Column('last_reconcile_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collections')),
    sa.UniqueConstraint('name', name=op.f('uq_collections_name'))
    )
    op.create_table('sync_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('collections', sa.JSON(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('counts', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_runs'))
    )
    op.create_table('patients',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.String(length=256), nullable=False),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_patients_collection_id_collections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients')),
    sa.UniqueConstraint('collection_id', 'patient_id', name=op.f('uq_patients_collection_id_patient_id'))
    )
    op.create_table('studies',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('patient_ref', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('study_uid', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['patient_ref'], ['patients.id'], name=op.f('fk_studies_patient_ref_patients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_studies')),
    sa.UniqueConstraint('study_uid', name=op.f('uq_studies_study_uid'))
    )
    op.create_index(op.f('ix_studies_patient_ref'), 'studies', ['patient_ref'])
    op.create_table('series',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('series_uid', sa.String(length=64), nullable=False),
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('study_ref', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('modality', sa.String(length=64), nullable=True),
    sa.Column('image_count', sa.Integer(), nullable=True),
    sa.Column('file_size', sa.BigInteger(), nullable=True),
    sa.Column('remote_timestamp', sa.DateTime(timezone=True), nullable=True),
    sa.Column('date_released', sa.DateTime(timezone=True), nullable=True),
    sa.Column('series_number', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('raw', sa.JSON(), nullable=True),
    sa.Column('discovered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.String(length=200), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('queue_reason', sa.String(length=64), nullable=True),
    sa.Column('repair', sa.Boolean(), nullable=False),
    sa.Column('needs_refetch', sa.Boolean(), nullable=False),
    sa.Column('local_path', sa.Text(), nullable=True),
    sa.Column('local_bytes', sa.BigInteger(), nullable=True),
    sa.Column('local_instance_count', sa.Integer(), nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_series_collection_id_collections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['study_ref'], ['studies.id'], name=op.f('fk_series_study_ref_studies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_series')),
    sa.UniqueConstraint('series_uid', name=op.f('uq_series_series_uid'))
    )
    op.create_index('ix_series_claim', 'series', ['state', 'next_attempt_at'])
    op.create_index('ix_series_collection_state', 'series', ['collection_id', 'state'])
    op.create_index(op.f('ix_series_study_ref'), 'series', ['study_ref'])
    op.create_table('instances',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('series_ref', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sop_uid', sa.String(length=64), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('md5', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['series_ref'], ['series.id'], name=op.f('fk_instances_series_ref_series'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instances')),
    sa.UniqueConstraint('series_ref', 'sop_uid', name=op.f('uq_instances_series_ref_sop_uid'))
    )


def downgrade() -> None:
    op.drop_table('instances')
    op.drop_index(op.f('ix_series_study_ref'), table_name='series')
    op.drop_index('ix_series_collection_state', table_name='series')
    op.drop_index('ix_series_claim', table_name='series')
    op.drop_table('series')
    op.drop_index(op.f('ix_studies_patient_ref'), table_name='studies')
    op.drop_table('studies')
    op.drop_table('patients')
    op.drop_table('sync_runs')
    op.drop_table('collections')
