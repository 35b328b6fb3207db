"""The OCPP service: what the WebSocket transport asks of the service layer.

It admits stations at the handshake by their security profile (from an in-memory copy of their
profiles and password hashes, since the handshake cannot wait for the database), gates messages
by registration state, routes each message to its version's handler and keeps stations' online
state.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import msgspec
import structlog

from chargegrid.domain.model import Registration, Station
from chargegrid.domain.passwords import (
    check_rules,
    hash_generated,
    hash_password,
    verify_password,
)
from chargegrid.domain.security import (
    Channel,
    PasswordCheck,
    Refusal,
    SecurityProfile,
    effective_profile,
    refusal,
)
from chargegrid.protocols.ocppj.errors import ErrorKind, OcppError
from chargegrid.protocols.ocppj.validation import Deviation
from chargegrid.service.central import CentralSystem
from chargegrid.service.certificates import Certificates
from chargegrid.service.ocpp import v16, v201
from chargegrid.service.ocpp.context import Router, StationContext
from chargegrid.service.ocpp.eager import run_eagerly
from chargegrid.service.ocpp.pnc16 import Pnc16
from chargegrid.service.plug_and_charge import PlugAndCharge

log = structlog.get_logger(__name__)

#: What a station that is not Accepted may send: OCPP 1.6 4.2 (Pending/Rejected: nothing but
#: BootNotification) and 2.0.1 B02/B03 (the CSMS may answer SecurityError to anything else).
#: Heartbeat is let through in both, as firmware keeps sending it while waiting.
_UNACCEPTED_MAY_SEND = frozenset({"BootNotification", "Heartbeat"})


def _served(registration: Registration | None, action: str) -> bool:
    return registration is Registration.ACCEPTED or action in _UNACCEPTED_MAY_SEND


class OcppService:
    """Implements the transport's ``ConnectionHooks``."""

    def __init__(
        self,
        central: CentralSystem,
        *,
        require_auth: bool = False,
        minimum_profile: int = 0,
        organization: str | None = None,
        certificates: Certificates | None = None,
        plug_and_charge: PlugAndCharge | None = None,
    ) -> None:
        self.central = central
        # --require-auth is profile 1 for every station
        self.minimum_profile = max(minimum_profile, 1 if require_auth else 0)
        self.organization = organization  # the O every station certificate must carry, if set
        handlers201 = v201.Ocpp201Handlers(central, certificates, plug_and_charge)
        self.routers: dict[str, Router] = {
            "1.6": v16.Ocpp16Handlers(
                central, certificates, Pnc16(handlers201, certificates)
            ).router(),
            "2.0.1": handlers201.router(),
        }
        self._passwords: dict[str, str] = {}
        self._pending: dict[str, str] = {}  # station -> a generated password it may be using
        # station -> the pending hash whose password it proved to hold at a handshake: made
        # its password when it connects
        self._proved: dict[str, str] = {}
        self._profiles: dict[str, int] = {}  # stations whose own profile is above 0
        self._lenient: dict[str, frozenset[Deviation]] = {}
        # station -> SHA-256 of the password last verified: a reconnect skips PBKDF2, and no
        # clear password stays in memory.
        self._verified: dict[str, bytes] = {}
        self._failures: dict[str, list[float]] = {}  # station -> monotonic times of failures
        self._tasks: set[asyncio.Task[None]] = set()  # handlers that suspended
        # Told the id of a station whose credentials changed here (a cluster tells the others)
        self.on_change: Callable[[str], None] = lambda station_id: None

    async def drain(self) -> None:
        """Wait for the handlers that suspended to end (at shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    async def load(self) -> None:
        """Read what the handshake needs into memory; call once at start-up."""
        for station in await self.central.store.list_stations():
            self._remember(station)

    def _remember(self, station: Station) -> None:
        self._verified.pop(station.id, None)
        if station.security_profile:
            self._profiles[station.id] = station.security_profile
        else:
            self._profiles.pop(station.id, None)
        if station.password_hash:
            self._passwords[station.id] = station.password_hash
        else:
            self._passwords.pop(station.id, None)
        if station.pending_password_hash:
            self._pending[station.id] = station.pending_password_hash
        else:
            self._pending.pop(station.id, None)
        deviations = frozenset(Deviation(d) for d in station.lenient if d in _DEVIATIONS)
        if deviations:
            self._lenient[station.id] = deviations
        else:
            self._lenient.pop(station.id, None)

    async def set_password(self, station_id: str, password: str | None) -> None:
        """Security profile 1: set (or clear) a station's Basic-auth password."""
        if password is not None:
            check_rules(password)
        await self._store_password(
            station_id, hash_password(password) if password is not None else None
        )

    async def store_generated_password(self, station_id: str, password: str) -> None:
        """Security profile 1: the station's password from now on is ``password``, made by
        :func:`~chargegrid.domain.passwords.generate_password` (so hashed without stretching)."""
        await self._store_password(station_id, hash_generated(password))

    async def store_pending_password(self, station_id: str, password: str | None) -> None:
        """Accept ``password`` (a generated one) beside the station's own until the station
        connects with it, when it becomes the station's password; None drops it."""
        station = await self.central.station_or_new(station_id)
        station.pending_password_hash = hash_generated(password) if password else None
        await self._save(station)

    async def _store_password(self, station_id: str, password_hash: str | None) -> None:
        station = await self.central.station_or_new(station_id)
        station.password_hash = password_hash
        station.pending_password_hash = None
        await self._save(station)

    async def _save(self, station: Station) -> None:
        await self.central.store.save_station(station)
        self._remember(station)
        self.on_change(station.id)

    async def _switch(self, station_id: str, proved: str) -> None:
        """The station connected with its pending password: it is its password now."""
        station = await self.central.station_or_new(station_id)
        if station.pending_password_hash != proved:
            return  # replaced or dropped meanwhile
        station.password_hash, station.pending_password_hash = proved, None
        await self._save(station)
        log.info("station uses its new password", station_id=station_id)

    async def forget(self, station_id: str) -> None:
        """The station was deleted: drop what the handshake kept of it."""
        self._forget(station_id)
        self.on_change(station_id)

    def _forget(self, station_id: str) -> None:
        self._passwords.pop(station_id, None)
        self._pending.pop(station_id, None)
        self._proved.pop(station_id, None)
        self._profiles.pop(station_id, None)
        self._lenient.pop(station_id, None)
        self._verified.pop(station_id, None)
        self._failures.pop(station_id, None)

    async def reload(self, station_id: str) -> None:
        """Read again what the handshake keeps of the station: another node changed it."""
        station = await self.central.store.get_station(station_id)
        if station is None:
            self._forget(station_id)
        else:
            self._remember(station)

    async def set_security_profile(self, station_id: str, profile: int) -> None:
        """Hold the station to ``profile`` from its next connection on."""
        station = await self.central.station_or_new(station_id)
        station.security_profile = SecurityProfile(profile)
        await self.central.store.save_station(station)
        self._remember(station)
        self.on_change(station_id)

    async def set_lenient(self, station_id: str, deviations: frozenset[Deviation]) -> None:
        station = await self.central.station_or_new(station_id)
        station.lenient = frozenset(d.value for d in deviations)
        await self.central.store.save_station(station)
        self._remember(station)
        self.on_change(station_id)

    # --- ConnectionHooks --------------------------------------------------------------------

    def admit(self, station_id: str, password: str | None, channel: Channel) -> Refusal | None:
        """Why ``station_id`` may not connect over ``channel`` with ``password``, or None.

        Synchronous, from the in-memory copy of the stations: it runs inside the HTTP upgrade.
        The rules are :func:`chargegrid.domain.security.refusal`'s.
        """
        profile = self.profile_of(station_id)
        if profile is SecurityProfile.TLS_CLIENT_CERT:
            check = PasswordCheck.NONE_STORED  # profile 3 authenticates by certificate only
        else:
            check = self._check_password(station_id, password)
        return refusal(station_id, profile, channel, check, self.organization)

    def profile_of(self, station_id: str) -> SecurityProfile:
        """The profile the station is held to now."""
        return effective_profile(
            self._profiles.get(station_id, 0),
            has_password=station_id in self._passwords,
            minimum=self.minimum_profile,
        )

    def has_password(self, station_id: str) -> bool:
        return station_id in self._passwords

    def _check_password(self, station_id: str, password: str | None) -> PasswordCheck:
        pending = self._pending.get(station_id)
        if pending is not None and password is not None and verify_password(password, pending):
            self._proved[station_id] = pending  # a generated hash: checked in microseconds
            return PasswordCheck.OK
        stored = self._passwords.get(station_id)
        if stored is None:
            return PasswordCheck.NONE_STORED
        if password is None:
            return PasswordCheck.NOT_SENT
        digest = hashlib.sha256(password.encode()).digest()
        known = self._verified.get(station_id)
        if known is not None and hmac.compare_digest(known, digest):
            return PasswordCheck.OK
        # PBKDF2 runs in the handshake, on the event loop: a station guessing passwords would
        # stall everyone, so after a few failures it is refused without checking for a while.
        now = time.monotonic()
        failures = [t for t in self._failures.get(station_id, ()) if now - t < _FAILURE_WINDOW_S]
        if len(failures) >= _MAX_FAILURES:
            self._failures[station_id] = failures
            return PasswordCheck.THROTTLED
        if verify_password(password, stored):
            self._verified[station_id] = digest
            self._failures.pop(station_id, None)
            return PasswordCheck.OK
        self._failures[station_id] = [*failures, now]
        return PasswordCheck.WRONG

    def lenient(self, station_id: str) -> frozenset[Deviation]:
        return self._lenient.get(station_id, frozenset())

    async def connected(self, ctx: StationContext) -> None:
        proved = self._proved.pop(ctx.station_id, None)
        if proved is not None:
            await self._switch(ctx.station_id, proved)
        ctx.registration = await self.central.registration(ctx.station_id)
        if ctx.registration is not None:
            await self.central.connected(ctx.station_id)

    async def disconnected(self, ctx: StationContext) -> None:
        if ctx.registration is not None:
            await self.central.disconnected(ctx.station_id)

    def serve(self, ctx: StationContext, action: str, request: Any, respond: Respond) -> None:
        """Handle a CALL and call ``respond(response, None)`` once every write it made is
        committed, or ``respond(None, error)``; never raises.

        The handler runs at once, inside a unit of work of the store, so its writes are queued
        rather than awaited and it usually ends without suspending: no task and no future per
        message. A handler that does suspend (a read that misses the in-memory state) goes on in
        a task. The answer waits for the commit either way: an acknowledged message is stored.
        """
        unit = self.central.store.write_unit()
        context = contextvars.copy_context()
        context.run(unit.activate)
        bus = self.central.events
        held = context.run(bus.hold)  # the message's events wait for its writes

        def committed(response: msgspec.Struct | None, failure: BaseException | None) -> None:
            if failure is None:
                bus.release(held)
            respond(response, failure)

        def finish(response: msgspec.Struct | None, error: BaseException | None) -> None:
            if error is not None:
                respond(None, error)
                # What the handler wrote before it failed is still committed: so are its events.
                if held:
                    unit.when_committed(lambda failure: None if failure else bus.release(held))
            else:
                unit.when_committed(lambda failure: committed(response, failure))

        run_eagerly(self.handle(ctx, action, request), context, finish, self._tasks)

    async def handle(self, ctx: StationContext, action: str, request: Any) -> msgspec.Struct:
        if not _served(ctx.registration, action):
            # The operator may have accepted it since; look again before refusing.
            ctx.registration = await self.central.registration(ctx.station_id)
            if not _served(ctx.registration, action):
                state = ctx.registration.value if ctx.registration else "unknown"
                raise OcppError(ErrorKind.SECURITY, f"station is {state}; send BootNotification")
        handler = self.routers[ctx.ocpp_version].get(action)
        if handler is None:
            raise OcppError(ErrorKind.NOT_SUPPORTED, f"{action} is not handled by this CSMS")
        return await handler(ctx, request)


Respond = Callable[[msgspec.Struct | None, BaseException | None], None]
_DEVIATIONS = {d.value for d in Deviation}
_MAX_FAILURES = 5
_FAILURE_WINDOW_S = 60.0
