from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from chargegrid.domain.authorization import authorize
from chargegrid.domain.model import AuthorizationStatus, IdToken

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_unknown_token_is_invalid() -> None:
    assert authorize(None, NOW, in_active_transaction=False).status is AuthorizationStatus.INVALID


def test_rules_in_order() -> None:
    past, future = NOW - timedelta(seconds=1), NOW + timedelta(days=1)
    assert (
        authorize(IdToken("A"), NOW, in_active_transaction=False).status
        is AuthorizationStatus.ACCEPTED
    )
    assert authorize(
        IdToken("A", blocked=True, expires_at=past), NOW, in_active_transaction=True
    ).status is (AuthorizationStatus.BLOCKED)
    assert authorize(IdToken("A", expires_at=past), NOW, in_active_transaction=True).status is (
        AuthorizationStatus.EXPIRED
    )
    assert authorize(IdToken("A", expires_at=future), NOW, in_active_transaction=True).status is (
        AuthorizationStatus.CONCURRENT_TX
    )
    fleet = IdToken("A", allow_concurrent=True, group="FLEET")
    result = authorize(fleet, NOW, in_active_transaction=True)
    assert result.status is AuthorizationStatus.ACCEPTED and result.group == "FLEET"


@given(
    blocked=st.booleans(),
    offset=st.one_of(st.none(), st.integers(-10_000, 10_000)),
    active=st.booleans(),
    concurrent=st.booleans(),
)
def test_only_a_clean_token_is_accepted(
    blocked: bool, offset: int | None, active: bool, concurrent: bool
) -> None:
    expires = None if offset is None else NOW + timedelta(seconds=offset)
    token = IdToken("T", blocked=blocked, expires_at=expires, allow_concurrent=concurrent)
    status = authorize(token, NOW, in_active_transaction=active).status
    clean = not blocked and (expires is None or expires > NOW) and (not active or concurrent)
    assert (status is AuthorizationStatus.ACCEPTED) == clean
