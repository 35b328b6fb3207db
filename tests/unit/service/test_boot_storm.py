"""A boot storm on the use cases: boots over the rate are answered Pending with an interval."""

from __future__ import annotations

from chargegrid.domain.model import Registration, UnknownStationPolicy
from chargegrid.service.central import BootInfo, CentralSystem, Settings
from chargegrid.testing.fakes import FakeStore, FixedClock


def boot(station_id: str) -> BootInfo:
    return BootInfo(station_id, "1.6", "ACME", "W1", reason="PowerUp")


async def test_boots_over_the_rate_are_pending_and_come_back_accepted() -> None:
    clock = FixedClock()
    settings = Settings(unknown_stations=UnknownStationPolicy.ACCEPT, boot_rate=10)
    central = CentralSystem(FakeStore(), clock, settings)
    decisions = [await central.boot(boot(f"CS-{n}")) for n in range(100)]
    taken = [d for d in decisions if d.registration is Registration.ACCEPTED]
    paced = [d for d in decisions if d.registration is Registration.PENDING]
    assert len(taken) == central.boot_pacer.burst
    assert [d.interval_s for d in paced] == sorted(d.interval_s for d in paced)
    assert paced[0].interval_s >= 1 and paced[-1].interval_s <= 10
    # A paced boot read and wrote nothing: the station is not stored yet
    assert await central.store.get_station("CS-99") is None

    clock.advance(paced[-1].interval_s)
    again = await central.boot(boot("CS-99"))
    assert again.registration is Registration.ACCEPTED
    assert again.interval_s == settings.heartbeat_interval_s


async def test_no_pacing_by_default() -> None:
    central = CentralSystem(FakeStore(), FixedClock(), Settings(UnknownStationPolicy.ACCEPT))
    for n in range(500):
        assert (await central.boot(boot(f"CS-{n}"))).registration is Registration.ACCEPTED
