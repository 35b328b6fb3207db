"""In-memory fakes of the service ports, for tests (ours and users').

:class:`FakeStore` keeps the same rules as :class:`chargegrid.adapters.storage.store.SqlStore`
(the storage contract tests run against both): ids from 1, times returned in UTC, naive times and
broken constraints refused with the storage errors, copies in and out so that changing a returned
object changes nothing stored, reads and writes refused once closed. Every write is "committed"
when it returns.
"""

from __future__ import annotations

import copy
import enum
import itertools
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from chargegrid.domain.access import ApiToken
from chargegrid.domain.model import (
    ConfigValue,
    IdToken,
    LocalListEntry,
    MeterReading,
    Reservation,
    SampledValue,
    SecurityEvent,
    Station,
    StationReport,
    StatusChange,
    TokenGroup,
    Transaction,
    TransactionState,
)
from chargegrid.service.ports import (
    CommandRecord,
    DataTransferRecord,
    IntegrityError,
    ListQuery,
    NewTransaction,
    StorageError,
)

if TYPE_CHECKING:
    from chargegrid.service.ports import Clock, Store

T = TypeVar("T")
R = TypeVar("R", Station, IdToken, Transaction, Reservation)
D = TypeVar("D", bound=msgspec.Struct)
_ConfigKey = tuple[str, str, int, int, str, str, str]


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime = datetime(2025, 1, 1, tzinfo=UTC)) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("a clock tells aware UTC times: give it an aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


class ImmediateUnit:
    """The :class:`~chargegrid.service.ports.WriteUnit` of a store whose writes are done at once."""

    def activate(self) -> None:
        """Nothing to mark: the fake's writes need no unit to be queued in."""

    def when_committed(self, callback: Callable[[BaseException | None], None]) -> None:
        callback(None)


class FakeStore:
    """The :class:`~chargegrid.service.ports.Store` in dicts and lists."""

    def __init__(self) -> None:
        self.closed = False
        self._seq = itertools.count()  # arrival order, for ties and "newest first"
        self._stations: dict[str, Station] = {}
        self._current: dict[tuple[str, int, int], StatusChange] = {}
        self._history: list[tuple[int, StatusChange]] = []
        self._tokens: dict[str, IdToken] = {}
        self._list_versions: dict[str, int] = {}
        self._lists: dict[str, dict[str, LocalListEntry]] = {}
        self._transactions: dict[int, Transaction] = {}
        self._next_tx_id = 1
        self._meter: list[tuple[int, int | None, datetime, SampledValue]] = []
        self._reservations: dict[int, Reservation] = {}
        self._boots: list[tuple[str, str | None, datetime]] = []
        self._events: list[SecurityEvent] = []
        self._reports: list[StationReport] = []
        self._config: dict[_ConfigKey, ConfigValue] = {}
        self._transfers: list[DataTransferRecord] = []
        self._commands: list[tuple[int, CommandRecord]] = []
        self._api_tokens: dict[int, ApiToken] = {}

    def write_unit(self) -> ImmediateUnit:
        """Every write of the fake is done when its call returns: nothing to wait for."""
        return ImmediateUnit()

    # stations

    async def get_station(self, station_id: str) -> Station | None:
        self._open()
        return _copy_or_none(self._stations.get(station_id))

    async def save_station(self, station: Station) -> None:
        self._open()
        self._stations[station.id] = _copy(_utc(station))

    async def touch_station(self, station_id: str, at: datetime, *, online: bool) -> None:
        self._open()
        at = _utc_time(at)
        if (station := self._stations.get(station_id)) is not None:
            station.last_seen, station.online = at, online

    async def list_stations(self) -> Sequence[Station]:
        self._open()
        return [_copy(self._stations[k]) for k in sorted(self._stations)]

    # status

    async def record_status(self, change: StatusChange) -> None:
        self._open()
        change = _utc(change)
        self._history.append((next(self._seq), change))
        key = (change.station_id, change.evse_id, change.connector_id)
        current = self._current.get(key)
        if current is None or current.timestamp <= change.timestamp:
            self._current[key] = change

    async def connector_statuses(self, station_id: str) -> Sequence[StatusChange]:
        self._open()
        return [v for k, v in sorted(self._current.items()) if k[0] == station_id]

    async def status_history(self, station_id: str, limit: int = 100) -> Sequence[StatusChange]:
        self._open()
        mine = [(c.timestamp, seq, c) for seq, c in self._history if c.station_id == station_id]
        return [c for _, _, c in sorted(mine, reverse=True)[:limit]]

    # tokens and local lists

    async def get_token(self, value: str) -> IdToken | None:
        self._open()
        return self._tokens.get(value)

    async def save_token(self, token: IdToken) -> None:
        self._open()
        self._tokens[token.value] = _utc(token)

    async def local_list_version(self, station_id: str) -> int:
        self._open()
        return self._list_versions.get(station_id, 0)

    async def save_local_list(
        self, station_id: str, version: int, entries: Sequence[LocalListEntry], *, full: bool
    ) -> None:
        self._open()
        entries = [_utc(e) for e in entries]
        current = {} if full else dict(self._lists.get(station_id, {}))
        for entry in entries:
            if entry.status is None:
                current.pop(entry.id_token, None)
            else:
                current[entry.id_token] = entry
        self._lists[station_id] = current
        self._list_versions[station_id] = version

    async def local_list(self, station_id: str) -> Sequence[LocalListEntry]:
        self._open()
        entries = self._lists.get(station_id, {})
        return [entries[token] for token in sorted(entries)]

    # transactions and meter values

    async def start_transaction(self, new: NewTransaction) -> Transaction:
        self._open()
        new = _utc(new)
        tx_id = self._next_tx_id
        station_tx_id = new.station_tx_id if new.station_tx_id is not None else str(tx_id)
        if self._find(lambda t: (t.station_id, t.station_tx_id) == (new.station_id, station_tx_id)):
            raise IntegrityError(f"transaction {station_tx_id!r} of {new.station_id} exists")
        self._next_tx_id += 1
        fields = msgspec.structs.asdict(new)
        tx = Transaction(id=tx_id, **fields | {"station_tx_id": station_tx_id})
        self._transactions[tx_id] = tx
        return _copy(tx)

    async def get_transaction(self, transaction_id: int) -> Transaction | None:
        self._open()
        return _copy_or_none(self._transactions.get(transaction_id))

    async def find_transaction(self, station_id: str, station_tx_id: str) -> Transaction | None:
        self._open()
        found = self._find(lambda t: (t.station_id, t.station_tx_id) == (station_id, station_tx_id))
        return _copy(found[0]) if found else None

    async def find_same_start(self, new: NewTransaction) -> Transaction | None:
        self._open()
        new = _utc(new)
        found = self._find(
            lambda t: (
                (t.station_id, t.connector_id, t.started_at, t.id_token, t.meter_start_wh)
                == (
                    new.station_id,
                    new.connector_id,
                    new.started_at,
                    new.id_token,
                    new.meter_start_wh,
                )
            )
        )
        return _copy(found[0]) if found else None

    async def update_transaction(self, tx: Transaction) -> None:
        self._open()
        if tx.id not in self._transactions:
            raise StorageError(f"no transaction {tx.id} to update")
        key = (tx.station_id, tx.station_tx_id)
        if self._find(lambda t: t.id != tx.id and (t.station_id, t.station_tx_id) == key):
            raise IntegrityError(f"transaction {tx.station_tx_id!r} of {tx.station_id} exists")
        self._transactions[tx.id] = _copy(_utc(tx))

    async def has_active_transaction(self, id_token: str) -> bool:
        self._open()
        return bool(self._find(lambda t: t.id_token == id_token and _active(t)))

    async def active_transactions(self, station_id: str) -> Sequence[Transaction]:
        self._open()
        return [_copy(t) for t in self._find(lambda t: t.station_id == station_id and _active(t))]

    async def list_transactions(self, station_id: str | None = None) -> Sequence[Transaction]:
        self._open()
        found = self._find(lambda t: station_id is None or t.station_id == station_id)
        return [_copy(t) for t in sorted(found, key=lambda t: (t.started_at, t.id), reverse=True)]

    async def record_meter_values(
        self,
        station_id: str,
        transaction_id: int | None,
        evse_id: int,
        connector_id: int,
        readings: Sequence[MeterReading],
    ) -> None:
        self._open()
        if transaction_id is not None and transaction_id not in self._transactions:
            raise IntegrityError(f"meter values for unknown transaction {transaction_id}")
        for reading in readings:
            at = _utc_time(reading.timestamp)
            self._meter.extend((next(self._seq), transaction_id, at, v) for v in reading.values)

    async def meter_values(self, transaction_id: int) -> Sequence[MeterReading]:
        self._open()
        mine = sorted((at, seq, v) for seq, tx, at, v in self._meter if tx == transaction_id)
        groups = itertools.groupby(mine, key=lambda item: item[0])
        return [MeterReading(at, tuple(v for _, _, v in group)) for at, group in groups]

    # reservations

    async def save_reservation(self, reservation: Reservation) -> None:
        self._open()
        self._reservations[reservation.id] = _utc(reservation)

    async def get_reservation(self, reservation_id: int) -> Reservation | None:
        self._open()
        return self._reservations.get(reservation_id)

    # what stations report

    async def record_boot(self, station_id: str, reason: str | None, at: datetime) -> None:
        self._open()
        self._boots.append((station_id, reason, _utc_time(at)))

    async def record_security_event(self, event: SecurityEvent) -> None:
        self._open()
        self._events.append(_utc(event))

    async def record_report(self, report: StationReport) -> None:
        self._open()
        self._reports.append(_utc(report))

    async def save_config(self, station_id: str, values: Sequence[ConfigValue]) -> None:
        self._open()
        for value in values:
            value = msgspec.structs.replace(
                value,
                station_id=station_id,
                instance=value.instance or None,
                evse_id=value.evse_id or None,
                connector_id=value.connector_id or None,
                extra=copy.deepcopy(value.extra),
            )
            self._config[_config_key(value)] = value

    async def config(self, station_id: str) -> Sequence[ConfigValue]:
        self._open()
        return [copy.deepcopy(v) for k, v in sorted(self._config.items()) if k[0] == station_id]

    async def record_data_transfer(self, record: DataTransferRecord) -> None:
        self._open()
        self._transfers.append(_utc(record))

    async def record_command(self, record: CommandRecord) -> None:
        self._open()
        self._commands.append((next(self._seq), copy.deepcopy(_utc(record))))

    async def commands(self, station_id: str, limit: int = 100) -> Sequence[CommandRecord]:
        self._open()
        mine = [(r.sent_at, seq, r) for seq, r in self._commands if r.station_id == station_id]
        return [copy.deepcopy(r) for _, _, r in sorted(mine, reverse=True)[:limit]]

    # operator lists and deletions

    async def page_stations(self, query: ListQuery) -> tuple[Sequence[Station], bool]:
        self._open()
        found, more = _page(list(self._stations.values()), "id", query)
        return [_copy(s) for s in found], more

    async def page_tokens(self, query: ListQuery) -> tuple[Sequence[IdToken], bool]:
        self._open()
        return _page(list(self._tokens.values()), "value", query)

    async def token_groups(self) -> Sequence[TokenGroup]:
        self._open()
        groups: dict[str, list[IdToken]] = {}
        for token in self._tokens.values():
            if token.group is not None:
                groups.setdefault(token.group, []).append(token)
        return [
            TokenGroup(name, len(members), sum(t.blocked for t in members))
            for name, members in sorted(groups.items())
        ]

    async def page_reservations(self, query: ListQuery) -> tuple[Sequence[Reservation], bool]:
        self._open()
        return _page(list(self._reservations.values()), "id", query)

    async def page_transactions(self, query: ListQuery) -> tuple[Sequence[Transaction], bool]:
        self._open()
        found, more = _page(list(self._transactions.values()), "id", query)
        return [_copy(t) for t in found], more

    async def delete_station(self, station_id: str) -> bool:
        self._open()
        return self._stations.pop(station_id, None) is not None

    async def delete_token(self, value: str) -> bool:
        self._open()
        return self._tokens.pop(value, None) is not None

    # API tokens

    async def save_api_token(self, token: ApiToken) -> ApiToken:
        self._open()
        if any(t.token_sha256 == token.token_sha256 for t in self._api_tokens.values()):
            raise IntegrityError("an API token with this secret exists")
        stored = msgspec.structs.replace(_utc(token), id=len(self._api_tokens) + 1)
        self._api_tokens[stored.id or 0] = stored
        return stored

    async def find_api_token(self, token_sha256: str) -> ApiToken | None:
        self._open()
        return next((t for t in self._api_tokens.values() if t.token_sha256 == token_sha256), None)

    async def list_api_tokens(self) -> Sequence[ApiToken]:
        self._open()
        return [self._api_tokens[k] for k in sorted(self._api_tokens)]

    async def revoke_api_token(self, token_id: int) -> bool:
        self._open()
        token = self._api_tokens.get(token_id)
        if token is None:
            return False
        self._api_tokens[token_id] = msgspec.structs.replace(token, revoked=True)
        return True

    async def close(self) -> None:
        self.closed = True

    # readers beyond the Store port, as SqlStore has them: newest first in arrival order

    async def boots(
        self, station_id: str, limit: int = 100
    ) -> Sequence[tuple[str | None, datetime]]:
        self._open()
        return _newest([(r, at) for s, r, at in self._boots if s == station_id], limit)

    async def security_events(self, station_id: str, limit: int = 100) -> Sequence[SecurityEvent]:
        self._open()
        return _newest([e for e in self._events if e.station_id == station_id], limit)

    async def reports(self, station_id: str, limit: int = 100) -> Sequence[StationReport]:
        self._open()
        return _newest([r for r in self._reports if r.station_id == station_id], limit)

    async def data_transfers(
        self, station_id: str, limit: int = 100
    ) -> Sequence[DataTransferRecord]:
        self._open()
        return _newest([r for r in self._transfers if r.station_id == station_id], limit)

    def _open(self) -> None:
        if self.closed:
            raise StorageError("the store is closed")

    def _find(self, match: Callable[[Transaction], bool]) -> list[Transaction]:
        return [t for t in self._transactions.values() if match(t)]  # dicts keep id order


def _utc_time(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise StorageError(f"naive datetime {at.isoformat()} given; times must be aware")
    return at.astimezone(UTC)


def _utc(obj: D) -> D:
    """``obj`` with every datetime field in UTC; naive ones refused as SqlStore does."""
    changes = {
        name: _utc_time(value)
        for name in obj.__struct_fields__
        if isinstance(value := getattr(obj, name), datetime)
    }
    return msgspec.structs.replace(obj, **changes) if changes else obj


def _copy(obj: D) -> D:
    """A copy of a mutable record (Station, Transaction), so callers cannot change ours."""
    return msgspec.structs.replace(obj)


def _copy_or_none(obj: D | None) -> D | None:
    return None if obj is None else msgspec.structs.replace(obj)


def _active(tx: Transaction) -> bool:
    return tx.state is TransactionState.ACTIVE


def _config_key(v: ConfigValue) -> _ConfigKey:
    return (
        v.station_id,
        v.component,
        v.evse_id or 0,
        v.connector_id or 0,
        v.variable,
        v.instance or "",
        v.attribute,
    )


def _field(record: object, name: str) -> Any:
    value = getattr(record, name)
    return value.value if isinstance(value, enum.Enum) else value


def _page(records: list[R], key: str, query: ListQuery) -> tuple[list[R], bool]:
    """What SqlStore's keyset paging returns, computed over a list."""

    def keep(record: R) -> bool:
        for f in query.filters:
            value = _field(record, f.field)
            if f.op == "eq" and value != f.value:
                return False
            if f.op == "ge" and (value is None or value < f.value):
                return False
            if f.op == "lt" and (value is None or value >= f.value):
                return False
        return _field(record, query.sort) is not None

    def order(record: R) -> tuple[Any, Any]:
        return (_field(record, query.sort), _field(record, key))

    kept = sorted(filter(keep, records), key=order, reverse=query.descending)
    if query.after is not None:
        after = query.after if query.sort != key else (query.after[1], query.after[1])
        kept = [r for r in kept if (order(r) < after if query.descending else order(r) > after)]
    return kept[: query.limit], len(kept) > query.limit


def _newest(items: Iterable[T], limit: int) -> list[T]:
    return list(reversed(list(items)))[:limit]


if TYPE_CHECKING:
    _store: Store = FakeStore()
    _clock: Clock = FixedClock()


__all__ = ["FakeStore", "FixedClock"]


class FakeMessageLogStore:
    """The message log's store in memory (:class:`~chargegrid.service.message_log.MessageLogStore`),
    with the SQL store's semantics: ids from 1, newest first, case-insensitive search."""

    def __init__(self) -> None:
        self.entries: list[LoggedMessage] = []
        self._ids = itertools.count(1)
        self.fail_next = 0  # append raises StorageError this many more times
        self.closed = False

    async def append(self, entries: Sequence[LoggedMessage]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise StorageError("append refused (FakeMessageLogStore.fail_next)")
        for entry in entries:
            self.entries.append(msgspec.structs.replace(entry, id=next(self._ids)))

    async def page(self, query: MessageQuery) -> tuple[list[LoggedMessage], bool]:
        def keep(e: LoggedMessage) -> bool:
            return (
                e.station_id == query.station_id
                and (query.before_id is None or (e.id or 0) < query.before_id)
                and all(
                    wanted is None or getattr(e, name) == wanted
                    for name, wanted in (
                        ("direction", query.direction),
                        ("message_type", query.message_type),
                        ("action", query.action),
                        ("unique_id", query.unique_id),
                    )
                )
                and (query.since is None or e.at >= query.since)
                and (query.until is None or e.at < query.until)
                and (not query.text or query.text.lower() in e.payload.lower())
            )

        found = [e for e in reversed(self.entries) if keep(e)]
        return found[: query.limit], len(found) > query.limit

    async def has_station(self, station_id: str) -> bool:
        return any(e.station_id == station_id for e in self.entries)

    async def delete_older(self, cutoff: datetime, limit: int) -> int:
        old = [e for e in self.entries if e.at < cutoff][:limit]
        gone = {id(e) for e in old}
        self.entries = [e for e in self.entries if id(e) not in gone]
        return len(old)

    async def keep_newest(self, rows: int, limit: int) -> int:
        top = max((e.id or 0 for e in self.entries), default=0)
        beyond = [e for e in self.entries if (e.id or 0) <= top - rows][:limit]
        gone = {id(e) for e in beyond}
        self.entries = [e for e in self.entries if id(e) not in gone]
        return len(beyond)

    async def close(self) -> None:
        self.closed = True


if TYPE_CHECKING:
    from chargegrid.domain.message_log import LoggedMessage
    from chargegrid.service.message_log import MessageLogStore, MessageQuery

    _message_log_store: MessageLogStore = FakeMessageLogStore()

__all__ += ["FakeMessageLogStore"]


class FakeWebhookStore:
    """An in-memory :class:`chargegrid.service.webhooks.WebhookStore`: ids from 1, copies in and
    out, the same orders as the SQL one; ``fail_writes`` makes every write raise StorageError."""

    def __init__(self) -> None:
        self.webhooks: dict[int, Webhook] = {}
        self.deliveries: dict[str, Delivery] = {}
        self.fail_writes = False
        self.closed = False
        self._ids = itertools.count(1)

    def _writing(self) -> None:
        if self.fail_writes or self.closed:
            raise StorageError("fake webhook store refuses writes")

    async def add_webhook(self, webhook: Webhook) -> Webhook:
        self._writing()
        webhook.id = next(self._ids)
        self.webhooks[webhook.id] = copy.deepcopy(webhook)
        return webhook

    async def save_webhook(self, webhook: Webhook) -> None:
        self._writing()
        if webhook.id in self.webhooks:
            self.webhooks[webhook.id] = copy.deepcopy(webhook)

    async def list_webhooks(self) -> list[Webhook]:
        return [copy.deepcopy(w) for _, w in sorted(self.webhooks.items())]

    async def delete_webhook(self, webhook_id: int) -> bool:
        self._writing()
        self.deliveries = {k: d for k, d in self.deliveries.items() if d.webhook_id != webhook_id}
        return self.webhooks.pop(webhook_id, None) is not None

    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        self._writing()
        for delivery in deliveries:
            if delivery.webhook_id not in self.webhooks or delivery.id in self.deliveries:
                raise IntegrityError(f"delivery {delivery.id} refused")
        for delivery in deliveries:
            self.deliveries[delivery.id] = copy.deepcopy(delivery)

    async def save_delivery(self, delivery: Delivery) -> None:
        self._writing()
        if delivery.id in self.deliveries:
            self.deliveries[delivery.id] = copy.deepcopy(delivery)

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        found = self.deliveries.get(delivery_id)
        return copy.deepcopy(found)

    async def pending_deliveries(self, webhook_id: int, limit: int) -> list[Delivery]:
        pending = [
            d
            for d in self.deliveries.values()
            if d.webhook_id == webhook_id and d.status == "pending"
        ]
        pending.sort(key=lambda d: (d.next_attempt_at, d.created_at, d.seq, d.id))
        return [copy.deepcopy(d) for d in pending[:limit]]

    async def page_deliveries(
        self, webhook_id: int, query: ListQuery
    ) -> tuple[list[Delivery], bool]:
        status = {f.value for f in query.filters if (f.field, f.op) == ("status", "eq")}
        mine = sorted(
            (
                d
                for d in self.deliveries.values()
                if d.webhook_id == webhook_id and (not status or d.status in status)
            ),
            key=lambda d: (d.created_at, d.id),
            reverse=query.descending,
        )
        if query.after is not None:
            after = tuple(query.after)
            if query.descending:
                mine = [d for d in mine if (d.created_at, d.id) < after]
            else:
                mine = [d for d in mine if (d.created_at, d.id) > after]
        found = [copy.deepcopy(d) for d in mine[: query.limit]]
        return found, len(mine) > query.limit

    async def purge_deliveries(self, before: datetime) -> int:
        self._writing()
        old = [
            k
            for k, d in self.deliveries.items()
            if d.status in ("delivered", "failed") and d.created_at < before
        ]
        for key in old:
            del self.deliveries[key]
        return len(old)

    async def close(self) -> None:
        self.closed = True


if TYPE_CHECKING:
    from chargegrid.domain.webhooks import Delivery, Webhook
    from chargegrid.service.webhooks import WebhookStore

    _webhook_store: WebhookStore = FakeWebhookStore()

__all__ += ["FakeWebhookStore"]
