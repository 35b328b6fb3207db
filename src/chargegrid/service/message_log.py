"""The OCPP message log: every frame to and from each station, searchable, kept for a bounded time.

Rules:

* The transport hands over each frame through :meth:`MessageLog.tap` (station id, ``in`` or
  ``out``, the frame, the event loop's clock): it is queued as it is, nothing parsed, so the
  message path pays an append and two length checks.
* Queued frames are read (message type, unique id, action: :func:`read_header`) in arrival
  order, by the writer task or, when someone tails the station live, on the next turn of the
  event loop, and saved in batches: every ``flush_interval_s`` or as soon as ``batch_rows``
  wait, whichever comes first, through the :class:`MessageLogStore` port.
* Unsaved entries are bounded (``queue_limit``): past it the oldest unsaved entry is dropped and
  counted in :attr:`MessageLog.dropped` (``chargegrid_message_log_dropped_total``), so a slow
  database costs log entries, never the stations' service or the process's memory. A batch the
  store refuses is logged and counted in :attr:`MessageLog.failed`.
* A CALLRESULT or CALLERROR gets the action of the CALL it answers: the log remembers, per
  station and direction, the last ``_PENDING_PER_STATION`` CALLs' unique ids (OCPP-J allows one
  outstanding CALL per direction, so a handful is plenty) and matches answers in the other
  direction by unique id.
* The secrets the CSMS sends a station (passwords, VPN keys: :mod:`chargegrid.domain.redaction`)
  are blanked before an entry is kept or tailed.
* Frames above ``max_payload_bytes`` are cut there and marked ``truncated``; NUL characters
  (which PostgreSQL text cannot hold) are written as ``\\u0000``.
* Retention: every ``retention_interval_s`` entries older than ``retention_days`` are deleted,
  and beyond that all but the newest ``max_rows`` (over all stations), in chunks of
  ``delete_chunk`` rows so the database is never locked for long.
* Live tails (:meth:`MessageLog.tail`) get each entry of their station as it is read, before it
  is saved; a tail more than its limit behind is cut off (:class:`~.feed.Lagged`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import msgspec
import structlog

from chargegrid.domain.message_log import Direction, LoggedMessage, MessageType
from chargegrid.domain.redaction import ACTIONS as SECRET_BEARING
from chargegrid.domain.redaction import redact
from chargegrid.service.feed import Feed
from chargegrid.service.ports import Clock

Tail = Feed[LoggedMessage]

log = structlog.get_logger(__name__)

#: What the transport calls with each frame: station id, "in" or "out", the frame, loop time.
Tap = Callable[[str, str, bytes | str, float], None]

_PENDING_PER_STATION = 16
_KINDS: dict[bytes, MessageType] = {b"2": "CALL", b"3": "CALLRESULT", b"4": "CALLERROR"}
_OTHER: dict[str, Direction] = {"in": "out", "out": "in"}
_parts = msgspec.json.Decoder(list[msgspec.Raw]).decode
_text = msgspec.json.Decoder(str).decode


class MessageQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A page of one station's log, newest first: entries with ``id < before_id``, matching
    every filter given. ``text`` is a substring of the frame (case-insensitive)."""

    station_id: str
    limit: int = 50
    before_id: int | None = None
    direction: Direction | None = None
    message_type: MessageType | None = None
    action: str | None = None
    unique_id: str | None = None
    since: datetime | None = None  # at or after
    until: datetime | None = None  # before
    text: str | None = None


class MessageLogStore(Protocol):
    """Where the log's entries are kept (SQL: :mod:`chargegrid.adapters.storage.message_log`;
    in memory: :class:`chargegrid.testing.fakes.FakeMessageLogStore`)."""

    async def append(self, entries: Sequence[LoggedMessage]) -> None:
        """Save the entries, in order (ids ascending in that order)."""
        ...

    async def page(self, query: MessageQuery) -> tuple[list[LoggedMessage], bool]:
        """The matching entries, newest first, and whether more follow."""
        ...

    async def has_station(self, station_id: str) -> bool:
        """Whether any entry of the station is kept."""
        ...

    async def delete_older(self, cutoff: datetime, limit: int) -> int:
        """Delete at most ``limit`` of the oldest entries logged before ``cutoff``; how many."""
        ...

    async def keep_newest(self, rows: int, limit: int) -> int:
        """Delete at most ``limit`` entries, oldest first, of those beyond the newest ``rows``."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class LogOptions:
    retention_days: float = 7.0
    max_rows: int = 10_000_000
    flush_interval_s: float = 0.5
    batch_rows: int = 500
    max_batch: int = 5000  # rows per store call
    queue_limit: int = 50_000
    max_payload_bytes: int = 64 * 1024
    retention_interval_s: float = 3600.0
    delete_chunk: int = 10_000
    tail_limit: int = 1000


def read_header(frame: bytes | str) -> tuple[MessageType, str | None, str | None]:
    """Message type, unique id and (for a CALL) action of an OCPP-J frame (OCPP-J 1.6 section
    4.1): ``("invalid", None, None)`` if the frame does not have them."""
    try:
        parts = _parts(frame)
        kind = _KINDS.get(bytes(parts[0])) if len(parts) >= 3 else None
        if kind is None:
            return "invalid", None, None
        unique_id = _clean(_text(parts[1]))
        action = _clean(_text(parts[2])) if kind == "CALL" else None
    except (msgspec.DecodeError, msgspec.ValidationError):
        return "invalid", None, None
    return kind, unique_id, action


def _without_secrets(frame: bytes | str, action: str) -> bytes | str:
    """The CALL frame with the secrets of its payload blanked (:mod:`.domain.redaction`)."""
    try:
        parts = msgspec.json.decode(frame)
    except msgspec.DecodeError:
        return frame  # not JSON: the station was not sent it as a CALL, so it carries no secret
    if isinstance(parts, list) and len(parts) == 4 and isinstance(parts[3], dict):
        redacted = redact(action, parts[3])
        if redacted is not parts[3]:
            return msgspec.json.encode([*parts[:3], redacted])
    return frame


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _clean(text: str) -> str:
    return text.replace("\x00", "\\u0000") if "\x00" in text else text


class MessageLog:
    """The log service; :meth:`tap` goes to the transport, :meth:`start` / :meth:`stop` to the
    node, :meth:`page` and :meth:`tail` to the API."""

    def __init__(
        self,
        store: MessageLogStore,
        clock: Clock,
        options: LogOptions | None = None,
        *,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.store = store
        self.options = options or LogOptions()
        self._clock = clock
        self._monotonic = monotonic
        self._raw: deque[tuple[str, str, bytes | str, float]] = deque()
        self._read: deque[LoggedMessage] = deque()
        self._calls: dict[tuple[str, str], dict[str, str]] = {}
        self._tails: dict[str, set[Tail]] = {}
        self._read_soon = False
        self._waiter: asyncio.Future[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        # Whether this node trims the log (in a cluster: only the lease holder, see
        # service/cluster/lease.py); asked before each round
        self.prunes: Callable[[], bool] = lambda: True
        self.dropped = 0  # entries dropped unsaved (queue over its limit)
        self.failed = 0  # entries the store refused
        self.saved = 0

    # --- the transport's side: as cheap as it can be -----------------------------------------

    def tap(self, station_id: str, direction: str, frame: bytes | str, now: float) -> None:
        """Queue one frame (called by the transport for every complete frame, both ways)."""
        raw = self._raw
        raw.append((station_id, direction, frame, now))
        queued = len(raw)
        if queued + len(self._read) > self.options.queue_limit:
            (self._read or raw).popleft()
            self.dropped += 1
        waiter = self._waiter
        if queued >= self.options.batch_rows and waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._tails and station_id in self._tails and not self._read_soon:
            self._read_soon = True
            asyncio.get_running_loop().call_soon(self._read_queued)

    # --- reading and saving --------------------------------------------------------------------

    def _read_queued(self) -> None:
        """Turn the queued frames into entries, in order; hand them to live tails."""
        self._read_soon = False
        raw = self._raw
        if not raw:
            return
        self._raw = deque()
        # Loop time to wall time, once per batch: the offset moves only if the wall clock is set.
        offset = self._clock.now().timestamp() - self._now()
        limit = self.options.max_payload_bytes
        calls = self._calls
        tails = self._tails
        read = self._read
        for station_id, direction, frame, at in raw:
            kind, unique_id, action = read_header(frame)
            if kind == "CALL":
                if unique_id is not None and action is not None:
                    pending = calls.get((station_id, direction))
                    if pending is None:
                        pending = calls[(station_id, direction)] = {}
                    elif len(pending) >= _PENDING_PER_STATION:
                        del pending[next(iter(pending))]
                    pending[unique_id] = action
                    if action in SECRET_BEARING:
                        frame = _without_secrets(frame, action)
            elif kind != "invalid" and unique_id is not None:
                pending = calls.get((station_id, _OTHER.get(direction, direction)))
                action = None if pending is None else pending.pop(unique_id, None)
            truncated = len(frame) > limit
            payload = frame[:limit] if truncated else frame
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
            entry = LoggedMessage(
                station_id=station_id,
                at=datetime.fromtimestamp(at + offset, UTC),
                direction="in" if direction == "in" else "out",
                message_type=kind,
                unique_id=unique_id,
                action=action,
                payload=_clean(text),
                truncated=truncated,
            )
            read.append(entry)
            watching = tails.get(station_id)
            if watching:
                for tail in list(watching):
                    tail.offer(entry)

    def _now(self) -> float:
        if self._monotonic is not None:
            return self._monotonic()
        return asyncio.get_running_loop().time()

    async def flush(self) -> int:
        """Read and save everything queued so far; how many entries were saved."""
        self._read_queued()
        saved = 0
        while self._read:
            batch = [
                self._read.popleft() for _ in range(min(len(self._read), self.options.max_batch))
            ]
            try:
                await self.store.append(batch)
            except Exception as exc:  # a bad batch must not stop the log; it is counted
                self.failed += len(batch)
                log.warning("message log: batch not saved", rows=len(batch), error=repr(exc))
                continue
            saved += len(batch)
        self.saved += saved
        return saved

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            waiter = self._waiter = loop.create_future()
            if len(self._raw) < self.options.batch_rows:
                timer = loop.call_later(self.options.flush_interval_s, _release, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()
            self._waiter = None
            await self.flush()

    # --- retention -----------------------------------------------------------------------------

    async def enforce_retention(self) -> int:
        """Delete what is older than the retention time, then what is beyond ``max_rows``."""
        opts = self.options
        cutoff = self._clock.now() - timedelta(days=opts.retention_days)
        deleted = 0
        while True:
            n = await self.store.delete_older(cutoff, opts.delete_chunk)
            deleted += n
            if n < opts.delete_chunk:
                break
            await asyncio.sleep(0)  # let the writer in between chunks
        while True:
            n = await self.store.keep_newest(opts.max_rows, opts.delete_chunk)
            deleted += n
            if n < opts.delete_chunk:
                break
            await asyncio.sleep(0)
        if deleted:
            log.info("message log: old entries deleted", rows=deleted)
        return deleted

    async def _retention_loop(self) -> None:
        while not self._stopping:
            try:
                if self.prunes():
                    await self.enforce_retention()
            except Exception as exc:  # tried again at the next interval
                log.warning("message log: retention failed", error=repr(exc))
            await asyncio.sleep(self.options.retention_interval_s)

    # --- reading back --------------------------------------------------------------------------

    async def page(self, query: MessageQuery) -> tuple[list[LoggedMessage], bool]:
        return await self.store.page(query)

    async def has_station(self, station_id: str) -> bool:
        return await self.store.has_station(station_id)

    def tail(self, station_id: str, limit: int | None = None) -> Tail:
        """Each entry of the station from now on, as it is logged."""
        tail: Tail = Feed(limit or self.options.tail_limit)
        tail.on_close = lambda: self._untail(station_id, tail)
        self._tails.setdefault(station_id, set()).add(tail)
        if self._stopping:
            tail.close()
        return tail

    def _untail(self, station_id: str, tail: Tail) -> None:
        watching = self._tails.get(station_id)
        if watching is not None:
            watching.discard(tail)
            if not watching:
                del self._tails[station_id]

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = False
        self._tasks = [
            loop.create_task(self._write_loop(), name="message-log-writer"),
            loop.create_task(self._retention_loop(), name="message-log-retention"),
        ]

    async def stop(self) -> None:
        """Save what is queued, stop the tasks, close the tails and the store."""
        self._stopping = True
        if self._waiter is not None:
            _release(self._waiter)
        for task in self._tasks[1:]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self.flush()
        for watching in list(self._tails.values()):
            for tail in list(watching):
                tail.close()
        await self.store.close()
