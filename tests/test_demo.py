"""Specification of the demo workload: real trace trees, every metric fed, each scenario visible."""

from __future__ import annotations

import collections
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from genai_exporter import catalog, cli, semconv
from genai_exporter.config import load_config
from genai_exporter.demo import scenarios, workload
from genai_exporter.demo.scenarios import ScenarioSwitch
from genai_exporter.demo.workload import DEMO_CONFIG_FILE, DemoWorkload
from genai_exporter.expose import metrics_renderer
from genai_exporter.inprocess import GenAIMetricsSpanProcessor
from genai_exporter.pipeline import Pipeline
from genai_exporter.server import start_servers

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

DEMO_CONFIG = load_config(DEMO_CONFIG_FILE)
# At the default 2 agent runs per second, 30 runs are the first 15 seconds of `serve --demo`.
RUNS_IN_FIRST_15_SECONDS = round(15 * workload.DEFAULT_RATE)
SEED = 20261126


def generate_runs(processor: SpanProcessor, active: tuple[str, ...], runs: int, seed: int) -> None:
    """Make `runs` demo agent runs under the `active` scenarios, their spans going to `processor`."""
    provider = TracerProvider()
    provider.add_span_processor(processor)
    switch = ScenarioSwitch()
    for name in active:
        switch.enable(name)
    demo = DemoWorkload(provider, switch, seed=seed)
    for _ in range(runs):
        demo.run_once()


def run_demo(*active: str, runs: int, seed: int = SEED) -> CollectorRegistry:
    """A registry holding the metrics of `runs` demo agent runs under the given scenarios."""
    pipeline = Pipeline(DEMO_CONFIG)
    processor = GenAIMetricsSpanProcessor(pipeline=pipeline)
    generate_runs(processor, active, runs, seed)
    processor.force_flush()
    registry = CollectorRegistry()
    registry.register(pipeline.collector)
    return registry


def demo_spans(*active: str, runs: int, seed: int = SEED) -> list[ReadableSpan]:
    """The finished spans of `runs` demo agent runs."""
    memory = InMemorySpanExporter()
    generate_runs(SimpleSpanProcessor(memory), active, runs, seed)
    return list(memory.get_finished_spans())


def total(registry: CollectorRegistry, sample: str, **labels: str) -> float:
    """Sum of the samples named `sample` whose labels include `labels`."""
    return sum(s.value for family in registry.collect() for s in family.samples
               if s.name == sample and labels.items() <= s.labels.items())


def families_with_samples(exposition: str) -> set[str]:
    """Names of the metric families that have at least one sample in a text exposition."""
    return {family.name for family in text_string_to_metric_families(exposition) if family.samples}


def catalogue_family_names() -> set[str]:
    """Every catalogue metric as the text-format parser names its family."""
    return {spec.family_name for spec in catalog.ALL_METRICS}


# --- traffic that looks like production agents ---------------------------------------------------------

def test_every_catalogue_metric_has_samples_within_the_first_15_seconds_of_the_demo():
    registry = run_demo(runs=RUNS_IN_FIRST_15_SECONDS)
    exposition = generate_latest(registry).decode()
    assert catalogue_family_names() - families_with_samples(exposition) == set()


def test_an_agent_run_is_one_trace_under_one_invoke_agent_span():
    spans = demo_spans(runs=20)
    roots = collections.Counter(span.context.trace_id for span in spans if span.parent is None)
    root_operations = {span.attributes[semconv.OPERATION_NAME] for span in spans if span.parent is None}
    assert (set(roots.values()), root_operations, len(roots)) == ({1}, {semconv.OP_INVOKE_AGENT}, 20)


def test_child_spans_run_inside_their_parent():
    spans = demo_spans(runs=20)
    by_id = {span.context.span_id: span for span in spans}
    outside = [span.name for span in spans if span.parent is not None
               and not (by_id[span.parent.span_id].start_time <= span.start_time
                        and span.end_time <= by_id[span.parent.span_id].end_time)]
    assert outside == []


def test_every_span_of_a_run_carries_the_runs_user_tier_and_feature_from_baggage():
    spans = demo_spans(runs=20)
    per_trace = collections.defaultdict(set)
    for span in spans:
        per_trace[span.context.trace_id].add((span.attributes.get(semconv.USER_TIER),
                                              span.attributes.get(semconv.APP_FEATURE)))
    assert [values for values in per_trace.values() if len(values) != 1 or None in next(iter(values))] == []


def test_runs_come_from_several_services_agents_providers_and_models():
    registry = run_demo(runs=200)
    labels = collections.defaultdict(set)
    for family in registry.collect():
        for s in family.samples:
            if s.name == catalog.TOKENS.name:
                for name in (catalog.SERVICE, catalog.PROVIDER, catalog.MODEL, "user_tier", "feature"):
                    labels[name].add(s.labels[name])
    assert {name: len(values) for name, values in labels.items()} == {
        catalog.SERVICE: 3, catalog.PROVIDER: 3, catalog.MODEL: 6, "user_tier": 3, "feature": 4}


def test_dated_openai_snapshots_are_counted_under_their_canonical_model():
    registry = run_demo(runs=100)
    assert (total(registry, catalog.TOKENS.name, model="gpt-4o-mini") > 0,
            total(registry, catalog.TOKENS.name, model=workload.GPT_4O_MINI.response_name)) == (True, 0)


def test_healthy_baseline_prices_every_token():
    registry = run_demo(runs=200)
    assert total(registry, catalog.UNPRICED_TOKENS.name) == 0


def test_healthy_baseline_stays_under_every_token_budget():
    registry = run_demo(runs=1000)
    seconds = 1000 / workload.DEFAULT_RATE
    per_tier = {tier: total(registry, catalog.TOKENS.name, user_tier=tier) / seconds for tier in workload.USER_TIERS}
    budgets = {dict(b.labels)["user_tier"]: b.value for b in DEMO_CONFIG.budgets
               if b.metric == catalog.BUDGET_TOKENS_PER_SECOND.name}
    assert [tier for tier, rate in per_tier.items() if rate > budgets[tier] / 2] == []


# --- each scenario moves the metric it is meant to move -------------------------------------------------

def test_tool_outage_makes_every_successful_search_docs_call_empty():
    registry = run_demo(scenarios.TOOL_OUTAGE, runs=200)
    search_docs = {catalog.TOOL: workload.OUTAGE_TOOL.name}
    successful = total(registry, catalog.OPERATION_DURATION.name + "_count", status=catalog.STATUS_OK, **search_docs)
    assert (successful > 20, total(registry, catalog.EMPTY_RESPONSES.name, **search_docs)) == (True, successful)


def test_healthy_baseline_returns_few_empty_search_docs_results():
    registry = run_demo(runs=200)
    search_docs = {catalog.TOOL: workload.OUTAGE_TOOL.name}
    successful = total(registry, catalog.OPERATION_DURATION.name + "_count", status=catalog.STATUS_OK, **search_docs)
    assert 0 < total(registry, catalog.EMPTY_RESPONSES.name, **search_docs) / successful < 0.1


def test_provider_outage_fails_every_openai_chat_and_falls_back_to_gemini():
    registry = run_demo(scenarios.PROVIDER_OUTAGE, runs=200)
    openai_chats = {catalog.PROVIDER: workload.OUTAGE_PROVIDER, catalog.OPERATION: semconv.OP_CHAT}
    count = catalog.OPERATION_DURATION.name + "_count"
    fallback = {catalog.PROVIDER: workload.FALLBACK_MODEL.provider, catalog.AGENT: workload.SUPPORT_TRIAGE.name}
    assert (total(registry, count, status=catalog.STATUS_OK, **openai_chats),
            total(registry, count, status=catalog.STATUS_ERROR, **openai_chats) > 50,
            total(registry, count, status=catalog.STATUS_OK, **fallback) > 50) == (0, True, True)


def test_retry_loop_puts_every_sql_analyst_run_above_eight_model_calls():
    registry = run_demo(scenarios.RETRY_LOOP, runs=200)
    sql_analyst = {catalog.AGENT: workload.RETRY_LOOP_AGENT.name}
    histogram = catalog.AGENT_RUN_MODEL_CALLS.name
    assert (total(registry, histogram + "_count", **sql_analyst) > 20,
            total(registry, histogram + "_bucket", le="8.0", **sql_analyst)) == (True, 0)


def test_retry_loop_runs_fail_at_their_turn_limit():
    registry = run_demo(scenarios.RETRY_LOOP, runs=200)
    sql_analyst_runs = {catalog.AGENT: workload.RETRY_LOOP_AGENT.name, catalog.OPERATION: semconv.OP_INVOKE_AGENT}
    count = catalog.OPERATION_DURATION.name + "_count"
    assert (total(registry, count, status=catalog.STATUS_OK, **sql_analyst_runs),
            total(registry, count, status=catalog.STATUS_ERROR, error_type=workload.RUN_FAILURE_ERROR_TYPE,
                  **sql_analyst_runs) > 20) == (0, True)


def test_healthy_baseline_fails_few_agent_runs():
    registry = run_demo(runs=2000)
    runs = {catalog.OPERATION: semconv.OP_INVOKE_AGENT}
    count = catalog.OPERATION_DURATION.name + "_count"
    assert 0 < total(registry, count, status=catalog.STATUS_ERROR, **runs) / total(registry, count, **runs) < 0.005


def test_healthy_baseline_keeps_sql_analyst_runs_at_eight_model_calls_or_fewer():
    registry = run_demo(runs=200)
    sql_analyst = {catalog.AGENT: workload.RETRY_LOOP_AGENT.name}
    histogram = catalog.AGENT_RUN_MODEL_CALLS.name
    assert total(registry, histogram + "_bucket", le="8.0", **sql_analyst) == total(
        registry, histogram + "_count", **sql_analyst)


def test_truncation_stops_every_research_assistant_answer_at_the_token_limit():
    registry = run_demo(scenarios.TRUNCATION, runs=200)
    runs = total(registry, catalog.AGENT_RUN_MODEL_CALLS.name + "_count", agent=workload.RESEARCH_ASSISTANT.name)
    truncated = total(registry, catalog.FINISH_REASONS.name, finish_reason=catalog.FINISH_REASON_TRUNCATED,
                      service=workload.RESEARCH_ASSISTANT.service)
    assert (runs > 20, truncated) == (True, runs)


def test_healthy_baseline_truncates_nothing():
    registry = run_demo(runs=200)
    assert total(registry, catalog.FINISH_REASONS.name, finish_reason=catalog.FINISH_REASON_TRUNCATED) == 0


def test_tier_spike_takes_the_free_tier_over_its_token_budget_and_leaves_the_others():
    baseline, spike = run_demo(runs=500), run_demo(scenarios.TIER_SPIKE, runs=500)
    seconds = 500 / workload.DEFAULT_RATE
    rates = {tier: (round(total(baseline, catalog.TOKENS.name, user_tier=tier) / seconds),
                    round(total(spike, catalog.TOKENS.name, user_tier=tier) / seconds))
             for tier in workload.USER_TIERS}
    assert (rates[workload.TIER_FREE][0] < 1000 < rates[workload.TIER_FREE][1],
            rates[workload.TIER_PRO][1] < 1000, rates[workload.TIER_ENTERPRISE][1] < 1000) == (True, True, True)


def test_unpriced_model_leaves_code_reviewer_tokens_without_a_cost():
    registry = run_demo(scenarios.UNPRICED_MODEL, runs=200)
    acme = {catalog.MODEL: workload.ACME_REASONER_1.name}
    assert (total(registry, catalog.UNPRICED_TOKENS.name, **acme) > 0,
            total(registry, catalog.UNPRICED_TOKENS.name, **acme) == total(registry, catalog.TOKENS.name, **acme),
            total(registry, catalog.COST.name, **acme)) == (True, True, 0)


def _fail_ratio(registry: CollectorRegistry, check: str, **labels: str) -> float:
    fails = total(registry, catalog.OUTPUT_CHECKS.name, check=check, result=catalog.RESULT_FAIL, **labels)
    return fails / total(registry, catalog.OUTPUT_CHECKS.name, check=check, **labels)


def _mean_score(registry: CollectorRegistry, **labels: str) -> float:
    score = catalog.EVALUATION_SCORE.name
    return total(registry, score + "_sum", **labels) / total(registry, score + "_count", **labels)


def test_healthy_baseline_fails_few_output_checks():
    registry = run_demo(runs=400)
    ratios = {check.name: round(_fail_ratio(registry, check.name), 3) for check in DEMO_CONFIG.output_checks}
    assert (ratios["answer_not_empty"], [name for name, ratio in ratios.items() if not 0 <= ratio < 0.05]) == (0, [])


def test_wrong_tool_choices_of_support_triage_fail_the_tool_choice_check():
    registry = run_demo(runs=400)
    wrong = total(registry, catalog.OUTPUT_CHECKS.name, check="support_tool_choice", result=catalog.RESULT_FAIL)
    assert (wrong > 0, wrong == total(registry, catalog.OUTPUT_CHECKS.name, check="support_tool_choice",
                                      result=catalog.RESULT_FAIL, tool=workload.WRONG_TOOL.name)) == (True, True)


def test_quality_regression_breaks_the_regressing_models_json_answers():
    model = {catalog.MODEL: workload.REGRESSING_MODEL.name}
    baseline, regression = run_demo(runs=400), run_demo(scenarios.QUALITY_REGRESSION, runs=400)
    assert (_fail_ratio(baseline, "valid_json", **model) < 0.05,
            _fail_ratio(regression, "valid_json", **model) > 0.25,
            _fail_ratio(regression, "sql_answer_fields", **model) > 0.5) == (True, True, True)


def test_quality_regression_lowers_the_judges_scores_of_the_regressing_model_only():
    baseline, regression = run_demo(runs=400), run_demo(scenarios.QUALITY_REGRESSION, runs=400)
    regressing = {catalog.MODEL: workload.REGRESSING_MODEL.name}
    other = {catalog.MODEL: workload.CLAUDE_SONNET_4_5.name}
    # The judge's scores are drawn around 0.86 (healthy) and 0.45 (regressed).
    assert (_mean_score(baseline, **regressing) > 0.8, _mean_score(regression, **regressing) < 0.55,
            _mean_score(regression, **other) > 0.8) == (True, True, True)


def test_judge_results_count_by_label():
    registry = run_demo(scenarios.QUALITY_REGRESSION, runs=400)
    evaluations = catalog.EVALUATIONS.name
    relevant = total(registry, evaluations, evaluation=workload.JUDGE_EVALUATION, label=workload.JUDGE_LABEL_PASS)
    irrelevant = total(registry, evaluations, evaluation=workload.JUDGE_EVALUATION, label=workload.JUDGE_LABEL_FAIL)
    judged = total(registry, catalog.EVALUATION_SCORE.name + "_count")
    assert (relevant > 0, irrelevant > 0, relevant + irrelevant == judged) == (True, True, True)


def test_scenarios_switch_off_again():
    switch = ScenarioSwitch()
    switch.enable(scenarios.TOOL_OUTAGE)
    switch.disable(scenarios.TOOL_OUTAGE)
    assert switch.active() == ()


# --- `genai-exporter demo`: the workload over OTLP/HTTP -------------------------------------------------

@pytest.fixture
def exporter_pipeline() -> Iterator[tuple[Pipeline, str]]:
    pipeline = Pipeline(DEMO_CONFIG)
    registry = CollectorRegistry()
    registry.register(pipeline.collector)

    class Metrics:
        render = staticmethod(metrics_renderer(pipeline.collector))

    servers = start_servers("127.0.0.1:0", "127.0.0.1:0", pipeline, Metrics(), DEMO_CONFIG.server,
                            ready=lambda: True)
    yield pipeline, f"http://127.0.0.1:{servers.otlp_port}"
    servers.shutdown()


def test_demo_command_sends_agent_runs_to_an_otlp_endpoint(exporter_pipeline):
    pipeline, endpoint = exporter_pipeline
    code = cli.main(["demo", "--otlp-endpoint", endpoint, "--rate", "40", "--duration", "1", "--seed", "5"])
    registry = CollectorRegistry()
    registry.register(pipeline.collector)
    assert (code, total(registry, catalog.AGENT_RUN_MODEL_CALLS.name + "_count") > 10,
            total(registry, catalog.SPANS_REJECTED.name),
            total(registry, catalog.REQUESTS.name, code="200") > 0) == (0, True, 0, True)


def test_processor_and_otlp_path_give_the_same_metrics_for_the_demo_workload(exporter_pipeline):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    otlp_pipeline, endpoint = exporter_pipeline
    processor_pipeline = Pipeline(DEMO_CONFIG)
    provider = TracerProvider()
    processor = GenAIMetricsSpanProcessor(pipeline=processor_pipeline)
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint + "/v1/traces")))
    switch = ScenarioSwitch()
    switch.enable(scenarios.TOOL_OUTAGE)
    demo = DemoWorkload(provider, switch, seed=SEED)
    for _ in range(40):
        demo.run_once()
    processor.force_flush()

    def domain_samples(pipeline: Pipeline) -> dict[tuple, float]:
        registry = CollectorRegistry()
        registry.register(pipeline.collector)
        return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in registry.collect()
                for s in family.samples if any(family.name == spec.family_name for spec in catalog.DOMAIN_METRICS)}

    via_processor = domain_samples(processor_pipeline)
    # Sums may differ in the last bit: the two paths add the same spans in a different order.
    assert (len(via_processor) > 100, via_processor == pytest.approx(domain_samples(otlp_pipeline), rel=1e-12)) == (
        True, True)


def test_demo_command_names_every_bad_flag_and_exits_2(capsys):
    code = cli.main(["demo", "--otlp-endpoint", "localhost:4318", "--rate", "0", "--schedule", "outage@1m"])
    assert (code, capsys.readouterr().err.splitlines()) == (2, [
        "genai-exporter demo: --otlp-endpoint 'localhost:4318': expected an http:// or https:// URL",
        "genai-exporter demo: --rate 0.0: must be a positive number of agent runs per second",
        "genai-exporter demo: --schedule: unknown scenario 'outage' (known: tool_outage, provider_outage, "
        "retry_loop, truncation, tier_spike, unpriced_model, quality_regression)",
    ])


# --- `genai-exporter serve --demo`: the README's main command --------------------------------------------

_LISTENING = re.compile(r"listening: web=:(\d+) otlp=:(\d+)")
# Generous on purpose: this checks the command works, not how fast (the machines are shared).
SERVE_DEMO_DEADLINE_SECONDS = 90


def _get(url: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


def test_serve_demo_shows_the_whole_catalogue_and_switches_scenarios_over_http():
    process = subprocess.Popen(
        [sys.executable, "-m", "genai_exporter.cli", "serve", "--demo", "--demo.rate", "4",
         "--web.listen-address", "127.0.0.1:0", "--otlp.listen-address", "127.0.0.1:0"],
        stderr=subprocess.PIPE, text=True)
    try:
        match = None
        while match is None:
            line = process.stderr.readline()
            assert line, "serve --demo exited before listening"
            match = _LISTENING.search(line)
        base = f"http://127.0.0.1:{match.group(1)}"
        deadline = time.monotonic() + SERVE_DEMO_DEADLINE_SECONDS
        missing = catalogue_family_names()
        while missing and time.monotonic() < deadline:
            time.sleep(0.5)
            missing = catalogue_family_names() - families_with_samples(_get(base + "/metrics")[1])
        switched = [_get(base + "/-/demo/scenarios/tool_outage", "PUT")[0],
                    _get(base + "/-/demo/scenarios")[1],
                    _get(base + "/-/demo/scenarios/tool_outage", "DELETE")[0]]
    finally:
        process.terminate()
        exit_code = process.wait(timeout=30)
        process.stderr.close()
    assert (missing, switched, exit_code) == (set(), [
        204, '{"known": ["tool_outage", "provider_outage", "retry_loop", "truncation", "tier_spike", '
        '"unpriced_model", "quality_regression"], "active": ["tool_outage"]}', 204], 0)


def test_compose_stack_budgets_and_checks_the_demo_like_serve_demo_does():
    compose_config = load_config(Path(__file__).parents[1] / "deploy" / "genai-exporter" / "config.yaml")
    assert (compose_config.budgets, compose_config.output_checks) == (DEMO_CONFIG.budgets, DEMO_CONFIG.output_checks)
