"""chargegrid as an OpenADR 3.0.1 VEN of a grid operator's (or retailer's) VTN: its events become
limits and prices over time on a site (or a circuit of one), the load balancer shares that
among the cars, and the VEN reports what the site drew.

The exchange (OpenADR 3.0.1 REST API, the codec in :mod:`chargegrid.protocols.openadr3`):

1. **Token.** With a client id, the VEN gets a bearer token at the token URL (``{base}/auth/token``
   unless configured) by the OAuth 2.0 client credentials grant, renews it 30 s before it
   expires, and once more when a request is answered 401. Without a client id requests go
   without a token.
2. **Polling** every ``poll_interval_s``: ``GET /programs`` (kept: the configured program names,
   or all), then ``GET /events``, kept when the event's program is and its targets do not
   exclude this VEN (:func:`targeted`). Each listing is paged (``skip``: the objects received so
   far, ``limit`` 50) until an empty page, so a VTN that answers fewer than asked is read to the
   end; a VTN that ignores ``skip`` (the same page again) is read once; after
   :data:`MAX_PAGES` pages the listing is cut short. No subscription: the VTN need not reach
   chargegrid.
3. **Events to limits** (:func:`event_blocks`, pure): one source per event,
   ``openadr3:{vtn host}:{event id}``, replaced when the event changes and emptied when it is
   deleted (not in a complete listing: one that failed midway or was cut short removes nothing)
   or its last interval ends. An event that cannot be read or placed is logged; one that was
   read before keeps what it set until it can be read again.
4. **Reports**: for an event whose ``reportDescriptors`` ask for ``USAGE`` or ``DEMAND``, every
   ``report_interval_s`` from its start and once when it ends, ``POST /reports`` with the energy
   the site's charging imported in that span (USAGE, kWh, from the transactions' meter values)
   and what the cars draw at the span's end (DEMAND, kW). Other report payload types are
   logged and not made; ``startInterval``, ``numIntervals``, ``frequency`` and ``repeat`` are not
   followed (the cadence is the VEN's).

If the VTN cannot be reached, what its events set stays in force until it ends. Errors: a
:class:`TransportError` from the transport, an :class:`~chargegrid.protocols.openadr3.OpenAdrError`
from the codec or a VTN's refusal; each is logged with the VTN's host, and the VEN goes on.
The client secret and the tokens are never logged.

The package, module by module (one :class:`OpenAdr3Ven`, its parts as mixins on one shared state,
so each part reads the same events and counters):

* :mod:`.client`: the :class:`Transport` port and the VTN's HTTP client: the token and the paged
  listings (steps 1 and 2).
* :mod:`.blocks`: events to limits and prices, pure: :func:`event_blocks`, :func:`targeted`
  (step 3).
* :mod:`.base`: :class:`VenOptions`, the state every part shares, and setting an event's limits
  and prices on the balancer.
* :mod:`.polling`: the programs and events polled, tracked and applied (steps 2 and 3).
* :mod:`.reports`: events that end, and the reports sent for them (step 4).
* :mod:`.ven`: :class:`OpenAdr3Ven`: start and stop, the loop, and the energy counted.
"""

from chargegrid.service.openadr3.base import VenOptions
from chargegrid.service.openadr3.blocks import (
    SIMPLE_FRACTIONS,
    EventBlocks,
    event_blocks,
    targeted,
)
from chargegrid.service.openadr3.client import (
    MAX_PAGES,
    TOKEN_MARGIN,
    Answer,
    Transport,
    TransportError,
)
from chargegrid.service.openadr3.polling import REPORTED
from chargegrid.service.openadr3.ven import OpenAdr3Ven

__all__ = [
    "MAX_PAGES",
    "REPORTED",
    "SIMPLE_FRACTIONS",
    "TOKEN_MARGIN",
    "Answer",
    "EventBlocks",
    "OpenAdr3Ven",
    "Transport",
    "TransportError",
    "VenOptions",
    "event_blocks",
    "targeted",
]
