"""EXI bodies and fragments (W3C EXI 1.0, 8.4 and 8.5.2) written and read through schema-informed
grammars: event codes (6.2), typed values (7.1) and the value string table (7.3)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from chargegrid.protocols.exi.bits import BitReader, BitWriter, width
from chargegrid.protocols.exi.errors import ExiError
from chargegrid.protocols.exi.grammar import (
    STRING,
    Datatype,
    ElementGrammar,
    Grammars,
    QName,
    State,
)

# Distinguishing bits 10, no options document, final version 1 (EXI 5): the header ISO 15118 uses.
HEADER = 0x80
_MAX_DEPTH = 64


@dataclass(slots=True)
class Node:
    """An element: its local name, simple content (bytes, int, bool or str), attributes by
    local name and child elements in order. `ns` is filled when decoding."""

    name: str
    value: Any = None
    attrs: dict[str, Any] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    ns: str = ""

    def child(self, name: str) -> Node:
        for child in self.children:
            if child.name == name:
                return child
        raise ExiError(f"{self.name} has no {name}")

    def find(self, name: str) -> Node | None:
        return next((c for c in self.children if c.name == name), None)


class _Strings:
    """The value partitions of the string table (EXI 7.3.3): one global, one per qualified name."""

    def __init__(self) -> None:
        self.global_values: dict[str, int] = {}
        self.global_list: list[str] = []
        self.local: dict[QName, list[str]] = {}

    def add(self, qname: QName, value: str) -> None:
        if not value:
            return
        self.global_values.setdefault(value, len(self.global_list))
        if self.global_values[value] == len(self.global_list):
            self.global_list.append(value)
        self.local.setdefault(qname, []).append(value)


class _Writer:
    def __init__(self, grammars: Grammars, xml: list[str] | None = None) -> None:
        self.grammars = grammars
        self.out = BitWriter()
        self.out.bits(HEADER, 8)
        self.xml = xml
        self.prefixes: dict[str, str] = {}

    def code(self, state: State, event: str, qname: QName | None, where: str) -> Any:
        found = state.find(event, qname)
        if found is None:
            what = f"{event} {qname[1]}" if qname else event
            allowed = ", ".join(p.qname[1] if p.qname else p.event for p in state.productions)
            raise ExiError(f"{where}: {what} is not allowed here (allowed: {allowed})")
        self.out.bits(found[0], state.bits)
        return found[1]

    def element(self, node: Node, qname: QName, grammar: ElementGrammar, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise ExiError("elements are nested too deeply")
        if grammar.relaxed:
            self.relaxed(node, qname, grammar, depth)
            return
        state = grammar.states[0]
        if self.xml is not None:
            self.xml.append(f"<{self.tag(qname)}")
        for name in sorted(node.attrs):
            production = self.code(state, "AT", ("", name), node.name)
            assert production.qname is not None and production.next is not None
            self.value(node.attrs[name], production.datatype or STRING, production.qname)
            if self.xml is not None:
                text = (
                    _text(node.attrs[name], production.datatype)
                    .replace("&", "&amp;")
                    .replace('"', "&quot;")
                )
                self.xml.append(f' {self.tag(production.qname)}="{text}"')
            state = grammar.states[production.next]
        if self.xml is not None:
            self.xml.append(">")
        if node.value is not None:
            production = self.code(state, "CH", None, node.name)
            assert production.next is not None
            self.value(node.value, production.datatype or STRING, qname)
            if self.xml is not None:
                text = _text(node.value, production.datatype)
                self.xml.append(text.replace("&", "&amp;").replace("<", "&lt;"))
            state = grammar.states[production.next]
        for child in node.children:
            production = self.code(state, "SE", (child.ns, child.name), node.name)
            assert production.qname is not None and production.element is not None
            self.element(child, production.qname, production.element, depth + 1)
            assert production.next is not None
            state = grammar.states[production.next]
        self.code(state, "EE", None, node.name)
        if self.xml is not None:
            self.xml.append(f"</{self.tag(qname)}>")

    def tag(self, qname: QName) -> str:
        if not qname[0]:
            return qname[1]
        prefix = self.prefixes.setdefault(qname[0], f"ns{len(self.prefixes)}")
        return f"{prefix}:{qname[1]}"

    def relaxed(self, node: Node, qname: QName, grammar: ElementGrammar, depth: int) -> None:
        """The schema-informed element fragment grammar (EXI 8.5.3), for a name declared with
        several types: any declared attribute, untyped character content."""
        attributes = self.grammars.attributes
        elements = self.grammars.fragment
        first = width(len(attributes) + len(elements) + 4 + 1)
        rest = width(len(elements) + 3 + 1)
        for name in sorted(node.attrs):
            wanted = grammar.attributes.get(name)
            index = next((i for i, (q, _) in enumerate(attributes) if q == wanted), None)
            if index is None:
                raise ExiError(f"{node.name}: no attribute {name} is declared")
            self.out.bits(index, first)
            attribute, datatype = attributes[index]
            self.value(node.attrs[name], datatype or STRING, attribute)
        content = False
        if node.value is not None:
            self.out.bits(len(attributes) + len(elements) + 3, first)
            self.value(str(node.value), STRING, qname)
            content = True
        for child in node.children:
            index = _find(elements, child)
            if index is None:
                raise ExiError(f"{node.name}: no element {child.name} is declared")
            if content:
                self.out.bits(index, rest)
            else:
                self.out.bits(len(attributes) + 1 + index, first)
            self.element(child, elements[index][0], elements[index][1], depth + 1)
            content = True
        if content:
            self.out.bits(len(elements) + 1, rest)
        else:
            self.out.bits(len(attributes) + len(elements) + 2, first)

    def value(self, value: Any, datatype: Datatype, qname: QName) -> None:
        kind = datatype.kind
        try:
            if kind == "binary":
                data = bytes(value)
                _check_length(len(data), datatype)
                self.out.unsigned(len(data))
                self.out.raw(data)
            elif kind == "boolean":
                if not isinstance(value, bool):
                    raise TypeError("not a boolean")
                self.out.bits(int(value), 1)
            elif kind in ("nbit", "unsigned", "integer"):
                number = _integer(value)
                _check_range(number, datatype)
                if kind == "nbit":
                    self.out.bits(number - (datatype.minimum or 0), datatype.bits)
                elif kind == "unsigned":
                    self.out.unsigned(number)
                else:
                    self.out.integer(number)
            elif kind == "enum":
                self.out.bits(datatype.values.index(str(value)), datatype.bits)
            else:
                _check_length(len(str(value)), datatype)
                self.string(str(value), qname)
        except (TypeError, ValueError) as exc:
            raise ExiError(f"{qname[1]}: {value!r} is not a valid {kind} value ({exc})") from exc

    def string(self, text: str, qname: QName) -> None:
        """Always as a string literal, never a table hit: the V2G codecs cars carry (OpenV2G
        and its successors) keep no string table and refuse hits, so ISO 15118 encoders write
        as if valuePartitionCapacity were 0."""
        self.out.unsigned(len(text) + 2)
        self.out.characters(text)


def _find(declared: list[tuple[QName, ElementGrammar]], node: Node) -> int | None:
    """The index of ``node``'s element among ``declared``: by namespace and name when the node
    has a namespace, else by name alone if only one namespace declares it."""
    if node.ns:
        return next((i for i, (q, _) in enumerate(declared) if q == (node.ns, node.name)), None)
    found = [i for i, (q, _) in enumerate(declared) if q[1] == node.name]
    if len(found) > 1:
        raise ExiError(f"{node.name} is declared in several namespaces: give its namespace")
    return found[0] if found else None


def _check_range(number: int, datatype: Datatype) -> None:
    if (datatype.minimum is not None and number < datatype.minimum) or (
        datatype.maximum is not None and number > datatype.maximum
    ):
        raise ValueError(f"{number} is out of range")


def _check_length(length: int, datatype: Datatype) -> None:
    if length < datatype.min_length or (
        datatype.max_length is not None and length > datatype.max_length
    ):
        high = "" if datatype.max_length is None else datatype.max_length
        raise ValueError(f"length {length} is outside {datatype.min_length}..{high}")


def _text(value: Any, datatype: Datatype | None) -> str:
    if isinstance(value, (bytes, bytearray)):
        return (
            value.hex().upper() if datatype and datatype.hex else base64.b64encode(value).decode()
        )
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not an integer")
    return value


class _Reader:
    def __init__(self, data: bytes, grammars: Grammars) -> None:
        self.grammars = grammars
        self.input = BitReader(data)
        if self.input.bits(8) != HEADER:
            raise ExiError("not an EXI body with the ISO 15118 header (0x80)")
        self.strings = _Strings()

    def code(self, state: State, where: str) -> Any:
        code = self.input.bits(state.bits)
        if code >= len(state.productions):
            raise ExiError(f"{where}: undeclared content (event code {code}) is not supported")
        return state.productions[code]

    def element(self, qname: QName, grammar: ElementGrammar, depth: int) -> Node:
        if depth > _MAX_DEPTH:
            raise ExiError("elements are nested too deeply")
        if grammar.relaxed:
            raise ExiError(f"{qname[1]}: relaxed element fragments are not read")
        node = Node(qname[1], ns=qname[0])
        state = grammar.states[0]
        while True:
            production = self.code(state, node.name)
            if production.event == "EE":
                return node
            if production.event == "AT":
                node.attrs[production.qname[1]] = self.value(
                    production.datatype or STRING, production.qname
                )
            elif production.event == "CH":
                if production.datatype is None:
                    raise ExiError(f"{node.name}: mixed content is not supported")
                node.value = self.value(production.datatype, qname)
            elif production.event == "SE":
                node.children.append(self.element(production.qname, production.element, depth + 1))
            else:
                raise ExiError(f"{node.name}: wildcard content is not supported")
            state = grammar.states[production.next]

    def value(self, datatype: Datatype, qname: QName) -> Any:
        kind = datatype.kind
        if kind == "binary":
            length = self.input.unsigned()
            self.length(length, datatype, qname)
            return self.input.raw(length)
        if kind == "boolean":
            return bool(self.input.bits(1))
        if kind in ("nbit", "unsigned", "integer"):
            if kind == "nbit":
                number = (datatype.minimum or 0) + self.input.bits(datatype.bits)
            else:
                number = self.input.unsigned() if kind == "unsigned" else self.input.integer()
            try:
                _check_range(number, datatype)
            except ValueError as exc:
                raise ExiError(f"{qname[1]}: {exc}") from exc
            return number
        if kind == "enum":
            index = self.input.bits(datatype.bits)
            if index >= len(datatype.values):
                raise ExiError(f"{qname[1]}: enumeration index {index} is out of range")
            return datatype.values[index]
        text = self.string(qname)
        self.length(len(text), datatype, qname)
        return text

    def length(self, length: int, datatype: Datatype, qname: QName) -> None:
        try:
            _check_length(length, datatype)
        except ValueError as exc:
            raise ExiError(f"{qname[1]}: {exc}") from exc

    def string(self, qname: QName) -> str:
        length = self.input.unsigned()
        if length == 0:
            local = self.strings.local.get(qname, [])
            index = self.input.bits(width(len(local)))
            if index >= len(local):
                raise ExiError(f"{qname[1]}: string table miss")
            return local[index]
        if length == 1:
            index = self.input.bits(width(len(self.strings.global_list)))
            if index >= len(self.strings.global_list):
                raise ExiError(f"{qname[1]}: string table miss")
            return self.strings.global_list[index]
        text = self.input.characters(length - 2)
        self.strings.add(qname, text)
        return text


def encode(root: Node, grammars: Grammars) -> bytes:
    """An EXI document of one root element (EXI 8.5.1: the global elements, sorted by name)."""
    writer = _Writer(grammars)
    document = grammars.document
    index = _find(document, root)
    if index is None:
        raise ExiError(f"{root.name} is not a global element of the schema")
    writer.out.bits(index, width(len(document) + 1))
    writer.element(root, document[index][0], document[index][1], 0)
    return writer.out.getvalue()


def to_xml(root: Node, grammars: Grammars) -> str:
    """The XML of a tree the schema allows, with its namespaces: for logs and for checking
    against other EXI implementations."""
    parts: list[str] = []
    writer = _Writer(grammars, parts)
    document = grammars.document
    index = _find(document, root)
    if index is None:
        raise ExiError(f"{root.name} is not a global element of the schema")
    writer.element(root, document[index][0], document[index][1], 0)
    declarations = "".join(f' xmlns:{p}="{uri}"' for uri, p in writer.prefixes.items())
    first = parts[0]
    parts[0] = first + declarations
    return "".join(parts)


def encode_fragment(nodes: list[Node], grammars: Grammars) -> bytes:
    """An EXI fragment (EXI 8.5.2): every declared element may appear, in any number; this is
    what ISO 15118-2 signs (V2G2-771)."""
    writer = _Writer(grammars)
    fragment = grammars.fragment
    bits = width(len(fragment) + 2)
    for node in nodes:
        index = _find(fragment, node)
        if index is None:
            raise ExiError(f"{node.name} is not an element of the schema")
        writer.out.bits(index, bits)
        writer.element(node, fragment[index][0], fragment[index][1], 0)
    writer.out.bits(len(fragment) + 1, bits)
    return writer.out.getvalue()


def decode(data: bytes, grammars: Grammars) -> Node:
    """The root element of an EXI document."""
    reader = _Reader(data, grammars)
    document = grammars.document
    index = reader.input.bits(width(len(document) + 1))
    if index >= len(document):
        raise ExiError("the document's root is not a global element of the schema")
    return reader.element(document[index][0], document[index][1], 0)
