"""Ingestion workers: upload bytes in the database, a queue on ``ingest_jobs``, writer leases, writer ids.

- ``job_files`` keeps a job's uploaded files until it ends, so a worker on another host can run it;
- ``ingest_jobs`` gains what a worker needs to claim and run a job (runner, lock key, chunker, metadata, the
  worker holding it, attempts);
- ``writers`` holds the leases (heartbeats) of the processes writing the index;
- ``documents.writer`` names the lease of a pending write, so a repair undoes only writes whose writer is gone.

Revision ID: index_0003
Revises: index_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "index_0003"
down_revision = "index_0002"
branch_labels = None
depends_on = None

_JOB_COLUMNS = (
    ("runner", sa.Text, {"nullable": False, "server_default": "api"}),
    ("lock_key", sa.Text, {}),
    ("chunker", sa.Text, {}),
    ("metadata", sa.Text, {}),
    ("worker", sa.Text, {}),
    ("attempts", sa.Integer, {"nullable": False, "server_default": "0"}),
)


def upgrade() -> None:
    op.create_table(
        "job_files",
        sa.Column("job_id", sa.Text, primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "writers",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    with op.batch_alter_table("ingest_jobs") as batch:
        for name, kind, options in _JOB_COLUMNS:
            batch.add_column(sa.Column(name, kind, **options))
    op.create_index("jobs_by_status", "ingest_jobs", ["status", "created_at"])
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("writer", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("writer")
    op.drop_index("jobs_by_status", "ingest_jobs")
    with op.batch_alter_table("ingest_jobs") as batch:
        for name, _, _ in reversed(_JOB_COLUMNS):
            batch.drop_column(name)
    op.drop_table("writers")
    op.drop_table("job_files")
