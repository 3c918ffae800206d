"""triggers: schedules, schedule_fires, triggers, webhook_deliveries

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("workflow_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("cron", sa.String(length=255), nullable=False),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column("input", JSON, nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("start_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("end_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("catchup", sa.String(length=16), server_default="latest", nullable=False),
        sa.Column("catchup_window_seconds", sa.Integer(), server_default="3600", nullable=False),
        sa.Column("next_fire_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_fired_slot_ms", sa.BigInteger(), nullable=True),
        sa.Column("owner", sa.String(length=16), server_default="api", nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workflow_id", "name", name="ux_schedules_workflow_name"),
    )
    op.create_index("ix_schedules_due", "schedules", ["enabled", "next_fire_ms"], unique=False)
    op.create_index("ix_schedules_namespace", "schedules", ["namespace", "id"], unique=False)
    op.create_table(
        "schedule_fires",
        sa.Column("id", SERIAL, nullable=False),
        sa.Column("schedule_id", sa.String(length=64), nullable=False),
        sa.Column("slot_ms", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("fired_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("schedule_id", "slot_ms", name="ux_schedule_fires_slot"),
    )
    op.create_table(
        "triggers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("workflow_id", sa.String(length=64), nullable=True),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), server_default="run", nullable=False),
        sa.Column("signal_name", sa.String(length=128), nullable=True),
        sa.Column("correlation", sa.String(length=1000), nullable=True),
        sa.Column("scheme", sa.String(length=16), server_default="none", nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("owner", sa.String(length=16), server_default="api", nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key", name="ux_triggers_key"),
    )
    op.create_index("ix_triggers_namespace", "triggers", ["namespace", "id"], unique=False)
    op.create_index("ix_triggers_workflow", "triggers", ["workflow_id"], unique=False)
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", SERIAL, nullable=False),
        sa.Column("trigger_id", sa.String(length=64), nullable=False),
        sa.Column("delivery_id", sa.String(length=255), nullable=False),
        sa.Column("received_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("trigger_id", "delivery_id", name="ux_webhook_deliveries_id"),
    )
    op.create_index(
        "ix_webhook_deliveries_received", "webhook_deliveries", ["received_at_ms"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_received", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_triggers_workflow", table_name="triggers")
    op.drop_index("ix_triggers_namespace", table_name="triggers")
    op.drop_table("triggers")
    op.drop_table("schedule_fires")
    op.drop_index("ix_schedules_namespace", table_name="schedules")
    op.drop_index("ix_schedules_due", table_name="schedules")
    op.drop_table("schedules")
