"""Group commit: one task does every write, many writes share one database transaction.

Callers hand the :class:`Writer` *steps*: statements, each with its parameter rows. The writer
task takes everything queued so far (at most ``batch_max`` writes), runs it in one transaction
through its :class:`Executor`, commits, and only then resolves each caller's future, so an awaited
write is a committed write. :meth:`Writer.submit` queues a write without a future: the write calls
its ``on_settled`` once committed or failed (what a :class:`~.store.WriteUnit` uses to answer a
station with neither a task nor a future per message).
While a commit is in flight, new writes queue up and form the next batch: the busier the store,
the more writes per commit.

Rules:

* Consecutive writes made of the same statements are merged: statement *i* of each runs as one
  ``executemany`` over all their rows. Statements are compared by identity, so callers build
  them once.
* Writes run in the order they were queued.
* If a batch fails, it is rolled back and its writes are re-run one by one, each in its own
  transaction: a bad write fails alone and the others are committed.
* Database errors reach the caller as :class:`~.errors.StorageError` (``IntegrityError`` for a
  broken constraint), raised from the driver's exception.
* A write may carry an ``undo``, called if it fails, before its caller hears of it: what the
  caller kept in memory of the write is taken back first.
* :meth:`Writer.settled` waits until every write queued before it is committed or failed.
* :meth:`Writer.close` lets every write queued before it finish, then stops the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from chargegrid.adapters.storage.errors import IntegrityError, StorageError

log = structlog.get_logger(__name__)

Runs = list[list[tuple[Executable, list[Mapping[str, Any]]]]]


@dataclass(frozen=True, slots=True)
class Step:
    """One statement with the parameter rows of one write (one row, or many for executemany)."""

    statement: Executable
    rows: Sequence[Mapping[str, Any]]


#: Upper bounds of the batch-size buckets of :class:`WriterStats`.
BATCH_BOUNDS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass(slots=True)
class WriterStats:
    """Counters for tests and metrics: ``writes / commits`` is the group-commit factor."""

    writes: int = 0  # writes done, committed or failed
    commits: int = 0  # database transactions committed
    batches: int = 0
    retried_batches: int = 0  # batches that failed and were re-run write by write
    failed_writes: int = 0
    # writes per batch: counts per bucket of BATCH_BOUNDS (and one above), and their sum
    batch_sizes: list[int] = field(default_factory=lambda: [0] * (len(BATCH_BOUNDS) + 1))
    queue_depth: int = 0  # writes waiting, not yet in a batch (as of the last change)


class Write:
    """A queued write. Awaited through its ``future``, or (``submit``) settled by setting
    ``error`` and calling ``on_settled``, without a future or a task in between."""

    __slots__ = ("error", "future", "on_settled", "settled", "shape", "undo", "work")

    def __init__(
        self,
        work: tuple[Step, ...],
        future: asyncio.Future[None] | None,
        undo: Callable[[], None] | None = None,
    ) -> None:
        self.work = work
        self.future = future
        self.undo = undo
        self.error: BaseException | None = None
        self.settled = False
        self.on_settled: Callable[[], None] | None = None
        # writes of the same shape merge
        self.shape = (
            (id(work[0].statement),) if len(work) == 1 else tuple([id(s.statement) for s in work])
        )


class Executor(Protocol):
    """Runs one batch of merged statements in one database transaction."""

    async def transaction(self, runs: Runs) -> None: ...

    async def close(self) -> None: ...


class AsyncExecutor:
    """Through an async engine (PostgreSQL with asyncpg), on one connection kept open: a pool
    check-out and its reset on return cost more than a small batch's writes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None

    async def transaction(self, runs: Runs) -> None:
        if self._conn is not None and self._conn.invalidated:
            await self._conn.close()
            self._conn = None
        if self._conn is None:
            self._conn = await self._engine.connect()
        async with self._conn.begin():
            for run in runs:
                for statement, rows in run:
                    await self._conn.execute(statement, rows)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


class ThreadExecutor:
    """Through a synchronous engine on a thread of its own (SQLite): one hand-off per batch.
    The async adapter hands every call (cursor, execute, fetch, close, commit) to its thread,
    some fifteen hand-offs for a one-statement transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._conn: Connection | None = None
        self._plans: dict[tuple[int, tuple[str, ...]], _Plan] = {}

    async def transaction(self, runs: Runs) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._run, runs)

    def _run(self, runs: Runs) -> None:
        if self._conn is not None and self._conn.invalidated:
            self._conn.close()
            self._conn = None
        if self._conn is None:
            self._conn = self._engine.connect()
        conn = self._conn
        with conn.begin():
            cursor = conn.connection.cursor()
            try:
                for run in runs:
                    for statement, rows in run:
                        plan = self._plan(statement, rows, conn.dialect)
                        if plan is None:  # rows of several shapes: SQLAlchemy sorts them out
                            conn.execute(statement, rows)
                        else:
                            cursor.executemany(plan.sql, [plan.parameters(r) for r in rows])
            except sqlite3.IntegrityError as exc:
                raise IntegrityError(str(exc)) from exc
            except sqlite3.Error as exc:
                raise StorageError(str(exc)) from exc
            finally:
                cursor.close()

    def _plan(
        self, statement: Executable, rows: list[Mapping[str, Any]], dialect: Dialect
    ) -> _Plan | None:
        keys = tuple(rows[0])
        if any(tuple(r) != keys for r in rows):
            return None
        key = (id(statement), keys)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = _Plan.compile(statement, keys, dialect)
        return plan

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._engine.dispose()

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._close)
        self._pool.shutdown(wait=True)


class Writer:
    """The single writer of a store; see the module docstring."""

    def __init__(self, executor: Executor, *, batch_max: int = 1000) -> None:
        if batch_max < 1:
            raise ValueError("batch_max must be at least 1")
        self._executor = executor
        self._batch_max = batch_max
        # A deque and a wake-up future rather than an asyncio.Queue: a put costs a third.
        self._queue: deque[Write] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._closed = False
        self._last: Write | None = None  # the latest write queued
        self._event_loop = asyncio.get_running_loop()  # get_running_loop() calls getpid()
        self._task = self._event_loop.create_task(self._loop(), name="store-writer")
        self.stats = WriterStats()

    async def execute(self, *steps: Step, undo: Callable[[], None] | None = None) -> None:
        """Run the steps in a transaction shared with other writes; return once committed.
        If they fail, ``undo`` is called before the error is raised here."""
        await self._submit(tuple(s for s in steps if s.rows), undo)

    def submit(self, *steps: Step, undo: Callable[[], None] | None = None) -> Write | None:
        """Queue the steps without waiting: the write's ``on_settled`` is called once it is
        committed (``error`` None) or has failed (after ``undo``). None if there was nothing
        to write."""
        if self._closed:
            raise StorageError("the store is closed")
        work = tuple(s for s in steps if s.rows)
        if not work:
            return None
        write = self._last = Write(work, None, undo)
        self._queue.append(write)
        self._wake()
        return write

    async def settled(self) -> None:
        """Return once every write queued before this call is committed or failed (writes
        settle in order: a write with nothing to do, queued behind them, is awaited). Never
        raises; once the writer is closing, returns at once."""
        last = self._last
        if last is None or last.settled or self._closed:
            return
        future: asyncio.Future[None] = self._event_loop.create_future()
        self._queue.append(Write((), future))
        self._wake()
        with contextlib.suppress(Exception):  # its own failure: the writes before it failed too
            await asyncio.shield(future)

    async def close(self) -> None:
        """Finish every write queued so far, then stop. Later writes raise StorageError."""
        if not self._closed:
            self._closed = True
            self._wake()
        await self._task

    async def _submit(self, work: tuple[Step, ...], undo: Callable[[], None] | None) -> None:
        if self._closed:
            raise StorageError("the store is closed")
        if not work:
            return
        future: asyncio.Future[None] = self._event_loop.create_future()
        self._queue.append(write := Write(work, future, undo))
        self._last = write
        self._wake()
        try:
            await future
        except sa_exc.IntegrityError as exc:
            raise IntegrityError(_describe(exc)) from exc
        except (sa_exc.SQLAlchemyError, OSError) as exc:
            raise StorageError(_describe(exc)) from exc

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)

    async def _loop(self) -> None:
        queue = self._queue
        batch: list[Write] = []
        try:
            while True:
                if not queue:
                    if self._closed:
                        return
                    self._wakeup = self._event_loop.create_future()
                    await self._wakeup
                    continue
                take = min(len(queue), self._batch_max)
                batch = [queue.popleft() for _ in range(take)]
                await self._write_batch(batch)
                batch = []
        finally:
            await self._executor.close()
            # Only reached with writes pending if the task itself was cancelled or crashed.
            for write in batch + list(queue):
                _settle(write, exception=StorageError("the store writer stopped"))
            queue.clear()

    async def _write_batch(self, batch: list[Write]) -> None:
        self.stats.batches += 1
        self.stats.batch_sizes[bisect_left(BATCH_BOUNDS, len(batch))] += 1
        self.stats.queue_depth = len(self._queue)
        try:
            await self._transaction(batch)
        except Exception as exc:
            if len(batch) == 1:
                self._fail(batch[0], exc)
                return
            self.stats.retried_batches += 1
            log.warning("store.batch_failed", writes=len(batch), error=repr(exc))
            for write in batch:
                try:
                    await self._transaction([write])
                except Exception as one_exc:
                    self._fail(write, one_exc)
                else:
                    self._succeed(write)
        else:
            for write in batch:
                self._succeed(write)

    async def _transaction(self, batch: list[Write]) -> None:
        runs = [
            [
                (step.statement, [row for w in run for row in w.work[i].rows])
                for i, step in enumerate(run[0].work)
            ]
            for run in _runs(batch)
        ]
        await self._executor.transaction(runs)
        self.stats.commits += 1

    def _succeed(self, write: Write) -> None:
        if write.work:  # not a barrier of settled()
            self.stats.writes += 1
        _settle(write)

    def _fail(self, write: Write, exc: Exception) -> None:
        log.warning("store.write_failed", error=repr(exc))
        self.stats.writes += 1
        self.stats.failed_writes += 1
        _settle(write, exception=exc)


@dataclass(frozen=True, slots=True)
class _Plan:
    """A statement compiled once for one set of parameter names, with the bind processor of
    each parameter's type: what SQLAlchemy would do for every row, done once per shape."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def compile(cls, statement: Executable, keys: tuple[str, ...], dialect: Dialect) -> _Plan:
        if not isinstance(statement, ClauseElement):
            raise TypeError(f"cannot compile {statement!r}")
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
            raise TypeError(f"{statement!r} does not compile to positional SQL")
        names = tuple(compiled.positiontup)
        binds = {b.key: b for b in compiled.binds.values()}
        processors = tuple(
            binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        )
        return cls(str(compiled), names, processors)

    def parameters(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        try:
            return tuple(
                row[name] if proc is None else proc(row[name])
                for name, proc in zip(self.names, self.processors, strict=True)
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise StorageError(f"cannot store {exc}") from exc


def _runs(batch: list[Write]) -> Iterator[list[Write]]:
    """Split a batch into runs of consecutive writes that can be merged."""
    run: list[Write] = []
    for write in batch:
        if run and write.shape != run[-1].shape:
            yield run
            run = []
        run.append(write)
    if run:
        yield run


def _settle(write: Write, *, exception: BaseException | None = None) -> None:
    write.settled = True
    if exception is not None and write.undo is not None:
        try:
            write.undo()
        except Exception:  # the write's own failure is what its caller must hear of
            log.exception("store.undo_failed")
    future = write.future
    if future is None:
        write.error = _translate(exception) if exception is not None else None
        on_settled, write.on_settled = write.on_settled, None  # it may refer to the write
        if on_settled is not None:
            on_settled()
        return
    if future.done():  # the caller was cancelled; the write happened anyway
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        future.set_result(None)


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, sa_exc.IntegrityError):
        return IntegrityError(_describe(exc))
    if isinstance(exc, sa_exc.SQLAlchemyError | OSError):
        return StorageError(_describe(exc))
    return exc


def _describe(exc: sa_exc.SQLAlchemyError | OSError) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip().splitlines()[0]
