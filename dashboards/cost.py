"""GenAI cost dashboard: what is spent, on which models, by whom, and against which budget."""

from __future__ import annotations

from grafanalib import core as G

from dashboards import lib, queries
from dashboards.lib import Column, Section
from genai_exporter import catalog

UID = "genai-cost"

# What a budget panel counts, so nobody reads a filtered view as the whole budget's usage.
BUDGET_SCOPE = ("Usage counts every service, provider, model and other dimension value: a budget covers "
                "all of its group's usage. Groups without a budget are not shown.")
CACHE_SAVINGS = ("What the cache-read tokens would have cost more at the uncached input rate of their call "
                 "(its long-context tier included), as the exporter prices each call.")


def _spend_by(scope: queries.Scope, label: str, legend: str, links: list[dict[str, str]] | None = None,
              by: tuple[str, ...] = ()) -> G.TimeSeries:
    return lib.timeseries(
        f"Spend by {label.replace('_', ' ')}",
        question=f"Which {label.replace('_', ' ')} is the money going to?",
        details=f"Spend rate in USD per hour, stacked by {label}: the top of the stack is the total "
                "spend rate. Exemplars (dots) open the trace of a costly call in Tempo.",
        unit=lib.USD,
        targets=lib.targets((scope.spend_per_hour(by=by or (label,)), legend)),
        stacked=True,
        links=links or (),
    )


def _spoken(labels: tuple[str, ...]) -> str:
    words = [label.replace("_", " ") for label in labels]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _budget_legend(labels: tuple[str, ...]) -> str:
    return " / ".join(f"{{{{{label}}}}}" for label in labels)


def _sections(scope: queries.Scope) -> list[Section]:
    model_calls = lib.data_link(
        "Traces of calls to this model",
        lib.tempo_search_url(queries.traceql(queries.model_is(lib.series_label(catalog.MODEL))),
    ))
    overview = Section("Spend", [
        lib.stat(
            "Spend rate",
            question="How fast are we spending right now?",
            details="Spend in USD per hour over the last rate interval, with its trend over the range.",
            unit=lib.USD,
            targets=lib.targets((scope.spend_per_hour(), "USD per hour")),
            width=4,
        ),
        lib.stat(
            "Spend over the range",
            question="How much did we spend in the selected time range?",
            details="Total USD of priced model calls in the dashboard's range. Tokens of models "
                    "without a price are not included (see Unpriced tokens).",
            unit=lib.USD,
            targets=lib.targets((scope.spend_over_range(), "USD"), instant=True),
            width=4,
        ),
        lib.stat(
            "Projected 30-day spend",
            question="What will 30 days cost at the current pace?",
            details="30 days at the average spend rate of the dashboard's range. Choose a range of "
                    "7 days or more so that daily and weekly cycles average out.",
            unit=lib.USD,
            targets=lib.targets((scope.projected_spend(), "USD per 30 days"), instant=True),
            width=4,
        ),
        lib.stat(
            "Cache savings over the range",
            question="How much did prompt caching save?",
            details=CACHE_SAVINGS,
            unit=lib.USD,
            targets=lib.targets((scope.cache_savings_over_range(), "USD saved"), instant=True),
            width=4,
        ),
        lib.stat(
            "Tokens over the range",
            question="How many tokens did we bill in the selected time range?",
            details="All billed tokens (uncached input, cache reads, cache writes and output, "
                    "reasoning included) in the dashboard's range.",
            unit=lib.TOKENS,
            targets=lib.targets((scope.tokens_over_range(), "tokens"), instant=True),
            width=4,
        ),
        lib.stat(
            "Unpriced tokens over the range",
            question="Is any spend missing from these numbers?",
            details="Tokens of models that have no price in the exporter's price table. Anything "
                    "above 0 means every cost panel understates the spend: add the model's price to "
                    "a price file (see Unpriced tokens by model for which models).",
            unit=lib.TOKENS,
            targets=lib.targets((scope.unpriced_tokens_over_range(), "unpriced tokens"), instant=True),
            width=4,
            thresholds=lib.ANY_IS_BAD,
            no_value="0",
        ),
    ])
    breakdown = Section("Where the money goes", [
        _spend_by(scope, catalog.MODEL, "{{provider}} {{model}}", links=[model_calls],
                  by=(catalog.PROVIDER, catalog.MODEL)),
        _spend_by(scope, catalog.PROVIDER, "{{provider}}"),
        _spend_by(scope, catalog.SERVICE, "{{service}}"),
        *(_spend_by(scope, dimension, f"{{{{{dimension}}}}}") for dimension in scope.dimensions),
        lib.table(
            "Top spenders",
            question=f"Which combinations of {_spoken((catalog.SERVICE, *scope.dimensions))} spent the most?",
            details=f"The {queries.TOP_N} combinations with the highest spend in the dashboard's "
                    "range. An empty dimension means the spans did not carry it.",
            targets=lib.targets((scope.top_spenders(), ""), instant=True, table=True),
            columns=[Column("Spend", lib.USD)],
        ),
    ])
    tokens = Section("Tokens, caching and agent runs", [
        lib.timeseries(
            "Tokens by type",
            question="What kind of tokens are we paying for?",
            details="Billed tokens per second by type: input (uncached), cache_read, cache_write "
                    "and output (reasoning included). Stacked, so the top is all tokens.",
            unit=lib.TOKENS_PER_SECOND,
            targets=lib.targets((scope.tokens_per_second(by=(catalog.TOKEN_TYPE,)), "{{token_type}}")),
            stacked=True,
        ),
        lib.timeseries(
            "Cache savings by model",
            question="Which models save the most through prompt caching?",
            details=CACHE_SAVINGS + " In USD per hour.",
            unit=lib.USD,
            targets=lib.targets((scope.cache_savings_per_hour(), "{{provider}} {{model}}")),
            stacked=True,
        ),
        lib.timeseries(
            "Unpriced tokens by model",
            question="Which models are missing from the price table?",
            details="Tokens per second of models without a price. Their cost is not counted "
                    "anywhere: add a price for each model listed here.",
            unit=lib.TOKENS_PER_SECOND,
            targets=lib.targets((scope.unpriced_tokens_per_second(), "{{provider}} {{model}}")),
        ),
        lib.timeseries(
            "Cost per agent run",
            question="What does one run of each agent cost?",
            details="Median (p50) and p95 cost in USD of one agent run: the invoke_agent span and "
                    "every model call beneath it. A rising p95 with a flat p50 points at a few "
                    "runaway runs (retry loops), not at pricier models.",
            unit=lib.USD,
            targets=lib.targets(*(
                (scope.histogram_quantile(catalog.AGENT_RUN_COST, quantile, (catalog.AGENT,)),
                 f"{{{{agent}}}} p{round(quantile * 100)}")
                for quantile in (0.5, 0.95)
            )),
        ),
    ])
    sections = [overview, breakdown, tokens]
    label_sets = scope.budget_label_sets()
    if label_sets:
        sections.append(Section("Budgets", [
            lib.timeseries(
                "Token budget utilisation",
                question="How close is each budgeted group to its token budget?",
                details="Tokens per second of each group as a fraction of its "
                        f"{catalog.BUDGET_TOKENS_PER_SECOND.name} budget (from the exporter config); "
                        "1 (100 %) is the budget. " + BUDGET_SCOPE,
                unit=lib.RATIO,
                targets=lib.targets(*((scope.token_budget_utilisation(labels), _budget_legend(labels))
                                      for labels in label_sets)),
                thresholds=lib.BUDGET_STEPS,
            ),
            lib.timeseries(
                "Cost budget utilisation",
                question="How close is each budgeted group to its daily cost budget?",
                details="Spend rate in USD per day of each group as a fraction of its "
                        f"{catalog.BUDGET_COST_USD_PER_DAY.name} budget (from the exporter config); "
                        "1 (100 %) is the budget. " + BUDGET_SCOPE,
                unit=lib.RATIO,
                targets=lib.targets(*((scope.cost_budget_utilisation(labels), _budget_legend(labels))
                                      for labels in label_sets)),
                thresholds=lib.BUDGET_STEPS,
            ),
        ]))
    return sections


def build(scope: queries.Scope) -> lib.PortableDashboard:
    """The cost dashboard for a deployment's dimension labels."""
    return lib.genai_dashboard(
        uid=UID,
        title="GenAI cost",
        description="Spend of GenAI model calls from genai-exporter: rate, totals, projection, "
                    "breakdowns by model, provider, service and dimension, caching, budgets.",
        sections=_sections(scope),
        variables=lib.domain_variables(scope),
    )


dashboard = build(queries.DEFAULT_SCOPE)
