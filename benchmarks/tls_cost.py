"""What TLS costs a node: connecting stations and serving their messages over ws:// (profile 1),
wss:// (profile 2) and wss:// with client certificates (profile 3), in one process, as ratios
against ws://.

    python benchmarks/tls_cost.py [--stations 200] [--messages 20]

Each run starts one chargegrid node on uvloop, as ``chargegrid serve`` does (SQLite in a
temporary folder), with a TLS port, a test CA,
a server certificate and a client certificate per station, all made here. For each profile:
``--stations`` stations connect (20 at a time) and boot; the time per connection is the
handshake cost (TCP, TLS, HTTP upgrade, authentication, BootNotification). Then each sends
``--messages`` Heartbeats one after another, all stations at once; messages per second is the
steady-state cost. The client's work (websockets in the same process) is in every figure alike.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import websockets

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "e2e"))

from certs import TestCa, station_context, tls_node_settings

from chargegrid.bootstrap import App, build
from chargegrid.entrypoints import logs

PASSWORD = "benchmark-password-16"  # noqa: S105 - a benchmark station's, made up
BOOT = {"chargePointVendor": "bench", "chargePointModel": "tls"}


async def _station(url: str, station_id: str, tls: Any, basic: bool) -> Any:
    headers = {}
    if basic:
        token = base64.b64encode(f"{station_id}:{PASSWORD}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    ws = await websockets.connect(
        f"{url}/ocpp/{station_id}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers=headers,
        ssl=tls,
        open_timeout=30,
    )
    await _call(ws, "BootNotification", BOOT)
    return ws


async def _call(ws: Any, action: str, payload: dict[str, Any]) -> None:
    await ws.send(json.dumps([2, "1", action, payload]))
    answer = json.loads(await ws.recv())
    assert answer[0] == 3, answer


async def _run(
    app: App, profile: int, stations: int, messages: int, tls_of: Any
) -> dict[str, float]:
    secure = profile >= 2
    port = app.server.tls_port if secure else app.server.port
    url = f"{'wss' if secure else 'ws'}://127.0.0.1:{port}"
    ids = [f"P{profile}-{n:05}" for n in range(stations)]
    for station_id in ids:
        if profile < 3:
            await app.ocpp.set_password(station_id, PASSWORD)
        await app.ocpp.set_security_profile(station_id, profile)
    gate = asyncio.Semaphore(20)

    async def connect(station_id: str) -> Any:
        async with gate:
            return await _station(url, station_id, tls_of(station_id), profile < 3)

    started = time.perf_counter()
    sockets = await asyncio.gather(*(connect(s) for s in ids))
    connected = time.perf_counter() - started

    async def beat(ws: Any) -> None:
        for _ in range(messages):
            await _call(ws, "Heartbeat", {})

    started = time.perf_counter()
    await asyncio.gather(*(beat(ws) for ws in sockets))
    served = time.perf_counter() - started
    await asyncio.gather(*(ws.close() for ws in sockets))
    return {
        "connect_ms": connected / stations * 1000,
        "msg_per_s": stations * messages / served,
    }


async def main(stations: int, messages: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ca = TestCa(folder)
        server = ca.issue("server", "localhost", server=True)
        clients = {f"P3-{n:05}": ca.issue(f"c{n}", f"P3-{n:05}") for n in range(stations)}
        app = await build(
            tls_node_settings(
                f"sqlite:///{folder / 'bench.db'}",
                server,
                ca.pem,
                message_log_days=0,
                boot_rate=0,  # each connection's BootNotification is measured: no pacing
            )
        )
        await app.start()
        try:
            plain = station_context(ca.pem)
            results = {
                1: await _run(app, 1, stations, messages, lambda _: None),
                2: await _run(app, 2, stations, messages, lambda _: plain),
                3: await _run(
                    app, 3, stations, messages, lambda s: station_context(ca.pem, clients[s])
                ),
            }
        finally:
            await app.stop()
    base = results[1]
    print(f"{stations} stations, {messages} Heartbeats each; ratios against profile 1 (ws://)")
    print(f"{'profile':<28}{'connect+boot ms':>16}{'x ws':>8}{'msg/s':>10}{'x ws':>8}")
    names = {1: "1  ws:// + Basic", 2: "2  wss:// + Basic", 3: "3  wss:// + client cert"}
    for profile, figures in results.items():
        print(
            f"{names[profile]:<28}{figures['connect_ms']:>16.2f}"
            f"{figures['connect_ms'] / base['connect_ms']:>8.2f}"
            f"{figures['msg_per_s']:>10.0f}{figures['msg_per_s'] / base['msg_per_s']:>8.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()
    logs.configure("warning")
    try:  # as `chargegrid serve` runs
        import uvloop
    except ImportError:  # pragma: no cover - not built for Windows
        asyncio.run(main(args.stations, args.messages))
    else:
        uvloop.run(main(args.stations, args.messages))
