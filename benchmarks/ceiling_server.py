"""Reference for benchmarks/ocpp_throughput.py: the fastest OCPP 1.6J server of this stack.

picows on uvloop, each CALL decoded and validated with chargegrid's generated msgspec types, and
answered with a fixed valid response: no session, no state, no database. Nothing a central
system needs beyond that is done, so its rate is a ceiling for any server built on these
libraries in Python, chargegrid included.

    python benchmarks/ceiling_server.py --host 127.0.0.1 --port 9200
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import UTC, datetime
from typing import Any

import msgspec
import picows
import uvloop

from chargegrid.protocols.ocpp16 import messages as m

Frame = tuple[int, str, str, msgspec.Raw]


class Listener(picows.WSListener):
    def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
        if frame.msg_type != picows.WSMsgType.TEXT:
            return
        _, unique_id, action, payload = msgspec.json.decode(
            frame.get_payload_as_bytes(), type=Frame
        )
        request_type, _ = m.ACTIONS[action]
        msgspec.json.decode(payload, type=request_type)  # validated, then dropped
        response = RESPONSES[action]()
        transport.send(
            picows.WSMsgType.TEXT,
            b'[3,"' + unique_id.encode() + b'",' + msgspec.json.encode(response) + b"]",
        )


def _accepted() -> m.IdTagInfo:
    return m.IdTagInfo(status="Accepted")


RESPONSES: dict[str, Any] = {
    "BootNotification": lambda: m.BootNotificationResponse(
        status="Accepted", current_time=datetime.now(UTC), interval=300
    ),
    "Heartbeat": lambda: m.HeartbeatResponse(current_time=datetime.now(UTC)),
    "Authorize": lambda: m.AuthorizeResponse(id_tag_info=_accepted()),
    "StartTransaction": lambda: m.StartTransactionResponse(
        transaction_id=1, id_tag_info=_accepted()
    ),
    "StopTransaction": m.StopTransactionResponse,
    "StatusNotification": m.StatusNotificationResponse,
    "MeterValues": m.MeterValuesResponse,
}


def accept(request: picows.WSUpgradeRequest) -> picows.WSUpgradeResponseWithListener:
    response = picows.WSUpgradeResponse.create_101_response({"Sec-WebSocket-Protocol": "ocpp1.6"})
    return picows.WSUpgradeResponseWithListener(response, Listener())


async def serve(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = await picows.ws_create_server(accept, host, port)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
