"""Cluster mode end to end: three ``chargegrid serve --cluster`` processes on one PostgreSQL
database and the NATS server at 127.0.0.1:4222, stations of both OCPP versions on each.

It checks that a command sent through any node's API reaches a station on any other node and
returns its answer; that every node's event stream shows every node's events; that a node killed
with SIGKILL mid-run loses nothing it acknowledged, that its stations carry on on the other nodes
with their transactions, and that a command in flight to it fails fast with a clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from ocpp.routing import on
from ocpp.v16 import call_result as result16
from stations import Driver, Station16, connect
from test_durability import free_port, wait_listening

from chargegrid.adapters.storage.migrate import normalize_url, upgrade
from chargegrid.adapters.storage.store import open_store
from chargegrid.domain.model import TransactionState

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

NATS = ("127.0.0.1", 4222)
TOKEN = "cluster-admin-token-0123456789"
CLUSTER_SECRET = "cluster-secret-0123456789abcdef-0123"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def nats_server() -> str:
    try:
        socket.create_connection(NATS, timeout=1).close()
    except OSError as exc:
        pytest.skip(f"no NATS server at {NATS[0]}:{NATS[1]}: {exc}")
    return f"nats://{NATS[0]}:{NATS[1]}"


@dataclass
class Node:
    name: str
    ocpp_port: int
    api_port: int
    proc: asyncio.subprocess.Process
    log: Path

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api/v1"


async def start_nodes(count: int, db: str, nats: str, tmp: Path) -> list[Node]:
    """``count`` nodes, started at once; if one cannot start, those that did are stopped."""
    started = await asyncio.gather(
        *(start_node(f"n{i}", db, nats, tmp) for i in range(count)), return_exceptions=True
    )
    nodes = [n for n in started if isinstance(n, Node)]
    failed = [e for e in started if isinstance(e, BaseException)]
    if failed:
        for node in nodes:
            node.proc.kill()
            await node.proc.wait()
        raise failed[0]
    return nodes


async def start_node(name: str, db: str, nats: str, tmp: Path, tries: int = 3) -> Node:
    """A node on free ports; started again on others if a port was taken meanwhile (a port
    found free is not reserved until the node binds it)."""
    for attempt in range(tries):
        try:
            return await _start_node(name, db, nats, tmp)
        except AssertionError:
            log = (tmp / f"{name}.log").read_text(errors="replace")
            if "address already in use" not in log or attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


async def _start_node(name: str, db: str, nats: str, tmp: Path) -> Node:
    ocpp_port, api_port = free_port(), free_port()
    log = tmp / f"{name}.log"
    env = dict(os.environ, CHARGEGRID_ADMIN_TOKEN=TOKEN, CHARGEGRID_CLUSTER_SECRET=CLUSTER_SECRET)
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "chargegrid.entrypoints.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--ocpp-port",
            str(ocpp_port),
            "--api-port",
            str(api_port),
            "--db",
            db,
            "--cluster",
            nats,
            "--cluster-dead-after",
            "4",  # a quiet test machine: the 504 below comes sooner than the default 10 s
            "--unknown-stations",
            "accept",
            "--ping-interval",
            "0",
            "--call-timeout",
            "10",
            "--message-log-days",
            "0",
            "--log-level",
            "info",
            stdout=out,
            stderr=out,
            cwd=tmp,
            env=env,
        )
    node = Node(name, ocpp_port, api_port, proc, log)
    try:
        await wait_listening(ocpp_port, proc)
        await wait_listening(api_port, proc)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return node


async def metric(client: httpx.AsyncClient, node: Node, name: str) -> float:
    text = (await client.get(f"http://127.0.0.1:{node.api_port}/metrics", headers=HEADERS)).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in {node.name}'s /metrics")


async def eventually(check: Any, timeout: float = 15.0, what: Any = "") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what() if callable(what) else what}")
        await asyncio.sleep(0.1)


class SlowStation16(Station16):  # type: ignore[misc]
    """Answers DataTransfer only after 30 s: a command to it is in flight for that long."""

    @on("DataTransfer")
    async def on_DataTransfer(self, **kwargs: Any) -> Any:
        self.received.append(("DataTransfer", kwargs))
        await asyncio.sleep(30)
        return result16.DataTransfer(status="Accepted")


@dataclass
class Charging:
    """A station charging on whichever node it is connected to; what was acknowledged."""

    station_id: str
    version: str
    tx_id: str = ""
    meter_wh: int = 1000
    readings: int = 0  # meter values acknowledged
    node: str = ""
    cp: Any = None
    moves: int = 0
    stopped: bool = False
    errors: list[str] = field(default_factory=list)


async def charge(
    station: Charging, node: Node, stop: asyncio.Event, moved: asyncio.Event | None
) -> None:
    """Connect to ``node``, boot, start (first time) or resume the transaction, send meter
    values until ``stop``; the connection dropping ends it (the caller reconnects)."""
    async with connect(node.ocpp_port, station.station_id, station.version) as cp:
        station.cp, station.node = cp, node.name
        driver = Driver(cp, station.version)
        driver._seq = 1000 * station.moves  # 2.0.1 seqNo keeps rising across connections
        assert await driver.boot() == "Accepted"
        busy = "Charging" if station.version == "1.6" else "Occupied"
        await driver.status(1, busy if station.tx_id else "Available")
        if not station.tx_id:
            tag = f"TAG-{station.station_id}"
            # an unknown token is Invalid to the station, and the transaction is kept all the same
            station.tx_id, _ = await driver.start(tag, 1000, tx_id=f"{station.station_id}-tx")
        if moved is not None:
            moved.set()
        while not stop.is_set():
            wh = station.meter_wh + 10
            await driver.meter(station.tx_id, wh)
            station.meter_wh, station.readings = wh, station.readings + 1
            await asyncio.sleep(0.05)
        await driver.stop(station.tx_id, station.meter_wh + 10)
        station.meter_wh += 10
        station.stopped = True


async def run_station(
    station: Charging, nodes: list[Node], first: Node, stop: asyncio.Event
) -> None:
    """Charge on ``first``; when its node goes, reconnect to the next live one, as a station
    behind a load balancer would."""
    node = first
    while not station.stopped:
        moved = asyncio.Event() if station.moves else None
        try:
            await charge(station, node, stop, moved)
        except Exception as exc:  # the node died under it: the connection is gone
            station.errors.append(f"{node.name}: {exc!r}")
        if station.stopped:
            return
        live = [n for n in nodes if n.proc.returncode is None and n is not node]
        assert live, "no node left"
        node = live[station.moves % len(live)]
        station.moves += 1
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def event_stream(node: Node, seen: list[dict[str, Any]]) -> AsyncIterator[None]:
    async def read() -> None:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=None)) as client,
            client.stream("GET", f"{node.api}/events", headers=HEADERS) as response,
        ):
            kind = ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind:
                    seen.append({"type": kind, **json.loads(line[6:])})

    task = asyncio.create_task(read())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def command(
    client: httpx.AsyncClient, node: Node, station_id: str, timeout: float = 10
) -> httpx.Response:
    return await client.post(
        f"{node.api}/stations/{station_id}/commands/DataTransfer",
        json={"vendorId": "chargegrid.test", "data": "ping"},
        params={"timeout": timeout},
        headers=HEADERS,
    )


async def test_three_nodes_commands_events_and_a_node_killed(
    pg_empty_database: str, nats_server: str, tmp_path: Path
) -> None:
    db = pg_empty_database
    await asyncio.to_thread(upgrade, normalize_url(db))  # once, before the nodes start
    nodes: list[Node] = []
    stop = asyncio.Event()
    try:
        nodes = await start_nodes(3, db, nats_server, tmp_path)
        async with httpx.AsyncClient(timeout=30) as client:
            for node in nodes:  # every node sees the two others
                await eventually(
                    lambda n=node: _equals(metric(client, n, "chargegrid_cluster_peers"), 2),
                    what=f"{node.name} sees its peers",
                )
            assert (
                sum([await metric(client, n, "chargegrid_cluster_lease_held") for n in nodes]) == 1
            )

            seen: list[dict[str, Any]] = []
            async with event_stream(nodes[0], seen):
                await asyncio.sleep(0.3)  # the stream is open before the stations start
                stations = [
                    Charging(f"C{i}-{v.replace('.', '')}", v)
                    for i in range(3)
                    for v in ("1.6", "2.0.1")
                ]
                runs = [
                    asyncio.create_task(run_station(s, nodes, nodes[int(s.station_id[1])], stop))
                    for s in stations
                ]
                await eventually(
                    _async(lambda: all(s.readings >= 3 for s in stations)),
                    what=lambda: f"charging: {stations}",
                )

                # Commands through every node to stations on every node.
                for via in nodes:
                    for station in stations:
                        before = len(station.cp.received)
                        answer = await command(client, via, station.station_id)
                        assert answer.status_code == 200, (
                            via.name,
                            station.station_id,
                            answer.text,
                        )
                        assert answer.json()["response"]["status"] == "Accepted"
                        assert len(station.cp.received) == before + 1
                        assert station.cp.received[-1][0] == "DataTransfer"

                # A station no node holds: refused at once, not after a timeout.
                made = await client.post(
                    f"{nodes[0].api}/stations", json={"id": "GHOST"}, headers=HEADERS
                )
                assert made.status_code == 201, made.text
                started = time.monotonic()
                ghost = await command(client, nodes[1], "GHOST")
                assert ghost.status_code == 409, ghost.text
                assert time.monotonic() - started < 2

                # Node n0's stream shows the transactions started on n1 and n2 too.
                await eventually(
                    _async(
                        lambda: (
                            {e["station_id"] for e in seen if e["type"] == "transaction.started"}
                            >= {s.station_id for s in stations}
                        )
                    ),
                    what="every node's transaction.started on n0's stream",
                )

            # A command in flight to n2 when n2 is killed; n2's stations keep charging elsewhere.
            victim = nodes[2]
            async with connect(victim.ocpp_port, "SLOW", "1.6", station_class=SlowStation16) as cp:
                assert await Driver(cp, "1.6").boot() == "Accepted"
                in_flight = asyncio.create_task(command(client, nodes[0], "SLOW", timeout=25))
                await eventually(_async(lambda: bool(cp.received)), what="SLOW got the command")
                readings_before = {s.station_id: s.readings for s in stations}
                os.kill(victim.proc.pid, signal.SIGKILL)
                await victim.proc.wait()
                killed_at = time.monotonic()
                failed = await in_flight
                assert failed.status_code == 504, failed.text
                detail = failed.json()["detail"]
                assert "stopped answering" in detail and "may or may not" in detail
                assert time.monotonic() - killed_at < 10  # the call timeout is 25 s

            moved = [s for s in stations if s.station_id.startswith("C2")]
            await eventually(
                _async(lambda: all(s.moves >= 1 and s.node != victim.name for s in moved)),
                what="n2's stations reconnected to n0 and n1",
            )
            await eventually(
                _async(
                    lambda: all(s.readings > readings_before[s.station_id] + 3 for s in stations)
                ),
                what=lambda: f"every station charging again: {stations}",
            )
            # Commands through both remaining nodes reach the stations that moved.
            for via in nodes[:2]:
                for station in moved:
                    answer = await command(client, via, station.station_id)
                    assert answer.status_code == 200, (via.name, station.station_id, answer.text)

            stop.set()
            await asyncio.wait_for(asyncio.gather(*runs), 20)
            for station in stations:
                assert station.stopped, (station.station_id, station.errors)
    finally:
        stop.set()
        for node in nodes:
            if node.proc.returncode is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in nodes:
            try:
                await asyncio.wait_for(node.proc.wait(), 15)
            except TimeoutError:
                node.proc.kill()
                await node.proc.wait()

    # Nothing acknowledged is missing: every transaction ended with its last reading, every
    # meter value answered is stored, wherever the station was connected.
    store = await open_store(normalize_url(db))
    try:
        for station in stations:
            tx = await store.find_transaction(station.station_id, station.tx_id)
            assert tx is not None, station.station_id
            assert tx.state is TransactionState.ENDED, station.station_id
            assert tx.meter_start_wh == Decimal(1000)
            assert tx.meter_stop_wh == Decimal(station.meter_wh), station.station_id
            readings = await store.meter_values(tx.id)
            energy = [
                v
                for r in readings
                for v in r.values
                if v.measurand == "Energy.Active.Import.Register"
            ]
            assert len(energy) >= station.readings, station.station_id
    finally:
        await store.close()
    for node in nodes[:2]:  # the survivors stopped cleanly
        assert node.proc.returncode == 0, node.log.read_text()[-3000:]


async def _equals(value: Any, expected: float) -> bool:
    try:
        return bool(await value == expected)
    except (AssertionError, httpx.HTTPError):
        return False


def _async(check: Any) -> Any:
    async def run() -> bool:
        return bool(check())

    return run


async def test_load_balancing_runs_once_for_the_cluster(
    pg_empty_database: str, nats_server: str, tmp_path: Path
) -> None:
    """The lease holder's balancer steers a station connected to the other node, and a limit
    set through the other node's API reaches it."""
    db = pg_empty_database
    await asyncio.to_thread(upgrade, normalize_url(db))
    nodes = await start_nodes(2, db, nats_server, tmp_path)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            held = [await metric(client, n, "chargegrid_cluster_lease_held") for n in nodes]

            async def one_holder() -> bool:
                held[:] = [await metric(client, n, "chargegrid_cluster_lease_held") for n in nodes]
                return sum(held) == 1

            await eventually(one_holder, what=lambda: held)
            other = nodes[held.index(0.0)]
            site = {
                "circuits": [{"id": "grid", "limit_a": 32}],
                "evses": [{"station_id": "LB-1", "evse_id": 1, "circuit": "grid"}],
            }
            put = await client.put(f"{other.api}/sites/depot", json=site, headers=HEADERS)
            assert put.status_code == 200, put.text
            async with connect(other.ocpp_port, "LB-1", "1.6") as cp:
                driver = Driver(cp, "1.6")
                assert await driver.boot() == "Accepted"
                await driver.start("TAG-LB", 1000)

                def last_limit() -> float | None:
                    sent = [r for a, r in cp.received if a == "SetChargingProfile"]
                    tx = [
                        r["cs_charging_profiles"]
                        for r in sent
                        if r["cs_charging_profiles"]["charging_profile_purpose"] == "TxProfile"
                    ]
                    if not tx:
                        return None
                    periods = tx[-1]["charging_schedule"]["charging_schedule_period"]
                    return float(periods[0]["limit"])

                async def told(limit: float) -> bool:
                    return last_limit() == limit

                await eventually(lambda: told(32.0), what=last_limit)
                limits = {"circuits": {"grid": {"limit_a": 10}}}
                put = await client.put(
                    f"{other.api}/sites/depot/limits", json=limits, headers=HEADERS
                )
                assert put.status_code == 200, put.text
                await eventually(lambda: told(10.0), what=last_limit)
                profiles = [r for a, r in cp.received if a == "SetChargingProfile"]
                tx_sent = [
                    p
                    for p in profiles
                    if p["cs_charging_profiles"]["charging_profile_purpose"] == "TxProfile"
                ]
                assert len(tx_sent) == 2  # one balancer: each change sent once
    finally:
        for node in nodes:
            if node.proc.returncode is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in nodes:
            with contextlib.suppress(ProcessLookupError):
                await asyncio.wait_for(node.proc.wait(), timeout=15)


def _call(uid: str, action: str, payload: dict[str, Any]) -> str:
    return json.dumps([2, uid, action, payload])


async def _answer(ws: Any, uid: str) -> list[Any]:
    """The CALLRESULT or CALLERROR of ``uid``; the CSMS's own calls meanwhile are answered
    with an empty CALLRESULT (enough for what a node sends at connection)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if message[0] == 2:
            await ws.send(json.dumps([3, message[1], {"status": "Accepted"}]))
        elif message[1] == uid:
            return list(message)


def _boot(version: str) -> dict[str, Any]:
    if version == "1.6":
        return {"chargePointVendor": "v", "chargePointModel": "m"}
    return {"reason": "PowerUp", "chargingStation": {"vendorName": "v", "model": "m"}}


def _start(version: str, station_id: str) -> tuple[str, dict[str, Any]]:
    at = "2026-12-03T10:00:00Z"
    if version == "1.6":
        payload = {"connectorId": 1, "idTag": "TAG-MOVE", "meterStart": 1000, "timestamp": at}
        return "StartTransaction", payload
    return "TransactionEvent", {
        "eventType": "Started",
        "timestamp": at,
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": f"T-{station_id}"},
        "idToken": {"idToken": "TAG-MOVE", "type": "ISO14443"},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [
            {
                "timestamp": at,
                "sampledValue": [{"value": 1000, "measurand": "Energy.Active.Import.Register"}],
            }
        ],
    }


async def _move_mid_start(a: Node, b: Node, station_id: str, version: str) -> list[Any]:
    """Start a transaction on ``a`` and leave before its answer; resend it on ``b``."""
    protocol = "ocpp1.6" if version == "1.6" else "ocpp2.0.1"
    action, payload = _start(version, station_id)
    async with websockets.connect(
        f"ws://127.0.0.1:{a.ocpp_port}/ocpp/{station_id}", subprotocols=[protocol]
    ) as ws:
        await ws.send(_call("b1", "BootNotification", _boot(version)))
        assert (await _answer(ws, "b1"))[0] == 3
        await ws.send(_call("s1", action, payload))
    async with websockets.connect(
        f"ws://127.0.0.1:{b.ocpp_port}/ocpp/{station_id}", subprotocols=[protocol]
    ) as ws:
        await ws.send(_call("b2", "BootNotification", _boot(version)))
        assert (await _answer(ws, "b2"))[0] == 3
        await ws.send(_call("s1", action, payload))  # resent: its answer was lost
        return await _answer(ws, "s1")


async def test_a_station_that_moves_mid_start_has_one_transaction(
    pg_empty_database: str, nats_server: str, tmp_path: Path
) -> None:
    """A station leaves node A right after sending its start, before A committed it, and
    resends the start on node B: B reads the station's state only once A let it go, so it finds
    A's transaction rather than starting a second one."""
    db = pg_empty_database
    await asyncio.to_thread(upgrade, normalize_url(db))
    nodes = await start_nodes(2, db, nats_server, tmp_path)
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for node in nodes:
                await eventually(
                    lambda n=node: _equals(metric(client, n, "chargegrid_cluster_peers"), 1),
                    what=f"{node.name} sees its peer",
                )
        moves = [(f"MV{i}-{v.replace('.', '')}", v) for i in range(20) for v in ("1.6", "2.0.1")]
        answers = await asyncio.gather(
            *(_move_mid_start(nodes[0], nodes[1], s, v) for s, v in moves)
        )
    finally:
        for node in nodes:
            node.proc.send_signal(signal.SIGTERM)
        for node in nodes:
            await asyncio.wait_for(node.proc.wait(), 15)
    store = await open_store(normalize_url(db))
    try:
        for (station_id, version), answer in zip(moves, answers, strict=True):
            assert answer[0] == 3, (station_id, answer)  # a CALLRESULT, not an InternalError
            stored = await store.list_transactions(station_id)
            assert len(stored) == 1, (station_id, [(t.id, t.station_tx_id) for t in stored])
            if version == "1.6":
                assert answer[2]["transactionId"] == stored[0].id
    finally:
        await store.close()
    for node in nodes:
        assert node.proc.returncode == 0, node.log.read_text()[-3000:]
