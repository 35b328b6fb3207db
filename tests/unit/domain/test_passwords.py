from __future__ import annotations

import pytest

from chargegrid.domain.passwords import (
    PasswordRuleError,
    check_rules,
    generate_password,
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
