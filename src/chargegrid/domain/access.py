"""Who may do what through the operator interfaces (REST API, dashboard).

Three roles, each allowed what the one below it is: a **viewer** reads; an **operator** also runs
the network (registers and accepts stations, manages id tokens, sends commands); an **admin**
also manages API tokens.
"""

from __future__ import annotations

import enum
from datetime import datetime

import msgspec


class Role(enum.Enum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        """True if this role may do what ``needed`` may."""
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class ApiToken(msgspec.Struct, frozen=True):
    """A bearer token of the REST API. Only ``token_sha256`` of the secret is kept."""

    name: str
    role: Role
    token_sha256: str
    created_at: datetime
    revoked: bool = False
    id: int | None = None
