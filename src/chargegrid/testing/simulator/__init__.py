"""Simulated charging stations of OCPP 1.6J and 2.0.1, from one to tens of thousands.

``chargegrid simulate`` runs a :class:`Fleet` against any CSMS; tests and benchmarks use the
same pieces. The layers, from the inside out:

* :mod:`.car`, :mod:`.profiles`: a car's charging curve, the charging profiles it obeys (pure);
* :mod:`.station`: one station's life as a state machine fed with frames and a clock (sans I/O),
  speaking through :mod:`.v16` or :mod:`.v201` (the generated messages and the CSMS's own RPC
  session, mirrored: :mod:`.calls`), answering every CSMS-initiated operation
  (:mod:`.operations`, :mod:`.answers`); its connectors are :mod:`.connector` and :mod:`.life`;
* :mod:`.fleet`: the stations on picows WebSockets, paced, with a live summary and the latency
  of each action (:mod:`.stats`); :mod:`.scenario` holds the options, :mod:`.prepare` registers
  stations and tokens through chargegrid's REST API.
"""

from chargegrid.testing.simulator.fleet import Fleet, Summary
from chargegrid.testing.simulator.prepare import PrepareError, prepare
from chargegrid.testing.simulator.scenario import Scenario, ScenarioError, load
from chargegrid.testing.simulator.station import Params, SimStation

__all__ = [
    "Fleet",
    "Params",
    "PrepareError",
    "Scenario",
    "ScenarioError",
    "SimStation",
    "Summary",
    "load",
    "prepare",
]
