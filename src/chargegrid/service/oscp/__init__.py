"""chargegrid as OSCP 2.0 Flexibility Provider (FP) of one or more Capacity Providers (CP): the
grid operator tells, per group of its grid, how much the charging there may draw over the next
hours, and chargegrid keeps its sites within it and reports what they drew.

The exchange with a CP (OSCP 2.0, the codec in :mod:`chargegrid.protocols.oscp`):

1. **Register.** The operator adds the CP with its 2.0 base URL, the token the CP gave out of
   band, and which site (or circuit of a site) each of its groups is. chargegrid makes a token
   for the CP to call it with and sends it in a Register, with chargegrid's own base URL. The CP
   may register back with a new token for chargegrid to use; it then replaces the first.
2. **Handshake.** The CP's Handshake says how often it wants a Heartbeat (at least 1 s) and
   how it wants energy counted; chargegrid answers 204, then sends a HandshakeAcknowledge with
   the request's id as X-Correlation-ID (the 204-then-callback pattern every message follows).
   A HandshakeAcknowledge chargegrid receives must name the Handshake it answers likewise.
3. **Heartbeats** at the interval asked, both ways; a CP's own tell when it stops listening.
4. **UpdateGroupCapacityForecast** (type CONSUMPTION) becomes limits over time on the group's
   circuit: a current on each phase or one phase, or a power (``W``, ``kW``, or energy per block
   as its average power), replacing the CP's earlier forecast for that group. Other forecast
   types (GENERATION, OPTIMUM, the FALLBACK ones) are acknowledged and logged, not applied. A
   forecast sent in segments (X-Segment-Index/-Count, each after the first naming the one
   before in X-Correlation-ID) is applied whole once its last segment is in.
5. **UpdateGroupMeasurements** report, every ``measurement_interval_s`` (15 minutes), the
   energy the group's charging imported: since the last report (INTERMITTENT, the default, with
   ``initial_measure_time``), or, when the CP's Handshake asks for CONTINUOUS alone, since
   chargegrid began counting (``initial_measure_time`` then says when: a restart starts over).
   With ``asset_measurements``, an UpdateAssetMeasurements follows with each EVSE of the group
   (asset id ``STATION/EVSE``, CHARGING): its energy counted the same way and the power it
   draws now. OSCP 2.0 addresses that message to a Capacity Optimizer; it is for a CP that also
   takes that role.
6. **AdjustGroupCapacityForecast**, when the operator asks (:meth:`adjust`), or when a run of
   the balancer pauses cars under a group's circuit for want of room and the CP's forecast in
   force is the limit that holds: the blocks in force with the paused cars' minimum added,
   asked only if the balancer, run on the raised limits (on a thread, from what it planned
   from: the same cars and fixed loads), would let one of them charge; at most once per
   ``adjust_interval_s`` (15 minutes) per group.
7. **GroupCapacityComplianceError** when a run finds the group's circuit over the forecast
   because of what the EVSEs the balancer cannot steer draw alone, counted as it counts them
   (an offline station's car at the profile it holds, a profile in doubt at the higher, an
   EVSE without smart charging or offline at its fallback): the blocks concerned and a message
   naming the group and the EVSEs, once for each block (the error is not repeated on every
   run; a block is forgotten once it ended).

A request already served (the same X-Request-ID, message and body from the same CP: a retry) is
answered 204 and not served again; the same X-Request-ID with another body is refused (400).

Errors: :class:`~chargegrid.protocols.oscp.OscpError` for a request that cannot be served, with
the HTTP status to answer (401 unknown token, 400 a body or group that does not fit, a group
whose site or circuit is no more among them, 404 no such endpoint); :class:`PeerError` for
what the operator asks that cannot be (422/409).

The package, module by module (one :class:`FlexibilityProvider`, its parts as mixins on one shared
state, so each part reads the same peers and counters):

* :mod:`.peers`: a CP as stored (:class:`OscpPeer`, :class:`PeerStore`), what is kept of it in
  memory, the :class:`Transport` port and the operator's errors.
* :mod:`.base`: the state every part shares, a group's site and circuit, and the HTTP client
  that posts a message to a CP.
* :mod:`.handshake`: Register and Handshake, both ways (steps 1 and 2).
* :mod:`.forecasts`: UpdateGroupCapacityForecast, whole or in segments, as limits (step 4).
* :mod:`.measurements`: the tick's Heartbeats and measurements, and the energy counted for them
  (steps 3 and 5).
* :mod:`.capacity`: AdjustGroupCapacityForecast and GroupCapacityComplianceError (steps 6, 7).
* :mod:`.provider`: :class:`FlexibilityProvider`: start and stop, what the operator asks, and
  each request of a CP served (retries included).
"""

from chargegrid.service.oscp.forecasts import MAX_SEGMENTS
from chargegrid.service.oscp.handshake import DEFAULT_HEARTBEAT_S, VERSION
from chargegrid.service.oscp.peers import NotDelivered, OscpPeer, PeerError, PeerStore, Transport
from chargegrid.service.oscp.provider import SEEN_REQUESTS, FlexibilityProvider

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "MAX_SEGMENTS",
    "SEEN_REQUESTS",
    "VERSION",
    "FlexibilityProvider",
    "NotDelivered",
    "OscpPeer",
    "PeerError",
    "PeerStore",
    "Transport",
]
