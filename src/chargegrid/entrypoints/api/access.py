"""API tokens (admin only): create (the secret is shown once), list, revoke."""

from __future__ import annotations

from litestar import delete, get, post
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from chargegrid.entrypoints.api.auth import ADMIN
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.entrypoints.api.schemas import ApiTokenCreated, ApiTokenIn, ApiTokenOut, RecordId


@get("/", summary="List API tokens (never their secrets)", opt=ADMIN)
async def list_api_tokens(ctx: Ctx) -> list[ApiTokenOut]:
    return [ApiTokenOut.of(t) for t in await ctx.access.list()]


@post("/", summary="Create an API token", opt=ADMIN, status_code=HTTP_201_CREATED)
async def create_api_token(ctx: Ctx, data: JSONBody[ApiTokenIn]) -> ApiTokenCreated:
    secret, token = await ctx.access.create(data.name, data.role_value)
    return ApiTokenCreated(secret, ApiTokenOut.of(token))


@delete(
    "/{token_id:int}", summary="Revoke an API token", opt=ADMIN, status_code=HTTP_204_NO_CONTENT
)
async def revoke_api_token(ctx: Ctx, token_id: RecordId) -> None:
    if not await ctx.access.revoke(token_id):
        raise NotFoundException(f"no API token {token_id}")


handlers = [list_api_tokens, create_api_token, revoke_api_token]
