"""The NATS broker adapter against the NATS server at 127.0.0.1:4222: the URL's password never
shows in its errors, and a node whose NATS connection is down closes at once (not after
nats-py's drain timeout)."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import pytest

from chargegrid.adapters.cluster import nats_broker
from chargegrid.service.cluster.ports import BrokerError

NATS = ("127.0.0.1", 4222)


@pytest.fixture
def nats_server() -> None:
    try:
        socket.create_connection(NATS, timeout=1).close()
    except OSError as exc:
        pytest.skip(f"no NATS server at {NATS[0]}:{NATS[1]}: {exc}")


async def test_the_password_of_the_url_is_not_in_the_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(BrokerError) as failed:
        await nats_broker.connect(
            f"nats://cg:pa55word-xyz@127.0.0.1:{port}", "test", first_timeout_s=1.5
        )
    assert "pa55word-xyz" not in str(failed.value)
    assert "nats://***@127.0.0.1" in str(failed.value)


class Proxy:
    """Forwards to NATS until cut: then closes everything and refuses new connections."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection(*NATS)
        self.writers += [writer, up_w]

        async def pump(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()

        await asyncio.gather(pump(reader, up_w), pump(up_r, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        await self.server.wait_closed()


@pytest.mark.usefixtures("nats_server")
async def test_closing_with_nats_down_does_not_hang() -> None:
    proxy = Proxy()
    port = await proxy.start()
    broker = await nats_broker.connect(f"nats://127.0.0.1:{port}", "test")
    assert not broker.secure
    await broker.subscribe("chargegrid.test.close", _ignore)
    await proxy.cut()
    await asyncio.sleep(0.2)  # the client sees the connection go, and reconnects in vain
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(broker.close(), 10)
    assert loop.time() - started < 3


async def _ignore(data: bytes, reply: object) -> None:
    return None
