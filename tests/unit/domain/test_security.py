"""Security-profile admission rules (OCPP 1.6 security whitepaper 2, OCPP 2.0.1 A00)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chargegrid.domain.security import (
    Channel,
    PasswordCheck,
    SecurityProfile,
    effective_profile,
    refusal,
)

P = SecurityProfile
OK, WRONG, NOT_SENT, NONE = (
    PasswordCheck.OK,
    PasswordCheck.WRONG,
    PasswordCheck.NOT_SENT,
    PasswordCheck.NONE_STORED,
)
PLAIN = Channel()
TLS = Channel(tls=True)
MINE = Channel(tls=True, client_cn="CS-1", client_org="CPO")


@pytest.mark.parametrize(
    ("profile", "channel", "password", "allowed"),
    [
        (P.NONE, PLAIN, NONE, True),
        (P.BASIC, PLAIN, OK, True),
        (P.BASIC, PLAIN, WRONG, False),
        (P.BASIC, PLAIN, NONE, False),  # profile 1 with no password set: never served below it
        (P.BASIC, TLS, OK, True),  # above its profile is fine
        (P.TLS_BASIC, PLAIN, OK, False),
        (P.TLS_BASIC, TLS, OK, True),
        (P.TLS_BASIC, TLS, NOT_SENT, False),
        (P.TLS_BASIC, MINE, OK, True),
        (P.TLS_CLIENT_CERT, TLS, OK, False),
        (P.TLS_CLIENT_CERT, MINE, NONE, True),
        (P.TLS_CLIENT_CERT, Channel(client_cn="CS-1"), NONE, False),  # a cert but no TLS?
    ],
)
def test_the_rules(
    profile: SecurityProfile, channel: Channel, password: PasswordCheck, allowed: bool
) -> None:
    assert (refusal("CS-1", profile, channel, password, "CPO") is None) is allowed


def test_only_credential_failures_ask_for_credentials() -> None:
    assert refusal("CS-1", P.BASIC, PLAIN, WRONG).bad_credentials  # type: ignore[union-attr]
    assert not refusal("CS-1", P.TLS_BASIC, PLAIN, OK).bad_credentials  # type: ignore[union-attr]


def test_effective_profile() -> None:
    assert effective_profile(0, has_password=False) is P.NONE
    assert effective_profile(0, has_password=True) is P.BASIC
    assert effective_profile(3, has_password=True, minimum=1) is P.TLS_CLIENT_CERT
    assert effective_profile(1, has_password=False, minimum=2) is P.TLS_BASIC


@given(
    profile=st.sampled_from(list(P)),
    tls=st.booleans(),
    cn=st.one_of(st.none(), st.sampled_from(["CS-1", "CS-2", ""])),
    org=st.one_of(st.none(), st.sampled_from(["CPO", "Other"])),
    password=st.sampled_from(list(PasswordCheck)),
)
def test_never_served_below_the_profile(
    profile: SecurityProfile, tls: bool, cn: str | None, org: str | None, password: PasswordCheck
) -> None:
    channel = Channel(tls=tls, client_cn=cn, client_org=org)
    if refusal("CS-1", profile, channel, password, "CPO") is not None:
        return
    if profile >= P.TLS_BASIC:
        assert tls
    if profile is P.TLS_CLIENT_CERT:
        assert (cn, org) == ("CS-1", "CPO")
    elif profile >= P.BASIC:
        assert password is PasswordCheck.OK
    if channel.client_cert:
        assert cn == "CS-1"
