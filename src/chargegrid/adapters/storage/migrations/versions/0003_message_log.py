"""The OCPP message log: every frame to and from each station, kept for a bounded time.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "ocpp_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("direction", sa.Text(), nullable=False),
        sa.Column("message_type", sa.Text(), nullable=False),
        sa.Column("unique_id", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ocpp_messages")),
    )
    op.create_index(op.f("ix_ocpp_messages_station_id_id"), "ocpp_messages", ["station_id", "id"])
    op.create_index(op.f("ix_ocpp_messages_at"), "ocpp_messages", ["at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_ocpp_messages_at"), table_name="ocpp_messages")
    op.drop_index(op.f("ix_ocpp_messages_station_id_id"), table_name="ocpp_messages")
    op.drop_table("ocpp_messages")
