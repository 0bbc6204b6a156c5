"""Specification of protobuf decoding: the receiver's view of OTLP sees what the generated classes see."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from genai_exporter import receive, semconv
from genai_exporter.receive import MalformedRequest, decode_export_request
from genai_exporter.records import AttributeValue, SpanEvent, SpanRecord
from tests.otlpwire import body_with_raw_attributes, body_with_span_fields, length_delimited, varint

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

PROTOBUF = "application/x-protobuf"
KEEP = frozenset({semconv.OPERATION_NAME, semconv.PROVIDER_NAME, semconv.INPUT_TOKENS, semconv.SERVICE_NAME})
KEYS = (*sorted(KEEP), "gen_ai.response.id", "server.address", "gen_ai.tool.call.arguments")


def decode(request: ExportTraceServiceRequest, keep: frozenset[str] | None = KEEP) -> list[SpanRecord]:
    return decode_body(request.SerializeToString(), keep)


def decode_body(body: bytes, keep: frozenset[str] | None = KEEP) -> list[SpanRecord]:
    return decode_export_request(body, PROTOBUF, None, 1 << 24, keep)


def one_span(*attributes: KeyValue) -> ExportTraceServiceRequest:
    span = Span(trace_id=b"\x4b" * 16, span_id=b"\x00\xf0" * 4, attributes=attributes)
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])


def reference_value(value: AnyValue) -> AttributeValue | None:
    """The OTLP AnyValue as the records hold it, read with the generated OTLP classes."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        items = (reference_value(item) for item in value.array_value.values)
        return tuple(item for item in items if item is not None)
    if kind == "kvlist_value":
        entries = ((entry.key, reference_value(entry.value)) for entry in value.kvlist_value.values)
        return {key: item for key, item in entries if item is not None}
    if kind is None or kind == "string_value_strindex":  # an index into a profile's string table: unset in traces
        return None
    return getattr(value, kind)


def reference_attributes(key_values: Any, keep: frozenset[str] | None) -> dict[str, AttributeValue]:
    """The last entry of each wanted key, as a dict keeps it; a key whose last value is unset is absent."""
    last = {key_value.key: key_value.value for key_value in key_values}
    converted = {key: reference_value(value) for key, value in last.items() if keep is None or key in keep}
    return {key: value for key, value in converted.items() if value is not None}


def reference_records(request: ExportTraceServiceRequest, keep: frozenset[str] | None) -> list[SpanRecord]:
    return [
        SpanRecord(span.trace_id, span.span_id, span.parent_span_id, span.name,
                   span.start_time_unix_nano, span.end_time_unix_nano,
                   span.status.code == Status.STATUS_CODE_ERROR,
                   reference_attributes(span.attributes, keep),
                   reference_attributes(resource_spans.resource.attributes, keep),
                   tuple(SpanEvent(event.name, event.time_unix_nano, reference_attributes(event.attributes, keep))
                         for event in span.events))
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


scalars = st.one_of(
    st.builds(AnyValue, string_value=st.text(max_size=8)),
    st.builds(AnyValue, bool_value=st.booleans()),
    st.builds(AnyValue, int_value=st.integers(-(2**63), 2**63 - 1)),
    st.builds(AnyValue, double_value=st.floats(allow_nan=False)),
    st.builds(AnyValue, bytes_value=st.binary(max_size=8)),
    st.just(AnyValue()),
)
any_values = st.recursive(scalars, lambda inner: st.one_of(
    st.builds(lambda items: AnyValue(array_value=ArrayValue(values=items)), st.lists(inner, max_size=3)),
    st.builds(lambda entries: AnyValue(kvlist_value=KeyValueList(values=entries)),
              st.lists(st.builds(KeyValue, key=st.sampled_from(KEYS), value=inner), max_size=3)),
), max_leaves=6)
key_values = st.lists(st.builds(KeyValue, key=st.sampled_from(KEYS), value=any_values), max_size=8)
spans = st.builds(
    Span,
    trace_id=st.binary(min_size=16, max_size=16), span_id=st.binary(min_size=8, max_size=8),
    parent_span_id=st.sampled_from([b"", b"\x01" * 8]), trace_state=st.text(max_size=4), name=st.text(max_size=8),
    kind=st.integers(0, 5),
    start_time_unix_nano=st.integers(0, 2**64 - 1), end_time_unix_nano=st.integers(0, 2**64 - 1),
    attributes=key_values,
    events=st.lists(st.builds(Span.Event, time_unix_nano=st.integers(0, 2**64 - 1), name=st.text(max_size=6),
                              attributes=key_values), max_size=2),
    links=st.lists(st.builds(Span.Link, trace_id=st.binary(min_size=16, max_size=16), attributes=key_values),
                   max_size=2),
    status=st.builds(Status, code=st.integers(0, 2), message=st.text(max_size=4)),
)
requests = st.builds(
    ExportTraceServiceRequest,
    resource_spans=st.lists(st.builds(
        ResourceSpans,
        resource=st.builds(lambda attributes: {"attributes": attributes}, key_values),
        scope_spans=st.lists(st.builds(ScopeSpans, spans=st.lists(spans, max_size=3)), max_size=2),
    ), max_size=2),
)


@settings(max_examples=100, deadline=None)
@given(requests)
def test_decoded_spans_equal_what_the_generated_otlp_classes_read(request):
    assert decode(request) == reference_records(request, KEEP)


@settings(max_examples=30, deadline=None)
@given(requests)
def test_without_a_keep_filter_every_attribute_is_decoded(request):
    assert decode(request, keep=None) == reference_records(request, None)


@settings(max_examples=50, deadline=None)
@given(requests)
def test_a_request_decoded_again_from_remembered_entries_gives_the_same_spans(request):
    # Three times: an entry not kept is remembered as skipped when it is seen again, then hit.
    assert [decode(request) for _ in range(3)] == [reference_records(request, KEEP)] * 3


def test_a_parameter_that_is_not_kept_stays_skipped_once_remembered():
    request = one_span(
        KeyValue(key="gen_ai.request.temperature", value=AnyValue(double_value=0.2)),
        KeyValue(key=semconv.OPERATION_NAME, value=AnyValue(string_value="chat")),
    )
    assert [decode(request)[0].attributes for _ in range(3)] == [{semconv.OPERATION_NAME: "chat"}] * 3


def test_attributes_outside_the_keep_set_are_not_decoded():
    request = one_span(
        KeyValue(key=semconv.OPERATION_NAME, value=AnyValue(string_value="chat")),
        KeyValue(key="gen_ai.tool.call.arguments", value=AnyValue(string_value='{"query": "refund policy"}')),
    )
    assert decode(request)[0].attributes == {semconv.OPERATION_NAME: "chat"}


def test_a_key_sent_twice_keeps_its_last_value():
    request = one_span(
        KeyValue(key=semconv.INPUT_TOKENS, value=AnyValue(int_value=10)),
        KeyValue(key=semconv.INPUT_TOKENS, value=AnyValue(int_value=1200)),
    )
    assert decode(request)[0].attributes == {semconv.INPUT_TOKENS: 1200}


def test_a_key_whose_last_entry_has_no_value_is_absent_and_the_other_keys_stay():
    request = one_span(
        KeyValue(key=semconv.OPERATION_NAME, value=AnyValue(string_value="chat")),
        KeyValue(key=semconv.INPUT_TOKENS, value=AnyValue(int_value=1200)),
        KeyValue(key=semconv.INPUT_TOKENS),
        KeyValue(key=semconv.PROVIDER_NAME, value=AnyValue(string_value="openai")),
    )
    assert decode(request)[0].attributes == {semconv.OPERATION_NAME: "chat", semconv.PROVIDER_NAME: "openai"}


def test_a_key_sent_without_a_value_then_with_one_keeps_the_value():
    request = one_span(
        KeyValue(key=semconv.INPUT_TOKENS),
        KeyValue(key=semconv.INPUT_TOKENS, value=AnyValue(int_value=1200)),
    )
    assert decode(request)[0].attributes == {semconv.INPUT_TOKENS: 1200}


# --- attribute values: decoded by hand or from the memo, exactly as protobuf reads them ---------------

def exactly(value: AttributeValue | None) -> object:
    """A value compared with its types: True is not 1, 1.0 is not 1, -0.0 is not 0.0, NaN equals NaN."""
    if isinstance(value, tuple):
        return "array", tuple(exactly(item) for item in value)
    if isinstance(value, dict):
        return "kvlist", {key: exactly(item) for key, item in value.items()}
    return type(value).__name__, repr(value)


def decoded_value(body: bytes) -> object:
    """The operation name of the one span of a body, compared exactly; None when it is absent."""
    return exactly(decode_body(body)[0].attributes.get(semconv.OPERATION_NAME))


extreme_scalars = st.one_of(
    st.builds(AnyValue, string_value=st.text(max_size=200)),  # non-ASCII, empty, length prefixes of 1 and 2 bytes
    st.builds(AnyValue, bool_value=st.booleans()),
    st.builds(AnyValue, int_value=st.one_of(st.sampled_from([0, -1, 2**63 - 1, -(2**63)]),
                                            st.integers(-(2**63), 2**63 - 1))),
    st.builds(AnyValue, double_value=st.one_of(st.sampled_from([float("nan"), float("inf"), -float("inf"), -0.0]),
                                               st.floats())),
    st.builds(AnyValue, bytes_value=st.binary(max_size=8)),
    st.just(AnyValue()),
)
extreme_any_values = st.recursive(extreme_scalars, lambda inner: st.one_of(
    st.builds(lambda items: AnyValue(array_value=ArrayValue(values=items)), st.lists(inner, max_size=3)),
    st.builds(lambda entries: AnyValue(kvlist_value=KeyValueList(values=entries)),
              st.lists(st.builds(KeyValue, key=st.text(max_size=4), value=inner), max_size=3)),
), max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(extreme_any_values)
def test_every_any_value_decodes_to_what_the_generated_otlp_classes_read(value):
    body = one_span(KeyValue(key=semconv.OPERATION_NAME, value=value)).SerializeToString()
    assert decoded_value(body) == exactly(reference_value(value))


def padded_varint(number: int, padding: int) -> bytes:
    """A varint with `padding` needless bytes: longer than it has to be, which protobuf still reads."""
    encoded = bytearray(varint(number))
    if padding:
        encoded[-1] |= 0x80
        encoded += b"\x80" * (padding - 1) + b"\x00"
    return bytes(encoded)


ANY_VALUE_FIELD_NUMBERS = st.integers(1, 8)  # string, bool, int, double, array, kvlist, bytes, and one unknown
text_payloads = st.one_of(
    st.binary(max_size=6),
    st.text(max_size=4).map(str.encode),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2)
    .map(lambda text: text.encode("utf-8", "surrogatepass")),  # UTF-8 of surrogates: not valid UTF-8
)
wire_fields = st.one_of(
    st.builds(length_delimited, ANY_VALUE_FIELD_NUMBERS, text_payloads),
    st.builds(lambda payload, padding: b"\x0a" + padded_varint(len(payload), padding) + payload,
              text_payloads, st.integers(0, 6)),
    # Varints of up to 11 bytes: needless bytes, bits beyond 64, too long.
    st.builds(lambda number, groups, last: varint(number << 3) + bytes(groups) + bytes([last]),
              ANY_VALUE_FIELD_NUMBERS, st.lists(st.integers(0x80, 0xFF), max_size=10), st.integers(0, 0x7F)),
    st.builds(lambda number, payload: varint(number << 3 | 1) + payload,
              ANY_VALUE_FIELD_NUMBERS, st.binary(min_size=8, max_size=8)),
)
raw_any_values = st.one_of(st.lists(wire_fields, max_size=3).map(b"".join), st.binary(max_size=12))


@settings(max_examples=500, deadline=None)
@given(raw_any_values)
@example(b"\x18" + b"\xff" * 9 + b"\x01")  # int_value -1: ten bytes
@example(b"\x18" + b"\xff" * 9 + b"\x7f")  # bits beyond 64, which protobuf drops: -1 too
@example(b"\x10" + b"\x80" * 9 + b"\x02")  # bool_value with only bit 64 set: false
@example(b"\x18" + b"\x80" * 10 + b"\x00")  # an eleven-byte varint: refused
@example(b"\x0a" + padded_varint(4, 4) + b"chat")  # a five-byte length prefix: read
@example(b"\x0a" + padded_varint(4, 5) + b"chat")  # a six-byte length prefix: refused
def test_any_value_bytes_of_any_shape_are_decoded_or_refused_as_protobuf_reads_them(raw):
    body = body_with_raw_attributes([(semconv.OPERATION_NAME, raw)])
    try:
        expected = exactly(reference_value(AnyValue.FromString(raw)))
    except DecodeError:
        with pytest.raises(MalformedRequest):
            decode_body(body)
    else:
        assert decoded_value(body) == expected


def test_an_any_value_holding_two_string_fields_is_the_last_one():
    raw = length_delimited(1, b"chat") + length_delimited(1, b"embeddings")
    assert decode_body(body_with_raw_attributes([(semconv.OPERATION_NAME, raw)]))[0].attributes == {
        semconv.OPERATION_NAME: "embeddings"}


def test_an_any_value_holding_a_string_and_an_int_field_is_the_int():
    raw = length_delimited(1, b"1200") + b"\x18" + varint(1200)
    assert decode_body(body_with_raw_attributes([(semconv.INPUT_TOKENS, raw)]))[0].attributes == {
        semconv.INPUT_TOKENS: 1200}


def test_a_string_value_longer_than_16_kib_is_decoded_whole():
    text = "réponse " * 4096
    request = one_span(KeyValue(key=semconv.OPERATION_NAME, value=AnyValue(string_value=text)))
    assert decode(request)[0].attributes == {semconv.OPERATION_NAME: text}


def test_a_one_element_string_array_is_a_one_element_tuple():
    finish_reasons = AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="stop")]))
    request = one_span(KeyValue(key=semconv.FINISH_REASONS, value=finish_reasons))
    assert decode(request, keep=frozenset({semconv.FINISH_REASONS}))[0].attributes == {
        semconv.FINISH_REASONS: ("stop",)}


def test_invalid_utf8_in_a_kept_string_attribute_is_a_400_naming_the_attribute():
    body = body_with_raw_attributes([(semconv.OPERATION_NAME, length_delimited(1, b"chat\xff"))])
    with pytest.raises(MalformedRequest) as raised:
        decode_body(body)
    assert (raised.value.http_status, raised.value.message) == (400, (
        "body is not a valid protobuf ExportTraceServiceRequest: "
        "the string value of attribute 'gen_ai.operation.name' is not valid UTF-8"))


def test_a_truncated_any_value_of_a_kept_attribute_is_a_400_naming_the_attribute():
    body = body_with_raw_attributes([(semconv.OPERATION_NAME, b"\x0a\x05chat")])
    with pytest.raises(MalformedRequest) as raised:
        decode_body(body)
    assert (raised.value.http_status, raised.value.message) == (400, (
        "body is not a valid protobuf ExportTraceServiceRequest: "
        "the value of attribute 'gen_ai.operation.name' is not a valid AnyValue: "
        "Error parsing message with type 'opentelemetry.proto.common.v1.AnyValue': Wire format was corrupt"))


def test_invalid_utf8_in_an_attribute_that_is_not_kept_is_accepted():
    body = body_with_raw_attributes([
        (semconv.OPERATION_NAME, length_delimited(1, b"chat")),
        ("gen_ai.tool.call.arguments", length_delimited(1, b'{"query": "\xff"}')),
    ])
    assert decode_body(body)[0].attributes == {semconv.OPERATION_NAME: "chat"}


def test_spans_with_the_same_kvlist_value_get_dicts_of_their_own():
    kvlist = AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="tier", value=AnyValue(string_value="pro"))]))
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[
        Span(trace_id=b"\x4b" * 16, span_id=bytes([index]) * 8, attributes=[KeyValue(key="metadata", value=kvlist)])
        for index in (1, 2)
    ])])])
    first, second = (record.attributes["metadata"] for record in decode(request, keep=None))
    assert (first, first is second) == ({"tier": "pro"}, False)


def test_the_memo_of_entries_stays_bounded_whatever_values_arrive():
    distinct_values = [(f"attribute.{index}", b"\x18" + varint(index)) for index in range(100_000)]
    decode_body(body_with_raw_attributes(distinct_values), keep=None)
    assert len(receive._entry_readers[None]) <= receive._MEMO_MAX_ENTRIES


def test_a_full_memo_of_entries_holds_under_11_mib_in_its_worst_case(monkeypatch):
    # The most memory per entry: 128-byte entries of distinct keys (every key read), each an array
    # of four distinct strings, the longest array remembered (a single string takes 7.4 MiB); each
    # entry sent twice in a row, so that every one is remembered.
    monkeypatch.setattr(receive, "_entry_readers", {})
    items = 4
    arrays = [(f"k{index:05d}", length_delimited(5, b"".join(
        length_delimited(1, length_delimited(1, f"{index:05d}{item}".encode() + b"y" * 19)) for item in range(items))))
        for index in range(receive._MEMO_MAX_ENTRIES - 1) for _ in range(2)]
    body = body_with_raw_attributes(arrays)
    tracemalloc.start()
    try:
        decode_body(body, keep=None)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    memo = receive._entry_readers[None]
    assert (len(memo), max(map(len, memo)), held < 11 * 2**20) == (receive._MEMO_MAX_ENTRIES - 1, 128, True)


def test_a_kept_entry_is_remembered_when_it_is_seen_again_not_at_first_sight(monkeypatch):
    monkeypatch.setattr(receive, "_entry_readers", {})
    entry = length_delimited(1, semconv.OPERATION_NAME.encode()) + length_delimited(2, length_delimited(1, b"chat"))
    body = body_with_span_fields(length_delimited(9, entry))
    decode_body(body)
    first_sight = dict(receive._entry_readers[KEEP])
    decode_body(body)
    assert (first_sight, dict(receive._entry_readers[KEEP])) == ({}, {entry: (semconv.OPERATION_NAME, "chat")})


def test_token_counts_that_do_not_recur_never_enter_the_memo(monkeypatch):
    monkeypatch.setattr(receive, "_entry_readers", {})
    counts = [(semconv.INPUT_TOKENS, b"\x18" + varint(tokens)) for tokens in range(1000, 6000)]
    spans = decode_body(body_with_raw_attributes(counts))
    assert (spans[0].attributes, len(receive._entry_readers[KEEP])) == ({semconv.INPUT_TOKENS: 5999}, 0)


def test_the_memo_stays_bounded_when_distinct_entries_of_keys_not_kept_each_recur():
    # Each distinct response id sent twice in a row: every one is remembered as skipped.
    recurring_ids = [("gen_ai.response.id", length_delimited(1, f"chatcmpl-{index:08d}".encode()))
                     for index in range(40_000) for _ in range(2)]
    decode_body(body_with_raw_attributes(recurring_ids))
    reader = receive._entry_readers[KEEP]
    assert (len(reader) <= receive._MEMO_MAX_ENTRIES,
            len(reader.seen_once) <= receive._SEEN_ONCE_MAX_ENTRIES) == (True, True)


def test_an_attribute_entry_with_its_value_before_its_key_decodes_as_protobuf_reads_it():
    entry = length_delimited(2, length_delimited(1, b"chat")) + length_delimited(1, semconv.OPERATION_NAME.encode())
    body = body_with_span_fields(length_delimited(9, entry))
    assert decode_body(body)[0].attributes == {semconv.OPERATION_NAME: "chat"}


def test_an_attribute_key_that_is_not_utf8_is_a_400_when_every_key_is_read():
    body = body_with_span_fields(length_delimited(
        9, length_delimited(1, b"user.\xfftier") + length_delimited(2, length_delimited(1, b"pro"))))
    with pytest.raises(MalformedRequest) as raised:
        decode_body(body, keep=None)
    assert (raised.value.http_status, raised.value.message) == (
        400, "body is not a valid protobuf ExportTraceServiceRequest: an attribute key is not valid UTF-8")


def test_an_attribute_key_that_is_not_utf8_is_skipped_like_any_key_not_kept():
    body = body_with_span_fields(length_delimited(
        9, length_delimited(1, b"user.\xfftier") + length_delimited(2, length_delimited(1, b"pro"))))
    assert decode_body(body)[0].attributes == {}


def test_a_key_whose_last_entry_has_no_value_is_absent_also_once_its_value_is_remembered():
    body = body_with_raw_attributes([
        (semconv.OPERATION_NAME, length_delimited(1, b"chat")), (semconv.OPERATION_NAME, b"")])
    assert [decode_body(body)[0].attributes for _ in range(2)] == [{}, {}]


def test_an_attribute_remembered_for_a_pipeline_that_keeps_it_is_skipped_by_one_that_does_not():
    release = "app.release"  # an application's own attribute, kept only by a pipeline configured for it
    body = body_with_raw_attributes([(release, length_delimited(1, b"2026.11.3"))])
    kept = decode_body(body, keep=frozenset({release}))[0].attributes
    assert (kept, decode_body(body, keep=frozenset({semconv.OPERATION_NAME}))[0].attributes) == (
        {release: "2026.11.3"}, {})


def test_a_span_status_that_is_not_a_valid_status_message_is_a_400():
    body = body_with_span_fields(length_delimited(15, b"\x18"))
    with pytest.raises(MalformedRequest) as raised:
        decode_body(body)
    assert (raised.value.http_status, raised.value.message) == (400, (
        "body is not a valid protobuf ExportTraceServiceRequest: a span's status is not a valid Status message: "
        "Error parsing message with type 'opentelemetry.proto.trace.v1.Status': Wire format was corrupt"))


def test_a_span_with_an_error_status_and_a_message_is_an_error():
    request = one_span()
    request.resource_spans[0].scope_spans[0].spans[0].status.CopyFrom(
        Status(code=Status.STATUS_CODE_ERROR, message="upstream timed out"))
    assert decode(request)[0].status_error is True


@pytest.mark.parametrize("tokens", [0, 127, 128, 300, 16_383, 16_384, 70_000, 2**21 - 1, 2**21, 2**63 - 1, -1])
def test_a_token_count_decodes_to_the_number_sent_whatever_the_length_of_its_varint(tokens):
    request = one_span(KeyValue(key=semconv.INPUT_TOKENS, value=AnyValue(int_value=tokens)))
    assert decode(request)[0].attributes == {semconv.INPUT_TOKENS: tokens}


def test_an_int_written_with_a_needless_continuation_byte_decodes_as_protobuf_reads_it():
    body = body_with_raw_attributes([(semconv.INPUT_TOKENS, b"\x18\x85\x00")])  # 5, in two varint bytes
    assert decode_body(body)[0].attributes == {semconv.INPUT_TOKENS: 5}


@pytest.mark.parametrize("length", [0, 1, 127, 128, 300])
def test_a_string_value_decodes_whole_whatever_the_length_of_its_length_prefix(length):
    provider = "p" * length
    request = one_span(KeyValue(key=semconv.PROVIDER_NAME, value=AnyValue(string_value=provider)))
    assert decode(request)[0].attributes == {semconv.PROVIDER_NAME: provider}
