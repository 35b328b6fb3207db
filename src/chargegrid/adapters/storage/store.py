"""The :class:`~chargegrid.service.ports.Store` on SQLite or PostgreSQL (SQLAlchemy async Core).

Writes go through one :class:`~.writer.Writer` (group commit: see its module) on an engine of
its own with one connection; reads use a second engine with a pool, so a burst of reads never
holds up the writer (SQLite in WAL mode lets readers and the writer work side by side). Every
query is parameterised. The schema must be migrated first: ``upgrade(url)`` from :mod:`.migrate`.

Semantics shared with :class:`chargegrid.testing.fakes.FakeStore` (the contract tests run on
both):

* ``record_status`` appends to the history and upserts the connector's current status, unless
  the stored one is newer (a station replaying queued notifications does not roll it back).
* ``start_transaction`` assigns ids from 1; for OCPP 1.6 (``station_tx_id`` None) the station
  transaction id is the id's decimal text, set in the same database transaction.
* ``find_same_start``: a transaction on the same station and connector with the same start time,
  token and meter start: a StartTransaction the station resent because it lost our answer.
* ``meter_values`` returns one reading per timestamp, in time order, values in arrival order.
* ``save_local_list``: ``full`` replaces the list; otherwise entries are upserted and an entry
  whose status is None removes its token. The last mention of a token wins.
* Lists are newest first where a time orders them (history, transactions, commands).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from sqlalchemy import (
    Executable,
    Insert,
    Table,
    Text,
    Update,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    make_url,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from chargegrid.adapters.storage import rows, tables
from chargegrid.adapters.storage.engine import make_engine, make_sync_engine
from chargegrid.adapters.storage.errors import StorageError
from chargegrid.adapters.storage.hot import HotState
from chargegrid.adapters.storage.migrate import normalize_url
from chargegrid.adapters.storage.tables import UtcDateTime
from chargegrid.adapters.storage.writer import (
    AsyncExecutor,
    Step,
    ThreadExecutor,
    Write,
    Writer,
    WriterStats,
)
from chargegrid.domain.access import ApiToken, Role
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
    TransactionState,
)
from chargegrid.service.ports import (
    CommandRecord,
    DataTransferRecord,
    ListQuery,
    NewTransaction,
)

if TYPE_CHECKING:
    from sqlalchemy import Row
    from sqlalchemy.sql import Select

    from chargegrid.service.ports import Store

log = structlog.get_logger(__name__)


async def open_store(url: str, *, batch_max: int = 1000, shared: bool = False) -> SqlStore:
    """Connect to the (migrated) database at ``url`` and start the writer.

    ``url`` may be a plain ``sqlite:///file.db`` or ``postgresql://...`` URL (see
    :func:`~.migrate.normalize_url`). ``shared``: other nodes of a cluster write to the same
    database (see :mod:`.hot`). Raises StorageError if the database cannot be reached.
    """
    # PostgreSQL reads run in autocommit: each is one statement, and a transaction around it
    # would cost a BEGIN and a ROLLBACK, two more round trips of three.
    pg = make_url(normalize_url(url)).get_backend_name() == "postgresql"
    reader = make_engine(url, isolation_level="AUTOCOMMIT") if pg else make_engine(url)
    writer = make_engine(url, writer=True, pool_size=1, max_overflow=0)
    # SQLite's driver is synchronous: the writer runs it on a thread of its own, one hand-off
    # per batch, instead of through the async adapter's hand-off per call.
    sqlite = writer.dialect.name == "sqlite"
    sync_writer = make_sync_engine(url, writer=True) if sqlite else None
    sync_reader = make_sync_engine(url) if sqlite else None
    try:
        if sync_reader is not None:
            # Probed through the synchronous driver: aiosqlite, when its connect fails, leaves
            # a close queued on its thread that reports to the event loop after it may be gone.
            await asyncio.to_thread(_probe, sync_reader)
        else:
            async with reader.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except (sa_exc.SQLAlchemyError, OSError) as exc:
        await reader.dispose()
        await writer.dispose()
        for engine in (sync_reader, sync_writer):
            if engine is not None:
                engine.dispose()
        raise StorageError(f"cannot open the database: {exc}") from exc
    store = SqlStore(
        reader,
        writer,
        batch_max=batch_max,
        sync_writer=sync_writer,
        sync_reader=sync_reader,
        shared=shared,
    )
    await store._load()
    return store


def _probe(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


class SqlStore:
    """Everything the central system keeps, in SQL. Build it with :func:`open_store`."""

    def __init__(
        self,
        reader: AsyncEngine,
        writer: AsyncEngine,
        *,
        batch_max: int = 1000,
        sync_writer: Engine | None = None,
        sync_reader: Engine | None = None,
        shared: bool = False,
    ) -> None:
        self._reader = reader
        # SQLite reads, like its writes, go to a thread of their own with the synchronous
        # driver: one hand-off per read instead of one per driver call.
        self._sync_reader = sync_reader
        self._read_thread = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-reader")
            if sync_reader is not None
            else None
        )
        self._writer_engine = writer
        self._writer = Writer(
            ThreadExecutor(sync_writer) if sync_writer is not None else AsyncExecutor(writer),
            batch_max=batch_max,
        )
        self._closed = False
        self._rereads: set[asyncio.Task[None]] = set()  # transactions read again (_doubt)
        self._reads = 0  # under way; close() waits for them
        self._no_reads = asyncio.Event()
        self._no_reads.set()
        dialect = writer.dialect.name
        # Built once: the writer merges consecutive writes of the same statement object.
        self._touch = (
            update(tables.stations)
            .where(tables.stations.c.id == bindparam("w_id"))
            .values(last_seen=bindparam("w_at", type_=UtcDateTime()), online=bindparam("w_on"))
        )
        self._save_station = _upsert(dialect, tables.stations, ["id"])
        self._insert_status = insert(tables.status_changes)
        self._upsert_status = _upsert(
            dialect,
            tables.connector_status,
            ["station_id", "evse_id", "connector_id"],
            unless_newer=True,
        )
        self._save_token = _upsert(dialect, tables.id_tokens, ["value"])
        self._save_list_version = _upsert(dialect, tables.local_lists, ["station_id"])
        self._save_entry = _upsert(dialect, tables.local_list_entries, ["station_id", "id_token"])
        self._clear_list = delete(tables.local_list_entries).where(
            tables.local_list_entries.c.station_id == bindparam("w_station")
        )
        self._remove_entry = delete(tables.local_list_entries).where(
            tables.local_list_entries.c.station_id == bindparam("w_station"),
            tables.local_list_entries.c.id_token == bindparam("w_token"),
        )
        self._insert_meter = insert(tables.meter_values)
        self._save_reservation = _upsert(dialect, tables.reservations, ["id"])
        self._insert_boot = insert(tables.boots)
        self._insert_event = insert(tables.security_events)
        self._insert_report = insert(tables.station_reports)
        self._save_config = _upsert(dialect, tables.config_values, _CONFIG_KEY)
        self._insert_transfer = insert(tables.data_transfers)
        self._insert_command = insert(tables.commands)
        self._insert_tx = insert(tables.transactions)
        self._delete_station = delete(tables.stations).where(
            tables.stations.c.id == bindparam("w_id")
        )
        self._delete_token = delete(tables.id_tokens).where(
            tables.id_tokens.c.value == bindparam("w_value")
        )
        self._insert_api_token = insert(tables.api_tokens)
        self._revoke_api_token = (
            update(tables.api_tokens)
            .where(tables.api_tokens.c.id == bindparam("w_id"))
            .values(revoked=bindparam("w_revoked"))  # the writer's plans bind every value
        )
        self._update_tx_statements: dict[tuple[str, ...], Update] = {}
        self._hot = HotState()
        # In a cluster: the stations held by this node, whose transactions the hot state keeps
        self._shared = shared
        self._adopted: set[str] = set()
        self._shared_ids = dialect == "postgresql"
        self._tx_ids_next = 1  # SQLite: the next id
        self._tx_ids: deque[int] = deque()  # PostgreSQL: allocated, not yet used, ascending
        self._refilling: asyncio.Task[None] | None = None
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._done.set_result(None)  # awaiting it does not suspend

    async def _load(self) -> None:
        """Read what the hot path keeps in memory (see :mod:`.hot`)."""
        c = tables.transactions.c
        if not self._shared:  # shared: read per station as it connects (adopt)
            active = await self._all(select(tables.transactions).where(c.state == _ACTIVE))
            self._hot.load([rows.to_transaction(r) for r in active])
        if not self._shared_ids:
            top = await self._all(select(func.max(c.id)))
            self._tx_ids_next = int(top[0][0] or 0) + 1

    async def _next_transaction_id(self) -> int:
        """Transaction ids are allocated here, not by the INSERT, so that starting a
        transaction is a plain write the writer can merge with others.

        SQLite has one chargegrid node, this one: ids count up from the largest stored at start.
        PostgreSQL may have several nodes: each takes blocks from the table's sequence, the next
        block fetched in the background while a quarter of the current one is left, so a start
        seldom waits for it.
        """
        if not self._shared_ids:
            tx_id = self._tx_ids_next
            self._tx_ids_next += 1
            return tx_id
        if len(self._tx_ids) < _ID_BLOCK // 4:
            self._refill_ids()
        while not self._tx_ids:
            await asyncio.shield(self._refill_ids())
        return self._tx_ids.popleft()

    def _refill_ids(self) -> asyncio.Task[None]:
        """The task fetching the next block of ids, started if none is under way."""
        if self._refilling is None:
            self._refilling = asyncio.get_running_loop().create_task(self._fetch_ids())
            # A failed prefetch is retried by the next start, which sees the error.
            self._refilling.add_done_callback(lambda t: t.cancelled() or t.exception())
        return self._refilling

    async def _fetch_ids(self) -> None:
        query = text(
            "SELECT nextval(pg_get_serial_sequence('transactions', 'id')) "
            "FROM generate_series(1, :n)"
        ).bindparams(n=_ID_BLOCK)
        try:
            self._tx_ids.extend(sorted(int(r[0]) for r in await self._all(query)))
        finally:
            self._refilling = None

    @property
    def stats(self) -> WriterStats:
        """Writes and commits so far (``writes / commits`` is the group-commit factor)."""
        return self._writer.stats

    async def close(self) -> None:
        """Commit every write queued so far, let the reads under way finish, close everything.

        Reads and writes after this raise StorageError.
        """
        self._closed = True
        try:
            await self._writer.close()
            for task in list(self._rereads):
                task.cancel()
            await asyncio.gather(*self._rereads, return_exceptions=True)
            await self._no_reads.wait()  # a connection returned to a disposed pool would leak
        finally:
            await self._writer_engine.dispose()
            await self._reader.dispose()
            read_thread, self._read_thread = self._read_thread, None
            if read_thread is not None and self._sync_reader is not None:
                await asyncio.get_running_loop().run_in_executor(
                    read_thread, self._sync_reader.dispose
                )
                read_thread.shutdown(wait=True)

    # -- units of work

    def write_unit(self) -> WriteUnit:
        """A unit of work: writes made where it is active are queued, not awaited (see
        :class:`WriteUnit`)."""
        return WriteUnit()

    def _write(self, *steps: Step, undo: Callable[[], None] | None = None) -> Awaitable[None]:
        unit = _UNIT.get()
        if unit is None:
            return self._writer.execute(*steps, undo=undo)
        write = self._writer.submit(*steps, undo=undo)
        if write is not None:
            unit.writes.append(write)
        return self._done

    # -- stations

    async def get_station(self, station_id: str) -> Station | None:
        fresh, station = self._hot.stations.get(station_id)
        if not fresh:
            version = self._hot.stations.version(station_id)
            query = select(tables.stations).where(tables.stations.c.id == station_id)
            row = await self._one(query)
            found = None if row is None else rows.to_station(row)
            station = self._hot.stations.fill(station_id, found, version)
        return None if station is None else msgspec.structs.replace(station)

    async def save_station(self, station: Station) -> None:
        await self._write(Step(self._save_station, [rows.station_values(station)]))
        self._hot.stations.put(station.id, msgspec.structs.replace(station))

    async def touch_station(self, station_id: str, at: datetime, *, online: bool) -> None:
        """Set last-seen and online; a station without a row is left alone."""
        row = {"w_id": station_id, "w_at": at, "w_on": online}
        await self._write(Step(self._touch, [row]))
        fresh, station = self._hot.stations.get(station_id)
        if fresh and station is not None:
            station.last_seen, station.online = at.astimezone(UTC), online

    async def list_stations(self) -> Sequence[Station]:
        return [
            rows.to_station(r)
            for r in await self._all(select(tables.stations).order_by(tables.stations.c.id))
        ]

    # -- status

    async def record_status(self, change: StatusChange) -> None:
        values = rows.status_values(change)
        await self._write(Step(self._insert_status, [values]), Step(self._upsert_status, [values]))

    async def connector_statuses(self, station_id: str) -> Sequence[StatusChange]:
        c = tables.connector_status.c
        query = (
            select(tables.connector_status)
            .where(c.station_id == station_id)
            .order_by(c.evse_id, c.connector_id)
        )
        return [rows.to_status(r) for r in await self._all(query)]

    async def status_history(self, station_id: str, limit: int = 100) -> Sequence[StatusChange]:
        c = tables.status_changes.c
        query = (
            select(tables.status_changes)
            .where(c.station_id == station_id)
            .order_by(c.timestamp.desc(), c.id.desc())
            .limit(limit)
        )
        return [rows.to_status(r) for r in await self._all(query)]

    # -- tokens and local lists

    async def get_token(self, value: str) -> IdToken | None:
        fresh, token = self._hot.tokens.get(value)
        if not fresh:
            version = self._hot.tokens.version(value)
            query = select(tables.id_tokens).where(tables.id_tokens.c.value == value)
            row = await self._one(query)
            found = None if row is None else rows.to_token(row)
            token = self._hot.tokens.fill(value, found, version)
        return token

    async def save_token(self, token: IdToken) -> None:
        await self._write(Step(self._save_token, [rows.token_values(token)]))
        expires = token.expires_at.astimezone(UTC) if token.expires_at else None
        self._hot.tokens.put(token.value, msgspec.structs.replace(token, expires_at=expires))

    async def local_list_version(self, station_id: str) -> int:
        query = select(tables.local_lists.c.version).where(
            tables.local_lists.c.station_id == station_id
        )
        row = await self._one(query)
        return 0 if row is None else int(row.version)

    async def save_local_list(
        self, station_id: str, version: int, entries: Sequence[LocalListEntry], *, full: bool
    ) -> None:
        last = {e.id_token: e for e in entries}  # a token mentioned twice: the last one counts
        kept = [rows.entry_values(station_id, e) for e in last.values() if e.status is not None]
        removed = [
            {"w_station": station_id, "w_token": e.id_token}
            for e in last.values()
            if e.status is None and not full
        ]

        await self._write(
            Step(self._save_list_version, [{"station_id": station_id, "version": version}]),
            Step(self._clear_list, [{"w_station": station_id}] if full else []),
            Step(self._remove_entry, removed),
            Step(self._save_entry, kept),
        )

    async def local_list(self, station_id: str) -> Sequence[LocalListEntry]:
        c = tables.local_list_entries.c
        query = (
            select(tables.local_list_entries).where(c.station_id == station_id).order_by(c.id_token)
        )
        return [rows.to_entry(r) for r in await self._all(query)]

    # -- transactions and meter values

    async def start_transaction(self, new: NewTransaction) -> Transaction:
        tx_id = await self._next_transaction_id()
        station_tx_id = new.station_tx_id if new.station_tx_id is not None else str(tx_id)
        values = rows.new_transaction_values(new) | {"id": tx_id, "station_tx_id": station_tx_id}
        tx = Transaction(
            id=tx_id,
            station_id=new.station_id,
            station_tx_id=station_tx_id,
            evse_id=new.evse_id,
            connector_id=new.connector_id,
            id_token=new.id_token,
            started_at=new.started_at.astimezone(UTC),
            meter_start_wh=new.meter_start_wh,
            reservation_id=new.reservation_id,
            charging_state=new.charging_state,
        )
        if self._holds(new.station_id):
            self._hot.remember(tx)
        await self._write(Step(self._insert_tx, [values]), undo=lambda: self._doubt(tx))
        return msgspec.structs.replace(tx)

    async def get_transaction(self, transaction_id: int) -> Transaction | None:
        tx = self._hot.transaction(transaction_id)
        if tx is None:
            tx = await self._transaction(tables.transactions.c.id == transaction_id)
        return tx

    async def find_transaction(self, station_id: str, station_tx_id: str) -> Transaction | None:
        tx = self._hot.find(station_id, station_tx_id)
        if tx is None:
            c = tables.transactions.c
            tx = await self._transaction(
                (c.station_id == station_id) & (c.station_tx_id == station_tx_id)
            )
        return tx

    async def find_same_start(self, new: NewTransaction) -> Transaction | None:
        """Looks among the station's active and recently ended transactions only: a station
        resends a start whose answer it lost right away, before it stops that transaction."""
        return self._hot.find_recent(
            new.station_id,
            lambda tx: (
                tx.connector_id == new.connector_id
                and tx.started_at == new.started_at
                and tx.id_token == new.id_token
                and tx.meter_start_wh == new.meter_start_wh
            ),
        )

    async def update_transaction(self, tx: Transaction) -> None:
        """Store every field of ``tx``; StorageError if there is no transaction ``tx.id``.

        Only the columns that differ from the kept copy are written (a meter reading changes
        one), with one statement per set of columns, so such updates merge in the writer.
        """
        previous = self._hot.transaction(tx.id) or await self.get_transaction(tx.id)
        if previous is None:
            raise StorageError(f"no transaction {tx.id} to update")
        old = rows.transaction_values(previous)
        new = rows.transaction_values(tx)
        changed = tuple(k for k in new if new[k] != old[k])
        if self._holds(tx.station_id):
            self._hot.remember(tx)
        if changed:
            row = {f"w_{k}": new[k] for k in changed} | {"w_id": tx.id}
            await self._write(Step(self._update_tx(changed), [row]), undo=lambda: self._doubt(tx))

    def _doubt(self, tx: Transaction) -> None:
        """A write of ``tx`` failed: the kept copy is not what the database has. Forget it (what
        the station resends is then checked against the database), and keep the database's
        row again once the writes queued meanwhile are settled."""
        self._hot.forget(tx.id)
        if self._holds(tx.station_id) and not self._closed:
            task = asyncio.get_running_loop().create_task(self._reread(tx.station_id, tx.id))
            self._rereads.add(task)
            task.add_done_callback(self._rereads.discard)

    async def _reread(self, station_id: str, transaction_id: int) -> None:
        try:
            await self._writer.settled()
            found = await self._transaction(tables.transactions.c.id == transaction_id)
        except StorageError as exc:  # its next message reads the database again
            log.warning("transaction not read again", transaction_id=transaction_id, error=str(exc))
            return
        # unless a message since read it (and keeps a newer copy) or the station left
        if found is not None and not self._hot.known(transaction_id) and self._holds(station_id):
            self._hot.remember(found)

    async def settled(self) -> None:
        """Return once every write queued so far is committed or failed."""
        await self._writer.settled()

    def _update_tx(self, columns: tuple[str, ...]) -> Update:
        """The UPDATE of ``columns`` of one transaction, built once per set of columns."""
        statement = self._update_tx_statements.get(columns)
        if statement is None:
            statement = self._update_tx_statements[columns] = (
                update(tables.transactions)
                .where(tables.transactions.c.id == bindparam("w_id"))
                .values({name: bindparam(f"w_{name}") for name in columns})
            )
        return statement

    async def has_active_transaction(self, id_token: str) -> bool:
        if self._hot.token_active(id_token):
            return True
        if not self._shared:
            return False
        # In a cluster the token may be in use at a station of another node; this node's own
        # stations' transactions are as the hot state says (their end may not be committed).
        c = tables.transactions.c
        query = select(c.id).where((c.id_token == id_token) & (c.state == _ACTIVE))
        return any(not self._hot.known(r[0]) for r in await self._all(query))

    async def active_transactions(self, station_id: str) -> Sequence[Transaction]:
        if self._shared and station_id not in self._adopted:  # held by another node
            c = tables.transactions.c
            query = (
                select(tables.transactions)
                .where((c.station_id == station_id) & (c.state == _ACTIVE))
                .order_by(c.id)
            )
            return [rows.to_transaction(r) for r in await self._all(query)]
        return self._hot.active(station_id)

    # -- cluster: the stations this node holds (service.cluster.node.SharedState)

    def _holds(self, station_id: str) -> bool:
        """Whether the hot state keeps the station's transactions: always on one node; in a
        cluster, only while the station is held here (a late handler of a connection evicted
        since must not leave a copy that the next adopt would not replace)."""
        return not self._shared or station_id in self._adopted

    async def adopt(self, station_id: str) -> None:
        """The station connected to this node: keep its active and latest ended transactions,
        as the database has them now (another node may have written them)."""
        await self.adopt_many([station_id])

    async def adopt_many(self, station_ids: Sequence[str]) -> None:
        """:meth:`adopt` for many stations at once, in three reads whatever their number: their
        rows (kept as a fresh copy, so their first messages read nothing), their active
        transactions, and the latest ended ones of each. A storm of connections costs a few
        reads per batch rather than several per station."""
        ids = sorted(set(station_ids))
        if not ids:
            return
        versions = {sid: self._hot.stations.version(sid) for sid in ids}
        c = tables.transactions.c
        mine = c.station_id.in_(ids)
        stations = await self._all(select(tables.stations).where(tables.stations.c.id.in_(ids)))
        active = await self._all(select(tables.transactions).where(mine & (c.state == _ACTIVE)))
        ended = await self._all(self._latest_ended(ids))
        found = {row.id: rows.to_station(row) for row in stations}
        for sid in ids:
            self._hot.stations.fill(sid, found.get(sid), versions[sid])
            self._hot.drop_station(sid)
        for row in [*ended, *active]:
            self._hot.remember(rows.to_transaction(row))
        self._adopted.update(ids)

    def _latest_ended(self, ids: list[str]) -> Executable:
        """The latest ended transactions of each station, :data:`_ENDED_KEPT` at most.

        PostgreSQL reads them station by station from the (station_id, id) index, backwards: a
        few rows each however long the station's history (a year of sessions is thousands). A
        window over the stations' transactions reads the whole history: 480 ms against 34 ms
        for 500 stations of 1,000 transactions each. SQLite has no LATERAL, and one node."""
        c = tables.transactions.c
        if not self._shared_ids:
            ranked = (
                select(
                    tables.transactions,
                    func.row_number()
                    .over(partition_by=c.station_id, order_by=c.id.desc())
                    .label("latest"),
                )
                .where(c.station_id.in_(ids) & (c.state != _ACTIVE))
                .subquery()
            )
            return select(ranked).where(ranked.c.latest <= _ENDED_KEPT).order_by(ranked.c.id)
        adopted = bindparam("adopted", ids, type_=postgresql.ARRAY(Text))
        held = func.unnest(adopted).table_valued("station_id").render_derived(name="held")
        latest = (
            select(tables.transactions)
            .where((c.station_id == held.c.station_id) & (c.state != _ACTIVE))
            .order_by(c.id.desc())
            .limit(_ENDED_KEPT)
            .lateral("latest")
        )
        return select(latest).select_from(held).join(latest, true()).order_by(latest.c.id)

    def release(self, station_id: str) -> None:
        """The station left this node: forget its transactions (another node writes them)."""
        self._adopted.discard(station_id)
        self._hot.drop_station(station_id)

    def invalidate_station(self, station_id: str) -> None:
        """Another node changed the station: read it again at its next use."""
        self._hot.stations.forget(station_id)

    async def list_transactions(self, station_id: str | None = None) -> Sequence[Transaction]:
        c = tables.transactions.c
        query = select(tables.transactions).order_by(c.started_at.desc(), c.id.desc())
        if station_id is not None:
            query = query.where(c.station_id == station_id)
        return [rows.to_transaction(r) for r in await self._all(query)]

    async def record_meter_values(
        self,
        station_id: str,
        transaction_id: int | None,
        evse_id: int,
        connector_id: int,
        readings: Sequence[MeterReading],
    ) -> None:
        values = rows.meter_rows(station_id, transaction_id, evse_id, connector_id, readings)
        await self._write(Step(self._insert_meter, values))

    async def meter_values(self, transaction_id: int) -> Sequence[MeterReading]:
        c = tables.meter_values.c
        query = (
            select(tables.meter_values)
            .where(c.transaction_id == transaction_id)
            .order_by(c.timestamp, c.id)
        )
        return rows.to_readings(await self._all(query))

    # -- reservations

    async def save_reservation(self, reservation: Reservation) -> None:
        await self._write(Step(self._save_reservation, [_fields(reservation)]))

    async def get_reservation(self, reservation_id: int) -> Reservation | None:
        r = tables.reservations
        row = await self._one(select(r).where(r.c.id == reservation_id))
        return None if row is None else Reservation(**row._asdict())

    # -- what stations report

    async def record_boot(self, station_id: str, reason: str | None, at: datetime) -> None:
        row = {"station_id": station_id, "reason": reason, "timestamp": at}
        await self._write(Step(self._insert_boot, [row]))

    async def record_security_event(self, event: SecurityEvent) -> None:
        await self._write(Step(self._insert_event, [_fields(event)]))

    async def record_report(self, report: StationReport) -> None:
        await self._write(Step(self._insert_report, [_fields(report)]))

    async def save_config(self, station_id: str, values: Sequence[ConfigValue]) -> None:
        """Upsert each setting by station/component/EVSE/connector/variable/instance/attribute.

        ``station_id`` is authoritative: it replaces the one in each value.
        """
        config = [rows.config_values(v) | {"station_id": station_id} for v in values]
        await self._write(Step(self._save_config, config))

    async def config(self, station_id: str) -> Sequence[ConfigValue]:
        c = tables.config_values.c
        query = (
            select(tables.config_values)
            .where(c.station_id == station_id)
            .order_by(c.component, c.evse_id, c.connector_id, c.variable, c.instance, c.attribute)
        )
        return [rows.to_config(r) for r in await self._all(query)]

    async def record_data_transfer(self, record: DataTransferRecord) -> None:
        await self._write(Step(self._insert_transfer, [_fields(record)]))

    async def record_command(self, record: CommandRecord) -> None:
        await self._write(Step(self._insert_command, [rows.command_values(record)]))

    async def commands(self, station_id: str, limit: int = 100) -> Sequence[CommandRecord]:
        c = tables.commands.c
        query = (
            select(tables.commands)
            .where(c.station_id == station_id)
            .order_by(c.sent_at.desc(), c.id.desc())
            .limit(limit)
        )
        return [rows.to_command(r) for r in await self._all(query)]

    # -- operator lists and deletions

    async def page_stations(self, query: ListQuery) -> tuple[Sequence[Station], bool]:
        found, more = await self._page(_STATION_PAGES, query)
        return [rows.to_station(r) for r in found], more

    async def page_tokens(self, query: ListQuery) -> tuple[Sequence[IdToken], bool]:
        found, more = await self._page(_TOKEN_PAGES, query)
        return [rows.to_token(r) for r in found], more

    async def token_groups(self) -> Sequence[TokenGroup]:
        t = tables.id_tokens.c
        query = (
            select(
                t.token_group.label("name"),
                func.count().label("tokens"),
                func.sum(case((t.blocked, 1), else_=0)).label("blocked"),
            )
            .where(t.token_group.is_not(None))
            .group_by(t.token_group)
            .order_by(t.token_group)
        )
        found = await self._all(query)
        return [TokenGroup(r.name, r.tokens, int(r.blocked or 0)) for r in found]

    async def page_reservations(self, query: ListQuery) -> tuple[Sequence[Reservation], bool]:
        found, more = await self._page(_RESERVATION_PAGES, query)
        return [Reservation(**row._asdict()) for row in found], more

    async def page_transactions(self, query: ListQuery) -> tuple[Sequence[Transaction], bool]:
        found, more = await self._page(_TRANSACTION_PAGES, query)
        listed = []
        for row in found:  # an active transaction's kept copy is the current one
            tx = self._hot.transaction(row.id) if row.state == _ACTIVE else None
            listed.append(tx or rows.to_transaction(row))
        return listed, more

    async def _page(self, spec: _PageSpec, query: ListQuery) -> tuple[Sequence[Row[Any]], bool]:
        sort = spec.columns[query.sort]
        key = spec.key
        statement = select(spec.table)
        for f in query.filters:
            column = spec.columns[f.field]
            if f.op == "eq":
                statement = statement.where(
                    column.is_(None) if f.value is None else column == f.value
                )
            elif f.op == "ge":
                statement = statement.where(column >= f.value)
            elif f.op == "lt":
                statement = statement.where(column < f.value)
            else:
                raise ValueError(f"unknown filter operator {f.op!r}")
        if query.after is not None:
            value, last = query.after
            if sort is key:
                after = key < last if query.descending else key > last
            else:
                pair, bound = tuple_(sort, key), tuple_(literal(value, sort.type), last)
                after = pair < bound if query.descending else pair > bound
            statement = statement.where(after)
        if sort is not key:
            statement = statement.where(sort.is_not(None))
        order = [sort.desc(), key.desc()] if query.descending else [sort, key]
        if sort is key:
            order = order[:1]
        found = await self._all(statement.order_by(*order).limit(query.limit + 1))
        return found[: query.limit], len(found) > query.limit

    async def delete_station(self, station_id: str) -> bool:
        """Forget the station (its history tables keep what it sent); False if unknown."""
        if await self.get_station(station_id) is None:
            return False
        await self._write(Step(self._delete_station, [{"w_id": station_id}]))
        self._hot.stations.put(station_id, None)
        return True

    async def delete_token(self, value: str) -> bool:
        if await self.get_token(value) is None:
            return False
        await self._write(Step(self._delete_token, [{"w_value": value}]))
        self._hot.tokens.put(value, None)
        return True

    # -- API tokens

    async def save_api_token(self, token: ApiToken) -> ApiToken:
        """Store a new token; returns it with its id."""
        row = {
            "name": token.name,
            "role": token.role.value,
            "token_sha256": token.token_sha256,
            "created_at": token.created_at,
            "revoked": token.revoked,
        }
        await self._write(Step(self._insert_api_token, [row]))
        found = await self.find_api_token(token.token_sha256)
        if found is None:  # pragma: no cover - it was just committed
            raise StorageError("the new API token was not stored")
        return found

    async def find_api_token(self, token_sha256: str) -> ApiToken | None:
        t = tables.api_tokens
        row = await self._one(select(t).where(t.c.token_sha256 == token_sha256))
        return None if row is None else _to_api_token(row)

    async def list_api_tokens(self) -> Sequence[ApiToken]:
        t = tables.api_tokens
        return [_to_api_token(r) for r in await self._all(select(t).order_by(t.c.id))]

    async def revoke_api_token(self, token_id: int) -> bool:
        t = tables.api_tokens
        row = await self._one(select(t.c.id).where(t.c.id == token_id))
        if row is None:
            return False
        await self._write(Step(self._revoke_api_token, [{"w_id": token_id, "w_revoked": True}]))
        return True

    # -- readers beyond the Store port (dashboard, tests), newest first in arrival order

    async def boots(
        self, station_id: str, limit: int = 100
    ) -> Sequence[tuple[str | None, datetime]]:
        """``(reason, timestamp)`` of the station's boots."""
        found = await self._all(_arrivals(tables.boots, station_id, limit))
        return [(r.reason, r.timestamp) for r in found]

    async def security_events(self, station_id: str, limit: int = 100) -> Sequence[SecurityEvent]:
        found = await self._all(_arrivals(tables.security_events, station_id, limit))
        return [SecurityEvent(**r._asdict()) for r in found]

    async def reports(self, station_id: str, limit: int = 100) -> Sequence[StationReport]:
        found = await self._all(_arrivals(tables.station_reports, station_id, limit))
        return [StationReport(**r._asdict()) for r in found]

    async def data_transfers(
        self, station_id: str, limit: int = 100
    ) -> Sequence[DataTransferRecord]:
        found = await self._all(_arrivals(tables.data_transfers, station_id, limit))
        return [DataTransferRecord(**r._asdict()) for r in found]

    # -- reading

    async def _transaction(self, where: ColumnElement[bool]) -> Transaction | None:
        row = await self._one(select(tables.transactions).where(where))
        return None if row is None else rows.to_transaction(row)

    async def _one(self, query: Select[Any]) -> Row[Any] | None:
        found = await self._all(query.limit(1))
        return found[0] if found else None

    def _read_sync(self, query: Executable) -> Sequence[Row[Any]]:
        assert self._sync_reader is not None
        with self._sync_reader.connect() as conn:
            return conn.execute(query).all()

    async def _all(self, query: Executable) -> Sequence[Row[Any]]:
        if self._closed:
            raise StorageError("the store is closed")
        if asyncio.current_task() is None:
            # Run eagerly, outside a task (service.ocpp.eager): asyncpg's timeouts need one,
            # and yielding once makes the runner hand the rest to a task.
            await asyncio.sleep(0)
        self._reads += 1
        self._no_reads.clear()
        try:
            if self._read_thread is not None:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._read_thread, self._read_sync, query)
            async with self._reader.connect() as conn:
                return (await conn.execute(query)).all()
        except (sa_exc.SQLAlchemyError, OSError) as exc:
            raise StorageError(str(exc).splitlines()[0]) from exc
        finally:
            self._reads -= 1
            if not self._reads:
                self._no_reads.set()


@dataclasses.dataclass(frozen=True)
class _PageSpec:
    """A list the operator interfaces page through: the fields it sorts and filters by."""

    table: Table
    key: ColumnElement[Any]
    columns: dict[str, ColumnElement[Any]]


def _page_spec(table: Table, key: str, fields: dict[str, str]) -> _PageSpec:
    return _PageSpec(table, table.c[key], {name: table.c[col] for name, col in fields.items()})


_STATION_PAGES = _page_spec(
    tables.stations,
    "id",
    {
        f: f
        for f in ("id", "registration", "online", "ocpp_version", "vendor", "model", "last_seen")
    },
)
_RESERVATION_PAGES = _page_spec(
    tables.reservations,
    "id",
    {f: f for f in ("id", "station_id", "id_token", "status", "expires_at")},
)
_TOKEN_PAGES = _page_spec(
    tables.id_tokens,
    "value",
    {
        "value": "value",
        "kind": "kind",
        "group": "token_group",
        "blocked": "blocked",
        "owner": "owner",
    },
)
_TRANSACTION_PAGES = _page_spec(
    tables.transactions,
    "id",
    {
        f: f
        for f in ("id", "station_id", "id_token", "state", "started_at", "stopped_at", "evse_id")
    },
)


def _to_api_token(row: Row[Any]) -> ApiToken:
    return ApiToken(
        name=row.name,
        role=Role(row.role),
        token_sha256=row.token_sha256,
        created_at=row.created_at,
        revoked=row.revoked,
        id=row.id,
    )


class WriteUnit:
    """The writes of one piece of work (one message from a station), committed with everyone
    else's by the group commit, and one callback once the last of them is committed.

    While active (:meth:`activate`, in the context the work runs in), the store's write methods
    queue their writes and return at once instead of waiting for the commit: the work runs to its
    end without suspending, and its result is released by :meth:`when_committed`. Reads see the
    in-memory state at once and the database only after the commit.
    """

    __slots__ = ("writes",)

    def __init__(self) -> None:
        self.writes: list[Write] = []

    def activate(self) -> None:
        """Make this the unit of the current context (call it inside ``Context.run``)."""
        _UNIT.set(self)

    def when_committed(self, callback: Callable[[BaseException | None], None]) -> None:
        """Call ``callback(error)`` once every write is settled: None if all were committed,
        else the first write's error. At once if there were no writes."""
        writes = self.writes
        if not writes:
            callback(None)
            return

        def settled() -> None:
            callback(next((w.error for w in writes if w.error is not None), None))

        last = writes[-1]  # writes settle in order: when the last has, all have
        if last.settled:
            settled()
        else:
            last.on_settled = settled


_UNIT: ContextVar[WriteUnit | None] = ContextVar("chargegrid_write_unit", default=None)
_ACTIVE = TransactionState.ACTIVE.value
_ID_BLOCK = 100
_ENDED_KEPT = 16  # ended transactions of a station adopted (hot.py keeps as many)
_CONFIG_KEY = [  # the columns of uq_config_values_key
    "station_id",
    "component",
    "evse_id",
    "connector_id",
    "variable",
    "instance",
    "attribute",
]


def _upsert(dialect: str, table: Table, key: list[str], *, unless_newer: bool = False) -> Insert:
    """INSERT, or UPDATE every non-key column of the row with the same ``key``.

    ``unless_newer``: leave a row whose ``timestamp`` is later than the new one's.
    """
    statement = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
    excluded = statement.excluded
    changed = {c.name: excluded[c.name] for c in table.c if c.name not in key and c.name != "id"}
    where = table.c.timestamp <= excluded.timestamp if unless_newer else None
    upsert: Insert = statement.on_conflict_do_update(index_elements=key, set_=changed, where=where)
    return upsert


def _fields(obj: msgspec.Struct) -> dict[str, Any]:
    """The fields of a flat record whose names are its table's columns."""
    return msgspec.structs.asdict(obj)


def _arrivals(table: Table, station_id: str, limit: int) -> Select[Any]:
    """A station's rows of a history table but their ``id``, newest first in arrival order."""
    columns = [c for c in table.c if c.name != "id"]
    query = select(*columns).where(table.c.station_id == station_id)
    return query.order_by(table.c.id.desc()).limit(limit)


if TYPE_CHECKING:

    def _is_a_store(store: SqlStore) -> Store:
        return store
