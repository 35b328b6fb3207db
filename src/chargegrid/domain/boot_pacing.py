"""Pacing a boot storm with the BootNotification interval (OCPP 1.6 4.2, 2.0.1 B02).

When every station of a network boots at once (a power cut ends, a node restarts), the CSMS may
answer BootNotification Pending with an interval: the station sends nothing but
BootNotification (and Heartbeat) until it boots again after that interval. The rules:

* At most ``per_second`` boots are taken per second, with a burst of ``burst`` at once; each
  boot taken holds a slot of ``1 / per_second`` s on a timeline.
* A boot with no slot free now is given the next free slot, and told to come back then: Pending
  with the seconds until that slot, rounded up. The slot is kept for that station, so the
  stations told to wait come back spread out, in the order they first came, and each finds its
  slot free when it returns (from half a second early on: a station's timer is not exact).
* A station that comes back much later than its slot (more than ``stale_s``) takes a new one;
  slots kept and not used are forgotten after ``stale_s``.
* ``per_second`` 0 turns pacing off: every boot is taken at once.

Times are seconds (the CSMS's clock), given by the caller.
"""

from __future__ import annotations

import math

_EARLY_S = 0.5


class BootPacer:
    """Which boots to take now, and when to tell the others to come back."""

    def __init__(self, per_second: float, burst: int = 50, stale_s: float = 300.0) -> None:
        if per_second < 0 or burst < 1:
            raise ValueError("per_second must be 0 or more and burst at least 1")
        self.per_second = per_second
        self.burst = burst
        self.stale_s = stale_s
        self._next = -math.inf  # when the next slot frees
        self._kept: dict[str, float] = {}  # station -> the slot it was told to come back at
        self._pruned_at = -math.inf

    def retry_after_s(self, station_id: str, now: float) -> int:
        """0: take this boot now; else the interval to answer Pending with (1 s or more)."""
        if self.per_second <= 0:
            return 0
        if now - self._pruned_at > self.stale_s:
            self._forget_stale(now)
        kept = self._kept.pop(station_id, None)
        if kept is not None and kept - _EARLY_S <= now <= kept + self.stale_s:
            return 0
        if kept is not None and now < kept:  # back too early: the same slot, not a new one
            self._kept[station_id] = kept
            return max(1, math.ceil(kept - now))
        step = 1.0 / self.per_second
        slot = max(self._next, now - (self.burst - 1) * step)
        self._next = slot + step
        if slot <= now:
            return 0
        self._kept[station_id] = slot
        return max(1, math.ceil(slot - now))

    @property
    def waiting(self) -> int:
        """Stations told to come back, not yet back."""
        return len(self._kept)

    def _forget_stale(self, now: float) -> None:
        self._pruned_at = now
        stale = [s for s, at in self._kept.items() if now > at + self.stale_s]
        for station_id in stale:
            del self._kept[station_id]
