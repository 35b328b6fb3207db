"""OpenADR 3 over HTTP: the :class:`~chargegrid.service.openadr3.Transport` a VEN reaches its VTN
with, on httpx. Requests and bodies are built by the sans-I/O codec; nothing here logs a header
or a body (the client secret travels in the token request's body, tokens in headers).

httpx's errors (connection refused, timeouts, TLS, protocol) become
:class:`~chargegrid.service.openadr3.TransportError`; an answer larger than ``max_body`` bytes is
one too, rather than memory spent on it.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from chargegrid.service.openadr3 import Answer, TransportError

MAX_BODY = 16 * 1024 * 1024


class HttpTransport:
    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        max_body: int = MAX_BODY,
    ) -> None:
        self._client = client or httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._max_body = max_body

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None = None
    ) -> Answer:
        try:
            async with self._client.stream(
                method, url, headers=dict(headers), content=body
            ) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self._max_body:
                        raise TransportError(f"an answer over {self._max_body} bytes from {url}")
                    chunks.append(chunk)
                return Answer(response.status_code, b"".join(chunks))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        await self._client.aclose()
