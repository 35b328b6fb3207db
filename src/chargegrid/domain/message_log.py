"""One OCPP-J frame as the message log keeps it (OCPP-J 1.6 section 4 / OCPP 2.0.1 Part 4
section 4: the RPC framework's CALL, CALLRESULT and CALLERROR).

The log keeps what was on the wire, not what it meant: the frame's text (cut at a bound and
marked ``truncated``), its message type, unique id and the action of the CALL it is or answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

import msgspec

Direction = Literal["in", "out"]  # in: from the station; out: to it
MessageType = Literal["CALL", "CALLRESULT", "CALLERROR", "invalid"]

#: The wire's MessageTypeId of each type ("invalid": not a frame we could read).
TYPE_IDS: Final = {"CALL": 2, "CALLRESULT": 3, "CALLERROR": 4}
DIRECTIONS: Final = ("in", "out")
MESSAGE_TYPES: Final = ("CALL", "CALLRESULT", "CALLERROR", "invalid")


class LoggedMessage(msgspec.Struct, kw_only=True, gc=False):
    """A frame sent by a station (``in``) or to it (``out``).

    ``action`` is the CALL's action; for a CALLRESULT or CALLERROR the action of the CALL it
    answers when the log saw that CALL, else None. ``id`` is given by the store (None until the
    entry is saved; entries tailed live have none).
    """

    id: int | None = None
    station_id: str
    at: datetime
    direction: Direction
    message_type: MessageType
    unique_id: str | None
    action: str | None
    payload: str
    truncated: bool = False
