"""Use cases on in-memory fakes: no sockets, no database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chargegrid.domain.model import (
    AuthorizationStatus,
    IdToken,
    MeterReading,
    Registration,
    SampledValue,
    TransactionState,
    UnknownStationPolicy,
)
from chargegrid.domain.security import Channel, Refusal
from chargegrid.protocols.ocppj.errors import ErrorKind, OcppError
from chargegrid.service.central import BootInfo, CentralSystem, Settings
from chargegrid.service.ocpp.context import StationContext
from chargegrid.service.ocpp.service import OcppService
from chargegrid.service.ports import NewTransaction
from chargegrid.testing.fakes import FakeStore, FixedClock


def system(policy: UnknownStationPolicy = UnknownStationPolicy.PENDING) -> CentralSystem:
    return CentralSystem(FakeStore(), FixedClock(), Settings(unknown_stations=policy))


BOOT = BootInfo("CS-1", "2.0.1", "ACME", "W1", firmware_version="1.0", reason="PowerUp")


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (UnknownStationPolicy.ACCEPT, Registration.ACCEPTED),
        (UnknownStationPolicy.PENDING, Registration.PENDING),
        (UnknownStationPolicy.REJECT, Registration.REJECTED),
    ],
)
async def test_unknown_station_policy(policy: UnknownStationPolicy, expected: Registration) -> None:
    central = system(policy)
    decision = await central.boot(BOOT)
    assert decision.registration is expected
    stored = await central.store.get_station("CS-1")
    assert stored is not None and stored.vendor == "ACME" and stored.boot_reason == "PowerUp"


async def test_known_station_keeps_its_registration() -> None:
    central = system(UnknownStationPolicy.REJECT)
    await central.set_registration("CS-1", Registration.ACCEPTED)
    decision = await central.boot(BOOT)
    assert decision.registration is Registration.ACCEPTED
    assert decision.interval_s == central.settings.heartbeat_interval_s


async def test_transaction_energy_follows_the_register() -> None:
    central = system()
    await central.store.save_token(IdToken("T1"))
    new = NewTransaction("CS-1", None, 1, 1, "T1", central.clock.now(), Decimal(100))
    tx, auth = await central.start_transaction(new)
    assert auth is not None and auth.status is AuthorizationStatus.ACCEPTED
    assert tx.station_tx_id == str(tx.id)
    again, _ = await central.start_transaction(new)
    assert again.id == tx.id  # a resent start is the same transaction
    assert (await central.authorize("T1")).status is AuthorizationStatus.CONCURRENT_TX
    reading = MeterReading(central.clock.now(), (SampledValue(Decimal("0.5"), unit="kWh"),))
    await central.meter_values("CS-1", tx, 1, 1, [reading])
    assert tx.last_meter_wh == Decimal("500.0")
    ended = await central.stop_transaction(
        tx, stopped_at=central.clock.now(), meter_stop_wh=None, reason="Local"
    )
    assert ended.state is TransactionState.ENDED and ended.energy_wh == Decimal(400)
    assert (
        await central.stop_transaction(
            ended, stopped_at=central.clock.now(), meter_stop_wh=Decimal(9), reason="X"
        )
    ) is ended


async def test_gate_refuses_messages_from_a_pending_station() -> None:
    central = system(UnknownStationPolicy.PENDING)
    service = OcppService(central)
    ctx = StationContext("CS-1", "1.6")
    with pytest.raises(OcppError) as info:
        await service.handle(ctx, "Authorize", object())
    assert info.value.kind is ErrorKind.SECURITY
    await central.set_registration("CS-1", Registration.ACCEPTED)
    # the gate looks again before refusing, so an operator's accept takes effect at once
    with pytest.raises(OcppError) as info:
        await service.handle(ctx, "NoSuchAction", object())
    assert info.value.kind is ErrorKind.NOT_SUPPORTED


PLAIN = Channel()


def _why(refused: Refusal | None) -> str | None:
    return None if refused is None else refused.reason


async def test_passwords_are_checked_from_memory() -> None:
    central = system()
    service = OcppService(central)
    await service.set_password("CS-1", "sixteen-chars-pw")
    assert service.admit("CS-1", "sixteen-chars-pw", PLAIN) is None
    assert service.admit("CS-1", "sixteen-chars-pw", PLAIN) is None  # the cached path
    assert (
        _why(service.admit("CS-1", "wrong-password-xx", PLAIN))
        == "authentication failed: password wrong"
    )
    assert _why(service.admit("CS-1", None, PLAIN)) == "authentication failed: password not sent"
    assert service.admit("CS-2", None, PLAIN) is None  # no password set and none required
    assert (
        _why(OcppService(central, require_auth=True).admit("CS-2", None, PLAIN))
        == "security profile 1 needs a password; none is set"
    )
    stored = await central.store.get_station("CS-1")
    assert stored is not None and stored.password_hash and "sixteen" not in stored.password_hash


async def test_a_pending_password_is_made_the_stations_once_it_connects_with_it() -> None:
    central = system()
    service = OcppService(central)
    await service.set_password("CS-1", "the-old-password-0")
    await service.store_pending_password("CS-1", "first-generated-password-0000000")
    # proved at a handshake that did not go on to connect, then replaced by another
    assert service.admit("CS-1", "first-generated-password-0000000", PLAIN) is None
    await service.store_pending_password("CS-1", "second-generated-password-000000")
    assert service.admit("CS-1", "the-old-password-0", PLAIN) is None
    await service.connected(StationContext("CS-1", "1.6"))
    stored = await central.store.get_station("CS-1")
    assert stored is not None and stored.pending_password_hash is not None  # not the first's
    assert service.admit("CS-1", "first-generated-password-0000000", PLAIN) is not None

    assert service.admit("CS-1", "second-generated-password-000000", PLAIN) is None
    await service.connected(StationContext("CS-1", "1.6"))
    stored = await central.store.get_station("CS-1")
    assert stored is not None and stored.pending_password_hash is None
    assert service.admit("CS-1", "the-old-password-0", PLAIN) is not None
    assert service.admit("CS-1", "second-generated-password-000000", PLAIN) is None


async def test_password_set_before_first_boot_keeps_the_unknown_station_policy() -> None:
    central = system(UnknownStationPolicy.ACCEPT)
    await OcppService(central).set_password("CS-9", "sixteen-chars-pw")
    assert (
        await central.boot(BootInfo("CS-9", "1.6", "A", "B"))
    ).registration is Registration.ACCEPTED


async def test_password_guessing_is_throttled() -> None:
    service = OcppService(system())
    await service.set_password("CS-1", "sixteen-chars-pw")
    for n in range(5):
        assert service.admit("CS-1", f"wrong-password-{n:02}", PLAIN) is not None
    # throttled: even the right password is refused without being checked, for a while
    assert _why(service.admit("CS-1", "sixteen-chars-pw", PLAIN)) == (
        "authentication failed: password throttled"
    )
    assert service.admit("CS-2", None, PLAIN) is None


async def test_a_station_is_held_to_its_security_profile() -> None:
    service = OcppService(system(), organization="ACME CPO")
    await service.set_password("CS-1", "sixteen-chars-pw")
    await service.set_security_profile("CS-1", 2)
    tls = Channel(tls=True)
    assert _why(service.admit("CS-1", "sixteen-chars-pw", PLAIN)) == (
        "security profile 2 needs TLS; the connection has none"
    )
    assert service.admit("CS-1", "sixteen-chars-pw", tls) is None
    await service.set_security_profile("CS-1", 3)
    assert _why(service.admit("CS-1", "sixteen-chars-pw", tls)) == (
        "security profile 3 needs a client certificate; none was presented"
    )
    mine = Channel(tls=True, client_cn="CS-1", client_org="ACME CPO")
    assert service.admit("CS-1", None, mine) is None  # no password at profile 3
    stored = await service.central.store.get_station("CS-1")
    assert stored is not None and stored.security_profile == 3


async def test_invalid_and_offline_commands_are_recorded() -> None:
    from chargegrid.service.commands import CommandInvalidError, Commands, StationOfflineError

    class Link:
        station_id, ocpp_version = "CS-1", "1.6"

        async def call(self, request: object, timeout: float | None = None) -> object:
            raise AssertionError("an invalid command must not be sent")

    class Links:
        def get(self, station_id: str) -> Link | None:
            return Link() if station_id == "CS-1" else None

    store, clock = FakeStore(), FixedClock()
    commands = Commands(Links(), store, clock)
    with pytest.raises(CommandInvalidError):
        await commands.send("CS-1", "Reset", {"type": "Sideways"})
    with pytest.raises(StationOfflineError):
        await commands.send("CS-2", "Reset", {"type": "Hard"})
    outcomes = {
        r.station_id: r.outcome
        for r in [*await store.commands("CS-1"), *await store.commands("CS-2")]
    }
    assert outcomes == {"CS-1": "invalid", "CS-2": "offline"}


async def test_a_token_is_not_concurrent_with_its_own_transaction() -> None:
    central = system()
    await central.store.save_token(IdToken("T1"))
    await central.start_transaction(NewTransaction("CS-1", "tx", 1, 1, "T1", central.clock.now()))
    assert (await central.authorize("T1")).status is AuthorizationStatus.CONCURRENT_TX
    own = await central.authorize("T1", own_transaction=True)
    assert own.status is AuthorizationStatus.ACCEPTED


def test_unknown_token_is_told_in_each_versions_terms() -> None:
    from chargegrid.domain.model import Authorization
    from chargegrid.protocols.ocpp16.mapping import id_tag_info
    from chargegrid.protocols.ocpp201.mapping import id_token_info

    unknown = Authorization(AuthorizationStatus.INVALID)
    assert id_tag_info(unknown).status == "Invalid"  # 1.6 has no Unknown
    assert id_token_info(unknown).status == "Unknown"  # 2.0.1 C01: a token the CSMS does not know
