"""OSCP 2.0 over HTTP: the :class:`~chargegrid.service.oscp.Transport` that posts messages to a
peer with httpx. Headers and bodies are built by the sans-I/O codec; the token in them is never
logged here (httpx logs no headers)."""

from __future__ import annotations

from collections.abc import Mapping

import httpx


class HttpTransport:
    def __init__(self, client: httpx.AsyncClient | None = None, timeout_s: float = 10.0) -> None:
        self._client = client or httpx.AsyncClient(timeout=timeout_s)

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        try:
            response = await self._client.post(url, headers=dict(headers), content=body)
        except httpx.HTTPError as exc:
            raise OSError(f"{type(exc).__name__}: {exc}") from exc
        return response.status_code

    async def close(self) -> None:
        await self._client.aclose()
