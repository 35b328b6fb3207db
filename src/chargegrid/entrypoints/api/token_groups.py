"""Token groups: the tokens that share a group id (OCPP 1.6 parentIdTag, 2.0.1 groupIdToken), as
one fleet, family or company card set. A token joins a group through its ``group`` field (see
:mod:`.tokens`); here the operator sees the groups and blocks or unblocks one as a whole."""

from __future__ import annotations

import msgspec
from litestar import get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from chargegrid.domain.model import TokenGroup
from chargegrid.entrypoints.api.auth import OPERATOR
from chargegrid.entrypoints.api.context import Ctx
from chargegrid.service.ports import Filter, ListQuery


class TokenGroupOut(msgspec.Struct):
    name: str
    tokens: int
    blocked: int

    @classmethod
    def of(cls, group: TokenGroup) -> TokenGroupOut:
        return cls(group.name, group.tokens, group.blocked)


class GroupChange(msgspec.Struct):
    group: TokenGroupOut
    changed: int  # tokens whose blocked flag this request changed


@get("/", summary="List token groups with their token counts")
async def list_groups(ctx: Ctx) -> list[TokenGroupOut]:
    return [TokenGroupOut.of(g) for g in await ctx.store.token_groups()]


@get("/{name:str}", summary="A token group (its tokens: GET /tokens?group=)")
async def get_group(ctx: Ctx, name: FromPath[str]) -> TokenGroupOut:
    return TokenGroupOut.of(await _group(ctx, name))


@post("/{name:str}/block", summary="Block every token of a group", opt=OPERATOR, status_code=200)
async def block_group(ctx: Ctx, name: FromPath[str]) -> GroupChange:
    return await _set_blocked(ctx, name, blocked=True)


@post(
    "/{name:str}/unblock", summary="Unblock every token of a group", opt=OPERATOR, status_code=200
)
async def unblock_group(ctx: Ctx, name: FromPath[str]) -> GroupChange:
    return await _set_blocked(ctx, name, blocked=False)


async def _group(ctx: Ctx, name: str) -> TokenGroup:
    for group in await ctx.store.token_groups():
        if group.name == name:
            return group
    raise NotFoundException(f"no token group {name!r}")


async def _set_blocked(ctx: Ctx, name: str, *, blocked: bool) -> GroupChange:
    await _group(ctx, name)
    changed = 0
    after = None
    while True:  # through the store one token at a time, so its caches see every change
        query = ListQuery(sort="value", limit=500, filters=(Filter("group", "eq", name),))
        found, more = await ctx.store.page_tokens(msgspec.structs.replace(query, after=after))
        for token in found:
            if token.blocked != blocked:
                await ctx.store.save_token(msgspec.structs.replace(token, blocked=blocked))
                changed += 1
        if not more or not found:
            return GroupChange(TokenGroupOut.of(await _group(ctx, name)), changed)
        after = (found[-1].value, found[-1].value)


handlers = [list_groups, get_group, block_group, unblock_group]
