"""One node's part of the cluster: the directory, command routing, shared events, notes and
the lease, over one broker connection.

Rules:

* Everything this node publishes goes through one queue and one task, in order: a station's
  claim before the events it causes, its events before its release.
* Domain events this node commits are published in batches (one message per turn of the event
  loop at most); events from the other nodes are delivered to this node's bus as remote
  (:meth:`~chargegrid.service.events.EventBus.deliver_remote`), so every node's event stream
  shows the whole cluster, and webhooks, which skip remote events, fire once.
* A station that connects here is claimed, then its transactions are read from the database
  (:meth:`SharedState.adopt_many`) before its first message is handled: what another node wrote
  for it is what this node starts from. The stations connecting meanwhile are read together, in
  batches of up to 500, two batches at a time: a storm of connections costs a few reads per
  batch. When a station leaves, this node forgets its transactions.
* That read waits until whoever served the station before has let it go, so that no answer and
  no write of its old connection is still under way (a resent StartTransaction would otherwise
  find no transaction and start a second one): the node that held it is asked
  (:class:`~.wire.Handoff`) and answers once it closed the old connection and every message it
  served is answered and its writes settled; a node gone answers nothing (NATS says "no
  responders" at once, or the directory declares it gone), and a live one that does not answer
  within :data:`HANDOFF_WAIT_S` is not waited for longer. A connection closed or let go while
  it waited is not adopted. A node announces that a station left (:class:`~.wire.Release`)
  only once its work is settled too.
* What other nodes keep in memory is told to them when it changes here: a station's
  credentials or registration (they read it again), webhooks, deliveries stored for sending.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
import structlog

from chargegrid.domain import events
from chargegrid.protocols.ocppj.dialect import Dialect
from chargegrid.protocols.ocppj.errors import ErrorKind, OcppError
from chargegrid.protocols.ocppj.validation import Deviation
from chargegrid.service.cluster import wire
from chargegrid.service.cluster.directory import Directory, roster
from chargegrid.service.cluster.lease import LeaseKeeper
from chargegrid.service.cluster.ports import Broker, BrokerError, NoRespondersError
from chargegrid.service.cluster.routing import (
    CallServer,
    ClusterLinks,
    LocalLinks,
    NodeLostError,
    ask_node,
    call_subject,
)
from chargegrid.service.events import Envelope, EventBus
from chargegrid.service.ocpp.context import StationContext
from chargegrid.service.ocpp.service import OcppService, Respond
from chargegrid.service.webhooks import WebhookDispatcher

log = structlog.get_logger(__name__)

BEAT_S = 1.0
_BATCH = 500  # events per broker message
_encode = msgspec.json.Encoder(decimal_format="number").encode
_directory = msgspec.json.Decoder(wire.DirectoryMessage)
_events = msgspec.json.Decoder(wire.EventBatch)
_notes = msgspec.json.Decoder(wire.Note)
_handoff = msgspec.json.Decoder(wire.Handoff)


def new_node_id() -> str:
    """This process's name in the cluster: host, process id and a random part (a subject token,
    so no dots)."""
    host = "".join(c if c.isalnum() or c == "-" else "-" for c in socket.gethostname()[:24])
    return f"{host or 'node'}-{os.getpid()}-{secrets.token_hex(2)}"


class SharedState(Protocol):
    """What the store keeps in memory of the stations this node holds (adapters' SqlStore)."""

    async def adopt_many(self, station_ids: list[str]) -> None:
        """Read the stations and their transactions from the database: they connected here."""
        ...

    def release(self, station_id: str) -> None:
        """Forget what is kept of the station: it left this node."""
        ...

    async def settled(self) -> None:
        """Return once every write queued so far is committed or failed."""
        ...

    def invalidate_station(self, station_id: str) -> None:
        """Read the station again at its next use: another node changed it."""
        ...


class ClusterNode:
    def __init__(
        self,
        node_id: str,
        prefix: str,
        broker: Broker,
        local: LocalLinks,
        ocpp: OcppService,
        bus: EventBus,
        state: SharedState,
        dialects: dict[str, Dialect],
        *,
        call_timeout_s: float = 30.0,
        dead_after_s: float = 10.0,
        webhooks: WebhookDispatcher | None = None,
        keeper: LeaseKeeper | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node_id = node_id
        self.prefix = prefix
        self.broker = broker
        self.local = local
        self.ocpp = ocpp
        self.bus = bus
        self.state = state
        self.webhooks = webhooks
        self.keeper = keeper
        self.directory = Directory(
            node_id, local.connected, self._evict, clock, dead_after_s=dead_after_s
        )
        self.links = ClusterLinks(
            node_id,
            prefix,
            local,
            self.directory,
            broker,
            dialects,
            call_timeout_s=call_timeout_s,
            notify_disconnect=self._notify_disconnect,
        )
        self.calls = CallServer(local, dialects)
        self.hooks = ClusterHooks(self, ocpp)
        self._outbox: list[tuple[str, bytes]] = []
        self._events: list[events.AnyEvent] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._handoffs: set[asyncio.Task[None]] = set()  # Handoff requests being answered
        self._resyncing: asyncio.Task[None] | None = None
        self._resync_again = False
        self._stop_listening: Callable[[], None] = lambda: None
        self._asked: dict[str, float] = {}  # node -> when its roster was last asked for
        self._changes = 0  # this node's Claims and Releases so far (their seq)
        # what they say this node holds: its roster (a station whose connection closed is in it
        # until its Release, sent once its work is settled)
        self._claimed: dict[str, str] = {}
        self._batches = 0  # event batches published so far (their seq)
        self._heard: dict[str, int] = {}  # node -> seq of its last event batch heard
        self.batches_lost = 0  # other nodes' event batches found missing
        # called when some were: what keeps state from events reads it again (the balancer)
        self.on_events_lost: Callable[[], Awaitable[None]] | None = None
        # the load balancer's limits, read again when another node saved some
        self.reload_limits: Callable[[], Awaitable[None]] | None = None

    @property
    def lease_held(self) -> bool:
        return self.keeper is not None and self.keeper.held

    def peers(self) -> int:
        return len(self.directory.nodes())

    def remote_stations(self) -> int:
        return self.directory.remote_count()

    def losses(self) -> tuple[int, int]:
        return self.batches_lost, self.directory.gaps

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen to the cluster and announce this node; call before the OCPP server starts."""
        p = self.prefix
        await self.broker.subscribe(f"{p}.directory", self._on_directory)
        await self.broker.subscribe(f"{p}.events", self._on_events)
        await self.broker.subscribe(f"{p}.notes", self._on_notes)
        await self.broker.subscribe(call_subject(p, self.node_id), self.calls.handle)
        await self.broker.subscribe(handoff_subject(p, self.node_id), self._on_handoff)
        self._stop_listening = self.bus.listen(self._on_local_event)
        self.ocpp.on_change = self._station_changed
        if self.webhooks is not None:
            self.webhooks.on_change = self._webhooks_changed
            self.webhooks.on_stored = self._deliveries_stored
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._send_loop(), name="cluster-send"),
            loop.create_task(self._beat_loop(), name="cluster-beat"),
        ]
        self._post("directory", wire.Sync(self.node_id))
        log.info("cluster node started", node=self.node_id, subjects=p)

    async def start_jobs(self) -> None:
        """Take the lease when it is free, and run the cluster's jobs while this node holds it."""
        if self.keeper is not None:
            await self.keeper.start()

    async def stop_jobs(self) -> None:
        """Stop the cluster's jobs (if this node runs them) and give the lease up."""
        if self.keeper is not None:
            await self.keeper.stop()

    async def stop(self) -> None:
        """Stop listening, send what is queued, close the broker; after the OCPP server stopped
        (its stations' releases are sent)."""
        self._stop_listening()
        await self.calls.stop()
        pending = [*self._handoffs, *([self._resyncing] if self._resyncing else [])]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._flush()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._flush()
        await self.broker.close()

    # --- publishing ----------------------------------------------------------------------------

    def _post(self, subject: str, message: msgspec.Struct) -> None:
        self._flush_events()
        self._outbox.append((f"{self.prefix}.{subject}", _encode(message)))
        self._wake.set()

    def _flush_events(self) -> None:
        batch, self._events = self._events, []
        for i in range(0, len(batch), _BATCH):
            self._batches += 1
            data = _encode(wire.EventBatch(self.node_id, batch[i : i + _BATCH], self._batches))
            self._outbox.append((f"{self.prefix}.events", data))

    async def _flush(self) -> None:
        self._flush_events()
        outbox, self._outbox = self._outbox, []
        for subject, data in outbox:
            try:
                await self.broker.publish(subject, data)
            except BrokerError as exc:
                log.warning("cluster message not sent", subject=subject, error=str(exc))

    async def _send_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _beat_loop(self) -> None:
        while True:
            self._post("directory", wire.Beat(self.node_id, len(self._claimed), self._changes))
            self.directory.sweep()
            await asyncio.sleep(BEAT_S)

    def claim(self, station_id: str, version: str) -> None:
        self._changes += 1
        self._claimed[station_id] = version
        self._post("directory", wire.Claim(self.node_id, station_id, version, self._changes))

    def release(self, station_id: str) -> None:
        self._changes += 1
        self._claimed.pop(station_id, None)
        self._post("directory", wire.Release(self.node_id, station_id, self._changes))

    def _on_local_event(self, envelope: Envelope) -> None:
        if not envelope.remote:
            self._events.append(envelope.event)
            self._wake.set()

    def _station_changed(self, station_id: str) -> None:
        self._post("notes", wire.StationChanged(self.node_id, station_id))

    def limits_changed(self) -> None:
        """Limits were saved on this node: the others read them again."""
        self._post("notes", wire.LimitsChanged(self.node_id))

    def _webhooks_changed(self) -> None:
        self._post("notes", wire.WebhooksChanged(self.node_id))

    def _deliveries_stored(self, webhook_ids: set[int]) -> None:
        self._post("notes", wire.DeliveriesStored(self.node_id, sorted(webhook_ids)))

    def _notify_disconnect(self, station_id: str, reason: str) -> None:
        self._post("notes", wire.Disconnect(self.node_id, station_id, reason))

    def _evict(self, station_id: str) -> None:
        self.local.disconnect(station_id, "connected to another node")

    def _spawn_resync(self, resync: Callable[[], Awaitable[None]]) -> None:
        self._resync_again = True
        if self._resyncing is not None and not self._resyncing.done():
            return  # it reads once more when done: the loss may be newer than its reads

        async def run() -> None:
            while self._resync_again:
                self._resync_again = False
                try:
                    await resync()
                except Exception:  # logged; the periodic resync mends it
                    log.exception("reading again after lost events failed")

        self._resyncing = asyncio.get_running_loop().create_task(run())

    async def handed_over(self, node: str, station_id: str) -> None:
        """Return once ``node``, which held the station, let it go, or is gone (declared so by
        the directory, or NATS has no one to ask), or did not answer within
        :data:`HANDOFF_WAIT_S` (longer than it takes to settle the station's work)."""
        data = _encode(wire.Handoff(self.node_id, station_id))
        subject = handoff_subject(self.prefix, node)
        try:
            await ask_node(self.broker, self.directory, node, subject, data, HANDOFF_WAIT_S)
        except (NodeLostError, NoRespondersError):  # gone: what it did not commit, it never will
            return
        except BrokerError as exc:
            log.warning(
                "station's previous node did not let it go; served here anyway",
                station_id=station_id,
                peer=node,
                error=str(exc) or type(exc).__name__,
            )

    async def _on_handoff(self, data: bytes, respond: Any) -> None:
        message = _decode(_handoff, data, "handoff")
        if message is None or respond is None:
            return
        task = asyncio.get_running_loop().create_task(self._hand_over(message, respond))
        self._handoffs.add(task)
        task.add_done_callback(self._handoffs.discard)

    async def _hand_over(self, message: wire.Handoff, respond: Any) -> None:
        await self.hooks.let_go(message.station_id)
        try:
            await respond(_encode(wire.Released(self.node_id, message.station_id)))
        except BrokerError as exc:
            log.warning("handoff reply not sent", station_id=message.station_id, error=str(exc))

    # --- receiving -----------------------------------------------------------------------------

    async def _on_directory(self, data: bytes, _: object) -> None:
        message = _decode(_directory, data, "directory")
        if message is None:
            return
        for answer in self.directory.receive(message):
            now = time.monotonic()
            asked = answer.of if isinstance(answer, wire.Sync) else ""
            if now - self._asked.get(asked, -1e9) >= 5.0:  # a roster we lack: not too often
                self._asked[asked] = now
                self._post("directory", answer)
        if (
            isinstance(message, wire.Sync)
            and message.node != self.node_id
            and message.of in ("", self.node_id)
        ):
            for part in roster(self.node_id, dict(self._claimed), self._changes):
                self._post("directory", part)

    async def _on_events(self, data: bytes, _: object) -> None:
        batch = _decode(_events, data, "events")
        if batch is None or batch.node == self.node_id:
            return
        last = self._heard.get(batch.node)
        self._heard[batch.node] = batch.seq
        if last is not None and batch.seq > last + 1:
            self.batches_lost += batch.seq - last - 1
            log.warning(
                "missed another node's events", peer=batch.node, batches=batch.seq - last - 1
            )
            if self.on_events_lost is not None:
                self._spawn_resync(self.on_events_lost)
        for event in batch.events:
            if isinstance(event, events.StationRegistration):
                self.state.invalidate_station(event.station_id)
            self.bus.deliver_remote(event)

    async def _on_notes(self, data: bytes, _: object) -> None:
        note = _decode(_notes, data, "notes")
        if note is None or note.node == self.node_id:
            return
        try:
            await self._apply(note)
        except Exception:  # a note not applied is logged; the next change or restart mends it
            log.exception("cluster note not applied", note=type(note).__name__)

    async def _apply(self, note: wire.Note) -> None:
        if isinstance(note, wire.StationChanged):
            self.state.invalidate_station(note.station_id)
            await self.ocpp.reload(note.station_id)
        elif isinstance(note, wire.WebhooksChanged):
            if self.webhooks is not None:
                await self.webhooks.refresh()
        elif isinstance(note, wire.DeliveriesStored):
            if self.webhooks is not None:
                self.webhooks.poke(note.webhook_ids)
        elif isinstance(note, wire.Disconnect):
            self.local.disconnect(note.station_id, note.reason)
        elif isinstance(note, wire.LimitsChanged) and self.reload_limits is not None:
            await self.reload_limits()


def _decode(decoder: msgspec.json.Decoder[Any], data: bytes, subject: str) -> Any:
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as exc:  # another version's node, say: logged, not fatal
        log.warning("cluster message not understood", subject=subject, error=str(exc))
        return None


_BATCH_MOST = 500  # stations whose state one batch of reads takes in
_BATCHES = 2  # batches of reads under way at once
_CONNECTING = 32  # stations whose connection hook (which may read) runs at once
_SETTLE_S = 30.0  # longest wait for a station's messages under way to be answered
HANDOFF_WAIT_S = 2 * _SETTLE_S + 5.0  # a node settling a station takes at most 2 x _SETTLE_S


class ClusterHooks:
    """The OCPP service's ``ConnectionHooks``, with what a node of a cluster adds."""

    def __init__(self, node: ClusterNode, inner: OcppService) -> None:
        self.node = node
        self.inner = inner
        self._current: dict[str, StationContext] = {}  # station -> its connection being served
        self._busy: dict[str, int] = {}  # station -> messages being handled
        self._idle: dict[str, asyncio.Future[None]] = {}  # station -> done when none is
        # stations with a message answered with an error whose writes may not be settled yet (a
        # message answered without one was answered once its writes were committed)
        self._unsettled: dict[str, int] = {}  # station -> such answers so far
        # A storm of connections reads the stations' state in batches (a few reads each), at
        # most _BATCHES at once, rather than several reads per station that would take every
        # connection of the store's pool and fail the reads that wait too long.
        self._adopting: dict[str, list[asyncio.Future[None]]] = {}  # waiting for a batch
        self._batches = 0  # batches under way
        self._batch_tasks: set[asyncio.Task[None]] = set()
        self._reads = asyncio.Semaphore(_CONNECTING)

    def admit(self, station_id: str, password: str | None, channel: Any) -> Any:
        return self.inner.admit(station_id, password, channel)

    def lenient(self, station_id: str) -> frozenset[Deviation]:
        return self.inner.lenient(station_id)

    @staticmethod
    def _readiness(ctx: StationContext) -> asyncio.Future[None]:
        if ctx.ready is None:
            ctx.ready = asyncio.get_running_loop().create_future()
        return ctx.ready

    async def connected(self, ctx: StationContext) -> None:
        station_id = ctx.station_id
        ready = self._readiness(ctx)
        if self.node.local.connected(station_id) is None:  # closed before this ran
            ready.set_result(None)
            return
        self._current[station_id] = ctx
        previous = self.node.directory.holder(station_id)
        self.node.claim(station_id, ctx.ocpp_version)
        try:
            await self._settled(station_id)  # an older connection of it, here
            if previous is not None:
                await self.node.handed_over(previous[0], station_id)
        finally:
            if self._current.get(station_id) is ctx:
                await self._adopt(ctx, ready)
            elif not ready.done():  # closed or let go meanwhile: its messages are refused
                ready.set_result(None)

    async def _adopt(self, ctx: StationContext, ready: asyncio.Future[None]) -> None:
        station_id = ctx.station_id
        try:
            await self._read_state(station_id)
        except Exception as exc:  # its messages read the database instead
            log.warning("station's transactions not read", station_id=station_id, error=str(exc))
        finally:
            if not ready.done():
                ready.set_result(None)
        current = self._current.get(station_id)
        if current is not ctx:  # closed or let go during the read
            if current is None:  # and not connected again here: keep nothing of it
                self.node.state.release(station_id)
            return
        async with self._reads:
            try:
                await self.inner.connected(ctx)
            except Exception as exc:  # served without its state it would answer wrongly
                log.warning(
                    "station's state not read: it is asked to reconnect",
                    station_id=station_id,
                    error=str(exc),
                )
                self.node.local.disconnect(station_id, "its state could not be read; reconnect")

    async def _read_state(self, station_id: str) -> None:
        """Have the station's state read with the others' waiting, in batches."""
        done = asyncio.get_running_loop().create_future()
        self._adopting.setdefault(station_id, []).append(done)
        if self._batches < _BATCHES:
            self._batches += 1
            task = asyncio.get_running_loop().create_task(self._read_batches())
            self._batch_tasks.add(task)
            task.add_done_callback(self._batch_tasks.discard)
        await done

    async def _read_batches(self) -> None:
        try:
            while self._adopting:
                ids = list(itertools.islice(self._adopting, _BATCH_MOST))
                waiting = [self._adopting.pop(sid) for sid in ids]
                try:
                    await self.node.state.adopt_many(ids)
                except Exception as exc:
                    outcome: BaseException | None = exc
                else:
                    outcome = None
                for futures in waiting:
                    for done in futures:
                        if done.done():
                            continue
                        if outcome is None:
                            done.set_result(None)
                        else:
                            done.set_exception(outcome)
        finally:
            self._batches -= 1

    async def disconnected(self, ctx: StationContext) -> None:
        station_id = ctx.station_id
        if self._current.get(station_id) is ctx:
            del self._current[station_id]
        await self._settled(station_id)  # announced gone only once its work here is settled
        if self.node.local.connected(station_id) is not None:  # it reconnected here meanwhile
            return
        self.node.release(station_id)
        self.node.state.release(station_id)
        holder = self.node.directory.holder(station_id)
        if holder is not None:  # it reconnected to another node first: it is not offline
            log.info("station left for another node", station_id=station_id, peer=holder[0])
            return
        await self.inner.disconnected(ctx)

    async def let_go(self, station_id: str) -> None:
        """Another node serves the station now: close its connection here (if any), and return
        once every message of it handled here is answered and its writes settled."""
        self._current.pop(station_id, None)
        if self.node.local.connected(station_id) is not None:
            self.node.local.disconnect(station_id, "connected to another node")
        await self._settled(station_id)

    def serve(self, ctx: StationContext, action: str, request: Any, respond: Respond) -> None:
        ready = self._readiness(ctx)
        if ready.done():
            self._serve(ctx, action, request, respond)
        else:
            ready.add_done_callback(lambda _: self._serve(ctx, action, request, respond))

    def _serve(self, ctx: StationContext, action: str, request: Any, respond: Respond) -> None:
        station_id = ctx.station_id
        if self._current.get(station_id) is not ctx:
            # A connection replaced, or let go to another node, before its state was read: its
            # messages are not handled here (the station resends them where it is now).
            respond(None, OcppError(ErrorKind.GENERIC, "connection closed; reconnect"))
            return
        self._busy[station_id] = self._busy.get(station_id, 0) + 1

        def answered(response: msgspec.Struct | None, error: BaseException | None) -> None:
            try:
                respond(response, error)
            finally:
                if error is not None:  # the writes it made may be committed after this
                    self._unsettled[station_id] = self._unsettled.get(station_id, 0) + 1
                self._done(station_id)

        self.inner.serve(ctx, action, request, answered)

    def _done(self, station_id: str) -> None:
        left = self._busy[station_id] - 1
        if left:
            self._busy[station_id] = left
            return
        del self._busy[station_id]
        idle = self._idle.pop(station_id, None)
        if idle is not None and not idle.done():
            idle.set_result(None)

    async def _settled(self, station_id: str) -> None:
        """Return once the station's messages under way here are answered and their writes
        settled (a failed handler's writes are committed after its answer: for those, every
        write queued so far is waited for)."""
        if station_id in self._busy:
            idle = self._idle.get(station_id)
            if idle is None:
                idle = self._idle[station_id] = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(idle), _SETTLE_S)
            except TimeoutError:
                log.warning("station's messages still under way", station_id=station_id)
        mark = self._unsettled.get(station_id)
        if mark is None:
            return
        try:
            await asyncio.wait_for(self.node.state.settled(), _SETTLE_S)
        except TimeoutError:
            log.warning("station's writes still queued", station_id=station_id)
            return
        # forgotten only once settled (a caller meanwhile waits too), and only if no message
        # failed since
        if self._unsettled.get(station_id) == mark:
            del self._unsettled[station_id]

    async def drain(self) -> None:
        await self.inner.drain()


def handoff_subject(prefix: str, node: str) -> str:
    return f"{prefix}.node.{node}.handoff"
