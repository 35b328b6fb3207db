"""OpenADR 2.0b, as chargegrid's VEN reads it, sans I/O: the event dicts the ``openleadr``
client parses oadrDistributeEvent into, as typed records (:mod:`.events`).

The transport (registration, polling, reports, XML signatures) is ``openleadr``'s, wrapped in
:mod:`chargegrid.adapters.openadr2`; what each signal means for a site is
:mod:`chargegrid.service.openadr2`.

Errors: :class:`Openadr2Error` (a ``ValueError``) is the only error decoding raises.
"""

from chargegrid.protocols.openadr2.events import (
    Event,
    EventStatus,
    Interval,
    ItemBase,
    Openadr2Error,
    Signal,
    decode_event,
    event_id_of,
)

__all__ = [
    "Event",
    "EventStatus",
    "Interval",
    "ItemBase",
    "Openadr2Error",
    "Signal",
    "decode_event",
    "event_id_of",
]
