"""The memory schema as ragline wrote it before migrations: sessions (with their lease), turns, summaries, items.

Creates only what is missing, so a ``memory.sqlite3`` written by an older ragline is adopted with its rows.

Revision ID: memory_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "memory_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("user", sa.Text, nullable=False),
        sa.Column("collection", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False, server_default=""),
        sa.Column("summary_error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("lock_owner", sa.Text),
        sa.Column("lock_expires", sa.Float),
        if_not_exists=True,
    )
    op.create_table(
        "turns",
        sa.Column("session_id", sa.Text, primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("search_query", sa.Text),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("tier", sa.Text, sa.CheckConstraint("tier IN ('active', 'evicted', 'summarized')"), nullable=False),
        sa.Column("prompt_tokens", sa.Integer),
        sa.Column("memory_tokens", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "summaries",
        sa.Column("session_id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "memory_items",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("session_id", sa.Text, nullable=False),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("user", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, sa.CheckConstraint("kind IN ('fact', 'summary')"), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        if_not_exists=True,
    )
    op.create_index("items_by_session", "memory_items", ["session_id"], if_not_exists=True)
    op.create_index("items_by_user", "memory_items", ["tenant", "user"], if_not_exists=True)


def downgrade() -> None:
    for table in ("memory_items", "summaries", "turns", "sessions"):
        op.drop_table(table)
