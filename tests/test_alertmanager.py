"""deploy/alertmanager: routing, grouping, inhibition and notification texts, with the real Alertmanager.

amtool checks the config, tests the routes and renders the templates; the live tests start Debian's
prometheus-alertmanager on a loopback port with a temporary copy of the config (webhook pointed at
a server the test runs, group timings shortened), post alerts to its API and look at what reaches
the webhook and what Alertmanager reports as inhibited.
"""

from __future__ import annotations

import http.server
import json
import queue
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts import rules
from genai_exporter import catalog

ROOT = Path(__file__).resolve().parents[1]
ALERTMANAGER_DIR = ROOT / "deploy" / "alertmanager"
CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"
TEMPLATES = ALERTMANAGER_DIR / "templates" / "*.tmpl"
ALERTNAME = "alertname"
# How long the live tests wait for Alertmanager to start or to notify before failing; not a
# performance expectation (it notifies within about a second).
PATIENCE_SECONDS = 30
# Where the templates point relative links by default (set per deployment in the template file).
GRAFANA_URL = "http://127.0.0.1:3000"
RUNBOOK_BASE_URL = "https://github.com/your-org/genai-exporter/blob/main/"
RECEIVER_OF_SEVERITY = {rules.CRITICAL: "webhook", rules.WARNING: "webhook", rules.INFO: "null"}
EXPORTER = {rules.JOB: rules.EXPORTER_JOB, rules.INSTANCE: "genai-exporter:9464"}
STAGING_EXPORTER = {rules.JOB: "genai-exporter-staging", rules.INSTANCE: "staging:9464"}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: scripts/bootstrap.sh --with-binaries installs it from Debian")
    return path


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)


def _config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text(encoding="utf-8"))


# Alerts as Prometheus sends them for the rules of alerts/genai.rules.yml (annotations rendered).
MODEL_ERRORS = {
    "labels": {ALERTNAME: rules.MODEL_ERROR_RATE_HIGH, rules.SEVERITY: rules.CRITICAL, catalog.SERVICE: "support-bot",
               catalog.LAYER: "model", catalog.PROVIDER: "openai", catalog.MODEL: "gpt-4o-mini"},
    "annotations": {
        "summary": "Calls to a model are failing: the provider may be down or rate limiting.",
        "description": "20% of the calls of service support-bot to model gpt-4o-mini (provider openai) failed over "
                       "the last 5m.",
        "runbook_url": rules.runbook_url(rules.MODEL_ERROR_RATE_HIGH),
        "dashboard_url": "/d/genai-reliability?orgId=1&var-service=support-bot&var-provider=openai"
                         "&var-model=gpt-4o-mini",
    },
    "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=service_layer_provider_model%3Agenai_operation_errors",
}


def _alert(alertname: str, severity: str, **labels: str) -> dict[str, Any]:
    return {"labels": {ALERTNAME: alertname, rules.SEVERITY: severity, **labels},
            "annotations": {"summary": f"{alertname} test alert.", "runbook_url": rules.runbook_url(alertname)}}


def _with_labels(alert: dict[str, Any], **labels: str) -> dict[str, Any]:
    return {**alert, "labels": {**alert["labels"], **labels}}


# --- Static checks with amtool --------------------------------------------------------------------


def test_amtool_accepts_the_config_with_its_notification_templates():
    result = _run([_tool("amtool"), "check-config", str(CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert " - 1 templates\n  SUCCESS" in result.stdout


ALERT_RULES = [rule for group in yaml.safe_load(rules.RULE_FILE.read_text())["groups"] for rule in group["rules"]
               if "alert" in rule]


@pytest.mark.parametrize("rule", ALERT_RULES, ids=lambda rule: f"{rule['alert']}:{rule['labels'][rules.SEVERITY]}")
def test_every_alert_is_routed_by_its_severity(rule: dict[str, Any]):
    severity = rule["labels"][rules.SEVERITY]
    result = _run([_tool("amtool"), "config", "routes", "test", f"--config.file={CONFIG}",
                   f"--verify.receivers={RECEIVER_OF_SEVERITY[severity]}",
                   f"{ALERTNAME}={rule['alert']}", f"{rules.SEVERITY}={severity}", f"{catalog.SERVICE}=support-bot"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_notifications_are_grouped_by_alert_name_and_service():
    assert _config()["route"]["group_by"] == [ALERTNAME, catalog.SERVICE]


def test_the_no_data_alerts_are_inhibited_while_the_exporter_is_down():
    inhibit = _config()["inhibit_rules"][0]
    assert inhibit["source_matchers"] == [f'{ALERTNAME}="{rules.EXPORTER_DOWN}"']
    assert inhibit["target_matchers"] == [f'{ALERTNAME}=~"{"|".join(rules.NO_DATA_ALERTS)}"']


def _render(template: str, data: dict[str, Any], tmp_path: Path) -> str:
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps(data))
    result = _run([_tool("amtool"), "template", "render", f"--template.glob={TEMPLATES}",
                   f"--template.text={{{{ template \"{template}\" . }}}}", f"--template.data={data_file}"])
    assert result.returncode == 0, result.stderr
    return result.stdout


def _notification(*alerts: dict[str, Any]) -> dict[str, Any]:
    """Template data of a firing notification, as Alertmanager builds it."""
    common = dict(set.intersection(*(set(alert["labels"].items()) for alert in alerts)))
    return {
        "receiver": "slack", "status": "firing", "externalURL": "http://127.0.0.1:9093",
        "groupLabels": {key: common[key] for key in (ALERTNAME, catalog.SERVICE)},
        "commonLabels": common, "commonAnnotations": {},
        "alerts": [{**alert, "status": "firing", "startsAt": "2026-11-20T10:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z", "fingerprint": f"{index:016x}"}
                   for index, alert in enumerate(alerts)],
    }


def test_slack_text_links_each_alert_to_its_runbook_dashboard_and_query(tmp_path: Path):
    rendered = _render("genai.slack.text", _notification(MODEL_ERRORS), tmp_path)
    assert rendered == (
        "*CRITICAL* Calls to a model are failing: the provider may be down or rate limiting.\n"
        "20% of the calls of service support-bot to model gpt-4o-mini (provider openai) failed over the last 5m.\n"
        f"<{RUNBOOK_BASE_URL}alerts/runbook.md#genaimodelerrorratehigh|Runbook> · "
        f"<{GRAFANA_URL}/d/genai-reliability?orgId=1&var-service=support-bot&var-provider=openai&var-model=gpt-4o-mini"
        f"|Dashboard> · <{MODEL_ERRORS['generatorURL']}|Query>\n")


def test_title_counts_the_firing_alerts_of_the_group(tmp_path: Path):
    second_model = _with_labels(MODEL_ERRORS, **{catalog.MODEL: "gpt-4.1"})
    assert _render("genai.title", _notification(MODEL_ERRORS, second_model), tmp_path) == (
        "[FIRING:2] GenAIModelErrorRateHigh (support-bot, critical)")


def test_email_text_spells_out_the_links_and_where_to_silence(tmp_path: Path):
    rendered = _render("genai.email.text", _notification(MODEL_ERRORS), tmp_path)
    assert rendered == (
        "CRITICAL: Calls to a model are failing: the provider may be down or rate limiting.\n"
        "20% of the calls of service support-bot to model gpt-4o-mini (provider openai) failed over the last 5m.\n"
        f"Runbook:   {RUNBOOK_BASE_URL}alerts/runbook.md#genaimodelerrorratehigh\n"
        f"Dashboard: {GRAFANA_URL}/d/genai-reliability?orgId=1&var-service=support-bot&var-provider=openai"
        "&var-model=gpt-4o-mini\n"
        f"Query:     {MODEL_ERRORS['generatorURL']}\n"
        "Labels:    alertname=GenAIModelErrorRateHigh layer=model model=gpt-4o-mini provider=openai "
        "service=support-bot severity=critical \n\n"
        "Silence or inspect: http://127.0.0.1:9093")


def test_an_absolute_link_in_an_annotation_is_kept_as_it_is(tmp_path: Path):
    hosted = {**MODEL_ERRORS, "annotations": {**MODEL_ERRORS["annotations"],
                                              "runbook_url": "https://runbooks.example.com/genai#models"}}
    assert _render("genai.slack.runbook", _notification(hosted), tmp_path) == "https://runbooks.example.com/genai#models"


# --- A live Alertmanager ----------------------------------------------------------------------------


class _WebhookSink(http.server.ThreadingHTTPServer):
    """Collects the JSON bodies Alertmanager posts to its webhook receiver."""

    def __init__(self) -> None:
        self.notifications: queue.Queue[dict[str, Any]] = queue.Queue()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.notifications.put(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def next_notification(self) -> dict[str, Any]:
        try:
            return self.notifications.get(timeout=PATIENCE_SECONDS)
        except queue.Empty:
            pytest.fail(f"no notification reached the webhook within {PATIENCE_SECONDS}s")


@dataclass(frozen=True)
class _Alertmanager:
    url: str
    webhook: _WebhookSink

    def post(self, *alerts: dict[str, Any]) -> None:
        now = datetime.now(UTC).isoformat()
        body = json.dumps([{"startsAt": now, **alert} for alert in alerts]).encode()
        request = urllib.request.Request(f"{self.url}/api/v2/alerts", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=10) as response:
            return json.load(response)

    def alert_status(self, until: Any) -> dict[str, dict[str, Any]]:
        """Alertmanager's view of its alerts (by their labels), once `until(view)` holds."""
        deadline = time.monotonic() + PATIENCE_SECONDS
        while True:
            view = {json.dumps(alert["labels"], sort_keys=True): alert for alert in self.alerts()}
            if until(view) or time.monotonic() > deadline:
                return view
            time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _with_short_timings(route: dict[str, Any]) -> dict[str, Any]:
    """A route tree that notifies within a second and does not repeat during a test."""
    short = {key: "1s" for key in ("group_wait", "group_interval") if key in route}
    repeat = {"repeat_interval": "1h"} if "repeat_interval" in route else {}
    children = {"routes": [_with_short_timings(child) for child in route["routes"]]} if "routes" in route else {}
    return {**route, **short, **repeat, **children}


def _test_copy_of_the_config(webhook_url: str) -> dict[str, Any]:
    """The committed config with the webhook pointed at the test and notifications sent within a second."""
    config = _config()
    receivers = [{**receiver, "webhook_configs": [{**webhook, "url": webhook_url}
                                                  for webhook in receiver["webhook_configs"]]}
                 if "webhook_configs" in receiver else receiver for receiver in config["receivers"]]
    return {**config, "templates": [str(TEMPLATES)], "route": _with_short_timings(config["route"]),
            "receivers": receivers}


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[_Alertmanager]:
    webhook = _WebhookSink()
    threading.Thread(target=webhook.serve_forever, daemon=True).start()
    config_file = tmp_path / "alertmanager.yml"
    config_file.write_text(yaml.safe_dump(_test_copy_of_the_config(webhook.url)))
    port = _free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [_tool("prometheus-alertmanager"), f"--config.file={config_file}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + PATIENCE_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"alertmanager exited: {(tmp_path / 'alertmanager.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"alertmanager not ready: {(tmp_path / 'alertmanager.log').read_text()}")
                time.sleep(0.1)
        yield _Alertmanager(url, webhook)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        webhook.shutdown()
        webhook.server_close()


def _key(labels: dict[str, str]) -> str:
    return json.dumps(labels, sort_keys=True)


def test_a_critical_alert_reaches_the_webhook_with_its_runbook_and_dashboard_links(alertmanager: _Alertmanager):
    alertmanager.post(MODEL_ERRORS)
    notification = alertmanager.webhook.next_notification()
    (alert,) = notification["alerts"]
    assert (notification["receiver"], notification["status"], notification["groupLabels"]) == (
        "webhook", "firing", {ALERTNAME: rules.MODEL_ERROR_RATE_HIGH, catalog.SERVICE: "support-bot"})
    assert (alert["labels"], alert["annotations"], alert["generatorURL"]) == (
        MODEL_ERRORS["labels"], MODEL_ERRORS["annotations"], MODEL_ERRORS["generatorURL"])


def test_alerts_of_one_alert_name_and_service_make_one_notification(alertmanager: _Alertmanager):
    alertmanager.post(MODEL_ERRORS, _with_labels(MODEL_ERRORS, **{catalog.MODEL: "gpt-4.1"}),
                      _with_labels(MODEL_ERRORS, **{catalog.SERVICE: "research-api"}))
    notifications = [alertmanager.webhook.next_notification() for _ in range(2)]
    assert sorted((n["groupLabels"][catalog.SERVICE], sorted(a["labels"][catalog.MODEL] for a in n["alerts"]))
                  for n in notifications) == [("research-api", ["gpt-4o-mini"]),
                                              ("support-bot", ["gpt-4.1", "gpt-4o-mini"])]


def test_an_exporter_down_inhibits_the_no_spans_alert_of_its_job_only(alertmanager: _Alertmanager):
    down = _alert(rules.EXPORTER_DOWN, rules.CRITICAL, **EXPORTER)
    no_spans = _alert(rules.EXPORTER_NO_SPANS, rules.WARNING, **EXPORTER)
    other_no_spans = _alert(rules.EXPORTER_NO_SPANS, rules.WARNING, **STAGING_EXPORTER)
    alertmanager.post(down, no_spans, other_no_spans)
    view = alertmanager.alert_status(until=lambda v: v.get(_key(no_spans["labels"]), {}).get(
        "status", {}).get("state") == "suppressed")
    assert {name: (view[_key(alert["labels"])]["status"]["state"], view[_key(alert["labels"])]["status"]["inhibitedBy"])
            for name, alert in (("down", down), ("no spans", no_spans), ("other job", other_no_spans))} == {
        "down": ("active", []),
        "no spans": ("suppressed", [view[_key(down["labels"])]["fingerprint"]]),
        "other job": ("active", []),
    }


def test_the_no_spans_notification_leaves_out_the_alert_a_down_exporter_inhibits(alertmanager: _Alertmanager):
    down = _alert(rules.EXPORTER_DOWN, rules.CRITICAL, **EXPORTER)
    no_spans = _alert(rules.EXPORTER_NO_SPANS, rules.WARNING, **EXPORTER)
    other_no_spans = _alert(rules.EXPORTER_NO_SPANS, rules.WARNING, **STAGING_EXPORTER)
    alertmanager.post(down, no_spans, other_no_spans)
    notifications = [alertmanager.webhook.next_notification() for _ in range(2)]
    assert sorted((n["groupLabels"][ALERTNAME], [a["labels"][rules.JOB] for a in n["alerts"]])
                  for n in notifications) == [(rules.EXPORTER_DOWN, [EXPORTER[rules.JOB]]),
                                              (rules.EXPORTER_NO_SPANS, [STAGING_EXPORTER[rules.JOB]])]


def test_a_page_inhibits_the_ticket_of_the_same_burn_rate_alert_only(alertmanager: _Alertmanager):
    analyst = {catalog.SERVICE: "dev-platform", catalog.AGENT: "sql-analyst"}
    triage = {catalog.SERVICE: "support-bot", catalog.AGENT: "support-triage"}
    fast = {rules.LONG_WINDOW: "1h", rules.SHORT_WINDOW: "5m"}
    slow = {rules.LONG_WINDOW: "1d", rules.SHORT_WINDOW: "2h"}
    page = _alert(rules.AGENT_RUN_ERROR_BUDGET_BURN, rules.CRITICAL, **fast, **analyst)
    ticket = _alert(rules.AGENT_RUN_ERROR_BUDGET_BURN, rules.WARNING, **slow, **analyst)
    other_ticket = _alert(rules.AGENT_RUN_ERROR_BUDGET_BURN, rules.WARNING, **slow, **triage)
    alertmanager.post(page, ticket, other_ticket)
    view = alertmanager.alert_status(until=lambda v: v.get(_key(ticket["labels"]), {}).get(
        "status", {}).get("state") == "suppressed")
    assert [view[_key(alert["labels"])]["status"]["state"] for alert in (page, ticket, other_ticket)] == [
        "active", "suppressed", "active"]
