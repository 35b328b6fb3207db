"""run_eagerly: a handler runs at once, and in a task only from where it suspends."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from chargegrid.service.ocpp.eager import run_eagerly

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


class Outcome:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, BaseException | None]] = []
        self.done = asyncio.get_running_loop().create_future()

    def __call__(self, result: Any, error: BaseException | None) -> None:
        self.calls.append((result, error))
        self.done.set_result(None)


def start(coro: Any, tasks: set[asyncio.Task[None]] | None = None) -> Outcome:
    outcome = Outcome()
    context = contextvars.copy_context()
    context.run(VAR.set, "in the unit")
    run_eagerly(coro, context, outcome, set() if tasks is None else tasks)
    return outcome


async def test_a_coroutine_that_does_not_suspend_finishes_before_the_call_returns() -> None:
    async def handler() -> str:
        return VAR.get()

    tasks: set[asyncio.Task[None]] = set()
    outcome = start(handler(), tasks)
    assert outcome.calls == [("in the unit", None)]
    assert not tasks
    assert VAR.get() == "unset"  # the caller's context is untouched


async def test_an_error_before_any_suspension_is_handed_over() -> None:
    async def handler() -> str:
        raise ValueError("bad")

    outcome = start(handler())
    [(result, error)] = outcome.calls
    assert result is None and isinstance(error, ValueError)


async def test_a_suspended_coroutine_goes_on_in_a_task_in_the_same_context() -> None:
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handler() -> tuple[int, str]:
        value = await gate
        await asyncio.sleep(0)  # a bare yield as well
        return value, VAR.get()

    tasks: set[asyncio.Task[None]] = set()
    outcome = start(handler(), tasks)
    assert outcome.calls == [] and len(tasks) == 1
    gate.set_result(7)
    await asyncio.wait_for(outcome.done, 5)
    assert outcome.calls == [((7, "in the unit"), None)]
    await asyncio.sleep(0)
    assert not tasks  # forgotten once done


async def test_the_exception_of_an_awaited_future_reaches_the_coroutine() -> None:
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def handler() -> str:
        try:
            await gate
        except KeyError:
            return "caught"
        return "not raised"

    outcome = start(handler())
    gate.set_exception(KeyError("x"))
    await asyncio.wait_for(outcome.done, 5)
    assert outcome.calls == [("caught", None)]


async def test_an_error_after_a_suspension_is_handed_over() -> None:
    async def handler() -> str:
        await asyncio.sleep(0.001)
        raise RuntimeError("later")

    outcome = start(handler())
    await asyncio.wait_for(outcome.done, 5)
    [(result, error)] = outcome.calls
    assert result is None and isinstance(error, RuntimeError)


async def test_cancelling_the_task_closes_the_coroutine() -> None:
    closed: list[bool] = []

    async def handler() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            closed.append(True)

    tasks: set[asyncio.Task[None]] = set()
    outcome = start(handler(), tasks)
    [task] = tasks
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed == [True]
    assert outcome.calls == []
