"""The load balancer when stations do not do as told: fake stations that keep what they take
(and apply a profile whose answer is then lost), sites in memory, a fixed clock. At every
moment, what the stations let their cars draw sums to within the site's limits: a profile not
taken, a station that leaves mid-run, a restart, a station whose composite schedule is higher
than its profile, a limit moved earlier."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from chargegrid.domain import events
from chargegrid.domain.balancing import CircuitLimit
from chargegrid.domain.site import Circuit, Site, slot
from chargegrid.service.balancing import LimitBlock, LoadBalancer
from chargegrid.service.commands import CommandRejectedError
from chargegrid.service.events import Envelope
from chargegrid.service.sites import Sites
from chargegrid.testing.fakes import FixedClock

T0 = datetime(2025, 1, 1, 12, tzinfo=UTC)


class MemSiteStore:
    def __init__(self) -> None:
        self.sites: dict[str, Site] = {}
        self.n = 0

    async def all(self) -> list[Site]:
        return list(self.sites.values())

    async def save(self, site: Site, at: datetime) -> None:
        self.sites[site.id] = site
        self.n += 1

    async def delete(self, site_id: str) -> bool:
        self.n += 1
        return self.sites.pop(site_id, None) is not None

    async def stamp(self) -> int:
        return self.n

    async def close(self) -> None:
        pass


@dataclass
class FakeStation:
    id: str
    online: bool = True
    refuse_tx: bool = False
    lose_answer: bool = False  # applies the profile, but the answer never comes
    tx_profile: dict[str, Any] | None = None  # what it holds
    default_a: float | None = None
    received: list[dict[str, Any]] = field(default_factory=list)

    def draw_at(self, moment: datetime) -> float:
        """What the car may draw at ``moment`` (A per phase)."""
        if self.tx_profile is None:
            return self.default_a if self.default_a is not None else 32.0
        sched = self.tx_profile
        start = datetime.fromisoformat(sched["startSchedule"])
        cur = sched["chargingSchedulePeriod"][0]["limit"]
        for p in sched["chargingSchedulePeriod"]:
            if start + timedelta(seconds=p["startPeriod"]) <= moment:
                cur = p["limit"]
        return cur


class FakeCommands:
    def __init__(self, stations: dict[str, FakeStation]) -> None:
        self.stations = stations

    async def send(self, station_id: str, action: str, payload: dict[str, Any]) -> Any:
        st = self.stations[station_id]
        st.received.append({"action": action, **payload})
        await asyncio.sleep(0)
        if action == "GetCompositeSchedule":
            return SimpleNamespace(response={"status": "Rejected"})
        prof = payload["chargingProfile"]
        sched = prof["chargingSchedule"][0]
        if prof["chargingProfilePurpose"] == "TxDefaultProfile":
            st.default_a = sched["chargingSchedulePeriod"][0]["limit"]
            return SimpleNamespace(response={"status": "Accepted"})
        if st.refuse_tx:
            return SimpleNamespace(response={"status": "Rejected"})
        st.tx_profile = sched
        if st.lose_answer:
            st.online = False
            raise CommandRejectedError("ConnectionLost", "connection lost", {})
        return SimpleNamespace(response={"status": "Accepted"})


class FakeStore:
    def __init__(self) -> None:
        self.active: dict[str, list[Any]] = {}

    async def active_transactions(self, station_id: str) -> list[Any]:
        return self.active.get(station_id, [])


def make_site(ids: list[str], limit_a: float = 32.0, fallback_a: float = 6.0) -> Site:
    return Site(
        "s",
        (Circuit("grid", None, limit_a=limit_a),),
        tuple(slot(i, 1, "grid", max_a=32.0, fallback_a=fallback_a) for i in ids),
    )


class World:
    def __init__(self, ids: list[str], limit_a: float = 32.0) -> None:
        self.clock = FixedClock(T0)
        self.site_store = MemSiteStore()
        self.site_store.sites["s"] = make_site(ids, limit_a)
        self.sites = Sites(self.site_store, self.clock)
        self.stations = {i: FakeStation(i) for i in ids}
        self.store = FakeStore()
        self.commands = FakeCommands(self.stations)
        self.bal = LoadBalancer(
            self.sites,
            self.commands,
            self.store,  # type: ignore[arg-type]
            lambda sid: "2.0.1" if self.stations[sid].online else None,
            self.clock,
            delay_s=0.0,
            retry_s=3600.0,
        )
        self.tx = 0

    async def setup(self) -> None:
        await self.sites.load()

    def start_tx(self, sid: str) -> None:
        self.tx += 1
        self.bal.on_event(
            Envelope(
                seq=self.tx,
                event=events.TransactionStarted(
                    station_id=sid,
                    at=self.clock.now(),
                    transaction_id=self.tx,
                    station_tx_id=f"tx{self.tx}",
                    evse_id=1,
                    connector_id=1,
                    id_token="X",
                    started_at=self.clock.now(),
                ),
            )
        )

    def end_tx(self, sid: str, txid: int) -> None:
        self.bal.on_event(
            Envelope(
                seq=1000 + txid,
                event=events.TransactionEnded(
                    station_id=sid,
                    at=self.clock.now(),
                    transaction_id=txid,
                    station_tx_id=f"tx{txid}",
                    evse_id=1,
                    connector_id=1,
                    id_token="X",
                    started_at=self.clock.now(),
                    stopped_at=self.clock.now(),
                ),
            )
        )

    def offline(self, sid: str) -> None:
        self.stations[sid].online = False
        self.bal.on_event(
            Envelope(seq=5000, event=events.StationOffline(station_id=sid, at=self.clock.now()))
        )

    async def settle(self) -> None:
        idle = 0
        for _ in range(500):
            await asyncio.sleep(0.01)
            if (self.bal._flush is None or self.bal._flush.done()) and not self.bal._tasks:
                idle += 1
                if idle >= 3:
                    return
            else:
                idle = 0
        raise AssertionError("balancer did not settle")

    def total_at(self, moment: datetime, charging: set[str]) -> float:
        return sum(self.stations[s].draw_at(moment) for s in charging)


async def test_an_unanswered_rise_still_counts_once_its_station_is_offline() -> None:
    """A rise the station applied but whose answer was lost (ConnectionLost), then the station
    drops: the car is counted at the rise, and a new car gets only what is left."""
    w = World(["A", "B"])
    await w.setup()
    w.start_tx("A")
    w.start_tx("B")
    await w.settle()
    assert w.total_at(T0, {"A", "B"}) <= 32.0  # 16 + 16
    w.stations["A"].lose_answer = True
    w.end_tx("B", 2)  # A may rise to 32; it applies it, the answer is lost, connection gone
    await w.settle()
    w.offline("A")
    await w.settle()
    w.start_tx("B")  # a new car on B
    await w.settle()
    drawn = w.total_at(T0, {"A", "B"})
    assert drawn <= 32.0, f"A {w.stations['A'].draw_at(T0)} + B {w.stations['B'].draw_at(T0)}"


async def test_a_refused_profile_counts_at_every_moment_of_what_the_station_holds() -> None:
    """A station that refuses keeps a schedule that rises later: it is counted at that
    schedule, moment by moment, not at what it holds now."""
    w = World(["A", "B", "C"])
    await w.setup()
    later = T0 + timedelta(hours=1)
    w.bal.set_timeline("s", "operator", [LimitBlock("grid", CircuitLimit(20.0), None, later)])
    w.start_tx("A")
    w.start_tx("B")
    await w.settle()
    assert w.stations["A"].draw_at(later) == 16.0  # A holds [10 now, 16 from T0+1h]
    w.stations["A"].refuse_tx = True
    w.start_tx("C")
    await w.settle()
    for moment in (T0, later + timedelta(seconds=1)):
        drawn = w.total_at(moment, {"A", "B", "C"})
        assert drawn <= 32.0 + 1e-9, (moment, [w.stations[s].draw_at(moment) for s in "ABC"])


async def test_after_a_restart_an_offline_station_with_a_car_counts_at_its_maximum() -> None:
    """After a restart every station is offline until it reconnects; one still offline may hold
    any TxProfile the last process gave it, so it is counted at its maximum."""
    w = World(["A", "B"])
    await w.setup()
    # what the previous process left: both cars at 16 A (32 A grid)
    for s in ("A", "B"):
        w.stations[s].tx_profile = {
            "startSchedule": (T0 - timedelta(hours=1)).isoformat(),
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
        }
        w.stations[s].online = False
    w.store.active = {
        s: [
            SimpleNamespace(
                id=i,
                station_id=s,
                evse_id=1,
                station_tx_id=f"old{i}",
                started_at=T0 - timedelta(hours=1),
            )
        ]
        for i, s in enumerate(("A", "B"), start=1)
    }
    w.bal.schedule("s")
    await w.settle()
    w.stations["A"].online = True  # A reconnects first; B a minute later
    w.bal.on_event(Envelope(seq=9, event=events.StationOnline(station_id="A", at=T0)))
    await w.settle()
    drawn = w.total_at(T0, {"A", "B"})
    assert drawn <= 32.0, f"A {w.stations['A'].draw_at(T0)} + B {w.stations['B'].draw_at(T0)}"


async def test_a_station_above_its_profile_stays_counted_so_after_the_retry() -> None:
    """A station whose composite schedule lets its car draw 32 A is counted so, and after the
    retry its profile is sent again and its composite asked again: still counted at 32 A."""
    w = World(["A", "B"])
    await w.setup()
    w.bal.retry_s = 0.1
    send = w.commands.send

    async def headstrong(station_id: str, action: str, payload: dict) -> object:
        if station_id == "A" and action == "GetCompositeSchedule":
            w.stations["A"].received.append({"action": action})
            return SimpleNamespace(
                response={
                    "status": "Accepted",
                    "schedule": {
                        "chargingRateUnit": "A",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 32.0}],
                    },
                }
            )
        return await send(station_id, action, payload)

    w.commands.send = headstrong  # type: ignore[method-assign]
    w.start_tx("B")
    await w.settle()
    w.start_tx("A")
    await w.settle()
    assert w.bal.preview("s").of("A/1").current_a == 32.0  # counted at its composite
    await asyncio.sleep(0.5)  # the retry
    await w.settle()
    a_real = 32.0  # what the composite says the car may draw
    b = w.stations["B"].draw_at(T0)
    asks = sum(1 for r in w.stations["A"].received if r["action"] == "GetCompositeSchedule")
    assert a_real + b <= 32.0, (b, w.bal.preview("s"), asks)


async def test_a_limit_moved_a_minute_earlier_is_sent() -> None:
    """A grid operator moves a lowered limit 60 s earlier: the cars' new schedules go out, so
    they drop when the limit does."""
    w = World(["A", "B"])
    await w.setup()
    at = T0 + timedelta(hours=1)
    w.bal.set_timeline("s", "oscp", [LimitBlock("grid", CircuitLimit(12.0), at, None)])
    w.start_tx("A")
    w.start_tx("B")
    await w.settle()
    earlier = at - timedelta(seconds=60)
    w.bal.set_timeline("s", "oscp", [LimitBlock("grid", CircuitLimit(12.0), earlier, None)])
    await w.settle()
    moment = earlier + timedelta(seconds=1)
    drawn = w.total_at(moment, {"A", "B"})
    assert drawn <= 12.0, [w.stations[s].draw_at(moment) for s in "AB"]


async def test_a_station_gone_before_its_decrease_holds_the_rises_back() -> None:
    """B's connection drops between the plan and the sending of B's lower current: B's car
    keeps its 16 A, so the others are not raised as if it had come down."""
    w = World(["A", "B", "C"])
    await w.setup()
    w.start_tx("A")
    w.start_tx("B")
    await w.settle()
    send = w.commands.send

    async def dropping(station_id: str, action: str, payload: dict) -> object:
        if station_id == "A" and action == "SetChargingProfile":
            w.stations["B"].online = False  # B's socket closes; StationOffline not yet handled
        return await send(station_id, action, payload)

    w.commands.send = dropping  # type: ignore[method-assign]
    w.start_tx("C")
    await w.settle()
    drawn = w.total_at(T0, {"A", "B", "C"})
    assert drawn <= 32.0, [w.stations[s].draw_at(T0) for s in "ABC"]


async def test_needs_told_before_the_transaction_are_kept_for_it() -> None:
    """ISO 15118 tells a car's needs before the transaction starts (TxStartPoint after
    authorization): the answer was Accepted, so they shape the car's profile once it does."""
    w = World(["A"])
    await w.setup()
    needs = events.ChargingNeeds(
        station_id="A", at=T0, evse_id=1, energy_wh=5000.0, max_current_a=10.0
    )
    w.bal.on_event(Envelope(seq=1, event=needs))
    w.start_tx("A")
    await w.settle()
    known = w.bal.session_needs("A", 1)
    assert known is not None and (known["energy_wh"], known["max_current_a"]) == (5000.0, 10.0)
    assert w.stations["A"].draw_at(T0) == 10.0


async def test_a_resync_takes_in_missed_starts_and_lets_go_of_missed_ends() -> None:
    """In a cluster, events from other nodes may be lost: the database has the last word."""
    w = World(["A", "B"])
    await w.setup()
    w.start_tx("A")  # started here; its end will be missed
    await w.settle()
    assert w.stations["A"].draw_at(T0) == 32.0
    w.store.active = {  # B's start was missed; A's transaction ended
        "B": [
            SimpleNamespace(id=77, station_id="B", evse_id=1, station_tx_id="tx77", started_at=T0)
        ]
    }
    await w.bal.resync()
    await w.settle()
    assert w.bal.session_needs("A", 1) is None
    known = w.bal.session_needs("B", 1)
    assert known is not None and known["transaction_id"] == 77
    assert w.stations["B"].draw_at(T0) == 32.0  # B alone now: all of it
