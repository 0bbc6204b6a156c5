"""End to end: demo agents → genai-exporter → Prometheus (the repo's rules) → Alertmanager → a webhook.

The real binaries on loopback, fed by `genai-exporter serve --demo` at its default rate (the demo's
budgets are set for that rate). The rule file is the committed one rendered with every `for:` and
range window multiplied by TIME_SCALE, the one parameter that makes hours of alerting logic run in
minutes; the promtool tests in alerts/tests/ cover the real durations. The phases run in file order
on one stack, as an operator would live them: a healthy baseline that must raise nothing, then two
incidents that must page and resolve, then every dashboard query, then the exemplars.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from alerts import rules
from genai_exporter.demo import scenarios
from genai_exporter.demo.workload import DEFAULT_RATE, DEMO_CONFIG_FILE
from tests import grafana, stack
from tests.stack import Process, Prometheus, Webhook, wait_for

pytestmark = pytest.mark.e2e

# Every `for:` and range window of the rules, times this: 5m → 15s, 10m → 30s, 1h → 3m, 1d → 72m.
TIME_SCALE = 0.05
# Scaled windows hold fewer events than real ones; to keep each window's counts (and so the noise of
# its ratios) like production's, the demo runs this many times faster, its budgets scaled alike.
DEMO_SPEED_UP = 5
SCRAPE_INTERVAL = "2s"
# Long enough that the healthy traffic dominates the (scaled) 1-day baselines the spike alerts
# compare against, and that every rule has evaluated over real data.
BASELINE_SECONDS = 120
# Longest a rule's condition may hold on healthy traffic: the scaled 10 minutes, the shortest `for:`
# of the spike rules, so that noise never pages and a rule wrong on healthy traffic shows.
NOISE_PENDING_SECONDS = 600 * TIME_SCALE
# Liveness bounds for an alert to fire or resolve once its scenario switched: generous on purpose.
ALERT_DEADLINE_SECONDS = 120
# Alertmanager's own timings, shortened in the copy of its config the test runs.
ALERTMANAGER_TIMINGS = {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"}
# Labels Prometheus adds to every alert, which the rules do not set: the name and the external labels.
_ADDED_LABELS = {"alertname", *yaml.safe_load(stack.PROMETHEUS_CONFIG.read_text(encoding="utf-8"))["global"].get(
    "external_labels", {})}


@dataclass
class Stack:
    exporter: Process
    exporter_url: str
    prometheus: Prometheus
    alertmanager: Process
    webhook: Webhook

    def switch(self, scenario: str, on: bool) -> None:
        code = stack.http_request(f"{self.exporter_url}/-/demo/scenarios/{scenario}", "PUT" if on else "DELETE")
        assert code == 204

    def logs(self) -> str:
        return "\n\n".join(f"--- {p.name}\n{p.tail()}" for p in (self.exporter, self.prometheus.process,
                                                                  self.alertmanager))


def exporter_config() -> dict[str, Any]:
    """The demo's exporter config with every budget multiplied by DEMO_SPEED_UP."""
    config = yaml.safe_load(DEMO_CONFIG_FILE.read_text(encoding="utf-8"))
    for budget in config["budgets"]:
        budget["value"] *= DEMO_SPEED_UP
    return config


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """deploy/alertmanager/alertmanager.yml with its webhook pointed at the test and short timings."""
    config = yaml.safe_load(stack.ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    config["templates"] = [str(stack.ALERTMANAGER_CONFIG.parent / template) for template in config["templates"]]
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", ()):
            webhook["url"] = webhook_url

    def shorten(route: dict[str, Any]) -> None:
        for key in ALERTMANAGER_TIMINGS:
            if key in route:
                route[key] = ALERTMANAGER_TIMINGS[key]
        for child in route.get("routes", ()):
            shorten(child)

    config["route"].update(ALERTMANAGER_TIMINGS)
    shorten(config["route"])
    return config


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("stack")
    rule_file = directory / "genai.rules.yml"
    rule_file.write_text(rules.render_rules(TIME_SCALE), encoding="utf-8")
    processes: list[Process] = []
    with stack.webhook_receiver() as webhook:
        try:
            config_file = directory / "genai-exporter.yaml"
            config_file.write_text(yaml.safe_dump(exporter_config()), encoding="utf-8")
            exporter, web_port = stack.start_exporter(directory, "--config.file", str(config_file),
                                                      "--demo.rate", str(DEFAULT_RATE * DEMO_SPEED_UP))
            processes.append(exporter)
            alertmanager_port, prometheus_port = stack.free_port(), stack.free_port()
            alertmanager = stack.start_alertmanager(directory, alertmanager_config(webhook.url), alertmanager_port)
            processes.append(alertmanager)
            prometheus = stack.start_prometheus(directory, stack.prometheus_config(
                exporter_port=web_port, alertmanager_port=alertmanager_port, prometheus_port=prometheus_port,
                rule_file=rule_file, interval=SCRAPE_INTERVAL), prometheus_port)
            processes.append(prometheus.process)
            yield Stack(exporter, f"http://127.0.0.1:{web_port}", prometheus, alertmanager, webhook)
        finally:
            for process in reversed(processes):
                process.stop()


def _delivered(running: Stack, alertname: str, status: str, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    return [alert for alert in running.webhook.alerts(alertname, status)
            if labels.items() <= alert["labels"].items()]


def _wait_delivered(running: Stack, alertname: str, status: str, labels: Mapping[str, str]) -> dict[str, Any]:
    try:
        return wait_for(f"{alertname} {labels} {status} at the webhook",
                        lambda: (_delivered(running, alertname, status, labels) or [None])[-1],
                        ALERT_DEADLINE_SECONDS)
    except AssertionError as error:
        raise AssertionError(f"{error}\nPrometheus alerts: {running.prometheus.alerts()}\n{running.logs()}") from None


def _rendered(alert: dict[str, Any]) -> list[str]:
    """Annotations that still hold template syntax or an empty value (a rendering that went wrong)."""
    return [name for name, value in alert["annotations"].items() if not value or "{{" in value or "<no value>" in value]


# --- 1. a healthy baseline is quiet -----------------------------------------------------------------------

def test_healthy_baseline_raises_no_alert_at_all(running: Stack) -> None:
    # Nothing fires or reaches Alertmanager, and nothing is pending for longer than a moment of
    # noise: a spike rule's condition may hold for a few evaluations on healthy traffic (search_docs,
    # empty once in 40 calls, now and then returns 3 empty results of 25 in one scaled 5-minute
    # window: 12 %), which its `for:` keeps from paging; a condition that holds on healthy traffic
    # for longer is a wrong rule, also one whose `for:` is longer than the baseline.
    time.sleep(BASELINE_SECONDS)
    now = datetime.now(UTC)
    lasting = [alert for alert in running.prometheus.alerts()
               if alert["state"] == "firing"
               or (now - datetime.fromisoformat(alert["activeAt"])).total_seconds() > NOISE_PENDING_SECONDS]
    assert (lasting, running.webhook.received()) == ([], [])


# --- 2. incidents page, with their labels and annotations rendered, and resolve -----------------------------

def test_tool_outage_delivers_the_empty_response_alert_and_resolving_it_resolves_it(running: Stack) -> None:
    running.switch(scenarios.TOOL_OUTAGE, on=True)
    firing = _wait_delivered(running, rules.TOOL_EMPTY_RESPONSES_SPIKE, "firing", {"tool": "search_docs"})
    running.switch(scenarios.TOOL_OUTAGE, on=False)
    labels = firing["labels"]
    # Several services call search_docs: this very alert (all its labels) must resolve; the wait fails
    # the test if it does not.
    _wait_delivered(running, rules.TOOL_EMPTY_RESPONSES_SPIKE, "resolved", labels)
    assert (set(labels) - _ADDED_LABELS, labels["layer"], labels["severity"], _rendered(firing),
            firing["annotations"]["runbook_url"].endswith("#" + rules.TOOL_EMPTY_RESPONSES_SPIKE.lower()),
            "search_docs" in firing["annotations"]["description"]) == (
        {"service", "layer", "tool", "severity"}, "tool", "warning", [], True, True)


def test_tier_spike_delivers_the_token_budget_alert_for_the_free_tier_and_resolves(running: Stack) -> None:
    running.switch(scenarios.TIER_SPIKE, on=True)
    firing = _wait_delivered(running, rules.TOKEN_BUDGET_EXCEEDED, "firing", {"user_tier": "free"})
    running.switch(scenarios.TIER_SPIKE, on=False)
    _wait_delivered(running, rules.TOKEN_BUDGET_EXCEEDED, "resolved", firing["labels"])  # fails if it never does
    description = firing["annotations"]["description"]
    assert (_rendered(firing), f"above its budget of {DEMO_SPEED_UP}k tokens/s" in description,
            re.search(r"used [\d.]+k? tokens/s", description) is not None,
            {a["labels"]["user_tier"] for a in running.webhook.alerts(rules.TOKEN_BUDGET_EXCEEDED, "firing")}) == (
        [], True, True, {"free"}), description


# --- 3. every dashboard query has data --------------------------------------------------------------------

def _budget_scope_not_configured(prometheus: Prometheus, expr: str) -> bool:
    """A budget panel's query for a scope (user tier, feature or both) this deployment budgets nothing by."""
    budget = re.search(r"(genai_budget_\w+\{[^}]*\})", expr)
    return budget is not None and prometheus.query(budget.group(1)) == []


def test_every_dashboard_panel_query_returns_data_from_the_live_prometheus(running: Stack) -> None:
    # Every fault at once for a while, so the panels about failures, truncation, retry loops,
    # unpriced models and quality have something to show besides the healthy traffic.
    for name in scenarios.SCENARIOS:
        running.switch(name, on=True)
    time.sleep(20)
    for name in scenarios.SCENARIOS:
        running.switch(name, on=False)
    exporter_target = running.exporter_url.removeprefix("http://")
    empty, unbudgeted = [], []
    for document in grafana.documents():
        values = {**grafana.all_values(document, __range="10m", __rate_interval="15s", __interval="15s"),
                  "job": stack.EXPORTER_JOB, "instance": exporter_target}
        for panel, target in grafana.prometheus_targets(document):
            expr = grafana.interpolate(target["expr"], values)
            if running.prometheus.query(expr):
                continue
            where = f"{document['title']} / {panel['title']} / {target['refId']}: {expr}"
            (unbudgeted if _budget_scope_not_configured(running.prometheus, expr) else empty).append(where)
    # The demo budgets tokens per user tier and cost per feature; the panels' other scopes stay empty.
    assert (empty, len(unbudgeted)) == ([], 4), "\n".join(empty + unbudgeted)


# --- 4. exemplars link the data to its traces -------------------------------------------------------------

@pytest.mark.parametrize("series", ["genai_operation_duration_seconds_bucket", "genai_cost_usd_total"])
def test_exemplars_with_trace_ids_come_back_from_the_exemplar_api(running: Stack, series: str) -> None:
    now = time.time()
    found = running.prometheus.api("query_exemplars", query=series, start=str(now - 600), end=str(now))
    exemplars = [exemplar for group in found for exemplar in group["exemplars"]]
    assert (len(exemplars) > 10,
            all(re.fullmatch(r"[0-9a-f]{32}", e["labels"]["trace_id"]) for e in exemplars),
            all(re.fullmatch(r"[0-9a-f]{16}", e["labels"]["span_id"]) for e in exemplars)) == (True, True, True)
