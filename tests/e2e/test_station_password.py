"""``POST /api/v1/stations/{id}/password`` end to end: a generated Basic-auth password is sent to a
connected station (the ``ocpp`` package's, both versions) and stored only once it accepted; the
station then connects with it and not with the old one; a station that declines keeps its old
password; a station whose answer is lost, or that takes it at its next start, may connect with
either until it uses the new one; an offline station gets it stored for the operator to
configure."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from api_client import Api, serving, wait_for
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


def _set_variables(kwargs: dict[str, Any], status: str) -> Any:
    (data,) = kwargs["set_variable_data"]
    return result201.SetVariables(
        set_variable_result=[
            {
                "attribute_status": status,
                "component": data["component"],
                "variable": data["variable"],
            }
        ]
    )


class Declining201(Station201):  # type: ignore[misc]
    @on("SetVariables")
    async def on_set_variables(self, **kwargs: Any) -> Any:
        self.received.append(("SetVariables", kwargs))
        return _set_variables(kwargs, "Rejected")


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


class Silent16(Station16):  # type: ignore[misc]
    """Takes the password and never answers (the answer is lost on the way)."""

    @on("ChangeConfiguration")
    async def on_change_configuration(self, **kwargs: Any) -> Any:
        self.received.append(("ChangeConfiguration", kwargs))
        await asyncio.sleep(60)


class Silent201(Station201):  # type: ignore[misc]
    @on("SetVariables")
    async def on_set_variables(self, **kwargs: Any) -> Any:
        self.received.append(("SetVariables", kwargs))
        await asyncio.sleep(60)


class Rebooting16(Station16):  # type: ignore[misc]
    """Takes the password from its next start."""

    @on("ChangeConfiguration")
    async def on_change_configuration(self, **kwargs: Any) -> Any:
        self.received.append(("ChangeConfiguration", kwargs))
        return result16.ChangeConfiguration(status="RebootRequired")


class Rebooting201(Station201):  # type: ignore[misc]
    @on("SetVariables")
    async def on_set_variables(self, **kwargs: Any) -> Any:
        self.received.append(("SetVariables", kwargs))
        return _set_variables(kwargs, "RebootRequired")


def _sent_password(version: str, received: list[tuple[str, dict[str, Any]]]) -> str:
    action, request = received[-1]
    if version == "1.6":
        assert action == "ChangeConfiguration"
        return str(request["value"])
    assert action == "SetVariables"
    return str(request["set_variable_data"][0]["attribute_value"])


@pytest.mark.parametrize(
    ("version", "cls"),
    [("1.6", Silent16), ("2.0.1", Silent201), ("1.6", Rebooting16), ("2.0.1", Rebooting201)],
)
async def test_a_station_that_may_have_taken_it_connects_with_either_until_it_uses_it(
    fresh_db_url: Callable[[str], str], version: str, cls: type[Any]
) -> None:
    async with serving(fresh_db_url("sqlite"), call_timeout=1) as (app, api):
        await api.post("/stations", {"id": "CS-MAYBE", "password": OLD}, 201)
        async with connect(
            app.server.port, "CS-MAYBE", version, password=OLD, station_class=cls
        ) as cp:
            assert await Driver(cp, version).boot() == "Accepted"
            if cls in (Silent16, Silent201):
                lost = await api.post("/stations/CS-MAYBE/password", expect=504)
                assert "password" not in lost.get("extra", {})
            else:
                body = await api.post("/stations/CS-MAYBE/password", expect=201)
                assert (body["sent"], body["pending"]) == (True, True)
            new = _sent_password(version, cp.received)
        station = (await api.get("/stations/CS-MAYBE"))["station"]
        assert (station["password_set"], station["password_pending"]) == (True, True)
        # the old password still admits it (the station restarted with it, or never took the
        # new one), and so does the new one, which is from then on the only one
        assert await _admitted(app.server.port, "CS-MAYBE", OLD)
        assert not await _admitted(app.server.port, "CS-MAYBE", "not-the-password-000")
        assert await _pending(api, "CS-MAYBE", True)  # the old one did not end it
        assert await _admitted(app.server.port, "CS-MAYBE", new)
        await wait_for(lambda: _pending(api, "CS-MAYBE", False), timeout=10)
        assert not await _admitted(app.server.port, "CS-MAYBE", OLD)
        assert await _admitted(app.server.port, "CS-MAYBE", new)
    # kept across a restart: a second node on the same database reads it
    async with serving(app.settings.db) as (again, _):
        assert await _admitted(again.server.port, "CS-MAYBE", new)
        assert not await _admitted(again.server.port, "CS-MAYBE", OLD)


async def test_a_pending_password_outlives_a_restart_and_a_new_one_replaces_it(
    fresh_db_url: Callable[[str], str],
) -> None:
    db = fresh_db_url("sqlite")
    async with serving(db, call_timeout=1) as (app, api):
        await api.post("/stations", {"id": "CS-TWICE", "password": OLD}, 201)
        async with connect(
            app.server.port, "CS-TWICE", "2.0.1", password=OLD, station_class=Silent201
        ) as cp:
            assert await Driver(cp, "2.0.1").boot() == "Accepted"
            await api.post("/stations/CS-TWICE/password", expect=504)
            first = _sent_password("2.0.1", cp.received)
    async with serving(db, call_timeout=1) as (app, api):
        assert await _pending(api, "CS-TWICE", True)
        async with connect(
            app.server.port, "CS-TWICE", "2.0.1", password=OLD, station_class=Silent201
        ) as cp:
            assert await Driver(cp, "2.0.1").boot() == "Accepted"
            await api.post("/stations/CS-TWICE/password", expect=504)
            second = _sent_password("2.0.1", cp.received)
        # only the latest password sent may be the station's: the first is refused
        assert not await _admitted(app.server.port, "CS-TWICE", first)
        assert await _admitted(app.server.port, "CS-TWICE", second)
        await wait_for(lambda: _pending(api, "CS-TWICE", False), timeout=10)
        # an operator's password replaces both
        await api.patch("/stations/CS-TWICE", {"password": "an-operator-chosen-pw"})
        assert not await _admitted(app.server.port, "CS-TWICE", second)


async def _pending(api: Api, station_id: str, expected: bool) -> bool:
    station = (await api.get(f"/stations/{station_id}"))["station"]
    return bool(station["password_pending"]) is expected


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
