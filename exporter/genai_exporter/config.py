"""The exporter's configuration: typed, validated at startup, every error reported at once.

A config file is optional; with none, the built-in defaults below apply. `load_config` reads
YAML, checks every key and collects every problem (with its path, e.g.
`dimensions[1].max_values: must be a positive integer`) into one `ConfigError`, so an operator
fixes a broken file in one pass. The CLI turns a ConfigError into exit code 2.

Secrets never sit in this file's dataclass reprs (so never in a log line): the hashing secret of
pseudonymised dimensions comes from a file or an environment variable, never from the config file
itself, and bearer tokens are kept out of `repr`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from genai_exporter import catalog, semconv

LABEL_NAME_PATTERN = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Labels a dimension may not take: they are already on the domain metrics.
RESERVED_LABELS = frozenset({
    catalog.SERVICE, catalog.PROVIDER, catalog.MODEL, catalog.OPERATION, catalog.TOKEN_TYPE,
    catalog.LAYER, catalog.AGENT, catalog.TOOL, catalog.STATUS, catalog.ERROR_TYPE,
    catalog.FINISH_REASON, "le", "quantile", "job", "instance",
})
# Where the hashing secret of `hash: true` dimensions comes from when the config names no source.
DEFAULT_HASH_SECRET_ENV = "GENAI_EXPORTER_HASH_SECRET"
# Shorter secrets (or bearer tokens) are guessable; `openssl rand -hex 32` gives 64 characters.
MIN_SECRET_BYTES = 16
MIN_BEARER_TOKEN_CHARS = 16
# RFC 6750 b64token: what an Authorization: Bearer header can carry.
BEARER_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
BUDGET_KINDS = {
    "tokens_per_second": catalog.BUDGET_TOKENS_PER_SECOND.name,
    "cost_usd_per_day": catalog.BUDGET_COST_USD_PER_DAY.name,
}


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` lists every reason with its key path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))

    def __str__(self) -> str:
        lines = [f"invalid configuration {self.source}:"]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)


@dataclass(frozen=True)
class Dimension:
    """A user-defined label (user tier, feature, team) read from span or resource attributes.

    With `hash_secret` set (`hash: true` in the file), the label holds a keyed pseudonym of the value
    instead of the value: users stay distinguishable on dashboards without their ids in Prometheus.
    """

    label: str
    attributes: tuple[str, ...]
    max_values: int = 100
    hash_secret: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Budget:
    """A budget series: `genai_budget_<kind>{<labels>} <value>`, joined against usage by alerts."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True)
class CardinalityLimits:
    """Distinct values kept per built-in label before new ones become `__overflow__`."""

    max_values: Mapping[str, int] = field(default_factory=lambda: {
        catalog.SERVICE: 200,
        catalog.PROVIDER: 50,
        catalog.MODEL: 500,
        catalog.OPERATION: 50,
        catalog.AGENT: 500,
        catalog.TOOL: 1000,
        catalog.ERROR_TYPE: 200,
        catalog.FINISH_REASON: 50,
        catalog.CHECK: 100,
        catalog.EVALUATION: 100,
        catalog.LABEL: 100,
    })
    max_label_value_length: int = 128
    # Agent-run accumulators waiting for their invoke_agent span to end.
    max_pending_agent_runs: int = 100_000


@dataclass(frozen=True)
class ServerLimits:
    """Protection of the OTLP receiver against oversized, slow or too many requests."""

    max_request_bytes: int = 16 * 1024 * 1024
    max_decompressed_bytes: int = 64 * 1024 * 1024
    request_timeout_seconds: float = 30.0
    max_concurrent_requests: int = 16
    # How long a request waits for one of the max_concurrent_requests slots before a 503.
    queue_timeout_seconds: float = 1.0
    # Open connections per listener; further clients wait in the kernel's accept queue.
    max_connections: int = 512
    # On SIGTERM, how long accepted requests get to finish before the exporter exits anyway.
    shutdown_timeout_seconds: float = 25.0


@dataclass(frozen=True)
class IngestAuth:
    """Who may send spans over OTLP: bearer tokens, listed in the config or in a file re-read on change.

    Empty (no tokens, no file) means the OTLP listener takes no bearer token; the web config's
    basic-auth users, if any, still apply to it.
    """

    bearer_tokens: tuple[str, ...] = field(default=(), repr=False)
    bearer_tokens_file: Path | None = None

    @property
    def enabled(self) -> bool:
        """Whether OTLP requests must carry a bearer token (or basic-auth credentials)."""
        return bool(self.bearer_tokens) or self.bearer_tokens_file is not None


def default_dimensions() -> tuple[Dimension, ...]:
    """The dimensions every deployment gets unless its config names its own."""
    return (
        Dimension("user_tier", semconv.DEFAULT_USER_TIER_ATTRIBUTES, 100),
        Dimension("feature", semconv.DEFAULT_FEATURE_ATTRIBUTES, 100),
    )


def default_budgets() -> tuple[Budget, ...]:
    """1000 tokens/s per user tier, the budget of the reference article on token budgets."""
    return tuple(
        Budget(catalog.BUDGET_TOKENS_PER_SECOND.name, (("user_tier", tier),), 1000.0)
        for tier in ("free", "pro", "enterprise")
    )


# Kinds of deterministic output checks (genai_output_checks_total).
CHECK_JSON = "json"                        # the output is valid JSON
CHECK_REQUIRED_FIELDS = "required_fields"  # ...a JSON object with every listed field set
CHECK_TOOL_CALLED = "tool_called"          # the step called one of the listed tools
CHECK_NOT_EMPTY = "not_empty"              # the output has text (not only whitespace) or a tool call
CHECK_KINDS = (CHECK_JSON, CHECK_REQUIRED_FIELDS, CHECK_TOOL_CALLED, CHECK_NOT_EMPTY)
CHECK_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
# A field path: keys separated by dots, list indexes in brackets, e.g. `sources[0].url`.
_FIELD_PATH_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d+\])*)")
FieldPath = tuple[str | int, ...]


def parse_field_path(text: str) -> FieldPath | None:
    """The steps of a field path (`answer`, `sources[0].url`), or None when it is not one."""
    steps: list[str | int] = []
    for part in text.split("."):
        match = _FIELD_PATH_STEP.fullmatch(part)
        if match is None:
            return None
        steps.append(match.group(1))
        steps.extend(int(index) for index in re.findall(r"\d+", match.group(2)))
    return tuple(steps)


@dataclass(frozen=True)
class SpanMatch:
    """Which spans a rule applies to: every listed condition must hold; an empty one matches all.

    Models match their snapshots too (`gpt-4o-mini` matches `gpt-4o-mini-2024-07-18`, not
    `gpt-4o-mini-tts`);
    attributes compare the span attribute's value as a string.
    """

    operations: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    # What the request asked the output to be (gen_ai.output.type: json, text...), in any dialect.
    output_types: tuple[str, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class OutputCheck:
    """A deterministic check run on the captured output of the spans it matches."""

    name: str
    kind: str
    match: SpanMatch = SpanMatch()
    fields: tuple[FieldPath, ...] = ()
    tools: tuple[str, ...] = ()


def default_output_checks() -> tuple[OutputCheck, ...]:
    """A model asked for JSON (gen_ai.output.type json) must answer with valid JSON."""
    return (OutputCheck("valid_json", CHECK_JSON, SpanMatch(output_types=(semconv.OUTPUT_TYPE_JSON,))),)


@dataclass(frozen=True)
class Config:
    """Everything the exporter needs besides its command-line flags."""

    dimensions: tuple[Dimension, ...] = field(default_factory=default_dimensions)
    price_files: tuple[Path, ...] = ()
    budgets: tuple[Budget, ...] = field(default_factory=default_budgets)
    limits: CardinalityLimits = field(default_factory=CardinalityLimits)
    server: ServerLimits = field(default_factory=ServerLimits)
    ingest_auth: IngestAuth = field(default_factory=IngestAuth)
    output_checks: tuple[OutputCheck, ...] = field(default_factory=default_output_checks)


class Problems:
    """Collects problems with their key paths while a config file is checked."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, reason: str) -> None:
        self.items.append(f"{path}: {reason}")


def _positive_int(value: Any, path: str, problems: Problems) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        problems.add(path, f"must be a positive integer, got {value!r}")
        return None
    return value


def _positive_number(value: Any, path: str, problems: Problems) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        problems.add(path, f"must be a positive number, got {value!r}")
        return None
    return float(value)


def mapping_at(value: Any, path: str, problems: Problems) -> Mapping[str, Any]:
    """The mapping at a key path (absent is empty); anything else is a problem, read as empty."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.add(path, f"must be a mapping, got {type(value).__name__}")
        return {}
    return value


def unknown_keys(section: Mapping[str, Any], known: set[str], path: str, problems: Problems) -> None:
    """Name every key of a section that is not known: a typo must not silently fall back to a default."""
    for key in section:
        if key not in known:
            where = f"{path}.{key}" if path else str(key)
            problems.add(where, f"unknown key (known: {', '.join(sorted(known))})")


def _parse_dimensions(raw: Any, problems: Problems) -> tuple[tuple[Dimension, ...], list[int]]:
    """The dimensions, and the indexes of those marked `hash: true` (their secret is set later)."""
    if not isinstance(raw, list):
        problems.add("dimensions", f"must be a list, got {type(raw).__name__}")
        return (), []
    dimensions: list[Dimension] = []
    hashed: list[int] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        path = f"dimensions[{index}]"
        entry = mapping_at(item, path, problems)
        if not entry:
            if item is not None and not isinstance(item, Mapping):
                continue
            problems.add(path, "must set label and attributes")
            continue
        unknown_keys(entry, {"label", "attributes", "max_values", "hash"}, path, problems)
        label = entry.get("label")
        if not isinstance(label, str) or not LABEL_NAME_PATTERN.match(label):
            problems.add(f"{path}.label", f"must be a Prometheus label name, got {label!r}")
            label = None
        elif label in RESERVED_LABELS or label.startswith("__"):
            problems.add(f"{path}.label", f"{label!r} is reserved by the exporter")
            label = None
        elif label in seen:
            problems.add(f"{path}.label", f"{label!r} is defined twice")
            label = None
        attributes = entry.get("attributes")
        if (not isinstance(attributes, list) or not attributes
                or not all(isinstance(a, str) and a for a in attributes)):
            problems.add(f"{path}.attributes", "must be a non-empty list of attribute names")
            attributes = None
        else:
            for content_key in filter(semconv.is_content_attribute, attributes):
                problems.add(f"{path}.attributes", f"{content_key!r} holds message content, prompts or tool "
                                                   "arguments, which never become labels")
                attributes = None
        max_values = _positive_int(entry.get("max_values", 100), f"{path}.max_values", problems)
        hashed_flag = entry.get("hash", False)
        if not isinstance(hashed_flag, bool):
            problems.add(f"{path}.hash", f"must be true or false, got {hashed_flag!r}")
        if label and attributes and max_values:
            seen.add(label)
            if hashed_flag is True:
                hashed.append(len(dimensions))
            dimensions.append(Dimension(label, tuple(attributes), max_values))
    return tuple(dimensions), hashed


def _read_secret(path: Path, where: str, problems: Problems) -> bytes | None:
    try:
        secret = path.read_bytes().strip()
    except OSError as error:
        problems.add(where, f"cannot read {path}: {error.strerror or error}")
        return None
    if len(secret) < MIN_SECRET_BYTES:
        problems.add(where, f"the secret in {path} is {len(secret)} bytes long: use at least {MIN_SECRET_BYTES} "
                            "(e.g. openssl rand -hex 32)")
        return None
    return secret


def _parse_hash_secret(raw: Any, base_dir: Path, environ: Mapping[str, str], problems: Problems) -> bytes | None:
    """The HMAC secret of hashed dimensions, from a file or an environment variable (never inline)."""
    section = mapping_at(raw, "hashing", problems)
    for key in section:
        if key not in ("secret_file", "secret_env"):
            reason = ("the secret may not be written in the config file: put it in a file (secret_file) or an "
                      "environment variable (secret_env)") if key == "secret" else \
                "unknown key (known: secret_env, secret_file)"
            problems.add(f"hashing.{key}", reason)
    secret_file, secret_env = section.get("secret_file"), section.get("secret_env")
    if secret_file is not None and secret_env is not None:
        problems.add("hashing", "set one of secret_file and secret_env, not both")
        return None
    if secret_file is not None:
        if not isinstance(secret_file, str) or not secret_file:
            problems.add("hashing.secret_file", f"must be a file path, got {secret_file!r}")
            return None
        return _read_secret(_resolve(base_dir, secret_file), "hashing.secret_file", problems)
    variable = DEFAULT_HASH_SECRET_ENV if secret_env is None else secret_env
    if not isinstance(variable, str) or not variable:
        problems.add("hashing.secret_env", f"must be an environment variable name, got {variable!r}")
        return None
    secret = environ.get(variable, "").strip().encode("utf-8", "surrogateescape")
    where = "hashing.secret_env" if secret_env is not None else "dimensions"
    if not secret:
        problems.add(where, f"hashed dimensions need a secret: environment variable {variable} is not set "
                            "(or set hashing.secret_file)")
        return None
    if len(secret) < MIN_SECRET_BYTES:
        problems.add(where, f"the secret in environment variable {variable} is {len(secret)} bytes long: use at "
                            f"least {MIN_SECRET_BYTES} (e.g. openssl rand -hex 32)")
        return None
    return secret


def _resolve(base_dir: Path, name: str) -> Path:
    return Path(name) if Path(name).is_absolute() else base_dir / name


def parse_bearer_tokens(text: str) -> tuple[tuple[str, ...], list[str]]:
    """Tokens of a bearer token file (one a line; blank lines and `#` comments skipped), and what is wrong.

    Shared by the config check and the OTLP listener, which re-reads the file when it changes, so
    both accept exactly the same files. A problem names the line, never the token.
    """
    tokens: list[str] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        token = line.strip()
        if not token or token.startswith("#"):
            continue
        problem = bearer_token_problem(token)
        if problem:
            problems.append(f"line {number}: {problem}")
        else:
            tokens.append(token)
    if not tokens and not problems:
        problems.append("holds no token")
    return tuple(tokens), problems


def bearer_token_problem(token: Any) -> str:
    """Why a value cannot be a bearer token ("" if it can); never quotes the token."""
    if not isinstance(token, str):
        return f"must be a string, got {type(token).__name__}"
    if not BEARER_TOKEN_PATTERN.match(token):
        return "must consist of letters, digits and -._~+/ (an RFC 6750 bearer token)"
    if len(token) < MIN_BEARER_TOKEN_CHARS:
        return f"is {len(token)} characters long: use at least {MIN_BEARER_TOKEN_CHARS} (e.g. openssl rand -hex 32)"
    return ""


def _parse_ingest_auth(section: Mapping[str, Any], base_dir: Path, problems: Problems) -> IngestAuth:
    tokens, tokens_file = section.get("bearer_tokens"), section.get("bearer_tokens_file")
    if tokens is not None and tokens_file is not None:
        problems.add("server", "set one of bearer_tokens and bearer_tokens_file, not both")
        return IngestAuth()
    if tokens is not None:
        if not isinstance(tokens, list) or not tokens:
            problems.add("server.bearer_tokens", "must be a non-empty list of tokens")
            return IngestAuth()
        checked = []
        for index, token in enumerate(tokens):
            problem = bearer_token_problem(token)
            if problem:
                problems.add(f"server.bearer_tokens[{index}]", problem)
            else:
                checked.append(token)
        return IngestAuth(bearer_tokens=tuple(checked))
    if tokens_file is not None:
        if not isinstance(tokens_file, str) or not tokens_file:
            problems.add("server.bearer_tokens_file", f"must be a file path, got {tokens_file!r}")
            return IngestAuth()
        path = _resolve(base_dir, tokens_file)
        try:
            _, file_problems = parse_bearer_tokens(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            file_problems = [f"cannot read: {reason}"]
        for problem in file_problems:
            problems.add("server.bearer_tokens_file", f"{path}: {problem}")
        return IngestAuth(bearer_tokens_file=path)
    return IngestAuth()


def _parse_budgets(raw: Any, dimension_labels: set[str], problems: Problems) -> tuple[Budget, ...]:
    if not isinstance(raw, list):
        problems.add("budgets", f"must be a list, got {type(raw).__name__}")
        return ()
    budgets: list[Budget] = []
    for index, item in enumerate(raw):
        path = f"budgets[{index}]"
        entry = mapping_at(item, path, problems)
        unknown_keys(entry, {"kind", "labels", "value"}, path, problems)
        kind = entry.get("kind")
        if kind not in BUDGET_KINDS:
            problems.add(f"{path}.kind", f"must be one of {', '.join(sorted(BUDGET_KINDS))}, got {kind!r}")
        labels = mapping_at(entry.get("labels"), f"{path}.labels", problems)
        if not labels:
            problems.add(f"{path}.labels", "must name at least one dimension label and its value")
        label_items: list[tuple[str, str]] = []
        for name, value in labels.items():
            if name not in dimension_labels:
                problems.add(f"{path}.labels.{name}", "is not a configured dimension label")
            elif not isinstance(value, str) or not value:
                problems.add(f"{path}.labels.{name}", f"must be a non-empty string, got {value!r}")
            else:
                label_items.append((name, value))
        value = _positive_number(entry.get("value"), f"{path}.value", problems)
        if kind in BUDGET_KINDS and value is not None and len(label_items) == len(labels) and labels:
            budgets.append(Budget(BUDGET_KINDS[kind], tuple(sorted(label_items)), value))
    return tuple(budgets)


def _parse_limits(raw: Any, problems: Problems) -> CardinalityLimits:
    section = mapping_at(raw, "limits", problems)
    defaults = CardinalityLimits()
    unknown_keys(section, {"max_values", "max_label_value_length", "max_pending_agent_runs"}, "limits",
                  problems)
    max_values = dict(defaults.max_values)
    for label, value in mapping_at(section.get("max_values"), "limits.max_values", problems).items():
        if label not in defaults.max_values:
            problems.add(f"limits.max_values.{label}",
                         f"unknown label (known: {', '.join(sorted(defaults.max_values))})")
            continue
        checked = _positive_int(value, f"limits.max_values.{label}", problems)
        if checked:
            max_values[label] = checked
    length = _positive_int(section.get("max_label_value_length", defaults.max_label_value_length),
                           "limits.max_label_value_length", problems)
    pending = _positive_int(section.get("max_pending_agent_runs", defaults.max_pending_agent_runs),
                            "limits.max_pending_agent_runs", problems)
    return CardinalityLimits(max_values, length or defaults.max_label_value_length,
                             pending or defaults.max_pending_agent_runs)


def _parse_server(section: Mapping[str, Any], problems: Problems) -> ServerLimits:
    defaults = ServerLimits()
    unknown_keys(section, {"max_request_bytes", "max_decompressed_bytes", "request_timeout_seconds",
                            "max_concurrent_requests", "queue_timeout_seconds", "max_connections",
                            "shutdown_timeout_seconds", "bearer_tokens", "bearer_tokens_file"}, "server", problems)
    request = _positive_int(section.get("max_request_bytes", defaults.max_request_bytes),
                            "server.max_request_bytes", problems)
    decompressed = _positive_int(section.get("max_decompressed_bytes", defaults.max_decompressed_bytes),
                                 "server.max_decompressed_bytes", problems)
    timeout = _positive_number(section.get("request_timeout_seconds", defaults.request_timeout_seconds),
                               "server.request_timeout_seconds", problems)
    concurrent = _positive_int(section.get("max_concurrent_requests", defaults.max_concurrent_requests),
                               "server.max_concurrent_requests", problems)
    queue_timeout = _positive_number(section.get("queue_timeout_seconds", defaults.queue_timeout_seconds),
                                     "server.queue_timeout_seconds", problems)
    connections = _positive_int(section.get("max_connections", defaults.max_connections),
                                "server.max_connections", problems)
    shutdown = _positive_number(section.get("shutdown_timeout_seconds", defaults.shutdown_timeout_seconds),
                                "server.shutdown_timeout_seconds", problems)
    return ServerLimits(
        request or defaults.max_request_bytes,
        decompressed or defaults.max_decompressed_bytes,
        timeout or defaults.request_timeout_seconds,
        concurrent or defaults.max_concurrent_requests,
        queue_timeout or defaults.queue_timeout_seconds,
        connections or defaults.max_connections,
        shutdown or defaults.shutdown_timeout_seconds,
    )


def _string_list(value: Any, path: str, problems: Problems) -> tuple[str, ...]:
    """A string or a list of non-empty strings, as a tuple (rules accept either spelling)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
        problems.add(path, f"must be a non-empty string or list of strings, got {value!r}")
        return ()
    return tuple(items)


def _parse_match(raw: Any, path: str, problems: Problems) -> SpanMatch:
    section = mapping_at(raw, path, problems)
    known = {"operation", "agent", "tool", "model", "output_type", "attributes"}
    unknown_keys(section, known, path, problems)
    lists = {key: _string_list(section[key], f"{path}.{key}", problems) if key in section else ()
             for key in ("operation", "agent", "tool", "model", "output_type")}
    attributes: list[tuple[str, str]] = []
    for key, value in mapping_at(section.get("attributes"), f"{path}.attributes", problems).items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            problems.add(f"{path}.attributes.{key}", f"must be a string or number, got {value!r}")
            continue
        attributes.append((str(key), str(value)))
    return SpanMatch(lists["operation"], lists["agent"], lists["tool"], lists["model"], lists["output_type"],
                     tuple(attributes))


def _parse_output_checks(raw: Any, problems: Problems) -> tuple[OutputCheck, ...]:
    if not isinstance(raw, list):
        problems.add("output_checks", f"must be a list, got {type(raw).__name__}")
        return ()
    checks: list[OutputCheck] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        path = f"output_checks[{index}]"
        entry = mapping_at(item, path, problems)
        unknown_keys(entry, {"name", "kind", "match", "fields", "tools"}, path, problems)
        name = entry.get("name")
        if not isinstance(name, str) or not CHECK_NAME_PATTERN.match(name):
            problems.add(f"{path}.name", f"must be lowercase letters, digits and _ (a label value), got {name!r}")
            name = None
        elif name in seen:
            problems.add(f"{path}.name", f"{name!r} is defined twice")
        kind = entry.get("kind")
        if kind not in CHECK_KINDS:
            problems.add(f"{path}.kind", f"must be one of {', '.join(CHECK_KINDS)}, got {kind!r}")
        match = _parse_match(entry.get("match"), f"{path}.match", problems)
        fields: list[FieldPath] = []
        if kind == CHECK_REQUIRED_FIELDS:
            for text in _string_list(entry.get("fields"), f"{path}.fields", problems):
                parsed = parse_field_path(text)
                if parsed is None:
                    problems.add(f"{path}.fields", f"{text!r} is not a field path (e.g. answer, sources[0].url)")
                else:
                    fields.append(parsed)
        elif "fields" in entry:
            problems.add(f"{path}.fields", f"only a {CHECK_REQUIRED_FIELDS} check has fields")
        tools: tuple[str, ...] = ()
        if kind == CHECK_TOOL_CALLED:
            tools = _string_list(entry.get("tools"), f"{path}.tools", problems)
        elif "tools" in entry:
            problems.add(f"{path}.tools", f"only a {CHECK_TOOL_CALLED} check has tools")
        if name and name not in seen and kind in CHECK_KINDS:
            seen.add(name)
            checks.append(OutputCheck(name, kind, match, tuple(fields), tools))
    return tuple(checks)


def parse_config(document: Any, source: str, base_dir: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Check a parsed YAML document and build a Config, or raise ConfigError with every problem.

    `environ` (default: the process environment) is where a hashing secret named by variable is read.
    """
    problems = Problems()
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise ConfigError(source, [f"(top level): must be a mapping, got {type(document).__name__}"])
    unknown_keys(document, {"dimensions", "prices", "budgets", "limits", "server", "hashing", "output_checks"}, "",
                 problems)

    dimensions = default_dimensions()
    if "dimensions" in document:
        dimensions, hashed = _parse_dimensions(document["dimensions"] or [], problems)
        if hashed:
            secret = _parse_hash_secret(document.get("hashing"), base_dir,
                                        os.environ if environ is None else environ, problems)
            dimensions = tuple(replace(d, hash_secret=secret) if i in hashed else d for i, d in enumerate(dimensions))

    price_files: list[Path] = []
    prices = document.get("prices") or []
    if not isinstance(prices, list):
        problems.add("prices", "must be a list of price file paths")
    else:
        for index, item in enumerate(prices):
            if not isinstance(item, str) or not item:
                problems.add(f"prices[{index}]", f"must be a file path, got {item!r}")
                continue
            path = _resolve(base_dir, item)
            if not path.is_file():
                problems.add(f"prices[{index}]", f"file not found: {path}")
            price_files.append(path)

    budgets = default_budgets() if "dimensions" not in document else ()
    if "budgets" in document:
        budgets = _parse_budgets(document["budgets"] or [], {d.label for d in dimensions}, problems)
    limits = _parse_limits(document.get("limits"), problems)
    server_section = mapping_at(document.get("server"), "server", problems)
    server = _parse_server(server_section, problems)
    ingest_auth = _parse_ingest_auth(server_section, base_dir, problems)
    output_checks = default_output_checks()
    if "output_checks" in document:
        output_checks = _parse_output_checks(document["output_checks"] or [], problems)
    if problems.items:
        raise ConfigError(source, problems.items)
    return Config(dimensions, tuple(price_files), budgets, limits, server, ingest_auth, output_checks)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, or raise ConfigError naming the file and the line of a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(str(path), [f"(file): cannot read: {error.strerror or error}"]) from error
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ConfigError(str(path), [f"{where}: not valid YAML: {getattr(error, 'problem', error)}"]) from error
    return document


def load_config(path: Path | None) -> Config:
    """Read and check a config file; None gives the built-in defaults. Raises ConfigError."""
    if path is None:
        return Config()
    return parse_config(read_yaml(path), str(path), path.parent)
