"""Specification of what fuzzing found: span content that used to escape the receiver or normalize.

Each case once raised out of the data path (a 500 that lost the whole batch) or, worse, broke every
later scrape. They stay here as exact, readable regressions next to tests/test_fuzz.py.
"""

from __future__ import annotations

import json

import pytest

from genai_exporter import catalog, semconv
from genai_exporter.config import default_dimensions
from genai_exporter.expose import metrics_renderer
from genai_exporter.normalize import Normalizer, Observation, Rejection
from genai_exporter.pipeline import Pipeline
from genai_exporter.receive import MalformedRequest, decode_export_request
from tests.serving import built_in_prices
from tests.spanfactory import chat_attributes, span

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

NESTED_TOO_DEEP = "[" * 100_000


SPAN_ID = "00f067aa0ba902b7"


def normalize(attributes: dict) -> Observation | Rejection | None:
    return Normalizer(default_dimensions()).normalize(span(attributes, span_id=SPAN_ID))


def test_a_token_count_in_unicode_digits_rejects_the_span_instead_of_raising():
    # "²".isdigit() is True, but int("²") raises.
    assert normalize(chat_attributes(input_tokens="²")) == Rejection(
        catalog.REJECT_INVALID_TOKENS, f"span {SPAN_ID}: token count '²' is not a non-negative integer")


def test_langfuse_usage_nested_too_deeply_is_ignored_like_any_unreadable_json():
    outcome = normalize(chat_attributes(**{semconv.LANGFUSE_USAGE_DETAILS: NESTED_TOO_DEEP}))
    assert (type(outcome), outcome.usage.input, outcome.usage.output) == (Observation, 1200, 300)


def test_output_messages_nested_too_deeply_do_not_make_the_answer_empty():
    attributes = chat_attributes(**{semconv.OUTPUT_MESSAGES: NESTED_TOO_DEEP})
    assert normalize(attributes).empty_response is False


def test_invocation_parameters_nested_too_deeply_leave_the_model_unknown():
    attributes = {semconv.OPERATION_NAME: semconv.OP_CHAT, semconv.OPENINFERENCE_INVOCATION_PARAMETERS: NESTED_TOO_DEEP}
    assert normalize(attributes).model == ""


def test_an_output_part_whose_type_is_not_a_string_counts_as_an_answer():
    messages = json.dumps([{"role": "assistant", "parts": [{"type": ["text"], "content": ""}]}])
    assert normalize(chat_attributes(output_tokens=None, **{semconv.OUTPUT_MESSAGES: messages})).empty_response is False


def test_a_lone_surrogate_in_a_label_value_is_replaced_so_scrapes_keep_working():
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "ab" * 16, "spanId": "cd" * 8, "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001000000000",
        "attributes": [{"key": semconv.OPERATION_NAME, "value": {"stringValue": "chat"}},
                       {"key": semconv.REQUEST_MODEL, "value": {"stringValue": "gpt-\udfff"}},
                       {"key": semconv.INPUT_TOKENS, "value": {"intValue": "7"}}]}]}]}]})
    pipeline = Pipeline(prices=built_in_prices())
    pipeline.ingest(decode_export_request(body.encode("utf-8", "surrogatepass"), "application/json", None, 1 << 20,
                                          pipeline.keep_attributes))
    assert 'model="gpt-?"' in metrics_renderer(pipeline.collector)(None)[0].decode()


def test_a_decimal_string_longer_than_any_64_bit_integer_is_a_400():
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "ab" * 16, "spanId": "cd" * 8, "startTimeUnixNano": "1" * 5000}]}]}]})
    with pytest.raises(MalformedRequest) as raised:
        decode_export_request(body.encode(), "application/json", None, 1 << 20, None)
    assert (raised.value.http_status, raised.value.message) == (400, (
        "body is not an OTLP/JSON ExportTraceServiceRequest: resourceSpans[0].scopeSpans[0].spans[0]."
        "startTimeUnixNano: must be an integer or a decimal string, got '" + "1" * 40 + "...'"))
