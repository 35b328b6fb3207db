"""What the OCPP server counts as it goes: plain integers, cheap on the message path, read by
the metrics endpoint when it is scraped (see :mod:`chargegrid.entrypoints.api.metrics`)."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

#: Upper bounds (seconds) of the answer-time buckets; the last bucket is everything above.
LATENCY_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Latencies:
    """A histogram: counts per bucket of :data:`LATENCY_BOUNDS` (plus one above), and the sum."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BOUNDS, seconds)] += 1
        self.total += seconds


@dataclass
class ServerStats:
    """Station messages by action and result (``ok`` or the CallError code sent back), the
    time from a CALL's arrival to its answer by action, and rejected input by error code."""

    messages: Counter[tuple[str, str]] = field(default_factory=Counter)
    latency: dict[str, Latencies] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    refused_handshakes: int = 0  # TLS or WebSocket handshakes refused (each one is logged)

    def answered(self, action: str, result: str, seconds: float) -> None:
        self.messages[(action, result)] += 1
        latencies = self.latency.get(action)
        if latencies is None:
            latencies = self.latency[action] = Latencies()
        latencies.observe(seconds)
