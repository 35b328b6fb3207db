"""A fleet's scenario: the options of ``chargegrid simulate``, also read from a TOML or JSON file.

The file's keys are the options' names with underscores (``meter_interval = 5``), at the top level
or under ``[simulate]``; options given on the command line win over the file. Times are seconds,
powers watts; ``idle``, ``session`` and ``fault_time`` are ``[shortest, longest]`` ranges each
draw is taken uniformly from.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from chargegrid.testing.simulator.station import Params

Positive = Annotated[float, msgspec.Meta(gt=0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Share = Annotated[float, msgspec.Meta(ge=0, le=1)]
Range = tuple[NonNegative, NonNegative]


class ScenarioError(Exception):
    """The scenario file cannot be read, or a value breaks its rule (the message says which)."""


class Scenario(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Everything a fleet's run depends on; the defaults make a lively demonstration."""

    url: str = "ws://127.0.0.1:9000/ocpp"
    stations: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10
    version: Literal["1.6", "2.0.1", "mixed"] = "mixed"
    prefix: Annotated[str, msgspec.Meta(max_length=40)] = "SIM-"
    first: Annotated[int, msgspec.Meta(ge=0)] = 1  # number of the first station
    tokens: list[Annotated[str, msgspec.Meta(min_length=1, max_length=20)]] = []
    duration: NonNegative = 0.0  # 0: until interrupted
    rate: NonNegative = 20.0  # connections opened per second; 0: all at once
    meter_interval: Positive = 10.0
    seed: int = 1
    password: Annotated[str, msgspec.Meta(min_length=16, max_length=40)] | None = None
    connectors: Annotated[int, msgspec.Meta(ge=1, le=8)] = 1
    max_power: Positive = 11_000.0
    first_arrival: NonNegative = 20.0
    idle: Range = (60.0, 600.0)
    session: Range = (1200.0, 3600.0)
    fault_chance: Share = 0.03
    fault_time: Range = (30.0, 300.0)
    reconnects_per_hour: NonNegative = 0.1
    call_timeout: Positive = 30.0
    api_url: str = "http://127.0.0.1:8080"
    prepare: bool = True

    def __post_init__(self) -> None:
        for name in ("idle", "session", "fault_time"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name}: the shortest ({low:g}) is longer than the longest")
        if not self.url.startswith(("ws://", "wss://")):
            raise ValueError("url must start with ws:// or wss://")

    def station_ids(self) -> list[str]:
        width = max(5, len(str(self.first + self.stations - 1)))
        return [
            f"{self.prefix}{n:0{width}d}" for n in range(self.first, self.first + self.stations)
        ]

    def version_of(self, index: int) -> str:
        """Mixed fleets alternate, starting with 1.6."""
        if self.version != "mixed":
            return self.version
        return "1.6" if index % 2 == 0 else "2.0.1"

    def tokens_of(self, index: int) -> tuple[str, ...]:
        """The id tokens station ``index`` uses: the scenario's, or one of its own."""
        if self.tokens:
            return tuple(self.tokens)
        return (f"{self.prefix[:8]}T{self.first + index:06d}"[:20],)

    def params(self, index: int) -> Params:
        return Params(
            connectors=self.connectors,
            tokens=self.tokens_of(index),
            meter_interval_s=self.meter_interval,
            first_arrival_s=self.first_arrival,
            idle_s=self.idle,
            session_s=self.session,
            max_power_w=self.max_power,
            fault_chance=self.fault_chance,
            fault_s=self.fault_time,
            reconnect_per_h=self.reconnects_per_hour,
            call_timeout_s=self.call_timeout,
        )


def load(path: Path | None, overrides: dict[str, Any]) -> Scenario:
    """The scenario of ``path`` (TOML by its suffix, JSON otherwise) with ``overrides`` on top;
    None values in ``overrides`` are options not given."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = path.read_text()
            raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (OSError, ValueError) as exc:  # TOMLDecodeError and JSONDecodeError included
            raise ScenarioError(f"cannot read the scenario {path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ScenarioError(f"the scenario {path} must be a table of keys")
        section = raw.get("simulate", raw)
        data = dict(section) if isinstance(section, dict) else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return msgspec.convert(data, Scenario, strict=False)
    except msgspec.ValidationError as exc:
        raise ScenarioError(f"scenario: {exc}") from exc
