"""The OSCP 2.0 codec: every message against the OCA JSON Schemas (the test oracle, read from
/work/shared, never shipped), the two example bodies, property tests (any bytes or JSON: only
OscpError; any valid message: round trip and schema-valid), the message table, the headers and
the forecast-to-limits conversion."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from referencing import Registry, Resource

from chargegrid.protocols import oscp
from chargegrid.protocols.oscp import UNSET, OscpError, Token

SPEC = Path(__file__).parents[4] / "shared/specs/oscp/2.0"
T0 = datetime(2022, 10, 7, tzinfo=UTC)
NAMES = sorted(oscp.MESSAGES)


# --- the schemas, as an oracle -------------------------------------------------------------

# RFC 3339 5.6 date-time (jsonschema checks "date-time" only with rfc3339-validator installed,
# which this venv lacks, so the format is checked here). T, Z and the space are allowed either
# case as its NOTE says; the leap second 60 is not checked against the calendar.
_RFC3339 = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt ]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
    r"(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)"
)
_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time")
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or _RFC3339.fullmatch(value) is not None


def _registry() -> Registry[Any]:
    if not (SPEC / "schemas").is_dir():
        pytest.skip(f"the OSCP 2.0 schemas (test oracle) are not at {SPEC}")
    registry: Registry[Any] = Registry()
    for path in sorted((SPEC / "schemas").glob("*.json")):
        contents = json.loads(path.read_text())
        resource = Resource.from_contents(contents)
        registry = registry.with_resource(contents["$id"], resource)
        # Two files' $id is not their file name (version_url.json, update-asset-measurement.json)
        # and register.json refers to "version-url.json": register the file name too.
        base = contents["$id"].rsplit("/", 1)[0]
        registry = registry.with_resource(f"{base}/{path.name}", resource)
    return registry.crawl()


@pytest.fixture(scope="module")
def registry() -> Registry[Any]:
    return _registry()


def _validate(registry: Registry[Any], name: str, body: bytes) -> None:
    schema = json.loads((SPEC / "schemas" / f"{name.replace('_', '-')}.json").read_text())
    validator = jsonschema.Draft7Validator(schema, registry=registry, format_checker=_FORMATS)
    validator.validate(json.loads(body))


def test_the_registry_holds_all_26_schemas(registry: Registry[Any]) -> None:
    assert len(list((SPEC / "schemas").glob("*.json"))) == 26
    assert len({r.id() for r in (registry[u] for u in registry)}) >= 26


# --- one of each message ---------------------------------------------------------------------


def _block(**changes: Any) -> oscp.ForecastedBlock:
    fields: dict[str, Any] = {
        "capacity": 11.0,
        "phase": oscp.PhaseIndicator.ALL,
        "unit": oscp.ForecastedBlockUnit.KW,
        "start_time": T0,
        "end_time": T0 + timedelta(minutes=15),
    }
    return oscp.ForecastedBlock(**(fields | changes))


_ENERGY = oscp.EnergyMeasurement(
    value=1234.5,
    phase=oscp.PhaseIndicator.ALL,
    unit=oscp.EnergyMeasurementUnit.KWH,
    direction=oscp.EnergyFlowDirection.IMPORT,
    energy_type=oscp.EnergyType.FLEXIBLE,
    measure_time=T0,
    initial_measure_time=T0 - timedelta(hours=1),
)
_BEHAVIOUR = oscp.RequiredBehaviour(
    heartbeat_interval=60,
    measurement_configuration=(oscp.MeasurementConfiguration.CONTINUOUS,),
)
SAMPLES: dict[str, oscp.Message] = {
    "register": oscp.Register(
        token=Token("tok-123"),
        version_url=(oscp.VersionUrl(version="2.0", base_url="https://fp.example/oscp/fp/2.0"),),
    ),
    "handshake": oscp.Handshake(required_behaviour=_BEHAVIOUR),
    "handshake_acknowledge": oscp.HandshakeAcknowledge(),
    "heartbeat": oscp.Heartbeat(offline_mode_at=T0 + timedelta(minutes=5)),
    "update_group_capacity_forecast": oscp.UpdateGroupCapacityForecast(
        group_id="g1",
        forecast_type=oscp.CapacityForecastType.CONSUMPTION,
        forecasted_blocks=(_block(), _block(start_time=T0 + timedelta(minutes=15))),
    ),
    "adjust_group_capacity_forecast": oscp.AdjustGroupCapacityForecast(
        group_id="g1",
        forecast_type=oscp.CapacityForecastType.OPTIMUM,
        forecasted_blocks=(_block(unit=oscp.ForecastedBlockUnit.A, phase=oscp.PhaseIndicator.ONE),),
    ),
    "group_capacity_compliance_error": oscp.GroupCapacityComplianceError(
        message="cannot keep to it", forecasted_blocks=(_block(capacity=0),)
    ),
    "update_group_measurements": oscp.UpdateGroupMeasurements(
        group_id="g1", measurements=(_ENERGY,)
    ),
    "update_asset_measurements": oscp.UpdateAssetMeasurements(
        group_id="g1",
        measurements=(
            oscp.AssetMeasurement(
                asset_id="cs-1",
                asset_category=oscp.AssetCategory.CHARGING,
                energy_measurement=_ENERGY,
                instantaneous_measurement=oscp.InstantaneousMeasurement(
                    value=16,
                    phase=oscp.PhaseIndicator.TWO,
                    unit=oscp.InstantaneousMeasurementUnit.A,
                    measure_time=T0,
                ),
            ),
            oscp.AssetMeasurement(asset_id="pv", asset_category=oscp.AssetCategory.GENERATION),
        ),
    ),
    "error": oscp.Error(message="Unsupported heartbeat interval"),
}


def test_every_message_has_a_sample() -> None:
    assert set(SAMPLES) == set(oscp.MESSAGES)


@pytest.mark.parametrize("name", NAMES)
def test_each_message_encodes_to_its_schema_and_back(name: str, registry: Registry[Any]) -> None:
    message = SAMPLES[name]
    assert oscp.spec_of(message).name == name
    body = oscp.encode(message)
    _validate(registry, name, body)
    assert oscp.decode(name, body) == message


@pytest.mark.parametrize(
    ("name", "example", "kind"),
    [
        ("handshake", "test-oscp-handshake-01.json", oscp.Handshake),
        (
            "update_group_capacity_forecast",
            "test-oscp-update-group-capacity-forecast-01.json",
            oscp.UpdateGroupCapacityForecast,
        ),
    ],
)
def test_the_examples_decode_and_encode_back(name: str, example: str, kind: type) -> None:
    path = SPEC / "examples" / example
    if not path.is_file():
        pytest.skip(f"the OSCP 2.0 examples (test oracle) are not at {path.parent}")
    message = oscp.decode(name, path.read_bytes())
    assert isinstance(message, kind)
    assert json.loads(oscp.encode(message)) == json.loads(path.read_bytes())  # 60 == 60.0


def test_the_token_is_in_no_repr() -> None:
    register = SAMPLES["register"]
    assert isinstance(register, oscp.Register)
    assert "tok-123" not in repr(register) and "tok-123" not in str(register)
    assert "tok-123" not in repr(
        oscp.parse_headers({"Authorization": "Token tok-123", "X-Request-ID": "r"})
    )
    assert register.token.reveal() == "tok-123" and register.token == Token("tok-123")
    with pytest.raises(OscpError) as caught:  # a refusal does not quote the token either
        oscp.decode("register", b'{"token": "tok-123", "version_url": [{"version": 2}]}')
    assert "tok-123" not in str(caught.value) and caught.value.status == 400


@pytest.mark.parametrize(
    ("name", "body", "where"),
    [
        ("register", b'{"token": "t", "version_url": []}', "version_url"),
        ("heartbeat", b'{"offline_mode_at": "2022-10-07T00:00:00"}', "timezone"),
        ("heartbeat", b'{"offline_mode_at": null}', "offline_mode_at"),
        ("handshake", b'{"required_behaviour": {}}', "measurement_configuration"),
        (
            "handshake",
            b'{"required_behaviour": {"heartbeat_interval": null, '
            b'"measurement_configuration": []}}',
            "heartbeat_interval",
        ),
        (
            "handshake_acknowledge",
            b'{"required_behaviour": {"measurement_configuration": ["CONTINUOUS", "CONTINUOUS"]}}',
            "unique",
        ),
        (
            "update_group_capacity_forecast",
            b'{"group_id": "g", "type": "CONSUMPTION", "forecasted_blocks": []}',
            "forecasted_blocks",
        ),
        (
            "adjust_group_capacity_forecast",
            b'{"group_id": "g", "type": "MAXIMUM", "forecasted_blocks": [{}]}',
            "type",
        ),
        ("group_capacity_compliance_error", b"{}", "message"),
        (
            "update_group_measurements",
            b'{"group_id": "g", "measurements": [{"value": 1e999}]}',
            "measurements",
        ),
        ("update_asset_measurements", b'{"group_id": "g"}', "measurements"),
        ("error", b'{"message": 5}', "message"),
        ("error", b'{"message": "m"', "truncated"),
        ("error", b"\xff", "malformed"),
    ],
)
def test_what_the_schemas_refuse_is_a_400(name: str, body: bytes, where: str) -> None:
    with pytest.raises(OscpError, match=where) as caught:
        oscp.decode(name, body)
    assert caught.value.status == 400


def test_a_negative_capacity_is_refused() -> None:
    body = json.loads(oscp.encode(SAMPLES["update_group_capacity_forecast"]))
    body["forecasted_blocks"][0]["capacity"] = -1
    with pytest.raises(OscpError, match="capacity"):
        oscp.decode("update_group_capacity_forecast", json.dumps(body).encode())


def test_unknown_fields_are_ignored_as_the_schemas_allow() -> None:
    assert oscp.decode("error", b'{"message": "m", "code": 7}') == oscp.Error(message="m")


def test_an_unknown_name_is_a_404() -> None:
    with pytest.raises(OscpError) as caught:
        oscp.decode("UpdateGroupCapacityForecast", b"{}")
    assert caught.value.status == 404


@pytest.mark.parametrize(
    "message",
    [
        oscp.Heartbeat(offline_mode_at=datetime(2022, 10, 7)),
        oscp.Error(message=None),  # type: ignore[arg-type]
        oscp.UpdateGroupMeasurements(group_id="g", measurements=()),
        oscp.GroupCapacityComplianceError(
            message="m", forecasted_blocks=(_block(capacity=float("nan")),)
        ),
        oscp.Register(token="bare", version_url=()),  # type: ignore[arg-type]
    ],
)
def test_encode_refuses_what_breaks_the_schema(message: oscp.Message) -> None:
    with pytest.raises(OscpError) as caught:
        oscp.encode(message)
    assert caught.value.status == 500


def test_deep_nesting_is_an_oscp_error() -> None:
    for name in NAMES:
        for body in (b"[" * 100_000, b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"):
            with pytest.raises(OscpError):
                oscp.decode(name, body)


# --- property tests --------------------------------------------------------------------------

_json: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
_FIELDS = sorted(
    {f for spec in oscp.MESSAGES.values() for f in spec.message_type.__struct_encode_fields__}
    | {
        "version",
        "base_url",
        "capacity",
        "phase",
        "unit",
        "start_time",
        "end_time",
        "value",
        "measure_time",
        "measurement_configuration",
        "asset_id",
        "asset_category",
    }
)
_near_json = st.recursive(
    _json,
    lambda inner: (
        st.dictionaries(st.sampled_from(_FIELDS), inner, max_size=5) | st.lists(inner, max_size=3)
    ),
    max_leaves=25,
)


def _decode_or_oscp_error(name: str, body: bytes) -> None:
    try:
        oscp.decode(name, body)
    except OscpError as exc:
        status = exc.status
    else:
        status = 400
    assert status == 400


@given(st.sampled_from(NAMES), st.binary())
def test_any_bytes_decode_or_raise_oscp_error(name: str, body: bytes) -> None:
    _decode_or_oscp_error(name, body)


@given(st.sampled_from(NAMES), _near_json)
def test_any_json_decodes_or_raises_oscp_error(name: str, value: Any) -> None:
    _decode_or_oscp_error(name, json.dumps(value).encode())


_zones = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=5, minutes=30)),
        timezone(-timedelta(hours=8)),
        timezone(timedelta(0)),
    ]
)
_times = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=_zones
)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_text = st.text(max_size=20)


def _opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.just(UNSET) | strategy


def _some(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(strategy, min_size=1, max_size=4).map(tuple)


_blocks = _some(
    st.builds(
        oscp.ForecastedBlock,
        capacity=st.floats(min_value=0, allow_infinity=False),
        phase=st.sampled_from(oscp.PhaseIndicator),
        unit=st.sampled_from(oscp.ForecastedBlockUnit),
        start_time=_times,
        end_time=_times,
    )
)
_behaviour = st.builds(
    oscp.RequiredBehaviour,
    heartbeat_interval=_opt(_finite),
    measurement_configuration=st.lists(
        st.sampled_from(oscp.MeasurementConfiguration), unique=True
    ).map(tuple),
)
_energy = st.builds(
    oscp.EnergyMeasurement,
    value=_finite,
    phase=st.sampled_from(oscp.PhaseIndicator),
    unit=st.sampled_from(oscp.EnergyMeasurementUnit),
    direction=st.sampled_from(oscp.EnergyFlowDirection),
    energy_type=_opt(st.sampled_from(oscp.EnergyType)),
    measure_time=_times,
    initial_measure_time=_opt(_times),
)
_instant = st.builds(
    oscp.InstantaneousMeasurement,
    value=_finite,
    phase=st.sampled_from(oscp.PhaseIndicator),
    unit=st.sampled_from(oscp.InstantaneousMeasurementUnit),
    measure_time=_times,
)
_forecast_fields = {
    "group_id": _text,
    "forecast_type": st.sampled_from(oscp.CapacityForecastType),
    "forecasted_blocks": _blocks,
}
MESSAGE_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "register": st.builds(
        oscp.Register,
        token=_text.map(Token),
        version_url=_some(st.builds(oscp.VersionUrl, version=_text, base_url=_text)),
    ),
    "handshake": st.builds(oscp.Handshake, required_behaviour=_opt(_behaviour)),
    "handshake_acknowledge": st.builds(
        oscp.HandshakeAcknowledge, required_behaviour=_opt(_behaviour)
    ),
    "heartbeat": st.builds(oscp.Heartbeat, offline_mode_at=_times),
    "update_group_capacity_forecast": st.builds(
        oscp.UpdateGroupCapacityForecast, **_forecast_fields
    ),
    "adjust_group_capacity_forecast": st.builds(
        oscp.AdjustGroupCapacityForecast, **_forecast_fields
    ),
    "group_capacity_compliance_error": st.builds(
        oscp.GroupCapacityComplianceError, message=_text, forecasted_blocks=_opt(_blocks)
    ),
    "update_group_measurements": st.builds(
        oscp.UpdateGroupMeasurements, group_id=_text, measurements=_some(_energy)
    ),
    "update_asset_measurements": st.builds(
        oscp.UpdateAssetMeasurements,
        group_id=_text,
        measurements=_some(
            st.builds(
                oscp.AssetMeasurement,
                asset_id=_text,
                asset_category=st.sampled_from(oscp.AssetCategory),
                energy_measurement=_opt(_energy),
                instantaneous_measurement=_opt(_instant),
            )
        ),
    ),
    "error": st.builds(oscp.Error, message=_opt(_text)),
}
_any_message = st.sampled_from(NAMES).flatmap(
    lambda name: st.tuples(st.just(name), MESSAGE_STRATEGIES[name])
)


@given(named=_any_message)
def test_valid_messages_round_trip_and_meet_their_schema(
    registry: Registry[Any], named: tuple[str, oscp.Message]
) -> None:
    name, message = named
    body = oscp.encode(message)
    assert oscp.decode(name, body) == message
    _validate(registry, name, body)


# --- the message table -----------------------------------------------------------------------


def test_every_endpoint_is_found_by_its_path_segment() -> None:
    for name, spec in oscp.MESSAGES.items():
        if name == "error":
            continue
        assert oscp.lookup(name) is spec
        assert (SPEC / "schemas" / f"{name.replace('_', '-')}.json").is_file() or not SPEC.is_dir()
    for segment in ("error", "UpdateGroupCapacityForecast", "", "../register"):
        with pytest.raises(OscpError) as caught:
            oscp.lookup(segment)
        assert caught.value.status == 404


def test_who_sends_what() -> None:
    cp, fp, co = (
        oscp.Role.CAPACITY_PROVIDER,
        oscp.Role.FLEXIBILITY_PROVIDER,
        oscp.Role.CAPACITY_OPTIMIZER,
    )
    directions = {name: spec.direction for name, spec in oscp.MESSAGES.items()}
    assert directions == {
        "register": "both",
        "handshake": "both",
        "handshake_acknowledge": "both",
        "heartbeat": "both",
        "update_group_capacity_forecast": "CP->FP",
        "adjust_group_capacity_forecast": "FP->CP",
        "group_capacity_compliance_error": "FP->CP",
        "update_group_measurements": "FP->CP",
        "update_asset_measurements": None,
        "error": "both",
    }
    assert oscp.lookup("update_asset_measurements").sent_by(fp)
    assert oscp.lookup("update_asset_measurements").received_by(co)
    assert (
        not oscp.lookup("update_group_capacity_forecast").sent_by(fp)
        or (fp, co) in oscp.lookup("update_group_capacity_forecast").flows
    )
    assert not oscp.lookup("adjust_group_capacity_forecast").received_by(fp)
    assert oscp.lookup("heartbeat").sent_by(cp)


def test_endpoint_url() -> None:
    forecast = SAMPLES["update_group_capacity_forecast"]
    assert (
        oscp.endpoint_url("https://fp.example/oscp/fp/2.0/", forecast)
        == "https://fp.example/oscp/fp/2.0/update_group_capacity_forecast"
    )
    with pytest.raises(ValueError, match="not posted"):
        oscp.endpoint_url("https://x/2.0", SAMPLES["error"])


# --- headers ---------------------------------------------------------------------------------


def test_request_headers_and_their_parse() -> None:
    headers = oscp.request_headers(Token("abc"), correlation_id="req-1", segment=(1, 2))
    assert headers["Authorization"] == "Token abc"
    assert re.fullmatch(r"[0-9a-f-]{36}", headers["X-Request-ID"])
    assert headers["X-Correlation-ID"] == "req-1"
    assert "abc" not in repr(oscp.redacted(headers))
    incoming = oscp.parse_headers({k.lower(): v for k, v in headers.items()})
    assert incoming == oscp.Incoming(Token("abc"), headers["X-Request-ID"], "req-1", (1, 2))
    first = oscp.request_headers(Token("abc"))
    assert "X-Correlation-ID" not in first
    assert first["X-Request-ID"] != oscp.request_headers(Token("abc"))["X-Request-ID"]


@pytest.mark.parametrize(
    ("value", "token"),
    [("Token xyz", "xyz"), ("token  xyz ", "xyz"), ("TOKEN a.b-c_d=", "a.b-c_d=")],
)
def test_the_token_scheme_is_read(value: str, token: str) -> None:
    assert oscp.parse_authorization(value) == Token(token)


@pytest.mark.parametrize(
    "value",
    [None, "", "Token", "Token ", "Bearer xyz", "Basic eHl6", "xyz", "Token a b", "Token\txyz"],
)
def test_other_schemes_and_empty_tokens_are_a_401(value: str | None) -> None:
    with pytest.raises(OscpError) as caught:
        oscp.parse_authorization(value)
    assert caught.value.status == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Token t"},
        {"Authorization": "Token t", "X-Request-ID": " "},
        {"Authorization": "Token t", "X-Request-ID": "r", "X-Segment-Index": "1"},
        {
            "Authorization": "Token t",
            "X-Request-ID": "r",
            "X-Segment-Index": "3",
            "X-Segment-Count": "2",
        },
        {
            "Authorization": "Token t",
            "X-Request-ID": "r",
            "X-Segment-Index": "x",
            "X-Segment-Count": "2",
        },
        {"Authorization": "Token t", "X-Request-ID": "r", "X-Correlation-ID": "a\nb"},
    ],
)
def test_bad_headers_are_a_400(headers: dict[str, str]) -> None:
    with pytest.raises(OscpError) as caught:
        oscp.parse_headers(headers)
    assert caught.value.status == 400


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "Authorization",
                "x-request-id",
                "X-Correlation-ID",
                "X-Segment-Index",
                "x-segment-count",
                "Other",
            ]
        ),
        st.text(),
    )
)
def test_any_headers_parse_or_raise_oscp_error(headers: dict[str, str]) -> None:
    try:
        oscp.parse_headers(headers)
    except OscpError as exc:
        status = exc.status
    else:
        status = 400
    assert status in (400, 401)


# --- forecasts as limits ---------------------------------------------------------------------


def _forecast(*blocks: oscp.ForecastedBlock) -> oscp.UpdateGroupCapacityForecast:
    return oscp.UpdateGroupCapacityForecast(
        group_id="g", forecast_type=oscp.CapacityForecastType.CONSUMPTION, forecasted_blocks=blocks
    )


def test_the_example_forecast_in_watts() -> None:
    path = SPEC / "examples/test-oscp-update-group-capacity-forecast-01.json"
    if not path.is_file():
        pytest.skip(f"the OSCP 2.0 examples (test oracle) are not at {path.parent}")
    forecast = oscp.decode("update_group_capacity_forecast", path.read_bytes())
    assert isinstance(forecast, oscp.UpdateGroupCapacityForecast)
    blocks = oscp.capacity_blocks(forecast)
    assert [b.limit for b in blocks] == pytest.approx([123456, 234567, 345678, 456789])
    assert {(b.unit, b.phase) for b in blocks} == {("W", None)}
    assert blocks[0].start == T0 and blocks[-1].end == T0 + timedelta(hours=1)


def test_units_and_phases() -> None:
    quarter = T0 + timedelta(minutes=15)
    unit, phase = oscp.ForecastedBlockUnit, oscp.PhaseIndicator
    blocks = oscp.capacity_blocks(
        _forecast(
            _block(
                capacity=10,
                unit=unit.KWH,
                start_time=quarter,
                end_time=quarter + timedelta(minutes=15),
            ),
            _block(capacity=500, unit=unit.WH, phase=phase.TWO),
            _block(capacity=32, unit=unit.A, phase=phase.ONE),
            _block(capacity=16, unit=unit.A, phase=phase.UNKNOWN),
            _block(capacity=7400, unit=unit.W, phase=phase.THREE),
        )
    )
    assert [(b.phase, b.unit, b.limit) for b in blocks] == [
        (None, "A", 16),  # UNKNOWN: read as on every phase
        ("L1", "A", 32),
        ("L2", "W", pytest.approx(2000)),  # 500 Wh in a quarter of an hour
        ("L3", "W", 7400),
        (None, "W", pytest.approx(40_000)),  # 10 kWh in a quarter of an hour
    ]


def test_a_block_without_length_is_refused() -> None:
    with pytest.raises(OscpError, match="at or before") as caught:
        oscp.capacity_blocks(_forecast(_block(end_time=T0)))
    assert caught.value.status == 400


# --- limits as forecasted blocks (what the Flexibility Provider sends) -----------------------


@given(
    limit=st.floats(min_value=0, max_value=1e12, allow_nan=False),
    unit=st.sampled_from(["A", "W"]),
    phase=st.sampled_from([None, "L1", "L2", "L3"]),
    minutes=st.integers(min_value=1, max_value=24 * 60),
)
def test_a_limit_as_a_block_and_back(
    registry: Registry[Any], limit: float, unit: Any, phase: Any, minutes: int
) -> None:
    end = T0 + timedelta(minutes=minutes)
    block = oscp.forecasted_block(limit, unit, phase, T0, end)
    assert oscp.capacity_block(block) == oscp.CapacityBlock(T0, end, phase, limit, unit)
    for message in (
        oscp.AdjustGroupCapacityForecast(
            group_id="g",
            forecast_type=oscp.CapacityForecastType.CONSUMPTION,
            forecasted_blocks=(block,),
        ),
        oscp.GroupCapacityComplianceError(message="over", forecasted_blocks=(block,)),
    ):
        _validate(registry, oscp.spec_of(message).name, oscp.encode(message))


def test_phases_of_blocks_sent() -> None:
    end = T0 + timedelta(minutes=15)
    phases = [oscp.forecasted_block(1, "A", p, T0, end).phase for p in (None, "L1", "L2", "L3")]
    assert [p.value for p in phases] == ["ALL", "ONE", "TWO", "THREE"]
