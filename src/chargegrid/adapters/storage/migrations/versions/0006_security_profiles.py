"""Each station's security profile (0-3; OCPP 1.6 security whitepaper / 2.0.1 A00).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.add_column(
            sa.Column("security_profile", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.drop_column("security_profile")
