"""A fleet of simulated stations on real WebSockets: the thin asyncio layer over
:class:`~.station.SimStation`.

Each station has a task that connects (picows, the client of the server's own WebSocket library:
thousands of connections in one process), waits for the connection to end and connects again
when its station says; frames and timers feed the station from picows's callbacks, without a
task per message. Connections open at most ``rate`` per second, reconnections included. When the
fleet stops, every station ends its sessions (StopTransaction / TransactionEvent Ended, reason
Local) and closes, within ``wind_down_s``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import picows
import structlog

from chargegrid.testing.simulator.car import Rng
from chargegrid.testing.simulator.scenario import Scenario
from chargegrid.testing.simulator.station import Link, SimStation, Speaker
from chargegrid.testing.simulator.stats import Stats
from chargegrid.testing.simulator.v16 import Speaker16
from chargegrid.testing.simulator.v201 import Speaker201

log = structlog.get_logger(__name__)

_SPEAKERS: dict[str, Speaker] = {"1.6": Speaker16(), "2.0.1": Speaker201()}
#: OCPP frames are small; picows's 16 KiB default per connection counts at 10,000 stations.
_READ_BUFFER = 2048
_CONNECT_ERRORS = (OSError, TimeoutError, asyncio.TimeoutError, picows.WSError)


@dataclass(frozen=True, slots=True)
class Summary:
    """The fleet at one moment."""

    elapsed_s: float
    stations: int
    connected: int
    booted: int
    charging: int  # connectors in a transaction
    power_kw: float
    messages_per_s: float  # frames both ways, since the last summary
    errors: int  # CALLERRORs included
    call_errors: int  # station calls the CSMS answered with a CALLERROR


class _Listener(picows.WSListener):
    def __init__(self, link: _Link) -> None:
        super().__init__()
        self.link = link

    def on_ws_connected(self, transport: Any) -> None:
        self.link.opened(transport)

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        if frame.msg_type == picows.WSMsgType.TEXT:
            self.link.text(frame.get_payload_as_bytes())
        elif frame.msg_type == picows.WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: Any) -> None:
        self.link.closed()


class _Link:
    """One station's connection: feeds it frames and timer ticks, writes what it says."""

    def __init__(self, fleet: Fleet, station: SimStation, url: str, headers: dict[str, str]):
        self.fleet = fleet
        self.station = station
        self.url = url
        self.headers = headers
        self.transport: Any = None
        self.gone: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    async def run(self) -> None:
        fleet, station = self.fleet, self.station
        while not fleet.stopping:
            at = station.connect_at
            if at is None:
                return
            if not await fleet.sleep(at - fleet.clock()):
                return
            await fleet.pace()
            if fleet.stopping:
                return
            try:
                await picows.ws_connect(
                    lambda: _Listener(self),
                    self.url,
                    extra_headers=self.headers,
                    websocket_handshake_timeout=30,
                    read_buffer_init_size=_READ_BUFFER,
                )
            except _CONNECT_ERRORS as exc:
                fleet.stats.connect_failures += 1
                fleet.stats.error(f"connect: {type(exc).__name__}: {str(exc)[:80]}")
                station.connect_failed(fleet.clock())
                continue
            fleet.stats.connects += 1
            if self.gone is not None:
                await self.gone

    # --- picows callbacks ---------------------------------------------------------------------

    def opened(self, transport: Any) -> None:
        self.transport = transport
        self.gone = asyncio.get_running_loop().create_future()
        self._guarded(lambda now: self.station.connected(now))

    def text(self, data: bytes) -> None:
        self.fleet.stats.received += 1
        self._guarded(lambda now: self.station.receive(data, now))

    def closed(self) -> None:
        self.transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        self.station.disconnected(self.fleet.clock())
        if self.gone is not None and not self.gone.done():
            self.gone.set_result(None)
        self.fleet.moved()

    def _tick(self) -> None:
        self._timer = self._timer_at = None
        self._guarded(lambda now: self.station.tick(now))

    # --- writing ------------------------------------------------------------------------------

    def _guarded(self, feed: Callable[[float], None]) -> None:
        try:
            feed(self.fleet.clock())
            self.flush()
        except Exception as exc:  # a bug of ours must not take the fleet down
            self.fleet.stats.error(f"simulator: {type(exc).__name__}: {exc}")
            log.exception("simulated station failed", station_id=self.station.id)
            self.close()

    def flush(self) -> None:
        transport, station = self.transport, self.station
        if transport is None:
            return
        frames = station.data_to_send()
        for frame in frames:
            transport.send(picows.WSMsgType.TEXT, frame)
        self.fleet.stats.sent += len(frames)
        self.fleet.moved()
        if station.want_close:
            self.close()
            return
        deadline = station.next_deadline()
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = None
            if deadline is not None:
                delay = max(0.0, deadline - self.fleet.clock())
                self._timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def close(self) -> None:
        if self.transport is not None:
            with contextlib.suppress(Exception):  # the socket may be gone already
                self.transport.send_close(picows.WSCloseCode.OK)
            self.transport.disconnect()


class Fleet:
    """Simulated stations of a :class:`~.scenario.Scenario`, run by :meth:`run`."""

    def __init__(
        self,
        scenario: Scenario,
        clock: Callable[[], float] = time.time,
        stats: Stats | None = None,
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.stats = stats or Stats()  # fleets given one Stats (one per server) count together
        self.stopping = False
        self._wake: asyncio.Event | None = None
        self._moved = asyncio.Event()  # set when a station wrote or lost its connection
        self._next_slot = 0.0
        self._started = 0.0
        self._last: tuple[float, int] = (0.0, 0)
        self.links: list[_Link] = []
        base = scenario.url.rstrip("/")
        for index, station_id in enumerate(scenario.station_ids()):
            version = scenario.version_of(index)
            station = SimStation(
                station_id,
                _SPEAKERS[version],
                scenario.params(index),
                Rng(scenario.seed * 1_000_003 + index),
                self.stats,
            )
            headers = {"Sec-WebSocket-Protocol": _SPEAKERS[version].dialect.subprotocol}
            if scenario.password:
                secret = base64.b64encode(f"{station_id}:{scenario.password}".encode()).decode()
                headers["Authorization"] = f"Basic {secret}"
            self.links.append(_Link(self, station, f"{base}/{quote(station_id)}", headers))

    @property
    def stations(self) -> list[SimStation]:
        return [link.station for link in self.links]

    async def run(
        self,
        stop: asyncio.Event | None = None,
        on_summary: Callable[[Summary], None] | None = None,
        wind_down_s: float = 10.0,
    ) -> dict[str, Any]:
        """Run until ``duration`` has passed or ``stop`` is set; returns :meth:`report`."""
        self._wake = asyncio.Event()
        self._started = self.clock()
        self._last = (self._started, 0)
        tasks = [asyncio.create_task(link.run()) for link in self.links]
        stop = stop or asyncio.Event()
        duration = self.scenario.duration or None
        ends = None if duration is None else self._started + duration
        try:
            while not stop.is_set() and (ends is None or self.clock() < ends):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                if on_summary is not None:
                    on_summary(self.summary())
        finally:
            await self._wind_down(wind_down_s)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return self.report()

    async def _wind_down(self, wind_down_s: float) -> None:
        self.stopping = True
        assert self._wake is not None
        self._wake.set()
        now = self.clock()
        for link in self.links:
            if link.transport is not None:
                link.station.wind_down(now)
                link.flush()
        ends = now + wind_down_s
        await self._until(
            lambda: (
                not any(link.transport is not None and link.station.busy for link in self.links)
            ),
            ends,
        )
        for link in self.links:
            link.close()
        await self._until(lambda: all(link.transport is None for link in self.links), ends + 2)

    async def _until(self, done: Callable[[], bool], ends: float) -> None:
        """Wait until ``done()`` (checked whenever a station moves) or until ``ends``."""
        while not done() and self.clock() < ends:
            self._moved.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), max(0.0, ends - self.clock()))

    def moved(self) -> None:
        if self.stopping:
            self._moved.set()

    async def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; False when the fleet stops meanwhile."""
        if seconds > 0:
            assert self._wake is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), seconds)
        return not self.stopping

    async def pace(self) -> None:
        """At most ``rate`` connections opened per second."""
        rate = self.scenario.rate
        if rate <= 0:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next_slot)
        self._next_slot = slot + 1.0 / rate
        if slot > now:
            await asyncio.sleep(slot - now)

    def summary(self) -> Summary:
        now = self.clock()
        frames = self.stats.sent + self.stats.received
        since, before = self._last
        self._last = (now, frames)
        stations = self.stations
        return Summary(
            elapsed_s=now - self._started,
            stations=len(stations),
            connected=sum(1 for link in self.links if link.transport is not None),
            booted=sum(1 for s in stations if s.link is Link.ACCEPTED),
            charging=sum(s.charging for s in stations),
            power_kw=sum(s.power_w for s in stations) / 1000.0,
            messages_per_s=(frames - before) / (now - since) if now > since else 0.0,
            errors=self.stats.error_count,
            call_errors=self.stats.call_error_count,
        )

    def report(self) -> dict[str, Any]:
        """The run: stations, versions, duration, messages per second and latency per action."""
        elapsed = max(1e-9, self.clock() - self._started)
        frames = self.stats.sent + self.stats.received
        versions: dict[str, int] = {}
        for s in self.stations:
            versions[s.speaker.dialect.version] = versions.get(s.speaker.dialect.version, 0) + 1
        return {
            "stations": len(self.links),
            "versions": versions,
            "duration_s": round(elapsed, 1),
            "messages_per_s": round(frames / elapsed, 1),
            **self.stats.report(),
        }
