"""Initial schema: every table of the data model, with its constraints.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 13:30:42.678192
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('product', sa.Text(), nullable=False),
    sa.Column('benefits', sa.JSON(), nullable=False),
    sa.Column('brand', sa.String(length=200), nullable=False),
    sa.Column('brand_voice', sa.Text(), nullable=True),
    sa.Column('audience', sa.Text(), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('max_length', sa.Integer(), nullable=False),
    sa.Column('length_unit', sa.String(length=8), nullable=False),
    sa.Column('require_brand', sa.Boolean(), nullable=False),
    sa.Column('forbidden_words', sa.JSON(), nullable=False),
    sa.Column('reward', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("channel IN ('headline', 'description', 'social')", name='ck_campaigns_channel'),
    sa.CheckConstraint("length_unit IN ('chars', 'words')", name='ck_campaigns_length_unit'),
    sa.CheckConstraint("locale IN ('en', 'zh')", name='ck_campaigns_locale'),
    sa.CheckConstraint("reward IN ('click', 'conversion')", name='ck_campaigns_reward'),
    sa.CheckConstraint("status IN ('active', 'paused', 'archived')", name='ck_campaigns_status'),
    sa.CheckConstraint('max_length > 0', name='ck_campaigns_max_length'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('dead_letters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('topic', sa.String(length=200), nullable=False),
    sa.Column('kafka_partition', sa.Integer(), nullable=False),
    sa.Column('kafka_offset', sa.BigInteger(), nullable=False),
    sa.Column('key', sa.LargeBinary(), nullable=True),
    sa.Column('payload', sa.LargeBinary(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('topic', 'kafka_partition', 'kafka_offset', name='uq_dead_letters_pos')
    )
    op.create_table('historical_experiments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('started_week', sa.Integer(), nullable=True),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'external_id', name='uq_hist_exp_source_ext')
    )
    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('base_model', sa.String(length=300), nullable=False),
    sa.Column('adapter_path', sa.Text(), nullable=True),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('data_window_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('data_window_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('hyperparams', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('promoted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('candidate', 'active', 'retired', 'rolled_back')", name='ck_model_versions_status'),
    sa.ForeignKeyConstraint(['parent_id'], ['model_versions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.create_index('ix_model_versions_base_status', ['base_model', 'status'], unique=False)

    op.create_table('reward_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('n_train', sa.Integer(), nullable=False),
    sa.Column('data_window_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('data_window_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("status IN ('active', 'retired', 'rejected')", name='ck_reward_models_status'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('gate_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('candidate_version_id', sa.Integer(), nullable=False),
    sa.Column('incumbent_version_id', sa.Integer(), nullable=True),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('decided_by', sa.String(length=16), nullable=False),
    sa.Column('prob_better', sa.Float(), nullable=True),
    sa.Column('candidate_impressions', sa.BigInteger(), nullable=False),
    sa.Column('candidate_successes', sa.BigInteger(), nullable=False),
    sa.Column('incumbent_impressions', sa.BigInteger(), nullable=False),
    sa.Column('incumbent_successes', sa.BigInteger(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("decided_by IN ('gate', 'operator')", name='ck_gate_decisions_by'),
    sa.CheckConstraint("decision IN ('continue', 'promote', 'rollback')", name='ck_gate_decisions_decision'),
    sa.ForeignKeyConstraint(['candidate_version_id'], ['model_versions.id'], ),
    sa.ForeignKeyConstraint(['incumbent_version_id'], ['model_versions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('historical_arms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('experiment_id', sa.Integer(), nullable=False),
    sa.Column('arm_key', sa.String(length=200), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('group_key', sa.String(length=200), nullable=True),
    sa.Column('impressions', sa.BigInteger(), nullable=False),
    sa.Column('clicks', sa.BigInteger(), nullable=False),
    sa.Column('conversions', sa.BigInteger(), nullable=True),
    sa.CheckConstraint('clicks >= 0 AND clicks <= impressions', name='ck_hist_arms_clicks'),
    sa.CheckConstraint('conversions IS NULL OR conversions >= 0', name='ck_hist_arms_conv'),
    sa.CheckConstraint('impressions >= 0', name='ck_hist_arms_impressions'),
    sa.ForeignKeyConstraint(['experiment_id'], ['historical_experiments.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('experiment_id', 'arm_key', name='uq_hist_arms_key')
    )
    op.create_table('training_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trainer', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('base_model', sa.String(length=300), nullable=False),
    sa.Column('parent_version_id', sa.Integer(), nullable=True),
    sa.Column('candidate_version_id', sa.Integer(), nullable=True),
    sa.Column('reward_model_id', sa.Integer(), nullable=True),
    sa.Column('data_window_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('data_window_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('hyperparams', sa.JSON(), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.CheckConstraint("status IN ('running', 'succeeded', 'failed', 'skipped')", name='ck_training_runs_status'),
    sa.CheckConstraint("trainer IN ('dpo', 'kto', 'grpo', 'rloo')", name='ck_training_runs_trainer'),
    sa.ForeignKeyConstraint(['candidate_version_id'], ['model_versions.id'], ),
    sa.ForeignKeyConstraint(['parent_version_id'], ['model_versions.id'], ),
    sa.ForeignKeyConstraint(['reward_model_id'], ['reward_models.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('variants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('model_version_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('guardrail_report', sa.JSON(), nullable=False),
    sa.Column('reward_score', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("source IN ('generated', 'manual')", name='ck_variants_source'),
    sa.CheckConstraint("status IN ('active', 'paused', 'rejected')", name='ck_variants_status'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.create_index('ix_variants_campaign_status', ['campaign_id', 'status'], unique=False)

    op.create_table('arm_stats',
    sa.Column('variant_id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('impressions', sa.BigInteger(), nullable=False),
    sa.Column('clicks', sa.BigInteger(), nullable=False),
    sa.Column('conversions', sa.BigInteger(), nullable=False),
    sa.Column('conversion_value', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint('clicks >= 0', name='ck_arm_stats_clicks'),
    sa.CheckConstraint('conversions >= 0', name='ck_arm_stats_conversions'),
    sa.CheckConstraint('impressions >= 0', name='ck_arm_stats_impressions'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ),
    sa.ForeignKeyConstraint(['variant_id'], ['variants.id'], ),
    sa.PrimaryKeyConstraint('variant_id')
    )
    with op.batch_alter_table('arm_stats', schema=None) as batch_op:
        batch_op.create_index('ix_arm_stats_campaign', ['campaign_id'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('impression_id', sa.String(length=64), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('variant_id', sa.Integer(), nullable=False),
    sa.Column('propensity', sa.Float(), nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('event_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_time', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('kafka_partition', sa.Integer(), nullable=True),
    sa.Column('kafka_offset', sa.BigInteger(), nullable=True),
    sa.CheckConstraint("type IN ('impression', 'click', 'conversion')", name='ck_events_type'),
    sa.CheckConstraint('propensity IS NULL OR (propensity > 0 AND propensity <= 1)', name='ck_events_propensity'),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ),
    sa.ForeignKeyConstraint(['variant_id'], ['variants.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_campaign_time', ['campaign_id', 'event_time'], unique=False)
        batch_op.create_index('ix_events_impression', ['impression_id'], unique=False)
        batch_op.create_index('ix_events_variant', ['variant_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_variant')
        batch_op.drop_index('ix_events_impression')
        batch_op.drop_index('ix_events_campaign_time')

    op.drop_table('events')
    with op.batch_alter_table('arm_stats', schema=None) as batch_op:
        batch_op.drop_index('ix_arm_stats_campaign')

    op.drop_table('arm_stats')
    with op.batch_alter_table('variants', schema=None) as batch_op:
        batch_op.drop_index('ix_variants_campaign_status')

    op.drop_table('variants')
    op.drop_table('training_runs')
    op.drop_table('historical_arms')
    op.drop_table('gate_decisions')
    op.drop_table('reward_models')
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_model_versions_base_status')

    op.drop_table('model_versions')
    op.drop_table('historical_experiments')
    op.drop_table('dead_letters')
    op.drop_table('campaigns')
