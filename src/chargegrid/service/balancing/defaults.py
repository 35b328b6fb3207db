"""TxDefaultProfiles: each smart EVSE of a connected station given one at its fallback current
(when the station boots or connects, and when an edit changes the fallback), what a car that
plugs in draws until its own TxProfile arrives."""

from __future__ import annotations

import structlog

from chargegrid.domain.site import EvseSlot, Site
from chargegrid.service import charging_profiles as profiles
from chargegrid.service.balancing.base import BalancerBase
from chargegrid.service.commands import CommandError

log = structlog.get_logger(__package__)  # one logger name for the whole balancer


class Defaults(BalancerBase):
    """The TxDefaultProfile part of :class:`LoadBalancer`."""

    def _send_defaults(self, site: Site) -> None:
        """Each smart EVSE of a connected station that does not hold its fallback yet gets it;
        until the station takes it, the EVSE is counted at the higher of the old and the new."""
        for slot in site.evses:
            key = slot.key
            if not slot.smart or self.connected(slot.station_id) is None:
                continue
            given = self._defaults.get(key)
            if given is not None and given[0] == slot.fallback_a and key not in self._resend:
                continue
            self._resend.discard(key)
            if given is None:
                counted = slot.fallback_a
            elif given[2] == "refused":
                counted = slot.max_a
            else:
                counted = max(given[1], slot.fallback_a)
            self._defaults[key] = (slot.fallback_a, counted, "sent")
            self._spawn(self._send_default(slot))

    async def _send_default(self, slot: EvseSlot) -> None:
        key = slot.key
        sent = self._defaults.get(key)
        version = self.connected(slot.station_id)
        status: object = "not connected"
        if version is not None:
            payload = profiles.default_profile(version, slot, self.clock.now())
            try:
                result = await self.commands.send(slot.station_id, "SetChargingProfile", payload)
                status = result.response.get("status")
            except CommandError as exc:
                status = f"not answered: {exc}"
            except Exception as exc:
                log.exception("default profile failed", station_id=slot.station_id)
                status = f"failed: {type(exc).__name__}"
        taken = status == "Accepted"
        if sent is not None and self._defaults.get(key) == sent:
            if taken:
                self._defaults[key] = (slot.fallback_a, slot.fallback_a, "taken")
            elif version is None:
                self._resend.add(key)  # given when it is back
            else:
                self._defaults[key] = (slot.fallback_a, sent[1], "refused")
        if not taken:
            log.warning(
                "default profile not taken",
                station_id=slot.station_id,
                evse=slot.evse_id,
                status=status,
            )
