"""Generate wire/messages.py from Kafka's JSON message definitions.

    python -m wire.generate [MESSAGES_DIR] [OUTPUT]

Defaults: ../shared/kafka-protocol/messages relative to the repository root, and
wire/messages.py. Every request whose "listeners" include "broker", its response, and
the request/response headers are emitted, every valid version. One function per
distinct layout (identical versions are aliases); each is built on first lookup.
"""
from __future__ import annotations

import json
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MESSAGES_DIR = REPO_ROOT.parent / "shared" / "kafka-protocol" / "messages"
DEFAULT_OUTPUT = REPO_ROOT / "wire" / "messages.py"

_FIXED_TYPES = {
    "bool": ("Boolean", False),
    "int8": ("Int8sb", 0),
    "int16": ("Int16sb", 0),
    "uint16": ("Int16ub", 0),
    "int32": ("Int32sb", 0),
    "uint32": ("Int32ub", 0),
    "int64": ("Int64sb", 0),
    "float64": ("Float64b", 0.0),
    "uuid": ("Uuid", None),  # default ZERO_UUID, emitted by name
}
# (compact, nullable) -> construct name
_STRING_TYPES = {(False, False): "String", (False, True): "NullableString",
                 (True, False): "CompactString", (True, True): "CompactNullableString"}
_BYTES_TYPES = {(False, False): "KafkaBytes", (False, True): "NullableBytes",
                (True, False): "CompactBytes", (True, True): "CompactNullableBytes"}
_RECORDS_TYPES = {(False, False): "Records", (False, True): "NullableRecords",
                  (True, False): "CompactRecords", (True, True): "CompactNullableRecords"}
_ARRAY_TYPES = {(False, False): "ArrayOf", (False, True): "NullableArrayOf",
                (True, False): "CompactArrayOf", (True, True): "CompactNullableArrayOf"}


def strip_comments(text: str) -> str:
    """Remove // comments (the spec's JSON dialect), leaving string literals intact."""
    out = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class Versions:
    """A version range as the spec writes it: "3", "1-4", "2+" or "none"."""

    low: int
    high: int | None  # None: open-ended

    @staticmethod
    def parse(spec: str | None) -> "Versions | None":
        if spec is None or spec.strip() == "none":
            return None
        spec = spec.strip()
        if spec.endswith("+"):
            return Versions(int(spec[:-1]), None)
        if "-" in spec:
            low, high = spec.split("-")
            return Versions(int(low), int(high))
        return Versions(int(spec), int(spec))

    def __contains__(self, version: int) -> bool:
        return version >= self.low and (self.high is None or version <= self.high)


def _contains(versions: Versions | None, version: int) -> bool:
    return versions is not None and version in versions


def snake_case(name: str) -> str:
    """Spec names to snake_case: PartitionIndex -> partition_index, KRaftVersion -> k_raft_version."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return name.lower()


def upper_snake(name: str) -> str:
    return snake_case(name).upper()


def load_spec(path: Path) -> dict:
    return json.loads(strip_comments(path.read_text(encoding="utf-8")))


class Emitter:
    """Turns spec structs into deduplicated factory functions of construct definitions."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.name_by_body: dict[tuple[str, str], str] = {}
        self.scope = ""  # structs are shared only within one message definition

    def struct(self, qualified_name: str, version: int, fields: list[dict], flexible: Versions | None,
               registry: dict[str, dict]) -> str:
        """Emit (or reuse) the factory for one struct at one version; return its name."""
        is_flexible = _contains(flexible, version)
        lines = []
        for field in fields:
            if not _contains(Versions.parse(field["versions"]), version):
                continue
            lines.append(self._field(qualified_name, version, field, flexible, registry))
        body = "".join(f"        {line},\n" for line in lines) + f"        flexible={is_flexible},\n"
        name = self.name_by_body.get((self.scope, body))
        if name is None:
            name = f"{qualified_name}V{version}"
            self.name_by_body[self.scope, body] = name
            self.blocks.append(f"@_schema\ndef {name}():\n    return Message(\n{body}    )\n")
        return name

    def _field(self, qualified_name: str, version: int, field: dict, flexible: Versions | None,
               registry: dict[str, dict]) -> str:
        name = snake_case(field["name"])
        type_name = field["type"].strip()
        tag = field.get("tag") if _contains(Versions.parse(field.get("taggedVersions")), version) else None
        field_flexible = Versions.parse(field["flexibleVersions"]) if "flexibleVersions" in field else flexible
        compact = _contains(field_flexible, version)
        if tag is not None and not compact:
            raise ValueError(f"{qualified_name}.{field['name']}: tagged outside flexible versions")
        nullable = _contains(Versions.parse(field.get("nullableVersions")), version)
        spec_default = field.get("default")
        is_array = type_name.startswith("[]")
        element = type_name[2:] if is_array else type_name

        if element in _FIXED_TYPES or element in ("string", "bytes", "records"):
            element_expr = self._primitive(element, compact, nullable and not is_array)
        else:
            struct_spec = field if "fields" in field else registry[element]
            struct_name = self.struct(f"{qualified_name}_{element}", version, struct_spec["fields"],
                                      flexible, registry)
            element_expr = f"{struct_name}()"

        if is_array:
            expr = f"{_ARRAY_TYPES[compact, nullable]}({element_expr})"
            default = "None" if spec_default == "null" else "[]"
        elif element in _FIXED_TYPES or element in ("string", "bytes", "records"):
            expr = element_expr
            default = self._primitive_default(element, spec_default, nullable)
        else:
            if nullable:
                expr = f"{'TaggedNullableStruct' if tag is not None else 'NullableStruct'}({element_expr})"
            else:
                expr = element_expr
            default = "None" if spec_default == "null" else "STRUCT_DEFAULT"
        tag_part = f", tag={tag}" if tag is not None else ""
        return f"Field({name!r}, {expr}, {default}{tag_part})"

    @staticmethod
    def _primitive(element: str, compact: bool, nullable: bool) -> str:
        if element in _FIXED_TYPES:
            return _FIXED_TYPES[element][0]
        table = {"string": _STRING_TYPES, "bytes": _BYTES_TYPES, "records": _RECORDS_TYPES}[element]
        return table[compact, nullable]

    @staticmethod
    def _primitive_default(element: str, spec_default, nullable: bool) -> str:
        if spec_default == "null":
            return "None"
        if element == "uuid":
            return "ZERO_UUID"
        if element == "bool":
            if spec_default is None:
                return "False"
            return repr(spec_default if isinstance(spec_default, bool) else spec_default.strip() == "true")
        if element == "float64":
            return repr(float(spec_default) if spec_default is not None else 0.0)
        if element in _FIXED_TYPES:
            if spec_default is None:
                return "0"
            return repr(spec_default if isinstance(spec_default, int) else int(spec_default.strip(), 0))
        if element == "string":
            return repr(spec_default if spec_default is not None else "")
        if element == "records":
            # Kafka defaults records to null; a non-nullable one can only be built from bytes.
            return "None" if nullable else "b''"
        return "b''"


@dataclass
class Api:
    api_key: int
    name: str  # e.g. "Produce"
    request: dict
    response: dict


def collect_apis(messages_dir: Path) -> list[Api]:
    specs = [load_spec(path) for path in sorted(messages_dir.glob("*.json"))]
    responses = {spec["apiKey"]: spec for spec in specs if spec.get("type") == "response"}
    apis = []
    for spec in specs:
        if spec.get("type") == "request" and "broker" in spec.get("listeners", []):
            apis.append(Api(spec["apiKey"], spec["name"].removesuffix("Request"), spec,
                            responses[spec["apiKey"]]))
    return sorted(apis, key=lambda api: api.api_key)


def _registry(spec: dict) -> dict[str, dict]:
    """Structs a field may name by type: commonStructs and every inline struct."""
    registry = {struct["name"]: struct for struct in spec.get("commonStructs", [])}

    def walk(fields):
        for field in fields:
            if "fields" in field:
                registry.setdefault(field["type"].removeprefix("[]"), field)
                walk(field["fields"])

    walk(spec["fields"])
    for struct in spec.get("commonStructs", []):
        walk(struct["fields"])
    return registry


def _emit_message(emitter: Emitter, spec: dict) -> dict[int, str]:
    versions = Versions.parse(spec["validVersions"])
    flexible = Versions.parse(spec.get("flexibleVersions"))
    registry = _registry(spec)
    emitter.scope = spec["name"]
    return {version: emitter.struct(spec["name"], version, spec["fields"], flexible, registry)
            for version in range(versions.low, versions.high + 1)}


HEADER = '''\
# Generated by `python -m wire.generate` from Kafka's JSON message definitions
# ({source}). Do not edit: change the generator and re-run it.
"""Request/response schemas for every broker API and version, and the headers.

REQUESTS[(api_key, version)] and RESPONSES[(api_key, version)] give the body's
`Message` construct, built on first lookup and then cached.
"""
from enum import IntEnum
from functools import cache as _schema

from wire.types import (
{imports}
)

'''


def _table(name: str, entries: dict) -> str:
    lines = [f"{name} = SchemaTable({{"]
    lines += [f"    {key!r}: {factory}," for key, factory in entries.items()]
    lines.append("})\n")
    return "\n".join(lines)


def generate(messages_dir: Path) -> str:
    apis = collect_apis(messages_dir)
    emitter = Emitter()
    request_header = _emit_message(emitter, load_spec(messages_dir / "RequestHeader.json"))
    response_header = _emit_message(emitter, load_spec(messages_dir / "ResponseHeader.json"))
    requests, responses = {}, {}
    api_versions, flexible_from = {}, {}
    for api in apis:
        for version, factory in _emit_message(emitter, api.request).items():
            requests[api.api_key, version] = factory
        for version, factory in _emit_message(emitter, api.response).items():
            responses[api.api_key, version] = factory
        valid = Versions.parse(api.request["validVersions"])
        api_versions[api.api_key] = (valid.low, valid.high)
        flexible = Versions.parse(api.request.get("flexibleVersions"))
        flexible_from[api.api_key] = flexible.low if flexible is not None else None

    # A fixed label, not the path: the output must not depend on where the specs are checked out.
    source = "shared/kafka-protocol/messages"
    body = "\n\n".join(emitter.blocks)
    used = sorted({"Field", "Message", "SchemaTable"} | set(re.findall(r"\b(STRUCT_DEFAULT|ZERO_UUID|[A-Z][A-Za-z0-9]*(?:sb|ub|b)|Boolean|Uuid|"
                                                                 r"\w*String|\w*Bytes|\w*Records|\w*ArrayOf|\w*NullableStruct)\b", body)))
    imports = textwrap.fill(", ".join(used) + ",", width=96, initial_indent="    ", subsequent_indent="    ")
    parts = [HEADER.format(source=source, imports=imports)]
    parts.append("\nclass ApiKey(IntEnum):\n    \"\"\"Every API a broker listener serves.\"\"\"\n\n")
    parts.append("".join(f"    {upper_snake(api.name)} = {api.api_key}\n" for api in apis))
    parts.append("\n\n")
    parts.append(body)
    parts.append("\n\n")
    parts.append("# Keyed by header version.\n")
    parts.append(_table("REQUEST_HEADERS", request_header))
    parts.append("\n")
    parts.append(_table("RESPONSE_HEADERS", response_header))
    parts.append("\n")
    parts.append(_table("REQUESTS", requests))
    parts.append("\n")
    parts.append(_table("RESPONSES", responses))
    parts.append("\n# validVersions (min, max) of every broker API, from the request definitions.\n")
    parts.append("API_VERSIONS: dict[int, tuple[int, int]] = {\n")
    parts.append("".join(f"    {key}: {versions},\n" for key, versions in api_versions.items()))
    parts.append("}\n\n# First flexible version of every broker API (None: never flexible).\n")
    parts.append("FLEXIBLE_FROM: dict[int, int | None] = {\n")
    parts.append("".join(f"    {key}: {first},\n" for key, first in flexible_from.items()))
    parts.append("}\n")
    return "".join(parts)


def main(argv: list[str]) -> int:
    messages_dir = Path(argv[1]) if len(argv) > 1 else DEFAULT_MESSAGES_DIR
    output = Path(argv[2]) if len(argv) > 2 else DEFAULT_OUTPUT
    output.write_text(generate(messages_dir), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
