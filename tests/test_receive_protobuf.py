"""Specification of protobuf decoding: the receiver's view of OTLP sees what the generated classes see."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from genai_exporter import semconv
from genai_exporter.receive import decode_export_request
from genai_exporter.records import AttributeValue, SpanEvent, SpanRecord

PROTOBUF = "application/x-protobuf"
KEEP = frozenset({semconv.OPERATION_NAME, semconv.PROVIDER_NAME, semconv.INPUT_TOKENS, semconv.SERVICE_NAME})
KEYS = (*sorted(KEEP), "gen_ai.response.id", "server.address", "gen_ai.tool.call.arguments")


def decode(request: ExportTraceServiceRequest, keep: frozenset[str] | None = KEEP) -> list[SpanRecord]:
    return decode_export_request(request.SerializeToString(), PROTOBUF, None, 1 << 24, keep)


def reference_value(value: AnyValue) -> AttributeValue | None:
    """The OTLP AnyValue as the records hold it, read with the generated OTLP classes."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        items = (reference_value(item) for item in value.array_value.values)
        return tuple(item for item in items if item is not None)
    if kind == "kvlist_value":
        entries = ((entry.key, reference_value(entry.value)) for entry in value.kvlist_value.values)
        return {key: item for key, item in entries if item is not None}
    return None if kind is None else getattr(value, kind)


def reference_attributes(key_values: Any, keep: frozenset[str] | None) -> dict[str, AttributeValue]:
    """The last entry of each wanted key, as a dict keeps it; a key whose last value is unset is absent."""
    last = {key_value.key: key_value.value for key_value in key_values}
    converted = {key: reference_value(value) for key, value in last.items() if keep is None or key in keep}
    return {key: value for key, value in converted.items() if value is not None}


def reference_records(request: ExportTraceServiceRequest, keep: frozenset[str] | None) -> list[SpanRecord]:
    return [
        SpanRecord(span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(), span.name,
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


def test_attributes_outside_the_keep_set_are_not_decoded():
    span = Span(trace_id=b"\x4b" * 16, span_id=b"\x00\xf0" * 4, attributes=[
        KeyValue(key=semconv.OPERATION_NAME, value=AnyValue(string_value="chat")),
        KeyValue(key="gen_ai.tool.call.arguments", value=AnyValue(string_value='{"query": "refund policy"}')),
    ])
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    assert decode(request)[0].attributes == {semconv.OPERATION_NAME: "chat"}


def test_a_key_sent_twice_keeps_its_last_value():
    span = Span(trace_id=b"\x4b" * 16, span_id=b"\x00\xf0" * 4, attributes=[
        KeyValue(key=semconv.INPUT_TOKENS, value=AnyValue(int_value=10)),
        KeyValue(key=semconv.INPUT_TOKENS, value=AnyValue(int_value=1200)),
    ])
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    assert decode(request)[0].attributes == {semconv.INPUT_TOKENS: 1200}
