# cython: annotation_typing=False
"""The RECEIVE stage: OTLP/HTTP trace export requests in, transport-neutral SpanRecords out.

The only module that knows OTLP. It decodes `ExportTraceServiceRequest` bodies in both OTLP/HTTP
encodings (binary protobuf and OTLP/JSON, optionally gzip-compressed) and encodes the responses
OTLP/HTTP prescribes. It does no HTTP itself, so it is tested and benchmarked without sockets.

Every problem with a client's body becomes a `ReceiveError` carrying the HTTP status the server
answers with: a client can never make the receiver fail with anything else.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from genai_exporter.records import Attributes, AttributeValue, SpanEvent, SpanRecord

CONTENT_TYPE_PROTOBUF = "application/x-protobuf"
CONTENT_TYPE_JSON = "application/json"
_ENCODING_GZIP = "gzip"
_ENCODING_IDENTITY = "identity"
# gzip container only (RFC 1952), not raw deflate or zlib: that is what Content-Encoding gzip means.
_GZIP_WBITS = 16 + zlib.MAX_WBITS

# HTTP status -> google.rpc.Code of the Status body (the gRPC mapping of the same condition).
_RPC_CODE_BY_HTTP_STATUS = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    404: code_pb2.NOT_FOUND,
    405: code_pb2.UNIMPLEMENTED,
    408: code_pb2.DEADLINE_EXCEEDED,
    411: code_pb2.INVALID_ARGUMENT,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    500: code_pb2.INTERNAL,
    503: code_pb2.UNAVAILABLE,
}

_STATUS_CODE_ERROR = Status.STATUS_CODE_ERROR
_STATUS_CODE_BY_NAME = {name: number for name, number in Status.StatusCode.items()}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UINT64_MAX = 2**64 - 1
# At most 20 digits (uint64 max): int() of a longer string can exceed Python's digit limit and raise.
_DECIMAL_INTEGER = re.compile(r"-?[0-9]{1,20}")
# Longest client value quoted back in an error message.
_MAX_QUOTED_CHARS = 40


class ReceiveError(Exception):
    """A request the receiver refuses; `http_status` is the OTLP/HTTP answer, `message` says why."""

    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedMediaType(ReceiveError):
    """Content-Type or Content-Encoding the receiver does not speak."""

    http_status = 415


class PayloadTooLarge(ReceiveError):
    """A body (after decompression) over the configured limit."""

    http_status = 413


class MalformedRequest(ReceiveError):
    """A body that is not a valid ExportTraceServiceRequest in its declared encoding."""

    http_status = 400


def parse_media_headers(content_type: str | None, content_encoding: str | None) -> tuple[bool, bool]:
    """Check the two headers that say how to read a body: returns (is_json, is_gzip).

    Separate from decoding so the server can refuse an unsupported request before reading its body.
    Content-Type parameters (`; charset=utf-8`) are allowed; JSON text encoding is detected anyway.
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type == CONTENT_TYPE_PROTOBUF:
        is_json = False
    elif media_type == CONTENT_TYPE_JSON:
        is_json = True
    else:
        raise UnsupportedMediaType(
            f"unsupported Content-Type {_quote(content_type or '')}: "
            f"use {CONTENT_TYPE_PROTOBUF} or {CONTENT_TYPE_JSON}"
        )
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", _ENCODING_IDENTITY):
        return is_json, False
    if encoding == _ENCODING_GZIP:
        return is_json, True
    raise UnsupportedMediaType(
        f"unsupported Content-Encoding {_quote(content_encoding or '')}: send gzip or uncompressed"
    )


def decode_export_request(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    max_decompressed_bytes: int,
    keep_attributes: frozenset[str] | None,
) -> list[SpanRecord]:
    """Decode one OTLP/HTTP trace export body into SpanRecords, or raise a ReceiveError.

    `keep_attributes` names the only attribute keys the pipeline reads; values of other keys are
    never converted, which is most of the decoding work for spans with captured content.
    """
    is_json, is_gzip = parse_media_headers(content_type, content_encoding)
    if is_gzip:
        body = _gunzip(body, max_decompressed_bytes)
    elif len(body) > max_decompressed_bytes:
        raise PayloadTooLarge(f"body of {len(body)} bytes is over the limit of {max_decompressed_bytes}")
    if is_json:
        return _decode_json(body, keep_attributes)
    return _decode_protobuf(body, keep_attributes)


def encode_export_response(rejected_spans: int, error_message: str, json_encoding: bool) -> bytes:
    """The 200 body: an ExportTraceServiceResponse, with partial_success when spans were rejected.

    OTLP lets a server put a warning in error_message with rejected_spans 0, so a message alone
    also fills partial_success.
    """
    response = ExportTraceServiceResponse()
    if rejected_spans or error_message:
        response.partial_success.rejected_spans = rejected_spans
        response.partial_success.error_message = error_message
    return _serialize(response, json_encoding)


def encode_error_status(message: str, json_encoding: bool, http_status: int = 400) -> bytes:
    """The body of a 4xx/5xx answer: a google.rpc.Status, as OTLP/HTTP requires.

    The Status code is the gRPC code of the same condition, so clients that log it see one
    vocabulary whichever OTLP transport they use.
    """
    status = status_pb2.Status(
        code=_RPC_CODE_BY_HTTP_STATUS.get(http_status, code_pb2.UNKNOWN), message=message
    )
    return _serialize(status, json_encoding)


def _serialize(message: Message, json_encoding: bool) -> bytes:
    if json_encoding:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def _quote(text: str) -> str:
    if len(text) > _MAX_QUOTED_CHARS:
        return repr(text[:_MAX_QUOTED_CHARS] + "...")
    return repr(text)


def _gunzip(body: bytes, limit: int) -> bytes:
    """Decompress without ever holding more than limit + 1 output bytes (gzip bombs stop early)."""
    output = bytearray()
    remaining_input = body
    # A gzip file may hold several members (RFC 1952); each is decompressed against one budget.
    while True:
        decompressor = zlib.decompressobj(_GZIP_WBITS)
        try:
            output += decompressor.decompress(remaining_input, limit - len(output) + 1)
        except zlib.error as error:
            raise MalformedRequest(f"body is not valid gzip: {error}") from error
        if len(output) > limit:
            raise PayloadTooLarge(f"gzip body decompresses to more than the limit of {limit} bytes")
        if not decompressor.eof:
            raise MalformedRequest("gzip body is truncated")
        remaining_input = decompressor.unused_data
        if not remaining_input:
            return bytes(output)


# --- protobuf --------------------------------------------------------------------------------
#
# Bodies are read by walking the protobuf wire format of the OTLP trace messages right here,
# rather than parsing them with the generated classes: only the fields the pipeline reads become
# Python objects (ids, name, times, status, and each attribute entry as the bytes sent), in one
# pass over the body, with no message object per span and no wrapper per field read. Parsing a
# body with upb is cheap; reading its spans' fields back out of the parsed messages cost several
# times the parse (bench/RESULTS.md, run 14). Every other field (links, trace state, kind, scope,
# dropped counts, whatever a newer OTLP adds) is skipped by its wire type, as a parser keeps an
# unknown field: checked only for well-formed framing, not for valid content or UTF-8, so a span
# whose trace_state or unread attribute is not UTF-8 is accepted rather than refusing the whole
# request over a field nothing reads. Protobuf's rules decide what a span says: fields in any
# order; the last of a singular field wins; a message field sent twice is merged (a resource's
# attributes); a field sent with another wire type than its own is an unknown field; a string
# (a span's or an event's name) must be UTF-8. tests/test_receive_wire.py holds the walk to what
# upb reads with the same fields, on valid and on corrupted bodies.
#
# An attribute entry (a serialized KeyValue) is looked up whole in a memo of recent entries (the
# same model, operation and tier arrive on span after span: `gen_ai.operation.name = chat` is the
# same few bytes every time), which gives its key and value at once. An entry not in the memo is
# first matched by its key's bytes against the kept keys: the ids, content and parameters nothing
# reads are skipped there, undecoded. An entry is remembered only once it recurs within a few
# spans: a temperature or a server address as skipped, a model or a tier with its value; ids and
# most token counts, which do not recur, never enter the memo, which then stays small and quick
# to look up. A kept entry is split by hand when it is laid out as encoders write it (key, then
# value), else by the generated KeyValue class, and its value decoded by `_attribute_value` (by
# hand when it is one scalar field, else with the generated AnyValue class). For a key sent twice,
# the last value wins, as it does when a repeated KeyValue is read into a dict. The key and
# AnyValue of a kept attribute are checked in full.
#
# Compiled, receive.pxd gives the walk's positions C types: it then runs on machine integers.

# Wire types of protobuf's encoding.
_WIRE_VARINT = 0
_WIRE_FIXED64 = 1
_WIRE_LENGTH_DELIMITED = 2
_WIRE_START_GROUP = 3
_WIRE_END_GROUP = 4
_WIRE_FIXED32 = 5
# How deep messages and groups (a deprecated encoding, skipped when met as unknown fields) may
# nest, as upb counts them: a group deeper than this is refused. The depths of the messages read:
_MAX_DEPTH = 100
_DEPTH_RESOURCE_SPANS = 1
_DEPTH_RESOURCE = _DEPTH_SCOPE_SPANS = 2
_DEPTH_SPAN = 3
_DEPTH_EVENT = 4
_MAX_FIELD_NUMBER = 2**29 - 1
# Field numbers of opentelemetry/proto/collector/trace/v1/trace_service.proto, trace/v1/trace.proto
# and resource/v1/resource.proto read here.
_REQUEST_RESOURCE_SPANS = 1
_RESOURCE_SPANS_RESOURCE = 1
_RESOURCE_SPANS_SCOPE_SPANS = 2
_RESOURCE_ATTRIBUTES = 1
_SCOPE_SPANS_SPANS = 2
_SPAN_TRACE_ID = 1
_SPAN_SPAN_ID = 2
_SPAN_PARENT_SPAN_ID = 4
_SPAN_NAME = 5
_SPAN_START_TIME_UNIX_NANO = 7
_SPAN_END_TIME_UNIX_NANO = 8
_SPAN_ATTRIBUTES = 9
_SPAN_EVENTS = 11
_SPAN_STATUS = 15
_EVENT_TIME_UNIX_NANO = 1
_EVENT_NAME = 2
_EVENT_ATTRIBUTES = 3
_PB_SCALAR_KINDS = frozenset({"string_value", "bool_value", "int_value", "double_value", "bytes_value"})

# Tags (field number << 3 | wire type) of the AnyValue fields decoded by hand.
_TAG_STRING_VALUE = 1 << 3 | 2  # length-delimited
_TAG_BOOL_VALUE = 2 << 3 | 0  # varint
_TAG_INT_VALUE = 3 << 3 | 0  # varint, int64 as two's complement: negatives take 10 bytes
_TAG_DOUBLE_VALUE = 4 << 3 | 1  # fixed64
_UINT64_RANGE = 2**64
# A length prefix of at most two bytes (strings up to 16 KiB); upb has its own rules for longer ones.
_STRING_VALUE_MAX_START = 3
_DOUBLE_VALUE_BYTES = 9  # tag and 8 bytes little-endian
_SHORT_INT_VALUE_BYTES = 4  # tag and at most three varint bytes
_unpack_double = struct.Struct("<d").unpack_from
# What `_scalar_any_value` returns for anything that is not one scalar field: None means unset.
_NOT_ONE_SCALAR = object()

# What the memo of entries (see _EntryReader) holds, bounded whatever clients send, at under 11 MiB
# per keep set (16384 entries of at most 128 bytes, each with its key and decoded value; the worst
# case, arrays of four distinct strings, is measured by a test of test_receive_protobuf.py):
# - only immutable values, so the SpanRecords that share one cannot change one another's: scalars
#   and arrays of scalars, never kvlists (dicts);
# - entries of at most 128 bytes serialized: model names, operations, tiers and token counts are
#   far shorter; long message content and tool results, which rarely recur, are decoded every time;
# - arrays of at most 4 items (finish_reasons hold one or two): the items of a longer array would
#   cost more memory per serialized byte than a string;
# - at most 16384 entries, started over when full: clearing costs less than keeping an LRU order.
# The memo is safe without a lock: every access is a single dict operation, atomic under the GIL
# (threads that fill it at once may each add one entry past the limit before one clears it).
_MEMO_MAX_RAW_BYTES = 128
_MEMO_MAX_ARRAY_ITEMS = 4
_MEMO_MAX_ENTRIES = 16384
# The readers of attribute entries, one per keep set, each with its memo of whole entries
# (see _EntryReader). A process has one keep set per pipeline: a handful; the last few are kept.
_entry_readers: dict[frozenset[str] | None, _EntryReader] = {}
_ENTRY_READER_KEEP_SETS = 4
# Entries seen once lately: memoized when seen again before this set fills up and starts over.
# What says what a span is (an operation, a model, a tier, a temperature) recurs within a few
# spans and is then looked up like the rest; ids and token counts, which do not recur, never crowd
# the memo. Remembered at first sight, they filled it every 15,000 spans or so, it started over,
# and every lookup went through a dict of up to 16384 entries spread over memory (bench/RESULTS.md,
# run 13).
_SEEN_ONCE_MAX_ENTRIES = 1024
# Tags of the two KeyValue fields, key (1) and value (2), both length-delimited.
_TAG_KEY = 1 << 3 | 2
_TAG_VALUE = 2 << 3 | 2


def _pb_any_value(value: Any) -> AttributeValue | None:
    """Convert a protobuf AnyValue; None when no value is set (such entries are skipped)."""
    kind = value.WhichOneof("value")
    if kind in _PB_SCALAR_KINDS:
        return getattr(value, kind)
    if kind == "array_value":
        items = (_pb_any_value(item) for item in value.array_value.values)
        return tuple(item for item in items if item is not None)
    if kind == "kvlist_value":
        entries = {}
        for entry in value.kvlist_value.values:
            converted = _pb_any_value(entry.value)
            if converted is not None:
                entries[entry.key] = converted
        return entries
    return None


def _varint(raw: bytes, position: int) -> tuple[int, int] | None:
    """The varint at `position` of a serialized value and the position after it; None when there is none.

    Left to the generated classes then, which say what is wrong.
    """
    try:
        return _varint_at(raw, position, len(raw))
    except _WireError:
        return None


def _scalar_any_value(raw: bytes) -> object:
    """The value of a serialized AnyValue that is exactly one string, bool, int or double field.

    Those are nearly all attribute values, and reading them here costs a fraction of building an
    AnyValue message. Anything else returns _NOT_ONE_SCALAR; a string that is not UTF-8 raises
    UnicodeDecodeError (Python's strict UTF-8 refuses what upb refuses: overlongs, surrogates).
    """
    if not raw:
        return None
    tag = raw[0]
    size = len(raw)
    # The common layouts first, read without a loop: a string under 128 bytes (one length byte),
    # an int of one to three varint bytes (under 2**21: token counts, sizes, ports).
    if tag == _TAG_STRING_VALUE and size > 1 and size - 2 == raw[1] < 0x80:
        return raw[2:].decode()
    if tag == _TAG_INT_VALUE and size <= _SHORT_INT_VALUE_BYTES and raw[-1] < 0x80:
        if size == 2:
            return raw[1]
        if size == 3 and raw[1] >= 0x80:
            return raw[1] & 0x7F | raw[2] << 7
        if size == 4 and raw[1] >= 0x80 and raw[2] >= 0x80:
            return raw[1] & 0x7F | (raw[2] & 0x7F) << 7 | raw[3] << 14
    if tag == _TAG_STRING_VALUE:
        length = _varint(raw, 1)
        if length is not None and length[1] <= _STRING_VALUE_MAX_START and length[0] == len(raw) - length[1]:
            return raw[length[1]:].decode()
    elif tag in (_TAG_INT_VALUE, _TAG_BOOL_VALUE):
        varint = _varint(raw, 1)
        if varint is not None and varint[1] == len(raw):
            number = varint[0]
            if tag == _TAG_BOOL_VALUE:
                return number != 0
            return number - _UINT64_RANGE if number > _INT64_MAX else number
    elif tag == _TAG_DOUBLE_VALUE and len(raw) == _DOUBLE_VALUE_BYTES:
        return _unpack_double(raw, 1)[0]
    return _NOT_ONE_SCALAR


def _is_memoizable(value: AttributeValue | None) -> bool:
    """True for scalars and short arrays of them: immutable, so SpanRecords may share them, and small."""
    if isinstance(value, tuple):
        return len(value) <= _MEMO_MAX_ARRAY_ITEMS and not any(isinstance(item, tuple | dict) for item in value)
    return not isinstance(value, dict)


def _attribute_value(key: str, raw: bytes) -> AttributeValue | None:
    """Decode the serialized AnyValue of attribute `key` (None: unset).

    The slow path behind the memo of entries. A value that is not a valid AnyValue refuses the
    request, as it did when upb parsed it with the body.
    """
    try:
        value = _scalar_any_value(raw)
        if value is _NOT_ONE_SCALAR:
            value = _pb_any_value(common_pb2.AnyValue.FromString(raw))
    except UnicodeDecodeError as error:
        raise MalformedRequest(f"body is not a valid protobuf ExportTraceServiceRequest: "
                               f"the string value of attribute {_quote(key)} is not valid UTF-8") from error
    except DecodeError as error:
        raise MalformedRequest(f"body is not a valid protobuf ExportTraceServiceRequest: "
                               f"the value of attribute {_quote(key)} is not a valid AnyValue: {error}") from error
    return value


def _split_key_value(entry: bytes) -> tuple[str, bytes | None]:
    """The key and the serialized AnyValue (None: no value) of a serialized KeyValue.

    The general case behind `_EntryReader.read`, which splits the common layout (one-byte lengths)
    itself, so that a key nothing reads is matched by its bytes without a call.
    """
    try:
        if entry and entry[0] == _TAG_KEY:
            key_length = _varint(entry, 1)
            if key_length is not None:
                key_end = key_length[1] + key_length[0]
                if key_end == len(entry):
                    return entry[key_length[1]:key_end].decode(), None
                if key_end < len(entry) and entry[key_end] == _TAG_VALUE:
                    value_length = _varint(entry, key_end + 1)
                    if value_length is not None and value_length[1] + value_length[0] == len(entry):
                        return entry[key_length[1]:key_end].decode(), entry[value_length[1]:]
        # Laid out otherwise (fields in another order, repeated, unknown ones): as protobuf reads it.
        key_value = common_pb2.KeyValue.FromString(entry)
        return key_value.key, key_value.value.SerializeToString() if key_value.HasField("value") else None
    except UnicodeDecodeError as error:
        raise MalformedRequest("body is not a valid protobuf ExportTraceServiceRequest: "
                               "an attribute key is not valid UTF-8") from error
    except DecodeError as error:
        raise MalformedRequest(f"body is not a valid protobuf ExportTraceServiceRequest: "
                               f"an attribute is not a valid KeyValue: {error}") from error


class _Marker:
    """A marker among the (key, value) pairs of one span's entries."""


# The key of the entries that are not kept: taken out of the attributes once they are all read.
_SKIPPED = _Marker()
_SKIPPED_ENTRY = (_SKIPPED, None)


class _EntryWithoutValue(Exception):
    """An attribute entry whose value is unset: its key is taken out of the span's attributes.

    Raised rather than returned, so that the lookups of the common case need no test for it.
    """

    def __init__(self, key: object) -> None:
        super().__init__(key)
        self.key = key


class _EntryReader(dict[bytes, tuple[object, object]]):
    """How attribute entries are read for one keep set: a memo of entries that reads what it lacks.

    As a dict, it maps a serialized KeyValue to its (key, value), within the limits given with
    _MEMO_MAX_ENTRIES: entries of kept keys with a value, and entries of other keys as
    _SKIPPED_ENTRY, each once it recurs (`seen_once`), so that a hit needs no further test.
    Looking up an entry it does not hold reads it (`__missing__`): the lookups of a span's entries
    then run in C, in one `dict(map(...))`, and only the misses call Python.
    """

    __slots__ = ("keep", "kept_by_bytes", "seen_once")

    def __init__(self, keep: frozenset[str] | None) -> None:
        super().__init__()
        self.keep = keep
        # Kept keys by their UTF-8 bytes, so that an entry's key is matched before it is decoded.
        self.kept_by_bytes = None if keep is None else {key.encode(): key for key in keep}
        self.seen_once: set[bytes] = set()

    def __missing__(self, entry: bytes) -> tuple[object, object]:
        """(key, value) of an entry that is not in the memo: read, and remembered when it may be."""
        return _read_entry(self, entry)


def _read_entry(reader: _EntryReader, entry: bytes) -> tuple[object, object]:
    """(key, value) of an entry that is not in the memo, which it fills when it may.

    _SKIPPED_ENTRY when the key is not kept; raises _EntryWithoutValue when there is no value.
    An entry laid out as encoders write it (key, then value, lengths under 128 bytes) is split
    right here, its key matched by its bytes: attributes nothing reads (ids, content,
    parameters) cost no decoding. A module function rather than a method, like the three below:
    compiled, they are called as C functions.
    """
    key = raw = None
    size = len(entry)
    kept_by_bytes = reader.kept_by_bytes
    if kept_by_bytes is not None and size > 1 and entry[0] == _TAG_KEY and entry[1] < 0x80:
        key_end = 2 + entry[1]
        key = kept_by_bytes.get(_bytes_between(entry, 2, min(key_end, size)))
        if key is None:
            return _skipped(reader, entry)
        if key_end == size:
            raw = b""
        elif (key_end + 1 < size and entry[key_end] == _TAG_VALUE and entry[key_end + 1] < 0x80
              and key_end + 2 + entry[key_end + 1] == size):
            raw = _bytes_between(entry, key_end + 2, size)
    if raw is None:
        key, raw = _split_key_value(entry)
        if reader.keep is not None and key not in reader.keep:
            return _skipped(reader, entry)
    value = _attribute_value(key, raw) if raw else None
    if value is None:
        raise _EntryWithoutValue(key)
    known = (key, value)
    if size <= _MEMO_MAX_RAW_BYTES and _seen_lately(reader, entry) and _is_memoizable(value):
        _remember(reader, entry, known)
    return known


def _skipped(reader: _EntryReader, entry: bytes) -> tuple[object, object]:
    """_SKIPPED_ENTRY, remembered for an entry seen lately."""
    if len(entry) <= _MEMO_MAX_RAW_BYTES and _seen_lately(reader, entry):
        _remember(reader, entry, _SKIPPED_ENTRY)
    return _SKIPPED_ENTRY


def _seen_lately(reader: _EntryReader, entry: bytes) -> bool:
    """Whether the entry was seen since `seen_once` last started over; notes it when it was not."""
    seen_once = reader.seen_once
    if entry in seen_once:
        return True
    if len(seen_once) >= _SEEN_ONCE_MAX_ENTRIES:
        seen_once.clear()
    seen_once.add(entry)
    return False


def _remember(reader: _EntryReader, entry: bytes, known: tuple[object, object]) -> None:
    if len(reader) >= _MEMO_MAX_ENTRIES:
        reader.clear()
    reader[entry] = known


def _bytes_between(data: bytes, start: int, end: int) -> bytes:
    """data[start:end], for 0 <= start <= end <= len(data): compiled, made straight from the bytes."""
    return data[start:end]


def _entry_reader(keep: frozenset[str] | None) -> _EntryReader:
    """The reader of attribute entries for `keep`, looked up once per body."""
    reader = _entry_readers.get(keep)
    if reader is None:
        if len(_entry_readers) >= _ENTRY_READER_KEEP_SETS:
            _entry_readers.clear()
        reader = _entry_readers[keep] = _EntryReader(keep)
    return reader


def _pb_attributes(entries: Sequence[bytes], reader: _EntryReader) -> dict[str, AttributeValue]:
    """The wanted attributes of a view's serialized KeyValues, decoded (unset values skipped).

    Most entries are found whole in the memo (the operation, the model, the agent, the tier, the
    parameters), and the dict is built from their (key, value) pairs in C. A key sent twice is
    what its last entry says, including unset.
    """
    try:
        attributes: dict[Any, Any] = dict(map(reader.__getitem__, entries))
    except _EntryWithoutValue:
        attributes = _attributes_one_by_one(entries, reader)
    attributes.pop(_SKIPPED, None)
    return attributes


def _attributes_one_by_one(entries: Sequence[bytes], reader: _EntryReader) -> dict[Any, Any]:
    """The (key, value) pairs of entries some of which have no value, whose keys are then dropped."""
    attributes: dict[Any, Any] = {}
    for entry in entries:
        try:
            key, value = reader[entry]
        except _EntryWithoutValue as unset:
            attributes.pop(unset.key, None)
        else:
            attributes[key] = value
    return attributes


def _status_error(raw: bytes) -> bool:
    """Whether a span's serialized Status says STATUS_CODE_ERROR."""
    try:
        return Status.FromString(raw).code == _STATUS_CODE_ERROR
    except DecodeError as error:
        raise MalformedRequest(f"body is not a valid protobuf ExportTraceServiceRequest: "
                               f"a span's status is not a valid Status message: {error}") from error


class _WireError(Exception):
    """A body that is not well-formed protobuf; the message says what is wrong and where."""


def _varint_at(body: bytes, position: int, end: int) -> tuple[int, int]:
    """The varint at `position`, of which protobuf keeps the low 64 bits, and the position after it."""
    value = 0
    shift = 0
    start = position
    while position < end:
        byte = body[position]
        position += 1
        if shift == 63:  # the tenth byte: one bit left in 64, and no further byte allowed
            if byte >= 0x80:
                raise _WireError(f"a varint at byte {start} is longer than 10 bytes")
            return value | (byte & 1) << 63, position
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
    raise _WireError(f"a varint at byte {start} is cut off by the end of its message")


def _tag_at(body: bytes, position: int, end: int) -> tuple[int, int]:
    """The field tag (field number << 3 | wire type) at `position`, and the position after it."""
    tag, after = _varint_at(body, position, end)
    if tag >> 3 == 0 or tag >> 3 > _MAX_FIELD_NUMBER:
        raise _WireError(f"the field tag at byte {position} has no valid field number")
    return tag, after


def _value_end(body: bytes, position: int, end: int) -> tuple[int, int]:
    """Where the length-delimited value whose length is at `position` starts and ends."""
    length, start = _varint_at(body, position, end)
    if length > end - start:
        raise _WireError(f"a field at byte {position} is longer than what is left of its message")
    return start, start + length


def _skip_field(body: bytes, position: int, end: int, tag: int, depth: int) -> int:
    """The position after the value of a field nothing reads, checked for framing only.

    `depth` is how deep the field's message lies (the request is 0): groups count on from there.
    """
    wire_type = tag & 7
    if wire_type == _WIRE_VARINT:
        return _varint_at(body, position, end)[1]
    if wire_type == _WIRE_LENGTH_DELIMITED:
        return _value_end(body, position, end)[1]
    if wire_type == _WIRE_START_GROUP:
        return _skip_group(body, position, end, tag >> 3, depth + 1)
    if wire_type == _WIRE_END_GROUP:
        raise _WireError(f"the end of a group before byte {position} has no group to end")
    if wire_type == _WIRE_FIXED64:
        size = 8
    elif wire_type == _WIRE_FIXED32:
        size = 4
    else:
        raise _WireError(f"the field before byte {position} has wire type {wire_type}, which does not exist")
    if position + size > end:
        raise _WireError(f"the fixed{size * 8} value at byte {position} is cut off by the end of its message")
    return position + size


def _skip_group(body: bytes, position: int, end: int, field_number: int, depth: int) -> int:
    """The position after the end of the group `field_number` whose fields start at `position`."""
    if depth > _MAX_DEPTH:
        raise _WireError(f"a group at byte {position} lies deeper than {_MAX_DEPTH} messages and groups")
    while position < end:
        tag, position = _tag_at(body, position, end)
        if tag & 7 == _WIRE_END_GROUP:
            if tag >> 3 != field_number:
                raise _WireError(f"the group ending before byte {position} ends another group")
            return position
        position = _skip_field(body, position, end, tag, depth)
    raise _WireError(f"a group of field {field_number} is not ended before the end of its message")


def _length_delimited_fields(body: bytes, position: int, end: int, depth: int) -> list[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited field of a message; the others skipped.

    The walk of the messages above spans (a request, its resources and scopes): there are few.
    """
    fields = []
    while position < end:
        tag, position = _tag_at(body, position, end)
        if tag & 7 == _WIRE_LENGTH_DELIMITED:
            start, position = _value_end(body, position, end)
            fields.append((tag >> 3, start, position))
        else:
            position = _skip_field(body, position, end, tag, depth)
    return fields


def _fixed64_at(body: bytes, position: int) -> int:
    """The little-endian fixed64 at `position`, whose 8 bytes the caller has checked are there."""
    value = 0
    for index in range(position + 7, position - 1, -1):
        value = value << 8 | body[index]
    return value


def _string_at(body: bytes, start: int, end: int, what: str) -> str:
    """A string field's value: UTF-8, as protobuf requires of strings."""
    try:
        return body[start:end].decode()
    except UnicodeDecodeError:
        raise _WireError(f"{what} at byte {start} is not valid UTF-8") from None


def _read_event(body: bytes, position: int, end: int, reader: _EntryReader) -> SpanEvent:
    """The SpanEvent of the Event message at body[position:end]."""
    name = ""
    time_unix_nano = 0
    entries: list[bytes] = []
    while position < end:
        tag, position = _tag_at(body, position, end)
        field_number = tag >> 3
        wire_type = tag & 7
        if wire_type == _WIRE_LENGTH_DELIMITED and field_number in (_EVENT_ATTRIBUTES, _EVENT_NAME):
            start, position = _value_end(body, position, end)
            if field_number == _EVENT_ATTRIBUTES:
                entries.append(body[start:position])
            else:
                name = _string_at(body, start, position, "an event's name")
        elif wire_type == _WIRE_FIXED64 and field_number == _EVENT_TIME_UNIX_NANO and position + 8 <= end:
            time_unix_nano = _fixed64_at(body, position)
            position += 8
        else:
            position = _skip_field(body, position, end, tag, _DEPTH_EVENT)
    return SpanEvent(name, time_unix_nano, _pb_attributes(entries, reader))


def _read_span(body: bytes, position: int, end: int, reader: _EntryReader, resource_attributes: Attributes,
               ) -> SpanRecord:
    """The SpanRecord of the Span message at body[position:end].

    Every span goes through this loop: the common cases (one-byte tags, lengths under 128) are
    read in line, everything else by the helpers above.
    """
    trace_id = span_id = parent_span_id = status = b""
    name = ""
    start_time_unix_nano = end_time_unix_nano = 0
    entries: list[bytes] = []
    events: list[SpanEvent] = []
    while position < end:
        tag = body[position]
        if tag < 0x80 and tag >= 8:
            position += 1
        else:
            tag, position = _tag_at(body, position, end)
        field_number = tag >> 3
        wire_type = tag & 7
        if wire_type == _WIRE_LENGTH_DELIMITED:
            if position < end and body[position] < 0x80:
                start = position + 1
                position = start + body[position]
                if position > end:
                    raise _WireError(f"a field at byte {start - 1} is longer than what is left of its message")
            else:
                start, position = _value_end(body, position, end)
            if field_number == _SPAN_ATTRIBUTES:
                entries.append(body[start:position])
            elif field_number == _SPAN_TRACE_ID:
                trace_id = body[start:position]
            elif field_number == _SPAN_SPAN_ID:
                span_id = body[start:position]
            elif field_number == _SPAN_PARENT_SPAN_ID:
                parent_span_id = body[start:position]
            elif field_number == _SPAN_NAME:
                name = _string_at(body, start, position, "a span's name")
            elif field_number == _SPAN_EVENTS:
                events.append(_read_event(body, start, position, reader))
            elif field_number == _SPAN_STATUS:
                status = body[start:position]
        elif (wire_type == _WIRE_FIXED64 and position + 8 <= end
              and field_number in (_SPAN_START_TIME_UNIX_NANO, _SPAN_END_TIME_UNIX_NANO)):
            if field_number == _SPAN_START_TIME_UNIX_NANO:
                start_time_unix_nano = _fixed64_at(body, position)
            else:
                end_time_unix_nano = _fixed64_at(body, position)
            position += 8
        else:
            position = _skip_field(body, position, end, tag, _DEPTH_SPAN)
    # tuple.__new__ rather than SpanRecord(...): the same tuple without the Python-level __new__ of
    # a NamedTuple, about a fifth of a microsecond less per span.
    return tuple.__new__(SpanRecord, (
        trace_id,
        span_id,
        parent_span_id,
        name,
        start_time_unix_nano,
        end_time_unix_nano,
        _status_error(status) if status else False,
        _pb_attributes(entries, reader),
        resource_attributes,
        tuple(events) if events else (),
    ))


def _read_resource_spans(body: bytes, position: int, end: int, reader: _EntryReader,
                         records: list[SpanRecord]) -> None:
    """Append the SpanRecords of the ResourceSpans message at body[position:end] to `records`."""
    resource_entries: list[bytes] = []
    scopes = []
    for field_number, start, stop in _length_delimited_fields(body, position, end, _DEPTH_RESOURCE_SPANS):
        if field_number == _RESOURCE_SPANS_RESOURCE:
            # A message field sent twice is merged: the attributes of both count.
            for number, entry_start, entry_end in _length_delimited_fields(body, start, stop, _DEPTH_RESOURCE):
                if number == _RESOURCE_ATTRIBUTES:
                    resource_entries.append(body[entry_start:entry_end])
        elif field_number == _RESOURCE_SPANS_SCOPE_SPANS:
            scopes.append((start, stop))
    # One dict per resource, shared by all its spans: the resource is the same object in OTLP.
    resource_attributes = _pb_attributes(resource_entries, reader)
    for start, stop in scopes:
        _read_scope_spans(body, start, stop, reader, resource_attributes, records)


def _read_scope_spans(body: bytes, position: int, end: int, reader: _EntryReader, resource_attributes: Attributes,
                      records: list[SpanRecord]) -> None:
    """Append the SpanRecords of the ScopeSpans message at body[position:end] to `records`.

    Its own loop rather than `_length_delimited_fields`: a scope holds most of a body's spans, and
    each is read as it is met, without a (field, start, end) tuple per span.
    """
    while position < end:
        tag, position = _tag_at(body, position, end)
        if tag == _SCOPE_SPANS_SPANS << 3 | _WIRE_LENGTH_DELIMITED:
            start, position = _value_end(body, position, end)
            records.append(_read_span(body, start, position, reader, resource_attributes))
        else:
            position = _skip_field(body, position, end, tag, _DEPTH_SCOPE_SPANS)


def _decode_protobuf(body: bytes, keep: frozenset[str] | None) -> list[SpanRecord]:
    reader = _entry_reader(keep)
    records: list[SpanRecord] = []
    try:
        for field_number, start, end in _length_delimited_fields(body, 0, len(body), 0):
            if field_number == _REQUEST_RESOURCE_SPANS:
                _read_resource_spans(body, start, end, reader, records)
    except _WireError as error:
        raise MalformedRequest(f"body is not a valid protobuf ExportTraceServiceRequest: {error}") from None
    return records


# --- OTLP/JSON ---------------------------------------------------------------------------------


class _ShapeError(Exception):
    """A JSON value of the wrong shape; `path` grows as the error travels up to the request."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason

    def within(self, outer: str) -> _ShapeError:
        self.path = f"{outer}.{self.path}" if self.path else outer
        return self


def _field(obj: dict[str, Any], camel: str, snake: str) -> Any:
    """A field by its lowerCamelCase JSON name or its proto name, as protobuf JSON parsers allow."""
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _json_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _ShapeError(path, f"must be an object, got {_json_type(value)}")
    return value


def _json_list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _ShapeError(path, f"must be an array, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _json_integer(value: Any, path: str, minimum: int, maximum: int) -> int:
    """A protobuf JSON 64-bit integer: a number or a decimal string, as OTLP/JSON allows."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise _ShapeError(path, "must be an integer, got boolean")
    if isinstance(value, int):
        number = value
    elif ((isinstance(value, float) and value.is_integer())
          or (isinstance(value, str) and _DECIMAL_INTEGER.fullmatch(value))):
        number = int(value)
    else:
        raise _ShapeError(path, f"must be an integer or a decimal string, got {_quote(str(value))}")
    if not minimum <= number <= maximum:
        raise _ShapeError(path, f"{number} is out of range")
    return number


def _json_string(value: Any, path: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _ShapeError(path, f"must be a string, got {_json_type(value)}")
    return value


def _json_id(value: Any, path: str) -> bytes:
    """Ids are hex in OTLP/JSON (unlike other bytes fields); decoded to bytes, as OTLP/protobuf has them."""
    text = _json_string(value, path)
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise _ShapeError(
            path, f"{_quote(text)} is not hex: OTLP/JSON encodes trace and span ids as hex, not base64"
        ) from None


def _json_double(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _ShapeError(path, f"must be a number, got {_json_type(value)}")
    try:
        return float(value)
    except (ValueError, OverflowError):
        raise _ShapeError(path, f"{_quote(str(value))} is not a number") from None


def _json_bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _ShapeError(path, f"must be true or false, got {_json_type(value)}")
    return value


def _json_bytes(value: Any, path: str) -> bytes:
    text = _json_string(value, path)
    # Protobuf JSON accepts standard and URL-safe base64, padded or not.
    standard = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _ShapeError(path, "is not valid base64") from None


def _json_array(value: Any, path: str) -> tuple[AttributeValue, ...]:
    converted: list[AttributeValue] = []
    try:
        for index, item in enumerate(_json_list(_json_object(value, "").get("values"), "values")):
            try:
                element = _json_any_value(item)
            except _ShapeError as error:
                raise error.within(f"values[{index}]") from None
            if element is not None:
                converted.append(element)
    except _ShapeError as error:
        raise error.within(path) from None
    return tuple(converted)


def _json_kvlist(value: Any, path: str) -> dict[str, AttributeValue]:
    try:
        return _json_attributes(_json_object(value, "").get("values"), None, "values")
    except _ShapeError as error:
        raise error.within(path) from None


_JSON_VALUE_CONVERTERS: dict[str, Callable[[Any, str], AttributeValue]] = {
    "stringValue": _json_string,
    "string_value": _json_string,
    "boolValue": _json_bool,
    "bool_value": _json_bool,
    "intValue": lambda value, path: _json_integer(value, path, _INT64_MIN, _INT64_MAX),
    "int_value": lambda value, path: _json_integer(value, path, _INT64_MIN, _INT64_MAX),
    "doubleValue": _json_double,
    "double_value": _json_double,
    "bytesValue": _json_bytes,
    "bytes_value": _json_bytes,
    "arrayValue": _json_array,
    "array_value": _json_array,
    "kvlistValue": _json_kvlist,
    "kvlist_value": _json_kvlist,
}


def _json_any_value(value: Any) -> AttributeValue | None:
    """Convert an OTLP/JSON AnyValue; None when no value is set (such entries are skipped)."""
    if value is None:
        return None
    converted: AttributeValue | None = None
    for kind, raw in _json_object(value, "").items():
        converter = _JSON_VALUE_CONVERTERS.get(kind)
        if converter is None or raw is None:
            continue  # unknown fields are ignored, null means unset
        if converted is not None:
            raise _ShapeError("", "sets more than one of the AnyValue fields")
        converted = converter(raw, kind)
    return converted


def _json_attributes(value: Any, keep: frozenset[str] | None, path: str) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {}
    for index, item in enumerate(_json_list(value, path)):
        try:
            key_value = _json_object(item, "")
            key = _json_string(key_value.get("key"), "key")
            if keep is None or key in keep:
                try:
                    converted = _json_any_value(key_value.get("value"))
                except _ShapeError as error:
                    raise error.within("value") from None
                if converted is not None:
                    attributes[key] = converted
        except _ShapeError as error:
            raise error.within(f"{path}[{index}]") from None
    return attributes


def _json_span(span: Any, resource_attributes: Attributes, keep: frozenset[str] | None) -> SpanRecord:
    span = _json_object(span, "")
    events = []
    for index, event in enumerate(_json_list(span.get("events"), "events")):
        try:
            event = _json_object(event, "")
            time_unix_nano = _field(event, "timeUnixNano", "time_unix_nano")
            events.append(SpanEvent(
                _json_string(event.get("name"), "name"),
                _json_integer(time_unix_nano, "timeUnixNano", 0, _UINT64_MAX),
                _json_attributes(event.get("attributes"), keep, "attributes"),
            ))
        except _ShapeError as error:
            raise error.within(f"events[{index}]") from None
    status = span.get("status")
    status_code = 0
    if status is not None:
        code = _json_object(status, "status").get("code")
        if isinstance(code, str) and not _DECIMAL_INTEGER.fullmatch(code):
            if code not in _STATUS_CODE_BY_NAME:
                raise _ShapeError("status.code", f"unknown status code {_quote(code)}")
            status_code = _STATUS_CODE_BY_NAME[code]
        else:
            status_code = _json_integer(code, "status.code", -(2**31), 2**31 - 1)
    return SpanRecord(
        _json_id(_field(span, "traceId", "trace_id"), "traceId"),
        _json_id(_field(span, "spanId", "span_id"), "spanId"),
        _json_id(_field(span, "parentSpanId", "parent_span_id"), "parentSpanId"),
        _json_string(span.get("name"), "name"),
        _json_integer(_field(span, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano",
                      0, _UINT64_MAX),
        _json_integer(_field(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano",
                      0, _UINT64_MAX),
        status_code == _STATUS_CODE_ERROR,
        _json_attributes(span.get("attributes"), keep, "attributes"),
        resource_attributes,
        tuple(events),
    )


def _decode_json(body: bytes, keep: frozenset[str] | None) -> list[SpanRecord]:
    try:
        document = json.loads(body)
    except RecursionError as error:
        raise MalformedRequest("body is not valid JSON: nested too deeply") from error
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise MalformedRequest(f"body is not valid JSON: {error}") from error
    try:
        return _json_request(document, keep)
    except _ShapeError as error:
        raise MalformedRequest(f"body is not an OTLP/JSON ExportTraceServiceRequest: "
                               f"{error.path or '(top level)'}: {error.reason}") from None
    except RecursionError as error:
        raise MalformedRequest("body is not an OTLP/JSON ExportTraceServiceRequest: "
                               "attribute values nested too deeply") from error


def _json_request(document: Any, keep: frozenset[str] | None) -> list[SpanRecord]:
    records: list[SpanRecord] = []
    request = _json_object(document, "")
    for resource_index, resource_spans in enumerate(
        _json_list(_field(request, "resourceSpans", "resource_spans"), "resourceSpans")
    ):
        try:
            resource_spans = _json_object(resource_spans, "")
            resource = resource_spans.get("resource")
            resource_attributes: Attributes = {}
            if resource is not None:
                try:
                    resource_attributes = _json_attributes(
                        _json_object(resource, "").get("attributes"), keep, "attributes"
                    )
                except _ShapeError as error:
                    raise error.within("resource") from None
            for scope_index, scope_spans in enumerate(
                _json_list(_field(resource_spans, "scopeSpans", "scope_spans"), "scopeSpans")
            ):
                try:
                    spans = _json_list(_json_object(scope_spans, "").get("spans"), "spans")
                    for span_index, span in enumerate(spans):
                        try:
                            records.append(_json_span(span, resource_attributes, keep))
                        except _ShapeError as error:
                            raise error.within(f"spans[{span_index}]") from None
                except _ShapeError as error:
                    raise error.within(f"scopeSpans[{scope_index}]") from None
        except _ShapeError as error:
            raise error.within(f"resourceSpans[{resource_index}]") from None
    return records
