"""The OCSP codec against the test PKI's responder, in memory: statuses, forged and stale
answers, hash data that cannot make a request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chargegrid.adapters.pki.ocsp_responder import OcspResponder
from chargegrid.adapters.pki.v2g import TestPki
from chargegrid.protocols import ocsp

EMAID = "DEABCC123456789"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(tmp_path_factory.mktemp("pki"), (EMAID,), "http://127.0.0.1:1/")


def _data(pki: TestPki) -> ocsp.HashData:
    return ocsp.hash_data(pki.certs[f"contract-{EMAID}"], pki.certs["mo-sub2"])


def test_good_then_revoked_then_stale(pki: TestPki, tmp_path: Path) -> None:
    data = _data(pki)
    responder = OcspResponder(pki)
    now = datetime.now(UTC)
    trusted = [pki.certs["mo-sub2"]]
    answer = responder.respond(ocsp.request(data), now)
    assert ocsp.read(answer, data, trusted, now).status is ocsp.CertStatus.GOOD
    assert ocsp.answers(answer, data)
    with pytest.raises(ocsp.OcspError, match="stale"):  # replayed after nextUpdate
        ocsp.read(answer, data, trusted, now + timedelta(hours=2))
    with pytest.raises(ocsp.OcspError, match="future"):
        ocsp.read(answer, data, trusted, now - timedelta(hours=1))
    with pytest.raises(ocsp.OcspError, match="issuer is not a CA"):
        ocsp.read(answer, data, [pki.certs["mo-root"]], now)


def test_an_answer_signed_by_another_ca_is_refused(pki: TestPki, tmp_path: Path) -> None:
    other = TestPki.create(tmp_path / "other")
    data = _data(pki)
    # the other PKI's MO sub-CA 2 answers for our contract: same name hash, other key
    forged = OcspResponder(other).respond(ocsp.request(data))
    assert not ocsp.answers(forged, data)  # unauthorized: it issued no such certificate
    now = datetime.now(UTC)
    with pytest.raises(ocsp.OcspError):
        ocsp.read(forged, data, [pki.certs["mo-sub2"], other.certs["mo-sub2"]], now)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("serial_number", "-1"),
        ("serial_number", "0x10"),
        ("serial_number", "1_0"),
        ("serial_number", "f" * 41),
        ("issuer_key_hash", "zz" * 32),
        ("issuer_name_hash", "ab cd"),
        ("hash_algorithm", "MD5"),
    ],
)
def test_hash_data_that_cannot_make_a_request(pki: TestPki, field: str, value: str) -> None:
    from dataclasses import replace

    with pytest.raises(ocsp.OcspError):
        ocsp.request(replace(_data(pki), **{field: value}))


def test_a_tampered_signature_is_a_signature_error(pki: TestPki) -> None:
    from cryptography.x509 import ocsp as x509_ocsp

    data = _data(pki)
    now = datetime.now(UTC)
    der = OcspResponder(pki).respond(ocsp.request(data), now)
    signature = x509_ocsp.load_der_ocsp_response(der).signature
    flipped = signature[:-1] + bytes([signature[-1] ^ 1])
    tampered = der.replace(signature, flipped)
    assert tampered != der
    with pytest.raises(ocsp.OcspSignatureError):
        ocsp.read(tampered, data, [pki.certs["mo-sub2"]], now)
