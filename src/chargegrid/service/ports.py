"""Ports: what the service layer needs from the outside, as ``typing.Protocol``.

Implementations: :mod:`chargegrid.adapters.storage` (SQLAlchemy, SQLite / PostgreSQL) and the
in-memory fakes in :mod:`chargegrid.testing.fakes`.

Durability contract of :class:`Store`: when an awaited write method returns, what it wrote is
committed; the caller may then acknowledge it to the station. High-volume writes (status changes,
meter values, last-seen) are batched by the implementation (group commit), so many concurrent
callers share one commit; they still each wait for the commit that holds their write. On SQLite
(WAL, ``synchronous=NORMAL``) a commit survives the process being killed, not a power loss; on
PostgreSQL it is as durable as the server is configured to make it.

Errors of :class:`Store` (every implementation raises only these)::

    StorageError          a read or write could not be done (database unreachable, bad value,
     |                    store closed); nothing of that write was stored
     +-- IntegrityError   the write breaks a constraint: a duplicate key, a missing reference
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from chargegrid.domain.access import ApiToken
from chargegrid.domain.model import (
    ConfigValue,
    IdToken,
    LocalListEntry,
    MeterReading,
    Reservation,
    SecurityEvent,
    Station,
    StationReport,
    StatusChange,
    TokenGroup,
    Transaction,
)


class StorageError(Exception):
    """The store could not do what was asked; nothing of that write was committed."""


class IntegrityError(StorageError):
    """The write violates a uniqueness or reference constraint."""


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware, UTC."""
        ...


class NewTransaction(msgspec.Struct, frozen=True):
    """What is known when a transaction starts; the store assigns ``Transaction.id``."""

    station_id: str
    station_tx_id: str | None  # None: 1.6, the store uses the new id's decimal text
    evse_id: int
    connector_id: int
    id_token: str | None
    started_at: datetime
    meter_start_wh: Decimal | None = None
    reservation_id: int | None = None
    charging_state: str | None = None


class CommandRecord(msgspec.Struct, frozen=True):
    """A CSMS-initiated operation and what became of it."""

    station_id: str
    action: str
    request: dict[str, Any]
    sent_at: datetime
    outcome: str  # "answered", "error", "timeout", "offline", "invalid"
    response: dict[str, Any] | None = None
    error_code: str | None = None
    error_description: str | None = None
    answered_at: datetime | None = None


class DataTransferRecord(msgspec.Struct, frozen=True):
    station_id: str
    direction: str  # "from-station" or "to-station"
    vendor_id: str
    message_id: str | None
    data: str | None
    timestamp: datetime


class WriteUnit(Protocol):
    """A unit of work: the writes made while it is active are queued rather than awaited, and
    :meth:`when_committed` says when they are all committed (or the first that failed)."""

    def activate(self) -> None:
        """Make this the unit of the current ``contextvars`` context."""
        ...

    def when_committed(self, callback: Callable[[BaseException | None], None]) -> None: ...


class Filter(msgspec.Struct, frozen=True):
    """``field op value``: op is ``eq``, ``ge`` (at least) or ``lt`` (before)."""

    field: str
    op: str
    value: Any


class ListQuery(msgspec.Struct, frozen=True):
    """One page of a list, in keyset order: by ``sort`` then by the record's key.

    ``after`` is ``(sort value, key)`` of the last record of the previous page. Records where
    the sort field is None are not listed when sorting by it, so sort only by fields that always
    have a value (every list documents its own).
    """

    sort: str
    descending: bool = False
    limit: int = 50
    filters: tuple[Filter, ...] = ()
    after: tuple[Any, Any] | None = None


class Store(Protocol):
    """Everything the central system keeps.

    An awaited write is committed when the await returns, except inside an active
    :class:`WriteUnit`, whose owner waits for the commit through the unit.
    """

    def write_unit(self) -> WriteUnit: ...

    # stations
    async def get_station(self, station_id: str) -> Station | None: ...
    async def save_station(self, station: Station) -> None: ...
    async def touch_station(self, station_id: str, at: datetime, *, online: bool) -> None: ...
    async def list_stations(self) -> Sequence[Station]: ...

    # status
    async def record_status(self, change: StatusChange) -> None: ...
    async def connector_statuses(self, station_id: str) -> Sequence[StatusChange]: ...
    async def status_history(self, station_id: str, limit: int = 100) -> Sequence[StatusChange]: ...

    # tokens and local lists
    async def get_token(self, value: str) -> IdToken | None: ...
    async def save_token(self, token: IdToken) -> None: ...
    async def local_list_version(self, station_id: str) -> int: ...
    async def save_local_list(
        self, station_id: str, version: int, entries: Sequence[LocalListEntry], *, full: bool
    ) -> None: ...
    async def local_list(self, station_id: str) -> Sequence[LocalListEntry]: ...

    # transactions and meter values
    async def start_transaction(self, new: NewTransaction) -> Transaction: ...
    async def get_transaction(self, transaction_id: int) -> Transaction | None: ...
    async def find_transaction(self, station_id: str, station_tx_id: str) -> Transaction | None: ...
    async def find_same_start(self, new: NewTransaction) -> Transaction | None: ...
    async def update_transaction(self, tx: Transaction) -> None: ...
    async def has_active_transaction(self, id_token: str) -> bool: ...
    async def active_transactions(self, station_id: str) -> Sequence[Transaction]: ...
    async def list_transactions(self, station_id: str | None = None) -> Sequence[Transaction]: ...
    async def record_meter_values(
        self,
        station_id: str,
        transaction_id: int | None,
        evse_id: int,
        connector_id: int,
        readings: Sequence[MeterReading],
    ) -> None: ...
    async def meter_values(self, transaction_id: int) -> Sequence[MeterReading]: ...

    # reservations
    async def save_reservation(self, reservation: Reservation) -> None: ...
    async def get_reservation(self, reservation_id: int) -> Reservation | None: ...

    # what stations report
    async def record_boot(self, station_id: str, reason: str | None, at: datetime) -> None: ...
    async def record_security_event(self, event: SecurityEvent) -> None: ...
    async def record_report(self, report: StationReport) -> None: ...
    async def save_config(self, station_id: str, values: Sequence[ConfigValue]) -> None: ...
    async def config(self, station_id: str) -> Sequence[ConfigValue]: ...
    async def record_data_transfer(self, record: DataTransferRecord) -> None: ...
    # newest first
    async def boots(
        self, station_id: str, limit: int = 100
    ) -> Sequence[tuple[str | None, datetime]]: ...
    async def security_events(
        self, station_id: str, limit: int = 100
    ) -> Sequence[SecurityEvent]: ...
    async def reports(self, station_id: str, limit: int = 100) -> Sequence[StationReport]: ...
    async def data_transfers(
        self, station_id: str, limit: int = 100
    ) -> Sequence[DataTransferRecord]: ...
    async def record_command(self, record: CommandRecord) -> None: ...
    async def commands(self, station_id: str, limit: int = 100) -> Sequence[CommandRecord]: ...

    # operator lists: a page (at most ``limit``) and whether more follow
    async def page_stations(self, query: ListQuery) -> tuple[Sequence[Station], bool]: ...
    async def page_tokens(self, query: ListQuery) -> tuple[Sequence[IdToken], bool]: ...
    async def token_groups(self) -> Sequence[TokenGroup]:
        """Every group that has tokens, by name."""
        ...

    async def page_reservations(self, query: ListQuery) -> tuple[Sequence[Reservation], bool]: ...
    async def page_transactions(self, query: ListQuery) -> tuple[Sequence[Transaction], bool]: ...
    async def delete_station(self, station_id: str) -> bool: ...
    async def delete_token(self, value: str) -> bool: ...

    # API tokens
    async def save_api_token(self, token: ApiToken) -> ApiToken: ...
    async def find_api_token(self, token_sha256: str) -> ApiToken | None: ...
    async def list_api_tokens(self) -> Sequence[ApiToken]: ...
    async def revoke_api_token(self, token_id: int) -> bool: ...

    async def close(self) -> None: ...
