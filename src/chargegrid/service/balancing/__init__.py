"""Load balancing applied: the balancer (:mod:`chargegrid.domain.balancing`) run for a site
whenever something it depends on changes, and its currents sent to the stations as charging
profiles (:mod:`chargegrid.service.charging_profiles`).

What triggers a run of a site: a transaction starting or ending on one of its EVSEs, a car's
draw changing enough to matter (by a whole ampere or more, or falling clearly below what it was
offered), a car's needs (ISO 15118 NotifyEVChargingNeeds, or the API), a station of the site
connecting or going offline, the site being edited, or a limit set on it (by the operator, or
by the grid operator through OSCP or OpenADR). Triggers are gathered for ``delay_s`` (0.2 s) so
a burst of them costs one run. Each run plans the next 24 hours: the cars' currents now and at
each moment the limits change.

What is sent, only when a car's schedule changed (by 0.1 A or more) since its station last
accepted one: a TxProfile for the transaction (1.6 SetChargingProfile 3.13 / 5.16; 2.0.1 K01),
its periods the schedule. A paused car gets 0 A.

**What a car may draw is what its station last accepted, until it accepts another.** So:

* cars whose current goes down anywhere are sent their profiles first, and the others only
  once those are accepted;
* a station that refuses a profile, leaves before it is sent, or does not answer, keeps its car
  counted at the higher of the old and the new schedule, moment by moment (a fixed load for the
  others), and is sent it again after 30 s (doubling up to 10 minutes) and when it reconnects;
  so is one whose GetCompositeSchedule lets its car draw more than its profile;
* an offline station is counted at what it may draw unsteered: the higher of its TxDefault
  fallback and the schedule its car holds (or may hold), per EVSE, car or not (its fallback if
  it took its TxDefaultProfile, its maximum if it refused it); a car whose transaction was
  running before a restart counts at its EVSE's maximum until its station takes a profile;
* schedules are cut to 24 periods, the last the lowest of those it stands for.

Each smart EVSE of a connected station is given a TxDefaultProfile at its fallback current
(when the station boots or connects, and when an edit changes the fallback). A car that plugs
in draws that fallback for the moment (about a second) until its own TxProfile arrives: idle
EVSEs are not counted, so a site at its limit may be over it by one fallback for that second.
Set the fallback to 0 A where that matters: a car then waits for its profile to charge, and an
offline station charges no new car.

A car's draw is known from the power its meter values report. Without the number of phases it
draws on, the current per phase is taken as the power over one phase's voltage: never less
than the truth, so a car is only capped when it surely draws less than it was offered.

The package, module by module (one :class:`LoadBalancer`, its parts as mixins on one shared
state, so each part reads the same sessions and the same schedules held):

* :mod:`.base`: the state every part shares (the constructor), a session, the
  :class:`LimitStore` port, and a run asked for (``schedule``, gathered for ``delay_s``).
* :mod:`.limits`: limits and prices over time, stored and read again, and the moments within
  the horizon at which they change.
* :mod:`.inputs`: what the balancer is given: the cars, the limits in force, and each EVSE it
  cannot steer at what it may draw (offline, in doubt).
* :mod:`.sending`: a car's TxProfile sent, its GetCompositeSchedule checked, and the cars in
  doubt sent theirs again later.
* :mod:`.sessions`: the running transactions, read and read again, and the events that change
  them or call for a run.
* :mod:`.defaults`: the TxDefaultProfiles.
* :mod:`.balancer`: :class:`LoadBalancer`: start and stop, and a run of a site.
"""

from chargegrid.service.balancing.balancer import REFRESH_S, LoadBalancer
from chargegrid.service.balancing.base import RETRY_MAX_S, RETRY_S, LimitStore
from chargegrid.service.balancing.limits import HORIZON, MAX_PERIODS
from chargegrid.service.balancing.sessions import EARLY_NEEDS_KEPT
from chargegrid.service.planning import LimitBlock, PriceBlock

__all__ = [
    "EARLY_NEEDS_KEPT",
    "HORIZON",
    "MAX_PERIODS",
    "REFRESH_S",
    "RETRY_MAX_S",
    "RETRY_S",
    "LimitBlock",
    "LimitStore",
    "LoadBalancer",
    "PriceBlock",
]
