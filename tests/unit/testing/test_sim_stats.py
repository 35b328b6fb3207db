"""The fleet's statistics: the three ways a station's call ends are counted apart, and both the
live summary and the final report show each."""

from __future__ import annotations

from chargegrid.testing.simulator import Fleet, Scenario
from chargegrid.testing.simulator.stats import Stats

T0 = 1_800_000_000.0


def _recorded() -> Stats:
    stats = Stats()
    stats.answered("Heartbeat", 0.010)
    stats.answered("Heartbeat", 0.030)
    stats.call_error("Heartbeat", "InternalError")
    stats.call_error("Heartbeat", "InternalError")
    stats.call_error("Authorize", "NotSupported")
    stats.failed("MeterValues", "timeout")
    return stats


def test_callerrors_are_counted_by_action_and_code_apart_from_latencies_and_failures() -> None:
    stats = _recorded()
    report = stats.report()
    assert report["latency_ms"] == {"Heartbeat": {"count": 2, "p50": 30.0, "p99": 30.0}}
    assert report["call_errors"] == {
        "Authorize": {"NotSupported": 1},
        "Heartbeat": {"InternalError": 2},
    }
    assert report["failed_calls"] == {"MeterValues: timeout": 1}
    assert stats.call_error_count == 3
    assert stats.error_count == 4  # every CALLERROR and failed call is an error of the run


def test_the_live_summary_and_the_fleet_report_show_the_callerrors() -> None:
    stats = _recorded()
    fleet = Fleet(Scenario(stations=2), clock=lambda: T0, stats=stats)
    summary = fleet.summary()
    assert (summary.call_errors, summary.errors) == (3, 4)
    assert fleet.report()["call_errors"] == stats.report()["call_errors"]
