"""What the message hot path reads, kept in memory beside the database.

Every OCPP message would otherwise cost a read or more (is this token valid, which transaction is
this, is the station accepted), and a read through the async driver costs a thread hand-off and
about a millisecond of CPU: more than all the rest of handling the message. So the store keeps:

* **Active transactions**, loaded at start and written through: this node is the only writer of
  the transactions of the stations connected to it, so the copy is authoritative. In a cluster
  (``shared``) nothing is loaded at start: a station's transactions are read when it connects to
  this node and dropped when it leaves (:meth:`HotState.drop_station`), as another node writes
  them meanwhile. Ended ones stay
  for a while (the last few per station), for late meter values and resent stops and starts.
* **Stations and tokens**, read through and written through, each copy trusted for
  ``ttl_s`` seconds, so a change made by another process (``chargegrid station accept``, a token
  blocked by another node) is seen within that time.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from msgspec.structs import replace

from chargegrid.domain.model import IdToken, Station, Transaction, TransactionState

T = TypeVar("T")
_ENDED_PER_STATION = 16


@dataclass
class TtlCache(Generic[T]):
    """A value (or the knowledge that there is none) per key, trusted for ``ttl_s`` seconds.

    A read from the database takes a while, and the key may be written meanwhile: ``version``
    before the read and ``fill`` after it keep what was read only if nothing was ``put`` since,
    so an older read never replaces a newer write.
    """

    ttl_s: float
    clock: Callable[[], float] = time.monotonic
    _items: dict[str, tuple[float, T | None]] = field(default_factory=dict)
    _writes: int = 0
    _written: dict[str, int] = field(default_factory=dict)

    def get(self, key: str) -> tuple[bool, T | None]:
        """``(True, value)`` when the copy is fresh, ``(False, None)`` when it must be read."""
        item = self._items.get(key)
        if item is None or self.clock() - item[0] > self.ttl_s:
            return False, None
        return True, item[1]

    def put(self, key: str, value: T | None) -> None:
        """What was just written: replaces any copy."""
        self._writes += 1
        self._written[key] = self._writes
        self._items[key] = (self.clock(), value)

    def forget(self, key: str) -> None:
        """Drop the copy (changed elsewhere); a read under way does not put it back."""
        self._writes += 1
        self._written[key] = self._writes
        self._items.pop(key, None)

    def version(self, key: str) -> int:
        return self._written.get(key, 0)

    def fill(self, key: str, value: T | None, version: int) -> T | None:
        """What a read found, kept unless ``key`` was written after ``version`` was taken;
        returns the current value either way."""
        if self._written.get(key, 0) == version:
            self._items[key] = (self.clock(), value)
            return value
        item = self._items.get(key)
        # forgotten meanwhile (changed elsewhere): what was read, not kept
        return value if item is None else item[1]


class HotState:
    """The in-memory copy; see the module docstring."""

    def __init__(self, ttl_s: float = 5.0) -> None:
        self.stations: TtlCache[Station] = TtlCache(ttl_s)
        self.tokens: TtlCache[IdToken] = TtlCache(ttl_s)
        self._by_id: dict[int, Transaction] = {}
        self._by_key: dict[tuple[str, str], int] = {}
        self._active_by_station: dict[str, set[int]] = {}
        self._ended_by_station: dict[str, deque[int]] = {}
        self._active_tokens: Counter[str] = Counter()

    def load(self, active: list[Transaction]) -> None:
        for tx in active:
            self.remember(tx)

    # --- transactions ---------------------------------------------------------------------

    def transaction(self, transaction_id: int) -> Transaction | None:
        tx = self._by_id.get(transaction_id)
        return None if tx is None else replace(tx)

    def find(self, station_id: str, station_tx_id: str) -> Transaction | None:
        tx_id = self._by_key.get((station_id, station_tx_id))
        return None if tx_id is None else self.transaction(tx_id)

    def known(self, transaction_id: int) -> bool:
        return transaction_id in self._by_id

    def active(self, station_id: str) -> list[Transaction]:
        ids = sorted(self._active_by_station.get(station_id, ()))
        return [replace(self._by_id[i]) for i in ids]

    def find_recent(
        self, station_id: str, match: Callable[[Transaction], bool]
    ) -> Transaction | None:
        """A copy of the station's first active or recently ended transaction that matches."""
        active = self._active_by_station.get(station_id, ())
        ended = self._ended_by_station.get(station_id, ())
        for ids in (active, ended):
            for tx_id in ids:
                tx = self._by_id[tx_id]
                if match(tx):
                    return replace(tx)
        return None

    def drop_station(self, station_id: str) -> None:
        """Forget the station's transactions, active and ended."""
        for tx_id in list(self._active_by_station.pop(station_id, ())):
            tx = self._by_id.get(tx_id)
            if tx is not None:
                self._forget_active(tx)
            self._drop(tx_id)
        for tx_id in self._ended_by_station.pop(station_id, ()):
            self._drop(tx_id)

    def forget(self, transaction_id: int) -> None:
        """Drop one transaction (what the database has of it is not known)."""
        tx = self._by_id.get(transaction_id)
        if tx is None:
            return
        self._forget_active(tx)
        ended = self._ended_by_station.get(tx.station_id)
        if ended is not None and transaction_id in ended:
            ended.remove(transaction_id)
        self._drop(transaction_id)

    def token_active(self, id_token: str) -> bool:
        return self._active_tokens[id_token] > 0

    def remember(self, tx: Transaction) -> None:
        """Record the current state of ``tx`` (new, updated, or ended)."""
        previous = self._by_id.get(tx.id)
        if previous is not None:
            self._forget_active(previous)
            if previous.station_tx_id != tx.station_tx_id:
                self._by_key.pop((previous.station_id, previous.station_tx_id), None)
        self._by_id[tx.id] = replace(tx)
        self._by_key[(tx.station_id, tx.station_tx_id)] = tx.id
        if tx.state is TransactionState.ACTIVE:
            self._active_by_station.setdefault(tx.station_id, set()).add(tx.id)
            if tx.id_token:
                self._active_tokens[tx.id_token] += 1
        else:
            ended = self._ended_by_station.setdefault(tx.station_id, deque())
            if tx.id not in ended:
                ended.append(tx.id)
            while len(ended) > _ENDED_PER_STATION:
                self._drop(ended.popleft())

    def _forget_active(self, tx: Transaction) -> None:
        if tx.state is TransactionState.ACTIVE:
            self._active_by_station.get(tx.station_id, set()).discard(tx.id)
            if tx.id_token:
                self._active_tokens[tx.id_token] -= 1
                if self._active_tokens[tx.id_token] <= 0:
                    del self._active_tokens[tx.id_token]

    def _drop(self, transaction_id: int) -> None:
        tx = self._by_id.pop(transaction_id, None)
        key = None if tx is None else (tx.station_id, tx.station_tx_id)
        if key is not None and self._by_key.get(key) == transaction_id:
            del self._by_key[key]
