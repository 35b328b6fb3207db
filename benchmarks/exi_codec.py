"""What chargegrid's own EXI codec costs in Plug & Charge certificate installation.

Prints, per message, the time to read a car's signed CertificateInstallationReq and to build
the signed, encrypted CertificateInstallationRes, each against a baseline run in the same
process: the cryptography the message needs whatever its encoding (certificate parsing, ECDSA,
ECDH, AES), so the ratio is what EXI adds on top. Also the codec alone on the response (about
3.9 KB) and the one-off cost of building the grammars from the XSDs.

    python benchmarks/exi_codec.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash

from chargegrid.adapters.pki.v2g import TestPki
from chargegrid.protocols import exi
from chargegrid.protocols import iso15118 as v2


def per_call(fn: Callable[[], object], seconds: float) -> float:
    """Mean seconds per call over about ``seconds``."""
    fn()
    calls = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        calls += 1
    return elapsed / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()

    start = time.perf_counter()
    grammars = v2.message_grammars()
    v2.signature_grammars()
    grammar_ms = (time.perf_counter() - start) * 1000

    pki = TestPki.create(Path(tempfile.mkdtemp()), emaids=("DECGRC00000001",))
    stem = pki.contract("DECGRC00000001")
    root = pki.certs["v2g-root"]
    request_exi = v2.sign_request(
        "install",
        session_id=os.urandom(8),
        certificate=pki.certs["oem-prov"],
        key=pki.keys["oem-prov"],
        root_ids=(v2.RootCertificateId(root.issuer.rfc4514_string(), root.serial_number),),
    )
    request = v2.read_request(request_exi)

    def build() -> bytes:
        return v2.build_response(
            request,
            emaid="DECGRC00000001",
            contract=pki.certs[stem],
            contract_subs=(pki.certs["mo-sub2"], pki.certs["mo-sub1"]),
            contract_key=pki.keys[stem],
            provisioning=pki.certs["cps"],
            provisioning_subs=(pki.certs["cps-sub2"], pki.certs["cps-sub1"]),
            provisioning_key=pki.keys["cps"],
        )

    oem_der = pki.certs["oem-prov"].public_bytes(serialization.Encoding.DER)
    signature = pki.keys["oem-prov"].sign(b"x" * 200, ec.ECDSA(hashes.SHA256()))

    def read_crypto() -> None:  # what reading needs whatever the encoding
        cert = x509.load_der_x509_certificate(oem_der)
        key = cert.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(signature, b"x" * 200, ec.ECDSA(hashes.SHA256()))

    def build_crypto() -> None:  # what building needs whatever the encoding
        ephemeral = ec.generate_private_key(ec.SECP256R1())
        recipient = pki.certs["oem-prov"].public_key()
        assert isinstance(recipient, ec.EllipticCurvePublicKey)
        secret = ephemeral.exchange(ec.ECDH(), recipient)
        aes = ConcatKDFHash(hashes.SHA256(), 16, b"\x01\x55\x56").derive(secret)
        encryptor = Cipher(algorithms.AES(aes), modes.CBC(os.urandom(16))).encryptor()
        encryptor.update(os.urandom(32))
        encryptor.finalize()
        pki.keys["cps"].sign(b"x" * 200, ec.ECDSA(hashes.SHA256()))

    response = build()
    tree = exi.decode(response, grammars)
    rows: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        ("read CertificateInstallationReq", lambda: v2.read_request(request_exi), read_crypto),
        ("build CertificateInstallationRes", build, build_crypto),
    ]
    print(f"grammars from the XSDs (once per process): {grammar_ms:.0f} ms")
    print(f"{'':34} {'chargegrid':>12} {'crypto only':>12} {'ratio':>7}")
    for name, ours_fn, baseline in rows:
        ours = per_call(ours_fn, args.seconds)
        base = per_call(baseline, args.seconds)
        print(f"{name:34} {ours * 1e3:9.2f} ms {base * 1e3:9.2f} ms {ours / base:6.1f}x")
    encode = per_call(lambda: exi.encode(tree, grammars), args.seconds)
    decode = per_call(lambda: exi.decode(response, grammars), args.seconds)
    size = len(response)
    print(
        f"codec alone, response of {size} bytes: encode {encode * 1e3:.2f} ms "
        f"({size / encode / 1e6:.1f} MB/s), decode {decode * 1e3:.2f} ms "
        f"({size / decode / 1e6:.1f} MB/s)"
    )


if __name__ == "__main__":
    main()
