"""runs listed by namespace and by status in id order

``GET /v1/runs`` lists the newest runs first (``ORDER BY id DESC LIMIT n``, run ids grow
with time). For a caller limited to some namespaces the query filters by namespace: with
only ``ix_runs_namespace_created`` SQLite read every run of those namespaces and sorted
them (58 ms per page with 200,000 runs in one namespace, more as history grows).
``ix_runs_namespace_id`` gives each namespace's runs in id order: a page reads its rows and
stops (0.1 ms). Likewise a list filtered by status (``?status=failed``) read and sorted
every run of that status: ``ix_runs_status`` becomes ``ix_runs_status_id`` (``status,
id``), which serves every query the old one did (its first column) and pages in order.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 12:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.create_index("ix_runs_namespace_id", ["namespace", "id"], unique=False)
        batch.drop_index("ix_runs_status")
        batch.create_index("ix_runs_status_id", ["status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_status_id")
        batch.create_index("ix_runs_status", ["status"], unique=False)
        batch.drop_index("ix_runs_namespace_id")
