"""Schedules as the balancer keeps them, and the charging profiles that carry them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from chargegrid.domain.site import EvseSlot
from chargegrid.service import charging_profiles as cp

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_value_at_reads_the_period_in_force() -> None:
    schedule = [(at(0), 16.0), (at(3600), 6.0), (at(7200), 20.0)]
    assert cp.value_at(schedule, at(-10)) == 16.0  # before it starts: its first period
    assert cp.value_at(schedule, at(3599)) == 16.0
    assert cp.value_at(schedule, at(3600)) == 6.0
    assert cp.value_at(schedule, at(99_999)) == 20.0
    assert cp.value_at(None, at(0)) is None and cp.value_at([], at(0)) is None


def test_the_same_schedule_made_later_is_the_same() -> None:
    held = [(at(0), 16.0), (at(3600), 6.0)]
    assert cp.same([(at(40), 16.05), (at(3600.5), 6.0)], held)  # made later, the same dip
    assert not cp.same([(at(40), 16.1), (at(3600), 6.0)], held)  # 0.1 A is a change
    assert not cp.same([(at(40), 16.0), (at(3540), 6.0)], held)  # the dip moved a minute
    assert not cp.same([(at(40), 16.0)], held)
    assert not cp.same([(at(40), 16.0)], None)


def test_lower_somewhere_looks_at_every_moment_ahead() -> None:
    old = [(at(0), 16.0), (at(3600), 6.0)]
    assert not cp.lower_somewhere([(at(10), 20.0), (at(3600), 6.0)], old, at(10))
    assert cp.lower_somewhere([(at(10), 20.0), (at(1800), 10.0)], old, at(10))
    assert cp.lower_somewhere([(at(10), 20.0)], None, at(10))


def test_the_wire_schedule_has_distinct_offsets_and_never_rounds_up() -> None:
    schedule = [(at(0), 16.66), (at(0.4), 10.0), (at(60), 10.04), (at(120), 6.0)]
    wire = cp.wire_schedule(schedule, 3)
    assert wire["startSchedule"] == T0.isoformat()
    assert [(p["startPeriod"], p["limit"]) for p in wire["chargingSchedulePeriod"]] == [
        (0, 10.0),  # the later of two moments in the same second
        (120, 6.0),  # 10.04 steps down to 10.0, the same as before: merged
    ]
    assert cp.wire_schedule([(at(0), 16.6)], 1)["chargingSchedulePeriod"][0]["limit"] == 16.6


def test_a_rise_never_comes_early_nor_a_fall_late() -> None:
    schedule = [(at(0), 16.0), (at(59.4), 6.0), (at(119.4), 20.0)]
    periods = cp.wire_schedule(schedule, 3)["chargingSchedulePeriod"]
    assert [(p["startPeriod"], p["limit"]) for p in periods] == [(0, 16.0), (59, 6.0), (120, 20.0)]


def test_upper_and_capped_schedules() -> None:
    a = [(at(0), 10.0), (at(3600), 20.0)]
    b = [(at(0), 16.0), (at(1800), 6.0)]
    assert cp.upper(a, b) == [(at(0), 16.0), (at(1800), 10.0), (at(3600), 20.0)]
    long = [(at(i * 60), float(i % 2 * 10 + 6)) for i in range(30)]
    short = cp.capped(long, 24)
    assert len(short) == 24 and short[:23] == long[:23]
    assert short[-1] == (long[23][0], 6.0)  # the lowest of the rest, from the 24th moment


def test_profiles_of_both_versions() -> None:
    slot = EvseSlot("CS-1", 2, "grid", fallback_a=8.0)
    tx16 = cp.tx_profile("1.6", slot, 41, "41", [(T0, 10.0)], 3)
    assert tx16["connectorId"] == 2
    assert tx16["csChargingProfiles"]["transactionId"] == 41
    assert tx16["csChargingProfiles"]["chargingProfileId"] == cp.TX_PROFILE_ID + 2
    tx201 = cp.tx_profile("2.0.1", slot, 41, "tx-41", [(T0, 10.0)], 1)
    assert tx201["chargingProfile"]["transactionId"] == "tx-41"
    assert tx201["chargingProfile"]["chargingSchedule"][0]["id"] == cp.TX_PROFILE_ID + 2
    default = cp.default_profile("2.0.1", slot, T0)
    periods = default["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
    assert periods == [{"startPeriod": 0, "limit": 8.0, "numberPhases": 3}]


def test_composite_limit_of_huge_numbers_is_none_not_an_overflow() -> None:
    periods = [{"startPeriod": 0, "limit": 10**400}]
    answer = {"status": "Accepted", "schedule": {"chargingSchedulePeriod": periods}}
    assert cp.composite_limit(answer, 230.0, 3) is None
    periods = [{"startPeriod": 0, "limit": 6900, "numberPhases": 10**400}]
    answer = {
        "status": "Accepted",
        "schedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": periods},
    }
    assert cp.composite_limit(answer, 230.0, 1) == 30.0


def test_composite_limit_of_both_versions() -> None:
    v16 = {
        "status": "Accepted",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}, {"limit": 16.0}],
        },
    }
    assert cp.composite_limit(v16, 230.0, 3) == 16.0
    v201 = {
        "status": "Accepted",
        "schedule": {
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6900, "numberPhases": 1}],
        },
    }
    assert cp.composite_limit(v201, 230.0, 3) == 30.0
    assert cp.composite_limit({"status": "Rejected"}, 230.0, 3) is None
    assert cp.composite_limit({"status": "Accepted"}, 230.0, 3) is None


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)


@given(
    st.fixed_dictionaries(
        {"status": st.sampled_from(["Accepted", "Rejected"])},
        optional={
            "schedule": _json,
            "chargingSchedule": st.fixed_dictionaries(
                {},
                optional={
                    "chargingRateUnit": st.sampled_from(["A", "W"]) | _json,
                    "chargingSchedulePeriod": st.lists(
                        st.dictionaries(st.sampled_from(["limit", "numberPhases"]), _json) | _json,
                        max_size=3,
                    )
                    | _json,
                },
            ),
        },
    )
)
def test_composite_limit_of_anything_a_station_sends_never_raises(answer: dict[str, Any]) -> None:
    found = cp.composite_limit(answer, 230.0, 3)
    assert found is None or 0 <= found < float("inf")
