"""The cluster's jobs run on the node holding the lease, and only there: a second node waits,
and takes over when the holder's connection breaks."""

from __future__ import annotations

import pytest

from chargegrid.protocols.ocpp16 import messages as m16
from chargegrid.service.cluster.lease import HolderOnlyCommands, Job, LeaseKeeper
from chargegrid.service.commands import Commands, StationOfflineError
from chargegrid.testing.cluster import FakeLease, LockTable


class Balancer:
    def __init__(self) -> None:
        self.running = False
        self.starts = 0

    async def start(self) -> None:
        self.running, self.starts = True, self.starts + 1

    async def stop(self) -> None:
        self.running = False


def _keeper(table: LockTable, job: Balancer) -> tuple[LeaseKeeper, FakeLease]:
    lease = FakeLease(table)
    return LeaseKeeper(lease, [Job("balancer", job.start, job.stop)]), lease


async def test_one_node_runs_the_jobs_the_other_takes_over_when_it_loses_the_lease() -> None:
    table = LockTable()
    first, second = Balancer(), Balancer()
    keeper1, lease1 = _keeper(table, first)
    keeper2, _ = _keeper(table, second)
    await keeper1.step()
    await keeper2.step()
    assert (keeper1.held, keeper2.held) == (True, False)
    assert (first.running, second.running) == (True, False)

    lease1.cut()  # its database connection broke: the lock is free, its check fails
    await keeper2.step()
    await keeper1.step()
    assert (keeper1.held, keeper2.held) == (False, True)
    assert (first.running, second.running) == (False, True)

    await keeper1.step()  # still unreachable: tries, does not hold, does not run
    assert not keeper1.held and not first.running
    await keeper2.stop()
    assert not second.running and table.holder is None


async def test_a_job_that_fails_to_start_does_not_keep_the_others_from_running() -> None:
    table = LockTable()
    ok = Balancer()

    async def broken() -> None:
        raise RuntimeError("no")

    keeper = LeaseKeeper(
        FakeLease(table), [Job("broken", broken, ok.stop), Job("ok", ok.start, ok.stop)]
    )
    await keeper.step()
    assert keeper.held and ok.running
    await keeper.stop()
    assert not ok.running


async def test_a_balancer_on_a_node_without_the_lease_sends_nothing() -> None:
    commands = HolderOnlyCommands(Commands(None, None, None), lambda: False)  # type: ignore[arg-type]
    with pytest.raises(StationOfflineError, match="does not hold the cluster's lease"):
        await commands.send("CP-1", "Reset", m16.ResetRequest(type="Soft"))
