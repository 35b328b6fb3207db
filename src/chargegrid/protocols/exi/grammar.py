"""Schema-informed EXI grammars (W3C EXI 1.0, 8.5), built from XML Schemas.

The options are those ISO 15118 fixes: schema-informed, bit-packed, `strict` false, nothing
preserved. Each element's grammar is the grammar of its type: attribute uses sorted by name
(8.5.4.1.3), then the content model, with particles repeated by their occurrence bounds
(8.5.4.1.5) and substitution groups expanded (8.5.4.1.6). The proto-grammar is normalised by
removing epsilon productions and merging productions with the same terminal (8.5.4.2); event
codes follow 8.5.4.3. Non-strict grammars add productions for undeclared content on a second
level (8.5.4.4.1); this codec never writes them and refuses them when it reads, but they widen
the first level by one code, which is what matters for the bits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import xmlschema
from xmlschema.validators import (
    XsdAnyElement,
    XsdAtomicRestriction,
    XsdComplexType,
    XsdElement,
    XsdGroup,
)

from chargegrid.protocols.exi.bits import width
from chargegrid.protocols.exi.errors import ExiError

XS = "http://www.w3.org/2001/XMLSchema"
QName = tuple[str, str]  # (namespace URI, local name)


def _sort_key(qname: QName) -> tuple[str, str]:
    return (qname[1], qname[0])


def _split(name: str) -> QName:
    if name.startswith("{"):
        uri, _, local = name[1:].partition("}")
        return (uri, local)
    return ("", name)


@dataclass(frozen=True, slots=True)
class Datatype:
    """How a value is written (EXI 7.1): `kind` is binary, boolean, integer, unsigned, nbit,
    enum or string; `minimum`, `maximum` and `bits` serve n-bit integers, `values`
    enumerations."""

    kind: str
    minimum: int | None = None
    maximum: int | None = None
    bits: int = 0
    values: tuple[str, ...] = ()
    hex: bool = False  # hexBinary rather than base64Binary: only the lexical form differs
    # length facets of strings and binaries: not written, but V2G decoders have buffers this size
    min_length: int = 0
    max_length: int | None = None


STRING = Datatype("string")

_INT_BOUNDS: dict[str, tuple[int | None, int | None]] = {
    "integer": (None, None),
    "nonNegativeInteger": (0, None),
    "positiveInteger": (1, None),
    "nonPositiveInteger": (None, 0),
    "negativeInteger": (None, -1),
    "long": (-(2**63), 2**63 - 1),
    "int": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-128, 127),
    "unsignedLong": (0, 2**64 - 1),
    "unsignedInt": (0, 2**32 - 1),
    "unsignedShort": (0, 2**16 - 1),
    "unsignedByte": (0, 255),
}
_STRINGS = {
    "string",
    "normalizedString",
    "token",
    "language",
    "Name",
    "NCName",
    "NMTOKEN",
    "ID",
    "IDREF",
    "ENTITY",
    "anyURI",
}


def _facet(xsd_type: Any, name: str) -> Any:
    facet = xsd_type.facets.get(f"{{{XS}}}{name}") if xsd_type.facets else None
    return None if facet is None else facet.value


def _lengths(xsd_type: Any) -> tuple[int, int | None]:
    shortest, longest = 0, None
    node = xsd_type
    while node is not None:
        exact = _facet(node, "length")
        low = _facet(node, "minLength") if exact is None else exact
        high = _facet(node, "maxLength") if exact is None else exact
        if low is not None:
            shortest = max(shortest, int(low))
        if high is not None:
            longest = int(high) if longest is None else min(longest, int(high))
        node = node.base_type
    return shortest, longest


def datatype_of(xsd_type: Any) -> Datatype:
    """The EXI datatype representation of a simple type (EXI 7.1, Table 7-1)."""
    if getattr(xsd_type, "is_list", lambda: False)() or xsd_type.is_union():
        raise ExiError(f"list and union types ({xsd_type.name}) are not supported")
    enumeration = getattr(xsd_type, "enumeration", None)
    if enumeration:
        return Datatype("enum", bits=width(len(enumeration)), values=tuple(map(str, enumeration)))
    low: int | None = None
    high: int | None = None
    builtin = None
    shortest, longest = _lengths(xsd_type)
    node = xsd_type
    while node is not None:
        if isinstance(node, XsdAtomicRestriction) or node.facets:
            for facet, bound in (("minInclusive", 0), ("minExclusive", 1)):
                value = _facet(node, facet)
                if value is not None and not isinstance(value, (bytes, str)):
                    candidate = int(Decimal(value)) + bound
                    low = candidate if low is None else max(low, candidate)
            for facet, bound in (("maxInclusive", 0), ("maxExclusive", -1)):
                value = _facet(node, facet)
                if value is not None and not isinstance(value, (bytes, str)):
                    candidate = int(Decimal(value)) + bound
                    high = candidate if high is None else min(high, candidate)
        if node.name and node.name.startswith(f"{{{XS}}}"):
            local = node.name.split("}", 1)[1]
            if builtin is None and (local in _INT_BOUNDS or local in _STRINGS):
                builtin = local
            if local in ("base64Binary", "hexBinary"):
                return Datatype(
                    "binary", hex=local == "hexBinary", min_length=shortest, max_length=longest
                )
            if local == "boolean":
                return Datatype("boolean")
            if local in ("decimal", "float", "double") and builtin not in _INT_BOUNDS:
                raise ExiError(f"{xsd_type.name}: decimal and float values are not supported")
            if local in _INT_BOUNDS:
                floor, ceiling = _INT_BOUNDS[local]
                if floor is not None:
                    low = floor if low is None else max(low, floor)
                if ceiling is not None:
                    high = ceiling if high is None else min(high, ceiling)
        node = node.base_type
    if builtin in _INT_BOUNDS:
        if low is not None and high is not None and high - low < 4096:
            return Datatype("nbit", minimum=low, maximum=high, bits=width(high - low + 1))
        if low is not None and low >= 0:
            return Datatype("unsigned", minimum=low, maximum=high)
        return Datatype("integer", minimum=low, maximum=high)
    if builtin in _STRINGS:
        return Datatype("string", min_length=shortest, max_length=longest)
    raise ExiError(f"the type {xsd_type.name} is not supported")


@dataclass(slots=True)
class Production:
    """One first-level production: `event` is AT, SE, SE*, EE or CH."""

    event: str
    qname: QName | None = None
    datatype: Datatype | None = None
    element: ElementGrammar | None = None
    next: int | None = None


@dataclass(slots=True)
class State:
    productions: list[Production]
    bits: int = 0

    def find(self, event: str, qname: QName | None = None) -> tuple[int, Production] | None:
        for code, production in enumerate(self.productions):
            if production.event != event:
                continue
            if qname is None or production.qname == qname:
                return code, production
            if not qname[0] and production.qname and production.qname[1] == qname[1]:
                return code, production
        return None


@dataclass(slots=True)
class ElementGrammar:
    """The grammar of an element's type. A relaxed one (8.5.3, an element fragment whose name
    several declarations share with different types) has no states of its own."""

    name: str
    states: list[State] = field(default_factory=list)
    relaxed: bool = False
    # relaxed only: the attributes its declarations' types have, by local name
    attributes: dict[str, QName] = field(default_factory=dict)


_EPS = "eps"


class _Builder:
    """Builds proto-grammars as a graph of nodes; a node is a list of (event, data, target)."""

    def __init__(self, grammars: Grammars) -> None:
        self.grammars = grammars
        self.nodes: list[list[tuple[str, Any, int | None]]] = []

    def node(self) -> int:
        self.nodes.append([])
        return len(self.nodes) - 1

    def add(self, node: int, event: str, data: Any, target: int | None) -> None:
        self.nodes[node].append((event, data, target))

    def particle(self, particle: Any, cont: int) -> int:
        low = particle.min_occurs
        high = particle.max_occurs
        tail = cont
        if high is None:
            loop = self.node()
            start = self.term(particle, loop)
            self.add(loop, _EPS, None, start)
            self.add(start, _EPS, None, cont)
            tail = start
        else:
            for _ in range(high - low):
                start = self.term(particle, tail)
                self.add(start, _EPS, None, cont)
                tail = start
        for _ in range(low):
            tail = self.term(particle, tail)
        return tail

    def term(self, particle: Any, cont: int) -> int:
        if isinstance(particle, XsdElement):
            start = self.node()
            for member in self.grammars.substitutes(particle):
                self.add(start, "SE", member, cont)
            return start
        if isinstance(particle, XsdAnyElement):
            start = self.node()
            self.add(start, "SE*", None, cont)
            return start
        if isinstance(particle, XsdGroup):
            if particle.model == "choice":
                start = self.node()
                for child in particle:
                    self.add(start, _EPS, None, self.particle(child, cont))
                if not len(particle):
                    self.add(start, _EPS, None, cont)
                return start
            if particle.model == "all":
                raise ExiError("xs:all groups are not supported")
            tail = cont
            for child in reversed(list(particle)):
                tail = self.particle(child, tail)
            start = self.node()
            self.add(start, _EPS, None, tail)
            return start
        raise ExiError(f"unsupported particle {particle!r}")


def _order(production: Production) -> tuple[int, tuple[str, str]]:
    rank = {"AT": 0, "AT*": 2, "SE": 3, "SE*": 5, "EE": 6, "CH": 7}[production.event]
    if production.event == "AT" and production.qname:
        return (rank, _sort_key(production.qname))
    return (rank, ("", ""))


class Grammars:
    """All grammars of one schema set: global elements for documents, every element
    declaration for fragments (EXI 8.5.1 and 8.5.2)."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema
        self._by_type: dict[int, ElementGrammar] = {}
        self._pending: list[tuple[Any, ElementGrammar]] = []
        declared = [
            element
            for name, element in schema.maps.elements.items()
            if not name.startswith(f"{{{XS}}}")
        ]
        self.document: list[tuple[QName, ElementGrammar]] = sorted(
            ((_split(e.name), self.of(e)) for e in declared),
            key=lambda item: _sort_key(item[0]),
        )
        every: dict[QName, list[Any]] = {}
        for element in self._all_declarations(declared):
            every.setdefault(_split(element.name), []).append(element)
        fragment: list[tuple[QName, ElementGrammar]] = []
        for qname, elements in every.items():
            types = {id(e.type) for e in elements}
            if len(types) == 1:
                fragment.append((qname, self.of(elements[0])))
            else:
                relaxed = ElementGrammar(qname[1], relaxed=True)
                for element in elements:
                    for name in getattr(element.type, "attributes", None) or {}:
                        if name:
                            relaxed.attributes[_split(name)[1]] = _split(name)
                fragment.append((qname, relaxed))
        self.fragment = sorted(fragment, key=lambda item: _sort_key(item[0]))
        attributes: dict[QName, set[Datatype | None]] = {}
        for xsd_type in self._all_types(declared):
            for name, attribute in (getattr(xsd_type, "attributes", None) or {}).items():
                if name is None:
                    continue
                attributes.setdefault(_split(name), set()).add(datatype_of(attribute.type))
        self.attributes: list[tuple[QName, Datatype | None]] = sorted(
            (
                (q, next(iter(kinds)) if len(kinds) == 1 else None)
                for q, kinds in attributes.items()
            ),
            key=lambda item: _sort_key(item[0]),
        )
        self._finish()

    def substitutes(self, element: Any) -> list[Any]:
        """The element and every member of its substitution group, sorted by name. Abstract
        heads stay in, as EXIficient (whose grammars the V2G codecs were generated from) has
        them: they take an event code even though no instance may use it."""
        head = element.ref if getattr(element, "ref", None) is not None else element
        members = [head, *self._schema.maps.substitution_groups.get(head.name, ())]
        if len(members) > 1:
            members.sort(key=lambda m: _sort_key(_split(m.name)))
        return members

    def of(self, element: Any) -> ElementGrammar:
        """The grammar of an element declaration: that of its type, built once per type."""
        xsd_type = element.type
        grammar = self._by_type.get(id(xsd_type))
        if grammar is None:
            grammar = ElementGrammar(str(xsd_type.name or element.name))
            self._by_type[id(xsd_type)] = grammar
            self._pending.append((xsd_type, grammar))
        return grammar

    def _finish(self) -> None:
        while self._pending:
            xsd_type, grammar = self._pending.pop()
            grammar.states = self._build(xsd_type)

    def _all_declarations(self, roots: Iterable[Any]) -> list[Any]:
        found: list[Any] = []
        seen: set[int] = set()
        for xsd_type in self._all_types(roots):
            if isinstance(xsd_type, XsdComplexType) and isinstance(xsd_type.content, XsdGroup):
                for element in xsd_type.content.iter_elements():
                    if isinstance(element, XsdElement) and id(element) not in seen:
                        seen.add(id(element))
                        found.append(element.ref if element.ref is not None else element)
        for element in roots:
            if id(element) not in seen:
                seen.add(id(element))
                found.append(element)
        unique: dict[int, Any] = {id(e): e for e in found}
        return list(unique.values())

    def _all_types(self, roots: Iterable[Any]) -> list[Any]:
        types: dict[int, Any] = {}
        stack = [e.type for e in roots]
        stack += [t for n, t in self._schema.maps.types.items() if not n.startswith(f"{{{XS}}}")]
        while stack:
            xsd_type = stack.pop()
            if id(xsd_type) in types:
                continue
            types[id(xsd_type)] = xsd_type
            if isinstance(xsd_type, XsdComplexType) and isinstance(xsd_type.content, XsdGroup):
                for element in xsd_type.content.iter_elements():
                    if isinstance(element, XsdElement):
                        stack.append(element.type)
        return list(types.values())

    def _build(self, xsd_type: Any) -> list[State]:
        builder = _Builder(self)
        end = builder.node()
        builder.add(end, "EE", None, None)
        if xsd_type.is_simple():
            start = builder.node()
            builder.add(start, "CH", datatype_of(xsd_type), end)
            return self._normalise(builder, start)
        if xsd_type.has_simple_content():
            content = builder.node()
            builder.add(content, "CH", datatype_of(xsd_type.content), end)
        elif isinstance(xsd_type.content, XsdGroup) and len(xsd_type.content):
            first = len(builder.nodes)
            content = builder.particle(xsd_type.content, end)
            if xsd_type.mixed:
                for node in [*range(first, len(builder.nodes)), end]:
                    builder.add(node, "CH", None, node)
        else:
            content = end
            if xsd_type.mixed:
                builder.add(end, "CH", None, end)
        uses = [(name, use) for name, use in (xsd_type.attributes or {}).items() if name]
        if any(name is None for name in (xsd_type.attributes or {})):
            wildcard = builder.node()
            builder.add(wildcard, "AT*", None, wildcard)
            builder.add(wildcard, _EPS, None, content)
            content = wildcard
        for name, use in sorted(uses, key=lambda item: _sort_key(_split(item[0])), reverse=True):
            node = builder.node()
            builder.add(node, "AT", (_split(name), datatype_of(use.type)), content)
            if not use.is_required():
                builder.add(node, _EPS, None, content)
            content = node
        return self._normalise(builder, content)

    def _normalise(self, builder: _Builder, start: int) -> list[State]:
        """Epsilon elimination and merging of equal terminals (EXI 8.5.4.2), as a subset
        construction from the start node; then event codes (8.5.4.3)."""

        def closure(nodes: Iterable[int]) -> tuple[int, ...]:
            order: list[int] = []
            stack = list(reversed(list(nodes)))
            while stack:
                node = stack.pop()
                if node in order:
                    continue
                order.append(node)
                for event, _, target in reversed(builder.nodes[node]):
                    if event == _EPS and target is not None and target not in order:
                        stack.append(target)
            return tuple(order)

        index: dict[frozenset[int], int] = {}
        states: list[State] = []
        work: list[tuple[int, tuple[int, ...]]] = []

        def state_of(nodes: tuple[int, ...]) -> int:
            key = frozenset(nodes)
            if key not in index:
                index[key] = len(states)
                states.append(State([]))
                work.append((index[key], nodes))
            return index[key]

        state_of(closure([start]))
        while work:
            number, nodes = work.pop(0)
            grouped: dict[tuple[Any, ...], tuple[str, Any, list[int]]] = {}
            for node in nodes:
                for event, data, target in builder.nodes[node]:
                    if event == _EPS:
                        continue
                    if event == "SE":
                        key: tuple[Any, ...] = ("SE", _split(data.name))
                    elif event == "AT":
                        key = ("AT", data[0])
                    else:
                        key = (event,)
                    entry = grouped.setdefault(key, (event, data, []))
                    if target is not None and target not in entry[2]:
                        entry[2].append(target)
            productions: list[Production] = []
            for event, data, targets in grouped.values():
                following = state_of(closure(targets)) if targets else None
                if event == "SE":
                    productions.append(
                        Production("SE", _split(data.name), element=self.of(data), next=following)
                    )
                elif event == "AT":
                    productions.append(Production("AT", data[0], datatype=data[1], next=following))
                elif event == "CH":
                    productions.append(Production("CH", datatype=data, next=following))
                else:
                    productions.append(Production(event, next=following))
            productions.sort(key=_order)
            states[number].productions = productions
            states[number].bits = width(len(productions) + 1)
        return states


def load(xsd: Path) -> Grammars:
    """Grammars for the schema set rooted at `xsd`."""
    try:
        schema = xmlschema.XMLSchema10(str(xsd))
    except (xmlschema.XMLSchemaException, OSError) as exc:
        raise ExiError(f"cannot load {xsd.name}: {exc}") from exc
    return Grammars(schema)
