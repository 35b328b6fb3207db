"""The OpenADR 3 codec against the OpenAPI files (the test oracle, read from /work/shared, never
shipped): the objects made of the YAML's own examples (3.0.1, and 3.1.0 for compatibility),
the token request and answer, refusals, durations, interval placing, and property tests (any
bytes, any JSON, any mutation of an example: only OpenAdrError; any event built from the
schema's parts: valid by the oracle, decoded, and placed interval after interval)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import openadr3_oracle as oracle
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chargegrid.protocols import openadr3 as oadr
from chargegrid.protocols.openadr3 import Duration, OpenAdrError, Secret

T0 = datetime(2023, 6, 15, 9, 30, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
DECODERS = [oadr.decode_event, oadr.decode_program, oadr.decode_report, oadr.decode_token]


def _example(name: str, version: str = "3.0.1") -> dict[str, Any]:
    found = oracle.example(name, version)
    if "objectType" in found:  # the examples give objectTypes' own example, EVENT, to all
        found["objectType"] = name.upper()
    return dict(found)


def _bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


# --- the spec's examples --------------------------------------------------------------------


@pytest.mark.parametrize("version", oracle.VERSIONS)
def test_the_example_event_decodes_and_is_placed(version: str) -> None:
    body = _example("event", version)
    assert oracle.errors("event", body, version) == []
    event = oadr.decode_event(_bytes(body))
    assert event.id == "object-999" and event.program_id == "object-999"
    [descriptor] = event.payload_descriptors or ()
    assert (descriptor.payload_type, descriptor.units, descriptor.currency) == (
        "PRICE",
        "KWH",
        "USD",
    )
    [slot] = oadr.event_slots(event, NOW)
    assert (slot.start, slot.end) == (T0, T0 + timedelta(hours=1))
    assert slot.payloads == (oadr.ValuesMap(type="PRICE", values=(0.17,)),)
    [asked] = event.report_descriptors or ()
    assert (asked.payload_type, asked.start_interval, asked.repeat) == ("USAGE", -1, 1)


@pytest.mark.parametrize("version", oracle.VERSIONS)
def test_the_example_program_and_report_decode(version: str) -> None:
    program = oadr.decode_program(_bytes(_example("program", version)))
    assert program.program_name == "ResTOU"
    assert program.interval_period == oadr.IntervalPeriod(
        start=T0, duration=Duration(seconds=3600), randomize_start=Duration(seconds=3600)
    )
    report = oadr.decode_report(_bytes(_example("report", version)))
    assert report.client_name == "VEN-999"
    assert report.resources[0].resource_name == "RESOURCE-999"


def test_targets_are_values_maps_in_3_0_and_strings_in_3_1() -> None:
    assert oadr.decode_event(_bytes(_example("event", "3.0.1"))).targets == (
        oadr.ValuesMap(type="PRICE", values=(0.17,)),
    )
    assert oadr.decode_event(_bytes(_example("event", "3.1.0"))).targets == ("group-1",)


@pytest.mark.parametrize("version", oracle.VERSIONS)
def test_an_encoded_report_holds_to_the_schema(version: str) -> None:
    report = oadr.Report(
        program_id="program-1",
        event_id="event-1",
        client_name="chargegrid",
        report_name="depot",
        payload_descriptors=(
            oadr.ReportPayloadDescriptor(
                object_type="REPORT_PAYLOAD_DESCRIPTOR",
                payload_type="USAGE",
                reading_type="DIRECT_READ",
                units="KWH",
            ),
        ),
        resources=(
            oadr.ReportResource(
                resource_name="depot",
                intervals=(
                    oadr.Interval(
                        id=0,
                        interval_period=oadr.IntervalPeriod(
                            start=T0, duration=Duration.of(timedelta(minutes=15, seconds=0.5))
                        ),
                        payloads=(oadr.ValuesMap(type="USAGE", values=(1.25,)),),
                    ),
                ),
            ),
        ),
    )
    body = json.loads(oadr.encode(report))
    schema = "report" if version == "3.0.1" else "reportRequest"
    assert oracle.errors(schema, body, version) == []
    period = body["resources"][0]["intervals"][0]["intervalPeriod"]
    assert period == {"start": "2023-06-15T09:30:00Z", "duration": "PT15M0.5S"}
    assert oadr.decode_report(oadr.encode(report)) == report


def test_a_report_that_breaks_its_schema_is_a_bug_of_ours() -> None:
    naive = oadr.IntervalPeriod(start=datetime(2023, 1, 1))
    resource = oadr.ReportResource(
        resource_name="r", intervals=(oadr.Interval(id=0, interval_period=naive, payloads=()),)
    )
    report = oadr.Report(event_id="e", client_name="c", resources=(resource,))
    with pytest.raises(OpenAdrError) as caught:
        oadr.encode(report)
    assert caught.value.status == 500


# --- the token endpoint ---------------------------------------------------------------------


def test_the_token_request_is_a_client_credential_request() -> None:
    body = oadr.token_request("ven_client_99", Secret("ven secret&99="))
    form = {k: v[0] for k, v in parse_qs(body.decode(), strict_parsing=True).items()}
    assert oracle.errors("clientCredentialRequest", form) == []
    assert form == {
        "grant_type": "client_credentials",
        "client_id": "ven_client_99",
        "client_secret": "ven secret&99=",
    }


@pytest.mark.parametrize("version", oracle.VERSIONS)
def test_the_token_answer_keeps_the_token_secret(version: str) -> None:
    answer = oadr.decode_token(_bytes(oracle.example("clientCredentialResponse", version)))
    assert answer.access_token.reveal() == "MTQ0NjJkZmQ5OTM2NDE1ZTZjNGZmZjI3"
    assert answer.expires_in == 3600
    assert "MTQ0NjJk" not in repr(answer) and "IwOGYz" not in repr(answer)


@pytest.mark.parametrize(
    "body",
    [
        {"access_token": "t", "token_type": "MAC"},
        {"access_token": "", "token_type": "Bearer"},
        {"access_token": "t" * 4097, "token_type": "Bearer"},
        {"token_type": "Bearer"},
        {"access_token": 5, "token_type": "Bearer"},
    ],
)
def test_a_token_answer_that_is_not_one_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(OpenAdrError) as caught:
        oadr.decode_token(_bytes(body))
    assert caught.value.status == 400


def test_bearer_is_read_without_case() -> None:
    assert oadr.decode_token(b'{"access_token": "t", "token_type": "bearer"}').token_type


def test_refusals_carry_the_vtn_status_and_what_it_said() -> None:
    problem = oracle.example("problem")
    refused = oadr.refusal(503, _bytes(problem))
    assert refused.status == 503
    assert str(refused) == "the VTN answered 503: Connection to database timed out"
    auth = oadr.refusal(400, _bytes(oracle.example("authError")))
    assert (auth.status, str(auth)) == (400, "the VTN answered 400: invalid_request")
    assert str(oadr.refusal(502, b"<html>")) == "the VTN answered 502"


# --- durations and interval placing --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "after", "endless"),
    [
        ("PT1H", T0 + timedelta(hours=1), False),
        ("P1M", datetime(2023, 7, 15, 9, 30, tzinfo=UTC), False),
        ("P1Y2W", datetime(2024, 6, 29, 9, 30, tzinfo=UTC), False),
        ("PT0.5S", T0 + timedelta(seconds=0.5), False),
        ("PT0S", T0, True),
        ("P9999Y", None, True),
        ("-PT15M", T0 - timedelta(minutes=15), False),
    ],
)
def test_durations(text: str, after: datetime | None, endless: bool) -> None:
    duration = Duration.parse(text)
    assert duration.endless is endless
    assert Duration.parse(str(duration)) == duration
    if after is not None:
        assert duration.after(T0) == after


def test_a_month_ends_at_the_end_of_a_shorter_month() -> None:
    assert Duration.parse("P1M").after(datetime(2023, 1, 31, tzinfo=UTC)).day == 28


_PATTERN = oracle.document()["components"]["schemas"]["duration"]["pattern"]


@given(st.from_regex(_PATTERN, fullmatch=True))
def test_every_duration_the_pattern_allows_parses(text: str) -> None:
    if re.fullmatch(r"[\x00-\x7f]*", text) is None or "\n" in text:  # \d is wider than [0-9]
        return
    message = ""
    try:
        duration = Duration.parse(text)
    except ValueError as exc:  # past what a date can reach: refused, with the reason
        message = str(exc)
    else:
        assert Duration.parse(str(duration)) == duration
    assert message == "" or "longer than any date" in message or "Exceeds the limit" in message


@given(st.text(max_size=30))
def test_what_the_pattern_refuses_does_not_parse(text: str) -> None:
    if re.fullmatch(_PATTERN, text) is not None:
        return
    with pytest.raises(ValueError, match="duration"):
        Duration.parse(text)


def _event(intervals: list[dict[str, Any]], period: dict[str, Any] | None = None) -> oadr.Event:
    body: dict[str, Any] = {"programID": "p", "intervals": intervals}
    if period is not None:
        body["intervalPeriod"] = period
    return oadr.decode_event(_bytes(body))


def _interval(i: int, period: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": i, "payloads": [{"type": "SIMPLE", "values": [1]}]}
    if period is not None:
        out["intervalPeriod"] = period
    return out


def test_intervals_follow_each_other_unless_they_have_a_start() -> None:
    event = _event(
        [
            _interval(7),
            _interval(3),
            _interval(9, {"start": "2023-06-15T12:00:00Z", "duration": "PT30M"}),
            _interval(1),
        ],
        {"start": "2023-06-15T09:30:00Z", "duration": "PT1H"},
    )
    got = [(s.interval_id, s.start, s.end) for s in oadr.event_slots(event, NOW)]
    noon = datetime(2023, 6, 15, 12, tzinfo=UTC)
    assert got == [
        (7, T0, T0 + timedelta(hours=1)),
        (3, T0 + timedelta(hours=1), T0 + timedelta(hours=2)),
        (9, noon, noon + timedelta(minutes=30)),
        (1, noon + timedelta(minutes=30), noon + timedelta(minutes=90)),
    ]
    assert oadr.event_end(oadr.event_slots(event, NOW)) == noon + timedelta(minutes=90)


def test_now_and_endless() -> None:
    now_start = _event([_interval(0)], {"start": "0001-01-01T00:00:00Z", "duration": "PT0S"})
    [slot] = oadr.event_slots(now_start, NOW)
    assert (slot.start, slot.end) == (NOW, None)
    assert oadr.event_end([slot]) is None
    no_start = _event([_interval(0, {"duration": "P9999Y"})])
    assert [(s.start, s.end) for s in oadr.event_slots(no_start, NOW)] == [(NOW, None)]


@pytest.mark.parametrize(
    "event",
    [
        ([_interval(0), _interval(1)], {"start": "2023-06-15T09:30:00Z"}),  # after an endless one
        ([_interval(0)], {"start": "2023-06-15T09:30:00Z", "duration": "-PT1H"}),
    ],
)
def test_events_that_cannot_be_placed(event: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    with pytest.raises(OpenAdrError) as caught:
        oadr.event_slots(_event(*event), NOW)
    assert caught.value.status == 400


def test_bad_objects_name_what_is_wrong() -> None:
    bad = _example("event")
    bad["intervalPeriod"]["start"] = "2023-06-15T09:30:00"  # no offset
    with pytest.raises(OpenAdrError, match=r"intervalPeriod\.start"):
        oadr.decode_event(_bytes(bad))
    bad = _example("event")
    bad["programID"] = "a/b"
    with pytest.raises(OpenAdrError, match="programID"):
        oadr.decode_event(_bytes(bad))
    assert oadr.object_id(_bytes(bad)) == "object-999"
    assert oadr.object_id(b"[1]") is None


# --- property tests: bad input raises OpenAdrError only --------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _decoded_or_refused(body: bytes) -> None:
    for decode in [*DECODERS, oadr.decode_array]:
        status = 400
        try:
            decode(body)
        except OpenAdrError as exc:
            status = exc.status
        assert status == 400
    assert oadr.object_id(body) is None or isinstance(oadr.object_id(body), str)


@given(st.binary(max_size=200))
def test_any_bytes(body: bytes) -> None:
    _decoded_or_refused(body)


@given(_JSON)
def test_any_json(value: Any) -> None:
    _decoded_or_refused(_bytes(value))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, sub in value.items():
            out += _paths(sub, (*prefix, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            out += _paths(sub, (*prefix, i))
    return out


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_mutation_of_the_example_event(data: st.DataObject) -> None:
    """Replace any part of the example with any JSON: the codec decodes it or refuses it with
    OpenAdrError, and what it decodes is placed or refused the same way. What the oracle finds
    valid, the codec reads (but for dates it checks more strictly: times of day and leap
    seconds the oracle's regular expression lets pass)."""
    body = _example("event")
    path = data.draw(st.sampled_from(_paths(body)[1:]))
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = data.draw(_JSON)
    try:
        event = oadr.decode_event(_bytes(body))
    except OpenAdrError:
        valid = oracle.errors("event", body) == []
        assert not valid or "Time" in str(path) or "start" in str(path)
        return
    status = 400
    try:
        oadr.event_slots(event, NOW)
    except OpenAdrError as exc:
        status = exc.status
    assert status == 400


# --- property tests: events built from the schema's parts -----------------------------------

_DURATIONS = st.builds(  # not PT0S: endless, and then an interval after it has no start
    lambda h, m, s: f"PT{h}H{m}M{s}S", st.integers(0, 48), st.integers(0, 59), st.integers(1, 59)
)
_STARTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.isoformat().replace("+00:00", "Z"))
_PAYLOADS = st.sampled_from(
    [
        {"type": "IMPORT_CAPACITY_LIMIT", "values": [11.5]},
        {"type": "SIMPLE", "values": [2]},
        {"type": "PRICE", "values": [0.17]},
        {"type": "GHG", "values": [120]},
    ]
)


@st.composite
def _events(draw: st.DrawFn) -> dict[str, Any]:
    intervals = []
    for i in range(draw(st.integers(0, 5))):
        interval: dict[str, Any] = {"id": i, "payloads": draw(st.lists(_PAYLOADS, max_size=3))}
        if draw(st.booleans()):
            interval["intervalPeriod"] = {"start": draw(_STARTS), "duration": draw(_DURATIONS)}
        intervals.append(interval)
    return {
        "id": draw(st.from_regex(r"[a-zA-Z0-9_-]{1,20}", fullmatch=True)),
        "programID": "program-1",
        "intervalPeriod": {"start": draw(_STARTS), "duration": draw(_DURATIONS)},
        "intervals": intervals,
    }


@given(_events())
def test_events_built_from_the_schema(body: dict[str, Any]) -> None:
    assert oracle.errors("event", body) == []
    event = oadr.decode_event(_bytes(body))
    slots = oadr.event_slots(event, NOW)
    assert [s.interval_id for s in slots] == [i["id"] for i in body["intervals"]]
    for before, after, raw in zip([None, *slots], slots, body["intervals"], strict=False):
        assert after.end is None or after.start <= after.end
        if "intervalPeriod" not in raw and before is not None:
            assert after.start == before.end
