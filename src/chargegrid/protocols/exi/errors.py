"""The one error of the EXI codec."""

from __future__ import annotations


class ExiError(ValueError):
    """A stream that cannot be decoded, or a tree the schema does not allow; the message says
    where."""
