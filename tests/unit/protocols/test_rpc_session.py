"""The OCPP-J RPC session, driven with text in and text out: no sockets."""

from __future__ import annotations

import itertools
import json
from typing import Annotated, Any, Literal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chargegrid.protocols.ocppj.dialect import ERROR_CODES_16, ERROR_CODES_201, Dialect
from chargegrid.protocols.ocppj.errors import ErrorKind, OcppError
from chargegrid.protocols.ocppj.session import (
    CallAnswered,
    CallFailed,
    CallReceived,
    InputRejected,
    LateReplyDropped,
    OutboundInvalid,
    RpcSession,
)
from chargegrid.protocols.ocppj.validation import Deviation


class PingRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    connector_id: Annotated[int, msgspec.Meta(ge=0)]
    id_tag: Annotated[str, msgspec.Meta(max_length=20)]
    status: Literal["Available", "Charging"] = "Available"
    items: Annotated[list[int], msgspec.Meta(min_length=1)] | None = None


class PingResponse(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    ok: bool


class ResetRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: Literal["Hard", "Soft"]


class ResetResponse(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    status: Literal["Accepted", "Rejected"]


ACTIONS: dict[str, tuple[type[msgspec.Struct], type[msgspec.Struct]]] = {
    "Ping": (PingRequest, PingResponse),
    "Reset": (ResetRequest, ResetResponse),
}
V16 = Dialect("1.6", "ocpp1.6", ACTIONS, frozenset({"Ping"}), ERROR_CODES_16)
V201 = Dialect("2.0.1", "ocpp2.0.1", ACTIONS, frozenset({"Ping"}), ERROR_CODES_201)


def session(dialect: Dialect = V201, **kw: Any) -> RpcSession:
    ids = (f"id-{n}" for n in itertools.count(1))
    return RpcSession(dialect, new_id=lambda: next(ids), **kw)


def call(uid: str, payload: Any, action: str = "Ping") -> str:
    return json.dumps([2, uid, action, payload])


GOOD = {"connectorId": 1, "idTag": "ABC"}


def sent(s: RpcSession) -> list[Any]:
    return [json.loads(f) for f in s.data_to_send()]


def test_call_is_delivered_typed_and_answered() -> None:
    s = session()
    s.receive(call("1", GOOD), now=0)
    (event,) = s.events()
    assert isinstance(event, CallReceived)
    assert event.request == PingRequest(connector_id=1, id_tag="ABC")
    s.reply("1", PingResponse(ok=True))
    assert sent(s) == [[3, "1", {"ok": True}]]


def test_second_call_before_answer_is_served_in_order() -> None:
    s = session()
    s.receive(call("a", GOOD), now=0)
    s.receive(call("b", {**GOOD, "connectorId": 2}), now=0)
    (first,) = s.events()
    assert isinstance(first, CallReceived) and first.unique_id == "a"
    s.reply("a", PingResponse(ok=True))
    (second,) = s.events()
    assert isinstance(second, CallReceived) and second.unique_id == "b"
    s.reply("b", PingResponse(ok=False))
    assert [f[1] for f in sent(s)] == ["a", "b"]


def test_reply_to_a_call_not_being_served_is_a_bug() -> None:
    s = session()
    with pytest.raises(RuntimeError):
        s.reply("nope", PingResponse(ok=True))


@pytest.mark.parametrize(
    ("text", "code16", "code201", "uid"),
    [
        ("not json", "FormationViolation", "RpcFrameworkError", "-1"),
        ('{"a": 1}', "FormationViolation", "RpcFrameworkError", "-1"),
        ("[2]", "FormationViolation", "RpcFrameworkError", "-1"),
        ('[2, 7, "Ping", {}]', "FormationViolation", "RpcFrameworkError", "-1"),
        ('[9, "u", "Ping", {}]', "ProtocolError", "MessageTypeNotSupported", "u"),
        ('[2, "u", "Ping"]', "ProtocolError", "ProtocolError", "u"),
        (call("u", GOOD, "Nope"), "NotImplemented", "NotImplemented", "u"),
        (call("u", {"type": "Hard"}, "Reset"), "NotSupported", "NotSupported", "u"),
        (
            call("u", {"idTag": "A"}),
            "OccurenceConstraintViolation",
            "OccurrenceConstraintViolation",
            "u",
        ),
        (
            call("u", {**GOOD, "connectorId": "1"}),
            "TypeConstraintViolation",
            "TypeConstraintViolation",
            "u",
        ),
        (
            call("u", {**GOOD, "idTag": "X" * 21}),
            "PropertyConstraintViolation",
            "PropertyConstraintViolation",
            "u",
        ),
        (
            call("u", {**GOOD, "connectorId": -1}),
            "PropertyConstraintViolation",
            "PropertyConstraintViolation",
            "u",
        ),
        (
            call("u", {**GOOD, "status": "Flying"}),
            "PropertyConstraintViolation",
            "PropertyConstraintViolation",
            "u",
        ),
        (
            call("u", {**GOOD, "items": []}),
            "OccurenceConstraintViolation",
            "OccurrenceConstraintViolation",
            "u",
        ),
        (call("u", {**GOOD, "extra": 1}), "FormationViolation", "FormatViolation", "u"),
        ('[2, "u", "Ping", {"connectorId": 1,]', "FormationViolation", "RpcFrameworkError", "-1"),
    ],
)
def test_bad_input_gets_the_versions_error_code(
    text: str, code16: str, code201: str, uid: str
) -> None:
    for dialect, code in ((V16, code16), (V201, code201)):
        s = session(dialect)
        s.receive(text, now=0)
        (event,) = s.events()
        assert isinstance(event, InputRejected)
        (frame,) = sent(s)
        assert frame[0] == 4 and frame[1] == uid and frame[2] == code, (dialect.version, frame)
        # the session stays usable
        s.receive(call("next", GOOD), now=0)
        assert isinstance(s.events()[0], CallReceived)


def test_lenient_mode_repairs_listed_deviations_and_reports_them() -> None:
    s = session(lenient=frozenset(Deviation))
    s.receive(
        call("1", {"connectorId": "2", "idTag": 12345, "status": "charging", "vendorX": 1}), now=0
    )
    (event,) = s.events()
    assert isinstance(event, CallReceived)
    assert event.request == PingRequest(connector_id=2, id_tag="12345", status="Charging")
    assert {r.deviation for r in event.repairs} == set(Deviation)


def test_lenient_mode_repairs_only_what_is_listed() -> None:
    s = session(lenient=frozenset({Deviation.ENUM_CASE}))
    s.receive(call("1", {**GOOD, "status": "charging", "vendorX": 1}), now=0)
    (event,) = s.events()
    assert isinstance(event, InputRejected) and event.code == "FormatViolation"


def test_calls_are_queued_one_at_a_time() -> None:
    s = session()
    h1 = s.call(ResetRequest(type="Hard"), now=0)
    h2 = s.call(ResetRequest(type="Soft"), now=0)
    frames = sent(s)
    assert frames == [[2, "id-1", "Reset", {"type": "Hard"}]]
    s.receive('[3, "id-1", {"status": "Accepted"}]', now=1)
    (answered,) = s.events()
    assert isinstance(answered, CallAnswered) and answered.handle == h1
    assert sent(s) == [[2, "id-2", "Reset", {"type": "Soft"}]]
    s.receive('[4, "id-2", "NotSupported", "no", {}]', now=2)
    (failed,) = s.events()
    assert isinstance(failed, CallFailed) and failed.handle == h2
    assert failed.error.kind is ErrorKind.NOT_SUPPORTED and failed.error_code == "NotSupported"


def test_late_reply_is_dropped_not_matched_to_the_next_call() -> None:
    s = session(call_timeout=5)
    h1 = s.call(ResetRequest(type="Hard"), now=0)
    h2 = s.call(ResetRequest(type="Soft"), now=0)
    sent(s)
    assert s.next_deadline() == 5
    s.tick(now=4.9)
    assert s.events() == []
    s.tick(now=5)
    (timed_out,) = s.events()
    assert isinstance(timed_out, CallFailed) and timed_out.handle == h1 and timed_out.timed_out
    assert sent(s) == [[2, "id-2", "Reset", {"type": "Soft"}]]
    s.receive('[3, "id-1", {"status": "Accepted"}]', now=6)  # the late answer to id-1
    (dropped,) = s.events()
    assert isinstance(dropped, LateReplyDropped) and dropped.timed_out
    s.receive('[3, "id-2", {"status": "Rejected"}]', now=7)
    (answered,) = s.events()
    assert isinstance(answered, CallAnswered) and answered.handle == h2
    assert answered.response == ResetResponse(status="Rejected")


def test_invalid_result_fails_the_call() -> None:
    s = session()
    handle = s.call(ResetRequest(type="Hard"), now=0)
    s.receive('[3, "id-1", {"status": "Maybe"}]', now=1)
    (failed,) = s.events()
    assert isinstance(failed, CallFailed) and failed.handle == handle
    assert failed.error.kind is ErrorKind.PROPERTY_CONSTRAINT


def test_outbound_requests_are_validated_before_sending() -> None:
    s = session()
    with pytest.raises(OcppError) as info:
        s.call(ResetRequest(type="Sideways"), now=0)  # type: ignore[arg-type]
    assert info.value.kind is ErrorKind.PROPERTY_CONSTRAINT
    with pytest.raises(OcppError):
        s.call(PingRequest(connector_id=1, id_tag="x"), now=0)  # a station-only action
    assert s.data_to_send() == []


def test_outbound_responses_are_validated_and_replaced_by_internal_error() -> None:
    s = session()
    s.receive(call("1", GOOD), now=0)
    s.events()
    s.reply("1", ResetResponse(status="Accepted"))  # wrong response type for Ping
    (event,) = s.events()
    assert isinstance(event, OutboundInvalid)
    assert sent(s) == [[4, "1", "InternalError", "response failed validation", {}]]


def test_fail_all_on_disconnect() -> None:
    s = session()
    s.call(ResetRequest(type="Hard"), now=0)
    s.call(ResetRequest(type="Soft"), now=0)
    s.fail_all("gone")
    assert [type(e) for e in s.events()] == [CallFailed, CallFailed]
    assert s.next_deadline() is None


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_any_input_yields_events_never_exceptions(data: str | bytes) -> None:
    s = session()
    s.receive(data, now=0)
    for event in s.events():
        if isinstance(event, CallReceived):
            s.reply(event.unique_id, PingResponse(ok=True))
    s.data_to_send()


frames = st.lists(
    st.one_of(
        st.integers(-2, 6),
        st.text(max_size=8),
        st.none(),
        st.dictionaries(st.text(max_size=5), st.integers()),
    ),
    max_size=6,
)


@given(frames)
def test_any_json_array_yields_events_never_exceptions(items: list[Any]) -> None:
    s = session(V16)
    s.receive(json.dumps(items), now=0)
    s.events()
    s.data_to_send()
