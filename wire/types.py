"""Kafka's protocol primitives as `construct` classes, defined once.

Every class here parses from and builds to a stream, like any construct. They are
hand-written `Construct` subclasses rather than Adapters over nested Structs because
Kafka needs three things construct's Struct does not give: a field missing from the
dict takes the spec default (while an explicit None stays null), tagged fields read
and written as ordinary keys, and parse speed on the produce/fetch path (a nested
Struct allocates a context per string). Validation failures raise construct's own
errors (StreamError, CheckError, ...) which wire/protocol.py turns into WireError.

Spec: https://kafka.apache.org/protocol.html#protocol_types and
generator/src/main/java/org/apache/kafka/message/MessageDataGenerator.java.
"""
from __future__ import annotations

import io
import struct
import uuid
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from construct import (
    CheckError,
    Construct,
    Container,
    Float64b,
    Int8sb,
    Int16sb,
    Int16ub,
    Int32sb,
    Int32ub,
    Int64sb,
    IntegerError,
    StreamError,
    stream_read,
)

__all__ = [
    "Boolean", "Int8sb", "Int16sb", "Int16ub", "Int32sb", "Int32ub", "Int64sb", "Float64b",
    "UnsignedVarInt", "VarInt", "VarLong", "Uuid",
    "String", "NullableString", "CompactString", "CompactNullableString",
    "KafkaBytes", "NullableBytes", "CompactBytes", "CompactNullableBytes",
    "Records", "NullableRecords", "CompactRecords", "CompactNullableRecords",
    "ArrayOf", "NullableArrayOf", "CompactArrayOf", "CompactNullableArrayOf",
    "NullableStruct", "TaggedNullableStruct", "Field", "Message", "STRUCT_DEFAULT",
    "MAX_STRING_BYTES", "ZERO_UUID", "SchemaTable",
]

class _Boolean(Construct):
    """BOOLEAN: one byte, any non-zero value reads as true (construct's Flag compiles
    to an unchecked read, which would turn a truncated frame into True)."""

    def _parse(self, stream, context, path):
        return stream_read(stream, 1, path) != b"\x00"

    def _build(self, obj, stream, context, path):
        stream.write(b"\x01" if obj else b"\x00")
        return obj

    def _sizeof(self, context, path):
        return 1


Boolean = _Boolean()

MAX_STRING_BYTES = 0x7FFF  # Kafka refuses longer strings (MessageDataGenerator)
_UNSIGNED_VARINT_MAX_BYTES = 5  # ByteUtils.readUnsignedVarint: an int32
_UNSIGNED_VARLONG_MAX_BYTES = 10

_int16 = struct.Struct(">h")
_int32 = struct.Struct(">i")


def read_unsigned_varint(stream, max_bytes: int = _UNSIGNED_VARINT_MAX_BYTES) -> int:
    """LEB128, low 7 bits first; more than max_bytes bytes is malformed."""
    first = stream.read(1)
    if first and first[0] < 0x80:  # the common case: one byte
        return first[0]
    stream.seek(-len(first), io.SEEK_CUR)
    value = 0
    for index in range(max_bytes):
        byte = stream.read(1)
        if not byte:
            raise StreamError("truncated varint")
        b = byte[0]
        value |= (b & 0x7F) << (7 * index)
        if b < 0x80:
            return value
    raise IntegerError(f"varint longer than {max_bytes} bytes")


_ONE_BYTE_VARINTS = tuple(bytes((value,)) for value in range(0x80))


def unsigned_varint_bytes(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _ONE_BYTE_VARINTS[value]
    if value < 0:
        raise IntegerError(f"unsigned varint cannot encode {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class _UnsignedVarInt(Construct):
    """UNSIGNED_VARINT: 0..2**32-1 in at most 5 bytes."""

    def _parse(self, stream, context, path):
        return read_unsigned_varint(stream)

    def _build(self, obj, stream, context, path):
        if not 0 <= obj <= 0xFFFFFFFF:
            raise IntegerError(f"unsigned varint out of range: {obj}", path=path)
        stream.write(unsigned_varint_bytes(obj))
        return obj


class _ZigZag(Construct):
    """VARINT / VARLONG: zigzag-encoded signed integer of `bits` bits."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = bits
        self.max_bytes = _UNSIGNED_VARINT_MAX_BYTES if bits == 32 else _UNSIGNED_VARLONG_MAX_BYTES

    def _parse(self, stream, context, path):
        raw = read_unsigned_varint(stream, self.max_bytes)
        if raw >> self.bits:
            raise IntegerError(f"varint exceeds {self.bits} bits", path=path)
        return (raw >> 1) ^ -(raw & 1)

    def _build(self, obj, stream, context, path):
        limit = 1 << (self.bits - 1)
        if not -limit <= obj < limit:
            raise IntegerError(f"{obj} does not fit a {self.bits}-bit varint", path=path)
        stream.write(unsigned_varint_bytes(((obj << 1) ^ (obj >> (self.bits - 1))) & ((1 << self.bits) - 1)))
        return obj


UnsignedVarInt = _UnsignedVarInt()
VarInt = _ZigZag(32)
VarLong = _ZigZag(64)


class _Uuid(Construct):
    """UUID: 16 bytes, parsed to uuid.UUID; builds from a UUID or 16 raw bytes."""

    def _parse(self, stream, context, path):
        return uuid.UUID(bytes=stream_read(stream, 16, path))

    def _build(self, obj, stream, context, path):
        data = obj.bytes if isinstance(obj, uuid.UUID) else bytes(obj)
        if len(data) != 16:
            raise CheckError(f"uuid must be 16 bytes, got {len(data)}", path=path)
        stream.write(data)
        return obj

    def _sizeof(self, context, path):
        return 16


Uuid = _Uuid()


@runtime_checkable
class DeferredBytes(Protocol):
    """Bytes of a BYTES/RECORDS field that stay where they are (a file range) until the
    frame is sent: `size` is known up front, `read()` gives them when they must be copied."""

    @property
    def size(self) -> int: ...

    def read(self) -> bytes: ...


_PLAIN_BYTES = (bytes, bytearray, memoryview)


class _LengthPrefixed(Construct):
    """STRING, BYTES and RECORDS in all four flavours.

    Classic: INT16 (strings) or INT32 (bytes, records) length, -1 for null.
    Compact (flexible versions): UNSIGNED_VARINT of length + 1, 0 for null.
    A negative length other than -1 (or a null where null is not allowed) is an error.
    """

    def __init__(self, text: bool, compact: bool, nullable: bool, name: str) -> None:
        super().__init__()
        self.text = text
        self.compact = compact
        self.nullable = nullable
        self.kind = name

    def __repr__(self) -> str:
        return self.kind

    def _parse(self, stream, context, path):
        if self.compact:
            length = read_unsigned_varint(stream) - 1
        elif self.text:
            length = _int16.unpack(stream_read(stream, 2, path))[0]
        else:
            length = _int32.unpack(stream_read(stream, 4, path))[0]
        if length < 0:
            if length == -1 and self.nullable:
                return None
            raise CheckError(f"{self.kind}: invalid length {length}", path=path)
        if self.text and length > MAX_STRING_BYTES:
            raise CheckError(f"{self.kind}: length {length} over {MAX_STRING_BYTES}", path=path)
        data = stream_read(stream, length, path)
        return data.decode("utf-8") if self.text else data

    def _build(self, obj, stream, context, path):
        if obj is None:
            if not self.nullable:
                raise CheckError(f"{self.kind}: null is not allowed", path=path)
            if self.compact:
                stream.write(b"\x00")
            else:
                stream.write(b"\xff\xff" if self.text else b"\xff\xff\xff\xff")
            return obj
        if not self.text and obj.__class__ not in _PLAIN_BYTES and isinstance(obj, DeferredBytes):
            self._write_length(obj.size, stream)
            write_deferred = getattr(stream, "write_deferred", None)
            if write_deferred is not None:
                write_deferred(obj)  # sent later from where it lies (sendfile)
            else:
                stream.write(obj.read())
            return obj
        data = obj.encode("utf-8") if self.text else obj
        length = len(data) if self.text else memoryview(data).nbytes
        if self.text and length > MAX_STRING_BYTES:
            raise CheckError(f"{self.kind}: length {length} over {MAX_STRING_BYTES}", path=path)
        self._write_length(length, stream)
        stream.write(data)
        return obj

    def _write_length(self, length: int, stream) -> None:
        if self.compact:
            stream.write(unsigned_varint_bytes(length + 1))
        elif self.text:
            stream.write(_int16.pack(length))
        else:
            stream.write(_int32.pack(length))


String = _LengthPrefixed(True, False, False, "String")
NullableString = _LengthPrefixed(True, False, True, "NullableString")
CompactString = _LengthPrefixed(True, True, False, "CompactString")
CompactNullableString = _LengthPrefixed(True, True, True, "CompactNullableString")
KafkaBytes = _LengthPrefixed(False, False, False, "KafkaBytes")
NullableBytes = _LengthPrefixed(False, False, True, "NullableBytes")
CompactBytes = _LengthPrefixed(False, True, False, "CompactBytes")
CompactNullableBytes = _LengthPrefixed(False, True, True, "CompactNullableBytes")
# RECORDS is bytes on the wire; record batches stay opaque here (wire/records.py reads them).
Records = _LengthPrefixed(False, False, False, "Records")
NullableRecords = _LengthPrefixed(False, False, True, "NullableRecords")
CompactRecords = _LengthPrefixed(False, True, False, "CompactRecords")
CompactNullableRecords = _LengthPrefixed(False, True, True, "CompactNullableRecords")


def _remaining_bytes(stream) -> int:
    position = stream.tell()
    end = stream.seek(0, io.SEEK_END)
    stream.seek(position)
    return end - position


class _KafkaArray(Construct):
    """ARRAY (INT32 count, -1 null) or COMPACT_ARRAY (UNSIGNED_VARINT count + 1, 0 null)."""

    def __init__(self, element: Construct, compact: bool, nullable: bool) -> None:
        super().__init__()
        self.element = element
        self.compact = compact
        self.nullable = nullable

    def _parse(self, stream, context, path):
        count = self._read_count(stream, path)
        if count is None:
            return None
        parse = self.element._parse
        return [parse(stream, context, path) for _ in range(count)]

    def _build(self, obj, stream, context, path):
        if self._write_count(obj, stream, path):
            build = self.element._build
            for item in obj:
                build(item, stream, context, path)
        return obj

    def default_value(self):
        return []

    def _read_count(self, stream, path=None) -> int | None:
        """Element count, or None for a null array."""
        if self.compact:
            count = read_unsigned_varint(stream) - 1
        else:
            count = _int32.unpack(stream_read(stream, 4, path))[0]
        if count < 0:
            if count == -1 and self.nullable:
                return None
            raise CheckError(f"array: invalid length {count}", path=path)
        # As Kafka does: refuse a count that cannot fit before allocating for it
        # (elements may be empty structs, so the stream alone would not stop the loop).
        if count > _remaining_bytes(stream):
            raise CheckError(f"array of {count} elements exceeds the remaining bytes", path=path)
        return count

    def _write_count(self, obj, stream, path=None) -> bool:
        """Write the count; False for a null array (nothing more to write)."""
        if obj is None:
            if not self.nullable:
                raise CheckError("array: null is not allowed", path=path)
            stream.write(b"\x00" if self.compact else b"\xff\xff\xff\xff")
            return False
        if self.compact:
            stream.write(unsigned_varint_bytes(len(obj) + 1))
        else:
            stream.write(_int32.pack(len(obj)))
        return True

    # .compile(): the element's code is inlined into a list comprehension / loop.
    def _emitparse(self, code):
        code.linkedinstances[id(self)] = self
        element = self.element._compileparse(code)
        fname = f"parse_kafka_array_{id(self)}"
        code.append(f"""
            def {fname}(io, this):
                count = linkedinstances[{id(self)}]._read_count(io)
                if count is None:
                    return None
                return [{element} for _ in range(count)]
        """)
        return f"{fname}(io, this)"

    def _emitbuild(self, code):
        code.linkedinstances[id(self)] = self
        element = self.element._compilebuild(code)
        fname = f"build_kafka_array_{id(self)}"
        code.append(f"""
            def {fname}(obj, io, this):
                items = obj
                if linkedinstances[{id(self)}]._write_count(items, io):
                    for obj in items:
                        {element}
                return items
        """)
        return f"{fname}(obj, io, this)"


def ArrayOf(element: Construct) -> Construct:
    return _KafkaArray(element, compact=False, nullable=False)


def NullableArrayOf(element: Construct) -> Construct:
    return _KafkaArray(element, compact=False, nullable=True)


def CompactArrayOf(element: Construct) -> Construct:
    return _KafkaArray(element, compact=True, nullable=False)


def CompactNullableArrayOf(element: Construct) -> Construct:
    return _KafkaArray(element, compact=True, nullable=True)


class NullableStruct(Construct):
    """A nullable struct field outside the tagged section: INT8 -1 for null, 1 then the struct."""

    _NULL_MARKER = -1
    _NULL_BYTES = b"\xff"

    def __init__(self, struct_: "Message") -> None:
        super().__init__()
        self.struct = struct_

    def _read_marker(self, stream, context, path) -> int:
        return Int8sb._parse(stream, context, path)

    def _parse(self, stream, context, path):
        marker = self._read_marker(stream, context, path)
        if marker == self._NULL_MARKER:
            return None
        if marker != 1:
            raise CheckError(f"nullable struct marker {marker}", path=path)
        return self.struct._parse(stream, context, path)

    def _build(self, obj, stream, context, path):
        if obj is None:
            stream.write(self._NULL_BYTES)
            return obj
        stream.write(b"\x01")
        return self.struct._build(obj, stream, context, path)


class TaggedNullableStruct(NullableStruct):
    """A nullable struct inside the tagged section: UNSIGNED_VARINT 0 for null, 1 then the struct."""

    _NULL_MARKER = 0
    _NULL_BYTES = b"\x00"

    def _read_marker(self, stream, context, path) -> int:
        return read_unsigned_varint(stream)


class _StructDefault:
    """Default of a struct-typed field: every field of that struct at its default."""

    def __repr__(self) -> str:
        return "STRUCT_DEFAULT"


STRUCT_DEFAULT = _StructDefault()
_MISSING = object()


class Field:
    """One field of a Message: snake_case name, type, spec default, and its tag if tagged."""

    __slots__ = ("name", "subcon", "default", "tag")

    def __init__(self, name: str, subcon: Construct, default=None, tag: int | None = None) -> None:
        self.name = name
        self.subcon = subcon
        self.default = default
        self.tag = tag

    def default_value(self):
        """A fresh default (lists and structs are mutable, so never shared)."""
        if self.default is STRUCT_DEFAULT:
            return self.subcon.default_value()
        if isinstance(self.default, list):
            return []
        return self.default


class Message(Construct):
    """A Kafka struct at one version: fields in order, then (flexible versions only) the
    tagged fields section.

    Parses to a Container with every field of this version; tagged fields absent from
    the wire take their default, unknown tags are skipped. Builds from any mapping (or
    None): a missing field takes the spec default, keys not in this version are ignored,
    and a tagged field is written only when its encoding differs from its default's.
    """

    def __init__(self, *fields: Field, flexible: bool) -> None:
        super().__init__()
        self.fields = tuple(f for f in fields if f.tag is None)
        self.tagged = {f.tag: f for f in sorted((f for f in fields if f.tag is not None), key=lambda f: f.tag)}
        self.flexible = flexible
        if self.tagged and not flexible:
            raise ValueError("tagged fields need a flexible version")
        self._plan = tuple((f.name, f.subcon._parse) for f in self.fields)
        # What a missing field builds as (immutable stand-ins for lists and structs).
        self._build_defaults = tuple(
            {} if f.default is STRUCT_DEFAULT else () if isinstance(f.default, list) else f.default
            for f in self.fields
        )
        self._build_plan = tuple((f.name, f.subcon._build, default)
                                 for f, default in zip(self.fields, self._build_defaults))
        self._tagged_default_bytes: dict[int, bytes] = {}

    def default_value(self) -> Container:
        obj = Container()
        for f in self.fields:
            obj[f.name] = f.default_value()
        for f in self.tagged.values():
            obj[f.name] = f.default_value()
        return obj

    def _parse(self, stream, context, path):
        obj = Container()
        for name, parse in self._plan:
            obj[name] = parse(stream, context, path)
        if self.flexible:
            self._parse_tagged(stream, obj, path)
        return obj

    def _parse_tagged(self, stream, obj, path=None) -> None:
        """Read the tagged fields section into obj: defaults first, then what the wire has."""
        for f in self.tagged.values():
            obj[f.name] = f.default_value()
        count = read_unsigned_varint(stream)
        for _ in range(count):
            tag = read_unsigned_varint(stream)
            size = read_unsigned_varint(stream)
            data = stream_read(stream, size, path)
            field = self.tagged.get(tag)
            if field is None:
                continue  # a newer peer's field: ignorable by definition
            field_stream = io.BytesIO(data)
            obj[field.name] = field.subcon._parse(field_stream, None, path)
            if field_stream.tell() != size:
                raise CheckError(f"tagged field {tag}: {size - field_stream.tell()} bytes left over", path=path)

    def _build(self, obj, stream, context, path):
        if obj is None:
            obj = {}
        get = obj.get
        for name, build, default in self._build_plan:
            build(get(name, default), stream, context, path)
        if self.flexible:
            self._build_tagged(obj, stream)
        return obj

    def _build_tagged(self, obj, stream) -> None:
        """Write the tagged fields section: only fields whose encoding is not the default's."""
        if not self.tagged:
            stream.write(b"\x00")
            return
        get = obj.get
        written = []
        for tag, field in self.tagged.items():
            value = get(field.name, _MISSING)
            if value is _MISSING:
                continue
            data = field.subcon.build(value)
            if data != self._default_bytes(tag, field):
                written.append((tag, data))
        stream.write(unsigned_varint_bytes(len(written)))
        for tag, data in written:
            stream.write(unsigned_varint_bytes(tag))
            stream.write(unsigned_varint_bytes(len(data)))
            stream.write(data)

    # .compile(): one straight-line function per Message, fields' code inlined.
    def _emitparse(self, code):
        code.linkedinstances[id(self)] = self
        fname = f"parse_kafka_message_{id(self)}"
        lines = [f"def {fname}(io, this):", "    obj = Container()"]
        lines += [f"    obj[{f.name!r}] = {f.subcon._compileparse(code)}" for f in self.fields]
        if self.flexible:
            lines.append(f"    linkedinstances[{id(self)}]._parse_tagged(io, obj)")
        lines.append("    return obj")
        code.append("\n".join(lines))
        return f"{fname}(io, this)"

    def _emitbuild(self, code):
        code.linkedinstances[id(self)] = self
        fname = f"build_kafka_message_{id(self)}"
        lines = [f"def {fname}(obj, io, this):",
                 "    message = obj if obj is not None else {}",
                 f"    defaults = linkedinstances[{id(self)}]._build_defaults",
                 "    get = message.get"]
        for index, f in enumerate(self.fields):
            lines.append(f"    obj = get({f.name!r}, defaults[{index}])")
            lines.append(f"    {f.subcon._compilebuild(code)}")
        if self.flexible:
            lines.append(f"    linkedinstances[{id(self)}]._build_tagged(message, io)")
        lines.append("    return message")
        code.append("\n".join(lines))
        return f"{fname}(obj, io, this)"

    def _default_bytes(self, tag: int, field: Field) -> bytes:
        data = self._tagged_default_bytes.get(tag)
        if data is None:
            data = self._tagged_default_bytes[tag] = field.subcon.build(field.default_value())
        return data


ZERO_UUID = uuid.UUID(int=0)


class SchemaTable(Mapping):
    """(api_key, version) -> Message, each built on first lookup and then cached, so that
    importing every schema costs nothing until it is used."""

    def __init__(self, factories: dict) -> None:
        self._factories = factories

    def __getitem__(self, key):
        return self._factories[key]()  # factories are functools.cache'd

    def __contains__(self, key) -> bool:
        return key in self._factories

    def __iter__(self):
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)
