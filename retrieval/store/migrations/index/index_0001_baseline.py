"""The index schema as ragline wrote it before migrations: documents manifest, chunks, stale vectors, jobs.

Creates only what is missing, so a ``ragline.sqlite`` written by an older ragline (tables present, no version
table) is adopted with its rows, and a fresh database gets the same tables.

Revision ID: index_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "index_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("collection", sa.Text, primary_key=True),
        sa.Column("doc_id", sa.Text, primary_key=True),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("status", sa.Text, sa.CheckConstraint("status IN ('pending', 'indexed')"), nullable=False),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "chunks",
        sa.Column("collection", sa.Text, primary_key=True),
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("doc_id", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("level", sa.Integer, nullable=False, server_default="0"),
        sa.Column("parent_id", sa.Text),
        if_not_exists=True,
    )
    op.create_index("chunks_by_doc", "chunks", ["collection", "doc_id"], if_not_exists=True)
    op.create_table(
        "stale_vectors",
        sa.Column("collection", sa.Text, primary_key=True),
        sa.Column("id", sa.Text, primary_key=True),
        if_not_exists=True,
    )
    op.create_table(
        "ingest_jobs",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("tenant", sa.Text),
        sa.Column("collection", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("files_total", sa.Integer, nullable=False),
        sa.Column("files_done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("chunks", sa.Integer, nullable=False, server_default="0"),
        sa.Column("summary", sa.Text),
        sa.Column("failures", sa.Text, nullable=False, server_default="{}"),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        if_not_exists=True,
    )


def downgrade() -> None:
    for table in ("ingest_jobs", "stale_vectors", "chunks", "documents"):
        op.drop_table(table)
