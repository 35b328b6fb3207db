"""What nodes say to each other over the broker, and on which subjects.

Every subject starts with the cluster's prefix (:func:`prefix`): nodes on the same database form
one cluster, so the prefix is derived from the database's address and name, and two clusters
sharing a NATS server (CI jobs, say) never hear each other.

* ``<p>.directory``: :class:`Beat` (every node, every second), :class:`Claim` and
  :class:`Release` (a station's WebSocket opened or closed on a node), :class:`Sync` (a node
  asks every node for its :class:`Roster` when it starts, or one node when it hears of a node
  it does not know or finds that it missed one of its claims or releases).
* ``<p>.events``: :class:`EventBatch`, the domain events a node committed, in order.
* ``<p>.notes``: :class:`StationChanged`, :class:`WebhooksChanged`, :class:`DeliveriesStored`,
  :class:`Disconnect`: what other nodes keep in memory and must read again, or do.
* ``<p>.node.<id>.call``: requests, :class:`CallRequest` answered with :class:`CallReply`.
* ``<p>.node.<id>.handoff``: :class:`Handoff` (a station this node held connected to the
  asking node), answered with :class:`Released` once this node let it go.

On the broker each of these is sealed with the cluster's secret (:mod:`.auth`); what is here is
the body.
"""

from __future__ import annotations

import hashlib

import msgspec

from chargegrid.domain.events import AnyEvent


def prefix(database_key: str) -> str:
    """The subject prefix of the cluster of the database named by ``database_key``
    (host, port and database name, no credentials)."""
    return "chargegrid." + hashlib.sha256(database_key.encode()).hexdigest()[:12]


class Beat(msgspec.Struct, frozen=True, tag="beat"):
    node: str
    stations: int  # how many it holds
    seq: int = 0  # its latest Claim or Release: a node that has not heard that one asks (Sync)


class Claim(msgspec.Struct, frozen=True, tag="claim"):
    node: str
    station_id: str
    version: str
    seq: int = 0  # the node's Claims and Releases are numbered 1, 2, ...: a gap is a loss


class Release(msgspec.Struct, frozen=True, tag="release"):
    node: str
    station_id: str
    seq: int = 0


class Sync(msgspec.Struct, frozen=True, tag="sync"):
    node: str
    of: str = ""  # the node asked for its roster; every node when empty


class Roster(msgspec.Struct, frozen=True, tag="roster"):
    """Every station a node holds (``part`` of ``parts``: a large roster is sent in parts)."""

    node: str
    stations: dict[str, str]  # station id -> OCPP version
    part: int = 0
    parts: int = 1
    seq: int = 0  # the node's latest Claim or Release when it was made


DirectoryMessage = Beat | Claim | Release | Sync | Roster


class EventBatch(msgspec.Struct, frozen=True):
    node: str
    events: list[AnyEvent]
    seq: int = 0  # a node's batches are numbered 1, 2, ...: a gap is a loss


class StationChanged(msgspec.Struct, frozen=True, tag="station"):
    """A station's password, security profile, leniency or registration changed, or it went."""

    node: str
    station_id: str


class WebhooksChanged(msgspec.Struct, frozen=True, tag="webhooks"):
    node: str


class DeliveriesStored(msgspec.Struct, frozen=True, tag="deliveries"):
    node: str
    webhook_ids: list[int]


class LimitsChanged(msgspec.Struct, frozen=True, tag="limits"):
    """Limits over time on a site were saved (the operator's, a grid operator's)."""

    node: str


class Disconnect(msgspec.Struct, frozen=True, tag="disconnect"):
    node: str
    station_id: str
    reason: str


Note = StationChanged | WebhooksChanged | DeliveriesStored | Disconnect | LimitsChanged


class CallRequest(msgspec.Struct, frozen=True):
    """A CSMS-initiated call for a station the receiving node holds."""

    station_id: str
    version: str
    action: str
    payload: msgspec.Raw  # the typed request as JSON
    timeout: float | None


class CallReply(msgspec.Struct, frozen=True, omit_defaults=True):
    """The station's response (``response``), or what went wrong (``error``):
    ``offline`` (the node does not hold the station), ``call`` (a CALLERROR, timeout or lost
    connection: ``kind``, ``code``, ``timed_out``), ``ocpp`` (our request did not validate)."""

    response: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))
    error: str | None = None
    kind: str = ""
    description: str = ""
    details: dict[str, object] = msgspec.field(default_factory=dict)
    code: str = ""
    timed_out: bool = False


class Handoff(msgspec.Struct, frozen=True):
    """``station_id`` connected to ``node``: close its connection here, settle its work."""

    node: str
    station_id: str


class Released(msgspec.Struct, frozen=True):
    """Every message of ``station_id`` this node served is answered and its writes settled."""

    node: str
    station_id: str
