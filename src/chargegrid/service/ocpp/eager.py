"""Run a coroutine at once, and in a task only if it suspends.

Most OCPP messages are handled without waiting for anything (the store keeps what they read in
memory and queues what they write, see :class:`~chargegrid.service.ports.WriteUnit`), so a task
per message (created, scheduled, stepped, its completion scheduled) is pure overhead: about a
fifth of the event loop's time in benchmarks/ocpp_throughput.py. Python 3.12's eager task factory
does the same for every task; chargegrid supports 3.11, so this does it for handlers only.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

Finish = Callable[[T | None, BaseException | None], None]


def run_eagerly(
    coro: Coroutine[Any, Any, T],
    context: contextvars.Context,
    finish: Finish[T],
    tasks: set[asyncio.Task[None]],
) -> None:
    """Step ``coro`` in ``context`` now; call ``finish(result, None)`` or ``finish(None, error)``
    when it ends, now or later. If it suspends, a task in ``tasks`` (kept there until it ends)
    drives the rest; cancelling that task closes ``coro``, and ``finish`` is not called.
    ``finish`` must not raise."""
    try:
        awaited = context.run(coro.send, None)
    except StopIteration as stop:
        finish(stop.value, None)
        return
    except Exception as exc:  # handed to finish, which answers the station
        finish(None, exc)
        return
    task = asyncio.get_running_loop().create_task(_resume(coro, awaited, finish), context=context)
    tasks.add(task)

    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        coro.close()  # a no-op once it ended; runs its cleanup if the task was cancelled

    task.add_done_callback(done)


async def _resume(coro: Coroutine[Any, Any, T], awaited: Any, finish: Finish[T]) -> None:
    """Drive ``coro`` on from where it suspended, as a task would: wait for the future it
    yielded (or yield to the loop for a bare ``yield``), then send it on."""
    try:
        while True:
            if awaited is None:
                await asyncio.sleep(0)
            else:
                awaited._asyncio_future_blocking = False  # taken, as Task does
                await _settled(awaited)
            try:
                awaited = coro.send(None)
            except StopIteration as stop:
                finish(stop.value, None)
                return
    except Exception as exc:  # handed to finish, which answers the station
        finish(None, exc)


async def _settled(future: asyncio.Future[Any]) -> None:
    """Wait until ``future`` is done without taking its result: the coroutine that awaited it
    takes the result (or the exception) itself when sent on."""
    if not future.done():
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake(_: asyncio.Future[Any]) -> None:
            if not waiter.done():
                waiter.set_result(None)

        future.add_done_callback(wake)
        await waiter
