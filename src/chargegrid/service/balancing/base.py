"""What every part of the :class:`~chargegrid.service.balancing.LoadBalancer` shares: its
constructor and state (the sessions, what each station holds or may hold, the limits and prices,
the timers and tasks), what a session is, where the limits are kept, and how a run of a site is
asked for (gathered for ``delay_s``, so a burst of triggers costs one run)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from chargegrid.domain import events
from chargegrid.domain.balancing import Plan
from chargegrid.service.charging_profiles import Schedule
from chargegrid.service.commands import Commands
from chargegrid.service.planning import LimitBlock, PriceBlock
from chargegrid.service.ports import Clock, Store
from chargegrid.service.sites import SiteNotFound, Sites

log = structlog.get_logger(__package__)  # one logger name for the whole balancer

RETRY_S = 30.0  # a refused profile is tried again after this, doubling up to ...
RETRY_MAX_S = 600.0


@dataclass(slots=True)
class Session:
    transaction_id: int
    station_tx_id: str
    started_at: datetime
    power_w: float | None = None
    delivered_wh: float | None = None  # energy so far, from the meter
    # what the car needs (ChargingNeeds): energy still wanted counted from ``needs_base_wh``
    needs_wh: float | None = None
    needs_base_wh: float = 0.0
    departure: datetime | None = None
    min_a: float | None = None
    max_a: float | None = None
    phases: int | None = None
    priority: int = 0
    inherited: bool = False  # read at start: what its station holds is not known
    known_since: float = field(default_factory=time.monotonic)  # when this process learnt of it

    def remaining_wh(self) -> float | None:
        if self.needs_wh is None:
            return None
        return max(0.0, self.needs_wh - ((self.delivered_wh or 0.0) - self.needs_base_wh))


class LimitStore(Protocol):
    """Where the limits and prices over time are kept across restarts (and shared by the nodes
    of a cluster)."""

    async def save_timeline(
        self, site_id: str, source: str, blocks: Sequence[LimitBlock]
    ) -> None: ...

    async def timelines(self) -> list[tuple[str, str, list[LimitBlock]]]: ...

    async def save_prices(
        self, site_id: str, source: str, blocks: Sequence[PriceBlock]
    ) -> None: ...

    async def prices(self) -> list[tuple[str, str, list[PriceBlock]]]: ...


class BalancerBase:
    """The state and helpers the mixins of :class:`LoadBalancer` build on."""

    def __init__(
        self,
        sites: Sites,
        commands: Commands,
        store: Store,
        connected: Callable[[str], str | None],
        clock: Clock,
        *,
        delay_s: float = 0.2,
        headroom_a: float = 2.0,
        retry_s: float = RETRY_S,
        limit_store: LimitStore | None = None,
    ) -> None:
        self.sites = sites
        self.commands = commands
        self.store = store
        self.connected = connected
        self.clock = clock
        self.delay_s = delay_s
        self.headroom_a = headroom_a
        self.retry_s = retry_s
        self.limit_store = limit_store
        # (kind, site, source) whose limits ("limits") or prices ("prices") changed
        self._unsaved: set[tuple[str, str, str]] = set()
        self._saving: asyncio.Task[None] | None = None
        self.plans: dict[str, Plan] = {}
        self._sessions: dict[str, Session] = {}  # EVSE key ->
        self._held: dict[str, Schedule] = {}  # EVSE key -> TxProfile schedule its station took
        # key -> (fallback given, A counted meanwhile, sent/taken/refused)
        self._defaults: dict[str, tuple[float, float, str]] = {}
        self._resend: set[str] = set()  # keys whose TxDefaultProfile is given again
        # key -> what the car may draw while its station's state is in doubt (a profile refused
        # or not answered, a composite schedule above its profile): counted so, a fixed load
        self._doubt: dict[str, Schedule] = {}
        self._retrying: set[str] = set()  # in doubt, sent again at the next run
        self._failures: dict[str, int] = {}  # key -> profiles not taken in a row
        self._force: set[str] = set()  # keys sent a profile at the next run, changed or not
        self._early_needs: dict[str, events.ChargingNeeds] = {}  # told before the transaction
        self._no_composite: set[str] = set()  # stations that cannot tell their composite
        self._loaded: set[str] = set()  # stations whose running transactions were read
        self._ended: set[int] = set()  # transactions ended while a read was under way
        self._reading = 0
        self._blocks: dict[str, dict[str, list[LimitBlock]]] = {}  # site -> source ->
        self._prices: dict[str, dict[str, list[PriceBlock]]] = {}  # site -> source ->
        self._wakers: dict[str, asyncio.TimerHandle] = {}
        self._retries: dict[str, asyncio.TimerHandle] = {}
        self._pending: set[str] = set()
        self._flush: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop_listening: Callable[[], None] | None = None
        self._plan_listeners: list[Callable[[str, Plan], None]] = []
        # cluster mode: whether this node runs the balancer (the lease holder), and who to tell
        # when limits set here were saved (the holder then reads them again)
        self.active: Callable[[], bool] = lambda: True
        self.on_limits_saved: Callable[[], None] = lambda: None
        # cluster mode: the running transactions read again from the database this often (s),
        # as events from other nodes come over a bus that may lose some
        self.resync_s: float | None = None

    if TYPE_CHECKING:  # a run of a site: the LoadBalancer's, made of every part

        async def rebalance(self, site_id: str) -> Plan: ...

    # --- runs asked for -----------------------------------------------------------------------

    def schedule(self, site_id: str) -> None:
        if not self.active():  # another node of the cluster runs the balancer
            return
        self._pending.add(site_id)
        if self._flush is None or self._flush.done():
            self._flush = asyncio.get_running_loop().create_task(self._run_pending())

    def _touch(self, station_id: str, evse_id: int) -> None:
        found = self.sites.slot(station_id, evse_id)
        if found is not None:
            self.schedule(found[0].id)

    async def _run_pending(self) -> None:
        await asyncio.sleep(self.delay_s)
        while self._pending:
            site_id = self._pending.pop()
            try:
                await self.rebalance(site_id)
            except SiteNotFound:  # deleted: its limits went with it
                self.plans.pop(site_id, None)
                self._blocks.pop(site_id, None)
                self._prices.pop(site_id, None)
            except Exception:  # one site's failure does not stop the others'
                log.exception("load balancing failed", site=site_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
