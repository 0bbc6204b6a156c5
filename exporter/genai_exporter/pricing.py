"""Price stage: which price-table entry bills a model call, and what the call cost per token type.

The table is data (`prices.yaml`, shipped with the package, plus the user's files merged over it),
validated at startup like the config: every problem is reported at once with its path, and a
broken file stops the exporter before it listens.

`PriceTable.lookup` runs once per span, so it memoises its answers (including "no price") in a
dict of bounded size: model names come from the outside and an unbounded cache would grow with
every misspelt or synthetic name a client sends.
"""

from __future__ import annotations

import datetime
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from genai_exporter import semconv
from genai_exporter.config import ConfigError
from genai_exporter.modelnames import strip_snapshot_suffix
from genai_exporter.records import TokenCost, TokenUsage

TOKENS_PER_PRICE_UNIT = 1_000_000
BUILTIN_PRICES = "prices.yaml"
# Lookup answers kept; past this, the oldest answer is forgotten first.
LOOKUP_CACHE_SIZE = 4096
# Names longer than this are not model names: answer None without caching or matching them.
MAX_MODEL_NAME_LENGTH = 256

ENTRY_KEYS = frozenset({
    "model", "provider", "input", "output", "cache_read", "cache_write", "tiers", "aliases",
    "patterns", "source", "as_of",
})
TIER_KEYS = frozenset({"above_prompt_tokens", "input", "output", "cache_read", "cache_write"})

# Inference-profile regions and model vendors of AWS Bedrock ids:
# "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-3-5-haiku-20241022-v1:0".
_BEDROCK_ID = re.compile(
    r"^(?:(?:us|eu|apac|au|jp|ca|us-gov|global)\.)?"
    r"(?:anthropic|amazon|meta|cohere|mistral|ai21|deepseek|openai|qwen|writer)\."
    r"(?P<model>.+?)(?:-v\d+(?::\d+)?|:\d+)?$"
)
# Vertex AI pins versions with "@": "claude-sonnet-4-5@20250929", "claude-opus-4-6@default".
_VERTEX_VERSION = re.compile(r"^(?P<model>[^@]+)@(?P<version>[^@]*)$")
@dataclass(frozen=True)
class PriceTier:
    """Long-context rates: once the prompt exceeds `above_prompt_tokens`, the WHOLE request is
    billed at these rates (Google's and Anthropic's rule, and LiteLLM's), not only the excess."""

    above_prompt_tokens: int
    input: float
    output: float
    cache_read: float | None
    cache_write: float | None


@dataclass(frozen=True)
class PriceEntry:
    """The price of one model, in USD per million tokens, with where and when it was read."""

    model: str
    provider: str
    input: float
    output: float
    cache_read: float | None
    cache_write: float | None
    tiers: tuple[PriceTier, ...]
    source: str
    as_of: str


@dataclass(frozen=True)
class _PricedModel:
    """An entry with the names it answers to, as read from one price file."""

    entry: PriceEntry
    aliases: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]


class PriceTable:
    """Every priced model, found by the names real instrumentation reports."""

    def __init__(self, models: Iterable[_PricedModel]) -> None:
        self._models = tuple(models)
        by_name: dict[str, list[PriceEntry]] = {}
        for priced in self._models:
            for name in (priced.entry.model, *priced.aliases):
                candidates = by_name.setdefault(name.lower(), [])
                if priced.entry not in candidates:
                    candidates.append(priced.entry)
        self._by_name = {name: tuple(entries) for name, entries in by_name.items()}
        self._patterns = tuple(
            (pattern, priced.entry) for priced in self._models for pattern in priced.patterns
        )
        self._cache: dict[tuple[str, str], PriceEntry | None] = {}
        self._cache_lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._models)

    def lookup(self, provider: str, model: str) -> PriceEntry | None:
        """The entry that bills `model` as reported on a span, or None if the table has no price.

        Called for every model span, so answers are memoised in a dict of at most
        LOOKUP_CACHE_SIZE keys (oldest forgotten first), which keeps memory bounded whatever
        names arrive. Never raises.
        """
        key = (provider, model)
        try:
            return self._cache[key]
        except KeyError:
            pass
        if len(model) > MAX_MODEL_NAME_LENGTH:
            return None
        entry = self._resolve(provider.strip().lower(), model.strip().lower())
        if len(provider) > MAX_MODEL_NAME_LENGTH:
            return entry
        with self._cache_lock:
            if len(self._cache) >= LOOKUP_CACHE_SIZE:
                del self._cache[next(iter(self._cache))]
            self._cache[key] = entry
        return entry

    def cached_lookups(self) -> int:
        """How many lookup answers are memoised: lets tests check the cache stays bounded."""
        return len(self._cache)

    def _resolve(self, provider: str, model: str) -> PriceEntry | None:
        if not model:
            return None
        names = _name_forms(model)
        for name in names:
            entry = self._by_exact_name(provider, name)
            if entry is not None:
                return entry
        for name in names:
            for pattern, entry in self._patterns:
                if pattern.fullmatch(name):
                    return entry
        folded = names[-1]
        while True:
            shorter = strip_snapshot_suffix(folded)
            if shorter is None:
                return None
            folded = shorter
            entry = self._by_exact_name(provider, folded)
            if entry is not None:
                return entry

    def _by_exact_name(self, provider: str, name: str) -> PriceEntry | None:
        candidates = self._by_name.get(name)
        if not candidates:
            return None
        for entry in candidates:
            if entry.provider == provider:
                return entry
        # No entry of the span's provider: the model is the same whoever serves it (Bedrock and
        # Vertex resell Claude and Gemini at list price); the latest loaded entry wins.
        return candidates[-1]


def _name_forms(model: str) -> list[str]:
    """The model name as reported, then with routing prefixes and vendor decorations removed."""
    forms = [model]
    if "/" in model:
        # "openai/gpt-4o", "models/gemini-2.5-pro", "projects/p/.../publishers/google/models/x".
        forms.append(model.rsplit("/", 1)[1])
    bedrock = _BEDROCK_ID.match(forms[-1])
    if bedrock:
        forms.append(bedrock.group("model"))
    vertex = _VERTEX_VERSION.match(forms[-1])
    if vertex:
        version = vertex.group("version")
        base = vertex.group("model")
        if version.isdigit():
            forms.append(f"{base}-{version}")
        forms.append(base)
    return [form for form in dict.fromkeys(forms) if form]


def price_usage(entry: PriceEntry, usage: TokenUsage) -> TokenCost:
    """What one call cost per token type: tokens x USD-per-million / 1e6.

    When the prompt (input + cache_read + cache_write) exceeds a tier's threshold, the whole call
    is billed at that tier's rates; the highest exceeded threshold wins. A cache rate the table
    does not give is billed at the input rate of the same tier, so a missing price can only
    over-report, never hide spend. The cache savings are priced at the same tier's rates: what the
    cache-read tokens of this very call would have cost more uncached.
    """
    rates: PriceEntry | PriceTier = entry
    for tier in entry.tiers:  # sorted by threshold at load time
        if usage.prompt > tier.above_prompt_tokens:
            rates = tier
    cache_read = rates.cache_read if rates.cache_read is not None else rates.input
    cache_write = rates.cache_write if rates.cache_write is not None else rates.input
    # The TokenCost fields in order, built with tuple.__new__: once per priced call, and a third of
    # the time of the NamedTuple's Python-level __new__.
    return tuple.__new__(TokenCost, (
        usage.input * rates.input / TOKENS_PER_PRICE_UNIT,
        usage.cache_read * cache_read / TOKENS_PER_PRICE_UNIT,
        usage.cache_write * cache_write / TOKENS_PER_PRICE_UNIT,
        usage.output * rates.output / TOKENS_PER_PRICE_UNIT,
        usage.cache_read * max(0.0, rates.input - cache_read) / TOKENS_PER_PRICE_UNIT,
    ))


def load_price_table(user_files: Sequence[Path] = ()) -> PriceTable:
    """Built-in prices.yaml, then each user file merged over it in order (same model name: later wins;
    users add negotiated prices or self-hosted models at 0).

    Entries are keyed by (provider, model): a user entry replaces the built-in one of the same
    provider and name, and an entry for another provider (e.g. a Bedrock regional price) is added
    beside it and preferred for spans of that provider. Raises ConfigError listing every problem
    of the first file that has any.
    """
    builtin = resources.files("genai_exporter").joinpath(BUILTIN_PRICES).read_text(encoding="utf-8")
    merged: dict[tuple[str, str], _PricedModel] = {}
    sources: list[tuple[str, str]] = [(f"genai_exporter/{BUILTIN_PRICES}", builtin)]
    sources.extend((str(path), _read(path)) for path in user_files)
    for source, text in sources:
        for priced in parse_price_document(_parse_yaml(source, text), source):
            key = (priced.entry.provider, priced.entry.model.lower())
            merged.pop(key, None)  # re-inserted last, so it also wins cross-provider fallbacks
            merged[key] = priced
    return PriceTable(merged.values())


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(str(path), [f"(file): cannot read: {error.strerror or error}"]) from error


class _PriceFileLoader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text: PyYAML raises a bare ValueError on an impossible date
    such as 2026-13-01, and `as_of` must be reported like any other bad value."""


_PriceFileLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))


def _parse_yaml(source: str, text: str) -> Any:
    try:
        return yaml.load(text, Loader=_PriceFileLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ConfigError(source, [f"{where}: not valid YAML: {getattr(error, 'problem', error)}"]) from error


def parse_price_document(document: Any, source: str) -> list[_PricedModel]:
    """Check a parsed price file and return its entries, or raise ConfigError with every problem."""
    problems: list[str] = []
    if not isinstance(document, Mapping):
        raise ConfigError(source, [f"(top level): must be a mapping with a `models` list, "
                                   f"got {type(document).__name__}"])
    for key in document:
        if key != "models":
            problems.append(f"{key}: unknown key (known: models)")
    raw_models = document.get("models")
    if not isinstance(raw_models, list):
        problems.append(f"models: must be a list of price entries, got {type(raw_models).__name__}")
        raw_models = []
    models: list[_PricedModel] = []
    names_seen: dict[tuple[str, str], str] = {}
    for index, raw in enumerate(raw_models):
        path = f"models[{index}]"
        priced = _parse_entry(raw, path, problems)
        if priced is None:
            continue
        for name in (priced.entry.model, *priced.aliases):
            key = (priced.entry.provider, name.lower())
            if key in names_seen:
                problems.append(f"{path}: name {name!r} of provider {priced.entry.provider!r} "
                                f"is already used by {names_seen[key]}")
            else:
                names_seen[key] = path
        models.append(priced)
    if problems:
        raise ConfigError(source, problems)
    return models


def _parse_entry(raw: Any, path: str, problems: list[str]) -> _PricedModel | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{path}: must be a mapping, got {type(raw).__name__}")
        return None
    count_before = len(problems)
    for key in raw:
        if key not in ENTRY_KEYS:
            problems.append(f"{path}.{key}: unknown key (known: {', '.join(sorted(ENTRY_KEYS))})")
    model = _text(raw, "model", path, problems)
    provider = _text(raw, "provider", path, problems)
    source = _text(raw, "source", path, problems)
    as_of = _date(raw, "as_of", path, problems)
    input_price = _price(raw, "input", path, problems, required=True)
    output_price = _price(raw, "output", path, problems, required=True)
    cache_read = _price(raw, "cache_read", path, problems, required=False)
    cache_write = _price(raw, "cache_write", path, problems, required=False)
    tiers = _tiers(raw.get("tiers"), f"{path}.tiers", problems)
    aliases = _names(raw.get("aliases"), f"{path}.aliases", problems)
    patterns = _patterns(raw.get("patterns"), f"{path}.patterns", problems)
    if (len(problems) > count_before or model is None or provider is None or source is None
            or as_of is None or input_price is None or output_price is None):
        return None
    normalized_provider = provider.strip().lower()
    entry = PriceEntry(
        model=model.strip(),
        provider=semconv.PROVIDER_VALUE_ALIASES.get(normalized_provider, normalized_provider),
        input=input_price,
        output=output_price,
        cache_read=cache_read,
        cache_write=cache_write,
        tiers=tiers,
        source=source.strip(),
        as_of=as_of,
    )
    return _PricedModel(entry, aliases, patterns)


def _text(raw: Mapping[str, Any], key: str, path: str, problems: list[str]) -> str | None:
    value = raw.get(key)
    if value is None:
        problems.append(f"{path}.{key}: missing (required)")
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{path}.{key}: must be a non-empty string, got {value!r}")
        return None
    return value


def _date(raw: Mapping[str, Any], key: str, path: str, problems: list[str]) -> str | None:
    value = raw.get(key)
    if value is None:
        problems.append(f"{path}.{key}: missing (required)")
        return None
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    problems.append(f"{path}.{key}: must be a date YYYY-MM-DD, got {value!r}")
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _price(raw: Mapping[str, Any], key: str, path: str, problems: list[str], *,
           required: bool) -> float | None:
    if raw.get(key) is None:
        if required:
            problems.append(f"{path}.{key}: missing (required)")
        return None
    number = _number(raw[key])
    if number is None:
        problems.append(f"{path}.{key}: must be a non-negative number, got {raw[key]!r}")
    return number


def _tiers(raw: Any, path: str, problems: list[str]) -> tuple[PriceTier, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(f"{path}: must be a list, got {type(raw).__name__}")
        return ()
    tiers: list[PriceTier] = []
    thresholds: set[int] = set()
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where}: must be a mapping, got {type(item).__name__}")
            continue
        count_before = len(problems)
        for key in item:
            if key not in TIER_KEYS:
                problems.append(f"{where}.{key}: unknown key (known: {', '.join(sorted(TIER_KEYS))})")
        threshold = item.get("above_prompt_tokens")
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold <= 0:
            problems.append(f"{where}.above_prompt_tokens: must be a positive integer, got {threshold!r}")
        elif threshold in thresholds:
            problems.append(f"{where}.above_prompt_tokens: {threshold} is used by another tier")
        input_price = _price(item, "input", where, problems, required=True)
        output_price = _price(item, "output", where, problems, required=True)
        cache_read = _price(item, "cache_read", where, problems, required=False)
        cache_write = _price(item, "cache_write", where, problems, required=False)
        if len(problems) == count_before and input_price is not None and output_price is not None:
            thresholds.add(threshold)
            tiers.append(PriceTier(threshold, input_price, output_price, cache_read, cache_write))
    return tuple(sorted(tiers, key=lambda tier: tier.above_prompt_tokens))


def _names(raw: Any, path: str, problems: list[str]) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(f"{path}: must be a list of model names, got {type(raw).__name__}")
        return ()
    names: list[str] = []
    for index, item in enumerate(raw):
        if not isinstance(item, str) or not item.strip():
            problems.append(f"{path}[{index}]: must be a non-empty string, got {item!r}")
        else:
            names.append(item.strip())
    return tuple(names)


def _patterns(raw: Any, path: str, problems: list[str]) -> tuple[re.Pattern[str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(f"{path}: must be a list of regular expressions, got {type(raw).__name__}")
        return ()
    compiled: list[re.Pattern[str]] = []
    for index, item in enumerate(raw):
        if not isinstance(item, str) or not item:
            problems.append(f"{path}[{index}]: must be a non-empty string, got {item!r}")
            continue
        try:
            compiled.append(re.compile(item, re.IGNORECASE))
        except re.error as error:
            problems.append(f"{path}[{index}]: not a valid regular expression: {error}")
    return tuple(compiled)
