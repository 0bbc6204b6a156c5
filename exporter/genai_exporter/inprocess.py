"""The in-process way in: an OpenTelemetry SDK SpanProcessor that feeds the same pipeline.

For applications that want the metrics without running the exporter service. `on_end` only appends
the finished span to a bounded queue (as cheap as BatchSpanProcessor's own `on_end`); a worker
thread turns queued spans into metrics, and every scrape drains the queue first, so /metrics is
never behind. Nothing here raises into the application: the observer must not change what it
observes.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import REGISTRY, CollectorRegistry

from genai_exporter.config import Config
from genai_exporter.pipeline import Pipeline
from genai_exporter.pricing import PriceTable
from genai_exporter.records import Attributes, AttributeValue, SpanEvent, SpanRecord

LOGGER = logging.getLogger(__name__)
DEFAULT_MAX_QUEUE_SIZE = 65_536
DEFAULT_FLUSH_INTERVAL_SECONDS = 1.0
# Spans converted and aggregated together. Small batches let their intermediate records die young:
# with the application's own objects around, 256 cost a quarter less CPU per span than 4096
# (bench/RESULTS.md).
MAX_BATCH_SIZE = 256


def plain_attributes(attributes: Mapping[str, AttributeValue] | None) -> dict[str, AttributeValue]:
    """The SDK's attributes as a plain dict, copied in C.

    The SDK hands out read-only views of `BoundedAttributes`, a mapping written in Python: reading
    one key by key costs several times more than the single copy its `copy()` makes, and the
    pipeline reads every key.
    """
    if not attributes:
        return {}
    copy = getattr(attributes, "copy", None)
    copied = copy() if copy is not None else None
    return copied if isinstance(copied, dict) else dict(attributes)


def readable_span_to_record(span: ReadableSpan, resource_attributes: Attributes | None = None) -> SpanRecord:
    """Convert an SDK span into the pipeline's transport-neutral SpanRecord.

    `resource_attributes` lets a caller converting many spans share one dict per resource, as
    the OTLP receiver does.
    """
    context = span.context
    parent = span.parent
    status = span.status
    if resource_attributes is None:
        resource_attributes = plain_attributes(span.resource.attributes) if span.resource is not None else {}
    events = span.events
    # The SpanRecord fields in order, built with tuple.__new__ (without the NamedTuple's Python-level
    # __new__); ids as the bytes OTLP carries, from the SDK's ints.
    return tuple.__new__(SpanRecord, (
        context.trace_id.to_bytes(16, "big") if context else b"",
        context.span_id.to_bytes(8, "big") if context else b"",
        parent.span_id.to_bytes(8, "big") if parent is not None else b"",
        span.name,
        span.start_time or 0,
        span.end_time or 0,
        status is not None and status.status_code is StatusCode.ERROR,
        plain_attributes(span.attributes),
        resource_attributes,
        tuple(SpanEvent(e.name, e.timestamp or 0, plain_attributes(e.attributes)) for e in events) if events else (),
    ))


def _records(spans: Iterable[ReadableSpan]) -> list[SpanRecord]:
    """Convert spans, one resource dict per distinct resource (spans of a provider share it)."""
    resources: dict[int, tuple[Resource, dict[str, AttributeValue]]] = {}
    records = []
    for span in spans:
        try:
            resource = span.resource
            known = resources.get(id(resource))
            if known is None:
                known = resources[id(resource)] = (resource, plain_attributes(resource.attributes))
            records.append(readable_span_to_record(span, known[1]))
        except Exception:  # a span the SDK should never produce; drop it rather than the app
            LOGGER.debug("could not convert a span", exc_info=True)
    return records


class _DrainingCollector:
    """Drains the processor's queue before the pipeline's families are built for a scrape."""

    def __init__(self, processor: GenAIMetricsSpanProcessor) -> None:
        self._processor = processor

    def collect(self) -> Iterator[Metric]:
        self._processor.force_flush()
        yield from self._processor.pipeline.collector.collect()


class GenAIMetricsSpanProcessor(SpanProcessor):
    """Turns finished GenAI spans into the exporter's metrics on a prometheus_client registry.

        provider = TracerProvider()
        provider.add_span_processor(GenAIMetricsSpanProcessor())   # metrics on the default REGISTRY
        prometheus_client.start_http_server(9464)

    Give `registry=` to use another registry, `config=` for dimensions, budgets and prices, or
    `pipeline=` to feed a pipeline that is exposed elsewhere (then nothing is registered).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        config: Config | None = None,
        prices: PriceTable | None = None,
        pipeline: Pipeline | None = None,
        max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
        flush_interval_seconds: float = DEFAULT_FLUSH_INTERVAL_SECONDS,
    ) -> None:
        self.pipeline = pipeline if pipeline is not None else Pipeline(config, prices)
        self._queue: deque[ReadableSpan] = deque()
        self._max_queue_size = max_queue_size
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._flush_interval = flush_interval_seconds
        self._dropped_spans = 0
        if pipeline is None:
            (REGISTRY if registry is None else registry).register(_DrainingCollector(self))
        self._worker = threading.Thread(target=self._run, name="genai-metrics-processor", daemon=True)
        self._worker.start()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts: metrics come from finished spans."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue the span; the worker aggregates it. Never raises, never blocks."""
        queue = self._queue
        if len(queue) >= self._max_queue_size:
            self._dropped_spans += 1
            return
        queue.append(span)

    def _drain(self) -> None:
        queue = self._queue
        if self._dropped_spans:
            dropped, self._dropped_spans = self._dropped_spans, 0
            self.pipeline.count_dropped(dropped)
        while queue:
            spans = [queue.popleft() for _ in range(min(len(queue), MAX_BATCH_SIZE))]
            batch = _records(spans)
            if batch:
                self.pipeline.ingest(batch)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Aggregate everything queued so far (called before each scrape and by the SDK)."""
        try:
            with self._flush_lock:
                self._drain()
        except Exception:
            LOGGER.warning("genai metrics processor failed to aggregate spans", exc_info=True)
            return False
        return True

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            self.force_flush()

    def shutdown(self) -> None:
        """Aggregate what is queued and stop the worker."""
        self._stopped.set()
        self._wake.set()
        self._worker.join(timeout=5)
        self.force_flush()
