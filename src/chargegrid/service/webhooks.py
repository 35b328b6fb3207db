"""Webhooks: every committed domain event a webhook subscribes to, POSTed to its URL, signed.

Rules:

* A webhook matches an event when it is enabled, its ``events`` list is empty, holds ``"*"``
  or holds the event's type, and its ``station_id`` (if set) is the event's station.
* Each match becomes a *delivery* with an id of its own, stored ``pending`` before it is sent
  (so it survives a restart) and sent with the same id and body on every attempt; receivers
  drop duplicates by ``X-Chargegrid-Delivery``.
* Body: ``{"id", "seq", "type", "created_at", "data"}`` (``data`` is the event as on the event
  stream, decimals as JSON numbers). ``X-Chargegrid-Signature: sha256=<hex>`` is the
  HMAC-SHA256, keyed with the webhook's secret, of ``"<X-Chargegrid-Timestamp>.<body>"``: the
  timestamp (unix seconds of the attempt) is signed so that a receiver can refuse replays.
* Any 2xx is success. Anything else (another status, a timeout, a connection error) is retried
  with exponential back-off and jitter (:class:`~chargegrid.domain.webhooks.RetryPolicy`:
  about 10 s, 30 s, 2 min, 10 min, 1 h, 6 h, then 6 h) until ``max_attempts``, when the
  delivery is marked ``failed``.
* Each webhook has a lane of its own that sends one delivery at a time, earliest due first: in
  event order while the receiver answers, and a failing receiver holds up no other webhook. At
  most ``concurrency`` requests are in flight in all, over one shared HTTP client. A lane keeps
  at most ``lane_memory`` deliveries in memory; the others wait in the store.
* The secret signs requests, so it is stored as given (unlike API tokens, it cannot be a hash);
  it is shown when the webhook is created or its secret rotated, and never logged.
* Delivered and failed deliveries older than ``retention`` are deleted every ``purge_every_s``.
* In a cluster every node stores the deliveries of the events it commits (other nodes' events
  reach its bus as ``remote`` and are skipped), and one node, the lease holder, sends them all
  (:meth:`WebhookDispatcher.start_sending`): each delivery is sent by one node, and those a dead
  node stored are sent too. Other nodes poke its lanes (:meth:`WebhookDispatcher.poke`) when
  they store deliveries, and refresh their webhooks when one changes elsewhere. Those notes are
  hints, at most once: the sender also reads the webhooks and looks for pending deliveries in
  the store every ``poll_store_s`` (15 s in a cluster), so a lost note delays a delivery by that
  much at most.

The webhook, the delivery, the retry schedule, the signature and the errors are in
:mod:`chargegrid.domain.webhooks`; this module sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import random
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import msgspec
import structlog

from chargegrid import __version__
from chargegrid.domain.webhooks import (
    Delivery,
    InvalidWebhook,
    NotFound,
    NotRetryable,
    RetryPolicy,
    Webhook,
    check_events,
    check_secret,
    signature,
)
from chargegrid.service.events import Envelope, EventBus
from chargegrid.service.ports import Clock, ListQuery

log = structlog.get_logger(__name__)

PING = "ping"
_encode = msgspec.json.Encoder(decimal_format="number").encode


class WebhookStore(Protocol):
    """Where webhooks and their deliveries are kept (the SQL one: adapters/storage/webhooks.py).

    Every awaited write is committed when it returns. Deliveries come back from
    :meth:`pending_deliveries` earliest due first (``next_attempt_at``, then ``created_at``,
    ``seq``) and from :meth:`page_deliveries` by ``created_at`` then ``id`` (``status`` is the
    only filter)."""

    async def add_webhook(self, webhook: Webhook) -> Webhook: ...
    async def save_webhook(self, webhook: Webhook) -> None: ...
    async def list_webhooks(self) -> list[Webhook]: ...
    async def delete_webhook(self, webhook_id: int) -> bool: ...
    async def add_deliveries(self, deliveries: Sequence[Delivery]) -> None: ...
    async def save_delivery(self, delivery: Delivery) -> None: ...
    async def get_delivery(self, delivery_id: str) -> Delivery | None: ...
    async def pending_deliveries(self, webhook_id: int, limit: int) -> list[Delivery]: ...
    async def page_deliveries(
        self, webhook_id: int, query: ListQuery
    ) -> tuple[list[Delivery], bool]: ...
    async def purge_deliveries(self, before: datetime) -> int: ...
    async def close(self) -> None: ...


@dataclass(frozen=True)
class Options:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int = 4
    timeout_s: float = 10.0
    ping_timeout_s: float = 5.0
    lane_memory: int = 1000
    retention: timedelta = timedelta(days=30)
    purge_every_s: float = 3600.0
    # Seconds between reads of the store for webhooks and deliveries other nodes saved, while
    # sending (0: never; a cluster's lease holder: their notes over NATS may be lost)
    poll_store_s: float = 0.0


def check_url(url: str) -> None:
    """An http(s) URL with a host, or :class:`InvalidWebhook` saying why not."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as exc:
        raise InvalidWebhook(f"the URL cannot be read: {exc}") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidWebhook("the URL must start with http:// or https://")
    if not parts.hostname:
        raise InvalidWebhook("the URL must name a host")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidWebhook("the URL cannot have spaces or control characters")
    try:
        httpx.URL(url)  # what the client will send to: a host name IDNA refuses, for one
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidWebhook(f"the URL cannot be used: {exc}") from exc


class _Body(msgspec.Struct):
    id: str
    seq: int
    type: str
    created_at: datetime
    data: msgspec.Raw


class _Lane:
    """One webhook's pending deliveries in memory, earliest due first, and the task sending them."""

    def __init__(self) -> None:
        self.pending: dict[str, Delivery] = {}
        self.heap: list[tuple[tuple[datetime, datetime, int, str], int, Delivery]] = []
        self._pushed = itertools.count()  # ties: a delivery pushed twice is never compared
        self.overflow = True  # the store may hold pending deliveries not in memory
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def push(self, delivery: Delivery) -> None:
        self.pending[delivery.id] = delivery
        heapq.heappush(self.heap, (delivery.order(), next(self._pushed), delivery))
        self.wake.set()

    def head(self) -> Delivery | None:
        while self.heap:
            key, _, delivery = self.heap[0]
            if self.pending.get(delivery.id) is delivery and key == delivery.order():
                return delivery
            heapq.heappop(self.heap)  # delivered, failed or rescheduled since it was pushed
        return None


class WebhookDispatcher:
    """Sends the bus's events to the webhooks that match them, and manages the webhooks.

    Webhooks are held in memory (loaded at :meth:`start`, changed only through this object),
    so that an event no webhook wants costs a loop over the enabled ones and nothing more.
    """

    def __init__(
        self,
        store: WebhookStore,
        bus: EventBus,
        clock: Clock,
        *,
        options: Options | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rand: random.Random | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.options = options or Options()  # settable until start()
        self._transport = transport
        self._rand = rand or random.Random()  # noqa: S311 (jitter, not a secret)
        self._webhooks: dict[int, Webhook] = {}
        self._lanes: dict[int, _Lane] = {}
        self._incoming: list[Delivery] = []
        self._incoming_wake = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._slots = asyncio.Semaphore(1)
        self._stop_listening: Callable[[], None] = lambda: None
        self._started = False
        self.sends = True  # settable until start(): False, a cluster's lease decides
        self._sending = False
        self._purger: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        # Told when this node stored deliveries (their webhooks' ids), and when it changed a
        # webhook: a cluster tells the other nodes
        self.on_stored: Callable[[set[int]], None] = lambda webhook_ids: None
        self.on_change: Callable[[], None] = lambda: None

    # --- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the webhooks, resume their pending deliveries and listen to the bus."""
        self._webhooks = {w.id: w for w in await self.store.list_webhooks()}
        self._slots = asyncio.Semaphore(self.options.concurrency)
        self._client = httpx.AsyncClient(
            transport=self._transport,
            timeout=self.options.timeout_s,
            follow_redirects=False,
            headers={"user-agent": f"chargegrid/{__version__}"},
        )
        self._started = True
        self._tasks = [asyncio.create_task(self._store_incoming(), name="webhooks-store")]
        self._stop_listening = self.bus.listen(self._on_event)
        if self.sends:
            await self.start_sending()

    async def start_sending(self) -> None:
        """Send the pending deliveries of every enabled webhook, and purge old ones."""
        if self._sending or not self._started:
            return
        self._sending = True
        for webhook in self._webhooks.values():
            if webhook.enabled:
                self._open_lane(webhook.id)
        self._purger = asyncio.create_task(self._purge(), name="webhooks-purge")
        if self.options.poll_store_s > 0:
            self._poller = asyncio.create_task(self._poll_store(), name="webhooks-poll")

    async def stop_sending(self) -> None:
        """Stop sending; what is not delivered stays pending in the store."""
        self._sending = False
        tasks = [lane.task for lane in self._lanes.values() if lane.task]
        for task in (self._purger, self._poller):
            if task is not None:
                tasks.append(task)
        self._purger = self._poller = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._lanes.clear()

    async def stop(self) -> None:
        """Stop sending; what is not delivered stays pending in the store."""
        self._stop_listening()
        if not self._started:
            return
        await self.stop_sending()
        self._started = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._incoming:
            try:
                await self._add(self._take_incoming())
            except Exception:
                log.exception("webhook deliveries not stored at shutdown")
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # --- events in ------------------------------------------------------------------------------

    def _on_event(self, envelope: Envelope) -> None:
        if envelope.remote:  # the node that committed it makes its deliveries
            return
        event = envelope.event
        event_type: str = event.__struct_config__.tag  # type: ignore[assignment]
        wanted = [w for w in self._webhooks.values() if w.matches(event_type, event.station_id)]
        if not wanted:
            return
        data = msgspec.Raw(_encode(event))
        now = self.clock.now()
        for webhook in wanted:
            self._incoming.append(self._delivery(webhook.id, envelope.seq, event_type, data, now))
        self._incoming_wake.set()

    @staticmethod
    def _delivery(
        webhook_id: int, seq: int, event_type: str, data: msgspec.Raw, now: datetime
    ) -> Delivery:
        delivery_id = uuid.uuid4().hex
        payload = _encode(_Body(delivery_id, seq, event_type, now, data)).decode()
        return Delivery(
            id=delivery_id,
            webhook_id=webhook_id,
            seq=seq,
            event_type=event_type,
            payload=payload,
            next_attempt_at=now,
            created_at=now,
        )

    def _take_incoming(self) -> list[Delivery]:
        batch, self._incoming = self._incoming, []
        return [d for d in batch if d.webhook_id in self._webhooks]

    async def _add(self, deliveries: list[Delivery]) -> None:
        async with self._write_lock:  # a webhook deleted meanwhile gets none (see delete)
            kept = [d for d in deliveries if d.webhook_id in self._webhooks]
            if kept:
                await self.store.add_deliveries(kept)

    async def _store_incoming(self) -> None:
        """Store new deliveries (in batches) before their lanes may send them."""
        while True:
            await self._incoming_wake.wait()
            self._incoming_wake.clear()
            batch = self._take_incoming()
            try:
                await self._add(batch)
            except Exception:
                log.exception("webhook deliveries not stored; trying again", count=len(batch))
                self._incoming[:0] = batch
                self._incoming_wake.set()
                await asyncio.sleep(1.0)
                continue
            if batch:
                self.on_stored({d.webhook_id for d in batch})
            for delivery in batch:
                lane = self._lanes.get(delivery.webhook_id)
                if lane is not None:
                    self._offer(lane, delivery)

    def _offer(self, lane: _Lane, delivery: Delivery) -> None:
        if lane.overflow or len(lane.pending) >= self.options.lane_memory:
            lane.overflow = True  # it is in the store: the lane loads it when it gets there
            lane.wake.set()
        else:
            lane.push(delivery)

    # --- lanes ----------------------------------------------------------------------------------

    def poke(self, webhook_ids: Sequence[int]) -> None:
        """Deliveries of these webhooks were stored by another node: look in the store."""
        for webhook_id in webhook_ids:
            lane = self._lanes.get(webhook_id)
            if lane is not None:
                lane.overflow = True
                lane.wake.set()

    async def refresh(self) -> None:
        """Read the webhooks again: another node changed them."""
        found = {w.id: w for w in await self.store.list_webhooks()}
        for webhook_id in set(self._webhooks) - set(found):
            await self._close_lane(webhook_id)
        self._webhooks = found
        for webhook in found.values():
            if webhook.enabled:
                self._open_lane(webhook.id)
            else:
                await self._close_lane(webhook.id)

    async def _poll_store(self) -> None:
        """What other nodes stored, even if their note never came: read the webhooks again and
        make every lane look in the store."""
        while True:
            await asyncio.sleep(self.options.poll_store_s)
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("webhooks not read again", error=repr(exc))
            self.poke(list(self._lanes))

    def _open_lane(self, webhook_id: int) -> None:
        if webhook_id in self._lanes or not self._started or not self._sending:
            return
        lane = self._lanes[webhook_id] = _Lane()
        lane.task = asyncio.create_task(self._run_lane(webhook_id, lane), name="webhook-lane")

    async def _close_lane(self, webhook_id: int) -> None:
        lane = self._lanes.pop(webhook_id, None)
        if lane is not None and lane.task is not None:
            lane.task.cancel()
            await asyncio.gather(lane.task, return_exceptions=True)

    async def _run_lane(self, webhook_id: int, lane: _Lane) -> None:
        log_ = log.bind(webhook_id=webhook_id)
        while True:
            try:
                await self._lane_step(webhook_id, lane)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # No traceback: its rendering may show the frames' locals, and the secret.
                log_.error("webhook lane failed; going on in 1 s", error=repr(exc))
                await asyncio.sleep(1.0)

    async def _lane_step(self, webhook_id: int, lane: _Lane) -> None:
        head = lane.head()
        if head is None:
            if lane.overflow:
                await self._reload(webhook_id, lane)
            else:
                lane.wake.clear()
                await lane.wake.wait()
            return
        wait = (head.order()[0] - self.clock.now()).total_seconds()
        if wait > 0:
            lane.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lane.wake.wait(), wait)
            return
        webhook = self._webhooks.get(webhook_id)
        if webhook is None:
            return
        await self._attempt(webhook, head, self.options.timeout_s)
        if head.status == "pending":
            lane.push(head)
        else:
            lane.pending.pop(head.id, None)

    async def _reload(self, webhook_id: int, lane: _Lane) -> None:
        """Load the earliest pending deliveries from the store; new ones arriving meanwhile are
        kept in memory if all stored ones fit, else left to the next load."""
        lane.overflow = False
        limit = self.options.lane_memory
        stored = await self.store.pending_deliveries(webhook_id, limit)
        arrived = list(lane.pending.values())
        lane.pending.clear()
        lane.heap.clear()
        for delivery in stored:
            lane.push(delivery)
        if len(stored) >= limit:
            lane.overflow = True
            return
        for delivery in arrived:
            if delivery.id not in lane.pending:
                lane.push(delivery)

    # --- sending --------------------------------------------------------------------------------

    async def _attempt(
        self, webhook: Webhook, delivery: Delivery, timeout_s: float, *, save: bool = True
    ) -> None:
        """POST the delivery once, record the outcome in it (and in the store if ``save``)."""
        assert self._client is not None, "the dispatcher is not started"
        body = delivery.payload.encode()
        timestamp = str(int(self.clock.now().timestamp()))
        headers = {
            "content-type": "application/json",
            "X-Chargegrid-Event": delivery.event_type,
            "X-Chargegrid-Delivery": delivery.id,
            "X-Chargegrid-Timestamp": timestamp,
            "X-Chargegrid-Signature": signature(webhook.secret, timestamp, body),
        }
        code: int | None = None
        error: str | None = None
        try:
            # Streamed and not read: a receiver's answer is only its status. The deadline is
            # for the whole exchange (httpx's timeouts are per read, a trickle renews them).
            async with (
                self._slots,
                asyncio.timeout(timeout_s),
                self._client.stream(
                    "POST", webhook.url, content=body, headers=headers, timeout=timeout_s
                ) as response,
            ):
                code = response.status_code
        except (httpx.TimeoutException, TimeoutError):
            error = f"no answer within {timeout_s:g} s"
        except Exception as exc:  # any failure to send is a failed attempt, never a crash
            error = f"{type(exc).__name__}: {exc}"[:500]
        now = self.clock.now()
        delivery.attempts += 1
        delivery.last_status_code = code
        if code is not None and 200 <= code < 300:
            delivery.status, delivery.delivered_at = "delivered", now
            delivery.next_attempt_at = delivery.last_error = None
        else:
            delivery.last_error = error or f"HTTP {code}"
            if delivery.event_type == PING or delivery.attempts >= self.options.retry.max_attempts:
                delivery.status, delivery.next_attempt_at = "failed", None
            else:
                wait = self.options.retry.delay(delivery.attempts, self._rand)
                delivery.next_attempt_at = now + timedelta(seconds=wait)
        log.info(
            "webhook delivery attempt",
            webhook_id=webhook.id,
            delivery=delivery.id,
            event_type=delivery.event_type,
            attempt=delivery.attempts,
            status=delivery.status,
            http_status=code,
            error=error,
        )
        if save:
            await self.store.save_delivery(delivery)

    async def _purge(self) -> None:
        while True:
            try:
                purged = await self.store.purge_deliveries(
                    self.clock.now() - self.options.retention
                )
                if purged:
                    log.info("old webhook deliveries deleted", count=purged)
            except Exception:
                log.exception("webhook deliveries not purged")
            await asyncio.sleep(self.options.purge_every_s)

    # --- management (the REST API) ----------------------------------------------------------------

    def webhooks(self) -> list[Webhook]:
        return sorted(self._webhooks.values(), key=lambda w: w.id)

    def get(self, webhook_id: int) -> Webhook:
        webhook = self._webhooks.get(webhook_id)
        if webhook is None:
            raise NotFound(f"no webhook {webhook_id}")
        return webhook

    async def create(
        self,
        url: str,
        *,
        events: Sequence[str] = (),
        station_id: str | None = None,
        description: str | None = None,
        enabled: bool = True,
        secret: str | None = None,
    ) -> Webhook:
        """A new webhook; its secret is generated unless given (at least 16 characters)."""
        check_url(url)
        check_events(events)
        if secret is not None:
            check_secret(secret)
        webhook = await self.store.add_webhook(
            Webhook(
                id=0,
                url=url,
                secret=secret if secret is not None else secrets.token_urlsafe(32),
                events=sorted(set(events)),
                station_id=station_id,
                description=description,
                enabled=enabled,
                created_at=self.clock.now(),
            )
        )
        self._webhooks[webhook.id] = webhook
        if webhook.enabled:
            self._open_lane(webhook.id)
        log.info("webhook created", webhook_id=webhook.id, events=webhook.events)
        self.on_change()
        return webhook

    async def update(self, webhook_id: int, **changes: Any) -> Webhook:
        """Change ``url``, ``events``, ``station_id``, ``description`` or ``enabled``."""
        if "url" in changes:
            check_url(changes["url"])
        if "events" in changes:
            check_events(changes["events"])
            changes["events"] = sorted(set(changes["events"]))
        if "secret" in changes:
            check_secret(changes["secret"])
        webhook = msgspec.structs.replace(self.get(webhook_id), **changes)
        await self.store.save_webhook(webhook)
        self._webhooks[webhook_id] = webhook
        if webhook.enabled:
            self._open_lane(webhook_id)
        else:
            await self._close_lane(webhook_id)  # its pending deliveries wait in the store
        self.on_change()
        return webhook

    async def rotate_secret(self, webhook_id: int, secret: str | None = None) -> Webhook:
        webhook = await self.update(
            webhook_id, secret=secret if secret is not None else secrets.token_urlsafe(32)
        )
        log.info("webhook secret rotated", webhook_id=webhook_id)
        return webhook

    async def delete(self, webhook_id: int) -> None:
        """Forget the webhook and its deliveries."""
        self.get(webhook_id)
        async with self._write_lock:
            self._webhooks.pop(webhook_id, None)
            await self._close_lane(webhook_id)
            await self.store.delete_webhook(webhook_id)
        log.info("webhook deleted", webhook_id=webhook_id)
        self.on_change()

    async def ping(self, webhook_id: int) -> Delivery:
        """Send a ``ping`` delivery now, once, and return how it went."""
        webhook = self.get(webhook_id)
        data = msgspec.Raw(_encode({"webhook_id": webhook_id}))
        delivery = self._delivery(webhook_id, 0, PING, data, self.clock.now())
        # Stored once sent: a pending ping in the store would be sent again by the lane.
        await self._attempt(webhook, delivery, self.options.ping_timeout_s, save=False)
        await self._add([delivery])
        return delivery

    async def delivery(self, webhook_id: int, delivery_id: str) -> Delivery:
        self.get(webhook_id)
        delivery = await self.store.get_delivery(delivery_id)
        if delivery is None or delivery.webhook_id != webhook_id:
            raise NotFound(f"no delivery {delivery_id!r} of webhook {webhook_id}")
        return delivery

    async def retry(self, webhook_id: int, delivery_id: str) -> Delivery:
        """Queue a failed delivery again, for a new round of attempts."""
        delivery = await self.delivery(webhook_id, delivery_id)
        if delivery.status != "failed":
            raise NotRetryable(f"delivery {delivery_id!r} is {delivery.status}, not failed")
        if delivery.event_type == PING:
            raise NotRetryable("a ping is not retried; ping again")
        delivery.status, delivery.attempts = "pending", 0
        delivery.next_attempt_at = self.clock.now()
        await self.store.save_delivery(delivery)
        lane = self._lanes.get(webhook_id)
        if lane is not None:
            self._offer(lane, delivery)
        else:
            self.on_stored({webhook_id})
        return delivery

    async def deliveries(self, webhook_id: int, query: ListQuery) -> tuple[list[Delivery], bool]:
        self.get(webhook_id)
        return await self.store.page_deliveries(webhook_id, query)
