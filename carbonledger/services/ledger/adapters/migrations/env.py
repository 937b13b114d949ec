"""Alembic's environment for the ledger's schema (loaded by Alembic, not imported).

It runs on the connection that `migrate` opened and holds the migrators' lock on,
one transaction per revision: a failing SQL file leaves the ones before it applied.
"""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    # The revisions run their SQL on the live psycopg connection; there is no script.
    raise RuntimeError("the ledger's schema is migrated by `carbonledger db migrate`")
context.configure(
    connection=connection,
    transaction_per_migration=True,
    on_version_apply=config.attributes.get("on_version_apply"),
)
with context.begin_transaction():
    context.run_migrations()
