"""The API's HTTP server: uvicorn, in the event loop the OCPP server runs in."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator

import uvicorn
from litestar import Litestar


class _Embedded(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stopping = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # chargegrid handles SIGINT/SIGTERM itself and stops this server in order

    async def main_loop(self) -> None:
        # uvicorn's loop sleeps 0.1 s between ticks; this one also wakes when told to stop, so
        # a stop does not wait out the sleep.
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864_000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 0.1)
            should_exit = await self.on_tick(counter)


class ApiServer:
    def __init__(self, app: Litestar, host: str, port: int) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",  # the application has no start-up or shutdown hooks
            server_header=False,
        )
        self._server = _Embedded(config)
        self._task: asyncio.Task[None] | None = None
        self.port = port

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._serve())
        while not self._server.started:
            if self._task.done():
                failed, self._task = self._task, None  # nothing for stop() to wait for
                await failed  # raises why it stopped
                raise OSError(f"the REST API stopped before it started (port {self.port})")
            await asyncio.sleep(0.01)
        servers = self._server.servers
        if servers and servers[0].sockets:
            self.port = servers[0].sockets[0].getsockname()[1]

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit as exc:  # uvicorn's way to give up, after logging why
            # (a SystemExit out of a task would stop the whole event loop)
            raise OSError(f"the REST API cannot listen on port {self.port}") from exc

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        self._server.stopping.set()
        await self._task
        self._task = None
