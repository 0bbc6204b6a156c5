"""Deterministic output checks: is a captured output valid JSON, complete, the right tool, not empty?

A confident, well-formatted, wrong answer throws nothing; a spike in malformed outputs is often the
first sign that a provider changed a model underneath or a prompt edit regressed. These checks need
no model: they read the output a span already carries (normalize extracts it; this module never
sees attribute names) and say pass or fail. Pure functions; the content never leaves this module.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from genai_exporter.config import (
    CHECK_JSON,
    CHECK_NOT_EMPTY,
    CHECK_REQUIRED_FIELDS,
    CHECK_TOOL_CALLED,
    FieldPath,
    OutputCheck,
    SpanMatch,
)
from genai_exporter.modelnames import is_snapshot_of

# Longer outputs are not parsed: a check must stay cheap on the exporter's hot path.
MAX_CHECKED_OUTPUT_CHARS = 1_000_000


@dataclass(frozen=True, slots=True)
class CapturedOutput:
    """What a step produced, as far as its span captured it.

    `text` is the answer's text (None when no text was captured); `tool_calls` names the tools the
    step called: the tool calls a model asked for, or the tool an execute_tool span ran.
    """

    text: str | None
    tool_calls: tuple[str, ...] = ()


def span_matches(match: SpanMatch, *, operation: str, agent: str, tool: str, model: str, output_type: str,
                 attribute: Callable[[str], str | None]) -> bool:
    """Whether a span satisfies every condition of a rule's `match` (an empty match takes all)."""
    return ((not match.operations or operation in match.operations)
            and (not match.agents or agent in match.agents)
            and (not match.tools or tool in match.tools)
            and (not match.models or any(is_snapshot_of(model, pattern) for pattern in match.models))
            and (not match.output_types or output_type in match.output_types)
            and all(attribute(key) == value for key, value in match.attributes))


def _parse_json(text: str) -> tuple[bool, object]:
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return False, None


def _has_field(document: object, path: FieldPath) -> bool:
    value = document
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return False
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                return False
            value = value[step]
    return value is not None


def run_check(check: OutputCheck, output: CapturedOutput) -> bool | None:
    """True (pass), False (fail), or None when the output needed was not captured (not judged)."""
    if check.kind == CHECK_TOOL_CALLED:
        if output.text is None and not output.tool_calls:
            return None
        return any(name in check.tools for name in output.tool_calls)
    if check.kind == CHECK_NOT_EMPTY:
        if output.text is None and not output.tool_calls:
            return None
        return bool(output.tool_calls) or bool(output.text and output.text.strip())
    text = output.text
    if text is None or len(text) > MAX_CHECKED_OUTPUT_CHARS:
        return None
    valid, document = _parse_json(text)
    if check.kind == CHECK_JSON:
        return valid
    if check.kind == CHECK_REQUIRED_FIELDS:
        return valid and all(_has_field(document, path) for path in check.fields)
    return None
