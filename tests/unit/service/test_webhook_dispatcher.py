"""The webhook dispatcher on fakes: the bus, FakeWebhookStore, and httpx.MockTransport as the
receiver (the signature is checked with the standard library, not with our code)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from chargegrid.domain.events import StationOnline, StatusChanged, TransactionUpdated
from chargegrid.domain.webhooks import Delivery, InvalidWebhook, NotRetryable, RetryPolicy
from chargegrid.service.events import EventBus
from chargegrid.service.webhooks import Options, WebhookDispatcher
from chargegrid.testing.fakes import FakeWebhookStore

FAST = RetryPolicy(base_s=0.02, cap_s=0.1, max_attempts=4, jitter=0.0)
URL = "http://receiver.test/hook"


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Receiver:
    """Answers ``status`` (a callable of the request count, or a constant) and keeps requests."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.status: Callable[[httpx.Request], int] = lambda _: 200

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status(request))

    def bodies(self) -> list[dict[str, object]]:
        return [json.loads(r.content) for r in self.requests]


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def store() -> FakeWebhookStore:
    return FakeWebhookStore()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


def make(
    store: FakeWebhookStore, bus: EventBus, receiver: Receiver, **options: object
) -> WebhookDispatcher:
    return WebhookDispatcher(
        store,
        bus,
        Clock(),
        options=Options(**{"retry": FAST, **options}),  # type: ignore[arg-type]
        transport=httpx.MockTransport(receiver.handle),
        rand=random.Random(7),  # noqa: S311 (jitter)
    )


@pytest.fixture
async def dispatcher(
    store: FakeWebhookStore, bus: EventBus, receiver: Receiver
) -> AsyncIterator[WebhookDispatcher]:
    hooks = make(store, bus, receiver)
    await hooks.start()
    try:
        yield hooks
    finally:
        await hooks.stop()


def online(station: str = "CS-1") -> StationOnline:
    return StationOnline(station_id=station, at=datetime.now(UTC))


def status(station: str, value: str) -> StatusChanged:
    return StatusChanged(
        station_id=station, at=datetime.now(UTC), evse_id=1, connector_id=1, status=value
    )


async def until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_delivery_is_signed_and_carries_the_event(
    dispatcher: WebhookDispatcher, bus: EventBus, receiver: Receiver, store: FakeWebhookStore
) -> None:
    webhook = await dispatcher.create(URL)
    event = TransactionUpdated(
        station_id="CS-1",
        at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        transaction_id=7,
        station_tx_id="7",
        evse_id=1,
        connector_id=1,
        id_token="TAG",
        started_at=datetime(2026, 1, 2, 3, 0, tzinfo=UTC),
        energy_wh=Decimal("1.50"),
        power_w=Decimal("7200"),
    )
    bus.publish(event)
    await until(lambda: len(receiver.requests) == 1)
    request = receiver.requests[0]
    timestamp = request.headers["X-Chargegrid-Timestamp"]
    expected = hmac.new(
        webhook.secret.encode(), f"{timestamp}.".encode() + request.content, hashlib.sha256
    ).hexdigest()
    assert request.headers["X-Chargegrid-Signature"] == f"sha256={expected}"
    assert abs(int(timestamp) - datetime.now(UTC).timestamp()) < 5
    assert request.method == "POST" and str(request.url) == URL
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("chargegrid/")
    assert request.headers["X-Chargegrid-Event"] == "transaction.updated"
    body = json.loads(request.content)
    assert body["id"] == request.headers["X-Chargegrid-Delivery"]
    assert body["seq"] == 1 and body["type"] == "transaction.updated"
    assert body["created_at"].endswith("Z")
    assert body["data"]["energy_wh"] == 1.5  # a number, not text
    assert body["data"]["type"] == "transaction.updated" and body["data"]["transaction_id"] == 7
    await until(lambda: store.deliveries[body["id"]].status == "delivered")
    stored = store.deliveries[body["id"]]
    assert (stored.attempts, stored.last_status_code) == (1, 200)


async def test_subscriptions_filter_by_type_and_station(
    dispatcher: WebhookDispatcher, bus: EventBus, receiver: Receiver
) -> None:
    everything = await dispatcher.create(URL + "/all", events=["*"])
    statuses = await dispatcher.create(URL + "/status", events=["connector.status"])
    one_station = await dispatcher.create(URL + "/cs2", station_id="CS-2")
    await dispatcher.create(URL + "/off", enabled=False)
    bus.publish(online("CS-1"))
    bus.publish(status("CS-2", "Charging"))
    await until(lambda: len(receiver.requests) == 4)
    await asyncio.sleep(0.05)
    seen = sorted((r.url.path, json.loads(r.content)["seq"]) for r in receiver.requests)
    assert seen == [("/hook/all", 1), ("/hook/all", 2), ("/hook/cs2", 2), ("/hook/status", 2)]
    assert {everything.id, statuses.id, one_station.id} == {1, 2, 3}


async def test_invalid_webhooks_are_refused(dispatcher: WebhookDispatcher) -> None:
    for url in ("ftp://x.test/", "http://", "javascript:alert(1)", "http://a b/", "x.test"):
        with pytest.raises(InvalidWebhook):
            await dispatcher.create(url)
    with pytest.raises(InvalidWebhook, match=r"unknown event types station\.exploded"):
        await dispatcher.create(URL, events=["station.online", "station.exploded"])
    with pytest.raises(InvalidWebhook, match="16"):
        await dispatcher.create(URL, secret="short")
    assert dispatcher.webhooks() == []


async def test_failures_are_retried_with_back_off_then_given_up(
    store: FakeWebhookStore, bus: EventBus, receiver: Receiver
) -> None:
    receiver.status = lambda _: 503
    times: list[float] = []
    handle = receiver.handle

    def timed(request: httpx.Request) -> httpx.Response:
        times.append(asyncio.get_running_loop().time())
        return handle(request)

    policy = RetryPolicy(base_s=0.05, cap_s=0.3, max_attempts=5, jitter=0.0)
    hooks = WebhookDispatcher(
        store, bus, Clock(), options=Options(retry=policy), transport=httpx.MockTransport(timed)
    )
    await hooks.start()
    try:
        await hooks.create(URL)
        bus.publish(online())
        await until(lambda: len(times) == 5)
        (delivery,) = store.deliveries.values()
        await until(lambda: store.deliveries[delivery.id].status == "failed")
        await asyncio.sleep(0.4)
        assert len(times) == 5  # given up: no sixth attempt
    finally:
        await hooks.stop()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 0.05 x 1, 3, 12 (capped at 0.3), 60 (capped)
    for gap, expected in zip(gaps, [0.05, 0.15, 0.3, 0.3], strict=True):
        assert expected - 0.01 <= gap <= expected + 0.15, gaps
    failed = store.deliveries[delivery.id]
    assert (failed.attempts, failed.last_status_code, failed.last_error) == (5, 503, "HTTP 503")
    assert len({r.headers["X-Chargegrid-Delivery"] for r in receiver.requests}) == 1
    assert len({r.content for r in receiver.requests}) == 1  # the same body every time


def test_the_default_schedule() -> None:
    policy = RetryPolicy()
    rand = random.Random(1)  # noqa: S311 (jitter)
    delays = [policy.delay(n, rand) for n in range(1, 8)]
    for delay, expected in zip(delays, [10, 30, 120, 600, 3600, 21600, 21600], strict=True):
        assert expected * 0.8 <= delay <= min(expected * 1.2, 21600)
    assert policy.max_attempts == 8


async def test_one_webhook_in_order_and_a_failing_one_holds_up_no_other(
    dispatcher: WebhookDispatcher, bus: EventBus, receiver: Receiver
) -> None:
    await dispatcher.create(URL + "/good")
    await dispatcher.create(URL + "/down")
    receiver.status = lambda r: 503 if r.url.path.endswith("/down") else 200
    for n in range(30):
        bus.publish(status("CS-1", f"S{n}"))

    def good() -> list[dict[str, object]]:
        return [json.loads(r.content) for r in receiver.requests if "good" in r.url.path]

    await until(lambda: len(good()) == 30)
    assert [b["seq"] for b in good()] == list(range(1, 31))
    assert any("down" in r.url.path for r in receiver.requests)


async def test_connection_errors_and_timeouts_are_retried(
    store: FakeWebhookStore, bus: EventBus
) -> None:
    calls = 0

    async def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused", request=request)
        if calls == 2:
            await asyncio.sleep(1)  # beyond the timeout
        return httpx.Response(204)

    hooks = WebhookDispatcher(
        store,
        bus,
        Clock(),
        options=Options(retry=FAST, timeout_s=0.1),
        transport=httpx.MockTransport(flaky),
    )
    await hooks.start()
    try:
        await hooks.create(URL)
        bus.publish(online())
        await until(lambda: any(d.status == "delivered" for d in store.deliveries.values()))
    finally:
        await hooks.stop()
    (delivery,) = store.deliveries.values()
    assert (delivery.attempts, delivery.last_status_code) == (3, 204)


async def test_pending_deliveries_resume_after_a_restart(
    store: FakeWebhookStore, bus: EventBus, receiver: Receiver
) -> None:
    receiver.status = lambda _: 500
    first = make(store, bus, receiver, retry=RetryPolicy(base_s=60, max_attempts=8))
    await first.start()
    await first.create(URL)
    for n in range(3):
        bus.publish(status("CS-1", f"S{n}"))
    await until(lambda: len(receiver.requests) == 3)  # each failed once; retries a minute away
    await first.stop()
    assert {d.status for d in store.deliveries.values()} == {"pending"}
    assert len(store.deliveries) == 3

    receiver.status = lambda _: 200
    receiver.requests.clear()
    # the stored due time of the one that failed is a minute away: bring it forward
    for delivery in store.deliveries.values():
        delivery.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
    second = make(store, bus, receiver)
    await second.start()
    try:
        await until(lambda: len(receiver.requests) == 3)
        await until(lambda: {d.status for d in store.deliveries.values()} == {"delivered"})
    finally:
        await second.stop()
    assert [b["data"]["status"] for b in receiver.bodies()] == ["S0", "S1", "S2"]


async def test_a_lane_keeps_a_bounded_backlog_in_memory(
    store: FakeWebhookStore, bus: EventBus, receiver: Receiver
) -> None:
    hooks = make(store, bus, receiver, lane_memory=5)
    await hooks.start()
    try:
        await hooks.create(URL)
        for n in range(40):
            bus.publish(status("CS-1", f"S{n}"))
        await until(lambda: len(receiver.requests) == 40)
    finally:
        await hooks.stop()
    assert [b["data"]["status"] for b in receiver.bodies()] == [f"S{n}" for n in range(40)]
    assert len({r.headers["X-Chargegrid-Delivery"] for r in receiver.requests}) == 40


async def test_ping_retry_rotate_delete(
    dispatcher: WebhookDispatcher, bus: EventBus, receiver: Receiver, store: FakeWebhookStore
) -> None:
    webhook = await dispatcher.create(URL, secret="a-secret-of-16-chars")
    ping = await dispatcher.ping(webhook.id)
    assert (ping.event_type, ping.status, ping.attempts) == ("ping", "delivered", 1)
    assert json.loads(receiver.requests[-1].content)["data"] == {"webhook_id": webhook.id}

    receiver.status = lambda _: 410
    bus.publish(online())
    await until(lambda: any(d.status == "failed" for d in store.deliveries.values()))
    failed = next(d for d in store.deliveries.values() if d.status == "failed")
    with pytest.raises(NotRetryable):
        await dispatcher.retry(webhook.id, ping.id)
    receiver.status = lambda _: 200
    requeued = await dispatcher.retry(webhook.id, failed.id)
    assert (requeued.status, requeued.attempts) == ("pending", 0)
    await until(lambda: store.deliveries[failed.id].status == "delivered")

    old_secret = webhook.secret
    rotated = await dispatcher.rotate_secret(webhook.id)
    assert rotated.secret != old_secret and len(rotated.secret) >= 32
    await dispatcher.ping(webhook.id)
    request = receiver.requests[-1]
    mac = hmac.new(
        rotated.secret.encode(),
        request.headers["X-Chargegrid-Timestamp"].encode() + b"." + request.content,
        hashlib.sha256,
    )
    assert request.headers["X-Chargegrid-Signature"] == "sha256=" + mac.hexdigest()

    await dispatcher.delete(webhook.id)
    assert store.webhooks == {} and store.deliveries == {}
    bus.publish(online())
    await asyncio.sleep(0.05)
    assert dispatcher.webhooks() == []


async def test_old_finished_deliveries_are_purged(
    store: FakeWebhookStore, bus: EventBus, receiver: Receiver
) -> None:
    hooks = make(store, bus, receiver, retention=timedelta(days=30))
    await hooks.start()
    webhook = await hooks.create(URL)
    await hooks.stop()
    old = datetime.now(UTC) - timedelta(days=31)
    for n, state in enumerate(["delivered", "failed", "pending"]):
        await store.add_deliveries(
            [
                Delivery(
                    id=f"old-{n}",
                    webhook_id=webhook.id,
                    seq=n,
                    event_type="station.online",
                    payload="{}",
                    status=state,  # type: ignore[arg-type]
                    next_attempt_at=datetime.now(UTC) + timedelta(hours=1),
                    created_at=old,
                )
            ]
        )
    await hooks.start()
    try:
        await until(lambda: set(store.deliveries) == {"old-2"})  # pending ones are kept
    finally:
        await hooks.stop()


async def test_a_store_failure_does_not_lose_deliveries(
    dispatcher: WebhookDispatcher, bus: EventBus, receiver: Receiver, store: FakeWebhookStore
) -> None:
    await dispatcher.create(URL)
    store.fail_writes = True
    bus.publish(online())
    await asyncio.sleep(0.1)
    assert receiver.requests == []  # not sent before it is stored
    store.fail_writes = False
    await until(lambda: len(receiver.requests) == 1, timeout=3)


async def test_the_sender_finds_what_another_node_stored_when_the_note_is_lost(
    store: FakeWebhookStore, receiver: Receiver
) -> None:
    """In a cluster the lease holder sends what every node stores; the note that tells it is
    at most once, so it also reads the store every ``poll_store_s``."""
    other_bus, holder_bus = EventBus(), EventBus()
    other = make(store, other_bus, receiver)
    other.sends = False  # a node without the lease: stores, never sends
    holder = make(store, holder_bus, receiver, poll_store_s=0.05)
    await other.start()
    await holder.start()
    try:
        # neither note reaches the holder: on_change and on_stored are not wired to it
        await other.create(URL)
        other_bus.publish(online("CS-7"))
        await until(lambda: len(store.deliveries) == 1)
        await until(lambda: len(receiver.requests) == 1)
        await until(lambda: {d.status for d in store.deliveries.values()} == {"delivered"})
    finally:
        await holder.stop()
        await other.stop()
    assert receiver.bodies()[0]["data"]["station_id"] == "CS-7"  # type: ignore[index]
