"""ISO 15118-2:2014 certificate installation and update, the EXI messages Plug & Charge carries
through OCPP (2.0.1 M01/M02 Get15118EVCertificate, and 1.6 through DataTransfer), sans I/O.

* :func:`read_request` decodes the car's CertificateInstallationReq or CertificateUpdateReq
  (a V2G_Message whose header signs the request element) and checks its signature
  with the OEM provisioning certificate (installation) or the contract certificate (update).
* :func:`build_response` encrypts a contract key for the car (V2G2-818, V2G2-819: ECDH on
  P-256 with an ephemeral key, ConcatKDF with SHA-256, AES-128-CBC), puts it in a
  CertificateInstallationRes or CertificateUpdateRes with the contract chain and eMAID, and signs
  it with the provisioning (CPS) key.
* :func:`decrypt_contract_key` is what the car does with it; tests use it to check the key.

Signatures follow ISO 15118-2 7.9.2.4 and Annex J: each signed element is digested as an EXI
fragment of the message schema; SignedInfo is signed as an EXI fragment of the XML Signature
schema, the way the deployed V2G stacks (EVerest, iso15118, OpenV2G) do it; ECDSA values are
the raw 64 bytes r || s.

Errors: :class:`V2gError` for a request that cannot be read, is not one of these two messages,
or whose signature does not verify.
"""

from __future__ import annotations

import functools
import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.utils import CryptographyDeprecationWarning

from chargegrid.protocols import exi
from chargegrid.protocols.exi import Node

MSG_DEF = "urn:iso:15118:2:2013:MsgDef"
_SCHEMAS = Path(__file__).parent / "schemas"
_CANONICAL_EXI = "http://www.w3.org/TR/canonical-exi/"
_ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
# V2G2-818: ConcatKDF OtherInfo is AlgorithmID 0x01, PartyUInfo 0x55, PartyVInfo 0x56.
_KDF_OTHER_INFO = b"\x01\x55\x56"
_MAX_SUB_CERTIFICATES = 4  # SubCertificatesType

Kind = Literal["install", "update"]


class V2gError(ValueError):
    """An unusable ISO 15118-2 request; the message says why."""


@functools.cache
def message_grammars() -> exi.Grammars:
    return exi.load(_SCHEMAS / "V2G_CI_MsgDef.xsd")


@functools.cache
def signature_grammars() -> exi.Grammars:
    return exi.load(_SCHEMAS / "xmldsig-core-schema.xsd")


@dataclass(frozen=True)
class RootCertificateId:
    """X509IssuerSerialType: a root the car trusts, by issuer name and serial number."""

    issuer: str
    serial: int


@dataclass(frozen=True)
class CertificateRequest:
    """A car's CertificateInstallationReq (``certificate`` is its OEM provisioning certificate)
    or CertificateUpdateReq (``certificate`` is its current contract certificate, ``emaid`` its
    eMAID), whose signature has been checked."""

    kind: Kind
    session_id: bytes
    certificate: x509.Certificate
    sub_certificates: tuple[x509.Certificate, ...]
    emaid: str | None
    root_ids: tuple[RootCertificateId, ...]


def read_request(data: bytes) -> CertificateRequest:
    try:
        message = exi.decode(data, message_grammars())
        header = message.child("Header")
        body = message.child("Body")
        if len(body.children) != 1:
            raise V2gError("the message body holds no request")
        element = body.children[0]
        if element.name == "CertificateInstallationReq":
            kind: Kind = "install"
            certificate = _certificate(element.child("OEMProvisioningCert").value)
            subs: tuple[x509.Certificate, ...] = ()
            emaid = None
        elif element.name == "CertificateUpdateReq":
            kind = "update"
            chain = element.child("ContractSignatureCertChain")
            certificate = _certificate(chain.child("Certificate").value)
            holder = chain.find("SubCertificates")
            subs = tuple(_certificate(c.value) for c in holder.children) if holder else ()
            emaid = str(element.child("eMAID").value)
        else:
            raise V2gError(f"{element.name} is not a certificate installation or update request")
        roots = tuple(
            RootCertificateId(
                str(r.child("X509IssuerName").value), int(r.child("X509SerialNumber").value)
            )
            for r in element.child("ListOfRootCertificateIDs").children
        )
        _verify(header, [element], certificate)
    except exi.ExiError as exc:
        raise V2gError(f"not a readable ISO 15118-2 message: {exc}") from exc
    return CertificateRequest(
        kind, bytes(header.child("SessionID").value), certificate, subs, emaid, roots
    )


def build_response(
    request: CertificateRequest,
    *,
    emaid: str,
    contract: x509.Certificate,
    contract_subs: tuple[x509.Certificate, ...],
    contract_key: ec.EllipticCurvePrivateKey,
    provisioning: x509.Certificate,
    provisioning_subs: tuple[x509.Certificate, ...],
    provisioning_key: ec.EllipticCurvePrivateKey,
) -> bytes:
    """The EXI V2G_Message answering ``request``: the contract chain and its key encrypted for
    the certificate the car signed with, signed by the provisioning key."""
    recipient = request.certificate.public_key()
    if not isinstance(recipient, ec.EllipticCurvePublicKey) or recipient.curve.name != "secp256r1":
        raise V2gError("the car's certificate has no P-256 key to encrypt the contract key for")
    dh_public, encrypted = _encrypt(contract_key, recipient)
    chain = _chain(contract, contract_subs)
    signed = [
        Node("ContractSignatureCertChain", attrs={"Id": "id1"}, children=chain),
        Node("ContractSignatureEncryptedPrivateKey", encrypted, attrs={"Id": "id2"}),
        Node("DHpublickey", dh_public, attrs={"Id": "id3"}),
        Node("eMAID", emaid, attrs={"Id": "id4"}),
    ]
    provisioning_chain = _chain(provisioning, provisioning_subs)
    name = "CertificateInstallationRes" if request.kind == "install" else "CertificateUpdateRes"
    response = Node(
        name,
        children=[
            Node("ResponseCode", "OK"),
            Node("SAProvisioningCertificateChain", children=provisioning_chain),
            *signed,
        ],
    )
    header = Node(
        "Header",
        children=[Node("SessionID", request.session_id), _signature(signed, provisioning_key)],
    )
    return _encode(Node("V2G_Message", children=[header, Node("Body", children=[response])]))


def sign_request(
    kind: Kind,
    *,
    session_id: bytes,
    certificate: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    root_ids: tuple[RootCertificateId, ...],
    sub_certificates: tuple[x509.Certificate, ...] = (),
    emaid: str | None = None,
) -> bytes:
    """A car's signed CertificateInstallationReq or CertificateUpdateReq: what the simulated
    car of the test suite and ``chargegrid simulate`` send."""
    roots = [
        Node(
            "RootCertificateID",
            children=[Node("X509IssuerName", r.issuer), Node("X509SerialNumber", r.serial)],
        )
        for r in root_ids
    ]
    der = certificate.public_bytes(serialization.Encoding.DER)
    if kind == "install":
        element = Node(
            "CertificateInstallationReq",
            attrs={"Id": "id1"},
            children=[
                Node("OEMProvisioningCert", der),
                Node("ListOfRootCertificateIDs", children=roots),
            ],
        )
    else:
        element = Node(
            "CertificateUpdateReq",
            attrs={"Id": "id1"},
            children=[
                Node("ContractSignatureCertChain", children=_chain(certificate, sub_certificates)),
                Node("eMAID", emaid),
                Node("ListOfRootCertificateIDs", children=roots),
            ],
        )
    header = Node("Header", children=[Node("SessionID", session_id), _signature([element], key)])
    return _encode(Node("V2G_Message", children=[header, Node("Body", children=[element])]))


def decrypt_contract_key(
    encrypted: bytes, dh_public: bytes, key: ec.EllipticCurvePrivateKey
) -> ec.EllipticCurvePrivateKey:
    """The contract key as the car recovers it with its private key (V2G2-818, V2G2-819)."""
    try:
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), dh_public)
    except ValueError as exc:
        raise V2gError("DHpublickey is not a P-256 point") from exc
    if len(encrypted) != 48:
        raise V2gError("the encrypted contract key is not 16 bytes of IV and 32 of key")
    aes = _kdf(key.exchange(ec.ECDH(), peer))
    decryptor = Cipher(algorithms.AES(aes), modes.CBC(encrypted[:16])).decryptor()
    value = decryptor.update(encrypted[16:]) + decryptor.finalize()
    return ec.derive_private_key(int.from_bytes(value, "big"), ec.SECP256R1())


def read_response(data: bytes) -> Node:
    """A decoded CertificateInstallationRes or CertificateUpdateRes V2G_Message."""
    try:
        return exi.decode(data, message_grammars())
    except exi.ExiError as exc:
        raise V2gError(f"not a readable ISO 15118-2 message: {exc}") from exc


SIGNED_IN_RESPONSES = (
    "ContractSignatureCertChain",
    "ContractSignatureEncryptedPrivateKey",
    "DHpublickey",
    "eMAID",
)


def verify_response(message: Node, signer: x509.Certificate) -> Node:
    """The response element of ``message`` once its header signature verifies with ``signer``
    and covers the four elements a response signs (what the car checks against the
    provisioning certificate)."""
    try:
        body = message.child("Body").children[0]
        signed = [body.child(name) for name in SIGNED_IN_RESPONSES]
    except (exi.ExiError, IndexError) as exc:
        raise V2gError(f"not a certificate installation or update response: {exc}") from exc
    _verify(message.child("Header"), signed, signer)
    return body


# --- helpers ---------------------------------------------------------------------------------


def _encode(message: Node) -> bytes:
    try:
        return exi.encode(message, message_grammars())
    except exi.ExiError as exc:
        raise V2gError(f"the message does not fit ISO 15118-2: {exc}") from exc


def _certificate(der: object) -> x509.Certificate:
    """A certificate whose key cryptography can use (anything else is refused here, not later)."""
    if not isinstance(der, bytes):
        raise V2gError("a certificate in the message is missing")
    try:
        with warnings.catch_warnings():
            # what cryptography only warns about (a serial number that is not positive, say)
            # is refused here, as later releases will
            warnings.simplefilter("error", CryptographyDeprecationWarning)
            certificate = x509.load_der_x509_certificate(der)
            certificate.public_key()
    except (
        ValueError,
        x509.InvalidVersion,
        UnsupportedAlgorithm,
        CryptographyDeprecationWarning,
    ) as exc:
        raise V2gError(f"a certificate in the message is not usable X.509: {exc}") from exc
    return certificate


def _chain(leaf: x509.Certificate, subs: tuple[x509.Certificate, ...]) -> list[Node]:
    if len(subs) > _MAX_SUB_CERTIFICATES:
        raise V2gError(f"a chain holds at most {_MAX_SUB_CERTIFICATES} sub-CA certificates")
    der = serialization.Encoding.DER
    children = [Node("Certificate", leaf.public_bytes(der))]
    if subs:
        children.append(
            Node(
                "SubCertificates", children=[Node("Certificate", s.public_bytes(der)) for s in subs]
            )
        )
    return children


def _digest(element: Node) -> bytes:
    try:
        fragment = exi.encode_fragment([element], message_grammars())
    except exi.ExiError as exc:
        raise V2gError(f"{element.name} does not fit ISO 15118-2: {exc}") from exc
    return hashlib.sha256(fragment).digest()


def _signed_info(references: list[tuple[str, bytes]]) -> Node:
    return Node(
        "SignedInfo",
        children=[
            Node("CanonicalizationMethod", attrs={"Algorithm": _CANONICAL_EXI}),
            Node("SignatureMethod", attrs={"Algorithm": _ECDSA_SHA256}),
            *(
                Node(
                    "Reference",
                    attrs={"URI": f"#{ident}"},
                    children=[
                        Node(
                            "Transforms",
                            children=[Node("Transform", attrs={"Algorithm": _CANONICAL_EXI})],
                        ),
                        Node("DigestMethod", attrs={"Algorithm": _SHA256}),
                        Node("DigestValue", digest),
                    ],
                )
                for ident, digest in references
            ),
        ],
    )


def _signature(elements: list[Node], key: ec.EllipticCurvePrivateKey) -> Node:
    signed_info = _signed_info([(e.attrs["Id"], _digest(e)) for e in elements])
    data = exi.encode_fragment([signed_info], signature_grammars())
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    size = (key.curve.key_size + 7) // 8
    value = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return Node("Signature", children=[signed_info, Node("SignatureValue", value)])


def _verify(header: Node, elements: list[Node], signer: x509.Certificate) -> None:
    signature = header.find("Signature")
    if signature is None:
        raise V2gError("the message is not signed")
    signed_info = signature.child("SignedInfo")
    listed = [
        (str(r.attrs.get("URI", "")), bytes(r.child("DigestValue").value))
        for r in signed_info.children
        if r.name == "Reference"
    ]
    references = dict(listed)
    idents = [element.attrs.get("Id") for element in elements]
    if (
        len(references) != len(listed)
        or len(listed) != len(elements)
        or len(set(idents)) != len(idents)
    ):
        raise V2gError("the signature must list each signed element once, and nothing else")
    for element, ident in zip(elements, idents, strict=True):
        if ident is None or references.get(f"#{ident}") != _digest(element):
            raise V2gError(f"the signature does not cover {element.name} as sent")
    try:
        key = signer.public_key()
    except UnsupportedAlgorithm as exc:
        raise V2gError(f"the signer's key is not usable: {exc}") from exc
    value = bytes(signature.child("SignatureValue").value)
    if not isinstance(key, ec.EllipticCurvePublicKey) or len(value) % 2:
        raise V2gError("the signer has no EC key, or the signature value is malformed")
    half = len(value) // 2
    der = encode_dss_signature(
        int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big")
    )
    data = exi.encode_fragment([signed_info], signature_grammars())
    try:
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise V2gError("the message signature does not verify") from exc


def _kdf(shared: bytes) -> bytes:
    return ConcatKDFHash(hashes.SHA256(), 16, _KDF_OTHER_INFO).derive(shared)


def _encrypt(
    contract_key: ec.EllipticCurvePrivateKey, recipient: ec.EllipticCurvePublicKey
) -> tuple[bytes, bytes]:
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    aes = _kdf(ephemeral.exchange(ec.ECDH(), recipient))
    iv = os.urandom(16)
    plain = contract_key.private_numbers().private_value.to_bytes(32, "big")
    encryptor = Cipher(algorithms.AES(aes), modes.CBC(iv)).encryptor()
    encrypted = iv + encryptor.update(plain) + encryptor.finalize()
    dh_public = ephemeral.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return dh_public, encrypted
