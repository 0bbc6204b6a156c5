"""Model names as spans report them: a model and its snapshots.

Providers answer an alias request with a dated snapshot (`gpt-4o-mini` → `gpt-4o-mini-2024-07-18`)
that behaves and bills like the model itself. Pricing folds snapshots into their price entry and
the output-check rules match them; both read the suffixes here. Pure functions.
"""

from __future__ import annotations

import re

# Suffixes that name a snapshot of a model, stripped one at a time: OpenAI dates, Anthropic dates,
# "-latest", Google "-001", Mistral/xAI "-2411"/"-0709".
SNAPSHOT_SUFFIXES = (
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),
    re.compile(r"-\d{8}$"),
    re.compile(r"-latest$"),
    re.compile(r"-\d{3,4}$"),
)


def strip_snapshot_suffix(name: str) -> str | None:
    """The name without its last snapshot suffix, or None when it has none."""
    for suffix in SNAPSHOT_SUFFIXES:
        shorter = suffix.sub("", name)
        if shorter != name and shorter:
            return shorter
    return None


def is_snapshot_of(model: str, base: str) -> bool:
    """Whether `model` is `base` or a snapshot of it: gpt-4.1-2025-04-14 is gpt-4.1, gpt-4.1-mini is not."""
    name: str | None = model
    while name is not None and len(name) >= len(base):
        if name == base:
            return True
        name = strip_snapshot_suffix(name)
    return False
