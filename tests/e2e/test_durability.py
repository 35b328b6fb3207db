"""What chargegrid acknowledged to a station survives the process being killed right after."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from stations import Driver, connect

from chargegrid.adapters.storage.migrate import normalize_url
from chargegrid.adapters.storage.store import open_store
from chargegrid.domain.model import TransactionState


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_listening(port: int, proc: asyncio.subprocess.Process, timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if proc.returncode is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError("server did not start listening")


@pytest.fixture
def server_cmd(tmp_path: Path) -> tuple[list[str], str, int]:
    port = free_port()
    db = f"sqlite:///{tmp_path / 'kill.db'}"
    cmd = [
        sys.executable,
        "-m",
        "chargegrid.entrypoints.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--ocpp-port",
        str(port),
        "--api-port",
        "0",
        "--db",
        db,
        "--unknown-stations",
        "accept",
        "--ping-interval",
        "0",
        "--log-level",
        "warning",
    ]
    return cmd, db, port


@pytest.mark.slow
async def test_acknowledged_data_survives_sigkill(server_cmd: tuple[list[str], str, int]) -> None:
    cmd, db, port = server_cmd
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    acknowledged: dict[str, tuple[str, int, int]] = {}  # station -> (tx id, meter values, last Wh)
    try:
        await wait_listening(port, proc)

        async def run(station_id: str, version: str) -> None:
            async with connect(port, station_id, version) as cp:
                station = Driver(cp, version)
                await station.boot()
                tx_id, _ = await station.start("TAG-" + station_id, 1000, tx_id=f"{station_id}-tx")
                acknowledged[station_id] = (tx_id, 0, 1000)
                for n in range(1, 41):
                    await station.meter(tx_id, 1000 + 50 * n)
                    acknowledged[station_id] = (tx_id, n, 1000 + 50 * n)

        await asyncio.gather(run("K16", "1.6"), run("K201", "2.0.1"))
        # Everything above was answered; kill before anything else can happen.
        os.kill(proc.pid, signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    store = await open_store(normalize_url(db))
    try:
        for station_id, (tx_id, count, last_wh) in acknowledged.items():
            tx = await store.find_transaction(station_id, tx_id)
            assert tx is not None, station_id
            assert tx.state is TransactionState.ACTIVE
            assert tx.meter_start_wh == Decimal(1000)
            assert tx.last_meter_wh == Decimal(last_wh)
            readings = await store.meter_values(tx.id)
            energy = [
                v
                for r in readings
                for v in r.values
                if v.measurand == "Energy.Active.Import.Register"
            ]
            assert len(energy) >= count
    finally:
        await store.close()
