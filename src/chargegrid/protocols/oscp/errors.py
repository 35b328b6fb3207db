"""The one error of the OSCP 2.0 codec.

OSCP 2.0 (FINAL 2020-10-12) answers every accepted message with HTTP 204 and every refused one
with an HTTP error status and an optional Error body (``{"message": ...}``); :class:`OscpError`
carries the status the refusal maps to, so the HTTP layer answers without a translation table.
"""

from __future__ import annotations

BAD_REQUEST = 400  # a body or header that is not what the endpoint takes
UNAUTHORIZED = 401  # no usable "Authorization: Token ..." header
NOT_FOUND = 404  # a path segment that names no OSCP 2.0 message
INTERNAL = 500  # chargegrid itself built a message the schemas refuse


class OscpError(ValueError):
    """A refused OSCP 2.0 message, header or path; ``status`` is the HTTP status to answer.

    The message says what was wrong and never quotes a token.
    """

    def __init__(self, message: str, status: int = BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = status

    def __repr__(self) -> str:
        return f"OscpError({str(self)!r}, status={self.status})"
