"""OpenADR 3.0.1 (the OpenADR Alliance's REST API, openadr3.yaml), as chargegrid speaks it in the
role of a VEN, sans I/O: JSON bodies in, typed objects out, and back; the requests to make.

* :mod:`.messages`: program, event (intervals, intervalPeriod, payloadDescriptors, valuesMap,
  targets), report (resources, intervals, payloads), the token endpoint's answer, as frozen
  msgspec structs; :mod:`.datatypes`: ``duration``, ``dateTime``, ``objectID``, secrets.
* :mod:`.codec`: ``decode_event`` / ``decode_program`` / ``decode_token`` / ``decode_array``,
  :func:`encode` for reports, :func:`refusal` for a VTN's error answer, :func:`token_request`
  (OAuth 2.0 client credentials, the ``oAuth2ClientCredentials`` scheme) and
  :func:`collection_url`.
* :func:`event_slots` (:mod:`.intervals`): an event's intervals as absolute times.

Errors: :class:`OpenAdrError` (a ``ValueError``) is the only error decoding and interval placing
raise, whatever the input; its ``status`` is the HTTP status it maps to. Secrets are
:class:`Secret` objects whose repr is redacted.

Compatible with 3.1 where it costs nothing (see :mod:`.messages`). The transport (HTTP, the
token's renewal, polling) is not here.
"""

from chargegrid.protocols.openadr3.codec import (
    FORM,
    JSON,
    PAGE_LIMIT,
    collection_url,
    decode_array,
    decode_event,
    decode_program,
    decode_report,
    decode_token,
    encode,
    object_id,
    refusal,
    token_request,
)
from chargegrid.protocols.openadr3.datatypes import Duration, Secret
from chargegrid.protocols.openadr3.errors import OpenAdrError
from chargegrid.protocols.openadr3.intervals import Slot, event_end, event_slots
from chargegrid.protocols.openadr3.messages import (
    ClientCredentialResponse,
    Event,
    EventPayloadDescriptor,
    Interval,
    IntervalPeriod,
    PayloadDescriptor,
    Point,
    Program,
    Report,
    ReportDescriptor,
    ReportPayloadDescriptor,
    ReportResource,
    Target,
    Value,
    ValuesMap,
)

__all__ = [
    "FORM",
    "JSON",
    "PAGE_LIMIT",
    "ClientCredentialResponse",
    "Duration",
    "Event",
    "EventPayloadDescriptor",
    "Interval",
    "IntervalPeriod",
    "OpenAdrError",
    "PayloadDescriptor",
    "Point",
    "Program",
    "Report",
    "ReportDescriptor",
    "ReportPayloadDescriptor",
    "ReportResource",
    "Secret",
    "Slot",
    "Target",
    "Value",
    "ValuesMap",
    "collection_url",
    "decode_array",
    "decode_event",
    "decode_program",
    "decode_report",
    "decode_token",
    "encode",
    "event_end",
    "event_slots",
    "object_id",
    "refusal",
    "token_request",
]
