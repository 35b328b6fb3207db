"""An index of a station's transactions in id order: a node adopting stations reads each one's
latest ended transactions from it (a few rows each), not the station's whole history.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_transactions_station_id_id"), "transactions", ["station_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_transactions_station_id_id"), table_name="transactions")
