"""Builders of realistic SpanRecords for the pipeline's specification tests."""

from __future__ import annotations

import itertools

from genai_exporter import semconv
from genai_exporter.records import AttributeValue, SpanRecord

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
START_NS = 1_760_000_000_000_000_000
_span_ids = itertools.count(0x00F067AA0BA902B7)


def new_span_id() -> str:
    """A fresh 16-hex-digit span id."""
    return format(next(_span_ids), "016x")


def span(
    attributes: dict[str, AttributeValue],
    *,
    service: str = "checkout",
    name: str = "chat gpt-4o-mini",
    duration_s: float = 1.5,
    error: bool = False,
    trace_id: str = TRACE_ID,
    span_id: str | None = None,
    parent_span_id: str = "",
    start_ns: int = START_NS,
    resource: dict[str, AttributeValue] | None = None,
) -> SpanRecord:
    """A finished span with the given attributes, as the receiver would hand it on (ids given in hex,
    as they are read and shown, and carried as bytes, as OTLP has them)."""
    return SpanRecord(
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes.fromhex(span_id or new_span_id()),
        parent_span_id=bytes.fromhex(parent_span_id),
        name=name,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + round(duration_s * 1e9),
        status_error=error,
        attributes=attributes,
        resource_attributes={semconv.SERVICE_NAME: service, **(resource or {})},
    )


def chat_attributes(
    *,
    provider: str = "openai",
    request_model: str = "gpt-4o-mini",
    response_model: str = "gpt-4o-mini-2024-07-18",
    input_tokens: AttributeValue = 1200,
    output_tokens: AttributeValue = 300,
    **extra: AttributeValue,
) -> dict[str, AttributeValue]:
    """Attributes of a current-semconv chat span (gen_ai.* names)."""
    return {
        semconv.OPERATION_NAME: semconv.OP_CHAT,
        semconv.PROVIDER_NAME: provider,
        semconv.REQUEST_MODEL: request_model,
        semconv.RESPONSE_MODEL: response_model,
        semconv.INPUT_TOKENS_ALIASES[0]: input_tokens,
        semconv.OUTPUT_TOKENS_ALIASES[0]: output_tokens,
        **extra,
    }
