"""Bearer-token authentication and role guards.

Every route needs a valid ``Authorization: Bearer <token>`` (401 otherwise) except those marked
public (health, readiness, the OpenAPI document and its viewer). A route states the least role
it needs in its ``opt`` (``opt={"role": Role.OPERATOR}``; reads default to viewer), and a token
of a lesser role gets 403.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from chargegrid.domain.access import Role
from chargegrid.entrypoints.api.context import ApiContext

PUBLIC = "public"  # the opt key of routes anyone may call


class BearerAuth(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise NotAuthorizedException(
                "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
        ctx: ApiContext = connection.app.state.ctx
        role = await ctx.access.authenticate(secret.strip())
        if role is None:
            raise NotAuthorizedException(
                "unknown or revoked token",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return AuthenticationResult(user=role, auth=None)


def role_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """403 unless the caller's role allows the route's (``opt["role"]``, viewer by default)."""
    if handler.opt.get(PUBLIC) or "user" not in connection.scope:
        return  # a route the authentication middleware leaves public (the OpenAPI document)
    needed: Role = handler.opt.get("role", Role.VIEWER)
    role: Role = connection.user
    if not role.allows(needed):
        raise PermissionDeniedException(
            f"this needs the {needed.value} role; yours is {role.value}"
        )


OPERATOR: dict[str, Any] = {"role": Role.OPERATOR}
ADMIN: dict[str, Any] = {"role": Role.ADMIN}
