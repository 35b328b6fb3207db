"""chargegrid's EXI codec against EXIficient (the Java implementation V2G codecs were generated
from), for the ISO 15118-2 schemas:

* every grammar state reachable from a document or a fragment has the same productions, in the
  same order, with the same datatypes;
* the Plug & Charge messages chargegrid writes are byte for byte what EXIficient writes from the
  same XML, and EXIficient reads them back;
* messages EXIficient writes from hand-written XML are read by chargegrid to the same XML;
* the signed fragments, and SignedInfo under the XML Signature schema, match too.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from exificient import Exificient, gateway

from chargegrid.adapters.pki.v2g import TestPki
from chargegrid.protocols import exi
from chargegrid.protocols import iso15118 as v2
from chargegrid.protocols.exi.grammar import Datatype, ElementGrammar, Production

SCHEMAS = Path(v2.__file__).parent / "schemas"
MSG = "urn:iso:15118:2:2013:MsgDef"
HDR = "urn:iso:15118:2:2013:MsgHeader"
BODY = "urn:iso:15118:2:2013:MsgBody"
TYPES = "urn:iso:15118:2:2013:MsgDataTypes"


@pytest.fixture(scope="module")
def jvm() -> Iterator[Any]:
    gw = gateway()
    yield gw
    gw.shutdown()


@pytest.fixture(scope="module")
def oracle(jvm: Any) -> Exificient:
    return Exificient(jvm, SCHEMAS / "V2G_CI_MsgDef.xsd")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(tmp_path_factory.mktemp("pki"), emaids=("DECGRC000000042",))


# --- grammars ------------------------------------------------------------------------------


def _java_datatype(datatype: Any) -> str:
    kind = str(datatype.getBuiltInType())
    if kind == "NBIT_UNSIGNED_INTEGER":
        return f"nbit{datatype.getNumberOfBits()}:{int(datatype.getLowerBound().toString())}"
    if kind == "ENUMERATION":
        return f"enum{datatype.getEnumerationSize()}"
    return {
        "BINARY_BASE64": "binary",
        "BINARY_HEX": "binary",
        "BOOLEAN": "boolean",
        "STRING": "string",
        "UNSIGNED_INTEGER": "unsigned",
        "INTEGER": "integer",
    }.get(kind, kind)


def _ours_datatype(datatype: Datatype | None) -> str | None:
    if datatype is None:
        return None
    if datatype.kind == "nbit":
        return f"nbit{datatype.bits}:{datatype.minimum}"
    if datatype.kind == "enum":
        return f"enum{len(datatype.values)}"
    return datatype.kind


def _java_event(event: Any) -> tuple[Any, ...]:
    kind = str(event.getEventType())
    if kind == "START_ELEMENT":
        qname = event.getQName()
        return ("SE", str(qname.getNamespaceURI()), str(qname.getLocalPart()))
    if kind == "ATTRIBUTE":
        qname = event.getQName()
        return (
            "AT",
            str(qname.getNamespaceURI()),
            str(qname.getLocalPart()),
            _java_datatype(event.getDatatype()),
        )
    if kind == "END_ELEMENT":
        return ("EE",)
    if kind == "CHARACTERS":
        return ("CH", _java_datatype(event.getDatatype()))
    if kind.startswith("CHARACTERS"):
        return ("CH", None)
    if kind.startswith("START_ELEMENT"):
        return ("SE*",)
    return (kind,)


def _ours_event(production: Production) -> tuple[Any, ...]:
    if production.event == "SE":
        assert production.qname
        return ("SE", *production.qname)
    if production.event == "AT":
        assert production.qname
        return ("AT", *production.qname, _ours_datatype(production.datatype))
    if production.event == "CH":
        return ("CH", _ours_datatype(production.datatype))
    return (production.event,)


def _compare(roots: list[tuple[Any, ElementGrammar]]) -> int:
    """Walk both grammars in step from each root; return how many states were compared."""
    seen: set[tuple[int, int]] = set()
    work = [(java, ours, 0) for java, ours in roots if not ours.relaxed]
    while work:
        java, ours, number = work.pop()
        if (id(ours), number) in seen:
            continue
        seen.add((id(ours), number))
        state = ours.states[number]
        expected = [
            _java_event(java.getProduction(i).getEvent()) for i in range(java.getNumberOfEvents())
        ]
        assert [_ours_event(p) for p in state.productions] == expected, (ours.name, number)
        for code, production in enumerate(state.productions):
            java_production = java.getProduction(code)
            if production.event == "SE":
                assert production.element is not None
                work.append((java_production.getEvent().getGrammar(), production.element, 0))
            if production.next is not None:
                work.append((java_production.getNextGrammar(), ours, production.next))
    return len(seen)


def test_every_grammar_state_matches(oracle: Exificient) -> None:
    ours = v2.message_grammars()
    document = oracle.document_grammar()
    assert document.getNumberOfEvents() == len(ours.document) + 1  # SE(*)
    roots = [
        (document.getProduction(i).getEvent().getGrammar(), grammar)
        for i, (_, grammar) in enumerate(ours.document)
    ]
    fragment = oracle.fragment_grammar()
    assert fragment.getNumberOfEvents() == len(ours.fragment) + 2  # SE(*), ED
    for i, (qname, grammar) in enumerate(ours.fragment):
        event = fragment.getProduction(i).getEvent()
        assert _java_event(event) == ("SE", *qname)
        roots.append((event.getGrammar(), grammar))
    assert _compare(roots) > 2500


# --- messages ------------------------------------------------------------------------------


def _requests(pki: TestPki) -> dict[str, bytes]:
    root = pki.certs["v2g-root"]
    roots = (v2.RootCertificateId(root.issuer.rfc4514_string(), root.serial_number),)
    contract = pki.contract("DECGRC000000042")
    return {
        "install": v2.sign_request(
            "install",
            session_id=bytes.fromhex("00aa11bb22cc33dd"),
            certificate=pki.certs["oem-prov"],
            key=pki.keys["oem-prov"],
            root_ids=roots,
        ),
        "update": v2.sign_request(
            "update",
            session_id=bytes.fromhex("0102"),
            certificate=pki.certs[contract],
            key=pki.keys[contract],
            sub_certificates=(pki.certs["mo-sub2"], pki.certs["mo-sub1"]),
            emaid="DECGRC000000042",
            root_ids=roots * 3,
        ),
    }


def _response(pki: TestPki, request: bytes) -> bytes:
    contract = pki.contract("DECGRC000000042")
    key = pki.keys[contract]
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return v2.build_response(
        v2.read_request(request),
        emaid="DECGRC000000042",
        contract=pki.certs[contract],
        contract_subs=(pki.certs["mo-sub2"], pki.certs["mo-sub1"]),
        contract_key=key,
        provisioning=pki.certs["cps"],
        provisioning_subs=(pki.certs["cps-sub2"], pki.certs["cps-sub1"]),
        provisioning_key=pki.keys["cps"],
    )


def test_plug_and_charge_messages_match(oracle: Exificient, pki: TestPki) -> None:
    grammars = v2.message_grammars()
    messages = _requests(pki)
    messages |= {f"{kind} response": _response(pki, data) for kind, data in messages.items()}
    for kind, data in messages.items():
        xml = exi.to_xml(exi.decode(data, grammars), grammars)
        assert oracle.encode(xml) == data, kind
        assert oracle.encode(oracle.decode(data)) == data, kind


def test_signed_fragments_and_signed_info_match(jvm: Any, oracle: Exificient, pki: TestPki) -> None:
    grammars = v2.message_grammars()
    message = exi.decode(_response(pki, _requests(pki)["install"]), grammars)
    tree = ET.fromstring(exi.to_xml(message, grammars))  # noqa: S314 (our own XML)
    body = tree.find(f"{{{MSG}}}Body")
    assert body is not None
    [response] = list(body)
    signed = [n for n in message.child("Body").children[0].children if "Id" in n.attrs]
    assert [n.name for n in signed] == [
        "ContractSignatureCertChain",
        "ContractSignatureEncryptedPrivateKey",
        "DHpublickey",
        "eMAID",  # declared with two types: the relaxed element fragment grammar
    ]
    for node in signed:
        element = response.find(f"{{{BODY}}}{node.name}")
        assert element is not None
        assert exi.encode_fragment([node], grammars) == oracle.encode(
            ET.tostring(element, encoding="unicode"), fragment=True
        ), node.name
    signature = Exificient(jvm, SCHEMAS / "xmldsig-core-schema.xsd")
    signed_info = message.child("Header").child("Signature").child("SignedInfo")
    element = tree.find(f"{{{MSG}}}Header/{{http://www.w3.org/2000/09/xmldsig#}}Signature")
    assert element is not None
    xml = ET.tostring(element[0], encoding="unicode")
    assert exi.encode_fragment([signed_info], v2.signature_grammars()) == signature.encode(
        xml, fragment=True
    )


# Written by hand, encoded by EXIficient, read by chargegrid: every datatype the schemas use.
FOREIGN = [
    f"""<m:V2G_Message xmlns:m="{MSG}" xmlns:h="{HDR}" xmlns:b="{BODY}">
    <m:Header><h:SessionID>0000000000000000</h:SessionID></m:Header>
    <m:Body><b:SessionSetupReq><b:EVCCID>010203040506</b:EVCCID></b:SessionSetupReq></m:Body>
    </m:V2G_Message>""",
    f"""<m:V2G_Message xmlns:m="{MSG}" xmlns:h="{HDR}" xmlns:b="{BODY}" xmlns:t="{TYPES}">
    <m:Header><h:SessionID>0A0B</h:SessionID></m:Header>
    <m:Body><b:ServiceDiscoveryRes><b:ResponseCode>OK</b:ResponseCode>
    <b:PaymentOptionList><t:PaymentOption>Contract</t:PaymentOption>
    <t:PaymentOption>ExternalPayment</t:PaymentOption></b:PaymentOptionList>
    <b:ChargeService><t:ServiceID>1</t:ServiceID><t:ServiceName>AC charging</t:ServiceName>
    <t:ServiceCategory>EVCharging</t:ServiceCategory><t:FreeService>true</t:FreeService>
    <t:SupportedEnergyTransferMode><t:EnergyTransferMode>AC_three_phase_core</t:EnergyTransferMode>
    </t:SupportedEnergyTransferMode></b:ChargeService></b:ServiceDiscoveryRes></m:Body>
    </m:V2G_Message>""",
    f"""<m:V2G_Message xmlns:m="{MSG}" xmlns:h="{HDR}" xmlns:b="{BODY}" xmlns:t="{TYPES}">
    <m:Header><h:SessionID>0A0B</h:SessionID></m:Header>
    <m:Body><b:PowerDeliveryReq><b:ChargeProgress>Start</b:ChargeProgress>
    <b:SAScheduleTupleID>1</b:SAScheduleTupleID><b:ChargingProfile>
    <t:ProfileEntry><t:ChargingProfileEntryStart>0</t:ChargingProfileEntryStart>
    <t:ChargingProfileEntryMaxPower><t:Multiplier>-3</t:Multiplier><t:Unit>W</t:Unit>
    <t:Value>-11000</t:Value></t:ChargingProfileEntryMaxPower>
    <t:ChargingProfileEntryMaxNumberOfPhasesInUse>3</t:ChargingProfileEntryMaxNumberOfPhasesInUse>
    </t:ProfileEntry></b:ChargingProfile></b:PowerDeliveryReq></m:Body></m:V2G_Message>""",
]


@pytest.mark.parametrize("xml", FOREIGN, ids=["session", "services", "power-delivery"])
def test_reads_what_exificient_writes(oracle: Exificient, xml: str) -> None:
    grammars = v2.message_grammars()
    data = oracle.encode(xml)
    tree = exi.decode(data, grammars)
    assert exi.encode(tree, grammars) == data
    assert oracle.encode(exi.to_xml(tree, grammars)) == data
