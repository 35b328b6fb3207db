"""What a fleet measured: messages, errors and the latency of each action.

A latency runs from a CALL's frame being handed to the transport to its CALLRESULT arriving. Each
action keeps every latency up to :data:`_KEEP`, then a uniform sample of them (reservoir
sampling), so percentiles stay honest over a long run at a bounded memory.

A station's call ends one of three ways, each counted apart: answered with a CALLRESULT (its
latency), answered with a CALLERROR (by action and error code; no latency), or not answered at
all (a failed call: timed out, cut off by a lost connection, or an invalid CALLRESULT). Every
CALLERROR and failed call is an error of the run (:attr:`Stats.error_count`).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

_KEEP = 20_000


@dataclass(slots=True)
class _Latencies:
    count: int = 0
    kept: list[float] = field(default_factory=list)

    def add(self, value: float, rng: random.Random) -> None:
        self.count += 1
        if len(self.kept) < _KEEP:
            self.kept.append(value)
        else:
            slot = rng.randrange(self.count)
            if slot < _KEEP:
                self.kept[slot] = value

    def percentile(self, q: float) -> float:
        ordered = sorted(self.kept)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


@dataclass
class Stats:
    """The fleet's counters; every station records into the same one (a :class:`Recorder`)."""

    sent: int = 0  # frames written: calls and answers
    received: int = 0
    connects: int = 0
    connect_failures: int = 0
    latencies: dict[str, _Latencies] = field(default_factory=dict)
    call_errors: dict[str, Counter[str]] = field(default_factory=dict)  # action -> code -> n
    failures: Counter[str] = field(default_factory=Counter)  # "action: reason", no answer
    csms_calls: Counter[str] = field(default_factory=Counter)  # answered, by action
    errors: Counter[str] = field(default_factory=Counter)
    _rng: random.Random = field(default_factory=lambda: random.Random(0))  # noqa: S311 - sampling

    # --- Recorder ---------------------------------------------------------------------------

    def answered(self, action: str, latency_s: float) -> None:
        found = self.latencies.get(action)
        if found is None:
            found = self.latencies[action] = _Latencies()
        found.add(latency_s, self._rng)

    def call_error(self, action: str, code: str) -> None:
        self.call_errors.setdefault(action, Counter())[code] += 1

    def failed(self, action: str, reason: str) -> None:
        self.failures[f"{action}: {reason}"] += 1

    def served(self, action: str) -> None:
        self.csms_calls[action] += 1

    def error(self, what: str) -> None:
        self.errors[what] += 1

    # --- reading ----------------------------------------------------------------------------

    @property
    def call_error_count(self) -> int:
        """Station calls the CSMS answered with a CALLERROR."""
        return sum(sum(codes.values()) for codes in self.call_errors.values())

    @property
    def error_count(self) -> int:
        failed = sum(self.failures.values()) + self.call_error_count
        return failed + sum(self.errors.values()) + self.connect_failures

    def report(self) -> dict[str, Any]:
        """Latency per action (count, p50, p99 in ms) of the calls answered with a CALLRESULT,
        CALLERRORs by action and code, calls not answered, CSMS calls answered, errors."""
        return {
            "latency_ms": {
                action: {
                    "count": lat.count,
                    "p50": round(lat.percentile(0.50) * 1000, 2),
                    "p99": round(lat.percentile(0.99) * 1000, 2),
                }
                for action, lat in sorted(self.latencies.items())
            },
            "call_errors": {
                action: dict(codes.most_common())
                for action, codes in sorted(self.call_errors.items())
            },
            "csms_calls_answered": dict(sorted(self.csms_calls.items())),
            "failed_calls": dict(self.failures.most_common()),
            "errors": dict(self.errors.most_common()),
            "frames_sent": self.sent,
            "frames_received": self.received,
            "connects": self.connects,
            "connect_failures": self.connect_failures,
        }
