"""TLS for the OCPP server: security profiles 2 and 3.

OCPP 2.0.1 Part 2 A00 and the OCPP 1.6 security whitepaper section 2.3: TLS 1.2 or above; the
CSMS supports TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 and _256_GCM_SHA384 (2.0.1 and 1.6),
TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 and _256_GCM_SHA384 (2.0.1), TLS_RSA_WITH_AES_128_GCM_SHA256
and _256_GCM_SHA384 (1.6, for stations with RSA keys and no ECDHE). TLS 1.3 uses OpenSSL's
suites. Nothing weaker is offered.

The handshake runs through ``loop.start_tls`` on a plain accepted connection rather than inside
the server's socket, so that a refused handshake (an untrusted or expired client certificate, a
station speaking plain WebSocket to the TLS port) is logged with its reason: asyncio's own TLS
server drops such connections without a word. Client certificates are asked for but optional
here; whether a station needs one is its security profile's business
(:mod:`chargegrid.domain.security`), decided at the WebSocket upgrade.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from cryptography import x509
from cryptography.x509.oid import NameOID

from chargegrid.domain.security import Channel

log = structlog.get_logger(__name__)

#: OpenSSL names of the TLS 1.2 suites the specs require of a CSMS, strongest first.
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
    )
)


class TlsConfigError(ValueError):
    """The certificate, key or CA files cannot be used; the message says which and why."""


@dataclass(frozen=True)
class TlsFiles:
    cert: Path  # the server certificate, PEM, followed by its intermediate CAs
    key: Path  # its private key, PEM, unencrypted
    client_ca: Path | None = None  # CAs that station certificates chain to (profile 3)


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """An SSL context for the OCPP TLS port, from PEM files."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        ctx.load_cert_chain(files.cert, files.key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(
            f"cannot load the server certificate {files.cert} with key {files.key}: {exc}"
        ) from exc
    if files.client_ca is not None:
        try:
            ctx.load_verify_locations(cafile=files.client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(
                f"cannot load the station CA file {files.client_ca}: {exc}"
            ) from exc
        # Asked for, checked against the CA when sent, optional: the station's profile decides.
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def channel_of(transport: asyncio.BaseTransport | None) -> Channel:
    """What TLS proved about the peer of ``transport``: nothing for a plain connection. A
    certificate whose subject names more than one commonName or organizationName proves
    nothing (which one would count?): it is reported as a problem, and refused."""
    ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
    if transport is None or ssl_object is None:
        return Channel()
    verified: dict[str, Any] | None = transport.get_extra_info("peercert")
    der = ssl_object.getpeercert(binary_form=True)
    if not verified or not der:  # none sent (only a verified one shows in peercert)
        return Channel(tls=True)
    subject = x509.load_der_x509_certificate(der).subject
    names = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    problem = None
    if len(names) != 1 or len(orgs) > 1:
        problem = (
            f"client certificate has {len(names)} commonNames and {len(orgs)} "
            "organizationNames; one of each is allowed"
        )
    return Channel(
        tls=True,
        client_cn=names[0] if names else "",
        client_org=orgs[0] if orgs else None,
        cert_problem=problem,
    )


def refusal_reason(exc: BaseException) -> str:
    """A log line's words for a failed TLS handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"client certificate refused: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if reason in ("HTTP_REQUEST", "WRONG_VERSION_NUMBER"):
            return "not TLS: the client spoke plain HTTP / ws:// to the TLS port"
        return f"TLS handshake failed: {reason}"
    if isinstance(exc, TimeoutError):
        return "TLS handshake timed out"
    return f"TLS handshake failed: {type(exc).__name__}: {exc}"
