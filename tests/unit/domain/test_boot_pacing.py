"""The boot-storm pacer: slots on a timeline, kept for the stations told to come back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chargegrid.domain.boot_pacing import BootPacer


def test_off_takes_every_boot() -> None:
    pacer = BootPacer(0)
    assert all(pacer.retry_after_s(f"CS-{n}", 0.0) == 0 for n in range(10_000))


def test_a_storm_is_spread_at_the_rate() -> None:
    pacer = BootPacer(per_second=100, burst=10)
    waits = [pacer.retry_after_s(f"CS-{n}", 1000.0) for n in range(1000)]
    assert waits[:10] == [0] * 10  # the burst
    assert all(w >= 1 for w in waits[10:])
    assert waits == sorted(waits)  # first come, first served
    assert waits[-1] == 10  # 990 slots of 10 ms after the burst
    assert pacer.waiting == 990


def test_a_station_back_at_its_interval_finds_its_slot() -> None:
    pacer = BootPacer(per_second=10, burst=1)
    assert pacer.retry_after_s("A", 0.0) == 0
    wait = pacer.retry_after_s("B", 0.0)
    assert wait == 1
    # Others keep coming meanwhile; B's slot is kept for it
    assert pacer.retry_after_s("C", 0.05) == 1
    assert pacer.retry_after_s("B", 0.0 + wait) == 0
    assert pacer.waiting == 1  # C


def test_back_too_early_keeps_the_same_slot() -> None:
    pacer = BootPacer(per_second=1, burst=1)
    pacer.retry_after_s("A", 0.0)
    assert pacer.retry_after_s("B", 0.0) == 1
    assert pacer.retry_after_s("B", 0.2) == 1  # not pushed behind anyone
    assert pacer.retry_after_s("B", 0.6) == 0  # half a second early is on time


def test_back_long_after_its_slot_takes_a_new_one() -> None:
    pacer = BootPacer(per_second=1, burst=1, stale_s=60)
    pacer.retry_after_s("A", 0.0)
    assert pacer.retry_after_s("B", 0.0) == 1
    assert pacer.retry_after_s("B", 500.0) == 0  # the timeline is free again by then
    assert pacer.waiting == 0


def test_kept_slots_are_forgotten_when_stale() -> None:
    pacer = BootPacer(per_second=1, burst=1, stale_s=10)
    for n in range(5):
        pacer.retry_after_s(f"CS-{n}", 0.0)
    assert pacer.waiting == 4
    pacer.retry_after_s("late", 100.0)
    assert pacer.waiting == 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="per_second"):
        BootPacer(-1)
    with pytest.raises(ValueError, match="burst"):
        BootPacer(10, burst=0)


@given(
    rate=st.floats(min_value=0.5, max_value=1000),
    arrivals=st.lists(st.floats(min_value=0, max_value=100), max_size=200),
)
def test_never_more_than_the_rate_plus_the_burst(rate: float, arrivals: list[float]) -> None:
    """However boots arrive, those taken in any window of t seconds are at most
    burst + rate * t (plus one for the window's edge), and every wait is 1 s or more."""
    pacer = BootPacer(per_second=rate, burst=5)
    taken: list[float] = []
    for n, at in enumerate(sorted(arrivals)):
        wait = pacer.retry_after_s(f"CS-{n}", at)
        assert wait == 0 or wait >= 1
        if wait == 0:
            taken.append(at)
    for i, start in enumerate(taken):
        for j in range(i, len(taken)):
            assert j - i + 1 <= 5 + rate * (taken[j] - start) + 1
