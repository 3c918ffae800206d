"""credential use policy

Existing credentials get the default policy: any workflow, any connector, and template use
``exact`` (substituted as is in secret-bearing params only; docs/secrets.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.add_column(sa.Column("allowed_workflows", JSON, nullable=True))
        batch.add_column(sa.Column("allowed_connectors", JSON, nullable=True))
        batch.add_column(
            sa.Column("template_use", sa.String(length=8), server_default="exact", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch:
        batch.drop_column("template_use")
        batch.drop_column("allowed_connectors")
        batch.drop_column("allowed_workflows")
