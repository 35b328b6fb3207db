"""What the CA and the test PKI share: private keys written for their owner's eyes only, and key
usages by name."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


def write_private_key(
    path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, *, exclusive: bool = False
) -> None:
    """PKCS#8 PEM, unencrypted, created with mode 0600 (never readable by others, not even for a
    moment); an existing file is replaced, or with ``exclusive`` refused (FileExistsError)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def key_usage(*names: str) -> x509.KeyUsage:
    """``KeyUsage`` with the named bits set (``digital_signature``, ``key_cert_sign``...)."""
    unknown = set(names) - set(_USAGES)
    if unknown:
        raise ValueError(f"unknown key usages: {sorted(unknown)}")
    return x509.KeyUsage(
        **{name: name in names for name in _USAGES}, encipher_only=False, decipher_only=False
    )
