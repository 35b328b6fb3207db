"""Bearer tokens of the operator interfaces: create, check, list, revoke.

A token is 32 random bytes, URL-safe base64, shown once when created; the store keeps only its
SHA-256 (a random 256-bit secret needs no slow hash). ``CHARGEGRID_ADMIN_TOKEN``, when set, is an
admin token that lives only in the environment, so a fresh installation can be administered
before any token exists. Checks are cached for a few seconds: a revoked token stops working
within ``ttl_s`` on every node.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import structlog

from chargegrid.domain.access import ApiToken, Role
from chargegrid.service.ports import Clock, Store

log = structlog.get_logger(__name__)

MIN_SECRET_LENGTH = 16


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AccessControl:
    def __init__(
        self, store: Store, clock: Clock, *, admin_token: str | None = None, ttl_s: float = 5.0
    ) -> None:
        if admin_token is not None and len(admin_token) < MIN_SECRET_LENGTH:
            raise ValueError(f"the admin token must have at least {MIN_SECRET_LENGTH} characters")
        self.store = store
        self.clock = clock
        self._admin = digest(admin_token) if admin_token else None
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Role | None]] = {}

    async def create(self, name: str, role: Role) -> tuple[str, ApiToken]:
        """A new token: its secret (shown once) and its stored record."""
        secret = secrets.token_urlsafe(32)
        token = await self.store.save_api_token(
            ApiToken(name=name, role=role, token_sha256=digest(secret), created_at=self.clock.now())
        )
        log.info("API token created", token_id=token.id, name=name, role=role.value)
        return secret, token

    async def authenticate(self, secret: str) -> Role | None:
        """The role of a valid, unrevoked token; None otherwise."""
        hashed = digest(secret)
        if self._admin is not None and hmac.compare_digest(hashed, self._admin):
            return Role.ADMIN
        now = time.monotonic()
        cached = self._cache.get(hashed)
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        token = await self.store.find_api_token(hashed)
        role = token.role if token is not None and not token.revoked else None
        if len(self._cache) > 10_000:  # guessed secrets must not grow it without bound
            self._cache.clear()
        self._cache[hashed] = (now, role)
        return role

    async def list(self) -> list[ApiToken]:
        return list(await self.store.list_api_tokens())

    async def revoke(self, token_id: int) -> bool:
        revoked = await self.store.revoke_api_token(token_id)
        if revoked:
            self._cache.clear()
            log.info("API token revoked", token_id=token_id)
        return revoked
