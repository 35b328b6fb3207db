"""The VEN's HTTP client of its VTN (steps 1 and 2 of the exchange in
:mod:`chargegrid.service.openadr3`): the :class:`Transport` port it sends by, the bearer token
got and renewed by the OAuth 2.0 client credentials grant, and listings read page by page. The
client secret and the tokens stay here, and are never logged."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from msgspec import UnsetType

from chargegrid.protocols import openadr3 as oadr
from chargegrid.service.ports import Clock

log = structlog.get_logger(__package__)  # one logger name for the whole VEN

TOKEN_MARGIN = timedelta(seconds=30)
_TOKEN_LONGEST_S = 366 * 86400  # an expires_in beyond a year is read as a year
MAX_PAGES = 100  # of a listing: a VTN that pages on past this is read no further this poll


class TransportError(Exception):
    """The VTN could not be reached, or did not answer in time."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


class Transport(Protocol):
    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> Answer:
        """The VTN's answer; raises TransportError when it cannot be had."""
        ...

    async def close(self) -> None: ...


class VtnClient:
    """Requests to one VTN, with a bearer token when there is a ``client_id``."""

    def __init__(
        self,
        transport: Transport,
        clock: Clock,
        base_url: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        vtn: str,
    ) -> None:
        self.transport = transport
        self.clock = clock
        self.base_url = base_url
        self.token_url = token_url
        self.client_id = client_id
        self.log = log.bind(vtn=vtn)
        self._secret = oadr.Secret(client_secret)
        self._token: oadr.Secret | None = None
        self._token_until: datetime | None = None

    async def search(self, collection: str) -> tuple[list[bytes], bool]:
        """Every object of a collection, page by page until an empty one, and whether that was
        reached. ``skip`` counts the objects received: a VTN may answer fewer than ``limit``
        (a lower maximum of its own) and have more. A VTN that ignores ``skip`` is read once
        (a page like the last ends the listing); :data:`MAX_PAGES` pages without an end leave
        it incomplete."""
        out: list[bytes] = []
        last: list[bytes] | None = None
        for _ in range(MAX_PAGES):
            params = {"skip": len(out), "limit": oadr.PAGE_LIMIT}
            url = oadr.collection_url(self.base_url, collection, params)
            items = oadr.decode_array(await self.call("GET", url))
            if not items or items == last:
                return out, True
            out += items
            last = items
        self.log.warning(
            "OpenADR 3 listing cut short", collection=collection, pages=MAX_PAGES, read=len(out)
        )
        return out, False

    async def call(self, method: str, url: str, body: bytes | None = None) -> bytes:
        """The body of the VTN's 2xx answer; a 401 renews the token and tries once more."""
        for attempt in range(2):
            headers = {"Accept": oadr.JSON}
            token = await self._bearer()
            if token is not None:
                headers["Authorization"] = f"Bearer {token.reveal()}"
            if body is not None:
                headers["Content-Type"] = oadr.JSON
            answer = await self.transport.send(method, url, headers, body)
            if answer.status == 401 and token is not None and attempt == 0:
                self._token = None
                continue
            if not 200 <= answer.status < 300:
                raise oadr.refusal(answer.status, answer.body)
            return answer.body
        raise AssertionError("unreachable")  # pragma: no cover

    async def _bearer(self) -> oadr.Secret | None:
        if not self.client_id:
            return None
        now = self.clock.now()
        if self._token is not None and (self._token_until is None or now < self._token_until):
            return self._token
        form = oadr.token_request(self.client_id, self._secret)
        answer = await self.transport.send(
            "POST", self.token_url, {"Content-Type": oadr.FORM, "Accept": oadr.JSON}, form
        )
        if answer.status != 200:
            raise oadr.refusal(answer.status, answer.body)
        granted = oadr.decode_token(answer.body)
        self._token = granted.access_token
        self._token_until = None
        if not isinstance(granted.expires_in, UnsetType):
            lasts = min(max(granted.expires_in, 0), _TOKEN_LONGEST_S)
            self._token_until = now + timedelta(seconds=lasts) - TOKEN_MARGIN
        self.log.info("OpenADR 3 token granted", expires_in=granted.expires_in)
        return self._token
