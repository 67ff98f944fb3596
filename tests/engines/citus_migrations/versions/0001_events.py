"""Distributed events (by account) and a reference table of event kinds.

The pattern the README's "Where it runs" shows: create the table with Alembic as usual,
with the distribution column in the primary key (Citus requires it in every primary key
and unique constraint, since each shard enforces them alone), hand it to Citus, then add
its foreign keys.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    # One connection per node for the whole migration: Citus refuses a foreign key to a
    # reference table after parallel work on a distributed table in one transaction.
    op.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")
    op.create_table(
        "event_kinds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
    )
    op.execute("SELECT create_reference_table('event_kinds')")
    op.create_table(
        "events",
        sa.Column("account_id", sa.BigInteger, nullable=False),
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("kind_id", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("account_id", "id"),
    )
    op.execute("SELECT create_distributed_table('events', 'account_id')")
    # Foreign keys to a reference table come after: a new table that references one
    # becomes a Citus local table at once, and one with an identity column then cannot
    # be distributed.
    op.create_foreign_key("events_kind_id_fkey", "events", "event_kinds", ["kind_id"], ["id"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("event_kinds")
