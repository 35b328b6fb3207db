"""A bounded queue for one live reader (an event stream, a message-log tail).

The producer :meth:`Feed.offer`s items synchronously; the reader awaits :meth:`Feed.next`, which
gives None after a quiet interval so the reader can send keep-alives. A reader more than
``limit`` items behind is cut off (:class:`Lagged`) rather than letting the process's memory
grow; once closed, :meth:`Feed.next` drains what is queued, then raises :class:`Closed`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lagged(Exception):
    """The reader fell more than its limit behind and was cut off."""


class Closed(Exception):
    """The feed was closed."""


class Feed(Generic[T]):
    """Close it when done; ``on_close`` runs once, then (the producer lets go of it)."""

    def __init__(
        self,
        limit: int,
        backlog: Iterable[T] = (),
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._queue: deque[T] = deque(backlog)
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None
        self._lagged = False
        self._closed = False
        self.on_close = on_close

    def offer(self, item: T) -> None:
        if self._closed:
            return
        if len(self._queue) >= self._limit:
            self._lagged = True
            self.close()
        else:
            self._queue.append(item)
        self._wake()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.on_close is not None:
                self.on_close()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self, timeout: float) -> T | None:
        """The next item, or None after ``timeout`` seconds without one (for keep-alives).

        Raises :class:`Lagged` if the reader was cut off, :class:`Closed` once closed.
        """
        if not self._queue and not self._closed:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                return None
            finally:
                self._waiter = None
        if self._queue:
            return self._queue.popleft()
        if self._lagged:
            raise Lagged("the reader fell too far behind")
        raise Closed
