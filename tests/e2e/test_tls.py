"""Security profiles 2 and 3 end to end: TLS with certificates made in the test, stations of the
`ocpp` package connecting over wss://, and every refusal logged with its reason.

TLS does not touch the database, so these run on SQLite only.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import websockets
from api_client import ADMIN_TOKEN, Api
from certs import ORG, Issued, TestCa, station_context, tls_node_settings
from ocpp.routing import on
from ocpp.v16 import call_result as result16
from stations import SUBPROTOCOL, Driver, Station16, connect
from test_handshake import basic
from websockets.exceptions import InvalidStatus

from chargegrid.adapters.transport.tls import TLS12_CIPHERS
from chargegrid.bootstrap import App, build

PASSWORD = "a-tls-station-pw-16"


class Pki:
    def __init__(self, folder: Path) -> None:
        self.ca = TestCa(folder)
        self.server = self.ca.issue("server", "localhost", server=True)
        self.rogue_ca = TestCa(folder, "Rogue Root")

    def station(self, station_id: str, **kw: Any) -> Issued:
        return self.ca.issue(f"station-{station_id}-{len(kw)}", station_id, **kw)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def tls_node(pki: Pki, fresh_db_url: Callable[[str], str]) -> AsyncIterator[App]:
    app = await build(
        tls_node_settings(
            fresh_db_url("sqlite"),
            pki.server,
            pki.ca.pem,
            call_timeout=5,
            admin_token=ADMIN_TOKEN,
            station_organization=ORG,
        )
    )
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def _profile(app: App, station_id: str, profile: int, password: str | None = None) -> None:
    if password is not None:
        await app.ocpp.set_password(station_id, password)
    await app.ocpp.set_security_profile(station_id, profile)


def _refusals(logs: list[dict[str, Any]]) -> list[str]:
    return [
        str(line["reason"])
        for line in logs
        if line["event"] in ("handshake refused", "TLS handshake refused")
    ]


async def _wss_refused(app: App, station_id: str, tls: ssl.SSLContext, **headers: str) -> Any:
    """The outcome of a wss:// handshake the server must refuse: its HTTP response if it got
    that far, else the exception that ended it."""
    try:
        async with websockets.connect(
            f"wss://127.0.0.1:{app.server.tls_port}/ocpp/{station_id}",
            subprotocols=[SUBPROTOCOL["1.6"]],  # type: ignore[list-item]
            additional_headers=headers,
            ssl=tls,
            open_timeout=5,
        ) as ws:
            await asyncio.wait_for(ws.recv(), 5)  # TLS 1.3 may report a refused cert here
    except InvalidStatus as exc:
        return exc.response
    except (OSError, websockets.ConnectionClosed, websockets.InvalidMessage) as exc:
        return exc
    raise AssertionError("the server let the station in")


# --- profile 2: TLS with a server certificate, Basic authentication ---------------------------


@pytest.mark.parametrize("tls_version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_profile_2_station_boots_over_tls(
    tls_node: App, pki: Pki, version: str, tls_version: ssl.TLSVersion
) -> None:
    await _profile(tls_node, "CS-TLS2", 2, PASSWORD)
    tls = station_context(pki.ca.pem, tls_version=tls_version)
    async with connect(
        tls_node.server.tls_port, "CS-TLS2", version, password=PASSWORD, tls=tls
    ) as cp:
        assert await Driver(cp, version).boot() == "Accepted"
        ssl_object = cp._connection.transport.get_extra_info("ssl_object")
        assert (
            ssl_object.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[tls_version.name]
        )
        if tls_version is ssl.TLSVersion.TLSv1_2:
            assert ssl_object.cipher()[0] in TLS12_CIPHERS.split(":")
    station = await tls_node.store.get_station("CS-TLS2")
    assert station is not None and station.registration.value == "Accepted"


async def test_profile_2_refuses_plain_ws_and_missing_passwords(tls_node: App, pki: Pki) -> None:
    await _profile(tls_node, "CS-TLS2", 2, PASSWORD)
    tls = station_context(pki.ca.pem)
    with structlog.testing.capture_logs() as logs:
        # below its profile: the right password, but over ws://
        with pytest.raises(InvalidStatus) as plain:
            async with connect(tls_node.server.port, "CS-TLS2", "1.6", password=PASSWORD):
                pass
        assert plain.value.response.status_code == 403
        no_password = await _wss_refused(tls_node, "CS-TLS2", tls)
        wrong = await _wss_refused(
            tls_node, "CS-TLS2", tls, **basic("CS-TLS2", "not-the-password-x")
        )
    assert (no_password.status_code, wrong.status_code) == (401, 401)
    assert _refusals(logs) == [
        "security profile 2 needs TLS; the connection has none",
        "authentication failed: password not sent",
        "authentication failed: password wrong",
    ]
    assert PASSWORD not in repr(logs) and "not-the-password-x" not in repr(logs)


# --- profile 3: TLS with client certificates --------------------------------------------------


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_profile_3_station_boots_with_its_certificate(
    tls_node: App, pki: Pki, version: str
) -> None:
    await _profile(tls_node, "CS-MTLS", 3)
    tls = station_context(pki.ca.pem, pki.station("CS-MTLS"))
    async with connect(tls_node.server.tls_port, "CS-MTLS", version, tls=tls) as cp:
        assert await Driver(cp, version).boot() == "Accepted"
        assert tls_node.server.get("CS-MTLS") is not None


@pytest.mark.parametrize("tls_version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_profile_3_refusals_are_logged_with_their_reason(
    tls_node: App, pki: Pki, tls_version: ssl.TLSVersion
) -> None:
    await _profile(tls_node, "CS-MTLS", 3)

    def ctx(client: Issued | None) -> ssl.SSLContext:
        return station_context(pki.ca.pem, client, tls_version=tls_version)

    with structlog.testing.capture_logs() as logs:
        rogue = await _wss_refused(tls_node, "CS-MTLS", ctx(pki.rogue_ca.issue("rogue", "CS-MTLS")))
        expired = await _wss_refused(tls_node, "CS-MTLS", ctx(pki.station("CS-MTLS", expired=True)))
        other = await _wss_refused(tls_node, "CS-MTLS", ctx(pki.station("CS-OTHER")))
        foreign_org = await _wss_refused(
            tls_node, "CS-MTLS", ctx(pki.station("CS-MTLS", org="Someone Else"))
        )
        no_cert = await _wss_refused(tls_node, "CS-MTLS", ctx(None))
        with pytest.raises(InvalidStatus) as plain:
            async with connect(tls_node.server.port, "CS-MTLS", "2.0.1"):
                pass
    assert isinstance(rogue, Exception) and isinstance(expired, Exception)
    assert [r.status_code for r in (other, foreign_org, no_cert, plain.value.response)] == [403] * 4
    reasons = _refusals(logs)
    assert reasons[0].startswith("client certificate refused: unable to get local issuer")
    assert reasons[1] == "client certificate refused: certificate has expired"
    assert reasons[2:] == [
        "client certificate names 'CS-OTHER', not this station",
        "client certificate is of organization 'Someone Else', not 'Chargegrid Test CPO'",
        "security profile 3 needs a client certificate; none was presented",
        "security profile 3 needs TLS; the connection has none",
    ]
    assert tls_node.server.get("CS-MTLS") is None
    assert tls_node.server.stats.refused_handshakes == 6


async def test_a_certificate_for_another_station_is_refused_at_any_profile(
    tls_node: App, pki: Pki
) -> None:
    await _profile(tls_node, "CS-TLS2", 2, PASSWORD)
    tls = station_context(pki.ca.pem, pki.station("CS-OTHER"))
    refused = await _wss_refused(tls_node, "CS-TLS2", tls, **basic("CS-TLS2", PASSWORD))
    assert refused.status_code == 403


async def test_plain_websocket_to_the_tls_port_is_refused_and_logged(tls_node: App) -> None:
    refused = pytest.raises((OSError, websockets.InvalidMessage, websockets.ConnectionClosed))
    with structlog.testing.capture_logs() as logs, refused:
        async with websockets.connect(
            f"ws://127.0.0.1:{tls_node.server.tls_port}/ocpp/CS-PLAIN",
            subprotocols=[SUBPROTOCOL["1.6"]],  # type: ignore[list-item]
            open_timeout=5,
        ):
            pass
    assert _refusals(logs) == ["not TLS: the client spoke plain HTTP / ws:// to the TLS port"]


async def test_profile_1_and_0_stations_may_use_tls_too(tls_node: App, pki: Pki) -> None:
    await _profile(tls_node, "CS-P1", 1, PASSWORD)
    tls = station_context(pki.ca.pem)
    async with connect(tls_node.server.tls_port, "CS-P1", "1.6", password=PASSWORD, tls=tls) as cp:
        assert await Driver(cp, "1.6").boot() == "Accepted"
    async with connect(tls_node.server.tls_port, "CS-P0", "2.0.1", tls=tls) as cp:
        assert await Driver(cp, "2.0.1").boot() == "Accepted"


# --- moving a station up a profile through the API --------------------------------------------


@pytest.fixture
async def api(tls_node: App) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{tls_node.api.port}", timeout=10
    ) as client:
        yield Api(client, ADMIN_TOKEN)


class Declining16(Station16):  # type: ignore[misc]
    @on("ChangeConfiguration")
    def on_change_configuration(self, **kwargs: Any) -> Any:
        self.received.append(("ChangeConfiguration", kwargs))
        return result16.ChangeConfiguration(status="NotSupported")


async def test_a_16_station_moves_up_to_profile_2(tls_node: App, pki: Pki, api: Api) -> None:
    await _profile(tls_node, "CS-UP16", 1, PASSWORD)
    path = "/stations/CS-UP16/security-profile"
    async with connect(tls_node.server.port, "CS-UP16", "1.6", password=PASSWORD) as cp:
        assert await Driver(cp, "1.6").boot() == "Accepted"
        operator = (await api.post("/api-tokens", {"name": "o", "role": "operator"}, 201))["token"]
        await api.as_(operator).post(path, {"profile": 2}, expect=403)  # admins only
        await api.post(path, {"profile": 1}, expect=409)  # not up
        answer = await api.post(path, {"profile": 2})
        assert answer["station"]["security_profile"] == 2
        assert answer["steps"] == [
            {
                "operation": "ChangeConfiguration",
                "request": {"key": "SecurityProfile", "value": "2"},
                "response": {"status": "Accepted"},
            }
        ]
        assert ("ChangeConfiguration", {"key": "SecurityProfile", "value": "2"}) in cp.received
    # the station reconnects at its new profile; its old way in is closed
    with pytest.raises(InvalidStatus) as plain:
        async with connect(tls_node.server.port, "CS-UP16", "1.6", password=PASSWORD):
            pass
    assert plain.value.response.status_code == 403
    tls = station_context(pki.ca.pem)
    async with connect(
        tls_node.server.tls_port, "CS-UP16", "1.6", password=PASSWORD, tls=tls
    ) as cp:
        assert await Driver(cp, "1.6").boot() == "Accepted"


async def test_a_201_station_moves_up_to_profile_3(tls_node: App, pki: Pki, api: Api) -> None:
    await _profile(tls_node, "CS-UP201", 2, PASSWORD)
    tls = station_context(pki.ca.pem)
    url = f"wss://127.0.0.1:{tls_node.server.tls_port}/ocpp/"
    path = "/stations/CS-UP201/security-profile"
    async with connect(
        tls_node.server.tls_port, "CS-UP201", "2.0.1", password=PASSWORD, tls=tls
    ) as cp:
        assert await Driver(cp, "2.0.1").boot() == "Accepted"
        refused = await api.post(path, {"profile": 3}, expect=409)  # no URL for 2.0.1
        assert "csms_url" in refused["detail"]
        answer = await api.post(
            path, {"profile": 3, "csms_url": url, "configuration_slot": 2, "fallback_slots": [1]}
        )
        assert [s["operation"] for s in answer["steps"]] == [
            "SetNetworkProfile",
            "SetVariables",
            "Reset",
        ]
        sent = dict(cp.received)
        assert sent["SetNetworkProfile"]["configuration_slot"] == 2
        assert sent["SetNetworkProfile"]["connection_data"]["security_profile"] == 3
        assert sent["SetNetworkProfile"]["connection_data"]["ocpp_csms_url"] == url
        assert sent["SetVariables"]["set_variable_data"][0]["attribute_value"] == "2,1"
        assert sent["Reset"] == {"type": "OnIdle"}
    assert (await api.get("/stations/CS-UP201"))["station"]["security_profile"] == 3
    client = station_context(pki.ca.pem, pki.station("CS-UP201"))
    async with connect(tls_node.server.tls_port, "CS-UP201", "2.0.1", tls=client) as cp:
        assert await Driver(cp, "2.0.1").boot() == "Accepted"


async def test_a_declined_profile_change_keeps_the_old_profile(tls_node: App, api: Api) -> None:
    path = "/stations/CS-NO/security-profile"
    async with connect(tls_node.server.port, "CS-NO", "1.6", station_class=Declining16) as cp:
        assert await Driver(cp, "1.6").boot() == "Accepted"
        no_password = await api.post(path, {"profile": 2}, expect=409)
        assert no_password["detail"] == (
            "security profile 2 needs the station's password: set it first"
        )
        assert cp.received == []  # nothing was sent
        await api.patch("/stations/CS-NO", {"password": PASSWORD})
        declined = await api.post(path, {"profile": 2}, expect=409)
        assert declined["detail"] == "the station answered ChangeConfiguration with NotSupported"
        assert declined["extra"]["steps"][0]["response"] == {"status": "NotSupported"}
    station = await api.get("/stations/CS-NO")
    assert station["station"]["security_profile"] == 0
    await api.post("/stations/CS-GONE/security-profile", {"profile": 2}, expect=404)


def test_the_tls_port_under_uvloop(pki: Pki, fresh_db_url: Callable[[str], str]) -> None:
    """``chargegrid serve`` runs on uvloop, whose transports are not asyncio's classes."""
    uvloop = pytest.importorskip("uvloop", reason="uvloop is not built for this platform")

    async def scenario() -> None:
        app = await build(tls_node_settings(fresh_db_url("sqlite"), pki.server, pki.ca.pem))
        await app.start()
        try:
            assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
            await _profile(app, "CS-UV2", 2, PASSWORD)
            await _profile(app, "CS-UV3", 3)
            plain = station_context(pki.ca.pem)
            async with connect(
                app.server.tls_port, "CS-UV2", "1.6", password=PASSWORD, tls=plain
            ) as cp:
                assert await Driver(cp, "1.6").boot() == "Accepted"
            mine = station_context(pki.ca.pem, pki.station("CS-UV3"))
            async with connect(app.server.tls_port, "CS-UV3", "2.0.1", tls=mine) as cp:
                assert await Driver(cp, "2.0.1").boot() == "Accepted"
        finally:
            await app.stop()

    uvloop.run(scenario())


async def test_lowering_security_needs_an_admin_and_raising_it_drops_the_connection(
    tls_node: App, pki: Pki, api: Api
) -> None:
    operator = (await api.post("/api-tokens", {"name": "o", "role": "operator"}, 201))["token"]
    await _profile(tls_node, "CS-DOWN", 2, PASSWORD)
    refused = await api.as_(operator).patch("/stations/CS-DOWN", {"security_profile": 0}, 403)
    assert "admin" in refused["detail"]
    await api.as_(operator).patch("/stations/CS-DOWN", {"password": None}, 403)
    station = (await api.get("/stations/CS-DOWN"))["station"]
    assert (station["security_profile"], station["password_set"]) == (2, True)

    await _profile(tls_node, "CS-UP", 1, PASSWORD)
    async with connect(tls_node.server.port, "CS-UP", "1.6", password=PASSWORD) as cp:
        assert await Driver(cp, "1.6").boot() == "Accepted"
        await api.as_(operator).patch("/stations/CS-UP", {"security_profile": 2})
        async with asyncio.timeout(5):
            await cp._connection.wait_closed()
        assert cp._connection.close_code == 1008
    assert tls_node.server.get("CS-UP") is None
