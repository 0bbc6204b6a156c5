"""Property-based fuzzing of everything a sender controls: OTLP bytes, JSON, attributes, the HTTP request.

The properties: a body is decoded or refused with a 4xx ReceiveError (never anything else); every
decoded span is accepted, rejected or ignored by normalize (never an exception); after any
sequence of batches a scrape renders in both formats, every value is finite and no counter went
down; the real server answers garbage with a 4xx and keeps serving.

CI runs a short pass (GENAI_FUZZ_EXAMPLES, default 60 examples per property, half that for the
slowest ones). The long run:

    GENAI_FUZZ_EXAMPLES=4000 .venv/bin/python -m pytest tests/test_fuzz.py -q -p no:cacheprovider

(21 passed in 20 minutes on a busy 2-core machine; the slowest properties run half the examples.)

Hypothesis keeps failing examples in .hypothesis/ and replays them first on the next run.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import string
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from genai_exporter import catalog, semconv
from genai_exporter.config import Config, Dimension
from genai_exporter.expose import GenAICollector, metrics_renderer
from genai_exporter.normalize import MAX_DURATION_SECONDS, MAX_TOKENS_PER_CALL, Normalizer, Observation, Rejection
from genai_exporter.pipeline import Pipeline
from genai_exporter.pricing import load_price_table
from genai_exporter.receive import ReceiveError, decode_export_request
from tests.otlpwire import JSON, PROTOBUF, Client, body_with_raw_attributes, length_delimited, otlp_json_document
from tests.serving import Exporter, serving

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

EXAMPLES = int(os.environ.get("GENAI_FUZZ_EXAMPLES", "60"))
# A CI-sized run uses the same examples every time; a long run explores (and keeps failures in .hypothesis/).
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 100,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LIMIT = 4 * 1024 * 1024
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1
CONFIG = Config(dimensions=(
    Dimension("user_tier", semconv.DEFAULT_USER_TIER_ATTRIBUTES),
    Dimension("user", ("enduser.id",), 50, hash_secret=b"fuzzing-secret-0123456789"),
))
NORMALIZER = Normalizer(CONFIG.dimensions)
PRICES = load_price_table()
# Keys normalize reads, so fuzzed values land where they matter; and some it ignores.
KEYS = sorted(NORMALIZER.keep_attributes | semconv.CONTENT_ATTRIBUTES | {"http.route", "enduser.id"})

# --- strategies ----------------------------------------------------------------------------------------

LONE_SURROGATES = st.sampled_from(["\ud800", "model-\udfff", "\udc80x"])
# Values that have broken parsers before: Unicode digits, digit strings past Python's int() limit,
# JSON nested past the recursion limit, JSON of the wrong shape, huge and empty strings.
EDGE_TEXT = st.sampled_from([
    "", " ", "²", "١٢٣", "12", " 40 ", "0" * 25, "9" * 5000, "1e400", "NaN", "-1", "inf", "[" * 3000, "{" * 3000,
    '[{"parts": [{"type": []}]}]', '[{"parts": [{"type": "text", "content": ""}]}]', '{"input": NaN}',
    '{"input": [1]}', '{"model": {}}', "[]", "null", "\x00", "x" * 20_000, "gpt-4o-mini", "chat",
])
# Protobuf strings are UTF-8 by construction; OTLP/JSON can also carry lone surrogates (see below).
TEXT = st.one_of(EDGE_TEXT, st.text(max_size=12))
INTEGERS = st.one_of(st.integers(INT64_MIN, INT64_MAX), st.sampled_from([INT64_MIN, INT64_MAX, 0, -1, 2**53 + 1]))
FLOATS = st.floats(allow_nan=True, allow_infinity=True)


def _scalar_any_values() -> st.SearchStrategy[AnyValue]:
    return st.one_of(
        TEXT.map(lambda v: AnyValue(string_value=v)),
        INTEGERS.map(lambda v: AnyValue(int_value=v)),
        FLOATS.map(lambda v: AnyValue(double_value=v)),
        st.booleans().map(lambda v: AnyValue(bool_value=v)),
        st.binary(max_size=20).map(lambda v: AnyValue(bytes_value=v)),
        st.just(AnyValue()),
    )


def _array(values: list[AnyValue]) -> AnyValue:
    result = AnyValue()
    result.array_value.values.extend(values)
    return result


def _kvlist(entries: list[tuple[str, AnyValue]]) -> AnyValue:
    result = AnyValue()
    result.kvlist_value.values.extend(KeyValue(key=k, value=v) for k, v in entries)
    return result


ANY_VALUES = st.recursive(
    _scalar_any_values(),
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(_array),
        st.lists(st.tuples(TEXT, children), max_size=3).map(_kvlist),
    ),
    max_leaves=4,
)


ATTRIBUTES = st.lists(st.tuples(st.one_of(st.sampled_from(KEYS), TEXT), ANY_VALUES), max_size=4)
# Each concept normalize reads, with the names every dialect gives it: a span sets about half of them,
# each to a hostile value, so every example probes many parsers at once.
CONCEPTS = (
    semconv.PROVIDER_ALIASES, semconv.MODEL_ALIASES, semconv.INPUT_TOKENS_ALIASES, semconv.OUTPUT_TOKENS_ALIASES,
    semconv.TOTAL_TOKENS_ALIASES, semconv.CACHE_READ_TOKENS_ALIASES, semconv.CACHE_WRITE_TOKENS_ALIASES,
    semconv.FINISH_REASONS_ALIASES, semconv.TIME_TO_FIRST_CHUNK_ALIASES, semconv.TIME_TO_FIRST_CHUNK_MS_ALIASES,
    semconv.AGENT_NAME_ALIASES, semconv.TOOL_NAME_ALIASES, semconv.TOOL_CALL_RESULT_ALIASES,
    semconv.COMPLETION_TEXT_ALIASES, semconv.COMPLETION_TOOL_CALL_ALIASES, (semconv.OUTPUT_MESSAGES,),
    (semconv.LANGFUSE_USAGE_DETAILS,), (semconv.OPENINFERENCE_INVOCATION_PARAMETERS,), (semconv.ERROR_TYPE,),
    (semconv.OPENINFERENCE_OUTPUT_VALUE,), semconv.DEFAULT_USER_TIER_ATTRIBUTES, ("enduser.id",),
)
EDGE_VALUES = EDGE_TEXT.map(lambda v: AnyValue(string_value=v))
HOSTILE_VALUES = st.one_of(EDGE_VALUES, EDGE_VALUES, EDGE_VALUES, _scalar_any_values(),
                           st.lists(EDGE_VALUES, max_size=2).map(_array))
# Mostly valid ids and times, so most spans get past the id and duration checks to the attribute parsers.
TRACE_IDS = st.one_of(st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16), st.binary(max_size=20))
SPAN_IDS = st.one_of(st.binary(min_size=8, max_size=8), st.binary(min_size=8, max_size=8), st.binary(max_size=20))
TIMES = st.one_of(st.integers(0, UINT64_MAX), st.integers(1_700_000_000_000_000_000, 1_700_000_010_000_000_000))
START = 1_700_000_000_000_000_000
DURATIONS = st.one_of(st.integers(0, 10**11), st.integers(0, 10**11), st.integers(-(10**12), 10**16))
EVENT_NAMES = st.one_of(st.sampled_from(sorted(semconv.FIRST_CHUNK_EVENT_NAMES | {semconv.EXCEPTION_EVENT_NAME})), TEXT)


@st.composite
def export_requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    """Arbitrary (but well-formed protobuf) export requests: any ids, times, attributes, events."""
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 3))):
        resource_spans = request.resource_spans.add()
        for key, value in draw(ATTRIBUTES):
            resource_spans.resource.attributes.add(key=key, value=value)
        if draw(st.booleans()):
            resource_spans.resource.attributes.add(key=semconv.SERVICE_NAME, value=AnyValue(string_value=draw(TEXT)))
        for _ in range(draw(st.integers(1, 4))):
            span = resource_spans.scope_spans.add().spans.add()
            span.trace_id, span.span_id, span.parent_span_id = draw(TRACE_IDS), draw(SPAN_IDS), draw(SPAN_IDS)
            span.name = draw(TEXT)
            if draw(st.booleans()):
                span.start_time_unix_nano, span.end_time_unix_nano = draw(TIMES), draw(TIMES)
            else:
                span.start_time_unix_nano = START
                span.end_time_unix_nano = max(0, START + draw(DURATIONS))
            span.status.code = draw(st.sampled_from([0, 1, 2]))
            operation = draw(st.sampled_from(["chat", "embeddings", "execute_tool", "invoke_agent", "retrieval"]))
            span.attributes.add(key=semconv.OPERATION_NAME, value=AnyValue(string_value=operation))
            for aliases in CONCEPTS:
                if draw(st.booleans()):
                    span.attributes.add(key=draw(st.sampled_from(aliases)), value=draw(HOSTILE_VALUES))
            for key, value in draw(ATTRIBUTES):
                span.attributes.add(key=key, value=value)
            for _ in range(draw(st.integers(0, 2))):
                event = span.events.add(name=draw(EVENT_NAMES), time_unix_nano=draw(TIMES))
                for key, value in draw(ATTRIBUTES):
                    event.attributes.add(key=key, value=value)
    return request


JSON_LEAVES = st.one_of(st.none(), st.booleans(), INTEGERS, st.integers(), FLOATS, TEXT, LONE_SURROGATES)
JSON_VALUES = st.recursive(JSON_LEAVES, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)), max_leaves=20)
OTLP_JSON_KEYS = ["resourceSpans", "scopeSpans", "spans", "attributes", "key", "value", "stringValue", "intValue",
                  "doubleValue", "arrayValue", "kvlistValue", "values", "traceId", "spanId", "startTimeUnixNano",
                  "endTimeUnixNano", "status", "code", "events", "resource", "bytesValue", "boolValue"]
OTLP_SHAPED_JSON = st.recursive(JSON_LEAVES, lambda children: st.one_of(
    st.lists(children, max_size=3), st.dictionaries(st.sampled_from(OTLP_JSON_KEYS), children, max_size=5)),
    max_leaves=30)


def _json_text(document: object) -> bytes:
    return json.dumps(document).encode("utf-8", "surrogatepass")


def _deeply_nested_protobuf(depth: int) -> bytes:
    value = length_delimited(1, b"leaf")  # AnyValue.string_value
    for _ in range(depth):
        value = length_delimited(5, length_delimited(1, value))  # AnyValue.array_value -> ArrayValue.values
    return body_with_raw_attributes([(semconv.OUTPUT_MESSAGES, value)])


def _deeply_nested_json(depth: int) -> bytes:
    value = '{"stringValue": "leaf"}'
    value = '{"arrayValue": {"values": [' * depth + value + "]}}" * depth
    return ('{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "' + "ab" * 16 + '", "spanId": "' + "cd" * 8
            + '", "attributes": [{"key": "' + semconv.OUTPUT_MESSAGES + '", "value": ' + value + "}]}]}]}]}").encode()


# --- properties ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("depth", "outcome"), [(10, "decoded"), (30, "decoded"), (10_000, 400)])
@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_deeply_nested_attribute_values_are_decoded_or_refused_with_400(depth, outcome, encoding):
    body = _deeply_nested_protobuf(depth) if encoding == "protobuf" else _deeply_nested_json(depth)
    try:
        spans = decode_export_request(body, PROTOBUF if encoding == "protobuf" else JSON, None, LIMIT, None)
    except ReceiveError as error:
        assert error.http_status == outcome
    else:
        assert (len(spans), "decoded") == (1, outcome)


def _decode(body: bytes, content_type: str, encoding: str | None) -> list:
    try:
        return decode_export_request(body, content_type, encoding, LIMIT, NORMALIZER.keep_attributes)
    except ReceiveError as error:
        assert 400 <= error.http_status < 500, error.message
        return []


@FUZZ
@given(body=st.binary(max_size=2048), content_type=st.sampled_from([PROTOBUF, JSON]),
       encoding=st.sampled_from([None, "gzip"]))
def test_arbitrary_bytes_are_decoded_or_refused_with_a_4xx(body, content_type, encoding):
    _decode(body, content_type, encoding)


@FUZZ
@given(document=st.one_of(JSON_VALUES, OTLP_SHAPED_JSON))
def test_arbitrary_json_is_decoded_or_refused_with_a_4xx(document):
    _decode(_json_text(document), JSON, None)


@settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
@given(request=export_requests(), encoding=st.sampled_from(["protobuf", "json", "gzip"]))
def test_every_decoded_span_is_accepted_rejected_or_ignored_with_sane_values(request, encoding):
    if encoding == "json":
        spans = _decode(_json_text(otlp_json_document(request)), JSON, None)
    else:
        body = request.SerializeToString()
        spans = _decode(gzip.compress(body) if encoding == "gzip" else body, PROTOBUF,
                        "gzip" if encoding == "gzip" else None)
    for span in spans:
        outcome = NORMALIZER.normalize(span)
        assert outcome is None or isinstance(outcome, Observation | Rejection)
        if isinstance(outcome, Observation):
            assert 0 <= outcome.duration_seconds <= MAX_DURATION_SECONDS
            assert outcome.usage is None or 0 <= outcome.usage.total <= 4 * MAX_TOKENS_PER_CALL
            ttft = outcome.time_to_first_token_seconds
            assert ttft is None or (math.isfinite(ttft) and ttft >= 0)
            assert all(label.encode("utf-8") is not None for label in (
                outcome.service, outcome.provider, outcome.model, outcome.operation, outcome.agent, outcome.tool,
                outcome.error_type, *outcome.dimensions, *outcome.finish_reasons))


# Attributes whose value becomes a label, one per label.
LABEL_KEYS = [semconv.SERVICE_NAME, semconv.PROVIDER_NAME, semconv.REQUEST_MODEL, semconv.AGENT_NAME,
              semconv.TOOL_NAME, semconv.ERROR_TYPE, semconv.FINISH_REASONS, semconv.USER_TIER, "enduser.id"]


@pytest.mark.parametrize(("key", "operation"), [*((key, "chat") for key in LABEL_KEYS), ("", "chat\ud83d")])
def test_text_that_is_not_valid_unicode_never_breaks_a_scrape(key, operation):
    text = "model-\udfff"  # OTLP/JSON can carry a lone surrogate; a UTF-8 exposition cannot
    attributes = [{"key": semconv.OPERATION_NAME, "value": {"stringValue": operation}},
                  {"key": semconv.INPUT_TOKENS, "value": {"intValue": "100"}},
                  {"key": key, "value": {"stringValue": text}}]
    span = {"traceId": "ab" * 16, "spanId": "cd" * 8, "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000001000000000", "attributes": attributes}
    body = _json_text({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
    pipeline = Pipeline(CONFIG, PRICES)
    registry = CollectorRegistry()
    registry.register(pipeline.collector)
    pipeline.ingest(_decode(body, JSON, None))
    assert _samples(pipeline.collector)[(catalog.SPANS_RECEIVED.name, ())] == 1.0


def _samples(collector: GenAICollector) -> dict[tuple, float]:
    render = metrics_renderer(collector)
    text = render(None)[0].decode("utf-8")
    openmetrics = render("application/openmetrics-text; version=1.0.0")[0].decode("utf-8")
    assert sum(1 for _ in parse_openmetrics(openmetrics)) > 0
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in parse_text(text) for s in f.samples}


def _monotonic(name: str) -> bool:
    counters = {spec.name for spec in catalog.ALL_METRICS if spec.kind is catalog.MetricKind.COUNTER}
    histograms = {spec.name for spec in catalog.ALL_METRICS if spec.kind is catalog.MetricKind.HISTOGRAM}
    return name in counters or any(name in (f"{h}_bucket", f"{h}_count") for h in histograms)


@settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
@given(batches=st.lists(export_requests(), min_size=1, max_size=3))
def test_after_any_batches_scrapes_render_finite_values_and_no_counter_goes_down(batches):
    pipeline = Pipeline(CONFIG, PRICES)
    registry = CollectorRegistry()
    registry.register(pipeline.collector)
    previous: dict[tuple, float] = {}
    for request in batches:
        pipeline.ingest(_decode(request.SerializeToString(), PROTOBUF, None))
        current = _samples(pipeline.collector)
        assert all(math.isfinite(value) for value in current.values())
        went_down = {key: (previous[key], value) for key, value in current.items()
                     if _monotonic(key[0]) and key in previous and value < previous[key]}
        disappeared = {key for key in previous if _monotonic(key[0]) and key not in current}
        assert (went_down, disappeared) == ({}, set())
        previous = current


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    with serving(CONFIG) as running:
        yield running


HEADER_TEXT = st.text(string.ascii_letters + string.digits + "/+;=-. ", max_size=40)


@settings(FUZZ, max_examples=max(1, EXAMPLES // 2))
@given(body=st.one_of(st.binary(max_size=4096), export_requests().map(lambda r: r.SerializeToString())),
       content_type=st.one_of(st.sampled_from([PROTOBUF, JSON, "application/json; charset=utf-8"]), HEADER_TEXT),
       encoding=st.one_of(st.sampled_from(["", "gzip", "identity"]), HEADER_TEXT),
       path=st.sampled_from(["/v1/traces", "/v1/metrics", "/", "/v1/traces?x=1"]),
       method=st.sampled_from(["POST", "GET", "PUT"]))
def test_the_server_answers_anything_with_a_2xx_or_4xx_and_keeps_serving(exporter, body, content_type, encoding,
                                                                        path, method):
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    client = Client(exporter.otlp_port, timeout=30)
    try:
        status = client.request(method, path, body, headers).status
    finally:
        client.close()
    assert status < 500
    assert Client(exporter.web_port).request("GET", "/-/healthy").status == 200
