"""Frozen records passed along the data path: receive → normalize → price → aggregate.

`SpanRecord` is the transport-neutral span: the OTLP receiver and the in-process SpanProcessor
both produce it, so nothing after them knows where a span came from. `TokenUsage` and `TokenCost`
carry the billed-token partition between normalize and price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

# An OTLP AnyValue: scalars, arrays as tuples, key-value lists as mappings, bytes as bytes.
AttributeValue = str | bool | int | float | bytes | tuple["AttributeValue", ...] | Mapping[str, "AttributeValue"]
Attributes = Mapping[str, AttributeValue]


@dataclass(frozen=True, slots=True)
class SpanEvent:
    """A span event (for example an exception or a gen_ai.evaluation.result)."""

    name: str
    time_unix_nano: int
    attributes: Attributes


class SpanRecord(NamedTuple):
    """One finished span, independent of how it arrived.

    A NamedTuple, not a frozen dataclass: one is made per span received, and a tuple is built in
    a third of the time (bench/RESULTS.md).

    Ids are bytes as OTLP carries them (16 and 8 bytes); `parent_span_id` is b"" for a root span.
    Only exposition writes them as hex, for the few that become exemplars: a span's ids are then
    never converted, and the agent-run state keyed by them is smaller (bench/RESULTS.md, run 12:
    2.6 % less CPU time per span).
    `attributes` may hold only the keys the pipeline reads: receivers are allowed to skip the rest.
    """

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    name: str
    start_time_unix_nano: int
    end_time_unix_nano: int
    status_error: bool
    attributes: Attributes
    resource_attributes: Attributes
    events: tuple[SpanEvent, ...] = ()


class TokenUsage(NamedTuple):
    """Billed tokens of one model call, partitioned with no double counting.

    `input` is uncached input; `cache_read` and `cache_write` are the cached parts of the prompt;
    `output` includes reasoning tokens. Their sum is every billed token of the call. A NamedTuple
    (immutable, like a frozen dataclass): one is made per model call, three times faster.
    """

    input: int = 0
    cache_read: int = 0
    cache_write: int = 0
    output: int = 0

    @property
    def total(self) -> int:
        """All billed tokens of the call."""
        return self.input + self.cache_read + self.cache_write + self.output

    @property
    def prompt(self) -> int:
        """Every prompt token, cached or not: what long-context price tiers compare to."""
        return self.input + self.cache_read + self.cache_write


class TokenCost(NamedTuple):
    """Cost in USD of one model call, per billed token type (same partition as TokenUsage).

    A NamedTuple for the same reason as TokenUsage: one is made per priced call.
    """

    input: float = 0.0
    cache_read: float = 0.0
    cache_write: float = 0.0
    output: float = 0.0
    # Not spent, saved: what the cache-read tokens would have cost more at the call's uncached
    # input rate. Outside the partition, so not part of `total`.
    cache_savings: float = 0.0

    @property
    def total(self) -> float:
        """Cost of the whole call in USD."""
        return self.input + self.cache_read + self.cache_write + self.output


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of a batch: how many spans were rejected and why, for OTLP partial success."""

    rejected_spans: int = 0
    error_message: str = ""
