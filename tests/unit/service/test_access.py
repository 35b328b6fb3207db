"""API tokens: created with a secret shown once, checked by hash, revoked."""

from __future__ import annotations

import pytest

from chargegrid.domain.access import Role
from chargegrid.service.access import AccessControl, digest
from chargegrid.testing.fakes import FakeStore, FixedClock


async def test_a_created_token_authenticates_with_its_role_and_only_its_hash_is_kept() -> None:
    store = FakeStore()
    access = AccessControl(store, FixedClock())
    secret, token = await access.create("ops", Role.OPERATOR)
    assert len(secret) >= 40 and token.token_sha256 == digest(secret)
    assert all(secret not in repr(t) for t in await store.list_api_tokens())
    assert await access.authenticate(secret) is Role.OPERATOR
    assert await access.authenticate(secret + "x") is None


async def test_a_revoked_token_stops_working_at_once_on_this_node() -> None:
    access = AccessControl(FakeStore(), FixedClock())
    secret, token = await access.create("ci", Role.VIEWER)
    assert await access.authenticate(secret) is Role.VIEWER
    assert token.id is not None and await access.revoke(token.id)
    assert await access.authenticate(secret) is None
    assert not await access.revoke(12345)


async def test_the_admin_token_from_the_environment_is_admin_and_never_stored() -> None:
    store = FakeStore()
    access = AccessControl(store, FixedClock(), admin_token="s" * 32)
    assert await access.authenticate("s" * 32) is Role.ADMIN
    assert await store.list_api_tokens() == []
    with pytest.raises(ValueError, match="at least 16"):
        AccessControl(store, FixedClock(), admin_token="short")


def test_roles_allow_what_the_roles_below_them_do() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.OPERATOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR) and not Role.OPERATOR.allows(Role.ADMIN)
