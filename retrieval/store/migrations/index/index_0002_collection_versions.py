"""A version counter per collection, bumped with every write that changes what the collection serves.

API replicas compare it with the version their BM25 cache was built at. A collection without a row is at 0.

Revision ID: index_0002
Revises: index_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "index_0002"
down_revision = "index_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collection_versions",
        sa.Column("collection", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("collection_versions")
