"""The network side of Plug & Charge: OCSP over HTTP (RFC 6960 appendix A) and the contract
certificate provider of Hubject's Open Plug&Charge Protocol (OPCP 1.0, CCP
``POST /v1/ccp/signedContractData``), both with httpx."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import structlog
from cryptography import x509

from chargegrid.service.plug_and_charge import EvCertificateAnswer, OcspUnreachable

log = structlog.get_logger(__name__)
T = TypeVar("T")
MAX_RESPONSE = 64 * 1024  # an OCSP answer is a few KiB

#: ISO 15118 schema versions (OCPP Get15118EVCertificate iso15118SchemaVersion) -> OPCP's
#: xsdMsgDefNamespace.
_NAMESPACES = {
    "urn:iso:15118:2:2013:MsgDef": "urn:iso:15118:2:2013:MsgDef",
    "urn:iso:std:iso:15118:-20:CommonMessages": "urn:iso:std:iso:15118:-20:CommonMessages",
}


class HttpOcsp:
    """The :class:`~chargegrid.service.plug_and_charge.OcspTransport` port."""

    def __init__(self, client: httpx.AsyncClient | None = None, timeout_s: float = 5.0) -> None:
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self.timeout_s = timeout_s  # for the whole exchange, not each read

    async def post(self, url: str, request: bytes) -> bytes:
        if not url.startswith(("http://", "https://")):
            raise OcspUnreachable(f"not an HTTP URL: {url!r}")
        return await in_a_task(self._post(url, request))

    async def _post(self, url: str, request: bytes) -> bytes:
        """At most :data:`MAX_RESPONSE` bytes in at most ``timeout_s``: a responder is named by
        the station (or the certificate it sent), so it is not trusted to be small or quick."""
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._client.stream(
                    "POST",
                    url,
                    content=request,
                    headers={"Content-Type": "application/ocsp-request"},
                ) as response:
                    if response.status_code != 200:
                        raise OcspUnreachable(f"HTTP {response.status_code}")
                    body = bytearray()
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_RESPONSE:
                            raise OcspUnreachable(f"answer over {MAX_RESPONSE} bytes")
                    return bytes(body)
        except TimeoutError as exc:
            raise OcspUnreachable(f"no answer within {self.timeout_s} s") from exc
        except httpx.HTTPError as exc:
            raise OcspUnreachable(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        await self._client.aclose()


class OpcpContractProvider:
    """The :class:`~chargegrid.service.plug_and_charge.ContractProvider` port for an OPCP
    Contract Certificate Pool: the car's EXI request goes out as ``certificateInstallationReq``,
    the pool's ``certificateInstallationRes`` comes back. A bearer token, when given, is sent
    as OPCP's OAuth 2 access token."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._client = client or httpx.AsyncClient(timeout=timeout_s)

    async def ev_certificate(
        self, schema_version: str, action: str, exi_request: str
    ) -> EvCertificateAnswer:
        return await in_a_task(self._ev_certificate(schema_version, action, exi_request))

    async def _ev_certificate(
        self, schema_version: str, action: str, exi_request: str
    ) -> EvCertificateAnswer:
        body = {
            "certificateInstallationReq": exi_request,
            "xsdMsgDefNamespace": _NAMESPACES.get(schema_version, schema_version),
        }
        headers = {"alwaysReturnEXI": "true"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            response = await self._client.post(
                f"{self.base_url}/v1/ccp/signedContractData", json=body, headers=headers
            )
            data = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("contract provider unreachable", reason=f"{type(exc).__name__}: {exc}")
            return EvCertificateAnswer("Failed", "")
        exi = _installation_res(data)
        if exi is None:
            log.warning(
                "contract provider gave no certificate",
                status=response.status_code,
                action=action,
            )
            return EvCertificateAnswer("Failed", "")
        return EvCertificateAnswer("Accepted", exi)

    async def close(self) -> None:
        await self._client.aclose()


def _installation_res(data: object) -> str | None:
    """``CCPResponse.emaidContent[0].messageDef.certificateInstallationRes``, if it is there."""
    try:
        content = data["CCPResponse"]["emaidContent"]  # type: ignore[index]
        exi = content[0]["messageDef"]["certificateInstallationRes"]
    except (KeyError, IndexError, TypeError):
        return None
    return exi if isinstance(exi, str) and exi else None


async def in_a_task(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` in a task of its own: OCPP handlers are stepped outside one
    (:mod:`chargegrid.service.ocpp.eager`), and httpx's connection pool (anyio) needs the task
    it runs in to be the one that awaits."""
    return await asyncio.get_running_loop().create_task(coro)


class TrustFileError(ValueError):
    """The V2G trust file, or the test PKI of the built-in contract provider, cannot be read;
    the message names it."""


def load_trust(path: Path) -> list[x509.Certificate]:
    """The certificates of a PEM bundle (MO and V2G roots, and sub-CAs to trust)."""
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise TrustFileError(f"cannot read the V2G trust file {path}: {exc}") from exc
