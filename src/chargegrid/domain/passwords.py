"""Station passwords for HTTP Basic authentication (OCPP security profile 1).

OCPP 1.6 security whitepaper section 2.1 and OCPP 2.0.1 Part 2 A00.FR.2xx: the password is 16 to 40
characters of the passwordString alphabet (printable ASCII). Passwords are stored as PBKDF2-HMAC-
SHA256 hashes with a per-password salt, never in clear, and compared in constant time.

A password a person chose gets 120,000 iterations: 55 ms a check here, to slow the guessing of a
weak one from a stolen database. A password this CSMS generated (:func:`generate_password`, 192
random bits) needs no stretching: finding it takes 2**191 tries on average however fast each is,
so its hash has one iteration (a salted HMAC-SHA256, as API tokens are kept as SHA-256). A
network's stations then connect after a restart, or move to another node of a cluster, without
minutes of key stretching on the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_ITERATIONS = 120_000
GENERATED_ITERATIONS = 1  # for generate_password()'s, see the module docstring
MIN_LENGTH, MAX_LENGTH = 16, 40


class PasswordRuleError(ValueError):
    """A password that OCPP does not allow for a station."""


def check_rules(password: str) -> None:
    """Raise :class:`PasswordRuleError` unless ``password`` follows the OCPP password rules."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise PasswordRuleError(f"a station password has {MIN_LENGTH} to {MAX_LENGTH} characters")
    if not all(0x21 <= ord(ch) <= 0x7E for ch in password):
        raise PasswordRuleError("a station password is printable ASCII without spaces")


def hash_password(password: str, *, iterations: int = _ITERATIONS) -> str:
    """A self-describing hash: ``pbkdf2_sha256$<iterations>$<salt>$<digest>``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return "$".join(
        ("pbkdf2_sha256", str(iterations), _b64(salt), _b64(digest)),
    )


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches ``stored`` (a :func:`hash_password` result)."""
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        expected = base64.urlsafe_b64decode(digest + "==")
        actual = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), base64.urlsafe_b64decode(salt + "=="), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(expected, actual)


def generate_password() -> str:
    """A random password within the OCPP rules (32 characters, 192 random bits)."""
    return secrets.token_urlsafe(24)


def hash_generated(password: str) -> str:
    """The hash of a :func:`generate_password` password (one iteration: see the module)."""
    return hash_password(password, iterations=GENERATED_ITERATIONS)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
