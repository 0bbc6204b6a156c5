"""What a PromQL expression reads: the series it selects and the labels it groups and joins on.

The rule lint needs to know that every metric an expression queries exists (in the catalogue or
as a recorded series) and that every label it matches on is one the series has: a misspelled name
is not a PromQL error, it is a rule that silently selects nothing. This is a reader for that
question, not a full parser: it tokenizes the expression and classifies identifiers by where they
stand (before `{`, inside `{}`, after `by`/`on`, before `(`), skipping range windows and strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

AGGREGATIONS = frozenset({
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
})
# Keywords followed by a parenthesised list of label names.
GROUPING_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
OTHER_KEYWORDS = frozenset({"and", "or", "unless", "bool", "atan2", "offset", "inf", "nan"})
MATCH_OPERATORS = ("=", "!=", "=~", "!~")

_TOKEN = re.compile(r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<number>\.?[0-9][0-9a-zA-Z.]*)
  | (?P<identifier>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<operator>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){}\[\],@:])
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    """One lexical token of an expression: its kind (a group name of `_TOKEN`) and text."""

    kind: str
    text: str


@dataclass(frozen=True)
class Matcher:
    """A label matcher of a selector, such as `status="error"`."""

    label: str
    operator: str
    value: str


@dataclass(frozen=True)
class Selector:
    """A vector selector: the metric it names and its label matchers."""

    metric: str
    matchers: tuple[Matcher, ...]


@dataclass(frozen=True)
class Reads:
    """Everything an expression reads: its selectors and the labels of its by/on/group clauses."""

    selectors: tuple[Selector, ...]
    grouping_labels: frozenset[str]

    @property
    def metrics(self) -> frozenset[str]:
        """Names of the series the expression selects."""
        return frozenset(selector.metric for selector in self.selectors)


def tokenize(expression: str) -> list[Token]:
    """The tokens of `expression` without whitespace and comments; fails on a character PromQL lacks."""
    tokens: list[Token] = []
    position = 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None:
            raise ValueError(f"unexpected character {expression[position]!r} at {position} in {expression!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group()))
        position = match.end()
    return tokens


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _closing(tokens: list[Token], start: int, opening: str, closing: str) -> int:
    """Index of the token closing the bracket opened at `start`."""
    depth = 0
    for index in range(start, len(tokens)):
        if tokens[index].text == opening:
            depth += 1
        elif tokens[index].text == closing:
            depth -= 1
            if depth == 0:
                return index
    raise ValueError(f"unbalanced {opening!r} in expression")


def _matchers(tokens: list[Token]) -> tuple[Matcher, ...]:
    """The matchers between a selector's braces: `label op "value"` separated by commas."""
    matchers = []
    items = [token for token in tokens if token.text != ","]
    if len(items) % 3:
        raise ValueError(f"malformed label matchers: {' '.join(token.text for token in tokens)}")
    for label, operator, value in zip(items[::3], items[1::3], items[2::3], strict=True):
        if label.kind != "identifier" or operator.text not in MATCH_OPERATORS or value.kind != "string":
            raise ValueError(f"malformed label matcher: {label.text} {operator.text} {value.text}")
        matchers.append(Matcher(label.text, operator.text, _unquote(value.text)))
    return tuple(matchers)


def reads(expression: str) -> Reads:
    """The selectors and grouping labels of a PromQL expression."""
    tokens = tokenize(expression)
    selectors: list[Selector] = []
    grouping: set[str] = set()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        following = tokens[index + 1].text if index + 1 < len(tokens) else ""
        if token.text == "[":
            index = _closing(tokens, index, "[", "]") + 1
            continue
        if token.text == "{":
            end = _closing(tokens, index, "{", "}")
            selectors.append(Selector("", _matchers(tokens[index + 1:end])))
            index = end + 1
            continue
        if token.kind != "identifier":
            index += 1
            continue
        word = token.text.lower()
        if word in GROUPING_KEYWORDS and following == "(":
            end = _closing(tokens, index + 1, "(", ")")
            grouping.update(t.text for t in tokens[index + 2:end] if t.kind == "identifier")
            index = end + 1
        elif word in GROUPING_KEYWORDS or word in OTHER_KEYWORDS or word in AGGREGATIONS or following == "(":
            index += 1
        elif following == "{":
            end = _closing(tokens, index + 1, "{", "}")
            selectors.append(Selector(token.text, _matchers(tokens[index + 2:end])))
            index = end + 1
        else:
            selectors.append(Selector(token.text, ()))
            index += 1
    return Reads(tuple(selectors), frozenset(grouping))
