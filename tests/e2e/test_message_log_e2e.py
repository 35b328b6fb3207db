"""The OCPP message log end to end: a station built on the `ocpp` package (and a raw WebSocket
client for malformed input) talks to a running node; the REST API lists every frame both ways
with answers matched to their CALLs' actions, searches them, and tails them live over SSE."""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_client import API, Api, SseReader, items, wait_for
from stations import Driver, connect
from test_malformed_input import raw_station

from chargegrid.bootstrap import App

RESET = {"1.6": {"type": "Soft"}, "2.0.1": {"type": "OnIdle"}}


class Tail(SseReader):
    """Reads ``/stations/{id}/messages/stream``; ``seen`` are the frames' entries."""

    def __init__(self, api: Api, station_id: str) -> None:
        super().__init__(api.client, f"{API}/stations/{station_id}/messages/stream", api.token)

    @property
    def seen(self) -> list[dict[str, Any]]:
        return [e.data for e in self.received if e.event == "message"]

    async def until(self, count: int) -> None:  # type: ignore[override]
        await super().until("message", count)


def shape(entries: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(e["direction"], e["message_type"], e["action"]) for e in entries]


async def saved(api: Api, station_id: str, count: int, **params: Any) -> list[dict[str, Any]]:
    """Every logged frame of the station, oldest first, once at least ``count`` are saved."""
    found: list[dict[str, Any]] = []

    async def enough() -> bool:
        nonlocal found
        found = items(await api.pages(f"/stations/{station_id}/messages", **params))
        return len(found) >= count

    await wait_for(enough, timeout=5)
    return list(reversed(found))


async def test_both_directions_are_logged_correlated_searchable_and_tailed_live(
    node: App, api: Api, version: str
) -> None:
    await api.post("/stations", {"id": "CS-LOG"}, expect=201)
    async with Tail(api, "CS-LOG") as tail, connect(node.server.port, "CS-LOG", version) as cp:
        station = Driver(cp, version)
        assert await station.boot() == "Accepted"
        await station.heartbeat()
        answer = await api.post("/stations/CS-LOG/commands/Reset", RESET[version])
        assert answer["response"]["status"] == "Accepted"
        expected = [
            ("in", "CALL", "BootNotification"),
            ("out", "CALLRESULT", "BootNotification"),
            ("in", "CALL", "Heartbeat"),
            ("out", "CALLRESULT", "Heartbeat"),
            ("out", "CALL", "Reset"),
            ("in", "CALLRESULT", "Reset"),
        ]
        await tail.until(len(expected))
        # Live, before the batch is saved: no id yet.
        assert shape(tail.seen[:6]) == expected
        assert all(e["id"] is None and e["station_id"] == "CS-LOG" for e in tail.seen)

    logged = await saved(api, "CS-LOG", len(expected), limit=2)
    assert shape(logged) == expected
    assert [e["unique_id"] for e in logged[:2]] == [logged[0]["unique_id"]] * 2
    assert all(e["at"].endswith("Z") and not e["truncated"] for e in logged)
    boot_payload = json.loads(logged[0]["payload"])
    assert boot_payload[:3] == [2, logged[0]["unique_id"], "BootNotification"]
    assert json.loads(logged[5]["payload"])[2] == {"status": "Accepted"}
    assert [e["id"] for e in logged] == sorted(e["id"] for e in logged)

    base = "/stations/CS-LOG/messages"
    out_calls = (await api.get(base, params={"direction": "out", "message_type": "CALL"}))["items"]
    assert shape(out_calls) == [("out", "CALL", "Reset")]
    answers = await api.get(base, params={"action": "Heartbeat", "message_type": "CALLRESULT"})
    assert shape(answers["items"]) == [("out", "CALLRESULT", "Heartbeat")]
    by_id = await api.get(base, params={"unique_id": logged[4]["unique_id"]})
    assert shape(by_id["items"]) == [("in", "CALLRESULT", "Reset"), ("out", "CALL", "Reset")]
    acme = await api.get(base, params={"q": "acme"})  # the vendor, in the boot's payload
    assert shape(acme["items"]) == [("in", "CALL", "BootNotification")]
    assert (await api.get(base, params={"q": "%"}))["items"] == []
    assert (await api.get(base, params={"q": "_"}))["items"] == []
    since = await api.get(base, params={"since": logged[4]["at"]})
    assert ("out", "CALL", "Reset") in shape(since["items"])
    until = await api.get(base, params={"until": logged[0]["at"]})
    assert until["items"] == []

    viewer = await api.post("/api-tokens", {"name": "v", "role": "viewer"}, expect=201)
    assert len((await api.as_(viewer["token"]).get(base))["items"]) == 6
    await api.as_(None).get(base, expect=401)
    await api.get("/stations/CS-NOWHERE/messages", expect=404)
    await api.get("/stations/CS-NOWHERE/messages/stream", expect=404)
    await api.get(base, params={"since": "yesterday"}, expect=400)
    await api.get(base, params={"since": "2026-03-01T00:00:00"}, expect=400)
    await api.get(base, params={"cursor": "bm90LWEtY3Vyc29y"}, expect=400)
    await api.get(base, params={"direction": "sideways"}, expect=400)
    metrics = await api.request("GET", "/metrics", expect=200)
    assert "chargegrid_message_log_dropped_total 0.0" in metrics.text


async def test_malformed_input_is_logged_with_the_callerror_sent_back(node: App, api: Api) -> None:
    async with raw_station(node.server.port, "CS-RAW", "1.6") as raw:
        await raw.boot()
        error = await raw.exchange("this is not json")
        assert error[0] == 4 and error[2] == "FormationViolation"
        await raw.send("y" * 70_000)  # above the log's 64 KiB bound
        assert (await raw.receive())[0] == 4
        await raw.assert_alive()
    logged = await saved(api, "CS-RAW", 8)
    assert shape(logged) == [
        ("in", "CALL", "BootNotification"),
        ("out", "CALLRESULT", "BootNotification"),
        ("in", "invalid", None),
        ("out", "CALLERROR", None),
        ("in", "invalid", None),
        ("out", "CALLERROR", None),
        ("in", "CALL", "Heartbeat"),
        ("out", "CALLRESULT", "Heartbeat"),
    ]
    assert logged[2]["payload"] == "this is not json" and logged[2]["unique_id"] is None
    assert json.loads(logged[3]["payload"])[2] == "FormationViolation"
    assert logged[4]["truncated"] and logged[4]["payload"] == "y" * 65536
    assert not logged[6]["truncated"] and logged[6]["unique_id"] == "hb-1"
    invalid = await api.get(
        "/stations/CS-RAW/messages", params={"message_type": "invalid", "limit": 1}
    )
    assert len(invalid["items"]) == 1 and invalid["next_cursor"]


@pytest.mark.parametrize("api_settings", [{"message_log_days": 0}], indirect=True)
async def test_the_log_can_be_switched_off(node: App, api: Api) -> None:
    assert node.message_log is None and node.server.tap is None
    async with connect(node.server.port, "CS-OFF", "1.6") as cp:
        assert await Driver(cp, "1.6").boot() == "Accepted"
    found = await api.get("/stations/CS-OFF/messages", expect=404)
    assert "off" in found["detail"]
