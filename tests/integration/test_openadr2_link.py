"""The OpenADR 2.0b link on loopback: a VTN that is not there yet is tried again until it
answers (openleadr itself gives up after one try), and a link stops cleanly either way."""

from __future__ import annotations

import asyncio
import socket
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.web_exceptions import NotAppKeyWarning
from openleadr import OpenADRServer

from chargegrid.adapters.openadr2 import ClientOptions, OpenAdr2Link, VenError
from chargegrid.domain.site import Circuit, Site
from chargegrid.service.openadr2 import Ven
from chargegrid.testing.fakes import FixedClock


class _Grid:
    def set_timeline(self, site_id: str, source: str, blocks: Any) -> None: ...

    def set_prices(self, site_id: str, source: str, blocks: Any) -> None: ...

    def site_power_w(self, site_id: str, circuit: str | None = None) -> float:
        return 0.0


class _Sites:
    def get(self, site_id: str) -> Site:
        return Site(site_id, (Circuit("grid", None, 32.0),))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _vtn(port: int) -> OpenADRServer:
    async def on_create_party_registration(info: dict[str, Any]) -> tuple[str, str]:
        return "ven-1", "reg-1"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotAppKeyWarning)  # openleadr's VTN, the test's peer
        server = OpenADRServer(
            vtn_id="VTN",
            http_host="127.0.0.1",
            http_port=port,
            requested_poll_freq=timedelta(seconds=1),
            ven_lookup=lambda ven_id: {"ven_id": "ven-1", "registration_id": "reg-1"},
        )
    server.add_handler("on_create_party_registration", on_create_party_registration)
    return server


async def _until(predicate: Any, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_a_vtn_that_comes_late_is_registered_at() -> None:
    port = _free_port()
    ven = Ven(_Grid(), _Sites(), FixedClock(), "vtn", "depot")
    url = f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b"
    link = OpenAdr2Link(ven, ClientOptions(url, "chargegrid-test"), retry_s=0.2)
    await link.start()
    server = _vtn(port)
    try:
        await asyncio.sleep(0.7)  # a few attempts at nobody
        assert not link.registered
        await server.run()
        assert await _until(lambda: link.registered, timeout=10)
        assert link.client.ven_id == "ven-1"
    finally:
        await link.stop()
        await server.stop()


async def test_a_link_that_never_registered_stops() -> None:
    ven = Ven(_Grid(), _Sites(), FixedClock(), "vtn", "depot")
    url = f"http://127.0.0.1:{_free_port()}/OpenADR2/Simple/2.0b"
    link = OpenAdr2Link(ven, ClientOptions(url, "chargegrid-test"), retry_s=0.1)
    await link.start()
    await asyncio.sleep(0.3)
    await link.stop()
    assert not link.registered


async def test_a_certificate_that_cannot_be_read_fails_the_start(tmp_path: Path) -> None:
    ven = Ven(_Grid(), _Sites(), FixedClock(), "vtn", "depot")
    missing = str(tmp_path / "ven.pem")
    options = ClientOptions("https://vtn.example", "cg", cert=missing, key=missing, ca=missing)
    link = OpenAdr2Link(ven, options)
    with pytest.raises(VenError, match="cannot build the OpenADR client"):
        await link.start()
    await link.stop()
