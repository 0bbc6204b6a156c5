"""What every benchmark shares: the machine description, CPU timing, and the verdict lines.

Benchmarks compare against a baseline measured in the same run on the same machine, and time
the CPU the measured process spends rather than the wall clock: the machine is shared, and other
processes on it would otherwise count as ours. They report medians of repeated runs with every
run shown, never a best case.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata

from genai_exporter import server
from genai_exporter.pipeline import Pipeline
from genai_exporter.receive import CONTENT_TYPE_PROTOBUF, decode_export_request
from genai_exporter.records import SpanRecord

# Decompressed body limit of the benchmarks' decoding: far above any body they send.
_MAX_BODY = 1 << 26


def machine() -> str:
    """Where the figures come from: CPUs, CPU model, Python, the protobuf backend, whether the
    exporter's data path runs compiled (GENAI_EXPORTER_NO_EXTENSIONS=1 runs it from source), load."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from google.protobuf.internal import api_implementation

    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (f"{os.cpu_count()} CPUs ({model}); Python {platform.python_version()}; "
            f"protobuf {metadata.version('protobuf')} ({api_implementation.Type()}); "
            f"prometheus_client {metadata.version('prometheus_client')}; "
            f"opentelemetry-sdk {metadata.version('opentelemetry-sdk')}; data path {data_path_build()}; "
            f"load average {load}")


def data_path_build() -> str:
    """How the exporter imported here runs its data path: "compiled", "python" or "mixed"; "python"
    for a tree older than the compiled build (bench compare runs such trees)."""
    try:
        from genai_exporter.extensions import data_path_build as build
    except ImportError:
        return "python"
    return build()


def decode_body(body: bytes, keep: frozenset[str] | None) -> list[SpanRecord]:
    """The receive stage on one OTLP/HTTP protobuf body, as the server calls it."""
    return decode_export_request(body, CONTENT_TYPE_PROTOBUF, None, _MAX_BODY, keep)


def ingest_bodies(pipeline: Pipeline, bodies: Iterable[bytes]) -> None:
    """The whole OTLP path as the service runs it on each body: decode (receive), then `Pipeline.ingest`."""
    keep = pipeline.keep_attributes
    for body in bodies:
        pipeline.ingest(decode_body(body, keep))


def settle_as_the_service() -> None:
    """Settle the garbage collector as `genai-exporter serve` does, when the exporter imported has that step.

    The benchmarks that compare trees import an older exporter too, from before the step existed.
    """
    settle = getattr(server, "settle_garbage_collector", None)
    if settle is not None:
        settle()


def pin_to_cpu(cpu: int, pid: int = 0) -> str:
    """Pin a process (0: this one) to one CPU, so "on one core" means one core; says what it did."""
    if not hasattr(os, "sched_setaffinity") or cpu >= (os.cpu_count() or 1):
        return "not pinned"
    os.sched_setaffinity(pid, {cpu})
    return f"pinned to CPU {cpu}"


def cpu_timed(function: Callable[[], object]) -> float:
    """CPU seconds this process spends in one call: load from other processes cannot inflate it."""
    start = time.process_time()
    function()
    return time.process_time() - start


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) another process has used so far, from /proc."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3 of stat(5), utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Measurement:
    """Repeated measurements of one figure; the median is the figure, the rest shows the noise."""

    name: str
    unit: str
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def render(self) -> str:
        runs = ", ".join(_number(sample) for sample in self.samples)
        return f"{self.name}: {_number(self.median)} {self.unit} (median of {len(self.samples)}: {runs})"


def repeat(name: str, unit: str, runs: int, measure: Callable[[], float]) -> Measurement:
    """Call `measure` `runs` times; each call returns one sample of the figure."""
    return Measurement(name, unit, tuple(measure() for _ in range(runs)))


@dataclass(frozen=True)
class Verdict:
    """A figure against its same-run baseline and the goal of the issue for their ratio."""

    title: str
    figure: Measurement
    baseline: Measurement
    goal: float
    higher_is_better: bool

    @property
    def ratio(self) -> float:
        return self.figure.median / self.baseline.median

    @property
    def met(self) -> bool:
        return self.ratio >= self.goal if self.higher_is_better else self.ratio <= self.goal

    def summary(self) -> str:
        """One line: the ratio, the goal, met or not."""
        sign = ">=" if self.higher_is_better else "<="
        return f"{self.title}: ratio {self.ratio:.2f} (goal {sign} {self.goal:g}): {'MET' if self.met else 'NOT MET'}"

    def render(self) -> str:
        return f"  {self.figure.render()}\n  {self.baseline.render()}\n  => {self.summary()}"


@dataclass(frozen=True)
class GrowthVerdict:
    """A figure that must not grow past its baseline by more than a fixed amount (memory)."""

    title: str
    figure: Measurement
    baseline: Measurement
    allowed_growth: float

    @property
    def growth(self) -> float:
        return self.figure.median - self.baseline.median

    @property
    def met(self) -> bool:
        return self.growth <= self.allowed_growth

    def summary(self) -> str:
        """One line: the growth, the allowance, met or not."""
        unit = self.figure.unit
        return (f"{self.title}: growth {self.growth:+.1f} {unit} (goal <= {self.allowed_growth:g} {unit}): "
                f"{'MET' if self.met else 'NOT MET'}")

    def render(self) -> str:
        return f"  {self.figure.render()}\n  {self.baseline.render()}\n  => {self.summary()}"


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def header(title: str, details: Sequence[str]) -> None:
    """Print what is measured, how, and on what, before the figures."""
    print(f"== {title}")
    for line in details:
        print(f"   {line}")
    sys.stdout.flush()
