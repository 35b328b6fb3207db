"""OSCP 2.0 Capacity Providers (chargegrid as Flexibility Provider).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "oscp_peers",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("base_url", sa.Text(), nullable=False),
        sa.Column("token_out", sa.Text(), nullable=False),
        sa.Column("token_in_sha256", sa.Text(), nullable=False),
        sa.Column("groups", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("heartbeat_interval_s", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oscp_peers")),
        sa.UniqueConstraint("token_in_sha256", name=op.f("uq_oscp_peers_token_in_sha256")),
    )


def downgrade() -> None:
    op.drop_table("oscp_peers")
