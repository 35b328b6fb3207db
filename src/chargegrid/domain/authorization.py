"""Deciding whether a token may charge (OCPP 1.6 5.2 Authorize, OCPP 2.0.1 C01 / C05).

The rules, in order:

1. a token the CSMS does not know is ``Invalid`` (1.6) / ``Unknown`` (2.0.1 distinguishes them; the
   mapper picks) -- here ``INVALID``;
2. a blocked token is ``BLOCKED``, whatever else holds;
3. a token past its expiry date is ``EXPIRED``;
4. a token already in an active transaction elsewhere is ``CONCURRENT_TX`` unless it allows
   concurrent sessions (fleet cards often do);
5. otherwise ``ACCEPTED``.
"""

from __future__ import annotations

from datetime import datetime

from chargegrid.domain.model import Authorization, AuthorizationStatus, IdToken


def authorize(
    token: IdToken | None, now: datetime, *, in_active_transaction: bool
) -> Authorization:
    """Decide the standing of ``token`` at ``now``."""
    if token is None:
        return Authorization(AuthorizationStatus.INVALID)
    if token.blocked:
        status = AuthorizationStatus.BLOCKED
    elif token.expires_at is not None and token.expires_at <= now:
        status = AuthorizationStatus.EXPIRED
    elif in_active_transaction and not token.allow_concurrent:
        status = AuthorizationStatus.CONCURRENT_TX
    else:
        status = AuthorizationStatus.ACCEPTED
    return Authorization(status, token.group, token.expires_at)
