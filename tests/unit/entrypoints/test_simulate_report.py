"""``chargegrid simulate``'s text report counts and names the CALLERRORs the CSMS answered."""

from __future__ import annotations

import pytest

from chargegrid.entrypoints.cli_simulate import _print_report
from chargegrid.testing.simulator.stats import Stats


def test_the_text_report_counts_callerrors(capsys: pytest.CaptureFixture[str]) -> None:
    stats = Stats()
    stats.answered("Heartbeat", 0.002)
    stats.call_error("Authorize", "NotSupported")
    stats.call_error("Authorize", "NotSupported")
    stats.failed("MeterValues", "timeout")
    report = stats.report() | {
        "stations": 2,
        "versions": {"1.6": 2},
        "duration_s": 5,
        "messages_per_s": 10,
        "connects": 2,
    }
    _print_report(report)
    out = capsys.readouterr().out
    assert "3 errors" in out  # two CALLERRORs and a call not answered
    assert "CALLERRORs: Authorize: NotSupported 2" in out
    assert "failed calls: MeterValues: timeout 1" in out
