"""Generate typed msgspec models from the OCA OCPP JSON schemas.

Usage::

    python scripts/generate_messages.py [--version 1.6|2.0.1|2.1|all] [--schemas DIR] [--check]

By default the schemas are read from the installed ``ocpp`` package
(``ocpp/v16/schemas``, ``ocpp/v201/schemas``, ``ocpp/v21/schemas``), which ships the
Open Charge Alliance (OCA) JSON schemas unchanged.  ``--schemas`` reads them from a
directory instead (only with a single ``--version``).

Outputs (``--version all``, the default, renders every version that has one):

* OCPP 1.6   -> ``src/chargegrid/protocols/ocpp16/messages.py``
* OCPP 2.0.1 -> ``src/chargegrid/protocols/ocpp201/messages.py``
* OCPP 2.1   -> no committed output; ``--version 2.1`` prints the module to stdout.

``--check`` writes nothing and exits 1 when a committed file differs from what would
be generated (``render`` is also what ``tests/unit/protocols/test_generated_messages.py``
compares against).

How the JSON schema constructs map to Python (the OCA schemas use a small subset of
draft-04 / draft-06; any keyword outside that subset is rejected so that a schema
update cannot be silently mistranslated):

* ``type: object``  -> a ``msgspec.Struct`` (``kw_only``, ``omit_defaults``, and
  ``forbid_unknown_fields`` unless the object allows ``additionalProperties``).
* ``enum``          -> a ``typing.Literal[...]`` type alias.
* ``string``        -> ``str`` (``format: uri`` too); ``format: date-time`` -> ``datetime``.
* ``integer`` / ``number`` / ``boolean`` -> ``int`` / ``float`` / ``bool``.
* ``array``         -> ``list[...]``.
* no ``type``       -> ``typing.Any`` (any JSON value).
* ``maxLength``, ``minLength``, ``pattern``, ``minimum``, ``maximum``,
  ``exclusiveMinimum``/``exclusiveMaximum`` (draft-04 booleans and draft-06 numbers),
  integral ``multipleOf``, ``minItems``, ``maxItems`` -> ``Annotated[..., msgspec.Meta(...)]``
  (msgspec spells the array limits ``min_length``/``max_length``).
* required properties have no default; optional ones are ``X | None = None``.

Naming: messages are ``<Action>Request`` / ``<Action>Response``.  Named schema
``definitions`` keep their OCA name (``IdTokenType``, ``ChargingStateEnumType``).  OCPP
1.6 nests most objects and enums inline; those are named after the OCPP 1.6 data type
where the property is listed in ``OCPP16_TYPE_NAMES`` and after the property otherwise
(``meterValue`` -> ``MeterValue``, enum ``phase`` -> ``PhaseEnum``).  Structurally
identical types are emitted once; when differing types would get the same name, the
most widely used one keeps it and the others are prefixed with their action name
(``SendLocalListIdTagInfo``).
"""

import argparse
import dataclasses
import importlib.resources
import json
import keyword
import re
import sys
import textwrap
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec

REPO_ROOT = Path(__file__).resolve().parent.parent
LINE_LENGTH = 100
INDENT = "    "


# No ``from __future__ import annotations`` and no string annotations on dataclasses:
# dataclasses looks string annotations up in sys.modules, which fails when a test
# loads this file with importlib without registering it there.


@dataclasses.dataclass(frozen=True)
class Version:
    """Where one OCPP version's schemas live and where its module goes."""

    name: str
    package_dir: str  # sub-directory of the ``ocpp`` package holding ``schemas/``
    request_suffix: str  # file-name suffix of request schemas ("" for 1.6)
    output: Path | None  # committed module, relative to REPO_ROOT
    spec: str  # citation for the generated module's docstring


VERSIONS: dict[str, Version] = {
    "1.6": Version(
        name="1.6",
        package_dir="v16",
        request_suffix="",
        output=Path("src/chargegrid/protocols/ocpp16/messages.py"),
        spec=(
            "Open Charge Alliance, Open Charge Point Protocol 1.6 (edition 2), sections 6"
            " (Messages) and 7 (Types), and OCPP-J 1.6; the security messages are from"
            " 'Improved security for OCPP 1.6-J' (schema $id urn:OCPP:Cp:1.6:2020:3)."
        ),
    ),
    "2.0.1": Version(
        name="2.0.1",
        package_dir="v201",
        request_suffix="Request",
        output=Path("src/chargegrid/protocols/ocpp201/messages.py"),
        spec=(
            "Open Charge Alliance, OCPP 2.0.1 Part 2 - Specification, chapters"
            " 'Messages', 'Datatypes' and 'Enumerations'; Part 3 - JSON schemas"
            " ('OCPP 2.0.1 FINAL')."
        ),
    ),
    "2.1": Version(
        name="2.1",
        package_dir="v21",
        request_suffix="Request",
        output=None,
        spec=(
            "Open Charge Alliance, OCPP 2.1 Part 2 - Specification, chapters"
            " 'Messages', 'Datatypes' and 'Enumerations'; Part 3 - Schemas."
        ),
    ),
}

# OCPP 1.6 defines its data types in the specification text only; the JSON schemas
# inline them.  Key: "<container>.<property>", where the container is the message
# class (``StatusNotificationRequest``) or the name chosen for the enclosing inline
# object (``SampledValue``), and "*.<property>" matches any container.  Properties not
# listed are named after the property.  Every entry must match some schema property.
OCPP16_TYPE_NAMES: dict[str, str] = {
    # objects (OCPP 1.6 section 7 class names)
    "GetConfigurationResponse.configurationKey": "KeyValue",
    "SendLocalListRequest.localAuthorizationList": "AuthorizationData",
    "SetChargingProfileRequest.csChargingProfiles": "ChargingProfile",
    "StopTransactionRequest.transactionData": "MeterValue",
    # enumerations (OCPP 1.6 section 7 names, suffixed with "Enum")
    "BootNotificationResponse.status": "RegistrationStatusEnum",
    "CancelReservationResponse.status": "CancelReservationStatusEnum",
    "ChangeAvailabilityRequest.type": "AvailabilityTypeEnum",
    "ChangeAvailabilityResponse.status": "AvailabilityStatusEnum",
    "ChangeConfigurationResponse.status": "ConfigurationStatusEnum",
    "ClearCacheResponse.status": "ClearCacheStatusEnum",
    "ClearChargingProfileResponse.status": "ClearChargingProfileStatusEnum",
    "DataTransferResponse.status": "DataTransferStatusEnum",
    "DiagnosticsStatusNotificationRequest.status": "DiagnosticsStatusEnum",
    "FirmwareStatusNotificationRequest.status": "FirmwareStatusEnum",
    "GetCompositeScheduleResponse.status": "GetCompositeScheduleStatusEnum",
    "IdTagInfo.status": "AuthorizationStatusEnum",
    "RemoteStartTransactionResponse.status": "RemoteStartStopStatusEnum",
    "RemoteStopTransactionResponse.status": "RemoteStartStopStatusEnum",
    "ReserveNowResponse.status": "ReservationStatusEnum",
    "ResetRequest.type": "ResetTypeEnum",
    "ResetResponse.status": "ResetStatusEnum",
    "SampledValue.context": "ReadingContextEnum",
    "SampledValue.format": "ValueFormatEnum",
    "SampledValue.unit": "UnitOfMeasureEnum",
    "SendLocalListRequest.updateType": "UpdateTypeEnum",
    "SendLocalListResponse.status": "UpdateStatusEnum",
    "SetChargingProfileResponse.status": "ChargingProfileStatusEnum",
    "StatusNotificationRequest.errorCode": "ChargePointErrorCodeEnum",
    "StatusNotificationRequest.status": "ChargePointStatusEnum",
    "StopTransactionRequest.reason": "ReasonEnum",
    "TriggerMessageRequest.requestedMessage": "MessageTriggerEnum",
    "TriggerMessageResponse.status": "TriggerMessageStatusEnum",
    "UnlockConnectorResponse.status": "UnlockStatusEnum",
}

# Keywords that may appear in a schema node and need no translation.
IGNORED_KEYWORDS = frozenset(
    {"$schema", "$id", "id", "title", "comment", "description", "javaType", "definitions"}
)
# Names used inside annotations; a field with such a name would shadow it in the
# class body (annotations are evaluated eagerly, there is no ``from __future__``).
RESERVED_NAMES = frozenset(
    {"Annotated", "Any", "Literal", "bool", "datetime", "float", "int", "list", "msgspec", "str"}
)


class SchemaError(Exception):
    """A schema uses a construct the generator does not translate."""


# --------------------------------------------------------------------------------------
# Intermediate representation: what a schema node means, independent of naming.
# Equal IR == structurally identical type (descriptions are not part of it).
# --------------------------------------------------------------------------------------

MetaItems = tuple[tuple[str, object], ...]


class TypeIR:
    """Base class of the type nodes: ``Scalar``, ``ArrayOf`` and ``Named``."""

    __slots__ = ()


@dataclasses.dataclass(frozen=True)
class Scalar(TypeIR):
    """A JSON scalar: ``py`` is ``str``, ``int``, ``float``, ``bool``, ``datetime`` or ``Any``."""

    py: str
    meta: MetaItems = ()


@dataclasses.dataclass(frozen=True)
class ArrayOf(TypeIR):
    """A JSON array (``type: array`` with single-schema ``items``)."""

    item: TypeIR
    meta: MetaItems = ()


@dataclasses.dataclass(frozen=True)
class EnumShape:
    """A string ``enum``: the values in schema order, plus notes for the alias."""

    values: tuple[str, ...]
    notes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Prop:
    """One property of a ``type: object``."""

    wire: str
    type: TypeIR
    required: bool
    notes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class StructShape:
    """A ``type: object``: its properties and whether unknown properties are allowed."""

    props: tuple[Prop, ...]
    open: bool = False


@dataclasses.dataclass(frozen=True)
class Named(TypeIR):
    """A reference to an enum alias or struct; the final name is chosen later."""

    base: str
    shape: EnumShape | StructShape


@dataclasses.dataclass(frozen=True)
class Site:
    """Where a named type occurs (for naming, clash resolution and docstrings)."""

    message: str  # class name of the message, e.g. "AuthorizeResponse"
    action: str  # e.g. "Authorize"
    file: str  # schema file name
    origin: str  # "definition X" or "property x"
    description: str | None


@dataclasses.dataclass(frozen=True)
class Message:
    """One schema file: a request or response of an action."""

    action: str
    kind: Literal["Request", "Response"]
    file: str
    shape: StructShape
    description: str | None

    @property
    def class_name(self) -> str:
        return self.action + self.kind


# --------------------------------------------------------------------------------------
# Schema -> IR
# --------------------------------------------------------------------------------------


def pascal_case(name: str) -> str:
    """``idTagInfo`` -> ``IdTagInfo`` (the OCPP 1.6 inline-object naming rule)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)


_WORD = re.compile(
    r"SoC"  # state of charge, e.g. ``bulkSoC``
    r"|[A-Z][A-Z\d]*s?(?=[A-Z][a-z]|$)"  # acronyms: ``responderURL``, ``prioritizedEMAIDs``
    r"|[A-Z]?[a-z\d]+"  # words, digits stick to them: ``iso15118``, ``level1``
)


def snake_case(wire: str) -> str:
    """Python attribute name for a JSON property (``idTag`` -> ``id_tag``)."""
    words = [w.lower() for part in wire.split("_") for w in _WORD.findall(part)]
    if "".join(words) != re.sub(r"[_\W]", "", wire).lower():
        raise SchemaError(f"cannot split property name {wire!r} into words")
    name = "_".join(words)
    if keyword.iskeyword(name) or name in RESERVED_NAMES:
        name += "_"
    return name


def camel_encode_name(attr: str) -> str:
    """The wire name msgspec's ``rename="camel"`` gives attribute ``attr``."""
    struct = msgspec.defstruct("Probe", [(attr, int)], rename="camel")
    return msgspec.structs.fields(struct)[0].encode_name


def _check_keywords(node: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """Reject JSON-schema keywords this generator does not translate."""
    unknown = set(node) - allowed - IGNORED_KEYWORDS
    if unknown:
        raise SchemaError(f"{where}: unsupported schema keywords {sorted(unknown)}")


def _number(value: object, where: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(f"{where}: expected a number, got {value!r}")
    return int(value) if float(value).is_integer() else float(value)


class Converter:
    """Translates the schemas of one OCPP version into IR, recording named types."""

    def __init__(self, version: Version) -> None:
        self.version = version
        # (base name, shape) -> sites, in encounter order
        self.sites: dict[tuple[str, EnumShape | StructShape], list[Site]] = defaultdict(list)
        self.hints_used: set[str] = set()

    # -- messages ---------------------------------------------------------------------

    def message(self, path: Path) -> Message:
        """A top-level schema (``<Action>.json``/``<Action>Request.json``/``...Response.json``)."""
        stem = path.stem
        kind: Literal["Request", "Response"]
        if stem.endswith("Response"):
            kind, action = "Response", stem.removesuffix("Response")
        else:
            # 1.6 requests have no suffix; so has the OCPP 2.1 SEND message
            # NotifyPeriodicEventStream.json, a request that is never answered.
            kind, action = "Request", stem.removesuffix(self.version.request_suffix)
        schema = json.loads(path.read_text(encoding="utf-8"))
        msg_name = action + kind
        site = Site(msg_name, action, path.name, "message", schema.get("description"))
        if schema.get("type") != "object":
            raise SchemaError(f"{path.name}: top level is not an object")
        shape = self.object_shape(schema, msg_name, site, schema.get("definitions", {}))
        return Message(action, kind, path.name, shape, schema.get("description"))

    # -- nodes ------------------------------------------------------------------------

    def object_shape(
        self, node: Mapping[str, Any], container: str, site: Site, defs: Mapping[str, Any]
    ) -> StructShape:
        """``type: object`` with ``properties``/``required``/``additionalProperties``."""
        where = f"{site.file}: {container}"
        _check_keywords(node, {"type", "properties", "required", "additionalProperties"}, where)
        properties: Mapping[str, Any] = node.get("properties", {})
        required = node.get("required", [])
        missing = set(required) - set(properties)
        if missing:
            raise SchemaError(f"{where}: required but not defined: {sorted(missing)}")
        additional = node.get("additionalProperties", True)
        if additional not in (True, False):
            raise SchemaError(f"{where}: additionalProperties must be a boolean")
        props = []
        for wire, prop_node in properties.items():
            notes: list[str] = []
            type_ir = self.type_of(prop_node, container, wire, site, defs, notes)
            if "default" in prop_node:
                notes.append(f"schema default {json.dumps(prop_node['default'])} (absent -> None)")
            props.append(Prop(wire, type_ir, wire in required, tuple(notes)))
        return StructShape(tuple(props), open=additional is True)

    def type_of(
        self,
        node: Mapping[str, Any],
        container: str,
        prop: str,
        site: Site,
        defs: Mapping[str, Any],
        notes: list[str],
    ) -> TypeIR:
        """Any property or ``items`` schema; ``notes`` collects comments for the field."""
        where = f"{site.file}: {container}.{prop}"
        if "$ref" in node:
            _check_keywords(node, {"$ref"}, where)
            return self.ref(node["$ref"], container, prop, site, defs, notes)
        kind = node.get("type")
        if "enum" in node or kind == "object":  # inline (OCPP 1.6): named after the property
            site = dataclasses.replace(
                site, origin=f"property {prop}", description=node.get("description")
            )
        if "enum" in node:
            return self.named_enum(node, self.type_name(container, prop, enum=True), site, where)
        if kind == "object":
            base = self.type_name(container, prop, enum=False)
            return self.register(base, self.object_shape(node, base, site, defs), site)
        if kind == "array":
            return self.array(node, container, prop, site, defs, notes, where)
        if kind is None:
            _check_keywords(node, set(), where)
            notes.append("no `type` in the schema: any JSON value")
            return Scalar("Any")
        return self.scalar(node, where, notes)

    def ref(
        self,
        ref: str,
        container: str,
        prop: str,
        site: Site,
        defs: Mapping[str, Any],
        notes: list[str],
    ) -> TypeIR:
        """``$ref: #/definitions/X``: a named OCA definition keeps its name X."""
        match = re.fullmatch(r"#/definitions/([A-Za-z0-9_]+)", ref)
        if not match or match[1] not in defs:
            raise SchemaError(f"{site.file}: unresolvable $ref {ref!r}")
        name, node = match[1], defs[match[1]]
        def_site = dataclasses.replace(
            site, origin=f"definition {name}", description=node.get("description")
        )
        if "enum" in node:
            return self.named_enum(node, name, def_site, f"{site.file}: {name}")
        if node.get("type") == "object":
            shape = self.object_shape(node, name, def_site, defs)
            return self.register(name, shape, def_site)
        return self.type_of(node, container, prop, site, defs, notes)  # a plain scalar alias

    def named_enum(self, node: Mapping[str, Any], base: str, site: Site, where: str) -> Named:
        """``type: string`` + ``enum`` -> a ``Literal`` alias.

        (The 1.6 schemas put ``additionalProperties: false`` on enum strings; it means
        nothing there.)
        """
        _check_keywords(node, {"type", "enum", "default", "additionalProperties"}, where)
        values = node["enum"]
        if node.get("type") != "string" or not all(isinstance(v, str) for v in values):
            raise SchemaError(f"{where}: only string enums are supported")
        if len(set(values)) != len(values):
            raise SchemaError(f"{where}: duplicate enum values")
        notes: tuple[str, ...] = ()
        if "default" in node:
            notes = (f"schema default {json.dumps(node['default'])} (absent -> None)",)
        return self.register(base, EnumShape(tuple(values), notes), site)

    def array(
        self,
        node: Mapping[str, Any],
        container: str,
        prop: str,
        site: Site,
        defs: Mapping[str, Any],
        notes: list[str],
        where: str,
    ) -> ArrayOf:
        """``type: array`` with ``items``, ``minItems``, ``maxItems``.

        ``additionalItems`` only matters for tuple-form ``items`` (a list), which OCPP
        never uses, so it is ignored.
        """
        _check_keywords(node, {"type", "items", "minItems", "maxItems", "additionalItems"}, where)
        if not isinstance(node.get("items"), dict):
            raise SchemaError(f"{where}: array without a single `items` schema")
        item = self.type_of(node["items"], container, prop, site, defs, notes)
        meta: list[tuple[str, object]] = []
        for key, meta_key in (("minItems", "min_length"), ("maxItems", "max_length")):
            if key in node:
                meta.append((meta_key, _number(node[key], where)))
        return ArrayOf(item, tuple(meta))

    def scalar(self, node: Mapping[str, Any], where: str, notes: list[str]) -> Scalar:
        """``string`` (``format`` date-time/uri), ``integer``, ``number``, ``boolean``.

        ``additionalProperties`` on a string (OCPP 1.6 schemas) is meaningless and ignored.
        """
        kind = node.get("type")
        meta: list[tuple[str, object]] = []
        if kind == "string":
            _check_keywords(
                node,
                {
                    "type",
                    "format",
                    "maxLength",
                    "minLength",
                    "pattern",
                    "default",
                    "additionalProperties",
                },
                where,
            )
            fmt = node.get("format")
            if fmt == "date-time":
                if {"maxLength", "minLength", "pattern"} & set(node):
                    raise SchemaError(f"{where}: length limits on a date-time")
                return Scalar("datetime")
            if fmt not in (None, "uri"):
                raise SchemaError(f"{where}: unsupported string format {fmt!r}")
            if "pattern" in node:
                meta.append(("pattern", node["pattern"]))
            for key, meta_key in (("minLength", "min_length"), ("maxLength", "max_length")):
                if key in node:
                    meta.append((meta_key, _number(node[key], where)))
            return Scalar("str", tuple(meta))
        if kind in ("integer", "number"):
            return self.numeric(node, where, notes)
        if kind == "boolean":
            _check_keywords(node, {"type", "default"}, where)
            return Scalar("bool")
        raise SchemaError(f"{where}: unsupported type {kind!r}")

    def numeric(self, node: Mapping[str, Any], where: str, notes: list[str]) -> Scalar:
        """``integer``/``number`` with ``minimum``/``maximum`` (draft-04 boolean or
        draft-06 numeric ``exclusiveMinimum``/``exclusiveMaximum``) and ``multipleOf``."""
        _check_keywords(
            node,
            {
                "type",
                "default",
                "minimum",
                "maximum",
                "exclusiveMinimum",
                "exclusiveMaximum",
                "multipleOf",
            },
            where,
        )
        py = "int" if node["type"] == "integer" else "float"
        meta: list[tuple[str, object]] = []
        for bound, inclusive, exclusive, flag in (
            ("minimum", "ge", "gt", "exclusiveMinimum"),
            ("maximum", "le", "lt", "exclusiveMaximum"),
        ):
            if flag in node and not isinstance(node[flag], bool):  # draft-06: a number
                if bound in node:
                    raise SchemaError(f"{where}: both {bound} and {flag}")
                meta.append((exclusive, _number(node[flag], where)))
            if bound in node:
                strict = node.get(flag) is True  # draft-04: modifies `bound`
                meta.append((exclusive if strict else inclusive, _number(node[bound], where)))
        if "multipleOf" in node:
            step = _number(node["multipleOf"], where)
            if isinstance(step, int):
                meta.append(("multiple_of", step))
            else:
                # msgspec tests floats with fmod(), which fails for binary-inexact steps:
                # with multiple_of=0.1 even 1.0 and 0.3 are rejected.
                notes.append(
                    f"multipleOf {step} not enforced: float rounding would reject valid values"
                )
        return Scalar(py, tuple(meta))

    # -- naming -----------------------------------------------------------------------

    def type_name(self, container: str, prop: str, *, enum: bool) -> str:
        """Base name of an inline (OCPP 1.6 style) object or enum."""
        for key in (f"{container}.{prop}", f"*.{prop}"):
            if self.version.name == "1.6" and key in OCPP16_TYPE_NAMES:
                self.hints_used.add(key)
                return OCPP16_TYPE_NAMES[key]
        return pascal_case(prop) + ("Enum" if enum else "")

    def register(self, base: str, shape: EnumShape | StructShape, site: Site) -> Named:
        self.sites[(base, shape)].append(site)
        return Named(base, shape)


# --------------------------------------------------------------------------------------
# Naming: deduplicate, resolve clashes
# --------------------------------------------------------------------------------------


def assign_names(
    sites: Mapping[tuple[str, EnumShape | StructShape], Sequence[Site]], taken: set[str]
) -> dict[tuple[str, EnumShape | StructShape], str]:
    """Final Python names for every (base name, shape).

    One shape per base name: the base name.  Several: the shape used by the most
    messages (ties: the alphabetically first message) keeps it, the others are prefixed
    with the first action using them, or with the message class name if that is taken.
    """

    def rank(key: tuple[str, EnumShape | StructShape]) -> tuple[int, str]:
        messages = sorted({s.message for s in sites[key]})
        return (-len(messages), messages[0])

    by_base: dict[str, list[tuple[str, EnumShape | StructShape]]] = defaultdict(list)
    for key in sites:
        by_base[key[0]].append(key)
    names: dict[tuple[str, EnumShape | StructShape], str] = {}
    for base in sorted(by_base):
        keys = sorted(by_base[base], key=rank)
        for index, key in enumerate(keys):
            first = min(sites[key], key=lambda s: s.message)
            candidates = [base] if index == 0 else [first.action + base, first.message + base]
            name = next((c for c in candidates if c not in taken), None)
            if name is None:
                raise SchemaError(f"cannot find a free name for a variant of {base}")
            taken.add(name)
            names[key] = name
    return names


# --------------------------------------------------------------------------------------
# Rendering.  The output must be stable under ``ruff format`` (line length 100) without
# running ruff: short constructs go on one line, long ones are laid out the way ruff
# lays them out, using magic trailing commas where that pins the layout.
# --------------------------------------------------------------------------------------

RULE = "# " + "-" * 86


def fits(line: str) -> bool:
    return len(line) <= LINE_LENGTH


@dataclasses.dataclass(frozen=True)
class Annotation:
    """A field annotation: ``text``, and for ``Annotated[inner, meta]`` its two arguments."""

    text: str
    args: tuple[str, str] | None = None


def render_meta(meta: MetaItems) -> str:
    """``msgspec.Meta(...)`` with the keyword arguments in a fixed order."""
    order = ["ge", "gt", "le", "lt", "multiple_of", "pattern", "min_length", "max_length"]
    items = sorted(meta, key=lambda kv: order.index(kv[0]))
    return "msgspec.Meta(" + ", ".join(f"{k}={v!r}" for k, v in items) + ")"


def bracketed(
    head: str, items: Sequence[str], tail: str, indent: str = "", *, hug: bool = False
) -> list[str]:
    """``head[items]`` / ``head(items)`` on one line if it fits.  Otherwise, with ``hug``,
    all items on one line of their own (as ruff does when that fits), else one item per
    line with a magic trailing comma (which keeps ruff from joining the lines again)."""
    opening, closing = ("[", "]") if head.endswith(("Literal", "Annotated")) else ("(", ")")
    joined = ", ".join(items)
    one_line = f"{indent}{head}{opening}{joined}{closing}{tail}"
    if fits(one_line) or len(items) < 2:
        return [one_line]
    if hug and fits(f"{indent}{INDENT}{joined}"):
        return [f"{indent}{head}{opening}", f"{indent}{INDENT}{joined}", f"{indent}{closing}{tail}"]
    return [
        f"{indent}{head}{opening}",
        *(f"{indent}{INDENT}{item}," for item in items),
        f"{indent}{closing}{tail}",
    ]


def exploded(annotation: Annotation, indent: str) -> list[str]:
    """``Annotated[...]`` over several lines: the arguments on a line of their own."""
    assert annotation.args is not None
    lines = bracketed("Annotated", annotation.args, "", indent, hug=True)
    if len(lines) == 1:  # fits after all: the caller would not need to split it
        lines = [
            f"{indent}Annotated[",
            f"{indent}{INDENT}{', '.join(annotation.args)}",
            f"{indent}]",
        ]
    return lines


def field_lines(attr: str, annotation: Annotation, optional: bool, value: str | None) -> list[str]:
    """``attr: T = value``, laid out like ruff does when it is too long.  In order of
    preference:

    1. split the value's own parentheses: ``= msgspec.field(`` / arguments / ``)``;
    2. put the value in parentheses on a line of its own (even ``None``);
    3. an optional type in parentheses: ``attr: (`` / ``T | None`` / ``) = value``;
    4. a required ``Annotated[...]`` with its arguments on lines of their own.
    """
    text = annotation.text + (" | None" if optional else "")
    tail = f" = {value}" if value else ""
    first = f"{INDENT}{attr}: {text}"
    if fits(first + tail):
        return [first + tail]
    inner = INDENT * 2
    call = re.fullmatch(r"(msgspec\.field\()(.*)\)", value or "")
    if call and fits(f"{first} = {call[1]}") and fits(inner + call[2]):
        return [f"{first} = {call[1]}", inner + call[2], f"{INDENT})"]
    if value and fits(f"{first} = (") and fits(inner + value):
        return [f"{first} = (", inner + value, f"{INDENT})"]
    first = f"{INDENT}{attr}: "
    if optional:
        if fits(inner + text):
            body = [inner + text]
        elif fits(inner + annotation.text) or annotation.args is None:
            body = [inner + annotation.text, inner + "| None"]
        else:
            body = [*exploded(annotation, inner), inner + "| None"]
        return [first + "(", *body, f"{INDENT}){tail}"]
    if annotation.args is None:
        raise SchemaError(f"cannot lay out field {attr!r} within {LINE_LENGTH} columns")
    lines = exploded(annotation, INDENT)
    return [first + lines[0].lstrip(), *lines[1:-1], lines[-1] + tail]


def comment_lines(note: str, indent: str) -> list[str]:
    width = LINE_LENGTH - len(indent) - 2
    return [f"{indent}# {line}" for line in textwrap.wrap(note, width)]


def docstring(text: str, indent: str) -> list[str]:
    """A docstring wrapped to the line length.

    OCA descriptions use CRLF line breaks and put the data type name and its
    ``urn:x-oca`` id on lines of their own; line breaks are kept, spacing is normalised.
    """
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    lines = [line for i, line in enumerate(lines) if line or (i and lines[i - 1])]
    one_line = f'{indent}"""{lines[0]}"""'
    if len(lines) == 1 and fits(one_line) and not lines[0].endswith('"'):
        return [one_line]
    out: list[str] = []
    for line in lines:
        prefix = indent if out else indent + '"""'
        wrapped = textwrap.wrap(
            line,
            LINE_LENGTH - 3,  # a single wrapped line would be joined with the closing quotes
            initial_indent=prefix,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
        out += wrapped or [""]
    if len(out) == 1:  # one unbreakable word: ruff puts it on the same line
        return [out[0] + '"""']
    return [*out, f'{indent}"""']


class Renderer:
    """Turns IR plus final names into Python source lines."""

    def __init__(self, names: Mapping[tuple[str, EnumShape | StructShape], str]) -> None:
        self.names = names
        self.imported: set[str] = set()  # names the module must import

    def name(self, named: Named) -> str:
        return self.names[(named.base, named.shape)]

    def annotation(self, type_ir: TypeIR) -> Annotation:
        """The annotation of a field type (without ``| None``)."""
        if isinstance(type_ir, Named):
            return Annotation(self.name(type_ir))
        if isinstance(type_ir, Scalar):
            inner, meta = type_ir.py, type_ir.meta
            if inner in ("Any", "datetime"):
                self.imported.add(inner)
        elif isinstance(type_ir, ArrayOf):
            inner, meta = f"list[{self.annotation(type_ir.item).text}]", type_ir.meta
        else:
            raise TypeError(type_ir)
        if not meta:
            return Annotation(inner)
        self.imported.add("Annotated")
        args = (inner, render_meta(meta))
        return Annotation(f"Annotated[{', '.join(args)}]", args)

    def dependencies(self, type_ir: TypeIR) -> Iterator[str]:
        """Struct names a field type refers to (enums are aliases defined up front)."""
        if isinstance(type_ir, ArrayOf):
            yield from self.dependencies(type_ir.item)
        elif isinstance(type_ir, Named) and isinstance(type_ir.shape, StructShape):
            yield self.name(type_ir)

    def enum(self, name: str, shape: EnumShape) -> list[str]:
        """``Name = Literal["A", "B"]`` (an OCPP enumeration)."""
        self.imported.add("Literal")
        lines = [line for note in shape.notes for line in comment_lines(note, "")]
        return lines + bracketed(f"{name} = Literal", [json.dumps(v) for v in shape.values], "")

    def struct(self, name: str, shape: StructShape, doc: str) -> list[str]:
        """A ``msgspec.Struct`` for an object schema.

        ``rename="camel"`` maps snake_case attributes to the camelCase wire names; a
        property whose name does not survive that round trip (``responderURL``,
        ``bulkSoC``) gets an explicit ``msgspec.field(name=...)``.
        """
        attrs = {p.wire: snake_case(p.wire) for p in shape.props}
        if len(set(attrs.values())) != len(attrs):
            raise SchemaError(f"{name}: two properties map to the same attribute name")
        explicit = {w for w, a in attrs.items() if camel_encode_name(a) != w}
        options = ["msgspec.Struct", "kw_only=True"]
        if not shape.open:
            options.append("forbid_unknown_fields=True")
        options.append("omit_defaults=True")
        if any(a != w for w, a in attrs.items() if w not in explicit):
            options.append('rename="camel"')
        if shape.open:
            doc += (
                "\n\nThe schema allows additional properties here: unknown properties are"
                " accepted and dropped when decoding."
            )
        lines = bracketed(f"class {name}", options, ":", hug=True)
        lines += docstring(doc, INDENT)
        if shape.props:
            lines.append("")
        # kw_only: order does not matter; required first reads best.
        for prop in sorted(shape.props, key=lambda p: not p.required):
            attr = attrs[prop.wire]
            wire_name = prop.wire if prop.wire in explicit else None
            lines += [line for note in prop.notes for line in comment_lines(note, INDENT)]
            lines += self.field(attr, prop, wire_name)
        return lines

    def field(self, attr: str, prop: Prop, wire_name: str | None) -> list[str]:
        """``attr: T``, ``attr: T | None = None``, or with ``msgspec.field(name=...)``."""
        annotation = self.annotation(prop.type)
        if prop.required:
            value = f'msgspec.field(name="{wire_name}")' if wire_name else None
            return field_lines(attr, annotation, False, value)
        value = f'msgspec.field(default=None, name="{wire_name}")' if wire_name else "None"
        # `Any` already includes None.
        return field_lines(attr, annotation, annotation.text != "Any", value)


# --------------------------------------------------------------------------------------
# Module assembly
# --------------------------------------------------------------------------------------


def schema_files(schema_dir: Path) -> list[Path]:
    files = sorted(schema_dir.glob("*.json"))
    if not files:
        raise SchemaError(f"no *.json schemas in {schema_dir}")
    return files


def render(version: str, schema_dir: Path) -> str:
    """The generated module for OCPP ``version`` from the schemas in ``schema_dir``."""
    target = VERSIONS[version]
    converter = Converter(target)
    files = schema_files(schema_dir)
    messages = sorted((converter.message(p) for p in files), key=lambda m: m.class_name)
    if target.name == "1.6":
        stale = set(OCPP16_TYPE_NAMES) - converter.hints_used
        if stale:
            raise SchemaError(f"OCPP16_TYPE_NAMES entries matching no property: {sorted(stale)}")
    taken = {m.class_name for m in messages}
    if len(taken) != len(messages):
        raise SchemaError("two schema files define the same message")
    names = assign_names(converter.sites, taken)
    renderer = Renderer(names)
    enums = sorted((n, k[1]) for k, n in names.items() if isinstance(k[1], EnumShape))
    structs = {n: k for k, n in names.items() if isinstance(k[1], StructShape)}

    out = ["", RULE, "# Enumerations", RULE]
    for name, enum in enums:
        out += ["", *renderer.enum(name, enum)]
    out += ["", "", RULE, "# Data types", RULE]
    for name in struct_order(structs, renderer):
        base, shape = structs[name]
        assert isinstance(shape, StructShape)
        out += ["", "", *renderer.struct(name, shape, type_doc(converter.sites[(base, shape)]))]
    out += ["", "", RULE, "# Messages", RULE]
    for message in messages:
        doc = message_doc(target, message)
        out += ["", "", *renderer.struct(message.class_name, message.shape, doc)]
    out += ["", "", *action_tables(messages)]
    return "\n".join([*header(target, files, renderer.imported), *out]) + "\n"


def struct_order(
    structs: Mapping[str, tuple[str, EnumShape | StructShape]], renderer: Renderer
) -> list[str]:
    """Alphabetical, except that the structs a struct uses come before it."""
    order: dict[str, None] = {}
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise SchemaError(f"recursive type {name} would need forward references")
        visiting.add(name)
        shape = structs[name][1]
        assert isinstance(shape, StructShape)
        for prop in shape.props:
            for dependency in sorted(renderer.dependencies(prop.type)):
                visit(dependency)
        order[name] = None

    for name in sorted(structs):
        visit(name)
    return list(order)


def type_doc(sites: Sequence[Site]) -> str:
    """Docstring of a data type: the OCA description, else where the type comes from."""
    description = next((s.description for s in sites if s.description), None)
    if description:
        return description
    files = sorted({s.file for s in sites})
    where = ", ".join(files) if len(files) <= 6 else f"{len(files)} schemas"
    kind, _, name = sites[0].origin.partition(" ")
    return f"The {kind} ``{name}`` in {where}."


def message_doc(target: Version, message: Message) -> str:
    doc = f"OCPP {target.name} {message.action} {message.kind.lower()} ({message.file})."
    if message.description:
        doc += "\n\n" + message.description
    return doc


def header(target: Version, files: Sequence[Path], imported: set[str]) -> list[str]:
    """Module docstring and imports."""
    doc = [
        f'"""OCPP {target.name} message payloads (OCPP-J CALL/CALLRESULT) as msgspec Structs.',
        "",
        f"Generated by scripts/generate_messages.py from the OCA OCPP {target.name} JSON schemas",
        f"({len(files)} files). DO NOT EDIT: change the generator and run it again;",
        "tests/unit/protocols/test_generated_messages.py fails when this file drifts.",
        "",
        *textwrap.wrap(f"Spec: {target.spec}", LINE_LENGTH),
        "",
        *textwrap.wrap(
            "Optional properties are None when absent and are left out when encoding;"
            " schema defaults are noted in comments but not applied.",
            LINE_LENGTH,
        ),
        '"""',
    ]
    imports = ["from datetime import datetime"] if "datetime" in imported else []
    typing_names = sorted(imported & {"Annotated", "Any", "Literal"})
    if typing_names:
        imports.append(f"from typing import {', '.join(typing_names)}")
    return [*doc, "", *imports, "", "import msgspec"]


def action_tables(messages: Sequence[Message]) -> list[str]:
    """``ACTIONS`` (request/response pairs) and ``SEND_ONLY`` (requests never answered)."""
    requests = {m.action for m in messages if m.kind == "Request"}
    responses = {m.action for m in messages if m.kind == "Response"}
    if responses - requests:
        raise SchemaError(f"responses without a request: {sorted(responses - requests)}")
    lines = ["ACTIONS: dict[str, tuple[type[msgspec.Struct], type[msgspec.Struct]]] = {"]
    for action in sorted(requests & responses):
        lines += bracketed(f'"{action}": ', [f"{action}Request", f"{action}Response"], ",", INDENT)
    lines += ["}", "", "# Actions whose request is never answered (OCPP 2.1 SEND messages)."]
    send_only = sorted(requests - responses)
    lines += ["SEND_ONLY: dict[str, type[msgspec.Struct]] = {" + ("" if send_only else "}")]
    if send_only:
        lines += [f'{INDENT}"{action}": {action}Request,' for action in send_only] + ["}"]
    return lines


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def default_schema_dir(version: str) -> Path:
    """The schemas shipped by the installed ``ocpp`` package."""
    path = Path(str(importlib.resources.files("ocpp"))) / VERSIONS[version].package_dir / "schemas"
    if not path.is_dir():
        raise SchemaError(f"{path} is not a directory")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", choices=[*VERSIONS, "all"], default="all")
    parser.add_argument("--schemas", type=Path, help="schema directory (single --version only)")
    parser.add_argument("--check", action="store_true", help="write nothing, exit 1 on drift")
    args = parser.parse_args(argv)

    if args.version == "all":
        if args.schemas:
            parser.error("--schemas needs a single --version")
        versions = [v for v, t in VERSIONS.items() if t.output]
    else:
        versions = [args.version]

    status = 0
    for version in versions:
        try:
            text = render(version, args.schemas or default_schema_dir(version))
        except SchemaError as exc:
            parser.exit(2, f"OCPP {version}: {exc}\n")
        output = VERSIONS[version].output
        if output is None:
            if args.check:
                parser.error(f"OCPP {version} has no committed module to check")
            sys.stdout.write(text)
            continue
        path = REPO_ROOT / output
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if args.check:
            if current != text:
                print(f"{output} is out of date: run scripts/generate_messages.py", file=sys.stderr)
                status = 1
        elif current != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {output}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
