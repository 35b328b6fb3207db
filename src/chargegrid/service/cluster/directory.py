"""Which node holds which station's WebSocket, and which nodes are alive.

Rules:

* Each node knows its own stations from its WebSocket server (``local``), which always wins: a
  station this node holds is never looked up elsewhere.
* The others' are learnt from the directory subject: a :class:`~.wire.Claim` when a station
  connects to a node, a :class:`~.wire.Release` when it leaves, a :class:`~.wire.Roster` of all
  of a node's stations when a node starts (it sends :class:`~.wire.Sync`) or when this node
  asks that one node for it: when it hears of a node it does not know, and when it missed one of
  the node's claims and releases. These are numbered per node (``seq``); a roster and every beat
  carry the number of the node's latest, so a gap in the numbers, or a beat whose number is not
  the last one heard, is a loss; the node's roster is then asked for (at most every 5 s) until
  one arrives whole. Core NATS delivers one publisher's messages in order but may
  drop some (a slow consumer): a node that missed some asks again, and only of the node
  concerned, rather than every node sending its whole roster whenever counts differ.
* A claim for a station this node holds means the station opened a new connection elsewhere:
  the connection here is stale and is closed (``evict``), as one node closes a station's
  older connection when it reconnects (OCPP-J 1.6 section 3.1.1 allows a single connection).
  That station's ``station.offline`` is not told: it is online, on the other node.
* A node not heard from for ``dead_after_s`` (10 s by default: its beats share the event loop
  with its stations, and a busy loop delays them) is gone: its stations are forgotten (they will
  reconnect elsewhere and be claimed there) and calls waiting on it fail (:meth:`lost`).

Pure bookkeeping: :class:`~.node.ClusterNode` feeds it messages and publishes what it returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from chargegrid.service.cluster import wire

log = structlog.get_logger(__name__)


@dataclass
class _Peer:
    heard_at: float
    seq: int = 0  # its latest Claim or Release applied here (or the roster's)
    stale: bool = True  # some of its changes were missed: its roster is asked for until it comes
    stations: dict[str, str] = field(default_factory=dict)  # station id -> OCPP version
    parts: dict[int, dict[str, str]] = field(default_factory=dict)  # a roster arriving
    lost: asyncio.Future[None] | None = None


class Directory:
    def __init__(
        self,
        node_id: str,
        local: Callable[[str], str | None],
        evict: Callable[[str], None],
        clock: Callable[[], float],
        *,
        dead_after_s: float = 10.0,
    ) -> None:
        self.node_id = node_id
        self.local = local  # the OCPP version of a station this node holds, or None
        self.evict = evict  # close this node's (stale) connection of a station
        self.clock = clock
        self.dead_after_s = dead_after_s
        self._peers: dict[str, _Peer] = {}
        self._latest: dict[str, str] = {}  # station id -> the node that claimed it last
        self.gaps = 0  # times a node's claims or releases were found missing

    # --- lookups -----------------------------------------------------------------------------

    def nodes(self) -> list[str]:
        """The other nodes alive, by id."""
        return sorted(self._peers)

    def holder(self, station_id: str) -> tuple[str, str] | None:
        """``(node, OCPP version)`` of the other node holding the station, or None."""
        node = self._latest.get(station_id)
        peer = self._peers.get(node) if node is not None else None
        if node is not None and peer is not None and station_id in peer.stations:
            return node, peer.stations[station_id]
        for node, peer in self._peers.items():  # a roster told us, not a claim
            version = peer.stations.get(station_id)
            if version is not None:
                return node, version
        return None

    def connected(self, station_id: str) -> str | None:
        """The OCPP version of the station's live connection to any node, or None."""
        version = self.local(station_id)
        if version is not None:
            return version
        found = self.holder(station_id)
        return None if found is None else found[1]

    def remote_count(self) -> int:
        return sum(len(peer.stations) for peer in self._peers.values())

    def lost(self, node: str) -> asyncio.Future[None]:
        """Done when ``node`` is declared gone (at once if it is not known now)."""
        peer = self._peers.get(node)
        if peer is None:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        if peer.lost is None:
            peer.lost = asyncio.get_running_loop().create_future()
        return peer.lost

    # --- messages in -------------------------------------------------------------------------

    def receive(self, message: wire.DirectoryMessage) -> list[wire.DirectoryMessage]:
        """Apply a message from another node; returns what this node must publish in answer."""
        if message.node == self.node_id:
            return []
        peer = self._peers.get(message.node)
        if peer is None:
            peer = self._peers[message.node] = _Peer(self.clock())
            log.info("node joined the cluster", peer=message.node)
        peer.heard_at = self.clock()
        answer: list[wire.DirectoryMessage] = []
        if isinstance(message, wire.Beat):
            if peer.stale or message.seq != peer.seq:  # we lack its roster, or a change
                peer.stale = True
                answer.append(wire.Sync(self.node_id, of=message.node))
        elif isinstance(message, wire.Claim | wire.Release):
            if message.seq != peer.seq + 1 and not peer.stale:
                self.gaps += 1
                log.info("missed a node's directory changes", peer=message.node)
                peer.stale = True
            if peer.stale:
                answer.append(wire.Sync(self.node_id, of=message.node))
            peer.seq = message.seq
            self._change(peer, message)
        elif isinstance(message, wire.Roster):
            peer.parts[message.part] = message.stations
            if len(peer.parts) >= message.parts:
                peer.stations = {k: v for part in peer.parts.values() for k, v in part.items()}
                peer.parts = {}
                peer.seq = message.seq
                peer.stale = False
        # a Sync asks for a roster: the node answers it (ClusterNode._on_directory), the
        # directory has nothing to change
        return answer

    def _change(self, peer: _Peer, message: wire.Claim | wire.Release) -> None:
        if isinstance(message, wire.Claim):
            peer.stations[message.station_id] = message.version
            self._latest[message.station_id] = message.node
            if self.local(message.station_id) is not None:
                log.info(
                    "station connected to another node; closing its connection here",
                    station_id=message.station_id,
                    peer=message.node,
                )
                self.evict(message.station_id)
        else:
            peer.stations.pop(message.station_id, None)
            if self._latest.get(message.station_id) == message.node:
                del self._latest[message.station_id]

    def sweep(self) -> list[str]:
        """Forget the nodes not heard from for ``dead_after_s``; returns their ids."""
        now = self.clock()
        gone = [n for n, p in self._peers.items() if now - p.heard_at > self.dead_after_s]
        for node in gone:
            peer = self._peers.pop(node)
            for station_id in peer.stations:
                if self._latest.get(station_id) == node:
                    del self._latest[station_id]
            if peer.lost is not None and not peer.lost.done():
                peer.lost.set_result(None)
            log.warning(
                "node left the cluster (not heard from)",
                peer=node,
                stations=len(peer.stations),
                silent_s=round(now - peer.heard_at, 1),
            )
        return gone


def roster(
    node_id: str, stations: dict[str, str], seq: int = 0, part_size: int = 5000
) -> list[wire.Roster]:
    """A node's roster, as of its change ``seq``, in parts small enough for one broker message
    each."""
    items = sorted(stations.items())
    chunks = [dict(items[i : i + part_size]) for i in range(0, len(items), part_size)] or [{}]
    return [wire.Roster(node_id, chunk, n, len(chunks), seq) for n, chunk in enumerate(chunks)]
