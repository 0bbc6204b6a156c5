"""Fault scenarios of the demo workload, switched on by name or on a schedule.

Each scenario is one failure mode the bundle's dashboards and alerts exist to catch. The workload
asks which are active before every agent run, so a scenario takes effect on the next run.

Schedule syntax (`ScenarioSchedule.parse`), items separated by commas, durations as `90s`, `2m`,
`1h` or bare seconds, times counted from when the workload starts:

    tool_outage@30s-90s         tool_outage on from 30 s to 90 s
    truncation@2m               truncation on from 2 minutes on, for good
    cycle:60s                   every scenario in turn, each on for 60 s, one at a time, forever
    cycle:60s/30s               the same with 30 s of healthy traffic after each scenario

Several items are active together: `cycle:60s,tier_spike@0s-30s`.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

TOOL_OUTAGE = "tool_outage"
PROVIDER_OUTAGE = "provider_outage"
RETRY_LOOP = "retry_loop"
TRUNCATION = "truncation"
TIER_SPIKE = "tier_spike"
UNPRICED_MODEL = "unpriced_model"
QUALITY_REGRESSION = "quality_regression"

SCENARIO_DESCRIPTIONS = {
    TOOL_OUTAGE: "search_docs returns [] with status OK on every call (the silent integration failure)",
    PROVIDER_OUTAGE: "every openai chat call fails (RateLimitError, APIConnectionError); "
    "the agent falls back to gcp.gemini gemini-2.5-flash",
    RETRY_LOOP: "sql-analyst repeats chat + run_sql 10-20 times per run with growing latency",
    TRUNCATION: "research-assistant and code-reviewer get long contexts; their answers stop at "
    "max_tokens with finish_reason length",
    TIER_SPIKE: "free-tier users paste huge documents: free-tier tokens jump far above 1000 tokens/s",
    UNPRICED_MODEL: "code-reviewer switches to provider acme, model acme-reasoner-1, which has no price",
    QUALITY_REGRESSION: "gpt-4.1 starts wrapping its JSON answers in markdown fences and dropping fields; "
    "the judge scores its answers far lower",
}
SCENARIOS: tuple[str, ...] = tuple(SCENARIO_DESCRIPTIONS)


class UnknownScenarioError(KeyError, ValueError):
    """A scenario name that is not one of SCENARIOS.

    Both a KeyError (an unknown key of the switch) and a ValueError (a bad argument), so callers
    may catch whichever reads naturally where they are.
    """

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.message = f"unknown scenario {name!r} (known: {', '.join(known)})"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ScenarioSwitch:
    """Which scenarios are switched on by hand; thread-safe, read before every agent run."""

    def __init__(self, known: Iterable[str] = SCENARIOS) -> None:
        self._known = tuple(known)
        self._active: set[str] = set()
        self._lock = threading.Lock()

    def known(self) -> tuple[str, ...]:
        """Every scenario name this switch accepts, in catalogue order."""
        return self._known

    def active(self) -> tuple[str, ...]:
        """The scenarios switched on, in catalogue order (a stable order for display and logs)."""
        with self._lock:
            return tuple(name for name in self._known if name in self._active)

    def enable(self, name: str) -> None:
        """Switch a scenario on (from the next agent run on); UnknownScenarioError if unknown."""
        self._check(name)
        with self._lock:
            self._active.add(name)

    def disable(self, name: str) -> None:
        """Switch a scenario off (from the next agent run on); UnknownScenarioError if unknown."""
        self._check(name)
        with self._lock:
            self._active.discard(name)

    def _check(self, name: str) -> None:
        if name not in self._known:
            raise UnknownScenarioError(name, self._known)


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h)?$")
_UNIT_SECONDS = {None: 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in `90s`, `1.5m`, `2h` or `30`; ValueError naming the text otherwise."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"invalid duration {text!r} (expected e.g. 30s, 2m, 1h)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class _Window:
    name: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class _Cycle:
    names: tuple[str, ...]
    on_s: float
    gap_s: float

    def active_at(self, elapsed_s: float) -> str | None:
        slot = self.on_s + self.gap_s
        position = elapsed_s % (slot * len(self.names))
        index = int(position // slot)
        return self.names[index] if position - index * slot < self.on_s else None


class ScenarioSchedule:
    """Scenarios that turn on and off by the clock (syntax in the module docstring).

    Pure: `active_at` maps seconds since the workload started to the scheduled scenarios, so a
    schedule is tested without waiting. The workload adds these to the ScenarioSwitch's.
    """

    def __init__(self, spec: str, windows: tuple[_Window, ...], cycles: tuple[_Cycle, ...]) -> None:
        self.spec = spec
        self._windows = windows
        self._cycles = cycles

    @classmethod
    def parse(cls, spec: str, known: Iterable[str] = SCENARIOS) -> ScenarioSchedule:
        """Read a schedule; ValueError (UnknownScenarioError for names) with the bad item named."""
        known = tuple(known)
        windows: list[_Window] = []
        cycles: list[_Cycle] = []
        items = [item.strip() for item in spec.split(",")]
        if not any(items):
            raise ValueError("empty schedule (expected e.g. cycle:60s or tool_outage@30s-90s)")
        for item in items:
            if item.startswith("cycle:"):
                on, _, gap = item[len("cycle:"):].partition("/")
                on_s = parse_duration(on)
                gap_s = parse_duration(gap) if gap else 0.0
                if on_s <= 0:
                    raise ValueError(f"schedule item {item!r}: a scenario must be on for more than 0 s")
                cycles.append(_Cycle(known, on_s, gap_s))
                continue
            name, at, times = item.partition("@")
            if not at or not name:
                raise ValueError(f"schedule item {item!r}: expected NAME@START-END, NAME@START or cycle:DURATION")
            if name not in known:
                raise UnknownScenarioError(name, known)
            start, dash, end = times.partition("-")
            start_s = parse_duration(start)
            end_s = parse_duration(end) if dash and end else math.inf
            if end_s <= start_s:
                raise ValueError(f"schedule item {item!r}: the end must come after the start")
            windows.append(_Window(name, start_s, end_s))
        return cls(spec, tuple(windows), tuple(cycles))

    def active_at(self, elapsed_s: float) -> frozenset[str]:
        """The scenarios this schedule has on `elapsed_s` seconds after the workload started."""
        active = {w.name for w in self._windows if w.start_s <= elapsed_s < w.end_s}
        for cycle in self._cycles:
            name = cycle.active_at(elapsed_s)
            if name is not None:
                active.add(name)
        return frozenset(active)

    def __repr__(self) -> str:
        return f"ScenarioSchedule({self.spec!r})"
