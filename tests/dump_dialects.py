"""Generate docs/dialects-observed.md: what each instrumentation library really emits.

The exporter's alias tables (genai_exporter.semconv) are only as good as our knowledge of real
spans, and that knowledge goes stale with every library release. This script captures the
standard scenarios under every instrumentation (tests.instrumented) and writes the spans down.
A test regenerates the text and fails when the checked-in file differs, so the document always
describes the installed library versions.

Run from the repository root: `python -m tests.dump_dialects` (rewrites the document).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from importlib import metadata
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from genai_exporter import semconv
from tests.fakes.openai_server import EmbeddingReply, ErrorReply, Reply
from tests.instrumented import (
    REPOSITORY_ROOT,
    STANDARD_SCENARIOS,
    Capture,
    Instrumentation,
    capture_all,
)

DOCUMENT_PATH = REPOSITORY_ROOT / "docs" / "dialects-observed.md"
SERVICE_NAME = "checkout-assistant"
DISTRIBUTIONS = (
    "openai",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-openai-v2",
    "opentelemetry-util-genai",
    "openinference-instrumentation-openai",
    "opentelemetry-instrumentation-openai",
    "opentelemetry-semantic-conventions-ai",
)
# Longer values (whole request or response bodies) are cut: the keys matter, not the payload.
MAX_VALUE_CHARACTERS = 160
# The fake server listens on a random port; any value naming it would change on every run.
_LOOPBACK_URL = re.compile(r"127\.0\.0\.1:\d+")
_STACK_TRACE_KEY = "exception.stacktrace"

# Concepts the exporter reads, with the alias groups that spell them (first found is shown).
_CONCEPTS: tuple[tuple[str, Sequence[str]], ...] = (
    ("operation", (semconv.OPERATION_NAME, semconv.OPENINFERENCE_SPAN_KIND,
                   semconv.TRACELOOP_LLM_REQUEST_TYPE)),
    ("provider", semconv.PROVIDER_ALIASES),
    ("model", semconv.MODEL_ALIASES),
    ("input tokens", semconv.INPUT_TOKENS_ALIASES),
    ("output tokens", semconv.OUTPUT_TOKENS_ALIASES),
    ("total tokens", semconv.TOTAL_TOKENS_ALIASES),
    ("cache read tokens", semconv.CACHE_READ_TOKENS_ALIASES),
    ("cache write tokens", semconv.CACHE_WRITE_TOKENS_ALIASES),
    ("reasoning tokens", semconv.REASONING_TOKENS_ALIASES),
    ("finish reasons", semconv.FINISH_REASONS_ALIASES),
    ("time to first chunk", (*semconv.TIME_TO_FIRST_CHUNK_ALIASES, *semconv.TIME_TO_FIRST_CHUNK_MS_ALIASES)),
    ("error type", (semconv.ERROR_TYPE,)),
    ("output messages", (semconv.OUTPUT_MESSAGES, *semconv.COMPLETION_TEXT_ALIASES,
                         semconv.OPENINFERENCE_OUTPUT_VALUE)),
)
# Parts of attribute keys that mark data the exporter would want to read.
_INTERESTING_WORDS = ("usage", "token_count", "finish", "first", "error", "model", "provider", "kind")


def _scrub(text: str) -> str:
    return _LOOPBACK_URL.sub("127.0.0.1:PORT", text)


def _value(value: Any) -> str:
    shown = _scrub(repr(value))
    if len(shown) > MAX_VALUE_CHARACTERS:
        shown = f"{shown[:MAX_VALUE_CHARACTERS]}… ({len(shown)} chars)"
    return "`" + shown.replace("|", "\\|").replace("`", "'") + "`"


def _reply(reply: Reply) -> str:
    """The scripted reply in one line: the fields that shape the span, without defaults."""
    if isinstance(reply, ErrorReply):
        return f"HTTP {reply.status}"
    if isinstance(reply, EmbeddingReply):
        return f"model `{reply.model}`, prompt_tokens {reply.prompt_tokens}"
    usage = ", ".join(f"{field.name} {getattr(reply.usage, field.name)}" for field in fields(reply.usage)
                      if getattr(reply.usage, field.name) is not None)
    tools = "".join(f", tool call `{call.name}`" for call in reply.tool_calls)
    return (f"model `{reply.model}`, {usage}, finish_reason `{reply.finish_reason}`, "
            f"content {_value(reply.content)}{tools}")


def _events(span: ReadableSpan) -> list[str]:
    """Span events, identical consecutive ones folded into one line with a count."""
    lines: list[str] = []
    previous, repeats = "", 0
    for event in span.events:
        attributes = ", ".join(
            f"{key}={'<stack trace>' if key == _STACK_TRACE_KEY else _value(value)}"
            for key, value in event.attributes.items()
        )
        line = f"`{event.name}`" + (f" {{{attributes}}}" if attributes else "")
        if line == previous:
            repeats += 1
            continue
        if previous:
            lines.append(previous + (f" ×{repeats}" if repeats > 1 else ""))
        previous, repeats = line, 1
    if previous:
        lines.append(previous + (f" ×{repeats}" if repeats > 1 else ""))
    return lines


def _span_section(span: ReadableSpan) -> list[str]:
    status = span.status.status_code.name
    if span.status.description:
        status += f" ({_value(span.status.description)})"
    lines = [
        f"- span name `{span.name}`, kind `{span.kind.name}`, status {status}, "
        f"parent {'none (root)' if span.parent is None else 'set'}",
    ]
    lines += [f"- event {event}" for event in _events(span)]
    lines += ["", "| attribute | value |", "|---|---|"]
    lines += [f"| `{key}` | {_value(value)} |" for key, value in (span.attributes or {}).items()]
    return lines


def _first_alias(spans: Iterable[ReadableSpan], aliases: Sequence[str]) -> str:
    keys = {key for span in spans for key in (span.attributes or {})}
    found = [alias for alias in aliases if alias in keys]
    return ", ".join(f"`{alias}`" for alias in found) if found else "—"


def _unread_keys(spans: Iterable[ReadableSpan]) -> list[str]:
    """Keys that look like usage, model, finish or error data but that normalize does not read."""
    known = semconv.metric_attribute_keys()
    keys = {key for span in spans for key in (span.attributes or {})}
    return sorted(key for key in keys
                  if key not in known and any(word in key for word in _INTERESTING_WORDS)
                  and not key.startswith(("llm.input_messages.", "llm.output_messages.")))


def _summary(captures: Mapping[Instrumentation, Mapping[str, Capture]]) -> list[str]:
    columns = list(captures)
    lines = [
        "| concept | " + " | ".join(f"`{item.value}`" for item in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for concept, aliases in _CONCEPTS:
        cells = [_first_alias((s for c in captures[item].values() for s in c.spans), aliases)
                 for item in columns]
        lines.append(f"| {concept} | " + " | ".join(cells) + " |")
    stream_events = []
    for item in columns:
        stream = captures[item].get("chat_stream")
        names = sorted({event.name for span in stream.spans for event in span.events}) if stream else []
        stream_events.append(", ".join(f"`{name}`" for name in names) or "—")
    lines.append("| span events on a stream | " + " | ".join(stream_events) + " |")
    unread = [", ".join(f"`{key}`" for key in _unread_keys(
        s for c in captures[item].values() for s in c.spans)) or "—" for item in columns]
    lines.append("| keys normalize does not read | " + " | ".join(unread) + " |")
    return lines


def render(captures: Mapping[Instrumentation, Mapping[str, Capture]]) -> str:
    """The whole document for these captures (deterministic: ids, times and ports are left out)."""
    lines = [
        "# GenAI span dialects observed from real instrumentation",
        "",
        "Generated by `python -m tests.dump_dialects` (do not edit by hand; "
        "`tests/test_real_instrumentation.py` fails when this file is stale).",
        "Every span below was emitted by the real instrumentation library around the real `openai` "
        "client, talking to the scripted fake server in `tests/fakes/openai_server.py`. "
        f"Resource `service.name` is `{SERVICE_NAME}` on every span.",
        "",
        "Installed versions:",
        "",
        *[f"- `{name}` {metadata.version(name)}" for name in DISTRIBUTIONS],
        "",
        "Instrumentations (environment of the capturing process):",
        "",
        *[f"- `{item.value}`: {item.description}" for item in captures],
        "",
        "Scenarios (what the fake server answers):",
        "",
        *[f"- `{scenario.name}`: {scenario.description}. Request `{scenario.request_model}`; "
          f"reply {_reply(scenario.reply)}" for scenario in STANDARD_SCENARIOS],
        "",
        "## At a glance",
        "",
        "Which attribute each library uses for what the exporter reads (aliases from "
        "`genai_exporter.semconv`, — when the library sent none in any scenario), and the keys that "
        "look relevant but that the exporter does not read.",
        "",
        *_summary(captures),
    ]
    sections = {item: _instrumentation_sections(by_scenario) for item, by_scenario in captures.items()}
    for item, by_scenario in sections.items():
        lines += ["", f"## `{item.value}`", ""]
        earlier = list(sections)[: list(sections).index(item)]
        same = next((other for other in earlier if sections[other] == by_scenario), None)
        if same is not None:
            lines.append(f"Every span is identical to the spans of `{same.value}` above.")
            continue
        for name, section in by_scenario.items():
            lines += ["", f"### `{item.value}` — `{name}`", "", *section]
    return "\n".join(lines) + "\n"


def _instrumentation_sections(by_scenario: Mapping[str, Capture]) -> dict[str, list[str]]:
    sections = {}
    for name, captured in by_scenario.items():
        section = []
        if captured.client_error:
            section.append(f"- the client raised `{captured.client_error}`")
        if not captured.spans:
            section.append("- no span")
        for span in captured.spans:
            section += _span_section(span)
        sections[name] = section
    return sections


def capture_standard(service_name: str = SERVICE_NAME) -> dict[Instrumentation, dict[str, Capture]]:
    """Captures of every standard scenario under every instrumentation (one process each)."""
    return capture_all(list(Instrumentation), STANDARD_SCENARIOS, service_name)


def main() -> None:
    """Capture and rewrite the document."""
    Path(DOCUMENT_PATH).write_text(render(capture_standard()), encoding="utf-8")
    print(f"wrote {DOCUMENT_PATH.relative_to(REPOSITORY_ROOT)}")


if __name__ == "__main__":
    main()
