"""Helpers of the REST API's end-to-end tests: a node serving on loopback ports, an HTTP client
that states the status it expects, cursor paging, and stations that answer slowly or with a
CALLERROR."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from ocpp.exceptions import NotSupportedError
from ocpp.routing import on
from ocpp.v16 import call_result as result16
from ocpp.v201 import call_result as result201
from stations import Station16, Station201, connect

from chargegrid.bootstrap import App, build
from chargegrid.entrypoints.settings import Settings

ADMIN_TOKEN = "e2e-admin-token-0123456789abcdef"
API = "/api/v1"


@asynccontextmanager
async def serving(db: str, **settings: Any) -> AsyncIterator[tuple[App, Api]]:
    """A node on loopback ports (stations it does not know accepted, no pings, 5 s for a
    station's answer, the admin token; ``settings`` for the rest), an API client of it with the
    admin token, and the id token CARD-1 (already there in a database that served before)."""
    app = await build(
        Settings(
            **{
                "host": "127.0.0.1",
                "ocpp_port": 0,
                "api_port": 0,
                "db": db,
                "unknown_stations": "accept",
                "ping_interval": 0,
                "call_timeout": 5,
                "admin_token": ADMIN_TOKEN,
                **settings,
            }
        )
    )
    await app.start()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{app.api.port}", timeout=10
        ) as client:
            api = Api(client, ADMIN_TOKEN)
            card = {"value": "CARD-1", "kind": "ISO14443"}
            created = await api.request("POST", "/tokens", json=card)
            assert created.status_code in (201, 409), created.text  # 409: a database reused
            yield app, api
    finally:
        await app.stop()


class Api:
    """Requests to ``/api/v1`` with one bearer token (None: no Authorization header)."""

    def __init__(self, client: httpx.AsyncClient, token: str | None) -> None:
        self.client = client
        self.token = token

    def as_(self, token: str | None) -> Api:
        """The same server, another caller."""
        return Api(self.client, token)

    async def request(
        self, method: str, path: str, *, expect: int | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        url = path if path.startswith(("/health", "/ready", "/metrics", API)) else API + path
        response = await self.client.request(method, url, headers=headers, **kwargs)
        if expect is not None:
            assert response.status_code == expect, (
                f"{method} {url}: {response.status_code} {response.text}"
            )
        return response

    async def get(self, path: str, expect: int | None = 200, **kwargs: Any) -> Any:
        response = await self.request("GET", path, expect=expect, **kwargs)
        return _json(response)

    async def post(self, path: str, json: Any = None, expect: int | None = 200, **kw: Any) -> Any:
        response = await self.request("POST", path, json=json, expect=expect, **kw)
        return _json(response)

    async def put(self, path: str, json: Any, expect: int | None = 200) -> Any:
        return _json(await self.request("PUT", path, json=json, expect=expect))

    async def patch(self, path: str, json: Any, expect: int | None = 200) -> Any:
        return _json(await self.request("PATCH", path, json=json, expect=expect))

    async def delete(self, path: str, expect: int | None = 204) -> httpx.Response:
        return await self.request("DELETE", path, expect=expect)

    async def pages(self, path: str, **params: Any) -> list[list[Any]]:
        """Every page of a list, following ``next_cursor`` to the end."""
        found: list[list[Any]] = []
        cursor = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            page = await self.get(path, params=query)
            found.append(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                return found
            assert len(found) < 100, "the cursor does not advance"


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    if "json" in response.headers.get("content-type", ""):
        return response.json()
    return response.text


def items(pages: list[list[Any]]) -> list[Any]:
    return [item for page in pages for item in page]


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# --- Server-Sent Events -------------------------------------------------------------------------


@dataclass
class Sse:
    id: str | None
    event: str
    data: Any


class SseReader:
    """Reads a Server-Sent Events stream in a task (WHATWG HTML 9.2: fields, blank line ends an
    event, ``:`` starts a comment); ``received`` grows as events arrive."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        path: str,
        token: str | None = ADMIN_TOKEN,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> None:
        self.client = client
        self.path = path
        self.headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
        self.params = params
        self.received: list[Sse] = []
        self.comments = 0
        self.opened = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Any:
        self.task = asyncio.create_task(self._read())
        await asyncio.wait_for(self.opened.wait(), 5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def _read(self) -> None:
        stream = self.client.stream("GET", self.path, headers=self.headers, params=self.params)
        async with stream as r:
            assert r.status_code == 200, await r.aread()
            assert r.headers["content-type"].startswith("text/event-stream")
            fields: dict[str, str] = {}
            async for line in r.aiter_lines():
                if line.startswith(":"):
                    self.comments += 1
                    self.opened.set()
                elif line == "":
                    if "data" in fields:
                        data = json.loads(fields["data"])
                        self.received.append(Sse(fields.get("id"), fields.get("event", ""), data))
                    fields = {}
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")

    def types(self) -> list[str]:
        return [e.event for e in self.received]

    async def until(self, event: str, count: int = 1) -> None:
        async def arrived() -> bool:
            return self.types().count(event) >= count

        await wait_for(arrived, timeout=5)


# --- stations that misbehave -----------------------------------------------------------------


class Awkward16(Station16):  # type: ignore[misc]
    """Refuses Reset with a CALLERROR; answers DataTransfer "slow" after 0.8 s."""

    @on("Reset")
    def on_Reset(self, **kwargs: Any) -> Any:  # the ocpp package routes by name
        self.received.append(("Reset", kwargs))
        raise NotSupportedError("Reset is disabled on this unit", {"reason": "maintenance"})

    @on("DataTransfer")
    async def on_DataTransfer(self, **kwargs: Any) -> Any:
        self.received.append(("DataTransfer", kwargs))
        if kwargs.get("message_id") == "slow":
            await asyncio.sleep(0.8)
        return result16.DataTransfer(status="Accepted", data=kwargs.get("message_id"))


class Awkward201(Station201):  # type: ignore[misc]
    """The same in OCPP 2.0.1."""

    @on("Reset")
    def on_Reset(self, **kwargs: Any) -> Any:
        self.received.append(("Reset", kwargs))
        raise NotSupportedError("Reset is disabled on this unit", {"reason": "maintenance"})

    @on("DataTransfer")
    async def on_DataTransfer(self, **kwargs: Any) -> Any:
        self.received.append(("DataTransfer", kwargs))
        if kwargs.get("message_id") == "slow":
            await asyncio.sleep(0.8)
        return result201.DataTransfer(status="Accepted", data=kwargs.get("message_id"))


@asynccontextmanager
async def connect_awkward(port: int, station_id: str, version: str) -> AsyncIterator[Any]:
    station_class = Awkward16 if version == "1.6" else Awkward201
    async with connect(port, station_id, version, station_class=station_class) as cp:
        yield cp
