"""Specification of the walk of protobuf bodies: it reads what upb reads, on valid and corrupted bodies.

The receiver walks the wire format itself (genai_exporter/receive.py). The reference here is upb
parsing the same body with a *view* of the OTLP messages that declares just the fields the
receiver reads, with attributes as `repeated bytes` (serialized KeyValues): what upb accepts, the
walk accepts with the same spans; what upb refuses, the walk refuses with a 400. Both hand the
attribute entries to the same reader, so that these tests are about the wire format alone
(attribute values are specified in test_receive_protobuf.py).
"""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from genai_exporter import receive, semconv
from genai_exporter.receive import MalformedRequest, decode_export_request
from genai_exporter.records import SpanEvent, SpanRecord
from tests.otlpwire import length_delimited, varint
from tests.test_receive_protobuf import requests

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

PROTOBUF = "application/x-protobuf"
KEEP = frozenset({semconv.OPERATION_NAME, semconv.PROVIDER_NAME, semconv.INPUT_TOKENS, semconv.SERVICE_NAME})

_PACKAGE = "reference_view"
_FIELD = descriptor_pb2.FieldDescriptorProto
# Field name, number, type, repeated, message type: the fields of opentelemetry/proto/trace/v1/trace.proto
# (and resource.proto, trace_service.proto) that the receiver reads, declared as it reads them.
_VIEW_MESSAGES = {
    "Resource": (("attributes", 1, _FIELD.TYPE_BYTES, True, ""),),
    "Event": (
        ("time_unix_nano", 1, _FIELD.TYPE_FIXED64, False, ""),
        ("name", 2, _FIELD.TYPE_STRING, False, ""),
        ("attributes", 3, _FIELD.TYPE_BYTES, True, ""),
    ),
    "Span": (
        ("trace_id", 1, _FIELD.TYPE_BYTES, False, ""),
        ("span_id", 2, _FIELD.TYPE_BYTES, False, ""),
        ("parent_span_id", 4, _FIELD.TYPE_BYTES, False, ""),
        ("name", 5, _FIELD.TYPE_STRING, False, ""),
        ("start_time_unix_nano", 7, _FIELD.TYPE_FIXED64, False, ""),
        ("end_time_unix_nano", 8, _FIELD.TYPE_FIXED64, False, ""),
        ("attributes", 9, _FIELD.TYPE_BYTES, True, ""),
        ("events", 11, _FIELD.TYPE_MESSAGE, True, "Event"),
        ("status", 15, _FIELD.TYPE_BYTES, False, ""),
    ),
    "ScopeSpans": (("spans", 2, _FIELD.TYPE_MESSAGE, True, "Span"),),
    "ResourceSpans": (
        ("resource", 1, _FIELD.TYPE_MESSAGE, False, "Resource"),
        ("scope_spans", 2, _FIELD.TYPE_MESSAGE, True, "ScopeSpans"),
    ),
    "ExportTraceServiceRequest": (("resource_spans", 1, _FIELD.TYPE_MESSAGE, True, "ResourceSpans"),),
}


def _view_request_class() -> type[Message]:
    pool = descriptor_pool.DescriptorPool()
    view = descriptor_pb2.FileDescriptorProto(name="reference_view.proto", package=_PACKAGE, syntax="proto3")
    for message_name, fields in _VIEW_MESSAGES.items():
        message = view.message_type.add(name=message_name)
        for name, number, field_type, repeated, type_name in fields:
            field = message.field.add(name=name, number=number, type=field_type,
                                      label=_FIELD.LABEL_REPEATED if repeated else _FIELD.LABEL_OPTIONAL)
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool.Add(view)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.ExportTraceServiceRequest"))


ViewRequest = _view_request_class()


def reference(body: bytes, keep: frozenset[str] | None = KEEP) -> list[SpanRecord] | str:
    """The spans upb reads in a body through the view, or "refused"; entries read by the receiver's reader."""
    try:
        request = ViewRequest.FromString(body)
    except DecodeError:
        return "refused"
    reader = receive._entry_reader(keep)

    def attributes(entries) -> dict:
        return receive._pb_attributes(list(entries), reader)

    records = []
    try:
        for resource_spans in request.resource_spans:
            resource_attributes = attributes(resource_spans.resource.attributes)  # read with or without spans
            records += [
                SpanRecord(span.trace_id, span.span_id, span.parent_span_id, span.name,
                           span.start_time_unix_nano, span.end_time_unix_nano,
                           bool(span.status) and Status.FromString(span.status).code == Status.STATUS_CODE_ERROR,
                           attributes(span.attributes), resource_attributes,
                           tuple(SpanEvent(event.name, event.time_unix_nano, attributes(event.attributes))
                                 for event in span.events))
                for scope_spans in resource_spans.scope_spans
                for span in scope_spans.spans
            ]
    except (MalformedRequest, DecodeError):
        return "refused"
    return records


def walked(body: bytes, keep: frozenset[str] | None = KEEP) -> list[SpanRecord] | str:
    """The spans the receiver reads in a body, or "refused" when it answers 400."""
    try:
        return decode_export_request(body, PROTOBUF, None, 1 << 24, keep)
    except MalformedRequest:
        return "refused"


def body_of_span(*fields: bytes) -> bytes:
    """A request of one resource, one scope and one span made of these serialized Span fields."""
    return length_delimited(1, length_delimited(2, length_delimited(2, b"".join(fields))))


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def fixed64(number: int, value: int) -> bytes:
    return tag(number, 1) + value.to_bytes(8, "little")


def attribute(number: int, key: str, string_value: bytes) -> bytes:
    """An attribute field (a KeyValue of a string) of number `number` in its message."""
    return length_delimited(number, length_delimited(1, key.encode())
                            + length_delimited(2, length_delimited(1, string_value)))


TRACE_ID = length_delimited(1, bytes(range(16)))
SPAN_ID = length_delimited(2, bytes(range(8)))
OPERATION = attribute(9, semconv.OPERATION_NAME, b"chat")


# --- valid bodies ---------------------------------------------------------------------------------

@settings(max_examples=100, deadline=None)
@given(requests)
def test_any_request_is_read_as_upb_reads_it(request):
    body = request.SerializeToString()
    assert walked(body) == reference(body)


def test_a_span_with_every_field_the_receiver_reads_is_read_whole():
    event = length_delimited(11, fixed64(1, 7) + length_delimited(2, b"retry")
                             + attribute(3, semconv.OPERATION_NAME, b"chat"))
    body = body_of_span(TRACE_ID, SPAN_ID, length_delimited(4, b"\x09" * 8), length_delimited(5, b"chat gpt-4o"),
                        fixed64(7, 1_700_000_000_000_000_000), fixed64(8, 1_700_000_001_500_000_000), OPERATION,
                        event, length_delimited(15, b"\x18\x02"))
    assert walked(body) == [SpanRecord(
        bytes(range(16)), bytes(range(8)), b"\x09" * 8, "chat gpt-4o", 1_700_000_000_000_000_000,
        1_700_000_001_500_000_000, True, {semconv.OPERATION_NAME: "chat"}, {},
        (SpanEvent("retry", 7, {semconv.OPERATION_NAME: "chat"}),),
    )] == reference(body)


def test_fields_nothing_reads_are_skipped_whatever_their_wire_type():
    unknown = (tag(6, 0) + varint(2**64 - 1) + tag(16, 5) + b"\x01\x00\x00\x00" + tag(17, 1) + bytes(8)
               + length_delimited(13, b"\x0a\x10" + bytes(16)) + tag(40, 3) + tag(1, 0) + b"\x05" + tag(2, 3)
               + tag(2, 4) + tag(40, 4) + length_delimited(3, b"\xff\xfe not UTF-8 trace state"))
    body = body_of_span(TRACE_ID, unknown, SPAN_ID, OPERATION)
    assert [(span.trace_id, span.span_id, span.attributes) for span in walked(body)] == [
        (bytes(range(16)), bytes(range(8)), {semconv.OPERATION_NAME: "chat"})]
    assert walked(body) == reference(body)


def test_a_field_sent_with_another_wire_type_than_its_own_is_skipped_as_unknown():
    body = body_of_span(TRACE_ID, tag(7, 0) + varint(1234), tag(1, 1) + bytes(8), SPAN_ID)
    assert [(span.trace_id, span.start_time_unix_nano) for span in walked(body)] == [(bytes(range(16)), 0)]
    assert walked(body) == reference(body)


def test_the_last_of_a_field_sent_twice_wins():
    body = body_of_span(TRACE_ID, SPAN_ID, length_delimited(5, b"first"), length_delimited(5, b"second"),
                        fixed64(8, 1), fixed64(8, 2))
    assert [(span.name, span.end_time_unix_nano) for span in walked(body)] == [("second", 2)] == [
        (span.name, span.end_time_unix_nano) for span in reference(body)]


def test_a_resource_sent_twice_is_merged():
    service = attribute(1, semconv.SERVICE_NAME, b"bot")
    provider = attribute(1, semconv.PROVIDER_NAME, b"openai")
    span = length_delimited(2, length_delimited(2, TRACE_ID + SPAN_ID))
    body = length_delimited(1, span + length_delimited(1, service) + length_delimited(1, provider))
    assert [span.resource_attributes for span in walked(body)] == [
        {semconv.SERVICE_NAME: "bot", semconv.PROVIDER_NAME: "openai"}]
    assert walked(body) == reference(body)


def test_an_empty_body_is_a_request_without_spans():
    assert walked(b"") == [] == reference(b"")


# --- corrupted bodies -----------------------------------------------------------------------------

@pytest.mark.parametrize("fields", [
    pytest.param((TRACE_ID, length_delimited(5, b"\xc3\x28")), id="span name not UTF-8"),
    pytest.param((length_delimited(11, length_delimited(2, b"\xed\xa0\x80")),), id="event name a surrogate"),
    pytest.param((TRACE_ID, tag(8, 1) + bytes(7)), id="fixed64 cut off"),
    pytest.param((tag(16, 5) + bytes(3),), id="fixed32 cut off"),
    pytest.param((tag(6, 0) + b"\xff" * 10 + b"\x01",), id="varint of 11 bytes"),
    pytest.param((tag(6, 0) + b"\xff\xff",), id="varint cut off"),
    pytest.param((tag(9, 2) + varint(50) + b"short",), id="length over the end"),
    pytest.param((tag(40, 3) + tag(1, 0) + b"\x01",), id="group not ended"),
    pytest.param((tag(40, 3) + tag(41, 4),), id="group ended by another"),
    pytest.param((tag(40, 4),), id="end of group without a start"),
    pytest.param((tag(40, 6) + bytes(8),), id="wire type 6"),
    pytest.param((tag(40, 7) + bytes(8),), id="wire type 7"),
    pytest.param((b"\x02\x00",), id="field number 0"),
    pytest.param((b"\x8a\x80\x80\x80\x80\x01\x00",), id="tag over 32 bits"),
    pytest.param((length_delimited(15, b"\x18"),), id="status not a Status message"),
])
def test_a_corrupted_span_is_refused_as_upb_refuses_it(fields):
    body = body_of_span(*fields)
    assert (walked(body), reference(body)) == ("refused", "refused")


def test_a_refusal_says_what_is_wrong_and_where():
    with pytest.raises(MalformedRequest) as raised:
        decode_export_request(body_of_span(TRACE_ID, tag(8, 1) + bytes(7)), PROTOBUF, None, 1 << 24, KEEP)
    assert raised.value.message == ("body is not a valid protobuf ExportTraceServiceRequest: "
                                    "the fixed64 value at byte 25 is cut off by the end of its message")


@pytest.mark.parametrize(("depth", "refused"), [(1, False), (97, False), (98, True), (120, True)])
def test_unknown_groups_nested_past_the_depth_upb_allows_are_refused(depth, refused):
    # A span lies three messages deep, and upb allows 100 levels of messages and groups together.
    body = body_of_span(TRACE_ID, tag(40, 3) * depth + tag(40, 4) * depth)
    assert (walked(body) == "refused", reference(body) == "refused") == (refused, refused)


@st.composite
def corrupted_bodies(draw) -> bytes:
    """A valid request's body with a few bytes changed, inserted, deleted, or cut off at the end."""
    body = bytearray(draw(requests).SerializeToString())
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(body)))
        change = draw(st.sampled_from(["replace", "insert", "delete", "cut"]))
        byte = draw(st.integers(0, 255))
        if change == "replace" and position < len(body):
            body[position] = byte
        elif change == "insert":
            body.insert(position, byte)
        elif change == "delete" and position < len(body):
            del body[position]
        elif change == "cut":
            del body[position:]
    return bytes(body)


@settings(max_examples=400, deadline=None)
@given(corrupted_bodies())
def test_a_corrupted_body_is_read_or_refused_as_upb_reads_or_refuses_it(body):
    assert walked(body) == reference(body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_read_or_refused_as_upb_reads_or_refuses_them(body):
    assert walked(body, keep=None) == reference(body, keep=None)
