from __future__ import annotations

import pytest

from chargegrid.domain.passwords import (
    GENERATED_ITERATIONS,
    PasswordRuleError,
    check_rules,
    generate_password,
    hash_generated,
    hash_password,
    verify_password,
)


def test_hash_and_verify() -> None:
    stored = hash_password("correct-horse-battery", iterations=1000)
    assert "correct-horse-battery" not in stored
    assert verify_password("correct-horse-battery", stored)
    assert not verify_password("correct-horse-batterz", stored)
    assert not verify_password("x", "garbage")
    assert hash_password("same-password-123", iterations=1000) != hash_password(
        "same-password-123", iterations=1000
    )


@pytest.mark.parametrize("bad", ["short", "x" * 41, "has a space in it!!", "ünïcödé-password-x"])
def test_rules(bad: str) -> None:
    with pytest.raises(PasswordRuleError):
        check_rules(bad)


def test_generated_passwords_follow_the_rules() -> None:
    check_rules(generate_password())


def test_a_generated_password_is_hashed_without_stretching_and_salted() -> None:
    password = generate_password()
    stored = hash_generated(password)
    scheme, iterations, salt, _ = stored.split("$")
    assert (scheme, iterations) == ("pbkdf2_sha256", str(GENERATED_ITERATIONS)) and salt
    assert password not in stored
    assert verify_password(password, stored)
    assert not verify_password(generate_password(), stored)
    assert hash_generated(password) != stored  # a salt of its own each time
    assert len({generate_password() for _ in range(100)}) == 100
