"""The one error of the OpenADR 3 codec.

The OpenADR 3 API (openadr3.yaml 3.0.1) answers a request it refuses with an HTTP status and,
mostly, a ``problem`` body (RFC 7807) or, at ``/auth/token``, an ``authError`` (RFC 6749 5.2).
:class:`OpenAdrError` carries the HTTP status an error maps to, so a caller needs no table.
"""

from __future__ import annotations

BAD_REQUEST = 400  # a body that is not the object the API defines (what a server answers to it)
UNAUTHORIZED = 401  # the VTN refused the credentials or the bearer token
INTERNAL = 500  # chargegrid itself built an object the schemas refuse


class OpenAdrError(ValueError):
    """An OpenADR 3 body or answer that cannot be used; ``status`` is the HTTP status it maps to:
    400 for a body that breaks the API's schema, the VTN's own status for an answer refusing a
    request, 500 for an object chargegrid built that breaks the schema (a bug of ours).

    The message says what was wrong and never quotes a secret or a token.
    """

    def __init__(self, message: str, status: int = BAD_REQUEST) -> None:
        super().__init__(message)
        self.status = status

    def __repr__(self) -> str:
        return f"OpenAdrError({str(self)!r}, status={self.status})"
