"""OTLP/HTTP as a sender puts it on the wire, and a small HTTP client for the server tests.

`export_request` turns SpanRecords (the exporter's own span type) back into the
ExportTraceServiceRequest an SDK would send, so a test can say what it sends in the terms it checks.
`Client` speaks HTTP/1.1 over one kept-alive connection (plain or TLS) and returns status,
headers and body of every answer, 4xx and 5xx included, without raising on them.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from genai_exporter.records import AttributeValue, SpanRecord

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def any_value(value: AttributeValue) -> AnyValue:
    """The OTLP AnyValue of an attribute value (tuples become arrays, mappings kvlists)."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, tuple):
        result = AnyValue()
        result.array_value.values.extend(any_value(item) for item in value)
        return result
    result = AnyValue()
    result.kvlist_value.values.extend(KeyValue(key=k, value=any_value(v)) for k, v in value.items())
    return result


def key_values(attributes: Mapping[str, AttributeValue]) -> list[KeyValue]:
    """OTLP attributes of a mapping."""
    return [KeyValue(key=key, value=any_value(value)) for key, value in attributes.items()]


def export_request(spans: Sequence[SpanRecord]) -> ExportTraceServiceRequest:
    """One ResourceSpans per span (the resource is the span's), as a sender would batch them."""
    request = ExportTraceServiceRequest()
    for record in spans:
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(key_values(record.resource_attributes))
        span = resource_spans.scope_spans.add().spans.add()
        span.trace_id = record.trace_id
        span.span_id = record.span_id
        if record.parent_span_id:
            span.parent_span_id = record.parent_span_id
        span.name = record.name
        span.start_time_unix_nano = record.start_time_unix_nano
        span.end_time_unix_nano = record.end_time_unix_nano
        if record.status_error:
            span.status.code = Status.STATUS_CODE_ERROR
        span.attributes.extend(key_values(record.attributes))
        for event in record.events:
            span.events.add(name=event.name, time_unix_nano=event.time_unix_nano,
                            attributes=key_values(event.attributes))
    return request


def varint(number: int) -> bytes:
    """A non-negative integer as a protobuf base-128 varint."""
    encoded = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        encoded.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(encoded)


def length_delimited(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2), written by hand: the protobuf library refuses
    to build what a client can send (values nested too deeply, strings that are not UTF-8)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def body_with_span_fields(*fields: bytes) -> bytes:
    """The protobuf body of one span with zero ids and these serialized Span fields, as sent."""
    span = length_delimited(1, bytes(16)) + length_delimited(2, bytes(8)) + b"".join(fields)
    return length_delimited(1, length_delimited(2, length_delimited(2, span)))  # ResourceSpans, ScopeSpans, Span


def body_with_raw_attributes(attributes: Sequence[tuple[str, bytes]]) -> bytes:
    """The protobuf body of one span with these attributes, each value a serialized AnyValue as sent."""
    return body_with_span_fields(*(
        length_delimited(9, length_delimited(1, key.encode()) + length_delimited(2, value))  # Span.attributes
        for key, value in attributes
    ))


def protobuf_body(spans: Sequence[SpanRecord]) -> bytes:
    """The binary protobuf body of an export of these spans."""
    return export_request(spans).SerializeToString()


def otlp_json_document(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """A request in the OTLP/JSON mapping: protobuf's JSON form with the ids in hex, as OTLP requires."""
    document = json_format.MessageToDict(request)
    for resource_spans in document.get("resourceSpans", ()):
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                for field in ("traceId", "spanId", "parentSpanId"):
                    if field in span:
                        span[field] = base64.b64decode(span[field]).hex()
    return document


def json_body(spans: Sequence[SpanRecord]) -> bytes:
    """The OTLP/JSON body of an export of these spans."""
    return json.dumps(otlp_json_document(export_request(spans))).encode()


def gzipped(body: bytes) -> bytes:
    """A body compressed as Content-Encoding: gzip."""
    return gzip.compress(body, mtime=0)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as the client received it."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Client:
    """One HTTP/1.1 connection to a listener, kept alive across requests (reopened after a close)."""

    def __init__(self, port: int, tls: ssl.SSLContext | None = None, timeout: float = 30.0) -> None:
        if tls is None:
            self.connection: http.client.HTTPConnection = http.client.HTTPConnection(
                "127.0.0.1", port, timeout=timeout)
        else:
            self.connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=tls)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Answer:
        """Send one request and read its whole answer."""
        self.connection.request(method, path, body=body, headers=dict(headers or {}))
        response = self.connection.getresponse()
        answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        if response.will_close:
            self.connection.close()
        return answer

    def export(self, body: bytes, content_type: str = PROTOBUF, **headers: str) -> Answer:
        """POST /v1/traces with the body; keyword headers use underscores for dashes."""
        sent = {"Content-Type": content_type, **{k.replace("_", "-"): v for k, v in headers.items()}}
        return self.request("POST", "/v1/traces", body, sent)

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()
