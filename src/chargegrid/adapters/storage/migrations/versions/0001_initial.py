"""Initial schema: stations, status, tokens, local lists, transactions, meter values, reports.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Types are spelled out here (not taken from ``tables.py``) so that this migration keeps creating
the same schema when the tables change later: ``UtcDateTime`` is a ``DateTime(timezone=True)``,
``DecimalText`` and ``JsonText`` are ``Text``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_TIME = sa.DateTime(timezone=True)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), autoincrement=True, nullable=False)


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*(columns or ("id",)), name=op.f(f"pk_{table}"))


def _index(table: str, *columns: str) -> None:
    op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns))


def upgrade() -> None:
    op.create_table(
        "stations",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("registration", sa.Text(), nullable=False),
        sa.Column("ocpp_version", sa.Text(), nullable=True),
        sa.Column("vendor", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("serial_number", sa.Text(), nullable=True),
        sa.Column("firmware_version", sa.Text(), nullable=True),
        sa.Column("boot_reason", sa.Text(), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("last_seen", _TIME, nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("lenient", sa.Text(), nullable=False),
        _pk("stations", "id"),
    )
    op.create_table(
        "boots",
        _id(),
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("timestamp", _TIME, nullable=False),
        _pk("boots"),
    )
    _index("boots", "station_id", "timestamp")

    op.create_table(
        "connector_status",
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("timestamp", _TIME, nullable=False),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("info", sa.Text(), nullable=True),
        sa.Column("vendor_error_code", sa.Text(), nullable=True),
        _pk("connector_status", "station_id", "evse_id", "connector_id"),
    )
    op.create_table(
        "status_changes",
        _id(),
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("timestamp", _TIME, nullable=False),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("info", sa.Text(), nullable=True),
        sa.Column("vendor_error_code", sa.Text(), nullable=True),
        _pk("status_changes"),
    )
    _index("status_changes", "station_id", "timestamp")

    op.create_table(
        "id_tokens",
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("token_group", sa.Text(), nullable=True),
        sa.Column("expires_at", _TIME, nullable=True),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("allow_concurrent", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=True),
        _pk("id_tokens", "value"),
    )
    op.create_table(
        "local_lists",
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _pk("local_lists", "station_id"),
    )
    op.create_table(
        "local_list_entries",
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("id_token", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("expires_at", _TIME, nullable=True),
        sa.Column("token_group", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["local_lists.station_id"],
            name=op.f("fk_local_list_entries_station_id_local_lists"),
            ondelete="CASCADE",
        ),
        _pk("local_list_entries", "station_id", "id_token"),
    )

    op.create_table(
        "transactions",
        _id(),
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("station_tx_id", sa.Text(), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("id_token", sa.Text(), nullable=True),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("meter_start_wh", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("stopped_at", _TIME, nullable=True),
        sa.Column("meter_stop_wh", sa.Text(), nullable=True),
        sa.Column("stop_reason", sa.Text(), nullable=True),
        sa.Column("reservation_id", sa.Integer(), nullable=True),
        sa.Column("charging_state", sa.Text(), nullable=True),
        sa.Column("last_meter_wh", sa.Text(), nullable=True),
        _pk("transactions"),
        sa.UniqueConstraint(
            "station_id",
            "station_tx_id",
            name=op.f("uq_transactions_station_id_station_tx_id"),
        ),
        sqlite_autoincrement=True,  # ids are 1.6 transactionIds: never reuse one
    )
    _index("transactions", "station_id", "state")
    _index("transactions", "id_token", "state")

    op.create_table(
        "meter_values",
        _id(),
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("timestamp", _TIME, nullable=False),
        sa.Column("energy_wh", sa.Text(), nullable=True),
        sa.Column("sampled_values", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_meter_values_transaction_id_transactions"),
        ),
        _pk("meter_values"),
    )
    _index("meter_values", "transaction_id")
    _index("meter_values", "station_id", "timestamp")

    op.create_table(
        "reservations",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("id_token", sa.Text(), nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("connector_type", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        _pk("reservations"),
    )
    _index("reservations", "station_id")

    op.create_table(
        "security_events",
        _id(),
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("timestamp", _TIME, nullable=False),
        sa.Column("tech_info", sa.Text(), nullable=True),
        _pk("security_events"),
    )
    _index("security_events", "station_id", "timestamp")

    op.create_table(
        "station_reports",
        _id(),
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("timestamp", _TIME, nullable=True),
        _pk("station_reports"),
    )
    _index("station_reports", "station_id")

    op.create_table(
        "config_values",
        _id(),
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("component", sa.Text(), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("variable", sa.Text(), nullable=False),
        sa.Column("instance", sa.Text(), nullable=False),
        sa.Column("attribute", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("readonly", sa.Boolean(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=False),
        _pk("config_values"),
        sa.UniqueConstraint(
            "station_id",
            "component",
            "evse_id",
            "connector_id",
            "variable",
            "instance",
            "attribute",
            name="uq_config_values_key",
        ),
    )

    op.create_table(
        "data_transfers",
        _id(),
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("direction", sa.Text(), nullable=False),
        sa.Column("vendor_id", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.Column("data", sa.Text(), nullable=True),
        sa.Column("timestamp", _TIME, nullable=False),
        _pk("data_transfers"),
    )
    _index("data_transfers", "station_id", "timestamp")

    op.create_table(
        "commands",
        _id(),
        sa.Column("station_id", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("sent_at", _TIME, nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("error_description", sa.Text(), nullable=True),
        sa.Column("answered_at", _TIME, nullable=True),
        _pk("commands"),
    )
    _index("commands", "station_id", "sent_at")


def downgrade() -> None:
    # Dropping a table drops its indexes; children before the tables they reference.
    for table in (
        "commands",
        "data_transfers",
        "config_values",
        "station_reports",
        "security_events",
        "reservations",
        "meter_values",
        "transactions",
        "local_list_entries",
        "local_lists",
        "id_tokens",
        "status_changes",
        "connector_status",
        "boots",
        "stations",
    ):
        op.drop_table(table)
