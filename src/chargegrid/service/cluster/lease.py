"""The jobs one node runs for the whole cluster, while it holds the cluster's lease.

Which periodic jobs need the lease, and why (README, Cluster mode):

* the load balancer, and what steers it (OSCP's heartbeats, measurements and forecasts, the
  OpenADR 2.0b and 3 VENs' polling): they keep state in memory and send charging profiles; two
  of them would fight over the same cars, and a VTN or Capacity Provider expects one VEN or
  Flexibility Provider, not one per node;
* sending webhook deliveries and purging old ones: every node stores the deliveries of the events
  it commits, one node sends them, so each is sent once (and a dead node's are sent too);
* the message log's retention: two nodes trimming the log to its row limit at once would each
  delete a chunk, so twice too much.

Not under the lease, because each station is held by one node at a time: certificate renewals
(each node asks its own stations), the message log's writes, webhook deliveries' storing.

:class:`LeaseKeeper` tries to take the lease every ``interval_s``; once it has it, checks every
``interval_s`` that it still does, and stops the jobs at once when it does not (its database
connection broke): at most one node runs them, give or take that interval and the check's
timeout (README, Cluster mode: a session that ends under a running holder leaves a window of a
few seconds in which two nodes run them; webhook deliveries are then sent at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog

from chargegrid.service.cluster.ports import Lease
from chargegrid.service.commands import CommandResult, Commands, StationOfflineError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]


class LeaseKeeper:
    def __init__(self, lease: Lease, jobs: list[Job], *, interval_s: float = 2.0) -> None:
        self.lease = lease
        self.jobs = jobs
        self.interval_s = interval_s
        self.held = False
        self._task: asyncio.Task[None] | None = None
        self._running: list[Job] = []
        self.changed = asyncio.Event()  # set at every gain or loss (tests wait on it)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="cluster-lease")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._stop_jobs()
        if self.held:
            self.held = False
            with contextlib.suppress(Exception):
                await self.lease.release()

    async def step(self) -> None:
        """Take the lease or check it, and start or stop the jobs to match."""
        try:
            holds = await (self.lease.check() if self.held else self.lease.acquire())
        except Exception as exc:  # an unreachable database: the lease is not ours
            log.warning("cluster lease not reachable", error=str(exc))
            holds = False
        if holds and not self.held:
            self.held = True
            log.info("cluster lease taken: this node runs the cluster's jobs")
            await self._start_jobs()
            self.changed.set()
        elif self.held and not holds:
            self.held = False
            log.warning("cluster lease lost: this node stops the cluster's jobs")
            await self._stop_jobs()
            with contextlib.suppress(Exception):
                await self.lease.release()
            self.changed.set()

    async def _run(self) -> None:
        while True:
            await self.step()
            await asyncio.sleep(self.interval_s)

    async def _start_jobs(self) -> None:
        for job in self.jobs:
            try:
                await job.start()
            except Exception:  # the others run regardless; the log says which did not
                log.exception("cluster job did not start", job=job.name)
                continue
            self._running.append(job)

    async def _stop_jobs(self) -> None:
        running, self._running = self._running, []
        for job in reversed(running):
            try:
                await job.stop()
            except Exception:
                log.exception("cluster job did not stop cleanly", job=job.name)


class HolderOnlyCommands(Commands):
    """Commands that only the lease holder may send: given to the load balancer, so that one
    on a node without the lease (run by an API call that changed a site's limits there) cannot
    send charging profiles that fight the holder's."""

    def __init__(self, commands: Commands, holds: Callable[[], bool]) -> None:
        super().__init__(commands.links, commands.store, commands.clock)
        self.holds = holds

    async def send(
        self,
        station_id: str,
        action: str,
        payload: Mapping[str, Any] | msgspec.Struct,
        timeout: float | None = None,
    ) -> CommandResult:
        if not self.holds():
            raise StationOfflineError(
                f"not sent to {station_id}: this node does not hold the cluster's lease"
            )
        return await super().send(station_id, action, payload, timeout)
