"""Alembic's entry point: runs the migrations on the connection ``retrieval.store.migrate`` hands in.

That connection is already inside the transaction that holds the migration lock, so nothing here opens another.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("ragline runs its migrations itself when a store opens (retrieval.store.migrate.upgrade)")

context.configure(
    connection=connection,
    version_table=context.config.attributes["version_table"],
    render_as_batch=True,  # SQLite alters tables by copying them: later revisions then work on both engines
)
with context.begin_transaction():
    context.run_migrations()
