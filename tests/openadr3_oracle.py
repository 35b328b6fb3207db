"""The OpenADR 3 OpenAPI files in /work/shared/specs as a test oracle: JSON Schema validators for
their component schemas, and example objects built from the examples the YAML gives element by
element. Never shipped; tests that need the files skip with the reason when they are missing.

OpenAPI 3.0 schema objects are read as JSON Schema draft 4 (whose boolean ``exclusiveMaximum``
the ``problem`` schema uses), with ``nullable: true`` turned into a ``null`` alternative.
``format: date-time`` is checked as RFC 3339 (jsonschema needs a package this venv lacks).
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPECS = Path(__file__).parents[2] / "shared/specs/openadr/3.x"
VERSIONS = ("3.0.1", "3.1.0")
_RFC3339 = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt ]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)"
    r"(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)"
)
FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time")
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or _RFC3339.fullmatch(value) is not None


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: an example ``2023-06-15T09:30:00Z`` stays a string."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def skip_without_specs() -> None:
    if not (SPECS / "3.0.1/openadr3.yaml").is_file():
        pytest.skip(f"the OpenADR 3 OpenAPI files (test oracle) are not at {SPECS}")


def _nullable(node: Any) -> Any:
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items()}
    if out.pop("nullable", False) is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            return {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def document(version: str = "3.0.1") -> dict[str, Any]:
    skip_without_specs()
    raw = yaml.load((SPECS / version / "openadr3.yaml").read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader
    return dict(_nullable(raw))


@functools.cache
def _registry(version: str) -> Registry[Any]:
    resource = Resource(contents=document(version), specification=DRAFT4)
    return Registry().with_resource(f"urn:openadr3:{version}", resource)


def validator(name: str, version: str = "3.0.1") -> jsonschema.Draft4Validator:
    """A validator of ``components/schemas/<name>``."""
    schema = {"$ref": f"urn:openadr3:{version}#/components/schemas/{name}"}
    return jsonschema.Draft4Validator(schema, registry=_registry(version), format_checker=FORMATS)


def errors(name: str, instance: Any, version: str = "3.0.1") -> list[str]:
    """What is wrong with ``instance`` as a ``name`` object; [] when it is valid."""
    found = validator(name, version).iter_errors(instance)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]


def example(name: str, version: str = "3.0.1") -> Any:
    """A ``name`` object made of the examples the YAML gives its properties (an enum's first
    value where it gives none); properties without either are left out."""
    schemas = document(version)["components"]["schemas"]
    return copy.deepcopy(_example(schemas[name], schemas, 0))  # the cached document's own lists


def _example(schema: dict[str, Any], schemas: dict[str, Any], depth: int) -> Any:
    if depth > 24:
        return None
    if "$ref" in schema:
        return _example(schemas[schema["$ref"].rsplit("/", 1)[1]], schemas, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"]
            return _example(options[0], schemas, depth + 1)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = _example(part, schemas, depth + 1)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "array":
        item = _example(schema.get("items", {}), schemas, depth + 1)
        return [item] if item is not None else schema.get("example")
    if kind == "object" or "properties" in schema:
        out = {}
        for prop, sub in schema.get("properties", {}).items():
            value = _example(sub, schemas, depth + 1)
            if value is not None:
                out[prop] = value
        return out
    if "example" in schema:
        return schema["example"]
    if "enum" in schema:
        return schema["enum"][0]
    return None
