"""OSCP 2.0, the Open Smart Charging Protocol of the Open Charge Alliance (FINAL 2020-10-12), as
chargegrid speaks it in the role of Flexibility Provider towards Capacity Providers (and
Capacity Optimizers), sans I/O: JSON bodies and HTTP headers in, typed messages out, and back.

* :mod:`.datatypes` and :mod:`.messages`: the ten message bodies and the types they use, frozen
  msgspec structs named and shaped as the OCA JSON Schemas define them.
* :func:`decode` / :func:`encode` (:mod:`.codec`): bytes to a typed message, checked against its
  schema's constraints, and back.
* :data:`MESSAGES`, :func:`lookup`, :func:`endpoint_url` (:mod:`.table`): each message's endpoint
  path segment (``POST {base_url}/<snake_case_name>``, ``base_url`` ending in ``/2.0``) and who
  sends it to whom.
* :func:`request_headers`, :func:`parse_headers` (:mod:`.headers`): ``Authorization: Token``,
  ``X-Request-ID``, ``X-Correlation-ID``, segments.
* :func:`capacity_blocks` (:mod:`.forecast`): a capacity forecast as limits in A or W;
  :func:`forecasted_block` a limit as a block of what chargegrid sends.

Errors: :class:`OscpError` (a ``ValueError``) is the only error decoding, header parsing and
forecast conversion raise, whatever the input; its ``status`` is the HTTP status to answer with
(400 a body or header that is not what it should be, 401 no usable token, 404 no such message,
500 a message chargegrid built that breaks its schema). Tokens are :class:`Token` objects whose
repr is redacted; only :meth:`Token.reveal` and :func:`request_headers` hold them in clear.

The transport (HTTP server and client, retries, the handshake and heartbeat state machine) is
not here.
"""

from chargegrid.protocols.oscp.codec import decode, encode
from chargegrid.protocols.oscp.datatypes import (
    UNSET,
    AssetCategory,
    AssetMeasurement,
    CapacityForecastType,
    EnergyFlowDirection,
    EnergyMeasurement,
    EnergyMeasurementUnit,
    EnergyType,
    ForecastedBlock,
    ForecastedBlockUnit,
    InstantaneousMeasurement,
    InstantaneousMeasurementUnit,
    MeasurementConfiguration,
    PhaseIndicator,
    RequiredBehaviour,
    Token,
    UnsetType,
    VersionUrl,
)
from chargegrid.protocols.oscp.errors import OscpError
from chargegrid.protocols.oscp.forecast import (
    CapacityBlock,
    capacity_block,
    capacity_blocks,
    forecasted_block,
)
from chargegrid.protocols.oscp.headers import (
    Incoming,
    parse_authorization,
    parse_headers,
    redacted,
    request_headers,
)
from chargegrid.protocols.oscp.messages import (
    AdjustGroupCapacityForecast,
    Error,
    GroupCapacityComplianceError,
    Handshake,
    HandshakeAcknowledge,
    Heartbeat,
    Message,
    Register,
    UpdateAssetMeasurements,
    UpdateGroupCapacityForecast,
    UpdateGroupMeasurements,
)
from chargegrid.protocols.oscp.table import (
    MESSAGES,
    MessageSpec,
    Role,
    endpoint_url,
    lookup,
    spec_of,
)

__all__ = [
    "MESSAGES",
    "UNSET",
    "AdjustGroupCapacityForecast",
    "AssetCategory",
    "AssetMeasurement",
    "CapacityBlock",
    "CapacityForecastType",
    "EnergyFlowDirection",
    "EnergyMeasurement",
    "EnergyMeasurementUnit",
    "EnergyType",
    "Error",
    "ForecastedBlock",
    "ForecastedBlockUnit",
    "GroupCapacityComplianceError",
    "Handshake",
    "HandshakeAcknowledge",
    "Heartbeat",
    "Incoming",
    "InstantaneousMeasurement",
    "InstantaneousMeasurementUnit",
    "MeasurementConfiguration",
    "Message",
    "MessageSpec",
    "OscpError",
    "PhaseIndicator",
    "Register",
    "RequiredBehaviour",
    "Role",
    "Token",
    "UnsetType",
    "UpdateAssetMeasurements",
    "UpdateGroupCapacityForecast",
    "UpdateGroupMeasurements",
    "VersionUrl",
    "capacity_block",
    "capacity_blocks",
    "decode",
    "encode",
    "endpoint_url",
    "forecasted_block",
    "lookup",
    "parse_authorization",
    "parse_headers",
    "redacted",
    "request_headers",
    "spec_of",
]
