"""The scalar types of OpenADR 3 (openadr3.yaml 3.0.1, components/schemas): ``duration``,
``dateTime``, ``objectID``, the bounded strings, and the bearer credentials kept as secrets.

* ``duration`` (ISO 8601, the spec's own pattern) decodes to a :class:`Duration`, which adds to a
  moment on the calendar (``P1M`` is a month, not 30 days). ``PT0S`` (the default: "instantaneous
  or infinity, depending on payloadType") and ``P9999Y`` ("may indicate infinity", 3.1) are
  :attr:`Duration.endless` for what chargegrid reads: limits and prices hold until changed.
* ``dateTime`` is RFC 3339 with an offset (``format: date-time``) and decodes to an aware
  datetime; a naive one is refused.
* :class:`Secret` holds a client secret or an access token: its repr is redacted, so no struct
  repr, log line or f-string shows it; :meth:`Secret.reveal` is the one way to the value.
"""

from __future__ import annotations

import calendar
import hmac
import re
import sys
from datetime import datetime, timedelta
from typing import Annotated

import msgspec

__all__ = [
    "AwareDatetime",
    "Duration",
    "Int32",
    "Name",
    "Number",
    "ObjectId",
    "Secret",
]

_MAX = sys.float_info.max
ObjectId = Annotated[str, msgspec.Meta(pattern=r"^[a-zA-Z0-9_-]*$", min_length=1, max_length=128)]
"""``objectID``: URL safe, 1 to 128 characters."""
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
"""``programName``, ``clientName``, ``resourceName``, a payload or target type: 1 to 128."""
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]
"""``dateTime``: RFC 3339, with a UTC offset."""
Number = Annotated[float, msgspec.Meta(ge=-_MAX, le=_MAX)]
"""``type: number``, finite (JSON has no NaN; 1e999 would be infinity)."""
Int32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]

# The ``duration`` pattern of openadr3.yaml, verbatim (anchored with fullmatch below, so a
# trailing newline does not pass as ``$`` would let it).
_DURATION = re.compile(
    r"^(-?)P(?=\d|T\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)([DW]))?"
    r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
_ENDLESS_YEARS = 9999


class Duration:
    """An ISO 8601 duration as the ``duration`` schema allows it: years and months on the
    calendar, then days and seconds (weeks are 7 days). Immutable. (A plain class, not a
    dataclass, which msgspec would read as a JSON object.)"""

    __slots__ = ("days", "months", "negative", "seconds", "years")

    def __init__(
        self,
        negative: bool = False,
        years: int = 0,
        months: int = 0,
        days: int = 0,
        seconds: float = 0.0,
    ) -> None:
        self.negative = negative
        self.years = years
        self.months = months
        self.days = days
        self.seconds = seconds

    def _key(self) -> tuple[bool, int, int, int, float]:
        return (self.negative, self.years, self.months, self.days, self.seconds)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Duration):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Duration({str(self)!r})"

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Raises ValueError for text the ``duration`` pattern refuses, or numbers past
        what a datetime can hold."""
        match = _DURATION.fullmatch(text)
        if match is None:
            raise ValueError(f"{text[:40]!r} is not an ISO 8601 duration")
        sign, years, months, count, unit, hours, minutes, seconds = match.groups()
        days = int(count or 0) * (7 if unit == "W" else 1)
        secs = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)
        if days > 10**7 or secs > 10**12 or int(years or 0) > 10**5 or int(months or 0) > 10**6:
            raise ValueError(f"{text[:40]!r} is longer than any date can reach")
        return cls(sign == "-", int(years or 0), int(months or 0), days, secs)

    @classmethod
    def of(cls, span: timedelta) -> Duration:
        """A positive span of time as ``PTnS``."""
        return cls(seconds=round(span.total_seconds(), 3))

    @property
    def endless(self) -> bool:
        """``PT0S`` or ``P9999Y`` (and longer): no end, for a limit or a price."""
        zero = not (self.years or self.months or self.days or self.seconds)
        return zero or self.years >= _ENDLESS_YEARS

    def after(self, moment: datetime) -> datetime:
        """``moment`` plus (or, negative, minus) this duration; OverflowError past year 9999."""
        sign = -1 if self.negative else 1
        month = moment.month - 1 + sign * (self.years * 12 + self.months)
        year = moment.year + month // 12
        if not 1 <= year <= 9999:
            raise OverflowError("date out of range")
        month = month % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        shifted = moment.replace(year=year, month=month, day=day)
        return shifted + sign * timedelta(days=self.days, seconds=self.seconds)

    def __str__(self) -> str:
        date = "".join(
            f"{n}{u}" for n, u in ((self.years, "Y"), (self.months, "M"), (self.days, "D")) if n
        )
        hours, rest = divmod(self.seconds, 3600)
        minutes, secs = divmod(rest, 60)
        second = f"{secs:.3f}".rstrip("0").rstrip(".")
        time = "".join(
            f"{n}{u}"
            for n, u in ((f"{hours:.0f}", "H"), (f"{minutes:.0f}", "M"), (second, "S"))
            if n != "0"
        )
        if not date and not time:
            time = "0S"
        return f"{'-' if self.negative else ''}P{date}{'T' + time if time else ''}"


class Secret:
    """A client secret or an access token. Equality is constant-time."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a secret is a string")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)
