"""Writing exporter config files in tests, and reading back the problems they are refused with."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_exporter.config import ConfigError, load_config


def write(directory: Path, text: str, name: str = "genai-exporter.yml") -> Path:
    """A config file with this text in `directory`."""
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(directory: Path, text: str) -> list[str]:
    """Every problem `load_config` reports for a config file with this text."""
    with pytest.raises(ConfigError) as raised:
        load_config(write(directory, text))
    return raised.value.problems
