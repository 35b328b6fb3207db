"""``POST /api/v1/stations/{id}/password`` end to end: a generated Basic-auth password is sent to a
connected station (the ``ocpp`` package's, both versions) and stored only once it accepted; the
station then connects with it and not with the old one; a station that declines keeps its old
password; an offline station gets it stored for the operator to configure."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from api_client import serving
from ocpp.routing import on
from ocpp.v16 import call_result as result16
from ocpp.v201 import call_result as result201
from stations import Driver, Station16, Station201, connect

from chargegrid.domain.passwords import GENERATED_ITERATIONS

OLD = "the-old-password-0001"


async def _admitted(port: int, station_id: str, password: str) -> bool:
    """Whether the WebSocket upgrade with this Basic-auth password succeeds (else it is 401)."""
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    try:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ocpp/{station_id}",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Basic {token}"},
            open_timeout=5,
        ):
            return True
    except websockets.InvalidStatus as exc:
        status = exc.response.status_code
    if status != 401:
        raise AssertionError(f"refused with {status}, not 401")
    return False


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_connected_station_is_sent_its_new_password(
    fresh_db_url: Callable[[str], str], version: str
) -> None:
    async with serving(fresh_db_url("sqlite")) as (app, api):
        await api.post("/stations", {"id": "CS-PW", "password": OLD}, 201)
        async with connect(app.server.port, "CS-PW", version, password=OLD) as cp:
            assert await Driver(cp, version).boot() == "Accepted"
            response = await api.request("POST", "/stations/CS-PW/password", expect=201)
            assert response.headers["cache-control"] == "no-store"
            body = response.json()
            new = body["password"]
            assert body["sent"] is True and len(new) == 32 and new != OLD
            action, request = cp.received[-1]
            if version == "1.6":
                assert action == "ChangeConfiguration"
                assert request == {"key": "AuthorizationKey", "value": new}
            else:
                assert action == "SetVariables"
                (data,) = request["set_variable_data"]
                assert data["variable"]["name"] == "BasicAuthPassword"
                assert data["attribute_value"] == new
            # what the API answers and the command log keep of the request: no secret
            assert new not in str(body["steps"])
            log = await api.get("/stations/CS-PW/command-log")
            assert log[0]["action"] in ("ChangeConfiguration", "SetVariables")
            assert new not in str(log)
        assert await _admitted(app.server.port, "CS-PW", new)
        assert not await _admitted(app.server.port, "CS-PW", OLD)
        station = await app.store.get_station("CS-PW")
        assert station is not None and station.password_hash is not None
        assert station.password_hash.split("$")[1] == str(GENERATED_ITERATIONS)


class Declining16(Station16):  # type: ignore[misc]
    @on("ChangeConfiguration")
    async def on_change_configuration(self, **kwargs: Any) -> Any:
        self.received.append(("ChangeConfiguration", kwargs))
        return result16.ChangeConfiguration(status="Rejected")


class Declining201(Station201):  # type: ignore[misc]
    @on("SetVariables")
    async def on_set_variables(self, **kwargs: Any) -> Any:
        self.received.append(("SetVariables", kwargs))
        (data,) = kwargs["set_variable_data"]
        return result201.SetVariables(
            set_variable_result=[
                {
                    "attribute_status": "Rejected",
                    "component": data["component"],
                    "variable": data["variable"],
                }
            ]
        )


@pytest.mark.parametrize(("version", "cls"), [("1.6", Declining16), ("2.0.1", Declining201)])
async def test_a_station_that_declines_keeps_its_password(
    fresh_db_url: Callable[[str], str], version: str, cls: type[Any]
) -> None:
    async with serving(fresh_db_url("sqlite")) as (app, api):
        await api.post("/stations", {"id": "CS-NO", "password": OLD}, 201)
        async with connect(
            app.server.port, "CS-NO", version, password=OLD, station_class=cls
        ) as cp:
            assert await Driver(cp, version).boot() == "Accepted"
            refused = await api.post("/stations/CS-NO/password", expect=409)
            assert "Rejected" in refused["detail"] and "keeps its password" in refused["detail"]
            assert "password" not in refused.get("extra", {})
        assert await _admitted(app.server.port, "CS-NO", OLD)


async def test_an_offline_station_gets_it_stored(fresh_db_url: Callable[[str], str]) -> None:
    async with serving(fresh_db_url("sqlite")) as (app, api):
        await api.post("/stations", {"id": "CS-OFF"}, 201)
        body = await api.post("/stations/CS-OFF/password", expect=201)
        assert body["sent"] is False and body["steps"] == []
        assert await _admitted(app.server.port, "CS-OFF", body["password"])
        assert not await _admitted(app.server.port, "CS-OFF", "not-the-password-000")
        await api.post("/stations/NOPE/password", expect=404)
        viewer = await api.post("/api-tokens", {"name": "v", "role": "viewer"}, 201)
        await api.as_(viewer["token"]).post("/stations/CS-OFF/password", expect=403)
