"""runs listed by workflow in id order

``GET /v1/runs?workflow=w`` lists the newest runs of a workflow, given by name or id
(``workflow_name = w OR workflow_id = w``). With no index on either column, a page walked
the runs newest first until it had found enough of the workflow's: every run for a rare
workflow (22-25 ms on SQLite, 16-18 ms on PostgreSQL with 200,000 runs).
``ix_runs_workflow_name_id`` and ``ix_runs_workflow_id_id`` give a workflow's runs in id
order by either column; the listing reads a page from each and keeps the first page of the
two.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 14:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.create_index("ix_runs_workflow_name_id", ["workflow_name", "id"], unique=False)
        batch.create_index("ix_runs_workflow_id_id", ["workflow_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_workflow_id_id")
        batch.drop_index("ix_runs_workflow_name_id")
