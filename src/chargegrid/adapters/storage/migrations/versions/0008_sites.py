"""Sites, their circuits and where each EVSE sits (load balancing).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("voltage_v", sa.Float(), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
    )
    op.create_table(
        "site_circuits",
        sa.Column("site_id", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("parent", sa.Text(), nullable=True),
        sa.Column("limit_a", sa.Float(), nullable=True),
        sa.Column("limit_w", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_site_circuits_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("site_id", "id", name=op.f("pk_site_circuits")),
    )
    op.create_table(
        "site_evses",
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Text(), nullable=False),
        sa.Column("circuit", sa.Text(), nullable=False),
        sa.Column("wiring", sa.Text(), nullable=False),
        sa.Column("max_a", sa.Float(), nullable=False),
        sa.Column("min_a", sa.Float(), nullable=False),
        sa.Column("smart", sa.Boolean(), nullable=False),
        sa.Column("fallback_a", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_site_evses_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("station_id", "evse_id", name=op.f("pk_site_evses")),
    )
    op.create_index(op.f("ix_site_evses_site_id"), "site_evses", ["site_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_site_evses_site_id"), "site_evses")
    op.drop_table("site_evses")
    op.drop_table("site_circuits")
    op.drop_table("sites")
