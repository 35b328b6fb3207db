"""The database schema, as SQLAlchemy Core tables (SQLite and PostgreSQL).

Rules the schema keeps:

* Times are stored in UTC and always come back aware (:class:`UtcDateTime`); a naive datetime is
  refused rather than guessed at.
* Money and energy are stored exactly, as the decimal text of a :class:`~decimal.Decimal`
  (:class:`DecimalText`): ``1.50`` comes back as ``1.50``, whatever the database.
* Enumerations are stored as their wire value (``"Accepted"``), never as database enums, so a new
  value needs no migration.
* Free text is ``TEXT``: stations send longer values than the specs allow and those must not be
  lost to a ``VARCHAR(n)``.
* History tables (boots, status changes, meter values, events, reports, commands) do not reference
  ``stations``: what a station sent is kept even if its row is missing.
* Constraints are named by :data:`NAMING_CONVENTION`, so Alembic migrations stay stable.

Changing anything here needs a migration in ``migrations/versions`` (the test suite compares the
migrated schema with :data:`metadata`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored in UTC, returned aware in UTC on every dialect."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; times must be aware")
        utc = value.astimezone(UTC)
        # SQLite has no time zone type: it stores the text of the naive UTC time.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class DecimalText(TypeDecorator[Decimal]):
    """A :class:`~decimal.Decimal` kept exactly, as its text (``Numeric`` on SQLite is a float)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"expected a Decimal, got {type(value).__name__}")
        return str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class JsonText(TypeDecorator[Any]):
    """A JSON document kept as text (the same on both dialects, compared by nobody)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True, autoincrement=True)


stations = Table(
    "stations",
    metadata,
    Column("id", Text, primary_key=True),
    Column("registration", Text, nullable=False),
    Column("ocpp_version", Text),
    Column("vendor", Text),
    Column("model", Text),
    Column("serial_number", Text),
    Column("firmware_version", Text),
    Column("boot_reason", Text),
    Column("online", Boolean, nullable=False),
    Column("last_seen", UtcDateTime),
    Column("password_hash", Text),
    Column("lenient", JsonText, nullable=False),  # sorted list of deviation names
    Column("latitude", Float),
    Column("longitude", Float),
    Column("location", Text),
    Column("security_profile", Integer, nullable=False, server_default="0"),
    Column("pending_password_hash", Text),
)

boots = Table(
    "boots",
    metadata,
    _id(),
    Column("station_id", Text, nullable=False),
    Column("reason", Text),
    Column("timestamp", UtcDateTime, nullable=False),
    Index(None, "station_id", "timestamp"),
)

# The latest status of each station / EVSE / connector, upserted; history is in status_changes.
connector_status = Table(
    "connector_status",
    metadata,
    Column("station_id", Text, nullable=False),
    Column("evse_id", Integer, nullable=False),
    Column("connector_id", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("timestamp", UtcDateTime, nullable=False),
    Column("error_code", Text),
    Column("info", Text),
    Column("vendor_error_code", Text),
    PrimaryKeyConstraint("station_id", "evse_id", "connector_id"),
)

status_changes = Table(
    "status_changes",
    metadata,
    _id(),
    Column("station_id", Text, nullable=False),
    Column("evse_id", Integer, nullable=False),
    Column("connector_id", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("timestamp", UtcDateTime, nullable=False),
    Column("error_code", Text),
    Column("info", Text),
    Column("vendor_error_code", Text),
    Index(None, "station_id", "timestamp"),
)

id_tokens = Table(
    "id_tokens",
    metadata,
    Column("value", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("token_group", Text),
    Column("expires_at", UtcDateTime),
    Column("blocked", Boolean, nullable=False),
    Column("allow_concurrent", Boolean, nullable=False),
    Column("owner", Text),
)

local_lists = Table(
    "local_lists",
    metadata,
    Column("station_id", Text, primary_key=True),
    Column("version", Integer, nullable=False),
)

local_list_entries = Table(
    "local_list_entries",
    metadata,
    Column(
        "station_id",
        Text,
        ForeignKey("local_lists.station_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("id_token", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("expires_at", UtcDateTime),
    Column("token_group", Text),
    PrimaryKeyConstraint("station_id", "id_token"),
)

# ``id`` is the OCPP 1.6 transactionId, so SQLite must never reuse one (AUTOINCREMENT).
# ``station_tx_id`` is NULL only inside the database transaction that inserts a 1.6 transaction
# and then sets it to the text of ``id``.
transactions = Table(
    "transactions",
    metadata,
    _id(),
    Column("station_id", Text, nullable=False),
    Column("station_tx_id", Text),
    Column("evse_id", Integer, nullable=False),
    Column("connector_id", Integer, nullable=False),
    Column("id_token", Text),
    Column("started_at", UtcDateTime, nullable=False),
    Column("meter_start_wh", DecimalText),
    Column("state", Text, nullable=False),
    Column("stopped_at", UtcDateTime),
    Column("meter_stop_wh", DecimalText),
    Column("stop_reason", Text),
    Column("reservation_id", Integer),
    Column("charging_state", Text),
    Column("last_meter_wh", DecimalText),
    UniqueConstraint("station_id", "station_tx_id"),
    Index(None, "station_id", "state"),
    Index(None, "id_token", "state"),
    Index(None, "station_id", "id"),  # a station's latest ones (adoption)
    sqlite_autoincrement=True,
)

meter_values = Table(
    "meter_values",
    metadata,
    _id(),
    Column("station_id", Text, nullable=False),
    Column("transaction_id", Integer, ForeignKey("transactions.id")),
    Column("evse_id", Integer, nullable=False),
    Column("connector_id", Integer, nullable=False),
    Column("timestamp", UtcDateTime, nullable=False),
    # The whole-meter energy register of the reading in Wh, when it has one (for queries).
    Column("energy_wh", DecimalText),
    # Every sampled value of the reading, as compact JSON (see rows.meter_rows): one row per
    # reading rather than per value keeps the write rate of a busy network down.
    Column("sampled_values", Text, nullable=False),
    Index(None, "transaction_id"),
    Index(None, "station_id", "timestamp"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("station_id", Text, nullable=False),
    Column("evse_id", Integer),
    Column("id_token", Text, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("connector_type", Text),
    Column("status", Text, nullable=False),
    Index(None, "station_id"),
)

security_events = Table(
    "security_events",
    metadata,
    _id(),
    Column("station_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("timestamp", UtcDateTime, nullable=False),
    Column("tech_info", Text),
    Index(None, "station_id", "timestamp"),
)

station_reports = Table(
    "station_reports",
    metadata,
    _id(),
    Column("station_id", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("request_id", Integer),
    Column("timestamp", UtcDateTime),
    Index(None, "station_id"),
)

# One row per setting. NULL is distinct from NULL in a unique constraint, so "no instance" is
# stored as "" and "no EVSE / connector" as 0 (2.0.1 numbers EVSEs and connectors from 1).
config_values = Table(
    "config_values",
    metadata,
    _id(),
    Column("station_id", Text, nullable=False),
    Column("component", Text, nullable=False),  # "" for 1.6 keys
    Column("evse_id", Integer, nullable=False),
    Column("connector_id", Integer, nullable=False),
    Column("variable", Text, nullable=False),
    Column("instance", Text, nullable=False),
    Column("attribute", Text, nullable=False),
    Column("value", Text),
    Column("readonly", Boolean, nullable=False),
    Column("extra", JsonText, nullable=False),
    UniqueConstraint(
        "station_id",
        "component",
        "evse_id",
        "connector_id",
        "variable",
        "instance",
        "attribute",
        name="uq_config_values_key",  # the conventional name is longer than PostgreSQL allows
    ),
)

data_transfers = Table(
    "data_transfers",
    metadata,
    _id(),
    Column("station_id", Text, nullable=False),
    Column("direction", Text, nullable=False),
    Column("vendor_id", Text, nullable=False),
    Column("message_id", Text),
    Column("data", Text),
    Column("timestamp", UtcDateTime, nullable=False),
    Index(None, "station_id", "timestamp"),
)

commands = Table(
    "commands",
    metadata,
    _id(),
    Column("station_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("request", JsonText, nullable=False),
    Column("sent_at", UtcDateTime, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("response", JsonText),
    Column("error_code", Text),
    Column("error_description", Text),
    Column("answered_at", UtcDateTime),
    Index(None, "station_id", "sent_at"),
)

# Bearer tokens of the REST API: only a SHA-256 of each is kept (they are random, 256 bits).
api_tokens = Table(
    "api_tokens",
    metadata,
    _id(),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("token_sha256", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked", Boolean, nullable=False),
    UniqueConstraint("token_sha256"),
)

# The OCPP message log (service/message_log.py): every frame both ways, deleted after a retention
# time. Ids are 64-bit on PostgreSQL: a busy node logs a few billion frames a year.
ocpp_messages = Table(
    "ocpp_messages",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("station_id", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("direction", Text, nullable=False),
    Column("message_type", Text, nullable=False),
    Column("unique_id", Text),
    Column("action", Text),
    Column("payload", Text, nullable=False),
    Column("truncated", Boolean, nullable=False),
    Index(None, "station_id", "id"),
    Index(None, "at"),
)

# Webhook subscriptions. The secret signs each request (HMAC), so it is kept as given, not hashed.
webhooks = Table(
    "webhooks",
    metadata,
    _id(),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("events", JsonText, nullable=False),  # sorted list of event types; empty: all
    Column("station_id", Text),
    Column("description", Text),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# One row per event sent (or to send) to a webhook; ``payload`` is the exact request body.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Text, primary_key=True),
    Column("webhook_id", Integer, ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("seq", BigInteger, nullable=False),  # the bus's number: per process, may run long
    Column("event_type", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", Text, nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime),
    Index(None, "webhook_id", "status", "next_attempt_at"),  # a lane's pending ones
    Index(None, "webhook_id", "created_at"),  # the delivery log, newest first
    Index(None, "created_at"),  # retention
)

# Certificates chargegrid's CA issued to stations (OCPP 2.0.1 A02/A03, 1.6 whitepaper 3).
certificates = Table(
    "certificates",
    metadata,
    _id(),
    Column("station_id", Text, nullable=False),
    Column("use", Text, nullable=False),  # ChargingStationCertificate, V2GCertificate
    Column("serial", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("not_before", UtcDateTime, nullable=False),
    Column("not_after", UtcDateTime, nullable=False),
    Column("chain_pem", Text, nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("status", Text, nullable=False),
    Index(None, "station_id", "use", "issued_at"),
    Index(None, "not_after"),
)

# Sites and their electrical trees (load balancing): a site's circuits and EVSEs are written
# together with it and removed with it.
sites = Table(
    "sites",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("voltage_v", Float, nullable=False),
    Column("policy", Text, nullable=False),  # equal, first_come, priority, departure
    Column("updated_at", UtcDateTime, nullable=False),
)

site_circuits = Table(
    "site_circuits",
    metadata,
    Column("site_id", Text, ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
    Column("id", Text, nullable=False),
    Column("parent", Text, nullable=True),  # None: the grid connection
    Column("limit_a", Float, nullable=True),
    Column("limit_w", Float, nullable=True),
    PrimaryKeyConstraint("site_id", "id"),
)

site_evses = Table(
    "site_evses",
    metadata,
    Column("station_id", Text, nullable=False),
    Column("evse_id", Integer, nullable=False),
    Column("site_id", Text, ForeignKey("sites.id", ondelete="CASCADE"), nullable=False),
    Column("circuit", Text, nullable=False),
    Column("wiring", Text, nullable=False),  # L1L2L3, L2L3L1, ..., or one phase
    Column("max_a", Float, nullable=False),
    Column("min_a", Float, nullable=False),
    Column("smart", Boolean, nullable=False),
    Column("fallback_a", Float, nullable=False),
    PrimaryKeyConstraint("station_id", "evse_id"),  # an EVSE is on one site
    Index(None, "site_id"),
)

# Limits over time on a site's circuits, per source ("operator", "oscp:<peer>:<group>", ...):
# what the load balancer keeps to, so that a restart forgets none. Not tied to the sites row,
# which is written anew at each edit of the site.
site_limits = Table(
    "site_limits",
    metadata,
    Column("site_id", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("seq", Integer, nullable=False),  # the block's place in its source's list
    Column("circuit", Text, nullable=False),
    Column("starts_at", UtcDateTime, nullable=True),
    Column("ends_at", UtcDateTime, nullable=True),
    Column("limit_a", Float, nullable=True),
    Column("limit_w", Float, nullable=True),
    Column("phase_a", JsonText, nullable=False),  # [L1, L2, L3], each A or null
    PrimaryKeyConstraint("site_id", "source", "seq"),
)

# Energy prices over time on a site, per source ("operator", "openadr2:<vtn>:<event>", ...):
# what the cost policy plans on.
site_prices = Table(
    "site_prices",
    metadata,
    Column("site_id", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("price_per_kwh", Float, nullable=False),
    Column("currency", Text, nullable=False),
    Column("starts_at", UtcDateTime, nullable=True),
    Column("ends_at", UtcDateTime, nullable=True),
    PrimaryKeyConstraint("site_id", "source", "seq"),
)

# OSCP 2.0 Capacity Providers chargegrid is the Flexibility Provider of. The token chargegrid
# presents to the peer is kept as given (it must be sent); the one the peer presents, hashed.
oscp_peers = Table(
    "oscp_peers",
    metadata,
    Column("id", Text, primary_key=True),
    Column("base_url", Text, nullable=False),
    Column("token_out", Text, nullable=False),
    Column("token_in_sha256", Text, nullable=False, unique=True),
    Column("groups", JsonText, nullable=False),  # group id -> "site" or "site/circuit"
    Column("state", Text, nullable=False),
    Column("heartbeat_interval_s", Float, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)
