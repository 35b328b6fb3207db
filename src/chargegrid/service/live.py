"""The network at a glance: what the operator dashboard's overview shows.

Rules:

* Power is not stored as such: the view keeps, in memory, the latest ``power_w`` of each active
  transaction from the ``transaction.updated`` events on the bus (a transaction that started
  before this process reports power at its next meter values). Power now is their sum.
* Connector statuses are the latest ``connector.status`` event of each connector; the first
  overview reads what the store kept for the connectors no event has named yet.
* Energy today is the energy so far of the transactions started since ``since`` (the caller's
  midnight; :func:`utc_midnight` by default), from the store's register readings.
* Listening costs one dict update per event and never blocks the bus (:mod:`service.events`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from chargegrid.domain import events
from chargegrid.domain.model import Station, StatusChange, Transaction, TransactionState
from chargegrid.service.events import Envelope, EventBus
from chargegrid.service.ports import Clock, Filter, ListQuery, Store

_PAGE = 500


class Overview(msgspec.Struct, frozen=True):
    """Counts and totals of the whole network at one moment."""

    at: datetime
    stations: int
    stations_by_registration: dict[str, int]
    stations_online: int
    stations_offline: int
    connectors_by_status: dict[str, int]
    active_transactions: int
    power_w: Decimal
    energy_today_wh: Decimal
    energy_since: datetime


def utc_midnight(now: datetime) -> datetime:
    """The start of ``now``'s day in UTC."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class LiveView:
    """Latest power per active transaction and latest status per connector, kept from the bus."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._power: dict[int, Decimal | None] = {}
        # (station, evse, connector) -> latest status; connector 0 / EVSE 0 is the station
        self._status: dict[tuple[str, int, int], StatusChange] = {}
        self._seeded = False

    def attach(self, bus: EventBus) -> Callable[[], None]:
        """Listen to ``bus`` from now on; returns the function that stops listening."""
        return bus.listen(self.on_event)

    def on_event(self, envelope: Envelope) -> None:
        event = envelope.event
        if isinstance(event, events.TransactionStarted):
            self._power.setdefault(event.transaction_id, None)
        elif isinstance(event, events.TransactionUpdated):
            if event.power_w is not None or event.transaction_id not in self._power:
                self._power[event.transaction_id] = event.power_w
        elif isinstance(event, events.TransactionEnded):
            self._power.pop(event.transaction_id, None)
        elif isinstance(event, events.StatusChanged):
            key = (event.station_id, event.evse_id, event.connector_id)
            self._status[key] = StatusChange(
                event.station_id,
                event.evse_id,
                event.connector_id,
                event.status,
                event.at,
                event.error_code,
                event.info,
            )

    def power_w(self, transaction_id: int) -> Decimal | None:
        """The latest active import power of a running transaction, if it reported one."""
        return self._power.get(transaction_id)

    async def overview(
        self, connected: Callable[[str], bool], since: datetime | None = None
    ) -> Overview:
        """The overview now; ``connected`` says whether a station has a live connection."""
        now = self.clock.now()
        since = since or utc_midnight(now)
        stations = list(await self.store.list_stations())
        await self._seed(stations)
        known = {s.id for s in stations}
        online = sum(1 for s in stations if connected(s.id))
        statuses = Counter(
            change.status
            for (station_id, _, connector), change in self._status.items()
            # connector 0 / EVSE 0 is the station as a whole, not a connector
            if station_id in known and connector != 0
        )
        active = await self._transactions(Filter("state", "eq", TransactionState.ACTIVE.value))
        live = {t.id for t in active}
        for stale in [t for t in self._power if t not in live]:
            del self._power[stale]  # ended while this view missed it (e.g. a lagging bus)
        power = sum((p for t, p in self._power.items() if p is not None), Decimal(0))
        today = await self._transactions(Filter("started_at", "ge", since))
        energy = sum((t.energy_wh or Decimal(0) for t in today), Decimal(0))
        return Overview(
            at=now,
            stations=len(stations),
            stations_by_registration=dict(Counter(s.registration.value for s in stations)),
            stations_online=online,
            stations_offline=len(stations) - online,
            connectors_by_status=dict(sorted(statuses.items())),
            active_transactions=len(active),
            power_w=power,
            energy_today_wh=energy,
            energy_since=since,
        )

    async def _seed(self, stations: Sequence[Station]) -> None:
        """Once: what the store kept for connectors whose status no event has told yet."""
        if self._seeded:
            return
        for station in stations:
            for change in await self.store.connector_statuses(station.id):
                key = (change.station_id, change.evse_id, change.connector_id)
                self._status.setdefault(key, change)  # an event since is newer
        self._seeded = True

    async def _transactions(self, only: Filter) -> list[Transaction]:
        found: list[Transaction] = []
        query = ListQuery(sort="id", limit=_PAGE, filters=(only,))
        while True:
            page, more = await self.store.page_transactions(query)
            found.extend(page)
            if not more or not page:
                return found
            query = ListQuery(sort="id", limit=_PAGE, filters=(only,), after=(None, page[-1].id))
