"""The WebSocket handshake: OCPP version negotiation, paths, Basic auth, and shutdown.

OCPP-J 1.6 section 3 / OCPP 2.0.1 Part 4 section 3 (connection URL, subprotocols); the security
whitepaper section 2 / OCPP 2.0.1 Part 2 A00 (security profile 1: HTTP Basic authentication).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import picows
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from chargegrid.bootstrap import App, build
from chargegrid.domain.passwords import PasswordRuleError
from chargegrid.entrypoints.settings import Settings

PASSWORD = "a-sixteen-char-pw!"
BOOT = {
    "ocpp1.6": {"chargePointVendor": "ACME", "chargePointModel": "Wallbox-1"},
    "ocpp2.0.1": {
        "chargingStation": {"vendorName": "ACME", "model": "Wallbox-2"},
        "reason": "PowerUp",
    },
}


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def open_ws(
    port: int,
    path: str,
    subprotocols: tuple[str, ...] = ("ocpp1.6",),
    headers: dict[str, str] | None = None,
) -> Any:
    return websockets.connect(
        f"ws://127.0.0.1:{port}{path}",
        subprotocols=list(subprotocols),  # type: ignore[arg-type]
        additional_headers=headers or {},
        open_timeout=5,
    )


async def refused(
    port: int,
    path: str,
    subprotocols: tuple[str, ...] = ("ocpp1.6",),
    headers: dict[str, str] | None = None,
) -> Any:
    """The HTTP response of a handshake the server must refuse."""
    with pytest.raises(InvalidStatus) as caught:
        async with open_ws(port, path, subprotocols, headers):
            pass
    return caught.value.response


async def boot(ws: Any) -> str:
    await ws.send(json.dumps([2, "boot-1", "BootNotification", BOOT[ws.subprotocol]]))
    async with asyncio.timeout(5):
        answer = json.loads(await ws.recv())
    assert answer[:2] == [3, "boot-1"]
    return str(answer[2]["status"])


@asynccontextmanager
async def node(settings: Settings, **changes: Any) -> AsyncIterator[App]:
    app = await build(replace(settings, **changes))
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


# --- version negotiation and paths ------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "chosen", "version"),
    [
        (("ocpp2.0.1", "ocpp1.6"), "ocpp2.0.1", "2.0.1"),
        (("ocpp1.6",), "ocpp1.6", "1.6"),
        (("ocpp1.5", "ocpp1.6"), "ocpp1.6", "1.6"),
        (("ocpp2.0.1",), "ocpp2.0.1", "2.0.1"),
    ],
)
async def test_subprotocol_negotiation(
    app: App, offered: tuple[str, ...], chosen: str, version: str
) -> None:
    async with open_ws(app.server.port, "/ocpp/CS-NEG", offered) as ws:
        assert ws.subprotocol == chosen
        assert await boot(ws) == "Accepted"  # the version's own BootNotification is understood
    station = await app.store.get_station("CS-NEG")
    assert station is not None and station.ocpp_version == version


@pytest.mark.parametrize("offered", [("ocpp1.5",), ("ocpp2.1x", "soap"), ()])
async def test_no_common_subprotocol_is_refused(app: App, offered: tuple[str, ...]) -> None:
    response = await refused(app.server.port, "/ocpp/CS-OLD", offered)
    assert response.status_code == 400
    assert app.server.get("CS-OLD") is None


@pytest.mark.parametrize("path", ["/central/CS-1", "/CS-1", "/ocpp/", "/ocpp/CS-1/extra"])
async def test_unknown_path_is_not_found(app: App, path: str) -> None:
    response = await refused(app.server.port, path)
    assert response.status_code == 404
    assert app.server.connections == {}


async def test_station_id_under_any_configured_prefix(settings: Settings) -> None:
    async with node(settings, path_prefixes=("/ocpp", "/cs/v1")) as app:
        port = app.server.port
        async with open_ws(port, "/cs/v1/CS-NEW"), open_ws(port, "/ocpp/CS-OLD"):
            assert sorted(app.server.connections) == ["CS-NEW", "CS-OLD"]
        assert (await refused(port, "/cs/CS-NEW")).status_code == 404
        assert (await refused(port, "/cs/v2/CS-NEW")).status_code == 404


# --- security profile 1: HTTP Basic authentication --------------------------------------------


async def test_basic_auth(app: App) -> None:
    await app.ocpp.set_password("CS-P", PASSWORD)
    # the station record is created under the unknown-station policy (accept, in this fixture)
    port = app.server.port
    for headers in (
        None,
        basic("CS-P", "a-wrong-password-xx"),
        basic("CS-OTHER", PASSWORD),  # the user name must be the station id
        {"Authorization": "Basic not base64!"},
        {"Authorization": f"Bearer {PASSWORD}"},
    ):
        response = await refused(port, "/ocpp/CS-P", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    async with open_ws(port, "/ocpp/CS-P", headers=basic("CS-P", PASSWORD)) as ws:
        assert await boot(ws) == "Accepted"
        assert app.server.get("CS-P") is not None
    # Stations without a password are still let in: require_auth is off.
    async with open_ws(port, "/ocpp/CS-FREE") as ws:
        assert await boot(ws) == "Accepted"


@pytest.mark.parametrize("password", ["short-pw", "x" * 41, "sixteen chars pw", "sixteen-chärs-pw"])
async def test_password_breaking_the_rules_is_refused(app: App, password: str) -> None:
    with pytest.raises(PasswordRuleError):
        await app.ocpp.set_password("CS-WEAK", password)
    assert await app.store.get_station("CS-WEAK") is None
    async with open_ws(app.server.port, "/ocpp/CS-WEAK") as ws:  # nothing was set
        assert ws.subprotocol == "ocpp1.6"


async def test_require_auth_refuses_stations_without_a_password(settings: Settings) -> None:
    async with node(settings, require_auth=True) as app:
        port = app.server.port
        assert (await refused(port, "/ocpp/CS-ANON")).status_code == 401
        assert (
            await refused(port, "/ocpp/CS-ANON", headers=basic("CS-ANON", PASSWORD))
        ).status_code == 401
        await app.ocpp.set_password("CS-KNOWN", PASSWORD)
        async with open_ws(port, "/ocpp/CS-KNOWN", headers=basic("CS-KNOWN", PASSWORD)):
            assert app.server.get("CS-KNOWN") is not None


# --- shutdown ---------------------------------------------------------------------------------


async def test_graceful_shutdown_closes_every_station_with_going_away(settings: Settings) -> None:
    app = await build(settings)
    await app.start()
    port = app.server.port
    first = await open_ws(port, "/ocpp/CS-A", ("ocpp1.6",))
    second = await open_ws(port, "/ocpp/CS-B", ("ocpp2.0.1",))
    stopped = False
    try:
        assert await boot(first) == "Accepted" and await boot(second) == "Accepted"
        async with asyncio.timeout(5):
            stopped = True
            await app.stop()
            await asyncio.gather(first.wait_closed(), second.wait_closed())
        assert (first.close_code, second.close_code) == (1001, 1001)
        assert first.close_reason == "server shutting down"
        with pytest.raises(ConnectionRefusedError):
            async with open_ws(port, "/ocpp/CS-C"):
                pass
    finally:
        await first.close()
        await second.close()
        if not stopped:
            await app.stop()


# --- keep-alive -----------------------------------------------------------------------------


class _PingCounter(picows.WSListener):
    """A client that counts the server's pings and, unless told to, answers them."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.pings = 0
        self.gone = asyncio.Event()

    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type == picows.WSMsgType.PING:
            self.pings += 1
            if self.answer:
                transport.send_pong(frame.get_payload_as_bytes())

    def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
        self.gone.set()


@pytest.mark.parametrize("answer", [True, False])
async def test_ping_keeps_live_stations_and_drops_silent_ones(
    settings: Settings, answer: bool
) -> None:
    node = await build(replace(settings, ping_interval=0.2))
    await node.start()
    try:
        listener = _PingCounter(answer)
        transport, _ = await picows.ws_connect(
            lambda: listener,
            f"ws://127.0.0.1:{node.server.port}/ocpp/CS-PING",
            enable_auto_pong=False,
            extra_headers={"Sec-WebSocket-Protocol": "ocpp1.6"},
        )
        try:
            if answer:
                await asyncio.sleep(1.0)
                assert listener.pings >= 2
                assert not listener.gone.is_set()
                assert node.server.get("CS-PING") is not None
            else:
                await asyncio.wait_for(listener.gone.wait(), 3)
                assert listener.pings >= 1
        finally:
            transport.disconnect()
    finally:
        await node.stop()


async def test_oversized_fragmented_message_closes_with_1009(app: App) -> None:
    async with websockets.connect(
        f"ws://127.0.0.1:{app.server.port}/ocpp/CS-BIG",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
    ) as ws:
        chunk = "x" * 600_000  # each frame is allowed; together they pass the 1 MiB message limit
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(iter([chunk, chunk, chunk]))
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 1009
