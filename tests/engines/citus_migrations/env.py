"""Alembic environment of the Citus migration example: runs on the connection the test
passes in ``config.attributes["connection"]``, one transaction per migration."""

from alembic import context

context.configure(
    connection=context.config.attributes["connection"], transaction_per_migration=True
)
with context.begin_transaction():
    context.run_migrations()
