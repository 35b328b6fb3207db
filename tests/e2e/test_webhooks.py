"""Webhooks end to end: a real node, a real HTTP receiver on loopback that checks every signature
with the standard library's hmac, stations built on the `ocpp` package, and the REST API over
httpx. On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import structlog
from api_client import Api, items, wait_for
from stations import Driver, connect

from chargegrid.bootstrap import App, build
from chargegrid.domain.webhooks import RetryPolicy
from chargegrid.entrypoints.settings import Settings
from chargegrid.service.webhooks import Options

FAST = Options(retry=RetryPolicy(base_s=0.05, cap_s=0.2, max_attempts=30))


@dataclass
class Received:
    delivery_id: str
    event: str
    body: dict[str, Any]
    signature_ok: bool


@dataclass
class Receiver:
    """What the receiver saw; ``failing`` makes it answer 503."""

    url: str = ""
    secret: bytes = b""
    failing: bool = False
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # delivery ids answered 503
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        with self.lock:
            return [r.delivery_id for r in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            timestamp = self.headers["X-Chargegrid-Timestamp"]
            expected = hmac.new(state.secret, timestamp.encode() + b"." + body, hashlib.sha256)
            signature_ok = (
                hmac.compare_digest(
                    self.headers["X-Chargegrid-Signature"], "sha256=" + expected.hexdigest()
                )
                and abs(time.time() - int(timestamp)) < 300
            )
            with state.lock:
                if state.failing:
                    state.refused.append(self.headers["X-Chargegrid-Delivery"])
                    status = 503
                else:
                    state.received.append(
                        Received(
                            self.headers["X-Chargegrid-Delivery"],
                            self.headers["X-Chargegrid-Event"],
                            json.loads(body),
                            signature_ok,
                        )
                    )
                    status = 204
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (its signature)
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/chargegrid"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
async def node(api_settings: Settings) -> AsyncIterator[App]:
    """The shared node, with webhook retries in tens of milliseconds."""
    app = await build(api_settings)
    assert app.webhooks is not None
    app.webhooks.options = FAST  # settable until start
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def deliveries(api: Api, webhook_id: int, **params: Any) -> list[dict[str, Any]]:
    return items(await api.pages(f"/webhooks/{webhook_id}/deliveries", limit=7, **params))


async def test_events_reach_the_receiver_signed_in_order_and_survive_an_outage(
    node: App, api: Api, receiver: Receiver, version: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # A station the node did not know when it connected: no station.online. In 2.0.1 the
    # meter values of the Started and Ended TransactionEvents are transaction updates too.
    expected = [
        "ping",
        "station.booted",
        "connector.status",
        "transaction.started",
        *["transaction.updated"] * (1 if version == "1.6" else 3),
        "transaction.ended",
    ]
    with structlog.testing.capture_logs() as logs:
        created = await api.post(
            "/webhooks", {"url": receiver.url, "description": "e2e"}, expect=201
        )
        secret = created["secret"]
        receiver.secret = secret.encode()
        hook = created["webhook"]
        assert len(secret) >= 32 and hook["events"] == [] and hook["enabled"] is True
        pong = await api.post(f"/webhooks/{hook['id']}/ping")
        assert (pong["event_type"], pong["status"], pong["last_status_code"]) == (
            "ping",
            "delivered",
            204,
        )

        async with connect(node.server.port, "CS-HOOK", version) as cp:
            driver = Driver(cp, version)
            await driver.boot()
            await driver.status(1, "Available")
            tx_id, _ = await driver.start("TAG-1", 1000)
            await driver.meter(tx_id, 1500)
            await driver.stop(tx_id, 2500)
            # every event of the session has been delivered, the ping first
            await wait_for(lambda: _settled(api, hook["id"], at_least=len(expected)), timeout=10)
            healthy = list(receiver.received)

            # the receiver goes down for a while: what happens meanwhile is retried
            receiver.failing = True
            await driver.status(1, "Faulted")
            await driver.status(1, "Available")
            # both status deliveries refused once at least, and one of them retried: a
            # delivery stored but not yet tried would be pending with no status code
            await wait_for(lambda: _refused_twice(receiver, distinct=2), timeout=10)
            log_while_down = await deliveries(api, hook["id"], status="pending")
            assert log_while_down, "the deliveries refused should be pending"
            assert all(d["last_status_code"] == 503 for d in log_while_down)
            receiver.failing = False
            await wait_for(
                lambda: _settled(api, hook["id"], at_least=len(expected) + 2), timeout=10
            )
        await wait_for(
            lambda: _settled(api, hook["id"], at_least=len(expected) + 3), timeout=10
        )  # offline

        log = await deliveries(api, hook["id"])
        listed = [await api.get(f"/webhooks/{hook['id']}"), *items(await api.pages("/webhooks"))]

    # Every delivery arrived once, signed, and the healthy ones in the order of the bus.
    ids = receiver.ids()
    assert len(ids) == len(set(ids)) == len(log)
    assert {d["id"] for d in log} == set(ids)
    assert all(r.signature_ok for r in receiver.received)
    for r in receiver.received:
        assert r.body["id"] == r.delivery_id and r.body["type"] == r.event
    assert [r.event for r in healthy] == expected
    seqs = [r.body["seq"] for r in healthy[1:]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    started = next(r.body for r in healthy if r.event == "transaction.started")
    assert started["data"]["station_id"] == "CS-HOOK"
    assert started["created_at"].endswith("Z")
    assert [r.event for r in receiver.received][-1] == "station.offline"

    # The log shows the failed attempts and the final success of the ones refused.
    retried = [d for d in log if d["id"] in set(receiver.refused)]
    assert retried
    assert all(d["attempts"] >= 2 and d["status"] == "delivered" for d in retried)
    assert all(d["last_status_code"] == 204 and d["last_error"] is None for d in retried)
    assert [d["created_at"] for d in log] == sorted((d["created_at"] for d in log), reverse=True)

    # The secret is shown once: not when read back, not in the logs.
    assert all("secret" not in w for w in listed)
    assert secret not in json.dumps(listed)
    assert logs and secret not in repr(logs)
    assert caplog.records and secret not in caplog.text


async def _settled(api: Api, webhook_id: int, at_least: int) -> bool:
    log = await deliveries(api, webhook_id)
    return len(log) >= at_least and all(d["status"] == "delivered" for d in log)


async def _refused_twice(receiver: Receiver, distinct: int = 1) -> bool:
    with receiver.lock:
        ids = set(receiver.refused)
        return len(ids) >= distinct and len(receiver.refused) > len(ids)  # some id was retried


async def test_a_failed_delivery_can_be_retried_and_a_disabled_webhook_waits(
    node: App, api: Api, receiver: Receiver
) -> None:
    assert node.webhooks is not None
    node.webhooks.options = replace(FAST, retry=replace(FAST.retry, max_attempts=2))
    created = await api.post(
        "/webhooks",
        {
            "url": receiver.url,
            "events": ["station.online", "station.offline"],
            "station_id": "CS-R",
            "secret": "a-given-secret-of-enough-length",
        },
        expect=201,
    )
    assert created["secret"] == "a-given-secret-of-enough-length"
    receiver.secret = created["secret"].encode()
    hook_id = created["webhook"]["id"]
    await api.post("/stations", {"id": "CS-R"}, expect=201)  # known: station.online at connection
    receiver.failing = True
    async with connect(node.server.port, "CS-R", "1.6") as cp:
        await Driver(cp, "1.6").boot()  # station.booted: not subscribed
        await wait_for(lambda: _status(api, hook_id, "failed", 1), timeout=5)
    (failed,) = await deliveries(api, hook_id, status="failed")
    assert (failed["event_type"], failed["attempts"]) == ("station.online", 2)
    await api.post(f"/webhooks/{hook_id}/deliveries/{failed['id']}/retry", expect=200)
    await api.post(f"/webhooks/{hook_id}/deliveries/{failed['id']}/retry", expect=409)
    await api.post(f"/webhooks/{hook_id}/deliveries/nope/retry", expect=404)
    receiver.failing = False
    await wait_for(lambda: _status(api, hook_id, "delivered", 2), timeout=5)
    assert sorted(r.event for r in receiver.received) == ["station.offline", "station.online"]

    # disabled: events are not queued for it; enabled again, it gets the new ones
    await api.patch(f"/webhooks/{hook_id}", {"enabled": False})
    async with connect(node.server.port, "CS-R", "1.6") as cp:
        await Driver(cp, "1.6").boot()
    await asyncio.sleep(0.2)
    assert len(receiver.received) == 2
    changed = await api.patch(f"/webhooks/{hook_id}", {"enabled": True, "station_id": None})
    assert changed["station_id"] is None and changed["enabled"] is True

    rotated = await api.post(f"/webhooks/{hook_id}/rotate-secret")
    assert rotated["secret"] != created["secret"]
    receiver.secret = rotated["secret"].encode()
    assert (await api.post(f"/webhooks/{hook_id}/ping"))["status"] == "delivered"
    assert receiver.received[-1].signature_ok

    await api.delete(f"/webhooks/{hook_id}")
    await api.get(f"/webhooks/{hook_id}", expect=404)
    await api.get(f"/webhooks/{hook_id}/deliveries", expect=404)


async def _status(api: Api, webhook_id: int, status: str, count: int) -> bool:
    return len(await deliveries(api, webhook_id, status=status)) == count


async def test_bad_webhooks_and_weak_roles_are_refused(api: Api) -> None:
    for url in ("ftp://example.com/x", "not a url", "http:///no-host", "mailto:a@b.c"):
        refused = await api.post("/webhooks", {"url": url}, expect=422)
        assert "URL" in refused["detail"]
    refused = await api.post(
        "/webhooks", {"url": "https://example.com/", "events": ["station.exploded"]}, expect=422
    )
    assert "station.exploded" in refused["detail"]
    await api.post("/webhooks", {"url": "https://example.com/", "secret": "short"}, expect=400)
    await api.post("/webhooks", {"events": []}, expect=400)
    assert items(await api.pages("/webhooks")) == []

    viewer = (await api.post("/api-tokens", {"name": "v", "role": "viewer"}, expect=201))["token"]
    operator = (await api.post("/api-tokens", {"name": "o", "role": "operator"}, expect=201))[
        "token"
    ]
    created = await api.post("/webhooks", {"url": "https://example.com/"}, expect=201)
    hook_id = created["webhook"]["id"]
    for token in (viewer, operator):
        await api.as_(token).post("/webhooks", {"url": "https://example.com/"}, expect=403)
        await api.as_(token).get("/webhooks", expect=403)
        await api.as_(token).get(f"/webhooks/{hook_id}", expect=403)
        await api.as_(token).post(f"/webhooks/{hook_id}/rotate-secret", expect=403)
    await api.as_(viewer).get(f"/webhooks/{hook_id}/deliveries", expect=403)
    await api.as_(operator).get(f"/webhooks/{hook_id}/deliveries")
    await api.as_(None).get("/webhooks", expect=401)
    await api.patch(f"/webhooks/{hook_id}", {"url": "gopher://x"}, expect=422)
    await api.get("/webhooks/999", expect=404)
