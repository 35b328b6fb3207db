"""Baseline for benchmarks/ocpp_throughput.py: the central system a Python user would write
instead of running chargegrid.

It follows the `ocpp` package's own central-system example: `ocpp.v16.ChargePoint` subclass with
`@on` handlers, served by `websockets` on plain asyncio, one ChargePoint per connection. The `ocpp`
package validates every CALL and CALLRESULT against the OCA JSON schemas (in its default thread
pool executor). State is a dict in memory: no database, nothing survives a restart.

    python benchmarks/baseline_csms.py --host 127.0.0.1 --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import signal
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as Cp
from ocpp.v16 import call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus

TRANSACTIONS: dict[int, dict[str, Any]] = {}
_TX_IDS = itertools.count(1)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class ChargePoint(Cp):
    @on(Action.boot_notification)
    def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any
    ) -> call_result.BootNotification:
        return call_result.BootNotification(
            current_time=_now(), interval=300, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    def on_heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **kwargs: Any
    ) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info=IdTagInfo(status=AuthorizationStatus.accepted))

    @on(Action.start_transaction)
    def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kwargs: Any
    ) -> call_result.StartTransaction:
        tx_id = next(_TX_IDS)
        TRANSACTIONS[tx_id] = {
            "station": self.id,
            "connector": connector_id,
            "id_tag": id_tag,
            "meter_start": meter_start,
            "started": timestamp,
            "meter_values": [],
        }
        return call_result.StartTransaction(
            transaction_id=tx_id, id_tag_info=IdTagInfo(status=AuthorizationStatus.accepted)
        )

    @on(Action.meter_values)
    def on_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], **kwargs: Any
    ) -> call_result.MeterValues:
        tx = TRANSACTIONS.get(kwargs.get("transaction_id", -1))
        if tx is not None:
            tx["meter_values"].extend(meter_value)
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    def on_stop_transaction(
        self, meter_stop: int, timestamp: str, transaction_id: int, **kwargs: Any
    ) -> call_result.StopTransaction:
        tx = TRANSACTIONS.get(transaction_id)
        if tx is not None:
            tx["meter_stop"] = meter_stop
            tx["stopped"] = timestamp
        return call_result.StopTransaction(
            id_tag_info=IdTagInfo(status=AuthorizationStatus.accepted)
        )


async def on_connect(websocket: Any) -> None:
    charge_point_id = websocket.request.path.strip("/").split("/")[-1]
    cp = ChargePoint(charge_point_id, websocket)
    with contextlib.suppress(websockets.exceptions.ConnectionClosed):
        await cp.start()


async def serve(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with websockets.serve(on_connect, host, port, subprotocols=["ocpp1.6"]):
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)  # chargegrid runs with --log-level warning too
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
