"""A car on a charger: its battery and how much power it takes, pure arithmetic.

The charging curve is the usual one of lithium-ion batteries: constant current (so about
constant power) up to ``taper_soc``, then a taper to a trickle as the battery fills, and nothing
once the car has what its driver asked for (``target_soc``). What the car draws is the lowest of
what it can take at its state of charge, what the charger can give and what the charging
profiles in force allow (:mod:`.profiles`).

:class:`Rng` is a SplitMix64 generator: a station needs a few draws a minute, and
``random.Random`` keeps 2.5 KiB of state, which counts at tens of thousands of stations.
"""

from __future__ import annotations

from dataclasses import dataclass

_MASK = (1 << 64) - 1
#: The trickle at the end of the taper, as a share of the car's maximum power.
_TRICKLE = 0.05
#: Longest step of the integration, s: the taper bends within a meter interval.
_STEP_S = 5.0


class Rng:
    """SplitMix64 (Steele, Lea, Flood 2014): small, fast, and the same draws for the same seed."""

    __slots__ = ("_state",)

    def __init__(self, seed: int) -> None:
        self._state = seed & _MASK

    def random(self) -> float:
        """A float in [0, 1)."""
        self._state = (self._state + 0x9E3779B97F4A7C15) & _MASK
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return ((z ^ (z >> 31)) >> 11) * (1.0 / (1 << 53))

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.random()

    def chance(self, probability: float) -> bool:
        return self.random() < probability

    def pick(self, items: tuple[str, ...]) -> str:
        return items[int(self.random() * len(items)) % len(items)]


@dataclass(slots=True)
class Car:
    """One car's battery while it is plugged in. Energies in Wh, powers in W."""

    capacity_wh: float
    soc: float  # 0..1
    max_power_w: float  # what its on-board charger takes
    target_soc: float = 1.0
    taper_soc: float = 0.8

    @classmethod
    def arriving(cls, rng: Rng, max_power_w: float) -> Car:
        """A car of 40 to 100 kWh arriving with 10 to 60 % and wanting 80 to 100 %."""
        return cls(
            capacity_wh=rng.uniform(40_000, 100_000),
            soc=rng.uniform(0.10, 0.60),
            max_power_w=max_power_w * rng.uniform(0.7, 1.0),
            target_soc=rng.uniform(0.80, 1.0),
        )

    @property
    def full(self) -> bool:
        return self.soc >= self.target_soc

    def acceptance_w(self) -> float:
        """What the car takes at its state of charge: flat, then a linear taper to a trickle."""
        if self.full:
            return 0.0
        if self.soc <= self.taper_soc:
            return self.max_power_w
        left = (1.0 - self.soc) / (1.0 - self.taper_soc)
        return self.max_power_w * max(_TRICKLE, left)

    def power_w(self, limit_w: float) -> float:
        """What it draws under ``limit_w`` (the charger's and the profiles' lowest)."""
        return max(0.0, min(self.acceptance_w(), limit_w))

    def charge(self, seconds: float, limit_w: float) -> float:
        """Charge for ``seconds`` under ``limit_w``; returns the energy taken, Wh."""
        taken = 0.0
        while seconds > 1e-9:
            step = min(seconds, _STEP_S)
            energy = self.power_w(limit_w) * step / 3600.0
            room = (self.target_soc - self.soc) * self.capacity_wh
            energy = max(0.0, min(energy, room))
            self.soc += energy / self.capacity_wh
            taken += energy
            seconds -= step
        return taken
