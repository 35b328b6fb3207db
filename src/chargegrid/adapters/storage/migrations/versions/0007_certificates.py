"""Certificates issued to stations by chargegrid's CA (OCPP 2.0.1 A02/A03, 1.6 whitepaper 3).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("use", sa.Text(), nullable=False),
        sa.Column("serial", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chain_pem", sa.Text(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
    )
    op.create_index(
        op.f("ix_certificates_station_id_use_issued_at"),
        "certificates",
        ["station_id", "use", "issued_at"],
    )
    op.create_index(op.f("ix_certificates_not_after"), "certificates", ["not_after"])


def downgrade() -> None:
    op.drop_index(op.f("ix_certificates_not_after"), "certificates")
    op.drop_index(op.f("ix_certificates_station_id_use_issued_at"), "certificates")
    op.drop_table("certificates")
