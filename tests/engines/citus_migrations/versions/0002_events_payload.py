"""Later changes to a distributed table are ordinary Alembic operations: Citus applies
the DDL to every shard."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("events", sa.Column("payload", postgresql.JSONB))
    op.create_index("events_account_at", "events", ["account_id", "at"])


def downgrade() -> None:
    op.drop_index("events_account_at", table_name="events")
    op.drop_column("events", "payload")
