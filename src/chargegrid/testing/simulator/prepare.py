"""Make a CSMS ready for a fleet through chargegrid's REST API: its stations registered as
accepted, its id tokens known.

A fresh ``chargegrid serve`` answers unknown stations Pending and unknown id tokens Invalid, as it
should; an operator's API token lets the simulator fix both before it connects: the id tokens in
one ``POST /api/v1/tokens/import`` (only the ``value`` column, so existing tokens keep their
groups, expiry and blocks), each station with ``POST /api/v1/stations`` (accepted) or, if it
exists, ``PATCH /api/v1/stations/{id}`` to Accepted (and the password, when one is given).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from urllib.parse import quote

import httpx

_CONCURRENT = 16
_CSV_ROWS = 5_000


class PrepareError(Exception):
    """The API could not be reached or refused what was asked (the message says which)."""


async def prepare(
    api_url: str,
    api_token: str,
    station_ids: Sequence[str],
    tokens: Iterable[str],
    password: str | None = None,
) -> None:
    """Register ``station_ids`` as accepted (with Basic-auth ``password``) and ``tokens``."""
    base = api_url.rstrip("/") + "/api/v1"
    headers = {"Authorization": f"Bearer {api_token}"}
    try:
        async with httpx.AsyncClient(headers=headers, timeout=30) as http:
            values = sorted(set(tokens))
            for start in range(0, len(values), _CSV_ROWS):
                body = "value\n" + "\n".join(values[start : start + _CSV_ROWS]) + "\n"
                response = await http.post(
                    f"{base}/tokens/import", content=body, headers={"content-type": "text/csv"}
                )
                _check(response, "importing the id tokens")
            gate = asyncio.Semaphore(_CONCURRENT)

            async def register(station_id: str) -> None:
                async with gate:
                    await _register(http, base, station_id, password)

            await asyncio.gather(*(register(s) for s in station_ids))
    except httpx.HTTPError as exc:
        raise PrepareError(
            f"cannot reach the API at {api_url}: {str(exc) or type(exc).__name__}"
        ) from exc


async def _register(
    http: httpx.AsyncClient, base: str, station_id: str, password: str | None
) -> None:
    body: dict[str, object] = {"id": station_id}
    if password is not None:
        body["password"] = password
        body["security_profile"] = 1
    response = await http.post(f"{base}/stations", json=body)
    if response.status_code == 409:  # known already: accept it, whatever it was
        del body["id"]
        body.pop("security_profile", None)
        body["registration"] = "Accepted"
        response = await http.patch(f"{base}/stations/{quote(station_id, safe='')}", json=body)
    _check(response, f"registering station {station_id}")


def _check(response: httpx.Response, doing: str) -> None:
    if response.status_code < 400:
        return
    try:
        detail = response.json().get("detail", "")
    except ValueError:
        detail = response.text[:200]
    if response.status_code in (401, 403):
        raise PrepareError(
            f"{doing}: the API refused the token ({response.status_code}: {detail}); "
            "give an operator's token in CHARGEGRID_API_TOKEN"
        )
    raise PrepareError(f"{doing}: HTTP {response.status_code}: {detail}")
