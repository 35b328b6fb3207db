"""Reservations through the REST API, with stations built on the `ocpp` package answering
ReserveNow and CancelReservation in OCPP 1.6 and 2.0.1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from api_client import Api, items
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import call_result as result201
from stations import Driver, Station16, Station201, connect, now_iso

from chargegrid.bootstrap import App

EXPIRES = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)


class Occupied16(Station16):  # type: ignore[misc]
    @on("ReserveNow")
    def on_ReserveNow(self, **kwargs: Any) -> Any:  # the ocpp package routes by name
        self.received.append(("ReserveNow", kwargs))
        return result16.ReserveNow(status="Occupied")


class Occupied201(Station201):  # type: ignore[misc]
    @on("ReserveNow")
    def on_ReserveNow(self, **kwargs: Any) -> Any:
        self.received.append(("ReserveNow", kwargs))
        return result201.ReserveNow(status="Occupied")


async def test_reserve_list_use_and_cancel(node: App, api: Api, version: str) -> None:
    await api.post("/stations", {"id": "CS-R"}, expect=201)
    async with connect(node.server.port, "CS-R", version) as cp:
        await Driver(cp, version).boot()
        body = {"station_id": "CS-R", "id_token": "TAG-R", "expires_at": EXPIRES.isoformat()}
        first = await api.post("/reservations", {**body, "connector_id": 1}, expect=201)
        second = await api.post("/reservations", {**body, "connector_id": 2}, expect=201)
        assert first["status"] == "Accepted"
        kept = first["reservation"]
        assert (kept["station_id"], kept["connector_id"], kept["status"]) == ("CS-R", 1, "Accepted")
        assert datetime.fromisoformat(kept["expires_at"]) == EXPIRES
        assert second["reservation"]["id"] == kept["id"] + 1

        action, sent = cp.received[0]
        assert action == "ReserveNow"
        if version == "1.6":
            assert (sent["reservation_id"], sent["connector_id"], sent["id_tag"]) == (
                kept["id"],
                1,
                "TAG-R",
            )
        else:
            assert (sent["id"], sent["evse_id"]) == (kept["id"], 1)
            assert sent["id_token"] == {"id_token": "TAG-R", "type": "ISO14443"}

        listed = items(await api.pages("/reservations", station_id="CS-R", limit=1))
        assert [r["id"] for r in listed] == [second["reservation"]["id"], kept["id"]]
        assert await api.get(f"/reservations/{kept['id']}") == kept

        if version == "1.6":  # the driver arrives: the transaction names the reservation
            await cp.call(
                call16.StartTransaction(
                    connector_id=1,
                    id_tag="TAG-R",
                    meter_start=0,
                    timestamp=now_iso(),
                    reservation_id=kept["id"],
                )
            )
            used = await api.get(f"/reservations/{kept['id']}")
            assert used["status"] == "Used"
            await api.delete(f"/reservations/{kept['id']}", expect=409)

        cancelled = await api.delete(f"/reservations/{second['reservation']['id']}", expect=200)
        answer = cancelled.json()
        assert answer["status"] == "Accepted" and answer["reservation"]["status"] == "Cancelled"
        assert cp.received[-1][0] == "CancelReservation"
        await api.delete(f"/reservations/{second['reservation']['id']}", expect=409)
        assert (
            items(await api.pages("/reservations", status="Cancelled"))[0]["id"]
            == (second["reservation"]["id"])
        )


async def test_refusals(node: App, api: Api, version: str) -> None:
    await api.post("/stations", {"id": "CS-O"}, expect=201)
    body = {"station_id": "CS-O", "id_token": "TAG", "expires_at": EXPIRES.isoformat()}
    offline = await api.post("/reservations", body, expect=409)
    assert "not connected" in offline["detail"]
    await api.post("/reservations", {**body, "station_id": "CS-NONE"}, expect=404)
    naive = {**body, "expires_at": EXPIRES.replace(tzinfo=None).isoformat()}
    await api.post("/reservations", naive, expect=400)
    await api.get("/reservations/999", expect=404)
    await api.delete("/reservations/999", expect=404)

    occupied = Occupied16 if version == "1.6" else Occupied201
    async with connect(node.server.port, "CS-O", version, station_class=occupied) as cp:
        await Driver(cp, version).boot()
        refused = await api.post("/reservations", body, expect=409)
        assert refused["extra"]["status"] == "Occupied"
        assert items(await api.pages("/reservations")) == []  # nothing kept
        typed = {**body, "connector_type": "cType2"}
        await api.post("/reservations", typed, expect=422 if version == "1.6" else 409)

    viewer = (await api.post("/api-tokens", {"name": "v", "role": "viewer"}, expect=201))["token"]
    await api.as_(viewer).post("/reservations", body, expect=403)
    assert await api.as_(viewer).get("/reservations") == {"items": [], "next_cursor": None}
