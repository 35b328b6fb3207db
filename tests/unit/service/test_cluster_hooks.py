"""A node's connection hooks under a storm: the stations' state is read a few at a time, and a
station whose state cannot be read is asked to reconnect rather than served without it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from chargegrid.service.cluster.node import _ADOPTING, ClusterHooks


def _hooks(fail: bool) -> tuple[ClusterHooks, dict[str, Any]]:
    seen: dict[str, Any] = {"reading": 0, "most": 0, "disconnected": []}

    async def adopt(station_id: str) -> None:
        seen["reading"] += 1
        seen["most"] = max(seen["most"], seen["reading"])
        await asyncio.sleep(0.01)
        seen["reading"] -= 1

    async def connected(ctx: Any) -> None:
        if fail:
            raise TimeoutError("the pool's connections are all taken")

    node = SimpleNamespace(
        claim=lambda station_id, version: None,
        state=SimpleNamespace(adopt=adopt),
        local=SimpleNamespace(
            disconnect=lambda station_id, reason: seen["disconnected"].append(station_id)
        ),
    )
    inner = SimpleNamespace(connected=connected)
    return ClusterHooks(node, inner), seen  # type: ignore[arg-type]


async def test_a_storm_reads_a_few_stations_at_a_time() -> None:
    hooks, seen = _hooks(fail=False)
    ctxs = [SimpleNamespace(station_id=f"S{i}", ocpp_version="1.6") for i in range(50)]
    await asyncio.gather(*(hooks.connected(ctx) for ctx in ctxs))  # type: ignore[arg-type]
    assert 1 < seen["most"] <= _ADOPTING
    assert seen["disconnected"] == []


async def test_a_station_whose_state_cannot_be_read_is_asked_to_reconnect() -> None:
    hooks, seen = _hooks(fail=True)
    ctx = SimpleNamespace(station_id="S1", ocpp_version="2.0.1")
    await hooks.connected(ctx)  # type: ignore[arg-type]  # no exception escapes the hook
    assert seen["disconnected"] == ["S1"]
