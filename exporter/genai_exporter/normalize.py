"""Normalize stage: one span in any GenAI dialect -> one dialect-free Observation (or a Rejection).

The only stage that reads span attributes (through the names in `semconv`). It decides what a span
is (operation and layer), who made it (service, dimensions), what it cost in tokens (the billed-token
partition), whether it failed or came back empty. Pure: no clocks, no globals, no I/O. It never
raises on span content; a span that cannot be trusted becomes a Rejection with a fixed reason.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from genai_exporter import catalog, semconv
from genai_exporter.config import Dimension
from genai_exporter.records import AttributeValue, SpanEvent, SpanRecord, TokenUsage

# Above these a span is not a GenAI call but a bug or a forgery: reject it rather than let one
# span move a cost counter by millions.
MAX_TOKENS_PER_CALL = 100_000_000
MAX_DURATION_SECONDS = 7 * 24 * 3600.0
UNKNOWN_SERVICE = "unknown_service"
OTHER_ERROR_TYPE = "_OTHER"
# Empty-looking tool results: JSON null, empty string, empty array or object (whitespace ignored).
_EMPTY_JSON_VALUES = (None, "", [], {})
_TRACE_ID_HEX_LENGTH = 32
_SPAN_ID_HEX_LENGTH = 16


class Observation(NamedTuple):
    """What one GenAI span says, in the exporter's own terms; label values are not yet capped.

    A NamedTuple, not a frozen dataclass: one is made per span, and a tuple is built in a quarter
    of the time (bench/RESULTS.md).
    """

    service: str
    dimensions: tuple[str, ...]
    layer: str
    operation: str
    provider: str
    model: str
    agent: str
    tool: str
    error: bool
    error_type: str
    duration_seconds: float
    usage: TokenUsage | None
    empty_response: bool
    finish_reasons: tuple[str, ...]
    time_to_first_token_seconds: float | None
    trace_id: str
    span_id: str
    parent_span_id: str
    end_time_unix_nano: int


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a span was refused; `reason` is one of catalog.REJECT_REASONS."""

    reason: str
    message: str


# Concepts a span attribute can carry. Each attribute key maps to (concept, rank): the lowest
# rank present wins, so the current semconv name beats its deprecated and dialect aliases.
_OPERATION = "operation"
_OPENINFERENCE_KIND = "openinference_kind"
_TRACELOOP_KIND = "traceloop_kind"
_TRACELOOP_REQUEST_TYPE = "traceloop_request_type"
_VERCEL_OPERATION = "vercel_operation"
_LANGFUSE_TYPE = "langfuse_type"
_PROVIDER = "provider"
_MODEL = "model"
_INPUT = "input"
_OUTPUT = "output"
_TOTAL = "total"
_CACHE_READ = "cache_read"
_CACHE_WRITE = "cache_write"
_FINISH = "finish"
_TTFT = "ttft"
_TTFT_MS = "ttft_ms"
_AGENT = "agent"
_TOOL = "tool"
_ERROR_TYPE = "error_type"
_OUTPUT_MESSAGES = "output_messages"
_TOOL_RESULT = "tool_result"
_OUTPUT_VALUE = "output_value"
_COMPLETION_TEXT = "completion_text"
_COMPLETION_TOOL_CALL = "completion_tool_call"
_LANGFUSE_USAGE = "langfuse_usage"
_INVOCATION_PARAMETERS = "invocation_parameters"


def _roles() -> dict[str, tuple[str, int]]:
    roles: dict[str, tuple[str, int]] = {
        semconv.OPERATION_NAME: (_OPERATION, 0),
        semconv.OPENINFERENCE_SPAN_KIND: (_OPENINFERENCE_KIND, 0),
        semconv.TRACELOOP_SPAN_KIND: (_TRACELOOP_KIND, 0),
        semconv.TRACELOOP_LLM_REQUEST_TYPE: (_TRACELOOP_REQUEST_TYPE, 0),
        semconv.VERCEL_OPERATION_ID: (_VERCEL_OPERATION, 0),
        semconv.LANGFUSE_OBSERVATION_TYPE: (_LANGFUSE_TYPE, 0),
        semconv.ERROR_TYPE: (_ERROR_TYPE, 0),
        semconv.OUTPUT_MESSAGES: (_OUTPUT_MESSAGES, 0),
        semconv.OPENINFERENCE_OUTPUT_VALUE: (_OUTPUT_VALUE, 0),
        semconv.LANGFUSE_USAGE_DETAILS: (_LANGFUSE_USAGE, 0),
        semconv.OPENINFERENCE_INVOCATION_PARAMETERS: (_INVOCATION_PARAMETERS, 0),
    }
    groups = (
        (_PROVIDER, semconv.PROVIDER_ALIASES),
        (_MODEL, semconv.MODEL_ALIASES),
        (_INPUT, semconv.INPUT_TOKENS_ALIASES),
        (_OUTPUT, semconv.OUTPUT_TOKENS_ALIASES),
        (_TOTAL, semconv.TOTAL_TOKENS_ALIASES),
        (_CACHE_READ, semconv.CACHE_READ_TOKENS_ALIASES),
        (_CACHE_WRITE, semconv.CACHE_WRITE_TOKENS_ALIASES),
        (_FINISH, semconv.FINISH_REASONS_ALIASES),
        (_TTFT, semconv.TIME_TO_FIRST_CHUNK_ALIASES),
        (_TTFT_MS, semconv.TIME_TO_FIRST_CHUNK_MS_ALIASES),
        (_AGENT, semconv.AGENT_NAME_ALIASES),
        (_TOOL, semconv.TOOL_NAME_ALIASES),
        (_TOOL_RESULT, semconv.TOOL_CALL_RESULT_ALIASES),
        (_COMPLETION_TEXT, semconv.COMPLETION_TEXT_ALIASES),
        (_COMPLETION_TOOL_CALL, semconv.COMPLETION_TOOL_CALL_ALIASES),
    )
    for concept, aliases in groups:
        for rank, key in enumerate(aliases):
            roles.setdefault(key, (concept, rank))
    return roles


_ROLES = _roles()
_LAYER_OF_OPERATION = {
    **{op: catalog.LAYER_MODEL for op in semconv.MODEL_OPERATIONS},
    **{op: catalog.LAYER_AGENT for op in semconv.AGENT_OPERATIONS},
    **{op: catalog.LAYER_RETRIEVAL for op in semconv.RETRIEVAL_OPERATIONS},
    **{op: catalog.LAYER_TOOL for op in semconv.TOOL_OPERATIONS},
    **{op: catalog.LAYER_MEMORY for op in semconv.MEMORY_OPERATIONS},
}


def layer_of(operation: str) -> str:
    """The layer an operation belongs to, so failures can be told apart by where they happen."""
    return _LAYER_OF_OPERATION.get(operation, catalog.LAYER_OTHER)


class _InvalidTokens(Exception):
    """A token attribute that is not a non-negative integer (internal signal, never escapes)."""


def _token_count(value: AttributeValue | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise _InvalidTokens(f"token count {value!r} is not a number")
    if isinstance(value, int):
        count = value
    elif (isinstance(value, float) and value.is_integer()) or (isinstance(value, str) and value.strip().isdigit()):
        count = int(value)
    else:
        raise _InvalidTokens(f"token count {value!r} is not a non-negative integer")
    if count < 0 or count > MAX_TOKENS_PER_CALL:
        raise _InvalidTokens(f"token count {count} is outside 0..{MAX_TOKENS_PER_CALL}")
    return count


def _text(value: AttributeValue | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, tuple) and value:
        return _text(value[0])
    if isinstance(value, bool | int | float):
        return str(value)
    return ""


def _operation(found: Mapping[str, AttributeValue]) -> str | None:
    """The gen_ai.operation.name the span stands for, in whichever dialect it says so."""
    value = found.get(_OPERATION)
    if isinstance(value, str) and value:
        return value.strip().lower()
    kind = found.get(_OPENINFERENCE_KIND)
    if isinstance(kind, str) and kind:
        return semconv.OPENINFERENCE_KIND_TO_OPERATION.get(kind.upper())
    request_type = found.get(_TRACELOOP_REQUEST_TYPE)
    if isinstance(request_type, str) and request_type in semconv.TRACELOOP_REQUEST_TYPE_TO_OPERATION:
        return semconv.TRACELOOP_REQUEST_TYPE_TO_OPERATION[request_type]
    traceloop_kind = found.get(_TRACELOOP_KIND)
    if isinstance(traceloop_kind, str) and traceloop_kind in semconv.TRACELOOP_KIND_TO_OPERATION:
        return semconv.TRACELOOP_KIND_TO_OPERATION[traceloop_kind]
    vercel = found.get(_VERCEL_OPERATION)
    if isinstance(vercel, str) and vercel in semconv.VERCEL_OPERATION_TO_OPERATION:
        return semconv.VERCEL_OPERATION_TO_OPERATION[vercel]
    langfuse = found.get(_LANGFUSE_TYPE)
    if isinstance(langfuse, str):
        return semconv.LANGFUSE_TYPE_TO_OPERATION.get(langfuse)
    return None


def _provider(found: Mapping[str, AttributeValue], key: str | None) -> str:
    value = _text(found.get(_PROVIDER)).strip().lower()
    if key == semconv.PROVIDER_ALIASES[-1]:
        # Vercel's ai.model.provider is "<provider>.<api>", e.g. "openai.chat".
        value = value.split(".", 1)[0]
    return semconv.PROVIDER_VALUE_ALIASES.get(value, value)


def _first_count(usage: Mapping[str, AttributeValue], keys: Sequence[str]) -> int | None:
    for key in keys:
        if key in usage:
            return _token_count(usage[key])
    return None


def _usage(found: Mapping[str, AttributeValue], operation: str) -> TokenUsage | None:
    """The billed-token partition of a model call, or None when the span reports no usage.

    Semconv's input_tokens include cached tokens, so cached ones are subtracted. Some emitters
    report input without the cache; when the cached tokens exceed the input, that is the only
    consistent reading, and the input is taken as uncached.
    """
    input_tokens = _token_count(found.get(_INPUT))
    output_tokens = _token_count(found.get(_OUTPUT))
    cache_read = _token_count(found.get(_CACHE_READ))
    cache_write = _token_count(found.get(_CACHE_WRITE))
    langfuse = _json_object(found.get(_LANGFUSE_USAGE))
    if langfuse:
        # Langfuse usage_details report cached input apart from input.
        input_tokens = _first_count(langfuse, semconv.LANGFUSE_USAGE_INPUT_KEYS) if input_tokens is None \
            else input_tokens
        output_tokens = _first_count(langfuse, semconv.LANGFUSE_USAGE_OUTPUT_KEYS) if output_tokens is None \
            else output_tokens
        langfuse_read = _first_count(langfuse, semconv.LANGFUSE_USAGE_CACHE_READ_KEYS)
        langfuse_write = _first_count(langfuse, semconv.LANGFUSE_USAGE_CACHE_WRITE_KEYS)
        if cache_read is None and cache_write is None and (langfuse_read or langfuse_write):
            return TokenUsage(input_tokens or 0, langfuse_read or 0, langfuse_write or 0, output_tokens or 0)
    if input_tokens is None and output_tokens is None:
        total = _token_count(found.get(_TOTAL))
        if total is None:
            return None
        # Only a total: embeddings report just that, and it is all input.
        if operation == semconv.OP_EMBEDDINGS:
            input_tokens = total
        else:
            return None
    cached = (cache_read or 0) + (cache_write or 0)
    uncached = input_tokens or 0
    if uncached >= cached:
        uncached -= cached
    return TokenUsage(uncached, cache_read or 0, cache_write or 0, output_tokens or 0)


def _json_object(value: AttributeValue | None) -> dict[str, AttributeValue]:
    if not isinstance(value, str):
        return {}
    try:
        parsed = json.loads(value)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _model(found: Mapping[str, AttributeValue]) -> str:
    model = _text(found.get(_MODEL)).strip()
    if model:
        return model
    parameters = _json_object(found.get(_INVOCATION_PARAMETERS))
    return _text(parameters.get(semconv.INVOCATION_PARAMETERS_MODEL_KEY)).strip()


def _exception_type(events: Sequence[SpanEvent]) -> str:
    for event in events:
        if event.name == semconv.EXCEPTION_EVENT_NAME:
            return _text(event.attributes.get(semconv.EXCEPTION_TYPE))
    return ""


def _first_chunk_seconds(span: SpanRecord) -> float | None:
    for event in span.events:
        if event.name in semconv.FIRST_CHUNK_EVENT_NAMES:
            return _seconds(event.time_unix_nano - span.start_time_unix_nano, 1e-9)
    return None


def _finish_reasons(value: AttributeValue | None) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value.strip().lower(),) if value.strip() else ()
    if isinstance(value, tuple):
        return tuple(item.strip().lower() for item in value if isinstance(item, str) and item.strip())
    return ()


def _seconds(value: AttributeValue | None, scale: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = value * scale
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_DURATION_SECONDS:
        return None
    return float(seconds)


def _output_messages_empty(value: AttributeValue) -> bool | None:
    """True when captured gen_ai.output.messages hold no text and no tool call; None if unreadable."""
    if not isinstance(value, str):
        return None
    try:
        messages = json.loads(value)
    except ValueError:
        return None
    if not isinstance(messages, list):
        return None
    for message in messages:
        parts = message.get(semconv.OUTPUT_MESSAGE_PARTS) if isinstance(message, dict) else None
        if not isinstance(parts, list):
            return None
        for part in parts:
            if not isinstance(part, dict):
                return False
            if part.get(semconv.OUTPUT_PART_TYPE) not in semconv.OUTPUT_PART_TEXT_TYPES:
                return False  # a tool call, image, file...: the model did answer
            content = part.get(semconv.OUTPUT_PART_CONTENT)
            if not isinstance(content, str) or content.strip():
                return False
    return True


def _result_empty(value: AttributeValue) -> bool:
    """True when a captured result is "", whitespace, null, [] or {} (in JSON or as a value)."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return True
        if len(text) > 16:
            return False
        try:
            return json.loads(text) in _EMPTY_JSON_VALUES
        except ValueError:
            return False
    if isinstance(value, tuple | dict):
        return len(value) == 0
    return False


def _model_call_empty(found: Mapping[str, AttributeValue], operation: str, usage: TokenUsage | None) -> bool:
    if operation == semconv.OP_EMBEDDINGS:
        return False
    if usage is not None and found.get(_OUTPUT) is not None and usage.output == 0:
        return True
    messages = found.get(_OUTPUT_MESSAGES)
    if messages is not None:
        return _output_messages_empty(messages) is True
    text = found.get(_COMPLETION_TEXT)
    if text is not None:
        return _result_empty(text) and found.get(_COMPLETION_TOOL_CALL) is None
    return False


def _tool_call_empty(found: Mapping[str, AttributeValue]) -> bool:
    result = found.get(_TOOL_RESULT)
    if result is None:
        result = found.get(_OUTPUT_VALUE)
    return result is not None and _result_empty(result)


class Normalizer:
    """Turns SpanRecords into Observations for one configuration of dimensions."""

    def __init__(self, dimensions: Sequence[Dimension]) -> None:
        self._dimension_attributes = tuple(d.attributes for d in dimensions)
        self.keep_attributes: frozenset[str] = frozenset(
            semconv.metric_attribute_keys()
            | {semconv.SERVICE_NAME}
            | {key for d in dimensions for key in d.attributes}
        )
        """Attribute keys this normalizer reads; receivers may drop every other key unconverted."""

    def _dimensions(self, span: SpanRecord) -> tuple[str, ...]:
        values = []
        attributes, resource = span.attributes, span.resource_attributes
        for keys in self._dimension_attributes:
            value = ""
            for key in keys:
                found = attributes.get(key)
                if found is None:
                    found = resource.get(key)
                if found is not None:
                    value = _text(found)
                    break
            values.append(value)
        return tuple(values)

    def normalize(self, span: SpanRecord) -> Observation | Rejection | None:
        """Read one span; None when it is not a GenAI span (the caller counts it as ignored)."""
        found: dict[str, AttributeValue] = {}
        ranks: dict[str, int] = {}
        found_keys: dict[str, str] = {}
        roles = _ROLES
        for key, value in span.attributes.items():
            role = roles.get(key)
            if role is None:
                continue
            concept, rank = role
            if rank < ranks.get(concept, 1 << 30):
                ranks[concept] = rank
                found[concept] = value
                found_keys[concept] = key
        operation = _operation(found)
        if operation is None:
            return None

        if len(span.trace_id) != _TRACE_ID_HEX_LENGTH or len(span.span_id) != _SPAN_ID_HEX_LENGTH:
            return Rejection(catalog.REJECT_INVALID_SPAN,
                             f"span {span.name!r}: trace or span id has the wrong length")
        start, end = span.start_time_unix_nano, span.end_time_unix_nano
        duration = (end - start) / 1e9
        if start <= 0 or end < start or duration > MAX_DURATION_SECONDS:
            limit = f"0..{MAX_DURATION_SECONDS:.0f}s"
            return Rejection(catalog.REJECT_INVALID_DURATION,
                             f"span {span.span_id}: duration {duration:.3f}s is not within {limit}")

        layer = layer_of(operation)
        try:
            usage = _usage(found, operation) if layer == catalog.LAYER_MODEL else None
        except _InvalidTokens as error:
            return Rejection(catalog.REJECT_INVALID_TOKENS, f"span {span.span_id}: {error}")

        error_type = _text(found.get(_ERROR_TYPE))
        is_error = span.status_error or bool(error_type)
        if is_error and not error_type:
            error_type = _exception_type(span.events) or OTHER_ERROR_TYPE
        empty = False
        if not is_error:
            if layer == catalog.LAYER_MODEL:
                empty = _model_call_empty(found, operation, usage)
            elif layer == catalog.LAYER_TOOL:
                empty = _tool_call_empty(found)

        ttft = None
        if layer == catalog.LAYER_MODEL:
            ttft = _seconds(found.get(_TTFT), 1.0)
            if ttft is None:
                ttft = _seconds(found.get(_TTFT_MS), 1e-3)
            if ttft is None and span.events:
                ttft = _first_chunk_seconds(span)

        return Observation(
            service=_text(span.resource_attributes.get(semconv.SERVICE_NAME)) or UNKNOWN_SERVICE,
            dimensions=self._dimensions(span),
            layer=layer,
            operation=operation,
            provider=_provider(found, found_keys.get(_PROVIDER)),
            model=_model(found),
            agent=_text(found.get(_AGENT)).strip(),
            tool=_text(found.get(_TOOL)).strip(),
            error=is_error,
            error_type=error_type,
            duration_seconds=duration,
            usage=usage,
            empty_response=empty,
            finish_reasons=_finish_reasons(found.get(_FINISH)) if layer == catalog.LAYER_MODEL else (),
            time_to_first_token_seconds=ttft,
            trace_id=span.trace_id,
            span_id=span.span_id,
            parent_span_id=span.parent_span_id,
            end_time_unix_nano=end,
        )
