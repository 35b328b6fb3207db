"""The EXI codec on its own: the ISO 15118-2 Annex J vector, round trips, refusals, and random
input that raises nothing but ExiError. (tests/integration/test_exi_exificient.py checks it
against EXIficient.)"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chargegrid.protocols import exi
from chargegrid.protocols.exi.bits import BitReader, BitWriter
from chargegrid.protocols.iso15118 import message_grammars

# ISO 15118-2:2014 Annex J: AuthorizationReq (Id "ID1", GenChallenge "Some Random Data") as an
# EXI fragment, the input of the digest in the signature example.
ANNEX_J = bytes.fromhex("80040152510c40829b7b6b2902930b73237b6902230ba309e8")


def test_annex_j_fragment() -> None:
    node = exi.Node(
        "AuthorizationReq",
        attrs={"Id": "ID1"},
        children=[exi.Node("GenChallenge", b"Some Random Data")],
    )
    assert exi.encode_fragment([node], message_grammars()) == ANNEX_J


def _message(body: exi.Node) -> exi.Node:
    header = exi.Node("Header", children=[exi.Node("SessionID", b"\x00" * 8)])
    return exi.Node("V2G_Message", children=[header, exi.Node("Body", children=[body])])


def test_round_trip_of_every_value_kind() -> None:
    grammars = message_grammars()
    body = exi.Node(
        "PowerDeliveryReq",
        children=[
            exi.Node("ChargeProgress", "Start"),  # enumeration
            exi.Node("SAScheduleTupleID", 255),  # n-bit, 1..255
            exi.Node(
                "ChargingProfile",
                children=[
                    exi.Node(
                        "ProfileEntry",
                        children=[
                            exi.Node("ChargingProfileEntryStart", 86400),  # unsignedInt
                            exi.Node(
                                "ChargingProfileEntryMaxPower",
                                children=[
                                    exi.Node("Multiplier", -3),  # n-bit, -3..3
                                    exi.Node("Unit", "W"),
                                    exi.Node("Value", -32768),  # short: integer
                                ],
                            ),
                        ],
                    )
                ],
            ),
        ],
    )
    data = exi.encode(_message(body), grammars)
    back = exi.decode(data, grammars)
    request = back.child("Body").child("PowerDeliveryReq")
    assert request.ns == "urn:iso:15118:2:2013:MsgBody"
    assert request.child("ChargeProgress").value == "Start"
    assert request.child("SAScheduleTupleID").value == 255
    profile = back.child("Body").children[0].child("ChargingProfile").children[0]
    power = profile.child("ChargingProfileEntryMaxPower")
    assert [c.value for c in power.children] == [-3, "W", -32768]
    assert profile.child("ChargingProfileEntryStart").value == 86400
    assert exi.encode(back, grammars) == data


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (exi.Node("SessionSetupReq"), "EE is not allowed here"),
        (exi.Node("SessionSetupReq", children=[exi.Node("Nope", b"")]), "Nope is not allowed"),
        (exi.Node("SessionSetupReq", children=[exi.Node("EVCCID", "text")]), "not a valid binary"),
        (exi.Node("PowerDeliveryReq", children=[exi.Node("ChargeProgress", "Later")]), "enum"),
    ],
)
def test_trees_the_schema_refuses(body: exi.Node, reason: str) -> None:
    with pytest.raises(exi.ExiError, match=reason):
        exi.encode(_message(body), message_grammars())


def test_out_of_range_n_bit_value() -> None:
    body = exi.Node(
        "PowerDeliveryReq",
        children=[exi.Node("ChargeProgress", "Start"), exi.Node("SAScheduleTupleID", 256)],
    )
    with pytest.raises(exi.ExiError, match="out of range"):
        exi.encode(_message(body), message_grammars())


def test_not_exi() -> None:
    with pytest.raises(exi.ExiError, match="header"):
        exi.decode(b"\x00\x01", message_grammars())
    with pytest.raises(exi.ExiError, match="ends too early"):
        exi.decode(b"\x80", message_grammars())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_input_raises_only_exi_error(data: bytes) -> None:
    with contextlib.suppress(exi.ExiError):
        exi.decode(b"\x80" + data, message_grammars())


@given(st.lists(st.tuples(st.integers(0, 2**20), st.integers(1, 20))), st.integers(-(2**70), 2**70))
def test_bits_round_trip(fields: list[tuple[int, int]], number: int) -> None:
    writer = BitWriter()
    for value, n in fields:
        writer.bits(value % (1 << n), n)
    writer.integer(number)
    reader = BitReader(writer.getvalue())
    assert [reader.bits(n) for _, n in fields] == [v % (1 << n) for v, n in fields]
    assert reader.integer() == number


@given(st.integers(0, 7), st.binary(max_size=40), st.integers(0, 7))
def test_raw_bytes_at_any_bit_offset(lead: int, data: bytes, trail: int) -> None:
    writer = BitWriter()
    writer.bits(0b1010101 & ((1 << lead) - 1), lead)
    writer.raw(data)
    if trail:
        writer.bits(1, trail)
    reader = BitReader(writer.getvalue())
    assert reader.bits(lead) == 0b1010101 & ((1 << lead) - 1)
    assert reader.raw(len(data)) == data
    if trail:
        assert reader.bits(trail) == 1
