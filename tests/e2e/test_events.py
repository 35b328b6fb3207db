"""The live event stream over real HTTP: Server-Sent Events read with httpx, as a browser or an
integration would, while a station built on the `ocpp` package boots, charges and leaves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from api_client import ADMIN_TOKEN, API, Api, Sse, SseReader
from stations import Driver, connect

from chargegrid.bootstrap import App
from chargegrid.domain.events import StationOnline


@pytest.fixture
def client(api: Api) -> httpx.AsyncClient:
    return api.client


class Stream(SseReader):
    """Reads ``/api/v1/events``; ``last_event_id`` resumes as a browser does."""

    def __init__(self, client: httpx.AsyncClient, token: str = ADMIN_TOKEN, **params: Any) -> None:
        headers = {}
        if "last_event_id" in params:
            headers["Last-Event-ID"] = str(params.pop("last_event_id"))
        super().__init__(client, f"{API}/events", token, headers, **params)

    @property
    def seen(self) -> list[Sse]:
        return self.received


async def test_a_charging_session_streams_every_event_in_order(
    node: App, client: httpx.AsyncClient, version: str
) -> None:
    api = Api(client, ADMIN_TOKEN)
    async with Stream(client) as stream:
        await api.post("/stations", {"id": "CS-EV"}, expect=201)
        async with connect(node.server.port, "CS-EV", version) as cp:
            drive = Driver(cp, version)
            assert await drive.boot() == "Accepted"
            await drive.status(1, "Available")
            tx_id, _ = await drive.start("TAG-1", 1000)
            await drive.meter(tx_id, 1500)
            await drive.stop(tx_id, 2500)
            await stream.until("transaction.ended")
        await stream.until("station.offline")

    seen = [e for e in stream.seen if e.data["station_id"] == "CS-EV"]
    types = [e.event for e in seen]
    assert types == [
        "station.registration",
        "station.online",
        "station.booted",
        "connector.status",
        "transaction.started",
        # 2.0.1 Started, Updated and Ended carry meter values: each reading is an update
        *(["transaction.updated"] if version == "1.6" else ["transaction.updated"] * 3),
        "transaction.ended",
        "station.offline",
    ]
    ids = [int(e.id or 0) for e in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(e.data["type"] == e.event for e in seen)

    booted = seen[2].data
    assert (booted["vendor"], booted["registration"]) == ("ACME", "Accepted")
    status = seen[3].data
    assert (status["connector_id"], status["status"]) == (1, "Available")
    started = seen[4].data
    assert started["id_token"] == "TAG-1" and started["meter_start_wh"] == 1000
    updates = [e.data for e in seen if e.event == "transaction.updated"]
    power = 7200 if version == "1.6" else 7200.5  # 1.6 sends "7.2" kW
    assert updates[0]["power_w"] == power
    assert updates[0]["transaction_id"] == started["transaction_id"]
    ended = seen[-2].data
    assert ended["energy_wh"] == 1500 and ended["reason"] == "EVDisconnected"

    # What an event announces is stored by the time it arrives.
    tx = await api.get(f"/transactions/{started['transaction_id']}")
    assert tx["transaction"]["state"] == "Ended"


async def test_an_event_is_stored_before_it_is_streamed(
    node: App, client: httpx.AsyncClient
) -> None:
    """Each transaction.started is followed at once by a read of that transaction."""
    api = Api(client, ADMIN_TOKEN)
    found: list[int] = []

    async with (
        Stream(client, types="transaction.started") as stream,
        connect(node.server.port, "CS-ST", "1.6") as cp,
    ):
        drive = Driver(cp, "1.6")
        await drive.boot()
        for n in range(5):
            await drive.start(f"TAG-{n}", 100 * n, connector=n + 1)
        await stream.until("transaction.started", 5)
    for event in stream.seen:
        tx = await api.get(f"/transactions/{event.data['transaction_id']}")
        found.append(tx["transaction"]["id"])
    assert len(found) == 5 and stream.types() == ["transaction.started"] * 5


async def test_filters_resume_and_refusals(node: App, client: httpx.AsyncClient) -> None:
    api = Api(client, ADMIN_TOKEN)
    async with (
        Stream(client, types="station.registration,station.online", station="CS-B") as only_b,
        Stream(client) as everything,
    ):
        for station_id in ("CS-A", "CS-B", "CS-C"):
            await api.post("/stations", {"id": station_id}, expect=201)
        async with connect(node.server.port, "CS-B", "1.6"):
            await only_b.until("station.online")
        await everything.until("station.offline")
    assert only_b.types() == ["station.registration", "station.online"]
    assert {e.data["station_id"] for e in only_b.seen} == {"CS-B"}

    # A client that reconnects with the last id it saw gets what it missed, from the node's
    # memory, and nothing twice.
    first = everything.seen[0]
    async with Stream(client, last_event_id=first.id) as resumed:
        await resumed.until("station.offline")
    assert [e.id for e in resumed.seen] == [e.id for e in everything.seen[1:]]
    async with Stream(client, after=everything.seen[-2].id) as after:
        await after.until("station.offline")
    assert after.types() == ["station.offline"]

    # A viewer may watch; no token, a bad token or an unknown type may not.
    viewer = (await api.post("/api-tokens", {"name": "v", "role": "viewer"}, expect=201))["token"]
    async with Stream(client, token=viewer, after=0) as watched:
        await watched.until("station.offline")
    for headers, params, status in (
        ({}, {}, 401),
        ({"Authorization": "Bearer not-a-token"}, {}, 401),
        ({"Authorization": f"Bearer {ADMIN_TOKEN}"}, {"types": "station.exploded"}, 400),
        ({"Authorization": f"Bearer {ADMIN_TOKEN}"}, {"after": "-1"}, 400),
    ):
        response = await client.get(f"{API}/events", headers=headers, params=params)
        assert response.status_code == status, response.text
        assert response.json()["detail"]


async def test_a_client_too_far_behind_is_told_to_reload(
    node: App, client: httpx.AsyncClient
) -> None:
    bus = node.central.events
    now = datetime.now(UTC)
    for _ in range(bus.history_size + 1):  # the first event is no longer kept
        bus.publish(StationOnline(station_id="CS-R", at=now))
    async with Stream(client, after=0) as stream:
        await stream.until("reset")
    assert stream.seen[0].event == "reset" and int(stream.seen[0].id or 0) == bus.last_seq
    async with Stream(client, after=1) as kept:  # event 2 onwards is kept
        await kept.until("station.online", bus.history_size)
    assert "reset" not in kept.types()


async def test_security_events_say_whether_they_are_critical(
    node: App, client: httpx.AsyncClient, version: str
) -> None:
    from ocpp.v16 import call as call16
    from ocpp.v201 import call as call201

    call = call16 if version == "1.6" else call201
    async with (
        Stream(client, types="security.event") as stream,
        connect(node.server.port, "CS-SEC", version) as cp,
    ):
        assert await Driver(cp, version).boot() == "Accepted"
        for kind in ("InvalidMessages", "TamperDetectionActivated"):
            await cp.call(
                call.SecurityEventNotification(
                    type=kind, timestamp=datetime.now(UTC).isoformat(), tech_info="lid open"
                )
            )
        await stream.until("security.event", count=2)
    assert [(e.data["kind"], e.data["critical"]) for e in stream.seen] == [
        ("InvalidMessages", False),
        ("TamperDetectionActivated", True),
    ]
