"""The data path assembled: spans -> normalize -> price -> aggregate, with the collector that exposes it.

Both ways in (the OTLP receiver and the in-process SpanProcessor) call `Pipeline.ingest`, so the
same spans give the same metrics whichever way they arrive. A batch is normalized whole, then
priced and aggregated in chunks, each under one hold of the lock: a scrape waits for one chunk at
most.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from operator import attrgetter

from genai_exporter.aggregate import Aggregator
from genai_exporter.config import Config
from genai_exporter.expose import GenAICollector
from genai_exporter.normalize import Normalizer, Observation, Rejection
from genai_exporter.pricing import PriceTable, load_price_table, price_usage
from genai_exporter.records import IngestResult, SpanRecord, TokenCost

# How many rejection reasons are spelled out in an OTLP partial-success message.
MAX_REJECTION_MESSAGES = 3
# Spans aggregated under one hold of the lock. Small enough that a scrape waits for one chunk at
# most (256 spans: a few milliseconds).
INGEST_CHUNK_SIZE = 256
# Sort key of spans, read in C.
_END_TIME = attrgetter("end_time_unix_nano")


class Pipeline:
    """One exporter's state: configuration, price table, aggregated series and their collector."""

    def __init__(self, config: Config | None = None, prices: PriceTable | None = None) -> None:
        self.config = config if config is not None else Config()
        self._prices = prices if prices is not None else load_price_table(self.config.price_files)
        self._normalizer = Normalizer(self.config.dimensions, self.config.output_checks)
        self._lock = threading.Lock()
        self._aggregator = Aggregator(
            [d.label for d in self.config.dimensions],
            [d.max_values for d in self.config.dimensions],
            self.config.limits,
        )
        self.collector = GenAICollector(self._aggregator, self._lock, self.config.budgets)
        self.keep_attributes: frozenset[str] | None = self._normalizer.keep_attributes

    def _price(self, observation: Observation) -> tuple[str, TokenCost | None]:
        if not observation.model:
            return observation.model, None
        entry = self._prices.lookup(observation.provider, observation.model)
        if entry is None:
            return observation.model, None
        usage = observation.usage
        return entry.model, price_usage(entry, usage) if usage is not None else None

    def ingest(self, spans: Sequence[SpanRecord]) -> IngestResult:
        """Account a batch of finished spans; invalid ones are rejected alone, the rest count."""
        # Stage by stage rather than span by span, so that each stage's code and tables stay in the
        # CPU's caches while it runs (bench/RESULTS.md, run 10). Normalized in the order received:
        # spans decoded one after another lie together in memory and mostly share a call site.
        # The normalizer is thread-safe on its own: it needs no lock.
        outcomes = list(map(self._normalizer.normalize, spans))
        if len(spans) > 1:
            # Aggregated in the order spans ended: children end before their parents, and agent-run
            # tallies rely on that order. A stable sort, by index, of spans and outcomes alike.
            ends = list(map(_END_TIME, spans))
            order = sorted(range(len(spans)), key=ends.__getitem__)
            spans = list(map(spans.__getitem__, order))
            outcomes = list(map(outcomes.__getitem__, order))
        rejections: list[Rejection] = []
        for start in range(0, len(spans), INGEST_CHUNK_SIZE):
            end = start + INGEST_CHUNK_SIZE
            self._aggregate_chunk(spans[start:end], outcomes[start:end], rejections)
        if not rejections:
            return IngestResult()
        shown = "; ".join(r.message for r in rejections[:MAX_REJECTION_MESSAGES])
        more = len(rejections) - MAX_REJECTION_MESSAGES
        suffix = f"; and {more} more" if more > 0 else ""
        return IngestResult(len(rejections), f"{len(rejections)} span(s) rejected: {shown}{suffix}")

    def _aggregate_chunk(self, spans: Sequence[SpanRecord], outcomes: Sequence[Observation | Rejection | None],
                         rejections: list[Rejection]) -> None:
        # The aggregator is not thread-safe: fed under the lock, one chunk per hold, so that a
        # scrape waits a few milliseconds at most.
        price, agg = self._price, self._aggregator
        record = agg.record
        with self._lock:
            for span, outcome in zip(spans, outcomes, strict=True):
                if isinstance(outcome, Observation):
                    model, cost = price(outcome)
                    record(outcome, model, cost)
                elif isinstance(outcome, Rejection):
                    agg.count_rejected(outcome.reason)
                    rejections.append(outcome)
                else:
                    agg.spans_ignored += 1
                    agg.link_span(span.trace_id, span.span_id, span.parent_span_id)
            agg.spans_received += len(spans)

    def count_dropped(self, spans: int) -> None:
        """Count spans a queue in front of the pipeline had to drop (genai_exporter_spans_dropped_total)."""
        with self._lock:
            self._aggregator.spans_dropped += spans

    def count_request(self, status_code: int) -> None:
        """Count an OTLP/HTTP request by its response code (genai_exporter_otlp_requests_total)."""
        with self._lock:
            self._aggregator.count_request(status_code)

